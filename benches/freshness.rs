//! Freshness benchmark for issue 10: poll mode and push mode side by side, the real daemon
//! binary against the simulated org.
//!
//! ```sh
//! cargo bench --bench freshness                  # poll and push, 10 / 100 / 1,000 queues, ~14 min
//! cargo bench --bench freshness -- --quick       # 100 queues only, 2 minutes of changes, ~4 min
//! cargo bench --bench freshness -- --only push/100   # one scenario (also push/, /1000, poll)
//! cargo bench --bench freshness -- --minutes 5   # minutes of changes per scenario (default 3)
//! cargo bench --bench freshness -- --serial      # poll and push one after the other, not side by side
//! FRESH_DEBUG=1 cargo bench --bench freshness -- --only push/1000   # also list re-PUTs, slow changes, requests per 10 s
//! ```
//!
//! Each scenario starts a fresh simulator in this process (50 ms latency per request, no
//! server-side rate limit, so only the daemon's own budget of 240/min applies) with N
//! queues: the 40 shared agents of the scale bench plus one agent of each queue's own (On
//! Queue, Idle), so an agent's change touches one queue. The table is seeded with every
//! queue's true values and `UpdatedAt` spread over the last `refresh_after` (10 min: the
//! steady state a restart finds), then `genesys-queue-sync run` starts as a child process
//! with the cron once a minute (the reconciliation poll in push mode), `[schedule] mode =
//! "poll"` (the default) or `"push"` with `[push] min_interval = "5s"`.
//!
//! The measurement window is whole poll periods of the steady state: it opens when a cron
//! cycle is done after the start-up cycle (and, in push mode, after every channel is
//! connected with all queues subscribed and the reconciliation poll that follows a connect)
//! and closes when the `--minutes`-th cron cycle after it is done. So both modes are
//! measured over the same number of cron cycles, each cycle's writes inside the window, and
//! the start-up burst outside it. 10 % of the queues per minute of the window (at least
//! one) change at moments drawn uniformly over the window minus its last 10 s (seeded RNG,
//! the same for poll and push). A change is one of: an interaction starts or stops waiting
//! (voice), or the queue's own agent goes Idle -> Interacting or back, through the
//! simulator's API. A queue with a change not yet seen in the table gets no second one, so
//! every change has one value to wait for. A watcher reads the simulator's table in-process
//! every 100 ms (an accessor, not an API request) and takes a change as seen when the
//! queue's row holds all five columns' new true values; freshness is the time from the
//! change to that read. After the window the watcher keeps looking for up to 75 s (a poll
//! period and a cycle); what is still unseen then is counted as never seen.
//!
//! API requests and daemon CPU per minute are the simulator's request log and the child's
//! CPU time over the window, divided by the window's length (the watcher sends no request).
//! By default the poll and the push scenario of a size run side by side, each with its own
//! simulator and daemon; the sizes run one after the other.
//!
//! Not a timed test: it prints a markdown table to paste into the README.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with benches/scale.rs; each bench uses part of it.
#[allow(dead_code)]
mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::Utc;
use common::{Daemon, Event, LATENCY, Org, clk_tck, endpoint, seed_of, thousands};
use genesys_queue_sync::sync::columns::Columns;
use genesys_sim::{RoutingStatus, SystemPresence};
use tokio::time::Instant;

/// How often the watcher reads the simulator's table.
const WATCH: Duration = Duration::from_millis(100);
/// After the last change, how long the watcher keeps looking.
const DRAIN: Duration = Duration::from_secs(75);
/// `[rows] refresh_after`: with 10 min, poll mode at 1,000 queues fits the 240 budget
/// (issue 5's 1,000-queue target uses the same).
const REFRESH_AFTER_S: u64 = 600;
/// No change in the window's last seconds, so push's writes of the last changes fall
/// inside it (a change is written within `min_interval` of the event).
const CHANGE_MARGIN: Duration = Duration::from_secs(10);
/// Share of the queues changing per minute, in percent.
const CHANGE_PCT: u64 = 10;
/// `[push] min_interval`.
const MIN_INTERVAL: &str = "5s";
/// The daemon's request budget (`[limits] requests_per_minute`, default).
const BUDGET: f64 = 240.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Poll,
    Push,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Poll => "poll",
            Mode::Push => "push",
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    mode: Mode,
    queues: usize,
    minutes: u64,
}

