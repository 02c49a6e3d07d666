//! Queue observations (`POST /api/v2/analytics/queues/observations/query`): the query for
//! a set of API metrics, and the answer read into typed, compact per-queue observations.
//!
//! The API leaves out every qualifier and group whose count is zero, so an absent metric
//! is 0. A queue that is absent from the results altogether was not observed (deleted, or
//! not visible to the client): that is "unknown", never 0.
//!
//! The answer is read in one streaming pass (serde visitors over the borrowed body): no
//! JSON tree is built, a result group of a queue that was not asked for is skipped
//! without being materialised, and `detailMetrics` observation lists are folded into the
//! oldest observation date as they are read. So memory stays a small constant plus a few
//! dozen bytes per metric of a queue asked for, whatever the body size.

#[cfg(test)]
pub(crate) mod fixture;
mod metric_data;
mod parse;
mod vocab;

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{ApiError, Client, Request};
pub use parse::parse_response;
pub use vocab::{ApiMetric, MediaType, RoutingStatus, SystemPresence};

const ENDPOINT: &str = "queue_observations";
/// The most queue ids the daemon puts in one query (the maximum is not documented; 100
/// is the value clients use).
pub const MAX_QUEUES_PER_QUERY: usize = 100;
// ---------------------------------------------------------------- the query

/// What one observation query asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    pub metrics: BTreeSet<ApiMetric>,
    /// Metrics whose individual observations (`observations[]`) are wanted.
    pub detail: BTreeSet<ApiMetric>,
}

/// The query body for a batch of queue ids.
pub fn query_body(queue_ids: &[String], query: &Query) -> serde_json::Value {
    let predicates: Vec<_> = queue_ids
        .iter()
        .map(|id| json!({"type": "dimension", "dimension": "queueId", "operator": "matches", "value": id}))
        .collect();
    let metrics: Vec<&str> = query.metrics.iter().map(|m| m.wire_name()).collect();
    let mut body = json!({
        "filter": {"type": "or", "predicates": predicates},
        "metrics": metrics,
    });
    let detail: Vec<&str> = query
        .detail
        .iter()
        .filter(|m| m.takes_detail())
        .map(|m| m.wire_name())
        .collect();
    if !detail.is_empty() {
        body["detailMetrics"] = json!(detail);
    }
    body
}

/// Observes one batch (at most [`MAX_QUEUES_PER_QUERY`] ids).
pub async fn observe(
    client: &Client,
    queue_ids: &[String],
    query: &Query,
) -> Result<HashMap<String, QueueObservation>, ApiError> {
    let req = Request::with_body(
        ENDPOINT,
        reqwest::Method::POST,
        "/api/v2/analytics/queues/observations/query",
        query_body(queue_ids, query),
    );
    let body = client.send(req).await?;
    parse_response(&body, queue_ids).map_err(|message| ApiError::Decode {
        endpoint: ENDPOINT,
        message,
    })
}

// ---------------------------------------------------------------- the typed answer

/// What a metric's count is qualified by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    /// No qualifier (oMemberUsers, oActiveUsers, conversation metrics).
    None,
    Routing(RoutingStatus),
    /// An organization presence id, resolved to its system presence.
    Presence(SystemPresence),
    /// An organization presence id that no system presence maps to.
    UnmappedPresence,
    /// A qualifier this version does not know.
    Other,
}

/// One metric of one result group: its count and, with `detailMetrics`, the date of
/// its oldest observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub metric: ApiMetric,
    /// The group's media type; None for groups by queue alone (user metrics).
    pub media: Option<MediaType>,
    pub qualifier: Qualifier,
    pub count: u64,
    /// The earliest `observationDate` of the entry's `observations[]` (for oWaiting:
    /// when the longest-waiting interaction started waiting). Genesys sorts them
    /// ascending and, when it truncates the list, keeps the oldest half, so the oldest
    /// is always present; the minimum is taken anyway rather than trusting the order.
    pub oldest: Option<DateTime<Utc>>,
}

/// Everything the answer said about one queue, every group combined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueObservation {
    entries: Vec<Entry>,
}

impl QueueObservation {
    pub fn from_entries(entries: Vec<Entry>) -> Self {
        Self { entries }
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The sum of `metric`'s counts over the entries `keep` accepts.
    pub fn sum(&self, metric: ApiMetric, keep: impl Fn(&Entry) -> bool) -> u64 {
        self.entries
            .iter()
            .filter(|e| e.metric == metric && keep(e))
            .map(|e| e.count)
            .sum()
    }

    /// The oldest observation date of `metric` over the entries `keep` accepts.
    pub fn oldest(
        &self,
        metric: ApiMetric,
        keep: impl Fn(&Entry) -> bool,
    ) -> Option<DateTime<Utc>> {
        self.entries
            .iter()
            .filter(|e| e.metric == metric && keep(e))
            .filter_map(|e| e.oldest)
            .min()
    }
}

/// Parses an observation answer into observations of the requested queues it covers.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn query(metrics: &[ApiMetric], detail: &[ApiMetric]) -> Query {
        Query {
            metrics: metrics.iter().copied().collect(),
            detail: detail.iter().copied().collect(),
        }
    }

    #[test]
    fn query_names_each_queue_and_exactly_the_metrics() {
        let b = query_body(
            &ids(&["a", "b"]),
            &query(&[ApiMetric::UserPresences, ApiMetric::Waiting], &[]),
        );
        assert_eq!(b["filter"]["type"], "or");
        assert_eq!(b["filter"]["predicates"][1]["value"], "b");
        assert_eq!(b["filter"]["predicates"][0]["dimension"], "queueId");
        assert_eq!(b["metrics"], json!(["oUserPresences", "oWaiting"]));
        assert!(b.get("detailMetrics").is_none(), "{b}");
        let b = query_body(
            &ids(&["a"]),
            &query(&[ApiMetric::Waiting], &[ApiMetric::Waiting]),
        );
        assert_eq!(b["detailMetrics"], json!(["oWaiting"]));
    }
}
