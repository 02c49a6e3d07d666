//! Cron ticks, no overlapping cycles, stall detection, graceful shutdown.
//!
//! tokio-cron-scheduler only produces ticks here (a cron-expression job in UTC sending on
//! a channel). It has no overlap guard and its repeated jobs are known to stop firing
//! under load (its issue #113), so [`drive`] owns the rest: a tick that arrives while a
//! cycle runs is skipped and counted, and three periods without a cycle start or a tick
//! (or one cycle running past [`crate::health::hung_after`]) end the process with
//! [`Exit::Stalled`] so systemd or Kubernetes restart it. A cycle that is only slow
//! (Genesys timing out, long Retry-After) is not a stall: its ticks still arrive.

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::health::Health;

/// Why the schedule loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    Shutdown,
    Stalled(Duration),
}

/// How long a cycle in flight may finish after shutdown before it is abandoned.
#[derive(Debug, Clone, Copy)]
pub struct Grace {
    /// Waiting for the cycle to finish on its own.
    pub finish: Duration,
    /// After cancelling its requests, waiting for it to unwind.
    pub abandon: Duration,
}

impl Default for Grace {
    fn default() -> Self {
        Self {
            finish: Duration::from_secs(5),
            abandon: Duration::from_secs(2),
        }
    }
}

/// Starts a cron job (UTC) that sends a tick per firing. Dropping the receiver is harmless.
pub async fn cron_ticks(cron: &str) -> anyhow::Result<(CronTicks, mpsc::Receiver<()>)> {
    let (tx, rx) = mpsc::channel(4);
    let sched = start_job(cron, tx.clone()).await?;
    // Only the job holds a strong sender: when the scheduler dies, `drive` sees the
    // channel close. `reschedule` upgrades this one for the replacement job.
    let tx = tx.downgrade();
    Ok((CronTicks { sched, tx }, rx))
}

/// The cron job behind a tick channel; `reschedule` swaps the expression (a reloaded
/// config) while the same channel keeps feeding [`drive`].
pub struct CronTicks {
    sched: JobScheduler,
    tx: mpsc::WeakSender<()>,
}

impl CronTicks {
    /// Replaces the schedule: a new job on the same channel, then the old one stops. On
    /// an error the old schedule keeps running.
    pub async fn reschedule(&mut self, cron: &str) -> anyhow::Result<()> {
        let tx = self
            .tx
            .upgrade()
            .ok_or_else(|| anyhow::anyhow!("the tick channel is closed"))?;
        let new = start_job(cron, tx).await?;
        let mut old = std::mem::replace(&mut self.sched, new);
        if let Err(e) = old.shutdown().await {
            tracing::debug!(error = %e, "old cron scheduler shutdown");
        }
        Ok(())
    }

    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        Ok(self.sched.shutdown().await?)
    }
}

async fn start_job(cron: &str, tx: mpsc::Sender<()>) -> anyhow::Result<JobScheduler> {
    let sched = JobScheduler::new().await?;
    let job = Job::new_async_tz(cron, Utc, move |_id, _sched| {
        let tx = tx.clone();
        Box::pin(async move {
            // A full channel means ticks are piling up; drive() counts them as skipped anyway.
            let _ = tx.try_send(());
        })
    })?;
    sched.add(job).await?;
    sched.start().await?;
    Ok(sched)
}

/// Runs `cycle` now and on every tick until shutdown or a stall.
///
/// `abandon` is cancelled when a cycle in flight at shutdown has used up `grace.finish`:
/// the client watches it, so requests in flight stop.
pub async fn drive<F, Fut>(
    ticks: mpsc::Receiver<()>,
    health: Health,
    cycle: F,
    shutdown: CancellationToken,
    abandon: CancellationToken,
    grace: Grace,
) -> Exit
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (_keep, requests) = mpsc::channel(1);
    drive_with_requests(ticks, requests, health, cycle, shutdown, abandon, grace).await
}

