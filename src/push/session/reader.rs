//! One channel's socket, read by a task of its own: the handshake, heartbeats and the
//! silence limit (a ping at half of it), and every observation event put into the
//! coalescer; what happens to the socket is reported to the supervisor.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::genesys::Client;
use crate::genesys::notifications::Channel;
use crate::genesys::notifications::events::{self, Message};
use crate::genesys::notifications::liveness::Liveness;
use crate::genesys::notifications::socket::{Socket, SocketError};
use crate::push::coalesce::{self, Pushed};
use crate::push::metrics::PushMetrics;

/// What a socket task reports.
#[derive(Debug)]
pub(super) enum SocketReport {
    /// The handshake succeeded.
    Open,
    /// The first heartbeat arrived: the socket works end to end.
    Healthy,
    /// The socket is gone, and why.
    Closed(Closed),
}

#[derive(Debug)]
pub(super) enum Closed {
    /// The channel no longer exists (handshake 404/410, or the server said so).
    ChannelGone,
    /// Silent for longer than the heartbeat allows.
    Silent,
    Error(String),
}

/// Reads one channel's socket until it closes or falls silent.
#[allow(clippy::too_many_arguments)]
pub(super) async fn read_socket(
    client: Client,
    channel: Channel,
    timeout: Duration,
    slot: usize,
    generation: u64,
    reports: mpsc::Sender<(usize, u64, SocketReport)>,
    events: Arc<coalesce::Shared>,
    metrics: PushMetrics,
) {
    let closed = read_until_closed(
        &client, &channel, timeout, slot, generation, &reports, &events, &metrics,
    )
    .await;
    let _ = reports
        .send((slot, generation, SocketReport::Closed(closed)))
        .await;
}

#[allow(clippy::too_many_arguments)]
async fn read_until_closed(
    client: &Client,
    channel: &Channel,
    timeout: Duration,
    slot: usize,
    generation: u64,
    reports: &mpsc::Sender<(usize, u64, SocketReport)>,
    events: &coalesce::Shared,
    metrics: &PushMetrics,
) -> Closed {
    let mut socket = match Socket::connect(client.http(), channel.connect_uri(), timeout).await {
        Ok(s) => s,
        Err(SocketError::Refused(404 | 410)) => return Closed::ChannelGone,
        Err(e) => return Closed::Error(e.to_string()),
    };
    let _ = reports.send((slot, generation, SocketReport::Open)).await;
    let mut live = Liveness::new(Instant::now());
    let mut healthy = false;
    let mut pinged = false;
    loop {
        // Half the silence limit without a message: ask for a pong before giving up.
        let ping_at = live.deadline() - live.silence_limit() / 2;
        // A message already there is read before the silence is judged: a reader that
        // was not scheduled for a while (a busy machine) finds both ready at once.
        let text = tokio::select! {
            biased;
            t = socket.next_text() => t,
            () = tokio::time::sleep_until(ping_at), if !pinged => {
                pinged = true;
                if let Err(e) = socket.ping().await {
                    return Closed::Error(e.to_string());
                }
                continue;
            }
            () = tokio::time::sleep_until(live.deadline()) => {
                socket.close().await;
                return Closed::Silent;
            }
        };
        let text = match text {
            Ok(t) => t,
            Err(e) => return Closed::Error(e.to_string()),
        };
        let now = Instant::now();
        pinged = false;
        match events::parse(&text) {
            Ok(Message::Heartbeat) => {
                live.message(now, true);
                metrics.event("heartbeat");
                if !healthy {
                    healthy = true;
                    let _ = reports
                        .send((slot, generation, SocketReport::Healthy))
                        .await;
                }
            }
            Ok(Message::Metadata) => {
                live.message(now, false);
                metrics.event("metadata");
            }
            Ok(Message::SocketClosing) => {
                // Maintenance: reconnect now rather than lose the events until the drop.
                socket.close().await;
                return Closed::Error("the server announced it is closing the socket".into());
            }
            Ok(Message::OtherTopic) => {
                live.message(now, false);
                metrics.event("other_topic");
            }
            Ok(Message::Observation(ev)) => {
                live.message(now, false);
                match events.push(ev, now) {
                    Pushed::Queued => {}
                    Pushed::Coalesced(n) => {
                        metrics
                            .events
                            .get_or_create(&vec![("result", "coalesced".to_owned())])
                            .inc_by(n);
                    }
                    Pushed::Dropped => metrics.event("dropped"),
                }
            }
            Err(e) => {
                live.message(now, false);
                metrics.event("malformed");
                tracing::debug!(error = %e, "ignored a notification");
            }
        }
    }
}
