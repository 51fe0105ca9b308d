//! Connectors: where records come from.
//!
//! A connector turns one side of a spec into a stream of native records
//! (JSON-like values, whatever the system's format) and of rejects (records
//! that could not even be read). Mapping native records to canonical fields
//! is not the connector's job: the snapshot builder does it for every kind.

pub mod file;
pub mod http;

use std::fmt;

use serde_json::Value;

use crate::spec::{Connection, FieldPath, Side};

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

/// Where the last pull stopped: the next one asks for changes since then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// Records changed at or after this time.
    Time(chrono::DateTime<chrono::Utc>),
    /// Change-log entries after this id.
    Id(u64),
}

impl Cursor {
    /// Text stored in the ledger.
    pub fn to_text(self) -> String {
        match self {
            Cursor::Time(t) => format!("time:{}", t.to_rfc3339()),
            Cursor::Id(i) => format!("id:{i}"),
        }
    }

    pub fn parse(text: &str) -> Option<Cursor> {
        match text.split_once(':')? {
            ("time", t) => chrono::DateTime::parse_from_rfc3339(t)
                .ok()
                .map(|t| Cursor::Time(t.into())),
            ("id", i) => i.parse().ok().map(Cursor::Id),
            _ => None,
        }
    }
}

/// What a read produced besides records.
#[derive(Debug, Clone, Default)]
pub struct Pulled {
    /// Only changes were read: merge them into the last full state.
    pub incremental: bool,
    /// Where the next incremental read starts.
    pub cursor: Option<Cursor>,
    /// Native ids the source says were deleted.
    pub deleted: Vec<String>,
}

/// Read the records of a side, handing each to `each`; `each` may stop the
/// read by returning an error (the snapshot writer failing, say). With
/// `since`, a side that can read changes only does so.
///
/// `reads` are the paths the caller will read from each record (besides the
/// side's id): an API's records are parsed only as far as they reach.
pub fn read_side(
    side: &Side,
    since: Option<Cursor>,
    token_store: Option<std::path::PathBuf>,
    reads: &[FieldPath],
    each: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<Pulled, SourceError> {
    match &side.connection {
        Connection::File(f) => file::read(f, each).map(|_| Pulled::default()),
        Connection::Http(h) => read_http(h, side, since, token_store, reads, each),
    }
}

/// Check that a side can be read: the file opens and parses its first
/// record, or the API answers a one-record request with the credentials.
pub fn verify(side: &Side) -> Result<String, String> {
    match &side.connection {
        Connection::File(f) => {
            let mut first = None;
            let result = file::read(f, &mut |item| {
                first = Some(item);
                Err("enough".into())
            });
            match (result, first) {
                (Err(SourceError::Unreadable { reason, .. }), _) => Err(reason),
                (_, Some(_)) => Ok(format!("{} is readable", f.path.display())),
                (_, None) => Ok(format!("{} is readable (no records)", f.path.display())),
            }
        }
        Connection::Http(h) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let client = http::Client::new(h, None)?;
                client
                    .probe(h.entity())
                    .await
                    .map(|_| format!("{} answered, credentials accepted", h.describe()))
                    .map_err(|e| e.to_string())
            })
        }
    }
}

fn read_http(
    src: &http::HttpSource,
    side: &Side,
    since: Option<Cursor>,
    token_store: Option<std::path::PathBuf>,
    reads: &[FieldPath],
    each: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<Pulled, SourceError> {
    let unreadable = |reason: String| SourceError::Unreadable {
        path: src.describe(),
        reason,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| unreadable(e.to_string()))?;
    rt.block_on(async {
        let mut client = http::Client::new(src, token_store).map_err(unreadable)?;
        let entity = src.entity();
        let paths: Vec<FieldPath> = reads.iter().chain([&side.id]).cloned().collect();
        client.read_only(entity, &paths);
        let mut n = 0u64;
        let mut emit = |value: Value| {
            n += 1;
            each(Item::Record {
                at: Locator::Record(n),
                value,
            })
        };
        let fail = |e: http::PullError| match e {
            http::PullError::Http(h) => unreadable(h.to_string()),
            http::PullError::Stopped(s) => SourceError::Stopped(s),
        };
        let since = if src.incremental { since } else { None };
        match (since, &entity.changelog) {
            (Some(Cursor::Id(id)), Some(cl)) => {
                let (records, deleted, newest) =
                    client.changelog(cl, id, &side.id).await.map_err(fail)?;
                for r in records {
                    emit(r).map_err(SourceError::Stopped)?;
                }
                Ok(Pulled {
                    incremental: true,
                    cursor: Some(Cursor::Id(newest)),
                    deleted,
                })
            }
            (Some(Cursor::Time(t)), _) if entity.incremental.is_some() => {
                let from = t - chrono::Duration::from_std(src.overlap).unwrap_or_default();
                let walk = client
                    .walk(entity, Some(from), &mut emit)
                    .await
                    .map_err(fail)?;
                Ok(Pulled {
                    incremental: true,
                    cursor: Some(Cursor::Time(walk.newest.unwrap_or(t).max(t))),
                    deleted: vec![],
                })
            }
            _ => {
                let walk = client.walk(entity, None, &mut emit).await.map_err(fail)?;
                let cursor = match &entity.changelog {
                    // The change log's end is where the next pull starts.
                    Some(cl) => {
                        let start = match since {
                            Some(Cursor::Id(i)) => i,
                            _ => 0,
                        };
                        let (_, _, newest) =
                            client.changelog(cl, start, &side.id).await.map_err(fail)?;
                        Some(Cursor::Id(newest))
                    }
                    None => walk.newest.map(Cursor::Time),
                };
                Ok(Pulled {
                    incremental: false,
                    cursor,
                    deleted: vec![],
                })
            }
        }
    })
}
