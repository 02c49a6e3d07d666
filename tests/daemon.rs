//! The daemon end to end against the simulator: `once`, `run`, `check`, config errors,
//! secrets, signals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use genesys_queue_sync::schedule::Exit;
use genesys_queue_sync::sync::Outcome;
use genesys_sim::{Fault, FaultAction, Match, RoutingStatus, SimOptions, SystemPresence};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_writes_one_row_per_queue_with_the_true_counts() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let empty = sim.add_queue("Support");
    let cfg = config_file(&sim, &queues_toml(&["Sales", "Support"]));

    let out = run_bin(&["once"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout.contains("Sales") && stdout.contains("2 rows written, 0 unchanged"),
        "{stdout}"
    );

    let rows = rows(&sim);
    assert_eq!(rows.len(), 3, "two queues and the heartbeat row: {rows:?}");
    assert!(rows["_heartbeat"]["UpdatedAt"].as_str().is_some());
    for (col, want) in busy_values() {
        assert_eq!(int(&rows["Sales"], col), want, "Sales.{col}");
    }
    for (col, _) in busy_values() {
        assert_eq!(
            int(&rows["Support"], col),
            0,
            "a queue with no agents has zeros, not gaps"
        );
    }
    let t = sim.truth(&empty).unwrap();
    assert_eq!(t.online, 0);
    let updated = rows["Sales"]["UpdatedAt"].as_str().unwrap();
    let parsed = chrono::DateTime::parse_from_rfc3339(updated).unwrap();
    assert!(updated.ends_with('Z') && updated.len() == 20, "{updated}");
    assert!((chrono::Utc::now() - parsed.to_utc()).num_seconds().abs() < 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_reads_but_writes_nothing() {
    let (sim, cfg) = sales().await;
    let out = run_bin(&["once", "--dry-run"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("dry run"), "{stdout}");
    let sales_line = stdout.lines().find(|l| l.starts_with("Sales")).unwrap();
    let nums: Vec<&str> = sales_line.split_whitespace().skip(1).take(5).collect();
    assert_eq!(nums, ["7", "5", "2", "3", "5"], "{sales_line}");
    assert!(rows(&sim).is_empty());
    assert_eq!(row_writes(&sim.requests()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_exits_non_zero_and_names_a_configured_queue_that_does_not_exist() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let cfg = config_file(&sim, &queues_toml(&["Sales", "Nowhere"]));
    for args in [&["once"][..], &["once", "--dry-run"][..]] {
        let out = run_bin(args, &cfg).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
        assert!(
            stdout.contains("✗ not found: name \"Nowhere\""),
            "{args:?}: {stdout}"
        );
        assert!(stdout.lines().any(|l| l.starts_with("Sales")), "{stdout}");
    }
    // The queue that exists is still written.
    assert_eq!(int(&rows(&sim)["Sales"], "Idle"), 2);
    let cfg = config_file(&sim, &queues_toml(&["Sales"]));
    assert_eq!(run_bin(&["once"], &cfg).await.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_150_queues_into_two_observation_queries() {
    let sim = spawn_sim(SimOptions::default()).await;
    let names: Vec<String> = (0..150).map(|i| format!("Q{i:03}")).collect();
    for n in &names {
        sim.add_queue(n);
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let cfg = config_file(
        &sim,
        &format!(
            "{}\n[limits]\nrequests_per_minute = 2000\n",
            queues_toml(&refs)
        ),
    );
    let out = run_bin(&["once"], &cfg).await;
    assert!(out.status.success(), "{:?}", text(&out));
    let reqs = sim.requests();
    assert_eq!(count(&reqs, "POST", "/observations/query"), 2);
    assert_eq!(
        rows(&sim).len(),
        150 + 1,
        "150 queues and the heartbeat row"
    );
    assert_eq!(token_requests(&reqs), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reuses_one_token_and_updates_rows_as_agents_change() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let support = sim.add_queue("Support");
    let agent = sim.add_agent(
        SystemPresence::OnQueue,
        RoutingStatus::Idle,
        &[support.as_str()],
    );
    let cfg = config(&sim, &["Sales", "Support"], "* * * * * *");

    let (exit, reports) = run_cycles(cfg.clone(), 2).await;
    assert_eq!(exit, Exit::Shutdown);
    assert!(
        reports.iter().all(|r| r.outcome() == Outcome::Ok),
        "{reports:?}"
    );
    assert_eq!(int(&rows(&sim)["Support"], "Idle"), 1);

    sim.set_agent(&agent, SystemPresence::OnQueue, RoutingStatus::Interacting);
    let (_, reports) = run_cycles(cfg, 2).await;
    assert!(reports.iter().all(|r| r.outcome() == Outcome::Ok));
    let support_row = &rows(&sim)["Support"];
    assert_eq!(int(support_row, "Idle"), 0);
    assert_eq!(int(support_row, "Interacting"), 1);

    let reqs = sim.requests();
    assert_eq!(
        token_requests(&reqs),
        2,
        "one token per process, reused across cycles"
    );
    assert!(reqs.iter().all(|r| r.status != 401));
    // Existing keys are listed once per process. A cycle that rewrites existing rows
    // lists them again only in a table with fields beyond the daemon's (whose values a
    // rewrite must carry): this table has none, so the second process's change costs no
    // listing. The GETs of `/rows/...` are the heartbeat's read-back.
    let listings = reqs
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/rows"))
        .count();
    assert_eq!(listings, 2, "one per process");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_renewed_before_it_expires() {
    let sim = spawn_sim(SimOptions {
        token_expires_in: 5,
        ..SimOptions::default()
    })
    .await;
    add_busy_queue(&sim, "Sales");
    let cfg = config(&sim, &["Sales"], "* * * * * *");
    let (_, reports) = run_cycles(cfg, 8).await;
    assert!(
        reports.iter().all(|r| r.outcome() == Outcome::Ok),
        "{reports:?}"
    );
    let reqs = sim.requests();
    let tokens = token_requests(&reqs);
    // 8 cycles over ~7-8 s with a 5 s token renewed 1 s early: 2 or 3 logins, never one per cycle.
    assert!((2..=3).contains(&tokens), "{tokens} token requests");
    assert!(
        reqs.iter().all(|r| r.status != 401),
        "renewed proactively, not after a 401"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_keys_round_trip_through_create_and_update() {
    let sim = spawn_sim(SimOptions::default()).await;
    let odd = [
        "Sales EU",
        "Tech/Support",
        "100% Done",
        "Line #2",
        "Überweisung ü",
        "a?b&c=d",
    ];
    for n in odd {
        add_busy_queue(&sim, n);
    }
    let cfg = config(&sim, &odd, "* * * * * *");
    let (_, reports) = run_cycles(cfg.clone(), 1).await;
    assert!(
        reports.iter().all(|r| r.outcome() == Outcome::Ok),
        "{reports:?}"
    );
    // Change every queue so the next process must PUT each row by its (encoded) key.
    for (target, _) in &reports[0].observed {
        sim.set_waiting(&target.id, "email", 9);
    }
    let (_, reports) = run_cycles(cfg, 1).await;
    assert!(
        reports.iter().all(|r| r.outcome() == Outcome::Ok),
        "{reports:?}"
    );
    let rows = rows(&sim);
    for n in odd {
        assert_eq!(int(&rows[n], "OnQueue"), 5, "{n}");
        assert_eq!(int(&rows[n], "Waiting"), 14, "{n}");
    }
    let reqs = sim.requests();
    let heartbeat_puts = count(&reqs, "PUT", "/rows/_heartbeat");
    assert_eq!(
        count(&reqs, "POST", "/rows"),
        odd.len() + 1,
        "created once each, plus the heartbeat row"
    );
    assert_eq!(
        count(&reqs, "PUT", "/rows/") - heartbeat_puts,
        odd.len(),
        "then updated by key"
    );
    assert!(
        reqs.iter().all(|r| r.status < 400),
        "no 404/409 on odd keys"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_the_daemon_does_not_own_are_never_touched() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    sim.add_queue("Other"); // exists in Genesys but is not configured
    let table = table_id(&sim);
    let foreign = json!({"key": "Other", "Online": 99, "OnQueue": 98, "Idle": 97, "Interacting": 96, "Waiting": 95, "UpdatedAt": "2020-01-01T00:00:00Z"});
    sim.put_row(&table, foreign.clone());
    let cfg = config(&sim, &["Sales"], "* * * * * *");
    let (_, reports) = run_cycles(cfg, 2).await;
    assert!(reports.iter().all(|r| r.outcome() == Outcome::Ok));
    assert_eq!(
        serde_json::Value::Object(rows(&sim)["Other"].clone()),
        foreign
    );
    assert!(
        sim.requests()
            .iter()
            .all(|r| !r.path.contains("/rows/Other"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_observation_writes_nothing() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let table = table_id(&sim);
    let old = json!({"key": "Sales", "Online": 1, "OnQueue": 1, "Idle": 1, "Interacting": 0, "Waiting": 0, "UpdatedAt": "2026-01-01T00:00:00Z"});
    sim.put_row(&table, old.clone());
    sim.inject(Fault {
        matcher: Match::Path {
            method: Some("POST"),
            contains: "/observations/query".into(),
        },
        action: FaultAction::Status {
            status: 503,
            retry_after: None,
        },
        times: u32::MAX,
    });
    let cfg = config_file(&sim, &queues_toml(&["Sales"]));
    let out = run_bin(&["once"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(!out.status.success());
    assert!(stdout.contains("observation failed"), "{stdout}");
    assert_eq!(
        serde_json::Value::Object(rows(&sim)["Sales"].clone()),
        old,
        "never a zero for unknown"
    );
    assert_eq!(row_writes(&sim.requests()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configs_exit_2_naming_key_line_and_fix() {
    let sim = spawn_sim(SimOptions::default()).await;
    let cases = [
        (
            "[table]\nname = \"T\"\nkey = \"email\"\n[queues]\nnames = [\"A\"]\n",
            "table.key",
            "line 11",
        ),
        (
            "[table]\nname = \"T\"\n[queues]\nnames = []\n",
            "queues.names",
            "list queue names",
        ),
        (
            "[table]\nname = \"T\"\n[queues]\nnames = [\"A\"]\n[schedule]\ncron = \"every minute\"\n",
            "schedule.cron",
            "line 14",
        ),
        (
            "[table]\nname = \"T\"\n[queues]\nnames = [\"A\"]\nsurprise = 1\n",
            "surprise",
            "line 13",
        ),
    ];
    for (body, key, detail) in cases {
        let cfg = config_file(&sim, body);
        let out = run_bin(&["once"], &cfg).await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(key) && stderr.contains(detail) && stderr.contains("Fix:"),
            "{key}: {stderr}"
        );
    }
    let cfg = config_file(&sim, &queues_toml(&["A"]).replace("[genesys]", ""));
    std::fs::write(
        &cfg.path,
        format!(
            "[genesys]\napi_url = \"http://example.com\"\nclient_id = \"x\"\n{}",
            queues_toml(&["A"])
        ),
    )
    .unwrap();
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stdout.contains("✗ config")
            && stdout.contains("genesys.api_url")
            && stdout.contains("https"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_a_good_setup_and_names_each_problem() {
    let (sim, cfg) = sales().await;
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    for line in [
        "✓ config",
        "✓ login",
        "✓ queue \"Sales\"",
        "✓ table",
        "✓ schema",
    ] {
        assert!(stdout.contains(line), "missing {line}: {stdout}");
    }

    let cfg = config_file(
        &sim,
        &queues_toml(&["Sales", "Nope"]).replace(TABLE, "Missing"),
    );
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("✗ queue \"Nope\": not found"), "{stdout}");
    assert!(
        stdout.contains("✗ table \"Missing\": not found") && stdout.contains("table create"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_and_token_never_appear_in_trace_logs() {
    let (sim, cfg) = sales().await;
    let mut all = String::new();
    for args in [
        &["--log-level", "trace", "once"][..],
        &["--log-level", "trace", "--log-format", "json", "check"][..],
    ] {
        let out = run_bin(args, &cfg).await;
        assert!(out.status.success(), "{:?}", text(&out));
        let (o, e) = text(&out);
        all.push_str(&o);
        all.push_str(&e);
    }
    assert!(
        all.contains("TRACE") || all.contains("\"level\":\"TRACE\"") || all.contains("DEBUG"),
        "trace logging was on"
    );
    assert!(
        !all.contains(SECRET),
        "the client secret leaked into output"
    );
    // The client id is not a secret (src/redact.rs): check shows it, unscrubbed.
    assert!(
        all.contains("client id: sim-client-id from genesys.client_id"),
        "{all}"
    );
    let tokens: Vec<String> = sim
        .requests()
        .iter()
        .filter_map(|r| r.authorization.clone())
        .filter_map(|a| a.strip_prefix("Bearer ").map(str::to_owned))
        .collect();
    assert!(!tokens.is_empty());
    for t in tokens {
        assert!(!all.contains(&t), "a bearer token leaked into output");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_run_with_exit_0_within_10_seconds() {
    let (sim, cfg) = sales().await;
    let mut child = bin_command(&["run"], &cfg.path, &[])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The first cycle runs at start.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while rows(&sim).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "first cycle never wrote"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let t0 = std::time::Instant::now();
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exited within 10 s")
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    assert!(t0.elapsed() < Duration::from_secs(10));
}
