//! Property tests for everything that parses outside input: the config loader (arbitrary
//! text and arbitrary TOML never panic; every rejection names a key and a fix), the
//! observation answer and the row listing (arbitrary bytes and JSON never panic), and the
//! rate-limit headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use genesys_queue_sync::config::{self, ConfigError};
use genesys_queue_sync::genesys::{self, datatable, limiter::Limiter, observations};
use genesys_queue_sync::sync::columns::Columns;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------- config

const SECTIONS: &[&str] = &[
    "genesys", "table", "queues", "schedule", "limits", "http", "rows",
];

const KEYS: &[&str] = &[
    "region",
    "api_url",
    "login_url",
    "client_id",
    "client_secret",
    "client_secret_file",
    "request_timeout",
    "name",
    "id",
    "key",
    "write_mode",
    "owned",
    "names",
    "ids",
    "match",
    "divisions",
    "resolve_every",
    "on_vanish",
    "cron",
    "requests_per_minute",
    "write_concurrency",
    "listen",
    "refresh_after",
    "heartbeat_key",
    "surprise",
];

/// Strings a config value might plausibly hold, valid and not.
const STRINGS: &[&str] = &[
    "us-east-1",
    "us_west_2",
    "mypurecloud.ie",
    "mars-1",
    "https://api.mypurecloud.com",
    "http://127.0.0.1:9",
    "http://[::1]:8080",
    "http://example.com",
    "ftp://x",
    "https://user@api.x.com/?q#f",
    "10s",
    "0s",
    "1h",
    "99999999999years",
    "soon",
    "0 * * * * *",
    "* * * * * *",
    "*/15 * * * * *",
    "0 0 0 29 2 *",
    "0 0 0 30 2 *",
    "0 * * * *",
    "name",
    "id",
    "email",
    "rows",
    "import",
    "auto",
    "keep",
    "delete",
    "off",
    "127.0.0.1:9464",
    "0.0.0.0:0",
    "",
    " ",
    "Sales",
    "Tech/Support ü",
    "a?b#c d",
    "*",
    "/nonexistent/secret",
    "/dev/zero",
    "/",
    "\u{0}",
    "line\nbreak",
];

fn toml_string(s: &str) -> String {
    // toml's own quoting of a basic string.
    toml::Value::String(s.to_owned()).to_string()
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(STRINGS).prop_map(toml_string),
        ".{0,24}".prop_map(|s| toml_string(&s)),
        any::<i64>().prop_map(|n| n.to_string()),
        prop_oneof![
            Just(0i64),
            Just(1),
            Just(10),
            Just(32),
            Just(10_000),
            Just(-1)
        ]
        .prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        any::<bool>().prop_map(|b| b.to_string()),
        Just("1979-05-27T07:32:00Z".to_owned()),
    ]
}

fn value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4)
                .prop_map(|v| format!("[{}]", v.join(", "))),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..3).prop_map(
                |kv| {
                    let kv: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("{{ {} }}", kv.join(", "))
                }
            ),
        ]
    })
}

/// A document of known (and a few unknown) sections and keys with random values, now
/// and then broken by a junk line.
fn document() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        8 => (proptest::sample::select(KEYS), value()).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => ".{0,30}",
        1 => proptest::sample::select(SECTIONS).prop_map(|s| format!("[[{s}]]")),
    ];
    let section = (
        prop_oneof![
            6 => proptest::sample::select(SECTIONS).prop_map(str::to_owned),
            1 => "[a-z.]{1,12}",
        ],
        proptest::collection::vec(line, 0..6),
    )
        .prop_map(|(name, lines)| format!("[{name}]\n{}\n", lines.join("\n")));
    proptest::collection::vec(section, 0..7).prop_map(|s| s.concat())
}

/// A valid base with one key replaced by a random value: reaches the validator's checks.
fn near_valid() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(SECTIONS),
        proptest::sample::select(KEYS),
        value(),
    )
        .prop_map(|(section, key, v)| {
            let mut doc: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::new();
            doc.entry("genesys")
                .or_default()
                .insert("region", toml_string("us-east-1"));
            doc.entry("genesys")
                .or_default()
                .insert("client_id", toml_string("abc"));
            doc.entry("table")
                .or_default()
                .insert("name", toml_string("QueueAgentCounts"));
            doc.entry("queues")
                .or_default()
                .insert("names", "[\"Sales\"]".to_owned());
            doc.entry(section).or_default().insert(key, v);
            doc.iter()
                .map(|(s, kv)| {
                    let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                    format!("[{s}]\n{}\n", body.join("\n"))
                })
                .collect()
        })
}

