//! `queues`: the resolved selection and what it costs.

use super::estimate::Estimate;
use super::{exit, shutdown_on_signals};
use crate::config::Config;
use crate::genesys::Client;
use crate::metrics::Metrics;
use crate::sync;

/// `queues`: the resolved selection and what it costs.
pub async fn command(cfg: Config) -> u8 {
    let client = match Client::new(&cfg, Metrics::new(), shutdown_on_signals()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    let res = match sync::resolve(&client, &cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: resolving queues: {e}");
            return exit::FAILURE;
        }
    };
    let width = res
        .targets
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<width$}  {:<36}  division", "name", "id");
    for t in &res.targets {
        println!("{:<width$}  {:<36}  {}", t.name, t.id, t.division);
    }
    println!();
    println!(
        "{} selected",
        crate::text::count(res.targets.len(), "queue", "queues")
    );
    for m in &res.missing {
        println!("✗ not found: {m}");
    }
    if !res.left_out.is_empty() {
        println!(
            "✗ {} left out: a table holds at most 5,000 rows",
            crate::text::count(res.left_out.len(), "queue", "queues")
        );
    }
    let est = Estimate::new(&cfg, res.targets.len());
    println!(
        "\nExpected requests per minute (schedule period {}s, budget {}):",
        cfg.schedule.period.as_secs(),
        cfg.requests_per_minute
    );
    println!(
        "  reads {:.0}, heartbeat {:.0}, refreshes at most {:.0} (rows.refresh_after = {})",
        est.reads_per_cycle * est.cycles_per_minute,
        est.heartbeat_per_cycle * est.cycles_per_minute,
        est.refresh_per_cycle * est.cycles_per_minute,
        humantime::format_duration(cfg.rows.refresh_after)
    );
    for f in [0.1, 0.5, 1.0] {
        let need = est.rows_per_minute(f);
        println!(
            "  rows mode, {:>3.0}% of queues changing per cycle: {need:.0}/min {}",
            f * 100.0,
            if need <= f64::from(cfg.requests_per_minute) {
                "✓"
            } else {
                "✗ over budget"
            }
        );
    }
    println!("  import mode: {:.0}/min", est.import_per_minute());
    let (fits, detail) = est.verdict();
    println!("{} {detail}", if fits { "✓" } else { "✗" });
    if res.missing.is_empty() && fits {
        exit::OK
    } else {
        exit::FAILURE
    }
}
