//! The answer to a QueueObservationQuery, built from the org's state the way Genesys
//! shapes it: user metrics grouped by `queueId`, conversation metrics by `queueId` and
//! `mediaType`, zero counts and empty media groups left out, `detailMetrics` observations
//! ascending and truncated to their oldest and newest halves.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::query::Observation;
use super::{CONVERSATION_METRICS, ConvCounts, ConvKind, DURATION_METRICS, USER_METRICS};
use crate::directory::Agent;
use crate::org::Org;
use crate::wire::{ApiError, iso};
use crate::{RoutingStatus, SystemPresence};

/// How many observations a detail list holds before Genesys truncates it. The number is
/// not documented; only the shape is (oldest half first, newest half last).
pub(crate) const DEFAULT_DETAIL_LIMIT: usize = 10;

/// One thing a detail observation is about: a conversation or a user, and since when.
struct Detail<'a> {
    since: DateTime<Utc>,
    conversation_id: Option<&'a str>,
    user_id: Option<&'a str>,
}

impl Org {
    /// Answers a QueueObservationQuery.
    pub(crate) fn observe(&self, body: &Value) -> Result<Value, ApiError> {
        let query = Observation::parse(body, self.max_observation_queues)?;
        let wants = |set: &[&str]| -> Vec<&str> {
            query
                .metrics
                .iter()
                .map(String::as_str)
                .filter(|m| set.contains(m))
                .collect()
        };
        let user_metrics = wants(&USER_METRICS);
        let conv_metrics = wants(&CONVERSATION_METRICS);
        let duration_metrics = wants(&DURATION_METRICS);
        let mut results = Vec::new();
        for queue_id in &query.queue_ids {
            if !self.queues.contains_key(queue_id) || !query.filter.eval(queue_id, None) {
                continue;
            }
            // The queue's own group is always there, without `data` when every count is
            // zero, so a client can tell "nothing to count" from "queue not in the answer".
            // (Genesys documents that zero counts are absent, not whether a queue with
            // nothing at all keeps its group.)
            let data = self.user_metric_data(queue_id, &user_metrics, &query.detail);
            let mut group = Map::new();
            group.insert("group".to_owned(), json!({ "queueId": queue_id }));
            if !data.is_empty() {
                group.insert("data".to_owned(), Value::Array(data));
            }
            results.push(Value::Object(group));
            for ((q, media), convs) in &self.conversations {
                if q != queue_id || !query.filter.eval(queue_id, Some(media)) {
                    continue;
                }
                let mut data = self.conversation_data(convs, &conv_metrics, &query.detail);
                data.extend(duration_data(convs, &duration_metrics));
                if !data.is_empty() {
                    results.push(json!({
                        "group": {"queueId": queue_id, "mediaType": media},
                        "data": data,
                    }));
                }
            }
        }
        let mappings: Map<String, Value> = self
            .presence_ids
            .iter()
            .map(|(p, ids)| (p.wire_name().to_owned(), json!(ids)))
            .collect();
        Ok(json!({
            "systemToOrganizationMappings": mappings,
            "results": results,
        }))
    }

    fn conversation_data(
        &self,
        convs: &ConvCounts,
        metrics: &[&str],
        detail: &[String],
    ) -> Vec<Value> {
        let mut data = Vec::new();
        for &metric in metrics {
            let Some(kind) = ConvKind::from_metric(metric) else {
                continue;
            };
            let list = convs.list(kind);
            if list.is_empty() {
                continue;
            }
            let mut entry = json!({"metric": metric, "stats": {"count": list.len()}});
            if detail.iter().any(|d| d == metric) {
                let details = list.iter().map(|i| Detail {
                    since: i.since,
                    conversation_id: Some(&i.conversation_id),
                    user_id: None,
                });
                add_observations(&mut entry, details.collect(), self.detail_limit);
            }
            data.push(entry);
        }
        data
    }

