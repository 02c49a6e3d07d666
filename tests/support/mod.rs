//! Shared test helpers: a seeded simulator, config files, the binary, the sync pipeline
//! driven cycle by cycle, the daemon in-process, request-log filters, polling, and the
//! captured log lines ([`logs`]), the documented columns' true values ([`truth`]).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod logs;
pub mod truth;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use genesys_queue_sync::config::Config;
use genesys_queue_sync::daemon::{self, RunOptions};
use genesys_queue_sync::genesys::{Client, RetryPolicy};
use genesys_queue_sync::loopback;
use genesys_queue_sync::metrics::Metrics;
use genesys_queue_sync::schedule::Exit;
use genesys_queue_sync::sync::{CycleReport, Syncer};
use genesys_sim::{FieldType, LoggedRequest, RoutingStatus, Sim, SimOptions, SystemPresence};
use serde_json::{Map, Value};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "sim-client-secret";
pub const TABLE: &str = "QueueAgentCounts";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_genesys-queue-sync")
}

pub const COLUMNS: &[(&str, FieldType)] = &[
    ("Online", FieldType::Integer),
    ("OnQueue", FieldType::Integer),
    ("Idle", FieldType::Integer),
    ("Interacting", FieldType::Integer),
    ("Waiting", FieldType::Integer),
    ("UpdatedAt", FieldType::String),
];

/// A simulator with the default table and no queues.
pub async fn spawn_sim(opts: SimOptions) -> Sim {
    let sim = Sim::start(opts).await.expect("sim starts");
    sim.create_table(TABLE, COLUMNS);
    sim
}

/// A simulator whose heartbeat (150 ms) is fast enough for a silent socket to be noticed
/// within a test.
pub async fn fast_heartbeat_sim() -> Sim {
    spawn_sim(SimOptions {
        notifications: genesys_sim::NotificationOptions {
            heartbeat: Duration::from_millis(150),
            ..genesys_sim::NotificationOptions::default()
        },
        ..SimOptions::default()
    })
    .await
}

/// A simulator with one busy queue, Sales ([`add_busy_queue`]), and a config file for the
/// binary that selects it.
pub async fn sales() -> (Sim, ConfigFile) {
    let sim = spawn_sim(SimOptions::default()).await;
    add_busy_queue(&sim, "Sales");
    let cfg = config_file(&sim, &queues_toml(&["Sales"]));
    (sim, cfg)
}

/// Adds a queue with a known mix of agents: 2 idle + 3 interacting on queue,
/// 1 available off queue, 1 on break, 2 offline; 4 voice + 1 chat waiting.
pub fn add_busy_queue(sim: &Sim, name: &str) -> String {
    let id = sim.add_queue(name);
    let q = [id.as_str()];
    for _ in 0..2 {
        sim.add_agent(SystemPresence::OnQueue, RoutingStatus::Idle, &q);
    }
    for _ in 0..3 {
        sim.add_agent(SystemPresence::OnQueue, RoutingStatus::Interacting, &q);
    }
    sim.add_agent(SystemPresence::Available, RoutingStatus::OffQueue, &q);
    sim.add_agent(SystemPresence::Break, RoutingStatus::OffQueue, &q);
    for _ in 0..2 {
        sim.add_agent(SystemPresence::Offline, RoutingStatus::OffQueue, &q);
    }
    sim.set_waiting(&id, "voice", 4);
    sim.set_waiting(&id, "chat", 1);
    id
}

/// The row values add_busy_queue's queue must get.
pub fn busy_values() -> [(&'static str, i64); 5] {
    [
        ("Online", 7),
        ("OnQueue", 5),
        ("Idle", 2),
        ("Interacting", 3),
        ("Waiting", 5),
    ]
}

/// The shipped `[columns]` example: the 13 columns of the documentation, in their order.
pub const THIRTEEN: &str = include_str!("../../examples/columns.toml");

/// The column names of [`THIRTEEN`], in written order.
pub fn thirteen_names() -> Vec<String> {
    let file: toml::Table = THIRTEEN.parse().expect("examples/columns.toml is TOML");
    file["columns"]
        .as_table()
        .expect("examples/columns.toml has [columns]")
        .keys()
        .cloned()
        .collect()
}

pub fn table_id(sim: &Sim) -> String {
    sim.table_id(TABLE).expect("table exists")
}

pub fn rows(sim: &Sim) -> BTreeMap<String, Map<String, Value>> {
    sim.rows(&table_id(sim))
}

pub fn int(row: &Map<String, Value>, col: &str) -> i64 {
    row.get(col)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("{col} missing in {row:?}"))
}

