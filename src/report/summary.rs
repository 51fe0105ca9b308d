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
        write_parquet(&file, plan).map_err(std::io::Error::other)?;
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

/// Rows per row group of the plan file.
const ROW_GROUP: usize = 128 * 1024;

/// Write `df` as Parquet (zstd level 1: a plan's file comes out within half a
/// percent of the default level's size, in less time; with statistics), its
/// row groups encoded and compressed in parallel. Polars' own writer works
/// one row group at a time, its columns in parallel; the plan's `changes`
/// column, a list of structs, then holds one core for most of the write.
fn write_parquet(file: &fs::File, df: &DataFrame) -> PolarsResult<()> {
    use polars_parquet::read::ParquetError;
    use polars_parquet::write::{
        CompressedPage, CompressionOptions, Compressor, StatisticsOptions, Version, WriteOptions,
        array_to_columns, to_parquet_schema,
    };
    use rayon::prelude::*;

    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        version: Version::V1,
        compression: CompressionOptions::Zstd(Some(polars_parquet::write::ZstdLevel::try_new(1)?)),
        data_page_size: None,
    };
    let arrow_schema = df.schema().to_arrow(CompatLevel::newest());
    let parquet_schema = to_parquet_schema(&arrow_schema)?;
    let encodings = polars::io::parquet::write::get_encodings(&arrow_schema);
    let mut writer = ParquetWriter::new(file).batched(df.schema())?;
    let groups: Vec<(usize, usize)> = (0..df.height())
        .step_by(ROW_GROUP)
        .map(|at| (at, ROW_GROUP.min(df.height() - at)))
        .collect();
    let jobs: Vec<(usize, usize)> = (0..groups.len())
        .flat_map(|g| (0..df.width()).map(move |c| (g, c)))
        .collect();
    // One job per row group and column: its leaves' compressed pages.
    let encoded: Vec<Vec<Vec<CompressedPage>>> = polars_core::runtime::RAYON.install(|| {
        jobs.par_iter()
            .map(|&(g, c)| {
                let (at, len) = groups[g];
                let column = df.columns()[c].slice(at as i64, len);
                let array = column
                    .as_materialized_series()
                    .rechunk()
                    .to_arrow(0, CompatLevel::newest());
                let mut leaves = Vec::new();
                for pages in array_to_columns(
                    array,
                    parquet_schema.fields()[c].clone(),
                    options,
                    &encodings[c],
                )? {
                    let pages = pages
                        .map(|p| p.map_err(|e| ParquetError::FeatureNotSupported(e.to_string())));
                    leaves.push(
                        Compressor::new_from_vec(pages, options.compression, vec![])
                            .collect::<Result<Vec<_>, _>>()?,
                    );
                }
                PolarsResult::Ok(leaves)
            })
            .collect::<PolarsResult<_>>()
    })?;
    let mut encoded = encoded.into_iter();
    for &(_, len) in &groups {
        let mut leaves = Vec::new();
        for _ in 0..df.width() {
            leaves.extend(encoded.next().expect("one job per row group and column"));
        }
        writer.write_row_group(len as u64, &leaves)?;
    }
    writer.finish()?;
    Ok(())
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
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out")
    ));
    {
        let file = fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut &file, bytes)?;
        file.sync_all()?;
    }
    fs::rename(tmp, path)
}
