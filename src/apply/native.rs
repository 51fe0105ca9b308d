//! Canonical values to a receiving side's native record: each field's value
//! goes to the side's path for it, converted back to the side's units.

use serde_json::{Map, Value};

use crate::spec::{Field, FieldType, SideIx, Spec};

/// Build the native record (or the partial one, for an update) from a
/// payload of canonical values by field name.
pub fn native(spec: &Spec, side: SideIx, payload: &Map<String, Value>) -> Value {
    let mut out = Value::Object(Map::new());
    for (name, value) in payload {
        let Some(f) = spec.field(name) else { continue };
        let Some(path) = f.path(side) else { continue };
        path.set(&mut out, to_native(f, value, f.unit[side.index()]));
    }
    out
}

/// A canonical value as the side writes it: numbers scaled by the side's
/// unit (kopecks), whole numbers kept whole.
pub fn to_native(f: &Field, value: &Value, unit: Option<f64>) -> Value {
    let number = |v: &Value| -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    match (f.ty, value) {
        (_, Value::Null) => Value::Null,
        (FieldType::Integer | FieldType::Decimal { .. }, v) => match number(v) {
            Some(x) => {
                let x = x * unit.unwrap_or(1.0);
                if f.ty == FieldType::Integer || unit.is_some_and(|u| u.fract() == 0.0 && u >= 1.0)
                {
                    Value::from(x.round() as i64)
                } else {
                    serde_json::Number::from_f64(x)
                        .map(Value::Number)
                        .unwrap_or(Value::Null)
                }
            }
            None => v.clone(),
        },
        (FieldType::Bool, Value::String(s)) => Value::Bool(s == "true"),
        (_, v) => v.clone(),
    }
}

/// Merge a partial native record into a whole one (read, modify, write).
pub fn merge(whole: &mut Value, partial: &Value) {
    match (whole, partial) {
        (Value::Object(w), Value::Object(p)) => {
            for (k, v) in p {
                match w.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        w.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (w, p) => *w = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payloads_take_each_sides_paths_and_units() {
        let spec = Spec::parse(
            std::path::Path::new("t.toml"),
            r#"name = "t"
entity = "x"
direction = "a -> b"
[side.a]
file = "a.csv"
id = "id"
[side.b]
file = "b.json"
id = "id"
[[field]]
name = "email"
path = { a = "email", b = "emails[type=primary].email" }
[[field]]
name = "price"
type = "decimal"
path = { a = "price", b = "salePrices[0].value" }
unit = { b = 100 }
[[key]]
fields = ["email"]
"#,
        )
        .unwrap();
        let payload = json!({"email": "a@x", "price": 12.5});
        let n = native(&spec, SideIx::B, payload.as_object().unwrap());
        assert_eq!(
            n,
            json!({"emails": [{"type": "primary", "email": "a@x"}], "salePrices": [{"value": 1250}]})
        );
        let mut whole =
            json!({"id": 7, "name": "X", "emails": [{"type": "primary", "email": "old"}]});
        merge(&mut whole, &json!({"name": "Y"}));
        assert_eq!(whole["name"], "Y");
        assert_eq!(whole["id"], 7);
    }
}
