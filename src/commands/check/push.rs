//! `check` in push mode: what `run` needs for push, proven without hurting anyone.
//!
//! - The OAuth client's channels are counted (`GET /api/v2/notifications/channels`) against
//!   what `run` adds (one per 1,000 queues). Genesys keeps 20 per client and silently
//!   removes the oldest when a 21st is created, so a client shared with another
//!   integration would take that integration's channels away: said, with the fix.
//! - When one more channel evicts nothing, even counting what `run` adds after it: one
//!   channel is created, subscribed to the first selected queue's observation topic (the
//!   PUT `run` makes: a refusal names what is missing), its WebSocket opened through the
//!   same HTTP client (proxy, roots) and pinged, then its subscriptions are removed
//!   (`DELETE .../subscriptions`), so it carries nothing and expires. What is left is said.
//!   Otherwise nothing is created and the line says why.
//! - What push costs, beside poll.

use std::time::Duration;

use super::probe::Probe;
use crate::commands::estimate::Estimate;
use crate::config::{Config, WriteMode};
use crate::genesys::notifications::socket::Socket;
use crate::genesys::notifications::{self as api, MAX_CHANNELS, MAX_TOPICS_PER_CHANNEL, events};
use crate::genesys::permissions::{self, Call};
use crate::genesys::{ApiError, Client};
use crate::push::session::Settings;
use crate::sync::Target;
use crate::text::count;

/// How long the probe waits for the answer to its ping.
const PONG_WAIT: Duration = Duration::from_secs(5);

fn failed(call: Call, e: &ApiError, scope: &str) -> Probe {
    Probe::Failed(permissions::explain_403(call, e, scope).unwrap_or_else(|| e.to_string()))
}

/// The channels `run` opens for `n` queues.
pub fn channels_needed(n: usize) -> usize {
    n.div_ceil(MAX_TOPICS_PER_CHANNEL).min(MAX_CHANNELS)
}

/// The push lines of `check`, in order.
pub async fn check(
    client: &Client,
    cfg: &Config,
    targets: &[Target],
) -> Vec<(&'static str, Probe)> {
    let mut out = Vec::new();
    let n = targets.len();
    let needed = channels_needed(n);
    let existing = match api::list_channels(client).await {
        Ok(c) => c.len(),
        Err(e) => {
            out.push((
                "push channels",
                failed(Call::ListChannels, &e, "the OAuth client"),
            ));
            out.push(("push cost", cost(cfg, n)));
            return out;
        }
    };
    let holds = format!(
        "this OAuth client holds {} (Genesys keeps {MAX_CHANNELS} per client)",
        count(existing, "notification channel", "notification channels")
    );
    let adds = format!(
        "`run` adds {} for {} (up to 1,000 topics each)",
        needed,
        count(n, "queue", "queues")
    );
    if existing + needed > MAX_CHANNELS {
        let evicted = existing + needed - MAX_CHANNELS;
        out.push((
            "push channels",
            Probe::NotProven(format!(
                "{holds}; {adds}: creating them EVICTS this client's oldest {}, and any other integration using this OAuth client loses those channels (its notifications stop without an error; channels an earlier run of this daemon left go too, harmlessly); fix: give genesys-queue-sync an OAuth client of its own",
                count(evicted, "channel", "channels")
            )),
        ));
    } else {
        out.push((
            "push channels",
            Probe::Proven(format!(
                "{holds}; {adds}: {} left, none evicted",
                MAX_CHANNELS - existing - needed
            )),
        ));
    }
    let probe = match targets.first() {
        None => Probe::NotProven("no queue selected, nothing to subscribe".into()),
        Some(_) if existing + needed + 1 > MAX_CHANNELS => Probe::NotProven(format!(
            "skipped, no channel created: one more would evict a channel of this OAuth client ({existing} held, `run` adds {needed}, {MAX_CHANNELS} kept); the topic's permission and the WebSocket path are not proven"
        )),
        Some(first) => probe(client, cfg, first).await,
    };
    out.push(("push probe", probe));
    out.push(("push cost", cost(cfg, n)));
    out
}

