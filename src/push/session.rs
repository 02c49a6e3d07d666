//! The push session: keeps one notification channel per up to 1,000 selected queues
//! subscribed and its socket open, and hands every observation event to the daemon.
//!
//! One supervisor task owns the channels (creation, subscriptions, renewal, reconnects,
//! all through the ordinary request pipeline and budget) and one task per open socket
//! reads it (`reader`). Events go from the socket task into a coalescer (per queue and media group,
//! see [`super::coalesce`]) that a forwarder task empties into the daemon, stamped with
//! their arrival, so a busy daemon never stops a socket from being read; the supervisor tells the daemon when push is up (after every (re)connect the
//! daemon reconciles with one poll, since events sent while no socket was open are lost)
//! and when it is down.
//!
//! When Genesys refuses channels (403, 429, 5xx, anything), push stays down, polling goes
//! on untouched, the refusal is logged once (and its recovery once), and creation is tried
//! again with backoff.

mod reader;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rand::RngExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::channels::{self, Assignment};
use super::coalesce::{self, Arrival};
use super::metrics::PushMetrics;
use crate::genesys::notifications::events::{self, ObservationEvent};
use crate::genesys::notifications::liveness::Backoff;
use crate::genesys::notifications::{self as api, Channel, MAX_CHANNELS, MAX_TOPICS_PER_CHANNEL};
use crate::genesys::{ApiError, Client};
use reader::{Closed, SocketReport, read_socket};

/// Tunables; tests shrink the delays.
#[derive(Debug, Clone)]
pub struct Settings {
    pub reconnect_base: Duration,
    pub reconnect_max: Duration,
    /// Channel creation refused: first retry after this, doubling up to `refused_max`.
    pub refused_base: Duration,
    pub refused_max: Duration,
    /// A channel is resubscribed once this fraction of its remaining life has passed.
    pub renew_at: f64,
    pub connect_timeout: Duration,
    pub topics_per_channel: usize,
    pub max_channels: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            reconnect_base: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            refused_base: Duration::from_secs(30),
            refused_max: Duration::from_secs(600),
            renew_at: 0.9,
            connect_timeout: Duration::from_secs(10),
            topics_per_channel: MAX_TOPICS_PER_CHANNEL,
            max_channels: MAX_CHANNELS,
        }
    }
}

/// What the session tells the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum PushEvent {
    /// An observation event (maybe several of one queue and media group, coalesced while
    /// the daemon was busy), with when its parts arrived.
    Observation(ObservationEvent, Arrival<Instant>),
    /// Every channel's socket is open (again): events may have been lost before, so
    /// reconcile with one poll.
    Up,
    /// Some channel's socket is down: its queues' events are being lost until it is back.
    Down,
}

/// The daemon's end of a session.
pub struct Handle {
    pub selection: watch::Sender<Vec<String>>,
    pub events: mpsc::Receiver<PushEvent>,
    pub task: JoinHandle<()>,
}

/// Starts a session for the queue ids sent on the returned selection sender.
pub fn spawn(client: Client, settings: Settings, shutdown: CancellationToken) -> Handle {
    let (sel_tx, sel_rx) = watch::channel(Vec::new());
    // Bounded, and only the forwarder waits on it: the socket readers put events into
    // the coalescer, which holds at most two per queue and media group however long the
    // daemon is busy, so a reader never stops reading (and never misses a heartbeat).
    let (ev_tx, ev_rx) = mpsc::channel(4096);
    let pending = Arc::new(coalesce::Shared::default());
    tokio::spawn(forward(pending.clone(), ev_tx.clone(), shutdown.clone()));
    let metrics = client.metrics().push.clone();
    let sup = Supervisor {
        client,
        settings,
        shutdown,
        metrics,
        events: ev_tx,
        pending,
        slots: Vec::new(),
        left_out_logged: 0,
        refused: None,
        was_up: false,
    };
    let task = tokio::spawn(sup.run(sel_rx));
    Handle {
        selection: sel_tx,
        events: ev_rx,
        task,
    }
}

