//! `recon emulate`: five real systems served in-process over HTTP, with
//! their URL layouts, record shapes, pagination, authentication, rate limits
//! and error bodies, plus injected faults. Tests, benchmarks and the demo run
//! connectors against it; users try a spec against it before going live.
//!
//! All systems share one port, each under its own prefix (see
//! [`Emulator::base_url`]). State is shared by every request and changes with
//! writes; seeded records are generated on demand (see `store`), so a million
//! records per entity cost no memory until they are written.
//!
//! Admin endpoints under `/_admin/` (no auth, never faulted or rate limited):
//!
//! | Method and path | Does |
//! |---|---|
//! | `GET _admin/state[?system=S&entity=E]` | every record, by system and entity, sorted by id (413 past 100 000 per entity unless `all=1`) |
//! | `GET _admin/stats` | [`Stats`] as JSON |
//! | `POST _admin/{system}/{entity}` | create a record as a user would (the server assigns the id) |
//! | `PATCH _admin/{system}/{entity}/{id}` | merge a JSON object into a record (RFC 7386), bumping its update time |
//! | `DELETE _admin/{system}/{entity}/{id}` | delete a record |
//! | `POST _admin/reviso/renumber` | `{"oldNumber":N,"newNumber":M}`: change a Reviso customer number |
//! | `POST _admin/save` | `{"path":"..."}` (default `--state`): write the state file |
//!
//! Admin writes count as user edits: retailCRM history marks them
//! `apiKey.current = false` and `source = "user"`.

mod eaccounting;
mod fake;
mod moysklad;
mod retailcrm;
mod reviso;
mod store;
mod teamleader;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body as AxumBody, Bytes};
use axum::extract::{Request, State as AxumState};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::bench::Rng;
use store::{Ctx, SECOND, Spec, Table, Times};

/// A system the emulator can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum System {
    MoySklad,
    RetailCrm,
    Teamleader,
    Reviso,
    EAccounting,
}

impl System {
    pub const ALL: [System; 5] = [
        System::MoySklad,
        System::RetailCrm,
        System::Teamleader,
        System::Reviso,
        System::EAccounting,
    ];

    /// The name on the command line and in URLs: `moysklad`, `retailcrm`, ...
    pub fn name(&self) -> &'static str {
        match self {
            System::MoySklad => "moysklad",
            System::RetailCrm => "retailcrm",
            System::Teamleader => "teamleader",
            System::Reviso => "reviso",
            System::EAccounting => "eaccounting",
        }
    }

    /// The entities served, as [`Emulator::records`] and the admin
    /// endpoints name them.
    pub fn entities(&self) -> Vec<&'static str> {
        self.vendor().specs().iter().map(|s| s.name).collect()
    }

    /// The path of the base URL under the emulator's root.
    fn base_path(&self) -> &'static str {
        match self {
            System::MoySklad => "/moysklad/api/remap/1.2",
            System::RetailCrm => "/retailcrm/api/v5",
            System::Teamleader => "/teamleader",
            System::Reviso => "/reviso",
            System::EAccounting => "/eaccounting/v2",
        }
    }

    fn vendor(&self) -> &'static dyn Vendor {
        match self {
            System::MoySklad => &moysklad::MoySklad,
            System::RetailCrm => &retailcrm::RetailCrm,
            System::Teamleader => &teamleader::Teamleader,
            System::Reviso => &reviso::Reviso,
            System::EAccounting => &eaccounting::EAccounting,
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for System {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        System::ALL
            .into_iter()
            .find(|sys| sys.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let names: Vec<_> = System::ALL.iter().map(System::name).collect();
                format!(
                    "unknown system `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// Shares (0..1) of vendor requests that get each fault. Each request draws
/// every fault independently from a generator seeded by the emulator seed.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Answered 500 with the vendor's error body; nothing is executed.
    pub error_500: f64,
    /// Answered 429 with the vendor's headers and body, asking for a short
    /// wait (200 ms, or 1 s where the vendor counts in seconds).
    pub error_429: f64,
    /// Delayed by `slow_ms` before being served.
    pub slow: f64,
    pub slow_ms: u64,
    /// Successful list responses cut in half: status 200, unparsable JSON.
    pub malformed: f64,
}

impl Faults {
    pub fn is_none(&self) -> bool {
        self.error_500 <= 0.0 && self.error_429 <= 0.0 && self.slow <= 0.0 && self.malformed <= 0.0
    }
}

impl FromStr for Faults {
    type Err = String;
    /// `500=0.05,429=0.05,slow=0.02:1500,malformed=0.02`; empty or `none`
    /// means no faults. `slow` without `:MS` waits 1000 ms.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut faults = Faults {
            slow_ms: 1000,
            ..Faults::default()
        };
        if s.trim().is_empty() || s.trim() == "none" {
            return Ok(faults);
        }
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, value) = part
                .split_once('=')
                .ok_or_else(|| format!("fault `{part}`: expected NAME=SHARE"))?;
            let (share, ms) = match value.split_once(':') {
                Some((share, ms)) if name == "slow" => (share, Some(ms)),
                _ => (value, None),
            };
            let share: f64 = share
                .trim()
                .parse()
                .map_err(|_| format!("fault `{part}`: `{share}` is not a number"))?;
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("fault `{part}`: the share must be within 0..1"));
            }
            match name.trim() {
                "500" => faults.error_500 = share,
                "429" => faults.error_429 = share,
                "slow" => faults.slow = share,
                "malformed" => faults.malformed = share,
                other => {
                    return Err(format!(
                        "unknown fault `{other}` (expected 500, 429, slow or malformed)"
                    ));
                }
            }
            if let Some(ms) = ms {
                faults.slow_ms = ms
                    .trim()
                    .parse()
                    .map_err(|_| format!("fault `{part}`: `{ms}` is not milliseconds"))?;
            }
        }
        Ok(faults)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_none() {
            return f.write_str("none");
        }
        let mut parts = Vec::new();
        if self.error_500 > 0.0 {
            parts.push(format!("500={}", self.error_500));
        }
        if self.error_429 > 0.0 {
            parts.push(format!("429={}", self.error_429));
        }
        if self.slow > 0.0 {
            parts.push(format!("slow={}:{}", self.slow, self.slow_ms));
        }
        if self.malformed > 0.0 {
            parts.push(format!("malformed={}", self.malformed));
        }
        f.write_str(&parts.join(","))
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub systems: Vec<System>,
    /// Seeded records per entity.
    pub records: usize,
    pub seed: u64,
    pub faults: Faults,
    /// Enforce each vendor's request rate (and MoySklad's parallel) limit.
    pub rate_limits: bool,
    /// Loaded at start when the file exists (its seed and record count win
    /// over the ones above); [`Emulator::save`] and `POST _admin/save` write it.
    pub state_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            systems: System::ALL.to_vec(),
            records: 100,
            seed: 42,
            faults: Faults::default(),
            rate_limits: true,
            state_file: None,
        }
    }
}

