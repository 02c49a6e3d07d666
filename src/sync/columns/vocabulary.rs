//! The metric vocabulary: every metric a column can have, what it takes, what it asks
//! the API for and how its value is computed from a queue's typed observation. A new
//! metric is one more entry in [`VOCABULARY`].

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};

use super::{KEY, UPDATED_AT, WRITER};
use crate::genesys::observations::{
    ApiMetric, Entry, MediaType, Qualifier, QueueObservation, RoutingStatus, SystemPresence,
};

/// Longest column name accepted (see [`check_name`]).
pub const MAX_NAME_LEN: usize = 64;

/// What a column counts, for grouping gauges by meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Unit {
    Agents,
    Interactions,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agents => "agents",
            Self::Interactions => "interactions",
            Self::Seconds => "seconds",
        }
    }
}

/// The filters of one column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Media types to sum over; None = all.
    pub media: Option<BTreeSet<MediaType>>,
    /// The system presence counted (metric `presence`).
    pub presence: Option<SystemPresence>,
}

impl Filter {
    fn media_ok(&self, e: &Entry) -> bool {
        match &self.media {
            None => true,
            Some(set) => e.media.is_some_and(|m| set.contains(&m)),
        }
    }
}

/// One metric of the vocabulary.
pub struct MetricDef {
    /// The name written in `[columns]`.
    pub name: &'static str,
    /// What it counts, for the README and error messages.
    pub meaning: &'static str,
    pub unit: Unit,
    /// Whether it takes `media = [...]`.
    pub takes_media: bool,
    /// Whether it needs `presence = "..."`.
    pub needs_presence: bool,
    /// API metrics the query must ask for.
    pub needs: &'static [ApiMetric],
    /// API metrics whose individual observations (`detailMetrics`) it needs.
    pub detail: &'static [ApiMetric],
    /// The value from a queue's observation at `now` (the clock is passed in).
    value: fn(&Filter, &QueueObservation, DateTime<Utc>) -> u64,
}

