//! Operating the real binary: systemd notifications (READY/STATUS/WATCHDOG/STOPPING on a
//! NOTIFY_SOCKET the test binds), JSON log lines (journald and colour: tests/cli.rs),
//! config reload on SIGHUP, and the table bootstrap commands (`table schema`, `table create`) against the simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use genesys_sim::{Fault, FaultAction, FieldType, Match, Sim, SimOptions};
use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UnixDatagram;
use tokio::process::{Child, Command};

type Shared<T> = Arc<Mutex<Vec<T>>>;

/// The notify socket systemd would give the service: every datagram, split into lines.
struct NotifySocket {
    path: std::path::PathBuf,
    messages: Shared<Vec<String>>,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        let messages: Shared<Vec<String>> = Arc::default();
        let m = messages.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = sock.recv(&mut buf).await {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                m.lock()
                    .unwrap()
                    .push(text.lines().map(str::to_owned).collect());
            }
        });
        NotifySocket {
            path,
            messages,
            _dir: dir,
        }
    }

    fn all(&self) -> Vec<Vec<String>> {
        self.messages.lock().unwrap().clone()
    }

    /// Lines (over all messages) satisfying `pred`.
    fn lines(&self, pred: impl Fn(&str) -> bool) -> Vec<String> {
        self.all()
            .into_iter()
            .flatten()
            .filter(|l| pred(l))
            .collect()
    }

    async fn wait_for(&self, what: &str, secs: u64, pred: impl Fn(&str) -> bool) -> String {
        eventually(what, secs, || {
            std::future::ready(self.lines(&pred).into_iter().next())
        })
        .await
    }
}

