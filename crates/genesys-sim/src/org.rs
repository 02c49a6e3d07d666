//! The org: one struct holding every concern's state. Each concern implements its part in
//! its own module (`directory`, `analytics`, `tables`); this file only builds the org and
//! runs the demo churn that spans them.

use std::collections::BTreeMap;

use rand::RngExt;

use chrono::Utc;

use crate::analytics::{ConvCounts, ConvKind};
use crate::directory::{Agent, HOME_DIVISION, Queue};
use crate::tables::Table;
use crate::tables::import::{ImportJob, ImportScript};
use crate::wire::new_id;
use crate::{RoutingStatus, SystemPresence};

pub(crate) struct Org {
    pub(crate) org_id: String,
    pub(crate) home_division: String,
    pub(crate) divisions: BTreeMap<String, String>,
    pub(crate) queues: BTreeMap<String, Queue>,
    pub(crate) agents: BTreeMap<String, Agent>,
    pub(crate) next_agent: u64,
    pub(crate) conversations: BTreeMap<(String, String), ConvCounts>,
    pub(crate) presence_ids: Vec<(SystemPresence, Vec<String>)>,
    /// Agents set to a system presence with several organization presences (Available,
    /// Break, ...) alternate between them, so clients must sum every org presence id mapped
    /// to a system presence.
    pub(crate) next_available: usize,
    /// Observations per `detailMetrics` list before it is truncated.
    pub(crate) detail_limit: usize,
    pub(crate) tables: BTreeMap<String, Table>,
    pub(crate) jobs: BTreeMap<String, ImportJob>,
    pub(crate) import_script: ImportScript,
    /// The most queue ids an observation query may name (400 above it).
    pub(crate) max_observation_queues: usize,
}

impl Default for Org {
    fn default() -> Self {
        Org::new()
    }
}

impl Org {
    pub(crate) fn new() -> Org {
        let home = new_id();
        let mut divisions = BTreeMap::new();
        divisions.insert(home.clone(), HOME_DIVISION.to_owned());
        let presence_ids = SystemPresence::ALL
            .into_iter()
            .map(|p| {
                let mut ids = vec![new_id()];
                // Orgs add their own presences under these (e.g. "Break - Coffee"); Offline,
                // Idle and On Queue have only the system's own.
                if !matches!(
                    p,
                    SystemPresence::Offline | SystemPresence::Idle | SystemPresence::OnQueue
                ) {
                    ids.push(new_id());
                }
                (p, ids)
            })
            .collect();
        Org {
            org_id: new_id(),
            home_division: home,
            divisions,
            queues: BTreeMap::new(),
            agents: BTreeMap::new(),
            next_agent: 1,
            conversations: BTreeMap::new(),
            presence_ids,
            next_available: 0,
            detail_limit: crate::analytics::DEFAULT_DETAIL_LIMIT,
            tables: BTreeMap::new(),
            jobs: BTreeMap::new(),
            import_script: ImportScript::default(),
            max_observation_queues: crate::analytics::MAX_OBSERVATION_QUEUES,
        }
    }
}

impl Org {
    // ---- demo churn ----

    /// Moves a fifth of the agents (at least one) to a random state and nudges waiting counts,
    /// so a live demo has something to sync.
    pub(crate) fn churn_step(&mut self) {
        let mut rng = rand::rng();
        let ids: Vec<String> = self.agents.keys().cloned().collect();
        let moves = (ids.len() / 5).max(1).min(ids.len());
        for _ in 0..moves {
            let Some(id) = ids.get(rng.random_range(0..ids.len())) else {
                continue;
            };
            let roll: u32 = rng.random_range(0..100);
            let presence = match roll {
                0..60 => SystemPresence::OnQueue,
                60..70 => SystemPresence::Available,
                70..78 => SystemPresence::Away,
                78..85 => SystemPresence::Break,
                85..90 => SystemPresence::Meal,
                90..95 => SystemPresence::Busy,
                _ => SystemPresence::Offline,
            };
            let routing = if presence == SystemPresence::OnQueue {
                match rng.random_range(0..100u32) {
                    0..45 => RoutingStatus::Idle,
                    45..90 => RoutingStatus::Interacting,
                    90..95 => RoutingStatus::Communicating,
                    _ => RoutingStatus::NotResponding,
                }
            } else {
                RoutingStatus::OffQueue
            };
            self.set_agent(id, presence, routing);
        }
        let now = Utc::now();
        let queue_ids: Vec<String> = self.queues.keys().cloned().collect();
        for q in queue_ids {
            let nudge = |org: &mut Org, media: &str, kind: ConvKind, delta: i64, max: i64| {
                let entry = org
                    .conversations
                    .entry((q.clone(), media.to_owned()))
                    .or_default();
                let n = (i64::from(entry.count(kind)) + delta).clamp(0, max);
                entry.resize(kind, u32::try_from(n).unwrap_or(0), now);
            };
            if rng.random_bool(0.3) {
                nudge(
                    self,
                    "voice",
                    ConvKind::Waiting,
                    rng.random_range(-2..=2),
                    20,
                );
            }
            if rng.random_bool(0.15) {
                nudge(
                    self,
                    "message",
                    ConvKind::Waiting,
                    rng.random_range(-1..=1),
                    8,
                );
            }
            if rng.random_bool(0.1) {
                nudge(
                    self,
                    "voice",
                    ConvKind::Alerting,
                    rng.random_range(-1..=1),
                    2,
                );
            }
            let interacting = self
                .members(&q)
                .filter(|a| a.effective_routing() == RoutingStatus::Interacting)
                .count();
            self.conversations
                .entry((q, "voice".to_owned()))
                .or_default()
                .resize(
                    ConvKind::Interacting,
                    u32::try_from(interacting).unwrap_or(u32::MAX),
                    now,
                );
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn churn_keeps_state_consistent() {
        let mut org = Org::new();
        let q = org.add_queue("Q", HOME_DIVISION);
        for _ in 0..10 {
            org.add_agent(SystemPresence::Offline, RoutingStatus::OffQueue, &[&q]);
        }
        for _ in 0..20 {
            org.churn_step();
        }
        let t = org.truth(&q).unwrap();
        assert!(t.on_queue <= t.online && t.idle + t.interacting <= t.on_queue);
    }
}
