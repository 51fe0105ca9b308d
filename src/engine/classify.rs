//! From matched pairs and leftover records to plan rows with a class, the
//! field-level changes, a reason, the payload to write, and the values the
//! pair will hold once the row is applied (the next baseline).

use polars::prelude::*;

use super::compare::{equal, equal_loose, json_ready, text, want};
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

/// One field's value as a JSON member (`"email":"a@b"`), for payloads.
fn member(f: &Field, value: Expr) -> Expr {
    as_struct(vec![json_ready(value, f.ty).alias(f.name.as_str())])
        .struct_()
        .json_encode()
        .str()
        .strip_prefix(lit("{"))
        .str()
        .strip_suffix(lit("}"))
}

/// Select the plan's columns in order with their types.
fn shape(lf: LazyFrame, exprs: [Expr; 10]) -> LazyFrame {
    let types = [
        DataType::String,
        DataType::String,
        DataType::String,
        DataType::String,
        DataType::String,
        DataType::String,
        changes_dtype(),
        DataType::String,
        DataType::String,
        DataType::String,
    ];
    lf.select(
        exprs
            .into_iter()
            .zip(types)
            .zip(PLAN_COLUMNS)
            .map(|((e, t), n)| e.cast(t).alias(n))
            .collect::<Vec<_>>(),
    )
}

/// Group long rows of (row, receiver?, field, before, after, baseline, frag,
/// problem) into one list of changes per row.
fn gather(long: Vec<LazyFrame>, by: &[&str]) -> PolarsResult<Option<LazyFrame>> {
    if long.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        concat(long, UnionArgs::default())?
            .group_by(by.iter().map(|c| col(*c)).collect::<Vec<_>>())
            .agg([
                as_struct(vec![
                    col("field"),
                    col("before"),
                    col("after"),
                    col("baseline"),
                ])
                .alias("changes"),
                col("frag").str().join(",", true).alias("frag"),
                col("problem").str().join("; ", true).alias("problem"),
            ])
            .with_column(
                when(col("problem").eq(lit("")))
                    .then(null_str())
                    .otherwise(col("problem"))
                    .alias("problem"),
            ),
    ))
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

