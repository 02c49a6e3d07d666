//! OAuth client-credentials tokens: one per process, renewed shortly before it expires.
//!
//! Renewal is single-flight: the state sits behind an async mutex, so concurrent callers
//! needing a token wait for the one renewal in progress instead of starting their own.
//! After a failed login the next attempt waits, so nothing ever retries in a loop:
//! - the login service unavailable (no answer, 5xx, 408) or answering garbage: a fault
//!   that passes by itself. The next *cycle* may try again ([`TokenSource::cycle_due`]),
//!   so rows converge at the first tick after the outage, and no more than one login
//!   is attempted per tick; between ticks (or within a cycle) the exponential wait holds.
//! - a throttled login (429, or 400 "rate limit exceeded"): its Retry-After, never less.
//! - refused credentials (401/400 invalid_client ...): a misconfiguration, which does not
//!   pass by itself: exponential, 1 s doubling to 5 minutes, whatever the schedule.

use std::time::Duration;

use reqwest::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::metrics::Metrics;
use crate::redact;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    #[error(
        "login refused ({status}, {code}): the OAuth client id or secret is wrong, or the client was deleted; \
         check GENESYSCLOUD_OAUTHCLIENT_ID / the secret and that the client uses the Client Credentials grant"
    )]
    InvalidCredentials { status: u16, code: String },
    #[error("login rate limited by Genesys Cloud; retrying in {}s", retry_in.as_secs())]
    RateLimited { retry_in: Duration },
    #[error("login service unavailable: {message}; retrying at the next cycle")]
    Unavailable { message: String, retry_in: Duration },
    #[error("login answered something unexpected: {message}")]
    Malformed { message: String },
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize, Default)]
struct LoginError {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

struct Token {
    value: SecretString,
    /// When to renew: a margin before the real expiry.
    renew_at: Instant,
    expires_at: Instant,
}

struct State {
    token: Option<Token>,
    failures: u32,
    not_before: Option<Instant>,
    last_error: Option<AuthError>,
}

pub struct TokenSource {
    http: reqwest::Client,
    token_url: String,
    client_id: String,
    secret: SecretString,
    metrics: Metrics,
    state: Mutex<State>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Renew this long before expiry: a fifth of the lifetime, at most five minutes.
pub fn renewal_margin(expires_in: Duration) -> Duration {
    (expires_in / 5).min(Duration::from_secs(300))
}

impl TokenSource {
    pub fn new(
        http: reqwest::Client,
        login: &Url,
        client_id: String,
        secret: SecretString,
        metrics: Metrics,
    ) -> Self {
        let base = login.as_str().trim_end_matches('/');
        Self {
            http,
            token_url: format!("{base}/oauth/token"),
            client_id,
            secret,
            metrics,
            state: Mutex::new(State {
                token: None,
                failures: 0,
                not_before: None,
                last_error: None,
            }),
        }
    }

    /// A cycle is due (a tick arrived): a login that failed because of a fault that passes
    /// by itself (the login service down or answering garbage) may be tried again now,
    /// once, instead of waiting out the exponential backoff: the backoff must not outlive
    /// the outage by minutes. A throttled login keeps its Retry-After and refused
    /// credentials keep their backoff.
    pub async fn cycle_due(&self) {
        let mut s = self.state.lock().await;
        if matches!(
            s.last_error,
            Some(AuthError::Unavailable { .. } | AuthError::Malformed { .. })
        ) {
            s.not_before = None;
        }
    }

    /// A valid token, logging in if there is none or it is due for renewal.
    pub async fn token(&self) -> Result<SecretString, AuthError> {
        let mut s = self.state.lock().await;
        let now = Instant::now();
        if let Some(t) = &s.token {
            if now < t.renew_at {
                return Ok(t.value.clone());
            }
        }
        if let Some(nb) = s.not_before
            && now < nb
        {
            if let Some(t) = &s.token
                && now < t.expires_at
            {
                return Ok(t.value.clone());
            }
            if let Some(err) = &s.last_error {
                return Err(err.clone());
            }
        }
        match self.login().await {
            Ok((value, lifetime)) => {
                redact::register_token(&value);
                self.metrics.token_renewals.inc();
                tracing::info!(
                    expires_in_s = lifetime.as_secs(),
                    "obtained an access token"
                );
                let now = Instant::now();
                s.token = Some(Token {
                    value: value.clone(),
                    renew_at: now + lifetime - renewal_margin(lifetime),
                    expires_at: now + lifetime,
                });
                s.failures = 0;
                s.not_before = None;
                s.last_error = None;
                Ok(value)
            }
            Err(e) => {
                s.failures += 1;
                let wait = match &e {
                    AuthError::RateLimited { retry_in } => *retry_in,
                    _ => backoff(s.failures),
                };
                let e = match e {
                    AuthError::Unavailable { message, .. } => AuthError::Unavailable {
                        message,
                        retry_in: wait,
                    },
                    AuthError::RateLimited { .. } => AuthError::RateLimited { retry_in: wait },
                    other => other,
                };
                s.not_before = Some(Instant::now() + wait);
                s.last_error = Some(e.clone());
                // Keep a still-valid old token usable while renewal fails.
                if let Some(t) = &s.token {
                    if Instant::now() < t.expires_at {
                        return Ok(t.value.clone());
                    }
                }
                s.token = None;
                Err(e)
            }
        }
    }

