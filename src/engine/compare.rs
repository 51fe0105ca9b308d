//! Field rules as Polars expressions: the value a sending side wants written
//! (constant, template, computed, default, value map) and whether it equals
//! what the receiving side has (tolerance, case, whitespace, normal forms).

use polars::prelude::*;

use super::{dtype, field_column, norm_column, normalize::normalized, plain, ref_column};
use crate::spec::{Calc, Field, FieldType, Literal, Piece, SideIx, Source, Spec};

/// The value `from` wants written for `f`, and a problem (text, else null)
/// that makes the write invalid: a value missing from the value map, or a
/// reference to a parent record that is not synced yet. `None` where the
/// field's rules cannot fail.
pub fn want(f: &Field, from: SideIx) -> (Expr, Option<Expr>) {
    let ty = dtype(f.ty);
    let src = |name: &str| col(field_column(from, name));
    let no_problem = || lit(NULL).cast(DataType::String);
    let base = match &f.source {
        Source::Own if f.reference.is_some() => col(ref_column(from, &f.name)),
        Source::Own => src(&f.name),
        Source::Constant(l) => literal(l).cast(ty.clone()),
        Source::Template(pieces) => concat_str(
            pieces
                .iter()
                .map(|p| match p {
                    Piece::Text(t) => lit(t.clone()),
                    Piece::Field(n) => src(n).cast(DataType::String).fill_null(lit("")),
                })
                .collect::<Vec<_>>(),
            "",
            false,
        )
        .cast(ty.clone()),
        Source::Compute(c) => {
            let e = calc(c, from);
            match f.ty {
                FieldType::Decimal { decimals } => e
                    .round(decimals, RoundMode::HalfAwayFromZero)
                    .cast(ty.clone()),
                FieldType::Integer => e.round(0, RoundMode::HalfAwayFromZero).cast(ty.clone()),
                _ => e.cast(ty.clone()),
            }
        }
    };
    let base = match &f.default {
        Some(d) => base.fill_null(literal(d).cast(ty.clone())),
        None => base,
    };
    let raw = || src(&f.name).cast(DataType::String);
    if let Some(parent) = &f.reference {
        let problem = when(src(&f.name).is_not_null().and(base.clone().is_null()))
            .then(concat_str(
                [
                    lit(format!("{} `", f.name)),
                    raw(),
                    lit(format!("` refers to a {parent} record not synced yet")),
                ],
                "",
                false,
            ))
            .otherwise(no_problem());
        return (base, Some(problem));
    }
    let Some(map) = &f.map else {
        let problem = f.pattern.as_ref().map(|p| {
            when(
                base.clone().is_not_null().and(
                    base.clone()
                        .cast(DataType::String)
                        .str()
                        .contains(lit(p.clone()), false)
                        .not(),
                ),
            )
            .then(concat_str(
                [
                    lit(format!("{} `", f.name)),
                    base.clone().cast(DataType::String),
                    lit(format!("` does not match {p}")),
                ],
                "",
                false,
            ))
            .otherwise(no_problem())
        });
        return (base, problem);
    };
    let fallback = match &map.unmapped {
        Some(u) => lit(u.clone()),
        None => lit(NULL).cast(DataType::String),
    };
    let mut mapped = fallback;
    let mut known = lit(false);
    for (k, v) in map.pairs.iter().rev() {
        mapped = when(base.clone().eq(lit(k.clone())))
            .then(lit(v.clone()))
            .otherwise(mapped);
        known = known.or(base.clone().eq(lit(k.clone())).fill_null(lit(false)));
    }
    let problem = if map.unmapped.is_some() {
        None
    } else {
        Some(
            when(base.clone().is_not_null().and(known.not()))
                .then(concat_str(
                    [
                        lit(format!("{} value `", f.name)),
                        base.clone().cast(DataType::String),
                        lit("` has no entry in the value map"),
                    ],
                    "",
                    false,
                ))
                .otherwise(no_problem()),
        )
    };
    (
        when(base.clone().is_null())
            .then(lit(NULL).cast(DataType::String))
            .otherwise(mapped),
        problem,
    )
}

fn calc(c: &Calc, from: SideIx) -> Expr {
    match c {
        Calc::Field(n) => col(field_column(from, n)).cast(DataType::Float64),
        Calc::Number(x) => lit(*x),
        Calc::Binary(op, a, b) => {
            let (a, b) = (calc(a, from), calc(b, from));
            match op {
                '+' => a + b,
                '-' => a - b,
                '*' => a * b,
                _ => a / b,
            }
        }
    }
}

pub fn literal(l: &Literal) -> Expr {
    match l {
        Literal::Bool(b) => lit(*b),
        Literal::Int(i) => lit(*i),
        Literal::Float(x) => lit(*x),
        Literal::Text(t) => lit(t.clone()),
    }
}

/// Whether `want` (from side `from`) and `have` (on the other side) are the
/// same value under the field's rules; two nulls are equal.
pub fn equal(spec: &Spec, f: &Field, want: Expr, have: Expr, from: SideIx) -> Expr {
    equal_with(spec, f, want, have, from, plain(f))
}

