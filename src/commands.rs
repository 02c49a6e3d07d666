//! The commands: `run`, `once`, `check`, `table`, and dispatch with exit codes.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::cli::{Cli, Command, TableCommand};
use crate::config::{self, Config, ConfigError, ProcessEnv, TableRef, WriteMode};
use crate::cycle::{self, CycleReport, Syncer};
use crate::genesys::datatable::{self, COLUMNS};
use crate::genesys::observations::MAX_QUEUES_PER_QUERY;
use crate::genesys::{Client, RetryPolicy};
use crate::health::{self, Health};
use crate::metrics::Metrics;
use crate::schedule::{self, Exit, Grace};

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const CONFIG: u8 = 2;
    pub const STALLED: u8 = 3;
}

/// Called after every cycle (the demo draws the table from it).
pub type CycleHook = Arc<dyn Fn(&CycleReport) + Send + Sync>;

/// The outside world `run` needs, passed in so tests and the demo can supply their own.
pub struct RunOptions {
    pub shutdown: CancellationToken,
    /// A bound health listener; when None, `cfg.http_listen` is bound.
    pub listener: Option<TcpListener>,
    pub retry: RetryPolicy,
    pub on_cycle: Option<CycleHook>,
    pub grace: Grace,
}

impl RunOptions {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            shutdown,
            listener: None,
            retry: RetryPolicy::default(),
            on_cycle: None,
            grace: Grace::default(),
        }
    }
}

pub async fn dispatch(cli: Cli) -> u8 {
    match cli.command {
        Command::Run(c) => {
            with_config(&c.config, |cfg| async move {
                match run(cfg, RunOptions::new(shutdown_on_signals())).await {
                    Ok(Exit::Shutdown) => exit::OK,
                    Ok(Exit::Stalled(_)) => exit::STALLED,
                    Err(e) => {
                        tracing::error!("{e:#}");
                        exit::FAILURE
                    }
                }
            })
            .await
        }
        Command::Once { config, dry_run } => {
            with_config(&config.config, |cfg| async move {
                once(cfg, dry_run, shutdown_on_signals()).await
            })
            .await
        }
        Command::Check(c) => check(&c.config).await,
        Command::Queues(c) => with_config(&c.config, queues_command).await,
        Command::Demo { cycles, every } => {
            match crate::demo::run(cycles, every, shutdown_on_signals()).await {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("demo failed: {e:#}");
                    exit::FAILURE
                }
            }
        }
        Command::Table(TableCommand::Schema { config: _ }) => {
            match serde_json::to_string_pretty(&datatable::schema_json()) {
                Ok(s) => {
                    println!("{s}");
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::FAILURE
                }
            }
        }
        Command::Table(TableCommand::Create(c)) => with_config(&c.config, table_create).await,
    }
}

async fn with_config<F, Fut>(path: &Path, f: F) -> u8
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = u8>,
{
    match config::load(path, &ProcessEnv) {
        Ok(cfg) => f(cfg).await,
        Err(e) => {
            report_config_error(path, &e);
            exit::CONFIG
        }
    }
}

fn report_config_error(path: &Path, e: &ConfigError) {
    eprintln!("error in {}: {e}", path.display());
}

/// Cancels the returned token on SIGTERM or SIGINT.
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
        tracing::info!("stop signal received");
        t.cancel();
    });
    token
}

