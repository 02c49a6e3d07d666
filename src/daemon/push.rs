//! Push mode in the run loop: starting and stopping the notification session, and the
//! loop that turns its events into row writes under the cycle lock.

use std::sync::Arc;

use tokio::sync::{Mutex, Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::Cycles;
use crate::push::driver::PushState;
use crate::push::session::{self, PushEvent};

/// Starts and stops push mode: the notification session and the loop that turns its
/// events into row writes.
pub(super) struct Pusher {
    pub(super) state: Arc<Mutex<Cycles>>,
    pub(super) settings: session::Settings,
    pub(super) reconcile: mpsc::Sender<()>,
    /// The daemon's own stop: push ends with it.
    pub(super) stop: CancellationToken,
}

impl Pusher {
    /// Starts push on the pipeline's client (the same request budget as the cycles).
    /// The session subscribes once a cycle has resolved the selection.
    pub(super) fn start(&self, cycles: &mut Cycles) {
        let stop = self.stop.child_token();
        let client = cycles.syncer.client().clone();
        let metrics = client.metrics().push.clone();
        let gauges = client.metrics().queues.clone();
        let handle = session::spawn(client, self.settings.clone(), stop.clone());
        let wake = Arc::new(Notify::new());
        let cfg = cycles.syncer.config().clone();
        cycles.syncer.keep_raw(true);
        cycles.push = Some((
            PushState::new(&cfg, handle.selection, metrics, gauges, wake.clone()),
            stop.clone(),
        ));
        tracing::info!(
            min_interval = %humantime::format_duration(cfg.push_min_interval),
            "push mode: rows follow Notifications API events; the cron schedule reconciles"
        );
        tokio::spawn(push_loop(
            self.state.clone(),
            handle.events,
            wake,
            self.reconcile.clone(),
            stop,
        ));
    }

    pub(super) fn stop(&self, cycles: &mut Cycles) {
        if let Some((_, stop)) = cycles.push.take() {
            stop.cancel();
            tracing::info!("push mode off: polling only");
        }
        cycles.syncer.keep_raw(false);
    }
}

/// Feeds the session's events into the live state and writes due rows, under the
/// cycle lock (so never during a cycle), until push is stopped.
async fn push_loop(
    state: Arc<Mutex<Cycles>>,
    mut events: mpsc::Receiver<PushEvent>,
    wake: Arc<Notify>,
    reconcile: mpsc::Sender<()>,
    stop: CancellationToken,
) {
    // Events taken per lock: a burst is merged in batches, not one lock per event.
    const BATCH: usize = 1024;
    let mut next: Option<tokio::time::Instant> = None;
    let mut down_logged = false;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => return,
            ev = events.recv() => {
                let Some(ev) = ev else { return };
                let mut batch = vec![ev];
                while batch.len() < BATCH {
                    match events.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(_) => break,
                    }
                }
                let mut st = state.lock().await;
                if stop.is_cancelled() {
                    return;
                }
                let Some((push, _)) = st.push.as_mut() else { return };
                for ev in batch {
                    match ev {
                        PushEvent::Observation(ev, arrived) => push.on_event(&ev, arrived),
                        PushEvent::Up => {
                            down_logged = false;
                            // One reconciliation poll: events were lost while down.
                            let _ = reconcile.try_send(());
                        }
                        PushEvent::Down => {
                            if !down_logged {
                                down_logged = true;
                                tracing::warn!("push down: some notification socket is not open; its queues follow the cron schedule until it is back");
                            }
                        }
                    }
                }
                next = push.next_ready();
            }
            () = wake.notified() => {
                let st = state.lock().await;
                next = st.push.as_ref().and_then(|(p, _)| p.next_ready());
            }
            () = sleep_until(next) => {
                let mut st = state.lock().await;
                if stop.is_cancelled() {
                    return;
                }
                let Cycles { syncer, push, .. } = &mut *st;
                let Some((push, _)) = push.as_mut() else { return };
                next = push.write_due(syncer).await;
            }
        }
    }
}

async fn sleep_until(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
