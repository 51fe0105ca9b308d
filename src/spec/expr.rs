//! The small languages inside a spec: filters, computed fields, templates.
//!
//! They are parsed here, once, into trees that name canonical fields; the
//! engine turns the trees into Polars expressions.

use std::fmt;

/// A value written in a filter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => write!(f, "{n}"),
            Value::Text(s) => write!(f, "{s:?}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One filter rule: rows for which it is false are `skipped`.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterRule {
    Compare {
        field: String,
        op: CmpOp,
        value: Value,
    },
    In {
        field: String,
        values: Vec<Value>,
        negated: bool,
    },
    IsNull {
        field: String,
        negated: bool,
    },
}

impl FilterRule {
    pub fn field(&self) -> &str {
        match self {
            FilterRule::Compare { field, .. }
            | FilterRule::In { field, .. }
            | FilterRule::IsNull { field, .. } => field,
        }
    }
}

/// Arithmetic over canonical fields: `available - reserved`.
#[derive(Debug, Clone, PartialEq)]
pub enum Calc {
    Field(String),
    Number(f64),
    Binary(char, Box<Calc>, Box<Calc>),
}

impl Calc {
    pub fn fields(&self, out: &mut Vec<String>) {
        match self {
            Calc::Field(f) => out.push(f.clone()),
            Calc::Number(_) => {}
            Calc::Binary(_, a, b) => {
                a.fields(out);
                b.fields(out);
            }
        }
    }
}

