//! The Genesys Cloud client: one HTTP client, one token, one request budget.
//!
//! Every API call goes through [`Client::send`]: budget limiter → bearer token
//! (single-flight renewal) → send with timeout → classify. Retries live here and only
//! here, so endpoint modules stay plain request/response code.

pub mod auth;
pub mod datatable;
mod error;
pub mod limiter;
pub mod notifications;
pub mod observations;
pub mod path;
pub mod permissions;
pub mod queues;

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use reqwest::{Method, StatusCode, header};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::redact;
use auth::TokenSource;
use error::ErrorBody;
pub use error::{ApiError, RateLimit};
use limiter::Limiter;
pub use path::encode_segment;

/// Response bodies larger than this are refused: no endpoint we use legitimately
/// returns more (a 500-row page of a 50-column table is well under it).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// How the pipeline retries; tests shrink the delays.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Longest Retry-After the client will sit through inside one call.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

/// One API request to make; the body is JSON.
pub struct Request<'a> {
    pub endpoint: &'static str,
    pub method: Method,
    pub path: String,
    pub query: Vec<(&'a str, String)>,
    pub body: Option<serde_json::Value>,
}

impl<'a> Request<'a> {
    pub fn get(endpoint: &'static str, path: impl Into<String>) -> Self {
        Self {
            endpoint,
            method: Method::GET,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    pub fn with_body(
        endpoint: &'static str,
        method: Method,
        path: impl Into<String>,
        body: serde_json::Value,
    ) -> Self {
        Self {
            endpoint,
            method,
            path: path.into(),
            query: Vec::new(),
            body: Some(body),
        }
    }

    pub fn query(mut self, key: &'a str, value: impl Into<String>) -> Self {
        self.query.push((key, value.into()));
        self
    }
}

/// The shared client; clone it freely.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

/// By hand, so the secret and the bearer token can never end up in a `{:?}`: only the
/// endpoints and the token source's own (redacted) Debug are shown.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api", &self.inner.api.as_str())
            .field("auth", &self.inner.auth)
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

struct Inner {
    http: reqwest::Client,
    api: Url,
    auth: TokenSource,
    limiter: Limiter,
    retry: RetryPolicy,
    metrics: Metrics,
    shutdown: CancellationToken,
    /// The calls whose last answer was a 403: the permission they need is logged once per
    /// streak, when the first 403 comes, not on every cycle that repeats it.
    forbidden: std::sync::Mutex<Vec<permissions::Call>>,
}

impl Client {
    pub fn new(
        cfg: &Config,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        Self::with_policy(cfg, metrics, shutdown, RetryPolicy::default())
    }

    pub fn with_policy(
        cfg: &Config,
        metrics: Metrics,
        shutdown: CancellationToken,
        retry: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("genesys-queue-sync/", env!("CARGO_PKG_VERSION")))
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.request_timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(50))
            // Redirects could carry the bearer token elsewhere; the API never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        redact::register_credentials(&cfg.client_id, &cfg.client_secret);
        let auth = TokenSource::new(
            http.clone(),
            &cfg.login_url,
            cfg.client_id.clone(),
            cfg.client_secret.clone(),
            metrics.clone(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                api: cfg.api_url.clone(),
                auth,
                limiter: Limiter::per_minute(cfg.requests_per_minute),
                retry,
                metrics,
                shutdown,
                forbidden: std::sync::Mutex::default(),
            }),
        })
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn limiter(&self) -> &Limiter {
        &self.inner.limiter
    }

    pub fn auth(&self) -> &TokenSource {
        &self.inner.auth
    }

    /// The HTTP client itself, for the notification socket (an upgrade, not an API call).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// Sends a request and decodes the JSON answer.
    pub async fn send_json<T: serde::de::DeserializeOwned>(
        &self,
        req: Request<'_>,
    ) -> Result<T, ApiError> {
        let endpoint = req.endpoint;
        let bytes = self.send(req).await?;
        decode_object(&bytes).map_err(|e| ApiError::decode(endpoint, e.to_string()))
    }

    /// Sends a request through the pipeline and returns the raw body of a 2xx answer.
    pub async fn send(&self, req: Request<'_>) -> Result<Vec<u8>, ApiError> {
        let inner = &self.inner;
        let endpoint = req.endpoint;
        let url = self.url(&req.path)?;
        let call = permissions::for_request(req.method.as_str(), &req.path).map(|e| e.call);
        let mut attempt = 0;
        let mut renewed_after_401 = false;
        loop {
            attempt += 1;
            self.cancellable(inner.limiter.acquire()).await?;
            let token = self.cancellable(inner.auth.token()).await??;
            let mut builder = inner
                .http
                .request(req.method.clone(), url.clone())
                .header(
                    header::AUTHORIZATION,
                    format!("Bearer {}", token.expose_secret()),
                )
                .header(header::ACCEPT, "application/json");
            if !req.query.is_empty() {
                builder = builder.query(&req.query);
            }
            if let Some(body) = &req.body {
                builder = builder.json(body);
            }
            let sent = std::time::Instant::now();
            let result = self.cancellable(builder.send()).await?;
            inner.metrics.api_latency(endpoint, sent.elapsed());
            let retry_in = match result {
                Err(e) => {
                    inner.metrics.api_request(endpoint, 0);
                    let message = describe_transport(&e);
                    if attempt >= inner.retry.max_attempts {
                        return Err(ApiError::transport(endpoint, message));
                    }
                    tracing::debug!(endpoint, attempt, error = %redact::excerpt(&message), "request failed, will retry");
                    self.backoff(attempt)
                }
                Ok(resp) => {
                    let status = resp.status();
                    tracing::trace!(endpoint, method = %req.method, path = %req.path, status = status.as_u16(), attempt, "api response");
                    inner.metrics.api_request(endpoint, status.as_u16());
                    inner.limiter.observe_headers(resp.headers());
                    if status.is_success() {
                        self.forbidden_streak(call, None);
                        return self.read_body(endpoint, resp).await;
                    }
                    match status {
                        StatusCode::UNAUTHORIZED if !renewed_after_401 => {
                            // The token may have been revoked or expired early: renew once.
                            renewed_after_401 = true;
                            inner.auth.invalidate(&token).await;
                            attempt -= 1;
                            tracing::info!(endpoint, "401 on an API call, renewing the token once");
                            continue;
                        }
                        StatusCode::UNAUTHORIZED => {
                            return Err(ApiError::Unauthorized { endpoint });
                        }
                        StatusCode::TOO_MANY_REQUESTS => {
                            inner.metrics.rate_limited.inc();
                            let wait =
                                retry_after(resp.headers()).unwrap_or(Duration::from_secs(3));
                            // The limit is per token: hold every request back for the whole
                            // Retry-After, including when this call gives up below, or the
                            // other calls (and the next cycle) would hit the wall again.
                            inner.limiter.pause_for(wait);
                            // Which limit was hit, when the body says (so an admin knows
                            // whether it is the token's 300/min or some other limit).
                            let limit = self
                                .read_body(endpoint, resp)
                                .await
                                .ok()
                                .and_then(|b| RateLimit::from_body(&b));
                            if attempt >= inner.retry.max_attempts
                                || wait > inner.retry.max_retry_after
                            {
                                return Err(ApiError::RateLimited {
                                    endpoint,
                                    attempts: attempt,
                                    limit,
                                });
                            }
                            // Never earlier than Retry-After; jitter only adds.
                            let jitter = Duration::from_millis(rand::rng().random_range(0..250));
                            tracing::warn!(
                                endpoint,
                                retry_after_s = wait.as_secs_f64(),
                                limit_key = limit.as_ref().map(|l| l.key.as_str()),
                                limit_namespace = limit.as_ref().map(|l| l.namespace.as_str()),
                                limit_value = limit.as_ref().and_then(|l| l.value),
                                "rate limited (429), waiting as told"
                            );
                            inner
                                .metrics
                                .retry_after_waited
                                .inc_by((wait + jitter).as_secs_f64());
                            wait + jitter
                        }
                        s if s.is_server_error() && attempt < inner.retry.max_attempts => {
                            tracing::debug!(
                                endpoint,
                                attempt,
                                status = s.as_u16(),
                                "server error, will retry"
                            );
                            self.backoff(attempt)
                        }
                        _ => {
                            let err = self.status_error(endpoint, resp).await;
                            self.forbidden_streak(call, Some(&err));
                            return Err(err);
                        }
                    }
                }
            };
            self.cancellable(tokio::time::sleep(retry_in)).await?;
        }
    }

    /// PUTs a file to a pre-signed upload URL (a data-table import's `uploadURI`).
    /// The bearer token is not sent: the URL carries its own authorization and may be on
    /// another host. The URL must be https (or loopback http, as for the config).
    pub async fn upload(
        &self,
        endpoint: &'static str,
        url: &str,
        headers: &std::collections::BTreeMap<String, String>,
        body: Vec<u8>,
    ) -> Result<(), ApiError> {
        let url = crate::config::parse_upload_url(url)
            .map_err(|message| ApiError::decode(endpoint, message))?;
        // The URL's query is its authorization: scrub it from anything shown from now on
        // (storage services echo the signature they were given in their error bodies).
        redact::register_upload_url(&url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut builder = self.inner.http.put(url.clone()).body(body.clone());
            for (k, v) in headers {
                builder = builder.header(k.as_str(), v.as_str());
            }
            let sent = std::time::Instant::now();
            let result = self.cancellable(builder.send()).await?;
            self.inner.metrics.api_latency(endpoint, sent.elapsed());
            let retry_in = match result {
                Ok(resp) if resp.status().is_success() => {
                    self.inner
                        .metrics
                        .api_request(endpoint, resp.status().as_u16());
                    return Ok(());
                }
                Ok(resp)
                    if resp.status().is_server_error()
                        && attempt < self.inner.retry.max_attempts =>
                {
                    self.inner
                        .metrics
                        .api_request(endpoint, resp.status().as_u16());
                    self.backoff(attempt)
                }
                Ok(resp) => {
                    self.inner
                        .metrics
                        .api_request(endpoint, resp.status().as_u16());
                    return Err(self.status_error(endpoint, resp).await);
                }
                Err(e) if attempt < self.inner.retry.max_attempts => {
                    self.inner.metrics.api_request(endpoint, 0);
                    tracing::debug!(endpoint, error = %redact::excerpt(&describe_transport(&e)), "upload failed, will retry");
                    self.backoff(attempt)
                }
                Err(e) => {
                    self.inner.metrics.api_request(endpoint, 0);
                    return Err(ApiError::transport(endpoint, describe_transport(&e)));
                }
            };
            self.cancellable(tokio::time::sleep(retry_in)).await?;
        }
    }

    fn url(&self, path: &str) -> Result<Url, ApiError> {
        // Paths are built by the endpoint modules with segments already encoded.
        let base = self.inner.api.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}{path}")).map_err(|e| ApiError::Decode {
            endpoint: "url",
            message: e.to_string(),
        })
    }

    /// Full-jitter exponential backoff.
    fn backoff(&self, attempt: u32) -> Duration {
        let p = &self.inner.retry;
        let cap = p
            .base_delay
            .saturating_mul(1 << attempt.min(16).saturating_sub(1))
            .min(p.max_delay);
        let ms = cap.as_millis().max(1) as u64;
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }

    async fn cancellable<F: Future>(&self, f: F) -> Result<F::Output, ApiError> {
        tokio::select! {
            biased;
            () = self.inner.shutdown.cancelled() => Err(ApiError::Cancelled),
            out = f => Ok(out),
        }
    }

    async fn read_body(
        &self,
        endpoint: &'static str,
        mut resp: reqwest::Response,
    ) -> Result<Vec<u8>, ApiError> {
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(ApiError::decode(
                endpoint,
                format!("body larger than {MAX_BODY} bytes"),
            ));
        }
        let mut body = Vec::new();
        loop {
            let chunk = self
                .cancellable(resp.chunk())
                .await?
                .map_err(|e| ApiError::transport(endpoint, describe_transport(&e)))?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > MAX_BODY {
                return Err(ApiError::decode(
                    endpoint,
                    format!("body larger than {MAX_BODY} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Keeps the 403 streaks of [`Inner::forbidden`]: `answer` is None for a success. The
    /// first 403 of a streak logs which permission the call needs, from the permissions
    /// table, as `check` words it; only a success ends the streak (a 5xx in between does not).
    fn forbidden_streak(&self, call: Option<permissions::Call>, answer: Option<&ApiError>) {
        let Some(call) = call else { return };
        let Ok(mut forbidden) = self.inner.forbidden.lock() else {
            return;
        };
        match answer {
            None => forbidden.retain(|c| *c != call),
            Some(err) if err.status() == Some(403) && !forbidden.contains(&call) => {
                forbidden.push(call);
                let needs_some = !permissions::entry(call).any_of.is_empty();
                if let Some(line) = permissions::explain_403(call, err, permissions::scope(call))
                    .filter(|_| needs_some)
                {
                    tracing::warn!("permission missing: {line}");
                }
            }
            Some(_) => {}
        }
    }

    /// The error for a non-2xx answer. Its body is text from the network: gateways and
    /// proxies echo the request's headers (the bearer token) into it, so code and message
    /// are redacted and capped before they can reach a log, `/readyz` or a command's output.
    async fn status_error(&self, endpoint: &'static str, resp: reqwest::Response) -> ApiError {
        let status = resp.status().as_u16();
        let body = self.read_body(endpoint, resp).await.unwrap_or_default();
        let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
        ApiError::Status {
            endpoint,
            status,
            code: parsed.code.map_or_else(
                || "error".to_owned(),
                |c| redact::cap(&redact::excerpt(&c), 80),
            ),
            message: redact::excerpt(
                &parsed
                    .message
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
            ),
        }
    }
}

/// A transport error without the URL (which reqwest includes) to keep messages short.
pub(crate) fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "connection dropped while reading the answer"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {detail}")
    }
}

/// Decodes an answer that must be a JSON object. serde would also read a struct from a
/// JSON array (fields by position); no answer the daemon reads is an array, so one is
/// refused rather than read positionally.
pub fn decode_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> serde_json::Result<T> {
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)?;
    serde_json::from_value(serde_json::Value::Object(map))
}

/// Retry-After in seconds (the form Genesys sends); HTTP dates are not used by Genesys.
pub fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let v = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    let secs: f64 = v.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3600.0)))
}

