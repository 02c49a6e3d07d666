//! The per-queue gauges (`queue_agents`, `queue_interactions`, `queue_seconds`): each
//! queue's last values, rendered at scrape time by a collector of their own.

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

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
    pub(super) fn register(r: &mut Registry) -> Self {
        let gauges = Self::default();
        r.register_collector(Box::new(gauges.clone()));
        gauges
    }

    /// One queue's values, column by column; series of columns it no longer has go.
    /// Column names are borrowed: they are copied only when the column set differs from
    /// the last one seen (once per config), not for every queue of every cycle and event.
    pub fn set<'a>(
        &self,
        queue: &str,
        values: impl IntoIterator<Item = (&'static str, &'a str, i64)>,
    ) {
        let (columns, values): (Vec<(&'static str, &str)>, Vec<i64>) = values
            .into_iter()
            .map(|(unit, column, v)| ((family_of(unit), column), v))
            .unzip();
        let Ok(mut t) = self.table.lock() else {
            return;
        };
        let same = |c: &ColumnSet| {
            c.len() == columns.len()
                && c.iter()
                    .zip(&columns)
                    .all(|((u, n), (cu, cn))| u == cu && n == cn)
        };
        let columns: ColumnSet = match &t.columns {
            Some(c) if same(c) => c.clone(),
            _ => {
                let c: ColumnSet = columns
                    .into_iter()
                    .map(|(u, n)| (u, n.to_owned()))
                    .collect();
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
