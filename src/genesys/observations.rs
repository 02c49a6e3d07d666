//! Queue observations (`POST /api/v2/analytics/queues/observations/query`) turned into
//! the counts a flow needs.
//!
//! The API leaves out every qualifier whose count is zero, so an absent metric is 0.
//! A queue that is absent from the results altogether was not observed (deleted, or
//! not visible to the client): that is "unknown", never 0.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Client, Request};

const ENDPOINT: &str = "queue_observations";
/// The most queue ids the daemon puts in one query.
pub const MAX_QUEUES_PER_QUERY: usize = 100;

const METRICS: &[&str] = &[
    "oOnQueueUsers",
    "oUserPresences",
    "oWaiting",
    "oMemberUsers",
];

/// What one queue looks like right now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct QueueCounts {
    /// Members whose presence is anything but Offline.
    pub online: u64,
    /// Agents on queue, all routing statuses.
    pub on_queue: u64,
    /// On-queue agents with routing status IDLE.
    pub idle: u64,
    /// On-queue agents with routing status INTERACTING.
    pub interacting: u64,
    /// Interactions waiting, summed over media types.
    pub waiting: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    #[serde(default)]
    system_to_organization_mappings: Option<HashMap<String, Vec<String>>>,
    #[serde(default)]
    results: Vec<Container>,
}

#[derive(Debug, Deserialize)]
struct Container {
    #[serde(default)]
    group: HashMap<String, serde_json::Value>,
    #[serde(default)]
    data: Vec<MetricData>,
}

#[derive(Debug, Deserialize)]
struct MetricData {
    metric: String,
    #[serde(default)]
    qualifier: Option<String>,
    #[serde(default)]
    stats: Option<Stats>,
}

#[derive(Debug, Deserialize)]
struct Stats {
    #[serde(default)]
    count: Option<f64>,
}

/// The query body for a batch of queue ids.
pub fn query_body(queue_ids: &[String]) -> serde_json::Value {
    let predicates: Vec<_> = queue_ids
        .iter()
        .map(|id| json!({"type": "dimension", "dimension": "queueId", "operator": "matches", "value": id}))
        .collect();
    json!({
        "filter": {"type": "or", "predicates": predicates},
        "metrics": METRICS,
    })
}

/// Observes one batch (at most [`MAX_QUEUES_PER_QUERY`] ids).
pub async fn observe_batch(
    client: &Client,
    queue_ids: &[String],
) -> Result<HashMap<String, QueueCounts>, ApiError> {
    let req = Request::with_body(
        ENDPOINT,
        reqwest::Method::POST,
        "/api/v2/analytics/queues/observations/query",
        query_body(queue_ids),
    );
    let body = client.send(req).await?;
    parse_response(&body, queue_ids).map_err(|message| ApiError::Decode {
        endpoint: ENDPOINT,
        message,
    })
}