/// A piece of a template: `"Order from call {phone}"`.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Field(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    Op(String),
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '"' || c == '\'' {
            let end = cs[i + 1..]
                .iter()
                .position(|&d| d == c)
                .ok_or_else(|| format!("unclosed quote in `{src}`"))?;
            out.push(Tok::Str(cs[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c.is_ascii_digit()
            || (c == '-'
                && cs.get(i + 1).is_some_and(|d| d.is_ascii_digit())
                && !matches!(
                    out.last(),
                    Some(Tok::Ident(_) | Tok::Num(_) | Tok::RParen | Tok::Str(_))
                ))
        {
            let start = i;
            i += 1;
            while i < cs.len()
                && (cs[i].is_ascii_alphanumeric() || matches!(cs[i], '.' | '-' | ':'))
            {
                i += 1;
            }
            let word: String = cs[start..i].iter().collect();
            // Dates and times stay text; the engine casts them to the field's type.
            match word.parse::<f64>() {
                Ok(n) => out.push(Tok::Num(n)),
                Err(_) => out.push(Tok::Str(word)),
            }
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(cs[start..i].iter().collect()));
        } else {
            let two: String = cs[i..(i + 2).min(cs.len())].iter().collect();
            let (tok, n) = match two.as_str() {
                "==" | "!=" | "<=" | ">=" => (Tok::Op(two.clone()), 2),
                _ => match c {
                    '=' => (Tok::Op("==".into()), 1),
                    '<' | '>' | '+' | '-' | '*' | '/' => (Tok::Op(c.to_string()), 1),
                    '[' => (Tok::LBracket, 1),
                    ']' => (Tok::RBracket, 1),
                    '(' => (Tok::LParen, 1),
                    ')' => (Tok::RParen, 1),
                    ',' => (Tok::Comma, 1),
                    other => return Err(format!("unexpected `{other}` in `{src}`")),
                },
            };
            out.push(tok);
            i += n;
        }
    }
    Ok(out)
}

fn literal(tok: Option<&Tok>, src: &str) -> Result<Value, String> {
    match tok {
        Some(Tok::Str(s)) => Ok(Value::Text(s.clone())),
        Some(Tok::Num(n)) => Ok(Value::Number(*n)),
        Some(Tok::Ident(w)) if w == "true" => Ok(Value::Bool(true)),
        Some(Tok::Ident(w)) if w == "false" => Ok(Value::Bool(false)),
        Some(Tok::Ident(w)) if w == "null" => Ok(Value::Null),
        Some(Tok::Ident(w)) => Ok(Value::Text(w.clone())),
        _ => Err(format!("`{src}` needs a value after the operator")),
    }
}

/// Parse `status != "complete"`, `created_at >= 2024-01-01`,
/// `status in ["paid", "sent"]`, `email is not null`.
pub fn parse_filter(src: &str) -> Result<FilterRule, String> {
    let toks = lex(src)?;
    let field = match toks.first() {
        Some(Tok::Ident(f)) => f.clone(),
        _ => return Err(format!("`{src}` must start with a field name")),
    };
    let rest = &toks[1..];
    let idents: Vec<&str> = rest
        .iter()
        .map(|t| match t {
            Tok::Ident(s) => s.as_str(),
            _ => "",
        })
        .collect();
    let rule = match (rest.first(), idents.as_slice()) {
        (Some(Tok::Ident(_)), ["is", "null"]) => FilterRule::IsNull {
            field,
            negated: false,
        },
        (Some(Tok::Ident(_)), ["is", "not", "null"]) => FilterRule::IsNull {
            field,
            negated: true,
        },
        (Some(Tok::Ident(w)), _) if w == "in" || w == "not" => {
            let negated = w == "not";
            let list = if negated {
                if idents.get(1) != Some(&"in") {
                    return Err(format!("`{src}`: expected `not in [...]`"));
                }
                &rest[2..]
            } else {
                &rest[1..]
            };
            if list.first() != Some(&Tok::LBracket) || list.last() != Some(&Tok::RBracket) {
                return Err(format!("`{src}`: the list after `in` is written `[a, b]`"));
            }
            let values = list[1..list.len() - 1]
                .iter()
                .filter(|t| **t != Tok::Comma)
                .map(|t| literal(Some(t), src))
                .collect::<Result<Vec<_>, _>>()?;
            FilterRule::In {
                field,
                values,
                negated,
            }
        }
        (Some(Tok::Op(op)), _) => {
            let op = match op.as_str() {
                "==" => CmpOp::Eq,
                "!=" => CmpOp::Ne,
                "<" => CmpOp::Lt,
                "<=" => CmpOp::Le,
                ">" => CmpOp::Gt,
                ">=" => CmpOp::Ge,
                other => return Err(format!("`{other}` is not a comparison in `{src}`")),
            };
            if rest.len() != 2 {
                return Err(format!(
                    "`{src}` must be `field OP value` (quote text with spaces)"
                ));
            }
            FilterRule::Compare {
                field,
                op,
                value: literal(rest.get(1), src)?,
            }
        }
        _ => {
            return Err(format!(
                "`{src}` is not a filter: write `field OP value` with OP one of == != < <= > >=, `field in [..]` or `field is null`"
            ));
        }
    };
    Ok(rule)
}

/// Parse arithmetic such as `available - reserved` or `(net * 100) / 121`.
pub fn parse_calc(src: &str) -> Result<Calc, String> {
    let toks = lex(src)?;
    let mut pos = 0;
    let calc = calc_sum(&toks, &mut pos, src)?;
    if pos != toks.len() {
        return Err(format!("unexpected text after position {pos} in `{src}`"));
    }
    Ok(calc)
}

fn calc_sum(t: &[Tok], pos: &mut usize, src: &str) -> Result<Calc, String> {
    let mut lhs = calc_product(t, pos, src)?;
    while let Some(Tok::Op(op)) = t.get(*pos) {
        if op != "+" && op != "-" {
            break;
        }
        let op = op.chars().next().expect("one char op");
        *pos += 1;
        let rhs = calc_product(t, pos, src)?;
        lhs = Calc::Binary(op, Box::new(lhs), Box::new(rhs));
    }
    Ok(lhs)
}

fn calc_product(t: &[Tok], pos: &mut usize, src: &str) -> Result<Calc, String> {
    let mut lhs = calc_atom(t, pos, src)?;
    while let Some(Tok::Op(op)) = t.get(*pos) {
        if op != "*" && op != "/" {
            break;
        }
        let op = op.chars().next().expect("one char op");
        *pos += 1;
        let rhs = calc_atom(t, pos, src)?;
        lhs = Calc::Binary(op, Box::new(lhs), Box::new(rhs));
    }
    Ok(lhs)
}

fn calc_atom(t: &[Tok], pos: &mut usize, src: &str) -> Result<Calc, String> {
    let tok = t.get(*pos).cloned();
    *pos += 1;
    match tok {
        Some(Tok::Ident(f)) => Ok(Calc::Field(f)),
        Some(Tok::Num(n)) => Ok(Calc::Number(n)),
        Some(Tok::LParen) => {
            let inner = calc_sum(t, pos, src)?;
            if t.get(*pos) != Some(&Tok::RParen) {
                return Err(format!("missing `)` in `{src}`"));
            }
            *pos += 1;
            Ok(inner)
        }
        _ => Err(format!(
            "`{src}` is not arithmetic over field names and numbers"
        )),
    }
}

/// Split `"Order from call {phone}"` into text and field pieces.
pub fn parse_template(src: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in template `{src}`"))?;
        let name = rest[open + 1..open + close].trim();
        if name.is_empty() {
            return Err(format!("empty `{{}}` in template `{src}`"));
        }
        out.push(Piece::Field(name.to_string()));
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse() {
        assert_eq!(
            parse_filter(r#"status != "complete""#).unwrap(),
            FilterRule::Compare {
                field: "status".into(),
                op: CmpOp::Ne,
                value: Value::Text("complete".into())
            }
        );
        assert_eq!(
            parse_filter("created_at >= 2024-01-01").unwrap(),
            FilterRule::Compare {
                field: "created_at".into(),
                op: CmpOp::Ge,
                value: Value::Text("2024-01-01".into())
            }
        );
        assert_eq!(
            parse_filter("amount > -5").unwrap(),
            FilterRule::Compare {
                field: "amount".into(),
                op: CmpOp::Gt,
                value: Value::Number(-5.0)
            }
        );
        assert_eq!(
            parse_filter("status not in ['a', \"b\"]").unwrap(),
            FilterRule::In {
                field: "status".into(),
                values: vec![Value::Text("a".into()), Value::Text("b".into())],
                negated: true
            }
        );
        assert_eq!(
            parse_filter("email is not null").unwrap(),
            FilterRule::IsNull {
                field: "email".into(),
                negated: true
            }
        );
        assert!(parse_filter("status").is_err());
        assert!(parse_filter("status ~ 1").is_err());
    }

    #[test]
    fn calc_and_template_parse() {
        assert_eq!(
            parse_calc("available - reserved").unwrap(),
            Calc::Binary(
                '-',
                Box::new(Calc::Field("available".into())),
                Box::new(Calc::Field("reserved".into()))
            )
        );
        let c = parse_calc("(a + b) * 2").unwrap();
        let mut f = vec![];
        c.fields(&mut f);
        assert_eq!(f, vec!["a", "b"]);
        assert!(parse_calc("a +").is_err());
        assert_eq!(
            parse_template("Order from call {phone}").unwrap(),
            vec![
                Piece::Text("Order from call ".into()),
                Piece::Field("phone".into())
            ]
        );
        assert!(parse_template("x {y").is_err());
    }
}