impl Scenario {
    fn name(&self) -> String {
        format!("{} {} q", self.mode.name(), thousands(self.queues as u64))
    }

    /// `--only MODE/N`: either side may be empty ("push/", "/100"); no slash = mode only.
    fn selected(&self, filters: &[String]) -> bool {
        filters.is_empty()
            || filters.iter().any(|f| {
                let (m, n) = f.split_once('/').unwrap_or((f.as_str(), ""));
                (m.is_empty() || m.eq_ignore_ascii_case(self.mode.name()))
                    && (n.is_empty() || n.replace([',', '_'], "") == self.queues.to_string())
            })
    }

    fn config(&self, org: &Org, cron: &str) -> String {
        let mut schedule = format!("cron = \"{cron}\"");
        if self.mode == Mode::Push {
            schedule.push_str("\nmode = \"push\"");
        }
        let mut t = common::config(
            &org.sim,
            "listen = \"off\"",
            "rows",
            &schedule,
            REFRESH_AFTER_S,
        );
        if self.mode == Mode::Push {
            let _ = write!(t, "\n[push]\nmin_interval = \"{MIN_INTERVAL}\"\n");
        }
        t
    }
}

// ------------------------------------------------------------------ changes

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    WaitingUp,
    WaitingDown,
    AgentBusy,
    AgentIdle,
}

/// A change made in the simulator, and what the queue's row must then hold.
struct Change {
    queue: usize,
    kind: Kind,
    at: Instant,
    expected: Vec<(String, u64)>,
    seen: Option<Duration>,
}

/// The org plus each queue's own agent (On Queue; Idle or Interacting).
struct Bench {
    org: Org,
    columns: Columns,
    agents: Vec<String>,
    busy: Vec<bool>,
    /// Index into `changes` of the queue's change not yet seen.
    pending: Vec<Option<usize>>,
    changes: Vec<Change>,
}

impl Bench {
    async fn build(n: usize, seed: u64) -> Bench {
        let columns = Columns::default();
        let mut org = Org::start(n, seed, &columns).await;
        let agents = org
            .ids
            .iter()
            .map(|q| {
                org.sim
                    .add_agent(SystemPresence::OnQueue, RoutingStatus::Idle, &[q.as_str()])
            })
            .collect();
        org.seed_rows(REFRESH_AFTER_S, &columns);
        Bench {
            org,
            columns,
            agents,
            busy: vec![false; n],
            pending: vec![None; n],
            changes: Vec::new(),
        }
    }

