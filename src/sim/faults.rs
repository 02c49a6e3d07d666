//! The pipeline every request goes through: body limit, request log, latency, scripted faults,
//! then (for `/api`) bearer authentication and the per-token rate limit.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::net::ConnHandle;
use super::routes::{self, ApiRequest, Payload, Reply};
use super::state::{ApiError, new_id};
use super::{FaultAction, LoggedRequest, Match, Shared, import, lock};

const LOGIN_PATH: &str = "/oauth/token";
const RATE_WINDOW: Duration = Duration::from_secs(60);
const API_BODY_LIMIT: usize = 1 << 20;
/// The upload bucket takes whole tables (5000 rows), far beyond the API's body limit.
const UPLOAD_BODY_LIMIT: usize = 64 << 20;
/// Reported as `inin-ratelimit-allowed` when the limit is switched off.
const UNLIMITED_ALLOWED: u32 = i32::MAX as u32;
const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const TOKEN_LEN: usize = 86;
/// A demo runs for hours; past this many entries the oldest tenth of the log is dropped.
const LOG_CAP: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Listener {
    /// Login + Platform API.
    Api,
    /// The bucket CSV imports are uploaded to.
    Uploads,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) shared: Arc<Shared>,
    pub(crate) listener: Listener,
}

struct Token {
    expires_at: Instant,
    revoked: bool,
    /// Arrival times of admitted requests in the last minute.
    window: VecDeque<Instant>,
}

/// Client credentials and issued tokens with their rate-limit windows.
pub(crate) struct Auth {
    client_id: String,
    client_secret: String,
    tokens: HashMap<String, Token>,
}

/// Rate-limit state reported in `inin-ratelimit-*` headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateHeaders {
    count: usize,
    allowed: u32,
    reset_secs: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    Unauthorized,
    Limited { retry_after: u64, rate: RateHeaders },
    Admitted { rate: RateHeaders },
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Auth {
    pub(crate) fn new(client_id: &str, client_secret: &str) -> Auth {
        Auth {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            tokens: HashMap::new(),
        }
    }

    pub(crate) fn client_id(&self) -> &str {
        &self.client_id
    }

    pub(crate) fn client_matches(&self, id: &str, secret: &str) -> bool {
        id == self.client_id && secret == self.client_secret
    }

    pub(crate) fn set_credentials(&mut self, id: &str, secret: &str) {
        id.clone_into(&mut self.client_id);
        secret.clone_into(&mut self.client_secret);
    }

    pub(crate) fn revoke_all(&mut self) {
        for t in self.tokens.values_mut() {
            t.revoked = true;
        }
    }

    pub(crate) fn revoke(&mut self, token: &str) {
        if let Some(t) = self.tokens.get_mut(token) {
            t.revoked = true;
        }
    }

    pub(crate) fn issue(&mut self, ttl_secs: u64) -> String {
        let now = Instant::now();
        // Dead tokens answer 401 whether or not they are remembered; forget them.
        self.tokens.retain(|_, t| !t.revoked && t.expires_at > now);
        let token: String = (0..TOKEN_LEN)
            .map(|_| {
                let i = rand::random_range(0..TOKEN_ALPHABET.len());
                char::from(TOKEN_ALPHABET.get(i).copied().unwrap_or(b'A'))
            })
            .collect();
        self.tokens.insert(
            token.clone(),
            Token {
                expires_at: now + Duration::from_secs(ttl_secs),
                revoked: false,
                window: VecDeque::new(),
            },
        );
        token
    }

    /// Authenticates a bearer token and applies its sliding one-minute window. Requests
    /// answered 429 do not consume budget, as in Genesys.
    pub(crate) fn admit(&mut self, token: Option<&str>, limit: u32, now: Instant) -> Admission {
        let Some(t) = token.and_then(|t| self.tokens.get_mut(t)) else {
            return Admission::Unauthorized;
        };
        if t.revoked || now >= t.expires_at {
            return Admission::Unauthorized;
        }
        while t.window.front().is_some_and(|f| *f + RATE_WINDOW <= now) {
            t.window.pop_front();
        }
        let allowed = if limit == 0 { UNLIMITED_ALLOWED } else { limit };
        let until_slot = |oldest: Option<&Instant>| {
            oldest.map_or(ceil_secs(RATE_WINDOW), |o| {
                ceil_secs((*o + RATE_WINDOW).saturating_duration_since(now)).max(1)
            })
        };
        if limit > 0 && t.window.len() >= limit as usize {
            let wait = until_slot(t.window.front());
            return Admission::Limited {
                retry_after: wait,
                rate: RateHeaders {
                    count: t.window.len(),
                    allowed,
                    reset_secs: wait,
                },
            };
        }
        t.window.push_back(now);
        Admission::Admitted {
            rate: RateHeaders {
                count: t.window.len(),
                allowed,
                reset_secs: until_slot(t.window.front()),
            },
        }
    }
}

