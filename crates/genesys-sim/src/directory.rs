//! Divisions, queues, agents and their presences: what the routing API lists.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::org::Org;
use crate::wire::{iso, new_id};
use crate::{RoutingStatus, SystemPresence};

pub(crate) const HOME_DIVISION: &str = "Home";

/// Queue name filter: exact (case-insensitive) unless a leading and/or trailing `*` makes it a
/// suffix/prefix/contains match; an inner `*` is literal, as in the routing API.
pub(crate) fn queue_name_match(pattern: &str, name: &str) -> bool {
    let pattern = pattern.to_lowercase();
    let name = name.to_lowercase();
    let leading = pattern.starts_with('*');
    let trailing = pattern.len() > 1 && pattern.ends_with('*');
    let core = pattern.trim_start_matches('*').trim_end_matches('*');
    match (leading, trailing) {
        (true, true) => name.contains(core),
        (true, false) => name.ends_with(core),
        (false, true) => name.starts_with(core),
        (false, false) => name == pattern,
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Queue {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) division_id: String,
    pub(crate) created: DateTime<Utc>,
    pub(crate) modified: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub(crate) struct Agent {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) presence: SystemPresence,
    pub(crate) presence_id: String,
    pub(crate) presence_since: DateTime<Utc>,
    pub(crate) routing: RoutingStatus,
    pub(crate) routing_since: DateTime<Utc>,
    pub(crate) queues: BTreeSet<String>,
    /// Queues the agent is a member of but not joined to (not active in).
    pub(crate) unjoined: BTreeSet<String>,
}

impl Agent {
    /// Genesys only routes to agents On Queue; any other presence reads as OFF_QUEUE.
    pub(crate) fn effective_routing(&self) -> RoutingStatus {
        if self.presence == SystemPresence::OnQueue {
            self.routing
        } else {
            RoutingStatus::OffQueue
        }
    }

    /// A member joined to the queue: active in it, so routed its interactions.
    pub(crate) fn joined(&self, queue_id: &str) -> bool {
        self.queues.contains(queue_id) && !self.unjoined.contains(queue_id)
    }

    pub(crate) fn on_queue(&self) -> bool {
        self.effective_routing() != RoutingStatus::OffQueue
    }
}

/// Query-string filters for the queue listing.
#[derive(Debug, Default)]
pub(crate) struct QueueFilter {
    pub(crate) name: Option<String>,
    pub(crate) ids: Vec<String>,
    pub(crate) division_ids: Vec<String>,
    pub(crate) descending: bool,
}

impl Org {
    pub(crate) fn presence_ids(&self, presence: SystemPresence) -> Vec<String> {
        self.presence_ids
            .iter()
            .find(|(p, _)| *p == presence)
            .map(|(_, ids)| ids.clone())
            .unwrap_or_default()
    }

    fn assign_presence_id(&mut self, presence: SystemPresence) -> String {
        let ids = self.presence_ids(presence);
        if ids.is_empty() {
            return String::new();
        }
        let idx = if ids.len() > 1 {
            self.next_available = self.next_available.wrapping_add(1);
            self.next_available % ids.len()
        } else {
            0
        };
        ids.get(idx).cloned().unwrap_or_default()
    }

    /// Display label of an org presence id, for the members endpoint.
    fn presence_label(&self, presence_id: &str) -> String {
        for (p, ids) in &self.presence_ids {
            if let Some(pos) = ids.iter().position(|i| i == presence_id) {
                return if pos == 0 {
                    p.label().to_owned()
                } else {
                    format!("{} (backup)", p.label())
                };
            }
        }
        String::new()
    }

    fn division_id(&mut self, name: &str) -> String {
        if let Some((id, _)) = self.divisions.iter().find(|(_, n)| n.as_str() == name) {
            return id.clone();
        }
        let id = new_id();
        self.divisions.insert(id.clone(), name.to_owned());
        id
    }

    pub(crate) fn division_json(&self, id: &str) -> Value {
        json!({
            "id": id,
            "name": self.divisions.get(id).cloned().unwrap_or_default(),
            "selfUri": format!("/api/v2/authorization/divisions/{id}"),
        })
    }

    // ---- queues and agents ----

    pub(crate) fn add_queue(&mut self, name: &str, division: &str) -> String {
        let id = new_id();
        let division_id = self.division_id(division);
        let now = Utc::now();
        self.queues.insert(
            id.clone(),
            Queue {
                id: id.clone(),
                name: name.to_owned(),
                division_id,
                created: now,
                modified: now,
            },
        );
        id
    }

    pub(crate) fn rename_queue(&mut self, id: &str, new_name: &str) {
        if let Some(q) = self.queues.get_mut(id) {
            new_name.clone_into(&mut q.name);
            q.modified = Utc::now();
        }
    }

    pub(crate) fn delete_queue(&mut self, id: &str) {
        self.queues.remove(id);
        for agent in self.agents.values_mut() {
            agent.queues.remove(id);
        }
        self.conversations.retain(|(q, _), _| q != id);
    }

    pub(crate) fn add_agent(
        &mut self,
        presence: SystemPresence,
        routing: RoutingStatus,
        queue_ids: &[&str],
    ) -> String {
        let id = new_id();
        let n = self.next_agent;
        self.next_agent += 1;
        let presence_id = self.assign_presence_id(presence);
        let now = Utc::now();
        self.agents.insert(
            id.clone(),
            Agent {
                id: id.clone(),
                name: format!("Sim Agent {n:03}"),
                presence,
                presence_id,
                presence_since: now,
                routing,
                routing_since: now,
                queues: queue_ids.iter().map(|q| (*q).to_owned()).collect(),
                unjoined: BTreeSet::new(),
            },
        );
        id
    }

    pub(crate) fn set_agent(
        &mut self,
        user_id: &str,
        presence: SystemPresence,
        routing: RoutingStatus,
    ) {
        if !self.agents.contains_key(user_id) {
            return;
        }
        let presence_id = self.assign_presence_id(presence);
        let now = Utc::now();
        if let Some(a) = self.agents.get_mut(user_id) {
            if a.presence != presence {
                a.presence_since = now;
            }
            if a.routing != routing {
                a.routing_since = now;
            }
            a.presence = presence;
            a.presence_id = presence_id;
            a.routing = routing;
        }
    }

    pub(crate) fn set_membership(&mut self, user_id: &str, queue_id: &str, member: bool) {
        if let Some(a) = self.agents.get_mut(user_id) {
            if member {
                a.queues.insert(queue_id.to_owned());
            } else {
                a.queues.remove(queue_id);
                a.unjoined.remove(queue_id);
            }
        }
    }

    /// Joins (or unjoins) a member to a queue; an agent who is not a member is left alone.
    pub(crate) fn set_joined(&mut self, user_id: &str, queue_id: &str, joined: bool) {
        if let Some(a) = self.agents.get_mut(user_id)
            && a.queues.contains(queue_id)
        {
            if joined {
                a.unjoined.remove(queue_id);
            } else {
                a.unjoined.insert(queue_id.to_owned());
            }
        }
    }

    pub(crate) fn members<'a>(&'a self, queue_id: &'a str) -> impl Iterator<Item = &'a Agent> + 'a {
        self.agents
            .values()
            .filter(move |a| a.queues.contains(queue_id))
    }

    pub(crate) fn queue(&self, id: &str) -> Option<&Queue> {
        self.queues.get(id)
    }

    pub(crate) fn queue_json(&self, q: &Queue) -> Value {
        let members = self.members(&q.id).count();
        let joined = self.members(&q.id).filter(|a| a.joined(&q.id)).count();
        json!({
            "id": q.id,
            "name": q.name,
            "division": self.division_json(&q.division_id),
            "dateCreated": iso(q.created),
            "dateModified": iso(q.modified),
            "createdBy": "sim",
            "modifiedBy": "sim",
            "state": "active",
            "version": 1,
            "memberCount": members,
            "userMemberCount": members,
            "joinedMemberCount": joined,
            "mediaSettings": {},
            "acwSettings": {"wrapupPrompt": "OPTIONAL", "timeoutMs": 0},
            "skillEvaluationMethod": "ALL",
            "autoAnswerOnly": false,
            "selfUri": format!("/api/v2/routing/queues/{}", q.id),
        })
    }

    /// Matching queues as API entities, sorted by name.
    pub(crate) fn list_queues(&self, f: &QueueFilter) -> Vec<Value> {
        let mut found: Vec<&Queue> = self
            .queues
            .values()
            .filter(|q| {
                f.name
                    .as_deref()
                    .is_none_or(|n| queue_name_match(n, &q.name))
            })
            .filter(|q| f.ids.is_empty() || f.ids.contains(&q.id))
            .filter(|q| f.division_ids.is_empty() || f.division_ids.contains(&q.division_id))
            .collect();
        found.sort_by(|a, b| {
            a.name
                .to_lowercase()
                .cmp(&b.name.to_lowercase())
                .then_with(|| a.id.cmp(&b.id))
        });
        if f.descending {
            found.reverse();
        }
        found.into_iter().map(|q| self.queue_json(q)).collect()
    }

    /// Queue members as QueueMember entities, sorted by name.
    pub(crate) fn member_entities(
        &self,
        queue_id: &str,
        presence: bool,
        routing: bool,
    ) -> Vec<Value> {
        let mut members: Vec<&Agent> = self.members(queue_id).collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        members
            .into_iter()
            .map(|a| {
                let mut user = json!({
                    "id": a.id,
                    "name": a.name,
                    "state": "active",
                    "selfUri": format!("/api/v2/users/{}", a.id),
                });
                if presence && let Some(u) = user.as_object_mut() {
                    u.insert(
                        "presence".to_owned(),
                        json!({
                            "source": "PURECLOUD",
                            "primary": true,
                            "presenceDefinition": {
                                "id": a.presence_id,
                                "systemPresence": a.presence.wire_name(),
                                "selfUri": format!("/api/v2/presencedefinitions/{}", a.presence_id),
                            },
                            "presenceMessage": self.presence_label(&a.presence_id),
                            "modifiedDate": iso(a.presence_since),
                        }),
                    );
                }
                let mut member = json!({
                    "id": a.id,
                    "name": a.name,
                    "user": user,
                    "ringNumber": 1,
                    "joined": a.joined(queue_id),
                    "memberBy": "user",
                    "selfUri": format!("/api/v2/users/{}", a.id),
                });
                if routing && let Some(m) = member.as_object_mut() {
                    m.insert(
                        "routingStatus".to_owned(),
                        json!({
                            "userId": a.id,
                            "status": a.effective_routing().wire_name(),
                            "startTime": iso(a.routing_since),
                        }),
                    );
                }
                member
            })
            .collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn queue_name_matching() {
        assert!(queue_name_match("sales*", "Sales EU"));
        assert!(queue_name_match("*eu", "Sales EU"));
        assert!(queue_name_match("*les*", "Sales EU"));
        assert!(queue_name_match("sales eu", "SALES EU"));
        assert!(!queue_name_match("sales", "Sales EU"));
        assert!(!queue_name_match("s*u", "Sales EU"));
        assert!(queue_name_match("*", "anything"));
    }
}
