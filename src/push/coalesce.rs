//! Events waiting for the daemon, coalesced per (queue, media group), so that a socket
//! reader never waits for the daemon.
//!
//! The daemon takes events under the cycle lock; during a long cycle a burst would
//! otherwise fill any bounded queue, block the reader, leave heartbeats unread and end
//! in a needless "silent socket" reconnect (and a reconcile poll). Instead the reader
//! puts each event here (a short, never-awaited lock) and a forwarder hands what is
//! pending to the daemon as fast as it takes it. Memory is bounded by the groups, not
//! by the burst: at most two pending events per (queue, media group).
//!
//! Coalescing changes nothing [`crate::push::live`] computes. A later event's metrics
//! replace the same metrics of the earlier pending one, its other metrics are kept (as
//! applying both in turn would), unknown-metric counts add up, and the earliest arrival
//! is kept (the change-to-write latency starts there). The one thing an arrival decides
//! in the live state is when `oWaiting` went from 0 to n (the start of the longest
//! wait), so each pending event also keeps the arrival of the first event that carried
//! `oWaiting`, and an event taking `oWaiting` from 0 back above 0 is not merged into the
//! pending one that took it to 0: it waits behind it (a third such event first folds the
//! two pending ones into one, which is exact because the second one's `oWaiting` is 0).

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::genesys::notifications::events::{MetricCount, ObservationEvent};
use crate::genesys::observations::{ApiMetric, MediaType};

/// Pending groups beyond this are not kept (the event is dropped and counted; the next
/// poll corrects it). 5,000 queues with every named media type stay far below it.
pub const MAX_GROUPS: usize = 100_000;

/// When a pending event's parts arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival<T> {
    /// The earliest of the coalesced events.
    pub first: T,
    /// The first of them that carried `oWaiting` (`first` when none did).
    pub waiting: T,
}

/// What [`Coalescer::push`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Pending on its own.
    Queued,
    /// Merged into a pending one (this many events folded, 1 or 2).
    Coalesced(u64),
    /// Too many groups pending: dropped.
    Dropped,
}

type Key = (String, Option<MediaType>);

struct Pending<T> {
    ev: ObservationEvent,
    arrival: Arrival<T>,
    seq: u64,
}

impl<T: Copy> Pending<T> {
    fn new(ev: ObservationEvent, at: T, seq: u64) -> Self {
        Self {
            ev,
            arrival: Arrival {
                first: at,
                waiting: at,
            },
            seq,
        }
    }

    /// `next` applied on top: its metrics replace this one's same metrics.
    fn absorb(&mut self, next: ObservationEvent, next_arrival: Arrival<T>) {
        if carries_waiting(&next) && !carries_waiting(&self.ev) {
            self.arrival.waiting = next_arrival.waiting;
        }
        let replaced = |c: &MetricCount| next.counts.iter().any(|n| n.metric == c.metric);
        self.ev.counts.retain(|c| !replaced(c));
        self.ev.counts.extend(next.counts);
        self.ev.unknown_metrics += next.unknown_metrics;
        self.ev.media_type = next.media_type;
    }
}

fn waiting_total(ev: &ObservationEvent) -> Option<u64> {
    let name = ApiMetric::Waiting.wire_name();
    let mut total = None;
    for c in ev.counts.iter().filter(|c| c.metric == name) {
        *total.get_or_insert(0) += c.count;
    }
    total
}

fn carries_waiting(ev: &ObservationEvent) -> bool {
    waiting_total(ev).is_some()
}

/// Pending events by (queue, media group), without I/O or locks; `T` is the clock.
pub struct Coalescer<T> {
    groups: HashMap<Key, Vec<Pending<T>>>,
    seq: u64,
}

impl<T: Copy> Default for Coalescer<T> {
    fn default() -> Self {
        Self {
            groups: HashMap::new(),
            seq: 0,
        }
    }
}

