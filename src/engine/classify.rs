//! From matched pairs and leftover records to plan rows with a class, the
//! field-level changes, a reason, and the payload to write.

use polars::prelude::*;

use super::compare::{equal, json_ready, text, want};
use super::matching::Matched;
use super::{A_ID, B_ID, field_column, prefix};
use crate::spec::{Direction, Field, SideIx, Spec};

/// The plan's columns, in order (documented in `docs/plan.md`).
pub const PLAN_COLUMNS: [&str; 9] = [
    "class",
    "key",
    "key_value",
    "left_id",
    "right_id",
    "receiver",
    "changes",
    "reason",
    "payload",
];

/// `changes`: a list of `{field, before, after}`.
pub fn changes_dtype() -> DataType {
    DataType::List(Box::new(DataType::Struct(vec![
        polars::prelude::Field::new("field".into(), DataType::String),
        polars::prelude::Field::new("before".into(), DataType::String),
        polars::prelude::Field::new("after".into(), DataType::String),
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

/// Which sides a field's value flows from when the pair differs; `None`
/// means the difference is a conflict.
fn flows(d: Direction) -> Option<Vec<SideIx>> {
    match d {
        Direction::OneWay { from } => Some(vec![from]),
        Direction::Both { winner: Some(w) } => Some(vec![w]),
        Direction::Both { winner: None } => None,
        Direction::Audit => Some(vec![SideIx::A]),
    }
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

fn problem_if(cond: Expr, msg: Expr, rest: Expr) -> Expr {
    when(cond).then(msg).otherwise(rest)
}

/// Select the plan's columns in order with their types.
fn shape(lf: LazyFrame, exprs: [Expr; 9]) -> LazyFrame {
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

/// Group long rows of (row, receiver?, field, before, after, frag, problem)
/// into one list of changes per row.
fn gather(long: Vec<LazyFrame>, by: &[&str]) -> PolarsResult<Option<LazyFrame>> {
    if long.is_empty() {
        return Ok(None);
    }
    Ok(Some(
        concat(long, UnionArgs::default())?
            .group_by(by.iter().map(|c| col(*c)).collect::<Vec<_>>())
            .agg([
                as_struct(vec![col("field"), col("before"), col("after")]).alias("changes"),
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

pub fn classify(spec: &Spec, a: &DataFrame, b: &DataFrame, m: Matched) -> PolarsResult<DataFrame> {
    let name = |s: SideIx| spec.side(s).name.clone();
    let mut parts: Vec<LazyFrame> = Vec::new();

    // Matched pairs, with both sides' values side by side.
    let pairs = m
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
        )
        .with_row_index("row", None)
        .collect()?;
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
        ],
    ));
    let active = pairs.lazy().filter(skipped_pair.not());

    let mut long = Vec::new();
    for f in spec.fields.iter().filter(|f| !f.ignore) {
        match flows(spec.field_direction(f)) {
            Some(froms) => {
                for from in froms {
                    let to = from.other();
                    if f.path(to).is_none() || f.create_only {
                        continue;
                    }
                    let (w, unmapped) = want(f, from);
                    let have = col(field_column(to, &f.name));
                    let mut diff = equal(spec, f, w.clone(), have.clone(), from)
                        .not()
                        .or(unmapped.clone());
                    if f.keep_target_if_set {
                        diff = diff.and(have.clone().is_null());
                    }
                    let problem = problem_if(
                        unmapped,
                        concat_str(
                            [
                                lit(format!("{} value `", f.name)),
                                col(field_column(from, &f.name)).cast(DataType::String),
                                lit("` has no entry in the value map"),
                            ],
                            "",
                            false,
                        ),
                        if f.required {
                            problem_if(
                                w.clone().is_null(),
                                lit(format!(
                                    "required field `{}` would be emptied in {}",
                                    f.name,
                                    name(to)
                                )),
                                null_str(),
                            )
                        } else {
                            null_str()
                        },
                    );
                    long.push(active.clone().filter(diff).select([
                        col("row"),
                        lit(name(to)).alias("receiver"),
                        lit(f.name.clone()).alias("field"),
                        text(have).alias("before"),
                        text(w.clone()).alias("after"),
                        member(f, w).alias("frag"),
                        problem.alias("problem"),
                    ]));
                }
            }
            None => {
                if f.paths.iter().any(Option::is_none) {
                    continue;
                }
                let (wa, _) = want(f, SideIx::A);
                let hb = col(field_column(SideIx::B, &f.name));
                long.push(
                    active
                        .clone()
                        .filter(equal(spec, f, wa, hb.clone(), SideIx::A).not())
                        .select([
                            col("row"),
                            null_str().alias("receiver"),
                            lit(f.name.clone()).alias("field"),
                            text(col(field_column(SideIx::A, &f.name))).alias("before"),
                            text(hb).alias("after"),
                            null_str().alias("frag"),
                            null_str().alias("problem"),
                        ]),
                );
            }
        }
    }
    match gather(long, &["row", "receiver"])? {
        Some(grouped) => {
            let rows = active.join(
                grouped,
                [col("row")],
                [col("row")],
                JoinArgs::new(JoinType::Left),
            );
            let changed = col("changes").is_not_null();
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
                        .then(lit("changed on both sides; no side is set to win"))
                        .otherwise(col("problem")),
                    when(
                        changed
                            .and(col("receiver").is_not_null())
                            .and(col("problem").is_null()),
                    )
                    .then(concat_str([lit("{"), col("frag"), lit("}")], "", false))
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
                ],
            ));
            continue;
        }
        let to = side.other();
        let mut long = Vec::new();
        let mut members = Vec::new();
        for f in spec
            .fields
            .iter()
            .filter(|f| !f.ignore && f.path(to).is_some())
        {
            if !sends(spec.field_direction(f), side) {
                continue;
            }
            let (w, unmapped) = want(f, side);
            let problem = problem_if(
                unmapped,
                concat_str(
                    [
                        lit(format!("{} value `", f.name)),
                        col(field_column(side, &f.name)).cast(DataType::String),
                        lit("` has no entry in the value map"),
                    ],
                    "",
                    false,
                ),
                if f.required {
                    problem_if(
                        w.clone().is_null(),
                        lit(format!("required field `{}` is empty", f.name)),
                        null_str(),
                    )
                } else {
                    null_str()
                },
            );
            members.push(json_ready(w.clone(), f.ty).alias(f.name.as_str()));
            long.push(
                alone
                    .clone()
                    .select([
                        col("row"),
                        lit(f.name.clone()).alias("field"),
                        null_str().alias("before"),
                        text(w).alias("after"),
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
        let with_payload = alone.with_column(payload.alias("payload"));
        let rows = match gather(long, &["row"])? {
            Some(g) => {
                with_payload.join(g, [col("row")], [col("row")], JoinArgs::new(JoinType::Left))
            }
            None => with_payload.with_columns([
                lit(NULL).cast(changes_dtype()).alias("changes"),
                null_str().alias("problem"),
            ]),
        };
        parts.push(shape(
            rows,
            [
                when(col("problem").is_not_null())
                    .then(lit("invalid"))
                    .otherwise(lit("create")),
                null_str(),
                null_str(),
                left,
                right,
                lit(name(to)),
                col("changes"),
                col("problem"),
                when(col("problem").is_null())
                    .then(col("payload"))
                    .otherwise(null_str()),
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