/// Parses an observation answer into counts for the requested queues that it covers.
///
/// Every result group of a queue counts: user metrics come grouped by queue alone,
/// conversation metrics by queue and media type, and all are summed.
pub fn parse_response(
    body: &[u8],
    requested: &[String],
) -> Result<HashMap<String, QueueCounts>, String> {
    let resp: Response =
        super::decode_object(body).map_err(|e| format!("not the expected JSON: {e}"))?;
    let offline: HashSet<&str> = resp
        .system_to_organization_mappings
        .as_ref()
        .and_then(|m| m.get("OFFLINE"))
        .map(|ids| ids.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let wanted: HashSet<&str> = requested.iter().map(String::as_str).collect();
    let mut out: HashMap<String, QueueCounts> = HashMap::new();
    for group in &resp.results {
        let Some(queue_id) = group.group.get("queueId").and_then(|v| v.as_str()) else {
            continue;
        };
        if !wanted.contains(queue_id) {
            continue;
        }
        let counts = out.entry(queue_id.to_owned()).or_default();
        for d in &group.data {
            let n = match d.stats.as_ref().and_then(|s| s.count) {
                Some(c) if c.is_finite() && c >= 0.0 && c <= u32::MAX as f64 => c as u64,
                Some(c) => {
                    return Err(format!(
                        "{} count {c} for queue {queue_id} is not a count",
                        d.metric
                    ));
                }
                None => 0,
            };
            let q = d.qualifier.as_deref();
            match d.metric.as_str() {
                "oOnQueueUsers" => {
                    counts.on_queue += n;
                    match q {
                        Some("IDLE") => counts.idle += n,
                        Some("INTERACTING") => counts.interacting += n,
                        _ => {}
                    }
                }
                "oUserPresences" => {
                    let Some(presence) = q else { continue };
                    if resp.system_to_organization_mappings.is_none() {
                        return Err("oUserPresences without systemToOrganizationMappings: cannot tell Offline".into());
                    }
                    if !offline.contains(presence) {
                        counts.online += n;
                    }
                }
                "oWaiting" => counts.waiting += n,
                _ => {}
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn query_names_each_queue_and_the_metrics() {
        let b = query_body(&ids(&["a", "b"]));
        assert_eq!(b["filter"]["type"], "or");
        assert_eq!(b["filter"]["predicates"][1]["value"], "b");
        assert_eq!(b["filter"]["predicates"][0]["dimension"], "queueId");
        assert!(
            b["metrics"]
                .as_array()
                .unwrap()
                .contains(&json!("oUserPresences"))
        );
    }

    #[test]
    fn combines_groups_and_treats_absent_as_zero() {
        let body = br#"{
          "systemToOrganizationMappings": {"OFFLINE": ["off"], "AVAILABLE": ["av1", "av2"], "ON_QUEUE": ["oq"]},
          "results": [
            {"group": {"queueId": "q1"}, "data": [
              {"metric": "oOnQueueUsers", "qualifier": "IDLE", "stats": {"count": 2}},
              {"metric": "oOnQueueUsers", "qualifier": "INTERACTING", "stats": {"count": 3}},
              {"metric": "oOnQueueUsers", "qualifier": "NOT_RESPONDING", "stats": {"count": 1}},
              {"metric": "oUserPresences", "qualifier": "oq", "stats": {"count": 6}},
              {"metric": "oUserPresences", "qualifier": "av2", "stats": {"count": 1}},
              {"metric": "oUserPresences", "qualifier": "off", "stats": {"count": 9}},
              {"metric": "oMemberUsers", "stats": {"count": 16}}]},
            {"group": {"queueId": "q1", "mediaType": "voice"}, "data": [{"metric": "oWaiting", "stats": {"count": 4}}]},
            {"group": {"queueId": "q1", "mediaType": "chat"}, "data": [{"metric": "oWaiting", "stats": {"count": 1}}]},
            {"group": {"queueId": "q2"}, "data": [{"metric": "oMemberUsers", "stats": {"count": 0}}]},
            {"group": {"queueId": "other"}, "data": [{"metric": "oWaiting", "stats": {"count": 7}}]}
          ]}"#;
        let got = parse_response(body, &ids(&["q1", "q2", "q3"])).unwrap();
        assert_eq!(
            got["q1"],
            QueueCounts {
                online: 7,
                on_queue: 6,
                idle: 2,
                interacting: 3,
                waiting: 5
            }
        );
        assert_eq!(got["q2"], QueueCounts::default());
        assert!(
            !got.contains_key("q3"),
            "a queue absent from the answer is unknown, not zero"
        );
        assert!(!got.contains_key("other"));
    }

    #[test]
    fn presences_without_mappings_are_an_error_not_a_guess() {
        let body = br#"{"results":[{"group":{"queueId":"q"},"data":[{"metric":"oUserPresences","qualifier":"x","stats":{"count":1}}]}]}"#;
        assert!(parse_response(body, &ids(&["q"])).is_err());
    }

    #[test]
    fn malformed_answers_are_errors() {
        for body in [&b"not json"[..], br#"{"results": 5}"#, br#"{"results":[{"group":{"queueId":"q"},"data":[{"metric":"oWaiting","stats":{"count":-1}}]}]}"#, br#"[null, [{"group":{"queueId":"q"},"data":[]}]]"#] {
            assert!(parse_response(body, &ids(&["q"])).is_err());
        }
        // Unknown fields and metrics are ignored.
        let ok = br#"{"extra":1,"results":[{"group":{"queueId":"q"},"data":[{"metric":"oNew","stats":{"count":1,"max":3}}]}]}"#;
        assert_eq!(
            parse_response(ok, &ids(&["q"])).unwrap()["q"],
            QueueCounts::default()
        );
    }
}
