//! The client-side request budget.
//!
//! At most `requests_per_minute` requests leave in any 60 s window: the same shape as the
//! limit Genesys applies per token, set below it (240 of ~300 by default). A window rather
//! than evenly spaced requests so a cycle can spend its share of the minute at once and
//! finish in seconds (at most `write_concurrency` requests are in flight anyway) instead of
//! being stretched across the whole period. Hand-rolled on tokio's clock rather than
//! `governor`, whose own clock tokio's paused time cannot drive.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Limiter {
    budget: u32,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// When each request of the current window left, oldest first.
    sent: VecDeque<Instant>,
    /// No request leaves before this (after a 429 or when the server says we are near its limit).
    paused_until: Option<Instant>,
}

impl State {
    fn prune(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= WINDOW)
        {
            self.sent.pop_front();
        }
    }
}

impl Limiter {
    pub fn per_minute(rpm: u32) -> Self {
        Self {
            budget: rpm.max(1),
            state: Mutex::new(State {
                sent: VecDeque::new(),
                paused_until: None,
            }),
        }
    }

    /// Waits until a request may leave, and books its slot.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let Ok(mut s) = self.state.lock() else { return };
                let now = Instant::now();
                match s.paused_until {
                    Some(p) if p > now => p - now,
                    _ => {
                        s.paused_until = None;
                        s.prune(now);
                        match s.sent.front() {
                            Some(&oldest) if s.sent.len() >= self.budget as usize => (oldest
                                + WINDOW)
                                .saturating_duration_since(now)
                                .max(Duration::from_millis(1)),
                            _ => {
                                s.sent.push_back(now);
                                return;
                            }
                        }
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// How many requests could leave right now without waiting.
    pub fn available_now(&self) -> u32 {
        let Ok(mut s) = self.state.lock() else {
            return 0;
        };
        let now = Instant::now();
        if s.paused_until.is_some_and(|p| p > now) {
            return 0;
        }
        s.prune(now);
        self.budget.saturating_sub(s.sent.len() as u32)
    }

    /// Holds every request back for `d` (a 429's Retry-After applies to the whole token).
    pub fn pause_for(&self, d: Duration) {
        if let Ok(mut s) = self.state.lock() {
            let until = Instant::now() + d;
            s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
        }
    }

    /// Slows down before the wall: when the server reports its per-token window almost
    /// used up (`inin-ratelimit-count` near `inin-ratelimit-allowed`), wait for the reset.
    /// Genesys removed these headers in June 2021: honoured when present, never relied on
    /// (the per-minute budget is what keeps the daemon under the limit).
    pub fn observe_headers(&self, headers: &HeaderMap) {
        let num =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let (Some(count), Some(allowed)) =
            (num("inin-ratelimit-count"), num("inin-ratelimit-allowed"))
        else {
            return;
        };
        let reset = num("inin-ratelimit-reset").unwrap_or(1).min(60);
        if allowed > 0 && count + allowed / 50 + 1 >= allowed {
            tracing::info!(
                count,
                allowed,
                reset_s = reset,
                "near the server's rate limit, pausing until it resets"
            );
            self.pause_for(Duration::from_secs(reset));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_minutes_budget_may_leave_at_once_then_waits_for_the_window() {
        let l = Limiter::per_minute(60);
        let start = Instant::now();
        for _ in 0..60 {
            l.acquire().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::ZERO,
            "the budget is per minute, not per second"
        );
        assert_eq!(l.available_now(), 0);
        l.acquire().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_secs(60),
            "the 61st waits for the first to leave the window"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn no_60_second_window_ever_holds_more_than_the_budget() {
        let l = Limiter::per_minute(240);
        let start = Instant::now();
        let mut sent = Vec::new();
        while start.elapsed() < Duration::from_secs(180) {
            l.acquire().await;
            sent.push(Instant::now());
            // Uneven demand: bursts and pauses.
            if sent.len() % 100 == 0 {
                tokio::time::sleep(Duration::from_secs(7)).await;
            }
        }
        for (i, &t) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().take_while(|&&u| u - t < WINDOW).count();
            assert!(
                in_window <= 240,
                "{in_window} requests within 60 s of {:?}",
                t - start
            );
        }
        assert!(
            sent.len() >= 720,
            "the budget is used, not wasted: {}",
            sent.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pause_holds_everything_back() {
        let l = Limiter::per_minute(600);
        l.pause_for(Duration::from_secs(7));
        assert_eq!(l.available_now(), 0);
        let start = Instant::now();
        l.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn near_the_server_limit_waits_for_reset() {
        let l = Limiter::per_minute(600);
        let mut h = HeaderMap::new();
        h.insert("inin-ratelimit-count", "299".parse().unwrap());
        h.insert("inin-ratelimit-allowed", "300".parse().unwrap());
        h.insert("inin-ratelimit-reset", "12".parse().unwrap());
        l.observe_headers(&h);
        let start = Instant::now();
        l.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(12));
    }
}
