//! `plan.parquet` on disk: row groups encoded and compressed in parallel,
//! and the plan's `changes` column (a list of structs of texts) encoded in
//! one pass over its rows.
//!
//! Polars' writer works one row group at a time, its columns in parallel,
//! and derives a nested column's repetition and definition levels three
//! times per leaf (to count them, then once for each kind). On a 1M-row
//! plan that was most of the time spent writing the file. Here the levels
//! of a list of structs are worked out once for all its leaves; every other
//! column goes through Polars' own encoder.

use std::fs;

use polars::prelude::*;
use polars_arrow::array::{Array, ListArray, StructArray, Utf8ViewArray};
use polars_parquet::parquet::CowBuffer;
use polars_parquet::parquet::encoding::hybrid_rle;
use polars_parquet::parquet::page::{DataPage, DataPageHeader, DataPageHeaderV1, Page};
use polars_parquet::parquet::statistics::BinaryStatistics;
use polars_parquet::read::ParquetError;
use polars_parquet::write::{
    CompressedPage, CompressionOptions, Compressor, Descriptor, Encoding, StatisticsOptions,
    Version, WriteOptions, ZstdLevel, array_to_columns, to_parquet_schema,
};

/// Rows per row group.
const ROW_GROUP: usize = 128 * 1024;

/// Rows per data page of a list of texts.
const PAGE_ROWS: usize = 16 * 1024;

/// Write `df` as Parquet (zstd level 1: a plan's file comes out within half a
/// percent of the default level's size, in less time), its row groups
/// encoded and compressed in parallel, one job per row group and column.
pub fn write_parquet(file: &fs::File, df: &DataFrame) -> PolarsResult<()> {
    use rayon::prelude::*;

    let options = WriteOptions {
        statistics: StatisticsOptions::default(),
        version: Version::V1,
        compression: CompressionOptions::Zstd(Some(ZstdLevel::try_new(1)?)),
        data_page_size: None,
    };
    let arrow_schema = df.schema().to_arrow(CompatLevel::newest());
    let parquet_schema = to_parquet_schema(&arrow_schema)?;
    let encodings = polars::io::parquet::write::get_encodings(&arrow_schema);
    // Each column's leaves, in the schema's order.
    let leaves: Vec<Vec<Descriptor>> = df
        .columns()
        .iter()
        .map(|c| {
            parquet_schema
                .columns()
                .iter()
                .filter(|d| d.path_in_schema.first().map(|p| p.as_str()) == Some(c.name()))
                .map(|d| d.descriptor.clone())
                .collect()
        })
        .collect();
    let mut writer = ParquetWriter::new(file).batched(df.schema())?;
    let groups: Vec<(usize, usize)> = (0..df.height())
        .step_by(ROW_GROUP)
        .map(|at| (at, ROW_GROUP.min(df.height() - at)))
        .collect();
    let jobs: Vec<(usize, usize)> = (0..groups.len())
        .flat_map(|g| (0..df.width()).map(move |c| (g, c)))
        .collect();
    // Each job yields its leaves' compressed pages.
    let encoded: Vec<Vec<Vec<CompressedPage>>> = polars_core::runtime::RAYON.install(|| {
        jobs.par_iter()
            .map(|&(g, c)| {
                let (at, len) = groups[g];
                let column = df.columns()[c].slice(at as i64, len);
                let array = column
                    .as_materialized_series()
                    .rechunk()
                    .to_arrow(0, CompatLevel::newest());
                match text_list_pages(array.as_ref(), &leaves[c]) {
                    Some(leaves) => leaves
                        .into_iter()
                        .map(|pages| compress(pages.into_iter().map(Ok), options.compression))
                        .collect(),
                    None => array_to_columns(
                        array,
                        parquet_schema.fields()[c].clone(),
                        options,
                        &encodings[c],
                    )?
                    .into_iter()
                    .map(|pages| {
                        compress(
                            pages.map(|p| {
                                p.map_err(|e| ParquetError::FeatureNotSupported(e.to_string()))
                            }),
                            options.compression,
                        )
                    })
                    .collect(),
                }
            })
            .collect::<PolarsResult<_>>()
    })?;
    let mut encoded = encoded.into_iter();
    for &(_, len) in &groups {
        let mut pages = Vec::new();
        for _ in 0..df.width() {
            pages.extend(encoded.next().expect("one job per row group and column"));
        }
        writer.write_row_group(len as u64, &pages)?;
    }
    writer.finish()?;
    Ok(())
}

