//! Prometheus metrics: the daemon's own, named `genesys_queue_sync_*`, and the standard
//! `process_*` family (memory, CPU, start time, file descriptors) read from /proc at
//! each scrape.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

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

/// The columns one queue's values were observed under: (unit, column name) in order.
/// Shared between queues (one allocation per set of columns, not per queue).
type ColumnSet = std::sync::Arc<[(&'static str, String)]>;

/// One queue's last observed values, and the columns they belong to.
#[derive(Debug)]
struct QueueValues {
    /// The `queue` label: the name, scrubbed of anything shaped like a secret.
    label: String,
    columns: ColumnSet,
    values: Vec<i64>,
}

#[derive(Debug, Default)]
struct QueueTable {
    /// By queue name.
    queues: BTreeMap<String, QueueValues>,
    /// The column set last seen, so queues observed under the same columns share it.
    columns: Option<ColumnSet>,
}

/// The per-queue gauges: one family per meaning, as the column registry gives each
/// column's unit (`queue_agents`, `queue_interactions`, `queue_seconds`), each series
/// labelled `queue` (its name) and `column`. A queue's series go when it leaves the
/// selection or is renamed (its old name's series), and a column's when the columns change.
///
/// They are rendered at scrape time from each queue's last values (a custom collector):
/// at 5,000 queues and 13 columns that is 5,000 small vectors of numbers instead of
/// 65,000 gauge series, each with its own label strings, kept twice (in the families and
/// in the list of what to remove).
#[derive(Clone, Debug, Default)]
pub struct QueueGauges {
    table: std::sync::Arc<std::sync::Mutex<QueueTable>>,
}

/// The three families: (unit as the column registry names it, metric name, help, unit).
const QUEUE_FAMILIES: [(&str, &str, &str, Option<Unit>); 3] = [
    (
        "agents",
        "queue_agents",
        "Agents per queue and column, as last observed (columns counting agents)",
        None,
    ),
    (
        "interactions",
        "queue_interactions",
        "Interactions per queue and column, as last observed (columns counting interactions)",
        None,
    ),
    (
        "seconds",
        "queue",
        "Durations per queue and column, as last observed (columns in seconds, e.g. the oldest waiting interaction)",
        Some(Unit::Seconds),
    ),
];

/// The family of a column unit's name (`Unit::as_str` of the column registry: "agents",
/// "interactions", "seconds"; the registry is not imported here, so the metrics stay a
/// leaf of the module graph); anything else counts interactions.
fn family_of(unit: &str) -> &'static str {
    match unit {
        "agents" => "agents",
        "seconds" => "seconds",
        _ => "interactions",
    }
}

impl QueueGauges {
    fn register(r: &mut Registry) -> Self {
        let gauges = Self::default();
        r.register_collector(Box::new(gauges.clone()));
        gauges
    }

    /// One queue's values, column by column; series of columns it no longer has go.
    pub fn set(&self, queue: &str, values: impl IntoIterator<Item = (&'static str, String, i64)>) {
        let (columns, values): (Vec<(&'static str, String)>, Vec<i64>) = values
            .into_iter()
            .map(|(unit, column, v)| ((family_of(unit), column), v))
            .unzip();
        let Ok(mut t) = self.table.lock() else {
            return;
        };
        let columns: ColumnSet = match &t.columns {
            Some(c) if **c == *columns => c.clone(),
            _ => {
                let c: ColumnSet = columns.into();
                t.columns = Some(c.clone());
                c
            }
        };
        match t.queues.get_mut(queue) {
            Some(q) => {
                q.columns = columns;
                q.values = values;
            }
            None => {
                // A label is exported as is: never let a secret ride on a queue name.
                let label = crate::redact::scrub(queue);
                t.queues.insert(
                    queue.to_owned(),
                    QueueValues {
                        label,
                        columns,
                        values,
                    },
                );
            }
        }
    }

    /// Removes every series of queues not in `keep` (by name).
    pub fn retain(&self, keep: &std::collections::BTreeSet<&str>) {
        if let Ok(mut t) = self.table.lock() {
            t.queues.retain(|q, _| keep.contains(q.as_str()));
        }
    }

    /// Removes every per-queue series (`[http] queue_metrics = false`).
    pub fn clear(&self) {
        self.retain(&std::collections::BTreeSet::new());
    }

    /// Series exported now, over the three families.
    pub fn series(&self) -> usize {
        self.table
            .lock()
            .map_or(0, |t| t.queues.values().map(|q| q.values.len()).sum())
    }
}

impl Collector for QueueGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(t) = self.table.lock() else {
            return Ok(());
        };
        for (family, name, help, unit) in &QUEUE_FAMILIES {
            let mut series = t.queues.values().flat_map(|q| {
                q.columns
                    .iter()
                    .zip(&q.values)
                    .filter(|((u, _), _)| u == family)
                    .map(move |((_, column), v)| (q.label.as_str(), column.as_str(), *v))
            });
            // A family without series is not exposed (as an empty family is not).
            let Some(first) = series.next() else {
                continue;
            };
            let mut metric =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for (queue, column, v) in std::iter::once(first).chain(series) {
                let labels = [("queue", queue), ("column", column)];
                ConstGauge::new(v).encode(metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

/// The `process_*` metrics every Prometheus client library exports, read from /proc at
/// each scrape (so they cost nothing between scrapes). A value /proc cannot give is left
/// out rather than reported as 0.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(me) = procfs::process::Process::myself() else {
            return Ok(());
        };
        let mut gauge = |name: &str, help: &str, unit: Option<&Unit>, v: f64| {
            let g = ConstGauge::new(v);
            let m = encoder.encode_descriptor(name, help, unit, g.metric_type())?;
            g.encode(m)
        };
        let mut cpu_seconds = None;
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second().max(1) as f64;
            gauge(
                "process_resident_memory",
                "Resident memory size",
                Some(&Unit::Bytes),
                (stat.rss * procfs::page_size()) as f64,
            )?;
            gauge(
                "process_virtual_memory",
                "Virtual memory size",
                Some(&Unit::Bytes),
                stat.vsize as f64,
            )?;
            if let Ok(boot) = procfs::boot_time_secs() {
                gauge(
                    "process_start_time",
                    "Start time of the process since the Unix epoch",
                    Some(&Unit::Seconds),
                    boot as f64 + stat.starttime as f64 / ticks,
                )?;
            }
            cpu_seconds = Some((stat.utime + stat.stime) as f64 / ticks);
        }
        if let Ok(n) = me.fd_count() {
            gauge(
                "process_open_fds",
                "Number of open file descriptors",
                None,
                n as f64,
            )?;
        }
        if let Ok(limits) = me.limits() {
            if let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit {
                gauge(
                    "process_max_fds",
                    "Maximum number of open file descriptors",
                    None,
                    max as f64,
                )?;
            }
        }
        if let Some(secs) = cpu_seconds {
            let cpu = ConstCounter::new(secs);
            let m = encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?;
            cpu.encode(m)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The value of the one sample of `name` (no labels, or the labels given).
    fn sample(text: &str, name: &str) -> Option<f64> {
        text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
            let (n, v) = l.rsplit_once(' ')?;
            (n == name || n.starts_with(&format!("{name}{{"))).then(|| v.parse().ok())?
        })
    }

    #[test]
    fn build_info_names_version_and_revision() {
        let text = Metrics::new().encode();
        let line = text
            .lines()
            .find(|l| l.starts_with("genesys_queue_sync_build_info{"))
            .unwrap();
        assert!(
            line.contains(&format!("version=\"{}\"", crate::version::VERSION)),
            "{line}"
        );
        assert!(
            line.contains(&format!("revision=\"{}\"", crate::version::REVISION)),
            "{line}"
        );
        assert!(line.ends_with(" 1"), "{line}");
    }

    #[test]
    fn process_metrics_describe_this_process() {
        let text = Metrics::new().encode();
        let rss = sample(&text, "process_resident_memory_bytes").unwrap();
        assert!(
            rss > 1_000_000.0,
            "a running test binary has over 1 MB resident: {rss}"
        );
        let start = sample(&text, "process_start_time_seconds").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "{start} vs {now}"
        );
        assert!(sample(&text, "process_open_fds").unwrap() >= 3.0);
        assert!(sample(&text, "process_cpu_seconds_total").unwrap() >= 0.0);
        assert!(
            text.contains("# TYPE process_cpu_seconds counter"),
            "{text}"
        );
    }

    #[test]
    fn api_latency_is_a_histogram_per_endpoint() {
        let m = Metrics::new();
        m.api_latency("observations", Duration::from_millis(40));
        m.api_latency("observations", Duration::from_millis(700));
        m.api_latency("rows_put", Duration::from_millis(10));
        let text = m.encode();
        let count = |ep: &str| {
            sample(
                &text,
                &format!(
                    "genesys_queue_sync_api_request_duration_seconds_count{{endpoint=\"{ep}\"}}"
                ),
            )
        };
        assert_eq!(count("observations"), Some(2.0));
        assert_eq!(count("rows_put"), Some(1.0));
        assert!(text.contains(
            "genesys_queue_sync_api_request_duration_seconds_bucket{le=\"0.05\",endpoint=\"observations\"} 1"
        ), "{text}");
    }

    #[test]
    fn per_queue_gauges_are_rendered_at_scrape_time_by_meaning() {
        let m = Metrics::new();
        let text = m.encode();
        assert!(
            !text.contains("queue_agents"),
            "no series, no family: {text}"
        );
        let cols = |v: [i64; 3]| {
            [
                ("agents", "Online".to_owned(), v[0]),
                ("interactions", "Waiting".to_owned(), v[1]),
                ("seconds", "Oldest".to_owned(), v[2]),
            ]
        };
        m.queues.set("Sales", cols([3, 1, 40]));
        m.queues.set("Support", cols([0, 0, 0]));
        m.queues.set("Sales", cols([4, 2, 41]));
        let text = m.encode();
        for line in [
            "# TYPE genesys_queue_sync_queue_agents gauge",
            "genesys_queue_sync_queue_agents{queue=\"Sales\",column=\"Online\"} 4",
            "genesys_queue_sync_queue_agents{queue=\"Support\",column=\"Online\"} 0",
            "# TYPE genesys_queue_sync_queue_interactions gauge",
            "genesys_queue_sync_queue_interactions{queue=\"Sales\",column=\"Waiting\"} 2",
            "# TYPE genesys_queue_sync_queue_seconds gauge",
            "# UNIT genesys_queue_sync_queue_seconds seconds",
            "genesys_queue_sync_queue_seconds{queue=\"Sales\",column=\"Oldest\"} 41",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in {text}");
        }
        assert_eq!(m.queues.series(), 6);
        // Columns changed for one queue: its old columns' series go.
        m.queues.set("Sales", [("agents", "Idle".to_owned(), 1)]);
        let text = m.encode();
        assert!(
            text.contains("{queue=\"Sales\",column=\"Idle\"} 1"),
            "{text}"
        );
        assert!(
            !text.contains("{queue=\"Sales\",column=\"Online\"}"),
            "{text}"
        );
        let keep: std::collections::BTreeSet<&str> = ["Support"].into();
        m.queues.retain(&keep);
        let text = m.encode();
        assert!(!text.contains("queue=\"Sales\""), "{text}");
        assert_eq!(m.queues.series(), 3);
        m.queues.clear();
        assert!(!m.encode().contains("genesys_queue_sync_queue_"));
    }

    #[test]
    fn ready_gauge_follows_set_ready() {
        let m = Metrics::new();
        assert_eq!(sample(&m.encode(), "genesys_queue_sync_ready"), Some(0.0));
        m.set_ready(true);
        assert_eq!(sample(&m.encode(), "genesys_queue_sync_ready"), Some(1.0));
    }
}