/// The daemon: health listener, then a cycle now and on every cron tick until shutdown.
pub async fn run(cfg: Config, opts: RunOptions) -> anyhow::Result<Exit> {
    let cfg = Arc::new(cfg);
    let metrics = Metrics::new();
    let health = Health::new(cfg.schedule.period, metrics.clone());
    let stop_aux = CancellationToken::new();

    let listener = match (opts.listener, cfg.http_listen) {
        (Some(l), _) => Some(l),
        (None, Some(addr)) => Some(
            health::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (http.listen): {e}"))?,
        ),
        (None, None) => None,
    };
    if let Some(l) = listener {
        if let Ok(addr) = l.local_addr() {
            tracing::info!(%addr, "health and metrics listening (/healthz, /readyz, /metrics)");
        }
        let (h, s) = (health.clone(), stop_aux.clone());
        tokio::spawn(async move {
            if let Err(e) = health::serve(l, h, s).await {
                tracing::error!(error = %e, "health listener failed");
            }
        });
    }
    tokio::spawn(health::watchdog(health.clone(), stop_aux.clone()));

    let abandon = CancellationToken::new();
    let client = Client::with_policy(&cfg, metrics, abandon.clone(), opts.retry)?;
    let syncer = Arc::new(Mutex::new(Syncer::new(client, cfg.clone(), health.clone())));
    let (mut sched, ticks) = schedule::cron_ticks(&cfg.schedule.cron).await?;
    tracing::info!(
        api = %cfg.api_url,
        table = %cfg.table,
        queues = cfg.queue_names.len() + cfg.queue_ids.len(),
        schedule = %cfg.schedule.cron,
        "genesys-queue-sync running"
    );
    health::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("running, first cycle"),
    ]);

    let counter = Arc::new(AtomicU64::new(0));
    let streak = Arc::new(std::sync::Mutex::new(FailureStreak::default()));
    let hook = opts.on_cycle.clone();
    let exit = schedule::drive(
        ticks,
        health.clone(),
        move || {
            let syncer = syncer.clone();
            let hook = hook.clone();
            let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
            let streak = streak.clone();
            async move {
                let report = syncer.lock().await.run_cycle(false).await;
                log_report(&report, &streak);
                if let Some(h) = hook {
                    h(&report);
                }
            }
            .instrument(tracing::info_span!("cycle", n))
        },
        opts.shutdown,
        abandon,
        opts.grace,
    )
    .await;
    health::notify(&[sd_notify::NotifyState::Stopping]);
    stop_aux.cancel();
    if let Err(e) = sched.shutdown().await {
        tracing::debug!(error = %e, "cron scheduler shutdown");
    }
    tracing::info!(?exit, "genesys-queue-sync stopped");
    Ok(exit)
}

/// Consecutive cycles that failed with the same error: a daemon that runs for months must
/// not write the same error line every minute for a whole outage.
#[derive(Default)]
struct FailureStreak {
    last: Option<String>,
    cycles: u32,
}

impl FailureStreak {
    /// Whether this failure is worth an error line: the first of a streak, then the 10th,
    /// then every 60th (about hourly at the default schedule).
    fn failed(&mut self, error: &str) -> bool {
        if self.last.as_deref() == Some(error) {
            self.cycles += 1;
        } else {
            self.last = Some(error.to_owned());
            self.cycles = 1;
        }
        self.cycles == 1 || self.cycles == 10 || self.cycles % 60 == 0
    }

    /// The length of the streak that just ended, if any.
    fn succeeded(&mut self) -> Option<u32> {
        self.last.take().map(|_| std::mem::take(&mut self.cycles))
    }
}

fn log_report(r: &CycleReport, streak: &std::sync::Mutex<FailureStreak>) {
    let Ok(mut streak) = streak.lock() else {
        return;
    };
    if let Some(e) = &r.error {
        let ms = r.duration.as_millis() as u64;
        if streak.failed(e) {
            let cycles = streak.cycles;
            if cycles == 1 {
                tracing::error!(duration_ms = ms, "cycle failed: {e}");
            } else {
                tracing::error!(
                    duration_ms = ms,
                    cycles,
                    "cycle failed again ({cycles} cycles in a row): {e}"
                );
            }
        } else {
            tracing::debug!(duration_ms = ms, "cycle failed again: {e}");
        }
        return;
    }
    if let Some(cycles) = streak.succeeded() {
        tracing::info!(
            failed_cycles = cycles,
            "recovered after {cycles} failed cycles"
        );
    }
    let failed: Vec<&str> = r.failed.iter().map(|(q, _)| q.as_str()).collect();
    if failed.is_empty() {
        tracing::info!(
            observed = r.observed.len(),
            written = r.written,
            unchanged = r.skipped,
            deferred = r.deferred,
            imported = r.imported,
            duration_ms = r.duration.as_millis() as u64,
            "cycle done"
        );
    } else {
        tracing::warn!(
            observed = r.observed.len(),
            written = r.written,
            unchanged = r.skipped,
            deferred = r.deferred,
            imported = r.imported,
            failed = failed.len(),
            failed_queues = %failed.join(", "),
            duration_ms = r.duration.as_millis() as u64,
            "cycle done with failures"
        );
    }
}

