//! What build this is: the crate version, the git revision and the build date, recorded
//! by `build.rs`. Shown by `--version`, the start-up log line and the `build_info` metric,
//! so an operator can tell from any of them which build runs.

/// The crate version (`0.1.0`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision the binary was built from (12 hex digits), or `unknown`.
pub const REVISION: &str = env!("GQS_GIT_REVISION");

/// The build date, `YYYY-MM-DD` (UTC, or `SOURCE_DATE_EPOCH`).
pub const BUILD_DATE: &str = env!("GQS_BUILD_DATE");

/// The text after the program name in `--version`: `0.1.0 (rev 0123456789ab, built 2026-12-02)`.
pub const LONG: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (rev ",
    env!("GQS_GIT_REVISION"),
    ", built ",
    env!("GQS_BUILD_DATE"),
    ")"
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn build_date_is_a_calendar_date_and_revision_is_set() {
        let parts: Vec<&str> = BUILD_DATE.split('-').collect();
        assert_eq!(parts.len(), 3, "{BUILD_DATE}");
        let (y, m, d): (u32, u32, u32) = (
            parts[0].parse().unwrap(),
            parts[1].parse().unwrap(),
            parts[2].parse().unwrap(),
        );
        assert!(y >= 2024 && (1..=12).contains(&m) && (1..=31).contains(&d));
        assert!(!REVISION.is_empty());
        assert!(LONG.starts_with(VERSION) && LONG.contains(REVISION));
    }
}
