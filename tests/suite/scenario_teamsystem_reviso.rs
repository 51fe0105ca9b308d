//! Seed 000, TeamSystem Cloud CRM <-> Reviso, end to end on the shipped
//! specs (`specs/teamsystem-reviso/`): CRM companies and Reviso customers
//! both ways with Reviso's required and optional extra fields, a company
//! lacking a required one held back as invalid, contacts carried through the
//! companies' links, a three-way sync once a baseline exists, and a customer
//! renumbered in Reviso that keeps its link through `recon relink`.

use crate::common;

use common::Served;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Dir, show};
use recon::emulate::{Config, Emulator, Faults, System};
use serde_json::{Value, json};

const FOLDER: &str = "teamsystem-reviso";
/// Where the shipped specs point; rewritten to the in-process emulator.
const SHIPPED_BASE: &str = "http://127.0.0.1:8701/reviso";

/// The seed and record count `try.sh` uses, so that the shipped sample data
/// meets the same seeded customers here.
fn serve() -> Served {
    let config = Config {
        systems: vec![System::Reviso],
        records: 50,
        seed: 42,
        faults: Faults::default(),
        rate_limits: false,
        ..Config::default()
    };
    common::serve(config)
}

/// Copy the scenario's specs and sample files into `d`, pointing the HTTP
/// side at the emulator.
fn copy_scenario(d: &Dir, em: &Emulator) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("specs")
        .join(FOLDER);
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let p = e.path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".toml") {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.contains(SHIPPED_BASE) || !text.contains("base_url"));
            d.write(
                &name,
                text.replace(SHIPPED_BASE, &em.base_url(System::Reviso)),
            );
        } else if name.ends_with(".json") {
            d.write(&name, std::fs::read(&p).unwrap());
        }
    }
}

fn env(em: &Emulator) -> BTreeMap<String, String> {
    let creds: BTreeMap<&str, String> = em.credentials(System::Reviso).into_iter().collect();
    BTreeMap::from([
        ("REVISO_APP_SECRET".into(), creds["app_secret"].clone()),
        (
            "REVISO_AGREEMENT_GRANT".into(),
            creds["agreement_grant"].clone(),
        ),
    ])
}

fn recon(d: &Dir, env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    d.recon_env(env, args)
}

/// `recon run SPEC` (pull and plan): the plan folder and its summary.
fn run(d: &Dir, env: &BTreeMap<String, String>, spec: &str, extra: &[&str]) -> (PathBuf, Value) {
    let path = d.path().join(format!("{spec}.toml"));
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend(extra);
    let o = recon(d, env, &args);
    assert!(matches!(o.status.code(), Some(0 | 2)), "{}", show(&o));
    let name = format!("ts-reviso-{spec}");
    let plan = d
        .files(&format!("reports/{name}"), "plan.parquet")
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

fn apply(d: &Dir, env: &BTreeMap<String, String>, plan: &Path) {
    let o = recon(d, env, &["apply", "--yes", plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}

fn counts(summary: &Value) -> BTreeMap<String, u64> {
    summary["counts"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

/// One row of a plan, as far as these checks read it.
struct Row {
    class: String,
    left: Option<String>,
    right: Option<String>,
    key: Option<String>,
    reason: Option<String>,
}

/// The plan's rows, from the Parquet plan.
fn rows(plan: &Path) -> Vec<Row> {
    let df = common::read_parquet(&plan.join("plan.parquet"));
    let col = |n: &str| common::strings(&df, n);
    let (class, left, right, key, reason) = (
        col("class"),
        col("left_id"),
        col("right_id"),
        col("key"),
        col("reason"),
    );
    (0..df.height())
        .map(|i| Row {
            class: class[i].clone().unwrap(),
            left: left[i].clone(),
            right: right[i].clone(),
            key: key[i].clone(),
            reason: reason[i].clone(),
        })
        .collect()
}

fn json_file(d: &Dir, name: &str, records: &str) -> Vec<Value> {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join(name)).unwrap()).unwrap();
    v[records].as_array().unwrap().clone()
}

fn write_json(d: &Dir, name: &str, records: &str, list: Vec<Value>) {
    d.write(
        name,
        serde_json::to_vec_pretty(&json!({ records: list })).unwrap(),
    );
}

fn by<'a>(list: &'a [Value], field: &str, value: &str) -> &'a Value {
    list.iter()
        .find(|r| r[field].as_str() == Some(value))
        .unwrap_or_else(|| panic!("no record with {field} = {value}"))
}

fn customer<'a>(list: &'a [Value], vat: &str) -> Option<&'a Value> {
    list.iter().find(|r| r["vatNumber"] == vat)
}