/// One cycle, printed as a table. Exit 0 only when every queue was observed (and written).
pub async fn once(cfg: Config, dry_run: bool, shutdown: CancellationToken) -> u8 {
    let cfg = Arc::new(cfg);
    let metrics = Metrics::new();
    let health = Health::new(cfg.schedule.period, metrics.clone());
    let client = match Client::new(&cfg, metrics, shutdown) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    let mut syncer = Syncer::new(client, cfg, health);
    let report = syncer.run_cycle(dry_run).await;
    print!("{}", render_report(&report));
    if report.outcome() == "ok" {
        exit::OK
    } else {
        exit::FAILURE
    }
}

/// The human table `once` prints.
pub fn render_report(r: &CycleReport) -> String {
    let mut out = String::new();
    let width = r
        .observed
        .iter()
        .map(|(t, _)| t.key.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "{:<width$}  {:>6} {:>7} {:>5} {:>11} {:>7}  UpdatedAt",
        "queue", "Online", "OnQueue", "Idle", "Interacting", "Waiting"
    );
    let at = r
        .started
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    for (t, c) in &r.observed {
        let _ = writeln!(
            out,
            "{:<width$}  {:>6} {:>7} {:>5} {:>11} {:>7}  {at}",
            t.key, c.online, c.on_queue, c.idle, c.interacting, c.waiting
        );
    }
    for (q, why) in &r.failed {
        let _ = writeln!(out, "✗ {q}: {why}");
    }
    if let Some(e) = &r.error {
        let _ = writeln!(out, "✗ {e}");
    }
    let _ = writeln!(
        out,
        "{}",
        if r.dry_run {
            format!("dry run: {} queues read, nothing written", r.observed.len())
        } else {
            format!(
                "{} rows written{}, {} unchanged, {} deferred to the next cycle (budget), {} failed, {} ms",
                r.written,
                if r.imported { " by one import job" } else { "" },
                r.skipped,
                r.deferred,
                r.failed.len(),
                r.duration.as_millis()
            )
        }
    );
    out
}

