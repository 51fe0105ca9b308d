//! Pulling one side: read the source, map each record to canonical cells,
//! write the snapshot, and put every unreadable record in the rejects file.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::convert::{Cell, to_cell};
use super::meta;
use super::write::{SnapshotWriter, arrow_schema};
use crate::connect::{self, Item, Locator, SourceError};
use crate::spec::{Field, SideIx, Spec, path::scalar_text};
use crate::ui::Progress;

/// What a pull of one side produced.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    pub side: String,
    pub path: PathBuf,
    pub rows: u64,
    pub rejects: u64,
    pub rejects_path: Option<PathBuf>,
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
    stamp: &str,
    pulled_at: &str,
    progress: &Progress,
) -> Result<PullOutcome, SourceError> {
    let s = spec.side(side);
    let fields: Vec<&Field> = spec
        .fields
        .iter()
        .filter(|f| f.path(side).is_some())
        .collect();
    let dir = home.join("snapshots").join(&spec.name).join(&s.name);
    let path = dir.join(format!("{stamp}.parquet"));
    let metadata = vec![
        (meta::SPEC.to_string(), spec.name.clone()),
        (meta::SPEC_HASH.to_string(), spec.hash.clone()),
        (meta::SIDE.to_string(), s.name.clone()),
        (meta::SOURCE.to_string(), s.connection.describe()),
        (meta::MODE.to_string(), "full".to_string()),
        (meta::PULLED_AT.to_string(), pulled_at.to_string()),
    ];
    let stop = |e: std::io::Error| {
        SourceError::Stopped(format!("cannot write snapshot {}: {e}", path.display()))
    };
    let mut writer =
        SnapshotWriter::create(&path, arrow_schema(&fields), metadata).map_err(stop)?;
    let mut rejects: Vec<Reject> = Vec::new();
    // Where each id was first seen: a second record with the same id is rejected.
    let mut seen: HashMap<String, Locator> = HashMap::new();
    let mut bar = progress.records(&format!("pull {}", s.name));

    connect::read_side(s, &mut |item| {
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
        if let Some(first) = seen.get(&id) {
            rejects.push(Reject {
                at,
                field: s.id.to_string(),
                reason: format!("id `{id}` was already used at {first}"),
                raw: raw_text(&value),
            });
            return Ok(());
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
        seen.insert(id.clone(), at);
        writer.push(&id, cells).map_err(|e| e.to_string())
    })?;
    bar.finish();

    let rows = writer.rows();
    let rejects_path = dir.join(format!("{stamp}.rejects.csv"));
    let rejects_path = if rejects.is_empty() {
        None
    } else {
        write_rejects(&rejects_path, &rejects).map_err(stop)?;
        Some(rejects_path)
    };
    let path = writer
        .finish(vec![
            (meta::ROWS.to_string(), rows.to_string()),
            (meta::REJECTS.to_string(), rejects.len().to_string()),
        ])
        .map_err(stop)?;
    Ok(PullOutcome {
        side: s.name.clone(),
        path,
        rows,
        rejects: rejects.len() as u64,
        rejects_path,
    })
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
