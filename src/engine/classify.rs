//! From matched pairs and leftover records to plan rows with a class, the
//! field-level changes, a reason, the payload to write, and the values the
//! pair will hold once the row is applied (the next baseline).

use polars::prelude::*;

use super::compare::{equal, equal_loose, json_ready, same_length, text, want};
use super::matching::Matched;
use super::{A_ID, B_ID, dtype, field_column, prefix};
use crate::spec::{Direction, Field, SideIx, Spec};

/// The plan's columns, in order (documented in `docs/plan.md`).
pub const PLAN_COLUMNS: [&str; 10] = [
    "class",
    "key",
    "key_value",
    "left_id",
    "right_id",
    "receiver",
    "changes",
    "reason",
    "payload",
    "synced",
];

/// `changes`: a list of `{field, before, after, baseline}`.
pub fn changes_dtype() -> DataType {
    DataType::List(Box::new(DataType::Struct(vec![
        polars::prelude::Field::new("field".into(), DataType::String),
        polars::prelude::Field::new("before".into(), DataType::String),
        polars::prelude::Field::new("after".into(), DataType::String),
        polars::prelude::Field::new("baseline".into(), DataType::String),
    ])))
}

fn null_str() -> Expr {
    lit(NULL).cast(DataType::String)
}

/// Whether records of `side` are sent to the other side at all.
pub(crate) fn sends(d: Direction, side: SideIx) -> bool {
    match d {
        Direction::OneWay { from } => from == side,
        Direction::Both { .. } => true,
        Direction::Audit => side == SideIx::A,
    }
}

/// The column of a pair's baseline value of a field.
pub(crate) fn base_column(field: &str) -> String {
    format!("base.{field}")
}

/// One field's value as a JSON member (`"email":"a@b"`) for payloads, on
/// the rows where `cond` holds (null elsewhere). Encoded row by row: most
/// rows of a big plan do not change the field and cost nothing.
fn member(f: &Field, value: Expr, cond: Expr) -> Expr {
    let key = serde_json::to_string(&f.name).unwrap_or_default();
    json_ready(value, f.ty).map_many(
        move |cols: &mut [Column]| {
            let [v, c] = same_length(cols);
            let cond = c.bool()?;
            let v = v.as_materialized_series();
            let out = match v.dtype() {
                DataType::Float64 => encode_where(v.f64()?.iter(), cond, &key, |x| {
                    serde_json::Number::from_f64(x).map_or("null".into(), |n| n.to_string())
                }),
                DataType::Int64 => encode_where(v.i64()?.iter(), cond, &key, |x| x.to_string()),
                DataType::Boolean => encode_where(v.bool()?.iter(), cond, &key, |x| x.to_string()),
                _ => {
                    let t = v.cast(&DataType::String)?;
                    encode_where(t.str()?.iter(), cond, &key, |x| {
                        serde_json::to_string(x).unwrap_or_default()
                    })
                }
            };
            Ok(out.with_name(cols[0].name().clone()).into_column())
        },
        &[cond],
        |_, fields| {
            Ok(polars::prelude::Field::new(
                fields[0].name().clone(),
                DataType::String,
            ))
        },
    )
}

/// `"key":value` where `cond` holds, null elsewhere.
fn encode_where<T>(
    values: impl Iterator<Item = Option<T>>,
    cond: &BooleanChunked,
    key: &str,
    encode: impl Fn(T) -> String,
) -> StringChunked {
    cond.iter()
        .zip(values)
        .map(|(c, v)| {
            (c == Some(true)).then(|| match v {
                Some(x) => format!("{key}:{}", encode(x)),
                None => format!("{key}:null"),
            })
        })
        .collect()
}