/// Decodes standard or URL-safe base64, padding optional.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in s.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// `(client_id, client_secret)` from an HTTP Basic `Authorization` value.
pub(crate) fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(base64_decode(rest.trim())?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn fault_matches(m: &Match, method: &str, path: &str, raw_path: &str) -> bool {
    match m {
        Match::Any => true,
        Match::Login => path == LOGIN_PATH,
        Match::Path {
            method: want,
            contains,
        } => {
            want.is_none_or(|w| w.eq_ignore_ascii_case(method))
                && (path.contains(contains.as_str()) || raw_path.contains(contains.as_str()))
        }
    }
}

/// The first matching fault with uses left; uses one up unless it is unlimited.
fn take_fault(shared: &Shared, method: &str, path: &str, raw_path: &str) -> Option<FaultAction> {
    let mut faults = lock(&shared.faults);
    let f = faults
        .iter_mut()
        .find(|f| f.times > 0 && fault_matches(&f.matcher, method, path, raw_path))?;
    if f.times != u32::MAX {
        f.times -= 1;
    }
    Some(f.action.clone())
}

fn fault_reply(status: u16, retry_after: Option<u64>, login: bool) -> Reply {
    let (code, message) = match status {
        400 => (
            "bad.request",
            "The request could not be understood by the server due to malformed syntax.",
        ),
        401 => ("authentication.required", "Authentication failed"),
        403 => (
            "not.authorized",
            "You are not authorized to perform the requested action.",
        ),
        404 => ("not.found", "The requested resource was not found."),
        408 => (
            "request.timeout",
            "The client did not produce a request in time.",
        ),
        409 => ("conflict", "The request conflicts with the current state."),
        429 => ("too.many.requests", "Rate limit exceeded the maximum."),
        500 => (
            "internal.server.error",
            "The server encountered an unexpected condition which prevented it from fulfilling the request.",
        ),
        502 => ("bad.gateway", "Bad Gateway"),
        503 => (
            "service.unavailable",
            "Service Unavailable - The server is currently unavailable (because it is overloaded or down for maintenance).",
        ),
        504 => (
            "gateway.timeout",
            "The request timed out before the server could respond.",
        ),
        _ => ("simulated.fault", "Simulated fault"),
    };
    let reply = if login {
        let error = match status {
            400 => "invalid_request",
            401 => "invalid_client",
            429 => "too_many_requests",
            _ => "server_error",
        };
        Reply::json(
            status,
            json!({"error": error, "description": message, "error_description": message}),
        )
    } else {
        ApiError::new(status, code, message).into()
    };
    match retry_after {
        Some(s) => reply.with_header("Retry-After", s.to_string()),
        None => reply,
    }
}

fn with_rate(reply: Reply, rate: RateHeaders) -> Reply {
    reply
        .with_header("inin-ratelimit-count", rate.count.to_string())
        .with_header("inin-ratelimit-allowed", rate.allowed.to_string())
        .with_header("inin-ratelimit-reset", rate.reset_secs.to_string())
}

/// The normal answer, once faults had their say.
fn answer(app: &AppState, parts: &axum::http::request::Parts, path: &str, body: Bytes) -> Reply {
    let shared = &app.shared;
    if app.listener == Listener::Uploads {
        return import::upload(shared, &parts.method, path, &parts.headers, body.to_vec());
    }
    if path == LOGIN_PATH {
        return routes::login(shared, &parts.method, &parts.headers, &body);
    }
    if !path.starts_with("/api/") {
        return ApiError::not_found().into();
    }
    let token = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let limit = shared.cfg.rate_limit_per_minute;
    let admission = lock(&shared.auth).admit(token, limit, Instant::now());
    match admission {
        Admission::Unauthorized => {
            ApiError::new(401, "authentication.required", "Authentication failed").into()
        }
        Admission::Limited { retry_after, rate } => {
            let e = ApiError::new(
                429,
                "too.many.requests",
                format!("Rate limit exceeded the maximum. [{limit}] requests for [60] seconds"),
            );
            with_rate(Reply::from(e), rate).with_header("Retry-After", retry_after.to_string())
        }
        Admission::Admitted { rate } => {
            let req = ApiRequest {
                method: &parts.method,
                raw_path: parts.uri.path(),
                query: parts.uri.query().unwrap_or_default(),
                headers: &parts.headers,
                body: &body,
            };
            with_rate(routes::api(shared, &req), rate)
        }
    }
}

fn record(shared: &Shared, entry: LoggedRequest) {
    let mut log = lock(&shared.log);
    if log.len() >= LOG_CAP {
        log.drain(..LOG_CAP / 10);
    }
    log.push(entry);
}

fn into_response(reply: Reply, correlation: &str) -> (Response, u16) {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, bytes) = match reply.payload {
        Payload::Empty => (None, Vec::new()),
        Payload::Json(mut v) => {
            if status.as_u16() >= 400
                && let Value::Object(map) = &mut v
                && map.contains_key("code")
                && !map.contains_key("contextId")
            {
                map.insert(
                    "contextId".to_owned(),
                    Value::String(correlation.to_owned()),
                );
            }
            (
                Some("application/json"),
                serde_json::to_vec(&v).unwrap_or_default(),
            )
        }
        Payload::Text { content_type, body } => (Some(content_type), body.into_bytes()),
    };
    let mut resp = Response::new(Body::from(bytes));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    if let Some(ct) = content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    if let Ok(v) = HeaderValue::from_str(correlation) {
        headers.insert(HeaderName::from_static("inin-correlation-id"), v);
    }
    for (name, value) in reply.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(n, v);
        }
    }
    (resp, status.as_u16())
}

