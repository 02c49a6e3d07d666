//! The daemon's run loop: the health listener, then a cycle now and on every cron tick
//! until shutdown; and [`Signals`], the one place a cycle's report becomes log lines,
//! metrics and health (each line and its metrics emitted together).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::{Config, Mode};
use crate::genesys::{Client, RetryPolicy};
use crate::health::{self, Health};
use crate::metrics::Metrics;
use crate::push::driver::PushState;
use crate::push::session;
use push::Pusher;

mod push;
use crate::reload::{self, ReloadSource};
use crate::schedule::{self, Exit, Grace};
use crate::sync::{CycleReport, Outcome, Syncer};
use crate::telemetry::LogControl;

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
    /// The process's log filter, for the config's `[log] level`.
    pub log: LogControl,
    /// Config reloads (SIGHUP): when None, the config never changes while running.
    pub reload: Option<ReloadSource>,
    /// Push mode's session tunables (tests shrink the delays).
    pub push: session::Settings,
}

impl RunOptions {
    pub fn new(shutdown: CancellationToken) -> Self {
        Self {
            shutdown,
            listener: None,
            retry: RetryPolicy::default(),
            on_cycle: None,
            grace: Grace::default(),
            log: LogControl::detached(),
            reload: None,
            push: session::Settings::default(),
        }
    }
}

/// The daemon: health listener, then a cycle now and on every cron tick until shutdown.
pub async fn run(cfg: Config, opts: RunOptions) -> anyhow::Result<Exit> {
    let cfg = Arc::new(cfg);
    apply_log_level(&opts.log, &cfg);
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
            tracing::info!(%addr, "health and metrics listening (/, /healthz, /readyz, /metrics)");
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
    let client = Client::with_policy(&cfg, metrics.clone(), abandon.clone(), opts.retry.clone())?;
    let (sched, ticks) = schedule::cron_ticks(&cfg.schedule.cron).await?;
    let sched = Arc::new(Mutex::new(sched));
    tracing::info!(
        version = %crate::version::VERSION,
        revision = %crate::version::REVISION,
        built = %crate::version::BUILD_DATE,
        api = %cfg.api_url,
        table = %cfg.table,
        queues = cfg.queue_names.len() + cfg.queue_ids.len(),
        schedule = %cfg.schedule.cron,
        stale_after = %crate::staleness::human(crate::staleness::for_config(&cfg)),
        "genesys-queue-sync {} running; {}",
        crate::version::VERSION,
        crate::staleness::sentence(&cfg)
    );
    health::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("running, first cycle"),
    ]);

    // Cycles never overlap (the schedule skips a tick while one runs), so the state
    // between cycles sits behind one lock, taken for a whole cycle. Whatever replaces the
    // pipeline (a new config) does so between cycles, under this lock.
    let state = Arc::new(Mutex::new(Cycles {
        syncer: Syncer::new(client, cfg.clone()),
        signals: Signals::new(metrics.clone(), health.clone()).queue_metrics(cfg.queue_metrics),
        done: 0,
        push: None,
    }));
    // Push mode asks for a cycle after every (re)connect: events sent while no socket
    // was open are lost, so one poll reconciles.
    let (reconcile, requests) = mpsc::channel(1);
    let pusher = Pusher {
        state: state.clone(),
        settings: opts.push.clone(),
        reconcile,
        stop: stop_aux.clone(),
    };
    if cfg.mode == Mode::Push {
        let mut cycles = state.lock().await;
        pusher.start(&mut cycles);
    }
    if let Some(source) = opts.reload {
        let reloader = Reloader {
            state: state.clone(),
            sched: sched.clone(),
            health: health.clone(),
            log: opts.log.clone(),
            metrics,
            abandon: abandon.clone(),
            retry: opts.retry,
            pusher,
        };
        let stop = stop_aux.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = reloader.serve(source) => {}
                () = stop.cancelled() => {}
            }
        });
    }
    let hook = opts.on_cycle.clone();
    let exit = schedule::drive_with_requests(
        ticks,
        requests,
        health.clone(),
        move || {
            let state = state.clone();
            let hook = hook.clone();
            async move {
                let mut state = state.lock().await;
                state.done += 1;
                let n = state.done;
                let report = state
                    .cycle()
                    .instrument(tracing::info_span!("cycle", n))
                    .await;
                if let Some(h) = hook {
                    h(&report);
                }
            }
        },
        opts.shutdown,
        abandon,
        opts.grace,
    )
    .await;
    health::notify(&[sd_notify::NotifyState::Stopping]);
    stop_aux.cancel();
    if let Err(e) = sched.lock().await.shutdown().await {
        tracing::debug!(error = %e, "cron scheduler shutdown");
    }
    tracing::info!(?exit, "genesys-queue-sync stopped");
    Ok(exit)
}