impl<T: Copy> Coalescer<T> {
    /// Adds an event that arrived at `at`.
    pub fn push(&mut self, ev: ObservationEvent, at: T) -> Pushed {
        let key = (
            ev.queue_id.clone(),
            ev.media_type.as_deref().map(MediaType::from_answer),
        );
        if !self.groups.contains_key(&key) && self.groups.len() >= MAX_GROUPS {
            return Pushed::Dropped;
        }
        self.seq += 1;
        let seq = self.seq;
        let list = self.groups.entry(key).or_default();
        let Some(last) = list.last_mut() else {
            list.push(Pending::new(ev, at, seq));
            return Pushed::Queued;
        };
        // oWaiting 0 -> n after a pending 0: its arrival is the new wait's start.
        let restarts_wait =
            waiting_total(&last.ev) == Some(0) && waiting_total(&ev).is_some_and(|n| n > 0);
        if !restarts_wait {
            last.absorb(
                ev,
                Arrival {
                    first: at,
                    waiting: at,
                },
            );
            return Pushed::Coalesced(1);
        }
        let mut folded = 0;
        if list.len() == 2 {
            // The second pending one carries oWaiting and it is 0: the first one's effect
            // on the wait is gone once the second is applied, so the two are one.
            let second = list.remove(1);
            if let Some(first) = list.first_mut() {
                first.absorb(second.ev, second.arrival);
            }
            folded = 1;
        }
        list.push(Pending::new(ev, at, seq));
        if folded > 0 {
            Pushed::Coalesced(folded)
        } else {
            Pushed::Queued
        }
    }

    /// Everything pending, in arrival order (per group, the order to apply them in).
    pub fn take(&mut self) -> Vec<(ObservationEvent, Arrival<T>)> {
        let mut all: Vec<Pending<T>> = self.groups.drain().flat_map(|(_, v)| v).collect();
        all.sort_by_key(|p| p.seq);
        all.into_iter().map(|p| (p.ev, p.arrival)).collect()
    }

