//! The engine: a pure function from two snapshots (and the links the ledger
//! knows) to a plan. No I/O, no clock: everything it needs comes in as
//! frames and a spec, so that a plan can be recomputed and tested alone.
//!
//! The work runs on Polars frames: each side is prepared (typed columns,
//! filter verdicts, normalized keys), matched by the key cascade
//! (`matching.rs`), compared field by field under the spec's rules
//! (`compare.rs`), each row's changes gathered in one pass (`gather.rs`),
//! and classified into plan rows (`classify.rs`).

mod classify;
mod compare;
mod gather;
mod matching;
pub mod normalize;

use polars::prelude::*;

use crate::spec::{FieldType, FilterRule, Normalizer, SideIx, Spec, expr::CmpOp, expr::Value};

pub use classify::{PLAN_COLUMNS, changes_dtype};

/// Every class a plan row can have, in report order.
pub const CLASSES: [&str; 8] = [
    "create",
    "update",
    "conflict",
    "invalid",
    "duplicate",
    "orphan",
    "skipped",
    "unchanged",
];

pub(crate) const A_ID: &str = "a_id";
pub(crate) const B_ID: &str = "b_id";

/// What the engine reads.
pub struct Inputs {
    /// Side A's snapshot: `_id` and its canonical fields.
    pub a: LazyFrame,
    /// Side B's snapshot.
    pub b: LazyFrame,
    /// Known pairs from the ledger: (A id, B id).
    pub links: Vec<(String, String)>,
    /// The values last synced per pair: `a_id`, `b_id`, and one text column
    /// `base.<field>` per field (see [`baseline_frame`]).
    pub baseline: Option<DataFrame>,
    /// For each reference field, the links of the spec it refers to.
    pub refs: std::collections::BTreeMap<String, Vec<(String, String)>>,
}

/// Build the baseline frame from (A id, B id, JSON object of field texts).
pub fn baseline_frame(
    spec: &Spec,
    rows: &[(String, String, String)],
) -> PolarsResult<Option<DataFrame>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let parsed: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .map(|r| serde_json::from_str(&r.2).unwrap_or_default())
        .collect();
    let mut cols = vec![
        Column::new(
            A_ID.into(),
            rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        ),
        Column::new(
            B_ID.into(),
            rows.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        ),
    ];
    for f in &spec.fields {
        let vals: Vec<Option<String>> = parsed
            .iter()
            .map(|m| match m.get(&f.name) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            })
            .collect();
        cols.push(Column::new(classify::base_column(&f.name).into(), vals));
    }
    Ok(Some(DataFrame::new_infer_height(cols)?))
}

/// Compute the plan: one row per action (see `docs/plan.md`).
pub fn plan(spec: &Spec, inputs: Inputs) -> PolarsResult<DataFrame> {
    plan_sliced(spec, inputs, classify::PAIRS_AT_ONCE)
}

/// [`plan`], comparing the matched pairs `at_once` at a time: a smaller
/// slice holds less memory and costs more passes. The plan is the same.
pub fn plan_sliced(spec: &Spec, inputs: Inputs, at_once: usize) -> PolarsResult<DataFrame> {
    let started = std::time::Instant::now();
    let mut normalizers = spec
        .keys
        .iter()
        .map(|k| k.normalize)
        .chain(spec.fields.iter().filter_map(|f| f.compare.normalize));
    if normalizers.any(|n| n == Normalizer::Phone) {
        normalize::warm_up();
    }
    // Both sides at once: each is read and normalized in steps that leave a
    // core idle now and then, which the other side's steps fill.
    let (a, b) = polars_core::runtime::RAYON.join(
        || prepare(spec, inputs.a, SideIx::A, &inputs.refs)?.collect(),
        || prepare(spec, inputs.b, SideIx::B, &inputs.refs)?.collect(),
    );
    let (a, b) = (a?, b?);
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        rows_a = a.height(),
        rows_b = b.height(),
        "prepared both sides"
    );
    // A record filtered out on a side that sends is not matched at all; on a
    // side that only receives it still matches, so that its partner is not
    // created a second time.
    let pool = |df: &DataFrame, side: SideIx| -> PolarsResult<Vec<bool>> {
        if classify::sends(spec.direction, side) {
            let skip = df.column(&format!("{}_skip", prefix(side)))?;
            Ok(skip.is_null().iter().map(|x| x == Some(true)).collect())
        } else {
            Ok(vec![true; df.height()])
        }
    };
    let matched = matching::cascade(
        spec,
        &a,
        &b,
        [pool(&a, SideIx::A)?, pool(&b, SideIx::B)?],
        &inputs.links,
    )?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        pairs = matched.len(),
        "matched"
    );
    let plan = classify::classify(spec, a, b, matched, inputs.baseline, at_once.max(1));
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "classified");
    plan
}

