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

use crate::cycle::CycleReport;
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

    pub fn cycle_started(&self) {
        self.with(|i| i.last_cycle_start = Some(Instant::now()));
    }

    pub fn set_logged_in(&self, v: bool) {
        self.with(|i| i.logged_in = v);
    }

    pub fn set_table_ok(&self, v: bool) {
        self.with(|i| i.table_ok = v);
    }

    pub fn cycle_finished(&self, r: &CycleReport) {
        if r.dry_run {
            return;
        }
        let summary = r.summary();
        self.with(|i| {
            // Rows skipped because their values did not change are fresh too.
            i.last_ok_queues = if r.error.is_some() { 0 } else { r.fresh() };
            i.last_summary = summary.clone();
        });
        notify(&[sd_notify::NotifyState::Status(&summary)]);
    }

    /// When the schedule has gone quiet for three periods, how long it has been.
    pub fn stalled_for(&self) -> Option<Duration> {
        self.with(|i| {
            let since = i.last_cycle_start.unwrap_or(i.born).elapsed();
            (since > i.period * 3).then_some(since)
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
            format!("schedule stalled: no cycle started for {}s\n", d.as_secs()),
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

async fn metrics(State(h): State<Health>) -> Response {
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
        let r = CycleReport {
            written: 2,
            ..CycleReport::default()
        };
        h.cycle_finished(&r);
        assert_eq!(h.readiness(), Readiness::Ready);
    }
}