/// A config file for the binary, pointing at `sim`.
pub struct ConfigFile {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

pub fn config_file(sim: &Sim, body: &str) -> ConfigFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let text = format!(
        "[genesys]\napi_url = \"{}\"\nclient_id = \"sim-client-id\"\nrequest_timeout = \"2s\"\n\n[http]\nlisten = \"off\"\n\n{body}",
        sim.base_url()
    );
    std::fs::write(&path, text).unwrap();
    ConfigFile { dir, path }
}

pub fn queues_toml(names: &[&str]) -> String {
    let list: Vec<String> = names.iter().map(|n| format!("{:?}", n)).collect();
    format!(
        "[table]\nname = \"{TABLE}\"\n\n[queues]\nnames = [{}]\n",
        list.join(", ")
    )
}

/// The binary with `args`, then `--config <config>`; its environment is the secret, PATH
/// and `env`, nothing else; killed when dropped.
pub fn bin_command(args: &[&str], config: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env_clear()
        .env("GENESYSCLOUD_OAUTHCLIENT_SECRET", SECRET)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .kill_on_drop(true);
    cmd
}

/// Runs the binary to completion with the secret in the environment.
pub async fn run_bin(args: &[&str], cfg: &ConfigFile) -> Output {
    run_bin_with(args, cfg, &[]).await
}

/// Runs the binary to completion with the secret and `env` in the environment.
pub async fn run_bin_with(args: &[&str], cfg: &ConfigFile, env: &[(&str, &str)]) -> Output {
    tokio::time::timeout(
        Duration::from_secs(60),
        bin_command(args, &cfg.path, env).output(),
    )
    .await
    .expect("binary finished within 60 s")
    .expect("binary runs")
}

pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A config for in-process runs (bypasses the file's 10 s minimum period to keep tests fast).
pub fn config(sim: &Sim, names: &[&str], cron: &str) -> Config {
    let creds = SimOptions::default();
    let base_url = sim.base_url();
    let org = loopback::LocalOrg {
        base_url: &base_url,
        client_id: &creds.client_id,
        client_secret: &creds.client_secret,
        table: TABLE,
    };
    let names = names.iter().map(|s| s.to_string()).collect();
    let mut c = loopback::config(&org, names, cron).unwrap();
    c.request_timeout = Duration::from_secs(2);
    // A 1 s schedule gets 1/60 of the per-minute budget per cycle: give in-process runs a
    // budget that lets a cycle write ~100 rows, as a 60 s period would at 6,000/min.
    c.requests_per_minute = 6000;
    c
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(5),
    }
}

/// A client for `cfg` with quick retries.
pub fn client(cfg: &Config) -> Client {
    Client::with_policy(cfg, Metrics::new(), CancellationToken::new(), fast_retry()).unwrap()
}

/// The sync pipeline for `cfg`, driven cycle by cycle by the test (no scheduler).
pub fn syncer(cfg: Config) -> Syncer {
    syncer_with(cfg, fast_retry(), CancellationToken::new())
}

pub fn syncer_with(cfg: Config, retry: RetryPolicy, shutdown: CancellationToken) -> Syncer {
    let client = Client::with_policy(&cfg, Metrics::new(), shutdown, retry).unwrap();
    Syncer::new(client, Arc::new(cfg))
}

/// Runs the daemon in-process until `cycles` cycles have finished; returns the reports.
pub async fn run_cycles(cfg: Config, cycles: usize) -> (Exit, Vec<CycleReport>) {
    let shutdown = CancellationToken::new();
    let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (r, stop) = (reports.clone(), shutdown.clone());
    let mut opts = RunOptions::new(shutdown);
    opts.retry = fast_retry();
    opts.on_cycle = Some(Arc::new(move |rep: &CycleReport| {
        let mut v = r.lock().unwrap();
        v.push(rep.clone());
        if v.len() >= cycles {
            stop.cancel();
        }
    }));
    let exit = tokio::time::timeout(Duration::from_secs(60), daemon::run(cfg, opts))
        .await
        .expect("daemon stops within 60 s")
        .expect("daemon runs");
    let v = std::mem::take(&mut *reports.lock().unwrap());
    (exit, v)
}

pub fn count(reqs: &[LoggedRequest], method: &str, path_contains: &str) -> usize {
    reqs.iter()
        .filter(|r| r.method == method && r.path.contains(path_contains))
        .count()
}

