//! Prometheus metrics: the daemon's own, named `genesys_queue_sync_*`, and the standard
//! `process_*` family (memory, CPU, start time, file descriptors) read from /proc at
//! each scrape (`process`); the per-queue gauges are in `queues`.

mod process;
mod queues;

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use process::ProcessCollector;
pub use queues::QueueGauges;

type Labels = Vec<(&'static str, String)>;

/// The `result` label values of `rows_total`.
pub const ROW_RESULTS: &[&str] = &["written", "skipped", "deferred", "failed"];

/// Upper bounds of the API latency buckets, in seconds: Genesys answers in tens to
/// hundreds of milliseconds; the top buckets catch the request timeout (10 s default).
const API_LATENCY_BUCKETS: [f64; 10] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

type HistogramFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn api_latency_histogram() -> Histogram {
    Histogram::new(API_LATENCY_BUCKETS)
}

/// Every metric the daemon exports; cheap to clone (the handles are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: std::sync::Arc<Registry>,
    pub build_info: Family<Labels, Gauge>,
    pub ready: Gauge,
    pub api_request_duration: HistogramFamily,
    pub cycles: Family<Labels, Counter>,
    pub cycle_duration: Histogram,
    pub last_success: Gauge<f64, AtomicU64>,
    pub api_requests: Family<Labels, Counter>,
    pub rate_limited: Counter,
    pub retry_after_waited: Counter<f64, AtomicU64>,
    pub token_renewals: Counter,
    pub rows: Family<Labels, Counter>,
    pub skipped_ticks: Counter,
    pub other_writer_heartbeats: Counter,
    pub queues: QueueGauges,
    pub config_reloads: Family<Labels, Counter>,
    pub push: crate::push::metrics::PushMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(ProcessCollector));
        let r = root.sub_registry_with_prefix("genesys_queue_sync");
        let build_info = Family::<Labels, Gauge>::default();
        r.register(
            "build_info",
            "Always 1; the labels say which build runs (version, git revision, build date)",
            build_info.clone(),
        );
        build_info
            .get_or_create(&vec![
                ("version", crate::version::VERSION.to_owned()),
                ("revision", crate::version::REVISION.to_owned()),
                ("build_date", crate::version::BUILD_DATE.to_owned()),
            ])
            .set(1);
        let ready = Gauge::default();
        r.register(
            "ready",
            "1 when /readyz answers 200 (logged in, table fits, the last cycle kept rows fresh), else 0",
            ready.clone(),
        );
        let api_request_duration: HistogramFamily =
            Family::new_with_constructor(api_latency_histogram);
        r.register_with_unit(
            "api_request_duration",
            "Genesys Cloud API request latency by endpoint, from sending to the answer's headers (each attempt)",
            Unit::Seconds,
            api_request_duration.clone(),
        );
        let cycles = Family::<Labels, Counter>::default();
        r.register(
            "cycles",
            "Sync cycles by outcome (ok, partial, failed)",
            cycles.clone(),
        );
        let cycle_duration =
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]);
        r.register_with_unit(
            "cycle_duration",
            "Wall time of one sync cycle",
            prometheus_client::registry::Unit::Seconds,
            cycle_duration.clone(),
        );
        let last_success = Gauge::<f64, AtomicU64>::default();
        r.register_with_unit(
            "last_success_timestamp",
            "Unix time of the end of the last cycle that kept every queue's row fresh (outcome ok)",
            prometheus_client::registry::Unit::Seconds,
            last_success.clone(),
        );
        let api_requests = Family::<Labels, Counter>::default();
        r.register(
            "api_requests",
            "Genesys Cloud API requests by endpoint and HTTP status",
            api_requests.clone(),
        );
        let rate_limited = Counter::default();
        r.register("rate_limited", "429 answers received", rate_limited.clone());
        let retry_after_waited = Counter::<f64, AtomicU64>::default();
        r.register_with_unit(
            "retry_after_waited",
            "Time spent waiting as told by Retry-After",
            prometheus_client::registry::Unit::Seconds,
            retry_after_waited.clone(),
        );
        let token_renewals = Counter::default();
        r.register(
            "token_renewals",
            "OAuth tokens obtained",
            token_renewals.clone(),
        );
        let rows = Family::<Labels, Counter>::default();
        r.register(
            "rows",
            "Data table rows by result (written, skipped, deferred, failed)",
            rows.clone(),
        );
        let skipped_ticks = Counter::default();
        r.register(
            "skipped_ticks",
            "Schedule ticks skipped because a cycle was still running",
            skipped_ticks.clone(),
        );
        let other_writer_heartbeats = Counter::default();
        r.register(
            "other_writer_heartbeats",
            "Cycles whose read-back of the heartbeat row found another writer's heartbeat (two daemons on one table)",
            other_writer_heartbeats.clone(),
        );
        let queues = QueueGauges::register(r);
        let config_reloads = Family::<Labels, Counter>::default();
        r.register(
            "config_reloads",
            "Config reloads (SIGHUP) by result: applied, or failed (the previous config stays)",
            config_reloads.clone(),
        );
        for result in ["applied", "failed"] {
            let _ = config_reloads.get_or_create(&vec![("result", result.to_owned())]);
        }
        // Every known label value starts at 0, so each series exists from the first scrape
        // (an empty family is not exposed at all) and `rate()` sees the first increment.
        for outcome in ["ok", "partial", "failed"] {
            let _ = cycles.get_or_create(&vec![("outcome", outcome.to_owned())]);
        }
        for result in ROW_RESULTS {
            let _ = rows.get_or_create(&vec![("result", (*result).to_owned())]);
        }
        let push = crate::push::metrics::PushMetrics::register(r);
        Self {
            registry: std::sync::Arc::new(root),
            build_info,
            ready,
            api_request_duration,
            cycles,
            cycle_duration,
            last_success,
            api_requests,
            rate_limited,
            retry_after_waited,
            token_renewals,
            rows,
            skipped_ticks,
            other_writer_heartbeats,
            queues,
            config_reloads,
            push,
        }
    }

    pub fn api_request(&self, endpoint: &'static str, status: u16) {
        let status = if status == 0 {
            "error".to_owned()
        } else {
            status.to_string()
        };
        self.api_requests
            .get_or_create(&vec![("endpoint", endpoint.to_owned()), ("status", status)])
            .inc();
    }

    /// One attempt's latency, whatever its outcome (transport errors included).
    pub fn api_latency(&self, endpoint: &'static str, elapsed: Duration) {
        self.api_request_duration
            .get_or_create(&vec![("endpoint", endpoint.to_owned())])
            .observe(elapsed.as_secs_f64());
    }

    pub fn rows_inc(&self, result: &'static str, n: u64) {
        self.rows
            .get_or_create(&vec![("result", result.to_owned())])
            .inc_by(n);
    }

    /// One config reload (SIGHUP), applied or refused.
    pub fn config_reload(&self, ok: bool) {
        let result = if ok { "applied" } else { "failed" };
        self.config_reloads
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }

    pub fn cycle(&self, outcome: &'static str) {
        self.cycles
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// Sets the `ready` gauge (the scrape handler does, from the /readyz verdict).
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