impl fmt::Debug for MetricDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for MetricDef {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for MetricDef {}

fn on_queue_by(o: &QueueObservation, s: RoutingStatus) -> u64 {
    o.sum(ApiMetric::OnQueueUsers, |e| {
        e.qualifier == Qualifier::Routing(s)
    })
}

/// Every metric a column can have. All values are whole numbers; a metric absent from
/// the answer is 0 (Genesys leaves out zero counts).
pub const VOCABULARY: &[MetricDef] = &[
    MetricDef {
        name: "online",
        meaning: "members whose presence is not Offline",
        unit: Unit::Agents,
        takes_media: false,
        needs_presence: false,
        needs: &[ApiMetric::UserPresences],
        detail: &[],
        value: |_, o, _| {
            o.sum(ApiMetric::UserPresences, |e| {
                e.qualifier != Qualifier::Presence(SystemPresence::Offline)
            })
        },
    },
    MetricDef {
        name: "presence",
        meaning: "members in the system presence given by `presence` (every organization presence mapped to it)",
        unit: Unit::Agents,
        takes_media: false,
        needs_presence: true,
        needs: &[ApiMetric::UserPresences],
        detail: &[],
        value: |f, o, _| match f.presence {
            Some(p) => o.sum(ApiMetric::UserPresences, |e| {
                e.qualifier == Qualifier::Presence(p)
            }),
            None => 0,
        },
    },
    MetricDef {
        name: "on_queue",
        meaning: "agents on queue, every routing status",
        unit: Unit::Agents,
        takes_media: false,
        needs_presence: false,
        needs: &[ApiMetric::OnQueueUsers],
        detail: &[],
        value: |_, o, _| o.sum(ApiMetric::OnQueueUsers, |_| true),
    },
    MetricDef {
        name: "idle",
        meaning: "on-queue agents with routing status IDLE (ready for an interaction)",
        unit: Unit::Agents,
        takes_media: false,
        needs_presence: false,
        needs: &[ApiMetric::OnQueueUsers],
        detail: &[],
        value: |_, o, _| on_queue_by(o, RoutingStatus::Idle),
    },
    MetricDef {
        name: "interacting",
        meaning: "on-queue agents with routing status INTERACTING",
        unit: Unit::Agents,
        takes_media: false,
        needs_presence: false,
        needs: &[ApiMetric::OnQueueUsers],
        detail: &[],
        value: |_, o, _| on_queue_by(o, RoutingStatus::Interacting),
    },
    MetricDef {
        name: "communicating",
        meaning: "on-queue agents with routing status COMMUNICATING (on a non-ACD interaction)",
        unit: Unit::Agents,
        takes_media: false,
        needs_presence: false,
        needs: &[ApiMetric::OnQueueUsers],
        detail: &[],
        value: |_, o, _| on_queue_by(o, RoutingStatus::Communicating),
    },
    MetricDef {
        name: "not_responding",
        meaning: "on-queue agents with routing status NOT_RESPONDING",
        unit: Unit::Agents,
        takes_media: false,
        needs_presence: false,
        needs: &[ApiMetric::OnQueueUsers],
        detail: &[],
        value: |_, o, _| on_queue_by(o, RoutingStatus::NotResponding),
    },
    MetricDef {
        name: "off_queue",
        meaning: "members off queue",
        unit: Unit::Agents,
        takes_media: false,
        needs_presence: false,
        needs: &[ApiMetric::OffQueueUsers],
        detail: &[],
        value: |_, o, _| o.sum(ApiMetric::OffQueueUsers, |_| true),
    },
    MetricDef {
        name: "members",
        meaning: "queue members",
        unit: Unit::Agents,
        takes_media: false,
        needs_presence: false,
        needs: &[ApiMetric::MemberUsers],
        detail: &[],
        value: |_, o, _| o.sum(ApiMetric::MemberUsers, |_| true),
    },
    MetricDef {
        name: "active",
        meaning: "members joined to the queue (active)",
        unit: Unit::Agents,
        takes_media: false,
        needs_presence: false,
        needs: &[ApiMetric::ActiveUsers],
        detail: &[],
        value: |_, o, _| o.sum(ApiMetric::ActiveUsers, |_| true),
    },
    MetricDef {
        name: "waiting",
        meaning: "interactions waiting, summed over the media types given (all if none)",
        unit: Unit::Interactions,
        takes_media: true,
        needs_presence: false,
        needs: &[ApiMetric::Waiting],
        detail: &[],
        value: |f, o, _| o.sum(ApiMetric::Waiting, |e| f.media_ok(e)),
    },
    MetricDef {
        name: "interactions",
        meaning: "interactions being handled, summed over the media types given (all if none)",
        unit: Unit::Interactions,
        takes_media: true,
        needs_presence: false,
        needs: &[ApiMetric::Interacting],
        detail: &[],
        value: |f, o, _| o.sum(ApiMetric::Interacting, |e| f.media_ok(e)),
    },
    MetricDef {
        name: "alerting",
        meaning: "interactions alerting an agent, summed over the media types given (all if none)",
        unit: Unit::Interactions,
        takes_media: true,
        needs_presence: false,
        needs: &[ApiMetric::Alerting],
        detail: &[],
        value: |f, o, _| o.sum(ApiMetric::Alerting, |e| f.media_ok(e)),
    },
    MetricDef {
        name: "longest_waiting_seconds",
        meaning: "whole seconds since the oldest waiting interaction (of the media types given) started waiting; 0 when none waits",
        unit: Unit::Seconds,
        takes_media: true,
        needs_presence: false,
        // The documented way: detailMetrics oWaiting lists the waiting interactions,
        // oldest first, and keeps the oldest when truncated. oLongestWaiting's
        // calculatedMetricValue is not used: whether it holds a start time or a
        // duration is not documented.
        needs: &[ApiMetric::Waiting],
        detail: &[ApiMetric::Waiting],
        value: |f, o, now| match o.oldest(ApiMetric::Waiting, |e| f.media_ok(e)) {
            Some(start) => u64::try_from((now - start).num_seconds()).unwrap_or(0),
            None => 0,
        },
    },
];

/// A metric by its configured name.
pub fn metric(name: &str) -> Option<&'static MetricDef> {
    VOCABULARY.iter().find(|m| m.name == name)
}