/// Counters of one system since the start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SystemStats {
    /// Vendor requests received (admin ones are not counted).
    pub requests: u64,
    /// Injected faults of every kind.
    pub faults: u64,
    pub faults_500: u64,
    pub faults_429: u64,
    pub faults_slow: u64,
    pub faults_malformed: u64,
    /// Real (not injected) 429s from the rate limits.
    pub rate_limited: u64,
    /// Requests refused for missing or wrong credentials.
    pub unauthorized: u64,
    /// Records created, updated or deleted through the vendor API.
    pub writes: u64,
    /// Records created, updated or deleted through the admin endpoints.
    pub admin_writes: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub systems: BTreeMap<String, SystemStats>,
}

impl Stats {
    pub fn system(&self, system: System) -> SystemStats {
        self.systems.get(system.name()).cloned().unwrap_or_default()
    }

    pub fn total(&self) -> SystemStats {
        let mut t = SystemStats::default();
        for s in self.systems.values() {
            t.requests += s.requests;
            t.faults += s.faults;
            t.faults_500 += s.faults_500;
            t.faults_429 += s.faults_429;
            t.faults_slow += s.faults_slow;
            t.faults_malformed += s.faults_malformed;
            t.rate_limited += s.rate_limited;
            t.unauthorized += s.unauthorized;
            t.writes += s.writes;
            t.admin_writes += s.admin_writes;
        }
        t
    }
}

/// Why an admin operation failed; `status` is what the HTTP endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminError {
    pub status: u16,
    pub message: String,
}

impl AdminError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

impl std::error::Error for AdminError {}

