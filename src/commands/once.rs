//! `once`: one cycle, printed as a table.

use std::fmt::Write as _;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::exit;
use crate::config::Config;
use crate::genesys::Client;
use crate::metrics::Metrics;
use crate::sync::{CycleReport, Outcome, Syncer};

/// One cycle, printed as a table. Exit 0 only when every queue was observed (and written).
pub async fn once(cfg: Config, dry_run: bool, shutdown: CancellationToken) -> u8 {
    let cfg = Arc::new(cfg);
    let client = match Client::new(&cfg, Metrics::new(), shutdown) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    let mut syncer = Syncer::new(client, cfg);
    let report = syncer.run_cycle(dry_run).await;
    print!("{}", render_report(&report));
    if report.outcome() == Outcome::Ok {
        exit::OK
    } else {
        exit::FAILURE
    }
}

/// The human table `once` prints.
pub fn render_report(r: &CycleReport) -> String {
    let mut out = String::new();
    let width = r
        .observed
        .iter()
        .map(|(t, _)| t.key.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "{:<width$}  {:>6} {:>7} {:>5} {:>11} {:>7}  UpdatedAt",
        "queue", "Online", "OnQueue", "Idle", "Interacting", "Waiting"
    );
    let at = r
        .started
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    for (t, c) in &r.observed {
        let _ = writeln!(
            out,
            "{:<width$}  {:>6} {:>7} {:>5} {:>11} {:>7}  {at}",
            t.key, c.online, c.on_queue, c.idle, c.interacting, c.waiting
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