/// Applies the config's `[log] level` (unless `--log-level` or `RUST_LOG` fixed it); a
/// config without one goes back to the default level.
fn apply_log_level(log: &LogControl, cfg: &Config) {
    match log.apply_config_level(cfg.log_level.as_deref()) {
        Ok(Some(now)) => tracing::info!(filter = %now, "log level set by [log] level"),
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(error = %e, "cannot apply [log] level; the log level is unchanged")
        }
    }
}

/// Performs config reloads: each request reads and validates the file, then, between
/// cycles (under the cycle lock), replaces the pipeline with one built on the new config.
struct Reloader {
    state: Arc<Mutex<Cycles>>,
    sched: Arc<Mutex<schedule::CronTicks>>,
    health: Health,
    log: LogControl,
    metrics: Metrics,
    abandon: CancellationToken,
    retry: RetryPolicy,
    pusher: Pusher,
}

impl Reloader {
    async fn serve(self, mut source: ReloadSource) {
        while source.requests.recv().await.is_some() {
            health::notify(&[sd_notify::NotifyState::Reloading]);
            let result = self.reload(&source.path).await;
            self.metrics.config_reload(result.is_ok());
            let status = match &result {
                Ok(()) => "config reloaded".to_owned(),
                Err(e) => {
                    tracing::error!(
                        path = %source.path.display(),
                        "config reload failed, still running on the previous config: {e:#}"
                    );
                    format!("config reload failed, running on the previous config: {e:#}")
                }
            };
            health::notify(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(&status),
            ]);
        }
    }

    async fn reload(&self, path: &std::path::Path) -> anyhow::Result<()> {
        let new = crate::config::load(path, &crate::config::ProcessEnv)
            .map_err(|e| anyhow::anyhow!("error in {}: {e}", path.display()))?;
        // Between cycles: a cycle in flight finishes on the config it started with.
        let mut state = self.state.lock().await;
        let old = state.syncer.config().clone();
        let plan = reload::plan(&old, &new);
        for (key, running, wanted) in &plan.need_restart {
            tracing::warn!(
                key,
                running = %running,
                wanted = %wanted,
                "{key} changed to {wanted}, but a reload cannot change it: still {running}; restart the daemon to apply it"
            );
        }
        if plan.applied.is_empty() {
            tracing::info!(path = %path.display(), "config reloaded: nothing to change");
            return Ok(());
        }
        let new = Arc::new(reload::effective(&old, new));
        // Everything that can fail comes first, so a failure leaves the old config whole.
        let client = if plan.new_client {
            Client::with_policy(
                &new,
                self.metrics.clone(),
                self.abandon.clone(),
                self.retry.clone(),
            )?
        } else {
            state.syncer.client().clone()
        };
        if plan.reschedule {
            self.sched
                .lock()
                .await
                .reschedule(&new.schedule.cron)
                .await
                .map_err(|e| anyhow::anyhow!("schedule.cron: {e:#}"))?;
            self.health.set_period(new.schedule.period);
        }
        apply_log_level(&self.log, &new);
        state.signals.set_queue_metrics(new.queue_metrics);
        state.syncer = Syncer::new(client, new.clone());
        // Push follows the new config between cycles too: started or stopped with the
        // mode, restarted with a new client (its requests must share the new client's
        // budget), otherwise kept (its channels and sockets stay open).
        let push_wanted = new.mode == Mode::Push;
        if state.push.is_some() && (!push_wanted || plan.new_client) {
            self.pusher.stop(&mut state);
        }
        if push_wanted {
            match state.push.as_mut() {
                Some(p) => {
                    p.0.reconfigure(&new);
                    state.syncer.keep_raw(true);
                }
                None => self.pusher.start(&mut state),
            }
        }
        tracing::info!(
            path = %path.display(),
            changed = %plan.applied.join(", "),
            queues = new.queue_names.len() + new.queue_ids.len(),
            schedule = %new.schedule.cron,
            "config reloaded; the next cycle runs with it"
        );
        Ok(())
    }
}

