//! From matched pairs and leftover records to plan rows with a class, the
//! field-level changes, a reason, the payload to write, and the values the
//! pair will hold once the row is applied (the next baseline).

use polars::prelude::*;

use super::compare::{equal, equal_loose, json_ready, text, want};
use super::gather::{Change, Gather, unpack};
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

/// A write's problem (text, else null) once `f`'s rule `required` is
/// applied: where the value `w` to write is empty and nothing else is wrong,
/// the problem is `empty()`.
fn required(
    f: &Field,
    problem: Option<Expr>,
    w: &Expr,
    empty: impl FnOnce() -> String,
) -> Option<Expr> {
    if !f.required {
        return problem;
    }
    let missing = w.clone().is_null();
    let empty = lit(empty());
    Some(match problem {
        Some(p) => when(p.clone().is_null().and(missing))
            .then(empty)
            .otherwise(p),
        None => when(missing).then(empty).otherwise(null_str()),
    })
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

/// Select the plan's columns in order, all text here: `changes` stays
/// packed until the plan is put together (see `gather::put`).
/// `rows` are the records' positions in their snapshots (`a_row`, `b_row`),
/// kept as `~a_row` and `~b_row` to order the plan.
fn shape(lf: LazyFrame, exprs: [Expr; 10], rows: [Expr; 2]) -> LazyFrame {
    let mut cols: Vec<Expr> = exprs
        .into_iter()
        .zip(PLAN_COLUMNS)
        .map(|(e, n)| e.cast(DataType::String).alias(n))
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
            let problem = required(f, problem, &w, || {
                format!("required field `{}` is empty", f.name)
            });
            members.push(json_ready(w.clone(), f.ty).alias(f.name.as_str()));
            synced.push(text(w.clone()).alias(f.name.as_str()));
            let when = match &problem {
                Some(p) => w.clone().is_not_null().or(p.clone().is_not_null()),
                None => w.clone().is_not_null(),
            };
            gather.push(Change {
                when,
                field: f.name.clone(),
                before: null_str(),
                after: w,
                baseline: null_str(),
                member: None,
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
        let (work, read) = gather.finish("");
        wide.extend(work);
        let ok = col("problem").is_null();
        parts.push(shape(
            alone.with_columns(wide).with_columns(read),
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
            let mut diff = equal(spec, f, w.clone(), have.clone(), from).not();
            if let Some(p) = &problem {
                diff = diff.or(p.clone().is_not_null());
            }
            if f.keep_target_if_set {
                diff = diff.and(have.clone().is_null());
            }
            let diff = diff.and(route);
            moving.push((from, diff.clone()));
            if f.create_only {
                continue;
            }
            let problem = required(f, problem, &w, || {
                format!(
                    "required field `{}` would be emptied in {}",
                    f.name,
                    name(receiver)
                )
            });
            to[receiver as usize].push(Change {
                when: diff,
                field: f.name.clone(),
                before: have,
                after: w.clone(),
                baseline: base_or_null(f),
                member: Some(json_ready(w, f.ty)),
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
                member: None,
                problem: None,
            });
        }
        synced.push(synced_value(f, &moving).alias(f.name.as_str()));
    }
    // What each slice of pairs computes, and the columns it keeps. Polars
    // evaluates the inputs of one expression on all cores only when a frame
    // gets fewer expressions than it has threads, so nothing constant is
    // computed per slice: a one-way spec computes one expression.
    let mut wide = Vec::new();
    let mut needed: Vec<Expr> = [A_ID, B_ID, "a_skip", "b_skip", "a_row", "b_row"]
        .into_iter()
        .chain(["key", "key_value"])
        .map(col)
        .collect();
    if synced.is_empty() || !keeps_baselines {
        needed.push(null_str().alias("synced"));
    } else {
        wide.push(as_struct(synced).struct_().json_encode().alias("synced"));
        needed.push(col("synced"));
    }
    let [to_a, to_b] = to;
    let receivers: Vec<SideIx> = SideIx::both()
        .into_iter()
        .filter(|s| !(if *s == SideIx::A { &to_a } else { &to_b }).is_empty())
        .collect();
    let has_conflicts = !conflicts.is_empty();
    // The pairs are worked out a slice at a time: a slice's side values are
    // let go once its plan columns are computed, so the sides' values are
    // never gathered for all pairs at once.
    for (g, p) in [(to_a, "a>"), (to_b, "b>"), (conflicts, "c>")] {
        let (work, read) = g.finish(p);
        wide.extend(work);
        needed.extend(read);
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

    in_plan_order(parts)
}

/// The plan's sort keys besides the class, each ascending, nulls last.
const ORDER: [&str; 3] = ["~a_row", "~b_row", "receiver"];

/// The plan from its parts: classes in alphabetical order, each class's rows
/// by their records' places in the snapshots (A, then B) and then by
/// receiver. Every part comes out of [`classify`] already in that order
/// (pairs in A's order, records alone in their snapshot's), so the rows of a
/// class fed by one part need no sorting, and the plan is put together
/// without gathering its rows into a new order.
fn in_plan_order(parts: Vec<LazyFrame>) -> PolarsResult<DataFrame> {
    use rayon::prelude::*;
    let started = std::time::Instant::now();
    let frames: Vec<DataFrame> = polars_core::runtime::RAYON.install(|| {
        parts
            .into_par_iter()
            .map(|p| p.collect())
            .collect::<PolarsResult<_>>()
    })?;
    // With no rows at all, the plan is the parts' (empty) shape.
    let empty = frames.first().map(DataFrame::clear);
    // Each class's pieces, in the parts' order.
    let mut classes: std::collections::BTreeMap<String, Vec<DataFrame>> = Default::default();
    for frame in frames.into_iter().filter(|f| f.height() > 0) {
        let class = frame.column("class")?.str()?.clone();
        let first = class.get(0).map(str::to_string);
        if class
            .equal_missing(first.as_deref().unwrap_or_default())
            .all()
        {
            classes
                .entry(first.unwrap_or_default())
                .or_default()
                .push(frame);
            continue;
        }
        let names: Vec<String> = class
            .unique()?
            .iter()
            .flatten()
            .map(str::to_string)
            .collect();
        for name in &names {
            let piece = frame.filter(&class.equal_missing(name.as_str()))?;
            classes.entry(name.clone()).or_default().push(piece);
        }
    }
    let mut plan: Option<DataFrame> = None;
    for (_, pieces) in classes {
        let mut pieces = pieces.into_iter();
        let mut rows = pieces.next().expect("a class has rows");
        for piece in pieces {
            rows.vstack_mut_owned(piece)?;
        }
        if !sorted(&rows)? {
            rows = rows.sort(
                ORDER,
                SortMultipleOptions::default()
                    .with_nulls_last(true)
                    .with_maintain_order(true),
            )?;
        }
        match &mut plan {
            Some(p) => {
                p.vstack_mut_owned(rows)?;
            }
            None => plan = Some(rows),
        }
    }
    let mut plan = plan
        .or(empty)
        .ok_or_else(|| polars_err!(NoData: "a plan needs its parts"))?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "put the plan rows in order"
    );
    // Each column in one piece, its pieces let go as it is done (the rows
    // are never held twice); the changes become the plan's list.
    let pieces = PLAN_COLUMNS
        .iter()
        .map(|name| plan.drop_in_place(name))
        .collect::<PolarsResult<Vec<Column>>>()?;
    drop(plan);
    let columns = polars_core::runtime::RAYON.install(|| {
        pieces
            .into_par_iter()
            .map(|c| {
                if c.name() == "changes" {
                    Ok(Column::from(unpack(&c)?))
                } else {
                    Ok(c.rechunk())
                }
            })
            .collect::<PolarsResult<Vec<Column>>>()
    })?;
    DataFrame::new_infer_height(columns)
}

/// Whether a class's rows are already in the plan's order ([`ORDER`]).
fn sorted(rows: &DataFrame) -> PolarsResult<bool> {
    let [a, b, r] = ORDER.map(|n| rows.column(n));
    let (a, b, r) = (a?.idx()?, b?.idx()?, r?.str()?);
    // Nulls last: a missing value sorts after every value.
    let last = |v: Option<IdxSize>| (v.is_none(), v.unwrap_or(0));
    let mut keys = a
        .iter()
        .zip(b.iter())
        .zip(r.iter())
        .map(|((a, b), r)| (last(a), last(b), r.is_none(), r));
    let Some(mut previous) = keys.next() else {
        return Ok(true);
    };
    for k in keys {
        if previous > k {
            return Ok(false);
        }
        previous = k;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan row: class, A row, B row, receiver, id.
    type Row<'a> = (
        &'a str,
        Option<IdxSize>,
        Option<IdxSize>,
        Option<&'a str>,
        &'a str,
    );

    fn part(rows: &[Row]) -> LazyFrame {
        let text = |f: &dyn Fn(usize) -> Option<String>| -> Vec<Option<String>> {
            (0..rows.len()).map(f).collect()
        };
        let mut cols: Vec<Column> = PLAN_COLUMNS
            .iter()
            .map(|n| {
                let values = match *n {
                    "class" => text(&|i| Some(rows[i].0.to_string())),
                    "receiver" => text(&|i| rows[i].3.map(str::to_string)),
                    "left_id" => text(&|i| Some(rows[i].4.to_string())),
                    _ => text(&|_| None),
                };
                Column::new((*n).into(), values)
            })
            .collect();
        cols.push(Column::new(
            "~a_row".into(),
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        ));
        cols.push(Column::new(
            "~b_row".into(),
            rows.iter().map(|r| r.2).collect::<Vec<_>>(),
        ));
        DataFrame::new_infer_height(cols).unwrap().lazy()
    }

    fn order(plan: &DataFrame) -> Vec<String> {
        let class = plan.column("class").unwrap().str().unwrap();
        let id = plan.column("left_id").unwrap().str().unwrap();
        class
            .iter()
            .zip(id.iter())
            .map(|(c, i)| format!("{}:{}", c.unwrap(), i.unwrap()))
            .collect()
    }

    #[test]
    fn the_plan_is_ordered_by_class_then_rows_then_receiver() {
        let plan = in_plan_order(vec![
            // Skipped records alone on A, in A's order.
            part(&[
                ("skipped", Some(1), None, None, "s1"),
                ("skipped", Some(7), None, None, "s7"),
            ]),
            // Skipped records alone on B: after A's (a null A row is last).
            part(&[("skipped", None, Some(0), None, "sb0")]),
            // Updates and invalid rows mixed in one part, in A's order.
            part(&[
                ("update", Some(0), Some(5), Some("erp"), "u0"),
                ("invalid", Some(2), Some(3), Some("erp"), "i2"),
                ("update", Some(4), Some(1), Some("erp"), "u4"),
            ]),
            // Skipped pairs: between the skipped records by their A rows.
            part(&[("skipped", Some(3), Some(9), None, "sp3")]),
            // Updates to the other side: after the first side's at the same
            // pair, by receiver.
            part(&[
                ("update", Some(0), Some(5), Some("crm"), "u0>crm"),
                ("update", Some(6), Some(2), Some("crm"), "u6>crm"),
            ]),
            // Duplicates keep their own order.
            part(&[
                ("duplicate", None, None, None, "d-b"),
                ("duplicate", None, None, None, "d-a"),
            ]),
            part(&[]),
        ])
        .unwrap();
        assert_eq!(
            order(&plan),
            [
                "duplicate:d-b",
                "duplicate:d-a",
                "invalid:i2",
                "skipped:s1",
                "skipped:sp3",
                "skipped:s7",
                "skipped:sb0",
                "update:u0>crm",
                "update:u0",
                "update:u4",
                "update:u6>crm",
            ]
        );
        assert_eq!(plan.get_column_names(), PLAN_COLUMNS);
        assert_eq!(plan.column("changes").unwrap().dtype(), &changes_dtype());
        for c in plan.columns() {
            assert_eq!(c.n_chunks(), 1, "{} in one piece", c.name());
        }
        let empty = in_plan_order(vec![part(&[])]).unwrap();
        assert_eq!(empty.height(), 0);
        assert_eq!(empty.get_column_names(), PLAN_COLUMNS);
        assert_eq!(empty.column("changes").unwrap().dtype(), &changes_dtype());
    }
}
