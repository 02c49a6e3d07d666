//! The public vocabulary a test scripts the org with: presences, routing statuses, column
//! types, and the ground truth of a queue.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

/// System presences, as Genesys names them on the wire (`AVAILABLE`, `ON_QUEUE`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SystemPresence {
    Available,
    Away,
    Busy,
    Offline,
    Idle,
    OnQueue,
    Meal,
    Meeting,
    Training,
    Break,
}

impl SystemPresence {
    pub const ALL: [SystemPresence; 10] = [
        SystemPresence::Available,
        SystemPresence::Away,
        SystemPresence::Busy,
        SystemPresence::Offline,
        SystemPresence::Idle,
        SystemPresence::OnQueue,
        SystemPresence::Meal,
        SystemPresence::Meeting,
        SystemPresence::Training,
        SystemPresence::Break,
    ];

    pub fn wire_name(self) -> &'static str {
        match self {
            SystemPresence::Available => "AVAILABLE",
            SystemPresence::Away => "AWAY",
            SystemPresence::Busy => "BUSY",
            SystemPresence::Offline => "OFFLINE",
            SystemPresence::Idle => "IDLE",
            SystemPresence::OnQueue => "ON_QUEUE",
            SystemPresence::Meal => "MEAL",
            SystemPresence::Meeting => "MEETING",
            SystemPresence::Training => "TRAINING",
            SystemPresence::Break => "BREAK",
        }
    }

    pub fn from_wire(name: &str) -> Option<SystemPresence> {
        SystemPresence::ALL
            .into_iter()
            .find(|p| p.wire_name().eq_ignore_ascii_case(name))
    }

    /// The label an org admin would see for the presence definition.
    pub(crate) fn label(self) -> &'static str {
        match self {
            SystemPresence::Available => "Available",
            SystemPresence::Away => "Away",
            SystemPresence::Busy => "Busy",
            SystemPresence::Offline => "Offline",
            SystemPresence::Idle => "Idle",
            SystemPresence::OnQueue => "On Queue",
            SystemPresence::Meal => "Meal",
            SystemPresence::Meeting => "Meeting",
            SystemPresence::Training => "Training",
            SystemPresence::Break => "Break",
        }
    }
}

/// Routing statuses, wire names `OFF_QUEUE`, `IDLE`, ...
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoutingStatus {
    OffQueue,
    Idle,
    Interacting,
    NotResponding,
    Communicating,
}

impl RoutingStatus {
    pub const ALL: [RoutingStatus; 5] = [
        RoutingStatus::OffQueue,
        RoutingStatus::Idle,
        RoutingStatus::Interacting,
        RoutingStatus::NotResponding,
        RoutingStatus::Communicating,
    ];

    pub fn wire_name(self) -> &'static str {
        match self {
            RoutingStatus::OffQueue => "OFF_QUEUE",
            RoutingStatus::Idle => "IDLE",
            RoutingStatus::Interacting => "INTERACTING",
            RoutingStatus::NotResponding => "NOT_RESPONDING",
            RoutingStatus::Communicating => "COMMUNICATING",
        }
    }

    pub fn from_wire(name: &str) -> Option<RoutingStatus> {
        RoutingStatus::ALL
            .into_iter()
            .find(|s| s.wire_name().eq_ignore_ascii_case(name))
    }
}

/// Data table column types (JSON Schema `type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    String,
    Integer,
    Number,
    Boolean,
}

impl FieldType {
    pub fn wire_name(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Number => "number",
            FieldType::Boolean => "boolean",
        }
    }

    pub fn from_wire(name: &str) -> Option<FieldType> {
        match name {
            "string" => Some(FieldType::String),
            "integer" => Some(FieldType::Integer),
            "number" => Some(FieldType::Number),
            "boolean" => Some(FieldType::Boolean),
            _ => None,
        }
    }
}

/// Ground truth for one queue, computed from the scripted state (not from the answer's JSON).
///
/// Members joined to the queue (`active`) are the ones the user metrics count; `members`
/// counts every member. `online`: joined members whose presence is not Offline.
/// `on_queue`: joined members On Queue (routing status not OFF_QUEUE), split by routing
/// status into `idle`, `interacting`, `communicating`, `not_responding`. `off_queue`:
/// joined members neither on queue nor Offline. `presences`: joined members per system
/// presence. `waiting`, `interactions`, `alerting`: interactions in the queue, all media
/// types, with the per-media split beside them. `oldest_waiting`: when the oldest waiting
/// interaction of each media type started waiting.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct QueueTruth {
    pub online: u64,
    pub on_queue: u64,
    pub idle: u64,
    pub interacting: u64,
    pub waiting: u64,
    pub communicating: u64,
    pub not_responding: u64,
    pub off_queue: u64,
    pub members: u64,
    pub active: u64,
    pub presences: BTreeMap<SystemPresence, u64>,
    pub interactions: u64,
    pub alerting: u64,
    pub waiting_by_media: BTreeMap<String, u64>,
    pub interactions_by_media: BTreeMap<String, u64>,
    pub alerting_by_media: BTreeMap<String, u64>,
    pub oldest_waiting: BTreeMap<String, DateTime<Utc>>,
}

impl QueueTruth {
    /// Interactions waiting in the given media types.
    pub fn waiting_in(&self, media: &[&str]) -> u64 {
        media
            .iter()
            .filter_map(|m| self.waiting_by_media.get(*m))
            .sum()
    }

    /// Members in a system presence.
    pub fn in_presence(&self, presence: SystemPresence) -> u64 {
        self.presences.get(&presence).copied().unwrap_or(0)
    }

    /// When the oldest interaction of the given media types (all when None) started waiting.
    pub fn oldest_waiting_in(&self, media: Option<&[&str]>) -> Option<DateTime<Utc>> {
        self.oldest_waiting
            .iter()
            .filter(|(m, _)| media.is_none_or(|list| list.contains(&m.as_str())))
            .map(|(_, t)| *t)
            .min()
    }

    /// Whole seconds the oldest waiting interaction (of the media types given) has waited
    /// at `now`; 0 when none waits.
    pub fn longest_waiting_seconds(&self, now: DateTime<Utc>, media: Option<&[&str]>) -> u64 {
        self.oldest_waiting_in(media)
            .map_or(0, |t| u64::try_from((now - t).num_seconds()).unwrap_or(0))
    }
}