    /// One change on a random queue with nothing pending; false when every queue has.
    fn change(&mut self) -> bool {
        let free: Vec<usize> = (0..self.pending.len())
            .filter(|&q| self.pending[q].is_none())
            .collect();
        if free.is_empty() {
            return false;
        }
        let q = free[self.org.rng.below(free.len() as u64) as usize];
        let id = self.org.ids[q].clone();
        let kind = if self.org.rng.below(2) == 0 {
            if self.org.waiting[q] == 0 || self.org.rng.below(2) == 0 {
                Kind::WaitingUp
            } else {
                Kind::WaitingDown
            }
        } else if self.busy[q] {
            Kind::AgentIdle
        } else {
            Kind::AgentBusy
        };
        match kind {
            Kind::WaitingUp | Kind::WaitingDown => {
                let w = if kind == Kind::WaitingUp {
                    self.org.waiting[q] + 1
                } else {
                    self.org.waiting[q] - 1
                };
                self.org.waiting[q] = w;
                self.org.sim.set_waiting(&id, "voice", w);
            }
            Kind::AgentBusy | Kind::AgentIdle => {
                self.busy[q] = kind == Kind::AgentBusy;
                let routing = if self.busy[q] {
                    RoutingStatus::Interacting
                } else {
                    RoutingStatus::Idle
                };
                self.org
                    .sim
                    .set_agent(&self.agents[q], SystemPresence::OnQueue, routing);
            }
        }
        let at = Instant::now();
        let truth = self.org.sim.truth(&id).expect("queue exists");
        let now = Utc::now();
        let expected = self
            .columns
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    common::truth::expected(&truth, &c.name, now),
                )
            })
            .collect();
        self.pending[q] = Some(self.changes.len());
        self.changes.push(Change {
            queue: q,
            kind,
            at,
            expected,
            seen: None,
        });
        true
    }

    /// Reads the table once; marks every pending change whose row now holds its values.
    fn watch(&mut self) {
        if self.pending.iter().all(Option::is_none) {
            return;
        }
        let rows = self.org.sim.rows(&self.org.table_id);
        let now = Instant::now();
        for q in 0..self.pending.len() {
            let Some(i) = self.pending[q] else { continue };
            let c = &mut self.changes[i];
            let Some(row) = rows.get(&self.org.names[c.queue]) else {
                continue;
            };
            let holds = c.expected.iter().all(|(col, v)| {
                row.get(col)
                    .and_then(serde_json::Value::as_f64)
                    .is_some_and(|x| x == *v as f64)
            });
            if holds {
                c.seen = Some(now.saturating_duration_since(c.at));
                self.pending[q] = None;
            }
        }
    }

    fn unseen(&self) -> usize {
        self.pending.iter().filter(|p| p.is_some()).count()
    }
}

// ------------------------------------------------------------------ one scenario

#[derive(Debug, Default, Clone)]
struct Outcome {
    name: String,
    mode: Option<Mode>,
    queues: usize,
    /// Length of the measurement window (`minutes` cron periods, give or take a cycle).
    window_s: f64,
    changes: usize,
    /// Change moments that found every queue with a change pending (none made).
    skipped: usize,
    /// Seconds from change to row, sorted.
    fresh: Vec<f64>,
    never_seen: usize,
    /// Never-seen changes by kind.
    never_by_kind: BTreeMap<&'static str, usize>,
    requests: usize,
    /// Row PUTs of a row already PUT less than 60 s before (heartbeat included).
    rewrites: usize,
    by_endpoint: BTreeMap<&'static str, usize>,
    /// Observation events the simulator delivered over the window.
    events: u64,
    sockets_opened: u64,
    channels: usize,
    push_connected: bool,
    cpu_ms_per_min: f64,
    hwm_kb: u64,
    problems: Vec<String>,
}

impl Outcome {
    /// Minutes in the measurement window.
    fn window_min(&self) -> f64 {
        (self.window_s / 60.0).max(1.0 / 60.0)
    }

    fn req_per_min(&self) -> f64 {
        self.requests as f64 / self.window_min()
    }

    /// Nearest-rank percentile of the freshness, in seconds.
    fn pct(&self, p: f64) -> Option<f64> {
        if self.fresh.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.fresh.len() as f64).ceil() as usize;
        Some(self.fresh[rank.clamp(1, self.fresh.len()) - 1])
    }

    fn max(&self) -> Option<f64> {
        self.fresh.last().copied()
    }
}

/// Every channel connected and all queues subscribed.
fn push_ready(org: &Org) -> bool {
    let ch = org.sim.channels();
    !ch.is_empty()
        && ch.iter().all(|c| c.connected)
        && ch.iter().map(|c| c.topics).sum::<usize>() >= org.ids.len()
}

