//! Push-mode metrics (registered with the others, under the same prefix).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

type Labels = Vec<(&'static str, String)>;

/// The `result` label values of `push_events_total`.
pub const EVENT_RESULTS: &[&str] = &[
    "applied",
    "unchanged",
    "heartbeat",
    "metadata",
    "unknown_metric",
    "other_topic",
    "not_selected",
    "malformed",
    "coalesced",
    "dropped",
];

#[derive(Clone, Debug)]
pub struct PushMetrics {
    /// Channels whose socket is up.
    pub connected: Gauge,
    pub events: Family<Labels, Counter>,
    pub reconnects: Counter,
    pub renewals: Counter,
    pub channel_failures: Counter,
    pub write_latency: Histogram,
}

impl PushMetrics {
    pub fn register(r: &mut Registry) -> Self {
        let connected = Gauge::default();
        r.register(
            "push_connected",
            "Notification channels whose WebSocket is up (0 in poll mode or while push is down)",
            connected.clone(),
        );
        let events = Family::<Labels, Counter>::default();
        r.register(
            "push_events",
            "Notification messages received, by result (applied, unchanged, heartbeat, metadata, unknown_metric, other_topic, not_selected, malformed; coalesced: merged into a pending event of the same queue and media group while the daemon was busy; dropped: more pending groups than kept)",
            events.clone(),
        );
        for result in EVENT_RESULTS {
            let _ = events.get_or_create(&vec![("result", (*result).to_owned())]);
        }
        let reconnects = Counter::default();
        r.register(
            "push_reconnects",
            "Notification sockets reopened after a drop, a silence or an expiry",
            reconnects.clone(),
        );
        let renewals = Counter::default();
        r.register(
            "push_channel_renewals",
            "Notification channels resubscribed before their 24 h expiry",
            renewals.clone(),
        );
        let channel_failures = Counter::default();
        r.register(
            "push_channel_failures",
            "Channel creations or subscriptions refused or failed (push retries with backoff, polling goes on)",
            channel_failures.clone(),
        );
        let write_latency =
            Histogram::new([0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0]);
        r.register_with_unit(
            "push_change_to_write",
            "From a notification's arrival to the answer of the row write that carries it",
            Unit::Seconds,
            write_latency.clone(),
        );
        Self {
            connected,
            events,
            reconnects,
            renewals,
            channel_failures,
            write_latency,
        }
    }

    pub fn event(&self, result: &'static str) {
        self.events
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }
}
