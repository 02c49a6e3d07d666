//! The client-side request budget.
//!
//! A GCRA limiter on tokio's clock (so tests run it under a paused clock): requests are
//! spaced `60 s / requests_per_minute` apart with a burst of a tenth of the minute's budget.
//! Hand-rolled rather than `governor` because governor keeps its own clock, which tokio's
//! paused time cannot drive.

use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::HeaderMap;
use tokio::time::Instant;

#[derive(Debug)]
pub struct Limiter {
    interval: Duration,
    burst: u32,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Theoretical arrival time of the next request.
    tat: Instant,
    /// No request leaves before this (after a 429 or when the server says we are near its limit).
    paused_until: Option<Instant>,
}

impl Limiter {
    pub fn per_minute(rpm: u32) -> Self {
        let rpm = rpm.max(1);
        Self {
            interval: Duration::from_secs(60) / rpm,
            burst: (rpm / 10).max(1),
            state: Mutex::new(State {
                tat: Instant::now(),
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
                        let tat = s.tat.max(now);
                        let allowance = self.interval * self.burst;
                        if tat.saturating_duration_since(now) >= allowance {
                            tat - now - allowance + self.interval
                        } else {
                            s.tat = tat + self.interval;
                            return;
                        }
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// How many requests could leave right now without waiting.
    pub fn available_now(&self) -> u32 {
        let Ok(s) = self.state.lock() else { return 0 };
        let now = Instant::now();
        if s.paused_until.is_some_and(|p| p > now) {
            return 0;
        }
        let backlog = s.tat.saturating_duration_since(now);
        let allowance = self.interval * self.burst;
        let free = allowance.saturating_sub(backlog);
        (free.as_nanos() / self.interval.as_nanos().max(1)) as u32
    }

    /// Requests the budget allows per minute.
    pub fn per_minute_budget(&self) -> u32 {
        (Duration::from_secs(60).as_nanos() / self.interval.as_nanos().max(1)) as u32
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
    async fn spaces_requests_after_the_burst() {
        let l = Limiter::per_minute(60); // 1/s, burst 6
        let start = Instant::now();
        for _ in 0..6 {
            l.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "the burst leaves at once");
        for _ in 0..4 {
            l.acquire().await;
        }
        let e = start.elapsed();
        assert!(
            e >= Duration::from_secs(4) && e < Duration::from_secs(5),
            "{e:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_minute_never_exceeds_budget_plus_burst() {
        let l = Limiter::per_minute(240);
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_secs(60) {
            l.acquire().await;
            n += 1;
        }
        assert!(n <= 240 + 24 + 1, "{n}");
        assert!(n >= 240, "{n}");
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
