//! `once`: one cycle, printed as a table.

use std::fmt::Write as _;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::exit;
use crate::config::Config;
use crate::genesys::Client;
use crate::metrics::Metrics;
use crate::sync::columns::Columns;
use crate::sync::{CycleReport, Outcome, Syncer};

/// One cycle, printed as a table. Exit 0 only when every configured queue was found and
/// every queue observed (and written), as `check` does for a missing queue.
pub async fn once(cfg: Config, dry_run: bool, shutdown: CancellationToken) -> u8 {
    let cfg = Arc::new(cfg);
    let client = match Client::new(&cfg, Metrics::new(), shutdown) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    let columns = cfg.columns.clone();
    let stale = crate::staleness::sentence(&cfg);
    let mut syncer = Syncer::new(client, cfg);
    let report = syncer.run_cycle(dry_run).await;
    print!("{}", render_report(&columns, &report));
    println!("{stale}");
    if report.outcome() == Outcome::Ok && report.missing.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    }
}

/// The human table `once` prints: a column per configured column, in written order.
pub fn render_report(columns: &Columns, r: &CycleReport) -> String {
    let mut out = String::new();
    let width = r
        .observed
        .iter()
        .map(|(t, _)| t.key.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = write!(out, "{:<width$} ", "queue");
    for c in columns.iter() {
        let _ = write!(out, " {:>w$}", c.name, w = c.name.chars().count().max(5));
    }
    let _ = writeln!(out, "  UpdatedAt");
    let at = r
        .started
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    for (t, values) in &r.observed {
        let _ = write!(out, "{:<width$} ", t.key);
        for (c, v) in columns.iter().zip(values.iter()) {
            let _ = write!(out, " {:>w$}", v, w = c.name.chars().count().max(5));
        }
        let _ = writeln!(out, "  {at}");
    }
    for m in &r.missing {
        let _ = writeln!(
            out,
            "✗ not found: {m} (no such queue in Genesys Cloud; check [queues])"
        );
    }
    for f in &r.failed {
        let _ = writeln!(out, "✗ {}: {}", f.queue, f.reason);
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "✗ {e}");
    }
    let _ = writeln!(
        out,
        "{}",
        if r.dry_run {
            format!(
                "dry run: {} read, nothing written",
                crate::text::count(r.observed.len(), "queue", "queues")
            )
        } else {
            format!(
                "{} written{}, {} unchanged, {} deferred to the next cycle (budget), {} failed, {} ms",
                crate::text::count(r.written.len(), "row", "rows"),
                if r.imported { " by one import job" } else { "" },
                r.skipped,
                r.deferred,
                r.failed.len(),
                r.duration.as_millis()
            )
        }
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::Target;
    use chrono::TimeZone;

    #[test]
    fn the_table_has_one_aligned_line_per_queue_under_the_column_names() {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 12, 2, 10, 0, 0)
            .single()
            .unwrap_or_default();
        let t = Target::new("q1".into(), "Sales".into(), "Sales".into(), String::new());
        // The default columns: Online, OnQueue, Idle, Interacting, Waiting.
        let v = crate::sync::columns::Values(vec![7, 5, 2, 3, 12]);
        let r = CycleReport {
            started: Some(at),
            observed: vec![(t.clone(), v.clone())],
            written: vec![(t, v)],
            ..CycleReport::default()
        };
        let out = render_report(&crate::sync::columns::Columns::default(), &r);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "queue  Online OnQueue  Idle Interacting Waiting  UpdatedAt"
        );
        assert_eq!(
            lines[1],
            "Sales       7       5     2           3      12  2026-12-02T10:00:00Z"
        );
        assert!(lines[2].starts_with("1 row written, 0 unchanged"), "{out}");
    }
}