fn env() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop_oneof![
        4 => Just(vec![("GENESYSCLOUD_OAUTHCLIENT_SECRET", "s3cret")]),
        1 => Just(vec![]),
        1 => Just(vec![("CREDENTIALS_DIRECTORY", "/nonexistent")]),
        1 => Just(vec![
            ("GENESYSCLOUD_OAUTHCLIENT_SECRET", "s3cret"),
            ("GENESYSCLOUD_API_REGION", "http://10.0.0.1"),
        ]),
        1 => Just(vec![
            ("GENESYSCLOUD_OAUTHCLIENT_SECRET", "s3cret"),
            ("GENESYSCLOUD_REGION", "atlantis"),
        ]),
    ]
    .prop_map(|v| {
        v.into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    })
}

/// A rejection a Genesys admin can act on: it names a key (one of the file's sections, an
/// environment variable, the config path, or something written in the file) and a fix,
/// and it never echoes the secret.
fn assert_readable(err: &ConfigError, text: &str) {
    let shown = err.to_string();
    assert!(!err.key.trim().is_empty(), "no key: {shown}");
    assert!(!err.problem.trim().is_empty(), "no problem: {shown}");
    assert!(!err.fix.trim().is_empty(), "no fix: {shown}");
    assert!(shown.contains(&format!("`{}`", err.key)), "{shown}");
    assert!(shown.contains(". Fix: "), "{shown}");
    assert!(!shown.contains("s3cret"), "{shown}");
    let first = err.key.split('.').next().unwrap_or_default();
    let named = err.key == "(file)"
        || err.key == "--config"
        || err.key == "table"
        || SECTIONS.contains(&first)
        || err.key.starts_with("GENESYSCLOUD_")
        || err.key == "CREDENTIALS_DIRECTORY"
        || err.key.ends_with('…')
        || written_as_key(text, &err.key)
        || err
            .key
            .split('.')
            .all(|seg| written_as_key(text, seg.trim()));
    assert!(named, "`{}` is not a key of {text:?}: {shown}", err.key);
    if err.key == "(file)" {
        assert!(
            err.line.is_some(),
            "a key-less error at least has a line: {shown}"
        );
    }
}

/// Whether `seg` occurs in `text` as (part of) a key: followed by `=`, `.` or `]`, not
/// as a value or a piece of punctuation.
fn written_as_key(text: &str, seg: &str) -> bool {
    !seg.is_empty()
        && text.match_indices(seg).any(|(i, _)| {
            text[i + seg.len()..]
                .trim_start()
                .starts_with(['=', '.', ']'])
        })
}