/// A running emulator. Dropping it stops the server too; `shutdown` also
/// waits for it.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Bind `addr` (port 0 picks a free one) and serve in a spawned task.
    /// Loads `config.state_file` when it exists.
    pub async fn start(config: Config, addr: SocketAddr) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let host = if addr.ip().is_unspecified() {
            SocketAddr::new([127, 0, 0, 1].into(), addr.port())
        } else {
            addr
        };
        let root = format!("http://{host}");
        let saved = match &config.state_file {
            Some(path) if path.exists() => Some(read_state(path)?),
            _ => None,
        };
        let shared = Arc::new(Shared::new(config, root, saved.as_ref())?);
        let app = Router::new().fallback(serve).with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            if let Err(e) = server.await {
                tracing::error!("emulator stopped: {e}");
            }
        });
        Ok(Emulator {
            shared,
            addr: host,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What a spec's base URL override for `system` should be:
    /// - moysklad `http://HOST:PORT/moysklad/api/remap/1.2`
    /// - retailcrm `http://HOST:PORT/retailcrm/api/v5`
    /// - teamleader `http://HOST:PORT/teamleader` (token endpoint `/teamleader/oauth2/access_token`)
    /// - reviso `http://HOST:PORT/reviso`
    /// - eaccounting `http://HOST:PORT/eaccounting/v2` (token endpoint `/eaccounting/connect/token`)
    pub fn base_url(&self, system: System) -> String {
        format!("{}{}", self.shared.root, system.base_path())
    }

    /// The seed in use (a loaded state file's, when there was one).
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// Seeded records per entity (a loaded state file's, when there was one).
    pub fn records_per_entity(&self) -> usize {
        self.shared.records
    }

    /// The emulator's root, `http://HOST:PORT`.
    pub fn root(&self) -> &str {
        &self.shared.root
    }

    /// The URL of an OAuth2 system's token endpoint.
    pub fn token_url(&self, system: System) -> Option<String> {
        let path = match system {
            System::Teamleader => "/teamleader/oauth2/access_token",
            System::EAccounting => "/eaccounting/connect/token",
            _ => return None,
        };
        Some(format!("{}{path}", self.shared.root))
    }

    /// The credentials `system` accepts now, named as the connector's
    /// profiles name their secrets:
    /// - moysklad: `token` (`Authorization: Bearer`), `login` and
    ///   `password` (`Authorization: Basic`);
    /// - retailcrm: `token`, the API key (`X-API-KEY` header or `apiKey` query);
    /// - teamleader and eaccounting: `client_id`, `client_secret`, the
    ///   current `refresh_token` (single use: each refresh returns the next
    ///   one) and an `access_token` valid until the emulator stops;
    /// - reviso: `app_secret` (`X-AppSecretToken`) and `agreement_grant`
    ///   (`X-AgreementGrantToken`).
    pub fn credentials(&self, system: System) -> Vec<(&'static str, String)> {
        let state = self.shared.lock();
        state
            .systems
            .get(&system)
            .map(|sys| sys.auth.credentials())
            .unwrap_or_default()
    }

    /// Every live record of an entity (names as in [`System::entities`]),
    /// sorted by id.
    pub fn records(&self, system: System, entity: &str) -> Vec<Value> {
        let state = self.shared.lock();
        let Some(sys) = state.systems.get(&system) else {
            return Vec::new();
        };
        match sys.table(entity) {
            Some(t) => sorted_by_id(sys.tables[t].all(), sys.tables[t].spec.pk),
            None => Vec::new(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Render an entity's seeded records now rather than on first read, so
    /// that a benchmark times the client and not the data's generation.
    pub fn warm(&self, system: System, entity: &str) {
        let job = {
            let state = self.shared.lock();
            let Some(sys) = state.systems.get(&system) else {
                return;
            };
            match sys.table(entity) {
                Some(t) => sys.tables[t].warmer(),
                None => return,
            }
        };
        job();
    }

    /// Write the state file: seed, record count and every written record.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        self.shared.save(path)
    }

    /// Create a record as a user would in the vendor's UI; returns it with
    /// the id the server assigned.
    pub fn admin_create(
        &self,
        system: System,
        entity: &str,
        record: Value,
    ) -> Result<Value, AdminError> {
        self.shared.admin_create(system, entity, record)
    }

    /// Merge `patch` into a record (RFC 7386: objects merge, null removes).
    pub fn admin_patch(
        &self,
        system: System,
        entity: &str,
        id: &str,
        patch: Value,
    ) -> Result<Value, AdminError> {
        self.shared.admin_patch(system, entity, id, patch)
    }

    pub fn admin_delete(&self, system: System, entity: &str, id: &str) -> Result<(), AdminError> {
        self.shared.admin_delete(system, entity, id)
    }

    /// Give a Reviso customer a new number (its `self` link changes too).
    pub fn renumber_reviso(&self, old_number: u64, new_number: u64) -> Result<Value, AdminError> {
        self.shared.renumber_reviso(old_number, new_number)
    }

    /// Stop serving and wait for open requests to finish (at most 5 s).
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn sorted_by_id(mut records: Vec<Value>, pk: &str) -> Vec<Value> {
    records.sort_by(|a, b| {
        let key = |v: &Value| match v.get(pk) {
            Some(Value::Number(n)) => (0, n.as_u64().unwrap_or(0), String::new()),
            Some(v) => (1, 0, store::key_text(v).unwrap_or_default()),
            None => (2, 0, String::new()),
        };
        key(a).cmp(&key(b))
    });
    records
}

// ---------------------------------------------------------------------------
// Shared state

/// Who a write comes from: retailCRM's history tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Api,
    Admin,
}

/// Credentials of one system. Static ones derive from the seed; OAuth2
/// systems also hold the rotating refresh token and the access tokens
/// issued since the start (never saved, so old ones fail after a restart).
struct Auth {
    pub secrets: Vec<(&'static str, String)>,
    pub oauth: Option<OAuth>,
}

struct OAuth {
    /// Names the refresh token stream: `{system}/refresh`.
    stream: String,
    seed: u64,
    rotations: u64,
    pub refresh_token: String,
    pub access: HashSet<String>,
    first_access: String,
}

impl Auth {
    fn new(vendor: &dyn Vendor, seed: u64) -> Self {
        let oauth = vendor.oauth().then(|| {
            let stream = format!("{}/refresh", vendor.system().name());
            let first_access = new_access_token();
            OAuth {
                refresh_token: store::secret(seed, &format!("{stream}/0"), 40),
                stream,
                seed,
                rotations: 0,
                access: HashSet::from([first_access.clone()]),
                first_access,
            }
        });
        Self {
            secrets: vendor.secrets(seed),
            oauth,
        }
    }

    pub fn secret(&self, name: &str) -> &str {
        self.secrets
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    fn credentials(&self) -> Vec<(&'static str, String)> {
        let mut out = self.secrets.clone();
        if let Some(o) = &self.oauth {
            out.push(("refresh_token", o.refresh_token.clone()));
            out.push(("access_token", o.first_access.clone()));
        }
        out
    }

    /// Whether `Authorization: Bearer ...` carries an issued access token.
    pub fn bearer_ok(&self, req: &Req) -> bool {
        let Some(token) = req.bearer() else {
            return false;
        };
        self.oauth
            .as_ref()
            .is_some_and(|o| o.access.contains(token))
    }

    fn set_rotations(&mut self, rotations: u64) {
        if let Some(o) = &mut self.oauth {
            o.rotations = rotations;
            o.refresh_token = store::secret(o.seed, &format!("{}/{rotations}", o.stream), 40);
        }
    }

    /// The OAuth2 refresh-token grant shared by Teamleader and eAccounting:
    /// form or JSON parameters, client id and secret in the body or as
    /// Basic auth. The refresh token is single use: the response carries
    /// the next one and the old one is refused as `invalid_grant`.
    pub fn refresh(&mut self, req: &Req) -> (u16, Value) {
        let mut params: HashMap<String, String> = req.form().into_iter().collect();
        if let Some(Value::Object(body)) = req.json() {
            for (k, v) in body {
                if let Some(v) = store::key_text(&v) {
                    params.insert(k, v);
                }
            }
        }
        if let Some((id, secret)) = req.basic() {
            params.entry("client_id".into()).or_insert(id);
            params.entry("client_secret".into()).or_insert(secret);
        }
        let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        if get("grant_type") != "refresh_token" {
            return (
                400,
                json!({"error": "unsupported_grant_type", "error_description": "Only grant_type=refresh_token is supported."}),
            );
        }
        if get("client_id") != self.secret("client_id")
            || get("client_secret") != self.secret("client_secret")
        {
            return (
                401,
                json!({"error": "invalid_client", "error_description": "Client authentication failed."}),
            );
        }
        let Some(o) = &self.oauth else {
            return (400, json!({"error": "unsupported_grant_type"}));
        };
        if get("refresh_token") != o.refresh_token {
            return (
                400,
                json!({"error": "invalid_grant", "error_description": "The refresh token is invalid or was already used."}),
            );
        }
        let rotations = o.rotations + 1;
        self.set_rotations(rotations);
        let o = self.oauth.as_mut().expect("checked above");
        let access = new_access_token();
        o.access.insert(access.clone());
        (
            200,
            json!({
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 3600,
                "refresh_token": o.refresh_token,
            }),
        )
    }
}

fn new_access_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// One system's records, credentials and (retailCRM) change log.
struct Sys {
    pub system: System,
    pub ctx: Arc<Ctx>,
    pub tables: Vec<Table>,
    pub auth: Auth,
    /// Change-log rows written since the start, per entity (retailCRM).
    pub log: BTreeMap<&'static str, Vec<Value>>,
}

impl Sys {
    pub fn table(&self, entity: &str) -> Option<usize> {
        self.tables.iter().position(|t| t.name() == entity)
    }
}

struct StateInner {
    /// Writes so far, every system together: the logical clock.
    writes: u64,
    epoch: i64,
    systems: BTreeMap<System, Sys>,
}

impl StateInner {
    fn tx(&mut self, system: System, origin: Origin) -> Option<Tx<'_>> {
        let sys = self.systems.get_mut(&system)?;
        Some(Tx {
            sys,
            writes: &mut self.writes,
            epoch: self.epoch,
            origin,
        })
    }
}

/// One request's view of a system: writes go through here so each gets the
/// next tick of the logical clock and the vendor's bookkeeping.
struct Tx<'a> {
    pub sys: &'a mut Sys,
    writes: &'a mut u64,
    epoch: i64,
    pub origin: Origin,
}

impl Tx<'_> {
    /// The logical now: one second per write after the seeded records.
    pub fn now(&self) -> i64 {
        self.epoch + *self.writes as i64 * SECOND
    }

    pub fn ctx(&self) -> Arc<Ctx> {
        self.sys.ctx.clone()
    }

    pub fn table(&self, entity: &str) -> Option<usize> {
        self.sys.table(entity)
    }

    pub fn create(&mut self, t: usize, record: Value) -> Result<Value, String> {
        let now = self.now() + SECOND;
        let slot = self.sys.tables[t].next_slot();
        let times = Times {
            created: now,
            updated: now,
        };
        let vendor = self.sys.system.vendor();
        let record = vendor.prepare(self.sys, t, record, slot, times, None)?;
        *self.writes += 1;
        self.sys.tables[t].put(slot, record.clone(), times, *self.writes);
        vendor.after_write(self, t, None, Some(&record), now);
        Ok(record)
    }

    /// Replace a record with `record` (already merged by the caller); the
    /// vendor restores server-owned fields and stamps the update time.
    pub fn update(&mut self, t: usize, slot: usize, record: Value) -> Result<Value, String> {
        let now = self.now() + SECOND;
        let table = &self.sys.tables[t];
        let before = table.get(slot).ok_or("not found")?;
        let created = table.times(slot).map_or(now, |t| t.created);
        let times = Times {
            created,
            updated: now,
        };
        let vendor = self.sys.system.vendor();
        let record = vendor.prepare(self.sys, t, record, slot, times, Some(&before))?;
        *self.writes += 1;
        self.sys.tables[t].put(slot, record.clone(), times, *self.writes);
        vendor.after_write(self, t, Some(&before), Some(&record), now);
        Ok(record)
    }

    pub fn delete(&mut self, t: usize, slot: usize) -> Result<Value, String> {
        let now = self.now() + SECOND;
        let before = self.sys.tables[t].get(slot).ok_or("not found")?;
        *self.writes += 1;
        self.sys.tables[t].remove(slot, *self.writes, now);
        self.sys
            .system
            .vendor()
            .after_write(self, t, Some(&before), None, now);
        Ok(before)
    }
}

#[derive(Default)]
struct Window {
    hits: VecDeque<Instant>,
    in_flight: usize,
}

struct Shared {
    root: String,
    seed: u64,
    records: usize,
    faults: Faults,
    rate_limits: bool,
    state_file: Option<PathBuf>,
    systems: Vec<System>,
    state: Mutex<StateInner>,
    fault_rng: Mutex<Rng>,
    stats: Mutex<BTreeMap<System, SystemStats>>,
    windows: Mutex<HashMap<(System, String), Window>>,
}

/// What a request drew from the fault generator.
#[derive(Debug, Clone, Copy, Default)]
struct Draw {
    error_500: bool,
    error_429: bool,
    slow: bool,
    malformed: bool,
}

const STATE_FORMAT: &str = "recon-emulate-state";
/// Records per entity `GET _admin/state` returns without `?all=1`.
const STATE_DUMP_MAX: usize = 100_000;

fn read_state(path: &Path) -> std::io::Result<Value> {
    let text = std::fs::read_to_string(path)?;
    let v: Value = serde_json::from_str(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    if v.get("format").and_then(Value::as_str) != Some(STATE_FORMAT) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not an emulator state file", path.display()),
        ));
    }
    Ok(v)
}