/// The single axum handler behind both listeners.
pub(crate) async fn handle(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    req: Request,
) -> Response {
    let at = Instant::now();
    let wall = chrono::Utc::now();
    let correlation = new_id();
    let (parts, body) = req.into_parts();
    let raw_path = parts.uri.path().to_owned();
    let path = percent_decode_str(&raw_path)
        .decode_utf8_lossy()
        .into_owned();
    let method = parts.method.as_str().to_owned();
    let limit = match app.listener {
        Listener::Api => API_BODY_LIMIT,
        Listener::Uploads => UPLOAD_BODY_LIMIT,
    };
    let (body, too_large) = match axum::body::to_bytes(body, limit).await {
        Ok(b) => (b, false),
        Err(_) => (Bytes::new(), true),
    };
    let mut entry = LoggedRequest {
        at,
        wall,
        method,
        path,
        raw_path,
        query: parts.uri.query().unwrap_or_default().to_owned(),
        status: 0,
        authorization: parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let shared = app.shared.clone();
    // hyper drops this handler when the client gives up on the request (its timeout) while
    // it waits here: log the abandoned request all the same, with status 0.
    let abandoned = LogIfAbandoned(Some((shared.clone(), entry.clone())));
    let reply = if too_large {
        ApiError::new(
            413,
            "request.entity.too.large",
            format!("The request body exceeds the maximum size of {limit} bytes."),
        )
        .into()
    } else {
        if !shared.cfg.latency.is_zero() {
            tokio::time::sleep(shared.cfg.latency).await;
        }
        match take_fault(&shared, &entry.method, &entry.path, &entry.raw_path) {
            Some(FaultAction::Drop) => {
                conn.kill();
                tracing::debug!(
                    method = %entry.method,
                    path = %entry.path,
                    peer = %conn.remote,
                    "sim: dropped connection"
                );
                abandoned.disarm();
                record(&shared, entry);
                // Never written: the killed connection fails the write and hyper closes it.
                return Response::new(Body::empty());
            }
            Some(FaultAction::Status {
                status,
                retry_after,
            }) => fault_reply(status, retry_after, entry.path == LOGIN_PATH),
            Some(FaultAction::Body(raw)) => Reply::text(200, "application/json", raw),
            Some(FaultAction::Reply {
                status,
                body,
                retry_after,
            }) => {
                let reply = Reply::text(status, "application/json", body);
                match retry_after {
                    Some(s) => reply.with_header("Retry-After", s.to_string()),
                    None => reply,
                }
            }
            Some(FaultAction::Delay(d)) => {
                tokio::time::sleep(d).await;
                answer(&app, &parts, &entry.path, body)
            }
            Some(FaultAction::SlowAnswer(d)) => {
                let reply = answer(&app, &parts, &entry.path, body);
                tokio::time::sleep(d).await;
                reply
            }
            None => answer(&app, &parts, &entry.path, body),
        }
    };
    let (response, status) = into_response(reply, &correlation);
    entry.status = status;
    tracing::debug!(method = %entry.method, path = %entry.path, status, "sim: request");
    abandoned.disarm();
    record(&shared, entry);
    response
}

/// Records its request when dropped armed: the handler was cancelled mid-request. Such a
/// request is never answered; it took effect only if it was past `answer` (a
/// `SlowAnswer`), not while it waited for latency or a `Delay`.
struct LogIfAbandoned(Option<(Arc<Shared>, LoggedRequest)>);

impl LogIfAbandoned {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for LogIfAbandoned {
    fn drop(&mut self) {
        if let Some((shared, entry)) = self.0.take() {
            tracing::debug!(method = %entry.method, path = %entry.path, "sim: request abandoned by the client");
            record(&shared, entry);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_auth_headers() {
        assert_eq!(base64_decode("YTpi").unwrap(), b"a:b");
        assert_eq!(base64_decode("YTpiYw==").unwrap(), b"a:bc");
        assert_eq!(base64_decode("YTpiYw").unwrap(), b"a:bc");
        assert!(base64_decode("Y*").is_none());
        assert_eq!(
            basic_credentials("Basic c2ltLWNsaWVudC1pZDpzaW0tY2xpZW50LXNlY3JldA=="),
            Some(("sim-client-id".to_owned(), "sim-client-secret".to_owned()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
    }

    #[test]
    fn sliding_window() {
        let mut auth = Auth::new("id", "secret");
        let tok = auth.issue(3600);
        let t0 = Instant::now();
        for i in 0..3u64 {
            let now = t0 + Duration::from_secs(i * 10);
            assert!(matches!(
                auth.admit(Some(&tok), 3, now),
                Admission::Admitted { .. }
            ));
        }
        // Window full at t=25: the first slot frees at t=60.
        let now = t0 + Duration::from_secs(25);
        match auth.admit(Some(&tok), 3, now) {
            Admission::Limited { retry_after, .. } => assert_eq!(retry_after, 35),
            other => panic!("{other:?}"),
        }
        // 429s consumed nothing: at t=60 exactly one slot is free.
        let now = t0 + Duration::from_secs(60);
        assert!(matches!(
            auth.admit(Some(&tok), 3, now),
            Admission::Admitted {
                rate: RateHeaders { count: 3, .. }
            }
        ));
        assert!(matches!(
            auth.admit(Some(&tok), 3, now),
            Admission::Limited {
                retry_after: 10,
                ..
            }
        ));
        // Unlimited.
        for _ in 0..10 {
            assert!(matches!(
                auth.admit(Some(&tok), 0, now),
                Admission::Admitted { .. }
            ));
        }
        // Expiry and revocation.
        assert_eq!(
            auth.admit(Some(&tok), 0, t0 + Duration::from_secs(3600)),
            Admission::Unauthorized
        );
        let tok2 = auth.issue(3600);
        auth.revoke_all();
        assert_eq!(auth.admit(Some(&tok2), 0, now), Admission::Unauthorized);
        assert_eq!(auth.admit(Some("nope"), 0, now), Admission::Unauthorized);
        assert_eq!(auth.admit(None, 0, now), Admission::Unauthorized);
    }
}