/// Column prefix of a side inside the engine.
pub(crate) fn prefix(side: SideIx) -> &'static str {
    match side {
        SideIx::A => "a",
        SideIx::B => "b",
    }
}

/// The name of a field's column for a side: `a.email`.
pub(crate) fn field_column(side: SideIx, field: &str) -> String {
    format!("{}.{field}", prefix(side))
}

/// The column holding a field's normal form under `n`: `a.phone~phone`.
pub(crate) fn norm_column(side: SideIx, field: &str, n: Normalizer) -> String {
    let digits = if matches!(n, Normalizer::Sku { digits_only: true }) {
        "-digits"
    } else {
        ""
    };
    format!("{}.{field}~{}{digits}", prefix(side), n.name())
}

/// The column holding a reference field's value translated to the other
/// side's ids through the parent spec's links: `a.customer~ref`.
pub(crate) fn ref_column(side: SideIx, field: &str) -> String {
    format!("{}.{field}~ref", prefix(side))
}

/// Whether a field's sending value is the field itself, so that its normal
/// form can be computed once per side and shared by keys and comparisons.
pub(crate) fn plain(f: &crate::spec::Field) -> bool {
    f.source == crate::spec::Source::Own
        && f.default.is_none()
        && f.map.is_none()
        && f.reference.is_none()
}

/// The name of the i-th key's normalized column for a side prefix.
pub(crate) fn key_column(p: &str, i: usize) -> String {
    format!("{p}#key{i}")
}

/// The Polars type of a canonical field.
pub fn dtype(ty: FieldType) -> DataType {
    match ty {
        FieldType::String => DataType::String,
        FieldType::Integer => DataType::Int64,
        FieldType::Decimal { decimals } => DataType::Decimal(38, decimals as usize),
        FieldType::Bool => DataType::Boolean,
        FieldType::Date => DataType::Date,
        FieldType::Datetime => DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC)),
    }
}

