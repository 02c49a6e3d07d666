//! The health listener of a running daemon against the simulator: `/healthz`, `/readyz`
//! (including the flip to 503 when the data table is deleted, and back when it is
//! recreated) and `/metrics` (parsed as OpenMetrics text, every documented family checked).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use genesys_queue_sync::schedule::Exit;
use genesys_sim::{Fault, FaultAction, Match, Sim, SimOptions};
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_login_table_and_writes_and_flips_when_the_table_is_deleted() {
    // No table yet, and the first login answers only after 1.5 s.
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    add_busy_queue(&sim, "Sales");
    sim.inject(Fault {
        matcher: Match::Login,
        action: FaultAction::Delay(Duration::from_millis(1500)),
        times: 1,
    });
    let d = Daemon::start(config(&sim, &["Sales"], "* * * * * *")).await;

    // Before login: not ready, with a reason; alive all the same.
    let (status, body) = d.ready().await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false);
    assert!(
        body["reason"].as_str().unwrap().contains("not logged in"),
        "{body}"
    );
    d.assert_live().await;

    // Logged in, but the table does not exist.
    let body = eventually("readyz reason: table missing", 15, || async {
        let (s, body) = d.ready().await;
        assert_eq!(s, 503, "no table, not ready: {body}");
        body["reason"]
            .as_str()
            .is_some_and(|r| r.contains("data table"))
            .then_some(body)
    })
    .await;
    assert!(
        body["last_cycle"].as_str().unwrap().contains("not found"),
        "the last cycle's summary says why: {body}"
    );
    d.assert_live().await;

    // The table appears: ready once a cycle wrote the queue.
    let first = sim.create_table(TABLE, COLUMNS);
    let body = ready_becomes(&d, 200, "ready after the table is created").await;
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(int(&sim.rows(&first)["Sales"], "Online"), 7);
    d.assert_live().await;

    // The table is deleted: not ready, and the reason names the table.
    sim.delete_table(&first);
    let body = ready_becomes(&d, 503, "not ready after the table is deleted").await;
    assert!(
        body["reason"].as_str().unwrap().contains("data table"),
        "{body}"
    );
    d.assert_live().await;

    // Recreated with the same columns (a new id): ready again, the row written anew.
    let second = sim.create_table(TABLE, COLUMNS);
    assert_ne!(first, second);
    let body = ready_becomes(&d, 200, "ready again after the table is recreated").await;
    assert_eq!(body["ready"], true, "{body}");
    let rows = sim.rows(&second);
    for (col, want) in busy_values() {
        assert_eq!(
            int(&rows["Sales"], col),
            want,
            "Sales.{col} in the new table"
        );
    }
    d.assert_live().await;

    assert_eq!(d.stop().await, Exit::Shutdown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_stays_ready_while_unchanged_rows_are_skipped() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let d = Daemon::start(config(&sim, &["Sales"], "* * * * * *")).await;
    ready_becomes(&d, 200, "ready after the first cycle").await;
    // Several cycles with nothing changed: the row is fresh, so still ready.
    let seen = d.cycles();
    eventually("three more cycles", 15, || async {
        (d.cycles() >= seen + 3).then_some(())
    })
    .await;
    let (status, body) = d.ready().await;
    assert_eq!(status, 200, "unchanged values are not a failure: {body}");
    assert_eq!(d.stop().await, Exit::Shutdown);
}

// ---------------------------------------------------------------- /metrics

