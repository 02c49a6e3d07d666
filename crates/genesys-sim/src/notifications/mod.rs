//! The Notifications API: channels, their subscriptions, the streaming WebSocket, and the
//! publisher that turns changes in the org into queue observation events.
//!
//! As Genesys documents it: a channel lives 24 h after its creation or last subscription
//! change; channels belong to the OAuth client that created it (its token's client): the
//! listing shows that client's channels, another client's channel answers 404; an OAuth
//! client holds at most 20 channels (creating a 21st removes that client's oldest,
//! channels without a socket first); `DELETE .../subscriptions` empties a channel (its
//! socket stays open and receives heartbeats only); a channel holds at most 1,000 topics; one socket per
//! channel (a second connection closes the first); heartbeats on `channel.metadata`; events
//! published on change, at most once a second per topic; events sent while no socket is
//! open are lost.
//!
//! What an observation event carries is not documented beyond "current waiting
//! conversations in queue and the current agent routing statuses of queue members", so
//! the simulator sends exactly that: the user group (`oOnQueueUsers`,
//! `oUserRoutingStatuses`, by routing status) and one group per media type (`oWaiting`,
//! `oInteracting`, `oAlerting`), only the groups that changed. Presence metrics are never
//! in an event: they come from the observation query only. A qualifier that dropped to
//! zero is sent with count 0, and a metric with nothing left is sent with count 0, so a
//! client reading "absent qualifier of a present metric = 0" and one reading the zeros
//! both arrive at the truth.

mod events;
pub(crate) mod stream;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::org::Org;
use crate::wire::{ApiError, iso, new_id};
use events::{Snapshot, messages, snapshot};

pub(crate) const MAX_CHANNELS: usize = 20;
pub(crate) const MAX_TOPICS: usize = 1000;
const HEARTBEAT_TOPIC: &str = "channel.metadata";

/// How the notification service behaves; `Default` is Genesys' documented behaviour.
#[derive(Clone, Debug)]
pub struct NotificationOptions {
    /// Between two heartbeats on an open socket.
    pub heartbeat: Duration,
    /// A channel's life after its creation or last subscription change.
    pub channel_lifetime: Duration,
    /// At most one publication per topic this often.
    pub min_event_interval: Duration,
    /// How often the publisher looks for changes.
    pub scan: Duration,
}

impl Default for NotificationOptions {
    fn default() -> Self {
        NotificationOptions {
            heartbeat: Duration::from_secs(30),
            channel_lifetime: Duration::from_secs(24 * 3600),
            min_event_interval: Duration::from_secs(1),
            scan: Duration::from_millis(100),
        }
    }
}

/// What a test can see of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    pub id: String,
    /// The OAuth client that created it.
    pub owner: String,
    pub topics: usize,
    pub connected: bool,
}

/// Counters of what the service did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotificationStats {
    pub channels_created: u64,
    /// Channels removed because a 21st was created.
    pub channels_evicted: u64,
    pub channels_expired: u64,
    pub sockets_opened: u64,
    /// Observation messages delivered to a socket.
    pub events_sent: u64,
    /// Observation messages lost: no socket open, or dropped by the `drop_events` fault.
    pub events_lost: u64,
    pub heartbeats_sent: u64,
}

/// A message for a socket task.
#[derive(Debug)]
pub(crate) enum Out {
    Text(String),
    /// Close with this code and reason.
    Close(u16, String),
    /// Drop the connection without a close frame.
    Drop,
}

struct Conn {
    id: u64,
    tx: mpsc::UnboundedSender<Out>,
    /// Receives nothing any more (a half-open connection).
    silenced: bool,
    last_heartbeat: Instant,
}

struct Channel {
    owner: String,
    seq: u64,
    topics: BTreeSet<String>,
    expires: Instant,
    expires_wall: chrono::DateTime<Utc>,
    conn: Option<Conn>,
}

struct TopicState {
    last: Snapshot,
    published_at: Option<Instant>,
}