/// What lives from one cycle to the next.
struct Cycles {
    syncer: Syncer,
    signals: Signals,
    /// Cycles started so far (the `n` of the cycle span).
    done: u64,
    /// Push mode's state, and what stops its session and loop; None in poll mode.
    push: Option<(PushState, CancellationToken)>,
}

impl Cycles {
    async fn cycle(&mut self) -> CycleReport {
        let report = self.syncer.run_cycle(false).await;
        self.signals.record(&report);
        if let Some((push, _)) = &mut self.push {
            push.after_cycle(&mut self.syncer, &report);
        }
        report
    }
}

/// Turns each cycle's report into log lines, metrics and health.
pub struct Signals {
    metrics: Metrics,
    health: Health,
    streak: FailureStreak,
    /// Per-queue gauges on /metrics (`[http] queue_metrics`).
    queue_metrics: bool,
    /// Another writer's heartbeat is counted every cycle but warned about at most every
    /// [`OTHER_WRITER_WARN_EVERY`]: it lasts until someone stops one of the daemons.
    other_writer_warn: Every,
}

/// How often a daemon that keeps seeing another writer's heartbeat warns about it.
pub const OTHER_WRITER_WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// Allows something at most once per period: the first time, then once the period passed.
#[derive(Debug)]
pub struct Every {
    period: std::time::Duration,
    last: Option<tokio::time::Instant>,
}

impl Every {
    pub fn new(period: std::time::Duration) -> Self {
        Self { period, last: None }
    }

    pub fn allow(&mut self, now: tokio::time::Instant) -> bool {
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.period)
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

impl Signals {
    pub fn new(metrics: Metrics, health: Health) -> Self {
        Self {
            metrics,
            health,
            streak: FailureStreak::default(),
            queue_metrics: true,
            other_writer_warn: Every::new(OTHER_WRITER_WARN_EVERY),
        }
    }

    /// Whether per-queue gauges are exported (`[http] queue_metrics`, default on).
    pub fn queue_metrics(mut self, on: bool) -> Self {
        self.set_queue_metrics(on);
        self
    }

    pub fn set_queue_metrics(&mut self, on: bool) {
        self.queue_metrics = on;
        if !on {
            self.metrics.queues.clear();
        }
    }

    /// The per-queue gauges: every observed queue's values; series of queues that left
    /// the selection (or whose name changed) go. A cycle that stopped early says nothing
    /// about the selection and changes nothing.
    fn queue_gauges(&self, r: &CycleReport) {
        if r.error.is_some() {
            return;
        }
        let g = &self.metrics.queues;
        for (t, values) in &r.observed {
            g.set(&t.name, r.columns.gauge_values(values));
        }
        let keep: std::collections::BTreeSet<&str> = r
            .observed
            .iter()
            .map(|(t, _)| t.name.as_str())
            .chain(r.failed.iter().map(|f| f.queue.as_str()))
            .collect();
        g.retain(&keep);
    }

