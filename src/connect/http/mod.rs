//! The generic REST connector: one client driven by a [`profile::Profile`].
//!
//! Every request goes through the same path: wait for the rate limiter, add
//! credentials, send, and on failure ask [`retry::decide`] whether and how
//! long to wait. Lists are walked page by page (offset, page number, next
//! link, or a change log) and each record is handed on as soon as its page
//! arrives, so memory stays flat whatever the record count.

pub mod auth;
pub mod keep;
pub mod limit;
pub mod profile;
pub mod retry;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde_json::Value;

use self::auth::{Authenticator, Secrets};
use self::limit::Limiter;
use self::profile::{Changelog, Entity, Method, Pagination, Profile};
use self::retry::{Failure, Verdict, decide, jitter};
use crate::spec::FieldPath;

/// An HTTP side as a spec declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpSource {
    /// The profile's name or file, as written.
    pub profile_name: String,
    pub profile: Profile,
    pub entity: String,
    pub base_url: String,
    /// Overrides the profile's OAuth2 token endpoint.
    pub token_url: Option<String>,
    /// Secret name -> environment variable.
    pub auth: BTreeMap<String, String>,
    /// Pull only what changed since the last pull, when the entity allows it.
    pub incremental: bool,
    /// Write through the profile's batch endpoints.
    pub batch: bool,
    /// How far back each incremental window reaches before the cursor.
    pub overlap: Duration,
}

impl HttpSource {
    pub fn entity(&self) -> &Entity {
        self.profile
            .entity
            .get(&self.entity)
            .expect("validated: the profile has the entity")
    }

    /// The list URL, safe to print and store (no query, no secret).
    pub fn describe(&self) -> String {
        format!(
            "{}{}",
            self.base_url.trim_end_matches('/'),
            self.entity().list.path
        )
    }
}

/// A failed request, with the vendor's own message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{system} answered {}: {message}{hint}", status.map(|s| s.to_string()).unwrap_or_else(|| "nothing".into()))]
pub struct HttpError {
    pub system: String,
    pub status: Option<u16>,
    pub message: String,
    pub hint: String,
}

/// A client for one side.
pub struct Client {
    http: reqwest::Client,
    base: String,
    profile: Profile,
    auth: Authenticator,
    limiter: Limiter,
    /// How list pages are parsed: see [`Client::read_only`].
    pages: Option<Arc<keep::Keep>>,
}

/// What a list walk found besides records.
#[derive(Debug, Default)]
pub struct Walk {
    /// The newest change time seen (field cursor) or the server's time.
    pub newest: Option<DateTime<Utc>>,
    pub records: u64,
}

