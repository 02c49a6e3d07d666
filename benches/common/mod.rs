//! What the benchmarks share: the simulated org they start in-process, the daemon binary
//! they run as a child process (with its JSON log parsed into events), the request-log
//! classifier and small helpers. Each bench includes this module (`mod common;`) and uses
//! part of it, hence `allow(dead_code)` where it is included.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use genesys_queue_sync::sync::columns::Columns;
use genesys_sim::{FieldType, LoggedRequest, RoutingStatus, Sim, SimOptions, SystemPresence};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// The columns' true values, shared with the tests.
#[path = "../../tests/support/truth.rs"]
pub mod truth;

pub const LATENCY: Duration = Duration::from_millis(50);
pub const TABLE: &str = "QueueAgentCounts";
pub const CLIENT_ID: &str = "sim-client-id";
pub const SECRET: &str = "sim-client-secret";
/// Agents shared by all queues (each queue has 4 of them as members): keeps the
/// simulator's per-queue work small at 5,000 queues while giving queues different values.
pub const AGENTS: usize = 40;

/// Endpoints as (label, column header), in table order.
pub const ENDPOINTS: &[&str] = &[
    "token",
    "queues GET",
    "table GET",
    "obs query",
    "rows GET",
    "row POST",
    "row PUT",
    "import POST",
    "upload PUT",
    "import GET",
    "notifications",
    "other",
];

pub fn endpoint(r: &LoggedRequest) -> &'static str {
    let p = r.path.as_str();
    match r.method.as_str() {
        "POST" if p == "/oauth/token" => "token",
        "POST" if p.ends_with("/observations/query") => "obs query",
        "GET" if p.starts_with("/api/v2/routing/queues") => "queues GET",
        "POST" if p.ends_with("/import/csv/jobs") => "import POST",
        "GET" if p.contains("/import/jobs/") => "import GET",
        "PUT" if p.starts_with("/uploads/") => "upload PUT",
        "GET" if p.starts_with("/api/v2/flows/datatables/") && p.ends_with("/rows") => "rows GET",
        "POST" if p.starts_with("/api/v2/flows/datatables/") && p.ends_with("/rows") => "row POST",
        "PUT" if p.starts_with("/api/v2/flows/datatables/") && p.contains("/rows/") => "row PUT",
        "GET" if p.starts_with("/api/v2/flows/datatables") => "table GET",
        _ if p.starts_with("/api/v2/notifications/") => "notifications",
        _ => "other",
    }
}

/// The fields of `columns` (after `key`) as simulator field types, for creating a table.
pub fn table_fields(columns: &Columns) -> Vec<(&str, FieldType)> {
    columns
        .fields()
        .into_iter()
        .skip(1)
        .filter_map(|(c, t)| FieldType::from_wire(t.as_str()).map(|ft| (c, ft)))
        .collect()
}

pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub fn wall_ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// The monotonic instant at a wall-clock time (now when it has passed).
pub fn instant_at(wall_target_ms: i64) -> Instant {
    let now_ms = wall_ms(Utc::now());
    let now = Instant::now();
    if wall_target_ms <= now_ms {
        now
    } else {
        now + Duration::from_millis((wall_target_ms - now_ms) as u64)
    }
}

/// A stable seed from a scenario name, so a scenario is the same whether run alone or not.
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ------------------------------------------------------------------ the simulated org

/// xorshift64*: deterministic, no dependency on a particular rand API.
pub struct Rng(pub u64);

