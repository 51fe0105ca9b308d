//! Retry decisions: a pure function of what came back, so that the table of
//! statuses and waits can be tested without a server.

use std::time::Duration;

use reqwest::header::HeaderMap;

use super::profile::RetryPolicy;

/// What to do after a failed try.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Retry { wait: Duration, reason: String },
    Fail,
}

/// What a try produced, for the decision.
#[derive(Debug, Clone, Copy)]
pub enum Failure<'a> {
    /// The server answered with this status and body.
    Status {
        status: u16,
        headers: &'a HeaderMap,
        body: &'a str,
    },
    /// A 2xx whose body is not the JSON it should be.
    Malformed,
    /// No answer: connection refused, reset, timed out.
    Transport,
}

/// Decide whether try number `attempt` (1-based) is followed by another.
/// `jitter` in 0..1 spreads backoffs of parallel clients apart.
pub fn decide(policy: &RetryPolicy, failure: Failure<'_>, attempt: u32, jitter: f64) -> Verdict {
    if attempt >= policy.max_attempts {
        return Verdict::Fail;
    }
    let backoff = || {
        let step = policy.base_ms.saturating_mul(1u64 << (attempt - 1).min(20));
        let ms = (step as f64 * (0.5 + jitter * 0.5)) as u64;
        Duration::from_millis(ms.min(policy.max_wait_ms))
    };
    match failure {
        Failure::Status {
            status: 429 | 503,
            headers,
            body,
        } => {
            let (wait, source) = match told_wait(policy, headers, body) {
                Some((w, source)) => (w.min(Duration::from_millis(policy.max_wait_ms)), source),
                None => (backoff(), "backoff".to_string()),
            };
            Verdict::Retry {
                wait,
                reason: format!(
                    "HTTP {status_text}, waiting {wait:?} ({source})",
                    status_text = status_name(failure)
                ),
            }
        }
        Failure::Status { status, .. } if (500..600).contains(&status) => Verdict::Retry {
            wait: backoff(),
            reason: format!("HTTP {status}"),
        },
        Failure::Status { .. } => Verdict::Fail,
        Failure::Malformed => Verdict::Retry {
            wait: backoff(),
            reason: "malformed response body".into(),
        },
        Failure::Transport => Verdict::Retry {
            wait: backoff(),
            reason: "no response".into(),
        },
    }
}

/// A number in 0..1 that differs between tries and between clients.
pub fn jitter(attempt: u32) -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(attempt);
    (h.finish() % 10_000) as f64 / 10_000.0
}

fn status_name(f: Failure<'_>) -> String {
    match f {
        Failure::Status { status, .. } => status.to_string(),
        _ => String::new(),
    }
}

/// The wait the server asked for, from a header or the body.
fn told_wait(policy: &RetryPolicy, headers: &HeaderMap, body: &str) -> Option<(Duration, String)> {
    for h in &policy.wait_headers {
        let (name, unit) = h.split_once(':').unwrap_or((h.as_str(), "s"));
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok())
            && let Ok(n) = v.trim().parse::<f64>()
        {
            let d = if unit == "ms" {
                Duration::from_secs_f64(n / 1000.0)
            } else {
                Duration::from_secs_f64(n)
            };
            return Some((d, format!("{name} header")));
        }
    }
    let re = regex::Regex::new(policy.wait_body.as_deref()?).ok()?;
    let secs: f64 = re.captures(body)?.get(1)?.as_str().parse().ok()?;
    Some((Duration::from_secs_f64(secs), "message body".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_ms: 100,
            max_wait_ms: 60_000,
            wait_headers: vec!["X-Lognex-Retry-After:ms".into(), "Retry-After".into()],
            wait_body: Some(r"Try again in (\d+) seconds".into()),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    /// Which statuses retry, and how long each waits: one line per case.
    #[test]
    fn retry_table() {
        let p = policy();
        let none = headers(&[]);
        let lognex = headers(&[("X-Lognex-Retry-After", "1500")]);
        let retry_after = headers(&[("Retry-After", "7")]);
        let cases: Vec<(Failure, &str)> = vec![
            (
                Failure::Status {
                    status: 429,
                    headers: &lognex,
                    body: "",
                },
                "retry 1.5s",
            ),
            (
                Failure::Status {
                    status: 429,
                    headers: &retry_after,
                    body: "",
                },
                "retry 7s",
            ),
            (
                Failure::Status {
                    status: 429,
                    headers: &none,
                    body: "{\"DeveloperErrorMessage\":\"Try again in 55 seconds.\"}",
                },
                "retry 55s",
            ),
            (
                Failure::Status {
                    status: 503,
                    headers: &none,
                    body: "",
                },
                "retry 75ms",
            ),
            (
                Failure::Status {
                    status: 500,
                    headers: &none,
                    body: "",
                },
                "retry 75ms",
            ),
            (
                Failure::Status {
                    status: 502,
                    headers: &none,
                    body: "",
                },
                "retry 75ms",
            ),
            (
                Failure::Status {
                    status: 400,
                    headers: &none,
                    body: "",
                },
                "fail",
            ),
            (
                Failure::Status {
                    status: 401,
                    headers: &none,
                    body: "",
                },
                "fail",
            ),
            (
                Failure::Status {
                    status: 404,
                    headers: &none,
                    body: "",
                },
                "fail",
            ),
            (
                Failure::Status {
                    status: 422,
                    headers: &none,
                    body: "",
                },
                "fail",
            ),
            (Failure::Malformed, "retry 75ms"),
            (Failure::Transport, "retry 75ms"),
        ];
        for (f, want) in cases {
            let got = match decide(&p, f, 1, 0.5) {
                Verdict::Retry { wait, .. } => format!("retry {wait:?}"),
                Verdict::Fail => "fail".into(),
            };
            assert_eq!(got, want, "{f:?}");
        }
    }

    #[test]
    fn backoff_doubles_is_capped_and_attempts_run_out() {
        let mut p = policy();
        p.max_wait_ms = 500;
        let waits: Vec<Verdict> = (1..=5)
            .map(|a| decide(&p, Failure::Transport, a, 1.0))
            .collect();
        let ms: Vec<u128> = waits
            .iter()
            .filter_map(|v| match v {
                Verdict::Retry { wait, .. } => Some(wait.as_millis()),
                Verdict::Fail => None,
            })
            .collect();
        assert_eq!(ms, vec![100, 200, 400, 500]);
        assert_eq!(waits[4], Verdict::Fail);
    }
}
