//! Health: liveness, readiness, `/metrics`, and systemd notifications.
//!
//! Liveness is about the schedule only (a cycle started recently); it never depends on
//! Genesys being up, so an outage does not get the pod restarted in a loop. Readiness
//! says the daemon is actually keeping the table fresh.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// Shared health state; clone freely.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Mutex<Inner>>,
    metrics: Metrics,
}

struct Inner {
    period: Duration,
    born: Instant,
    last_cycle_start: Option<Instant>,
    /// The last tick skipped because a cycle was still running: the scheduler is alive.
    last_skipped_tick: Option<Instant>,
    /// When a reloaded schedule took over: its quiet time starts then.
    rescheduled: Option<Instant>,
    /// When the cycle now running started; None between cycles.
    in_flight_since: Option<Instant>,
    logged_in: bool,
    table_ok: bool,
    last_ok_queues: usize,
    last_summary: String,
}

/// The readiness verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    NotReady(&'static str),
}

impl Health {
    pub fn new(period: Duration, metrics: Metrics) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                period,
                born: Instant::now(),
                last_cycle_start: None,
                last_skipped_tick: None,
                rescheduled: None,
                in_flight_since: None,
                logged_in: false,
                table_ok: false,
                last_ok_queues: 0,
                last_summary: "starting".into(),
            })),
            metrics,
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> Option<R> {
        self.inner.lock().ok().map(|mut g| f(&mut g))
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A reloaded schedule: the stall and hang rules follow the new period, counted from
    /// now (a shorter period must not make the wait for the old schedule's tick a stall).
    pub fn set_period(&self, period: Duration) {
        self.with(|i| {
            i.period = period;
            i.rescheduled = Some(Instant::now());
        });
    }

    pub fn cycle_started(&self) {
        let now = Instant::now();
        self.with(|i| {
            i.last_cycle_start = Some(now);
            i.in_flight_since = Some(now);
        });
    }

    /// The cycle task ended (finished, failed or panicked).
    pub fn cycle_ended(&self) {
        self.with(|i| i.in_flight_since = None);
    }

    /// A tick arrived while a cycle was still running: the scheduler is alive even though
    /// no cycle started.
    pub fn tick_skipped(&self) {
        self.with(|i| i.last_skipped_tick = Some(Instant::now()));
    }

    pub fn set_logged_in(&self, v: bool) {
        self.with(|i| i.logged_in = v);
    }

    pub fn set_table_ok(&self, v: bool) {
        self.with(|i| {
            i.table_ok = v;
            if !v {
                // What earlier cycles wrote is gone with the table: ready again only once a
                // cycle has written into the table found next.
                i.last_ok_queues = 0;
            }
        });
    }

    /// A (not dry-run) cycle ended with `fresh` queues whose row holds their current
    /// values (rows skipped because their values did not change count as fresh; 0 when
    /// the cycle failed), summed up by `summary`.
    pub fn cycle_finished(&self, fresh: usize, summary: &str) {
        // The summary quotes errors, which quote answers: shown on /readyz and in the
        // systemd status, so scrubbed like a log line.
        let summary = crate::redact::scrub(summary);
        self.with(|i| {
            // Nothing is fresh in a table the cycle found gone.
            i.last_ok_queues = if i.table_ok { fresh } else { 0 };
            i.last_summary = summary.clone();
        });
        notify(&[sd_notify::NotifyState::Status(&summary)]);
    }

    /// How long the schedule has been stalled, if it is: no cycle started and no tick
    /// arrived for three periods (a stuck scheduler), or one cycle has run for longer than
    /// [`hung_after`] (a stuck cycle). A cycle that is merely slow because Genesys is slow
    /// is not a stall: its ticks are skipped, and liveness never depends on Genesys.
    pub fn stalled_for(&self) -> Option<Duration> {
        self.with(|i| {
            let active = [i.last_cycle_start, i.last_skipped_tick, i.rescheduled]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(i.born);
            let quiet = active.elapsed();
            if quiet > i.period * 3 {
                return Some(quiet);
            }
            let running = i.in_flight_since?.elapsed();
            (running > hung_after(i.period)).then_some(running)
        })
        .flatten()
    }

    pub fn readiness(&self) -> Readiness {
        self.with(|i| {
            if !i.logged_in {
                Readiness::NotReady("not logged in to Genesys Cloud")
            } else if !i.table_ok {
                Readiness::NotReady("data table not found or its schema does not fit")
            } else if i.last_ok_queues == 0 {
                Readiness::NotReady("the last cycle kept no queue's row fresh")
            } else {
                Readiness::Ready
            }
        })
        .unwrap_or(Readiness::NotReady("health state unavailable"))
    }

    pub fn last_summary(&self) -> String {
        self.with(|i| i.last_summary.clone()).unwrap_or_default()
    }
}

/// How long one cycle may run before the daemon counts as stuck: ten periods, at least
/// 15 minutes (far beyond any cycle that is only waiting on timeouts and Retry-After).
pub fn hung_after(period: Duration) -> Duration {
    (period * 10).max(Duration::from_secs(15 * 60))
}

/// Sends a systemd notification; does nothing where NOTIFY_SOCKET is unset.
pub fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(states) {
            tracing::debug!(error = %e, "systemd notify failed");
        }
    }
}