pub(crate) struct Notifications {
    opts: NotificationOptions,
    channels: BTreeMap<String, Channel>,
    next_seq: u64,
    next_conn: u64,
    topics: BTreeMap<String, TopicState>,
    drop_events: bool,
    /// The permission an observation topic needs, when one is required (the documentation
    /// we have does not name one: None by default).
    topic_permission: Option<String>,
    /// `ws://127.0.0.1:PORT` of the streaming listener.
    stream_base: String,
    stats: NotificationStats,
}

fn topic_queue(topic: &str) -> Option<&str> {
    topic
        .strip_prefix("v2.analytics.queues.")?
        .strip_suffix(".observations")
        .filter(|q| !q.is_empty() && !q.contains('.'))
}

impl Notifications {
    pub(crate) fn new(opts: NotificationOptions, stream_base: String) -> Notifications {
        Notifications {
            opts,
            channels: BTreeMap::new(),
            next_seq: 0,
            next_conn: 0,
            topics: BTreeMap::new(),
            drop_events: false,
            topic_permission: None,
            stream_base,
            stats: NotificationStats::default(),
        }
    }

    fn channel_json(&self, id: &str, c: &Channel) -> Value {
        json!({
            "id": id,
            "connectUri": format!("{}/channels/{id}", self.stream_base),
            "expires": iso(c.expires_wall),
        })
    }

    /// `POST /api/v2/notifications/channels` by `owner` (an OAuth client id).
    pub(crate) fn create_channel(&mut self, owner: &str, now: Instant) -> Value {
        if self.channels.values().filter(|c| c.owner == owner).count() >= MAX_CHANNELS {
            // The client's oldest goes, channels without a socket first.
            let victim = self
                .channels
                .iter()
                .filter(|(_, c)| c.owner == owner)
                .min_by_key(|(_, c)| (c.conn.is_some(), c.seq))
                .map(|(id, _)| id.clone());
            if let Some(id) = victim
                && let Some(c) = self.channels.remove(&id)
            {
                self.stats.channels_evicted += 1;
                if let Some(conn) = c.conn {
                    let _ = conn.tx.send(Out::Close(1000, "channel removed".into()));
                }
            }
        }
        let id = format!("streaming-0-{}", new_id().replace('-', ""));
        self.next_seq += 1;
        let c = Channel {
            owner: owner.to_owned(),
            seq: self.next_seq,
            topics: BTreeSet::new(),
            expires: now + self.opts.channel_lifetime,
            expires_wall: self.wall_expiry(),
            conn: None,
        };
        let body = self.channel_json(&id, &c);
        self.channels.insert(id, c);
        self.stats.channels_created += 1;
        body
    }

    fn wall_expiry(&self) -> chrono::DateTime<Utc> {
        Utc::now()
            + chrono::Duration::from_std(self.opts.channel_lifetime)
                .unwrap_or(chrono::Duration::MAX)
    }

    /// `GET /api/v2/notifications/channels`: the channels of `owner`.
    pub(crate) fn list_channels(&self, owner: &str) -> Value {
        let entities: Vec<Value> = self
            .channels
            .iter()
            .filter(|(_, c)| c.owner == owner)
            .map(|(id, c)| self.channel_json(id, c))
            .collect();
        json!({ "entities": entities })
    }

    fn topics_json(c: &Channel) -> Value {
        let entities: Vec<Value> = c
            .topics
            .iter()
            .map(|t| json!({"id": t, "state": "Permitted"}))
            .collect();
        json!({ "entities": entities })
    }

    /// A channel of `owner`'s; another client's answers 404 like a missing one.
    fn owned(&self, owner: &str, id: &str) -> Result<&Channel, ApiError> {
        self.channels
            .get(id)
            .filter(|c| c.owner == owner)
            .ok_or_else(ApiError::not_found)
    }

    /// `GET .../subscriptions`.
    pub(crate) fn subscriptions(&self, owner: &str, id: &str) -> Result<Value, ApiError> {
        let c = self.owned(owner, id)?;
        Ok(Self::topics_json(c))
    }

    /// The permission an observation topic needs from now on (None: none).
    pub(crate) fn set_topic_permission(&mut self, p: Option<String>) {
        self.topic_permission = p;
    }

    pub(crate) fn topic_permission(&self) -> Option<&str> {
        self.topic_permission.as_deref()
    }

