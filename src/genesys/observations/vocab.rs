//! The observation API's vocabulary: metrics, media types, system presences and
//! routing statuses, as the API spells them.

/// The observation metrics of the API (`QueueObservationQuery.metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ApiMetric {
    ActiveUsers,
    Alerting,
    Interacting,
    LongestInteracting,
    LongestWaiting,
    MemberUsers,
    OffQueueUsers,
    OnQueueUsers,
    UserPresences,
    UserRoutingStatuses,
    Waiting,
}

impl ApiMetric {
    pub const ALL: [ApiMetric; 11] = [
        Self::ActiveUsers,
        Self::Alerting,
        Self::Interacting,
        Self::LongestInteracting,
        Self::LongestWaiting,
        Self::MemberUsers,
        Self::OffQueueUsers,
        Self::OnQueueUsers,
        Self::UserPresences,
        Self::UserRoutingStatuses,
        Self::Waiting,
    ];

    pub fn wire_name(self) -> &'static str {
        match self {
            Self::ActiveUsers => "oActiveUsers",
            Self::Alerting => "oAlerting",
            Self::Interacting => "oInteracting",
            Self::LongestInteracting => "oLongestInteracting",
            Self::LongestWaiting => "oLongestWaiting",
            Self::MemberUsers => "oMemberUsers",
            Self::OffQueueUsers => "oOffQueueUsers",
            Self::OnQueueUsers => "oOnQueueUsers",
            Self::UserPresences => "oUserPresences",
            Self::UserRoutingStatuses => "oUserRoutingStatuses",
            Self::Waiting => "oWaiting",
        }
    }

    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.wire_name() == name)
    }

    /// Conversation metrics come grouped by queue and media type; user metrics by queue.
    pub fn is_conversation(self) -> bool {
        matches!(
            self,
            Self::Alerting
                | Self::Interacting
                | Self::Waiting
                | Self::LongestInteracting
                | Self::LongestWaiting
        )
    }

    /// Whether `detailMetrics` accepts it (every metric but the two oLongest*).
    pub fn takes_detail(self) -> bool {
        !matches!(self, Self::LongestInteracting | Self::LongestWaiting)
    }

    /// Whether the qualifiers are organization presence ids.
    pub fn qualified_by_presence(self) -> bool {
        matches!(self, Self::UserPresences | Self::OffQueueUsers)
    }

    /// Whether the qualifiers are routing statuses.
    pub fn qualified_by_routing(self) -> bool {
        matches!(self, Self::OnQueueUsers | Self::UserRoutingStatuses)
    }
}

/// Media types of conversation metrics' groups. `Other` holds any media type this
/// version does not know, so sums over all media stay right when Genesys adds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MediaType {
    Voice,
    Chat,
    Email,
    Message,
    Callback,
    Cobrowse,
    Video,
    Screenshare,
    Unknown,
    Other,
}

impl MediaType {
    /// The media types a configuration may name, as the API spells them.
    pub const NAMED: [MediaType; 9] = [
        Self::Voice,
        Self::Chat,
        Self::Email,
        Self::Message,
        Self::Callback,
        Self::Cobrowse,
        Self::Video,
        Self::Screenshare,
        Self::Unknown,
    ];

    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Voice => "voice",
            Self::Chat => "chat",
            Self::Email => "email",
            Self::Message => "message",
            Self::Callback => "callback",
            Self::Cobrowse => "cobrowse",
            Self::Video => "video",
            Self::Screenshare => "screenshare",
            Self::Unknown => "unknown",
            Self::Other => "other",
        }
    }

    /// A named media type (case-insensitive); None for anything else.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMED
            .into_iter()
            .find(|m| m.wire_name().eq_ignore_ascii_case(name.trim()))
    }

    /// A media type as an answer spells it: unknown names read as `Other`.
    pub fn from_answer(name: &str) -> Self {
        Self::from_name(name).unwrap_or(Self::Other)
    }
}

/// System presences (`systemToOrganizationMappings` keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SystemPresence {
    Available,
    Away,
    Busy,
    Offline,
    Idle,
    OnQueue,
    Meal,
    Training,
    Meeting,
    Break,
}

impl SystemPresence {
    pub const ALL: [SystemPresence; 10] = [
        Self::Available,
        Self::Away,
        Self::Busy,
        Self::Offline,
        Self::Idle,
        Self::OnQueue,
        Self::Meal,
        Self::Training,
        Self::Meeting,
        Self::Break,
    ];

    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Available => "AVAILABLE",
            Self::Away => "AWAY",
            Self::Busy => "BUSY",
            Self::Offline => "OFFLINE",
            Self::Idle => "IDLE",
            Self::OnQueue => "ON_QUEUE",
            Self::Meal => "MEAL",
            Self::Training => "TRAINING",
            Self::Meeting => "MEETING",
            Self::Break => "BREAK",
        }
    }

    /// `BREAK`, `break`, `On Queue`, `on-queue` all name a presence.
    pub fn from_name(name: &str) -> Option<Self> {
        let norm = name.trim().to_ascii_uppercase().replace([' ', '-'], "_");
        Self::ALL.into_iter().find(|p| p.wire_name() == norm)
    }
}

/// Routing statuses (qualifiers of oOnQueueUsers and oUserRoutingStatuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RoutingStatus {
    Idle,
    Interacting,
    Communicating,
    NotResponding,
    OffQueue,
}

impl RoutingStatus {
    pub const ALL: [RoutingStatus; 5] = [
        Self::Idle,
        Self::Interacting,
        Self::Communicating,
        Self::NotResponding,
        Self::OffQueue,
    ];

    pub fn wire_name(self) -> &'static str {
        match self {
            Self::Idle => "IDLE",
            Self::Interacting => "INTERACTING",
            Self::Communicating => "COMMUNICATING",
            Self::NotResponding => "NOT_RESPONDING",
            Self::OffQueue => "OFF_QUEUE",
        }
    }

    pub fn from_wire(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.wire_name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip() {
        for m in ApiMetric::ALL {
            assert_eq!(ApiMetric::from_wire(m.wire_name()), Some(m));
        }
        for p in SystemPresence::ALL {
            assert_eq!(SystemPresence::from_name(p.wire_name()), Some(p));
        }
        assert_eq!(
            SystemPresence::from_name("on queue"),
            Some(SystemPresence::OnQueue)
        );
        for m in MediaType::NAMED {
            assert_eq!(MediaType::from_name(m.wire_name()), Some(m));
        }
        assert_eq!(MediaType::from_name("other"), None);
    }
}