/// Pets the systemd watchdog while the schedule is alive; stops petting when it stalls,
/// so systemd restarts a stuck daemon even if the stall check itself were stuck.
pub async fn watchdog(health: Health, shutdown: CancellationToken) {
    let Some(timeout) = sd_notify::watchdog_enabled() else {
        return;
    };
    let every = (timeout / 2).max(Duration::from_millis(100));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if health.stalled_for().is_none() {
            notify(&[sd_notify::NotifyState::Watchdog]);
        }
    }
}

/// Binds the health listener (so a bad address fails at start, before READY=1).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves /healthz, /readyz and /metrics until shutdown.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(landing))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn healthz(State(h): State<Health>) -> Response {
    match h.stalled_for() {
        None => (StatusCode::OK, "ok\n").into_response(),
        Some(d) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "schedule stalled for {}s: no cycle started and no tick arrived, or a cycle hung\n",
                d.as_secs()
            ),
        )
            .into_response(),
    }
}

async fn readyz(State(h): State<Health>) -> Response {
    match h.readiness() {
        Readiness::Ready => (
            StatusCode::OK,
            axum::Json(json!({"ready": true, "last_cycle": h.last_summary()})),
        )
            .into_response(),
        Readiness::NotReady(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ready": false, "reason": reason, "last_cycle": h.last_summary()})),
        )
            .into_response(),
    }
}

/// A page for a person who opens the port in a browser: what runs, and the endpoints.
async fn landing(State(h): State<Health>) -> Response {
    let ready = match h.readiness() {
        Readiness::Ready => "ready".to_owned(),
        Readiness::NotReady(reason) => format!("not ready: {reason}"),
    };
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>genesys-queue-sync</title></head>\n\
         <body><h1>genesys-queue-sync {version}</h1>\n\
         <p>revision {revision}, built {date}. {ready}. Last cycle: {summary}</p>\n<ul>\n\
         <li><a href=\"/metrics\">/metrics</a>: Prometheus metrics</li>\n\
         <li><a href=\"/healthz\">/healthz</a>: liveness (the schedule runs)</li>\n\
         <li><a href=\"/readyz\">/readyz</a>: readiness (the table is kept fresh)</li>\n\
         </ul></body></html>\n",
        version = crate::version::VERSION,
        revision = crate::version::REVISION,
        date = crate::version::BUILD_DATE,
        ready = html_escape(&ready),
        summary = html_escape(&h.last_summary()),
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn metrics(State(h): State<Health>) -> Response {
    // The gauge follows the very rule /readyz answers with, evaluated at scrape time.
    h.metrics
        .set_ready(matches!(h.readiness(), Readiness::Ready));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn stall_is_three_periods_without_a_cycle() {
        let h = Health::new(Duration::from_secs(60), Metrics::new());
        assert_eq!(h.stalled_for(), None);
        tokio::time::advance(Duration::from_secs(170)).await;
        h.cycle_started();
        tokio::time::advance(Duration::from_secs(179)).await;
        assert_eq!(h.stalled_for(), None);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(h.stalled_for().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_cycle_whose_ticks_are_skipped_is_not_a_stall_but_a_hung_one_is() {
        let h = Health::new(Duration::from_secs(60), Metrics::new());
        h.cycle_started();
        for _ in 0..10 {
            tokio::time::advance(Duration::from_secs(60)).await;
            h.tick_skipped();
            assert_eq!(h.stalled_for(), None, "ticks keep arriving");
        }
        h.cycle_ended();
        h.cycle_started();
        for _ in 0..15 {
            tokio::time::advance(Duration::from_secs(60)).await;
            h.tick_skipped();
        }
        assert_eq!(h.stalled_for(), None, "15 min: still within hung_after");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(h.stalled_for().is_some(), "one cycle for over 15 min");
        h.cycle_ended();
        assert_eq!(h.stalled_for(), None);
    }

    #[test]
    fn readiness_needs_login_table_and_a_written_queue() {
        let h = Health::new(Duration::from_secs(60), Metrics::new());
        assert_eq!(
            h.readiness(),
            Readiness::NotReady("not logged in to Genesys Cloud")
        );
        h.set_logged_in(true);
        h.set_table_ok(true);
        assert!(matches!(h.readiness(), Readiness::NotReady(_)));
        h.cycle_finished(2, "2 written");
        assert_eq!(h.readiness(), Readiness::Ready);
        // A failed cycle keeps no row fresh.
        h.cycle_finished(0, "cycle failed");
        assert!(matches!(h.readiness(), Readiness::NotReady(r) if r.contains("fresh")));
        // Unchanged rows that were skipped are fresh: still ready (the caller counts them).
        h.cycle_finished(2, "2 unchanged");
        assert_eq!(h.readiness(), Readiness::Ready);
        // The table is lost: not ready, and finding a table again is not enough until a
        // cycle has written into it.
        h.set_table_ok(false);
        h.cycle_finished(2, "2 unchanged");
        assert!(matches!(h.readiness(), Readiness::NotReady(r) if r.contains("table")));
        h.set_table_ok(true);
        assert!(matches!(h.readiness(), Readiness::NotReady(r) if r.contains("fresh")));
        h.cycle_finished(2, "2 written");
        assert_eq!(h.readiness(), Readiness::Ready);
    }
}
