//! The review report with hostile values from a system: markup, quotes,
//! right-to-left text, emoji, a 1 MB description and spreadsheet formulas.
//! The plan is computed by the real engine from small frames, so the values
//! reach the report the way they would in production.

use std::path::Path;

use polars::prelude::*;
use recon::engine::{self, Inputs};
use recon::report::{Summary, render_all, write_plan};
use recon::spec::Spec;

const SPEC: &str = r#"
name = "hostile"
entity = "customers"
direction = "crm -> erp"

[side.crm]
file = "crm.csv"
id = "id"

[side.erp]
file = "erp.csv"
id = "id"

[[field]]
name = "ref"
path = { crm = "id", erp = "ref" }

[[field]]
name = "name"
path = { crm = "name", erp = "name" }

[[field]]
name = "company"
path = { crm = "company", erp = "company" }

[[field]]
name = "city"
path = { crm = "city", erp = "city" }

[[field]]
name = "description"
path = { crm = "description", erp = "description" }

[[key]]
fields = ["ref"]
"#;

const SCRIPT: &str = "<script>alert(1)</script>";

fn plan_with_hostile_values(dir: &Path) -> (Summary, DataFrame, String) {
    let spec = Spec::parse(&dir.join("hostile.toml"), SPEC).expect("valid spec");
    let huge = "lorem ipsum dolor sit amet ".repeat(40_000);
    assert!(huge.len() > 1_000_000);
    let huge_after = format!("{huge} <img src=x onerror=alert(2)> the end");
    let a = df!(
        "_id" => ["C1", "C2", "C3", "C4</td>"],
        "ref" => ["C1", "C2", "C3", "C4</td>"],
        "name" => [SCRIPT, "مرحبا بالعالم", "+1", "@x"],
        "company" => ["\"quotes'", "Café 😀 & Co.", "-1", "=cmd()"],
        "city" => ["</td><td>", "\u{202e}evil", "Padova", "=HYPERLINK(\"http://x\")"],
        "description" => [huge_after.as_str(), huge.as_str(), "short", "short"],
    )
    .unwrap();
    let b = df!(
        "_id" => ["E1", "E3"],
        "ref" => ["C1", "C3"],
        "name" => ["Plain", "-1"],
        "company" => ["Plain", "+1"],
        "city" => ["Plain", "Padua"],
        "description" => [huge.as_str(), "short"],
    )
    .unwrap();
    let plan = engine::plan(
        &spec,
        Inputs {
            a: a.lazy(),
            b: b.lazy(),
            links: vec![],
            baseline: None,
            refs: Default::default(),
        },
    )
    .expect("plan");
    let (counts, top_fields) = Summary::tally(&plan).unwrap();
    // Built from JSON, as `summary.json` is read: fields added later with a
    // serde default need no change here.
    let summary: Summary = serde_json::from_value(serde_json::json!({
        "spec": "hostile <b>spec</b>",
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
            "path": "snapshots/x.parquet",
            "sha256": "0".repeat(64),
            "rows": 4,
            "source": "exports/<crm>\".csv",
            "pulled_at": "2026-01-01T00:00:00Z",
        }],
        "plan": "plan.parquet",
    }))
    .unwrap();
    write_plan(dir, &plan, &summary).unwrap();
    (summary, plan, huge)
}

#[test]
fn hostile_values_are_escaped_and_neutralized() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (summary, plan, huge) = plan_with_hostile_values(dir);
    assert_eq!(summary.count("update"), 2, "{:?}", summary.counts);
    assert_eq!(summary.count("create"), 2, "{:?}", summary.counts);

    let written = render_all(dir, &summary, &plan, &[], 500).unwrap();
    assert_eq!(
        written,
        vec![dir.join("report.html"), dir.join("changes.csv")]
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();

    // No markup from a system survives: the only script is the report's own.
    assert!(!html.contains("<script>alert"), "unescaped script");
    assert_eq!(html.matches("<script").count(), 1);
    assert!(!html.contains("<img src=x"), "unescaped image");
    assert!(!html.contains("<b>spec</b>"));
    assert!(!html.contains("</td><td>Padova") && !html.contains("C4</td>"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("&quot;quotes&#39;"));
    assert!(html.contains("&lt;/td&gt;&lt;td&gt;"));
    assert!(html.contains("C4&lt;/td&gt;"));
    assert!(html.contains("exports/&lt;crm&gt;&quot;.csv"));
    assert!(html.contains("hostile &lt;b&gt;spec&lt;/b&gt;"));
    // Right-to-left text and emoji pass through intact, isolated in <bdi>.
    assert!(html.contains("<bdi class=\"v\">مرحبا بالعالم</bdi>"));
    assert!(html.contains("Café 😀 &amp; Co."));
    // A direction override is shown as a mark, not obeyed.
    assert!(!html.contains('\u{202e}'));
    assert!(html.contains(">U+202E</span>evil"));

    // The 1 MB description is cut for display, with a note, and the change
    // to it is shown as a word diff.
    assert!(html.len() < 200_000, "report is {} bytes", html.len());
    assert!(!html.contains(&huge[..100_000]));
    assert!(html.contains("shortened for display"));
    assert!(html.contains("<div class=\"diff\">"));
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt; the end</ins>"));
    // The known city change reads "now Padua, will become Padova".
    let padua = html.find("Padua").expect("before value shown");
    assert!(html[padua..].contains("Padova"));

    // Spreadsheet formulas in changes.csv are neutralized.
    let csv = std::fs::read(dir.join("changes.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "class", "left_id", "right_id", "receiver", "field", "before", "after", "reason"
        ]
    );
    let mut cells = Vec::new();
    for record in reader.records() {
        cells.extend(record.unwrap().iter().map(str::to_string));
    }
    for dangerous in ["=cmd()", "+1", "-1", "@x", "=HYPERLINK(\"http://x\")"] {
        assert!(
            cells.iter().any(|c| *c == format!("'{dangerous}")),
            "{dangerous} not found neutralized"
        );
    }
    for c in &cells {
        assert!(
            !c.starts_with(['=', '+', '-', '@', '\t', '\r']),
            "cell {c:?} would start a formula"
        );
    }
}

#[test]
fn rows_beyond_the_cap_are_announced() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (summary, plan, _) = plan_with_hostile_values(dir);
    render_all(dir, &summary, &plan, &[], 1).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("Showing the first 1 of 2 rows."));
    assert!(html.contains(&recon::report::escape(
        &dir.join("plan.parquet").display().to_string()
    )));
}
