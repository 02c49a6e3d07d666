//! The config loader end to end: defaults, sources, every refusal with key, line and fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::env::{
    ENV_API_REGION, ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_CREDENTIALS_DIRECTORY, ENV_REGION,
};
use super::load::parse;
use super::urls::{parse_base_url, region_domain};
use super::validate::{SECTIONS, parse_listen};
use super::validated::{KeyBy, Schedule, TableRef};
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The smallest valid config: the fixture the config, columns and reload tests build on.
pub(crate) const BASE: &str = r#"
[genesys]
region = "us-east-1"
client_id = "abc"

[table]
name = "QueueAgentCounts"

[queues]
names = ["Sales", "Support"]
"#;

/// An environment holding only the client secret.
pub(crate) fn with_secret() -> BTreeMap<String, String> {
    env(&[(ENV_CLIENT_SECRET, "s3cret")])
}

/// [`BASE`] with `extra` appended, loaded with the secret in the environment.
pub(crate) fn base_with(extra: &str) -> super::Config {
    parse(&format!("{BASE}{extra}"), &with_secret()).unwrap()
}

#[test]
fn minimal_config_gets_documented_defaults() {
    let c = parse(BASE, &with_secret()).unwrap();
    assert_eq!(c.api_url.as_str(), "https://api.mypurecloud.com/");
    assert_eq!(c.login_url.as_str(), "https://login.mypurecloud.com/");
    assert_eq!(c.client_secret.expose_secret(), "s3cret");
    assert_eq!(c.table, TableRef::Name("QueueAgentCounts".into()));
    assert_eq!(c.key_by, KeyBy::Name);
    assert_eq!(c.schedule.period, Duration::from_secs(60));
    assert_eq!(c.requests_per_minute, 240);
    assert_eq!(c.resolve_every, Duration::from_secs(600));
}

#[test]
fn region_names_and_domains_map_like_the_sdks() {
    assert_eq!(
        region_domain("us_west_2").as_deref(),
        Some("usw2.pure.cloud")
    );
    assert_eq!(
        region_domain("EU-WEST-1").as_deref(),
        Some("mypurecloud.ie")
    );
    assert_eq!(
        region_domain("mypurecloud.de").as_deref(),
        Some("mypurecloud.de")
    );
    assert_eq!(region_domain("atlantis-1"), None);
}

#[test]
fn env_overrides_file_values() {
    let e = env(&[
        (ENV_CLIENT_SECRET, "x"),
        (ENV_CLIENT_ID, "from-env"),
        (ENV_API_REGION, "http://127.0.0.1:9999"),
    ]);
    let c = parse(BASE, &e).unwrap();
    assert_eq!(c.client_id, "from-env");
    assert_eq!(c.api_url.as_str(), "http://127.0.0.1:9999/");
    assert_eq!(c.login_url.as_str(), "http://127.0.0.1:9999/");
    let c = parse(
        BASE,
        &env(&[(ENV_CLIENT_SECRET, "x"), (ENV_REGION, "eu_central_1")]),
    )
    .unwrap();
    assert_eq!(c.api_url.as_str(), "https://api.mypurecloud.de/");
}

#[test]
fn plain_http_only_to_loopback() {
    for ok in [
        "http://127.0.0.5:1",
        "http://[::1]:8080",
        "http://localhost:3",
    ] {
        assert!(parse_base_url("k", ok, None).is_ok(), "{ok}");
    }
    let err = parse_base_url("genesys.api_url", "http://api.mypurecloud.com", Some(3)).unwrap_err();
    assert_eq!(err.key, "genesys.api_url");
    assert!(err.to_string().contains("line 3"), "{err}");
    assert!(err.fix.contains("https://"), "{err}");
    assert!(parse_base_url("k", "http://10.0.0.1", None).is_err());
}