/// One leaf's pages, compressed as they come.
fn compress(
    pages: impl Iterator<Item = Result<Page, ParquetError>>,
    compression: CompressionOptions,
) -> PolarsResult<Vec<CompressedPage>> {
    Ok(Compressor::new_from_vec(pages, compression, vec![]).collect::<Result<Vec<_>, _>>()?)
}

/// The data pages of each leaf of a nullable list of nullable structs of
/// nullable texts (`changes`), [`PAGE_ROWS`] rows to a page; `None` for any
/// other column, which Polars encodes. Pages are version 1 and their values
/// plain-encoded; each has the statistics Polars would give it (null count,
/// whole min and max).
///
/// Levels per entry, with one repetition level (a list) and four definition
/// levels (list, item, struct, text): a null list is (0, 0), an empty list
/// (0, 1), a null struct (r, 2), a null text (r, 3) and a text (r, 4),
/// where r is 0 for a row's first item and 1 for the next ones.
fn text_list_pages(array: &dyn Array, leaves: &[Descriptor]) -> Option<Vec<Vec<Page>>> {
    let list = array.as_any().downcast_ref::<ListArray<i64>>()?;
    let items = list.values().as_any().downcast_ref::<StructArray>()?;
    let texts: Vec<&Utf8ViewArray> = items
        .values()
        .iter()
        .map(|a| a.as_any().downcast_ref::<Utf8ViewArray>())
        .collect::<Option<_>>()?;
    let shaped = texts.len() == leaves.len()
        && leaves
            .iter()
            .all(|d| d.max_rep_level == 1 && d.max_def_level == 4);
    if !shaped {
        return None;
    }
    let offsets = list.offsets();
    let mut pages: Vec<Vec<Page>> = texts.iter().map(|_| Vec::new()).collect();
    for start in (0..list.len()).step_by(PAGE_ROWS) {
        let end = (start + PAGE_ROWS).min(list.len());
        let mut rep: Vec<u8> = Vec::new();
        let mut def: Vec<Vec<u8>> = vec![Vec::new(); texts.len()];
        let mut values: Vec<Vec<u8>> = vec![Vec::new(); texts.len()];
        let mut bounds: Vec<Option<(&[u8], &[u8])>> = vec![None; texts.len()];
        for row in start..end {
            if !list.is_valid(row) {
                rep.push(0);
                def.iter_mut().for_each(|d| d.push(0));
                continue;
            }
            let (from, to) = offsets.start_end(row);
            if from == to {
                rep.push(0);
                def.iter_mut().for_each(|d| d.push(1));
                continue;
            }
            for item in from..to {
                rep.push(u8::from(item != from));
                if !items.is_valid(item) {
                    def.iter_mut().for_each(|d| d.push(2));
                    continue;
                }
                for (k, text) in texts.iter().enumerate() {
                    if text.is_valid(item) {
                        let v = text.value(item).as_bytes();
                        bounds[k] = Some(match bounds[k] {
                            None => (v, v),
                            Some((lo, hi)) => (lo.min(v), hi.max(v)),
                        });
                        def[k].push(4);
                        values[k].extend_from_slice(&(v.len() as u32).to_le_bytes());
                        values[k].extend_from_slice(v);
                    } else {
                        def[k].push(3);
                    }
                }
            }
        }
        let mut rep_bytes = Vec::new();
        levels(&mut rep_bytes, &rep, 1);
        for (k, (def, values)) in def.into_iter().zip(values).enumerate() {
            let statistics = BinaryStatistics {
                primitive_type: leaves[k].primitive_type.clone(),
                null_count: Some(def.iter().filter(|&&d| d < 4).count() as i64),
                distinct_count: None,
                min_value: bounds[k].map(|(lo, _)| lo.to_vec()),
                max_value: bounds[k].map(|(_, hi)| hi.to_vec()),
            };
            let mut buffer = rep_bytes.clone();
            levels(&mut buffer, &def, 4);
            buffer.extend_from_slice(&values);
            let header = DataPageHeader::V1(DataPageHeaderV1 {
                num_values: rep.len() as i32,
                encoding: Encoding::Plain.into(),
                definition_level_encoding: Encoding::Rle.into(),
                repetition_level_encoding: Encoding::Rle.into(),
                statistics: Some(statistics.serialize()),
            });
            pages[k].push(Page::Data(DataPage::new(
                header,
                CowBuffer::Owned(buffer),
                leaves[k].clone(),
                end - start,
            )));
        }
    }
    Some(pages)
}

