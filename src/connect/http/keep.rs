//! Parse only what a pull reads. A MoySklad counterparty is thirty members
//! deep in metadata links; a spec reads five of them. Building every member
//! as a JSON value was most of a pull's time, so list pages are parsed with
//! a rule that keeps the document whole except for its records, and of each
//! record only the members the spec's paths reach. The rest is skipped by
//! the parser without being built.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::spec::path::{FieldPath, Step};

/// What to keep of a JSON value.
#[derive(Debug, Clone, PartialEq)]
pub enum Keep {
    /// All of it.
    All,
    /// Of an object, only these members (each by its own rule).
    Only(HashMap<String, Keep>),
    /// Of an object, every member; these by their own rule.
    Except(HashMap<String, Keep>),
    /// Of an array, each element by this rule.
    Each(Box<Keep>),
}

impl Keep {
    /// What a record needs so that each of `paths` reads as in the full
    /// record. A path through an array keeps that array whole.
    pub fn record<'a>(paths: impl IntoIterator<Item = &'a FieldPath>) -> Keep {
        let mut root = Keep::Only(HashMap::new());
        for p in paths {
            root.add(&p.steps);
        }
        root
    }

    fn add(&mut self, steps: &[Step]) {
        let Keep::Only(members) = self else {
            return;
        };
        match steps {
            [] | [Step::Index(_) | Step::Where { .. }, ..] => *self = Keep::All,
            [Step::Key(k)] => {
                members.insert(k.clone(), Keep::All);
            }
            [Step::Key(k), rest @ ..] => members
                .entry(k.clone())
                .or_insert_with(|| Keep::Only(HashMap::new()))
                .add(rest),
        }
    }

    /// A list response: all of it, with the records array at `records`
    /// kept by `record`. `None` when the path is not plain member names.
    pub fn document(records: &FieldPath, record: Keep) -> Option<Keep> {
        let mut keep = Keep::Each(Box::new(record));
        for step in records.steps.iter().rev() {
            match step {
                Step::Key(k) => keep = Keep::Except(HashMap::from([(k.clone(), keep)])),
                _ => return None,
            }
        }
        Some(keep)
    }

    /// Parse `bytes` as one JSON document under this rule.
    pub fn parse(&self, bytes: &[u8]) -> serde_json::Result<Value> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let v = self.deserialize(&mut de)?;
        de.end()?;
        Ok(v)
    }
}

impl<'de> DeserializeSeed<'de> for &Keep {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self {
            Keep::All => serde::Deserialize::deserialize(d),
            _ => d.deserialize_any(Pruned(self)),
        }
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

struct Pruned<'k>(&'k Keep);

impl<'de> Visitor<'de> for Pruned<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.0.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let item = match self.0 {
            Keep::Each(k) => k.as_ref(),
            _ => &Keep::All,
        };
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(v) = seq.next_element_seed(item)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(Key(k)) = map.next_key::<Key>()? {
            let rule = match self.0 {
                Keep::Only(members) => members.get(k.as_ref()),
                Keep::Except(members) => Some(members.get(k.as_ref()).unwrap_or(&Keep::All)),
                _ => Some(&Keep::All),
            };
            match rule {
                Some(rule) => {
                    let v = map.next_value_seed(rule)?;
                    out.insert(k.into_owned(), v);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(p: &str) -> FieldPath {
        FieldPath::parse(p).expect("a path")
    }

    #[test]
    fn keeps_what_the_paths_read_and_the_rest_of_the_document() {
        let doc = json!({
            "meta": {"size": 2, "nextHref": "x"},
            "rows": [
                {"id": "1", "meta": {"href": "h"}, "email": "a@b", "phones": [{"type": "primary", "n": "1"}],
                 "address": {"city": "Roma", "zip": "00100"}, "note": "a \"quoted\" text"},
                {"id": "2", "email": null, "address": "not an object"}
            ]
        });
        let paths = [
            path("id"),
            path("email"),
            path("phones[type=primary].n"),
            path("address.city"),
            path("missing.deep"),
        ];
        let keep = Keep::document(&path("rows"), Keep::record(&paths)).expect("member names");
        let got = keep.parse(doc.to_string().as_bytes()).expect("parses");
        assert_eq!(
            got["meta"], doc["meta"],
            "the document outside the records is whole"
        );
        assert_eq!(
            got["rows"][0],
            json!({"id": "1", "email": "a@b", "phones": [{"type": "primary", "n": "1"}], "address": {"city": "Roma"}})
        );
        assert_eq!(
            got["rows"][1],
            json!({"id": "2", "email": null, "address": "not an object"})
        );
        for p in &paths {
            for i in 0..2 {
                assert_eq!(
                    p.get(&got["rows"][i]),
                    p.get(&doc["rows"][i]),
                    "{p} of row {i}"
                );
            }
        }
    }

    #[test]
    fn malformed_input_is_an_error() {
        let keep = Keep::document(&path("rows"), Keep::record(&[path("id")])).expect("names");
        assert!(
            keep.parse(br#"{"rows": [{"id": "1", "x": [1, 2}]}"#)
                .is_err()
        );
        assert!(keep.parse(br#"{"rows": []} trailing"#).is_err());
    }
}
