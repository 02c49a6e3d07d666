//! `check` proves what `run` needs: each call `run` makes is made once, a missing
//! permission fails the line of its call and names it (from the one permissions table),
//! and nothing a flow could see changes. A 403 while running names the permission too,
//! once per streak of 403s.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use genesys_sim::SimOptions;
use support::logs::{log_lines_with, log_text, logs};
use support::*;

/// What `run` needs with import mode, `on_vanish = "delete"` and the heartbeat on: the
/// smallest role that works (table-level view, row-level writes).
const NEEDED: &[&str] = &[
    "routing:queue:view",
    "analytics:queueObservation:view",
    "architect:datatable:view",
    "architect:datatableRow:add",
    "architect:datatableRow:edit",
    "architect:datatableRow:delete",
];

fn full_toml() -> String {
    format!(
        "[table]\nname = \"{TABLE}\"\nwrite_mode = \"import\"\n\n[queues]\nnames = [\"Sales\", \"Support\"]\non_vanish = \"delete\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_each_missing_permission_and_passes_with_all_of_them() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    add_busy_queue(&sim, "Support");
    let cfg = config_file(&sim, &full_toml());

    sim.set_permissions(NEEDED);
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    for line in [
        "✓ observations: 1 query for 2 of 2 selected",
        "✓ row read",
        "✓ row write: row `_heartbeat` created",
        "✓ import",
        "✓ row delete",
    ] {
        assert!(stdout.contains(line), "missing {line}: {stdout}");
    }

    // (permission taken away, [(the line that must fail, what it must name)])
    let cases: [(&str, &[(&str, &str)]); 6] = [
        (
            "routing:queue:view",
            &[("✗ queues", "`routing:queue:view`")],
        ),
        (
            "analytics:queueObservation:view",
            &[("✗ observations", "`analytics:queueObservation:view`")],
        ),
        (
            "architect:datatable:view",
            &[("✗ table", "`architect:datatable:view`")],
        ),
        (
            "architect:datatableRow:edit",
            &[(
                "✗ row write",
                "`architect:datatableRow:edit` or `architect:datatable:edit`",
            )],
        ),
        (
            "architect:datatableRow:add",
            &[
                (
                    "✗ row write",
                    "`architect:datatableRow:add` or `architect:datatable:add`",
                ),
                (
                    "✗ import",
                    "`architect:datatableRow:add` or `architect:datatable:edit`",
                ),
            ],
        ),
        (
            "architect:datatableRow:delete",
            &[(
                "✗ row delete",
                "`architect:datatableRow:delete` or `architect:datatable:delete`",
            )],
        ),
    ];
    for (missing, failing) in cases {
        sim.set_permissions(NEEDED);
        sim.revoke(missing);
        let out = run_bin(&["check"], &cfg).await;
        let (stdout, _) = text(&out);
        assert_eq!(out.status.code(), Some(1), "without {missing}: {stdout}");
        for (start, named) in failing {
            let line = stdout
                .lines()
                .find(|l| l.starts_with(start))
                .unwrap_or_else(|| panic!("without {missing}, no `{start}` line: {stdout}"));
            assert!(
                line.contains("403") && line.contains(named) && line.contains("division"),
                "without {missing}: {line}"
            );
        }
        // Only the calls that need it fail.
        let failed = stdout.lines().filter(|l| l.starts_with('✗')).count();
        assert_eq!(failed, failing.len(), "without {missing}: {stdout}");
    }

    // Everything granted again: all pass.
    sim.set_permissions(NEEDED);
    let out = run_bin(&["check"], &cfg).await;
    assert!(out.status.success(), "{:?}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_changes_nothing_a_flow_could_see() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let cfg = config_file(&sim, &full_toml().replace(", \"Support\"", ""));
    // A first run writes the rows and the heartbeat.
    let out = run_bin(&["once"], &cfg).await;
    assert!(out.status.success(), "{:?}", text(&out));
    let before = rows(&sim);
    assert!(before.contains_key("Sales") && before.contains_key("_heartbeat"));
    sim.clear_log();
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("✓ row write: row `_heartbeat` rewritten with exactly what it holds"),
        "{stdout}"
    );
    assert_eq!(rows(&sim), before, "check changed a row");
    // It did make the calls `run` makes: the observation query, a write, a delete.
    let log = sim.requests();
    let made = |method: &str, part: &str| {
        log.iter()
            .any(|r| r.method == method && r.path.contains(part))
    };
    assert!(made("POST", "/observations/query"));
    assert!(made("PUT", "/rows/_heartbeat"));
    assert!(made("DELETE", "/rows/_genesys_queue_sync_check_"));
    assert!(made("POST", "/import/csv/jobs"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_heartbeat_off_check_rewrites_an_owned_row_or_says_the_write_is_unproven() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let body = format!(
        "{}\n[rows]\nheartbeat_key = \"off\"\n",
        queues_toml(&["Sales"])
    );
    let cfg = config_file(&sim, &body);
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("! row write:") && stdout.contains("not proven"),
        "{stdout}"
    );
    assert!(rows(&sim).is_empty(), "check wrote a row: {:?}", rows(&sim));

    let out = run_bin(&["once"], &cfg).await;
    assert!(out.status.success(), "{:?}", text(&out));
    let before = rows(&sim);
    sim.revoke("architect:datatableRow:edit");
    sim.revoke("architect:datatable:edit");
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("✗ row write: 403") && stdout.contains("`architect:datatableRow:edit`"),
        "{stdout}"
    );
    sim.grant("architect:datatableRow:edit");
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("✓ row write: row `Sales` rewritten with exactly what it holds"),
        "{stdout}"
    );
    assert_eq!(rows(&sim), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_where_each_connection_setting_came_from() {
    let (sim, cfg) = sales().await;
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    for line in [
        format!(
            "✓ API URL: {}/ from genesys.api_url, line 2 of the config file",
            sim.base_url()
        ),
        "✓ login URL: ".to_owned(),
        "✓ client id: sim-client-id from genesys.client_id, line 3 of the config file".to_owned(),
        "✓ client secret: (not shown) from GENESYSCLOUD_OAUTHCLIENT_SECRET".to_owned(),
    ] {
        assert!(stdout.contains(&line), "missing {line}: {stdout}");
    }
    assert!(!stdout.contains(SECRET), "the secret was printed: {stdout}");

    // An exported variable overrides the file: check says so.
    let out = run_bin_with(
        &["check"],
        &cfg,
        &[("GENESYSCLOUD_OAUTHCLIENT_ID", "exported-id")],
    )
    .await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("✓ client id: exported-id from GENESYSCLOUD_OAUTHCLIENT_ID")
            && stdout.contains("✗ login"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_403_while_running_names_the_permission_once_per_streak() {
    logs();
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let mut s = syncer(config(&sim, &["Sales"], "*/10 * * * * *"));
    let named = || {
        log_lines_with(&[
            "permission missing",
            "`POST /api/v2/analytics/queues/observations/query` needs `analytics:queueObservation:view`",
            "division that holds the queues",
        ])
        .len()
    };
    let passes =
        |r: &genesys_queue_sync::sync::CycleReport| r.error.is_none() && r.failed.is_empty();
    let forbidden = |r: &genesys_queue_sync::sync::CycleReport| {
        r.observed.is_empty() && r.failed.iter().any(|f| f.reason.contains("403"))
    };
    assert!(passes(&s.run_cycle(false).await));
    assert_eq!(named(), 0, "nothing to say while the role holds it");

    // Three failing cycles: the queue's failure each time, the permission once.
    sim.revoke("analytics:queueObservation:view");
    for cycle in 1..=3 {
        let r = s.run_cycle(false).await;
        assert!(forbidden(&r), "cycle {cycle}: {r:?}");
        assert_eq!(named(), 1, "after failing cycle {cycle}: {}", log_text());
    }

    // Granted again, the streak ends; a new one is named again.
    sim.grant("analytics:queueObservation:view");
    assert!(passes(&s.run_cycle(false).await));
    sim.revoke("analytics:queueObservation:view");
    assert!(forbidden(&s.run_cycle(false).await));
    assert_eq!(named(), 2, "{}", log_text());
}

fn push_toml() -> String {
    format!("{}\n[schedule]\nmode = \"push\"\n", queues_toml(&["Sales"]))
}

/// The line of `stdout` about `what`, or a failure showing the whole output.
fn line<'a>(stdout: &'a str, what: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| {
            l.split_once(' ')
                .is_some_and(|(_, rest)| rest.starts_with(what))
        })
        .unwrap_or_else(|| panic!("no `{what}` line: {stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_in_push_mode_proves_the_channel_topic_and_socket_and_leaves_an_empty_channel() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let cfg = config_file(&sim, &push_toml());
    sim.add_channels(None, 3);
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    let channels = line(&stdout, "push channels");
    assert!(channels.starts_with('✓'), "{channels}");
    assert!(
        channels.contains("holds 3 notification channels") && channels.contains("`run` adds 1"),
        "{channels}"
    );
    let probe = line(&stdout, "push probe");
    assert!(probe.starts_with('✓'), "{probe}");
    assert!(
        probe.contains("subscribed to the observation topic of \"Sales\"")
            && probe.contains("WebSocket opened")
            && probe.contains("subscriptions removed")
            && probe.contains("left behind: 1 channel with no subscriptions"),
        "{probe}"
    );
    let cost = line(&stdout, "push cost");
    assert!(cost.contains("1 channel for 1 topic:"), "{cost}");
    assert!(cost.contains("requests/minute"), "{cost}");
    // One channel more, empty, nothing connected; its socket was opened once.
    let ch = sim.channels();
    assert_eq!(ch.len(), 4);
    let created: Vec<_> = ch
        .iter()
        .filter(|c| c.topics == 0 && !c.connected)
        .collect();
    assert_eq!(created.len(), 4, "{ch:?}");
    let stats = sim.notification_stats();
    assert_eq!(stats.channels_created, 4);
    assert_eq!(stats.channels_evicted, 0);
    assert_eq!(stats.sockets_opened, 1);
    // The connectUri and channel id are capabilities: never printed.
    for c in &ch {
        assert!(
            !stdout.contains(&c.id),
            "a channel id in the output: {stdout}"
        );
    }
    let calls: Vec<String> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/notifications/"))
        .map(|r| {
            format!(
                "{} {}",
                r.method,
                r.path.split("channels/").next().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            "GET /api/v2/notifications/channels",
            "POST /api/v2/notifications/channels",
            "PUT /api/v2/notifications/",
            "DELETE /api/v2/notifications/",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_of_eviction_and_creates_no_channel_when_the_client_holds_twenty() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let cfg = config_file(&sim, &push_toml());
    let theirs = sim.add_channels(None, 20);
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    // A warning, not a failure: `run` would work, at another integration's expense.
    assert!(out.status.success(), "{stdout}");
    let channels = line(&stdout, "push channels");
    assert!(channels.starts_with('!'), "{channels}");
    for said in [
        "holds 20 notification channels",
        "EVICTS this client's oldest 1 channel",
        "other integration",
        "an OAuth client of its own",
    ] {
        assert!(channels.contains(said), "missing {said}: {channels}");
    }
    let probe = line(&stdout, "push probe");
    assert!(
        probe.starts_with('!') && probe.contains("skipped, no channel created"),
        "{probe}"
    );
    let stats = sim.notification_stats();
    assert_eq!(stats.channels_created, 20, "check created none");
    assert_eq!(stats.channels_evicted, 0);
    let now: Vec<String> = sim.channels().into_iter().map(|c| c.id).collect();
    assert_eq!(now, {
        let mut t = theirs.clone();
        t.sort();
        t
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_subscription_names_what_is_missing() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let cfg = config_file(&sim, &push_toml());
    // Other channels of the client are another client's business: only its own count.
    sim.add_client("someone-else", "their-secret", &[]);
    sim.add_channels(Some("someone-else"), 20);
    sim.require_topic_permission(Some("analytics:queueObservation:view"));
    sim.revoke("analytics:queueObservation:view");
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    let channels = line(&stdout, "push channels");
    assert!(
        channels.contains("holds 0 notification channels"),
        "{channels}"
    );
    let probe = line(&stdout, "push probe");
    assert!(probe.starts_with('✗'), "{probe}");
    for said in [
        "observation topic of \"Sales\"",
        "`PUT /api/v2/notifications/channels/{channelId}/subscriptions` needs `analytics:queueObservation:view`",
        "fix: add it to a role of the OAuth client",
        "left behind: 1 channel with no subscriptions",
    ] {
        assert!(probe.contains(said), "missing {said}: {probe}");
    }
    let mine: Vec<_> = sim
        .channels()
        .into_iter()
        .filter(|c| c.owner == "sim-client-id")
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].topics, 0);
    assert_eq!(sim.notification_stats().channels_evicted, 0);
}
