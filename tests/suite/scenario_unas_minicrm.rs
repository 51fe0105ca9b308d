//! Seed 001, UNAS webshop -> MiniCRM, end to end on the shipped spec
//! (`specs/unas-minicrm/`): orders become cards in MiniCRM's orders module
//! with the owner user, the PDF link and the UNAS status; the status map
//! holds back an order whose status it lacks; nothing before the start date
//! is written; and a start date changed after a plan was made refuses it.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{Dir, show};
use serde_json::{Value, json};

const FOLDER: &str = "unas-minicrm";

fn copy_scenario(d: &Dir) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("specs")
        .join(FOLDER);
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let p = e.path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".toml") || name.ends_with(".json") {
            d.write(&name, std::fs::read(&p).unwrap());
        }
    }
}

/// `recon run` on the orders spec: the plan folder and its summary.
fn run(d: &Dir) -> (PathBuf, Value) {
    let spec = d.path().join("orders.toml");
    let o = d.recon(&["run", spec.to_str().unwrap()]);
    assert!(matches!(o.status.code(), Some(0 | 2)), "{}", show(&o));
    let plan = d
        .files("reports/unas-minicrm-orders", "plan.parquet")
        .pop()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(plan.join("report.html").is_file(), "the review report");
    let summary =
        serde_json::from_str(&std::fs::read_to_string(plan.join("summary.json")).unwrap()).unwrap();
    (plan, summary)
}

fn counts(summary: &Value) -> BTreeMap<String, u64> {
    summary["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

fn cards(d: &Dir) -> Vec<Value> {
    let v: Value = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("minicrm_orders.json")).unwrap(),
    )
    .unwrap();
    v["Results"].as_array().unwrap().clone()
}

fn card<'a>(cards: &'a [Value], key: &str) -> Option<&'a Value> {
    cards.iter().find(|c| c["UnasOrderKey"] == key)
}

/// (left id, reason) of the plan's rows of one class.
fn reasons(plan: &Path, class: &str) -> BTreeMap<String, String> {
    let df = common::read_parquet(&plan.join("plan.parquet"));
    let (c, left, right, reason) = (
        common::strings(&df, "class"),
        common::strings(&df, "left_id"),
        common::strings(&df, "right_id"),
        common::strings(&df, "reason"),
    );
    (0..df.height())
        .filter(|&i| c[i].as_deref() == Some(class))
        .map(|i| {
            (
                left[i].clone().or(right[i].clone()).unwrap(),
                reason[i].clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn webshop_orders_become_minicrm_cards_under_the_seed_rules() {
    let d = Dir::new();
    copy_scenario(&d);
    let before = cards(&d);
    assert_eq!(before.len(), 7);

    let (plan, summary) = run(&d);
    let c = counts(&summary);
    assert_eq!(
        (
            c["create"],
            c["update"],
            c["invalid"],
            c["skipped"],
            c["unchanged"],
            c["orphan"]
        ),
        (22, 3, 2, 5, 2, 2),
        "{summary}"
    );
    // Two statuses the map lacks hold their orders back.
    assert_eq!(
        reasons(&plan, "invalid"),
        BTreeMap::from([
            (
                "240219".into(),
                "status value `Returnată` has no entry in the value map".into()
            ),
            (
                "240282".into(),
                "status value `Plată eșuată` has no entry in the value map".into()
            ),
        ])
    );
    // The five orders placed before 2024-06-01, one of them carded by hand.
    let skipped = reasons(&plan, "skipped");
    assert_eq!(
        skipped.keys().cloned().collect::<Vec<_>>(),
        ["240100", "240107", "240114", "240121", "240128"]
    );
    assert!(
        skipped
            .values()
            .all(|r| r == "filtered out by unas rule `created_at >= 2024-06-01`")
    );
    let o = d.recon(&["apply", "--yes", plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    let after = cards(&d);
    assert_eq!(after.len(), 7 + 22);
    let new = card(&after, "240331").expect("created");
    assert_eq!(new["Name"], "Comandă UNAS 240331");
    assert_eq!(new["UserId"], 31, "the owner user");
    assert_eq!(
        new["LinkPdf"],
        "https://magazin-demo.unas.ro/shop_order_pdf.php?order=240331"
    );
    assert_eq!(new["UnasStatus"], "Livrată", "the UNAS status as text");
    assert_eq!(new["Status"], "Finalizată", "the mapped MiniCRM status");
    assert_eq!(new["OrderDate"], "2024-07-16");
    assert_eq!(new["Total"], 1313.12);
    // The start date itself is included.
    assert_eq!(card(&after, "240296").unwrap()["Status"], "Finalizată");
    for key in ["240219", "240282", "240100", "240114"] {
        assert!(card(&after, key).is_none(), "{key} is not written");
    }
    // Cards already there were brought up to date...
    let moved = card(&after, "240142").unwrap();
    assert_eq!(
        (&moved["Status"], &moved["UnasStatus"]),
        (&json!("În lucru"), &json!("În procesare"))
    );
    assert_eq!(
        card(&after, "240184").unwrap()["LinkPdf"],
        "https://magazin-demo.unas.ro/shop_order_pdf.php?order=240184"
    );
    assert_eq!(card(&after, "240191").unwrap()["UserId"], 31);
    // ...but not the one made from an order before the start date, nor the
    // card a salesperson entered.
    let old = before.iter().find(|c| c["Id"] == 9006).unwrap();
    assert_eq!(after.iter().find(|c| c["Id"] == 9006).unwrap(), old);
    let manual = before.iter().find(|c| c["Id"] == 9007).unwrap();
    assert_eq!(after.iter().find(|c| c["Id"] == 9007).unwrap(), manual);

    // Converged: only the two unmapped statuses are left.
    let (_, summary) = run(&d);
    let c = counts(&summary);
    assert_eq!(
        (c["create"], c["update"], c["invalid"], c["unchanged"]),
        (0, 0, 2, 27),
        "{summary}"
    );

    // "Aceasta nu mai poate fi schimbată ulterior": recon cannot lock the
    // start date, but a plan made under one start date is refused once the
    // spec says another.
    let (plan, _) = run(&d);
    let spec = d.path().join("orders.toml");
    let text = std::fs::read_to_string(&spec).unwrap();
    d.write(
        "orders.toml",
        text.replace("created_at >= 2024-06-01", "created_at >= 2024-04-01"),
    );
    let o = d.recon(&["apply", "--yes", plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the spec changed since this plan"),
        "{}",
        show(&o)
    );
}
