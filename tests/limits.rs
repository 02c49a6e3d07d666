//! What the real API's limits say, in the client: observation batches that Genesys refuses
//! with 400 are split, a single queue's 400 is that queue's error, and a 429 names the
//! limit it hit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use genesys_queue_sync::genesys::RetryPolicy;
use genesys_queue_sync::sync::Outcome;
use genesys_sim::{Fault, FaultAction, LoggedRequest, Match, Sim, SimOptions};
use support::logs::log_lines_with;
use support::*;
use tokio_util::sync::CancellationToken;

/// `n` queues named `prefix 000`.. with `i + 1` voice interactions waiting in queue `i`
/// (never 0: Genesys leaves a queue with nothing to report out of the answer).
fn add_queues(sim: &Sim, prefix: &str, n: u32) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let name = format!("{prefix} {i:03}");
            let id = sim.add_queue(&name);
            sim.set_waiting(&id, "voice", i + 1);
            (name, id)
        })
        .collect()
}

fn observation_queries(reqs: &[LoggedRequest]) -> Vec<(usize, u16)> {
    reqs.iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/observations/query"))
        .map(|r| (r.body.matches("\"queueId\"").count(), r.status))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_refused_above_50_queues_is_split_and_every_row_is_right() {
    let sim = spawn_sim(SimOptions::default()).await;
    let queues = add_queues(&sim, "Split", 120);
    sim.set_max_queues_per_query(50);
    let mut cfg = config(&sim, &[], "* * * * * *");
    cfg.selection.patterns = vec!["Split *".into()];
    cfg.rows.heartbeat_key = None;
    cfg.requests_per_minute = 100_000;
    let _ = support::logs::logs();
    let mut s = syncer(cfg);

    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Ok, "{r:?}");
    let table = rows(&sim);
    for (i, (name, _)) in queues.iter().enumerate() {
        assert_eq!(int(&table[name], "Waiting"), i as i64 + 1, "{name}");
    }
    // 100 refused, split into 50 + 50; the last 20 go in one query (sent beside the
    // first: queries go out write_concurrency at a time, so their order is not fixed).
    let mut sent = observation_queries(&sim.requests());
    sent.sort_unstable();
    assert_eq!(sent, [(20, 200), (50, 200), (50, 200), (100, 400)]);

    // The smaller size holds for the rest of the process: no 400 again.
    sim.clear_log();
    for (i, (_, id)) in queues.iter().enumerate() {
        sim.set_waiting(id, "voice", i as u32 + 2);
    }
    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Ok, "{r:?}");
    let mut sent = observation_queries(&sim.requests());
    sent.sort_unstable();
    assert_eq!(sent, [(20, 200), (50, 200), (50, 200)]);
    let table = rows(&sim);
    for (i, (name, _)) in queues.iter().enumerate() {
        assert_eq!(int(&table[name], "Waiting"), i as i64 + 2, "{name}");
    }
    let lines = log_lines_with(&["queries hold at most 50 queues", "was=100"]);
    assert_eq!(lines.len(), 1, "logged once: {lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_for_a_single_queue_is_that_queues_error_and_costs_a_bounded_number_of_requests() {
    let sim = spawn_sim(SimOptions::default()).await;
    let queues = add_queues(&sim, "Alone", 3);
    let mut cfg = config(&sim, &[], "* * * * * *");
    cfg.selection.patterns = vec!["Alone *".into()];
    let mut s = syncer(cfg);
    assert_eq!(s.run_cycle(false).await.outcome(), Outcome::Ok);

    // Every query is refused, whatever its size: the 400 is not about the batch size.
    sim.set_max_queues_per_query(0);
    sim.clear_log();
    let r = s.run_cycle(false).await;
    let mut failed: Vec<(&str, &str)> = r
        .failed
        .iter()
        .map(|f| (f.queue.as_str(), f.reason.as_str()))
        .collect();
    failed.sort_unstable();
    assert_eq!(failed.len(), 3, "{r:?}");
    for ((queue, reason), (name, _)) in failed.iter().zip(&queues) {
        assert_eq!(queue, name);
        assert!(
            reason.contains("refused for this queue (400)"),
            "{queue}: {reason}"
        );
    }
    // 3 -> 2 + 1 -> 1 + 1 (+ 1): one request per level, never one per queue and level.
    assert_eq!(
        observation_queries(&sim.requests()),
        [(3, 400), (2, 400), (1, 400), (1, 400), (1, 400)]
    );
    assert_eq!(
        int(&rows(&sim)["Alone 002"], "Waiting"),
        3,
        "the rows keep their values"
    );

    // The size was not lowered by 400s that were not about it.
    sim.set_max_queues_per_query(100);
    sim.clear_log();
    assert_eq!(s.run_cycle(false).await.outcome(), Outcome::Ok);
    assert_eq!(observation_queries(&sim.requests()), [(3, 200)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_queues_per_query_sets_the_batch_size() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_queues(&sim, "Small", 25);
    let body = format!(
        "[table]\nname = \"{TABLE}\"\n\n[queues]\nmatch = [\"Small *\"]\n\n[limits]\nqueues_per_query = 10\n"
    );
    let cfg = config_file(&sim, &body);
    let out = run_bin(&["once"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    // Batches go out concurrently: their order in the log is not the point, their sizes are.
    let mut sizes = observation_queries(&sim.requests());
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(sizes, [(10, 200), (10, 200), (5, 200)]);

    let body = body.replace("queues_per_query = 10", "queues_per_query = 101");
    let cfg = config_file(&sim, &body);
    let out = run_bin(&["once"], &cfg).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("limits.queues_per_query") && stderr.contains("from 1 to 100"),
        "{stderr}"
    );
}

/// Genesys' 429 body since mid-2023 (its announcement's example), naming the limit hit.
fn limited_429(retry_after: u64) -> FaultAction {
    FaultAction::Reply {
        status: 429,
        body: serde_json::json!({
            "message": format!("Rate limit exceeded the maximum. Retry the request in [{retry_after}] seconds"),
            "code": "too.many.requests.retry.after",
            "status": 429,
            "details": [],
            "errors": [],
            "limit": {"key": "user.rate.per.minute", "namespace": "directory", "value": 180}
        })
        .to_string(),
        retry_after: Some(retry_after),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_naming_its_limit_is_logged_with_it_and_reported_when_given_up() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_queues(&sim, "Limited", 2);
    let mut cfg = config(&sim, &[], "* * * * * *");
    cfg.selection.patterns = vec!["Limited *".into()];
    let _ = support::logs::logs();
    let retry = RetryPolicy {
        max_retry_after: Duration::from_secs(1),
        ..fast_retry()
    };
    let mut s = syncer_with(cfg, retry, CancellationToken::new());
    // Waited out (1 s), then the cycle goes on.
    sim.inject(Fault {
        matcher: Match::Path {
            method: Some("POST"),
            contains: "/observations/query".into(),
        },
        action: limited_429(1),
        times: 1,
    });
    assert_eq!(s.run_cycle(false).await.outcome(), Outcome::Ok);
    let lines = log_lines_with(&[
        "rate limited (429)",
        "limit_key=\"user.rate.per.minute\"",
        "limit_namespace=\"directory\"",
        "limit_value=180",
    ]);
    assert_eq!(lines.len(), 1, "{lines:?}");

    // A Retry-After longer than the call may wait: the queues fail, naming the limit.
    sim.inject(Fault {
        matcher: Match::Path {
            method: Some("POST"),
            contains: "/observations/query".into(),
        },
        action: limited_429(5),
        times: 1,
    });
    let r = s.run_cycle(false).await;
    assert_eq!(r.failed.len(), 2, "{r:?}");
    for f in &r.failed {
        assert!(
            f.reason.contains(
                "the limit hit: key user.rate.per.minute in namespace directory, value 180"
            ),
            "{}",
            f.reason
        );
    }
}
