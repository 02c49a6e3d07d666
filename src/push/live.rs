//! The live state of push mode: each selected queue's raw observation, as the last poll
//! left it and the events since changed it, and the row values it gives. Pure: no I/O,
//! the clock passed in.
//!
//! Only push mode keeps these (a poll-only daemon drops each observation once its
//! values are computed): at 5,000 queues they are a few dozen entries per queue.
//!
//! How an event changes a queue (the rule, the same as the query's):
//! - An event is about one group: its media type's (conversation metrics) or, without a
//!   media type, the queue's user group (routing statuses).
//! - For each metric the event carries, that group's entries of the metric are replaced
//!   by the event's counts; a qualifier the event does not name is 0 (the API leaves
//!   zero counts out, and so may an event).
//! - Metrics the event does not carry keep their values (events carry what changed).
//! - Presence-qualified metrics (`oUserPresences`, `oOffQueueUsers`) are never taken
//!   from an event: their qualifiers are organization presence ids that only the query's
//!   `systemToOrganizationMappings` resolves. Presence-based columns (`online`,
//!   `presence`, `off_queue`) change with the poll only.
//! - A poll result replaces a queue's state whole.
//!
//! `longest_waiting_seconds` needs the start of the oldest waiting interaction, which
//! the query gives (`detailMetrics` observation dates) and an event does not (it carries
//! counts only). When an event changes `oWaiting` of a media type:
//! - to 0: nothing waits, so there is no oldest start (the column reads 0);
//! - from n > 0 to m > 0: the oldest start the poll saw is kept. If the oldest caller
//!   was answered meanwhile the column overstates the wait until the next poll (it
//!   cannot understate it: the caller still waiting started no earlier);
//! - from 0 to n: the event's arrival is the start (the interaction began waiting at
//!   most a second before Genesys published it).
//!
//! The next poll replaces all of this with the query's own dates.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::scheduler::Significance;
use crate::genesys::notifications::events::ObservationEvent;
use crate::genesys::observations::{
    ApiMetric, Entry, MediaType, Qualifier, QueueObservation, RoutingStatus,
};
use crate::sync::columns::{Columns, Values};

/// A row's values as the scheduler weighs them: equal when the values are (the time they
/// were computed at only matters to tell a seconds column that aged from one that moved).
#[derive(Debug, Clone)]
pub struct RowValues {
    pub values: Values,
    pub at: DateTime<Utc>,
    columns: Columns,
}

impl RowValues {
    pub fn new(values: Values, at: DateTime<Utc>, columns: Columns) -> Self {
        Self {
            values,
            at,
            columns,
        }
    }
}

impl PartialEq for RowValues {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl Significance for RowValues {
    /// Any column going from 0 to non-zero or back: a queue losing its last idle or
    /// on-queue agent, getting its first waiting interaction, or the reverse.
    fn crosses_zero(&self, old: &Self) -> bool {
        self.values
            .iter()
            .zip(old.values.iter())
            .any(|(&n, &o)| (n == 0) != (o == 0))
    }

    /// The column registry's change measure: the sum of relative changes, a seconds
    /// column that only aged weighing nothing.
    fn relative_change(&self, old: &Self) -> f64 {
        self.columns
            .change(&old.values, old.at, &self.values, self.at)
            .unwrap_or(0.0)
    }
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The queue's raw state changed.
    Changed,
    /// The event said what the state already held.
    Unchanged,
    /// No state for this queue: not selected, or not observed by a poll yet (the next
    /// poll brings it).
    NotSelected,
}

/// Each selected queue's raw observation, by queue id.
#[derive(Debug, Default)]
pub struct Live {
    queues: HashMap<String, QueueObservation>,
}

impl Live {
    pub fn new() -> Self {
        Self::default()
    }

    /// A poll observed the queue: its state is the poll's, whole.
    pub fn replace(&mut self, queue_id: String, observation: QueueObservation) {
        self.queues.insert(queue_id, observation);
    }

