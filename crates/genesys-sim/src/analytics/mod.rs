//! Queue observations: the interactions of each queue and media type (each with the time
//! it entered its state), the ground truth a test compares with, and (in `answer`) the
//! answer to a QueueObservationQuery.

mod answer;
mod query;

pub(crate) use answer::DEFAULT_DETAIL_LIMIT;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::org::Org;
use crate::wire::new_id;
use crate::{QueueTruth, RoutingStatus, SystemPresence};

/// The most queue ids a query may name unless a test says otherwise. Genesys does not
/// document its maximum (100 is what clients use); above it the simulator answers 400.
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
/// Answered per (queue, media type) group with `stats.calculatedMetricValue`; what Genesys
/// puts there is not documented (see `answer`).
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

impl ConvKind {
    pub(crate) fn from_metric(metric: &str) -> Option<ConvKind> {
        match metric {
            "oWaiting" | "oLongestWaiting" => Some(ConvKind::Waiting),
            "oInteracting" | "oLongestInteracting" => Some(ConvKind::Interacting),
            "oAlerting" => Some(ConvKind::Alerting),
            _ => None,
        }
    }
}

/// One interaction in a queue: its conversation and when it entered its state (started
/// waiting, was answered, started alerting).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Interaction {
    pub(crate) conversation_id: String,
    pub(crate) since: DateTime<Utc>,
}

/// The interactions of one queue and media type, each list oldest first.
#[derive(Clone, Debug, Default)]
pub(crate) struct ConvCounts {
    waiting: Vec<Interaction>,
    interacting: Vec<Interaction>,
    alerting: Vec<Interaction>,
}

impl ConvCounts {
    pub(crate) fn list(&self, kind: ConvKind) -> &[Interaction] {
        match kind {
            ConvKind::Waiting => &self.waiting,
            ConvKind::Interacting => &self.interacting,
            ConvKind::Alerting => &self.alerting,
        }
    }

    fn list_mut(&mut self, kind: ConvKind) -> &mut Vec<Interaction> {
        match kind {
            ConvKind::Waiting => &mut self.waiting,
            ConvKind::Interacting => &mut self.interacting,
            ConvKind::Alerting => &mut self.alerting,
        }
    }

    pub(crate) fn count(&self, kind: ConvKind) -> u32 {
        u32::try_from(self.list(kind).len()).unwrap_or(u32::MAX)
    }

    /// Sets how many interactions are in `kind`: new ones enter at `now`; when there are
    /// fewer, the oldest leave first (callers are answered in order).
    pub(crate) fn resize(&mut self, kind: ConvKind, n: u32, now: DateTime<Utc>) {
        let list = self.list_mut(kind);
        let n = n as usize;
        if n < list.len() {
            list.drain(..list.len() - n);
        }
        while list.len() < n {
            list.push(Interaction {
                conversation_id: new_id(),
                since: now,
            });
        }
    }

    /// Adds one interaction that entered `kind` at `since`, kept in time order; returns
    /// its conversation id.
    pub(crate) fn insert(&mut self, kind: ConvKind, since: DateTime<Utc>) -> String {
        let list = self.list_mut(kind);
        let id = new_id();
        let at = list.partition_point(|i| i.since <= since);
        list.insert(
            at,
            Interaction {
                conversation_id: id.clone(),
                since,
            },
        );
        id
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
        self.conversations
            .entry((queue_id.to_owned(), media.to_owned()))
            .or_default()
            .resize(kind, n, Utc::now());
    }

    /// One interaction that entered `kind` at `since` (e.g. a caller waiting for 90 s).
    pub(crate) fn add_conversation(
        &mut self,
        queue_id: &str,
        media: &str,
        kind: ConvKind,
        since: DateTime<Utc>,
    ) -> String {
        self.conversations
            .entry((queue_id.to_owned(), media.to_owned()))
            .or_default()
            .insert(kind, since)
    }

