//! Parquet files as a source: rows become JSON-like records so nested
//! columns are reached by the same paths as any other side.

use std::fs::File;

use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::Value;

use super::ReadError;
use crate::connect::{Item, Locator};

pub(super) fn read(
    file: File,
    each: &mut dyn FnMut(Item) -> Result<(), String>,
) -> Result<(), ReadError> {
    let fmt =
        |e: &dyn std::fmt::Display| ReadError::Format(format!("not a readable Parquet file: {e}"));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| fmt(&e))?
        .with_batch_size(4096)
        .build()
        .map_err(|e| fmt(&e))?;
    let mut n = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| fmt(&e))?;
        let mut buf = Vec::new();
        {
            let mut w = arrow::json::LineDelimitedWriter::new(&mut buf);
            w.write(&batch).map_err(|e| fmt(&e))?;
            w.finish().map_err(|e| fmt(&e))?;
        }
        for line in buf.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            n += 1;
            let value: Value = serde_json::from_slice(line).map_err(|e| fmt(&e))?;
            each(Item::Record {
                at: Locator::Record(n),
                value,
            })
            .map_err(ReadError::Stopped)?;
        }
    }
    Ok(())
}
