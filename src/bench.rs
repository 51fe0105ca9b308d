//! Benchmark data: two sides of N customers, seeded, with the mess real
//! systems have (emails in mixed case with spaces, phones written five ways,
//! drifted fields, duplicates, orphans), written straight into snapshots.

use std::path::{Path, PathBuf};

use crate::snapshot::convert::Cell;
use crate::snapshot::{SnapshotWriter, arrow_schema, meta};
use crate::spec::{SideIx, Spec};

/// The spec the benchmark plans with.
pub const SPEC: &str = r#"# Written by `recon bench`: customers of a CRM against an ERP.
name = "bench"
entity = "customers"
direction = "crm -> erp"

[side.crm]
file = "crm.parquet"
id = "id"
region = "IT"

[side.erp]
file = "erp.parquet"
id = "id"
region = "IT"

[[field]]
name = "ext"
path = { crm = "id", erp = "crm_ref" }

[[field]]
name = "email"
path = { crm = "email", erp = "email" }
compare = "email"

[[field]]
name = "phone"
path = { crm = "phone", erp = "phone" }
compare = "phone"

[[field]]
name = "name"
path = { crm = "name", erp = "name" }
compare = "loose"

[[field]]
name = "city"
path = { crm = "city", erp = "city" }
compare = "loose"

[[field]]
name = "amount"
type = "decimal"
path = { crm = "amount", erp = "amount" }
tolerance = 0.01

[[field]]
name = "updated"
type = "datetime"
path = { crm = "updated", erp = "updated" }
ignore = true

[[key]]
fields = ["ext"]

[[key]]
fields = ["email"]
normalize = "email"

[[key]]
fields = ["phone"]
normalize = "phone"
"#;

/// A small, fast, seedable generator (SplitMix64): benchmark data must be
/// the same on every machine for a given seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// 0..n
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// true with probability p (0..1).
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

const CITIES: [&str; 8] = [
    "Milano", "Roma", "Torino", "Napoli", "Bologna", "Firenze", "Bari", "Padova",
];
const FIRST: [&str; 8] = [
    "Giulia", "Marco", "Luca", "Sara", "Paolo", "Anna", "Elena", "Davide",
];
const LAST: [&str; 8] = [
    "Rossi", "Bianchi", "Russo", "Ferrari", "Esposito", "Romano", "Gallo", "Conti",
];

struct Customer {
    email: String,
    phone: u64,
    name: String,
    city: &'static str,
    cents: i64,
}

fn customer(i: u64, rng: &mut Rng) -> Customer {
    Customer {
        email: format!("user{i}@example.com"),
        // Italian mobile ranges (340..349) hold 100M numbers: valid for any N.
        phone: 3_400_000_000 + i,
        name: format!(
            "{} {}",
            FIRST[rng.below(8) as usize],
            LAST[rng.below(8) as usize]
        ),
        city: CITIES[rng.below(8) as usize],
        cents: rng.below(5_000_000) as i64,
    }
}

/// A mobile number written one of five ways.
fn phone_text(n: u64, rng: &mut Rng) -> String {
    let d = n.to_string();
    match rng.below(5) {
        0 => format!("+39 {} {} {}", &d[..3], &d[3..6], &d[6..]),
        1 => format!("0039 {}-{}", &d[..3], &d[3..]),
        2 => format!("({}) {}", &d[..3], &d[3..]),
        3 => format!("{} {} {}", &d[..3], &d[3..6], &d[6..]),
        _ => format!("+39{d}"),
    }
}

fn messy_email(e: &str, rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => e.to_uppercase(),
        1 => format!(" {e} "),
        _ => e.to_string(),
    }
}

/// What was generated, for the benchmark's report.
pub struct Generated {
    pub paths: [PathBuf; 2],
    pub rows: [u64; 2],
}