/// One configured column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub metric: &'static MetricDef,
    pub filter: Filter,
}

impl Column {
    pub fn unit(&self) -> Unit {
        self.metric.unit
    }

    /// The column's value for an observed queue at `now`.
    pub fn value(&self, o: &QueueObservation, now: DateTime<Utc>) -> u64 {
        (self.metric.value)(&self.filter, o, now)
    }
}

/// Why a column entry is refused; the config turns it into an error with key and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub problem: String,
    pub fix: String,
}

impl SpecError {
    pub(super) fn new(problem: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

fn vocabulary_list() -> String {
    VOCABULARY
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn media_list() -> String {
    MediaType::NAMED
        .iter()
        .map(|m| m.wire_name())
        .collect::<Vec<_>>()
        .join(", ")
}

fn presence_list() -> String {
    SystemPresence::ALL
        .iter()
        .map(|p| p.wire_name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds a column from its configured parts, checking the metric and its filters.
pub fn column(
    name: &str,
    metric_name: &str,
    media: Option<&[String]>,
    presence: Option<&str>,
) -> Result<Column, SpecError> {
    let Some(m) = metric(metric_name.trim()) else {
        return Err(SpecError::new(
            format!("`{metric_name}` is not a metric"),
            format!("use one of: {}", vocabulary_list()),
        ));
    };
    let mut filter = Filter::default();
    if let Some(list) = media {
        if !m.takes_media {
            return Err(SpecError::new(
                format!("metric `{}` does not take `media`", m.name),
                "remove `media`; only waiting, interactions, alerting and longest_waiting_seconds are counted per media type",
            ));
        }
        if list.is_empty() {
            return Err(SpecError::new(
                "`media` is empty, so the column would always be 0",
                format!(
                    "list media types ({}) or remove `media` to count them all",
                    media_list()
                ),
            ));
        }
        let mut set = BTreeSet::new();
        for name in list {
            let t = MediaType::from_name(name).ok_or_else(|| {
                SpecError::new(
                    format!("`{name}` is not a media type"),
                    format!("use media types from: {}", media_list()),
                )
            })?;
            set.insert(t);
        }
        filter.media = Some(set);
    }
    match (presence, m.needs_presence) {
        (Some(p), true) => {
            let sp = SystemPresence::from_name(p).ok_or_else(|| {
                SpecError::new(
                    format!("`{p}` is not a system presence"),
                    format!("use one of: {}", presence_list()),
                )
            })?;
            filter.presence = Some(sp);
        }
        (Some(_), false) => {
            return Err(SpecError::new(
                format!("metric `{}` does not take `presence`", m.name),
                "remove `presence`, or use metric = \"presence\" to count members in one presence",
            ));
        }
        (None, true) => {
            return Err(SpecError::new(
                "metric `presence` needs the presence to count",
                format!(
                    "write {{ metric = \"presence\", presence = \"BREAK\" }} with one of: {}",
                    presence_list()
                ),
            ));
        }
        (None, false) => {}
    }
    check_name(name)?;
    Ok(Column {
        name: name.to_owned(),
        metric: m,
        filter,
    })
}

/// Column names must be field names every part of Genesys takes. Genesys does not
/// document which property names a data table schema accepts (the Resource Center says
/// only that the reference key label cannot contain `/` or `\`, and each property's
/// `$id` is `/properties/<name>`), so the daemon accepts what is safe everywhere a
/// name travels (JSON schema, row JSON, CSV import header, Architect expressions): a
/// letter, then letters, digits and `_`, at most 64 characters.
pub fn check_name(name: &str) -> Result<(), SpecError> {
    let fix = "use a name that starts with a letter and has only letters, digits and _ \
               (at most 64 characters), such as WaitingVoice";
    let reserved = [KEY, UPDATED_AT, WRITER];
    if let Some(r) = reserved.iter().find(|r| r.eq_ignore_ascii_case(name)) {
        return Err(SpecError::new(
            format!("`{name}` is reserved: the daemon writes `{r}` itself"),
            "choose another name",
        ));
    }
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_NAME_LEN;
    if ok {
        Ok(())
    } else {
        Err(SpecError::new(
            format!("`{name}` is not a field name Genesys takes for sure"),
            fix,
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Columns;
    use super::super::tests::{at, s, thirteen};
    use super::*;
    use crate::genesys::observations::fixture::ANSWER;
    use crate::genesys::observations::parse_response;

    #[test]
    fn thirteen_columns_compute_from_one_answer() {
        let cols = thirteen();
        let obs = parse_response(ANSWER.as_bytes(), &s(&["q1"])).unwrap();
        let v = cols.values(&obs["q1"], at(10, 2, 0));
        let got: Vec<(&str, u64)> = cols.iter().map(|c| c.name.as_str()).zip(v.0).collect();
        assert_eq!(
            got,
            [
                // Every presence but Offline, the one the mappings do not name too.
                ("Online", 11),
                ("OnQueue", 6),
                ("Idle", 2),
                ("Interacting", 3),
                ("Waiting", 8),
                ("WaitingVoice", 4),
                ("WaitingDigital", 3),
                ("Members", 19),
                ("OffQueue", 3),
                ("OnBreak", 3),
                ("NotResponding", 1),
                ("Alerting", 2),
                ("LongestWaitingSeconds", 240),
            ]
        );
    }

    #[test]
    fn longest_waiting_is_zero_when_none_waits_and_per_media() {
        let voice = column("V", "longest_waiting_seconds", Some(&s(&["voice"])), None).unwrap();
        let obs = parse_response(ANSWER.as_bytes(), &s(&["q1"])).unwrap();
        assert_eq!(voice.value(&obs["q1"], at(10, 0, 30)), 30);
        let chat = column("C", "longest_waiting_seconds", Some(&s(&["chat"])), None).unwrap();
        assert_eq!(chat.value(&obs["q1"], at(10, 0, 30)), 0);
        // A clock behind the observation does not wrap around.
        assert_eq!(voice.value(&obs["q1"], at(9, 0, 0)), 0);
    }

    #[test]
    fn bad_entries_are_refused_with_a_fix() {
        let err = column("X", "queued", None, None).unwrap_err();
        assert!(err.fix.contains("longest_waiting_seconds"), "{err:?}");
        let err = column("X", "waiting", Some(&s(&["fax"])), None).unwrap_err();
        assert!(
            err.problem.contains("fax") && err.fix.contains("voice"),
            "{err:?}"
        );
        let err = column("X", "idle", Some(&s(&["voice"])), None).unwrap_err();
        assert!(err.problem.contains("does not take `media`"), "{err:?}");
        let err = column("X", "idle", None, Some("BREAK")).unwrap_err();
        assert!(err.problem.contains("does not take `presence`"), "{err:?}");
        let err = column("X", "presence", None, None).unwrap_err();
        assert!(err.fix.contains("BREAK"), "{err:?}");
        let err = column("X", "presence", None, Some("LUNCH")).unwrap_err();
        assert!(err.fix.contains("MEAL"), "{err:?}");
        for bad in [
            "key",
            "KEY",
            "updatedat",
            "9lives",
            "On Break",
            "a/b",
            "Ümlaut",
            "",
        ] {
            assert!(column(bad, "idle", None, None).is_err(), "{bad}");
        }
        assert!(column(&"a".repeat(65), "idle", None, None).is_err());
        assert!(column(&"a".repeat(64), "idle", None, None).is_ok());
        let dup = Columns::new(vec![
            column("Idle", "idle", None, None).unwrap(),
            column("IDLE", "idle", None, None).unwrap(),
        ])
        .unwrap_err();
        assert_eq!(dup.index, Some(1));
        let many: Vec<Column> = (0..49)
            .map(|i| column(&format!("C{i}"), "idle", None, None).unwrap())
            .collect();
        assert_eq!(Columns::new(many).unwrap_err().index, Some(48));
        assert!(Columns::new(Vec::new()).is_err());
    }

    #[test]
    fn every_metric_has_a_unit_and_asks_for_something() {
        for m in VOCABULARY {
            assert!(!m.needs.is_empty(), "{}", m.name);
            assert!(m.detail.iter().all(|d| m.needs.contains(d)), "{}", m.name);
        }
    }
}
