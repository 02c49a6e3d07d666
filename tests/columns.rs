//! `[columns]` end to end against the simulator: the 13 columns written in rows
//! and import mode, each value compared with the simulator's truth; and a config without
//! `[columns]` that writes exactly the five columns and `UpdatedAt`, as before.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use genesys_sim::{RoutingStatus, Sim, SimOptions, SystemPresence};
use serde_json::{Map, Value};
use support::truth::expected;
use support::*;

/// A queue with every routing status, members on break in both of Break's organization
/// presences, an unjoined member, interactions of several media types waiting since
/// different times (more voice ones than a detail list holds, the oldest not added
/// first), alerting and being handled.
fn add_rich_queue(sim: &Sim, name: &str) -> String {
    let id = sim.add_queue(name);
    let q = [id.as_str()];
    for (n, status) in [
        (3, RoutingStatus::Idle),
        (4, RoutingStatus::Interacting),
        (2, RoutingStatus::Communicating),
        (1, RoutingStatus::NotResponding),
    ] {
        for _ in 0..n {
            sim.add_agent(SystemPresence::OnQueue, status, &q);
        }
    }
    for p in [
        SystemPresence::Break,
        SystemPresence::Break,
        SystemPresence::Break,
        SystemPresence::Available,
        SystemPresence::Meal,
        SystemPresence::Offline,
        SystemPresence::Offline,
    ] {
        sim.add_agent(p, RoutingStatus::OffQueue, &q);
    }
    // A member on break who is not joined: a member, nothing else.
    let unjoined = sim.add_agent(SystemPresence::Break, RoutingStatus::OffQueue, &q);
    sim.set_joined(&unjoined, &id, false);
    sim.set_waiting(&id, "voice", 3);
    sim.add_waiting(&id, "voice", Duration::from_secs(40));
    sim.add_waiting(&id, "voice", Duration::from_secs(95));
    sim.add_waiting(&id, "voice", Duration::from_secs(10));
    sim.add_waiting(&id, "voice", Duration::from_secs(70));
    sim.add_waiting(&id, "chat", Duration::from_secs(20));
    sim.add_waiting(&id, "email", Duration::from_secs(300));
    sim.add_waiting(&id, "message", Duration::from_secs(5));
    sim.add_waiting(&id, "callback", Duration::from_secs(15));
    sim.set_interacting(&id, "voice", 4);
    sim.set_interacting(&id, "chat", 2);
    sim.set_alerting(&id, "voice", 1);
    sim.set_alerting(&id, "chat", 1);
    id
}

/// Only digital interactions waiting, one agent on break.
fn add_digital_queue(sim: &Sim, name: &str) -> String {
    let id = sim.add_queue(name);
    sim.add_agent(SystemPresence::Break, RoutingStatus::OffQueue, &[&id]);
    sim.add_agent(SystemPresence::OnQueue, RoutingStatus::Idle, &[&id]);
    sim.add_waiting(&id, "message", Duration::from_secs(50));
    sim.add_waiting(&id, "chat", Duration::from_secs(12));
    id
}

fn sorted<'a>(it: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = it.into_iter().collect();
    v.sort_unstable();
    v
}