/// One line per check with ✓/✗ and a fix; exit 0 only if all pass.
pub async fn check(path: &Path) -> u8 {
    let mut ok = true;
    let mut line = |pass: bool, what: &str, detail: &str| {
        ok &= pass;
        println!("{} {what}: {detail}", if pass { "✓" } else { "✗" });
    };
    let cfg = match config::load(path, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            line(false, "config", &e.to_string());
            return exit::CONFIG;
        }
    };
    line(
        true,
        "config",
        &format!(
            "{} is valid (API {}, table {}, {} configured queues, schedule \"{}\")",
            path.display(),
            cfg.api_url,
            cfg.table,
            cfg.queue_names.len() + cfg.queue_ids.len(),
            cfg.schedule.cron
        ),
    );
    let client = match Client::new(&cfg, Metrics::new(), CancellationToken::new()) {
        Ok(c) => c,
        Err(e) => {
            line(false, "client", &format!("{e:#}"));
            return exit::FAILURE;
        }
    };
    match client.auth().token().await {
        Ok(_) => line(
            true,
            "login",
            &format!("token obtained from {}", cfg.login_url),
        ),
        Err(e) => {
            line(false, "login", &e.to_string());
            return exit::FAILURE;
        }
    }
    let mut selected = None;
    match cycle::resolve(&client, &cfg).await {
        Ok(res) => {
            let targets = &res.targets;
            for name in &cfg.queue_names {
                match targets
                    .iter()
                    .find(|t| &t.name == name || t.name.eq_ignore_ascii_case(name))
                {
                    Some(t) => line(true, &format!("queue \"{name}\""), &format!("id {}", t.id)),
                    None => line(
                        false,
                        &format!("queue \"{name}\""),
                        "not found; fix: use the exact name from Admin > Contact Center > Queues",
                    ),
                }
            }
            for id in &cfg.queue_ids {
                match targets.iter().find(|t| &t.id == id) {
                    Some(t) => line(true, &format!("queue id {id}"), &format!("\"{}\"", t.name)),
                    None => line(
                        false,
                        &format!("queue id {id}"),
                        "not found; fix: check the id in queues.ids",
                    ),
                }
            }
            if !cfg.selection.patterns.is_empty() || !cfg.selection.divisions.is_empty() {
                let n = targets.len();
                line(
                    n > 0,
                    "queues.match/divisions",
                    &if n > 0 {
                        format!("{n} queues selected in all (see `genesys-queue-sync queues`)")
                    } else {
                        "match no queue; fix: check the patterns (* is the wildcard) and division names or ids".to_owned()
                    },
                );
            }
            if !res.left_out.is_empty() {
                line(
                    false,
                    "table limit",
                    &format!(
                        "{} queues are left out (a table holds 5,000 rows), e.g. {}; fix: narrow queues.match or queues.divisions",
                        res.left_out.len(),
                        res.left_out
                            .iter()
                            .take(5)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
            }
            selected = Some(targets.len());
        }
        Err(e) => line(
            false,
            "queues",
            &format!("{e}; fix: the OAuth client's role needs routing:queue:view"),
        ),
    }
    let table = datatable::find(&client, &cfg.table).await;
    match table {
        Ok(Some(t)) => {
            line(
                true,
                &format!("table {}", cfg.table),
                &format!("found (id {})", t.id),
            );
            let problems = datatable::check_schema(&t);
            if problems.is_empty() {
                line(
                    true,
                    "schema",
                    &format!("all {} columns present with the right types", COLUMNS.len()),
                );
            }
            for p in problems {
                line(false, "schema", &p.to_string());
            }
        }
        Ok(None) => line(
            false,
            &format!("table {}", cfg.table),
            "not found; fix: run `genesys-queue-sync table create`, apply deploy/terraform, or create it in Architect",
        ),
        Err(e) => line(
            false,
            &format!("table {}", cfg.table),
            &format!("{e}; fix: the OAuth client's role needs architect:datatable:view"),
        ),
    }
    let n = selected.unwrap_or(cfg.queue_names.len() + cfg.queue_ids.len());
    let est = Estimate::new(&cfg, n);
    let (fits, detail) = est.verdict();
    line(fits, "budget", &detail);
    if ok { exit::OK } else { exit::FAILURE }
}

async fn table_create(cfg: Config) -> u8 {
    let client = match Client::new(&cfg, Metrics::new(), shutdown_on_signals()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    let existing = datatable::find(&client, &cfg.table).await;
    let result = match (existing, &cfg.table) {
        (Err(e), _) => Err(e.to_string()),
        (Ok(None), TableRef::Id(id)) => Err(format!(
            "no table with id {id}; set table.name to create one by name"
        )),
        (Ok(None), TableRef::Name(n)) => datatable::create_table(&client, n)
            .await
            .map(|t| {
                format!(
                    "created table \"{}\" (id {}) with columns {}",
                    t.name,
                    t.id,
                    column_list()
                )
            })
            .map_err(|e| e.to_string()),
        (Ok(Some(t)), _) => {
            let wrong: Vec<String> = datatable::check_schema(&t)
                .into_iter()
                .filter(|p| matches!(p, datatable::SchemaProblem::WrongType { .. }))
                .map(|p| p.to_string())
                .collect();
            if !wrong.is_empty() {
                // The table is unusable whatever is added: change nothing, explain.
                Err(format!(
                    "table \"{}\" left unchanged: {}",
                    t.name,
                    wrong.join("; ")
                ))
            } else {
                match datatable::add_missing_columns(&client, &t).await {
                    Ok(added) if added.is_empty() => {
                        Ok(format!("table \"{}\" already has every column", t.name))
                    }
                    Ok(added) => Ok(format!(
                        "table \"{}\": added columns {} (existing columns kept as they are)",
                        t.name,
                        added.join(", ")
                    )),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    };
    match result {
        Ok(msg) => {
            println!("✓ {msg}");
            exit::OK
        }
        Err(e) => {
            println!("✗ {e}");
            exit::FAILURE
        }
    }
}

/// Expected requests per minute for a selection of `n` queues under the current settings.
pub struct Estimate {
    pub queues: usize,
    pub budget: u32,
    pub cycles_per_minute: f64,
    pub reads_per_cycle: f64,
    pub heartbeat_per_cycle: f64,
    /// Upper bound of refresh writes per cycle (every unchanged row once per refresh_after).
    pub refresh_per_cycle: f64,
    pub mode: WriteMode,
    pub owned: bool,
    pub refresh_after: std::time::Duration,
}

impl Estimate {
    pub fn new(cfg: &Config, n: usize) -> Self {
        let period = cfg.schedule.period.as_secs_f64().max(1.0);
        Self {
            queues: n,
            budget: cfg.requests_per_minute,
            cycles_per_minute: 60.0 / period,
            reads_per_cycle: n.div_ceil(MAX_QUEUES_PER_QUERY) as f64,
            heartbeat_per_cycle: if cfg.rows.heartbeat_key.is_some() {
                1.0
            } else {
                0.0
            },
            refresh_per_cycle: n as f64 * (period / cfg.rows.refresh_after.as_secs_f64()).min(1.0),
            mode: cfg.write_mode,
            owned: cfg.table_owned,
            refresh_after: cfg.rows.refresh_after,
        }
    }

    /// Requests per minute in rows mode when `fraction` of the queues change every cycle.
    pub fn rows_per_minute(&self, fraction: f64) -> f64 {
        let writes = fraction * self.queues as f64
            + self
                .refresh_per_cycle
                .min((1.0 - fraction) * self.queues as f64);
        (self.reads_per_cycle + self.heartbeat_per_cycle + writes) * self.cycles_per_minute
    }

    /// Requests per minute in import mode: reads plus create, upload and about two polls.
    pub fn import_per_minute(&self) -> f64 {
        (self.reads_per_cycle + 4.0) * self.cycles_per_minute
    }

    /// Whether the settings fit the budget (rows mode assumes 10% of queues change per cycle).
    pub fn verdict(&self) -> (bool, String) {
        let budget = f64::from(self.budget);
        if self.mode == WriteMode::Import {
            let need = self.import_per_minute();
            return (
                need <= budget,
                format!(
                    "import mode: about {need:.0} requests/minute for {} queues (budget {budget:.0})",
                    self.queues
                ),
            );
        }
        let need = self.rows_per_minute(0.1);
        if need <= budget {
            return (
                true,
                format!(
                    "about {need:.0} requests/minute for {} queues with 10% changing per cycle (budget {budget:.0})",
                    self.queues
                ),
            );
        }
        if self.mode == WriteMode::Auto && self.owned {
            return (
                true,
                format!(
                    "rows would need about {need:.0} requests/minute (budget {budget:.0}); auto mode switches to import (about {:.0}/minute)",
                    self.import_per_minute()
                ),
            );
        }
        let per_cycle_budget = budget / self.cycles_per_minute;
        let avail = per_cycle_budget
            - self.reads_per_cycle
            - self.heartbeat_per_cycle
            - 0.1 * self.queues as f64;
        let refresh_hint = if avail > 0.0 {
            let period_s = 60.0 / self.cycles_per_minute;
            let minutes = (self.queues as f64 * period_s / avail / 60.0).ceil();
            format!(
                "or rows.refresh_after of at least {minutes}m (now {})",
                humantime::format_duration(self.refresh_after)
            )
        } else {
            "since even the changed rows alone exceed the budget, a longer refresh_after cannot help".to_owned()
        };
        (
            false,
            format!(
                "rows mode needs about {need:.0} requests/minute for {} queues with 10% changing per cycle, over the budget of {budget:.0}; \
                 fix: write_mode = \"import\" with table.owned = true (about {:.0}/minute), {refresh_hint}",
                self.queues,
                self.import_per_minute(),
            ),
        )
    }
}

/// `queues`: the resolved selection and what it costs.
pub async fn queues_command(cfg: Config) -> u8 {
    let client = match Client::new(&cfg, Metrics::new(), shutdown_on_signals()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return exit::FAILURE;
        }
    };
    let res = match cycle::resolve(&client, &cfg).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: resolving queues: {e}");
            return exit::FAILURE;
        }
    };
    let width = res
        .targets
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    println!("{:<width$}  {:<36}  division", "name", "id");
    for t in &res.targets {
        println!("{:<width$}  {:<36}  {}", t.name, t.id, t.division);
    }
    println!();
    println!("{} queues selected", res.targets.len());
    for m in &res.missing {
        println!("✗ not found: {m}");
    }
    if !res.left_out.is_empty() {
        println!(
            "✗ {} queues left out: a table holds at most 5,000 rows",
            res.left_out.len()
        );
    }
    let est = Estimate::new(&cfg, res.targets.len());
    println!(
        "\nExpected requests per minute (schedule period {}s, budget {}):",
        cfg.schedule.period.as_secs(),
        cfg.requests_per_minute
    );
    println!(
        "  reads {:.0}, heartbeat {:.0}, refreshes at most {:.0} (rows.refresh_after = {})",
        est.reads_per_cycle * est.cycles_per_minute,
        est.heartbeat_per_cycle * est.cycles_per_minute,
        est.refresh_per_cycle * est.cycles_per_minute,
        humantime::format_duration(cfg.rows.refresh_after)
    );
    for f in [0.1, 0.5, 1.0] {
        let need = est.rows_per_minute(f);
        println!(
            "  rows mode, {:>3.0}% of queues changing per cycle: {need:.0}/min {}",
            f * 100.0,
            if need <= f64::from(cfg.requests_per_minute) {
                "✓"
            } else {
                "✗ over budget"
            }
        );
    }
    println!(
        "  import mode (owned table): {:.0}/min",
        est.import_per_minute()
    );
    let (fits, detail) = est.verdict();
    println!("{} {detail}", if fits { "✓" } else { "✗" });
    if res.missing.is_empty() && fits {
        exit::OK
    } else {
        exit::FAILURE
    }
}

fn column_list() -> String {
    COLUMNS
        .iter()
        .map(|(c, t)| format!("{c} ({})", t.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_failure_is_logged_at_first_then_rarely() {
        let mut s = FailureStreak::default();
        let logged: Vec<u32> = (1..=130u32).filter(|_| s.failed("login refused")).collect();
        assert_eq!(logged, [1, 10, 60, 120]);
        assert!(
            s.failed("table missing"),
            "a different error starts a new streak"
        );
        assert_eq!(s.succeeded(), Some(1));
        assert_eq!(s.succeeded(), None);
    }
}
