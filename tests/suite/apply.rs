//! Applying plans: to the MoySklad emulator through crashes and faults, the
//! stale-target guard, links through a renumbering, and a three-way
//! conflict between two files.

use crate::common;

use common::Served;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Dir, show};
use recon::emulate::{Config, Emulator, Faults, System};
use serde_json::Value;

fn serve(records: usize, faults: Faults) -> Served {
    let config = Config {
        systems: vec![System::MoySklad],
        records,
        seed: 11,
        faults,
        rate_limits: false,
        ..Config::default()
    };
    common::serve(config)
}

fn recon(d: &Dir, env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    d.recon_env(env, args)
}

fn by_email(em: &Emulator) -> BTreeMap<String, Value> {
    recon::bench::counterparties_by_email(em)
}

/// Plan `updates` phone changes and `creates` new counterparties; returns
/// the spec, its environment and the plan folder.
fn setup(
    d: &Dir,
    s: &Served,
    updates: usize,
    creates: usize,
    batch: bool,
) -> (PathBuf, BTreeMap<String, String>, PathBuf) {
    let (spec, env) =
        recon::bench::counterparty_fixture(&s.em, d.path(), updates, creates, batch).unwrap();
    let env: BTreeMap<String, String> = env.into_iter().collect();
    let o = recon(d, &env, &["run", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let plan = d
        .files("reports/cp", "plan.parquet")
        .pop()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    (spec, env, plan)
}

fn apply_report(plan: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(plan.join("apply.json")).unwrap()).unwrap()
}

#[test]
fn killed_applies_resume_and_write_every_record_exactly_once() {
    let s = serve(1500, Faults::default());
    let d = Dir::new();
    let before = s.em.records(System::MoySklad, "counterparty");
    let (_, env, plan) = setup(&d, &s, 1000, 1200, true);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(plan.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["counts"]["create"], 1200, "{summary}");
    assert_eq!(summary["counts"]["update"], 1000, "{summary}");

    // Kill the apply at pseudo-random moments, then let one run finish. A
    // try is killed at once when the emulator has carried out writes of
    // its, before it can note them done (its hardest moment), else at its
    // moment, which may fall while it starts or checks the target. Tries
    // stop when one finishes on its own: nothing is left to cut.
    let writes = || s.em.stats().system(System::MoySklad).writes;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let (mut killed, mut cut_after_writes) = (0, 0);
    for _ in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let at = Duration::from_millis(30 + seed % 1500);
        let written = writes();
        let mut child = Command::new(env!("CARGO_BIN_EXE_recon"))
            .arg("--home")
            .arg(d.path())
            .args(["--quiet", "apply", "--yes"])
            .arg(&plan)
            .envs(&env)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        let (mut finished, mut after_writes) = (false, false);
        while started.elapsed() < at {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            if writes() > written {
                after_writes = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if !finished && child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
            cut_after_writes += usize::from(after_writes);
        }
        child.wait().unwrap();
        if finished {
            break;
        }
    }
    assert!(
        cut_after_writes >= 1,
        "a try was cut right after its writes were carried out ({killed} cut in all)"
    );
    let landed = s.em.records(System::MoySklad, "counterparty").len() - before.len();
    assert!(
        landed > 0,
        "the cut tries wrote some records before the last run"
    );
    let o = recon(&d, &env, &["apply", "--yes", plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let report = apply_report(&plan);
    assert_eq!(report["counts"]["done"], 2200, "{report}");

    let after = s.em.records(System::MoySklad, "counterparty");
    assert_eq!(after.len(), before.len() + 1200, "every create landed once");
    let mut per_email: HashMap<String, usize> = HashMap::new();
    for r in &after {
        if let Some(e) = r.get("email").and_then(Value::as_str) {
            *per_email.entry(e.trim().to_lowercase()).or_default() += 1;
        }
    }
    for i in 0..1200 {
        assert_eq!(
            per_email.get(&format!("new{i}@example.org")),
            Some(&1),
            "new{i}"
        );
    }
    // Updated records have the new phone; every other record is untouched.
    let old: HashMap<String, &Value> = before
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r))
        .collect();
    let mut changed = 0;
    for r in &after {
        let id = r["id"].as_str().unwrap();
        if let Some(o) = old.get(id)
            && *o != r
        {
            changed += 1;
            assert!(
                r["phone"].as_str().unwrap_or_default().contains("900"),
                "only phones changed: {r}"
            );
        }
    }
    assert_eq!(changed, 1000, "exactly the planned updates");
}

#[test]
fn with_faults_every_row_ends_done_or_failed_with_the_vendors_message() {
    let s = serve(400, "500=0.1,429=0.05,malformed=0.02".parse().unwrap());
    let d = Dir::new();
    let (_, env, plan) = setup(&d, &s, 150, 150, false);
    let o = recon(&d, &env, &["apply", "--yes", plan.to_str().unwrap()]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", show(&o));
    let report = apply_report(&plan);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 300);
    for r in rows {
        match r["state"].as_str().unwrap() {
            "done" => assert!(r["target_id"].is_string(), "{r}"),
            "failed" => assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{r}"),
            other => panic!("row left {other}: {r}"),
        }
    }
    assert!(s.em.stats().total().faults > 0);
}

#[test]
fn a_target_changed_since_the_plan_is_refused_as_stale() {
    let s = serve(200, Faults::default());
    let d = Dir::new();
    let (_, env, plan) = setup(&d, &s, 3, 0, true);
    let (email, rec) = by_email(&s.em).into_iter().next().unwrap();
    let id = rec["id"].as_str().unwrap().to_string();
    s.em.admin_patch(
        System::MoySklad,
        "counterparty",
        &id,
        serde_json::json!({"phone": "+7 999 000 0000"}),
    )
    .unwrap();
    let o = recon(&d, &env, &["apply", "--yes", plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let report = apply_report(&plan);
    let stale: Vec<&Value> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "stale")
        .collect();
    assert_eq!(stale.len(), 1, "{report}");
    assert!(
        stale[0]["message"]
            .as_str()
            .unwrap()
            .contains("phone is now"),
        "{email}: {}",
        stale[0]
    );
    assert_eq!(
        s.em.records(System::MoySklad, "counterparty")
            .iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap()["phone"],
        "+7 999 000 0000"
    );
    let o = recon(
        &d,
        &env,
        &["apply", "--yes", "--force", plan.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

#[test]
fn links_follow_a_renumbered_record_and_changed_keys() {
    let d = Dir::new();
    d.write("crm.csv", "id,email,city\nC1,ann@x.com,Roma\n");
    d.write("erp.json", "[]");
    let spec = d.write(
        "c.toml",
        r#"name = "c"
entity = "customers"
direction = "crm -> erp"
[side.crm]
file = "crm.csv"
id = "id"
[side.erp]
file = "erp.json"
id = "number"
[[field]]
name = "email"
path = { crm = "email", erp = "email" }
[[field]]
name = "city"
path = { crm = "city", erp = "city" }
[[key]]
fields = ["email"]
normalize = "email"
"#,
    );
    let env = BTreeMap::new();
    let sp = spec.to_str().unwrap();
    assert_eq!(recon(&d, &env, &["run", sp]).status.code(), Some(2));
    let plan = d
        .files("reports/c", "plan.parquet")
        .pop()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert_eq!(
        recon(&d, &env, &["apply", "--yes", plan.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    // The ERP renumbers the customer and the CRM changes the email: no key
    // matches any more, but the link does once it follows the new number.
    d.write(
        "erp.json",
        r#"[{"number": "1005", "email": "ann@x.com", "city": "Roma"}]"#,
    );
    d.write("crm.csv", "id,email,city\nC1,anna@y.com,Milano\n");
    let o = recon(&d, &env, &["relink", sp, "--side", "erp", "C1", "1005"]);
    assert!(o.status.success(), "{}", show(&o));
    let o = recon(&d, &env, &["run", sp]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("create 0, update 1"), "{out}");
}

#[test]
fn both_sides_changing_a_field_after_a_sync_is_a_conflict_with_the_baseline() {
    let d = Dir::new();
    d.write("a.csv", "id,email,city\n1,ann@x.com,Roma\n");
    d.write("b.csv", "id,email,city\nx,ann@x.com,Roma\n");
    let spec = d.write(
        "both.toml",
        r#"name = "both"
entity = "customers"
direction = "both"
[side.a]
file = "a.csv"
id = "id"
[side.b]
file = "b.csv"
id = "id"
[[field]]
name = "email"
path = { a = "email", b = "email" }
[[field]]
name = "city"
path = { a = "city", b = "city" }
[[key]]
fields = ["email"]
normalize = "email"
"#,
    );
    let env = BTreeMap::new();
    let sp = spec.to_str().unwrap();
    // In sync: applying records the baseline.
    assert_eq!(recon(&d, &env, &["run", sp]).status.code(), Some(0));
    let plan = d
        .files("reports/both", "plan.parquet")
        .pop()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let o = recon(&d, &env, &["apply", "--yes", plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    d.write("a.csv", "id,email,city\n1,ann@x.com,Milano\n");
    d.write("b.csv", "id,email,city\nx,ann@x.com,Torino\n");
    let o = recon(&d, &env, &["run", sp]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let plan = d.files("reports/both", "plan.parquet").pop().unwrap();
    let df = common::read_parquet(&plan);
    assert_eq!(common::strings(&df, "class"), vec![Some("conflict".into())]);
    let changes = df
        .column("changes")
        .unwrap()
        .list()
        .unwrap()
        .get_as_series(0)
        .unwrap();
    let st = changes.struct_().unwrap();
    let get = |n: &str| {
        st.field_by_name(n)
            .unwrap()
            .str()
            .unwrap()
            .get(0)
            .map(str::to_string)
    };
    assert_eq!(
        (get("before"), get("after"), get("baseline")),
        (
            Some("Milano".into()),
            Some("Torino".into()),
            Some("Roma".into())
        )
    );
}

#[test]
fn a_spec_after_another_waits_for_its_parent_and_mirror_deletes_orphans() {
    let d = Dir::new();
    d.write("crm_c.csv", "id,email\nC1,ann@x.com\n");
    d.write("erp_c.json", r#"[{"id": "E9", "email": "gone@x.com"}]"#);
    d.write("crm_o.csv", "id,number,customer\nO1,1,C1\n");
    d.write("erp_o.json", "[]");
    let customers = d.write(
        "customers.toml",
        r#"name = "customers"
entity = "customers"
direction = "crm -> erp"
[side.crm]
file = "crm_c.csv"
id = "id"
[side.erp]
file = "erp_c.json"
id = "id"
[[field]]
name = "email"
path = { crm = "email", erp = "email" }
[[key]]
fields = ["email"]
"#,
    );
    let orders = d.write(
        "orders.toml",
        r#"name = "orders"
entity = "orders"
direction = "crm -> erp"
after = ["customers"]
[side.crm]
file = "crm_o.csv"
id = "id"
[side.erp]
file = "erp_o.json"
id = "id"
[[field]]
name = "number"
path = { crm = "number", erp = "number" }
[[field]]
name = "customer"
path = { crm = "customer", erp = "customer" }
ref = "customers"
[[key]]
fields = ["number"]
"#,
    );
    let env = BTreeMap::new();
    let plan_of = |name: &str| {
        d.files(&format!("reports/{name}"), "plan.parquet")
            .pop()
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf()
    };
    assert_eq!(
        recon(&d, &env, &["run", customers.to_str().unwrap()])
            .status
            .code(),
        Some(2)
    );
    // The order's customer is not synced yet: invalid, and its spec waits
    // for the customers plan to be applied.
    let o = recon(&d, &env, &["run", orders.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("invalid 1"),
        "{}",
        show(&o)
    );
    let o = recon(
        &d,
        &env,
        &["apply", "--yes", plan_of("orders").to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("apply it first"),
        "{}",
        show(&o)
    );
    // Apply customers in mirror mode: the ERP-only customer is deleted.
    let o = recon(
        &d,
        &env,
        &[
            "apply",
            "--yes",
            "--mirror",
            plan_of("customers").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let erp: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("erp_c.json")).unwrap())
            .unwrap();
    let emails: Vec<&str> = erp
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["email"].as_str().unwrap())
        .collect();
    assert_eq!(emails, vec!["ann@x.com"]);
    // Now the order's customer resolves through the customers' links.
    let o = recon(&d, &env, &["run", orders.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("create 1"),
        "{}",
        show(&o)
    );
    let o = recon(
        &d,
        &env,
        &["apply", "--yes", plan_of("orders").to_str().unwrap()],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "the parent is applied now: {}",
        show(&o)
    );
    let orders: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("erp_o.json")).unwrap())
            .unwrap();
    assert_eq!(
        orders[0]["customer"], "C1",
        "the ERP id the customer got on create"
    );
}

#[test]
fn mirror_mode_deletes_the_receivers_orphans_through_the_api() {
    let s = serve(60, Faults::default());
    let d = Dir::new();
    let (_, env, plan) = setup(&d, &s, 5, 2, true);
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(plan.join("summary.json")).unwrap()).unwrap();
    let orphans = summary["counts"]["orphan"].as_u64().unwrap();
    assert!(orphans > 0, "{summary}");
    let o = recon(
        &d,
        &env,
        &["apply", "--yes", "--mirror", plan.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    // Left: the five updated, the two created, and the records whose email is
    // ambiguous (duplicates are never deleted); the crm file has no duplicates.
    let dups = summary["counts"]["duplicate"].as_u64().unwrap() as usize;
    let left = s.em.records(System::MoySklad, "counterparty").len();
    assert_eq!(left, 7 + dups, "{summary}");
}