#[test]
fn inline_secret_is_refused_with_pointer_to_alternatives() {
    let text = BASE.replace(
        "client_id = \"abc\"",
        "client_id = \"abc\"\nclient_secret = \"hunter2\"",
    );
    let err = parse(&text, &with_secret()).unwrap_err();
    assert_eq!(err.key, "genesys.client_secret");
    assert_eq!(err.line, Some(5));
    assert!(err.fix.contains(ENV_CLIENT_SECRET));
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn secret_from_credentials_directory() {
    let dir = std::env::temp_dir().join(format!("gqs-cred-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("client-secret"), "from-systemd\n").unwrap();
    let e = env(&[(ENV_CREDENTIALS_DIRECTORY, dir.to_str().unwrap())]);
    let c = parse(BASE, &e).unwrap();
    assert_eq!(c.client_secret.expose_secret(), "from-systemd");
    assert_eq!(
        c.sources.client_secret,
        super::validated::Source::CredentialsDirectory
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sources_say_where_each_connection_setting_came_from() {
    use super::validated::Source;
    let from_file = parse(BASE, &env(&[(ENV_CLIENT_SECRET, "s")])).unwrap();
    let s = &from_file.sources;
    assert_eq!(
        s.api_url,
        Source::File {
            key: "genesys.region",
            line: Some(3)
        }
    );
    assert_eq!(
        s.client_id,
        Source::File {
            key: "genesys.client_id",
            line: Some(4)
        }
    );
    assert_eq!(s.client_secret, Source::Env(ENV_CLIENT_SECRET));
    assert!(matches!(s.login_url, Source::Derived(_)));
    assert_eq!(
        s.api_url.to_string(),
        "from genesys.region, line 3 of the config file"
    );
    // Exported variables win over the file, and say so.
    let e = env(&[
        (ENV_CLIENT_SECRET, "s"),
        (ENV_REGION, "eu-west-1"),
        (ENV_CLIENT_ID, "exported"),
    ]);
    let c = parse(BASE, &e).unwrap();
    assert_eq!(c.sources.api_url, Source::Env(ENV_REGION));
    assert_eq!(c.sources.client_id, Source::Env(ENV_CLIENT_ID));
    assert_eq!(c.client_id, "exported");
    let e = env(&[
        (ENV_CLIENT_SECRET, "s"),
        (ENV_API_REGION, "https://api.mypurecloud.ie"),
    ]);
    let c = parse(BASE, &e).unwrap();
    assert_eq!(c.sources.api_url, Source::Env(ENV_API_REGION));
}

#[test]
fn secret_file_pointed_at_a_device_is_refused_not_read_forever() {
    let text = BASE.replace(
        "client_id = \"abc\"",
        "client_id = \"abc\"\nclient_secret_file = \"/dev/zero\"",
    );
    let err = parse(&text, &env(&[])).unwrap_err();
    assert_eq!(err.key, "genesys.client_secret_file");
    assert!(err.problem.contains("larger than 64 KiB"), "{err}");
}

#[test]
fn missing_secret_names_all_three_sources() {
    let err = parse(BASE, &env(&[])).unwrap_err();
    assert!(
        err.fix.contains(ENV_CLIENT_SECRET) && err.fix.contains("LoadCredential"),
        "{err}"
    );
}

#[test]
fn errors_name_key_and_line() {
    let cases: &[(&str, &str, &str, usize)] = &[
        (
            "region = \"us-east-1\"",
            "region = \"mars-1\"",
            "genesys.region",
            3,
        ),
        (
            "name = \"QueueAgentCounts\"",
            "name = \"Q\"\nkey = \"email\"",
            "table.key",
            8,
        ),
        (
            "names = [\"Sales\", \"Support\"]",
            "names = [\"Sales\"]\nresolve_every = \"soon\"",
            "queues.resolve_every",
            11,
        ),
        (
            "[queues]",
            "[schedule]\ncron = \"* * *\"\n[queues]",
            "schedule.cron",
            10,
        ),
        (
            "client_id = \"abc\"",
            "client_id = \"abc\"\nregion_typo = 1",
            "genesys.region_typo",
            5,
        ),
    ];
    for (from, to, key, line) in cases {
        let err = parse(&BASE.replace(from, to), &with_secret()).unwrap_err();
        assert_eq!(&err.key, key, "{err}");
        assert_eq!(err.line, Some(*line), "{err}");
        assert!(!err.fix.is_empty());
    }
}

#[test]
fn toml_errors_name_the_key_they_are_about() {
    // Not the first backticked word of toml's message (`5`, `"`, `]`...).
    let cases: &[(&str, &str, usize)] = &[
        ("[table]\nname = 5\n", "table.name", 2),
        ("[queues]\nnames = \"x\"\n", "queues.names", 2),
        (
            "[genesys]\nregion = \"us-east-1\nclient_id = \"a\"\n",
            "genesys.region",
            2,
        ),
        ("[genesys\n", "genesys", 1),
        (
            "[limits]\nrequests_per_minute = 1.5\n",
            "limits.requests_per_minute",
            2,
        ),
        ("x = 1\nx = 2\n", "x", 2),
        ("= 1\n", "(file)", 1),
    ];
    for (text, key, line) in cases {
        let err = parse(text, &with_secret()).unwrap_err();
        assert_eq!(&err.key, key, "{text:?}: {err}");
        assert_eq!(err.line, Some(*line), "{text:?}: {err}");
    }
}

#[test]
fn cron_period_is_the_longest_gap() {
    assert_eq!(
        Schedule::parse("0 * * * * *").unwrap().period,
        Duration::from_secs(60)
    );
    assert_eq!(
        Schedule::parse("*/15 * * * * *").unwrap().period,
        Duration::from_secs(15)
    );
    // croner's iterator skips every other tick of this one; the period must still be 1 s.
    assert_eq!(
        Schedule::parse("* * * * * *").unwrap().period,
        Duration::from_secs(1)
    );
    assert_eq!(
        Schedule::parse("0 0,10 * * * *").unwrap().period,
        Duration::from_secs(50 * 60)
    );
    assert!(
        Schedule::parse("0 * * * *").is_err(),
        "5 fields must be refused"
    );
}

#[test]
fn too_frequent_schedule_is_refused() {
    let text = BASE.replace("[queues]", "[schedule]\ncron = \"* * * * * *\"\n[queues]");
    assert_eq!(
        parse(&text, &with_secret()).unwrap_err().key,
        "schedule.cron"
    );
}

#[test]
fn secret_never_in_debug() {
    let c = parse(BASE, &with_secret()).unwrap();
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn a_heartbeat_key_that_is_a_queues_row_key_is_refused_with_key_line_and_fix() {
    // The default key against a queue of that name: points at the queue's line.
    let text = BASE.replace(
        r#"names = ["Sales", "Support"]"#,
        "names = [\n  \"Sales\",\n  \"_Heartbeat\",\n]",
    );
    let e = parse(&text, &with_secret()).unwrap_err();
    assert_eq!(e.key, "queues.names");
    assert_eq!(e.line, Some(12));
    assert!(e.problem.contains("`_heartbeat`"), "{e}");
    assert!(e.fix.contains("rows.heartbeat_key"), "{e}");
    // An explicit key naming a configured queue: points at heartbeat_key.
    let text = format!("{BASE}\n[rows]\nheartbeat_key = \"Support\"\n");
    let e = parse(&text, &with_secret()).unwrap_err();
    assert_eq!((e.key.as_str(), e.line), ("rows.heartbeat_key", Some(13)));
    // With rows keyed by id, a queue id is what collides, not a name.
    let by_id = BASE.replace(
        "name = \"QueueAgentCounts\"",
        "name = \"QueueAgentCounts\"\nkey = \"id\"",
    );
    let text = format!("{by_id}ids = [\"hb-1\"]\n\n[rows]\nheartbeat_key = \"HB-1\"\n");
    let e = parse(&text, &with_secret()).unwrap_err();
    assert_eq!(e.key, "rows.heartbeat_key");
    let text = format!("{by_id}\n[rows]\nheartbeat_key = \"Sales\"\n");
    assert!(
        parse(&text, &with_secret()).is_ok(),
        "a name is no row key when key = id"
    );
    // Off: nothing to collide with.
    let text = format!("{BASE}\n[rows]\nheartbeat_key = \"off\"\n");
    assert!(
        parse(
            &text.replace("\"Support\"", "\"_heartbeat\""),
            &with_secret()
        )
        .is_ok()
    );
}

#[test]
fn listen_colon_port_means_every_interface() {
    let c = parse(
        &BASE.replace("[genesys]", "[http]\nlisten = \":9464\"\n\n[genesys]"),
        &with_secret(),
    )
    .unwrap();
    assert_eq!(c.http_listen, Some(SocketAddr::from(([0, 0, 0, 0], 9464))));
    assert_eq!(
        parse_listen("[::1]:9000"),
        Some("[::1]:9000".parse().unwrap())
    );
    assert_eq!(
        parse_listen("127.0.0.1:80"),
        Some("127.0.0.1:80".parse().unwrap())
    );
    for bad in [":", ":http", "9464", ":70000"] {
        assert_eq!(parse_listen(bad), None, "{bad}");
    }
}

#[test]
fn region_given_as_api_or_login_host_is_not_doubled() {
    for given in [
        "api.mypurecloud.de",
        "login.mypurecloud.de",
        "https://api.mypurecloud.de/",
        "mypurecloud.de",
        "eu-central-1",
    ] {
        let text = BASE.replace("region = \"us-east-1\"", &format!("region = \"{given}\""));
        let c = parse(&text, &with_secret()).unwrap();
        assert_eq!(c.api_url.as_str(), "https://api.mypurecloud.de/", "{given}");
        assert_eq!(
            c.login_url.as_str(),
            "https://login.mypurecloud.de/",
            "{given}"
        );
    }
    // A domain that merely starts with "api" is left alone.
    assert_eq!(
        region_domain("apifoo.example").as_deref(),
        Some("apifoo.example")
    );
}

#[test]
fn an_error_in_a_value_from_the_environment_names_the_variable() {
    let e = env(&[(ENV_CLIENT_SECRET, "x"), (ENV_REGION, "mars-1")]);
    let err = parse(BASE, &e).unwrap_err();
    assert_eq!(err.key, ENV_REGION);
    assert_eq!(err.line, None, "no file line for an env value");
    let text = err.to_string();
    assert!(
        text.starts_with("environment variable `GENESYSCLOUD_REGION`"),
        "{text}"
    );
    let e = env(&[(ENV_CLIENT_SECRET, "x"), (ENV_API_REGION, "ftp://x")]);
    let text = parse(BASE, &e).unwrap_err().to_string();
    assert!(
        text.starts_with("environment variable `GENESYSCLOUD_API_REGION`"),
        "{text}"
    );
    // The same mistake in the file names the key and its line.
    let text = parse(&BASE.replace("us-east-1", "mars-1"), &with_secret())
        .unwrap_err()
        .to_string();
    assert!(
        text.starts_with("config key `genesys.region` (line"),
        "{text}"
    );
}

#[test]
fn the_known_sections_hint_lists_every_section_serde_accepts() {
    let err = parse("[nosuchsection]\nx = 1\n", &with_secret()).unwrap_err();
    // toml's own message lists the fields RawConfig accepts: `a`, `b`, ...
    let expected: Vec<&str> = err
        .problem
        .split("expected one of ")
        .nth(1)
        .unwrap_or_else(|| panic!("{}", err.problem))
        .split(", ")
        .map(|f| f.trim_matches(|c: char| c == '`' || c.is_whitespace()))
        .collect();
    let mut want = expected.clone();
    want.sort_unstable();
    let mut have = SECTIONS.to_vec();
    have.sort_unstable();
    assert_eq!(have, want, "update SECTIONS");
    for s in SECTIONS {
        assert!(err.fix.contains(&format!("[{s}]")), "{}", err.fix);
    }
}

#[test]
fn log_level_and_queue_metrics_have_defaults_and_refuse_nonsense() {
    let c = parse(BASE, &with_secret()).unwrap();
    assert_eq!((c.log_level, c.queue_metrics), (None, true));
    let text = format!("{BASE}\n[log]\nlevel = \"debug\"\n\n[http]\nqueue_metrics = false\n");
    let c = parse(&text, &with_secret()).unwrap();
    assert_eq!(
        (c.log_level.as_deref(), c.queue_metrics),
        (Some("debug"), false)
    );
    let e = parse(
        &format!("{BASE}\n[log]\nlevel = \"verbose\"\n"),
        &with_secret(),
    )
    .unwrap_err();
    assert_eq!((e.key.as_str(), e.line), ("log.level", Some(13)));
    assert!(e.problem.contains("`verbose`"), "{e}");
    let e = parse(
        &format!("{BASE}\n[http]\nqueue_metrics = \"no\"\n"),
        &with_secret(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("queue_metrics"), "{e}");
}

#[test]
fn requests_per_minute_above_what_a_token_allows_warns() {
    let text = format!("{BASE}\n[limits]\nrequests_per_minute = 400\n");
    let c = parse(&text, &with_secret()).unwrap();
    assert_eq!(c.requests_per_minute, 400);
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("about 300"), "{:?}", c.warnings);
    let text = format!("{BASE}\n[limits]\nrequests_per_minute = 300\n");
    assert!(parse(&text, &with_secret()).unwrap().warnings.is_empty());
    assert!(parse(BASE, &with_secret()).unwrap().warnings.is_empty());
}

#[test]
fn mode_is_poll_unless_push_and_min_interval_has_a_sane_range() {
    use super::validated::Mode;
    let c = parse(BASE, &with_secret()).unwrap();
    assert_eq!(
        (c.mode, c.push_min_interval),
        (Mode::Poll, Duration::from_secs(5))
    );
    let text = format!("{BASE}\n[schedule]\nmode = \"push\"\n\n[push]\nmin_interval = \"2s\"\n");
    let c = parse(&text, &with_secret()).unwrap();
    assert_eq!(
        (c.mode, c.push_min_interval),
        (Mode::Push, Duration::from_secs(2))
    );
    let err = parse(
        &format!("{BASE}\n[schedule]\nmode = \"stream\"\n"),
        &with_secret(),
    )
    .unwrap_err();
    assert_eq!(err.key, "schedule.mode");
    assert!(err.line.is_some() && err.fix.contains("\"push\""), "{err}");
    for (bad, why) in [
        ("100ms", "too short"),
        ("1h", "too long"),
        ("soon", "not a duration"),
    ] {
        let err = parse(
            &format!("{BASE}\n[push]\nmin_interval = \"{bad}\"\n"),
            &with_secret(),
        )
        .unwrap_err();
        assert_eq!(err.key, "push.min_interval");
        assert!(err.line.is_some(), "{err}");
        assert!(err.problem.contains(why), "{bad}: {err}");
    }
}