/// One sample line of the exposition.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed OpenMetrics text exposition.
#[derive(Debug, Default)]
struct Exposition {
    /// Family name → type.
    types: BTreeMap<String, String>,
    helps: BTreeMap<String, String>,
    units: BTreeMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    /// Parses strictly enough to catch what Prometheus would reject: `# EOF` last, every
    /// sample belongs to a declared family with a suffix its type allows, label syntax.
    fn parse(text: &str) -> Exposition {
        let mut e = Exposition::default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.last(), Some(&"# EOF"), "OpenMetrics ends with # EOF");
        assert!(text.ends_with("# EOF\n"), "# EOF ends with a newline");
        for line in &lines[..lines.len() - 1] {
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let kind = parts.next().unwrap();
                let name = parts.next().unwrap().to_owned();
                let value = parts.next().unwrap_or_default().to_owned();
                let map = match kind {
                    "TYPE" => &mut e.types,
                    "HELP" => &mut e.helps,
                    "UNIT" => &mut e.units,
                    other => panic!("unknown descriptor {other}: {line}"),
                };
                assert!(map.insert(name, value).is_none(), "duplicate: {line}");
                continue;
            }
            assert!(!line.is_empty(), "no blank lines in OpenMetrics");
            e.samples.push(parse_sample(line));
        }
        for s in &e.samples {
            let fam = e.family_of(&s.name);
            let ty = &e.types[&fam];
            let suffix = &s.name[fam.len()..];
            let allowed: &[&str] = match ty.as_str() {
                "counter" => &["_total", "_created"],
                "gauge" => &[""],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                other => panic!("unexpected type {other}"),
            };
            assert!(allowed.contains(&suffix), "{} in a {ty} family", s.name);
        }
        for (fam, unit) in &e.units {
            assert!(
                fam.ends_with(&format!("_{unit}")),
                "a family with unit {unit} ends with _{unit}: {fam}"
            );
        }
        e
    }

    /// The declared family a sample name belongs to (the longest declared prefix).
    fn family_of(&self, sample: &str) -> String {
        self.types
            .keys()
            .filter(|f| sample.starts_with(f.as_str()))
            .max_by_key(|f| f.len())
            .unwrap_or_else(|| panic!("sample {sample} has no # TYPE"))
            .clone()
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The value of the one sample matching; panics when none or several match.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found = self.find(name, labels);
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}");
        found[0].value
    }

    /// The sum over every sample of `name` (any labels).
    fn sum(&self, name: &str) -> f64 {
        self.find(name, &[]).iter().map(|s| s.value).sum()
    }
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("sample without value: {line}"));
    let name = &line[..name_end];
    assert!(
        name.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
        "metric name {name}"
    );
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let mut end = None;
        let mut key = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i);
                    break;
                }
                ',' => {}
                '=' => {
                    assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                    let mut value = String::new();
                    loop {
                        match chars.next().map(|(_, c)| c) {
                            Some('"') => break,
                            Some('\\') => match chars.next().map(|(_, c)| c) {
                                Some('n') => value.push('\n'),
                                Some(c @ ('\\' | '"')) => value.push(c),
                                other => panic!("bad escape {other:?} in {line}"),
                            },
                            Some(c) => value.push(c),
                            None => panic!("unterminated label value: {line}"),
                        }
                    }
                    assert!(
                        labels.insert(std::mem::take(&mut key), value).is_none(),
                        "duplicate label: {line}"
                    );
                }
                c => key.push(c),
            }
        }
        let end = end.unwrap_or_else(|| panic!("unterminated labels: {line}"));
        rest = &r[end + 1..];
    }
    let value = rest.trim_start_matches(' ');
    let value = value.split(' ').next().unwrap();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v
            .parse()
            .unwrap_or_else(|e| panic!("value {v:?} in {line}: {e}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

const P: &str = "genesys_queue_sync_";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_expose_every_documented_family_with_sensible_values() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    sim.add_queue("Support");
    // The first observation query is rate limited (Retry-After: 2) and its retry takes
    // 1.8 s (under the 2 s request timeout):
    // the first cycle outlasts three cron periods, and the ticks meanwhile are skipped.
    let observations = || Match::Path {
        method: Some("POST"),
        contains: "/observations/query".into(),
    };
    sim.inject(Fault {
        matcher: observations(),
        action: FaultAction::Status {
            status: 429,
            retry_after: Some(2),
        },
        times: 1,
    });
    sim.inject(Fault {
        matcher: observations(),
        action: FaultAction::Delay(Duration::from_millis(1800)),
        times: 1,
    });
    let d = Daemon::start(config(&sim, &["Sales", "Support"], "* * * * * *")).await;
    // A slow cycle is not a stalled schedule: alive throughout (Genesys being slow must
    // never get the daemon restarted).
    let t0 = tokio::time::Instant::now();
    let mut probes = 0;
    while d.cycles() == 0 {
        d.assert_live().await;
        probes += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let first = t0.elapsed();
    assert!(
        first > Duration::from_secs(3) && probes >= 4,
        "the first cycle outlasted 3 periods ({first:?}), alive at each of {probes} probes"
    );
    assert!(!d.task.is_finished(), "no stall exit");
    eventually("three cycles", 20, || async {
        (d.cycles() >= 3).then_some(())
    })
    .await;

    let (status, ctype, text) = d.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        ctype
            .as_deref()
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{ctype:?}"
    );
    let m = Exposition::parse(&text);
    let reports = d.reports.lock().unwrap().clone();
    let cycles_seen = reports.len() as f64;

    // Every documented family, with the type and unit the README lists.
    let families: &[(&str, &str, Option<&str>)] = &[
        ("cycles", "counter", None),
        ("cycle_duration_seconds", "histogram", Some("seconds")),
        ("last_success_timestamp_seconds", "gauge", Some("seconds")),
        ("api_requests", "counter", None),
        ("rate_limited", "counter", None),
        ("retry_after_waited_seconds", "counter", Some("seconds")),
        ("token_renewals", "counter", None),
        ("rows", "counter", None),
        ("skipped_ticks", "counter", None),
        ("config_reloads", "counter", None),
        ("other_writer_heartbeats", "counter", None),
        ("queue_agents", "gauge", None),
        ("queue_interactions", "gauge", None),
        // queue_seconds (unit seconds) has series only with a seconds column: not here.
        ("build_info", "gauge", None),
        ("ready", "gauge", None),
        ("api_request_duration_seconds", "histogram", Some("seconds")),
        ("push_connected", "gauge", None),
        ("push_events", "counter", None),
        ("push_reconnects", "counter", None),
        ("push_channel_renewals", "counter", None),
        ("push_channel_failures", "counter", None),
        ("push_change_to_write_seconds", "histogram", Some("seconds")),
    ];
    // The process_* families every Prometheus client exports, unprefixed.
    let process: &[(&str, &str, Option<&str>)] = &[
        ("process_resident_memory_bytes", "gauge", Some("bytes")),
        ("process_virtual_memory_bytes", "gauge", Some("bytes")),
        ("process_start_time_seconds", "gauge", Some("seconds")),
        ("process_cpu_seconds", "counter", Some("seconds")),
        ("process_open_fds", "gauge", None),
        ("process_max_fds", "gauge", None),
    ];
    let prefixed = families.iter().map(|(f, t, u)| (format!("{P}{f}"), t, u));
    let unprefixed = process.iter().map(|(f, t, u)| ((*f).to_owned(), t, u));
    for (name, ty, unit) in prefixed.chain(unprefixed) {
        assert_eq!(m.types.get(&name).map(String::as_str), Some(*ty), "{name}");
        assert!(m.helps.get(&name).is_some_and(|h| !h.is_empty()), "{name}");
        assert_eq!(m.units.get(&name).map(String::as_str), *unit, "{name}");
    }
    assert_eq!(
        m.types.len(),
        families.len() + process.len(),
        "no undocumented families: {:?}",
        m.types.keys()
    );
    for s in &m.samples {
        assert!(
            s.name.starts_with(P) || s.name.starts_with("process_"),
            "{}",
            s.name
        );
        assert!(s.value.is_finite() && s.value >= 0.0, "{s:?}");
    }

    // Which build runs, and the readiness verdict as a number.
    let info = m.find(&format!("{P}build_info"), &[]);
    assert_eq!(info.len(), 1, "{info:?}");
    assert_eq!(info[0].value, 1.0);
    assert_eq!(info[0].labels["version"], env!("CARGO_PKG_VERSION"));
    assert!(!info[0].labels["revision"].is_empty());
    let (ready_status, _) = d.ready().await;
    let (_, _, again) = d.get("/metrics").await;
    let ready = Exposition::parse(&again).value(&format!("{P}ready"), &[]);
    assert_eq!(ready, if ready_status == 200 { 1.0 } else { 0.0 });
    assert!(m.value("process_resident_memory_bytes", &[]) > 1e6);

    // Cycles by outcome; the histogram counts each of them once. (A cycle may finish
    // between the hook and the scrape, hence "at least".)
    let ok = m.value(&format!("{P}cycles_total"), &[("outcome", "ok")]);
    let all = m.sum(&format!("{P}cycles_total"));
    assert!(ok >= 3.0 && all >= cycles_seen, "{ok} ok of {all}");
    let count = m.value(&format!("{P}cycle_duration_seconds_count"), &[]);
    assert_eq!(count, all, "one duration per cycle");
    let sum = m.value(&format!("{P}cycle_duration_seconds_sum"), &[]);
    assert!(
        sum >= 3.8,
        "the first cycle waited 2 s Retry-After + 1.8 s: {sum}"
    );
    let mut buckets: Vec<(f64, f64)> = m
        .find(&format!("{P}cycle_duration_seconds_bucket"), &[])
        .iter()
        .map(|s| {
            let le = &s.labels["le"];
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, s.value)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() >= 5, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, count));
    let under_a_second = buckets.iter().find(|b| b.0 == 1.0).unwrap().1;
    assert!(under_a_second < count, "the slow first cycle is above 1 s");

    let last = m.value(&format!("{P}last_success_timestamp_seconds"), &[]);
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - 30.0..=now + 1.0).contains(&last), "{last} vs {now}");

    // API requests by endpoint and status; the 429 is counted both ways.
    let req = |endpoint: &str, status: &str| {
        m.find(
            &format!("{P}api_requests_total"),
            &[("endpoint", endpoint), ("status", status)],
        )
        .iter()
        .map(|s| s.value)
        .sum::<f64>()
    };
    assert_eq!(req("oauth_token", "200"), 1.0, "one login");
    assert_eq!(req("queue_observations", "429"), 1.0);
    assert!(req("queue_observations", "200") >= 3.0);
    assert!(req("routing_queues", "200") >= 1.0);
    assert!(req("datatables", "200") >= 1.0);
    assert!(req("datatable_rows", "200") >= 1.0);
    assert!(req("datatable_row", "200") >= 2.0, "both rows created");
    // One latency observation per request answered or failed, per endpoint.
    for endpoint in ["oauth_token", "queue_observations", "datatable_row"] {
        let latency = m.value(
            &format!("{P}api_request_duration_seconds_count"),
            &[("endpoint", endpoint)],
        );
        let requests: f64 = m
            .find(&format!("{P}api_requests_total"), &[("endpoint", endpoint)])
            .iter()
            .map(|s| s.value)
            .sum();
        // The two are recorded one after the other while cycles keep running, so a
        // scrape may fall between them for the requests in flight (at most 4 at once).
        assert!(
            latency >= 1.0 && (latency - requests).abs() <= 4.0,
            "{endpoint}: {latency} timings for {requests} requests"
        );
    }
    for s in m.find(&format!("{P}api_requests_total"), &[]) {
        assert_eq!(
            s.labels.keys().collect::<Vec<_>>(),
            ["endpoint", "status"],
            "{s:?}"
        );
    }
    assert_eq!(m.value(&format!("{P}rate_limited_total"), &[]), 1.0);
    let waited = m.value(&format!("{P}retry_after_waited_seconds_total"), &[]);
    assert!(
        (2.0..2.25).contains(&waited),
        "Retry-After 2 s plus < 250 ms jitter: {waited}"
    );
    assert_eq!(m.value(&format!("{P}token_renewals_total"), &[]), 1.0);

    // Rows by result: both queues written on the first cycle, unchanged ones skipped after.
    let rows = |result: &str| {
        m.find(&format!("{P}rows_total"), &[("result", result)])
            .iter()
            .map(|s| s.value)
            .sum::<f64>()
    };
    assert!(rows("written") >= 2.0, "{text}");
    assert_eq!(rows("failed"), 0.0);
    let written: usize = reports.iter().map(|r| r.written.len()).sum();
    assert!(rows("written") >= written as f64);

    let skipped = m.value(&format!("{P}skipped_ticks_total"), &[]);
    assert!(
        skipped >= 2.0,
        "ticks during the ~4 s first cycle: {skipped}"
    );

    // Per-queue gauges, one family per meaning: the four agent columns, Waiting counts
    // interactions; no seconds column is configured, so that family has no series.
    for (col, want) in busy_values() {
        let family = if col == "Waiting" {
            "queue_interactions"
        } else {
            "queue_agents"
        };
        let v = m.value(
            &format!("{P}{family}"),
            &[("queue", "Sales"), ("column", col)],
        );
        assert_eq!(v, want as f64, "Sales {col}");
        let v = m.value(
            &format!("{P}{family}"),
            &[("queue", "Support"), ("column", col)],
        );
        assert_eq!(v, 0.0, "Support {col}");
    }
    assert_eq!(
        m.find(&format!("{P}queue_agents"), &[]).len(),
        8,
        "two queues × four columns"
    );
    assert_eq!(m.find(&format!("{P}queue_interactions"), &[]).len(), 2);
    assert_eq!(m.find(&format!("{P}queue_seconds"), &[]).len(), 0);

    if std::env::var_os("PRINT_METRICS").is_some() {
        println!("{text}");
    }
    assert_eq!(d.stop().await, Exit::Shutdown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_404_and_healthz_is_plain_text() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let d = Daemon::start(config(&sim, &["Sales"], "* * * * * *")).await;
    let (status, _, body) = d.get("/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok\n"));
    let (status, _, _) = d.get("/nope").await;
    assert_eq!(status, 404);
    // The landing page names the build and links the three endpoints.
    let (status, ctype, page) = d.get("/").await;
    assert_eq!(status, 200);
    assert!(ctype.is_some_and(|c| c.starts_with("text/html")));
    for link in ["href=\"/metrics\"", "href=\"/healthz\"", "href=\"/readyz\""] {
        assert!(page.contains(link), "{link}: {page}");
    }
    assert!(page.contains(genesys_queue_sync::version::LONG.split(' ').next().unwrap()));
    assert!(
        page.contains(genesys_queue_sync::version::REVISION),
        "{page}"
    );
    // A scrape at any time is a complete exposition.
    let (status, _, text) = d.get("/metrics").await;
    assert_eq!(status, 200);
    let m = Exposition::parse(&text);
    assert!(m.types.contains_key(&format!("{P}cycles")));
    assert_eq!(d.stop().await, Exit::Shutdown);
}

