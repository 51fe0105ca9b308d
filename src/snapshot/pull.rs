//! Pulling one side: read the source, map each record to canonical cells,
//! write the snapshot, and put every unreadable record in the rejects file.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::convert::{Cell, to_cell};
use super::write::{SnapshotWriter, arrow_schema};
use super::{latest, merge, meta};
use crate::connect::{self, Cursor, Item, Locator, SourceError};
use crate::spec::{Field, FieldPath, SideIx, Spec, path::scalar_text};
use crate::ui::Progress;

/// What a pull of one side produced.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub side: String,
    pub path: PathBuf,
    pub rows: u64,
    pub rejects: u64,
    pub rejects_path: Option<PathBuf>,
    /// `full` or `incremental`.
    pub mode: &'static str,
    /// Records read from the source (the delta, for an incremental pull).
    pub read: u64,
    /// Records in the last snapshot that are gone now.
    pub deleted_upstream: u64,
    /// Where the next incremental pull starts.
    pub cursor: Option<Cursor>,
}

/// How to pull one side.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// File name stem of the new snapshot (a UTC timestamp).
    pub stamp: String,
    pub pulled_at: String,
    /// Read only changes since this cursor, when the side can.
    pub since: Option<Cursor>,
    /// Where rotated OAuth2 refresh tokens are kept.
    pub token_store: Option<PathBuf>,
}

struct Reject {
    at: Locator,
    field: String,
    reason: String,
    raw: String,
}