pub fn classify(
    spec: &Spec,
    a: &DataFrame,
    b: &DataFrame,
    m: Matched,
    baseline: Option<DataFrame>,
) -> PolarsResult<DataFrame> {
    let name = |s: SideIx| spec.side(s).name.clone();
    let mut parts: Vec<LazyFrame> = Vec::new();
    let has_base = baseline.is_some();

    // Matched pairs, with both sides' values side by side (and the baseline).
    let mut pairs = m
        .pairs
        .clone()
        .lazy()
        .join(
            a.clone().lazy(),
            [col(A_ID)],
            [col(A_ID)],
            JoinArgs::new(JoinType::Inner),
        )
        .join(
            b.clone().lazy(),
            [col(B_ID)],
            [col(B_ID)],
            JoinArgs::new(JoinType::Inner),
        );
    if let Some(base) = baseline {
        pairs = pairs
            .join(
                base.lazy().with_column(lit(true).alias("has_base")),
                [col(A_ID), col(B_ID)],
                [col(A_ID), col(B_ID)],
                JoinArgs::new(JoinType::Left),
            )
            .with_column(col("has_base").fill_null(lit(false)));
    }
    let pairs = pairs.with_row_index("row", None).collect()?;
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
    ));
    let active = pairs.lazy().filter(skipped_pair.not());

    let mut long = Vec::new();
    let mut synced = Vec::new();
    for f in spec.fields.iter().filter(|f| !f.ignore) {
        let (flows, conflict) = routes(spec, f, has_base);
        let mut moving = Vec::new();
        for Flow { from, when: route } in flows {
            let to = from.other();
            if f.path(to).is_none() {
                continue;
            }
            let (w, problem) = want(f, from);
            let have = col(field_column(to, &f.name));
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
                        name(to)
                    )))
                    .otherwise(problem)
            } else {
                problem
            };
            let baseline = if has_base {
                col(base_column(&f.name))
            } else {
                null_str()
            };
            long.push(active.clone().filter(diff).select([
                col("row"),
                lit(name(to)).alias("receiver"),
                lit(f.name.clone()).alias("field"),
                text(have).alias("before"),
                text(w.clone()).alias("after"),
                baseline.alias("baseline"),
                member(f, w).alias("frag"),
                problem.alias("problem"),
            ]));
        }
        if let Some(conflict) = conflict {
            let (wa, _) = want(f, SideIx::A);
            let hb = col(field_column(SideIx::B, &f.name));
            let baseline = if has_base {
                col(base_column(&f.name))
            } else {
                null_str()
            };
            long.push(
                active
                    .clone()
                    .filter(
                        equal(spec, f, wa, hb.clone(), SideIx::A)
                            .not()
                            .and(conflict),
                    )
                    .select([
                        col("row"),
                        null_str().alias("receiver"),
                        lit(f.name.clone()).alias("field"),
                        text(col(field_column(SideIx::A, &f.name))).alias("before"),
                        text(hb).alias("after"),
                        baseline.alias("baseline"),
                        null_str().alias("frag"),
                        null_str().alias("problem"),
                    ]),
            );
        }
        synced.push(synced_value(f, &moving).alias(f.name.as_str()));
    }
    // Baselines serve fields synced both ways only; one-way specs skip the
    // cost of encoding every pair's values.
    let keeps_baselines = spec
        .fields
        .iter()
        .any(|f| matches!(spec.field_direction(f), Direction::Both { .. }));
    let synced_json = if synced.is_empty() || !keeps_baselines {
        null_str()
    } else {
        as_struct(synced).struct_().json_encode()
    };
    let active = active.with_column(synced_json.alias("synced"));
    match gather(long, &["row", "receiver"])? {
        Some(grouped) => {
            let rows = active.join(
                grouped,
                [col("row")],
                [col("row")],
                JoinArgs::new(JoinType::Left),
            );
            let changed = col("changes").is_not_null();
            let writes = changed
                .clone()
                .and(col("receiver").is_not_null())
                .and(col("problem").is_null());
            parts.push(shape(
                rows,
                [
                    when(changed.clone().not())
                        .then(lit("unchanged"))
                        .when(col("receiver").is_null())
                        .then(lit("conflict"))
                        .when(col("problem").is_not_null())
                        .then(lit("invalid"))
                        .otherwise(lit("update")),
                    col("key"),
                    col("key_value"),
                    col(A_ID),
                    col(B_ID),
                    col("receiver"),
                    col("changes"),
                    when(changed.clone().and(col("receiver").is_null()))
                        .then(lit(if has_base {
                            "changed on both sides since the last sync"
                        } else {
                            "the sides differ and no side is set to win"
                        }))
                        .otherwise(col("problem")),
                    when(writes.clone())
                        .then(concat_str([lit("{"), col("frag"), lit("}")], "", false))
                        .otherwise(null_str()),
                    when(writes.or(changed.not()))
                        .then(col("synced"))
                        .otherwise(null_str()),
                ],
            ));
        }
        None => parts.push(shape(
            active,
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
        )),
    }

    // Records matched on neither side.
    for side in SideIx::both() {
        let p = prefix(side);
        let id = format!("{p}_id");
        let frame = if side == SideIx::A { a } else { b };
        let taken = m.pairs.clone().lazy().select([col(id.as_str())]);
        let dup_ids = m
            .duplicates
            .clone()
            .lazy()
            .filter(col("side").eq(lit(p)))
            .select([col("id").alias(id.as_str())]);
        let alone = frame
            .clone()
            .lazy()
            .join(
                taken,
                [col(id.as_str())],
                [col(id.as_str())],
                JoinArgs::new(JoinType::Anti),
            )
            .join(
                dup_ids,
                [col(id.as_str())],
                [col(id.as_str())],
                JoinArgs::new(JoinType::Anti),
            )
            .with_row_index("row", None)
            .collect()?
            .lazy();
        let (left, right) = if side == SideIx::A {
            (col(id.as_str()), null_str())
        } else {
            (null_str(), col(id.as_str()))
        };
        let skip_col = col(format!("{p}_skip"));
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
            ));
            continue;
        }
        let to = side.other();
        let mut long = Vec::new();
        let mut members = Vec::new();
        let mut synced = Vec::new();
        for f in spec
            .fields
            .iter()
            .filter(|f| !f.ignore && f.path(to).is_some())
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
            long.push(
                alone
                    .clone()
                    .select([
                        col("row"),
                        lit(f.name.clone()).alias("field"),
                        null_str().alias("before"),
                        text(w).alias("after"),
                        null_str().alias("baseline"),
                        null_str().alias("frag"),
                        problem.alias("problem"),
                    ])
                    .filter(col("after").is_not_null().or(col("problem").is_not_null())),
            );
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
        let with_payload = alone.with_columns([payload.alias("payload"), synced.alias("synced")]);
        let rows = match gather(long, &["row"])? {
            Some(g) => {
                with_payload.join(g, [col("row")], [col("row")], JoinArgs::new(JoinType::Left))
            }
            None => with_payload.with_columns([
                lit(NULL).cast(changes_dtype()).alias("changes"),
                null_str().alias("problem"),
            ]),
        };
        let ok = col("problem").is_null();
        parts.push(shape(
            rows,
            [
                when(ok.clone())
                    .then(lit("create"))
                    .otherwise(lit("invalid")),
                null_str(),
                null_str(),
                left,
                right,
                lit(name(to)),
                col("changes"),
                col("problem"),
                when(ok.clone()).then(col("payload")).otherwise(null_str()),
                when(ok).then(col("synced")).otherwise(null_str()),
            ],
        ));
    }

    // Duplicates: every record of an ambiguous key value.
    parts.push(shape(
        m.duplicates.lazy(),
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
    ));

    concat(parts, UnionArgs::default())?
        .sort(
            ["class", "key_value", "left_id", "right_id", "receiver"],
            SortMultipleOptions::default()
                .with_nulls_last(true)
                .with_maintain_order(true),
        )
        .collect()
}
