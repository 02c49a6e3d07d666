//! The one staleness rule: how old a row's `UpdatedAt` may get before a flow should treat
//! its counts as unknown. `check`, `once` and the start-up log print it; the shipped
//! texts (example config, README, deploy/architect, deploy/terraform, the demo) say the
//! number it gives for the defaults, and a test holds them to it.
//!
//! A healthy daemon rewrites an unchanged row at the first tick after it is
//! `rows.refresh_after` old, so `UpdatedAt` is at most `refresh_after` + one period (+
//! the cycle's own time) old. One failed cycle (a 429 wave, a login outage) adds another
//! period. The rule allows that plus margin: twice `refresh_after`, and never less than
//! `refresh_after` + two periods. The heartbeat row, written every cycle that read a
//! queue, goes stale by the same rule.

use std::time::Duration;

use crate::config::Config;

/// Rows older than this are stale.
pub fn stale_after(refresh_after: Duration, period: Duration) -> Duration {
    let rule = (refresh_after * 2).max(refresh_after + period * 2);
    // Whole seconds: it is written into flows as a duration.
    Duration::from_secs(rule.as_secs() + u64::from(rule.subsec_nanos() > 0))
}

/// The rule for a configuration.
pub fn for_config(cfg: &Config) -> Duration {
    stale_after(cfg.rows.refresh_after, cfg.schedule.period)
}

/// "10m", "7m 30s": as printed and as the texts write it.
pub fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// The sentence `check`, `once` and the start-up log print.
pub fn sentence(cfg: &Config) -> String {
    format!(
        "flows should treat rows older than {} as stale (twice rows.refresh_after = {}, at least refresh_after + 2 schedule periods of {})",
        human(for_config(cfg)),
        human(cfg.rows.refresh_after),
        human(cfg.schedule.period)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn the_defaults_give_ten_minutes() {
        assert_eq!(stale_after(5 * MIN, MIN), 10 * MIN);
        assert_eq!(human(stale_after(5 * MIN, MIN)), "10m");
    }

    #[test]
    fn a_short_refresh_still_allows_two_periods() {
        // refresh 1 m, period 1 m: rewritten within 2 m, one missed cycle -> 3 m.
        assert_eq!(stale_after(MIN, MIN), 3 * MIN);
        // A slow schedule dominates.
        assert_eq!(stale_after(5 * MIN, 10 * MIN), 25 * MIN);
        assert_eq!(
            stale_after(MIN, Duration::from_millis(10_500)),
            Duration::from_secs(2 * 60)
        );
        assert_eq!(
            stale_after(Duration::from_millis(60_500), Duration::from_secs(1)),
            Duration::from_secs(121)
        );
    }
}
