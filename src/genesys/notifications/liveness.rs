//! When a channel's socket counts as dead, when to try again, when to renew: pure logic on
//! tokio's clock, so the paused clock drives it in tests.
//!
//! - Genesys sends a heartbeat on `channel.metadata` (every 30 s today). A socket that has
//!   been silent (no message of any kind) for two heartbeat periods is dead, even if TCP
//!   says it is open; until the period has been seen, or when two periods would be longer,
//!   90 s is the limit. The period is the longest of the last three intervals between
//!   heartbeats as read: heartbeats queued behind a burst of events are read back to back,
//!   and such a short interval must not shrink the limit (the next ordinary gap would then
//!   look like a silence).
//! - Reconnects back off exponentially with jitter, so many daemons (or many channels of
//!   one) do not reconnect in step after an outage; a socket that stayed up resets it.
//! - A channel lives 24 h unless resubscribed; it is resubscribed well before that.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// The longest silence accepted, whatever the heartbeat period.
pub const MAX_SILENCE: Duration = Duration::from_secs(90);
/// The shortest silence limit: a very fast heartbeat must not make a busy moment fatal.
const MIN_SILENCE: Duration = Duration::from_millis(200);

/// How many heartbeat intervals the period is the longest of.
const GAPS: usize = 3;

/// Tracks one socket's messages.
#[derive(Debug, Clone)]
pub struct Liveness {
    last_message: Instant,
    last_heartbeat: Option<Instant>,
    /// The last intervals between two heartbeats, newest first.
    gaps: [Option<Duration>; GAPS],
}

impl Liveness {
    /// A socket that has just connected.
    pub fn new(now: Instant) -> Self {
        Self {
            last_message: now,
            last_heartbeat: None,
            gaps: [None; GAPS],
        }
    }

    /// Any message counts as a sign of life; heartbeats also teach the period.
    pub fn message(&mut self, now: Instant, heartbeat: bool) {
        self.last_message = self.last_message.max(now);
        if heartbeat {
            if let Some(prev) = self.last_heartbeat {
                let gap = now.saturating_duration_since(prev);
                if !gap.is_zero() {
                    self.gaps.rotate_right(1);
                    self.gaps[0] = Some(gap);
                }
            }
            self.last_heartbeat = Some(now);
        }
    }

    /// The heartbeat period as seen: the longest of the last few intervals.
    pub fn period(&self) -> Option<Duration> {
        self.gaps.iter().flatten().max().copied()
    }

    /// How long the socket may stay silent.
    pub fn silence_limit(&self) -> Duration {
        match self.period() {
            Some(p) => (p * 2).clamp(MIN_SILENCE, MAX_SILENCE),
            None => MAX_SILENCE,
        }
    }

    /// When the socket counts as dead if nothing more arrives.
    pub fn deadline(&self) -> Instant {
        self.last_message + self.silence_limit()
    }

    pub fn is_dead(&self, now: Instant) -> bool {
        now >= self.deadline()
    }
}

/// Exponential backoff with jitter: attempt n waits between half and all of
/// `min(max, base * 2^(n-1))`, so the wait never collapses to zero (a reconnect storm)
/// and never grows past `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self {
            base,
            max: max.max(base),
            attempt: 0,
        }
    }

    /// Failures in a row so far.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The wait before the next try; `jitter` in [0, 1] picks where in the range.
    pub fn next(&mut self, jitter: f64) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        let cap = self
            .base
            .saturating_mul(1u32 << (self.attempt - 1).min(20))
            .min(self.max);
        let j = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        cap.mul_f64(0.5 + 0.5 * j)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Whether a channel expiring at `expires` should be renewed now: once less than
/// `margin` is left (or the expiry is unknown and `margin` has passed since the last
/// renewal's assumed lifetime; the caller passes an assumed expiry then).
pub fn renewal_due(expires: DateTime<Utc>, now: DateTime<Utc>, margin: Duration) -> bool {
    let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
    expires - now <= margin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silence_limit_is_two_heartbeat_periods_or_90_s() {
        let start = Instant::now();
        let mut l = Liveness::new(start);
        assert_eq!(l.silence_limit(), MAX_SILENCE, "period not seen yet");
        assert_eq!(l.deadline(), start + MAX_SILENCE);
        l.message(start + Duration::from_secs(1), true);
        l.message(start + Duration::from_secs(31), true);
        assert_eq!(l.period(), Some(Duration::from_secs(30)));
        assert_eq!(l.silence_limit(), Duration::from_secs(60));
        assert!(!l.is_dead(start + Duration::from_secs(90)));
        assert!(l.is_dead(start + Duration::from_secs(91)));
        // A slow heartbeat never stretches the limit past 90 s.
        l.message(start + Duration::from_secs(131), true);
        assert_eq!(l.silence_limit(), MAX_SILENCE);
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_read_back_to_back_after_a_burst_do_not_shrink_the_limit() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let mut l = Liveness::new(start);
        l.message(start, true);
        l.message(start + ms(150), true);
        // Two heartbeats queued behind a burst of events, read 1 ms apart.
        l.message(start + ms(700), true);
        l.message(start + ms(701), true);
        assert_eq!(l.period(), Some(ms(550)));
        // The ordinary rhythm again: the limit follows it once the burst is three
        // intervals back.
        for i in 1..=3 {
            l.message(start + ms(701 + 150 * i), true);
        }
        assert_eq!(l.period(), Some(ms(150)));
        assert_eq!(l.silence_limit(), ms(300));
    }

    #[tokio::test(start_paused = true)]
    async fn any_message_keeps_the_socket_alive() {
        let start = Instant::now();
        let mut l = Liveness::new(start);
        l.message(start, true);
        l.message(start + Duration::from_secs(10), true);
        for s in [15, 25, 35, 45] {
            l.message(start + Duration::from_secs(s), false);
        }
        assert_eq!(l.deadline(), start + Duration::from_secs(65));
        assert_eq!(
            l.period(),
            Some(Duration::from_secs(10)),
            "events teach no period"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_inside_bounds_and_resets() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let lows: Vec<_> = (0..8).map(|_| b.next(0.0)).collect();
        assert_eq!(
            lows,
            [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0].map(Duration::from_secs_f64)
        );
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let highs: Vec<_> = (0..8).map(|_| b.next(1.0)).collect();
        assert_eq!(
            highs,
            [1, 2, 4, 8, 16, 32, 60, 60].map(Duration::from_secs),
            "capped at max"
        );
        assert_eq!(b.attempts(), 8);
        b.reset();
        assert_eq!(b.next(f64::NAN), Duration::from_secs(1));
        for _ in 0..6 {
            b.next(0.0);
        }
        for _ in 0..100 {
            let d = b.next(0.3);
            assert!(d >= Duration::from_secs(30) && d <= Duration::from_secs(60));
        }
    }

    #[test]
    fn renewal_is_due_inside_the_margin() {
        let now = Utc::now();
        let margin = Duration::from_secs(3600);
        assert!(!renewal_due(now + chrono::Duration::hours(2), now, margin));
        assert!(renewal_due(
            now + chrono::Duration::minutes(59),
            now,
            margin
        ));
        assert!(renewal_due(now - chrono::Duration::minutes(1), now, margin));
    }
}