fn install_crypto() {
    // reqwest is built without a default TLS provider; ring is the one we ship.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Client {
    /// Build a client; fails when a credential's environment variable is missing.
    pub fn new(src: &HttpSource, token_store: Option<PathBuf>) -> Result<Client, String> {
        install_crypto();
        let secrets = Secrets::from_env(&src.profile.auth, &src.auth)?;
        let http = reqwest::Client::builder()
            .gzip(true)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("recon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let base = src.base_url.trim_end_matches('/').to_string();
        let origin = origin(&base);
        Ok(Client {
            http,
            auth: Authenticator::new(
                match (&src.profile.auth, &src.token_url) {
                    (profile::AuthSpec::Oauth2Refresh { .. }, Some(url)) => {
                        profile::AuthSpec::Oauth2Refresh {
                            token_url: url.clone(),
                        }
                    }
                    (a, _) => a.clone(),
                },
                secrets,
                token_store,
                &origin,
                src.profile.retry.clone(),
            ),
            limiter: Limiter::new(src.profile.rate_limit),
            profile: src.profile.clone(),
            base,
            pages: None,
        })
    }

    /// Parse the records of `entity`'s list pages only as far as `paths`
    /// (and the entity's own cursor field) reach into them.
    pub fn read_only(&mut self, entity: &Entity, paths: &[FieldPath]) {
        let cursor = entity
            .incremental
            .as_ref()
            .and_then(|i| i.cursor_field.as_ref())
            .and_then(|p| FieldPath::parse(p).ok());
        let record = keep::Keep::record(paths.iter().chain(cursor.as_ref()));
        self.pages = FieldPath::parse(&entity.records)
            .ok()
            .and_then(|p| keep::Keep::document(&p, record))
            .map(Arc::new);
    }

    pub fn secrets(&self) -> &Secrets {
        self.auth.secrets()
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        }
    }

    fn error(&self, status: Option<u16>, body: &str, fallback: &str) -> HttpError {
        let message = vendor_message(&self.profile, body).unwrap_or_else(|| fallback.to_string());
        let hint = match status {
            Some(401 | 403) => format!(
                " (check the credentials in environment variable(s) {})",
                self.secrets().env_names()
            ),
            _ => String::new(),
        };
        HttpError {
            system: self.profile.name.clone(),
            status,
            message: self.secrets().redact(&message),
            hint,
        }
    }

    /// Send a request with limits, credentials and retries; return the body
    /// of a 2xx, parsed as JSON when `json` (a malformed body is retried).
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        query: &[(String, String)],
        body: Option<&Body>,
    ) -> Result<(u16, HeaderMap, Value), HttpError> {
        self.send_keeping(method, url, query, body, None).await
    }

    /// [`Client::send`], parsing a good answer under `keep`.
    async fn send_keeping(
        &self,
        method: Method,
        url: &str,
        query: &[(String, String)],
        body: Option<&Body>,
        keep: Option<Arc<keep::Keep>>,
    ) -> Result<(u16, HeaderMap, Value), HttpError> {
        let mut refreshed = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let permit = self.limiter.acquire().await;
            let mut req = match method {
                Method::Get => self.http.get(url),
                Method::Post => self.http.post(url),
                Method::Put => self.http.put(url),
                Method::Patch => self.http.patch(url),
                Method::Delete => self.http.delete(url),
            };
            if !query.is_empty() {
                req = req.query(query);
            }
            if self.profile.gzip {
                req = req.header("Accept-Encoding", "gzip");
            }
            req = match body {
                Some(Body::Json(v)) => req.json(v),
                Some(Body::Form(f)) => req.form(f),
                None => req,
            };
            let req = self
                .auth
                .apply(&self.http, req)
                .await
                .map_err(|m| HttpError {
                    system: self.profile.name.clone(),
                    status: None,
                    message: m,
                    hint: String::new(),
                })?;
            let sent = req.send().await;
            let (status, headers, bytes) = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Ok(b) => (Some(status), headers, b),
                        Err(_) => (None, headers, Default::default()),
                    }
                }
                Err(_) => (None, HeaderMap::new(), Default::default()),
            };
            drop(permit);
            // Read as text only when it fails: a good page goes straight to JSON.
            let text_cell = std::cell::OnceCell::new();
            let text = || {
                text_cell
                    .get_or_init(|| String::from_utf8_lossy(&bytes).into_owned())
                    .as_str()
            };
            let failure = match status {
                Some(s) if (200..300).contains(&s) => {
                    if bytes.iter().all(u8::is_ascii_whitespace) {
                        return Ok((s, headers, Value::Null));
                    }
                    // Big pages parse on a blocking thread, beside the
                    // mapping of the page before.
                    let body = bytes.clone();
                    let keep = keep.clone();
                    let parse = move || match keep {
                        Some(k) => k.parse(&body),
                        None => serde_json::from_slice::<Value>(&body),
                    };
                    let parsed = if bytes.len() > 1 << 16 {
                        tokio::task::spawn_blocking(parse)
                            .await
                            .map_err(|_| ())
                            .and_then(|r| r.map_err(|_| ()))
                    } else {
                        parse().map_err(|_| ())
                    };
                    match parsed {
                        Ok(v) => return Ok((s, headers, v)),
                        Err(()) => Failure::Malformed,
                    }
                }
                Some(401) if self.auth.refreshes() && !refreshed => {
                    refreshed = true;
                    attempt -= 1;
                    self.auth
                        .refresh(&self.http, None)
                        .await
                        .map_err(|m| HttpError {
                            system: self.profile.name.clone(),
                            status: Some(401),
                            message: m,
                            hint: String::new(),
                        })?;
                    continue;
                }
                Some(s) => Failure::Status {
                    status: s,
                    headers: &headers,
                    body: text(),
                },
                None => Failure::Transport,
            };
            match decide(&self.profile.retry, failure, attempt, jitter(attempt)) {
                Verdict::Retry { wait, reason } => {
                    tracing::warn!(system = %self.profile.name, attempt, "{reason}; retrying {}", self.secrets().redact(url));
                    tokio::time::sleep(wait).await;
                }
                Verdict::Fail => {
                    let fallback = match failure {
                        Failure::Malformed => format!("malformed JSON after {attempt} tries"),
                        Failure::Transport => format!(
                            "no response from {} after {attempt} tries",
                            self.secrets().redact(url)
                        ),
                        Failure::Status { status, .. } => format!("HTTP {status}"),
                    };
                    return Err(self.error(status, text(), &fallback));
                }
            }
        }
    }

    /// The request for one page: query parameters for GET, body paths for POST.
    fn page_request(
        &self,
        entity: &Entity,
        params: &[(String, Value)],
        filter: Option<&(String, String)>,
    ) -> (Vec<(String, String)>, Option<Body>) {
        let list = &entity.list;
        if list.method == Method::Get {
            let mut q: Vec<(String, String)> = list
                .query
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (k, v) in params {
                q.push((k.clone(), value_text(v)));
            }
            if let Some((k, v)) = filter {
                q.push((k.clone(), v.clone()));
            }
            (q, None)
        } else {
            let mut body = list
                .body
                .clone()
                .unwrap_or_else(|| Value::Object(Default::default()));
            for (k, v) in params {
                set_path(&mut body, k, v.clone());
            }
            if let Some((k, v)) = filter {
                set_path(&mut body, k, Value::String(v.clone()));
            }
            let q = list
                .query
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            (q, Some(Body::Json(body)))
        }
    }

    /// Fetch one page and pull out its records.
    async fn page(
        &self,
        entity: &Entity,
        url: &str,
        params: Vec<(String, Value)>,
        filter: Option<&(String, String)>,
    ) -> Result<(Value, Vec<Value>), HttpError> {
        let (q, body) = self.page_request(entity, &params, filter);
        let (_, _, mut doc) = self
            .send_keeping(
                entity.list.method,
                url,
                &q,
                body.as_ref(),
                self.pages.clone(),
            )
            .await?;
        // Moved out of the document, not copied: a page is a thousand records.
        let records = match FieldPath::parse(&entity.records)
            .ok()
            .and_then(|p| p.get_mut(&mut doc))
            .map(Value::take)
        {
            Some(Value::Array(rows)) => rows,
            _ => {
                return Err(self.error(
                    None,
                    "",
                    &format!("the response has no `{}` array of records", entity.records),
                ));
            }
        };
        Ok((doc, records))
    }

    /// Ask for one record: proves the URL answers and the credentials work.
    pub async fn probe(&self, entity: &Entity) -> Result<usize, HttpError> {
        let params = match &entity.pagination {
            Pagination::Offset { limit, offset, .. } => vec![
                (limit.clone(), Value::from(1)),
                (offset.clone(), Value::from(0)),
            ],
            Pagination::Page {
                page,
                size_param,
                first,
                ..
            } => vec![
                (page.clone(), Value::from(*first)),
                (size_param.clone(), Value::from(1)),
            ],
            Pagination::NextLink { size_param, .. } => size_param
                .iter()
                .map(|p| (p.clone(), Value::from(1)))
                .collect(),
        };
        let (_, rows) = self
            .page(entity, &self.url(&entity.list.path), params, None)
            .await?;
        Ok(rows.len())
    }

    /// Walk an entity's list, handing each record to `each`. With `since`,
    /// only records changed since then are asked for.
    pub async fn walk(
        &self,
        entity: &Entity,
        since: Option<DateTime<Utc>>,
        each: &mut dyn FnMut(Value) -> Result<(), String>,
    ) -> Result<Walk, PullError> {
        let url = self.url(&entity.list.path);
        let filter = match (since, &entity.incremental) {
            (Some(t), Some(inc)) => {
                let tz: chrono_tz::Tz = inc
                    .timezone
                    .as_deref()
                    .unwrap_or("UTC")
                    .parse()
                    .unwrap_or(chrono_tz::UTC);
                let text = t.with_timezone(&tz).format(&inc.format).to_string();
                Some((inc.param.clone(), inc.template.replace("{since}", &text)))
            }
            _ => None,
        };
        let mut walk = Walk::default();
        let cursor_field = entity
            .incremental
            .as_ref()
            .and_then(|i| i.cursor_field.as_ref())
            .and_then(|p| FieldPath::parse(p).ok());
        let tz: chrono_tz::Tz = entity
            .incremental
            .as_ref()
            .and_then(|i| i.timezone.as_deref())
            .unwrap_or("UTC")
            .parse()
            .unwrap_or(chrono_tz::UTC);
        let mut take = |records: Vec<Value>, walk: &mut Walk| -> Result<(), PullError> {
            for r in records {
                if let Some(t) = cursor_field
                    .as_ref()
                    .and_then(|p| p.get(&r))
                    .and_then(|v| parse_time(v, tz))
                {
                    walk.newest = walk.newest.max(Some(t));
                }
                walk.records += 1;
                each(r).map_err(PullError::Stopped)?;
            }
            Ok(())
        };
        let response_cursor = entity
            .incremental
            .as_ref()
            .and_then(|i| i.cursor_response.as_ref())
            .and_then(|p| FieldPath::parse(p).ok());
        let parallel = self.limiter.parallel().clamp(1, 4);
        match &entity.pagination {
            Pagination::Offset {
                limit,
                offset,
                size,
                total,
            } => {
                let params = |off: usize| {
                    vec![
                        (limit.clone(), Value::from(*size)),
                        (offset.clone(), Value::from(off)),
                    ]
                };
                let (doc, first) = self.page(entity, &url, params(0), filter.as_ref()).await?;
                if let Some(p) = &response_cursor {
                    walk.newest = p.get(&doc).and_then(|v| parse_time(v, chrono_tz::UTC));
                }
                let n = first.len();
                take(first, &mut walk)?;
                let total = total
                    .as_ref()
                    .and_then(|t| FieldPath::parse(t).ok())
                    .and_then(|p| p.get(&doc).and_then(Value::as_u64));
                match total {
                    Some(total) => {
                        let offsets: Vec<usize> = (1..)
                            .map(|i| i * size)
                            .take_while(|o| (*o as u64) < total)
                            .collect();
                        let mut pages = futures::stream::iter(
                            offsets
                                .into_iter()
                                .map(|o| self.page(entity, &url, params(o), filter.as_ref())),
                        )
                        .buffered(parallel);
                        while let Some(page) = pages.next().await {
                            take(page?.1, &mut walk)?;
                        }
                    }
                    None => {
                        let (mut off, mut last) = (*size, n);
                        while last >= *size && last > 0 {
                            let (_, rows) = self
                                .page(entity, &url, params(off), filter.as_ref())
                                .await?;
                            last = rows.len();
                            off += size;
                            take(rows, &mut walk)?;
                        }
                    }
                }
            }
            Pagination::Page {
                page,
                size_param,
                size,
                first,
                total_pages,
            } => {
                let params = |p: u32| {
                    vec![
                        (page.clone(), Value::from(p)),
                        (size_param.clone(), Value::from(*size)),
                    ]
                };
                let (doc, rows) = self
                    .page(entity, &url, params(*first), filter.as_ref())
                    .await?;
                if let Some(p) = &response_cursor {
                    walk.newest = p.get(&doc).and_then(|v| parse_time(v, chrono_tz::UTC));
                }
                let n = rows.len();
                take(rows, &mut walk)?;
                let pages = total_pages
                    .as_ref()
                    .and_then(|t| FieldPath::parse(t).ok())
                    .and_then(|p| p.get(&doc).and_then(Value::as_u64));
                match pages {
                    Some(pages) => {
                        let rest: Vec<u32> = (*first + 1..*first + pages as u32).collect();
                        let mut stream = futures::stream::iter(
                            rest.into_iter()
                                .map(|p| self.page(entity, &url, params(p), filter.as_ref())),
                        )
                        .buffered(parallel);
                        while let Some(page) = stream.next().await {
                            take(page?.1, &mut walk)?;
                        }
                    }
                    None => {
                        let (mut p, mut last) = (*first + 1, n);
                        while last >= *size && last > 0 {
                            let (_, rows) =
                                self.page(entity, &url, params(p), filter.as_ref()).await?;
                            last = rows.len();
                            p += 1;
                            take(rows, &mut walk)?;
                        }
                    }
                }
            }
            Pagination::NextLink {
                size_param,
                size,
                next,
            } => {
                let next_path = FieldPath::parse(next)
                    .map_err(|e| PullError::Http(self.error(None, "", &e)))?;
                let mut params = Vec::new();
                if let Some(sp) = size_param {
                    params.push((sp.clone(), Value::from(*size)));
                }
                let (mut doc, rows) = self.page(entity, &url, params, filter.as_ref()).await?;
                take(rows, &mut walk)?;
                // Bounded: a server that links pages in a circle cannot keep us forever.
                for _ in 0..1_000_000 {
                    let Some(link) = next_path
                        .get(&doc)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                    else {
                        break;
                    };
                    let (d, rows) = self.page(entity, &link, vec![], None).await?;
                    doc = d;
                    take(rows, &mut walk)?;
                }
            }
        }
        Ok(walk)
    }

    /// Read a change log from `since_id`; returns the changed records (the
    /// last state of each), the ids deleted, and the newest change id.
    pub async fn changelog(
        &self,
        cl: &Changelog,
        since_id: u64,
        id_path: &FieldPath,
    ) -> Result<(Vec<Value>, Vec<String>, u64), PullError> {
        let url = self.url(&cl.path);
        let (rows_p, id_p, rec_p) = (
            FieldPath::parse(&cl.rows).map_err(|e| PullError::Http(self.error(None, "", &e)))?,
            FieldPath::parse(&cl.id).map_err(|e| PullError::Http(self.error(None, "", &e)))?,
            FieldPath::parse(&cl.record).map_err(|e| PullError::Http(self.error(None, "", &e)))?,
        );
        let deleted_p = cl.deleted.as_ref().and_then(|d| FieldPath::parse(d).ok());
        let mut latest: indexmap_lite::Ordered = Default::default();
        let mut cursor = since_id;
        for _ in 0..1_000_000 {
            let q = vec![
                (cl.since_param.clone(), cursor.to_string()),
                (cl.size_param.clone(), cl.size.to_string()),
            ];
            let (_, _, doc) = self.send(Method::Get, &url, &q, None).await?;
            let rows = match rows_p.get(&doc) {
                Some(Value::Array(r)) => r.clone(),
                _ => {
                    return Err(PullError::Http(self.error(
                        None,
                        "",
                        &format!("the change log has no `{}` array", cl.rows),
                    )));
                }
            };
            for row in &rows {
                let Some(id) = id_p.get(row).and_then(Value::as_u64) else {
                    continue;
                };
                cursor = cursor.max(id);
                let Some(rec) = rec_p.get(row) else { continue };
                let Some(native) = id_path.get(rec).and_then(crate::spec::path::scalar_text) else {
                    continue;
                };
                let deleted = deleted_p
                    .as_ref()
                    .and_then(|p| p.get(row))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                latest.put(native, if deleted { None } else { Some(rec.clone()) });
            }
            if rows.len() < cl.size {
                break;
            }
        }
        let (mut records, mut deleted) = (Vec::new(), Vec::new());
        for (id, rec) in latest.into_iter() {
            match rec {
                Some(r) => records.push(r),
                None => deleted.push(id),
            }
        }
        Ok((records, deleted, cursor))
    }
}

