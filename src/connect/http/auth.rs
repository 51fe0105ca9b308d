//! Credentials: read from the environment variables a spec names, applied to
//! each request, refreshed (OAuth2, rotating refresh tokens saved
//! atomically), and redacted from anything recon prints or stores.

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::RequestBuilder;
use reqwest::header::HeaderMap;
use tokio::sync::Mutex;

use super::profile::{AuthSpec, RetryPolicy};
use super::retry::{Failure, Verdict, decide, jitter};

/// Secret values by secret name, with the environment variable each came from.
#[derive(Clone)]
pub struct Secrets {
    values: BTreeMap<String, String>,
    envs: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values.
        f.debug_struct("Secrets").field("envs", &self.envs).finish()
    }
}

impl Secrets {
    /// Read every secret `auth` needs from the variables `names` maps them to.
    pub fn from_env(auth: &AuthSpec, names: &BTreeMap<String, String>) -> Result<Secrets, String> {
        let mut values = BTreeMap::new();
        let mut missing = Vec::new();
        for secret in auth.secrets() {
            let Some(var) = names.get(&secret) else {
                missing.push(format!(
                    "`{secret}` is not mapped to an environment variable in the spec's auth table"
                ));
                continue;
            };
            match std::env::var(var) {
                Ok(v) if !v.is_empty() => {
                    values.insert(secret, v);
                }
                _ => missing.push(format!(
                    "environment variable {var} (for `{secret}`) is not set"
                )),
            }
        }
        if !missing.is_empty() {
            return Err(missing.join("; "));
        }
        Ok(Secrets {
            values,
            envs: names.clone(),
        })
    }

    pub fn get(&self, secret: &str) -> &str {
        self.values
            .get(secret)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// The environment variables holding the credentials, for messages.
    pub fn env_names(&self) -> String {
        self.envs.values().cloned().collect::<Vec<_>>().join(", ")
    }

    /// Replace every secret value in `text` with `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in self.values.values().filter(|v| v.len() >= 4) {
            out = out.replace(v.as_str(), "***");
        }
        out
    }
}

/// Applies credentials to requests and keeps OAuth2 tokens fresh.
pub struct Authenticator {
    spec: AuthSpec,
    secrets: Secrets,
    /// Current OAuth2 access token and the latest refresh token.
    tokens: Mutex<(Option<String>, Option<String>)>,
    /// Where rotated refresh tokens are saved between runs.
    store: Option<PathBuf>,
    token_url: Option<String>,
    /// How a refresh refused for load (429, 5xx) or lost in transit is tried again.
    retry: RetryPolicy,
}