impl Rng {
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

pub struct Org {
    pub sim: Sim,
    pub table_id: String,
    pub ids: Vec<String>,
    pub names: Vec<String>,
    /// Voice interactions waiting per queue, as last set.
    pub waiting: Vec<u32>,
    pub rng: Rng,
}

impl Org {
    /// A simulator (50 ms latency, no server-side rate limit) with `n` queues "Bench
    /// 00001".., 40 agents shared by them (4 per queue, in several presences and routing
    /// statuses), 0-5 voice interactions waiting per queue, and an empty table with
    /// `columns`. Seed the rows with [`Org::seed_rows`] once the org is complete.
    pub async fn start(n: usize, seed: u64, columns: &Columns) -> Org {
        let sim = Sim::start(SimOptions {
            client_id: CLIENT_ID.into(),
            client_secret: SECRET.into(),
            latency: LATENCY,
            // 0 = no server-side limit: only the daemon's own budget (240/min) applies.
            rate_limit_per_minute: 0,
            ..SimOptions::default()
        })
        .await
        .expect("simulator starts");
        let table_id = sim.create_table(TABLE, &table_fields(columns));
        let mut rng = Rng::seeded(seed);
        let names: Vec<String> = (0..n).map(|i| format!("Bench {:05}", i + 1)).collect();
        let ids: Vec<String> = names.iter().map(|name| sim.add_queue(name)).collect();
        let mut member_of: Vec<Vec<&str>> = vec![Vec::new(); AGENTS];
        for (i, id) in ids.iter().enumerate() {
            for k in 0..4 {
                member_of[(i + 7 * k) % AGENTS].push(id.as_str());
            }
        }
        for (j, queues) in member_of.iter().enumerate() {
            let (presence, routing) = match j % 8 {
                0 | 3 => (SystemPresence::OnQueue, RoutingStatus::Idle),
                1 | 2 => (SystemPresence::OnQueue, RoutingStatus::Interacting),
                4 => (SystemPresence::Available, RoutingStatus::OffQueue),
                5 => (SystemPresence::Break, RoutingStatus::OffQueue),
                6 => (SystemPresence::Offline, RoutingStatus::OffQueue),
                _ => (SystemPresence::OnQueue, RoutingStatus::Communicating),
            };
            sim.add_agent(presence, routing, queues);
        }
        let mut waiting = Vec::with_capacity(n);
        for id in &ids {
            let w = rng.below(6) as u32;
            sim.set_waiting(id, "voice", w);
            waiting.push(w);
        }
        Org {
            sim,
            table_id,
            ids,
            names,
            waiting,
            rng,
        }
    }

