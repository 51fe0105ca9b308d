//! A plan row's changes, gathered field by field without leaving the row.
//!
//! Each field of a [`Gather`] says where it changes, its before, after and
//! baseline texts, the value its payload member carries and why it cannot be
//! written. One pass over the rows turns them into three texts per row: the
//! changes, packed (see [`put`]), the payload's members joined by commas
//! and the problems joined by semicolons. Rows that change nothing cost one
//! look at each field's flag.

use std::fmt::Write as _;

use polars::prelude::*;
use polars_arrow::array::{Array, BooleanArray, PrimitiveArray, Utf8ViewArray};

use super::compare::text;

fn null_str() -> Expr {
    lit(NULL).cast(DataType::String)
}

/// The fields' entries and what each carries besides its texts.
#[derive(Default)]
pub(crate) struct Gather {
    fields: Vec<Entry>,
    inputs: Vec<Expr>,
}

/// What the row pass knows of a field.
struct Entry {
    name: String,
    /// The payload member's key, as JSON (`"email"`), if it has one.
    key: Option<String>,
    problem: bool,
}

/// One field's entry in a [`Gather`].
pub(crate) struct Change {
    /// Where the field changes.
    pub when: Expr,
    pub field: String,
    pub before: Expr,
    pub after: Expr,
    pub baseline: Expr,
    /// The value of the payload member (`"email":"a@b"`) written where the
    /// field changes, ready for JSON (see `compare::json_ready`), if the
    /// change is written.
    pub member: Option<Expr>,
    /// Why the change cannot be written (text, else null), if it can fail.
    pub problem: Option<Expr>,
}