    /// Drops `token` if it is still the current one (after a 401), so the next call renews.
    /// A token already replaced by a concurrent renewal is left alone: single flight.
    /// A login backoff in progress (the old token was kept because renewing it failed,
    /// e.g. a throttled login) stays in force: a 401 is no reason to log in before the
    /// login's Retry-After.
    pub async fn invalidate(&self, token: &SecretString) {
        let mut s = self.state.lock().await;
        if s.token
            .as_ref()
            .is_some_and(|t| t.value.expose_secret() == token.expose_secret())
        {
            s.token = None;
        }
    }

    async fn login(&self) -> Result<(SecretString, Duration), AuthError> {
        let sent = std::time::Instant::now();
        let resp = self
            .http
            .post(&self.token_url)
            .basic_auth(&self.client_id, Some(self.secret.expose_secret()))
            .header(header::ACCEPT, "application/json")
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await;
        self.metrics.api_latency("oauth_token", sent.elapsed());
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.metrics.api_request("oauth_token", 0);
                return Err(AuthError::Unavailable {
                    message: redact::excerpt(&super::describe_transport(&e)),
                    retry_in: Duration::ZERO,
                });
            }
        };
        let status = resp.status();
        self.metrics.api_request("oauth_token", status.as_u16());
        let retry_in = super::retry_after(resp.headers());
        let body = resp.bytes().await.map_err(|e| AuthError::Unavailable {
            message: redact::excerpt(&super::describe_transport(&e)),
            retry_in: Duration::ZERO,
        })?;
        if body.len() > 64 * 1024 {
            return Err(AuthError::Malformed {
                message: "token answer larger than 64 KiB".into(),
            });
        }
        if status.is_success() {
            let t: TokenResponse =
                super::decode_object(&body).map_err(|e| AuthError::Malformed {
                    // serde quotes the value it choked on: that may be the token itself.
                    message: redact::excerpt(&format!(
                        "token answer is not the expected JSON: {e}"
                    )),
                })?;
            if t.token_type
                .as_deref()
                .is_some_and(|tt| !tt.eq_ignore_ascii_case("bearer"))
            {
                return Err(AuthError::Malformed {
                    message: "token_type is not bearer".into(),
                });
            }
            if t.access_token.expose_secret().is_empty() {
                return Err(AuthError::Malformed {
                    message: "empty access_token".into(),
                });
            }
            let lifetime = Duration::from_secs(t.expires_in.unwrap_or(86_400).clamp(1, 86_400 * 2));
            return Ok((t.access_token, lifetime));
        }
        let err: LoginError = serde_json::from_slice(&body).unwrap_or_default();
        let text = format!(
            "{} {}",
            err.error_description.as_deref().unwrap_or_default(),
            err.description.as_deref().unwrap_or_default()
        )
        .to_ascii_lowercase();
        // Genesys answers a throttled login with 429 or with 400 invalid_request "rate limit exceeded".
        if status == StatusCode::TOO_MANY_REQUESTS || text.contains("rate limit") {
            return Err(AuthError::RateLimited {
                retry_in: retry_in
                    .unwrap_or(Duration::from_secs(60))
                    .max(Duration::from_secs(1)),
            });
        }
        if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
            return Err(AuthError::Unavailable {
                message: format!("HTTP {}", status.as_u16()),
                retry_in: Duration::ZERO,
            });
        }
        Err(AuthError::InvalidCredentials {
            status: status.as_u16(),
            // Text from the network, shown in logs and `check`: redacted and short.
            code: err
                .error
                .map_or_else(|| "error".into(), |c| redact::cap(&redact::excerpt(&c), 80)),
        })
    }
}

/// 1 s, 2 s, 4 s ... capped at 5 minutes.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.saturating_sub(1).min(9)).min(Duration::from_secs(300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_margin_scales_with_lifetime() {
        assert_eq!(
            renewal_margin(Duration::from_secs(86_400)),
            Duration::from_secs(300)
        );
        assert_eq!(
            renewal_margin(Duration::from_secs(10)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn login_backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(40), Duration::from_secs(300));
    }
}
