//! Field paths: how a spec points into one side's native record.
//!
//! A path is a chain of steps: `name`, `name[0]`, `name[type=primary]`, with
//! dots between them (`emails[type=primary].email`). A step name that holds
//! dots or brackets is quoted: `"Invoice.City"`. CSV headers are plain names.

use std::fmt;

use serde_json::Value;

/// One step of a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An object member.
    Key(String),
    /// An array element by position.
    Index(usize),
    /// The first array element whose member `field` renders as `value`.
    Where { field: String, value: String },
}

/// A parsed path into a JSON-like record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    pub steps: Vec<Step>,
    text: String,
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FieldPath {
    /// Parse `a.b[0].c`, `emails[type=primary].email` or `"quoted.name"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut steps = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        let mut expect_name = true;
        if text.trim().is_empty() {
            return Err("a path cannot be empty".into());
        }
        while i < chars.len() {
            let c = chars[i];
            if expect_name {
                let name = if c == '"' {
                    let start = i + 1;
                    let end = chars[start..]
                        .iter()
                        .position(|&c| c == '"')
                        .map(|p| start + p)
                        .ok_or_else(|| format!("unclosed quote in path `{text}`"))?;
                    i = end + 1;
                    chars[start..end].iter().collect::<String>()
                } else {
                    let start = i;
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        i += 1;
                    }
                    chars[start..i].iter().collect::<String>()
                };
                if name.is_empty() {
                    return Err(format!("empty step in path `{text}`"));
                }
                steps.push(Step::Key(name));
                expect_name = false;
                continue;
            }
            match c {
                '.' => {
                    expect_name = true;
                    i += 1;
                    if i == chars.len() {
                        return Err(format!("path `{text}` ends with a dot"));
                    }
                }
                '[' => {
                    let start = i + 1;
                    let end = chars[start..]
                        .iter()
                        .position(|&c| c == ']')
                        .map(|p| start + p)
                        .ok_or_else(|| format!("unclosed `[` in path `{text}`"))?;
                    let inner: String = chars[start..end].iter().collect();
                    let inner = inner.trim();
                    if let Some((field, value)) = inner.split_once('=') {
                        let value = value.trim().trim_matches('"').trim_matches('\'');
                        steps.push(Step::Where {
                            field: field.trim().to_string(),
                            value: value.to_string(),
                        });
                    } else {
                        let index = inner.parse::<usize>().map_err(|_| {
                            format!(
                                "`[{inner}]` in path `{text}` is neither an index like `[0]` nor a filter like `[type=primary]`"
                            )
                        })?;
                        steps.push(Step::Index(index));
                    }
                    i = end + 1;
                }
                other => {
                    return Err(format!(
                        "unexpected `{other}` in path `{text}` (steps are joined with `.`)"
                    ));
                }
            }
        }
        Ok(Self {
            steps,
            text: text.to_string(),
        })
    }

    /// A path of one plain key (a CSV header, say).
    pub fn key(name: &str) -> Self {
        Self {
            steps: vec![Step::Key(name.to_string())],
            text: name.to_string(),
        }
    }

    /// Follow the path; `None` when any step is missing.
    pub fn get<'v>(&self, record: &'v Value) -> Option<&'v Value> {
        let mut cur = record;
        for step in &self.steps {
            cur = match step {
                Step::Key(k) => cur.as_object()?.get(k)?,
                Step::Index(i) => cur.as_array()?.get(*i)?,
                Step::Where { field, value } => cur.as_array()?.iter().find(|item| {
                    item.get(field)
                        .map(|v| scalar_text(v).as_deref() == Some(value.as_str()))
                        .unwrap_or(false)
                })?,
            };
        }
        Some(cur)
    }

    /// [`FieldPath::get`] for changing the value found.
    pub fn get_mut<'v>(&self, record: &'v mut Value) -> Option<&'v mut Value> {
        let mut cur = record;
        for step in &self.steps {
            cur = match step {
                Step::Key(k) => cur.as_object_mut()?.get_mut(k)?,
                Step::Index(i) => cur.as_array_mut()?.get_mut(*i)?,
                Step::Where { field, value } => cur.as_array_mut()?.iter_mut().find(|item| {
                    item.get(field)
                        .map(|v| scalar_text(v).as_deref() == Some(value.as_str()))
                        .unwrap_or(false)
                })?,
            };
        }
        Some(cur)
    }

    /// Write `value` at this path, creating objects and arrays on the way.
    /// Used to build native payloads from canonical values.
    pub fn set(&self, record: &mut Value, value: Value) {
        let mut cur = record;
        for (n, step) in self.steps.iter().enumerate() {
            let last = n + 1 == self.steps.len();
            match step {
                Step::Key(k) => {
                    if !cur.is_object() {
                        *cur = Value::Object(Default::default());
                    }
                    let obj = cur.as_object_mut().expect("made an object above");
                    if last {
                        obj.insert(k.clone(), value);
                        return;
                    }
                    cur = obj.entry(k.clone()).or_insert(Value::Null);
                }
                Step::Index(i) => {
                    if !cur.is_array() {
                        *cur = Value::Array(Vec::new());
                    }
                    let arr = cur.as_array_mut().expect("made an array above");
                    while arr.len() <= *i {
                        arr.push(Value::Null);
                    }
                    if last {
                        arr[*i] = value;
                        return;
                    }
                    cur = &mut arr[*i];
                }
                Step::Where { field, value: want } => {
                    if !cur.is_array() {
                        *cur = Value::Array(Vec::new());
                    }
                    let arr = cur.as_array_mut().expect("made an array above");
                    let pos = arr.iter().position(|item| {
                        item.get(field).and_then(scalar_text).as_deref() == Some(want.as_str())
                    });
                    let pos = pos.unwrap_or_else(|| {
                        let mut item = serde_json::Map::new();
                        item.insert(field.clone(), Value::String(want.clone()));
                        arr.push(Value::Object(item));
                        arr.len() - 1
                    });
                    if last {
                        arr[pos] = value;
                        return;
                    }
                    cur = &mut arr[pos];
                }
            }
        }
    }
}

