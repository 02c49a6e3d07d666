//! Prometheus metrics, all named `genesys_queue_sync_*`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The `result` label values of `rows_total`.
pub const ROW_RESULTS: &[&str] = &["written", "skipped", "deferred", "failed"];

/// Every metric the daemon exports; cheap to clone (the handles are shared).
#[derive(Clone)]
pub struct Metrics {
    registry: std::sync::Arc<Registry>,
    pub cycles: Family<Labels, Counter>,
    pub cycle_duration: Histogram,
    pub last_success: Gauge<f64, AtomicU64>,
    pub api_requests: Family<Labels, Counter>,
    pub rate_limited: Counter,
    pub retry_after_waited: Counter<f64, AtomicU64>,
    pub token_renewals: Counter,
    pub rows: Family<Labels, Counter>,
    pub skipped_ticks: Counter,
    pub queue_values: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("genesys_queue_sync");
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
        let queue_values = Family::<Labels, Gauge>::default();
        r.register(
            "queue_value",
            "Last value written per queue and column",
            queue_values.clone(),
        );
        // Every known label value starts at 0, so each series exists from the first scrape
        // (an empty family is not exposed at all) and `rate()` sees the first increment.
        for outcome in ["ok", "partial", "failed"] {
            let _ = cycles.get_or_create(&vec![("outcome", outcome.to_owned())]);
        }
        for result in ROW_RESULTS {
            let _ = rows.get_or_create(&vec![("result", (*result).to_owned())]);
        }
        Self {
            registry: std::sync::Arc::new(r),
            cycles,
            cycle_duration,
            last_success,
            api_requests,
            rate_limited,
            retry_after_waited,
            token_renewals,
            rows,
            skipped_ticks,
            queue_values,
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

    pub fn rows_inc(&self, result: &'static str, n: u64) {
        self.rows
            .get_or_create(&vec![("result", result.to_owned())])
            .inc_by(n);
    }

    pub fn cycle(&self, outcome: &'static str) {
        self.cycles
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub fn queue_value(&self, queue: &str, column: &str, value: i64) {
        self.queue_values
            .get_or_create(&vec![
                ("queue", queue.to_owned()),
                ("column", column.to_owned()),
            ])
            .set(value);
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
