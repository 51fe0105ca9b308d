//! Profiles: everything recon knows about one system's REST API, as data.
//!
//! A profile names the base URL, how to authenticate, how lists paginate,
//! where the records sit in a response, how to ask for changes since a time,
//! how fast one may call, when to retry, and where the vendor puts its error
//! message. Built-in profiles live in `src/connect/profiles/*.toml`; a spec
//! may point at its own file for any other system.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The built-in profiles, by name.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("moysklad", include_str!("../profiles/moysklad.toml")),
    ("retailcrm", include_str!("../profiles/retailcrm.toml")),
    ("teamleader", include_str!("../profiles/teamleader.toml")),
    ("reviso", include_str!("../profiles/reviso.toml")),
    ("eaccounting", include_str!("../profiles/eaccounting.toml")),
];

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    /// Default base URL; a spec may override it (an emulator, a sandbox).
    pub base_url: String,
    /// Ask for gzip responses (MoySklad refuses requests without it).
    #[serde(default)]
    pub gzip: bool,
    pub auth: AuthSpec,
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    #[serde(default)]
    pub retry: RetryPolicy,
    #[serde(default)]
    pub errors: ErrorShape,
    /// Endpoints per entity.
    pub entity: BTreeMap<String, Entity>,
}

/// How requests are authenticated. Each kind names the secrets it needs; a
/// spec maps every secret name to an environment variable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthSpec {
    /// A key in a header (`X-API-KEY`); secret `token`.
    HeaderKey { header: String },
    /// A key in the query string (`apiKey`); secret `token`.
    QueryKey { param: String },
    /// Static headers, each from its own secret (Reviso's two tokens).
    Headers { headers: BTreeMap<String, String> },
    /// HTTP Basic; secrets `login` and `password`.
    Basic,
    /// A static bearer token; secret `token`.
    Bearer,
    /// OAuth2 refresh-token grant with rotating refresh tokens; secrets
    /// `client_id`, `client_secret`, `refresh_token`.
    Oauth2Refresh {
        /// Token endpoint, relative to the base URL's origin when it starts with `/`.
        token_url: String,
    },
    /// No authentication.
    None,
}

impl AuthSpec {
    /// The secret names a spec must map to environment variables.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            AuthSpec::HeaderKey { .. } | AuthSpec::QueryKey { .. } | AuthSpec::Bearer => {
                vec!["token".into()]
            }
            AuthSpec::Headers { headers } => headers.values().cloned().collect(),
            AuthSpec::Basic => vec!["login".into(), "password".into()],
            AuthSpec::Oauth2Refresh { .. } => vec![
                "client_id".into(),
                "client_secret".into(),
                "refresh_token".into(),
            ],
            AuthSpec::None => vec![],
        }
    }
}

/// Client-side limits, kept below the vendor's.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Requests allowed per window...
    pub requests: u32,
    /// ...of this many seconds.
    pub per_seconds: f64,
    /// Requests in flight at once.
    #[serde(default = "one")]
    pub parallel: usize,
}

fn one() -> usize {
    1
}

/// When and how long to wait before trying a request again.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Tries in all, the first included.
    pub max_attempts: u32,
    /// First backoff step; it doubles each try, with jitter.
    pub base_ms: u64,
    /// No single wait is longer than this.
    pub max_wait_ms: u64,
    /// Headers that say how long to wait: `Retry-After` (seconds) or
    /// `X-Lognex-Retry-After:ms`.
    pub wait_headers: Vec<String>,
    /// A regex whose first group is the wait in seconds, found in the body
    /// (`Try again in (\d+) seconds`).
    pub wait_body: Option<String>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_ms: 250,
            max_wait_ms: 120_000,
            wait_headers: vec!["Retry-After".into()],
            wait_body: None,
        }
    }
}

/// Where a vendor puts the message of an error body: paths tried in order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ErrorShape {
    pub message: Vec<String>,
}

impl Default for ErrorShape {
    fn default() -> Self {
        Self {
            message: vec![
                "errors[0].error".into(),
                "errors[0].title".into(),
                "errorMsg".into(),
                "message".into(),
                "DeveloperErrorMessage".into(),
                "error_description".into(),
                "error".into(),
            ],
        }
    }
}

/// One entity's endpoints.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    pub list: Request,
    /// Path to the array of records in a list response (`rows`, `data`).
    pub records: String,
    pub pagination: Pagination,
    /// Asking for records changed since a time.
    #[serde(default)]
    pub incremental: Option<Incremental>,
    /// A change log read by moving an id cursor (retailCRM history).
    #[serde(default)]
    pub changelog: Option<Changelog>,
    /// Reading one record by id (`{id}` in the path).
    #[serde(default)]
    pub get: Option<Request>,
    /// Creating one record.
    #[serde(default)]
    pub create: Option<Write>,
    /// Updating one record (`{id}` in the path).
    #[serde(default)]
    pub update: Option<Write>,
    /// Writing many records in one request.
    #[serde(default)]
    pub batch: Option<Batch>,
    /// Deleting one record (`mirror` mode only).
    #[serde(default)]
    pub delete: Option<Write>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

