//! Building a snapshot with Arrow and writing it atomically as Parquet.
//!
//! Rows are buffered into Arrow builders and flushed every [`BATCH_ROWS`], so
//! memory stays bounded whatever the size of the source. The file is written
//! under a temporary name, synced, and renamed into place: a crash or an
//! error leaves either the whole snapshot or nothing. Its SHA-256 is taken
//! from the bytes as they are written and kept beside it
//! (`<snapshot>.sha256`, in `sha256sum`'s format), so that a plan names its
//! inputs' hashes without reading them twice.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field as ArrowField, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use sha2::{Digest, Sha256};

use super::ID_COLUMN;
use super::convert::Cell;
use crate::spec::{Field, FieldType};

const BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group.
const ROW_GROUP_ROWS: usize = 64 * 1024;

/// The Arrow schema of a side's snapshot: `_id` then the side's fields.
pub fn arrow_schema(fields: &[&Field]) -> SchemaRef {
    let mut cols = vec![ArrowField::new(ID_COLUMN, DataType::Utf8, false)];
    for f in fields {
        cols.push(ArrowField::new(&f.name, arrow_type(f.ty), true));
    }
    Arc::new(Schema::new(cols))
}

fn arrow_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::String => DataType::Utf8,
        FieldType::Integer => DataType::Int64,
        FieldType::Decimal { decimals } => DataType::Decimal128(38, decimals as i8),
        FieldType::Bool => DataType::Boolean,
        FieldType::Date => DataType::Date32,
        FieldType::Datetime => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    }
}

enum Column {
    Text(StringBuilder),
    Int(Int64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Datetime(TimestampMicrosecondBuilder),
}

impl Column {
    fn new(dt: &DataType) -> Self {
        match dt {
            DataType::Utf8 => Column::Text(StringBuilder::new()),
            DataType::Int64 => Column::Int(Int64Builder::new()),
            DataType::Decimal128(p, s) => Column::Decimal(Decimal128Builder::new(), *p, *s),
            DataType::Boolean => Column::Bool(BooleanBuilder::new()),
            DataType::Date32 => Column::Date(Date32Builder::new()),
            DataType::Timestamp(_, _) => Column::Datetime(TimestampMicrosecondBuilder::new()),
            other => unreachable!("snapshot columns are never {other}"),
        }
    }

    fn push(&mut self, cell: Cell) {
        match (self, cell) {
            (Column::Text(b), Cell::Text(s)) => b.append_value(s),
            (Column::Text(b), _) => b.append_null(),
            (Column::Int(b), Cell::Int(v)) => b.append_value(v),
            (Column::Int(b), _) => b.append_null(),
            (Column::Decimal(b, _, _), Cell::Decimal(v)) => b.append_value(v),
            (Column::Decimal(b, _, _), _) => b.append_null(),
            (Column::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Column::Bool(b), _) => b.append_null(),
            (Column::Date(b), Cell::Date(v)) => b.append_value(v),
            (Column::Date(b), _) => b.append_null(),
            (Column::Datetime(b), Cell::Datetime(v)) => b.append_value(v),
            (Column::Datetime(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Column::Text(b) => Arc::new(b.finish()),
            Column::Int(b) => Arc::new(b.finish()),
            Column::Decimal(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale fit Decimal128"),
            ),
            Column::Bool(b) => Arc::new(b.finish()),
            Column::Date(b) => Arc::new(b.finish()),
            Column::Datetime(b) => Arc::new(b.finish().with_timezone("UTC")),
        }
    }
}

/// A file that hashes what is written to it.
struct Hashed {
    file: File,
    hasher: Sha256,
}

impl Write for Hashed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Where a snapshot's hash is kept: `<snapshot>.sha256`.
pub fn hash_path(snapshot: &Path) -> PathBuf {
    let mut name = snapshot.file_name().unwrap_or_default().to_os_string();
    name.push(".sha256");
    snapshot.with_file_name(name)
}

/// Writes one snapshot; nothing is visible at `path` until [`finish`](Self::finish).
pub struct SnapshotWriter {
    schema: SchemaRef,
    id: StringBuilder,
    columns: Vec<Column>,
    buffered: usize,
    rows: u64,
    writer: Option<ArrowWriter<Hashed>>,
    tmp: PathBuf,
    path: PathBuf,
}

impl SnapshotWriter {
    /// Start writing `path` (through a temporary file beside it).
    pub fn create(
        path: &Path,
        schema: SchemaRef,
        metadata: Vec<(String, String)>,
    ) -> std::io::Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            ".{}.tmp",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("snapshot")
        ));
        let file = File::create(&tmp)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            // The writer holds a row group in memory until it is full; the
            // default of a million rows made memory grow with the pull.
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_key_value_metadata(Some(
                metadata
                    .into_iter()
                    .map(|(k, v)| KeyValue::new(k, v))
                    .collect(),
            ))
            .build();
        let file = Hashed {
            file,
            hasher: Sha256::new(),
        };
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(std::io::Error::other)?;
        let columns = schema
            .fields()
            .iter()
            .skip(1)
            .map(|f| Column::new(f.data_type()))
            .collect();
        Ok(Self {
            schema,
            id: StringBuilder::new(),
            columns,
            buffered: 0,
            rows: 0,
            writer: Some(writer),
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Append one row: its id and one cell per field, in schema order.
    pub fn push(&mut self, id: &str, cells: Vec<Cell>) -> std::io::Result<()> {
        self.id.append_value(id);
        for (col, cell) in self.columns.iter_mut().zip(cells) {
            col.push(cell);
        }
        self.buffered += 1;
        self.rows += 1;
        if self.buffered >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Append a whole batch with this snapshot's schema (merging snapshots).
    pub fn push_batch(&mut self, batch: &RecordBatch) -> std::io::Result<()> {
        self.flush()?;
        let batch = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())
            .map_err(std::io::Error::other)?;
        self.rows += batch.num_rows() as u64;
        self.writer
            .as_mut()
            .expect("writer lives until finish")
            .write(&batch)
            .map_err(std::io::Error::other)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buffered == 0 {
            return Ok(());
        }
        let mut arrays: Vec<ArrayRef> = vec![Arc::new(self.id.finish())];
        arrays.extend(self.columns.iter_mut().map(Column::finish));
        let batch =
            RecordBatch::try_new(self.schema.clone(), arrays).map_err(std::io::Error::other)?;
        self.writer
            .as_mut()
            .expect("writer lives until finish")
            .write(&batch)
            .map_err(std::io::Error::other)?;
        self.buffered = 0;
        Ok(())
    }

    /// Write the footer with `extra` metadata, sync, and move into place.
    pub fn finish(mut self, extra: Vec<(String, String)>) -> std::io::Result<PathBuf> {
        self.flush()?;
        let mut writer = self.writer.take().expect("writer lives until finish");
        for (k, v) in extra {
            writer.append_key_value_metadata(KeyValue::new(k, v));
        }
        let Hashed { file, hasher } = writer.into_inner().map_err(std::io::Error::other)?;
        file.sync_all()?;
        drop(file);
        // The hash first: a snapshot in place always has its hash beside
        // it, written after its last byte.
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        let line = format!("{:x}  {name}\n", hasher.finalize());
        crate::report::write_atomic(&hash_path(&self.path), line.as_bytes())?;
        fs::rename(&self.tmp, &self.path)?;
        if let Some(dir) = self.path.parent()
            && let Ok(d) = File::open(dir)
        {
            // Make the rename itself durable.
            let _ = d.sync_all();
        }
        Ok(self.path.clone())
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        // Not finished: leave nothing behind.
        if self.writer.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