/// Select the plan's columns in order with their types.
/// `rows` are the records' positions in their snapshots (`a_row`, `b_row`),
/// kept as `~a_row` and `~b_row` to order the plan.
fn shape(lf: LazyFrame, exprs: [Expr; 10], rows: [Expr; 2]) -> LazyFrame {
    let types = [
        DataType::String,
        DataType::String,
        DataType::String,
        DataType::String,
        DataType::String,
        DataType::String,
        // Packed until the end; see `pack`.
        DataType::String,
        DataType::String,
        DataType::String,
        DataType::String,
    ];
    let mut cols: Vec<Expr> = exprs
        .into_iter()
        .zip(types)
        .zip(PLAN_COLUMNS)
        .map(|((e, t), n)| e.cast(t).alias(n))
        .collect();
    let [a, b] = rows;
    cols.push(a.cast(IDX_DTYPE).alias("~a_row"));
    cols.push(b.cast(IDX_DTYPE).alias("~b_row"));
    lf.select(cols)
}

/// Both snapshot positions of a matched pair.
fn pair_rows() -> [Expr; 2] {
    [col("a_row"), col("b_row")]
}

/// A row's changes, gathered field by field without leaving the row: each
/// field adds where it changes, its before, after and baseline texts, a
/// payload member and a problem.
#[derive(Default)]
struct Gather {
    fields: Vec<String>,
    parts: Vec<Expr>,
    frags: Vec<Expr>,
    problems: Vec<Expr>,
}

/// One field's entry in a [`Gather`].
struct Change {
    /// Where the field changes.
    when: Expr,
    field: String,
    before: Expr,
    after: Expr,
    baseline: Expr,
    /// The payload member (`"email":"a@b"`), if the change is written.
    frag: Expr,
    /// Why the change cannot be written, else null.
    problem: Expr,
}

impl Gather {
    fn push(&mut self, c: Change) {
        let i = self.fields.len();
        let only = |v: Expr| when(c.when.clone()).then(v).otherwise(null_str());
        self.parts.extend([
            c.when.clone().fill_null(lit(false)).alias(format!("w{i}")),
            text(c.before).alias(format!("b{i}")),
            text(c.after).alias(format!("a{i}")),
            text(c.baseline).alias(format!("l{i}")),
        ]);
        self.frags.push(only(c.frag));
        self.problems.push(only(c.problem));
        self.fields.push(c.field);
    }

    fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The list of changes (empty where nothing changes), the payload members
    /// joined by commas, and the problems (null where there are none), named
    /// `<prefix>changes`, `<prefix>frag` and `<prefix>problem`.
    fn finish(self, prefix: &str) -> [Expr; 3] {
        let name = |n: &str| format!("{prefix}{n}");
        if self.is_empty() {
            return [
                null_str().alias(name("changes")),
                null_str().alias(name("frag")),
                null_str().alias(name("problem")),
            ];
        }
        let fields = self.fields;
        let changes = as_struct(self.parts).map(
            move |c: Column| pack(&c, &fields).map(|ca| ca.into_column()),
            |_, f| {
                Ok(polars::prelude::Field::new(
                    f.name().clone(),
                    DataType::String,
                ))
            },
        );
        let problem = concat_str(self.problems, "; ", true);
        [
            changes.alias(name("changes")),
            concat_str(self.frags, ",", true).alias(name("frag")),
            when(problem.clone().eq(lit("")))
                .then(null_str())
                .otherwise(problem)
                .alias(name("problem")),
        ]
    }
}

/// Pack a row's changes into one text from a struct of (`w<i>`, `b<i>`,
/// `a<i>`, `l<i>`) per field: one `{field, before, after, baseline}` per
/// field whose `w<i>` holds, null where none does. Rows are filtered and
/// sorted as text, which Polars moves cheaply, and [`unpack`] turns them
/// into the plan's list once at the end: gathering a list of structs boxes
/// every element, and took a second per pass on a 1M plan.
fn pack(c: &Column, fields: &[String]) -> PolarsResult<StringChunked> {
    let s = c.as_materialized_series().rechunk();
    let parts = s.struct_()?.fields_as_series();
    let mut conds = Vec::with_capacity(fields.len());
    let mut texts = Vec::with_capacity(fields.len() * 3);
    for i in 0..fields.len() {
        conds.push(parts[4 * i].bool()?.clone());
        for j in 1..4 {
            texts.push(parts[4 * i + j].str()?.clone());
        }
    }
    let mut cond_iters: Vec<_> = conds.iter().map(|c| c.iter()).collect();
    let mut text_iters: Vec<_> = texts.iter().map(|t| t.iter()).collect();
    let mut buf = String::new();
    let mut out: Vec<Option<String>> = Vec::with_capacity(s.len());
    for _ in 0..s.len() {
        buf.clear();
        for (i, field) in fields.iter().enumerate() {
            let changed = cond_iters[i].next().flatten().unwrap_or(false);
            let mut values = [None; 3];
            for (j, v) in values.iter_mut().enumerate() {
                *v = text_iters[3 * i + j].next().flatten();
            }
            if changed {
                put(&mut buf, Some(field));
                for v in values {
                    put(&mut buf, v);
                }
            }
        }
        out.push((!buf.is_empty()).then(|| buf.clone()));
    }
    Ok(StringChunked::from_iter_options(
        c.name().clone(),
        out.into_iter(),
    ))
}

