//! Seed 003, Calltouch <-> MoySklad, end to end on the shipped specs
//! (`specs/calltouch-moysklad/`): every Calltouch call or request gets a
//! MoySklad counterparty (found by phone, then email, before one is
//! created), a MoySklad order carrying its source, medium, utm_* fields,
//! Google client id and tags, and a Calltouch deal; order state and payment
//! then flow back to the deal, COMPLETED once the order is complete. The
//! seed's retailCRM variant (`retailcrm/`) runs the same way against the
//! retailCRM emulator.

use crate::common;

use common::Served;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Dir, show};
use recon::emulate::{Config, Emulator, Faults, System};
use serde_json::{Value, json};

const FOLDER: &str = "calltouch-moysklad";
/// Where the shipped specs point (base URL, state and organization hrefs);
/// rewritten to the in-process emulator.
const SHIPPED_ROOT: &str = "http://127.0.0.1:8710";
/// The specs in the order they are applied, by file and by name.
const SPECS: [(&str, &str); 8] = [
    ("counterparty", "ct-ms-counterparty"),
    ("order", "ct-ms-order"),
    ("deal", "ct-deal"),
    ("deal-status", "ms-ct-deal-status"),
    ("retailcrm/customer", "ct-rc-customer"),
    ("retailcrm/order", "ct-rc-order"),
    ("retailcrm/deal", "ct-deal-rc"),
    ("retailcrm/deal-status", "rc-ct-deal-status"),
];
/// The MoySklad state ids of seed 42 that the deal-status map names.
const SHIPPED: &str = "9a629072-03b0-4436-ae42-04ea111f379f";
const COMPLETE: &str = "f8639b0a-7aa9-4ead-be3c-7752c0f7e065";

/// The seed and record count `try.sh` uses: the shipped leads call from
/// phones and write from emails of this seed's counterparties, and the
/// specs name this seed's order states and organization.
fn serve() -> Served {
    let config = Config {
        systems: vec![System::MoySklad, System::RetailCrm],
        records: 50,
        seed: 42,
        faults: Faults::default(),
        rate_limits: false,
        ..Config::default()
    };
    common::serve(config)
}

/// Copy the scenario's specs and sample files (and the retailCRM
/// variant's folder) into `d`, pointing every vendor URL at the emulator.
fn copy_scenario(d: &Dir, em: &Emulator) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("specs")
        .join(FOLDER);
    for sub in ["", "retailcrm"] {
        for e in std::fs::read_dir(root.join(sub)).unwrap().flatten() {
            let p = e.path();
            let name = Path::new(sub).join(p.file_name().unwrap());
            let name = name.to_str().unwrap();
            if name.ends_with(".toml") {
                let text = std::fs::read_to_string(&p).unwrap();
                // The retailCRM profile's client-side limit (8 requests a
                // second) would make this test wait seconds for nothing:
                // the emulator here serves without vendor limits.
                let text = text.replace(
                    "/retailcrm/api/v5\"\n",
                    "/retailcrm/api/v5\"\nrate_limit = { requests = 200, per_seconds = 1, parallel = 4 }\n",
                );
                d.write(name, text.replace(SHIPPED_ROOT, em.root()));
            } else if name.ends_with(".json") {
                d.write(name, std::fs::read(&p).unwrap());
            }
        }
    }
}

fn env(em: &Emulator) -> BTreeMap<String, String> {
    let token = |system: System| {
        em.credentials(system)
            .into_iter()
            .find(|(k, _)| *k == "token")
            .unwrap()
            .1
    };
    BTreeMap::from([
        ("MOYSKLAD_TOKEN".into(), token(System::MoySklad)),
        ("RETAILCRM_API_KEY".into(), token(System::RetailCrm)),
    ])
}

fn recon(d: &Dir, env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    d.recon_env(env, args)
}

fn spec_name(file: &str) -> &'static str {
    SPECS.iter().find(|s| s.0 == file).unwrap().1
}

/// `recon run` on a spec file; returns the plan folder and its counts.
fn run(d: &Dir, env: &BTreeMap<String, String>, file: &str, want: i32) -> (PathBuf, Value) {
    let spec = d.path().join(format!("{file}.toml"));
    let o = recon(d, env, &["run", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(want), "{file}: {}", show(&o));
    let plan = d
        .files(&format!("reports/{}", spec_name(file)), "plan.parquet")
        .pop()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    assert!(plan.join("report.html").is_file(), "{file}: no report");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(plan.join("summary.json")).unwrap()).unwrap();
    (plan, summary["counts"].clone())
}