/// Append levels up to `max` as a version 1 page holds them: their byte
/// length, then the RLE / bit-packed hybrid encoding.
fn levels(buffer: &mut Vec<u8>, levels: &[u8], max: u8) {
    let bits = u8::BITS - max.leading_zeros();
    let at = buffer.len();
    buffer.extend_from_slice(&[0; 4]);
    hybrid_rle::encode::<u32, _, _>(buffer, levels.iter().map(|&l| u32::from(l)), bits)
        .expect("writing to memory cannot fail");
    let length = (buffer.len() - at - 4) as u32;
    buffer[at..at + 4].copy_from_slice(&length.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::changes_dtype;

    /// A frame whose `changes` hold every case: null, empty, null struct,
    /// null texts, several entries, long and non-ASCII texts; enough rows
    /// for several pages and row groups.
    fn frame(rows: usize) -> DataFrame {
        let entry = |f: &str, b: Option<&str>, a: Option<&str>| {
            AnyValue::StructOwned(Box::new((
                vec![
                    AnyValue::StringOwned(f.into()),
                    b.map_or(AnyValue::Null, |b| AnyValue::StringOwned(b.into())),
                    a.map_or(AnyValue::Null, |a| AnyValue::StringOwned(a.into())),
                    AnyValue::Null,
                ],
                match changes_inner() {
                    DataType::Struct(fields) => fields,
                    _ => unreachable!(),
                },
            )))
        };
        let long = "Zürich 東京 ".repeat(20);
        let lists: Vec<Option<Series>> = (0..rows)
            .map(|i| match i % 5 {
                0 => None,
                1 => Some(Series::new_empty("".into(), &changes_inner())),
                2 => Some(struct_series(vec![entry("email", Some("a@b"), None)])),
                3 => Some(struct_series(vec![
                    entry("name", None, Some(&format!("n{i}"))),
                    entry("city", Some(&long), Some("")),
                ])),
                _ => Some(struct_series(vec![entry("amount", Some("1"), Some("2"))])),
            })
            .collect();
        let changes = Series::new("changes".into(), lists)
            .cast(&changes_dtype())
            .expect("a list of structs");
        let ids: Vec<String> = (0..rows).map(|i| format!("id{i}")).collect();
        DataFrame::new_infer_height(vec![Column::new("id".into(), ids), changes.into_column()])
            .expect("a frame")
    }

    fn changes_inner() -> DataType {
        match changes_dtype() {
            DataType::List(inner) => *inner,
            _ => unreachable!(),
        }
    }

    fn struct_series(values: Vec<AnyValue<'static>>) -> Series {
        Series::from_any_values_and_dtype("".into(), &values, &changes_inner(), true)
            .expect("structs")
    }

    fn round_trip(df: &DataFrame) -> DataFrame {
        let dir = tempfile::tempdir().expect("a temp dir");
        let path = dir.path().join("plan.parquet");
        write_parquet(&fs::File::create(&path).expect("a file"), df).expect("written");
        ParquetReader::new(fs::File::open(&path).expect("the file"))
            .finish()
            .expect("read back")
    }

    #[test]
    fn a_list_of_texts_reads_back_as_written() {
        let rows = ROW_GROUP + 2 * PAGE_ROWS + 7;
        let df = frame(rows);
        let array = df
            .column("changes")
            .expect("changes")
            .as_materialized_series();
        let array = array.rechunk().to_arrow(0, CompatLevel::newest());
        let schema =
            to_parquet_schema(&df.schema().to_arrow(CompatLevel::newest())).expect("a schema");
        let leaves: Vec<Descriptor> = schema.columns()[1..]
            .iter()
            .map(|d| d.descriptor.clone())
            .collect();
        assert!(
            text_list_pages(array.as_ref(), &leaves).is_some(),
            "the plan's changes take the one-pass encoder"
        );
        let back = round_trip(&df);
        assert_eq!(back.shape(), df.shape());
        assert!(back.equals_missing(&df), "{back:?}\n{df:?}");
    }

    #[test]
    fn null_items_and_null_lists_hide_their_values() {
        // Items: a struct, a null struct (with texts behind it), and two
        // more. Rows: [item 0, item 1]; a null list spanning item 2; [item
        // 3]; an empty list. Nothing behind a null may be written.
        use polars_arrow::bitmap::Bitmap;
        use polars_arrow::offset::OffsetsBuffer;
        let texts = |v: [Option<&str>; 4]| Utf8ViewArray::from_slice(v).boxed();
        let fields = vec![
            texts([Some("email"), Some("x"), Some("name"), Some("city")]),
            texts([Some("a@b"), Some("x"), Some("hidden"), None]),
            texts([None, Some("x"), Some("hidden"), Some("Zürich")]),
            texts([None, Some("x"), None, None]),
        ];
        let dtype = changes_inner().to_arrow(CompatLevel::newest());
        let items = StructArray::new(
            dtype,
            4,
            fields,
            Some(Bitmap::from([true, false, true, true])),
        );
        let list = ListArray::<i64>::new(
            ListArray::<i64>::default_datatype(items.dtype().clone()),
            OffsetsBuffer::try_from(vec![0i64, 2, 3, 4, 4]).expect("offsets"),
            items.boxed(),
            Some(Bitmap::from([true, false, true, true])),
        );
        let changes = Series::from_arrow("changes".into(), list.boxed()).expect("a series");
        let df = DataFrame::new_infer_height(vec![changes.into_column()]).expect("a frame");
        let back = round_trip(&df);
        let rows = back
            .column("changes")
            .expect("changes")
            .list()
            .expect("a list")
            .clone();
        assert!(rows.get_as_series(1).is_none(), "the null list stays null");
        assert_eq!(rows.get_as_series(3).expect("an empty list").len(), 0);
        let texts_of = |row: usize| -> Vec<Option<Vec<Option<String>>>> {
            let items = rows.get_as_series(row).expect("a list");
            let valid = items.is_not_null();
            let fields = items.struct_().expect("structs").fields_as_series();
            (0..items.len())
                .map(|i| {
                    (valid.get(i) == Some(true)).then(|| {
                        fields
                            .iter()
                            .map(|f| f.str().expect("texts").get(i).map(str::to_string))
                            .collect()
                    })
                })
                .collect()
        };
        let t = |v: &str| Some(v.to_string());
        assert_eq!(
            texts_of(0),
            vec![Some(vec![t("email"), t("a@b"), None, None]), None],
            "the null struct stays null"
        );
        assert_eq!(
            texts_of(2),
            vec![Some(vec![t("city"), None, t("Zürich"), None])]
        );
    }
}