/// Rewrite `old` to `new` at the start of every string: links in saved
/// records point at the emulator that saved them.
fn relink(v: Value, old: &str, new: &str) -> Value {
    if old == new || old.is_empty() {
        return v;
    }
    match v {
        Value::String(s) => match s.strip_prefix(old) {
            Some(rest) => Value::String(format!("{new}{rest}")),
            None => Value::String(s),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(|v| relink(v, old, new)).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, relink(v, old, new)))
                .collect(),
        ),
        v => v,
    }
}

impl Shared {
    fn new(config: Config, root: String, saved: Option<&Value>) -> std::io::Result<Self> {
        let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
        let (seed, records) = match saved {
            Some(s) => (
                s.get("seed").and_then(Value::as_u64).unwrap_or(config.seed),
                s.get("records")
                    .and_then(Value::as_u64)
                    .map_or(config.records, |n| n as usize),
            ),
            None => (config.seed, config.records),
        };
        let mut systems = config.systems.clone();
        systems.sort();
        systems.dedup();
        let mut state = BTreeMap::new();
        let mut epoch = 0;
        for &system in &systems {
            let vendor = system.vendor();
            let ctx = Arc::new(Ctx::new(system, seed, records, root.clone()));
            epoch = ctx.epoch();
            let tables = vendor
                .specs()
                .iter()
                .map(|spec| Table::new(spec, ctx.clone()))
                .collect();
            state.insert(
                system,
                Sys {
                    system,
                    ctx,
                    tables,
                    auth: Auth::new(vendor, seed),
                    log: BTreeMap::new(),
                },
            );
        }
        let mut writes = 0;
        if let Some(saved) = saved {
            writes = saved.get("writes").and_then(Value::as_u64).unwrap_or(0);
            let old_root = saved.get("root").and_then(Value::as_str).unwrap_or("");
            let fix = |v: Value| relink(v, old_root, &root);
            let empty = serde_json::Map::new();
            let saved_systems = saved
                .get("systems")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            for (name, s) in saved_systems {
                let Ok(system) = name.parse::<System>() else {
                    return Err(bad(format!("state file: unknown system `{name}`")));
                };
                let Some(sys) = state.get_mut(&system) else {
                    continue;
                };
                for table in &mut sys.tables {
                    if let Some(t) = s.get("tables").and_then(|t| t.get(table.name())) {
                        table.load(t, &fix).map_err(|e| {
                            bad(format!("state file, {name}/{}: {e}", table.name()))
                        })?;
                    }
                }
                if let Some(log) = s.get("log").and_then(Value::as_object) {
                    for table in &sys.tables {
                        if let Some(rows) = log.get(table.name()).and_then(Value::as_array) {
                            sys.log
                                .insert(table.name(), rows.iter().cloned().map(&fix).collect());
                        }
                    }
                }
                if let Some(r) = s.get("refresh_rotations").and_then(Value::as_u64) {
                    sys.auth.set_rotations(r);
                }
            }
        }
        Ok(Self {
            root,
            seed,
            records,
            faults: config.faults,
            rate_limits: config.rate_limits,
            state_file: config.state_file,
            systems,
            state: Mutex::new(StateInner {
                writes,
                epoch,
                systems: state,
            }),
            fault_rng: Mutex::new(Rng::new(store::mix(seed ^ store::salt("faults")))),
            stats: Mutex::new(BTreeMap::new()),
            windows: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, StateInner> {
        // A panic while holding the lock leaves state as consistent as the
        // last completed write; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count(&self, system: System, f: impl FnOnce(&mut SystemStats)) {
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        f(stats.entry(system).or_default());
    }

    fn stats(&self) -> Stats {
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        Stats {
            systems: self
                .systems
                .iter()
                .map(|s| {
                    (
                        s.name().to_string(),
                        stats.get(s).cloned().unwrap_or_default(),
                    )
                })
                .collect(),
        }
    }

    fn draw(&self) -> Draw {
        let f = &self.faults;
        if f.is_none() {
            return Draw::default();
        }
        let mut rng = self.fault_rng.lock().unwrap_or_else(|e| e.into_inner());
        // Draw all four every time so one fault's share never shifts the
        // sequence another one sees.
        let mut hit = |p: f64| {
            let drawn = rng.chance(p);
            p > 0.0 && drawn
        };
        Draw {
            error_500: hit(f.error_500),
            error_429: hit(f.error_429),
            slow: hit(f.slow),
            malformed: hit(f.malformed),
        }
    }

    fn state_json(&self) -> Value {
        let state = self.lock();
        let systems: serde_json::Map<String, Value> = state
            .systems
            .iter()
            .map(|(system, sys)| {
                let tables: serde_json::Map<String, Value> = sys
                    .tables
                    .iter()
                    .map(|t| (t.name().to_string(), t.save()))
                    .collect();
                let log: serde_json::Map<String, Value> = sys
                    .log
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::Array(v.clone())))
                    .collect();
                let rotations = sys.auth.oauth.as_ref().map(|o| o.rotations);
                (
                    system.name().to_string(),
                    json!({"tables": tables, "log": log, "refresh_rotations": rotations}),
                )
            })
            .collect();
        json!({
            "format": STATE_FORMAT,
            "version": 1,
            "root": self.root,
            "seed": self.seed,
            "records": self.records,
            "writes": state.writes,
            "systems": systems,
        })
    }

    fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(&self.state_json())?;
        // Write beside the target and rename: a crash never leaves half a file.
        let tmp = path.with_extension("tmp");
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }

    fn admin_tx<T>(
        &self,
        system: System,
        f: impl FnOnce(&mut Tx) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        let mut state = self.lock();
        let before = state.writes;
        let mut tx = state
            .tx(system, Origin::Admin)
            .ok_or_else(|| AdminError::new(404, format!("{system} is not emulated")))?;
        let out = f(&mut tx);
        let wrote = state.writes - before;
        drop(state);
        self.count(system, |s| s.admin_writes += wrote);
        out
    }

    fn admin_create(
        &self,
        system: System,
        entity: &str,
        record: Value,
    ) -> Result<Value, AdminError> {
        if !record.is_object() {
            return Err(AdminError::new(400, "the record must be a JSON object"));
        }
        self.admin_tx(system, |tx| {
            let t = table_of(tx, entity)?;
            tx.create(t, record).map_err(|e| AdminError::new(400, e))
        })
    }

    fn admin_patch(
        &self,
        system: System,
        entity: &str,
        id: &str,
        patch: Value,
    ) -> Result<Value, AdminError> {
        if !patch.is_object() {
            return Err(AdminError::new(400, "the patch must be a JSON object"));
        }
        self.admin_tx(system, |tx| {
            let t = table_of(tx, entity)?;
            let slot = slot_of(tx, t, id)?;
            let mut record = tx.sys.tables[t].get(slot).unwrap_or(Value::Null);
            merge_patch(&mut record, &patch);
            tx.update(t, slot, record)
                .map_err(|e| AdminError::new(400, e))
        })
    }

    fn admin_delete(&self, system: System, entity: &str, id: &str) -> Result<(), AdminError> {
        self.admin_tx(system, |tx| {
            let t = table_of(tx, entity)?;
            let slot = slot_of(tx, t, id)?;
            tx.delete(t, slot).map_err(|e| AdminError::new(400, e))?;
            Ok(())
        })
    }

    fn renumber_reviso(&self, old: u64, new: u64) -> Result<Value, AdminError> {
        self.admin_tx(System::Reviso, |tx| {
            reviso::renumber(tx, old, new).map_err(|(status, m)| AdminError::new(status, m))
        })
    }
}

fn table_of(tx: &Tx, entity: &str) -> Result<usize, AdminError> {
    tx.table(entity).ok_or_else(|| {
        AdminError::new(
            404,
            format!(
                "{} has no entity `{entity}` (it has {})",
                tx.sys.system,
                tx.sys.system.entities().join(", ")
            ),
        )
    })
}

fn slot_of(tx: &Tx, t: usize, id: &str) -> Result<usize, AdminError> {
    tx.sys.tables[t].find_id(id).ok_or_else(|| {
        AdminError::new(
            404,
            format!(
                "no {}/{} with id {id}",
                tx.sys.system,
                tx.sys.tables[t].name()
            ),
        )
    })
}

// ---------------------------------------------------------------------------
// Requests and responses as vendors see them

/// A vendor request, read whole.
struct Req {
    pub method: Method,
    /// Path segments after `/{system}`, percent-decoded.
    pub path: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Path and query as sent, for the links some vendors echo.
    pub target: String,
}

impl Req {
    /// The path after `prefix` (the base path's segments), if it starts so.
    pub fn route(&self, prefix: &[&str]) -> Option<Vec<&str>> {
        if self.path.len() < prefix.len() || self.path.iter().zip(prefix).any(|(a, b)| a != b) {
            return None;
        }
        Some(
            self.path[prefix.len()..]
                .iter()
                .map(String::as_str)
                .collect(),
        )
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn bearer(&self) -> Option<&str> {
        let auth = self.header("authorization")?;
        let (scheme, token) = auth.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    }

    /// `Authorization: Basic` as (user, password).
    pub fn basic(&self) -> Option<(String, String)> {
        let auth = self.header("authorization")?;
        let (scheme, encoded) = auth.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
        let (user, password) = decoded.split_once(':')?;
        Some((user.to_string(), password.to_string()))
    }

    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        std::str::from_utf8(&self.body)
            .map(parse_query)
            .unwrap_or_default()
    }