fn check_config(text: &str, env: &BTreeMap<String, String>) {
    if let Err(e) = config::parse(text, env) {
        assert_readable(&e, text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_the_config_loader(text in ".{0,400}", env in env()) {
        check_config(&text, &env);
    }

    #[test]
    fn arbitrary_toml_never_panics_and_every_rejection_is_readable(
        text in document(),
        env in env(),
    ) {
        check_config(&text, &env);
    }

    #[test]
    fn one_bad_value_in_a_good_file_is_named(text in near_valid(), env in env()) {
        check_config(&text, &env);
    }
}

#[test]
fn a_toml_error_names_the_key_not_a_token_of_the_message() {
    let env: BTreeMap<String, String> = [("GENESYSCLOUD_OAUTHCLIENT_SECRET", "s3cret")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let text = "[table]\nname = 5\n";
    let err = config::parse(text, &env).unwrap_err();
    assert_eq!(err.key, "table.name", "{err}");
    assert_readable(&err, text);
}

// ---------------------------------------------------------------- API answers

const WORDS: &[&str] = &[
    "results",
    "group",
    "queueId",
    "mediaType",
    "data",
    "metric",
    "qualifier",
    "stats",
    "count",
    "systemToOrganizationMappings",
    "OFFLINE",
    "AVAILABLE",
    "oOnQueueUsers",
    "oUserPresences",
    "oWaiting",
    "oMemberUsers",
    "IDLE",
    "INTERACTING",
    "entities",
    "pageCount",
    "key",
    "q1",
    "q2",
];

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just(0i64),
            Just(-1),
            Just(4_294_967_295),
            Just(4_294_967_296)
        ]
        .prop_map(|n| json!(n)),
        proptest::sample::select(WORDS).prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        4 => proptest::sample::select(WORDS).prop_map(str::to_owned),
                        1 => ".{0,6}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// An observation answer of the right shape whose leaves are sometimes of the wrong type.
fn observation_answer() -> impl Strategy<Value = Value> {
    let count = prop_oneof![
        6 => (0u64..50).prop_map(|n| json!(n)),
        1 => json_leaf(),
    ];
    let datum = (
        proptest::sample::select(
            &[
                "oOnQueueUsers",
                "oUserPresences",
                "oWaiting",
                "oMemberUsers",
                "oNew",
            ][..],
        ),
        proptest::option::of(proptest::sample::select(
            &["IDLE", "INTERACTING", "off", "av", "x"][..],
        )),
        count,
    )
        .prop_map(|(m, q, c)| {
            let mut d = json!({"metric": m, "stats": {"count": c}});
            if let Some(q) = q {
                d["qualifier"] = json!(q);
            }
            d
        });
    let group = (
        prop_oneof![
            Just(json!("q1")),
            Just(json!("q2")),
            Just(json!("other")),
            json_leaf()
        ],
        proptest::collection::vec(datum, 0..6),
    )
        .prop_map(|(id, data)| json!({"group": {"queueId": id}, "data": data}));
    (
        proptest::option::of(Just(json!({"OFFLINE": ["off"], "AVAILABLE": ["av"]}))),
        proptest::collection::vec(group, 0..5),
    )
        .prop_map(|(mappings, results)| {
            let mut v = json!({"results": results});
            if let Some(m) = mappings {
                v["systemToOrganizationMappings"] = m;
            }
            v
        })
}

fn requested() -> Vec<String> {
    vec!["q1".to_owned(), "q2".to_owned()]
}

fn check_observations(body: &[u8]) {
    if let Ok(got) = observations::parse_response(body, &requested()) {
        for (id, o) in &got {
            assert!(id == "q1" || id == "q2", "{id} was not asked for");
            let v = Columns::default().values(o, chrono::Utc::now());
            // Online, OnQueue, Idle, Interacting, Waiting
            assert!(v.0[2] + v.0[3] <= v.0[1], "{v:?}");
        }
    }
}

fn check_rows(body: &[u8]) {
    if let Ok(page) = datatable::parse_rows_page(body) {
        let v: Value = serde_json::from_slice(body).unwrap();
        let n = v
            .get("entities")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        assert_eq!(page.rows.len(), n);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_answer_parsers(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        check_observations(&body);
        check_rows(&body);
    }

    #[test]
    fn arbitrary_json_never_panics_the_answer_parsers(v in json_value()) {
        let body = serde_json::to_vec(&v).unwrap();
        check_observations(&body);
        check_rows(&body);
        let wrapped = serde_json::to_vec(&json!({"entities": v.clone(), "results": v, "pageCount": 2})).unwrap();
        check_observations(&wrapped);
        check_rows(&wrapped);
    }

    #[test]
    fn observation_answers_with_odd_leaves_parse_or_fail_cleanly(v in observation_answer()) {
        check_observations(&serde_json::to_vec(&v).unwrap());
    }

    #[test]
    fn rate_limit_headers_never_panic_and_stay_bounded(
        retry in "[ -~]{0,24}",
        count in "[ -~]{0,12}",
        allowed in "[ -~]{0,12}",
        reset in "[ -~]{0,12}",
    ) {
        let mut h = reqwest::header::HeaderMap::new();
        for (name, v) in [
            ("retry-after", &retry),
            ("inin-ratelimit-count", &count),
            ("inin-ratelimit-allowed", &allowed),
            ("inin-ratelimit-reset", &reset),
        ] {
            if let Ok(v) = v.parse() {
                h.insert(name, v);
            }
        }
        if let Some(d) = genesys::retry_after(&h) {
            prop_assert!(d <= Duration::from_secs(3600));
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let l = Limiter::per_minute(240);
            l.observe_headers(&h);
            let _ = l.available_now();
        });
    }
}