fn apply(d: &Dir, env: &BTreeMap<String, String>, plan: &Path) -> Value {
    let o = recon(d, env, &["apply", "--yes", plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    serde_json::from_str(&std::fs::read_to_string(plan.join("apply.json")).unwrap()).unwrap()
}

fn count(counts: &Value, class: &str) -> u64 {
    counts[class].as_u64().unwrap()
}

/// Phone numbers as digits with the country code, however they are written.
fn digits(phone: &Value) -> String {
    let d: String = phone
        .as_str()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    match d.strip_prefix('8') {
        Some(rest) if d.len() == 11 => format!("7{rest}"),
        _ => d,
    }
}

fn attribute<'a>(order: &'a Value, name: &str) -> &'a Value {
    order["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == name))
        .map(|x| &x["value"])
        .unwrap_or(&Value::Null)
}

#[test]
fn leads_become_counterparties_orders_and_deals_and_deals_follow_the_orders() {
    let s = serve();
    let em = &s.em;
    let d = Dir::new();
    copy_scenario(&d, em);
    let env = env(em);
    let leads: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("calltouch_leads.json")).unwrap(),
    )
    .unwrap();
    let clients: std::collections::BTreeSet<&str> = leads
        .iter()
        .map(|l| l["ctClientId"].as_str().unwrap())
        .collect();
    let before = em.records(System::MoySklad, "counterparty");

    // Counterparties: one per Calltouch client; four are already in
    // MoySklad (two callers by phone written differently, a request by
    // phone, a request by email only) and are linked, not created again.
    let (plan, counts) = run(&d, &env, "counterparty", 2);
    assert_eq!(count(&counts, "unchanged"), 4, "{counts}");
    assert_eq!(count(&counts, "create") as usize, clients.len() - 4);
    assert_eq!(count(&counts, "duplicate"), 0, "{counts}");
    let rejects = d.files("snapshots/ct-ms-counterparty/ct", ".rejects.csv");
    let rejected = std::fs::read_to_string(&rejects[0]).unwrap();
    assert_eq!(
        rejected.lines().count() - 1,
        leads.len() - clients.len(),
        "a client's later leads are read once: {rejected}"
    );
    apply(&d, &env, &plan);
    let after = em.records(System::MoySklad, "counterparty");
    assert_eq!(after.len(), before.len() + clients.len() - 4);
    let with = |f: &dyn Fn(&Value) -> bool| after.iter().filter(|c| f(c)).count();
    for phone in ["79932990594", "79596460145", "79109332418"] {
        assert_eq!(with(&|c| digits(&c["phone"]) == phone), 1, "{phone}");
    }
    assert_eq!(
        with(&|c| c["email"]
            .as_str()
            .is_some_and(|e| e.eq_ignore_ascii_case("kuznetsova.elena34@inbox.ru"))),
        1
    );
    let created: Vec<&Value> = after
        .iter()
        .filter(|c| c["tags"][0] == "calltouch")
        .collect();
    assert_eq!(created.len(), clients.len() - 4);
    let irina = created
        .iter()
        .find(|c| c["externalCode"] == "ct-1007")
        .unwrap();
    assert_eq!(irina["name"], "Ирина Волкова");
    assert_eq!(irina["email"], "irina.volkova@example.ru");
    assert_eq!(irina["companyType"], "individual");
    let caller = created
        .iter()
        .find(|c| c["externalCode"] == "ct-1006")
        .unwrap();
    assert_eq!(caller["name"], "Клиент Calltouch", "calls carry no name");

    // Orders: one per lead, repeat leads included, each with its client's
    // counterparty as agent and the lead's marketing data.
    let (plan, counts) = run(&d, &env, "order", 2);
    assert_eq!(count(&counts, "create") as usize, leads.len(), "{counts}");
    apply(&d, &env, &plan);
    let orders: BTreeMap<String, Value> = em
        .records(System::MoySklad, "customerorder")
        .into_iter()
        .filter(|o| !attribute(o, "source").is_null())
        .map(|o| (o["externalCode"].as_str().unwrap().to_string(), o))
        .collect();
    assert_eq!(orders.len(), leads.len());
    let popov = before
        .iter()
        .find(|c| digits(&c["phone"]) == "79932990594")
        .unwrap()["id"]
        .clone();
    let first = &orders["call-5001"];
    assert_eq!(
        first["agent"]["meta"]["href"], popov,
        "the existing counterparty"
    );
    assert_eq!(
        orders["req-7008"]["agent"]["meta"]["href"], popov,
        "the same client's later request"
    );
    assert_eq!(attribute(first, "source"), "yandex");
    assert_eq!(attribute(first, "medium"), "cpc");
    assert_eq!(attribute(first, "utm_campaign"), "coffee_spring");
    assert_eq!(attribute(first, "utm_term"), "купить кофе в зернах");
    assert_eq!(attribute(first, "gclid"), "1402261183.1717398764");
    assert_eq!(attribute(first, "tags"), "DTMF 1|Номер 74952300101");
    assert!(
        first["state"]["meta"]["href"]
            .as_str()
            .unwrap()
            .ends_with("fa0fdffa-d311-4746-8f57-e36fc9d9922b"),
        "a new order starts in the first state"
    );
    let irina_order = &orders["req-7003"];
    assert_eq!(irina_order["agent"]["meta"]["href"], irina["id"]);
    assert!(
        irina_order["description"]
            .as_str()
            .unwrap()
            .contains("irina.volkova@example.ru")
    );
    let repeat = &orders["call-5010"];
    assert_eq!(
        repeat["agent"], orders["call-5003"]["agent"],
        "one counterparty for both calls of a client"
    );

    // Deals: one PENDING deal with budget 0 per lead.
    let (plan, counts) = run(&d, &env, "deal", 2);
    assert_eq!(count(&counts, "create") as usize, leads.len(), "{counts}");
    apply(&d, &env, &plan);
    let deals = |d: &Dir| -> BTreeMap<String, Value> {
        let all: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(d.path().join("calltouch_deals.json")).unwrap(),
        )
        .unwrap();
        all.into_iter()
            .map(|x| (x["leadId"].as_str().unwrap().to_string(), x))
            .collect()
    };
    let now = deals(&d);
    assert_eq!(now.len(), leads.len());
    assert_eq!(now["call-5001"]["status"], "PENDING");
    assert_eq!(now["call-5001"]["budget"].as_f64(), Some(0.0));
    assert_eq!(now["call-5001"]["createdAt"], "2024-06-03 09:12:44");

    // Nothing to send back while the orders are new.
    let (_, counts) = run(&d, &env, "deal-status", 0);
    assert_eq!(
        count(&counts, "unchanged") as usize,
        leads.len(),
        "{counts}"
    );

    // A manager completes one order and ships another, with payments: the
    // deals follow (an open state by name, the complete one as COMPLETED).
    let states = format!(
        "{}/entity/customerorder/metadata/states",
        em.base_url(System::MoySklad)
    );
    for (lead, state, paid) in [
        ("call-5001", COMPLETE, 250_000),
        ("req-7001", SHIPPED, 100_000),
    ] {
        let id = orders[lead]["id"].as_str().unwrap();
        em.admin_patch(
            System::MoySklad,
            "customerorder",
            id,
            json!({
                "state": { "meta": { "href": format!("{states}/{state}") } },
                "positions": [{ "quantity": 2, "price": 125_000 }],
                "payedSum": paid,
            }),
        )
        .unwrap();
    }
    let (plan, counts) = run(&d, &env, "deal-status", 2);
    assert_eq!(count(&counts, "update"), 2, "{counts}");
    apply(&d, &env, &plan);
    let now = deals(&d);
    let done = &now["call-5001"];
    assert_eq!(done["status"], "COMPLETED");
    assert_eq!(done["budget"].as_f64(), Some(2500.0), "kopecks to roubles");
    assert_eq!(done["paid"].as_f64(), Some(2500.0));
    let open = &now["req-7001"];
    assert_eq!(open["status"], "Отгружен");
    assert_eq!(open["paid"].as_f64(), Some(1000.0));
    assert_eq!(now["call-5002"]["status"], "PENDING", "others untouched");

    // Converged: every spec again, nothing to create or update.
    for (file, _) in &SPECS[..4] {
        let (_, counts) = run(&d, &env, file, 0);
        assert_eq!(
            (count(&counts, "create"), count(&counts, "update")),
            (0, 0),
            "{file}: {counts}"
        );
    }
}

