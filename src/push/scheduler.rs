//! Which changed rows to write now, in push mode: coalescing, priority and budget, decided
//! without I/O.
//!
//! - Coalescing: a row is written at most once per `min_interval`; changes that arrive in
//!   between replace each other (the latest wins), so a queue flapping every second costs
//!   one write per interval, not one per event.
//! - Budget: the caller says how many requests may leave now (what the shared limiter
//!   has left, minus what the next reconciliation poll needs); no batch is larger. So push
//!   writes live inside the very `requests_per_minute` poll mode uses, and 1,000 queues
//!   changing in the same second become a budget's worth of writes, the rest waiting.
//! - Priority when changes outrun the budget: a value crossing zero first (a queue losing
//!   its last idle or on-queue agent, getting its first waiting interaction, or the
//!   reverse), then the larger relative change, then the older change.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// What the scheduler needs to know about a row's values.
pub trait Significance: Clone + PartialEq {
    /// Whether some value went from 0 to non-zero or back.
    fn crosses_zero(&self, old: &Self) -> bool;
    /// How much the values moved, relative to the old ones (0 when equal).
    fn relative_change(&self, old: &Self) -> f64;
}

/// A row to write now.
#[derive(Debug, Clone, PartialEq)]
pub struct Write<V> {
    pub key: String,
    pub values: V,
    /// When the oldest change this write carries arrived (for the latency histogram).
    pub since: Instant,
}

#[derive(Debug, Clone)]
struct Pending<V> {
    values: V,
    since: Instant,
}

#[derive(Debug, Clone)]
struct Row<V> {
    /// What the table holds, as far as the daemon knows; None when unknown.
    written: Option<V>,
    last_write: Option<Instant>,
    pending: Option<Pending<V>>,
    in_flight: Option<Pending<V>>,
}

impl<V> Default for Row<V> {
    fn default() -> Self {
        Self {
            written: None,
            last_write: None,
            pending: None,
            in_flight: None,
        }
    }
}

/// The push write scheduler.
#[derive(Debug)]
pub struct Scheduler<V> {
    min_interval: Duration,
    rows: HashMap<String, Row<V>>,
}

impl<V: Significance> Scheduler<V> {
    pub fn new(min_interval: Duration) -> Self {
        Self {
            min_interval,
            rows: HashMap::new(),
        }
    }

    /// The table holds `values` for `key` (a poll cycle wrote or confirmed them): a
    /// pending change to the same values is done.
    pub fn written_elsewhere(&mut self, key: &str, values: V, now: Instant) {
        let row = self.rows.entry(key.to_owned()).or_default();
        if row.pending.as_ref().is_some_and(|p| p.values == values) {
            row.pending = None;
        }
        if row.written.as_ref() != Some(&values) {
            row.last_write = Some(now);
        }
        row.written = Some(values);
    }

    /// The latest values of a row, from an event.
    pub fn offer(&mut self, key: &str, values: V, now: Instant) {
        let row = self.rows.entry(key.to_owned()).or_default();
        // Compared with what the row will hold once the write in flight lands.
        let basis = row
            .in_flight
            .as_ref()
            .map(|p| &p.values)
            .or(row.written.as_ref());
        if basis == Some(&values) {
            row.pending = None;
            return;
        }
        match &mut row.pending {
            Some(p) => p.values = values,
            None => row.pending = Some(Pending { values, since: now }),
        }
    }