    /// Steady state: every queue's row with its true values, `UpdatedAt` spread uniformly
    /// over the last `refresh_after_s` (what a restarted daemon finds).
    pub fn seed_rows(&mut self, refresh_after_s: u64, columns: &Columns) {
        // The callers waiting at the start have waited since before any seeded row was
        // written (up to refresh_after ago), as in a table a daemon kept up to date.
        for (id, &w) in self.ids.iter().zip(&self.waiting) {
            self.sim.set_waiting(id, "voice", 0);
            for _ in 0..w {
                let waited = refresh_after_s + 1 + self.rng.below(120);
                self.sim
                    .add_waiting(id, "voice", Duration::from_secs(waited));
            }
        }
        let now = Utc::now();
        for (id, name) in self.ids.iter().zip(&self.names) {
            let t = self.sim.truth(id).expect("queue exists");
            let age = self.rng.below(refresh_after_s.max(1)) as i64;
            let updated_at = now - chrono::Duration::seconds(age);
            let mut row = serde_json::Map::new();
            row.insert("key".into(), json!(name));
            for c in columns.iter() {
                // What a daemon wrote at UpdatedAt: an age as of then (a flow adds the
                // row's age), every count as now (unchanged since).
                let at = if c.unit() == genesys_queue_sync::sync::columns::Unit::Seconds {
                    updated_at
                } else {
                    now
                };
                row.insert(c.name.clone(), json!(truth::expected(&t, &c.name, at)));
            }
            row.insert("UpdatedAt".into(), json!(ts(updated_at)));
            self.sim.put_row(&self.table_id, Value::Object(row));
        }
    }
}

/// The daemon's config for the org: loopback API, `[http]` as given, rows keyed by name,
/// queues `Bench *`, `[schedule]` as given (`cron = "..."` and any more keys), and
/// `refresh_after`; append more tables to it.
pub fn config(
    sim: &Sim,
    http: &str,
    write_mode: &str,
    schedule: &str,
    refresh_after_s: u64,
) -> String {
    let mut t = format!(
        "[genesys]\napi_url = \"{}\"\nclient_id = \"{CLIENT_ID}\"\n\n[http]\n{http}\n\n\
         [table]\nname = \"{TABLE}\"\nkey = \"name\"\nwrite_mode = \"{write_mode}\"\n",
        sim.base_url()
    );
    let _ = write!(
        t,
        "\n[queues]\nmatch = [\"Bench *\"]\n\n[schedule]\n{schedule}\n\n[rows]\nrefresh_after = \"{refresh_after_s}s\"\n",
    );
    t
}

// ------------------------------------------------------------------ the daemon process

#[derive(Debug)]
pub enum Event {
    CycleDone {
        at: Instant,
        wall: DateTime<Utc>,
        duration_ms: u64,
        written: u64,
        deferred: u64,
        failed: u64,
    },
    CycleFailed {
        at: Instant,
        wall: DateTime<Utc>,
        message: String,
    },
    TickSkipped,
    Exited,
}

/// `genesys-queue-sync run --config <tmp> --log-format json` as a child process; its
/// "cycle done" / "cycle failed" / "tick skipped" log events arrive on `events`, the last
/// 30 other lines are kept for error reports.
pub struct Daemon {
    child: tokio::process::Child,
    pub pid: u32,
    pub events: mpsc::UnboundedReceiver<Event>,
    tail: Arc<Mutex<VecDeque<String>>>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    pub fn spawn(config: &str, env: &[(String, String)]) -> Daemon {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config).expect("config written");
        let bin = std::env::var("DAEMON_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_genesys-queue-sync").to_owned());
        let wrap: Vec<String> = std::env::var("DAEMON_WRAP")
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = tokio::process::Command::new(first);
                c.args(rest).arg(&bin);
                c
            }
            None => tokio::process::Command::new(&bin),
        };
        let mut child = cmd
            .arg("run")
            .arg("--config")
            .arg(&path)
            .args(["--log-format", "json"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("GENESYSCLOUD_OAUTHCLIENT_SECRET", SECRET)
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("daemon binary starts");
        let pid = child.id().expect("child pid");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, events) = mpsc::unbounded_channel();
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        let keep = tail.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let at = Instant::now();
                let wall = Utc::now();
                let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                let msg = v.get("message").and_then(Value::as_str).unwrap_or("");
                let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
                let ev = if msg == "cycle done" {
                    Some(Event::CycleDone {
                        at,
                        wall,
                        duration_ms: n("duration_ms"),
                        written: n("written"),
                        deferred: n("deferred"),
                        failed: n("failed"),
                    })
                } else if msg.starts_with("cycle failed") {
                    Some(Event::CycleFailed {
                        at,
                        wall,
                        message: msg.to_owned(),
                    })
                } else if msg.starts_with("schedule tick skipped") {
                    Some(Event::TickSkipped)
                } else {
                    None
                };
                if ev.is_none() || matches!(ev, Some(Event::CycleFailed { .. })) {
                    let mut t = keep.lock().unwrap();
                    t.push_back(line.clone());
                    if t.len() > 30 {
                        t.pop_front();
                    }
                }
                if let Some(ev) = ev {
                    let _ = tx.send(ev);
                }
            }
            let _ = tx.send(Event::Exited);
        });
        Daemon {
            child,
            pid,
            events,
            tail,
            _dir: dir,
        }
    }

    /// The child's utime + stime in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let Ok(s) = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)) else {
            return 0;
        };
        let Some(close) = s.rfind(')') else { return 0 };
        let f: Vec<&str> = s[close + 1..].split_whitespace().collect();
        // After "pid (comm)": state is field 3, utime field 14, stime field 15.
        let field = |i: usize| {
            f.get(i - 3)
                .and_then(|x| x.parse::<u64>().ok())
                .unwrap_or(0)
        };
        field(14) + field(15)
    }

    /// A `/proc/<pid>/status` value in kB (`"VmHWM:"`, `"VmRSS:"`).
    pub fn status_kb(&self, key: &str) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with(key))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    }

    /// The last log lines that were not cycle events.
    pub fn tail(&self) -> String {
        self.tail
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn stop(mut self) {
        if std::env::var_os("DAEMON_WRAP").is_some() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            let _ = tokio::time::timeout(Duration::from_secs(120), self.child.wait()).await;
        }
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

/// The system's clock ticks per second (for `/proc/<pid>/stat`).
pub fn clk_tck() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}