/// A running binary whose stderr lines are collected as they come.
struct Proc {
    child: Child,
    stderr: Shared<String>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

impl Proc {
    fn spawn(args: &[&str], cfg: &ConfigFile, env: &[(&str, &str)]) -> Proc {
        let mut child = bin_command(args, &cfg.path, env)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr: Shared<String> = Arc::default();
        let lines = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        let reader = tokio::spawn(async move {
            let mut reader = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                lines.lock().unwrap().push(line);
            }
        });
        Proc {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.id().unwrap();
        let ok = std::process::Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// Still running (not exited).
    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// SIGTERM, then the exit code (within 10 s); every stderr line is collected after.
    async fn stop(&mut self) -> Option<i32> {
        let pid = self.child.id().unwrap();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM {pid}");
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("exits within 10 s of SIGTERM")
            .unwrap();
        if let Some(r) = self.reader.take() {
            tokio::time::timeout(Duration::from_secs(5), r)
                .await
                .expect("stderr closes")
                .unwrap();
        }
        status.code()
    }
}

/// A config for `run` whose health listener binds an ephemeral loopback port.
fn run_config(sim: &Sim) -> ConfigFile {
    let cfg = config_file(sim, &queues_toml(&["Sales"]));
    let text = std::fs::read_to_string(&cfg.path).unwrap();
    assert!(text.contains("listen = \"off\""));
    std::fs::write(
        &cfg.path,
        text.replace("listen = \"off\"", "listen = \"127.0.0.1:0\""),
    )
    .unwrap();
    cfg
}

/// Parses every stderr line as one JSON object.
fn json_lines(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

/// The health listener's address, from the JSON log line announcing it.
/// GET on the daemon's listener at `addr`.
async fn get(addr: &str, path: &str) -> reqwest::Response {
    http()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

async fn listen_addr(p: &Proc) -> String {
    eventually("the listening log line", 10, || {
        std::future::ready(json_lines(&p.lines()).into_iter().find_map(|v| {
            (v["message"]
                .as_str()?
                .starts_with("health and metrics listening"))
            .then(|| v["addr"].as_str().map(str::to_owned))
            .flatten()
        }))
    })
    .await
}

// ---------------------------------------------------------------- systemd notify

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_sent_before_genesys_answers_and_the_watchdog_is_petted() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    // The login host never answers in time (the config's request timeout is 2 s).
    sim.inject(Fault {
        matcher: Match::Login,
        action: FaultAction::Delay(Duration::from_secs(30)),
        times: u32::MAX,
    });
    let cfg = run_config(&sim);
    let notify = NotifySocket::bind();
    let mut p = Proc::spawn(
        &["--log-format", "json", "run"],
        &cfg,
        &[
            ("NOTIFY_SOCKET", notify.path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );

    notify.wait_for("READY=1", 10, |l| l == "READY=1").await;
    assert!(
        sim.requests()
            .iter()
            .all(|r| !r.path.contains("/oauth/token")),
        "READY=1 came before any login was answered"
    );
    // The listener is bound and serving: alive, not ready.
    let addr = listen_addr(&p).await;
    let resp = get(&addr, "/readyz").await;
    assert_eq!(resp.status().as_u16(), 503);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["reason"].as_str().unwrap().contains("not logged in"),
        "{body}"
    );
    let resp = get(&addr, "/healthz").await;
    assert_eq!(resp.status().as_u16(), 200);

    // The failed first cycle is reported in STATUS=.
    let status = notify
        .wait_for("STATUS= with the failed cycle", 15, |l| {
            l.starts_with("STATUS=cycle failed")
        })
        .await;
    assert!(status.contains("login"), "{status}");

    // The watchdog is petted every WATCHDOG_USEC / 2 while the schedule is alive, even
    // though Genesys does not answer.
    let before = notify.lines(|l| l == "WATCHDOG=1").len();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let after = notify.lines(|l| l == "WATCHDOG=1").len();
    assert!(after >= before + 3, "WATCHDOG=1 {before} → {after}");

    // The first message is READY=1 with the starting status; STOPPING=1 on SIGTERM.
    let first = notify.all().into_iter().next().unwrap();
    assert_eq!(first[0], "READY=1", "{first:?}");
    assert!(first.iter().any(|l| l.starts_with("STATUS=")), "{first:?}");
    assert_eq!(p.stop().await, Some(0));
    notify
        .wait_for("STOPPING=1", 5, |l| l == "STOPPING=1")
        .await;
    assert_eq!(
        notify.lines(|l| l == "READY=1").len(),
        1,
        "READY=1 is sent once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_carries_the_cycle_summary_and_logs_are_json_lines_with_the_cycle_span() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let cfg = run_config(&sim);
    let notify = NotifySocket::bind();
    let mut p = Proc::spawn(
        &["--log-format", "json", "run"],
        &cfg,
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
    );
    notify.wait_for("READY=1", 10, |l| l == "READY=1").await;
    let status = notify
        .wait_for("STATUS= with the cycle summary", 15, |l| {
            l.starts_with("STATUS=1 observed")
        })
        .await;
    assert!(
        status.contains("1 written") && status.contains("0 failed"),
        "{status}"
    );
    assert!(
        notify.lines(|l| l.starts_with("WATCHDOG")).is_empty(),
        "no watchdog pings without WATCHDOG_USEC"
    );

    // The daemon is ready over HTTP too.
    let addr = listen_addr(&p).await;
    let resp = get(&addr, "/readyz").await;
    assert_eq!(resp.status().as_u16(), 200);

    let done = eventually("the `cycle done` log line", 10, || {
        std::future::ready(
            json_lines(&p.lines())
                .into_iter()
                .find(|v| v["message"] == "cycle done"),
        )
    })
    .await;
    assert_eq!(p.stop().await, Some(0));

    // Every line is one JSON object with a timestamp, a level, a message and a target.
    let lines = json_lines(&p.lines());
    assert!(lines.len() >= 4, "{lines:?}");
    for v in &lines {
        let ts = v["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{v}");
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&v["level"].as_str().unwrap()),
            "{v}"
        );
        assert!(v["message"].is_string(), "{v}");
        let target = v["target"].as_str().unwrap();
        assert!(
            target.starts_with("genesys_queue_sync"),
            "library chatter is kept out of operator logs: {v}"
        );
    }
    // Fields are top-level keys; events inside a cycle carry the cycle span.
    assert_eq!(done["level"], "INFO");
    assert_eq!(done["written"], 1, "{done}");
    assert_eq!(done["observed"], 1, "{done}");
    assert!(done["duration_ms"].is_u64(), "{done}");
    assert_eq!(done["span"], json!({"name": "cycle", "n": 1}), "{done}");
    let token = lines
        .iter()
        .find(|v| v["message"] == "obtained an access token")
        .unwrap();
    assert_eq!(token["span"]["name"], "cycle", "{token}");
    let stopped = lines
        .iter()
        .find(|v| v["message"] == "genesys-queue-sync stopped")
        .unwrap();
    assert!(stopped.get("span").is_none(), "{stopped}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_address_in_use_fails_at_start_without_ready() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let cfg = run_config(&sim);
    let text = std::fs::read_to_string(&cfg.path).unwrap();
    std::fs::write(&cfg.path, text.replace("127.0.0.1:0", &addr.to_string())).unwrap();
    let notify = NotifySocket::bind();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        bin_command(
            &["run"],
            &cfg.path,
            &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
        )
        .output(),
    )
    .await
    .expect("exits at once")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (http.listen)")),
        "{stderr}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        notify.lines(|l| l == "READY=1").is_empty(),
        "{:?}",
        notify.all()
    );
    assert!(sim.requests().is_empty(), "nothing was sent to Genesys");
    drop(taken);
}

// ---------------------------------------------------------------- SIGHUP reload

/// A `run` config with a 10 s schedule (the shortest a config allows) and the listener on
/// an ephemeral loopback port; `extra` is appended (it may hold sections of its own).
fn reload_config(sim: &Sim, queues: &[&str], extra: &str) -> String {
    let cfg = config_file(sim, &queues_toml(queues));
    let text = std::fs::read_to_string(&cfg.path).unwrap();
    format!(
        "{}\n[schedule]\ncron = \"*/10 * * * * *\"\n{extra}",
        text.replace("listen = \"off\"", "listen = \"127.0.0.1:0\"")
    )
}

/// JSON log lines whose message starts with `prefix`.
fn messages(p: &Proc, prefix: &str) -> Vec<Value> {
    json_lines(&p.lines())
        .into_iter()
        .filter(|v| v["message"].as_str().is_some_and(|m| m.starts_with(prefix)))
        .collect()
}

async fn wait_message(p: &Proc, prefix: &str, n: usize, secs: u64) -> Value {
    eventually(
        &format!("{n} log line(s) starting {prefix:?}"),
        secs,
        || std::future::ready(messages(p, prefix).into_iter().nth(n - 1)),
    )
    .await
}

async fn metric(addr: &str, series: &str) -> Option<f64> {
    let body = http()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reload_adds_a_queue_whose_row_the_next_cycle_writes() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    add_busy_queue(&sim, "Support");
    let cfg = config_file(&sim, "");
    std::fs::write(&cfg.path, reload_config(&sim, &["Sales"], "")).unwrap();
    let notify = NotifySocket::bind();
    let mut p = Proc::spawn(
        &["--log-format", "json", "run"],
        &cfg,
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
    );
    let addr = listen_addr(&p).await;
    eventually("the first cycle writes Sales", 20, || {
        std::future::ready(rows(&sim).contains_key("Sales").then_some(()))
    })
    .await;
    assert!(!rows(&sim).contains_key("Support"));

    // Support joins the selection; the listen address cannot move without a restart.
    std::fs::write(
        &cfg.path,
        reload_config(&sim, &["Sales", "Support"], "").replace("127.0.0.1:0", "127.0.0.1:1"),
    )
    .unwrap();
    p.signal("-HUP");
    let reloaded = wait_message(&p, "config reloaded", 1, 10).await;
    assert_eq!(reloaded["level"], "INFO", "{reloaded}");
    assert_eq!(reloaded["changed"], "queues.names", "{reloaded}");
    let restart = wait_message(&p, "http.listen changed", 1, 5).await;
    assert_eq!(restart["level"], "WARN", "{restart}");
    assert!(
        restart["message"]
            .as_str()
            .unwrap()
            .contains("restart the daemon"),
        "{restart}"
    );

    // The next cycle (at most one 10 s period away) writes the added queue's row.
    eventually(
        "the reloaded config's next cycle writes Support",
        25,
        || std::future::ready(rows(&sim).contains_key("Support").then_some(())),
    )
    .await;
    assert_eq!(int(&rows(&sim)["Support"], "OnQueue"), busy_values()[1].1);
    assert!(p.alive(), "SIGHUP never ends the daemon");
    // Still on the address it bound at start.
    assert_eq!(
        metric(
            &addr,
            "genesys_queue_sync_config_reloads_total{result=\"applied\"}"
        )
        .await,
        Some(1.0)
    );
    // systemd saw the reload begin and end.
    let states = notify.lines(|l| l == "RELOADING=1" || l == "READY=1");
    assert_eq!(states, ["READY=1", "RELOADING=1", "READY=1"], "{states:?}");
    assert_eq!(p.stop().await, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_with_a_broken_file_keeps_the_old_config_and_the_process() {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    add_busy_queue(&sim, "Support");
    let cfg = config_file(&sim, "");
    std::fs::write(&cfg.path, reload_config(&sim, &["Sales"], "")).unwrap();
    let mut p = Proc::spawn(&["--log-format", "json", "run"], &cfg, &[]);
    let addr = listen_addr(&p).await;
    wait_message(&p, "cycle done", 1, 20).await;

    // Not TOML at all, then TOML with a value out of range (and a queue added that must
    // not be picked up): each is refused with the key, and nothing changes.
    std::fs::write(&cfg.path, "[queues\nnames = [\"Support\"]\n").unwrap();
    p.signal("-HUP");
    let first = wait_message(&p, "config reload failed", 1, 10).await;
    let text = reload_config(
        &sim,
        &["Sales", "Support"],
        "\n[limits]\nrequests_per_minute = 5\n",
    );
    std::fs::write(&cfg.path, text).unwrap();
    p.signal("-HUP");
    let second = wait_message(&p, "config reload failed", 2, 10).await;
    for (v, want) in [(&first, "line 1"), (&second, "limits.requests_per_minute")] {
        assert_eq!(v["level"], "ERROR", "{v}");
        let m = v["message"].as_str().unwrap();
        assert!(m.contains("still running on the previous config"), "{m}");
        assert!(m.contains(want), "{m}");
    }
    assert!(p.alive(), "a broken file on SIGHUP never ends the daemon");

    // The next cycle still runs on the old config: Sales only.
    let before = messages(&p, "cycle done").len();
    wait_message(&p, "cycle done", before + 1, 25).await;
    let done = messages(&p, "cycle done");
    assert_eq!(done.last().unwrap()["observed"], 1, "{done:?}");
    assert!(!rows(&sim).contains_key("Support"));
    assert_eq!(
        metric(
            &addr,
            "genesys_queue_sync_config_reloads_total{result=\"failed\"}"
        )
        .await,
        Some(2.0)
    );
    assert_eq!(p.stop().await, Some(0));
}

// ---------------------------------------------------------------- logs

// ---------------------------------------------------------------- table bootstrap

/// The daemon's columns with their JSON schema types, `key` first.
/// The fields `table schema` and `table create` make, in display order: `key`, the
/// columns, the heartbeat's `Writer`, `UpdatedAt` last.
fn daemon_columns() -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<(&'static str, &'static str)> = std::iter::once(("key", "string"))
        .chain(COLUMNS.iter().map(|(c, t)| (*c, t.wire_name())))
        .collect();
    v.insert(v.len() - 1, ("Writer", "string"));
    v
}

/// Column name → type of a stored schema.
fn column_types(schema: &Value) -> BTreeMap<String, String> {
    schema["properties"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["type"].as_str().unwrap().to_owned()))
        .collect()
}

/// Requests that change a table's definition (not its rows).
fn table_writes(sim: &Sim) -> Vec<(String, String, String)> {
    sim.requests()
        .into_iter()
        .filter(|r| {
            (r.method == "POST" || r.method == "PUT")
                && r.path.starts_with("/api/v2/flows/datatables")
                && !r.path.contains("/rows")
                && !r.path.contains("/import")
        })
        .map(|r| (r.method, r.path, r.body))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_schema_is_draft_04_with_key_the_only_required_field() {
    let out = Command::new(bin())
        .args(["table", "schema"])
        .env_clear()
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-04/schema#");
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["required"], json!(["key"]));
    assert_eq!(schema["additionalProperties"], json!(false));
    let want: BTreeMap<String, String> = daemon_columns()
        .iter()
        .map(|(c, t)| (c.to_string(), t.to_string()))
        .collect();
    assert_eq!(column_types(&schema), want);
    assert_eq!(schema["properties"]["key"]["minLength"], 1);
    for (i, (c, _)) in daemon_columns().iter().enumerate() {
        assert_eq!(schema["properties"][c]["displayOrder"], i, "{c}");
        assert_eq!(schema["properties"][c]["title"], *c);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_create_makes_a_missing_table_that_check_then_accepts() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    add_busy_queue(&sim, "Sales");
    let cfg = config_file(&sim, &queues_toml(&["Sales"]));

    let out = run_bin(&["check"], &cfg).await;
    assert_eq!(out.status.code(), Some(1), "{:?}", text(&out));

    let out = run_bin(&["table", "create"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("✓ created table \"{TABLE}\"")),
        "{stdout}"
    );
    let id = sim.table_id(TABLE).expect("the table exists now");
    assert!(stdout.contains(&id), "the id is reported: {stdout}");
    let writes = table_writes(&sim);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(
        (writes[0].0.as_str(), writes[0].1.as_str()),
        ("POST", "/api/v2/flows/datatables")
    );
    let sent: Value = serde_json::from_str(&writes[0].2).unwrap();
    assert_eq!(sent["name"], TABLE);
    assert_eq!(sent["schema"]["additionalProperties"], json!(false));

    let stored = sim.table_schema(&id).unwrap();
    assert_eq!(stored["required"], json!(["key"]));
    assert_eq!(stored["additionalProperties"], json!(false));
    let types = column_types(&stored);
    for (c, t) in daemon_columns() {
        assert_eq!(types[c], t, "{c}");
    }

    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("✓ schema"), "{stdout}");

    // Idempotent: a second run changes nothing.
    let out = run_bin(&["table", "create"], &cfg).await;
    let (stdout, _) = text(&out);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("already has every column"), "{stdout}");
    assert_eq!(table_writes(&sim).len(), 1);

