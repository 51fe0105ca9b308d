//! File sides: CSV, JSON (array or document), NDJSON and Parquet.
//!
//! Every reader streams: memory stays bounded by one record (or one Parquet
//! row group), except a JSON document whose records sit below the top level,
//! which is read whole.

mod csv;
mod json;
mod parquet;

use std::fs::File;
use std::io::BufReader;

use super::{Item, SourceError};
use crate::spec::{FileFormat, FileSource};

pub fn read(
    src: &FileSource,
    each: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), SourceError> {
    let path = src.path.display().to_string();
    let unreadable = |reason: String| SourceError::Unreadable {
        path: path.clone(),
        reason,
    };
    let file = File::open(&src.path).map_err(|e| unreadable(e.to_string()))?;
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(unreadable("it is a folder, not a file".into()));
    }
    let reader = BufReader::with_capacity(1 << 16, file);
    match src.format {
        FileFormat::Csv => csv::read(reader, src, each),
        FileFormat::Json => json::read_document(reader, src, each),
        FileFormat::Ndjson => json::read_lines(reader, each),
        FileFormat::Parquet => parquet::read(
            File::open(&src.path).map_err(|e| unreadable(e.to_string()))?,
            each,
        ),
    }
    .map_err(|e| match e {
        ReadError::Format(reason) => unreadable(reason),
        ReadError::Stopped(s) => SourceError::Stopped(s),
    })
}

/// Why a reader stopped.
enum ReadError {
    /// The file as a whole is not what its format says.
    Format(String),
    /// The consumer stopped the read.
    Stopped(String),
}

const BOM: &[u8] = b"\xEF\xBB\xBF";