/// [`equal`] for values that are not a side's own columns (a baseline):
/// normal forms are computed on the spot.
pub fn equal_loose(spec: &Spec, f: &Field, x: Expr, y: Expr, side: SideIx) -> Expr {
    equal_with(spec, f, x, y, side, false)
}

fn equal_with(
    spec: &Spec,
    f: &Field,
    want: Expr,
    have: Expr,
    from: SideIx,
    precomputed: bool,
) -> Expr {
    if let Some(tol) = f.tolerance {
        let (w, h) = (want.cast(DataType::Float64), have.cast(DataType::Float64));
        // A hair of slack so that 0.01 apart with tolerance 0.01 stays equal
        // despite binary floating point.
        let close = (w.clone() - h.clone())
            .abs()
            .lt_eq(lit(tol + tol.abs() * 1e-9 + 1e-12));
        return when(w.clone().is_null().and(h.clone().is_null()))
            .then(lit(true))
            .when(w.is_null().or(h.is_null()))
            .then(lit(false))
            .otherwise(close);
    }
    if f.ty != FieldType::String {
        return want.eq_missing(have);
    }
    let c = f.compare;
    let form = |e: Expr, side: SideIx| match c.normalize {
        // A value the normalizer cannot read is compared as written.
        Some(n) if precomputed => col(norm_column(side, &f.name, n)).fill_null(e),
        Some(n) => normalized(e.clone(), n, spec.side(side).region.as_deref()).fill_null(e),
        None => e,
    };
    same_text(
        form(want, from),
        form(have, from.other()),
        c.trim,
        c.case_insensitive,
    )
}

/// Whether two text columns hold the same value, trimmed and case folded if
/// asked; empty and null are alike. Compared row by row without building
/// folded copies: most pairs are equal as written and cost one comparison.
fn same_text(x: Expr, y: Expr, trim: bool, fold: bool) -> Expr {
    x.map_many(
        move |cols: &mut [Column]| {
            let [l, r] = same_length(cols);
            let (l, r) = (l.str()?, r.str()?);
            let out: BooleanChunked = l
                .iter()
                .zip(r.iter())
                .map(|(p, q)| Some(same(p, q, trim, fold)))
                .collect();
            Ok(out.with_name(cols[0].name().clone()).into_column())
        },
        &[y],
        |_, fields| {
            Ok(polars::prelude::Field::new(
                fields[0].name().clone(),
                DataType::Boolean,
            ))
        },
    )
}

/// Two inputs of a row-wise function at the same length: a literal comes
/// in as one value and stands for every row.
pub(crate) fn same_length(cols: &[Column]) -> [Column; 2] {
    let n = cols[0].len().max(cols[1].len());
    [0, 1].map(|i| {
        if cols[i].len() == n {
            cols[i].clone()
        } else {
            cols[i].new_from_index(0, n)
        }
    })
}

/// [`same_text`] for one pair of values.
fn same(p: Option<&str>, q: Option<&str>, trim: bool, fold: bool) -> bool {
    fn clean(v: Option<&str>, trim: bool) -> Option<&str> {
        v.map(|s| if trim { s.trim() } else { s })
            .filter(|s| !s.is_empty())
    }
    match (clean(p, trim), clean(q, trim)) {
        (None, None) => true,
        (Some(a), Some(b)) if a == b => true,
        (Some(a), Some(b)) if fold => {
            if a.is_ascii() && b.is_ascii() {
                a.eq_ignore_ascii_case(b)
            } else {
                a.to_lowercase() == b.to_lowercase()
            }
        }
        _ => false,
    }
}

/// A value as text for the report's before and after.
pub fn text(e: Expr) -> Expr {
    e.cast(DataType::String)
}

/// A value as JSON-ready: numbers stay numbers, dates become ISO text.
pub fn json_ready(e: Expr, ty: FieldType) -> Expr {
    match ty {
        FieldType::Decimal { .. } => e.cast(DataType::Float64),
        FieldType::Date | FieldType::Datetime => e.cast(DataType::String),
        _ => e,
    }
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn loose_text_compare() {
        assert!(same(None, None, true, true));
        assert!(same(Some("  "), None, true, true), "blank is empty");
        assert!(
            !same(Some("  "), None, false, false),
            "untrimmed blank is a value"
        );
        assert!(same(Some(""), None, false, false), "empty is null");
        assert!(same(Some(" Roma "), Some("roma"), true, true));
        assert!(!same(Some(" Roma "), Some("roma"), false, true), "no trim");
        assert!(!same(Some("Roma"), Some("roma"), true, false), "no fold");
        assert!(same(Some("ÉCOLE"), Some("école"), true, true));
        assert!(same(Some("ΟΔΟΣ"), Some("οδος"), false, true), "final sigma");
        assert!(!same(Some("Roma"), Some("Rome"), true, true));
        assert!(!same(Some("Roma"), None, true, true));
    }
}