    /// Pending events.
    pub fn len(&self) -> usize {
        self.groups.values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// The coalescer between the socket readers and the session's forwarder.
#[derive(Default)]
pub struct Shared {
    pending: Mutex<Coalescer<Instant>>,
    notify: Notify,
}

impl Shared {
    /// Adds an event; never waits for anyone (the lock is held for one map update).
    pub fn push(&self, ev: ObservationEvent, at: Instant) -> Pushed {
        let pushed = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ev, at);
        if pushed != Pushed::Dropped {
            self.notify.notify_one();
        }
        pushed
    }

    /// Waits until something is pending, then takes it all.
    pub async fn next(&self) -> Vec<(ObservationEvent, Arrival<Instant>)> {
        loop {
            let got = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if !got.is_empty() {
                return got;
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::genesys::observations::{Entry, Qualifier, QueueObservation, RoutingStatus};
    use crate::push::live::Live;
    use chrono::{DateTime, TimeZone, Utc};

    fn t(s: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0)
            .single()
            .unwrap()
            + chrono::Duration::seconds(s)
    }

    fn count(metric: &str, qualifier: Option<&str>, n: u64) -> MetricCount {
        MetricCount {
            metric: metric.into(),
            qualifier: qualifier.map(str::to_owned),
            count: n,
        }
    }

    fn ev(queue: &str, media: Option<&str>, counts: Vec<MetricCount>) -> ObservationEvent {
        ObservationEvent {
            queue_id: queue.into(),
            media_type: media.map(str::to_owned),
            counts,
            unknown_metrics: 0,
        }
    }

    fn polled(waiting: u64) -> QueueObservation {
        let mut e = vec![Entry {
            metric: ApiMetric::OnQueueUsers,
            media: None,
            qualifier: Qualifier::Routing(RoutingStatus::Idle),
            count: 2,
            oldest: None,
        }];
        if waiting > 0 {
            e.push(Entry {
                metric: ApiMetric::Waiting,
                media: Some(MediaType::Voice),
                qualifier: Qualifier::None,
                count: waiting,
                oldest: Some(t(-100)),
            });
        }
        QueueObservation::from_entries(e)
    }

    /// Entries in a canonical order (the live state's order is not part of its meaning).
    fn canon(o: &QueueObservation) -> Vec<String> {
        let mut v: Vec<String> = o.entries().iter().map(|e| format!("{e:?}")).collect();
        v.sort();
        v
    }

    /// A small deterministic generator, so a failure replays.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % n
        }
    }

    fn random_event(r: &mut Lcg) -> ObservationEvent {
        let queue = ["a", "b"][r.next(2) as usize];
        if r.next(3) == 0 {
            // The user group: routing statuses, some qualifiers left out.
            let mut counts = Vec::new();
            for s in ["IDLE", "INTERACTING", "NOT_RESPONDING"] {
                if r.next(2) == 0 {
                    counts.push(count("oOnQueueUsers", Some(s), r.next(3)));
                }
            }
            if r.next(2) == 0 {
                counts.push(count("oUserRoutingStatuses", Some("IDLE"), r.next(4)));
            }
            return ev(queue, None, counts);
        }
        let media = ["voice", "chat", "Voice"][r.next(3) as usize];
        let mut counts = Vec::new();
        if r.next(4) != 0 {
            // Zeros often: the wait's restarts are what coalescing must keep.
            counts.push(count("oWaiting", None, r.next(3)));
        }
        if r.next(2) == 0 {
            counts.push(count("oInteracting", None, r.next(3)));
        }
        if r.next(3) == 0 {
            counts.push(count("oAlerting", None, r.next(2)));
        }
        let mut e = ev(queue, Some(media), counts);
        e.unknown_metrics = r.next(2) as usize;
        e
    }

    fn start() -> Live {
        let mut l = Live::new();
        l.replace("a".into(), polled(0));
        l.replace("b".into(), polled(3));
        l
    }

    #[test]
    fn coalesced_events_leave_the_live_state_as_applying_each_in_turn_would() {
        let mut r = Lcg(7);
        for round in 0..2000 {
            let n = 1 + r.next(12) as i64;
            let events: Vec<(ObservationEvent, DateTime<Utc>)> =
                (0..n).map(|i| (random_event(&mut r), t(i))).collect();
            let mut one_by_one = start();
            for (e, at) in &events {
                one_by_one.apply(e, *at);
            }
            let mut c = Coalescer::default();
            let mut folded = 0;
            for (e, at) in events.iter().cloned() {
                if let Pushed::Coalesced(k) = c.push(e, at) {
                    folded += k;
                }
            }
            let pending = c.take();
            assert_eq!(
                pending.len() as u64 + folded,
                n as u64,
                "every event counted once"
            );
            assert!(c.is_empty());
            let mut coalesced = start();
            for (e, at) in &pending {
                coalesced.apply(e, at.waiting);
            }
            for q in ["a", "b"] {
                assert_eq!(
                    canon(coalesced.get(q).unwrap()),
                    canon(one_by_one.get(q).unwrap()),
                    "round {round}, queue {q}: {events:?}"
                );
            }
            let unknown: usize = events.iter().map(|(e, _)| e.unknown_metrics).sum();
            assert_eq!(
                pending
                    .iter()
                    .map(|(e, _)| e.unknown_metrics)
                    .sum::<usize>(),
                unknown
            );
        }
    }

    #[test]
    fn a_burst_is_held_as_one_event_per_group_with_the_earliest_arrival() {
        let mut c = Coalescer::default();
        for i in 0..10_000u64 {
            let q = format!("q{}", i % 100);
            c.push(
                ev(&q, Some("voice"), vec![count("oWaiting", None, 1 + i)]),
                i,
            );
        }
        assert_eq!(c.len(), 100, "one pending event per queue's voice group");
        let got = c.take();
        let q7 = got.iter().find(|(e, _)| e.queue_id == "q7").unwrap();
        assert_eq!(
            q7.0.counts,
            [count("oWaiting", None, 1 + 9907)],
            "the latest count"
        );
        assert_eq!(q7.1.first, 7, "the earliest arrival");
        // Metrics the later events did not carry are kept.
        c.push(
            ev("q", Some("voice"), vec![count("oInteracting", None, 4)]),
            1,
        );
        c.push(ev("q", Some("voice"), vec![count("oWaiting", None, 2)]), 2);
        let got = c.take();
        assert_eq!(got.len(), 1);
        assert_eq!(
            got[0].0.counts,
            [count("oInteracting", None, 4), count("oWaiting", None, 2)]
        );
        assert_eq!(
            got[0].1,
            Arrival {
                first: 1,
                waiting: 2
            }
        );
    }

    #[test]
    fn a_wait_that_ends_and_starts_again_keeps_its_new_start() {
        let mut c = Coalescer::default();
        let w = |n| ev("q", Some("voice"), vec![count("oWaiting", None, n)]);
        assert_eq!(c.push(w(0), 1), Pushed::Queued);
        assert_eq!(c.push(w(2), 5), Pushed::Queued, "0 -> 2 waits behind");
        assert_eq!(c.push(w(3), 6), Pushed::Coalesced(1));
        assert_eq!(c.push(w(0), 7), Pushed::Coalesced(1));
        assert_eq!(c.push(w(1), 9), Pushed::Coalesced(1), "the two before fold");
        let got = c.take();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].1.first, 1);
        assert_eq!(got[1].0.counts, [count("oWaiting", None, 1)]);
        assert_eq!(got[1].1.waiting, 9, "the wait started at the last 0 -> 1");
    }
}
