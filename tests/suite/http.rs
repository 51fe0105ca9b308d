//! Pulling every built-in profile's entities from the emulator, full and
//! incremental, through faults, with wrong credentials, and without ever
//! writing a secret anywhere.

use crate::common;

use common::Served;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use common::{Dir, read_parquet, show, strings};
use recon::emulate::{Config, Emulator, Faults, System};

/// (system, entity, id path, a field path) for every built-in profile entity.
const ENTITIES: &[(System, &str, &str, &str)] = &[
    (System::MoySklad, "counterparty", "id", "name"),
    (System::MoySklad, "customerorder", "id", "name"),
    (System::MoySklad, "product", "id", "name"),
    (System::RetailCrm, "customers", "id", "firstName"),
    (System::RetailCrm, "orders", "id", "number"),
    (System::RetailCrm, "products", "id", "name"),
    (System::Teamleader, "contacts", "id", "first_name"),
    (System::Teamleader, "companies", "id", "name"),
    (System::Teamleader, "products", "id", "name"),
    (System::Reviso, "customers", "customerNumber", "name"),
    (System::EAccounting, "customers", "Id", "Name"),
    (System::EAccounting, "articles", "Id", "Name"),
    (System::EAccounting, "orders", "Id", "Number"),
];

fn serve(config: Config) -> Served {
    common::serve(config)
}

fn config(records: usize, faults: Faults) -> Config {
    Config {
        systems: vec![
            System::MoySklad,
            System::RetailCrm,
            System::Teamleader,
            System::Reviso,
            System::EAccounting,
        ],
        records,
        seed: 7,
        faults,
        rate_limits: false,
        ..Config::default()
    }
}

fn profile(system: System) -> &'static str {
    system.name()
}

/// Secret name in the profile -> the emulator's credential name.
fn secrets(system: System) -> Vec<(&'static str, &'static str)> {
    match system {
        System::MoySklad => vec![("token", "token")],
        System::RetailCrm => vec![("token", "token")],
        System::Reviso => vec![
            ("app_secret", "app_secret"),
            ("agreement_grant", "agreement_grant"),
        ],
        System::Teamleader | System::EAccounting => {
            vec![
                ("client_id", "client_id"),
                ("client_secret", "client_secret"),
                ("refresh_token", "refresh_token"),
            ]
        }
    }
}

fn env_name(system: System, secret: &str) -> String {
    format!(
        "T_{}_{}",
        system.name().to_uppercase(),
        secret.to_uppercase()
    )
}

/// The spec of one entity against a file side, and the environment with
/// its credentials.
fn spec_for(
    d: &Dir,
    em: &Emulator,
    system: System,
    entity: &str,
    id: &str,
    field: &str,
    name: &str,
) -> (std::path::PathBuf, BTreeMap<String, String>) {
    let mut auth = String::new();
    let mut env = BTreeMap::new();
    for (secret, cred) in secrets(system) {
        let var = env_name(system, secret);
        auth.push_str(&format!("{secret} = \"{var}\"\n"));
        let value = em
            .credentials(system)
            .into_iter()
            .find(|(k, _)| *k == cred)
            .unwrap()
            .1;
        env.insert(var, value);
    }
    let token_url = em
        .token_url(system)
        .map(|u| format!("token_url = \"{u}\"\n"))
        .unwrap_or_default();
    d.write("other.csv", "id,name\n");
    let spec = format!(
        r#"name = "{name}"
entity = "{entity}"
direction = "api -> file"

[side.api]
profile = "{profile}"
entity = "{entity}"
base_url = "{base}"
{token_url}id = "{id}"

[side.api.auth]
{auth}
[side.file]
file = "other.csv"
id = "id"

[[field]]
name = "name"
path = {{ api = "{field}", file = "name" }}

[[key]]
fields = ["name"]
"#,
        profile = profile(system),
        base = em.base_url(system),
    );
    (d.write(&format!("{name}.toml"), spec), env)
}

fn recon(d: &Dir, env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    d.recon_env(env, args)
}

fn snapshot_ids(d: &Dir, name: &str) -> Vec<Option<String>> {
    let snaps = d.files(&format!("snapshots/{name}/api"), ".parquet");
    let mut ids = strings(&read_parquet(snaps.last().unwrap()), "_id");
    ids.sort();
    ids
}

