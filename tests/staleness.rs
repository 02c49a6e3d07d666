//! One staleness rule, the same everywhere: every shipped text that tells flow authors
//! (or alerts) when a row is stale says the number the code's rule gives for the
//! defaults, and `check`, `once` and the start-up log print it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use genesys_queue_sync::config;
use genesys_queue_sync::loopback::{self, LocalOrg};
use genesys_queue_sync::staleness;
use regex::Regex;
use support::*;

/// The rule for the shipped example config (the defaults), in minutes.
fn default_minutes() -> u64 {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client-secret"), "s\n").unwrap();
    let text = std::fs::read_to_string("systemd/config.example.toml").unwrap();
    let env = [(
        "CREDENTIALS_DIRECTORY".to_owned(),
        dir.path().to_str().unwrap().to_owned(),
    )]
    .into_iter()
    .collect::<std::collections::BTreeMap<_, _>>();
    let cfg = config::parse(&text, &env).unwrap();
    let rule = staleness::for_config(&cfg);
    assert_eq!(rule.as_secs() % 60, 0, "the default rule is whole minutes");
    rule.as_secs() / 60
}

/// Every number each file gives, in minutes, by the patterns it writes them in.
fn numbers(text: &str) -> Vec<u64> {
    let minutes = [
        // Comment lines wrap: "older\n# than 10 minutes".
        r"older\s+(?:#\s*)?than\s+(?:#\s*)?(?:~|about\s+)?(\d+)\s*(?:#\s*)?(?:minutes|min\b|m\b)",
        r"MakeDuration\(0, 0, (\d+), 0\)",
        r"refresh_after \((\d+) min\)",
    ];
    let mut out = Vec::new();
    for p in minutes {
        let re = Regex::new(p).unwrap();
        out.extend(re.captures_iter(text).map(|c| c[1].parse::<u64>().unwrap()));
    }
    let seconds = Regex::new(r"last_success_timestamp_seconds\{[^}]*\} > (\d+)").unwrap();
    out.extend(
        seconds
            .captures_iter(text)
            .map(|c| c[1].parse::<u64>().unwrap() / 60),
    );
    out
}

#[test]
fn every_shipped_text_says_the_rule_for_the_defaults() {
    let m = default_minutes();
    assert_eq!(
        m, 10,
        "the defaults (refresh_after 5m, every minute) give 10 minutes"
    );
    for file in [
        "systemd/config.example.toml",
        "README.md",
        "deploy/architect/README.md",
        "deploy/architect/inbound-flow-snippet.yaml",
        "deploy/terraform/main.tf",
        "deploy/monitoring/alerts.yml",
        "deploy/monitoring/dashboard.json",
        "deploy/components/prometheusrule/prometheusrule.yaml",
    ] {
        let text = std::fs::read_to_string(file).unwrap();
        let found = numbers(&text);
        assert!(!found.is_empty(), "{file} gives no staleness number");
        assert!(
            found.iter().all(|n| *n == m),
            "{file} says {found:?} minutes; the rule gives {m} (src/staleness.rs)"
        );
    }
}

#[test]
fn the_demo_prints_the_same_rule() {
    // The demo's config is the loopback one (default rows policy), every 5 s by default.
    let org = LocalOrg {
        base_url: "http://127.0.0.1:1",
        client_id: "id",
        client_secret: "secret",
        table: TABLE,
    };
    let cfg = loopback::config(&org, vec!["Sales".into()], "*/5 * * * * *").unwrap();
    assert_eq!(
        staleness::for_config(&cfg),
        Duration::from_secs(default_minutes() * 60)
    );
    assert!(
        staleness::sentence(&cfg).starts_with("flows should treat rows older than 10m as stale")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_once_print_the_rule_for_their_config() {
    let (sim, cfg) = sales().await;
    for cmd in ["check", "once"] {
        let out = run_bin(&[cmd], &cfg).await;
        let (stdout, _) = text(&out);
        assert!(out.status.success(), "{cmd}: {stdout}");
        assert!(
            stdout.contains("flows should treat rows older than 10m as stale"),
            "{cmd}: {stdout}"
        );
    }
    // Another refresh_after, another number: printed from the config, not a constant.
    let body = format!(
        "{}\n[rows]\nrefresh_after = \"1m\"\n",
        queues_toml(&["Sales"])
    );
    let cfg = config_file(&sim, &body);
    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("✓ staleness: flows should treat rows older than 3m as stale"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_log_line_says_it() {
    let (_sim, cfg) = sales().await;
    let mut child = bin_command(&["--log-format", "json", "run"], &cfg.path, &[])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    use tokio::io::AsyncBufReadExt as _;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("running;") {
                return Some(line);
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    child.kill().await.ok();
    let line = found.expect("a start-up line");
    assert!(
        line.contains("flows should treat rows older than 10m as stale")
            && line.contains("\"stale_after\":\"10m\""),
        "{line}"
    );
}