/// The last value per key, in first-seen order: change logs repeat records.
mod indexmap_lite {
    use std::collections::HashMap;

    #[derive(Default)]
    pub struct Ordered {
        index: HashMap<String, usize>,
        items: Vec<(String, Option<serde_json::Value>)>,
    }

    impl Ordered {
        pub fn put(&mut self, key: String, value: Option<serde_json::Value>) {
            match self.index.get(&key) {
                Some(&i) => self.items[i].1 = value,
                None => {
                    self.index.insert(key.clone(), self.items.len());
                    self.items.push((key, value));
                }
            }
        }
        pub fn into_iter(self) -> impl Iterator<Item = (String, Option<serde_json::Value>)> {
            self.items.into_iter()
        }
    }
}

/// Why a walk stopped.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{0}")]
    Stopped(String),
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    Json(Value),
    Form(Vec<(String, String)>),
}

fn origin(base: &str) -> String {
    let after = base.find("://").map(|i| i + 3).unwrap_or(0);
    match base[after..].find('/') {
        Some(i) => base[..after + i].to_string(),
        None => base.to_string(),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn set_path(doc: &mut Value, path: &str, v: Value) {
    if let Ok(p) = FieldPath::parse(path) {
        p.set(doc, v);
    }
}

/// A vendor's change time: text in its format and zone, or epoch numbers.
fn parse_time(v: &Value, tz: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let s = v.as_str()?;
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(n) = chrono::NaiveDateTime::parse_from_str(s, f) {
            use chrono::TimeZone;
            return tz
                .from_local_datetime(&n)
                .earliest()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    None
}

/// Pick the vendor's message out of an error body.
pub fn vendor_message(profile: &Profile, body: &str) -> Option<String> {
    let doc: Value = serde_json::from_str(body).ok()?;
    for p in &profile.errors.message {
        if let Some(v) = FieldPath::parse(p).ok().and_then(|p| p.get(&doc).cloned()) {
            match v {
                Value::String(s) if !s.is_empty() => return Some(s),
                Value::Null => {}
                other => return Some(other.to_string()),
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendor_messages_are_found_in_all_five_shapes() {
        let cases = [
            (
                "moysklad",
                r#"{"errors":[{"error":"Ошибка аутентификации","code":1056}]}"#,
                "Ошибка аутентификации",
            ),
            (
                "retailcrm",
                r#"{"success":false,"errorMsg":"Wrong \"apiKey\" value.","errors":{}}"#,
                "Wrong \"apiKey\" value.",
            ),
            (
                "teamleader",
                r#"{"errors":[{"title":"Unauthorized","status":401}]}"#,
                "Unauthorized",
            ),
            (
                "reviso",
                r#"{"message":"Customer not found.","errorCode":"E04300","httpStatusCode":404}"#,
                "Customer not found.",
            ),
            (
                "eaccounting",
                r#"{"ErrorCode":4010,"DeveloperErrorMessage":"Try again in 55 seconds.","ErrorId":"x"}"#,
                "Try again in 55 seconds.",
            ),
        ];
        for (name, body, want) in cases {
            let p = Profile::find(name, std::path::Path::new(".")).unwrap();
            assert_eq!(vendor_message(&p, body).as_deref(), Some(want), "{name}");
        }
    }

    #[test]
    fn origins_and_times() {
        assert_eq!(
            origin("http://127.0.0.1:8080/moysklad/api"),
            "http://127.0.0.1:8080"
        );
        let t = parse_time(
            &Value::from("2024-01-01 10:00:00.000"),
            chrono_tz::Europe::Moscow,
        )
        .unwrap();
        assert_eq!(t.to_rfc3339(), "2024-01-01T07:00:00+00:00");
    }
}