    // And the daemon writes into it.
    let out = run_bin(&["once"], &cfg).await;
    assert!(out.status.success(), "{:?}", text(&out));
    assert_eq!(int(&sim.rows(&id)["Sales"], "Online"), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_create_adds_only_missing_columns_and_keeps_the_rest() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    add_busy_queue(&sim, "Sales");
    let id = sim.create_table(
        TABLE,
        &[
            ("Online", FieldType::Integer),
            ("Note", FieldType::String),
            ("Idle", FieldType::Integer),
            ("Vip", FieldType::Boolean),
        ],
    );
    let before = sim.table_schema(&id).unwrap();
    let row = json!({"key": "Sales", "Online": 1, "Idle": 1, "Note": "keep me", "Vip": true});
    sim.put_row(&id, row.clone());
    let cfg = config_file(&sim, &queues_toml(&["Sales"]));

    let out = run_bin(&["check"], &cfg).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout.contains("`Waiting` is missing"), "{stdout}");

    let out = run_bin(&["table", "create"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("added columns OnQueue, Interacting, Waiting, Writer, UpdatedAt"),
        "{stdout}"
    );
    assert_eq!(
        sim.table_id(TABLE).as_deref(),
        Some(id.as_str()),
        "same table"
    );
    let writes = table_writes(&sim);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].0, "PUT");
    assert_eq!(writes[0].1, format!("/api/v2/flows/datatables/{id}"));