struct Slot {
    queues: Vec<String>,
    channel: Option<Channel>,
    subscribed: bool,
    /// When to resubscribe (renewal before expiry).
    renew_at: Option<Instant>,
    /// A channel's life as its creation answer gave it (24 h documented).
    lifetime: Duration,
    socket: Option<(u64, JoinHandle<()>)>,
    open: bool,
    backoff: Backoff,
    retry_at: Option<Instant>,
    /// Whether this slot's socket was open before (so a new open is a reconnect).
    was_open: bool,
}

struct Supervisor {
    client: Client,
    settings: Settings,
    shutdown: CancellationToken,
    metrics: PushMetrics,
    events: mpsc::Sender<PushEvent>,
    pending: Arc<coalesce::Shared>,
    slots: Vec<Slot>,
    left_out_logged: usize,
    /// Backoff while channel creation or subscription is refused, and when it started.
    refused: Option<(Backoff, Instant)>,
    was_up: bool,
}

fn jitter() -> f64 {
    rand::rng().random_range(0.0..=1.0)
}

impl Supervisor {
    async fn run(mut self, mut selection: watch::Receiver<Vec<String>>) {
        let (rep_tx, mut rep_rx) = mpsc::channel::<(usize, u64, SocketReport)>(64);
        let mut generation: u64 = 0;
        loop {
            // Act on whatever is due, then sleep until the next thing is.
            self.work(&rep_tx, &mut generation).await;
            let wake = self.next_wake();
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                changed = selection.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let wanted = selection.borrow_and_update().clone();
                    self.replan(&wanted);
                }
                Some((slot, generation, report)) = rep_rx.recv() => {
                    self.on_report(slot, generation, report).await;
                }
                () = sleep_until(wake) => {}
            }
        }
        for slot in &mut self.slots {
            if let Some((_, task)) = slot.socket.take() {
                task.abort();
            }
        }
        self.metrics.connected.set(0);
    }

    fn replan(&mut self, wanted: &[String]) {
        let current: Assignment = self.slots.iter().map(|s| s.queues.clone()).collect();
        let plan = channels::assign(
            &current,
            wanted,
            self.settings.topics_per_channel,
            self.settings.max_channels,
        );
        if plan.left_out.len() != self.left_out_logged {
            self.left_out_logged = plan.left_out.len();
            if !plan.left_out.is_empty() {
                tracing::warn!(
                    queues = plan.left_out.len(),
                    "more queues than {} notification channels of {} topics hold; those are only polled",
                    self.settings.max_channels,
                    self.settings.topics_per_channel
                );
            }
        }
        let changed = plan.changed(&current);
        for i in changed {
            match self.slots.get_mut(i) {
                Some(slot) => {
                    slot.queues = plan.slots[i].clone();
                    slot.subscribed = false;
                }
                None => self.slots.push(Slot {
                    queues: plan.slots[i].clone(),
                    channel: None,
                    subscribed: false,
                    renew_at: None,
                    lifetime: api::CHANNEL_LIFETIME,
                    socket: None,
                    open: false,
                    backoff: Backoff::new(
                        self.settings.reconnect_base,
                        self.settings.reconnect_max,
                    ),
                    retry_at: None,
                    was_open: false,
                }),
            }
        }
        // Channels past the plan's end are no longer needed: empty them and let them go
        // (an unsubscribed channel with no socket expires on its own).
        while self.slots.len() > plan.slots.len() {
            if let Some(mut slot) = self.slots.pop()
                && let Some((_, task)) = slot.socket.take()
            {
                task.abort();
                if slot.open {
                    self.metrics.connected.dec();
                }
            }
        }
        self.report_state();
    }

    fn next_wake(&self) -> Option<Instant> {
        let refused = self.refused_until();
        self.slots
            .iter()
            .flat_map(|s| [s.retry_at, s.renew_at])
            .flatten()
            .chain(refused)
            .min()
    }

    fn refused_until(&self) -> Option<Instant> {
        self.refused.as_ref().map(|(_, until)| *until)
    }

    /// Creates, subscribes, renews and connects whatever slot needs it and may now.
    async fn work(
        &mut self,
        rep_tx: &mpsc::Sender<(usize, u64, SocketReport)>,
        generation: &mut u64,
    ) {
        let now = Instant::now();
        if self.refused_until().is_some_and(|t| t > now) {
            return;
        }
        for i in 0..self.slots.len() {
            if self.shutdown.is_cancelled() {
                return;
            }
            if self.slots[i].retry_at.is_some_and(|t| t > now) {
                continue;
            }
            self.slots[i].retry_at = None;
            if self.slots[i].renew_at.is_some_and(|t| t <= now) && self.slots[i].subscribed {
                self.slots[i].subscribed = false;
                self.metrics.renewals.inc();
                tracing::info!(
                    channel = i + 1,
                    "renewing a notification channel before its expiry"
                );
            }
            if self.slots[i].channel.is_none() {
                match api::create_channel(&self.client).await {
                    Ok(c) => {
                        if let Some(exp) = c.expires {
                            let life = (exp - Utc::now()).to_std().unwrap_or_default();
                            if !life.is_zero() {
                                self.slots[i].lifetime = life;
                            }
                        }
                        self.slots[i].channel = Some(c);
                        self.slots[i].subscribed = false;
                        self.slots[i].renew_at = None;
                    }
                    Err(e) => return self.refuse(e),
                }
            }
            if !self.slots[i].subscribed {
                let Some(channel) = self.slots[i].channel.clone() else {
                    continue;
                };
                let topics: Vec<String> = self.slots[i]
                    .queues
                    .iter()
                    .map(|q| events::observation_topic(q))
                    .collect();
                match api::set_subscriptions(&self.client, &channel, &topics).await {
                    Ok(sub) => {
                        if !sub.rejected.is_empty() {
                            tracing::warn!(
                                channel = i + 1,
                                rejected = sub.rejected.len(),
                                reason = %sub.rejected[0].1,
                                "Genesys did not take some queue topics; those queues are only polled"
                            );
                        }
                        // Subscribing gives the channel another lifetime. The PUT's answer
                        // does not say until when: after the first subscription the
                        // creation answer's expiry holds; after a renewal the channel
                        // listing is asked (one request a day per channel), and when it
                        // does not say, the lifetime seen at creation is assumed.
                        let renewal = self.slots[i].renew_at.is_some();
                        let listed = if renewal {
                            api::channel_expiry(&self.client, &channel)
                                .await
                                .ok()
                                .flatten()
                        } else {
                            None
                        };
                        let slot = &mut self.slots[i];
                        slot.subscribed = true;
                        let now = Utc::now();
                        let expires = listed
                            .or(channel.expires.filter(|_| !renewal))
                            .unwrap_or_else(|| {
                                now + chrono::Duration::from_std(slot.lifetime)
                                    .unwrap_or(chrono::Duration::MAX)
                            });
                        let left = (expires - now).to_std().unwrap_or_default();
                        slot.renew_at = Some(Instant::now() + left.mul_f64(self.settings.renew_at));
                    }
                    Err(e) if e.status() == Some(404) => {
                        tracing::info!(
                            channel = i + 1,
                            "notification channel gone (expired?); creating a new one"
                        );
                        self.drop_channel(i);
                        self.slots[i].retry_at = Some(Instant::now());
                        continue;
                    }
                    Err(ApiError::Cancelled) => return,
                    Err(e) => return self.refuse(e),
                }
            }
            self.recovered();
            if self.slots[i].socket.is_none() {
                let Some(channel) = self.slots[i].channel.clone() else {
                    continue;
                };
                *generation += 1;
                let task = tokio::spawn(read_socket(
                    self.client.clone(),
                    channel,
                    self.settings.connect_timeout,
                    i,
                    *generation,
                    rep_tx.clone(),
                    self.pending.clone(),
                    self.metrics.clone(),
                ));
                self.slots[i].socket = Some((*generation, task));
            }
        }
    }

    fn drop_channel(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.channel = None;
        slot.subscribed = false;
        slot.renew_at = None;
        if let Some((_, task)) = slot.socket.take() {
            task.abort();
        }
        if slot.open {
            slot.open = false;
            self.metrics.connected.dec();
        }
    }

    fn refuse(&mut self, e: ApiError) {
        if matches!(e, ApiError::Cancelled) {
            return;
        }
        self.metrics.channel_failures.inc();
        let (mut backoff, first) = match self.refused.take() {
            Some((b, _)) => (b, false),
            None => (
                Backoff::new(self.settings.refused_base, self.settings.refused_max),
                true,
            ),
        };
        let wait = backoff.next(jitter());
        if first {
            tracing::warn!(error = %e, retry_in_s = wait.as_secs(), "push unavailable: Genesys refused the notification channel; polling goes on, push is retried with backoff");
        } else {
            tracing::debug!(error = %e, retry_in_s = wait.as_secs(), "notification channel still refused");
        }
        self.refused = Some((backoff, Instant::now() + wait));
        self.report_state();
    }

    fn recovered(&mut self) {
        if self.refused.take().is_some() {
            tracing::info!("notification channels accepted again; push resumes");
        }
    }

    async fn on_report(&mut self, i: usize, generation: u64, report: SocketReport) {
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        if slot.socket.as_ref().map(|(g, _)| *g) != Some(generation) {
            return; // a socket that was replaced already
        }
        match report {
            SocketReport::Open => {
                if !slot.open {
                    slot.open = true;
                    self.metrics.connected.inc();
                }
                if slot.was_open {
                    self.metrics.reconnects.inc();
                    tracing::info!(channel = i + 1, "notification socket reconnected");
                }
                slot.was_open = true;
            }
            SocketReport::Healthy => slot.backoff.reset(),
            SocketReport::Closed(why) => {
                slot.socket = None;
                if slot.open {
                    slot.open = false;
                    self.metrics.connected.dec();
                }
                let wait = slot.backoff.next(jitter());
                slot.retry_at = Some(Instant::now() + wait);
                match &why {
                    Closed::ChannelGone => {
                        tracing::info!(
                            channel = i + 1,
                            "notification channel gone (expired or removed); creating a new one"
                        );
                        slot.channel = None;
                        slot.subscribed = false;
                        slot.renew_at = None;
                    }
                    Closed::Silent => tracing::warn!(
                        channel = i + 1,
                        retry_in_ms = wait.as_millis() as u64,
                        "notification socket silent past its heartbeat; reconnecting"
                    ),
                    Closed::Error(e) => {
                        tracing::warn!(channel = i + 1, error = %e, retry_in_ms = wait.as_millis() as u64, "notification socket lost; reconnecting")
                    }
                }
            }
        }
        self.report_state();
    }

    /// Tells the daemon when push as a whole goes up or down.
    fn report_state(&mut self) {
        let up = !self.slots.is_empty() && self.slots.iter().all(|s| s.open);
        if up != self.was_up {
            self.was_up = up;
            let ev = if up { PushEvent::Up } else { PushEvent::Down };
            if up {
                tracing::info!(channels = self.slots.len(), "push connected");
            }
            // Never blocks the supervisor: a full queue means the daemon is busy, and a
            // lost Up/Down is corrected by the next one or the next poll.
            let _ = self.events.try_send(ev);
        }
    }
}

/// Hands pending events to the daemon as fast as it takes them; the only task that
/// waits for the daemon.
async fn forward(
    pending: Arc<coalesce::Shared>,
    events: mpsc::Sender<PushEvent>,
    shutdown: CancellationToken,
) {
    loop {
        let batch = tokio::select! {
            () = shutdown.cancelled() => return,
            b = pending.next() => b,
        };
        for (ev, arrival) in batch {
            tokio::select! {
                () = shutdown.cancelled() => return,
                sent = events.send(PushEvent::Observation(ev, arrival)) => {
                    if sent.is_err() {
                        return; // the daemon stopped
                    }
                }
            }
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
