//! Import mode against Genesys' documented import semantics: Append never hides a row,
//! leaves rows it does not own alone, and a job that `Succeeded` with rejected records is a
//! partial cycle whose rows are written again (through the rows API if imports keep
//! failing them).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use genesys_queue_sync::config::{OnVanish, WriteMode};
use genesys_queue_sync::sync::Outcome;
use genesys_sim::SimOptions;
use serde_json::json;
use support::*;

fn import_config(sim: &genesys_sim::Sim, names: &[&str]) -> genesys_queue_sync::config::Config {
    let mut cfg = config(sim, names, "* * * * * *");
    cfg.write_mode = WriteMode::Import;
    cfg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_reading_every_100ms_finds_every_row_during_imports_and_foreign_rows_stay() {
    let sim = spawn_sim(SimOptions::default()).await;
    let names: Vec<String> = (0..20).map(|i| format!("Q{i:02}")).collect();
    let ids: Vec<String> = names.iter().map(|n| add_busy_queue(&sim, n)).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let foreign = json!({"key": "Someone else's row", "Online": 99, "UpdatedAt": "x"});
    sim.put_row(&table_id(&sim), foreign.clone());
    // No `table.owned`: a shared table works in import mode.
    let mut s = syncer(import_config(&sim, &refs));
    let first = s.run_cycle(false).await;
    assert!(
        first.imported && first.outcome() == Outcome::Ok,
        "{first:?}"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (sim, stop, reads) = (sim.clone(), stop.clone(), reads.clone());
        let names = names.clone();
        tokio::spawn(async move {
            let mut missing = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let rows = rows(&sim);
                reads.fetch_add(1, Ordering::SeqCst);
                for n in &names {
                    if !rows.contains_key(n) {
                        missing.push(n.clone());
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            missing
        })
    };
    for cycle in 0..4u32 {
        for id in &ids {
            sim.set_waiting(id, "voice", cycle + 10);
        }
        let r = s.run_cycle(false).await;
        assert!(r.imported && r.outcome() == Outcome::Ok, "{r:?}");
        assert_eq!(r.written.len(), 20);
    }
    stop.store(true, Ordering::SeqCst);
    let missing = watcher.await.unwrap();
    assert!(
        reads.load(Ordering::SeqCst) >= 8,
        "the watcher read often enough"
    );
    assert!(
        missing.is_empty(),
        "rows missing during imports: {missing:?}"
    );
    let rows = rows(&sim);
    assert_eq!(int(&rows["Q07"], "Waiting"), 13 + 1);
    assert_eq!(
        serde_json::Value::Object(rows["Someone else's row"].clone()),
        foreign,
        "a row the daemon does not own is never in the file and never changed"
    );
    let reqs = sim.requests();
    assert!(
        reqs.iter()
            .filter(|r| r.path.ends_with("/import/csv/jobs"))
            .all(|r| r.body.contains("\"Append\"")),
        "every job is an Append"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_rejected_by_a_succeeded_job_make_a_partial_cycle_and_are_right_next_cycle() {
    let sim = spawn_sim(SimOptions::default()).await;
    let a = add_busy_queue(&sim, "A");
    add_busy_queue(&sim, "B");
    let mut s = syncer(import_config(&sim, &["A", "B"]));
    assert_eq!(s.run_cycle(false).await.outcome(), Outcome::Ok);

    sim.set_waiting(&a, "voice", 30);
    sim.fail_import_rows(&["A"]);
    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Partial, "{r:?}");
    assert_eq!(
        r.written.len(),
        0,
        "B was unchanged and skipped; A was rejected"
    );
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].queue, "A");
    assert!(
        r.failed[0].reason.contains("rejected") && r.failed[0].reason.contains("key \"A\""),
        "the reason is Genesys' errorInformation: {:?}",
        r.failed
    );
    let printed = genesys_queue_sync::commands::once::render_report(&r.columns, &r);
    assert!(
        printed.contains("✗ A: the import rejected the row"),
        "{printed}"
    );
    assert!(printed.contains("1 failed"), "{printed}");
    assert_eq!(
        int(&rows(&sim)["A"], "Waiting"),
        5,
        "the old value is still there"
    );

    sim.fail_import_rows(&[]);
    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Ok, "{r:?}");
    assert_eq!(
        r.written.len(),
        1,
        "A is due again although its values did not change since"
    );
    assert_eq!(int(&rows(&sim)["A"], "Waiting"), 31);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_imports_keep_rejecting_is_written_through_the_rows_api() {
    let sim = spawn_sim(SimOptions::default()).await;
    let a = add_busy_queue(&sim, "A");
    add_busy_queue(&sim, "B");
    let mut s = syncer(import_config(&sim, &["A", "B"]));
    sim.fail_import_rows(&["A"]);
    for _ in 0..2 {
        let r = s.run_cycle(false).await;
        assert_eq!(r.outcome(), Outcome::Partial, "{r:?}");
    }
    assert!(!rows(&sim).contains_key("A"));
    sim.clear_log();
    sim.set_waiting(&a, "voice", 9);
    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Ok, "{r:?}");
    let row = &rows(&sim)["A"];
    assert_eq!(int(row, "Waiting"), 10);
    assert_eq!(int(row, "OnQueue"), 5);
    let reqs = sim.requests();
    assert_eq!(
        count(&reqs, "POST", "/rows"),
        1,
        "A was POSTed: it never landed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_queues_rows_are_deleted_one_by_one_only_with_on_vanish_delete() {
    for on_vanish in [OnVanish::Delete, OnVanish::Keep] {
        let sim = spawn_sim(SimOptions::default()).await;
        add_busy_queue(&sim, "Sales A");
        let b = add_busy_queue(&sim, "Sales B");
        let mut cfg = import_config(&sim, &[]);
        cfg.selection.patterns = vec!["Sales*".into()];
        cfg.selection.on_vanish = on_vanish;
        let mut s = syncer(cfg);
        assert_eq!(s.run_cycle(false).await.outcome(), Outcome::Ok);
        sim.delete_queue(&b);
        sim.clear_log();
        s.run_cycle(false).await;
        s.run_cycle(false).await;
        let deletes = count(&sim.requests(), "DELETE", "/rows/Sales B");
        let rows = rows(&sim);
        match on_vanish {
            OnVanish::Delete => {
                assert_eq!(deletes, 1);
                assert!(!rows.contains_key("Sales B"));
            }
            OnVanish::Keep => {
                assert_eq!(deletes, 0);
                assert!(rows.contains_key("Sales B"));
            }
        }
        assert!(rows.contains_key("Sales A"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_never_finishes_is_abandoned_and_the_next_cycle_starts_a_new_one() {
    let sim = spawn_sim(SimOptions::default()).await;
    let a = add_busy_queue(&sim, "A");
    let mut s = syncer(import_config(&sim, &["A"]));
    assert_eq!(s.run_cycle(false).await.outcome(), Outcome::Ok);
    sim.set_waiting(&a, "voice", 20);
    sim.stall_imports(true);
    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Failed);
    let e = r.error.map(|e| e.message).unwrap_or_default();
    assert!(
        e.contains("still Processing") && e.contains("abandoned"),
        "{e}"
    );
    sim.stall_imports(false);
    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Ok, "{r:?}");
    assert_eq!(int(&rows(&sim)["A"], "Waiting"), 21);
}