/// [`drive`], plus cycles asked for outside the schedule (push mode's reconciliation
/// after a reconnect): one starts at once, or, when a cycle is running (it may have
/// observed before the request's reason), right after it ends. Requests made while one
/// waits are the same request.
pub async fn drive_with_requests<F, Fut>(
    mut ticks: mpsc::Receiver<()>,
    mut requests: mpsc::Receiver<()>,
    health: Health,
    mut cycle: F,
    shutdown: CancellationToken,
    abandon: CancellationToken,
    grace: Grace,
) -> Exit
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut in_flight: Option<JoinHandle<()>> = None;
    let mut requested = false;
    let mut requests_open = true;
    let mut start = |in_flight: &mut Option<JoinHandle<()>>| {
        health.cycle_started();
        *in_flight = Some(tokio::spawn(cycle()));
    };
    start(&mut in_flight);
    let mut check = tokio::time::interval(Duration::from_secs(1));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks_open = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => {
                if let Some(h) = in_flight.take() {
                    finish_or_abandon(h, &abandon, grace).await;
                }
                return Exit::Shutdown;
            }
            () = wait_done(&mut in_flight) => {
                in_flight = None;
                health.cycle_ended();
                if std::mem::take(&mut requested) {
                    start(&mut in_flight);
                }
            }
            req = requests.recv(), if requests_open => match req {
                Some(()) if in_flight.is_some() => requested = true,
                Some(()) => start(&mut in_flight),
                None => requests_open = false,
            },
            tick = ticks.recv(), if ticks_open => match tick {
                Some(()) if in_flight.is_some() => {
                    health.metrics().skipped_ticks.inc();
                    health.tick_skipped();
                    tracing::warn!("schedule tick skipped: the previous cycle is still running");
                }
                Some(()) => start(&mut in_flight),
                None => {
                    // The scheduler is gone; the stall check below will notice.
                    tracing::error!("the cron scheduler stopped sending ticks");
                    ticks_open = false;
                }
            },
            _ = check.tick() => {
                if let Some(d) = health.stalled_for() {
                    tracing::error!(
                        quiet_s = d.as_secs(),
                        "no cycle started and no tick arrived for over 3 schedule periods, or a cycle hung: exiting so the supervisor restarts the daemon"
                    );
                    if let Some(h) = in_flight.take() {
                        abandon.cancel();
                        h.abort();
                    }
                    return Exit::Stalled(d);
                }
            }
        }
    }
}

async fn wait_done(h: &mut Option<JoinHandle<()>>) {
    match h {
        Some(handle) => {
            if let Err(e) = handle.await {
                if e.is_panic() {
                    tracing::error!("a cycle panicked; the next tick starts a new one");
                }
            }
        }
        None => std::future::pending().await,
    }
}

