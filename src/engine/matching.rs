//! The key cascade: links first, then each key in order. A record matched
//! by one key leaves the pool for the next; a key value found more than once
//! on either side makes all its records `duplicate`, never a guess.

use polars::prelude::*;

use super::{A_ID, B_ID, key_column};
use crate::spec::Spec;

/// What matching found.
pub struct Matched {
    /// `a_id`, `b_id`, `key`, `key_value`.
    pub pairs: DataFrame,
    /// `side` (`a`/`b`), `id`, `key`, `key_value`, `reason`.
    pub duplicates: DataFrame,
}

const KV: &str = "key_value";

/// Match the prepared frames `a` and `b` (ids and key columns) through
/// `links` (`a_id`, `b_id`) and the spec's keys.
pub fn cascade(
    spec: &Spec,
    a: &DataFrame,
    b: &DataFrame,
    links: DataFrame,
) -> PolarsResult<Matched> {
    let [an, bn] = [&spec.sides[0].name, &spec.sides[1].name];
    let mut pool_a = a.clone().lazy();
    let mut pool_b = b.clone().lazy();
    let mut pairs = Vec::new();
    let mut dups = Vec::new();

    let mut steps: Vec<(String, Expr, Expr)> = Vec::new();
    if links.height() > 0 {
        // A link is a key whose value is the pair itself: both ids must be in
        // the pools and each may appear in one link only.
        let l = links
            .lazy()
            .select([col(A_ID), col(B_ID)])
            .with_column(concat_str([col(A_ID), col(B_ID)], "\u{1f}", false).alias("link"));
        pool_a = pool_a.join(
            l.clone().select([col(A_ID), col("link")]),
            [col(A_ID)],
            [col(A_ID)],
            JoinArgs::new(JoinType::Left),
        );
        pool_b = pool_b.join(
            l.select([col(B_ID), col("link")]),
            [col(B_ID)],
            [col(B_ID)],
            JoinArgs::new(JoinType::Left),
        );
        steps.push(("link".into(), col("link"), col("link")));
    }
    for (i, k) in spec.keys.iter().enumerate() {
        steps.push((
            k.name.clone(),
            col(key_column("a", i)),
            col(key_column("b", i)),
        ));
    }

    for (name, ka, kb) in steps {
        let la = pool_a
            .clone()
            .select([col(A_ID), ka.alias(KV)])
            .filter(col(KV).is_not_null());
        let lb = pool_b
            .clone()
            .select([col(B_ID), kb.alias(KV)])
            .filter(col(KV).is_not_null());
        // Count first; list the ids of the few ambiguous values only.
        let na = la.clone().group_by([col(KV)]).agg([len().alias("na")]);
        let nb = lb.clone().group_by([col(KV)]).agg([len().alias("nb")]);
        let counts = na
            .join(
                nb,
                [col(KV)],
                [col(KV)],
                JoinArgs::new(JoinType::Full).with_coalesce(JoinCoalesce::CoalesceColumns),
            )
            .with_columns([
                col("na").fill_null(lit(0)).cast(DataType::UInt32),
                col("nb").fill_null(lit(0)).cast(DataType::UInt32),
            ])
            .filter(col("na").gt(lit(1)).or(col("nb").gt(lit(1))))
            .collect()?
            .lazy();
        let ids = |side: LazyFrame, id: &str, out: &str| {
            side.join(
                counts.clone().select([col(KV)]),
                [col(KV)],
                [col(KV)],
                JoinArgs::new(JoinType::Inner),
            )
            .group_by([col(KV)])
            .agg([col(id)
                .sort(SortOptions::default())
                .str()
                .join(", ", true)
                .alias(out)])
        };
        let amb = counts
            .clone()
            .join(
                ids(la.clone(), A_ID, "a_ids"),
                [col(KV)],
                [col(KV)],
                JoinArgs::new(JoinType::Left),
            )
            .join(
                ids(lb.clone(), B_ID, "b_ids"),
                [col(KV)],
                [col(KV)],
                JoinArgs::new(JoinType::Left),
            )
            .with_column(
                concat_str(
                    [
                        lit(format!("{name} `")),
                        col(KV),
                        lit("` occurs "),
                        col("na").cast(DataType::String),
                        lit(format!("x in {an}")),
                        when(col("na").gt(lit(0)))
                            .then(concat_str([lit(" ("), col("a_ids"), lit(")")], "", true))
                            .otherwise(lit("")),
                        lit(" and "),
                        col("nb").cast(DataType::String),
                        lit(format!("x in {bn}")),
                        when(col("nb").gt(lit(0)))
                            .then(concat_str([lit(" ("), col("b_ids"), lit(")")], "", true))
                            .otherwise(lit("")),
                    ],
                    "",
                    true,
                )
                .alias("reason"),
            )
            .select([col(KV), col("reason")])
            .collect()?;
        let amb = amb.lazy();
        let dup_a = la
            .clone()
            .join(
                amb.clone(),
                [col(KV)],
                [col(KV)],
                JoinArgs::new(JoinType::Inner),
            )
            .select([
                lit("a").alias("side"),
                col(A_ID).alias("id"),
                lit(name.clone()).alias("key"),
                col(KV),
                col("reason"),
            ]);
        let dup_b = lb
            .clone()
            .join(
                amb.clone(),
                [col(KV)],
                [col(KV)],
                JoinArgs::new(JoinType::Inner),
            )
            .select([
                lit("b").alias("side"),
                col(B_ID).alias("id"),
                lit(name.clone()).alias("key"),
                col(KV),
                col("reason"),
            ]);
        let matched = la
            .join(
                amb.clone(),
                [col(KV)],
                [col(KV)],
                JoinArgs::new(JoinType::Anti),
            )
            .join(lb, [col(KV)], [col(KV)], JoinArgs::new(JoinType::Inner))
            .select([
                col(A_ID),
                col(B_ID),
                lit(name.clone()).alias("key"),
                col(KV),
            ])
            .collect()?;
        let dup_a = dup_a.collect()?;
        let dup_b = dup_b.collect()?;

        let gone_a = concat(
            [
                matched.clone().lazy().select([col(A_ID)]),
                dup_a.clone().lazy().select([col("id").alias(A_ID)]),
            ],
            UnionArgs::default(),
        )?;
        let gone_b = concat(
            [
                matched.clone().lazy().select([col(B_ID)]),
                dup_b.clone().lazy().select([col("id").alias(B_ID)]),
            ],
            UnionArgs::default(),
        )?;
        pool_a = pool_a
            .join(
                gone_a,
                [col(A_ID)],
                [col(A_ID)],
                JoinArgs::new(JoinType::Anti),
            )
            .collect()?
            .lazy();
        pool_b = pool_b
            .join(
                gone_b,
                [col(B_ID)],
                [col(B_ID)],
                JoinArgs::new(JoinType::Anti),
            )
            .collect()?
            .lazy();
        pairs.push(matched.lazy());
        dups.push(dup_a.lazy());
        dups.push(dup_b.lazy());
    }

    let pairs = if pairs.is_empty() {
        DataFrame::new_infer_height(vec![
            Column::new_empty(A_ID.into(), &DataType::String),
            Column::new_empty(B_ID.into(), &DataType::String),
            Column::new_empty("key".into(), &DataType::String),
            Column::new_empty(KV.into(), &DataType::String),
        ])?
    } else {
        concat(pairs, UnionArgs::default())?.collect()?
    };
    let duplicates = if dups.is_empty() {
        DataFrame::new_infer_height(vec![
            Column::new_empty("side".into(), &DataType::String),
            Column::new_empty("id".into(), &DataType::String),
            Column::new_empty("key".into(), &DataType::String),
            Column::new_empty(KV.into(), &DataType::String),
            Column::new_empty("reason".into(), &DataType::String),
        ])?
    } else {
        concat(dups, UnionArgs::default())?.collect()?
    };
    Ok(Matched { pairs, duplicates })
}