    /// Keeps only the queues of the selection.
    pub fn retain(&mut self, selected: &HashSet<&str>) {
        self.queues.retain(|id, _| selected.contains(id.as_str()));
    }

    pub fn get(&self, queue_id: &str) -> Option<&QueueObservation> {
        self.queues.get(queue_id)
    }

    pub fn len(&self) -> usize {
        self.queues.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }

    /// Applies an event that arrived at `arrived`.
    pub fn apply(&mut self, ev: &ObservationEvent, arrived: DateTime<Utc>) -> Applied {
        let Some(o) = self.queues.get_mut(&ev.queue_id) else {
            return Applied::NotSelected;
        };
        let next = merged(o, ev, arrived);
        if next == *o {
            Applied::Unchanged
        } else {
            *o = next;
            Applied::Changed
        }
    }
}

/// `o` with the event's metrics replaced (see the module comment).
fn merged(o: &QueueObservation, ev: &ObservationEvent, arrived: DateTime<Utc>) -> QueueObservation {
    let media = ev.media_type.as_deref().map(MediaType::from_answer);
    // The metrics the event carries (in the event's order, each once), presence-qualified
    // ones left out.
    let mut carried: Vec<ApiMetric> = Vec::new();
    for c in &ev.counts {
        if let Some(m) = ApiMetric::from_wire(&c.metric)
            && !m.qualified_by_presence()
            && !carried.contains(&m)
        {
            carried.push(m);
        }
    }
    if carried.is_empty() {
        return o.clone();
    }
    let in_group = |e: &Entry, m: ApiMetric| e.metric == m && e.media == media;
    let mut entries: Vec<Entry> = o
        .entries()
        .iter()
        .filter(|e| !carried.iter().any(|&m| in_group(e, m)))
        .copied()
        .collect();
    for &metric in &carried {
        let before: u64 = o
            .entries()
            .iter()
            .filter(|e| in_group(e, metric))
            .map(|e| e.count)
            .sum();
        let oldest_before = o
            .entries()
            .iter()
            .filter(|e| in_group(e, metric))
            .filter_map(|e| e.oldest)
            .min();
        let mut new: Vec<Entry> = Vec::new();
        for c in ev.counts.iter().filter(|c| c.metric == metric.wire_name()) {
            let qualifier = match c.qualifier.as_deref() {
                None => Qualifier::None,
                Some(q) if metric.qualified_by_routing() => {
                    RoutingStatus::from_wire(q).map_or(Qualifier::Other, Qualifier::Routing)
                }
                Some(_) => Qualifier::Other,
            };
            // The same qualifier twice in one event: the later count holds.
            new.retain(|e| e.qualifier != qualifier);
            if c.count > 0 {
                new.push(Entry {
                    metric,
                    media,
                    qualifier,
                    count: c.count,
                    oldest: None,
                });
            }
        }
        if metric == ApiMetric::Waiting
            && let Some(first) = new.first_mut()
        {
            first.oldest = if before > 0 {
                oldest_before
            } else {
                Some(arrived)
            };
        }
        entries.extend(new);
    }
    QueueObservation::from_entries(entries)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::genesys::notifications::events::MetricCount;
    use crate::genesys::observations::SystemPresence;
    use crate::sync::columns::{Columns, Values, column};
    use chrono::TimeZone;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0)
            .single()
            .unwrap()
            + chrono::Duration::seconds(s)
    }

    fn entry(
        metric: ApiMetric,
        media: Option<MediaType>,
        qualifier: Qualifier,
        count: u64,
        oldest: Option<DateTime<Utc>>,
    ) -> Entry {
        Entry {
            metric,
            media,
            qualifier,
            count,
            oldest,
        }
    }

    fn routing(s: RoutingStatus, n: u64) -> Entry {
        entry(
            ApiMetric::OnQueueUsers,
            None,
            Qualifier::Routing(s),
            n,
            None,
        )
    }

    fn presence(p: SystemPresence, n: u64) -> Entry {
        entry(
            ApiMetric::UserPresences,
            None,
            Qualifier::Presence(p),
            n,
            None,
        )
    }

    fn waiting(m: MediaType, n: u64, oldest: Option<DateTime<Utc>>) -> Entry {
        entry(ApiMetric::Waiting, Some(m), Qualifier::None, n, oldest)
    }

    /// As the last poll saw it: 2 idle + 3 interacting on queue, 7 online (5 on queue,
    /// 1 available, 1 on break), 4 voice waiting since t(-120), 1 chat since t(-30).
    fn polled() -> QueueObservation {
        QueueObservation::from_entries(vec![
            routing(RoutingStatus::Idle, 2),
            routing(RoutingStatus::Interacting, 3),
            presence(SystemPresence::OnQueue, 5),
            presence(SystemPresence::Available, 1),
            presence(SystemPresence::Break, 1),
            presence(SystemPresence::Offline, 2),
            waiting(MediaType::Voice, 4, Some(t(-120))),
            waiting(MediaType::Chat, 1, Some(t(-30))),
        ])
    }

    fn count(metric: &str, qualifier: Option<&str>, n: u64) -> MetricCount {
        MetricCount {
            metric: metric.into(),
            qualifier: qualifier.map(str::to_owned),
            count: n,
        }
    }

    fn event(media: Option<&str>, counts: Vec<MetricCount>) -> ObservationEvent {
        ObservationEvent {
            queue_id: "q".into(),
            media_type: media.map(str::to_owned),
            counts,
            unknown_metrics: 0,
        }
    }

    fn live() -> Live {
        let mut l = Live::new();
        l.replace("q".into(), polled());
        l
    }

    fn columns() -> Columns {
        let spec = [
            ("Online", "online", None),
            ("OnQueue", "on_queue", None),
            ("Idle", "idle", None),
            ("Interacting", "interacting", None),
            ("Waiting", "waiting", None),
            ("WaitingVoice", "waiting", Some(vec!["voice".to_owned()])),
            ("Longest", "longest_waiting_seconds", None),
            (
                "LongestChat",
                "longest_waiting_seconds",
                Some(vec!["chat".to_owned()]),
            ),
        ];
        Columns::new(
            spec.into_iter()
                .map(|(n, m, media)| column(n, m, media.as_deref(), None).unwrap())
                .collect(),
        )
        .unwrap()
    }

    fn values(l: &Live, now: DateTime<Utc>) -> Values {
        columns().values(l.get("q").unwrap(), now)
    }

    #[test]
    fn the_polled_state_gives_the_polls_values() {
        assert_eq!(values(&live(), t(0)).0, [7, 5, 2, 3, 5, 4, 120, 30]);
    }

    #[test]
    fn a_routing_event_replaces_the_user_groups_statuses_absent_ones_are_zero() {
        let mut l = live();
        // The last idle agent took a call: no IDLE entry at all in the event.
        let ev = event(None, vec![count("oOnQueueUsers", Some("INTERACTING"), 5)]);
        assert_eq!(l.apply(&ev, t(1)), Applied::Changed);
        let v = values(&l, t(1));
        assert_eq!(&v.0[1..4], [5, 0, 5], "on queue 5, idle 0, interacting 5");
        assert_eq!(
            v.0[0], 7,
            "online comes from presences: the poll's value stays"
        );
        assert_eq!(
            &v.0[4..6],
            [5, 4],
            "waiting untouched by a user-group event"
        );
    }

    #[test]
    fn a_media_event_changes_its_media_type_only_and_other_metrics_keep_their_values() {
        let mut l = live();
        let ev = event(Some("voice"), vec![count("oWaiting", None, 6)]);
        assert_eq!(l.apply(&ev, t(5)), Applied::Changed);
        let v = values(&l, t(5));
        assert_eq!(v.0[4], 7, "6 voice + the 1 chat the poll saw");
        assert_eq!(v.0[5], 6);
        assert_eq!(&v.0[1..4], [5, 2, 3], "routing statuses untouched");
        assert_eq!(
            l.apply(&ev, t(6)),
            Applied::Unchanged,
            "the same event again"
        );
    }

    #[test]
    fn presence_metrics_never_come_from_an_event() {
        let mut l = live();
        let ev = event(
            None,
            vec![count("oUserPresences", Some("some-org-presence-id"), 0)],
        );
        assert_eq!(l.apply(&ev, t(1)), Applied::Unchanged);
        assert_eq!(values(&l, t(1)).0[0], 7);
    }

    #[test]
    fn longest_waiting_keeps_the_polls_start_resets_at_zero_and_starts_at_arrival() {
        let mut l = live();
        // Still someone waiting on voice: the poll's oldest start holds.
        l.apply(
            &event(Some("voice"), vec![count("oWaiting", None, 2)]),
            t(10),
        );
        assert_eq!(values(&l, t(10)).0[6], 130);
        // Chat queue empties: its column reads 0, the overall one still has voice.
        l.apply(
            &event(Some("chat"), vec![count("oWaiting", None, 0)]),
            t(11),
        );
        assert_eq!(values(&l, t(11)).0[7], 0);
        assert_eq!(values(&l, t(11)).0[6], 131);
        // A new chat arrives: it started waiting when the event arrived.
        l.apply(
            &event(Some("chat"), vec![count("oWaiting", None, 1)]),
            t(20),
        );
        assert_eq!(values(&l, t(25)).0[7], 5);
        // Everything answered: 0 everywhere.
        l.apply(
            &event(Some("voice"), vec![count("oWaiting", None, 0)]),
            t(30),
        );
        l.apply(
            &event(Some("chat"), vec![count("oWaiting", None, 0)]),
            t(30),
        );
        assert_eq!(&values(&l, t(31)).0[4..], [0, 0, 0, 0]);
    }

    #[test]
    fn a_poll_replaces_the_state_and_unknown_queues_are_not_selected() {
        let mut l = live();
        l.apply(
            &event(Some("voice"), vec![count("oWaiting", None, 9)]),
            t(1),
        );
        l.replace("q".into(), polled());
        assert_eq!(values(&l, t(0)).0, [7, 5, 2, 3, 5, 4, 120, 30]);
        let mut other = event(None, vec![count("oOnQueueUsers", Some("IDLE"), 1)]);
        other.queue_id = "elsewhere".into();
        assert_eq!(l.apply(&other, t(1)), Applied::NotSelected);
        l.retain(&HashSet::new());
        assert!(l.is_empty());
    }

    #[test]
    fn significance_zero_crossings_and_relative_size_aging_weighs_nothing() {
        let cols = Columns::new(vec![
            column("Idle", "idle", None, None).unwrap(),
            column("Longest", "longest_waiting_seconds", None, None).unwrap(),
        ])
        .unwrap();
        let rv = |idle, longest, at| RowValues::new(Values(vec![idle, longest]), at, cols.clone());
        let old = rv(2, 30, t(0));
        assert!(
            rv(0, 30, t(1)).crosses_zero(&old),
            "lost the last idle agent"
        );
        assert!(!rv(1, 30, t(1)).crosses_zero(&old));
        assert!(
            rv(1, 30, t(1)).relative_change(&old)
                > rv(3, 30, t(1)).relative_change(&rv(4, 30, t(0)))
        );
        assert_eq!(
            rv(2, 90, t(60)).relative_change(&old),
            0.0,
            "the same caller, a minute older"
        );
        assert_eq!(
            rv(2, 30, t(9)),
            old,
            "equal values are equal rows whenever computed"
        );
    }

    #[test]
    fn unknown_qualifiers_and_repeats_do_not_break_sums() {
        let mut l = live();
        let ev = event(
            None,
            vec![
                count("oOnQueueUsers", Some("IDLE"), 1),
                count("oOnQueueUsers", Some("IDLE"), 4),
                count("oOnQueueUsers", Some("SOMETHING_NEW"), 2),
            ],
        );
        l.apply(&ev, t(1));
        let v = values(&l, t(1));
        assert_eq!(v.0[2], 4, "the later count of a repeated qualifier holds");
        assert_eq!(v.0[1], 6, "on_queue sums every status, an unknown one too");
    }
}