    /// User metrics count the members joined to the queue (active), except oMemberUsers,
    /// which counts every member. Whether Genesys counts presences of members who are not
    /// joined is not documented; every member is joined unless a test says otherwise.
    fn user_metric_data(&self, queue_id: &str, metrics: &[&str], detail: &[String]) -> Vec<Value> {
        let members: Vec<&Agent> = self.members(queue_id).collect();
        let joined: Vec<&Agent> = members
            .iter()
            .copied()
            .filter(|a| a.joined(queue_id))
            .collect();
        let mut data = Vec::new();
        for &metric in metrics {
            // (qualifier, counted agent, since when), one per agent counted.
            let counted: Vec<(Option<String>, &Agent, DateTime<Utc>)> = match metric {
                "oOnQueueUsers" => joined
                    .iter()
                    .filter(|a| a.on_queue())
                    .map(|a| (Some(a.routing.wire_name().to_owned()), *a, a.routing_since))
                    .collect(),
                "oOffQueueUsers" => joined
                    .iter()
                    .filter(|a| !a.on_queue() && a.presence != SystemPresence::Offline)
                    .map(|a| (Some(a.presence_id.clone()), *a, a.presence_since))
                    .collect(),
                "oUserPresences" => joined
                    .iter()
                    .map(|a| (Some(a.presence_id.clone()), *a, a.presence_since))
                    .collect(),
                "oUserRoutingStatuses" => joined
                    .iter()
                    .map(|a| {
                        let since = if a.effective_routing() == RoutingStatus::OffQueue {
                            a.presence_since
                        } else {
                            a.routing_since
                        };
                        (
                            Some(a.effective_routing().wire_name().to_owned()),
                            *a,
                            since,
                        )
                    })
                    .collect(),
                "oActiveUsers" => joined
                    .iter()
                    .map(|a| (None, *a, a.presence_since))
                    .collect(),
                "oMemberUsers" => members
                    .iter()
                    .map(|a| (None, *a, a.presence_since))
                    .collect(),
                _ => continue,
            };
            let mut by_qualifier: BTreeMap<Option<String>, Vec<Detail<'_>>> = BTreeMap::new();
            for (qualifier, agent, since) in counted {
                by_qualifier.entry(qualifier).or_default().push(Detail {
                    since,
                    conversation_id: None,
                    user_id: Some(&agent.id),
                });
            }
            for (qualifier, mut details) in by_qualifier {
                let mut entry = json!({"metric": metric, "stats": {"count": details.len()}});
                if let (Some(q), Some(obj)) = (&qualifier, entry.as_object_mut()) {
                    obj.insert("qualifier".to_owned(), json!(q));
                }
                if detail.iter().any(|d| d == metric) {
                    details.sort_by_key(|d| d.since);
                    add_observations(&mut entry, details, self.detail_limit);
                }
                data.push(entry);
            }
        }
        data
    }
}

/// oLongestWaiting / oLongestInteracting of one media group. What Genesys puts in
/// `calculatedMetricValue` is not documented (a start time in epoch ms, or a duration);
/// the simulator gives the oldest start time in epoch ms, one of the two readings, and
/// the daemon reads neither (it takes the age from `detailMetrics`).
fn duration_data(convs: &ConvCounts, metrics: &[&str]) -> Vec<Value> {
    metrics
        .iter()
        .filter_map(|&metric| {
            let oldest = convs.list(ConvKind::from_metric(metric)?).first()?;
            Some(json!({
                "metric": metric,
                "stats": {"calculatedMetricValue": oldest.since.timestamp_millis()},
            }))
        })
        .collect()
}

/// Adds `observations` (ascending by time) to a metric entry; past `limit` only the
/// oldest half and the newest half are kept and `truncated` is set, as documented, so
/// the oldest observation is always there.
fn add_observations(entry: &mut Value, details: Vec<Detail<'_>>, limit: usize) {
    let n = details.len();
    let limit = limit.max(2);
    let truncated = n > limit;
    let keep_old = limit / 2;
    let keep_new = limit - keep_old;
    let observations: Vec<Value> = details
        .iter()
        .enumerate()
        .filter(|(i, _)| !truncated || *i < keep_old || *i >= n - keep_new)
        .map(|(_, d)| {
            let mut o = Map::new();
            o.insert("observationDate".to_owned(), json!(iso(d.since)));
            if let Some(c) = d.conversation_id {
                o.insert("conversationId".to_owned(), json!(c));
                o.insert("sessionId".to_owned(), json!(format!("{c}-s1")));
                o.insert("direction".to_owned(), json!("inbound"));
                o.insert("usedRouting".to_owned(), json!("Standard"));
                o.insert("routingPriority".to_owned(), json!(0));
            }
            if let Some(u) = d.user_id {
                o.insert("userId".to_owned(), json!(u));
            }
            Value::Object(o)
        })
        .collect();
    if let Some(obj) = entry.as_object_mut() {
        obj.insert("observations".to_owned(), Value::Array(observations));
        if truncated {
            obj.insert("truncated".to_owned(), json!(true));
        }
    }
}