/// The text of a scalar JSON value, as a filter step compares it.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_index_and_filter_paths() {
        let rec = json!({
            "emails": [{"type": "work", "email": "w@x"}, {"type": "primary", "email": "p@x"}],
            "address": {"city": "Milano"},
            "Invoice.City": "Roma",
            "tags": ["a", "b"]
        });
        let get = |p: &str| FieldPath::parse(p).unwrap().get(&rec).cloned();
        assert_eq!(get("emails[0].email"), Some(json!("w@x")));
        assert_eq!(get("emails[type=primary].email"), Some(json!("p@x")));
        assert_eq!(get("emails[type=\"primary\"].email"), Some(json!("p@x")));
        assert_eq!(get("address.city"), Some(json!("Milano")));
        assert_eq!(get("\"Invoice.City\""), Some(json!("Roma")));
        assert_eq!(get("tags[1]"), Some(json!("b")));
        assert_eq!(get("tags[5]"), None);
        assert_eq!(get("emails[type=fax].email"), None);
    }

    #[test]
    fn bad_paths_are_explained() {
        assert!(FieldPath::parse("a[x").unwrap_err().contains("unclosed"));
        assert!(
            FieldPath::parse("a.")
                .unwrap_err()
                .contains("ends with a dot")
        );
        assert!(
            FieldPath::parse("a[b]")
                .unwrap_err()
                .contains("neither an index")
        );
        assert!(FieldPath::parse("").is_err());
    }

    #[test]
    fn set_builds_the_shape_get_reads() {
        let mut rec = json!({});
        for (p, v) in [
            ("emails[type=primary].email", json!("p@x")),
            ("address.city", json!("Milano")),
            ("phones[0].number", json!("+39")),
        ] {
            let path = FieldPath::parse(p).unwrap();
            path.set(&mut rec, v.clone());
            assert_eq!(path.get(&rec), Some(&v), "{p}");
        }
    }
}