#[test]
fn every_profile_entity_pulls_full_then_incremental() {
    let s = serve(config(250, Faults::default()));
    let d = Dir::new();
    for (i, (system, entity, id, field)) in ENTITIES.iter().enumerate() {
        let name = format!("e{i}");
        let (spec, env) = spec_for(&d, &s.em, *system, entity, id, field, &name);
        let o = recon(&d, &env, &["pull", spec.to_str().unwrap()]);
        assert!(o.status.success(), "{system} {entity}: {}", show(&o));
        let want = s.em.records(*system, entity).len();
        assert_eq!(
            snapshot_ids(&d, &name).len(),
            want,
            "{system} {entity}: every record once\n{}",
            show(&o)
        );

        // A record changes upstream: the next pull reads changes only, or
        // everything where the entity has no change filter.
        let first = s.em.records(*system, entity)[0].clone();
        let native_id = recon::spec::FieldPath::parse(id)
            .unwrap()
            .get(&first)
            .map(|v| v.as_str().map(str::to_string).unwrap_or(v.to_string()))
            .unwrap();
        let patch = serde_json::json!({ *field: "Changed Upstream" });
        s.em.admin_patch(*system, entity, &native_id, patch)
            .unwrap_or_else(|e| panic!("{system} {entity}: {e:?}"));
        let o = recon(&d, &env, &["pull", spec.to_str().unwrap()]);
        assert!(o.status.success(), "{system} {entity}: {}", show(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        let snaps = d.files(&format!("snapshots/{name}/api"), ".parquet");
        let df = read_parquet(snaps.last().unwrap());
        assert_eq!(df.height(), want, "{system} {entity}: {out}");
        assert!(
            strings(&df, "name").contains(&Some("Changed Upstream".into())),
            "{system} {entity}: the change arrived\n{out}"
        );
        let incremental = !matches!((system, *entity), (System::RetailCrm, "products"));
        assert_eq!(
            out.contains("(incremental)"),
            incremental,
            "{system} {entity}: {out}"
        );
    }
}

#[test]
fn faults_do_not_change_the_snapshot() {
    let clean = serve(config(1200, Faults::default()));
    let faulty = serve(config(
        1200,
        "500=0.04,429=0.03,slow=0.01:50,malformed=0.02"
            .parse()
            .unwrap(),
    ));
    for (system, entity, id, field) in [
        (System::MoySklad, "counterparty", "id", "name"),
        (System::RetailCrm, "customers", "id", "firstName"),
        (System::EAccounting, "customers", "Id", "Name"),
    ] {
        let (d1, d2) = (Dir::new(), Dir::new());
        let (spec1, env1) = spec_for(&d1, &clean.em, system, entity, id, field, "f");
        let (spec2, env2) = spec_for(&d2, &faulty.em, system, entity, id, field, "f");
        let o1 = recon(&d1, &env1, &["pull", spec1.to_str().unwrap()]);
        let o2 = recon(&d2, &env2, &["pull", spec2.to_str().unwrap()]);
        assert!(
            o1.status.success() && o2.status.success(),
            "{}\n{}",
            show(&o1),
            show(&o2)
        );
        let a = read_parquet(&d1.files("snapshots/f/api", ".parquet")[0]);
        let b = read_parquet(&d2.files("snapshots/f/api", ".parquet")[0]);
        let sorted = |df: &polars::prelude::DataFrame| {
            let mut rows: Vec<(Option<String>, Option<String>)> = strings(df, "_id")
                .into_iter()
                .zip(strings(df, "name"))
                .collect();
            rows.sort();
            rows
        };
        assert_eq!(
            sorted(&a),
            sorted(&b),
            "{system}: same records with and without faults"
        );
    }
    let stats = faulty.em.stats().total();
    assert!(stats.faults > 0, "faults were injected: {stats:?}");
}

#[test]
fn a_wrong_token_names_the_variable_and_secrets_stay_out_of_every_output() {
    let s = serve(config(50, Faults::default()));
    let d = Dir::new();
    let (spec, mut env) = spec_for(
        &d,
        &s.em,
        System::MoySklad,
        "counterparty",
        "id",
        "name",
        "w",
    );
    let good = env.clone();
    env.insert(
        env_name(System::MoySklad, "token"),
        "not-the-token-0000".into(),
    );
    let o = recon(&d, &env, &["pull", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("T_MOYSKLAD_TOKEN"), "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("not-the-token-0000"), "{err}");

    // A good run, then look for every secret in every file and every line.
    let mut outputs = vec![];
    for args in [vec!["check", "--connect"], vec!["run"], vec!["history"]] {
        let mut a = args.clone();
        a.push(spec.to_str().unwrap());
        let o = recon(&d, &good, &a);
        outputs.push(format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    let (spec2, env2) = spec_for(
        &d,
        &s.em,
        System::EAccounting,
        "customers",
        "Id",
        "Name",
        "oauth",
    );
    let o = recon(
        &d,
        &env2,
        &["--log-format", "json", "-v", "run", spec2.to_str().unwrap()],
    );
    assert!(matches!(o.status.code(), Some(0 | 2)), "{}", show(&o));
    outputs.push(format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    ));
    let secrets: Vec<String> = good.values().chain(env2.values()).cloned().collect();
    let mut files = 0;
    walk(d.path(), &mut |p| {
        // The token store holds the rotated refresh token by design; the
        // secrets from the environment never land there either.
        files += 1;
        let bytes = std::fs::read(p).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret is in {}",
                p.display()
            );
        }
    });
    assert!(files > 5, "outputs were written");
    for out in &outputs {
        for secret in &secrets {
            assert!(
                !out.contains(secret.as_str()),
                "a secret was printed:\n{out}"
            );
        }
    }
}

fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, f);
        } else {
            f(&p);
        }
    }
}