#[test]
fn the_retailcrm_variant_creates_customers_and_orders_and_closes_deals() {
    let s = serve();
    let em = &s.em;
    let d = Dir::new();
    copy_scenario(&d, em);
    let env = env(em);
    let leads: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("calltouch_leads.json")).unwrap(),
    )
    .unwrap();
    let before = em.records(System::RetailCrm, "customers");

    // Customers: the same four Calltouch clients are already in retailCRM
    // (by phone, or by email); the others are created with the client id
    // as external id.
    let (plan, counts) = run(&d, &env, "retailcrm/customer", 2);
    assert_eq!(count(&counts, "unchanged"), 4, "{counts}");
    let created = count(&counts, "create") as usize;
    apply(&d, &env, &plan);
    let after = em.records(System::RetailCrm, "customers");
    assert_eq!(after.len(), before.len() + created);
    let irina = after.iter().find(|c| c["externalId"] == "ct-1007").unwrap();
    assert_eq!(irina["email"], "irina.volkova@example.ru");
    assert_eq!(irina["phones"][0]["number"], "79161110007");
    let known = before
        .iter()
        .find(|c| c["phones"][0]["number"] == "+79932990594")
        .unwrap();

    // Orders: one per lead, each naming its customer by retailCRM id, with
    // the lead's source block and marketing custom fields.
    let (plan, counts) = run(&d, &env, "retailcrm/order", 2);
    assert_eq!(count(&counts, "create") as usize, leads.len(), "{counts}");
    apply(&d, &env, &plan);
    let orders: BTreeMap<String, Value> = em
        .records(System::RetailCrm, "orders")
        .into_iter()
        .filter(|o| o.get("source").is_some())
        .map(|o| (o["externalId"].as_str().unwrap().to_string(), o))
        .collect();
    assert_eq!(orders.len(), leads.len());
    let first = &orders["call-5001"];
    assert_eq!(
        first["customer"]["id"], known["id"],
        "the existing customer"
    );
    assert_eq!(orders["req-7008"]["customer"]["id"], known["id"]);
    assert_eq!(orders["req-7003"]["customer"]["id"], irina["id"]);
    assert_eq!(first["status"], "new");
    assert_eq!(first["orderType"], "eshop-individual");
    assert_eq!(first["source"]["source"], "yandex");
    assert_eq!(first["source"]["medium"], "cpc");
    assert_eq!(first["customFields"]["utm_campaign"], "coffee_spring");
    assert_eq!(first["customFields"]["gclid"], "1402261183.1717398764");
    assert_eq!(first["customFields"]["tags"], "DTMF 1|Номер 74952300101");
    assert!(
        first["firstName"]
            .as_str()
            .unwrap()
            .starts_with("Заказ из Calltouch (call) с номера 79932990594")
    );

    // Deals, then the orders' status times on them.
    let (plan, _) = run(&d, &env, "retailcrm/deal", 2);
    apply(&d, &env, &plan);
    let (plan, counts) = run(&d, &env, "retailcrm/deal-status", 2);
    assert_eq!(count(&counts, "invalid"), 0, "{counts}");
    apply(&d, &env, &plan);

    // The order is completed and paid in retailCRM: its deal is COMPLETED
    // with the order's total and payment; another one, assembling, stays
    // open under retailCRM's status.
    for (lead, status, paid) in [
        ("call-5001", "complete", 2500.0),
        ("req-7001", "assembling", 0.0),
    ] {
        let id = orders[lead]["id"].to_string();
        em.admin_patch(
            System::RetailCrm,
            "orders",
            &id,
            json!({
                "status": status,
                "items": [{ "quantity": 2, "initialPrice": 1250.0 }],
                "prepaySum": paid,
            }),
        )
        .unwrap();
    }
    let (plan, counts) = run(&d, &env, "retailcrm/deal-status", 2);
    assert_eq!(count(&counts, "update"), 2, "{counts}");
    apply(&d, &env, &plan);
    let deals: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(d.path().join("retailcrm/calltouch_deals.json")).unwrap(),
    )
    .unwrap();
    let deal = |lead: &str| deals.iter().find(|x| x["leadId"] == lead).unwrap();
    assert_eq!(deal("call-5001")["status"], "COMPLETED");
    assert_eq!(deal("call-5001")["budget"].as_f64(), Some(2500.0));
    assert_eq!(deal("call-5001")["paid"].as_f64(), Some(2500.0));
    assert!(deal("call-5001")["statusChangedAt"].is_string());
    assert_eq!(deal("req-7001")["status"], "assembling");
    assert_eq!(deal("call-5002")["status"], "PENDING");

    for (file, _) in &SPECS[4..] {
        let (_, counts) = run(&d, &env, file, 0);
        assert_eq!(
            (count(&counts, "create"), count(&counts, "update")),
            (0, 0),
            "{file}: {counts}"
        );
    }
}
