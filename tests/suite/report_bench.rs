//! How long `recon report` takes on a plan of 100,000 updates, and how big
//! the page it writes is. Ignored by default (it is a measurement, not a
//! check); run it with
//!
//! ```sh
//! cargo test --test report_bench -- --ignored --nocapture
//! ```

use std::process::Command;
use std::time::Instant;

use polars::prelude::*;
use recon::engine::PLAN_COLUMNS;
use recon::report::{Summary, write_plan};

const ROWS: u32 = 100_000;

/// A plan of `n` updates, three changed fields each, one of them a long
/// description: the shape a large drift after a bulk edit would have.
fn plan_of_updates(n: u32) -> PolarsResult<DataFrame> {
    let fields = ["city", "credit_limit", "notes"];
    let mut row = Vec::with_capacity(n as usize * 3);
    let mut field = Vec::with_capacity(n as usize * 3);
    let mut before = Vec::with_capacity(n as usize * 3);
    let mut after = Vec::with_capacity(n as usize * 3);
    for i in 0..n {
        for f in fields {
            row.push(i);
            field.push(f.to_string());
            let (b, a) = match f {
                "city" => ("Padua".to_string(), "Padova".to_string()),
                "credit_limit" => (
                    format!("{}.00", 1000 + i % 997),
                    format!("{}.00", 1500 + i % 991),
                ),
                _ => (
                    format!(
                        "Customer {i} prefers invoices by post and pays within thirty days of the invoice date; visited by the agent in October."
                    ),
                    format!(
                        "Customer {i} prefers invoices by email and pays within sixty days of the invoice date; visited by the agent in October."
                    ),
                ),
            };
            before.push(b);
            after.push(a);
        }
    }
    let long = df!("row" => row, "field" => field, "before" => before, "after" => after)?;
    let changes = long
        .lazy()
        .group_by_stable([col("row")])
        .agg([as_struct(vec![col("field"), col("before"), col("after")]).alias("changes")]);
    let ids: Vec<u32> = (0..n).collect();
    let base = df!("row" => ids)?.lazy().join(
        changes,
        [col("row")],
        [col("row")],
        JoinArgs::new(JoinType::Left),
    );
    let id = |p: &str| {
        concat_str(
            [lit(p.to_string()), col("row").cast(DataType::String)],
            "",
            false,
        )
    };
    let null = || lit(NULL).cast(DataType::String);
    let exprs = [
        lit("update"),
        lit("crm_id"),
        id("C"),
        id("C"),
        id("E"),
        lit("erp"),
        col("changes"),
        null(),
        concat_str(
            [
                lit("{\"city\":\"Padova\",\"row\":"),
                col("row").cast(DataType::String),
                lit("}"),
            ],
            "",
            false,
        ),
    ];
    base.select(
        exprs
            .into_iter()
            .zip(PLAN_COLUMNS)
            .map(|(e, n)| e.alias(n))
            .collect::<Vec<_>>(),
    )
    .collect()
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn report_of_100k_updates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reports/bench/20260101T000000.000Z");
    let started = Instant::now();
    let plan = plan_of_updates(ROWS).unwrap();
    let (counts, top_fields) = Summary::tally(&plan).unwrap();
    // Built from JSON, as `summary.json` is read: fields added later with a
    // serde default need no change here.
    let summary: Summary = serde_json::from_value(serde_json::json!({
        "spec": "bench",
        "spec_hash": "0".repeat(64),
        "entity": "customers",
        "run_id": "20260101T000000.000Z",
        "created_at": "2026-01-01T00:00:00Z",
        "sides": ["crm", "erp"],
        "direction": "crm -> erp",
        "counts": counts,
        "top_fields": top_fields,
        "inputs": [{
            "side": "crm",
            "path": "generated",
            "sha256": "0".repeat(64),
            "rows": ROWS,
            "source": "generated",
            "pulled_at": "2026-01-01T00:00:00Z",
        }],
        "plan": "plan.parquet",
    }))
    .unwrap();
    assert_eq!(summary.count("update"), u64::from(ROWS));
    write_plan(&dir, &plan, &summary).unwrap();
    eprintln!(
        "generated a plan of {ROWS} updates in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_recon"))
        .arg("report")
        .arg(&dir)
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::metadata(dir.join("report.html")).unwrap().len();
    let csv = std::fs::metadata(dir.join("changes.csv")).unwrap().len();
    eprintln!(
        "recon report, {ROWS} updates: {seconds:.2}s wall, report.html {:.0} KB, changes.csv {:.1} MB",
        html as f64 / 1024.0,
        csv as f64 / 1024.0 / 1024.0
    );
    assert!(html < 2 * 1024 * 1024, "the row cap keeps the page small");
}