    // Every column the daemon writes, with its type; the others kept as they were.
    let after = sim.table_schema(&id).unwrap();
    let types = column_types(&after);
    for (c, t) in daemon_columns() {
        assert_eq!(types[c], t, "{c}");
    }
    assert_eq!(types["Note"], "string");
    assert_eq!(types["Vip"], "boolean");
    assert_eq!(types.len(), daemon_columns().len() + 2);
    for c in ["key", "Online", "Note", "Idle", "Vip"] {
        assert_eq!(
            after["properties"][c], before["properties"][c],
            "{c} untouched"
        );
    }
    assert_eq!(Value::Object(sim.rows(&id)["Sales"].clone()), row);

    let out = run_bin(&["check"], &cfg).await;
    assert!(out.status.success(), "{:?}", text(&out));
    // The daemon's writes carry the extra columns over.
    let out = run_bin(&["once"], &cfg).await;
    assert!(out.status.success(), "{:?}", text(&out));
    let sales = &sim.rows(&id)["Sales"];
    assert_eq!(int(sales, "OnQueue"), 5);
    assert_eq!(sales["Note"], "keep me");
    assert_eq!(sales["Vip"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_create_refuses_a_wrong_typed_column_and_changes_nothing() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let id = sim.create_table(
        TABLE,
        &[
            ("Online", FieldType::Integer),
            ("OnQueue", FieldType::String),
            ("Idle", FieldType::Integer),
        ],
    );
    let before = sim.table_schema(&id).unwrap();
    let cfg = config_file(&sim, &queues_toml(&["Sales"]));
    let out = run_bin(&["table", "create"], &cfg).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.starts_with('✗'), "{stdout}");
    for part in [
        "`OnQueue` is string but must be integer",
        "cannot be retyped",
        "recreate the table",
        "unchanged",
    ] {
        assert!(stdout.contains(part), "{part}: {stdout}");
    }
    assert!(table_writes(&sim).is_empty(), "nothing sent");
    assert_eq!(sim.table_schema(&id).unwrap(), before);

    // A table referenced by an id that does not exist is not created under another name.
    let cfg = config_file(
        &sim,
        "[table]\nid = \"00000000-0000-0000-0000-000000000000\"\n\n[queues]\nnames = [\"Sales\"]\n",
    );
    let out = run_bin(&["table", "create"], &cfg).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no table with id"), "{stdout}");
    assert!(table_writes(&sim).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_turns_push_mode_on_and_off_without_a_restart() {
    let sim = spawn_sim(SimOptions::default()).await;
    let q = add_busy_queue(&sim, "Sales");
    let cfg = config_file(&sim, "");
    std::fs::write(&cfg.path, reload_config(&sim, &["Sales"], "")).unwrap();
    let mut p = Proc::spawn(&["--log-format", "json", "run"], &cfg, &[]);
    let addr = listen_addr(&p).await;
    eventually("the first cycle writes Sales", 20, || {
        std::future::ready(rows(&sim).contains_key("Sales").then_some(()))
    })
    .await;
    assert!(sim.channels().is_empty(), "poll mode opens no channel");

    let push = "mode = \"push\"\n\n[push]\nmin_interval = \"1s\"\n";
    std::fs::write(&cfg.path, reload_config(&sim, &["Sales"], push)).unwrap();
    p.signal("-HUP");
    let reloaded = wait_message(&p, "config reloaded", 1, 10).await;
    assert_eq!(
        reloaded["changed"], "schedule.mode, push.min_interval",
        "{reloaded}"
    );
    wait_message(&p, "push mode: rows follow", 1, 5).await;
    // The next cycle hands the selection to the session, which subscribes and connects.
    eventually("push connected after the reload", 25, || async {
        (metric(&addr, "genesys_queue_sync_push_connected").await == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(sim.channels().len(), 1);
    sim.set_waiting(&q, "voice", 9);
    eventually("the change reaches the row", 15, || {
        std::future::ready((int(&rows(&sim)["Sales"], "Waiting") == 10).then_some(()))
    })
    .await;

    std::fs::write(&cfg.path, reload_config(&sim, &["Sales"], "")).unwrap();
    p.signal("-HUP");
    wait_message(&p, "push mode off", 1, 10).await;
    eventually("push disconnected after the reload", 10, || async {
        (metric(&addr, "genesys_queue_sync_push_connected").await == Some(0.0)).then_some(())
    })
    .await;
    assert!(p.alive());
    assert_eq!(p.stop().await, Some(0));
}