/// One channel: created, subscribed to `first`'s topic, socket opened and pinged,
/// emptied.
async fn probe(client: &Client, cfg: &Config, first: &Target) -> Probe {
    let channel = match api::create_channel(client).await {
        Ok(c) => c,
        Err(e) => return failed(Call::CreateChannel, &e, "the OAuth client"),
    };
    let left = match channel.expires {
        Some(t) => format!(
            "left behind: 1 channel with no subscriptions; it expires by itself at {} and counts toward the client's {MAX_CHANNELS} until then",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
        None => format!(
            "left behind: 1 channel with no subscriptions; it expires by itself within 24 h and counts toward the client's {MAX_CHANNELS} until then"
        ),
    };
    let topic = events::observation_topic(&first.id);
    let refused = match api::set_subscriptions(client, &channel, std::slice::from_ref(&topic)).await
    {
        Ok(s) if s.rejected.is_empty() && s.accepted > 0 => None,
        Ok(s) => Some(format!(
            "Genesys did not take the observation topic of \"{}\": {}; fix: add what it names to a role of the OAuth client, granted in the division that holds the queue",
            first.name,
            s.rejected
                .first()
                .map_or("not in the answer", |(_, r)| r.as_str())
        )),
        Err(e) => Some(
            permissions::explain_403(Call::Subscribe, &e, "the queues")
                .map(|l| {
                    format!(
                        "subscribing to the observation topic of \"{}\": {l}",
                        first.name
                    )
                })
                .unwrap_or_else(|| e.to_string()),
        ),
    };
    if let Some(why) = refused {
        // Nothing was subscribed; the channel itself stays until it expires.
        return Probe::Failed(format!("{why}; {left}"));
    }
    let socket = socket(
        client,
        &channel,
        cfg.request_timeout.max(Duration::from_secs(5)),
    )
    .await;
    let emptied = api::delete_subscriptions(client, &channel).await;
    let left = match emptied {
        Ok(()) => left,
        Err(e) => format!(
            "left behind: 1 channel still subscribed to one topic (`DELETE .../subscriptions` failed: {e}); it expires by itself within 24 h"
        ),
    };
    match socket {
        Ok(pong) => Probe::Proven(format!(
            "channel created, subscribed to the observation topic of \"{}\" (PUT .../subscriptions, what `run` sends), WebSocket opened through the same HTTP client and proxy as the API calls{}, subscriptions removed; {left}",
            first.name,
            if pong {
                " and a ping answered"
            } else {
                " (no answer to a ping within 5 s)"
            }
        )),
        Err(e) => Probe::Failed(format!(
            "channel created and subscribed, but the WebSocket did not open: {e}; fix: allow outbound WebSocket (wss, port 443) to Genesys' streaming host, through the proxy if one is configured; {left}"
        )),
    }
}

/// Opens the channel's socket, pings, and says whether an answer came.
async fn socket(
    client: &Client,
    channel: &api::Channel,
    timeout: Duration,
) -> Result<bool, String> {
    let mut s = Socket::connect(client.http(), channel.connect_uri(), timeout)
        .await
        .map_err(|e| e.to_string())?;
    let pong = match s.ping().await {
        Ok(()) => matches!(
            tokio::time::timeout(PONG_WAIT, s.next_text()).await,
            Ok(Ok(_))
        ),
        Err(_) => false,
    };
    s.close().await;
    Ok(pong)
}

/// Push mode's cost beside poll's.
fn cost(cfg: &Config, n: usize) -> Probe {
    let needed = channels_needed(n);
    let est = Estimate::new(cfg, n);
    let poll_per_minute = if cfg.write_mode == WriteMode::Import {
        est.import_per_minute()
    } else {
        est.rows_per_minute(0.1)
    };
    // Each channel is resubscribed (and its new expiry read) once `renew_at` of its life
    // has passed.
    let renewals = needed as f64 * 2.0 / Settings::default().renew_at;
    Probe::Proven(format!(
        "{} for {}: {needed} POST + {needed} PUT at start, about {renewals:.0} requests a day to renew them (a PUT and a listing per channel every ~22 h), nothing per event; plus one row write per row change, at most one per row every {}; the reconciliation poll (the cron schedule) costs what poll mode costs: about {poll_per_minute:.0} requests/minute, {:.0}/day",
        count(needed, "channel", "channels"),
        count(n, "topic", "topics"),
        humantime::format_duration(cfg.push_min_interval),
        poll_per_minute * 1440.0
    ))
}