    /// A form field, else a query parameter of the same name.
    pub fn param(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .or_else(|| self.query(name).map(str::to_string))
    }

    pub fn accepts_gzip(&self) -> bool {
        self.header("accept-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("gzip"))
    }
}

/// A vendor response before encoding.
struct Resp {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
    /// A successful list page: the one kind of body `malformed` cuts.
    pub list: bool,
}

enum Body {
    Empty,
    Json(Value),
    /// Built after the state lock is released: big pages are mostly the
    /// generation of seeded records.
    Lazy(Box<dyn FnOnce() -> Value + Send>),
    /// Like `Lazy`, already JSON text.
    LazyText(Box<dyn FnOnce() -> Vec<u8> + Send>),
}

impl Resp {
    pub fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Json(body),
            list: false,
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Empty,
            list: false,
        }
    }

    /// A list page built later, from records generated outside the lock.
    pub fn page(build: impl FnOnce() -> Value + Send + 'static) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: Body::Lazy(Box::new(build)),
            list: true,
        }
    }

    /// A list page written as JSON text by `build`.
    pub fn page_text(build: impl FnOnce() -> Vec<u8> + Send + 'static) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: Body::LazyText(Box::new(build)),
            list: true,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// The outcome of checking a request's credentials.
enum Access {
    /// No credentials needed (token endpoints).
    Public,
    /// Authenticated; the key rate limits are counted under.
    Key(String),
    Denied(Resp),
}

/// A vendor's request limit: `count` per `window`, and at most `parallel`
/// requests in flight per key.
#[derive(Debug, Clone, Copy)]
struct Limit {
    pub count: usize,
    pub window: Duration,
    pub parallel: Option<usize>,
}

/// What differs between the emulated systems.
trait Vendor: Sync {
    fn system(&self) -> System;
    fn specs(&self) -> &'static [Spec];
    /// Static credentials, derived from the seed.
    fn secrets(&self, seed: u64) -> Vec<(&'static str, String)>;
    /// Whether the system uses OAuth2 refresh tokens.
    fn oauth(&self) -> bool {
        false
    }
    /// Refusals before authentication (MoySklad's gzip requirement).
    fn precheck(&self, _req: &Req) -> Option<Resp> {
        None
    }
    fn authenticate(&self, auth: &Auth, req: &Req) -> Access;
    fn handle(&self, tx: &mut Tx, req: &Req) -> Resp;
    fn server_error(&self) -> Resp;
    /// The vendor's 429 asking to wait `wait`; `parallel` when too many
    /// requests are in flight rather than too many per window.
    fn too_many(&self, wait: Duration, parallel: bool) -> Resp;
    fn limit(&self) -> Limit;
    /// Appended to the rate limit key: eAccounting counts per endpoint.
    fn limit_scope(&self, _req: &Req) -> String {
        String::new()
    }
    /// Headers every rate-limited response carries (MoySklad's remaining count).
    fn limit_headers(&self, _remaining: usize) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Whether responses are gzip-compressed for clients that accept it.
    fn gzip(&self) -> bool {
        false
    }
    /// Complete a record about to be stored: on create (`before` is None)
    /// assign ids and links; on update restore server-owned fields from
    /// `before`. Both stamp `times` in the vendor's format.
    fn prepare(
        &self,
        sys: &Sys,
        t: usize,
        record: Value,
        slot: usize,
        times: Times,
        before: Option<&Value>,
    ) -> Result<Value, String>;
    /// Bookkeeping after a write (retailCRM's history).
    fn after_write(
        &self,
        _tx: &mut Tx,
        _t: usize,
        _before: Option<&Value>,
        _after: Option<&Value>,
        _now: i64,
    ) {
    }
}

// ---------------------------------------------------------------------------
// The server

async fn serve(AxumState(shared): AxumState<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let segments: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode(&s.replace('+', "%2B")))
        .collect();
    let query = parts.uri.query().map(parse_query).unwrap_or_default();
    let body = match axum::body::to_bytes(body, 512 << 20).await {
        Ok(b) => b,
        Err(e) => return plain(400, &format!("unreadable body: {e}")),
    };
    let Some(first) = segments.first() else {
        return index(&shared);
    };
    if first == "_admin" {
        return admin(&shared, &parts.method, &segments[1..], &query, &body);
    }
    let system = match first.parse::<System>() {
        Ok(s) if shared.systems.contains(&s) => s,
        _ => return plain(404, &format!("no emulated system at /{first}")),
    };
    let req = Req {
        method: parts.method.clone(),
        path: segments[1..].to_vec(),
        query,
        headers: parts.headers.clone(),
        body,
        target: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
    };
    vendor_request(&shared, system, req).await
}

/// Decrements the in-flight count of a rate-limit key when a request ends.
struct InFlight {
    shared: Arc<Shared>,
    key: (System, String),
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut windows = self
            .shared
            .windows
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(w) = windows.get_mut(&self.key) {
            w.in_flight = w.in_flight.saturating_sub(1);
        }
    }
}

/// Admit a request under its key's limit, or say how long to wait.
fn admit(
    shared: &Arc<Shared>,
    system: System,
    limit: Limit,
    key: String,
) -> Result<(InFlight, usize), (Duration, bool)> {
    let mut windows = shared.windows.lock().unwrap_or_else(|e| e.into_inner());
    let w = windows.entry((system, key.clone())).or_default();
    let now = Instant::now();
    while w
        .hits
        .front()
        .is_some_and(|t| now.duration_since(*t) >= limit.window)
    {
        w.hits.pop_front();
    }
    if let Some(parallel) = limit.parallel
        && w.in_flight >= parallel
    {
        return Err((Duration::from_millis(100), true));
    }
    if w.hits.len() >= limit.count {
        let oldest = *w.hits.front().expect("non-empty at the limit");
        let wait = limit.window.saturating_sub(now.duration_since(oldest));
        return Err((wait.max(Duration::from_millis(1)), false));
    }
    w.hits.push_back(now);
    w.in_flight += 1;
    let remaining = limit.count - w.hits.len();
    Ok((
        InFlight {
            shared: shared.clone(),
            key: (system, key),
        },
        remaining,
    ))
}