/// Pull `side` of `spec` into `snapshots/<spec>/<side>/<stamp>.parquet` under `home`.
pub fn pull_side(
    spec: &Spec,
    side: SideIx,
    home: &Path,
    opts: &PullOptions,
    progress: &Progress,
) -> Result<PullOutcome, SourceError> {
    let s = spec.side(side);
    let fields: Vec<&Field> = spec
        .fields
        .iter()
        .filter(|f| f.path(side).is_some())
        .collect();
    let schema = arrow_schema(&fields);
    let dir = home.join("snapshots").join(&spec.name).join(&s.name);
    let path = dir.join(format!("{}.parquet", opts.stamp));
    let previous = latest(home, &spec.name, &s.name).ok().flatten();
    // Changes merge only into a snapshot with the same columns.
    let same_shape = previous
        .as_ref()
        .and_then(|p| merge::schema(p).ok())
        .is_some_and(|prev| prev.fields() == schema.fields());
    let since = if same_shape { opts.since } else { None };
    let metadata = |mode: &str| {
        vec![
            (meta::SPEC.to_string(), spec.name.clone()),
            (meta::SPEC_HASH.to_string(), spec.hash.clone()),
            (meta::SIDE.to_string(), s.name.clone()),
            (meta::SOURCE.to_string(), s.connection.describe()),
            (meta::MODE.to_string(), mode.to_string()),
            (meta::PULLED_AT.to_string(), opts.pulled_at.clone()),
        ]
    };
    let stop = |e: std::io::Error| {
        SourceError::Stopped(format!("cannot write snapshot {}: {e}", path.display()))
    };
    // An incremental read lands in a hidden delta first, then merges.
    let delta_path = dir.join(format!(".{}.delta.parquet", opts.stamp));
    let first_path = if since.is_some() { &delta_path } else { &path };
    let mut writer =
        SnapshotWriter::create(first_path, schema.clone(), metadata("full")).map_err(stop)?;
    let mut rejects: Vec<Reject> = Vec::new();
    // The ids seen so far. In a file a second record with the same id is an
    // error naming where the first one was; an API may page a record twice
    // when it changes during the read, and the first copy is kept.
    let repeats_are_errors = matches!(s.connection, crate::spec::Connection::File(_));
    let mut seen = Seen::new(repeats_are_errors);
    let mut repeated = 0u64;
    let mut bar = progress.records(&format!("pull {}", s.name));

    let reads: Vec<FieldPath> = fields
        .iter()
        .filter_map(|f| f.path(side).cloned())
        .collect();
    let pulled = connect::read_side(s, since, opts.token_store.clone(), &reads, &mut |item| {
        bar.inc(1);
        let (at, value) = match item {
            Item::Reject { at, reason, raw } => {
                rejects.push(Reject {
                    at,
                    field: String::new(),
                    reason,
                    raw,
                });
                return Ok(());
            }
            Item::Record { at, value } => (at, value),
        };
        let id =
            s.id.get(&value)
                .and_then(scalar_text)
                .map(|t| t.trim().to_string());
        let Some(id) = id.filter(|t| !t.is_empty()) else {
            rejects.push(Reject {
                at,
                field: s.id.to_string(),
                reason: format!("missing id (`{}`)", s.id),
                raw: raw_text(&value),
            });
            return Ok(());
        };
        let hash = id_hash(&id);
        match seen.first(hash) {
            None => {}
            Some(Some(first)) => {
                rejects.push(Reject {
                    at,
                    field: s.id.to_string(),
                    reason: format!("id `{id}` was already used at {first}"),
                    raw: raw_text(&value),
                });
                return Ok(());
            }
            Some(None) => {
                repeated += 1;
                return Ok(());
            }
        }
        let mut cells: Vec<Cell> = Vec::with_capacity(fields.len());
        let mut problems = Vec::new();
        for f in &fields {
            let path = f.path(side).expect("fields filtered by path");
            match to_cell(path.get(&value), f, s, f.unit[side.index()]) {
                Ok(c) => cells.push(c),
                Err(e) => problems.push((f.name.clone(), format!("{} (`{path}`) {e}", f.name))),
            }
        }
        if !problems.is_empty() {
            rejects.push(Reject {
                at,
                field: problems
                    .iter()
                    .map(|p| p.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                reason: problems
                    .into_iter()
                    .map(|p| p.1)
                    .collect::<Vec<_>>()
                    .join("; "),
                raw: raw_text(&value),
            });
            return Ok(());
        }
        seen.insert(hash, at);
        writer.push(&id, cells).map_err(|e| e.to_string())
    })?;
    bar.finish();
    if repeated > 0 {
        tracing::info!(side = %s.name, repeated, "records seen twice while paging were kept once");
    }

    let read = writer.rows();
    let rejects_path = dir.join(format!("{}.rejects.csv", opts.stamp));
    let rejects_path = if rejects.is_empty() {
        None
    } else {
        write_rejects(&rejects_path, &rejects).map_err(stop)?;
        Some(rejects_path)
    };
    let extra = |rows: u64, deleted: u64| {
        vec![
            (meta::ROWS.to_string(), rows.to_string()),
            (meta::REJECTS.to_string(), rejects.len().to_string()),
            (meta::CHANGED.to_string(), read.to_string()),
            (meta::DELETED_UPSTREAM.to_string(), deleted.to_string()),
            (
                meta::CURSOR.to_string(),
                pulled.cursor.map(|c| c.to_text()).unwrap_or_default(),
            ),
        ]
    };
    let (path, rows, deleted_upstream, mode) = match (pulled.incremental, &previous) {
        (true, Some(prev)) => {
            let delta = writer.finish(vec![]).map_err(stop)?;
            let mut merged =
                SnapshotWriter::create(&path, schema, metadata("incremental")).map_err(stop)?;
            let result = merge::merge(prev, &delta, &pulled.deleted, &mut merged);
            let _ = std::fs::remove_file(super::write::hash_path(&delta));
            let _ = std::fs::remove_file(&delta);
            result.map_err(stop)?;
            let rows = merged.rows();
            let deleted = pulled.deleted.len() as u64;
            (
                merged.finish(extra(rows, deleted)).map_err(stop)?,
                rows,
                deleted,
                "incremental",
            )
        }
        _ => {
            let deleted = match &previous {
                Some(prev) => {
                    let before = merge::ids(prev).map_err(stop)?;
                    before
                        .iter()
                        .filter(|id| seen.first(id_hash(id)).is_none())
                        .count() as u64
                }
                None => 0,
            };
            let rows = writer.rows();
            (
                writer.finish(extra(rows, deleted)).map_err(stop)?,
                rows,
                deleted,
                "full",
            )
        }
    };
    Ok(PullOutcome {
        side: s.name.clone(),
        path,
        rows,
        rejects: rejects.len() as u64,
        rejects_path,
        mode,
        read,
        deleted_upstream,
        cursor: pulled.cursor,
    })
}

/// An id's 128-bit hash as two words: the index holds hashes, a third of the
/// room of the text (two of ten million ids collide with odds of about 1 in
/// 10^25), and two words pack without the padding a `u128` key brings.
fn id_hash(id: &str) -> [u64; 2] {
    let h = xxhash_rust::xxh3::xxh3_128(id.as_bytes());
    [h as u64, (h >> 64) as u64]
}

/// The index of ids seen during a pull: the one part of a pull that grows
/// with the record count. A file remembers where each id was first seen, to
/// name it in the reject; an API pull only whether (17 bytes a slot).
enum Seen {
    Located(HashMap<[u64; 2], Locator>),
    Ids(HashSet<[u64; 2]>),
}

impl Seen {
    fn new(located: bool) -> Self {
        if located {
            Seen::Located(HashMap::new())
        } else {
            Seen::Ids(HashSet::new())
        }
    }

    /// `None` when `hash` is new, else where it was first seen, if known.
    fn first(&self, hash: [u64; 2]) -> Option<Option<Locator>> {
        match self {
            Seen::Located(m) => m.get(&hash).map(|at| Some(*at)),
            Seen::Ids(s) => s.contains(&hash).then_some(None),
        }
    }

    fn insert(&mut self, hash: [u64; 2], at: Locator) {
        match self {
            Seen::Located(m) => {
                m.insert(hash, at);
            }
            Seen::Ids(s) => {
                s.insert(hash);
            }
        }
    }
}

fn raw_text(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > 2000 {
        let mut cut = 2000;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn write_rejects(path: &Path, rejects: &[Reject]) -> std::io::Result<()> {
    let tmp = path.with_extension("csv.tmp");
    {
        let mut w = csv::Writer::from_path(&tmp)?;
        w.write_record(["where", "field", "reason", "record"])?;
        for r in rejects {
            let at = r.at.to_string();
            w.write_record([
                at.as_str(),
                &crate::report::csv_safe(&r.field),
                &crate::report::csv_safe(&r.reason),
                &crate::report::csv_safe(&r.raw),
            ])?;
        }
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_index_names_a_file_repeat_and_counts_an_api_repeat() {
        let mut file = Seen::new(true);
        assert_eq!(file.first(id_hash("7")), None);
        file.insert(id_hash("7"), Locator::Line(2));
        assert_eq!(file.first(id_hash("7")), Some(Some(Locator::Line(2))));
        assert_eq!(file.first(id_hash("8")), None);

        let mut api = Seen::new(false);
        api.insert(id_hash("7"), Locator::Record(1));
        assert_eq!(api.first(id_hash("7")), Some(None));
        assert_eq!(api.first(id_hash(" 7")), None);
    }
}