async fn run_scenario(sc: Scenario, clk_tck: u64) -> Outcome {
    let name = sc.name();
    let mut out = Outcome {
        name: name.clone(),
        mode: Some(sc.mode),
        queues: sc.queues,
        ..Outcome::default()
    };
    let began = Instant::now();
    // Seeded by the size only: poll and push see the same org and the same changes.
    let mut b = Bench::build(sc.queues, seed_of(&format!("freshness {}", sc.queues))).await;
    // Once a minute, the first tick ~20 s after start (after the start-up cycle).
    let cron = format!("{} * * * * *", (Utc::now().timestamp() + 20).rem_euclid(60));
    let mut daemon = Daemon::spawn(&sc.config(&b.org, &cron), &[]);

    let startup_deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match tokio::time::timeout_at(startup_deadline, daemon.events.recv()).await {
            Ok(Some(Event::TickSkipped)) => continue,
            Ok(Some(Event::CycleDone { .. })) => break,
            other => {
                out.problems
                    .push(format!("no start-up cycle: {other:?}\n{}", daemon.tail()));
                println!("  {name:<16} FAILED: {}", out.problems.join("; "));
                daemon.stop().await;
                b.org.sim.shutdown();
                return out;
            }
        }
    }
    if sc.mode == Mode::Push {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !push_ready(&b.org) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        out.push_connected = push_ready(&b.org);
        if !out.push_connected {
            out.problems.push(format!(
                "push not connected 30 s after start-up (channels: {:?}); measured anyway\n{}",
                b.org.sim.channels(),
                daemon.tail()
            ));
        }
        // A (re)connect is followed by one reconciliation poll: a start-up cost, left out
        // of the steady state measured below.
        let until = Instant::now() + Duration::from_secs(15);
        while let Ok(Some(ev)) = tokio::time::timeout_at(until, daemon.events.recv()).await {
            if matches!(ev, Event::CycleDone { .. }) {
                break;
            }
        }
    }

    // The window opens when the next cycle is done (a cron cycle: the start-up cycle and
    // push's reconnect poll are behind us).
    let open_deadline = Instant::now() + Duration::from_secs(90);
    let t0 = loop {
        match tokio::time::timeout_at(open_deadline, daemon.events.recv()).await {
            Ok(Some(Event::CycleDone { at, .. })) => break at,
            Ok(Some(Event::Exited) | None) | Err(_) => {
                out.problems.push(format!(
                    "no cron cycle to open the window\n{}",
                    daemon.tail()
                ));
                println!("  {name:<16} FAILED: {}", out.problems.join("; "));
                daemon.stop().await;
                b.org.sim.shutdown();
                return out;
            }
            Ok(Some(_)) => {}
        }
    };
    let stats0 = b.org.sim.notification_stats();
    let cpu0 = daemon.cpu_ticks();

    // The change moments: 10 % of the queues per minute (at least one), uniform over the
    // window minus its last 10 s.
    let per_minute = ((sc.queues as u64 * CHANGE_PCT).div_ceil(100)).max(1);
    let span_ms = sc.minutes * 60_000 - CHANGE_MARGIN.as_millis() as u64;
    let mut moments: Vec<u64> = (0..per_minute * sc.minutes)
        .map(|_| b.org.rng.below(span_ms))
        .collect();
    moments.sort_unstable();

    let mut next = moments.iter().map(|ms| t0 + Duration::from_millis(*ms));
    let mut next_at = next.next();
    let mut watch = tokio::time::interval(WATCH);
    watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Closed by the `minutes`-th cycle done after t0.
    let mut cycles = 0;
    let mut t1: Option<Instant> = None;
    let mut stats1 = None;
    let mut cpu1 = None;
    // Safety net: a daemon whose cycles stopped still ends the scenario.
    let hard_end = t0 + Duration::from_secs(sc.minutes * 60 + 60) + DRAIN;
    loop {
        let change_at = next_at;
        tokio::select! {
            _ = watch.tick() => {
                b.watch();
                let now = Instant::now();
                let drained = t1.is_some_and(|t1| b.unseen() == 0 || now >= t1 + DRAIN);
                if (next_at.is_none() && drained) || now >= hard_end {
                    break;
                }
            }
            () = async {
                match change_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                if b.change() {
                    out.changes += 1;
                } else {
                    out.skipped += 1;
                }
                next_at = next.next();
            }
            ev = daemon.events.recv() => match ev {
                Some(Event::CycleDone { at, .. }) if t1.is_none() => {
                    cycles += 1;
                    if cycles == sc.minutes {
                        t1 = Some(at);
                        stats1 = Some(b.org.sim.notification_stats());
                        cpu1 = Some(daemon.cpu_ticks());
                    }
                }
                Some(Event::CycleFailed { message, .. }) => {
                    out.problems.push(format!("cycle failed: {message}"));
                }
                Some(Event::Exited) | None => {
                    out.problems.push(format!("daemon exited\n{}", daemon.tail()));
                    break;
                }
                Some(_) => {}
            },
        }
    }
    let t1 = t1.unwrap_or_else(|| {
        out.problems.push(format!(
            "only {cycles} of {} cron cycles in the window",
            sc.minutes
        ));
        Instant::now()
    });
    out.window_s = t1.saturating_duration_since(t0).as_secs_f64();
    let stats1 = stats1.unwrap_or_else(|| b.org.sim.notification_stats());
    let cpu1 = cpu1.unwrap_or_else(|| daemon.cpu_ticks());
    out.hwm_kb = daemon.status_kb("VmHWM:");
    daemon.stop().await;

    let debug = std::env::var_os("FRESH_DEBUG").is_some();
    let rel = |t: Instant| t.saturating_duration_since(t0).as_secs_f64();
    let requests = b.org.sim.requests();
    let mut last_put: BTreeMap<String, Instant> = BTreeMap::new();
    for r in requests.iter().filter(|r| r.at >= t0 && r.at < t1) {
        out.requests += 1;
        let ep = endpoint(r);
        *out.by_endpoint.entry(ep).or_default() += 1;
        if ep == "row PUT"
            && let Some(prev) = last_put.insert(r.path.clone(), r.at)
            && r.at.saturating_duration_since(prev) < Duration::from_secs(60)
        {
            out.rewrites += 1;
            if debug {
                println!(
                    "    {name}: re-PUT {} at +{:.1} s, last PUT at +{:.1} s",
                    r.path,
                    rel(r.at),
                    rel(prev)
                );
            }
        }
    }
    if debug {
        for c in b
            .changes
            .iter()
            .filter(|c| c.seen.is_none_or(|d| d.as_secs() >= 5))
        {
            println!(
                "    {name}: SLOW {:?} on {} at +{:.1} s, seen after {}",
                c.kind,
                b.org.names[c.queue],
                rel(c.at),
                c.seen
                    .map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
            );
        }
        // Requests per 10 s from the daemon's start, by endpoint.
        let mut buckets: BTreeMap<u64, BTreeMap<&'static str, usize>> = BTreeMap::new();
        for r in requests.iter() {
            let k = r.at.saturating_duration_since(began).as_secs() / 10;
            *buckets
                .entry(k)
                .or_default()
                .entry(endpoint(r))
                .or_default() += 1;
        }
        println!(
            "    {name}: window from +{:.1} s to +{:.1} s after the scenario began",
            t0.saturating_duration_since(began).as_secs_f64(),
            t1.saturating_duration_since(began).as_secs_f64()
        );
        for (k, eps) in &buckets {
            let list: Vec<String> = eps.iter().map(|(e, n)| format!("{e} {n}")).collect();
            println!(
                "    {name}: REQUESTS {:>4}-{:<4} s: {}",
                k * 10,
                k * 10 + 10,
                list.join(", ")
            );
        }
    }
    out.events = stats1.events_sent.saturating_sub(stats0.events_sent);
    out.sockets_opened = stats1.sockets_opened;
    out.channels = b.org.sim.channels().len();
    out.cpu_ms_per_min =
        cpu1.saturating_sub(cpu0) as f64 * 1000.0 / clk_tck.max(1) as f64 / out.window_min();
    let mut fresh: Vec<f64> = b
        .changes
        .iter()
        .filter_map(|c| c.seen.map(|d| d.as_secs_f64()))
        .collect();
    fresh.sort_by(f64::total_cmp);
    out.fresh = fresh;
    for c in b.changes.iter().filter(|c| c.seen.is_none()) {
        out.never_seen += 1;
        let k = match c.kind {
            Kind::WaitingUp | Kind::WaitingDown => "waiting",
            Kind::AgentBusy | Kind::AgentIdle => "agent",
        };
        *out.never_by_kind.entry(k).or_default() += 1;
    }
    b.org.sim.shutdown();
    let f = |x: Option<f64>| x.map_or("-".to_owned(), |v| format!("{v:.2}"));
    println!(
        "  {name:<16} {:>4} changes in a {:.0} s window ({:.0} s in all): p50 {} s, p95 {} s, max {} s, never seen {}, {:.1} req/min, {} events, {} row PUTs < 60 s after the same row's last{}",
        out.changes,
        out.window_s,
        began.elapsed().as_secs_f64(),
        f(out.pct(50.0)),
        f(out.pct(95.0)),
        f(out.max()),
        out.never_seen,
        out.req_per_min(),
        out.events,
        out.rewrites,
        if out.problems.is_empty() {
            String::new()
        } else {
            format!(" PROBLEMS: {}", out.problems.join("; "))
        }
    );
    out
}