async fn vendor_request(shared: &Arc<Shared>, system: System, req: Req) -> Response {
    let vendor = system.vendor();
    let gzip = vendor.gzip() && req.accepts_gzip();
    shared.count(system, |s| s.requests += 1);
    if let Some(resp) = vendor.precheck(&req) {
        return encode(resp, false);
    }
    let draw = shared.draw();
    let access = {
        let state = shared.lock();
        vendor.authenticate(&state.systems[&system].auth, &req)
    };
    let key = match access {
        Access::Denied(resp) => {
            shared.count(system, |s| s.unauthorized += 1);
            return encode(resp, gzip);
        }
        Access::Public => None,
        Access::Key(k) => Some(k),
    };
    let mut limit_headers = Vec::new();
    let _in_flight = match key {
        Some(key) if shared.rate_limits => {
            let key = format!("{key}{}", vendor.limit_scope(&req));
            match admit(shared, system, vendor.limit(), key) {
                Ok((guard, remaining)) => {
                    limit_headers = vendor.limit_headers(remaining);
                    Some(guard)
                }
                Err((wait, parallel)) => {
                    shared.count(system, |s| s.rate_limited += 1);
                    return encode(vendor.too_many(wait, parallel), gzip);
                }
            }
        }
        _ => None,
    };
    if draw.slow {
        shared.count(system, |s| {
            s.faults += 1;
            s.faults_slow += 1;
        });
        tokio::time::sleep(Duration::from_millis(shared.faults.slow_ms)).await;
    }
    // Faults are decided before anything runs: a faulted write never lands.
    if draw.error_500 {
        shared.count(system, |s| {
            s.faults += 1;
            s.faults_500 += 1;
        });
        return encode(vendor.server_error(), gzip);
    }
    if draw.error_429 {
        shared.count(system, |s| {
            s.faults += 1;
            s.faults_429 += 1;
        });
        return encode(vendor.too_many(Duration::from_millis(200), false), gzip);
    }
    let (mut resp, wrote) = {
        let mut state = shared.lock();
        let before = state.writes;
        let Some(mut tx) = state.tx(system, Origin::Api) else {
            return plain(404, "not emulated");
        };
        let resp = vendor.handle(&mut tx, &req);
        (resp, state.writes - before)
    };
    if wrote > 0 {
        shared.count(system, |s| s.writes += wrote);
    }
    resp.headers.extend(limit_headers);
    if draw.malformed && resp.list && resp.status == 200 {
        shared.count(system, |s| {
            s.faults += 1;
            s.faults_malformed += 1;
        });
        let mut bytes = render(resp.body);
        bytes.truncate(bytes.len() / 2);
        resp.body = Body::Json(Value::Null);
        return finish(resp.status, resp.headers, bytes, gzip);
    }
    encode(resp, gzip)
}

fn render(body: Body) -> Vec<u8> {
    match body {
        Body::Empty => Vec::new(),
        Body::Json(v) => serde_json::to_vec(&v).unwrap_or_default(),
        Body::Lazy(build) => serde_json::to_vec(&build()).unwrap_or_default(),
        Body::LazyText(build) => build(),
    }
}

fn encode(resp: Resp, gzip: bool) -> Response {
    let Resp {
        status,
        headers,
        body,
        ..
    } = resp;
    finish(status, headers, render(body), gzip)
}

fn finish(
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    gzip: bool,
) -> Response {
    let mut builder = Response::builder().status(status);
    if !body.is_empty() {
        builder = builder.header("content-type", "application/json;charset=utf-8");
    }
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    let body = if gzip && !body.is_empty() {
        builder = builder.header("content-encoding", "gzip");
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        // Writing to a Vec cannot fail.
        let _ = enc.write_all(&body);
        enc.finish().unwrap_or_default()
    } else {
        body
    };
    builder
        .body(AxumBody::from(body))
        .unwrap_or_else(|_| plain(500, "bad response"))
}

fn plain(status: u16, text: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain;charset=utf-8")
        .body(AxumBody::from(format!("{text}\n")))
        .expect("static response parts are valid")
}

fn admin_json(status: u16, body: &Value) -> Response {
    finish(
        status,
        Vec::new(),
        serde_json::to_vec_pretty(body).unwrap_or_default(),
        false,
    )
}

fn index(shared: &Shared) -> Response {
    let systems: Vec<Value> = shared
        .systems
        .iter()
        .map(|s| {
            json!({
                "system": s.name(),
                "base_url": format!("{}{}", shared.root, s.base_path()),
                "entities": s.entities(),
            })
        })
        .collect();
    admin_json(
        200,
        &json!({"emulator": "recon emulate", "systems": systems, "admin": format!("{}/_admin/", shared.root)}),
    )
}

fn admin(
    shared: &Shared,
    method: &Method,
    path: &[String],
    query: &[(String, String)],
    body: &[u8],
) -> Response {
    let err = |e: AdminError| admin_json(e.status, &json!({"error": e.message}));
    let parse_body = || -> Result<Value, AdminError> {
        serde_json::from_slice(body).map_err(|e| AdminError::new(400, format!("body: {e}")))
    };
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    let system = |name: &str| name.parse::<System>().map_err(|e| AdminError::new(404, e));
    let result: Result<(u16, Value), AdminError> = match (method.as_str(), path.as_slice()) {
        ("GET", ["state"]) => dump_state(shared, q("system"), q("entity"), q("all") == Some("1")),
        ("GET", ["stats"]) => Ok((
            200,
            serde_json::to_value(shared.stats()).unwrap_or_default(),
        )),
        ("POST", ["save"]) => {
            let body: Value = if body.is_empty() {
                json!({})
            } else {
                match parse_body() {
                    Ok(b) => b,
                    Err(e) => return err(e),
                }
            };
            let path = body
                .get("path")
                .and_then(Value::as_str)
                .map(PathBuf::from)
                .or_else(|| shared.state_file.clone());
            match path {
                None => Err(AdminError::new(400, "no `path` given and no --state file")),
                Some(p) => shared
                    .save(&p)
                    .map(|()| (200, json!({"saved": p.display().to_string()})))
                    .map_err(|e| AdminError::new(500, format!("{}: {e}", p.display()))),
            }
        }
        ("POST", ["reviso", "renumber"]) => parse_body().and_then(|b| {
            let num = |k: &str| {
                b.get(k).and_then(Value::as_u64).ok_or_else(|| {
                    AdminError::new(400, format!("`{k}` must be a positive integer"))
                })
            };
            let record = shared.renumber_reviso(num("oldNumber")?, num("newNumber")?)?;
            Ok((200, record))
        }),
        ("POST", [sys, entity]) => system(sys).and_then(|s| {
            let record = shared.admin_create(s, entity, parse_body()?)?;
            Ok((201, record))
        }),
        ("PATCH", [sys, entity, id]) => system(sys).and_then(|s| {
            let record = shared.admin_patch(s, entity, id, parse_body()?)?;
            Ok((200, record))
        }),
        ("DELETE", [sys, entity, id]) => system(sys).and_then(|s| {
            shared.admin_delete(s, entity, id)?;
            Ok((204, Value::Null))
        }),
        _ => Err(AdminError::new(
            404,
            format!("no admin endpoint {method} /_admin/{}", path.join("/")),
        )),
    };
    match result {
        Ok((204, _)) => finish(204, Vec::new(), Vec::new(), false),
        Ok((status, body)) => admin_json(status, &body),
        Err(e) => err(e),
    }
}