/// Append one value: `-` for null, else its byte length, `:` and the text.
fn put(buf: &mut String, v: Option<&str>) {
    match v {
        None => buf.push('-'),
        Some(t) => {
            buf.push_str(&t.len().to_string());
            buf.push(':');
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

/// The plan's `changes` list from packed texts (null stays null).
fn unpack(c: &Column) -> PolarsResult<Series> {
    let ca = c.str()?;
    let mut offsets: Vec<i64> = Vec::with_capacity(ca.len() + 1);
    offsets.push(0);
    let mut validity = Vec::with_capacity(ca.len());
    let mut out: [Vec<Option<&str>>; 4] = Default::default();
    for row in ca.iter() {
        validity.push(row.is_some());
        let mut rest = row.unwrap_or("");
        while !rest.is_empty() {
            for part in out.iter_mut() {
                part.push(take(&mut rest)?);
            }
        }
        offsets.push(out[0].len() as i64);
    }
    let total = out[0].len();
    let columns: Vec<Series> = ["field", "before", "after", "baseline"]
        .into_iter()
        .zip(out)
        .map(|(n, v)| StringChunked::from_iter_options(n.into(), v.into_iter()).into_series())
        .collect();
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

/// Whether a packed changes column has changes on the row.
fn changed(c: &str) -> Expr {
    col(c).is_not_null()
}

/// How a field of a matched pair moves.
struct Flow {
    /// The side whose value is written to the other.
    from: SideIx,
    /// Rows where it moves (besides differing).
    when: Expr,
}

/// For each field of a pair: which way a difference flows, and when it is a
/// conflict instead. With a baseline (the values last synced), a side that
/// alone changed a field wins; both changed is a conflict.
fn routes(spec: &Spec, f: &Field, has_base: bool) -> (Vec<Flow>, Option<Expr>) {
    match spec.field_direction(f) {
        Direction::OneWay { from } => (
            vec![Flow {
                from,
                when: lit(true),
            }],
            None,
        ),
        Direction::Audit => (
            vec![Flow {
                from: SideIx::A,
                when: lit(true),
            }],
            None,
        ),
        Direction::Both { winner } => {
            if f.paths.iter().any(Option::is_none) {
                return (vec![], None);
            }
            let winner_is = |s: SideIx| lit(winner == Some(s));
            if !has_base {
                let flows = SideIx::both()
                    .into_iter()
                    .map(|s| Flow {
                        from: s,
                        when: winner_is(s),
                    })
                    .collect();
                return (flows, Some(lit(winner.is_none())));
            }
            let ty = dtype(f.ty);
            let base = col(base_column(&f.name)).cast(ty);
            let changed = |s: SideIx| {
                equal_loose(spec, f, col(field_column(s, &f.name)), base.clone(), s).not()
            };
            let (ca, cb) = (changed(SideIx::A), changed(SideIx::B));
            let known = col("has_base");
            let a_wins = when(known.clone())
                .then(ca.clone().and(cb.clone().not()))
                .otherwise(winner_is(SideIx::A));
            let b_wins = when(known.clone())
                .then(cb.clone().and(ca.clone().not()))
                .otherwise(winner_is(SideIx::B));
            let conflict = a_wins.clone().not().and(b_wins.clone().not());
            (
                vec![
                    Flow {
                        from: SideIx::A,
                        when: a_wins,
                    },
                    Flow {
                        from: SideIx::B,
                        when: b_wins,
                    },
                ],
                Some(conflict),
            )
        }
    }
}

/// The value a field holds on both sides once the pair is in sync: what
/// flows, else the first side's value.
fn synced_value(f: &Field, flows: &[(SideIx, Expr)]) -> Expr {
    let mut e = text(col(field_column(SideIx::A, &f.name)));
    if f.path(SideIx::A).is_none() {
        e = text(col(field_column(SideIx::B, &f.name)));
    }
    for (from, cond) in flows.iter().rev() {
        e = when(cond.clone()).then(text(want(f, *from).0)).otherwise(e);
    }
    e
}

/// How many matched pairs are compared at a time (see [`classify`]).
pub(crate) const PAIRS_AT_ONCE: usize = 1 << 18;

/// The plan rows of the prepared sides `a` and `b` once matched: records
/// alone on a side, matched pairs compared field by field, and duplicates,
/// sorted by class and then by the records' places in their snapshots.
/// Matched pairs are compared `at_once` at a time.
pub fn classify(
    spec: &Spec,
    a: DataFrame,
    b: DataFrame,
    m: Matched,
    baseline: Option<DataFrame>,
    at_once: usize,
) -> PolarsResult<DataFrame> {
    let name = |s: SideIx| spec.side(s).name.clone();
    let mut parts: Vec<LazyFrame> = Vec::new();
    let has_base = baseline.is_some();
    let base_or_null = |f: &Field| {
        if has_base {
            col(base_column(&f.name))
        } else {
            null_str()
        }
    };
    // Baselines serve fields synced both ways only; one-way specs skip the
    // cost of encoding every pair's values.
    let keeps_baselines = spec
        .fields
        .iter()
        .any(|f| matches!(spec.field_direction(f), Direction::Both { .. }));

    // Records matched on neither side.
    for side in SideIx::both() {
        let p = prefix(side);
        let id = format!("{p}_id");
        let frame = if side == SideIx::A { &a } else { &b };
        let alone = frame.filter(&m.alone[side as usize])?.lazy();
        let (left, right) = if side == SideIx::A {
            (col(id.as_str()), null_str())
        } else {
            (null_str(), col(id.as_str()))
        };
        let skip_col = col(format!("{p}_skip"));
        let rows = if side == SideIx::A {
            [col("a_row"), lit(NULL)]
        } else {
            [lit(NULL), col("b_row")]
        };
        parts.push(shape(
            alone.clone().filter(skip_col.clone().is_not_null()),
            [
                lit("skipped"),
                null_str(),
                null_str(),
                left.clone(),
                right.clone(),
                null_str(),
                lit(NULL),
                skip_col.clone(),
                null_str(),
                null_str(),
            ],
            rows.clone(),
        ));
        let alone = alone.filter(skip_col.is_null());
        if !sends(spec.direction, side) {
            parts.push(shape(
                alone,
                [
                    lit("orphan"),
                    null_str(),
                    null_str(),
                    left,
                    right,
                    null_str(),
                    lit(NULL),
                    lit(format!("only in {}", name(side))),
                    null_str(),
                    null_str(),
                ],
                rows.clone(),
            ));
            continue;
        }
        let receiver = side.other();
        let mut gather = Gather::default();
        let mut members = Vec::new();
        let mut synced = Vec::new();
        for f in spec
            .fields
            .iter()
            .filter(|f| !f.ignore && f.path(receiver).is_some())
        {
            if !sends(spec.field_direction(f), side) {
                continue;
            }
            let (w, problem) = want(f, side);
            let problem = if f.required {
                when(problem.clone().is_null().and(w.clone().is_null()))
                    .then(lit(format!("required field `{}` is empty", f.name)))
                    .otherwise(problem)
            } else {
                problem
            };
            members.push(json_ready(w.clone(), f.ty).alias(f.name.as_str()));
            synced.push(text(w.clone()).alias(f.name.as_str()));
            gather.push(Change {
                when: w.clone().is_not_null().or(problem.clone().is_not_null()),
                field: f.name.clone(),
                before: null_str(),
                after: w,
                baseline: null_str(),
                frag: null_str(),
                problem,
            });
        }
        let payload = if members.is_empty() {
            lit("{}")
        } else {
            as_struct(members).struct_().json_encode()
        };
        let synced = if synced.is_empty() || !keeps_baselines {
            null_str()
        } else {
            as_struct(synced).struct_().json_encode()
        };
        let mut wide = vec![payload.alias("payload"), synced.alias("synced")];
        wide.extend(gather.finish(""));
        let ok = col("problem").is_null();
        parts.push(shape(
            alone.with_columns(wide),
            [
                when(ok.clone())
                    .then(lit("create"))
                    .otherwise(lit("invalid")),
                null_str(),
                null_str(),
                left,
                right,
                lit(name(receiver)),
                col("changes"),
                col("problem"),
                when(ok.clone()).then(col("payload")).otherwise(null_str()),
                when(ok).then(col("synced")).otherwise(null_str()),
            ],
            rows,
        ));
    }

    // Matched pairs, with both sides' values side by side (and the baseline),
    // gathered by their rows in the prepared frames. The key columns served
    // matching only.
    let [rows_a, rows_b] = &m.rows;
    let strip = |df: DataFrame, p: &str| {
        let keep: Vec<Column> = df
            .columns()
            .iter()
            .filter(|c| !c.name().starts_with(&format!("{p}#key")))
            .cloned()
            .collect();
        drop(df);
        DataFrame::new_infer_height(keep)
    };
    let (a, b) = (strip(a, "a")?, strip(b, "b")?);
    let take =
        |df: &DataFrame, rows: &[IdxSize]| df.take(&IdxCa::from_vec("rows".into(), rows.to_vec()));
    // What a pair holds besides the sides' values: the key that matched it
    // and its baseline, one row per pair in the pairs' order.
    let mut extra = m.keys;
    if let Some(base) = baseline {
        let ids = DataFrame::new_infer_height(vec![
            take(&a.select([A_ID])?, rows_a)?.column(A_ID)?.clone(),
            take(&b.select([B_ID])?, rows_b)?.column(B_ID)?.clone(),
        ])?;
        let key = [col(A_ID), col(B_ID)];
        let base = base
            .lazy()
            .unique(
                Some(polars::prelude::Selector::ByName {
                    names: std::sync::Arc::new([A_ID.into(), B_ID.into()]),
                    strict: true,
                }),
                UniqueKeepStrategy::First,
            )
            .with_column(lit(true).alias("has_base"));
        let aligned = ids
            .lazy()
            .with_row_index("~pair", None)
            .join(base, key.clone(), key, JoinArgs::new(JoinType::Left))
            .sort(["~pair"], SortMultipleOptions::default())
            .drop(polars::prelude::Selector::ByName {
                names: std::sync::Arc::new(["~pair".into(), A_ID.into(), B_ID.into()]),
                strict: true,
            })
            .with_column(col("has_base").fill_null(lit(false)))
            .collect()?;
        extra = extra.hstack(aligned.columns())?;
    }

    // Per pair: the changes each side receives, and the conflicts.
    let mut to = [Gather::default(), Gather::default()];
    let mut conflicts = Gather::default();
    let mut synced = Vec::new();
    for f in spec.fields.iter().filter(|f| !f.ignore) {
        let (flows, conflict) = routes(spec, f, has_base);
        let mut moving = Vec::new();
        for Flow { from, when: route } in flows {
            let receiver = from.other();
            if f.path(receiver).is_none() {
                continue;
            }
            let (w, problem) = want(f, from);
            let have = col(field_column(receiver, &f.name));
            let mut diff = equal(spec, f, w.clone(), have.clone(), from)
                .not()
                .or(problem.clone().is_not_null());
            if f.keep_target_if_set {
                diff = diff.and(have.clone().is_null());
            }
            let diff = diff.and(route);
            moving.push((from, diff.clone()));
            if f.create_only {
                continue;
            }
            let problem = if f.required {
                when(problem.clone().is_null().and(w.clone().is_null()))
                    .then(lit(format!(
                        "required field `{}` would be emptied in {}",
                        f.name,
                        name(receiver)
                    )))
                    .otherwise(problem)
            } else {
                problem
            };
            let frag = member(f, w.clone(), diff.clone());
            to[receiver as usize].push(Change {
                when: diff,
                field: f.name.clone(),
                before: have,
                after: w.clone(),
                baseline: base_or_null(f),
                frag,
                problem,
            });
        }
        if let Some(conflict) = conflict {
            let (wa, _) = want(f, SideIx::A);
            let hb = col(field_column(SideIx::B, &f.name));
            conflicts.push(Change {
                when: equal(spec, f, wa, hb.clone(), SideIx::A)
                    .not()
                    .and(conflict),
                field: f.name.clone(),
                before: col(field_column(SideIx::A, &f.name)),
                after: hb,
                baseline: base_or_null(f),
                frag: null_str(),
                problem: null_str(),
            });
        }
        synced.push(synced_value(f, &moving).alias(f.name.as_str()));
    }
    let synced_json = if synced.is_empty() || !keeps_baselines {
        null_str()
    } else {
        as_struct(synced).struct_().json_encode()
    };
    let mut wide = vec![synced_json.alias("synced")];
    let [to_a, to_b] = to;
    let receivers: Vec<SideIx> = SideIx::both()
        .into_iter()
        .filter(|s| !(if *s == SideIx::A { &to_a } else { &to_b }).is_empty())
        .collect();
    wide.extend(to_a.finish("a>"));
    wide.extend(to_b.finish("b>"));
    let has_conflicts = !conflicts.is_empty();
    wide.extend(conflicts.finish("c>"));
    // The pairs are worked out a slice at a time: a slice's side values are
    // let go once its plan columns are computed, so the sides' values are
    // never gathered for all pairs at once.
    let mut needed: Vec<Expr> = [A_ID, B_ID, "a_skip", "b_skip", "a_row", "b_row"]
        .into_iter()
        .chain(["key", "key_value", "synced"])
        .map(col)
        .collect();
    for p in ["a>", "b>", "c>"] {
        for n in ["changes", "frag", "problem"] {
            needed.push(col(format!("{p}{n}")));
        }
    }
    let n = rows_a.len();
    let mut pairs: Option<DataFrame> = None;
    for start in (0..n.max(1)).step_by(at_once) {
        let end = (start + at_once).min(n);
        let slice = take(&a, &rows_a[start..end])?
            .hstack(take(&b, &rows_b[start..end])?.columns())?
            .hstack(extra.slice(start as i64, end - start).columns())?;
        let done = slice
            .lazy()
            .with_columns(wide.clone())
            .select(needed.clone())
            .collect()?;
        match &mut pairs {
            Some(p) => {
                p.vstack_mut_owned(done)?;
            }
            None => pairs = Some(done),
        }
    }
    drop((a, b, extra));
    let pairs = pairs.expect("at least one slice");

    let skip = when(col("a_skip").is_not_null())
        .then(col("a_skip"))
        .otherwise(col("b_skip"));
    let skipped_pair = col("a_skip").is_not_null().or(col("b_skip").is_not_null());
    parts.push(shape(
        pairs.clone().lazy().filter(skipped_pair.clone()),
        [
            lit("skipped"),
            col("key"),
            col("key_value"),
            col(A_ID),
            col(B_ID),
            null_str(),
            lit(NULL),
            skip,
            null_str(),
            null_str(),
        ],
        pair_rows(),
    ));
    let active = pairs.lazy().filter(skipped_pair.not());
    let mut untouched = lit(true);
    for receiver in receivers {
        let p = prefix(receiver);
        let changes = format!("{p}>changes");
        let problem = col(format!("{p}>problem"));
        untouched = untouched.and(changed(&changes).not());
        let ok = problem.clone().is_null();
        parts.push(shape(
            active.clone().filter(changed(&changes)),
            [
                when(ok.clone())
                    .then(lit("update"))
                    .otherwise(lit("invalid")),
                col("key"),
                col("key_value"),
                col(A_ID),
                col(B_ID),
                lit(name(receiver)),
                col(changes.as_str()),
                problem,
                when(ok.clone())
                    .then(concat_str(
                        [lit("{"), col(format!("{p}>frag")), lit("}")],
                        "",
                        false,
                    ))
                    .otherwise(null_str()),
                when(ok).then(col("synced")).otherwise(null_str()),
            ],
            pair_rows(),
        ));
    }
    if has_conflicts {
        untouched = untouched.and(changed("c>changes").not());
        parts.push(shape(
            active.clone().filter(changed("c>changes")),
            [
                lit("conflict"),
                col("key"),
                col("key_value"),
                col(A_ID),
                col(B_ID),
                null_str(),
                col("c>changes"),
                lit(if has_base {
                    "changed on both sides since the last sync"
                } else {
                    "the sides differ and no side is set to win"
                }),
                null_str(),
                null_str(),
            ],
            pair_rows(),
        ));
    }
    parts.push(shape(
        active.filter(untouched),
        [
            lit("unchanged"),
            col("key"),
            col("key_value"),
            col(A_ID),
            col(B_ID),
            null_str(),
            lit(NULL),
            null_str(),
            null_str(),
            col("synced"),
        ],
        pair_rows(),
    ));

    // Duplicates: every record of an ambiguous key value.
    // A key value's records together, in a fixed order.
    parts.push(shape(
        m.duplicates.lazy().sort(
            ["key_value", "side", "id"],
            SortMultipleOptions::default().with_nulls_last(true),
        ),
        [
            lit("duplicate"),
            col("key"),
            col("key_value"),
            when(col("side").eq(lit("a")))
                .then(col("id"))
                .otherwise(null_str()),
            when(col("side").eq(lit("b")))
                .then(col("id"))
                .otherwise(null_str()),
            null_str(),
            lit(NULL),
            col("reason"),
            null_str(),
            null_str(),
        ],
        [lit(NULL), lit(NULL)],
    ));

    // Collected before sorting: sorting the union lazily ran a third slower
    // and held half a gigabyte more.
    // Each class in the order of the snapshots' records. Changes are still
    // packed text here (see `pack`) and become the plan's list last.
    let mut rows = concat(parts, UnionArgs::default())?.collect()?;
    let started = std::time::Instant::now();
    // The order is worked out on the sort keys alone; then each column is
    // put in that order and its unsorted self let go (two columns at a
    // time, on two cores), so that the rows are never held twice.
    let order = rows
        .select(["class", "~a_row", "~b_row", "receiver"])?
        .lazy()
        .with_row_index("~at", None)
        .sort(
            ["class", "~a_row", "~b_row", "receiver"],
            SortMultipleOptions::default()
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .select([col("~at")])
        .collect()?;
    let order = order.column("~at")?.idx()?.clone();
    let unsorted = PLAN_COLUMNS
        .iter()
        .map(|name| rows.drop_in_place(name))
        .collect::<PolarsResult<Vec<Column>>>()?;
    drop(rows);
    let columns = polars_core::runtime::RAYON.install(|| {
        use rayon::prelude::*;
        unsorted
            .into_par_iter()
            .map(|unsorted| {
                let sorted = unsorted.take(&order)?;
                drop(unsorted);
                if sorted.name() == "changes" {
                    Ok(Column::from(unpack(&sorted)?))
                } else {
                    Ok(sorted)
                }
            })
            .collect::<PolarsResult<Vec<Column>>>()
    })?;
    let plan = DataFrame::new_infer_height(columns);
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "sorted the plan rows"
    );
    plan
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
        let packed: Vec<Option<String>> = rows
            .iter()
            .map(|r| {
                let mut buf = String::new();
                for entry in r {
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
        assert_eq!(list.dtype(), &changes_dtype());
        assert!(list.get(1).expect("row").is_null(), "no changes is null");
        for (i, r) in rows.iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            let got = list.list().expect("a list").get_as_series(i).expect("row");
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
}