// ------------------------------------------------------------------ report

fn secs(x: Option<f64>) -> String {
    x.map_or("-".to_owned(), |v| format!("{v:.1}"))
}

fn report(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    s.push_str(
        "| mode | queues | changes | freshness s p50 / p95 / max | never seen | req/min | of which obs / names / writes / notifications | events/min | daemon CPU ms/min | peak RSS MB |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for o in outcomes {
        let e = |k: &str| o.by_endpoint.get(k).copied().unwrap_or(0) as f64 / o.window_min();
        let writes = e("row PUT") + e("row POST") + e("import POST") + e("upload PUT");
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} / {} / {} | {} | {:.1} | {:.1} / {:.1} / {:.1} / {:.1} | {} | {:.0} | {:.1} |{}",
            o.mode.map_or("?", Mode::name),
            thousands(o.queues as u64),
            o.changes,
            secs(o.pct(50.0)),
            secs(o.pct(95.0)),
            secs(o.max()),
            if o.never_by_kind.is_empty() {
                o.never_seen.to_string()
            } else {
                format!(
                    "{} ({})",
                    o.never_seen,
                    o.never_by_kind
                        .iter()
                        .map(|(k, n)| format!("{n} {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
            o.req_per_min(),
            e("obs query"),
            e("queues GET"),
            writes,
            e("notifications"),
            if o.mode == Some(Mode::Push) {
                format!("{:.0}", o.events as f64 / o.window_min())
            } else {
                "-".to_owned()
            },
            o.cpu_ms_per_min,
            o.hwm_kb as f64 / 1024.0,
            if o.problems.is_empty() { "" } else { " ⚠" },
        );
    }
    s
}

fn verdicts(outcomes: &[Outcome]) -> String {
    let mut s = String::new();
    let find = |m: Mode, n: usize| outcomes.iter().find(|o| o.mode == Some(m) && o.queues == n);
    let mut line = |ok: bool, text: String| {
        let _ = writeln!(s, "- {} {text}", if ok { "MET" } else { "MISSED" });
    };
    if let Some(push) = find(Mode::Push, 100) {
        let p95 = push.pct(95.0).unwrap_or(f64::INFINITY);
        line(
            p95 <= 3.0 && push.push_connected,
            format!("push, 100 queues: p95 {p95:.1} s (target ≤ 3 s)"),
        );
        if let Some(poll) = find(Mode::Poll, 100) {
            line(
                push.req_per_min() <= poll.req_per_min() + 2.0,
                format!(
                    "push, 100 queues: {:.1} requests/min against poll's {:.1} (target ≤ poll's + 2)",
                    push.req_per_min(),
                    poll.req_per_min()
                ),
            );
        }
    }
    if let Some(push) = find(Mode::Push, 1000) {
        let p95 = push.pct(95.0).unwrap_or(f64::INFINITY);
        line(
            p95 <= 10.0 && push.push_connected,
            format!("push, 1,000 queues: p95 {p95:.1} s (target ≤ 10 s)"),
        );
        line(
            push.req_per_min() <= BUDGET,
            format!(
                "push, 1,000 queues: {:.1} requests/min (budget {BUDGET:.0})",
                push.req_per_min()
            ),
        );
    }
    for o in outcomes.iter().filter(|o| o.mode == Some(Mode::Poll)) {
        let _ = writeln!(
            s,
            "- (comparison) poll, {} queues: p95 {} s",
            thousands(o.queues as u64),
            secs(o.pct(95.0))
        );
    }
    for o in outcomes {
        if o.never_seen > 0 {
            let _ = writeln!(s, "- {}: {} changes never seen", o.name, o.never_seen);
        }
        for p in &o.problems {
            let _ = writeln!(s, "- {}: {p}", o.name);
        }
    }
    s
}

// ------------------------------------------------------------------ main

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let serial = args.iter().any(|a| a == "--serial");
    let only: Vec<String> = args
        .windows(2)
        .filter(|w| w[0] == "--only")
        .map(|w| w[1].clone())
        .collect();
    let minutes: u64 = args
        .windows(2)
        .find(|w| w[0] == "--minutes")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(if quick { 2 } else { 3 })
        .max(1);
    let sizes: &[usize] = if quick { &[100] } else { &[10, 100, 1000] };
    let mut groups: Vec<Vec<Scenario>> = Vec::new();
    for &queues in sizes {
        let g: Vec<Scenario> = [Mode::Poll, Mode::Push]
            .into_iter()
            .map(|mode| Scenario {
                mode,
                queues,
                minutes,
            })
            .filter(|sc| sc.selected(&only))
            .collect();
        if !g.is_empty() {
            groups.push(g);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let clk = clk_tck();
        let started = Instant::now();
        println!(
            "genesys-queue-sync freshness benchmark: {} scenarios, {minutes} cron periods measured each ({CHANGE_PCT} % of queues changing per minute), simulator latency {} ms, cron once a minute, refresh_after {} min, push min_interval {MIN_INTERVAL}, table read every {} ms{}",
            groups.iter().map(Vec::len).sum::<usize>(),
            LATENCY.as_millis(),
            REFRESH_AFTER_S / 60,
            WATCH.as_millis(),
            if serial { "" } else { "; poll and push side by side" },
        );
        let mut outcomes = Vec::new();
        for g in groups {
            if serial {
                for sc in g {
                    outcomes.push(run_scenario(sc, clk).await);
                }
            } else {
                let runs: Vec<_> = g
                    .into_iter()
                    .map(|sc| tokio::spawn(run_scenario(sc, clk)))
                    .collect();
                for r in runs {
                    outcomes.push(r.await.expect("scenario task"));
                }
            }
        }
        println!(
            "\n## Results ({:.1} min)\n",
            started.elapsed().as_secs_f64() / 60.0
        );
        println!("{}", report(&outcomes));
        println!("Targets (issue 10):\n");
        println!("{}", verdicts(&outcomes));
    });
}