/// Whether a paged listing has another page after `page`: the answer's `pageCount` when
/// given, else a full page; never past `max_pages` (a server that keeps announcing more).
pub(crate) fn has_next_page(
    page: u32,
    page_count: Option<u32>,
    got: usize,
    page_size: u32,
    max_pages: u32,
) -> bool {
    let more = match page_count {
        Some(pc) => page < pc,
        None => got as u32 >= page_size,
    };
    more && got > 0 && page < max_pages
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = header::HeaderMap::new();
        h.insert(header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn a_429_body_names_its_limit_when_it_has_one() {
        let body = br#"{"message":"Rate limit exceeded the maximum. Retry the request in [22] seconds","code":"too.many.requests.retry.after","status":429,"limit":{"key":"user.rate.per.minute","namespace":"directory","value":180}}"#;
        let l = RateLimit::from_body(body).unwrap();
        assert_eq!(
            l.to_string(),
            "key user.rate.per.minute in namespace directory, value 180"
        );
        // Not guaranteed by Genesys: no limit, an empty one, or no JSON at all.
        assert_eq!(
            RateLimit::from_body(br#"{"code":"too.many.requests"}"#),
            None
        );
        assert_eq!(RateLimit::from_body(br#"{"limit":{}}"#), None);
        assert_eq!(RateLimit::from_body(b"<html>slow down</html>"), None);
        let l = RateLimit::from_body(br#"{"limit":{"key":"k","namespace":"n"}}"#).unwrap();
        assert_eq!(l.to_string(), "key k in namespace n");
    }

    #[test]
    fn long_messages_are_cut_on_char_boundaries() {
        let s = "ü".repeat(400);
        let t = redact::cap(&s, 301);
        assert!(t.ends_with('…'));
    }
}