/// Every record, by system and entity, sorted by id.
fn dump_state(
    shared: &Shared,
    system: Option<&str>,
    entity: Option<&str>,
    all: bool,
) -> Result<(u16, Value), AdminError> {
    let state = shared.lock();
    let mut out = serde_json::Map::new();
    for (s, sys) in &state.systems {
        if system.is_some_and(|n| n != s.name()) {
            continue;
        }
        let mut tables = serde_json::Map::new();
        for t in &sys.tables {
            if entity.is_some_and(|n| n != t.name()) {
                continue;
            }
            // Seeded records cost nothing until listed: a million of
            // them would be a response of gigabytes.
            if t.len() > STATE_DUMP_MAX && !all {
                return Err(AdminError::new(
                    413,
                    format!(
                        "{s}/{} has {} records; ask for fewer with ?system=&entity= or add ?all=1",
                        t.name(),
                        t.len()
                    ),
                ));
            }
            tables.insert(
                t.name().into(),
                Value::Array(sorted_by_id(t.all(), t.spec.pk)),
            );
        }
        out.insert(s.name().into(), Value::Object(tables));
    }
    Ok((200, Value::Object(out)))
}

// ---------------------------------------------------------------------------
// Helpers the vendors share

/// RFC 7386 JSON merge patch: objects merge recursively, null removes.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let target = target.as_object_mut().expect("made an object above");
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            merge_patch(target.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// A partial update as most vendors do it: the fields sent replace the
/// stored ones whole; everything else stays.
fn merge_top(target: &mut Value, patch: &Value) {
    if let (Some(t), Some(p)) = (target.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            t.insert(k.clone(), v.clone());
        }
    }
}

/// Copy fields the server owns from `from` into `to`.
fn keep_fields(to: &mut Value, from: &Value, fields: &[&str]) {
    for f in fields {
        match from.get(*f) {
            Some(v) => {
                to[*f] = v.clone();
            }
            None => {
                if let Some(o) = to.as_object_mut() {
                    o.remove(*f);
                }
            }
        }
    }
}

fn moscow() -> FixedOffset {
    FixedOffset::east_opt(3 * 3600).expect("valid offset")
}

fn utc_zone() -> FixedOffset {
    FixedOffset::east_opt(0).expect("valid offset")
}

fn utc(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// `2024-01-01 10:00:00.000` in Moscow time (MoySklad).
fn msk_millis(ms: i64) -> String {
    utc(ms)
        .with_timezone(&moscow())
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
}

/// `2024-01-01 10:00:00` in Moscow time (retailCRM).
fn msk_seconds(ms: i64) -> String {
    utc(ms)
        .with_timezone(&moscow())
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// `2024-01-01T10:00:00Z`.
fn utc_seconds(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// `2024-01-01T10:00:00.123Z`.
fn utc_millis(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// `2024-01-01T10:00:00+00:00` (Teamleader).
fn utc_offset(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

/// Milliseconds since the epoch of a timestamp as vendors write them:
/// RFC 3339, or a date and time without a zone (read in `zone`), or a date.
fn parse_time(text: &str, zone: FixedOffset) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let naive = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    .or_else(|| {
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })?;
    zone.from_local_datetime(&naive)
        .single()
        .map(|t| t.timestamp_millis())
}

/// `%XX` and `+` decoded, invalid UTF-8 replaced.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Encode a query value: everything but unreserved characters as `%XX`.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b))
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn parse_query(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// A URL with the query rebuilt from `params`.
fn with_query(url: &str, params: &[(String, String)]) -> String {
    if params.is_empty() {
        return url.to_string();
    }
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect();
    format!("{url}?{}", q.join("&"))
}

/// `params` with `name` set to `value` (added when missing).
fn set_param(params: &[(String, String)], name: &str, value: String) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        params.iter().filter(|(k, _)| k != name).cloned().collect();
    out.push((name.to_string(), value));
    out
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#[cfg(test)]
fn base64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_and_print() {
        let f: Faults = "500=0.05,429=0.05,slow=0.02:1500,malformed=0.02"
            .parse()
            .unwrap();
        assert_eq!(f.error_500, 0.05);
        assert_eq!(f.slow_ms, 1500);
        assert_eq!(
            f.to_string(),
            "500=0.05,429=0.05,slow=0.02:1500,malformed=0.02"
        );
        assert!("".parse::<Faults>().unwrap().is_none());
        assert!("teapot=0.1".parse::<Faults>().is_err());
        assert!("500=2".parse::<Faults>().is_err());
    }

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "admin@recon:secret"] {
            assert_eq!(
                base64_decode(&base64_encode(s.as_bytes())).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(base64_encode(b"ab"), "YWI=");
    }

    #[test]
    fn percent_coding_round_trips() {
        let s = "updated>=2024-01-01 10:00:00;name=Ромашка";
        assert_eq!(percent_decode(&percent_encode(s)), s);
        assert_eq!(percent_decode("a+b%2Fc%"), "a b/c%");
    }

    #[test]
    fn merge_patch_merges_objects_and_removes_nulls() {
        let mut v = json!({"a": {"b": 1, "c": 2}, "d": 3});
        merge_patch(
            &mut v,
            &json!({"a": {"b": 5, "c": null}, "d": null, "e": [1]}),
        );
        assert_eq!(v, json!({"a": {"b": 5}, "e": [1]}));
    }
}
