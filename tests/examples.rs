//! The shipped example configs load through the real loader, as users will copy them, and
//! the README's Tests table names every test file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use genesys_queue_sync::config::{self, KeyBy, TableRef};

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn systemd_example_config_is_valid_with_a_systemd_credential() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("client-secret"), "s\n").unwrap();
    let text = std::fs::read_to_string("systemd/config.example.toml").unwrap();
    let cfg = config::parse(
        &text,
        &env(&[("CREDENTIALS_DIRECTORY", dir.path().to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(cfg.api_url.as_str(), "https://api.mypurecloud.com/");
    assert_eq!(cfg.table, TableRef::Name("QueueAgentCounts".into()));
    assert_eq!(cfg.key_by, KeyBy::Name);
    assert_eq!(cfg.queue_names, ["Sales", "Support"]);
    assert_eq!(
        cfg.http_listen.map(|a| a.to_string()).as_deref(),
        Some("127.0.0.1:9464")
    );
}

#[test]
fn kubernetes_base_config_is_valid_with_the_mounted_secret() {
    // deploy/base/kustomization.yaml turns this file into the ConfigMap (configMapGenerator).
    let toml = std::fs::read_to_string("deploy/base/config.toml").unwrap();
    // The file's client_secret_file points into the pod; here the env var stands in for it,
    // and the client id comes from the Secret through the environment, as in the Deployment.
    let cfg = config::parse(
        &toml,
        &env(&[
            ("GENESYSCLOUD_OAUTHCLIENT_ID", "id"),
            ("GENESYSCLOUD_OAUTHCLIENT_SECRET", "s"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.client_id, "id");
    assert_eq!(
        cfg.http_listen.map(|a| a.to_string()).as_deref(),
        Some("0.0.0.0:9464")
    );
    assert_eq!(cfg.schedule.period.as_secs(), 60);
}

/// The README's Tests section names every integration test file, and only those.
#[test]
fn the_readme_tests_table_names_every_test_file() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let section = readme
        .split("\n## Tests\n")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has a Tests section");
    let mut files: Vec<String> = std::fs::read_dir("tests")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rs"))
        .map(|n| format!("tests/{n}"))
        .collect();
    files.sort();
    let mut named: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `tests/"))
        .filter_map(|l| l.split('`').next())
        .map(|n| format!("tests/{n}"))
        .collect();
    named.sort();
    assert_eq!(
        named, files,
        "README.md's Tests table vs the files of tests/"
    );
}

#[test]
fn push_example_turns_push_mode_on() {
    let base = std::fs::read_to_string("systemd/config.example.toml").unwrap();
    let push = std::fs::read_to_string("examples/push.toml").unwrap();
    // The example replaces the [schedule] table of the config it is pasted into.
    let base: String = base
        .split("\n[")
        .filter(|section| !section.starts_with("schedule]"))
        .collect::<Vec<_>>()
        .join("\n[");
    let cfg = config::parse(
        &format!("{base}\n{push}"),
        &env(&[("GENESYSCLOUD_OAUTHCLIENT_SECRET", "s")]),
    )
    .unwrap();
    assert_eq!(cfg.mode, config::Mode::Push);
    assert_eq!(cfg.push_min_interval.as_secs(), 5);
    assert_eq!(cfg.schedule.period.as_secs(), 60);
}
