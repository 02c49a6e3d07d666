//! The pipeline every request goes through: body limit, request log, latency, scripted faults,
//! then (for `/api`) bearer authentication and the per-token rate limit.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::auth::{Admission, RateHeaders, bearer_token};
use crate::net::ConnHandle;
use crate::routes::{self, ApiRequest, Payload, Reply};
use crate::tables::import;
use crate::wire::{ApiError, new_id};
use crate::{Shared, lock};

/// A scripted misbehaviour. Faults are checked in injection order; the first matching fault
/// with `times > 0` applies and uses up one of its times.
#[derive(Clone, Debug)]
pub struct Fault {
    pub matcher: Match,
    pub action: FaultAction,
    /// How many matching requests it applies to; `u32::MAX` = until cleared.
    pub times: u32,
}

#[derive(Clone, Debug)]
pub enum Match {
    /// Every request, on both listeners (API and uploads).
    Any,
    /// `POST /oauth/token`.
    Login,
    /// Requests whose path (before `?`, raw or percent-decoded) contains `contains`, and whose
    /// method equals `method` when given.
    Path {
        method: Option<&'static str>,
        contains: String,
    },
}

#[derive(Clone, Debug)]
pub enum FaultAction {
    /// Answer with this status and an ErrorBody; `retry_after` sets `Retry-After` (seconds).
    Status {
        status: u16,
        retry_after: Option<u64>,
    },
    /// Wait, then answer normally. A client that gives up meanwhile cancels the request: it
    /// takes no effect (logged with status 0).
    Delay(Duration),
    /// Answer normally (the request takes effect), then hold the response back this long:
    /// past the client's timeout, a write that landed although the client saw it fail.
    SlowAnswer(Duration),
    /// Close the connection without an HTTP response (logged with status 0).
    Drop,
    /// 200 with this raw body.
    Body(String),
    /// Any status with this raw JSON body (and `Retry-After` when given): for answers the
    /// canned ones cannot give, such as the login's 400 `invalid_request` "rate limit
    /// exceeded".
    Reply {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Answer `status` with an error body quoting every request header, the
    /// `Authorization` header included, as some gateways and proxies do.
    EchoHeaders { status: u16 },
    /// Answer normally, then rewrite the JSON answer: for answers that are plausible but
    /// wrong (a page answered 200 but empty, a `total` that disagrees with the entities, a
    /// queue left out of an observation answer). The rewrite gets the query string.
    Rewrite(Rewrite),
    /// Answer normally, then delete this queue: a queue deleted between two page
    /// requests of a listing shifts the next page by one (offset paging is no snapshot).
    DeleteQueueAfterAnswer(String),
}

/// A rewrite of a JSON answer, given the request's query string.
#[derive(Clone)]
pub struct Rewrite(Arc<RewriteFn>);

type RewriteFn = dyn Fn(&str, &mut Value) + Send + Sync;

impl Rewrite {
    pub fn new(f: impl Fn(&str, &mut Value) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for Rewrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rewrite(..)")
    }
}

/// One request as the simulator saw it, faulted ones included.
#[derive(Clone, Debug)]
pub struct LoggedRequest {
    /// When it arrived.
    pub at: tokio::time::Instant,
    pub wall: chrono::DateTime<chrono::Utc>,
    pub method: String,
    /// Percent-decoded path.
    pub path: String,
    /// Path as sent.
    pub raw_path: String,
    pub query: String,
    /// 0 when the connection was dropped without a response, or when the client gave up
    /// (closed the connection) before the answer was ready.
    pub status: u16,
    pub authorization: Option<String>,
    pub body: String,
}

const LOGIN_PATH: &str = "/oauth/token";
const API_BODY_LIMIT: usize = 1 << 20;
/// The upload bucket takes whole tables (5000 rows), far beyond the API's body limit.
const UPLOAD_BODY_LIMIT: usize = 64 << 20;
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
        429 => (
            "too.many.requests.retry.after",
            "Rate limit exceeded the maximum. Retry the request in a few seconds",
        ),
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

/// The `inin-ratelimit-*` headers, only when a test turned the legacy headers on: Genesys
/// removed them in June 2021.
fn with_rate(reply: Reply, rate: RateHeaders, legacy: bool) -> Reply {
    if !legacy {
        return reply;
    }
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
    let (admission, legacy) = {
        let mut auth = lock(&shared.auth);
        (
            auth.admit(token, limit, Instant::now()),
            auth.legacy_headers,
        )
    };
    match admission {
        Admission::Unauthorized => {
            ApiError::new(401, "authentication.required", "Authentication failed").into()
        }
        Admission::Limited { retry_after, rate } => {
            // The normalized 429 (since 2021) with the limit it names (since mid-2023).
            // The key is Genesys' name of the per-token limit; the namespace is an
            // assumption (Genesys' example names `directory` for a directory limit).
            let body = json!({
                "message": format!("Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"),
                "code": "too.many.requests.retry.after",
                "status": 429,
                "details": [],
                "errors": [],
                "limit": {
                    "key": "client.credentials.token.rate.per.minute",
                    "namespace": "platform.api",
                    "value": limit,
                },
            });
            with_rate(Reply::json(429, body), rate, legacy)
                .with_header("Retry-After", retry_after.to_string())
        }
        Admission::Admitted { rate } => {
            let req = ApiRequest {
                method: &parts.method,
                raw_path: parts.uri.path(),
                query: parts.uri.query().unwrap_or_default(),
                headers: &parts.headers,
                body: &body,
            };
            with_rate(routes::api(shared, &req), rate, legacy)
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
            Some(FaultAction::EchoHeaders { status }) => {
                let echoed: Vec<String> = parts
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
                    .collect();
                let e = ApiError::new(
                    status,
                    "bad.gateway",
                    format!(
                        "upstream request failed; request was {} {} with headers {{{}}}",
                        entry.method,
                        entry.path,
                        echoed.join(", ")
                    ),
                );
                e.into()
            }
            Some(FaultAction::Rewrite(f)) => {
                let mut reply = answer(&app, &parts, &entry.path, body);
                if let Payload::Json(v) = &mut reply.payload {
                    (f.0)(&entry.query, v);
                }
                reply
            }
            Some(FaultAction::DeleteQueueAfterAnswer(id)) => {
                let reply = answer(&app, &parts, &entry.path, body);
                lock(&shared.org).delete_queue(&id);
                reply
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