/// The metric names of an observation query, sorted.
fn metrics_of(query: &Value) -> Vec<&str> {
    sorted(
        query["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap()),
    )
}

/// Bodies of the observation queries the simulator received.
fn observation_queries(sim: &Sim) -> Vec<Value> {
    sim.requests()
        .iter()
        .filter(|r| r.path.ends_with("/observations/query"))
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

const FIVE_AND_FIELDS: [&str; 7] = [
    "Idle",
    "Interacting",
    "OnQueue",
    "Online",
    "UpdatedAt",
    "Waiting",
    "key",
];

fn row_value(row: &Map<String, Value>, col: &str) -> u64 {
    row.get(col)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{col} missing or not a whole number in {row:?}"))
}

/// Every column of every queue's row against the truth at `now`.
fn assert_rows_match(sim: &Sim, queues: &[(&str, &str)], now: DateTime<Utc>, mode: &str) {
    let names = thirteen_names();
    let rows = rows(sim);
    for (name, id) in queues {
        let t = sim.truth(id).unwrap();
        let row = rows
            .get(*name)
            .unwrap_or_else(|| panic!("{mode}: no row for {name}: {rows:?}"));
        for col in &names {
            let col = col.as_str();
            let got = row_value(row, col);
            let want = expected(&t, col, now);
            if col == "LongestWaitingSeconds" {
                // An age is read as of the row's UpdatedAt (an age that only grew does
                // not rewrite the row): the age now is the value plus now - UpdatedAt.
                let updated: DateTime<Utc> = row["UpdatedAt"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("{mode}: {name}: no UpdatedAt in {row:?}"));
                let aged = (now - updated).num_seconds().max(0) as u64;
                let got = if got > 0 { got + aged } else { got };
                assert!(
                    got.abs_diff(want) <= 2,
                    "{mode}: {name}.{col} = {got} now (as of UpdatedAt plus its age), the oldest has waited {want} s"
                );
            } else {
                assert_eq!(got, want, "{mode}: {name}.{col}");
            }
        }
        let mut fields: Vec<&str> = row.keys().map(String::as_str).collect();
        fields.sort_unstable();
        let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
        want.extend(["key", "UpdatedAt"]);
        want.sort_unstable();
        assert_eq!(
            fields, want,
            "{mode}: {name} holds the columns, key and UpdatedAt"
        );
    }
}

async fn thirteen_columns_in(mode_toml: &str, mode: &str) {
    let names = thirteen_names();
    assert_eq!(names.len(), 13, "the documented example: {names:?}");
    let sim = spawn_sim(SimOptions::default()).await;
    // Fewer observations per detail list than voice interactions wait: the answer is
    // truncated, and the oldest must still be found.
    sim.set_detail_limit(4);
    let sales = add_rich_queue(&sim, "Sales");
    let digital = add_digital_queue(&sim, "Digital");
    let empty = sim.add_queue("Empty");
    let cfg = config_file(
        &sim,
        &format!(
            "{}\n{THIRTEEN}",
            queues_toml(&["Sales", "Digital", "Empty"])
                .replace("\n\n[queues]", &format!("\n{mode_toml}\n[queues]"))
        ),
    );

    // The table has the five default columns: `table create` adds the eight others.
    let out = run_bin(&["table", "create"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let schema = sim.table_schema(&table_id(&sim)).unwrap();
    for col in &names {
        assert_eq!(
            schema["properties"][col]["type"], "integer",
            "{col} in {schema}"
        );
    }

    let out = run_bin(&["once"], &cfg).await;
    let now = Utc::now();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{mode}: {stdout}\n{stderr}");
    // `once` prints the columns in their written order.
    let header = stdout
        .lines()
        .find(|l| l.contains("LongestWaitingSeconds"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let positions: Vec<usize> = names
        .iter()
        .map(|n| header.find(&format!(" {n}")).unwrap_or(usize::MAX))
        .collect();
    assert!(
        positions
            .windows(2)
            .all(|w| w[0] < w[1] && w[1] != usize::MAX),
        "{header}"
    );

    assert_rows_match(
        &sim,
        &[("Sales", &sales), ("Digital", &digital), ("Empty", &empty)],
        now,
        mode,
    );
    // The truth is not trivial: every column has something to count in Sales.
    let t = sim.truth(&sales).unwrap();
    for col in &names {
        assert!(expected(&t, col, now) > 0, "Sales.{col} is 0 in the script");
    }
    assert!(
        t.waiting_in(&["voice"]) > 4,
        "more voice waiters than the detail limit"
    );
    assert_eq!(
        t.members,
        t.active + 1,
        "the unjoined member counts only in Members"
    );
    assert!(t.longest_waiting_seconds(now, None) >= 300);

    // The mode's own write path was taken.
    let reqs = sim.requests();
    let imports = count(&reqs, "POST", "/import/csv/jobs");
    if mode == "import" {
        assert_eq!((imports, row_writes(&reqs)), (1, 0), "{mode}");
    } else {
        assert_eq!(imports, 0, "{mode}");
        assert!(row_writes(&reqs) >= 3, "{mode}");
    }

    // One query asks for what the columns need, detailMetrics only for the age.
    let queries = observation_queries(&sim);
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(
        metrics_of(&queries[0]),
        [
            "oAlerting",
            "oMemberUsers",
            "oOffQueueUsers",
            "oOnQueueUsers",
            "oUserPresences",
            "oWaiting"
        ]
    );
    assert_eq!(queries[0]["detailMetrics"], serde_json::json!(["oWaiting"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirteen_columns_hold_the_simulators_truth_in_rows_mode() {
    thirteen_columns_in("", "rows").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirteen_columns_hold_the_simulators_truth_in_import_mode() {
    thirteen_columns_in("write_mode = \"import\"\nowned = true\n", "import").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_columns_the_five_columns_and_updated_at_are_written_as_before() {
    let sim = spawn_sim(SimOptions::default()).await;
    let sales = add_rich_queue(&sim, "Sales");
    add_busy_queue(&sim, "Busy");
    let cfg = config_file(&sim, &queues_toml(&["Sales", "Busy"]));
    let out = run_bin(&["once"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let rows = rows(&sim);
    for row in [&rows["Sales"], &rows["Busy"]] {
        assert_eq!(
            sorted(row.keys().map(String::as_str)),
            FIVE_AND_FIELDS,
            "{row:?}"
        );
    }
    for (col, want) in busy_values() {
        assert_eq!(int(&rows["Busy"], col), want, "Busy.{col}");
    }
    let t = sim.truth(&sales).unwrap();
    let now = Utc::now();
    for col in ["Online", "OnQueue", "Idle", "Interacting", "Waiting"] {
        assert_eq!(
            row_value(&rows["Sales"], col),
            expected(&t, col, now),
            "Sales.{col}"
        );
    }
    // The query is today's: three metrics, no detail observations.
    let bodies = observation_queries(&sim);
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        metrics_of(&bodies[0]),
        ["oOnQueueUsers", "oUserPresences", "oWaiting"]
    );
    assert!(bodies[0].get("detailMetrics").is_none(), "{}", bodies[0]);
    // And `table schema` still prints the five columns and UpdatedAt.
    let out = run_bin(&["table", "schema"], &cfg).await;
    let (stdout, _) = text(&out);
    let schema: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let props = schema["properties"].as_object().unwrap();
    // The five, key and UpdatedAt, and the heartbeat's writer identity (optional:
    // tables without it work).
    let mut want = FIVE_AND_FIELDS.to_vec();
    want.push("Writer");
    assert_eq!(sorted(props.keys().map(String::as_str)), sorted(want));
}