impl Gather {
    pub fn push(&mut self, c: Change) {
        let i = self.fields.len();
        self.inputs.extend([
            c.when.fill_null(lit(false)).alias(format!("w{i}")),
            text(c.before).alias(format!("b{i}")),
            text(c.after).alias(format!("a{i}")),
            text(c.baseline).alias(format!("l{i}")),
        ]);
        let key = c.member.map(|m| {
            self.inputs.push(m.alias(format!("m{i}")));
            serde_json::to_string(&c.field).unwrap_or_default()
        });
        let problem = c.problem.map(|p| {
            self.inputs
                .push(p.cast(DataType::String).alias(format!("p{i}")));
        });
        self.fields.push(Entry {
            name: c.field,
            key,
            problem: problem.is_some(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// What to compute, if anything: one struct column, `<prefix>gathered`;
    /// and how to read its three results from it, `<prefix>changes` (the
    /// packed changes), `<prefix>frag` (the payload members joined by
    /// commas) and `<prefix>problem` (the problems joined by semicolons),
    /// each null where there are none. An empty gather computes nothing
    /// and reads nulls.
    pub fn finish(self, prefix: &str) -> (Option<Expr>, [Expr; 3]) {
        if self.is_empty() {
            return (
                None,
                OUTPUTS.map(|n| null_str().alias(format!("{prefix}{n}"))),
            );
        }
        let name = format!("{prefix}gathered");
        let fields = self.fields;
        let work = as_struct(self.inputs)
            .map(
                move |c: Column| gather(&c, &fields).map(IntoColumn::into_column),
                |_, f| {
                    Ok(polars::prelude::Field::new(
                        f.name().clone(),
                        gathered_dtype(),
                    ))
                },
            )
            .alias(name.as_str());
        let read = OUTPUTS.map(|n| {
            col(name.as_str())
                .struct_()
                .field_by_name(n)
                .alias(format!("{prefix}{n}"))
        });
        (Some(work), read)
    }
}

/// The fields of a gather's result.
const OUTPUTS: [&str; 3] = ["changes", "frag", "problem"];

fn gathered_dtype() -> DataType {
    DataType::Struct(
        OUTPUTS
            .iter()
            .map(|n| polars::prelude::Field::new((*n).into(), DataType::String))
            .collect(),
    )
}

/// A payload member's values, typed as `compare::json_ready` leaves them.
enum Member<'a> {
    F64(&'a PrimitiveArray<f64>),
    I64(&'a PrimitiveArray<i64>),
    Bool(&'a BooleanArray),
    Text(&'a Utf8ViewArray),
}

impl Member<'_> {
    /// Append row `i`'s value as JSON.
    fn write(&self, i: usize, out: &mut String) {
        let null = |a: &dyn Array| a.is_null(i);
        match self {
            Member::F64(a) if !null(*a) => match serde_json::Number::from_f64(a.value(i)) {
                Some(n) => {
                    let _ = write!(out, "{n}");
                }
                None => out.push_str("null"),
            },
            Member::I64(a) if !null(*a) => {
                let _ = write!(out, "{}", a.value(i));
            }
            Member::Bool(a) if !null(*a) => out.push_str(if a.value(i) { "true" } else { "false" }),
            Member::Text(a) if !null(*a) => json_string(a.value(i), out),
            _ => out.push_str("null"),
        }
    }
}

/// Append `s` as a JSON string, escaped as serde_json escapes it.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    let mut from = 0;
    for (at, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[from..at]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        from = at + 1;
    }
    out.push_str(&s[from..]);
    out.push('"');
}

/// One field's columns in a gather's input, by position.
struct Columns<'a> {
    when: &'a BooleanArray,
    texts: [&'a Utf8ViewArray; 3],
    member: Option<Member<'a>>,
    problem: Option<&'a Utf8ViewArray>,
}

/// Rows per part when a gather is split over Polars' threads.
const PART_ROWS: usize = 32 * 1024;

/// The row pass of [`Gather::finish`] over the struct of its inputs.
fn gather(c: &Column, fields: &[Entry]) -> PolarsResult<StructChunked> {
    let s = c.as_materialized_series().rechunk();
    let inputs = s.struct_()?.fields_as_series();
    // Members that are not numbers, flags or texts are written as text.
    let inputs: Vec<Series> = inputs
        .into_iter()
        .map(|s| match s.dtype() {
            DataType::Float64 | DataType::Int64 | DataType::Boolean | DataType::String => Ok(s),
            _ => s.cast(&DataType::String),
        })
        .collect::<PolarsResult<_>>()?;
    let arrays: Vec<Box<dyn Array>> = inputs
        .iter()
        .map(|s| s.rechunk().to_arrow(0, CompatLevel::newest()))
        .collect();
    let mut next = arrays.iter();
    let mut take = || next.next().expect("one input per column").as_ref();
    let bad = || polars_err!(ComputeError: "a gather's input has an unexpected type");
    let mut columns = Vec::with_capacity(fields.len());
    for f in fields {
        let when = take()
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(bad)?;
        let mut texts = Vec::with_capacity(3);
        for _ in 0..3 {
            texts.push(
                take()
                    .as_any()
                    .downcast_ref::<Utf8ViewArray>()
                    .ok_or_else(bad)?,
            );
        }
        let member = match &f.key {
            None => None,
            Some(_) => {
                let a = take().as_any();
                Some(if let Some(x) = a.downcast_ref::<PrimitiveArray<f64>>() {
                    Member::F64(x)
                } else if let Some(x) = a.downcast_ref::<PrimitiveArray<i64>>() {
                    Member::I64(x)
                } else if let Some(x) = a.downcast_ref::<BooleanArray>() {
                    Member::Bool(x)
                } else {
                    Member::Text(a.downcast_ref::<Utf8ViewArray>().ok_or_else(bad)?)
                })
            }
        };
        let problem = match f.problem {
            false => None,
            true => Some(
                take()
                    .as_any()
                    .downcast_ref::<Utf8ViewArray>()
                    .ok_or_else(bad)?,
            ),
        };
        columns.push(Columns {
            when,
            texts: [texts[0], texts[1], texts[2]],
            member,
            problem,
        });
    }
    let rows = s.len();
    let parts = on_parts(rows, PART_ROWS, |from, to| {
        Ok(rows_of(fields, &columns, from, to))
    })?;
    let mut outputs: [Option<StringChunked>; 3] = Default::default();
    for p in parts {
        for (out, piece) in outputs.iter_mut().zip(p) {
            match out {
                Some(o) => o.append_owned(piece)?,
                None => *out = Some(piece),
            }
        }
    }
    let outputs: Vec<Series> = outputs
        .into_iter()
        .zip(OUTPUTS)
        .map(|(o, n)| {
            o.unwrap_or_else(|| StringChunked::full_null(n.into(), 0))
                .with_name(n.into())
                .into_series()
        })
        .collect();
    StructChunked::from_series(c.name().clone(), rows, outputs.iter())
}

/// `work` on rows `from..to` of `rows`, `size` at a time, on Polars'
/// threads; the results in the rows' order.
fn on_parts<T: Send>(
    rows: usize,
    size: usize,
    work: impl Fn(usize, usize) -> PolarsResult<T> + Sync,
) -> PolarsResult<Vec<T>> {
    use rayon::prelude::*;
    let bounds: Vec<(usize, usize)> = (0..rows)
        .step_by(size)
        .map(|at| (at, (at + size).min(rows)))
        .collect();
    polars_core::runtime::RAYON.install(|| {
        bounds
            .into_par_iter()
            .map(|(from, to)| work(from, to))
            .collect()
    })
}

/// [`gather`] for rows `from..to`.
fn rows_of(fields: &[Entry], columns: &[Columns], from: usize, to: usize) -> [StringChunked; 3] {
    let n = to - from;
    let mut out = OUTPUTS.map(|name| StringChunkedBuilder::new(name.into(), n));
    let [mut changes, mut frag, mut problem] = [String::new(), String::new(), String::new()];
    for i in from..to {
        changes.clear();
        frag.clear();
        problem.clear();
        for (f, c) in fields.iter().zip(columns) {
            if !(c.when.is_valid(i) && c.when.value(i)) {
                continue;
            }
            put(&mut changes, Some(&f.name));
            for t in c.texts {
                put(&mut changes, t.is_valid(i).then(|| t.value(i)));
            }
            if let (Some(key), Some(m)) = (&f.key, &c.member) {
                if !frag.is_empty() {
                    frag.push(',');
                }
                frag.push_str(key);
                frag.push(':');
                m.write(i, &mut frag);
            }
            if let Some(p) = c.problem.filter(|p| p.is_valid(i)) {
                if !problem.is_empty() {
                    problem.push_str("; ");
                }
                problem.push_str(p.value(i));
            }
        }
        for (b, text) in out.iter_mut().zip([&changes, &frag, &problem]) {
            if text.is_empty() {
                b.append_null();
            } else {
                b.append_value(text);
            }
        }
    }
    out.map(|b| b.finish())
}

/// Append one value to a packed row: `-` for null, else its byte length,
/// `:` and the text. Rows are filtered and sorted as text, which Polars
/// moves cheaply, and [`unpack`] turns them into the plan's list once at
/// the end: a list of structs boxes every element when gathered.
pub(crate) fn put(buf: &mut String, v: Option<&str>) {
    match v {
        None => buf.push('-'),
        Some(t) => {
            let _ = write!(buf, "{}:", t.len());
            buf.push_str(t);
        }
    }
}

/// Read back one value written by [`put`] from the front of `rest`.
fn take<'a>(rest: &mut &'a str) -> PolarsResult<Option<&'a str>> {
    if let Some(r) = rest.strip_prefix('-') {
        *rest = r;
        return Ok(None);
    }
    let bad = || polars_err!(ComputeError: "a packed change is damaged");
    let (len, r) = rest.split_once(':').ok_or_else(bad)?;
    let len: usize = len.parse().map_err(|_| bad())?;
    let v = r.get(..len).ok_or_else(bad)?;
    *rest = &r[len..];
    Ok(Some(v))
}

/// The plan's `changes` list (`{field, before, after, baseline}` per
/// change) from packed texts; null stays null. Parts of the rows are read
/// on Polars' threads.
pub(crate) fn unpack(c: &Column) -> PolarsResult<Series> {
    let ca = c.str()?.rechunk();
    let ca = ca.as_ref();
    let rows = ca.len();
    let parts = on_parts(rows, PART_ROWS * 4, |from, to| {
        unpack_rows(&ca.slice(from as i64, to - from))
    })?;
    // The parts' offsets, continued from one part to the next.
    let mut offsets: Vec<i64> = Vec::with_capacity(rows + 1);
    offsets.push(0);
    let mut validity = Vec::with_capacity(rows);
    let mut texts: [Vec<Box<dyn Array>>; 4] = Default::default();
    for (o, v, t) in parts {
        let base = *offsets.last().expect("starts at 0");
        offsets.extend(o.iter().skip(1).map(|x| base + x));
        validity.extend(v);
        for (all, part) in texts.iter_mut().zip(t) {
            all.push(part.boxed());
        }
    }
    let total = *offsets.last().expect("starts at 0") as usize;
    let columns: Vec<Series> = ["field", "before", "after", "baseline"]
        .into_iter()
        .zip(texts)
        .map(|(n, chunks)| {
            let chunks = if chunks.is_empty() {
                vec![Utf8ViewArray::new_empty(ArrowDataType::Utf8View).boxed()]
            } else {
                chunks
            };
            Series::from_arrow_chunks(n.into(), chunks).map(|s| s.rechunk())
        })
        .collect::<PolarsResult<_>>()?;
    let items = StructChunked::from_series("item".into(), total, columns.iter())?
        .into_series()
        .rechunk();
    let values = items.to_arrow(0, CompatLevel::newest());
    let dtype = polars_arrow::array::ListArray::<i64>::default_datatype(values.dtype().clone());
    let list = polars_arrow::array::ListArray::<i64>::new(
        dtype,
        polars_arrow::offset::OffsetsBuffer::try_from(offsets)?,
        values,
        Some(validity.into_iter().collect()),
    );
    Series::from_arrow(c.name().clone(), Box::new(list))
}

/// One part of [`unpack`]: offsets from 0, validity, and the four texts.
fn unpack_rows(ca: &StringChunked) -> PolarsResult<(Vec<i64>, Vec<bool>, [Utf8ViewArray; 4])> {
    let mut offsets: Vec<i64> = Vec::with_capacity(ca.len() + 1);
    offsets.push(0);
    let mut validity = Vec::with_capacity(ca.len());
    let mut out: [polars_arrow::array::MutableBinaryViewArray<str>; 4] = Default::default();
    let mut n = 0i64;
    for row in ca.iter() {
        validity.push(row.is_some());
        let mut rest = row.unwrap_or("");
        while !rest.is_empty() {
            for part in out.iter_mut() {
                part.push(take(&mut rest)?);
            }
            n += 1;
        }
        offsets.push(n);
    }
    Ok((offsets, validity, out.map(|m| m.freeze())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_changes_read_back_as_written() {
        let rows: Vec<Vec<[Option<&str>; 4]>> = vec![
            vec![[Some("email"), Some("a@b"), Some("A@B"), None]],
            vec![],
            vec![
                [Some("name"), Some("3:x-"), Some(""), Some("-")],
                [Some("city"), None, Some("Zürich 東京 12:30"), Some("1:")],
            ],
        ];
        // Enough rows for several parts.
        let rows: Vec<_> = rows.iter().cycle().take(PART_ROWS * 9 + 7).collect();
        let packed: Vec<Option<String>> = rows
            .iter()
            .map(|r| {
                let mut buf = String::new();
                for entry in r.iter() {
                    for v in entry {
                        put(&mut buf, *v);
                    }
                }
                (!buf.is_empty()).then_some(buf)
            })
            .collect();
        let col =
            StringChunked::from_iter_options("changes".into(), packed.into_iter()).into_column();
        let list = unpack(&col).expect("unpacks");
        assert_eq!(list.dtype(), &super::super::changes_dtype());
        assert_eq!(list.len(), rows.len());
        for (i, r) in rows.iter().enumerate() {
            if r.is_empty() {
                assert!(list.get(i).expect("row").is_null(), "no changes is null");
                continue;
            }
            let got = list.list().expect("a list").get_as_series(i).expect("row");
            assert_eq!(got.len(), r.len(), "row {i}");
            let fields = got.struct_().expect("structs").fields_as_series();
            for (k, entry) in r.iter().enumerate() {
                for (j, want) in entry.iter().enumerate() {
                    assert_eq!(
                        fields[j].str().expect("text").get(k),
                        *want,
                        "row {i} entry {k} part {j}"
                    );
                }
            }
        }
        let damaged = StringChunked::from_iter_options("c".into(), [Some("9:short")].into_iter());
        assert!(unpack(&damaged.into_column()).is_err());
    }

    #[test]
    fn json_strings_are_escaped_as_serde_json_escapes_them() {
        for s in [
            "plain",
            "",
            "quote \" and back\\slash",
            "tab\tnew\nline\rret",
            "\u{0}\u{1}\u{8}\u{c}\u{1f}\u{7f}",
            "Zürich 東京 😀",
        ] {
            let mut out = String::new();
            json_string(s, &mut out);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn a_gather_writes_changes_members_and_problems_where_fields_change() {
        let rows = PART_ROWS * 2 + 3;
        let df = df!(
            "x_changes" => (0..rows).map(|i| i % 2 == 0).collect::<Vec<_>>(),
            "x_before" => (0..rows).map(|i| format!("old{i}")).collect::<Vec<_>>(),
            "x_after" => (0..rows).map(|i| (i % 3 != 0).then(|| format!("new \"{i}\""))).collect::<Vec<_>>(),
            "n" => (0..rows).map(|i| (i % 3 != 0).then_some(i as f64 + 0.5)).collect::<Vec<_>>(),
            "y_changes" => (0..rows).map(|i| i % 3 == 0).collect::<Vec<_>>(),
            "flag" => (0..rows).map(|i| i % 5 == 0).collect::<Vec<_>>(),
            "why" => (0..rows).map(|i| (i % 4 == 0).then(|| format!("bad {i}"))).collect::<Vec<_>>(),
        )
        .unwrap();
        let mut g = Gather::default();
        g.push(Change {
            when: col("x_changes"),
            field: "x".into(),
            before: col("x_before"),
            after: col("x_after"),
            baseline: null_str(),
            member: Some(col("n")),
            problem: None,
        });
        g.push(Change {
            when: col("y_changes"),
            field: "y".into(),
            before: lit(NULL).cast(DataType::String),
            after: col("flag"),
            baseline: lit("base"),
            member: Some(col("flag")),
            problem: Some(col("why")),
        });
        let (work, read) = g.finish("t.");
        let out = df
            .lazy()
            .with_columns(work.into_iter().collect::<Vec<_>>())
            .select(read)
            .collect()
            .unwrap();
        let get = |c: &str, i: usize| {
            out.column(c)
                .unwrap()
                .str()
                .unwrap()
                .get(i)
                .map(str::to_string)
        };
        for i in 0..rows {
            let (x, y) = (i % 2 == 0, i % 3 == 0);
            let mut changes = String::new();
            let mut frag = Vec::new();
            if x {
                put(&mut changes, Some("x"));
                put(&mut changes, Some(&format!("old{i}")));
                let after = (i % 3 != 0).then(|| format!("new \"{i}\""));
                put(&mut changes, after.as_deref());
                put(&mut changes, None);
                frag.push(if i % 3 != 0 {
                    format!(
                        "\"x\":{}",
                        serde_json::Number::from_f64(i as f64 + 0.5).unwrap()
                    )
                } else {
                    "\"x\":null".to_string()
                });
            }
            if y {
                put(&mut changes, Some("y"));
                put(&mut changes, None);
                put(
                    &mut changes,
                    Some(if i % 5 == 0 { "true" } else { "false" }),
                );
                put(&mut changes, Some("base"));
                frag.push(format!("\"y\":{}", i % 5 == 0));
            }
            let problem = (y && i % 4 == 0).then(|| format!("bad {i}"));
            assert_eq!(get("t.changes", i), (x || y).then_some(changes), "row {i}");
            assert_eq!(
                get("t.frag", i),
                (x || y).then(|| frag.join(",")),
                "row {i}"
            );
            assert_eq!(get("t.problem", i), problem, "row {i}");
        }
    }
}