/// A request template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default)]
    pub method: Method,
    /// Path below the base URL.
    pub path: String,
    /// Fixed query parameters (`order = "updated,asc"`).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// JSON body for RPC-style APIs; pagination and filters are set in it by path.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

/// How a list is walked page by page. Parameter names are query parameters
/// for GET requests and body paths for POST (RPC) requests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Pagination {
    /// `limit` and `offset`; stops on a short page or at `total`.
    Offset {
        limit: String,
        offset: String,
        size: usize,
        #[serde(default)]
        total: Option<String>,
    },
    /// Page number (from `first`) and page size; stops on a short page or
    /// after `total_pages`.
    Page {
        page: String,
        size_param: String,
        size: usize,
        #[serde(default = "one_u32")]
        first: u32,
        #[serde(default)]
        total_pages: Option<String>,
    },
    /// Follow the URL found at `next` until there is none.
    NextLink {
        #[serde(default)]
        size_param: Option<String>,
        size: usize,
        next: String,
    },
}

fn one_u32() -> u32 {
    1
}

/// A filter asking for records changed since the cursor.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// Query parameter (GET) or body path (POST) that carries the filter.
    pub param: String,
    /// The filter text, `{since}` replaced by the cursor: `updated>={since}`.
    pub template: String,
    /// chrono format of `{since}`.
    pub format: String,
    /// Time zone the vendor reads `{since}` in (MoySklad: Europe/Moscow).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Where the next cursor comes from: a record field with its change time...
    #[serde(default)]
    pub cursor_field: Option<String>,
    /// ...or the server's time in the response (`Meta.ServerTimeUtc`).
    #[serde(default)]
    pub cursor_response: Option<String>,
}

/// A change log walked by id (`filter[sinceId]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changelog {
    pub path: String,
    pub since_param: String,
    pub size_param: String,
    pub size: usize,
    /// Path to the array of change rows.
    pub rows: String,
    /// Path to a row's id (the cursor).
    pub id: String,
    /// Path to the record inside a row.
    pub record: String,
    /// Path to the flag saying the record was deleted.
    #[serde(default)]
    pub deleted: Option<String>,
}

/// How a write is sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Write {
    pub method: Method,
    /// Path below the base URL; `{id}` is the record's native id.
    pub path: String,
    /// `json` (default), or `form:FIELD` for a form with the record as JSON in FIELD.
    #[serde(default = "json_body")]
    pub body: String,
    /// Fixed query parameters.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// `partial` (send changed fields) or `replace` (read, modify, write the whole record).
    #[serde(default = "partial")]
    pub mode: String,
    /// Where the new record's id is in the response.
    #[serde(default)]
    pub id: Option<String>,
    /// A body field to put inside (`id` for Teamleader's update).
    #[serde(default)]
    pub id_field: Option<String>,
    /// A body field carrying a client-chosen UUID that makes a repeated
    /// create return the first one's record (MoySklad `syncId`).
    #[serde(default)]
    pub idempotency: Option<String>,
    /// A body field that carries the sender's id, so a create whose outcome
    /// was lost can be found again (retailCRM `externalId`).
    #[serde(default)]
    pub external_id: Option<String>,
}

fn json_body() -> String {
    "json".into()
}

fn partial() -> String {
    "partial".into()
}

/// A batch write.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub method: Method,
    pub path: String,
    #[serde(default = "json_body")]
    pub body: String,
    pub max: usize,
    /// Items carrying `meta.href` with this path (`{id}` filled in) update
    /// that record instead of creating one (MoySklad).
    #[serde(default)]
    pub update_href: Option<String>,
}

impl Profile {
    /// Parse a profile's TOML.
    pub fn parse(text: &str) -> Result<Profile, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// A built-in profile by name, or a profile file (relative to `base`).
    pub fn find(name: &str, base: &Path) -> Result<Profile, String> {
        if let Some((_, text)) = BUILT_IN.iter().find(|(n, _)| *n == name) {
            return Profile::parse(text)
                .map_err(|e| format!("built-in profile `{name}` is broken: {e}"));
        }
        let path = base.join(name);
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read profile {}: {e}", path.display()))?;
            return Profile::parse(&text).map_err(|e| format!("profile {}: {e}", path.display()));
        }
        Err(format!(
            "unknown profile `{name}`: use one of {} or a path to a profile .toml file",
            BUILT_IN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_profile_parses() {
        for (name, text) in BUILT_IN {
            let p = Profile::parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(&p.name, name);
            assert!(!p.entity.is_empty(), "{name} has entities");
        }
    }
}