/// Every injected 429 is waited out for as long as the vendor asked: MoySklad
/// in milliseconds in a header, eAccounting in seconds in the message, on
/// its token endpoint too.
#[test]
fn a_429_is_waited_out_as_the_vendor_asks() {
    let s = serve(config(1200, "429=0.4".parse().unwrap()));
    for (system, entity, id, field, told) in [
        (
            System::MoySklad,
            "counterparty",
            "id",
            "name",
            "waiting 200ms (X-Lognex-Retry-After header)",
        ),
        (
            System::EAccounting,
            "customers",
            "Id",
            "Name",
            "waiting 1s (message body)",
        ),
    ] {
        let d = Dir::new();
        let (spec, env) = spec_for(&d, &s.em, system, entity, id, field, "w");
        let before = s.em.stats().system(system).faults_429;
        let started = std::time::Instant::now();
        let o = recon(&d, &env, &["pull", spec.to_str().unwrap()]);
        let took = started.elapsed();
        assert!(o.status.success(), "{}", show(&o));
        let injected = s.em.stats().system(system).faults_429 - before;
        let stderr = String::from_utf8_lossy(&o.stderr);
        let waits = stderr
            .lines()
            .filter(|l| l.contains("HTTP 429") && l.contains(told))
            .count() as u64;
        assert!(injected > 0, "{system}: no 429 was injected");
        assert_eq!(waits, injected, "{system}: one wait per 429\n{stderr}");
        // Pages are fetched side by side, so waits may overlap: the pull
        // lasts at least one of them.
        let asked = if system == System::MoySklad { 0.2 } else { 1.0 };
        assert!(
            took.as_secs_f64() >= asked,
            "{system}: {injected} waits of {asked}s took only {took:?}"
        );
        assert_eq!(
            snapshot_ids(&d, "w").len(),
            s.em.records(system, entity).len()
        );
    }
}

#[test]
fn a_page_that_stays_malformed_fails_the_pull_and_writes_nothing() {
    let s = serve(config(30, "malformed=1.0".parse().unwrap()));
    let d = Dir::new();
    let (spec, env) = spec_for(
        &d,
        &s.em,
        System::RetailCrm,
        "customers",
        "id",
        "firstName",
        "m",
    );
    let o = recon(&d, &env, &["pull", spec.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("malformed"),
        "{}",
        show(&o)
    );
    assert!(d.files("snapshots/m", ".parquet").is_empty());
    assert!(
        s.em.stats().total().requests >= 8,
        "retried before giving up"
    );
}

#[test]
fn a_profile_file_drives_a_system_without_a_built_in_profile() {
    let s = common::serve(config(40, Faults::default()));
    let d = Dir::new();
    // A system described only by a profile file: here MoySklad's facts
    // under another name, as a user would write one for their own system.
    let text = recon::connect::http::profile::BUILT_IN
        .iter()
        .find(|p| p.0 == "moysklad")
        .unwrap()
        .1
        .replace("name = \"moysklad\"", "name = \"my-erp\"");
    d.write("profiles/my-erp.toml", text);
    let (spec, env) = spec_for(
        &d,
        &s.em,
        System::MoySklad,
        "counterparty",
        "id",
        "name",
        "custom",
    );
    let body = std::fs::read_to_string(&spec).unwrap().replace(
        "profile = \"moysklad\"",
        "profile = \"profiles/my-erp.toml\"",
    );
    std::fs::write(&spec, body).unwrap();
    let o = recon(&d, &env, &["check", spec.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("my-erp API"),
        "{}",
        show(&o)
    );
    let o = recon(&d, &env, &["pull", spec.to_str().unwrap()]);
    assert!(o.status.success(), "{}", show(&o));
    assert_eq!(
        snapshot_ids(&d, "custom").len(),
        s.em.records(System::MoySklad, "counterparty").len()
    );
}