    /// What the queue's observation says right now, computed from the scripted state
    /// without going through the answer's JSON.
    pub(crate) fn truth(&self, queue_id: &str) -> Option<QueueTruth> {
        self.queues.get(queue_id)?;
        let mut t = QueueTruth::default();
        for a in self.members(queue_id) {
            t.members += 1;
            if !a.joined(queue_id) {
                continue;
            }
            t.active += 1;
            *t.presences.entry(a.presence).or_insert(0) += 1;
            if a.presence != SystemPresence::Offline {
                t.online += 1;
            }
            if a.on_queue() {
                t.on_queue += 1;
                match a.routing {
                    RoutingStatus::Idle => t.idle += 1,
                    RoutingStatus::Interacting => t.interacting += 1,
                    RoutingStatus::Communicating => t.communicating += 1,
                    RoutingStatus::NotResponding => t.not_responding += 1,
                    RoutingStatus::OffQueue => {}
                }
            } else if a.presence != SystemPresence::Offline {
                t.off_queue += 1;
            }
        }
        for ((q, media), c) in &self.conversations {
            if q != queue_id {
                continue;
            }
            let put = |map: &mut BTreeMap<String, u64>, kind: ConvKind| {
                let n = u64::from(c.count(kind));
                if n > 0 {
                    *map.entry(media.clone()).or_insert(0) += n;
                }
                n
            };
            t.waiting += put(&mut t.waiting_by_media, ConvKind::Waiting);
            t.interactions += put(&mut t.interactions_by_media, ConvKind::Interacting);
            t.alerting += put(&mut t.alerting_by_media, ConvKind::Alerting);
            if let Some(first) = c.list(ConvKind::Waiting).first() {
                t.oldest_waiting.insert(media.clone(), first.since);
            }
        }
        Some(t)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::directory::HOME_DIVISION;
    use serde_json::{Value, json};

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
        org.add_agent(SystemPresence::OnQueue, RoutingStatus::Communicating, &[&q]);
        org.add_agent(SystemPresence::OnQueue, RoutingStatus::NotResponding, &[&q]);
        org.add_agent(SystemPresence::OnQueue, RoutingStatus::OffQueue, &[&q]);
        org.add_agent(SystemPresence::Available, RoutingStatus::Idle, &[&q]);
        org.add_agent(SystemPresence::Break, RoutingStatus::OffQueue, &[&q]);
        org.add_agent(SystemPresence::Offline, RoutingStatus::OffQueue, &[&q]);
        let away = org.add_agent(SystemPresence::Away, RoutingStatus::OffQueue, &[&q]);
        org.set_joined(&away, &q, false);
        org.set_conversations(&q, "voice", ConvKind::Waiting, 3);
        org.set_conversations(&q, "chat", ConvKind::Waiting, 2);
        org.set_conversations(&q, "voice", ConvKind::Interacting, 1);
        org.set_conversations(&q, "email", ConvKind::Alerting, 1);
        let t = org.truth(&q).unwrap();
        let got = [
            t.members,
            t.active,
            t.online,
            t.on_queue,
            t.idle,
            t.interacting,
            t.communicating,
            t.not_responding,
            t.off_queue,
            t.waiting,
            t.interactions,
            t.alerting,
        ];
        // The unjoined Away member counts only as a member; OnQueue+OFF_QUEUE is off queue.
        assert_eq!(got, [9, 8, 7, 4, 1, 1, 1, 1, 3, 5, 1, 1]);
        assert_eq!(t.in_presence(SystemPresence::Break), 1);
        assert_eq!(t.in_presence(SystemPresence::Away), 0);
        assert_eq!(t.waiting_in(&["voice"]), 3);
        assert_eq!(t.waiting_in(&["chat", "email"]), 2);
        assert!(org.truth("nope").is_none());
    }

