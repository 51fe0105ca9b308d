//! CSV: any delimiter and quote, header or not, UTF-8 with or without BOM,
//! CRLF or LF, quoted fields spanning lines.

use std::io::BufRead;

use serde_json::{Map, Value};

use super::{BOM, ReadError};
use crate::connect::{Item, Locator};
use crate::spec::FileSource;

pub(super) fn read(
    mut input: impl BufRead,
    src: &FileSource,
    each: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), ReadError> {
    // Drop a UTF-8 byte order mark so it does not stick to the first header.
    let head = input
        .fill_buf()
        .map_err(|e| ReadError::Format(e.to_string()))?;
    if head.starts_with(BOM) {
        input.consume(BOM.len());
    }
    let mut rdr = ::csv::ReaderBuilder::new()
        .delimiter(src.delimiter)
        .quote(src.quote)
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut headers: Option<Vec<String>> = None;
    let mut record = ::csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // An I/O error ends the read; a parse error is one bad row.
                if let ::csv::ErrorKind::Io(io) = e.kind() {
                    return Err(ReadError::Format(io.to_string()));
                }
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                each(Item::Reject {
                    at: Locator::Line(line),
                    reason: format!("malformed CSV: {e}"),
                    raw: String::new(),
                })
                .map_err(ReadError::Stopped)?;
                continue;
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let at = Locator::Line(line);
        if headers.is_none() && src.header {
            let mut names = Vec::with_capacity(record.len());
            for (n, field) in record.iter().enumerate() {
                let name = std::str::from_utf8(field).map_err(|_| {
                    ReadError::Format(format!("header column {} is not UTF-8", n + 1))
                })?;
                names.push(name.trim().to_string());
            }
            headers = Some(names);
            continue;
        }
        let names =
            headers.get_or_insert_with(|| (1..=record.len()).map(|n| n.to_string()).collect());
        if record.len() == 1 && record.get(0) == Some(b"") {
            continue; // a blank line
        }
        if record.len() != names.len() {
            each(Item::Reject {
                at,
                reason: format!(
                    "has {} fields, the header has {}",
                    record.len(),
                    names.len()
                ),
                raw: String::from_utf8_lossy(&join(&record, src.delimiter)).into_owned(),
            })
            .map_err(ReadError::Stopped)?;
            continue;
        }
        let mut obj = Map::with_capacity(names.len());
        let mut bad = None;
        for (n, (name, field)) in names.iter().zip(record.iter()).enumerate() {
            match std::str::from_utf8(field) {
                Ok(s) => {
                    obj.insert(name.clone(), Value::String(s.to_string()));
                }
                Err(_) => {
                    bad = Some(format!("column {} (`{name}`) is not valid UTF-8", n + 1));
                    break;
                }
            }
        }
        let item = match bad {
            Some(reason) => Item::Reject {
                at,
                reason,
                raw: String::from_utf8_lossy(&join(&record, src.delimiter)).into_owned(),
            },
            None => Item::Record {
                at,
                value: Value::Object(obj),
            },
        };
        each(item).map_err(ReadError::Stopped)?;
    }
    Ok(())
}

fn join(record: &::csv::ByteRecord, delimiter: u8) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, f) in record.iter().enumerate() {
        if n > 0 {
            out.push(delimiter);
        }
        out.extend_from_slice(f);
    }
    out
}
