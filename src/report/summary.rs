//! The plan on disk: `plan.parquet` (every row), `summary.json` (counts and
//! inputs, for machines) and `summary.md` (for a chat message or a pull
//! request). Field by field in `docs/plan.md`.

use std::fs;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::CLASSES;

/// Rows per class, every class present.
pub type Counts = serde_json::Map<String, serde_json::Value>;

/// One snapshot the plan was computed from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SummaryInput {
    pub side: String,
    pub path: String,
    pub sha256: String,
    pub rows: u64,
    pub source: String,
    pub pulled_at: String,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub spec: String,
    pub spec_hash: String,
    pub entity: String,
    pub run_id: String,
    pub created_at: String,
    pub sides: Vec<String>,
    pub direction: String,
    /// Every class, zero included, in report order.
    pub counts: Counts,
    /// Fields changed by updates, most changed first.
    pub top_fields: Vec<(String, u64)>,
    pub inputs: Vec<SummaryInput>,
    /// File names inside the plan folder.
    pub plan: String,
    /// The spec file the plan was made from, for `recon apply`.
    #[serde(default)]
    pub spec_file: String,
}

impl Summary {
    pub fn count(&self, class: &str) -> u64 {
        self.counts.get(class).and_then(|v| v.as_u64()).unwrap_or(0)
    }

    /// Rows that would write something: creates, updates, conflicts, invalid.
    pub fn pending(&self) -> u64 {
        ["create", "update", "conflict", "invalid"]
            .iter()
            .map(|c| self.count(c))
            .sum()
    }

    /// Counts and top fields computed from a plan frame.
    pub fn tally(plan: &DataFrame) -> PolarsResult<(Counts, Vec<(String, u64)>)> {
        // One walk over the classes, and over the updates' change lists in
        // place: how many rows per class, how often each field is updated.
        let classes = plan.column("class")?.str()?.rechunk();
        let changes = plan.column("changes")?.list()?.rechunk();
        let changes = super::changes::ChangeLists::new(&changes)?;
        let mut by: PlHashMap<&str, u64> = PlHashMap::new();
        let mut fields: PlHashMap<&str, u64> = PlHashMap::new();
        for (row, class) in classes.iter().enumerate() {
            let class = class.unwrap_or_default();
            *by.entry(class).or_default() += 1;
            if class == "update" {
                for (field, _, _) in changes.row(row) {
                    *fields.entry(field.unwrap_or_default()).or_default() += 1;
                }
            }
        }
        let mut map = serde_json::Map::new();
        for c in CLASSES {
            map.insert(c.into(), by.get(c).copied().unwrap_or(0).into());
        }
        let mut top: Vec<(String, u64)> = fields
            .into_iter()
            .map(|(f, n)| (f.to_string(), n))
            .collect();
        top.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
        Ok((map, top))
    }

    /// The Markdown summary, for a chat message or a pull request.
    pub fn markdown(&self, report: &str) -> String {
        let mut out = format!(
            "## recon plan `{}` ({})\n\n{} between {}, direction {}.\n\n| class | rows |\n|---|--:|\n",
            self.spec,
            self.run_id,
            self.entity,
            self.sides.join(" and "),
            self.direction
        );
        for c in CLASSES {
            out.push_str(&format!("| {c} | {} |\n", self.count(c)));
        }
        if !self.top_fields.is_empty() {
            out.push_str("\nMost changed fields: ");
            out.push_str(
                &self
                    .top_fields
                    .iter()
                    .take(5)
                    .map(|(f, n)| format!("`{f}` ({n})"))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            out.push('\n');
        }
        out.push_str("\nInputs:\n");
        for i in &self.inputs {
            out.push_str(&format!(
                "- {}: {} rows from `{}`, pulled {}\n",
                i.side, i.rows, i.source, i.pulled_at
            ));
        }
        out.push_str(&format!("\nFull report: `{report}`\n"));
        out
    }
}

/// Write `plan.parquet`, `summary.json` and `summary.md` into `dir`.
pub fn write_plan(dir: &Path, plan: &DataFrame, summary: &Summary) -> std::io::Result<PathBuf> {
    fs::create_dir_all(dir)?;
    let path = dir.join(&summary.plan);
    let tmp = dir.join(".plan.parquet.tmp");
    {
        let file = fs::File::create(&tmp)?;
        super::parquet::write_parquet(&file, plan).map_err(std::io::Error::other)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    write_atomic(
        &dir.join("summary.json"),
        serde_json::to_string_pretty(summary)?.as_bytes(),
    )?;
    write_atomic(
        &dir.join("summary.md"),
        summary
            .markdown(&dir.join("report.html").display().to_string())
            .as_bytes(),
    )?;
    Ok(path)
}

/// Read a plan folder's summary and plan rows.
pub fn read_plan(dir: &Path) -> Result<(Summary, DataFrame), String> {
    let sp = dir.join("summary.json");
    let text = fs::read_to_string(&sp).map_err(|e| format!("cannot read {}: {e}", sp.display()))?;
    let summary: Summary = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a recon summary: {e}", sp.display()))?;
    let pp = dir.join(&summary.plan);
    let file = fs::File::open(&pp).map_err(|e| format!("cannot read {}: {e}", pp.display()))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| format!("cannot read {}: {e}", pp.display()))?;
    Ok((summary, df))
}

/// Write a file through a temporary name and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_parts(path, &[bytes])
}

/// [`write_atomic`] for a file made of `parts`, in order.
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    {
        let file = fs::File::create(&tmp)?;
        for bytes in parts {
            std::io::Write::write_all(&mut &file, bytes)?;
        }
        file.sync_all()?;
    }
    fs::rename(tmp, path)
}