    pub fn record(&mut self, r: &CycleReport) {
        let outcome = r.outcome();
        let m = &self.metrics;
        m.cycle(outcome.as_str());
        m.cycle_duration.observe(r.duration.as_secs_f64());
        if r.dry_run {
            return;
        }
        if outcome == Outcome::Ok {
            m.last_success.set(chrono::Utc::now().timestamp() as f64);
        }
        m.rows_inc("written", r.written.len() as u64);
        m.rows_inc("skipped", r.skipped as u64);
        m.rows_inc("deferred", r.deferred as u64);
        m.rows_inc("failed", r.failed.len() as u64);
        if self.queue_metrics {
            self.queue_gauges(r);
        }
        if let Some(ok) = r.logged_in {
            self.health.set_logged_in(ok);
        }
        if let Some(ok) = r.table_ok {
            self.health.set_table_ok(ok);
        }
        if let Some(o) = &r.other_writer {
            m.other_writer_heartbeats.inc();
            if self.other_writer_warn.allow(tokio::time::Instant::now()) {
                tracing::warn!(
                    other_writer = %o.writer,
                    its_updated_at = %o.updated_at,
                    writer = %crate::sync::writer::identity(),
                    "another writer writes this data table: its heartbeat replaced this daemon's since the last cycle; two daemons overwrite each other's rows; stop one of them, or give each its own table (repeated at most every 5 minutes while it lasts; counted in genesys_queue_sync_other_writer_heartbeats_total)"
                );
            }
        }
        let summary = r.summary();
        self.health.cycle_finished(r.fresh(), &summary);
        self.log(r);
    }

    fn log(&mut self, r: &CycleReport) {
        let ms = r.duration.as_millis() as u64;
        if let Some(e) = &r.error {
            let stage = e.stage.as_str();
            if self.streak.failed(&e.message) {
                let cycles = self.streak.cycles;
                if cycles == 1 {
                    tracing::error!(duration_ms = ms, stage, "cycle failed: {e}");
                } else {
                    tracing::error!(
                        duration_ms = ms,
                        stage,
                        cycles,
                        "cycle failed again ({cycles} cycles in a row): {e}"
                    );
                }
            } else {
                tracing::debug!(duration_ms = ms, stage, "cycle failed again: {e}");
            }
            return;
        }
        if let Some(cycles) = self.streak.succeeded() {
            tracing::info!(
                failed_cycles = cycles,
                "recovered after {}",
                crate::text::count(cycles as usize, "failed cycle", "failed cycles")
            );
        }
        if r.failed.is_empty() {
            tracing::info!(
                observed = r.observed.len(),
                written = r.written.len(),
                unchanged = r.skipped,
                deferred = r.deferred,
                imported = r.imported,
                duration_ms = ms,
                "cycle done"
            );
        } else {
            let failed: Vec<String> = r
                .failed
                .iter()
                .map(|f| format!("{} ({})", f.queue, f.stage))
                .collect();
            tracing::warn!(
                observed = r.observed.len(),
                written = r.written.len(),
                unchanged = r.skipped,
                deferred = r.deferred,
                imported = r.imported,
                failed = failed.len(),
                failed_queues = %failed.join(", "),
                duration_ms = ms,
                "cycle done with failures"
            );
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn another_writer_is_warned_about_at_first_then_every_five_minutes() {
        let mut every = Every::new(OTHER_WRITER_WARN_EVERY);
        let start = tokio::time::Instant::now();
        // Seen every 10 s for 12 minutes: warned at 0, 5 and 10 minutes.
        let warned: Vec<u64> = (0..72u64)
            .filter(|i| every.allow(start + std::time::Duration::from_secs(i * 10)))
            .map(|i| i * 10)
            .collect();
        assert_eq!(warned, [0, 300, 600]);
    }

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
