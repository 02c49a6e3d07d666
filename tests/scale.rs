//! Issue 5: the cost of a cycle grows with what changed, not with the number of queues.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use genesys_queue_sync::config::{OnVanish, WriteMode};
use genesys_queue_sync::daemon::Signals;
use genesys_queue_sync::genesys::Client;
use genesys_queue_sync::health::Health;
use genesys_queue_sync::metrics::Metrics;
use genesys_queue_sync::sync::{self, Outcome};
use genesys_sim::{Fault, FaultAction, Match, SimOptions};
use serde_json::json;
use support::*;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_rows_are_skipped_until_refresh_after() {
    let sim = spawn_sim(SimOptions::default()).await;
    let a = add_busy_queue(&sim, "A");
    add_busy_queue(&sim, "B");
    let mut cfg = config(&sim, &["A", "B"], "* * * * * *");
    cfg.rows.refresh_after = Duration::from_secs(3);
    let mut s = syncer(cfg);

    let r = s.run_cycle(false).await;
    assert_eq!((r.written.len(), r.skipped), (2, 0), "{r:?}");
    let first = rows(&sim)["B"]["UpdatedAt"].clone();

    sim.set_waiting(&a, "voice", 11);
    let r = s.run_cycle(false).await;
    assert_eq!(
        (r.written.len(), r.skipped),
        (1, 1),
        "only the changed queue is written: {r:?}"
    );
    assert_eq!(int(&rows(&sim)["A"], "Waiting"), 12);
    assert_eq!(
        rows(&sim)["B"]["UpdatedAt"],
        first,
        "an unchanged row keeps its UpdatedAt"
    );

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let r = s.run_cycle(false).await;
    assert_eq!(
        r.written.len(),
        2,
        "both rows are refreshed once older than refresh_after: {r:?}"
    );
    assert_ne!(rows(&sim)["B"]["UpdatedAt"], first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_row_is_written_every_cycle_and_can_be_turned_off() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "A");
    let cfg = config(&sim, &["A"], "* * * * * *");
    let mut s = syncer(cfg.clone());
    for _ in 0..3 {
        s.run_cycle(false).await;
    }
    let reqs = sim.requests();
    assert_eq!(
        count(&reqs, "PUT", "/rows/_heartbeat") + 1,
        3,
        "created once, then updated each cycle"
    );
    let hb = &rows(&sim)["_heartbeat"];
    assert_eq!(hb.len(), 2, "key and UpdatedAt only: {hb:?}");

    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "A");
    let mut cfg = config(&sim, &["A"], "* * * * * *");
    cfg.rows.heartbeat_key = None;
    syncer(cfg).run_cycle(false).await;
    assert!(!rows(&sim).contains_key("_heartbeat"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_rewrites_nothing_that_is_already_right() {
    let sim = spawn_sim(SimOptions::default()).await;
    let names: Vec<String> = (0..20).map(|i| format!("Q{i}")).collect();
    for n in &names {
        add_busy_queue(&sim, n);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let cfg = config(&sim, &refs, "* * * * * *");
    let r = syncer(cfg.clone()).run_cycle(false).await;
    assert_eq!(r.written.len(), 20);
    sim.clear_log();

    // A new process (a restart or a rolling deploy) reads the table once and writes nothing.
    let r = syncer(cfg).run_cycle(false).await;
    assert_eq!((r.written.len(), r.skipped), (0, 20), "{r:?}");
    let reqs = sim.requests();
    assert_eq!(queue_writes(&reqs).len(), 0);
    let listing: Vec<_> = reqs
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/rows"))
        .collect();
    assert_eq!(listing.len(), 1);
    assert!(
        listing[0].query.contains("showbrief=false"),
        "{}",
        listing[0].query
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_budget_rows_are_deferred_changed_first_and_caught_up_next_cycle() {
    let sim = spawn_sim(SimOptions::default()).await;
    let names: Vec<String> = (0..30).map(|i| format!("Q{i:02}")).collect();
    let mut ids = Vec::new();
    for n in &names {
        ids.push(add_busy_queue(&sim, n));
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    // Period 1 s and 1,200 requests/minute: 20 requests per cycle, 1 read + 2 for the
    // heartbeat (read-back and write), and from the second cycle on 1 name check of the
    // rows written (rows keyed by name): 17, then 16 writes. (No re-read of the rows
    // before rewriting them: the table has no field beyond the daemon's.)
    let mut cfg = config(&sim, &refs, "* * * * * *");
    cfg.requests_per_minute = 1200;
    let period = cfg.schedule.period;
    let mut s = syncer(cfg);
    // The daemon's signals, to see the rows counters the run loop would export.
    let mut signals = Signals::new(
        s.client().metrics().clone(),
        Health::new(period, s.client().metrics().clone()),
    );

    let r = s.run_cycle(false).await;
    signals.record(&r);
    assert_eq!((r.written.len(), r.deferred), (17, 13), "{r:?}");
    let r = s.run_cycle(false).await;
    signals.record(&r);
    assert_eq!(
        (r.written.len(), r.deferred, r.skipped),
        (13, 0, 17),
        "the deferred rows go next: {r:?}"
    );

    // A big relative change goes before a small one when the budget is short.
    for id in &ids[..25] {
        sim.set_waiting(id, "email", 1); // Waiting 5 -> 6
    }
    sim.set_waiting(&ids[29], "email", 50); // Waiting 5 -> 55
    let r = s.run_cycle(false).await;
    signals.record(&r);
    assert_eq!((r.written.len(), r.deferred), (16, 10), "{r:?}");
    assert_eq!(
        int(&rows(&sim)["Q29"], "Waiting"),
        55,
        "the largest change was written first"
    );
    let metrics = s.client().metrics().encode();
    assert!(
        metrics.contains("genesys_queue_sync_rows_total{result=\"deferred\"} 23"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_mode_writes_a_whole_cycle_with_a_handful_of_requests() {
    let sim = spawn_sim(SimOptions::default()).await;
    let names: Vec<String> = (0..250)
        .map(|i| format!("Queue {i:03}, \"quoted\""))
        .collect();
    for n in &names {
        sim.add_queue(n);
    }
    add_busy_queue(&sim, "Busy");
    let mut refs: Vec<&str> = names.iter().map(String::as_str).collect();
    refs.push("Busy");
    let mut cfg = config(&sim, &refs, "* * * * * *");
    cfg.write_mode = WriteMode::Import;
    let mut s = syncer(cfg);
    let r = s.run_cycle(false).await;
    assert!(r.imported && r.outcome() == Outcome::Ok, "{r:?}");
    let rows = rows(&sim);
    assert_eq!(rows.len(), 251 + 1);
    assert_eq!(int(&rows["Busy"], "OnQueue"), 5);
    assert_eq!(int(&rows["Queue 007, \"quoted\""], "Online"), 0);

    sim.clear_log();
    s.run_cycle(false).await;
    let reqs = sim.requests();
    assert_eq!(count(&reqs, "POST", "/observations/query"), 3);
    let write_requests = count(&reqs, "POST", "/import/csv/jobs")
        + count(&reqs, "PUT", "/uploads/")
        + count(&reqs, "GET", "/import/jobs/");
    assert!(
        write_requests <= 5,
        "{write_requests} requests for the write"
    );
    assert_eq!(queue_writes(&reqs).len(), 0, "no per-row requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_mode_keeps_old_values_of_queues_it_could_not_read() {
    let sim = spawn_sim(SimOptions::default()).await;
    let a = add_busy_queue(&sim, "A");
    let mut cfg = config(&sim, &["A"], "* * * * * *");
    cfg.write_mode = WriteMode::Import;
    let mut s = syncer(cfg);
    s.run_cycle(false).await;
    let before = rows(&sim)["A"].clone();
    sim.set_waiting(&a, "voice", 40);
    sim.inject(Fault {
        matcher: Match::Path {
            method: Some("POST"),
            contains: "/observations/query".into(),
        },
        action: FaultAction::Status {
            status: 500,
            retry_after: None,
        },
        times: u32::MAX,
    });
    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Failed);
    assert_eq!(
        rows(&sim)["A"],
        before,
        "never a zero or a wipe for unknown values"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_and_divisions_select_queues_and_vanished_rows_follow_on_vanish() {
    let sim = spawn_sim(SimOptions::default()).await;
    sim.add_queue("Sales EU");
    sim.add_queue("Sales US");
    sim.add_queue("Salesforce sync");
    sim.add_queue_in_division("Tech Support", "Operations");
    sim.add_queue_in_division("Billing", "Operations");
    let other = sim.add_queue("Support Other");
    let mut cfg = config(&sim, &[], "* * * * * *");
    cfg.selection.patterns = vec!["sales *".into(), "*Support".into()];
    let res = sync::resolve(
        &Client::new(&cfg, Metrics::new(), CancellationToken::new()).unwrap(),
        &cfg,
    )
    .await
    .unwrap();
    let mut got: Vec<&str> = res.targets.iter().map(|t| t.name.as_str()).collect();
    got.sort();
    assert_eq!(got, ["Sales EU", "Sales US", "Tech Support"]);

    cfg.selection.patterns.clear();
    cfg.selection.divisions = vec!["operations".into()];
    let res = sync::resolve(
        &Client::new(&cfg, Metrics::new(), CancellationToken::new()).unwrap(),
        &cfg,
    )
    .await
    .unwrap();
    let got: Vec<&str> = res.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(got, ["Billing", "Tech Support"]);

    // A vanished queue's row is deleted only with on_vanish = "delete".
    for (on_vanish, survives) in [(OnVanish::Keep, true), (OnVanish::Delete, false)] {
        let sim = spawn_sim(SimOptions::default()).await;
        sim.add_queue("Support A");
        let b = sim.add_queue("Support B");
        let mut cfg = config(&sim, &[], "* * * * * *");
        cfg.selection.patterns = vec!["Support *".into()];
        cfg.selection.on_vanish = on_vanish;
        let mut s = syncer(cfg);
        s.run_cycle(false).await;
        assert!(rows(&sim).contains_key("Support B"));
        sim.delete_queue(&b);
        s.run_cycle(false).await; // B is missing from the answer: re-resolve requested
        s.run_cycle(false).await;
        assert_eq!(
            rows(&sim).contains_key("Support B"),
            survives,
            "{on_vanish:?}"
        );
        assert!(rows(&sim).contains_key("Support A"));
    }
    let _ = other;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_command_lists_the_selection_and_its_cost_against_the_budget() {
    let sim = spawn_sim(SimOptions::default()).await;
    for i in 0..300 {
        sim.add_queue(&format!("Sales {i:03}"));
    }
    let body = format!(
        "[table]\nname = \"{TABLE}\"\n\n[queues]\nmatch = [\"Sales *\"]\n\n[rows]\nrefresh_after = \"5m\"\n"
    );
    let cfg = config_file(&sim, &body);
    let out = run_bin(&["queues"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Sales 000") && stdout.contains("300 queues selected"),
        "{stdout}"
    );
    // 3 reads + 2 for the heartbeat (read-back and write) + 30 changed + 60 refreshes
    // per minute at 10%, and the name checks (rows keyed by name): 1 for the 90 rows
    // written, and the 3 requests of all 300 names once per refresh_after (5 cycles):
    // 96.6.
    assert!(
        stdout.contains("10% of queues changing per cycle: 97/min ✓"),
        "{stdout}"
    );

    let body = format!(
        "[table]\nname = \"{TABLE}\"\n\n[queues]\nmatch = [\"Sales *\"]\n\n[limits]\nrequests_per_minute = 60\n"
    );
    let cfg = config_file(&sim, &body);
    let out = run_bin(&["queues"], &cfg).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout.contains("write_mode = \"import\"") && stdout.contains("over the budget of 60"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_mode_fills_the_table_with_5000_queues_and_leaves_the_heartbeat_out() {
    // 5,000 queue rows + the heartbeat row would be 5,001: the import must not fail.
    let sim = spawn_sim(SimOptions {
        rate_limit_per_minute: 0,
        ..SimOptions::default()
    })
    .await;
    for i in 0..5000 {
        sim.add_queue(&format!("Q{i:04}"));
    }
    let mut cfg = config(&sim, &[], "* * * * * *");
    cfg.selection.patterns = vec!["Q*".into()];
    cfg.write_mode = WriteMode::Import;
    cfg.requests_per_minute = 100_000;
    let mut s = syncer(cfg);
    let r = s.run_cycle(false).await;
    assert!(r.imported && r.outcome() == Outcome::Ok, "{:?}", r.error);
    let rows = rows(&sim);
    assert_eq!(rows.len(), 5000);
    assert!(!rows.contains_key("_heartbeat"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_mode_keeps_the_extra_columns_of_owned_rows() {
    let sim = genesys_sim::Sim::start(SimOptions::default())
        .await
        .unwrap();
    let mut columns = COLUMNS.to_vec();
    columns.push(("Note", genesys_sim::FieldType::String));
    sim.create_table(TABLE, &columns);
    add_busy_queue(&sim, "A");
    sim.put_row(
        &table_id(&sim),
        json!({"key": "A", "Note": "VIP line, do not close"}),
    );
    let mut cfg = config(&sim, &["A"], "* * * * * *");
    cfg.write_mode = WriteMode::Import;
    let r = syncer(cfg).run_cycle(false).await;
    assert!(r.imported && r.outcome() == Outcome::Ok, "{r:?}");
    let row = &rows(&sim)["A"];
    assert_eq!(row["Note"], "VIP line, do not close", "{row:?}");
    assert_eq!(int(row, "OnQueue"), 5);
}