pub fn token_requests(reqs: &[LoggedRequest]) -> usize {
    count(reqs, "POST", "/oauth/token")
}

pub fn row_writes(reqs: &[LoggedRequest]) -> usize {
    reqs.iter()
        .filter(|r| (r.method == "POST" || r.method == "PUT") && r.path.contains("/rows"))
        .count()
}

pub fn is_heartbeat(r: &LoggedRequest) -> bool {
    r.path.contains("_heartbeat") || r.body.contains("\"_heartbeat\"")
}

/// Row writes (POST/PUT) of queue rows, the heartbeat row left out.
pub fn queue_writes(reqs: &[LoggedRequest]) -> Vec<&LoggedRequest> {
    reqs.iter()
        .filter(|r| (r.method == "POST" || r.method == "PUT") && r.path.contains("/rows"))
        .filter(|r| !is_heartbeat(r))
        .collect()
}

/// Polls `f` every 100 ms until it yields Some, or panics naming `what` after `secs`.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An HTTP client for the daemon's loopback listener.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Extra work after each cycle, given the cycle's number (from 1) and its report.
pub type Script = Box<dyn Fn(usize, &CycleReport) + Send + Sync>;

/// The daemon running in-process with its health listener on 127.0.0.1:0.
pub struct Daemon {
    pub base: String,
    pub http: reqwest::Client,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<Exit>>,
    pub reports: Arc<std::sync::Mutex<Vec<CycleReport>>>,
}

impl Daemon {
    pub async fn start(cfg: Config) -> Daemon {
        Self::start_with(cfg, Box::new(|_, _| {})).await
    }

    pub async fn start_with(cfg: Config, script: Script) -> Daemon {
        Self::start_tuned(cfg, script, |_| {}).await
    }

    /// As [`Self::start_with`], with the run options adjusted by `tune` (push settings).
    pub async fn start_tuned(
        cfg: Config,
        script: Script,
        tune: impl FnOnce(&mut RunOptions),
    ) -> Daemon {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let reports = Arc::new(std::sync::Mutex::new(Vec::new()));
        let r = reports.clone();
        let mut opts = RunOptions::new(shutdown.clone());
        opts.listener = Some(listener);
        opts.retry = fast_retry();
        opts.on_cycle = Some(Arc::new(move |rep: &CycleReport| {
            let n = {
                let mut v = r.lock().unwrap();
                v.push(rep.clone());
                v.len()
            };
            script(n, rep);
        }));
        tune(&mut opts);
        let task = tokio::spawn(daemon::run(cfg, opts));
        let http = http();
        Daemon {
            base,
            http,
            shutdown,
            task,
            reports,
        }
    }

    /// GET on the health listener: (status, content type, body).
    pub async fn get(&self, path: &str) -> (u16, Option<String>, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, ctype, resp.text().await.unwrap())
    }

    /// `/readyz` as (status, parsed JSON body).
    pub async fn ready(&self) -> (u16, Value) {
        let (status, ctype, body) = self.get("/readyz").await;
        assert!(
            ctype.as_deref().is_some_and(|c| c.contains("json")),
            "/readyz answers JSON, got {ctype:?}"
        );
        (status, serde_json::from_str(&body).unwrap())
    }

    pub async fn assert_live(&self) {
        let (status, _, body) = self.get("/healthz").await;
        assert_eq!(status, 200, "/healthz while cycles run: {body}");
    }

    pub fn cycles(&self) -> usize {
        self.reports.lock().unwrap().len()
    }

    pub fn reports(&self) -> Vec<CycleReport> {
        self.reports.lock().unwrap().clone()
    }

    pub async fn stop(self) -> Exit {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("daemon stops within 15 s")
            .expect("daemon task did not panic")
            .expect("daemon ran")
    }
}

/// Waits until `/readyz` answers `status`; returns its JSON body.
pub async fn ready_becomes(d: &Daemon, status: u16, what: &str) -> Value {
    eventually(what, 15, || async {
        let (s, body) = d.ready().await;
        (s == status).then_some(body)
    })
    .await
}

/// Waits until `n` cycles have finished, failing at once if the daemon stopped.
pub async fn wait_cycles(d: &Daemon, n: usize, secs: u64) {
    eventually(&format!("{n} cycles"), secs, || async {
        assert!(!d.task.is_finished(), "the daemon stopped");
        (d.cycles() >= n).then_some(())
    })
    .await
}
