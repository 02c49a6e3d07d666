//! What an observation event says: a queue's state as its events carry it (the user
//! group by routing status, one group per media type), and the messages for the groups
//! that changed since the last publication.

use std::collections::{BTreeMap, BTreeSet};

use chrono::Utc;
use serde_json::{Value, json};

use crate::analytics::ConvKind;
use crate::org::Org;
use crate::wire::{iso, new_id};

/// Per media group (None: the user group), per (metric, qualifier): the count.
pub(super) type Snapshot = BTreeMap<Option<String>, BTreeMap<(String, Option<String>), u64>>;

/// What a queue's events would say right now.
pub(super) fn snapshot(org: &Org, queue_id: &str) -> Snapshot {
    let mut s: Snapshot = BTreeMap::new();
    let mut user = BTreeMap::new();
    for a in org.members(queue_id).filter(|a| a.joined(queue_id)) {
        if a.on_queue() {
            *user
                .entry((
                    "oOnQueueUsers".to_owned(),
                    Some(a.routing.wire_name().to_owned()),
                ))
                .or_insert(0) += 1;
        }
        {
            *user
                .entry((
                    "oUserRoutingStatuses".to_owned(),
                    Some(a.effective_routing().wire_name().to_owned()),
                ))
                .or_insert(0) += 1;
        }
    }
    s.insert(None, user);
    // The queue's media types only (the map is ordered by queue, then media type): the
    // publisher takes a snapshot of every subscribed topic every scan.
    let from = (queue_id.to_owned(), String::new());
    for ((q, media), c) in org.conversations.range(from..) {
        if q != queue_id {
            break;
        }
        let mut g = BTreeMap::new();
        for (metric, n) in [
            ("oWaiting", c.count(ConvKind::Waiting)),
            ("oInteracting", c.count(ConvKind::Interacting)),
            ("oAlerting", c.count(ConvKind::Alerting)),
        ] {
            if n > 0 {
                g.insert((metric.to_owned(), None), u64::from(n));
            }
        }
        s.insert(Some(media.clone()), g);
    }
    s
}

/// The messages for the groups of `current` that differ from `last`.
pub(super) fn messages(
    topic: &str,
    queue_id: &str,
    last: &Snapshot,
    current: &Snapshot,
) -> Vec<String> {
    let empty = BTreeMap::new();
    let groups: BTreeSet<&Option<String>> = last.keys().chain(current.keys()).collect();
    let now = Utc::now();
    let interval = format!("{}/{}", iso(now), iso(now + chrono::Duration::seconds(1)));
    let mut out = Vec::new();
    for g in groups {
        let before = last.get(g).unwrap_or(&empty);
        let after = current.get(g).unwrap_or(&empty);
        if before == after {
            continue;
        }
        let carried: &[&str] = match g {
            None => &["oOnQueueUsers", "oUserRoutingStatuses"],
            Some(_) => &["oWaiting", "oInteracting", "oAlerting"],
        };
        let mut metrics = Vec::new();
        for &metric in carried {
            let mut entries: Vec<Value> = Vec::new();
            let quals: BTreeSet<&Option<String>> = before
                .keys()
                .chain(after.keys())
                .filter(|(m, _)| m == metric)
                .map(|(_, q)| q)
                .collect();
            for q in quals {
                let n = after
                    .get(&(metric.to_owned(), q.clone()))
                    .copied()
                    .unwrap_or(0);
                let mut e = json!({"metric": metric, "stats": {"count": n}});
                if let Some(q) = q {
                    e["qualifier"] = json!(q);
                }
                entries.push(e);
            }
            if entries.is_empty() && g.is_some() {
                entries.push(json!({"metric": metric, "stats": {"count": 0}}));
            }
            metrics.extend(entries);
        }
        let mut group = json!({"queueId": queue_id});
        if let Some(media) = g {
            group["mediaType"] = json!(media);
        }
        out.push(
            json!({
                "topicName": topic,
                "version": "2",
                "eventBody": {"group": group, "data": [{"interval": interval, "metrics": metrics}]},
                "metadata": {"CorrelationId": new_id()},
            })
            .to_string(),
        );
    }
    out
}
