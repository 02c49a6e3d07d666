//! Queue observations: conversation counts per queue and media type, the ground truth a
//! test compares with, and the answer to a QueueObservationQuery.

mod query;

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::directory::Agent;
use crate::org::Org;
use crate::wire::ApiError;
use crate::{QueueTruth, RoutingStatus, SystemPresence};
use query::Observation;

pub(crate) const MAX_OBSERVATION_QUEUES: usize = 100;

pub(crate) const USER_METRICS: [&str; 6] = [
    "oOnQueueUsers",
    "oOffQueueUsers",
    "oUserPresences",
    "oUserRoutingStatuses",
    "oActiveUsers",
    "oMemberUsers",
];
pub(crate) const CONVERSATION_METRICS: [&str; 3] = ["oWaiting", "oInteracting", "oAlerting"];
/// Accepted but never reported: the simulator keeps no per-conversation timestamps.
pub(crate) const DURATION_METRICS: [&str; 2] = ["oLongestWaiting", "oLongestInteracting"];
pub(crate) const MEDIA_TYPES: [&str; 9] = [
    "voice",
    "chat",
    "email",
    "message",
    "callback",
    "cobrowse",
    "video",
    "screenshare",
    "unknown",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConvKind {
    Waiting,
    Interacting,
    Alerting,
}

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ConvCounts {
    pub(crate) waiting: u32,
    pub(crate) interacting: u32,
    pub(crate) alerting: u32,
}

impl ConvCounts {
    fn get(&self, metric: &str) -> u32 {
        match metric {
            "oWaiting" => self.waiting,
            "oInteracting" => self.interacting,
            "oAlerting" => self.alerting,
            _ => 0,
        }
    }
}

impl Org {
    pub(crate) fn set_conversations(
        &mut self,
        queue_id: &str,
        media: &str,
        kind: ConvKind,
        n: u32,
    ) {
        let entry = self
            .conversations
            .entry((queue_id.to_owned(), media.to_owned()))
            .or_default();
        match kind {
            ConvKind::Waiting => entry.waiting = n,
            ConvKind::Interacting => entry.interacting = n,
            ConvKind::Alerting => entry.alerting = n,
        }
    }

    pub(crate) fn truth(&self, queue_id: &str) -> Option<QueueTruth> {
        self.queues.get(queue_id)?;
        let mut t = QueueTruth::default();
        for a in self.members(queue_id) {
            if a.presence != SystemPresence::Offline {
                t.online += 1;
            }
            if a.on_queue() {
                t.on_queue += 1;
                match a.routing {
                    RoutingStatus::Idle => t.idle += 1,
                    RoutingStatus::Interacting => t.interacting += 1,
                    _ => {}
                }
            }
        }
        t.waiting = self
            .conversations
            .iter()
            .filter(|((q, _), _)| q == queue_id)
            .map(|(_, c)| u64::from(c.waiting))
            .sum();
        Some(t)
    }

    // ---- observations ----

    /// Answers a QueueObservationQuery.
    pub(crate) fn observe(&self, body: &Value) -> Result<Value, ApiError> {
        let query = Observation::parse(body)?;
        let mut results = Vec::new();
        let user_metrics: Vec<&str> = query
            .metrics
            .iter()
            .map(String::as_str)
            .filter(|m| USER_METRICS.contains(m))
            .collect();
        let conv_metrics: Vec<&str> = query
            .metrics
            .iter()
            .map(String::as_str)
            .filter(|m| CONVERSATION_METRICS.contains(m))
            .collect();
        for queue_id in &query.queue_ids {
            if !self.queues.contains_key(queue_id) || !query.filter.eval(queue_id, None) {
                continue;
            }
            let data = self.user_metric_data(queue_id, &user_metrics);
            let mut group = Map::new();
            group.insert("group".to_owned(), json!({ "queueId": queue_id }));
            if !data.is_empty() {
                group.insert("data".to_owned(), Value::Array(data));
            }
            results.push(Value::Object(group));
            for ((q, media), counts) in &self.conversations {
                if q != queue_id || !query.filter.eval(queue_id, Some(media)) {
                    continue;
                }
                let data: Vec<Value> = conv_metrics
                    .iter()
                    .filter(|m| counts.get(m) > 0)
                    .map(|m| json!({"metric": m, "stats": {"count": counts.get(m)}}))
                    .collect();
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

    fn user_metric_data(&self, queue_id: &str, metrics: &[&str]) -> Vec<Value> {
        let members: Vec<&Agent> = self.members(queue_id).collect();
        let mut data = Vec::new();
        let qualified = |data: &mut Vec<Value>, metric: &str, counts: BTreeMap<String, u64>| {
            for (qualifier, count) in counts {
                if count > 0 {
                    data.push(json!({"metric": metric, "qualifier": qualifier, "stats": {"count": count}}));
                }
            }
        };
        for &metric in metrics {
            match metric {
                "oOnQueueUsers" => {
                    let mut counts = BTreeMap::new();
                    for a in members.iter().filter(|a| a.on_queue()) {
                        *counts.entry(a.routing.wire_name().to_owned()).or_insert(0) += 1;
                    }
                    qualified(&mut data, metric, counts);
                }
                "oOffQueueUsers" => {
                    let mut counts = BTreeMap::new();
                    for a in members
                        .iter()
                        .filter(|a| !a.on_queue() && a.presence != SystemPresence::Offline)
                    {
                        *counts.entry(a.presence_id.clone()).or_insert(0) += 1;
                    }
                    qualified(&mut data, metric, counts);
                }
                "oUserPresences" => {
                    let mut counts = BTreeMap::new();
                    for a in &members {
                        *counts.entry(a.presence_id.clone()).or_insert(0) += 1;
                    }
                    qualified(&mut data, metric, counts);
                }
                "oUserRoutingStatuses" => {
                    let mut counts = BTreeMap::new();
                    for a in &members {
                        *counts
                            .entry(a.effective_routing().wire_name().to_owned())
                            .or_insert(0) += 1;
                    }
                    qualified(&mut data, metric, counts);
                }
                "oActiveUsers" => {
                    let n = members
                        .iter()
                        .filter(|a| a.presence != SystemPresence::Offline)
                        .count();
                    data.push(json!({"metric": metric, "stats": {"count": n}}));
                }
                "oMemberUsers" => {
                    data.push(json!({"metric": metric, "stats": {"count": members.len()}}));
                }
                _ => {}
            }
        }
        data
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::directory::HOME_DIVISION;

    fn obs_query(ids: &[&str], metrics: &[&str]) -> Value {
        let preds: Vec<Value> = ids
            .iter()
            .map(|id| json!({"type": "dimension", "dimension": "queueId", "operator": "matches", "value": id}))
            .collect();
        json!({"filter": {"type": "or", "predicates": preds}, "metrics": metrics})
    }

    #[test]
    fn truth_and_effective_routing() {
        let mut org = Org::new();
        let q = org.add_queue("Q", HOME_DIVISION);
        org.add_agent(SystemPresence::OnQueue, RoutingStatus::Idle, &[&q]);
        org.add_agent(SystemPresence::OnQueue, RoutingStatus::Interacting, &[&q]);
        org.add_agent(SystemPresence::OnQueue, RoutingStatus::OffQueue, &[&q]);
        org.add_agent(SystemPresence::Available, RoutingStatus::Idle, &[&q]);
        org.add_agent(SystemPresence::Offline, RoutingStatus::OffQueue, &[&q]);
        org.set_conversations(&q, "voice", ConvKind::Waiting, 3);
        org.set_conversations(&q, "chat", ConvKind::Waiting, 2);
        let t = org.truth(&q).unwrap();
        assert_eq!(
            t,
            QueueTruth {
                online: 4,
                on_queue: 2,
                idle: 1,
                interacting: 1,
                waiting: 5
            }
        );
        assert!(org.truth("nope").is_none());
    }

    #[test]
    fn available_alternates_between_two_org_presences() {
        let mut org = Org::new();
        let q = org.add_queue("Q", HOME_DIVISION);
        for _ in 0..4 {
            org.add_agent(SystemPresence::Available, RoutingStatus::OffQueue, &[&q]);
        }
        let ids = org.presence_ids(SystemPresence::Available);
        assert_eq!(ids.len(), 2);
        let r = org.observe(&obs_query(&[&q], &["oUserPresences"])).unwrap();
        let data = r["results"][0]["data"].as_array().unwrap();
        assert_eq!(data.len(), 2);
        for d in data {
            assert!(ids.contains(&d["qualifier"].as_str().unwrap().to_owned()));
            assert_eq!(d["stats"]["count"], 2);
        }
        assert_eq!(r["systemToOrganizationMappings"]["AVAILABLE"], json!(ids));
    }

    #[test]
    fn observation_validation() {
        let org = Org::new();
        let ids: Vec<String> = (0..101).map(|i| format!("q{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let e = org.observe(&obs_query(&refs, &["oWaiting"])).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("100"), "{}", e.message);
        assert!(org.observe(&obs_query(&refs[..100], &["oWaiting"])).is_ok());
        let e = org.observe(&obs_query(&["a"], &["oBogus"])).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("oBogus"));
        let e = org
            .observe(&json!({"filter": {"type": "xor", "predicates": []}, "metrics": ["oWaiting"]}))
            .unwrap_err();
        assert_eq!(e.status, 400);
        let e = org
            .observe(&json!({"filter": {"type": "and", "predicates": [{"dimension": "userId", "value": "x"}]}, "metrics": ["oWaiting"]}))
            .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn observation_media_filter_and_clauses() {
        let mut org = Org::new();
        let q = org.add_queue("Q", HOME_DIVISION);
        org.set_conversations(&q, "voice", ConvKind::Waiting, 3);
        org.set_conversations(&q, "chat", ConvKind::Waiting, 2);
        let body = json!({
            "filter": {"type": "and", "clauses": [
                {"type": "or", "predicates": [{"dimension": "queueId", "value": q}]},
                {"type": "or", "predicates": [{"dimension": "mediaType", "value": "chat"}]}
            ]},
            "metrics": ["oWaiting", "oActiveUsers"]
        });
        let r = org.observe(&body).unwrap();
        let results = r["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "{r}");
        assert_eq!(results[1]["group"]["mediaType"], "chat");
        assert_eq!(results[1]["data"][0]["stats"]["count"], 2);
    }
}
