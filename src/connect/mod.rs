//! Connectors: where records come from.
//!
//! A connector turns one side of a spec into a stream of native records
//! (JSON-like values, whatever the system's format) and of rejects (records
//! that could not even be read). Mapping native records to canonical fields
//! is not the connector's job: the snapshot builder does it for every kind.

pub mod file;

use std::fmt;

use serde_json::Value;

use crate::spec::{Connection, Side};

/// Where a record sits in its source, for messages and rejects files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locator {
    /// A line of a text file (1-based, the line the record starts on).
    Line(u64),
    /// The n-th record of a document (1-based).
    Record(u64),
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::Line(n) => write!(f, "line {n}"),
            Locator::Record(n) => write!(f, "record {n}"),
        }
    }
}

/// One item read from a source.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Record {
        at: Locator,
        value: Value,
    },
    /// Unreadable: wrong field count, bad encoding, malformed line.
    Reject {
        at: Locator,
        reason: String,
        raw: String,
    },
}

/// A source that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{0}")]
    Stopped(String),
}

/// Read every record of a side, handing each to `each`; `each` may stop the
/// read by returning an error (the snapshot writer failing, say).
pub fn read_side(
    side: &Side,
    each: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), SourceError> {
    match &side.connection {
        Connection::File(f) => file::read(f, each),
    }
}
