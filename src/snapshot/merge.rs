//! Incremental pulls: a delta of changed records is merged into the last
//! full snapshot by native id, giving a new full snapshot. Full pulls compare
//! ids with the last snapshot to find records deleted upstream.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

use arrow::array::{Array, BooleanArray, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::ID_COLUMN;
use super::write::SnapshotWriter;

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Read a snapshot batch by batch.
pub fn batches(path: &Path) -> std::io::Result<impl Iterator<Item = std::io::Result<RecordBatch>>> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?)
        .map_err(io)?
        .with_batch_size(8192)
        .build()
        .map_err(io)?;
    Ok(reader.map(|b| b.map_err(io)))
}

/// The schema of a snapshot file.
pub fn schema(path: &Path) -> std::io::Result<SchemaRef> {
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?).map_err(io)?;
    Ok(b.schema().clone())
}

/// Every native id in a snapshot (reads the `_id` column only).
pub fn ids(path: &Path) -> std::io::Result<HashSet<String>> {
    let b = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?).map_err(io)?;
    let mask = ProjectionMask::roots(b.parquet_schema(), [0]);
    let mut out = HashSet::new();
    for batch in b.with_projection(mask).build().map_err(io)? {
        let batch = batch.map_err(io)?;
        let col = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| io("_id is not text"))?;
        out.extend(col.iter().flatten().map(str::to_string));
    }
    Ok(out)
}

/// Write into `out` every row of `previous` whose id is neither in `delta`
/// nor deleted, then every row of `delta`. Returns the rows kept from before.
pub fn merge(
    previous: &Path,
    delta: &Path,
    deleted: &[String],
    out: &mut SnapshotWriter,
) -> std::io::Result<u64> {
    let mut replaced = ids(delta)?;
    replaced.extend(deleted.iter().cloned());
    let mut kept = 0u64;
    for batch in batches(previous)? {
        let batch = batch?;
        let idx = batch.schema().index_of(ID_COLUMN).map_err(io)?;
        let col = batch
            .column(idx)
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| io("_id is not text"))?;
        let keep: BooleanArray = (0..col.len())
            .map(|i| Some(col.is_null(i) || !replaced.contains(col.value(i))))
            .collect();
        let batch = filter_record_batch(&batch, &keep).map_err(io)?;
        kept += batch.num_rows() as u64;
        out.push_batch(&batch)?;
    }
    for batch in batches(delta)? {
        out.push_batch(&batch?)?;
    }
    Ok(kept)
}