/// Rename a snapshot's columns to the side's prefix, add typed nulls for the
/// fields it lacks, and compute the filter verdict and the key columns.
fn prepare(
    spec: &Spec,
    lf: LazyFrame,
    side: SideIx,
    refs: &std::collections::BTreeMap<String, Vec<(String, String)>>,
) -> PolarsResult<LazyFrame> {
    let mut lf = lf;
    let schema = lf.collect_schema()?;
    let p = prefix(side);
    // The record's position in its snapshot orders the plan.
    let lf = lf.with_row_index(format!("{p}_row"), None);
    let mut cols = vec![
        col(crate::snapshot::ID_COLUMN)
            .cast(DataType::String)
            .alias(format!("{p}_id")),
        col(format!("{p}_row")),
    ];
    for f in &spec.fields {
        let e = if schema.contains(&f.name) {
            col(f.name.as_str()).cast(dtype(f.ty))
        } else {
            lit(NULL).cast(dtype(f.ty))
        };
        cols.push(e.alias(field_column(side, &f.name)));
    }
    let s = spec.side(side);
    // The first failing filter names the rule that skipped the row.
    let mut skip = lit(NULL).cast(DataType::String);
    for (text, rule) in s.filters.iter().rev() {
        let pass = filter_expr(spec, side, rule);
        skip = when(pass.not())
            .then(lit(format!("filtered out by {} rule `{text}`", s.name)))
            .otherwise(skip);
    }
    // Normal forms, computed once: keys and comparisons both read them.
    let mut forms: Vec<(String, Normalizer)> = Vec::new();
    for k in &spec.keys {
        for f in &k.fields {
            if k.normalize != Normalizer::Exact {
                forms.push((f.clone(), k.normalize));
            }
        }
    }
    for f in spec.fields.iter().filter(|f| plain(f)) {
        if let Some(n) = f.compare.normalize {
            forms.push((f.name.clone(), n));
        }
    }
    forms.sort_by_key(|(f, n)| {
        (
            f.clone(),
            n.name(),
            matches!(n, Normalizer::Sku { digits_only: true }),
        )
    });
    forms.dedup();
    let mut normal = vec![skip.alias(format!("{p}_skip"))];
    for (f, n) in &forms {
        normal.push(
            normalize::normalized(
                col(field_column(side, f)).cast(DataType::String),
                *n,
                s.region.as_deref(),
            )
            .alias(norm_column(side, f, *n)),
        );
    }
    let mut extra = Vec::new();
    for (i, k) in spec.keys.iter().enumerate() {
        let parts: Vec<Expr> = k
            .fields
            .iter()
            .map(|f| match k.normalize {
                Normalizer::Exact => {
                    let e = col(field_column(side, f)).cast(DataType::String);
                    when(e.clone().eq(lit("")))
                        .then(lit(NULL).cast(DataType::String))
                        .otherwise(e)
                }
                n => col(norm_column(side, f, n)),
            })
            .collect();
        let key = if parts.len() == 1 {
            parts.into_iter().next().expect("one part")
        } else {
            concat_str(parts, "\u{1f}", false)
        };
        extra.push(key.alias(key_column(p, i)));
    }
    let mut out = lf.select(cols).with_columns(normal).with_columns(extra);
    // A reference is the parent's id on this side; the other side knows the
    // parent by its own id, found through the parent spec's links.
    for f in spec.fields.iter().filter(|f| f.reference.is_some()) {
        let links = refs.get(&f.name).cloned().unwrap_or_default();
        let (mine, theirs): (Vec<String>, Vec<String>) = match side {
            SideIx::A => links.into_iter().unzip(),
            SideIx::B => links.into_iter().map(|(l, r)| (r, l)).unzip(),
        };
        let map = DataFrame::new_infer_height(vec![
            Column::new("~ref_from".into(), mine),
            Column::new(ref_column(side, &f.name).into(), theirs),
        ])?
        .lazy()
        .unique(
            Some(polars::prelude::Selector::ByName {
                names: std::sync::Arc::new(["~ref_from".into()]),
                strict: true,
            }),
            UniqueKeepStrategy::First,
        );
        out = out
            .with_column(
                col(field_column(side, &f.name))
                    .cast(DataType::String)
                    .alias("~ref_key"),
            )
            .join(
                map,
                [col("~ref_key")],
                [col("~ref_from")],
                JoinArgs::new(JoinType::Left),
            )
            .drop(polars::prelude::Selector::ByName {
                names: std::sync::Arc::new(["~ref_key".into()]),
                strict: false,
            })
            .with_column(col(ref_column(side, &f.name)).cast(dtype(f.ty)));
    }
    Ok(out)
}

fn filter_expr(spec: &Spec, side: SideIx, rule: &FilterRule) -> Expr {
    let field = spec
        .field(rule.field())
        .expect("validated: filters name fields");
    let c = col(field_column(side, &field.name));
    let value = |v: &Value| match v {
        Value::Null => lit(NULL).cast(dtype(field.ty)),
        Value::Bool(b) => lit(*b).cast(dtype(field.ty)),
        Value::Number(n) => lit(*n).cast(dtype(field.ty)),
        Value::Text(t) => lit(t.clone()).cast(dtype(field.ty)),
    };
    match rule {
        FilterRule::Compare { op, value: v, .. } => {
            let v = value(v);
            match op {
                CmpOp::Eq => c.eq_missing(v),
                CmpOp::Ne => c.neq_missing(v),
                CmpOp::Lt => c.lt(v).fill_null(lit(false)),
                CmpOp::Le => c.lt_eq(v).fill_null(lit(false)),
                CmpOp::Gt => c.gt(v).fill_null(lit(false)),
                CmpOp::Ge => c.gt_eq(v).fill_null(lit(false)),
            }
        }
        FilterRule::In {
            values, negated, ..
        } => {
            let any = values
                .iter()
                .fold(lit(false), |acc, v| acc.or(c.clone().eq_missing(value(v))));
            if *negated { any.not() } else { any }
        }
        FilterRule::IsNull { negated, .. } => {
            if *negated {
                c.is_not_null()
            } else {
                c.is_null()
            }
        }
    }
}