impl Authenticator {
    pub fn new(
        spec: AuthSpec,
        secrets: Secrets,
        store: Option<PathBuf>,
        origin: &str,
        retry: RetryPolicy,
    ) -> Self {
        let token_url = match &spec {
            AuthSpec::Oauth2Refresh { token_url } if token_url.starts_with('/') => {
                Some(format!("{origin}{token_url}"))
            }
            AuthSpec::Oauth2Refresh { token_url } => Some(token_url.clone()),
            _ => None,
        };
        // A refresh token saved by an earlier run is newer than the one in
        // the environment: refresh tokens are single use.
        let stored = store.as_deref().and_then(read_token);
        Self {
            tokens: Mutex::new((None, stored)),
            spec,
            secrets,
            store,
            token_url,
            retry,
        }
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Add credentials to a request.
    pub async fn apply(
        &self,
        client: &reqwest::Client,
        req: RequestBuilder,
    ) -> Result<RequestBuilder, String> {
        Ok(match &self.spec {
            AuthSpec::HeaderKey { header } => {
                req.header(header.as_str(), self.secrets.get("token"))
            }
            AuthSpec::QueryKey { param } => {
                req.query(&[(param.as_str(), self.secrets.get("token"))])
            }
            AuthSpec::Headers { headers } => {
                let mut req = req;
                for (h, secret) in headers {
                    req = req.header(h.as_str(), self.secrets.get(secret));
                }
                req
            }
            AuthSpec::Basic => req.basic_auth(
                self.secrets.get("login"),
                Some(self.secrets.get("password")),
            ),
            AuthSpec::Bearer => req.bearer_auth(self.secrets.get("token")),
            AuthSpec::Oauth2Refresh { .. } => {
                let token = {
                    let t = self.tokens.lock().await;
                    t.0.clone()
                };
                let token = match token {
                    Some(t) => t,
                    None => self.refresh(client, None).await?,
                };
                req.bearer_auth(token)
            }
            AuthSpec::None => req,
        })
    }

    /// Whether a 401 can be cured by refreshing the access token.
    pub fn refreshes(&self) -> bool {
        matches!(self.spec, AuthSpec::Oauth2Refresh { .. })
    }

    /// Get a new access token with the refresh-token grant; the rotated
    /// refresh token is saved before it is used, so a crash cannot lose it.
    /// `stale` is the access token that failed: if another task already
    /// replaced it, that newer token is returned instead.
    pub async fn refresh(
        &self,
        client: &reqwest::Client,
        stale: Option<&str>,
    ) -> Result<String, String> {
        let mut t = self.tokens.lock().await;
        if let (Some(current), Some(stale)) = (&t.0, stale)
            && current != stale
        {
            return Ok(current.clone());
        }
        let url = self.token_url.clone().ok_or("no token endpoint")?;
        // Another run (or spec) sharing these credentials may have rotated
        // the token since this one started: the store holds the newest.
        if let Some(stored) = self.store.as_deref().and_then(read_token) {
            t.1 = Some(stored);
        }
        let refresh =
            t.1.clone()
                .unwrap_or_else(|| self.secrets.get("refresh_token").to_string());
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
            ("client_id", self.secrets.get("client_id")),
            ("client_secret", self.secrets.get("client_secret")),
        ];
        // A refusal for load or a lost answer is tried again as the profile
        // says: the server did not take the refresh token, so it still holds.
        let mut attempt = 0;
        let mut lost = String::new();
        let (status, body) = loop {
            attempt += 1;
            let (status, headers, text) = match client.post(&url).form(&form).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    (Some(status), headers, resp.text().await.unwrap_or_default())
                }
                Err(e) => {
                    lost = e.to_string();
                    (None, HeaderMap::new(), String::new())
                }
            };
            let failure = match status {
                Some(s) if s.is_success() || s.is_client_error() && s.as_u16() != 429 => {
                    break (
                        s,
                        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default(),
                    );
                }
                Some(s) => Failure::Status {
                    status: s.as_u16(),
                    headers: &headers,
                    body: &text,
                },
                None => Failure::Transport,
            };
            match decide(&self.retry, failure, attempt, jitter(attempt)) {
                Verdict::Retry { wait, reason } => {
                    tracing::warn!("token refresh at {url}: {reason}; retrying");
                    tokio::time::sleep(wait).await;
                }
                Verdict::Fail => {
                    return Err(self.secrets.redact(&match status {
                        Some(s) => {
                            format!("token refresh at {url} answered {s} after {attempt} tries")
                        }
                        None => {
                            format!("token refresh at {url} failed after {attempt} tries: {lost}")
                        }
                    }));
                }
            }
        };
        if !status.is_success() {
            let why = body
                .get("error_description")
                .or_else(|| body.get("error"))
                .and_then(|v| v.as_str())
                .unwrap_or("refused");
            return Err(self.secrets.redact(&format!(
                "token refresh at {url} answered {status}: {why}; check environment variables {}",
                self.secrets.env_names()
            )));
        }
        let access = body
            .get("access_token")
            .and_then(|v| v.as_str())
            .ok_or("the token response has no access_token")?
            .to_string();
        if let Some(new_refresh) = body.get("refresh_token").and_then(|v| v.as_str()) {
            if let Some(store) = &self.store {
                save_token(store, new_refresh).map_err(|e| {
                    format!(
                        "cannot save the rotated refresh token to {}: {e}",
                        store.display()
                    )
                })?;
            }
            t.1 = Some(new_refresh.to_string());
        }
        t.0 = Some(access.clone());
        Ok(access)
    }
}

fn read_token(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("refresh_token")
        .and_then(|r| r.as_str())
        .map(str::to_string)
}

fn save_token(path: &std::path::Path, refresh: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let f = opts.open(&tmp)?;
        std::io::Write::write_all(
            &mut &f,
            serde_json::json!({ "refresh_token": refresh })
                .to_string()
                .as_bytes(),
        )?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)
}
