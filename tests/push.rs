//! Push mode end to end: the daemon in-process against the simulator's Notifications API,
//! with the cron schedule far away (once an hour) wherever only push may have written.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use genesys_queue_sync::config::{Config, Mode};
use genesys_queue_sync::push::session::Settings;
use genesys_sim::{Fault, FaultAction, Match, RoutingStatus, Sim, SystemPresence};
use serde_json::json;

use support::logs::{log_lines_with, log_text, logs};
use support::{
    Daemon, config, eventually, fast_heartbeat_sim, int, ready_becomes, rows, table_id, wait_cycles,
};

/// Something done to the simulator's notification service.
type SimFault<'a> = &'a dyn Fn(&Sim);

/// Once an hour at :00:00: in these tests the schedule's only cycle is the one at start.
const HOURLY: &str = "0 0 * * * *";

fn push_config(sim: &Sim, names: &[&str], cron: &str) -> Config {
    let mut c = config(sim, names, cron);
    c.mode = Mode::Push;
    c.push_min_interval = Duration::from_secs(1);
    c
}

fn fast_push() -> Settings {
    Settings {
        reconnect_base: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        refused_base: Duration::from_millis(200),
        refused_max: Duration::from_millis(400),
        connect_timeout: Duration::from_secs(2),
        ..Settings::default()
    }
}

async fn start(cfg: Config) -> Daemon {
    Daemon::start_tuned(cfg, Box::new(|_, _| {}), |o| o.push = fast_push()).await
}

/// A queue with 2 idle agents on queue (ids returned) and nothing waiting.
fn queue_with_agents(sim: &Sim, name: &str) -> (String, Vec<String>) {
    let id = sim.add_queue(name);
    let agents = (0..2)
        .map(|_| sim.add_agent(SystemPresence::OnQueue, RoutingStatus::Idle, &[&id]))
        .collect();
    (id, agents)
}

/// The value of `col` in `key`'s row, once the row exists.
fn cell(sim: &Sim, key: &str, col: &str) -> Option<i64> {
    rows(sim).get(key).map(|r| int(r, col))
}

async fn row_becomes(sim: &Sim, key: &str, col: &str, want: i64, what: &str) {
    eventually(what, 15, || async {
        (cell(sim, key, col) == Some(want)).then_some(())
    })
    .await;
}