    /// The writes to send now, at most `budget`, most significant first.
    pub fn take(&mut self, now: Instant, budget: usize) -> Vec<Write<V>> {
        if budget == 0 {
            return Vec::new();
        }
        let min_interval = self.min_interval;
        let mut ready: Vec<(bool, f64, Instant, &String)> = self
            .rows
            .iter()
            .filter(|(_, r)| r.in_flight.is_none() && Self::eligible(r, now, min_interval))
            .filter_map(|(k, r)| {
                let p = r.pending.as_ref()?;
                let (zero, rel) = match &r.written {
                    Some(old) => (p.values.crosses_zero(old), p.values.relative_change(old)),
                    // A row the daemon never saw written: as significant as it gets.
                    None => (true, f64::INFINITY),
                };
                Some((zero, rel, p.since, k))
            })
            .collect();
        ready.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then_with(|| b.1.total_cmp(&a.1))
                .then_with(|| a.2.cmp(&b.2))
                .then_with(|| a.3.cmp(b.3))
        });
        let keys: Vec<String> = ready
            .into_iter()
            .take(budget)
            .map(|(_, _, _, k)| k.clone())
            .collect();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let Some(row) = self.rows.get_mut(&key) else {
                continue;
            };
            let Some(p) = row.pending.take() else {
                continue;
            };
            out.push(Write {
                key,
                values: p.values.clone(),
                since: p.since,
            });
            row.in_flight = Some(p);
        }
        out
    }

    /// A write from [`take`](Self::take) was answered. A failed one is retried no sooner
    /// than `min_interval` later, unless a newer change replaced it.
    pub fn finished(&mut self, key: &str, ok: bool, now: Instant) {
        let Some(row) = self.rows.get_mut(key) else {
            return;
        };
        let Some(sent) = row.in_flight.take() else {
            return;
        };
        row.last_write = Some(now);
        if ok {
            if row
                .pending
                .as_ref()
                .is_some_and(|p| p.values == sent.values)
            {
                row.pending = None;
            }
            row.written = Some(sent.values);
        } else if row.pending.is_none() {
            row.pending = Some(sent);
        }
    }

    /// A queue left the selection.
    pub fn forget(&mut self, key: &str) {
        self.rows.remove(key);
    }

    /// Keeps only the rows of these keys (the selection after a cycle).
    pub fn retain(&mut self, keys: &std::collections::HashSet<&str>) {
        self.rows.retain(|k, _| keys.contains(k.as_str()));
    }

    /// A reloaded `[push] min_interval`: applies from the next write.
    pub fn set_min_interval(&mut self, min_interval: Duration) {
        self.min_interval = min_interval;
    }

    /// Forget what the table holds (it was lost or replaced): every row is unknown.
    pub fn forget_written(&mut self) {
        for r in self.rows.values_mut() {
            r.written = None;
        }
    }

    /// Rows with a change waiting (not in flight).
    pub fn pending(&self) -> usize {
        self.rows.values().filter(|r| r.pending.is_some()).count()
    }

    /// When the next pending row becomes eligible; None when nothing waits, `now` or
    /// earlier when something is ready already (then only the budget holds it back).
    pub fn next_ready(&self) -> Option<Instant> {
        self.rows
            .values()
            .filter(|r| r.in_flight.is_none())
            .filter_map(|r| {
                let since = r.pending.as_ref()?.since;
                Some(match r.last_write {
                    Some(t) => (t + self.min_interval).max(since),
                    None => since,
                })
            })
            .min()
    }

    fn eligible(row: &Row<V>, now: Instant, min_interval: Duration) -> bool {
        row.last_write
            .is_none_or(|t| now.saturating_duration_since(t) >= min_interval)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// (idle, waiting): enough to exercise both kinds of zero crossings.
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct V(u64, u64);

    impl Significance for V {
        fn crosses_zero(&self, old: &Self) -> bool {
            (self.0 == 0) != (old.0 == 0) || (self.1 == 0) != (old.1 == 0)
        }
        fn relative_change(&self, old: &Self) -> f64 {
            let r = |n: u64, o: u64| (n as f64 - o as f64).abs() / o.max(1) as f64;
            r(self.0, old.0) + r(self.1, old.1)
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_one_write_per_row_per_interval_latest_wins() {
        let t = Instant::now();
        let mut s = Scheduler::new(secs(5));
        s.written_elsewhere("q", V(3, 0), t);
        s.offer("q", V(2, 0), t + secs(6));
        let w = s.take(t + secs(6), 10);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].values, V(2, 0));
        s.finished("q", true, t + secs(6));
        // Three changes within the next interval: none goes out before it ends.
        for (i, v) in [V(1, 0), V(4, 0), V(5, 1)].into_iter().enumerate() {
            s.offer("q", v, t + secs(7 + i as u64));
            assert!(s.take(t + secs(7 + i as u64), 10).is_empty());
        }
        assert_eq!(s.next_ready(), Some(t + secs(11)));
        let w = s.take(t + secs(11), 10);
        assert_eq!(w.len(), 1, "coalesced into one write");
        assert_eq!(w[0].values, V(5, 1), "the latest value wins");
        assert_eq!(
            w[0].since,
            t + secs(7),
            "age is the oldest unwritten change"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_back_to_what_the_table_holds_is_not_written() {
        let t = Instant::now();
        let mut s = Scheduler::new(secs(5));
        s.written_elsewhere("q", V(3, 0), t);
        s.offer("q", V(2, 0), t + secs(1));
        s.offer("q", V(3, 0), t + secs(2));
        assert_eq!(s.pending(), 0);
        assert!(s.take(t + secs(10), 10).is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn zero_crossings_first_then_relative_size_then_age() {
        let t = Instant::now();
        let mut s = Scheduler::new(secs(5));
        for k in ["small", "big", "old_small", "lost_idle", "first_waiting"] {
            s.written_elsewhere(k, V(10, 2), t);
        }
        s.written_elsewhere("first_waiting", V(10, 0), t);
        s.offer("old_small", V(11, 2), t + secs(1));
        s.offer("small", V(11, 2), t + secs(2));
        s.offer("big", V(20, 2), t + secs(3));
        s.offer("lost_idle", V(0, 2), t + secs(4));
        s.offer("first_waiting", V(10, 1), t + secs(5));
        let order: Vec<String> = s.take(t + secs(10), 5).into_iter().map(|w| w.key).collect();
        assert_eq!(
            order,
            ["lost_idle", "first_waiting", "big", "old_small", "small"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_budget_and_the_rest_waits() {
        let t = Instant::now();
        let mut s = Scheduler::new(secs(5));
        for i in 0..1000 {
            s.written_elsewhere(&format!("q{i}"), V(5, 5), t);
        }
        for i in 0..1000 {
            s.offer(&format!("q{i}"), V(5, 6), t + secs(10));
        }
        let first = s.take(t + secs(10), 40);
        assert_eq!(first.len(), 40);
        assert_eq!(s.pending(), 960);
        for w in &first {
            s.finished(&w.key, true, t + secs(10));
        }
        assert!(s.take(t + secs(10), 0).is_empty());
        let second = s.take(t + secs(11), 100);
        assert_eq!(second.len(), 100);
        assert!(
            second.iter().all(|w| !first.iter().any(|f| f.key == w.key)),
            "rows just written wait for their interval"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failed_writes_retry_after_the_interval_unless_replaced() {
        let t = Instant::now();
        let mut s = Scheduler::new(secs(5));
        s.written_elsewhere("q", V(1, 1), t);
        s.offer("q", V(2, 1), t + secs(5));
        assert_eq!(s.take(t + secs(5), 1).len(), 1);
        s.finished("q", false, t + secs(6));
        assert!(s.take(t + secs(7), 1).is_empty());
        let w = s.take(t + secs(11), 1);
        assert_eq!(w[0].values, V(2, 1));
        // A change while a write is in flight is kept for after it.
        s.offer("q", V(3, 1), t + secs(12));
        s.finished("q", true, t + secs(12));
        assert_eq!(s.pending(), 1);
        assert_eq!(s.take(t + secs(17), 1)[0].values, V(3, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_write_settles_a_pending_change() {
        let t = Instant::now();
        let mut s = Scheduler::new(secs(5));
        s.offer("q", V(1, 0), t);
        s.written_elsewhere("q", V(1, 0), t + secs(1));
        assert_eq!(s.pending(), 0);
        assert_eq!(s.next_ready(), None);
    }
}
