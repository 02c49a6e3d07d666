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
use genesys_sim::{Fault, FaultAction, Match, Rewrite, SimOptions};
use serde_json::json;
use support::*;

/// A flow's view of the table: reads every row every 100 ms and records each read in which
/// one of `keys` was missing.
struct Watcher {
    stop: Arc<AtomicBool>,
    reads: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<(usize, String)>>,
}

impl Watcher {
    fn start(sim: &genesys_sim::Sim, keys: &[String]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let (sim, stop2, reads2, keys) = (sim.clone(), stop.clone(), reads.clone(), keys.to_vec());
        let task = tokio::spawn(async move {
            let mut missing = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                let rows = rows(&sim);
                let n = reads2.fetch_add(1, Ordering::SeqCst);
                for k in &keys {
                    if !rows.contains_key(k) {
                        missing.push((n, k.clone()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            missing
        });
        Self { stop, reads, task }
    }

    /// Stops the watcher; asserts it read at least `min_reads` times and never missed a row.
    /// (A ReplaceAll leaves the table empty for 400 ms: reads every 100 ms running beside
    /// the cycle cannot miss that gap, so a small `min_reads` is only a sanity bound.)
    async fn stop_and_assert(self, min_reads: usize) {
        self.stop.store(true, Ordering::SeqCst);
        let missing = self.task.await.unwrap();
        let reads = self.reads.load(Ordering::SeqCst);
        eprintln!(
            "watcher: {reads} reads of the table, {} misses",
            missing.len()
        );
        assert!(reads >= min_reads, "the watcher read {reads} times");
        assert!(
            missing.is_empty(),
            "rows missing (read number, key) in {reads} reads: {missing:?}"
        );
    }
}

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

    let mut watched = names.clone();
    watched.push("Someone else's row".into());
    let watcher = Watcher::start(&sim, &watched);
    for cycle in 0..4u32 {
        for id in &ids {
            sim.set_waiting(id, "voice", cycle + 10);
        }
        let r = s.run_cycle(false).await;
        assert!(r.imported && r.outcome() == Outcome::Ok, "{r:?}");
        assert_eq!(r.written.len(), 20);
    }
    watcher.stop_and_assert(4).await;
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

/// The row of `key` as (Waiting, UpdatedAt).
fn waiting_and_stamp(sim: &genesys_sim::Sim, key: &str) -> (i64, String) {
    let rows = rows(sim);
    let row = rows
        .get(key)
        .unwrap_or_else(|| panic!("no row {key:?} in {:?}", rows.keys()));
    (
        int(row, "Waiting"),
        row["UpdatedAt"].as_str().unwrap_or_default().to_owned(),
    )
}

fn set_voice(sim: &genesys_sim::Sim, ids: &[String], n: u32) {
    for id in ids {
        sim.set_waiting(id, "voice", n);
    }
}

fn fault(sim: &genesys_sim::Sim, method: &'static str, contains: &str, action: FaultAction) {
    sim.inject(Fault {
        matcher: Match::Path {
            method: Some(method),
            contains: contains.to_owned(),
        },
        action,
        times: u32::MAX,
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_the_daemon_could_not_write_then_not_read_keeps_its_row_and_last_values() {
    let sim = spawn_sim(SimOptions::default()).await;
    let names: Vec<String> = ["A", "B", "C"].map(String::from).to_vec();
    let ids: Vec<String> = names.iter().map(|n| add_busy_queue(&sim, n)).collect();
    let mut s = syncer(import_config(&sim, &["A", "B", "C"]));
    assert_eq!(s.run_cycle(false).await.outcome(), Outcome::Ok);
    let (_, a_stamp) = waiting_and_stamp(&sim, "A");
    let watcher = Watcher::start(&sim, &names);

    // 1. The import rejects A's row: the cycle is partial, A keeps what it held.
    set_voice(&sim, &ids, 10);
    sim.fail_import_rows(&["A"]);
    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Partial, "{r:?}");
    assert_eq!(waiting_and_stamp(&sim, "A"), (5, a_stamp.clone()));
    assert_eq!(waiting_and_stamp(&sim, "B").0, 11);
    sim.fail_import_rows(&[]);

    // 2. The next cycle cannot read A (left out of the observation answer): A is not in
    //    the file, and its row still holds its last known values and UpdatedAt.
    let hidden = ids[0].clone();
    fault(
        &sim,
        "POST",
        "/observations/query",
        FaultAction::Rewrite(Rewrite::new(move |_, v| {
            if let Some(r) = v["results"].as_array_mut() {
                r.retain(|g| g["group"]["queueId"] != hidden.as_str());
            }
        })),
    );
    set_voice(&sim, &ids, 20);
    let r = s.run_cycle(false).await;
    assert!(r.imported, "{r:?}");
    assert!(r.written.iter().all(|(t, _)| t.key != "A"), "{r:?}");
    assert_eq!(waiting_and_stamp(&sim, "A"), (5, a_stamp.clone()));
    assert_eq!(waiting_and_stamp(&sim, "C").0, 21);
    sim.clear_faults();

    // 3. A whole import fails (the job endpoint answers 503 every time): every row keeps
    //    what it held.
    fault(
        &sim,
        "POST",
        "/import/csv/jobs",
        FaultAction::Status {
            status: 503,
            retry_after: None,
        },
    );
    let before = rows(&sim);
    set_voice(&sim, &ids, 30);
    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Failed, "{r:?}");
    for k in &names {
        assert_eq!(rows(&sim)[k], before[k], "{k} changed by a failed import");
    }
    sim.clear_faults();

    // 4. Healthy again: every row right in one cycle.
    let r = s.run_cycle(false).await;
    assert_eq!(r.outcome(), Outcome::Ok, "{r:?}");
    for k in &names {
        assert_eq!(waiting_and_stamp(&sim, k).0, 31, "{k}");
    }
    watcher.stop_and_assert(4).await;
    assert_eq!(
        count(&sim.requests(), "DELETE", "/rows/"),
        0,
        "nothing was ever deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_left_the_selection_keeps_its_row_with_on_vanish_keep() {
    let sim = spawn_sim(SimOptions::default()).await;
    let a = add_busy_queue(&sim, "Sales A");
    let b = add_busy_queue(&sim, "Sales B");
    let c = add_busy_queue(&sim, "Sales C");
    add_busy_queue(&sim, "Sales D");
    let mut cfg = import_config(&sim, &[]);
    cfg.selection.patterns = vec!["Sales*".into()];
    cfg.selection.on_vanish = OnVanish::Keep;
    // Every cycle re-resolves, so each way of leaving is seen at once.
    cfg.resolve_every = Duration::ZERO;
    let mut s = syncer(cfg.clone());
    assert_eq!(s.run_cycle(false).await.outcome(), Outcome::Ok);
    let kept: Vec<String> = ["Sales B", "Sales C", "Sales D"].map(String::from).to_vec();
    let before: Vec<(i64, String)> = kept.iter().map(|k| waiting_and_stamp(&sim, k)).collect();
    let mut watched = kept.clone();
    watched.push("Sales A".into());
    let watcher = Watcher::start(&sim, &watched);

    // B is renamed out of the pattern (it exists, it is just no longer selected); C is
    // deleted in Genesys.
    sim.rename_queue(&b, "Archive B");
    sim.delete_queue(&c);
    for n in 0..3 {
        sim.set_waiting(&a, "voice", 10 + n);
        sim.set_waiting(&b, "voice", 10 + n);
        let r = s.run_cycle(false).await;
        assert!(r.imported, "{r:?}");
        assert_eq!(
            r.written
                .iter()
                .map(|(t, _)| t.key.as_str())
                .collect::<Vec<_>>(),
            ["Sales A"],
            "only the selected queue whose values changed is written: {r:?}"
        );
    }
    assert_eq!(
        s.targets()
            .iter()
            .map(|t| t.key.as_str())
            .collect::<Vec<_>>(),
        ["Sales A", "Sales D"],
        "B and C left the selection"
    );
    // D is removed from the configuration and the daemon restarts, this time with
    // on_vanish = "delete": a row a fresh process never wrote is not its own to delete.
    let mut cfg = cfg;
    cfg.selection.patterns = vec!["Sales A".into()];
    cfg.selection.on_vanish = OnVanish::Delete;
    let mut s = syncer(cfg);
    for n in 0..2 {
        sim.set_waiting(&a, "voice", 20 + n);
        assert_eq!(s.run_cycle(false).await.outcome(), Outcome::Ok);
    }
    watcher.stop_and_assert(3).await;
    let after: Vec<(i64, String)> = kept.iter().map(|k| waiting_and_stamp(&sim, k)).collect();
    assert_eq!(
        after, before,
        "rows of queues that left keep their last values"
    );
    assert_eq!(waiting_and_stamp(&sim, "Sales A").0, 22);
    assert_eq!(count(&sim.requests(), "DELETE", "/rows/"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_importing_disjoint_queues_into_one_table_never_delete_each_others_rows() {
    let sim = spawn_sim(SimOptions::default()).await;
    let east: Vec<String> = (0..5).map(|i| format!("East {i}")).collect();
    let west: Vec<String> = (0..5).map(|i| format!("West {i}")).collect();
    let east_ids: Vec<String> = east.iter().map(|n| add_busy_queue(&sim, n)).collect();
    let west_ids: Vec<String> = west.iter().map(|n| add_busy_queue(&sim, n)).collect();
    // The strongest setting: both delete the rows of queues that leave their selection.
    let daemon = |pattern: &str| {
        let mut cfg = import_config(&sim, &[]);
        cfg.selection.patterns = vec![pattern.into()];
        cfg.selection.on_vanish = OnVanish::Delete;
        cfg.resolve_every = Duration::ZERO;
        syncer(cfg)
    };
    let (mut e, mut w) = (daemon("East*"), daemon("West*"));
    let (re, rw) = tokio::join!(e.run_cycle(false), w.run_cycle(false));
    assert_eq!((re.outcome(), rw.outcome()), (Outcome::Ok, Outcome::Ok));
    let all: Vec<String> = east.iter().chain(&west).cloned().collect();
    // East 0 is deleted (on purpose) at the end; the others are watched throughout.
    let watcher = Watcher::start(&sim, &all[1..]);
    for n in 0..4 {
        set_voice(&sim, &east_ids, 10 + n);
        set_voice(&sim, &west_ids, 20 + n);
        // Concurrent cycles: the two daemons' import jobs overlap.
        let (re, rw) = tokio::join!(e.run_cycle(false), w.run_cycle(false));
        assert_eq!((re.outcome(), rw.outcome()), (Outcome::Ok, Outcome::Ok));
        assert_eq!((re.written.len(), rw.written.len()), (5, 5));
        for k in &east {
            assert_eq!(waiting_and_stamp(&sim, k).0, i64::from(11 + n), "{k}");
        }
        for k in &west {
            assert_eq!(waiting_and_stamp(&sim, k).0, i64::from(21 + n), "{k}");
        }
    }
    // A restarted East reads West's rows as rows it does not own.
    e = daemon("East*");
    assert_eq!(e.run_cycle(false).await.outcome(), Outcome::Ok);
    // A queue of East is deleted in Genesys: East deletes that one row (the only
    // confirmed decision), West's rows stay.
    sim.delete_queue(&east_ids[0]);
    for _ in 0..2 {
        let (_, rw) = tokio::join!(e.run_cycle(false), w.run_cycle(false));
        assert_eq!(rw.outcome(), Outcome::Ok);
    }
    watcher.stop_and_assert(4).await;
    let rows = rows(&sim);
    assert!(
        !rows.contains_key("East 0"),
        "the confirmed-gone queue's row"
    );
    for k in &all[1..] {
        assert!(rows.contains_key(k), "{k} lost");
    }
    let deletes: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].ends_with("/rows/East 0"), "{deletes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_with_owned_true_keeps_loading_and_once_names_the_rows_an_import_rejected() {
    let sim = spawn_sim(SimOptions::default()).await;
    let a = add_busy_queue(&sim, "A");
    add_busy_queue(&sim, "B");
    // A user's file from before Append: `owned = true` was required by import mode.
    let body = format!(
        "[table]\nname = \"{TABLE}\"\nwrite_mode = \"import\"\nowned = true\n\n[queues]\nnames = [\"A\", \"B\"]\n"
    );
    let cfg = config_file(&sim, &body);
    let out = run_bin(&["once"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("2 rows written by one import job"),
        "{stdout}"
    );

    sim.set_waiting(&a, "voice", 30);
    sim.fail_import_rows(&["A"]);
    let out = run_bin(&["once"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a partial cycle: {stdout}{stderr}"
    );
    assert!(
        stdout.contains("✗ A: the import rejected the row") && stdout.contains("key \"A\""),
        "the row and Genesys' reason: {stdout}"
    );
    assert!(stdout.contains("1 failed"), "{stdout}");
    assert!(
        stderr.contains("rejected some rows")
            && stderr.contains("\"failed\":1")
            && stderr.contains("\"keys\":\"A\""),
        "the log line says how many: {stderr}"
    );
    assert_eq!(int(&rows(&sim)["A"], "Waiting"), 5);
}