/// Write both sides' snapshots for `rows` customers under `home`.
pub fn generate(
    spec: &Spec,
    home: &Path,
    rows: u64,
    seed: u64,
    stamp: &str,
) -> std::io::Result<Generated> {
    let mut rng = Rng::new(seed);
    let mut writers = Vec::new();
    for side in SideIx::both() {
        let fields: Vec<_> = spec.fields.iter().collect();
        let s = spec.side(side);
        let path = home
            .join("snapshots")
            .join(&spec.name)
            .join(&s.name)
            .join(format!("{stamp}.parquet"));
        let md = vec![
            (meta::SPEC.to_string(), spec.name.clone()),
            (meta::SPEC_HASH.to_string(), spec.hash.clone()),
            (meta::SIDE.to_string(), s.name.clone()),
            (
                meta::SOURCE.to_string(),
                format!("recon bench --rows {rows} --seed {seed}"),
            ),
            (meta::MODE.to_string(), "full".into()),
            (meta::PULLED_AT.to_string(), stamp.to_string()),
        ];
        writers.push(SnapshotWriter::create(&path, arrow_schema(&fields), md)?);
    }
    let [mut wa, mut wb]: [SnapshotWriter; 2] = writers.try_into().ok().expect("two writers");
    let updated = Cell::Datetime(1_763_000_000_000_000);
    let text = |s: String| Cell::Text(s);
    for i in 0..rows {
        let c = customer(i, &mut rng);
        let crm_id = format!("C{i}");
        // 5% only in the CRM (creates), 5% only in the ERP (orphans).
        let roll = rng.below(100);
        let in_crm = roll >= 5;
        let in_erp = !(5..10).contains(&roll);
        // 0.1% share an email with the next customer: duplicates.
        let email = if rng.chance(0.001) {
            format!("user{}@example.com", i + 1)
        } else {
            c.email.clone()
        };
        if in_crm {
            wa.push(
                &crm_id,
                vec![
                    text(crm_id.clone()),
                    text(messy_email(&email, &mut rng)),
                    text(phone_text(c.phone, &mut rng)),
                    text(c.name.clone()),
                    text(c.city.to_string()),
                    Cell::Decimal(c.cents as i128),
                    updated.clone(),
                ],
            )?;
        }
        if in_erp {
            // Half of the ERP records carry the CRM id; the rest match by
            // email, or by phone when the email changed.
            let ext = if in_crm && rng.chance(0.5) {
                text(crm_id.clone())
            } else {
                Cell::Null
            };
            let erp_email = if in_crm && rng.chance(0.05) {
                format!("old{i}@example.org")
            } else {
                email.to_lowercase()
            };
            let drift = rng.below(100);
            let name = if drift < 3 {
                format!("{} Srl", c.name)
            } else {
                c.name.to_uppercase()
            };
            let city = if (3..6).contains(&drift) {
                CITIES[(rng.below(8)) as usize]
            } else {
                c.city
            };
            let cents = if (6..10).contains(&drift) {
                c.cents + 500
            } else {
                c.cents
            };
            wb.push(
                &format!("E{i}"),
                vec![
                    ext,
                    text(erp_email),
                    text(phone_text(c.phone, &mut rng)),
                    text(name),
                    text(city.to_lowercase()),
                    Cell::Decimal(cents as i128),
                    updated.clone(),
                ],
            )?;
        }
    }
    let rows = [wa.rows(), wb.rows()];
    let pa = wa.finish(vec![(meta::ROWS.to_string(), rows[0].to_string())])?;
    let pb = wb.finish(vec![(meta::ROWS.to_string(), rows[1].to_string())])?;
    Ok(Generated {
        paths: [pa, pb],
        rows,
    })
}

/// Counterparties of an emulated MoySklad that have a usable, unique email,
/// by lowercased email.
pub fn counterparties_by_email(
    em: &crate::emulate::Emulator,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    use crate::emulate::System;
    let all = em.records(System::MoySklad, "counterparty");
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for r in &all {
        if let Some(e) = r.get("email").and_then(|v| v.as_str()) {
            *seen.entry(e.trim().to_lowercase()).or_default() += 1;
        }
    }
    all.into_iter()
        .filter_map(|r| {
            let e = r.get("email")?.as_str()?.trim().to_lowercase();
            (seen[&e] == 1 && e.contains('@')).then_some((e, r))
        })
        .collect()
}

/// A CRM file that changes the phone of `updates` counterparties of an
/// emulated MoySklad and adds `creates` new ones, and the spec between them.
/// Returns the spec's path and the environment holding the token.
pub fn counterparty_fixture(
    em: &crate::emulate::Emulator,
    dir: &Path,
    updates: usize,
    creates: usize,
    batch: bool,
) -> std::io::Result<(PathBuf, Vec<(String, String)>)> {
    use crate::emulate::System;
    use std::fmt::Write as _;
    let mut csv = String::from("id,email,name,phone\n");
    for (i, (email, rec)) in counterparties_by_email(em)
        .into_iter()
        .take(updates)
        .enumerate()
    {
        let name = rec["name"]
            .as_str()
            .unwrap_or_default()
            .replace([',', '"'], " ");
        let _ = writeln!(csv, "U{i},{email},{name},+7 900 {i:07}");
    }
    for i in 0..creates {
        let _ = writeln!(
            csv,
            "N{i},new{i}@example.org,New Customer {i},+7 901 {i:07}"
        );
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("crm.csv"), csv)?;
    let spec = format!(
        r#"# Written by recon: a CRM file against an emulated MoySklad.
name = "cp"
entity = "counterparty"
direction = "crm -> ms"

[side.crm]
file = "crm.csv"
id = "id"
region = "RU"

[side.ms]
profile = "moysklad"
entity = "counterparty"
base_url = "{base}"
id = "id"
region = "RU"
# The emulator runs without the vendor's limits.
rate_limit = {{ requests = 100000, per_seconds = 1, parallel = 4 }}
batch = {batch}

[side.ms.auth]
token = "RECON_EMULATED_MS_TOKEN"

[[field]]
name = "email"
path = {{ crm = "email", ms = "email" }}
compare = "email"

[[field]]
name = "name"
path = {{ crm = "name", ms = "name" }}
create_only = true

[[field]]
name = "phone"
path = {{ crm = "phone", ms = "phone" }}
compare = "phone"

[[key]]
fields = ["email"]
normalize = "email"
"#,
        base = em.base_url(System::MoySklad)
    );
    let path = dir.join("cp.toml");
    std::fs::write(&path, spec)?;
    let token = em
        .credentials(System::MoySklad)
        .into_iter()
        .find(|c| c.0 == "token")
        .map(|c| c.1)
        .unwrap_or_default();
    Ok((path, vec![("RECON_EMULATED_MS_TOKEN".to_string(), token)]))
}