#[test]
fn companies_and_contacts_sync_both_ways_and_a_renumbered_customer_keeps_its_link() {
    let s = serve();
    let d = Dir::new();
    copy_scenario(&d, &s.em);
    let env = env(&s.em);
    let seeded = s.em.records(System::Reviso, "customers").len();
    assert_eq!(seeded, 50);

    // First sync: no baseline, Reviso wins where a pair differs.
    let (plan, summary) = run(&d, &env, "companies", &[]);
    let c = counts(&summary);
    // 12 CRM-only companies (10 sendable) and the 42 customers only in Reviso.
    assert_eq!(
        (c["create"], c["update"], c["invalid"]),
        (52, 8, 2),
        "{summary}"
    );
    assert_eq!(c["conflict"], 0, "{summary}");
    let all = rows(&plan);
    let invalid: BTreeMap<String, String> = all
        .iter()
        .filter(|r| r.class == "invalid")
        .map(|r| (r.left.clone().unwrap(), r.reason.clone().unwrap()))
        .collect();
    assert_eq!(
        invalid,
        BTreeMap::from([
            ("AZ0106".into(), "required field `vat_zone` is empty".into()),
            (
                "AZ0107".into(),
                "required field `payment_terms` is empty".into()
            ),
        ])
    );
    apply(&d, &env, &plan);

    // Reviso received the sendable CRM companies with every required field;
    // the two invalid ones were never sent.
    let reviso = s.em.records(System::Reviso, "customers");
    assert_eq!(reviso.len(), seeded + 10);
    let bassi = customer(&reviso, "IT01873450356").expect("Ferramenta Bassi sent");
    assert_eq!(bassi["name"], "Ferramenta Bassi S.r.l.");
    assert_eq!(bassi["currency"], "EUR");
    assert_eq!(bassi["customerGroup"]["customerGroupNumber"], 1);
    assert_eq!(bassi["vatZone"]["vatZoneNumber"], 1);
    assert_eq!(bassi["paymentTerms"]["paymentTermsNumber"], 2);
    assert_eq!(bassi["countryCode"]["code"], "IT");
    // Optional fields left empty in the CRM take their defaults; the
    // currency too.
    let poggio = customer(&reviso, "IT01455660528").expect("Il Poggio sent");
    assert_eq!(poggio["currency"], "EUR");
    assert_eq!(poggio["priceGroup"]["priceGroupNumber"], 1);
    let galli = customer(&reviso, "IT02231870163").expect("Galli sent");
    assert_eq!(galli["paymentType"]["paymentTypeNumber"], 1);
    let colombo = customer(&reviso, "IT05512340966").expect("Colombo sent");
    assert_eq!(colombo["paymentType"]["paymentTypeNumber"], 2);
    assert_eq!(colombo["priceGroup"]["priceGroupNumber"], 2);
    for vat in ["IT03318890231", "IT02780410547"] {
        assert!(customer(&reviso, vat).is_none(), "{vat} is invalid");
    }

    // The CRM received every Reviso-only customer, with Reviso's extra
    // fields filled in ("valorizzati automaticamente").
    let crm = json_file(&d, "crm_companies.json", "Companies");
    assert_eq!(crm.len(), 20 + 42);
    let aurora = by(&crm, "Id", "AZ0007");
    assert_eq!(
        aurora["CustomFields"],
        json!({"ValutaReviso": "EUR", "GruppoClientiReviso": 1, "ZonaIvaReviso": 2,
               "TerminiPagamentoReviso": 1, "ModalitaPagamentoReviso": 1, "GruppoPrezziReviso": 1})
    );
    // Reviso won the first comparison of a pair.
    assert_eq!(by(&crm, "Id", "AZ0002")["Phone"], "+393754957898");
    let emma = by(&crm, "Email", "egoossens3@hotmail.com");
    assert_eq!(emma["CompanyName"], "Emma Goossens");
    assert_eq!(emma["CustomFields"]["GruppoClientiReviso"], 2);

    // Contacts: each company's contacts follow it, through its link.
    let (plan, summary) = run(&d, &env, "contacts", &[]);
    let c = counts(&summary);
    assert_eq!(
        (c["create"], c["invalid"], c["unchanged"]),
        (55, 1, 3),
        "{summary}"
    );
    let lombardi = rows(&plan)
        .into_iter()
        .find(|r| r.class == "invalid")
        .unwrap();
    assert_eq!(lombardi.left.as_deref(), Some("CT106"));
    assert!(
        lombardi.reason.unwrap().contains("not synced yet"),
        "a contact of an unsent company waits for it"
    );
    apply(&d, &env, &plan);
    let numbers: BTreeMap<String, u64> =
        s.em.records(System::Reviso, "customers")
            .iter()
            .map(|r| {
                (
                    r["vatNumber"].as_str().unwrap_or_default().to_string(),
                    r["customerNumber"].as_u64().unwrap(),
                )
            })
            .collect();
    let exported = json_file(&d, "reviso_contacts.json", "collection");
    let giorgio = by(&exported, "email", "giorgio@ferramentabassi.it");
    assert_eq!(
        giorgio["customer"]["customerNumber"],
        numbers["IT01873450356"].to_string(),
        "the contact names its company's Reviso customer number"
    );
    let crm_contacts = json_file(&d, "crm_contacts.json", "Contacts");
    let sara = by(&crm_contacts, "Email", "sromano50@outlook.com");
    assert_eq!(
        sara["CompanyId"], "50",
        "Reviso customer 50 became CRM company `50`"
    );

    // Converged: a second pass finds nothing to write. Applying it anyway,
    // as a nightly `run --apply` would, stores each pair's baseline.
    for spec in ["companies", "contacts"] {
        let (plan, summary) = run(&d, &env, spec, &[]);
        let c = counts(&summary);
        assert_eq!(
            (c["create"], c["update"], c["conflict"]),
            (0, 0, 0),
            "{spec}: {summary}"
        );
        apply(&d, &env, &plan);
    }

    // With a baseline, the side that changed a field wins; both changing the
    // same field is a conflict. Meanwhile Reviso renumbers customer 14 and
    // the CRM changes that company's e-mail: nothing pairs them but the link.
    let mut crm = json_file(&d, "crm_companies.json", "Companies");
    for r in crm.iter_mut() {
        match r["Id"].as_str().unwrap() {
            "AZ0101" => r["City"] = json!("Scandiano"),
            "AZ0003" => r["Email"] = json!("giulia@bianchi-studio.it"),
            "AZ0005" => r["Phone"] = json!("+31 10 000 0001"),
            _ => {}
        }
    }
    write_json(&d, "crm_companies.json", "Companies", crm);
    s.em.admin_patch(
        System::Reviso,
        "customers",
        "33",
        json!({"city": "Moncalieri"}),
    )
    .unwrap();
    s.em.admin_patch(
        System::Reviso,
        "customers",
        "1",
        json!({"telephoneAndFaxNumber": "+31 10 000 0002"}),
    )
    .unwrap();
    s.em.renumber_reviso(14, 1014).unwrap();

    // Without the webhook's relink both sides would get a second Giulia
    // Bianchi (a full pull sees that 14 is gone).
    let (_, summary) = run(&d, &env, "companies", &["--full"]);
    assert_eq!(counts(&summary)["create"], 2, "{summary}");

    // The webhook posts {"oldNumber": 14, "newNumber": 1014}.
    let spec = d.path().join("companies.toml");
    let o = recon(
        &d,
        &env,
        &[
            "relink",
            spec.to_str().unwrap(),
            "--side",
            "reviso",
            "14",
            "1014",
        ],
    );
    assert!(o.status.success(), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("moved 1 link(s)"),
        "{}",
        show(&o)
    );
    let (plan, summary) = run(&d, &env, "companies", &[]);
    let c = counts(&summary);
    // The three edits, and the optional fields a CRM company left empty: the
    // baseline stored above holds the CRM's empty value, so the default
    // Reviso received on create now reads as Reviso's own value and flows
    // back (four companies).
    assert_eq!(
        (c["create"], c["update"], c["conflict"]),
        (0, 7, 1),
        "{summary}"
    );
    let all = rows(&plan);
    let giulia = all
        .iter()
        .find(|r| r.left.as_deref() == Some("AZ0003"))
        .unwrap();
    assert_eq!(
        (
            giulia.class.as_str(),
            giulia.right.as_deref(),
            giulia.key.as_deref()
        ),
        ("update", Some("1014"), Some("link")),
        "paired by the moved link"
    );
    let conflict = all.iter().find(|r| r.class == "conflict").unwrap();
    assert_eq!(
        (conflict.left.as_deref(), conflict.right.as_deref()),
        (Some("AZ0005"), Some("1"))
    );
    apply(&d, &env, &plan);

    let reviso = s.em.records(System::Reviso, "customers");
    let giulia = reviso.iter().find(|r| r["customerNumber"] == 1014).unwrap();
    assert_eq!(giulia["email"], "giulia@bianchi-studio.it");
    assert_eq!(
        customer(&reviso, "IT01873450356").unwrap()["city"],
        "Scandiano"
    );
    assert_eq!(
        reviso.iter().find(|r| r["customerNumber"] == 1).unwrap()["telephoneAndFaxNumber"],
        "+31 10 000 0002",
        "a conflict is left for a person"
    );
    let crm = json_file(&d, "crm_companies.json", "Companies");
    assert_eq!(by(&crm, "Id", "AZ0002")["City"], "Moncalieri");
    assert_eq!(by(&crm, "Id", "AZ0005")["Phone"], "+31 10 000 0001");
    let galli = by(&crm, "Id", "AZ0103");
    assert_eq!(galli["CustomFields"]["ModalitaPagamentoReviso"], 1);
    assert_eq!(
        by(&crm, "Id", "AZ0105")["CustomFields"]["ValutaReviso"],
        "EUR"
    );

    // Converged again, but for the conflict a person has to settle.
    let (_, summary) = run(&d, &env, "companies", &[]);
    let c = counts(&summary);
    assert_eq!(
        (c["create"], c["update"], c["conflict"], c["invalid"]),
        (0, 0, 1, 2),
        "{summary}"
    );
}
