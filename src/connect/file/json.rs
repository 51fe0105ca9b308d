//! JSON: a top-level array (streamed record by record), a document with the
//! records at a path (read whole), or NDJSON (one record per line).

use std::fmt;
use std::io::BufRead;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde_json::Value;

use super::{BOM, ReadError};
use crate::connect::{Item, Locator};
use crate::spec::FileSource;

pub(super) fn read_document(
    mut input: impl BufRead,
    src: &FileSource,
    each: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), ReadError> {
    let head = input
        .fill_buf()
        .map_err(|e| ReadError::Format(e.to_string()))?;
    if head.starts_with(BOM) {
        input.consume(BOM.len());
    }
    let first = loop {
        let buf = input
            .fill_buf()
            .map_err(|e| ReadError::Format(e.to_string()))?;
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(p) => {
                input.consume(p);
                break input
                    .fill_buf()
                    .map_err(|e| ReadError::Format(e.to_string()))?
                    .first()
                    .copied();
            }
            None if buf.is_empty() => break None,
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    };
    match (first, &src.records) {
        (None, _) => Err(ReadError::Format("the file is empty".into())),
        (Some(b'['), None) => {
            let mut de = serde_json::Deserializer::from_reader(input);
            let mut stopped = None;
            let seed = ArraySeed {
                each,
                stopped: &mut stopped,
            };
            let result = seed.deserialize(&mut de).and_then(|_| de.end());
            if let Some(s) = stopped {
                return Err(ReadError::Stopped(s));
            }
            result.map_err(|e| ReadError::Format(format!("malformed JSON: {e}")))
        }
        (Some(_), records) => {
            let doc: Value = serde_json::from_reader(input)
                .map_err(|e| ReadError::Format(format!("malformed JSON: {e}")))?;
            let rows = match records {
                Some(path) => path.get(&doc).ok_or_else(|| {
                    ReadError::Format(format!("no `{path}` in the document (set by `records`)"))
                })?,
                None => &doc,
            };
            let Value::Array(rows) = rows else {
                return Err(ReadError::Format(match records {
                    Some(p) => format!("`{p}` is not an array of records"),
                    None => "the document is not an array; set `records` to the path of the array (e.g. records = \"data\")".into(),
                }));
            };
            for (n, value) in rows.iter().enumerate() {
                each(Item::Record {
                    at: Locator::Record(n as u64 + 1),
                    value: value.clone(),
                })
                .map_err(ReadError::Stopped)?;
            }
            Ok(())
        }
    }
}

pub(super) fn read_lines(
    input: impl BufRead,
    each: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), ReadError> {
    for (n, line) in input.split(b'\n').enumerate() {
        let line = line.map_err(|e| ReadError::Format(e.to_string()))?;
        let at = Locator::Line(n as u64 + 1);
        let mut bytes: &[u8] = &line;
        if n == 0 && bytes.starts_with(BOM) {
            bytes = &bytes[BOM.len()..];
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let item = match serde_json::from_slice::<Value>(bytes) {
            Ok(value) => Item::Record { at, value },
            Err(e) => Item::Reject {
                at,
                reason: format!("malformed JSON: {e}"),
                raw: String::from_utf8_lossy(bytes).into_owned(),
            },
        };
        each(item).map_err(ReadError::Stopped)?;
    }
    Ok(())
}

/// Streams the elements of a top-level array to the callback, one at a time.
struct ArraySeed<'a> {
    each: &'a mut dyn FnMut(Item) -> Result<(), String>,
    stopped: &'a mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0u64;
        while let Some(value) = seq.next_element::<Value>()? {
            n += 1;
            if let Err(e) = (self.each)(Item::Record {
                at: Locator::Record(n),
                value,
            }) {
                *self.stopped = Some(e.clone());
                return Err(serde::de::Error::custom(e));
            }
        }
        Ok(())
    }
}
