//! The public vocabulary a test scripts the org with: presences, routing statuses, column
//! types, and the ground truth of a queue.

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

/// Ground truth for one queue, computed from the scripted state.
///
/// `online`: members whose presence is not Offline. `on_queue`: members On Queue whose routing
/// status is not OFF_QUEUE. `idle`/`interacting`: on-queue members in that routing status.
/// `waiting`: sum of `set_waiting` over media types.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct QueueTruth {
    pub online: u64,
    pub on_queue: u64,
    pub idle: u64,
    pub interacting: u64,
    pub waiting: u64,
}