    #[test]
    fn lowering_a_count_answers_the_oldest_first() {
        let mut c = ConvCounts::default();
        let t0 = Utc::now();
        let old = c.insert(ConvKind::Waiting, t0 - chrono::Duration::seconds(90));
        c.resize(ConvKind::Waiting, 3, t0);
        assert_eq!(c.list(ConvKind::Waiting)[0].conversation_id, old);
        c.insert(ConvKind::Waiting, t0 - chrono::Duration::seconds(30));
        assert_eq!(c.count(ConvKind::Waiting), 4);
        let times: Vec<_> = c.list(ConvKind::Waiting).iter().map(|i| i.since).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "kept in time order");
        c.resize(ConvKind::Waiting, 2, t0);
        assert!(
            c.list(ConvKind::Waiting)
                .iter()
                .all(|i| i.conversation_id != old)
        );
        assert_eq!(c.list(ConvKind::Waiting)[0].since, t0);
    }

    #[test]
    fn detail_observations_are_ascending_and_truncated_to_oldest_and_newest_halves() {
        let mut org = Org::new();
        org.detail_limit = 4;
        let q = org.add_queue("Q", HOME_DIVISION);
        let now = Utc::now();
        let mut ids = Vec::new();
        for age in [50, 10, 40, 20, 30, 60] {
            let id = org.add_conversation(
                &q,
                "voice",
                ConvKind::Waiting,
                now - chrono::Duration::seconds(age),
            );
            ids.push((age, id));
        }
        ids.sort_by_key(|(age, _)| std::cmp::Reverse(*age));
        let mut body = obs_query(&[&q], &["oWaiting", "oLongestWaiting"]);
        body["detailMetrics"] = json!(["oWaiting"]);
        let r = org.observe(&body).unwrap();
        let data = r["results"][1]["data"].as_array().unwrap();
        let waiting = data.iter().find(|d| d["metric"] == "oWaiting").unwrap();
        assert_eq!(waiting["stats"]["count"], 6);
        assert_eq!(waiting["truncated"], true);
        let got: Vec<&str> = waiting["observations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["conversationId"].as_str().unwrap())
            .collect();
        // The two oldest (60 s, 50 s) and the two newest (20 s, 10 s), ascending.
        let want: Vec<&str> = [0, 1, 4, 5].iter().map(|&i| ids[i].1.as_str()).collect();
        assert_eq!(got, want);
        let longest = data
            .iter()
            .find(|d| d["metric"] == "oLongestWaiting")
            .unwrap();
        let oldest = org.truth(&q).unwrap().oldest_waiting_in(None).unwrap();
        assert_eq!(
            longest["stats"]["calculatedMetricValue"],
            oldest.timestamp_millis()
        );
        // Not asked for in detailMetrics: no observations.
        let r = org.observe(&obs_query(&[&q], &["oWaiting"])).unwrap();
        assert!(r["results"][1]["data"][0].get("observations").is_none());
        // Under the limit: every observation, not truncated.
        org.detail_limit = 10;
        let r = org.observe(&body).unwrap();
        let w = &r["results"][1]["data"][0];
        assert_eq!(w["observations"].as_array().unwrap().len(), 6);
        assert!(w.get("truncated").is_none());
    }

    #[test]
    fn every_routing_status_and_zero_counts_left_out() {
        let mut org = Org::new();
        let q = org.add_queue("Q", HOME_DIVISION);
        for s in RoutingStatus::ALL {
            org.add_agent(SystemPresence::OnQueue, s, &[&q]);
        }
        let r = org
            .observe(&obs_query(
                &[&q],
                &[
                    "oOnQueueUsers",
                    "oUserRoutingStatuses",
                    "oActiveUsers",
                    "oWaiting",
                ],
            ))
            .unwrap();
        let results = r["results"].as_array().unwrap();
        assert_eq!(
            results.len(),
            1,
            "no conversation group without interactions: {r}"
        );
        let mut got: Vec<(String, String, u64)> = results[0]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["metric"].as_str().unwrap().to_owned(),
                    d["qualifier"].as_str().unwrap_or("").to_owned(),
                    d["stats"]["count"].as_u64().unwrap(),
                )
            })
            .collect();
        got.sort();
        let e = |m: &str, q: &str, n| (m.to_owned(), q.to_owned(), n);
        assert_eq!(
            got,
            [
                e("oActiveUsers", "", 5),
                e("oOnQueueUsers", "COMMUNICATING", 1),
                e("oOnQueueUsers", "IDLE", 1),
                e("oOnQueueUsers", "INTERACTING", 1),
                e("oOnQueueUsers", "NOT_RESPONDING", 1),
                e("oUserRoutingStatuses", "COMMUNICATING", 1),
                e("oUserRoutingStatuses", "IDLE", 1),
                e("oUserRoutingStatuses", "INTERACTING", 1),
                e("oUserRoutingStatuses", "NOT_RESPONDING", 1),
                e("oUserRoutingStatuses", "OFF_QUEUE", 1),
            ]
        );
        let empty = org.add_queue("Empty", HOME_DIVISION);
        let r = org
            .observe(&obs_query(&[&empty], &["oActiveUsers"]))
            .unwrap();
        assert_eq!(
            r["results"],
            json!([{"group": {"queueId": empty}}]),
            "zero counts are absent, the queue's group stays"
        );
    }

    #[test]
    fn system_presences_alternate_between_their_org_presences() {
        let mut org = Org::new();
        let q = org.add_queue("Q", HOME_DIVISION);
        for p in [SystemPresence::Available, SystemPresence::Break] {
            for _ in 0..4 {
                org.add_agent(p, RoutingStatus::OffQueue, &[&q]);
            }
        }
        let r = org.observe(&obs_query(&[&q], &["oUserPresences"])).unwrap();
        let data = r["results"][0]["data"].as_array().unwrap();
        assert_eq!(data.len(), 4);
        for p in [SystemPresence::Available, SystemPresence::Break] {
            let ids = org.presence_ids(p);
            assert_eq!(ids.len(), 2);
            for id in &ids {
                let d = data.iter().find(|d| d["qualifier"] == id.as_str()).unwrap();
                assert_eq!(d["stats"]["count"], 2);
            }
            assert_eq!(r["systemToOrganizationMappings"][p.wire_name()], json!(ids));
        }
        assert_eq!(org.presence_ids(SystemPresence::OnQueue).len(), 1);
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
        // No members: the queue's group without data (zero counts are absent), then chat.
        assert_eq!(results.len(), 2, "{r}");
        assert!(results[0].get("data").is_none());
        assert_eq!(results[1]["group"]["mediaType"], "chat");
        assert_eq!(results[1]["data"][0]["stats"]["count"], 2);
    }
}