    /// `PUT` (replace) or `POST` (add) `.../subscriptions`: also renews the channel.
    /// `permitted`: whether the client holds the topics' permission. Without it the request
    /// answers 403 listing the permission, or, with `ignoreErrors=true`, the topics are
    /// listed as rejected (with `missingPermissions`) and not subscribed.
    pub(crate) fn subscribe(
        &mut self,
        sub: Subscribe<'_>,
        org: &Org,
        now: Instant,
    ) -> Result<Value, ApiError> {
        let Subscribe {
            owner,
            id,
            body,
            replace,
            permitted,
            ignore_errors,
        } = sub;
        self.owned(owner, id)?;
        let items = body
            .as_array()
            .ok_or_else(|| ApiError::bad_request("The body must be a list of topics."))?;
        let mut topics = BTreeSet::new();
        for item in items {
            let t = item
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad_request("Every topic needs an id."))?;
            if topic_queue(t).is_none() {
                return Err(ApiError::bad_request(format!(
                    "The topic {t} is not a valid topic."
                )));
            }
            topics.insert(t.to_owned());
        }
        let mut rejected = Vec::new();
        if !permitted && let Some(p) = self.topic_permission.clone() {
            if !ignore_errors {
                return Err(crate::permissions::forbidden_one(&p));
            }
            for t in std::mem::take(&mut topics) {
                rejected.push(json!({
                    "id": t,
                    "state": "Rejected",
                    "rejectionReason": "Missing permissions",
                    "missingPermissions": [p.clone()],
                }));
            }
        }
        let expiry = self.wall_expiry();
        let c = self.channels.get_mut(id).ok_or_else(ApiError::not_found)?;
        let merged: BTreeSet<String> = if replace {
            topics
        } else {
            c.topics.union(&topics).cloned().collect()
        };
        if merged.len() > MAX_TOPICS {
            return Err(ApiError::new(
                400,
                "notification.too.many.topics",
                format!("A channel may subscribe to at most {MAX_TOPICS} topics."),
            ));
        }
        for t in &merged {
            if !c.topics.contains(t) {
                // A topic starts from the queue's state now: Genesys sends no snapshot on
                // subscription, only changes after it.
                if let Some(q) = topic_queue(t) {
                    let snap = snapshot(org, q);
                    self.topics.entry(t.clone()).or_insert(TopicState {
                        last: snap,
                        published_at: None,
                    });
                }
            }
        }
        c.topics = merged;
        c.expires = now + self.opts.channel_lifetime;
        c.expires_wall = expiry;
        let mut listing = Self::topics_json(c);
        if let Some(entities) = listing["entities"].as_array_mut() {
            entities.extend(rejected);
        }
        Ok(listing)
    }

    /// `DELETE .../subscriptions`.
    pub(crate) fn unsubscribe_all(&mut self, owner: &str, id: &str) -> Result<(), ApiError> {
        self.owned(owner, id)?;
        let c = self.channels.get_mut(id).ok_or_else(ApiError::not_found)?;
        c.topics.clear();
        Ok(())
    }

    /// A socket connects to a channel; None when the channel does not exist. Closes the
    /// channel's previous socket.
    pub(crate) fn connect(
        &mut self,
        id: &str,
        now: Instant,
    ) -> Option<(u64, mpsc::UnboundedReceiver<Out>)> {
        let c = self.channels.get_mut(id)?;
        self.next_conn += 1;
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(old) = c.conn.take() {
            let _ = old.tx.send(Out::Close(
                1000,
                "another connection took the channel".into(),
            ));
        }
        c.conn = Some(Conn {
            id: self.next_conn,
            tx,
            silenced: false,
            last_heartbeat: now,
        });
        self.stats.sockets_opened += 1;
        Some((self.next_conn, rx))
    }

    /// A socket task ended.
    pub(crate) fn disconnected(&mut self, id: &str, conn: u64) {
        if let Some(c) = self.channels.get_mut(id)
            && c.conn.as_ref().is_some_and(|k| k.id == conn)
        {
            c.conn = None;
        }
    }

    /// Whether a connection still receives (a ping from a silenced one gets no pong).
    pub(crate) fn is_live(&self, id: &str, conn: u64) -> bool {
        self.channels
            .get(id)
            .and_then(|c| c.conn.as_ref())
            .is_some_and(|k| k.id == conn && !k.silenced)
    }

    // ---- faults ----

    pub(crate) fn drop_sockets(&mut self) {
        for c in self.channels.values_mut() {
            if let Some(conn) = c.conn.take() {
                let _ = conn.tx.send(Out::Drop);
            }
        }
    }

    pub(crate) fn silence_sockets(&mut self) {
        for c in self.channels.values_mut() {
            if let Some(conn) = c.conn.as_mut() {
                conn.silenced = true;
            }
        }
    }

    pub(crate) fn expire_channels(&mut self, now: Instant) {
        for c in self.channels.values_mut() {
            c.expires = now;
        }
        self.expire(now);
    }

    pub(crate) fn set_drop_events(&mut self, on: bool) {
        self.drop_events = on;
    }

    pub(crate) fn info(&self) -> Vec<ChannelInfo> {
        self.channels
            .iter()
            .map(|(id, c)| ChannelInfo {
                id: id.clone(),
                owner: c.owner.clone(),
                topics: c.topics.len(),
                connected: c.conn.is_some(),
            })
            .collect()
    }

    pub(crate) fn stats(&self) -> NotificationStats {
        self.stats.clone()
    }

    // ---- the publisher ----

    fn expire(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .channels
            .iter()
            .filter(|(_, c)| c.expires <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(c) = self.channels.remove(&id) {
                self.stats.channels_expired += 1;
                if let Some(conn) = c.conn {
                    let _ = conn.tx.send(Out::Close(1000, "channel expired".into()));
                }
            }
        }
    }

    /// One publisher step: expiries, heartbeats, events for every topic that changed.
    pub(crate) fn step(&mut self, org: &Org, now: Instant) {
        self.expire(now);
        let heartbeat = json!({
            "topicName": HEARTBEAT_TOPIC,
            "eventBody": {"message": "WebSocket Heartbeat"},
        })
        .to_string();
        for c in self.channels.values_mut() {
            if let Some(conn) = c.conn.as_mut()
                && !conn.silenced
                && now.saturating_duration_since(conn.last_heartbeat) >= self.opts.heartbeat
            {
                conn.last_heartbeat = now;
                let _ = conn.tx.send(Out::Text(heartbeat.clone()));
                self.stats.heartbeats_sent += 1;
            }
        }
        let subscribed: BTreeSet<String> = self
            .channels
            .values()
            .flat_map(|c| c.topics.iter().cloned())
            .collect();
        // Topics nobody subscribes to any more are forgotten.
        self.topics.retain(|t, _| subscribed.contains(t));
        for topic in subscribed {
            let Some(queue) = topic_queue(&topic) else {
                continue;
            };
            let current = snapshot(org, queue);
            let state = self.topics.entry(topic.clone()).or_insert(TopicState {
                last: current.clone(),
                published_at: None,
            });
            if state.last == current {
                continue;
            }
            if state
                .published_at
                .is_some_and(|t| now.saturating_duration_since(t) < self.opts.min_event_interval)
            {
                continue;
            }
            let messages = messages(&topic, queue, &state.last, &current);
            state.last = current;
            state.published_at = Some(now);
            for c in self.channels.values() {
                if !c.topics.contains(&topic) {
                    continue;
                }
                for m in &messages {
                    match &c.conn {
                        Some(conn) if !conn.silenced && !self.drop_events => {
                            let _ = conn.tx.send(Out::Text(m.clone()));
                            self.stats.events_sent += 1;
                        }
                        _ => self.stats.events_lost += 1,
                    }
                }
            }
        }
    }
}

/// A subscription request, as the route read it.
pub(crate) struct Subscribe<'a> {
    pub(crate) owner: &'a str,
    pub(crate) id: &'a str,
    pub(crate) body: &'a Value,
    /// PUT (replace) rather than POST (add).
    pub(crate) replace: bool,
    /// The client holds the topic permission (see [`Notifications::topic_permission`]).
    pub(crate) permitted: bool,
    pub(crate) ignore_errors: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