async fn finish_or_abandon(mut h: JoinHandle<()>, abandon: &CancellationToken, grace: Grace) {
    tracing::info!("shutting down: letting the cycle in flight finish");
    if tokio::time::timeout(grace.finish, &mut h).await.is_ok() {
        return;
    }
    tracing::warn!(
        "the cycle in flight did not finish in time; abandoning it (rows not yet written keep their old values)"
    );
    abandon.cancel();
    if tokio::time::timeout(grace.abandon, &mut h).await.is_err() {
        h.abort();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Rig {
        tx: mpsc::Sender<()>,
        req: mpsc::Sender<()>,
        started: Arc<AtomicUsize>,
        running: Arc<AtomicUsize>,
        max_running: Arc<AtomicUsize>,
        health: Health,
        shutdown: CancellationToken,
        abandon: CancellationToken,
        task: JoinHandle<Exit>,
    }

    fn rig(cycle_len: Duration) -> Rig {
        let (tx, rx) = mpsc::channel(4);
        let (req, requests) = mpsc::channel(1);
        let health = Health::new(Duration::from_secs(60), Metrics::new());
        let started = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let max_running = Arc::new(AtomicUsize::new(0));
        let shutdown = CancellationToken::new();
        let abandon = CancellationToken::new();
        let (s, r, m, a) = (
            started.clone(),
            running.clone(),
            max_running.clone(),
            abandon.clone(),
        );
        let task = tokio::spawn(drive_with_requests(
            rx,
            requests,
            health.clone(),
            move || {
                let (s, r, m, a) = (s.clone(), r.clone(), m.clone(), a.clone());
                async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    tokio::select! {
                        () = tokio::time::sleep(cycle_len) => {}
                        () = a.cancelled() => {}
                    }
                    r.fetch_sub(1, Ordering::SeqCst);
                }
            },
            shutdown.clone(),
            abandon.clone(),
            Grace::default(),
        ));
        Rig {
            tx,
            req,
            started,
            running,
            max_running,
            health,
            shutdown,
            abandon,
            task,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_requested_cycle_runs_now_or_right_after_the_one_running_never_beside_it() {
        let r = rig(Duration::from_secs(10));
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Asked for twice while the first cycle runs: one more cycle, once it ended.
        r.req.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let _ = r.req.try_send(());
        tokio::time::sleep(Duration::from_secs(7)).await;
        assert_eq!(
            r.started.load(Ordering::SeqCst),
            1,
            "not beside the running one"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(r.started.load(Ordering::SeqCst), 2, "right after it");
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(r.started.load(Ordering::SeqCst), 2, "the requests were one");
        // Asked for while idle: at once.
        r.req.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(r.started.load(Ordering::SeqCst), 3);
        assert_eq!(r.max_running.load(Ordering::SeqCst), 1);
        r.shutdown.cancel();
        assert_eq!(r.task.await.unwrap(), Exit::Shutdown);
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_start_and_on_each_tick() {
        let r = rig(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(r.started.load(Ordering::SeqCst), 1);
        for _ in 0..3 {
            r.tx.send(()).await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        assert_eq!(r.started.load(Ordering::SeqCst), 4);
        r.shutdown.cancel();
        assert_eq!(r.task.await.unwrap(), Exit::Shutdown);
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_during_a_cycle_are_skipped_and_counted() {
        let r = rig(Duration::from_secs(150));
        tokio::time::sleep(Duration::from_secs(60)).await;
        r.tx.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        r.tx.send(()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
        r.tx.send(()).await.unwrap(); // t=180: the first cycle ended at 150
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(r.started.load(Ordering::SeqCst), 2);
        assert_eq!(
            r.max_running.load(Ordering::SeqCst),
            1,
            "cycles never overlap"
        );
        assert!(
            r.health
                .metrics()
                .encode()
                .contains("genesys_queue_sync_skipped_ticks_total 2")
        );
        r.shutdown.cancel();
        r.task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn no_ticks_for_three_periods_is_a_stall() {
        let r = rig(Duration::from_secs(1));
        let exit = r.task.await.unwrap();
        match exit {
            Exit::Stalled(d) => assert!(
                d > Duration::from_secs(180) && d < Duration::from_secs(183),
                "{d:?}"
            ),
            other => panic!("expected a stall, got {other:?}"),
        }
        drop(r.tx);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cycle_slower_than_three_periods_is_not_a_stall_while_ticks_arrive() {
        let r = rig(Duration::from_secs(400));
        for _ in 0..7 {
            tokio::time::sleep(Duration::from_secs(60)).await;
            r.tx.send(()).await.unwrap();
        }
        // t=420: the first cycle ended at 400, this tick started the second.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!r.task.is_finished(), "no stall exit during a slow cycle");
        assert_eq!(r.started.load(Ordering::SeqCst), 2);
        assert_eq!(r.health.stalled_for(), None);
        r.shutdown.cancel();
        assert_eq!(r.task.await.unwrap(), Exit::Shutdown);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_cycle_is_a_stall_even_while_ticks_arrive() {
        let r = rig(Duration::from_secs(24 * 3600));
        let tx = r.tx.clone();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                if tx.send(()).await.is_err() {
                    return;
                }
            }
        });
        match r.task.await.unwrap() {
            Exit::Stalled(d) => assert!(
                d > crate::health::hung_after(Duration::from_secs(60))
                    && d < Duration::from_secs(15 * 60 + 3),
                "{d:?}"
            ),
            other => panic!("expected a stall, got {other:?}"),
        }
        ticker.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_abandons_a_long_cycle_within_the_grace() {
        let r = rig(Duration::from_secs(3600));
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t0 = tokio::time::Instant::now();
        r.shutdown.cancel();
        assert_eq!(r.task.await.unwrap(), Exit::Shutdown);
        assert!(t0.elapsed() <= Duration::from_secs(7));
        assert!(r.abandon.is_cancelled());
        assert_eq!(r.running.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_lets_a_short_cycle_finish() {
        let r = rig(Duration::from_secs(3));
        tokio::time::sleep(Duration::from_secs(1)).await;
        r.shutdown.cancel();
        assert_eq!(r.task.await.unwrap(), Exit::Shutdown);
        assert!(!r.abandon.is_cancelled());
    }
}