/// The daemon's /metrics, parsed.
async fn scrape(d: &Daemon) -> Exposition {
    let (status, _, text) = d.get("/metrics").await;
    assert_eq!(status, 200);
    Exposition::parse(&text)
}

/// Per-queue series of `queue` over the three families.
fn queue_series(m: &Exposition, queue: &str) -> usize {
    ["queue_agents", "queue_interactions", "queue_seconds"]
        .iter()
        .map(|f| m.find(&format!("{P}{f}"), &[("queue", queue)]).len())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_queue_series_go_when_a_queue_is_renamed_out_of_the_selection() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let support = add_busy_queue(&sim, "Support");
    let mut cfg = config(&sim, &["Sales", "Support"], "* * * * * *");
    cfg.resolve_every = Duration::from_millis(500);
    let d = Daemon::start(cfg).await;
    wait_cycles(&d, 1, 20).await;
    let m = scrape(&d).await;
    assert_eq!(
        (queue_series(&m, "Sales"), queue_series(&m, "Support")),
        (5, 5)
    );

    // "Support" no longer exists under that name: its series go, Sales' stay.
    sim.rename_queue(&support, "Support v2");
    eventually("Support's series removed", 20, || async {
        let m = scrape(&d).await;
        (queue_series(&m, "Support") == 0).then_some(())
    })
    .await;
    let m = scrape(&d).await;
    assert_eq!(queue_series(&m, "Sales"), 5);
    assert_eq!(queue_series(&m, "Support v2"), 0, "never selected");
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_metrics_false_exports_no_per_queue_series() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let mut cfg = config(&sim, &["Sales"], "* * * * * *");
    cfg.queue_metrics = false;
    let d = Daemon::start(cfg).await;
    wait_cycles(&d, 2, 20).await;
    assert!(rows(&sim).contains_key("Sales"), "the row is still written");
    let m = scrape(&d).await;
    assert_eq!(queue_series(&m, "Sales"), 0);
    assert!(
        m.types
            .keys()
            .all(|f| !f.starts_with(&format!("{P}queue_"))),
        "{:?}",
        m.types
    );
    assert!(m.value(&format!("{P}rows_total"), &[("result", "written")]) >= 1.0);
    d.stop().await;
}