/// A metric's value on /metrics (the first series whose line starts with `series`).
async fn metric(d: &Daemon, series: &str) -> f64 {
    let (_, _, body) = d.get("/metrics").await;
    body.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Push is connected, and the reconciliation poll its connection asked for has run.
async fn push_up(d: &Daemon) {
    eventually("push connected", 15, || async {
        (metric(d, "genesys_queue_sync_push_connected").await >= 1.0).then_some(())
    })
    .await;
    wait_cycles(d, 2, 15).await;
}

#[tokio::test]
async fn agent_and_waiting_changes_reach_the_row_within_seconds_without_a_poll() {
    let sim = fast_heartbeat_sim().await;
    let (q, agents) = queue_with_agents(&sim, "Sales");
    let d = start(push_config(&sim, &["Sales"], HOURLY)).await;
    row_becomes(&sim, "Sales", "Idle", 2, "the first cycle writes the row").await;
    push_up(&d).await;
    let cycles = d.cycles();

    // The first interaction waits: a zero crossing, written by push.
    sim.set_waiting(&q, "voice", 3);
    row_becomes(&sim, "Sales", "Waiting", 3, "the waiting count, by push").await;
    // The last idle agents take calls.
    sim.set_agent(
        &agents[0],
        SystemPresence::OnQueue,
        RoutingStatus::Interacting,
    );
    sim.set_agent(
        &agents[1],
        SystemPresence::OnQueue,
        RoutingStatus::Interacting,
    );
    row_becomes(&sim, "Sales", "Idle", 0, "no idle agent left, by push").await;
    let row = rows(&sim)["Sales"].clone();
    assert_eq!(int(&row, "Interacting"), 2);
    assert_eq!(int(&row, "OnQueue"), 2);
    assert_eq!(
        int(&row, "Online"),
        2,
        "presence-based, from the poll, unchanged"
    );
    assert_eq!(d.cycles(), cycles, "no cycle ran: push wrote these");
    // The per-queue gauges follow the events too, not only the cycles.
    for (series, want) in [
        (
            "genesys_queue_sync_queue_agents{queue=\"Sales\",column=\"Idle\"}",
            0.0,
        ),
        (
            "genesys_queue_sync_queue_agents{queue=\"Sales\",column=\"Interacting\"}",
            2.0,
        ),
        (
            "genesys_queue_sync_queue_interactions{queue=\"Sales\",column=\"Waiting\"}",
            3.0,
        ),
    ] {
        assert_eq!(metric(&d, series).await, want, "{series} after push");
    }

    let applied = metric(
        &d,
        "genesys_queue_sync_push_events_total{result=\"applied\"}",
    )
    .await;
    assert!(applied >= 2.0, "events applied: {applied}");
    let latency = metric(&d, "genesys_queue_sync_push_change_to_write_seconds_count").await;
    assert!(
        latency >= 2.0,
        "each push write is in the latency histogram: {latency}"
    );
    d.stop().await;
}

#[tokio::test]
async fn after_a_drop_a_silence_or_an_expiry_push_reconnects_reconciles_and_follows_again() {
    let sim = fast_heartbeat_sim().await;
    let (q, _) = queue_with_agents(&sim, "Sales");
    let d = start(push_config(&sim, &["Sales"], HOURLY)).await;
    push_up(&d).await;
    let faults: [(&str, SimFault); 3] = [
        ("socket dropped", &|s: &Sim| s.drop_sockets()),
        ("heartbeats stopped", &|s: &Sim| s.silence_sockets()),
        ("channel expired", &|s: &Sim| s.expire_channels()),
    ];
    for (i, (what, fault)) in faults.iter().enumerate() {
        let cycles = d.cycles();
        // Changed while push is down: only the reconciliation poll can carry it.
        fault(&sim);
        sim.set_waiting(&q, "voice", 10 + i as u32);
        eventually(
            &format!("a reconciliation poll after: {what}"),
            15,
            || async { (d.cycles() > cycles).then_some(()) },
        )
        .await;
        row_becomes(&sim, "Sales", "Waiting", 10 + i as i64, what).await;
        // Connected again: the next change comes by push.
        eventually(
            &format!("push connected again after: {what}"),
            15,
            || async {
                (metric(&d, "genesys_queue_sync_push_connected").await >= 1.0).then_some(())
            },
        )
        .await;
        wait_cycles(&d, cycles + 1, 15).await;
        let cycles = d.cycles();
        sim.set_waiting(&q, "voice", 20 + i as u32);
        row_becomes(
            &sim,
            "Sales",
            "Waiting",
            20 + i as i64,
            &format!("push follows after: {what}"),
        )
        .await;
        // A reconcile asked for by a reconnect may still be running: the value is what
        // counts; a poll sees the same.
        assert!(
            d.cycles() <= cycles + 1,
            "{what}: at most the one reconciliation poll"
        );
    }
    assert!(metric(&d, "genesys_queue_sync_push_reconnects_total").await >= 2.0);
    d.stop().await;
}

#[tokio::test]
async fn a_lost_event_is_corrected_by_the_next_poll() {
    let sim = fast_heartbeat_sim().await;
    let (q, _) = queue_with_agents(&sim, "Sales");
    // A poll every 3 s: the correction must come from one of them.
    let d = start(push_config(&sim, &["Sales"], "*/3 * * * * *")).await;
    push_up(&d).await;
    sim.drop_events(true);
    sim.set_waiting(&q, "chat", 4);
    row_becomes(
        &sim,
        "Sales",
        "Waiting",
        4,
        "the poll writes what the event lost",
    )
    .await;
    // The row lands during the cycle, its report right after.
    let by_poll = eventually("the cycle's report", 10, || async {
        d.reports()
            .iter()
            .any(|r| {
                r.written
                    .iter()
                    .any(|(t, v)| t.name == "Sales" && v.0.get(4) == Some(&4))
            })
            .then_some(true)
    })
    .await;
    assert!(by_poll, "a cycle wrote the corrected row");
    assert!(sim.notification_stats().events_lost >= 1);
    d.stop().await;
}

#[tokio::test]
async fn a_burst_of_1000_changes_stays_inside_requests_per_minute() {
    let sim = fast_heartbeat_sim().await;
    let names: Vec<String> = (0..1000).map(|i| format!("Q{i:04}")).collect();
    let ids: Vec<String> = names.iter().map(|n| sim.add_queue(n)).collect();
    // The table already holds every row as the poll will see it (all zero, fresh), so
    // the first cycle writes nothing and the minute's budget is push's.
    let table = table_id(&sim);
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for n in &names {
        sim.put_row(
            &table,
            json!({"key": n, "Online": 0, "OnQueue": 0, "Idle": 0, "Interacting": 0, "Waiting": 0, "UpdatedAt": now}),
        );
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut cfg = push_config(&sim, &refs, HOURLY);
    cfg.requests_per_minute = 240;
    // Fresh rows stay unwritten by the hourly poll (its refresh age is refresh_after
    // less half a period).
    cfg.rows.refresh_after = Duration::from_secs(7200);
    let start_at = tokio::time::Instant::now();
    let d = start(cfg).await;
    push_up(&d).await;
    sim.clear_log();
    let burst_at = tokio::time::Instant::now();
    for id in &ids {
        sim.set_waiting(id, "voice", 1);
    }
    let written = |sim: &Sim| {
        rows(sim)
            .values()
            .filter(|r| r.get("Waiting").and_then(|v| v.as_i64()) == Some(1))
            .count()
    };
    eventually("push writes a budget's worth of the burst", 20, || async {
        (written(&sim) >= 100).then_some(())
    })
    .await;
    // Let push run into the budget, then stop it and let the last writes land.
    tokio::time::sleep(Duration::from_secs(3)).await;
    d.stop().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let n = written(&sim);
    let api: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| !r.path.starts_with("/oauth"))
        .collect();
    // Everything since the daemon started fits in one minute: 240 at most, counting what
    // the start-up cycles spent before the log was cleared.
    assert!(
        start_at.elapsed() < Duration::from_secs(60),
        "the test ran within one window"
    );
    assert!(burst_at.elapsed() < Duration::from_secs(60));
    assert!(
        api.len() <= 240,
        "{} API requests since the burst (budget 240/min)",
        api.len()
    );
    assert!(n < 1000, "the budget held the rest back: {n} written");
    assert_eq!(
        support::queue_writes(&api).len(),
        n,
        "one write per changed row, none twice"
    );
    eprintln!(
        "burst: {n} of 1000 rows written, {} API requests since the burst",
        api.len()
    );
}

#[tokio::test]
async fn refused_channels_leave_polling_right_and_the_daemon_ready() {
    let _ = logs();
    let sim = fast_heartbeat_sim().await;
    sim.inject(Fault {
        matcher: Match::Path {
            method: Some("POST"),
            contains: "/api/v2/notifications/channels".into(),
        },
        action: FaultAction::Status {
            status: 403,
            retry_after: None,
        },
        times: 10_000,
    });
    let (q, _) = queue_with_agents(&sim, "Refused");
    let d = start(push_config(&sim, &["Refused"], "* * * * * *")).await;
    row_becomes(&sim, "Refused", "Idle", 2, "the poll writes the row").await;
    sim.set_waiting(&q, "voice", 6);
    row_becomes(&sim, "Refused", "Waiting", 6, "the poll follows the queue").await;
    let body = ready_becomes(&d, 200, "ready while polling works").await;
    assert!(body.is_object());
    assert_eq!(metric(&d, "genesys_queue_sync_push_connected").await, 0.0);
    assert!(metric(&d, "genesys_queue_sync_push_channel_failures_total").await >= 2.0);
    let refused = log_lines_with(&["push unavailable"]);
    assert_eq!(refused.len(), 1, "logged once: {refused:?}");
    d.stop().await;
}

#[tokio::test]
async fn no_token_or_secret_in_any_log_line_of_a_push_run() {
    let _ = logs();
    let sim = fast_heartbeat_sim().await;
    let (q, _) = queue_with_agents(&sim, "Secret");
    let d = start(push_config(&sim, &["Secret"], HOURLY)).await;
    push_up(&d).await;
    sim.set_waiting(&q, "voice", 2);
    row_becomes(&sim, "Secret", "Waiting", 2, "push writes").await;
    sim.drop_sockets();
    eventually("reconnected", 15, || async {
        (metric(&d, "genesys_queue_sync_push_reconnects_total").await >= 1.0).then_some(())
    })
    .await;
    d.stop().await;
    let tokens: Vec<String> = sim
        .requests()
        .iter()
        .filter_map(|r| {
            r.authorization
                .as_deref()?
                .strip_prefix("Bearer ")
                .map(str::to_owned)
        })
        .collect();
    assert!(!tokens.is_empty());
    let text = log_text();
    assert!(text.contains("push connected"), "the push run was logged");
    assert!(
        !text.contains(support::SECRET),
        "the secret leaked into the logs"
    );
    for t in &tokens {
        assert!(
            !text.contains(t.as_str()),
            "a bearer token leaked into the logs"
        );
    }
    for c in sim.channels() {
        for line in text.lines().filter(|l| l.contains(&c.id)) {
            assert!(
                !line.contains("access_token") && !line.contains("token="),
                "a WebSocket URL with a credential in the logs: {line}"
            );
        }
    }
}
