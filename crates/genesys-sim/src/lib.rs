//! Simulated Genesys Cloud org.
//!
//! One loopback HTTP server plays both the login host (`POST /oauth/token`) and the Platform
//! API (`/api/v2/...`) for the endpoints genesys-queue-sync uses; a second loopback listener
//! plays the S3 bucket that CSV imports are uploaded to. Integration tests script the org
//! (queues, agents, data tables), inject faults and assert on the request log; the `demo`
//! command runs the real daemon against it with background churn.
//!
//! Layout, one module per concern (each testable without HTTP):
//! - `directory`: divisions, queues, agents, presences (the routing API);
//! - `analytics`: conversation counts, ground truth, observation queries;
//! - `tables`: data tables, schemas, rows, CSV import jobs;
//! - `auth`: client credentials, tokens, the per-token rate window;
//! - `permissions`: what each endpoint requires, and Genesys' 403 bodies;
//! - `pipeline`: what every request goes through (log, latency, faults, auth, rate limit);
//! - `routes`: maps requests onto the org; `net`: the listener that can drop a connection;
//! - `org`: the one struct holding every concern's state; `wire`: ErrorBody, ids, timestamps.

mod analytics;
mod auth;
mod directory;
mod net;
mod notifications;
mod org;
mod permissions;
mod pipeline;
mod routes;
mod tables;
mod vocab;
mod wire;

pub use notifications::{ChannelInfo, NotificationOptions, NotificationStats};
pub use pipeline::{Fault, FaultAction, LoggedRequest, Match, Rewrite};
pub use vocab::{FieldType, QueueTruth, RoutingStatus, SystemPresence};

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

/// How the simulated org behaves. `Default` gives a quiet org with Genesys' default limits.
#[derive(Clone, Debug)]
pub struct SimOptions {
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of issued access tokens, in seconds.
    pub token_expires_in: u64,
    /// Requests per access token in any sliding 60 s window; 0 = unlimited.
    pub rate_limit_per_minute: u32,
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// Largest `pageSize` honoured by list endpoints; larger values are capped.
    pub max_page_size: u32,
    /// When set, a background task changes random agents and waiting counts every period.
    pub churn: Option<Duration>,
    /// The notification service (heartbeat period, channel lifetime, event rate).
    pub notifications: NotificationOptions,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            client_id: "sim-client-id".to_owned(),
            client_secret: "sim-client-secret".to_owned(),
            token_expires_in: 86_400,
            rate_limit_per_minute: 300,
            latency: Duration::ZERO,
            max_page_size: 500,
            churn: None,
            notifications: NotificationOptions::default(),
        }
    }
}

/// Settings fixed at start.
pub(crate) struct Config {
    pub(crate) token_expires_in: u64,
    pub(crate) rate_limit_per_minute: u32,
    pub(crate) latency: Duration,
    pub(crate) max_page_size: u32,
}

/// Everything the servers and the `Sim` handle share.
pub(crate) struct Shared {
    pub(crate) cfg: Config,
    pub(crate) org: Mutex<org::Org>,
    pub(crate) auth: Mutex<auth::Auth>,
    pub(crate) faults: Mutex<Vec<Fault>>,
    pub(crate) log: Mutex<Vec<LoggedRequest>>,
    /// Channels, subscriptions and sockets of the Notifications API.
    pub(crate) notifications: Mutex<notifications::Notifications>,
    /// `http://127.0.0.1:PORT` of the upload listener.
    pub(crate) upload_base: String,
}

/// A poisoned lock only means a handler panicked mid-update; the simulator keeps serving so a
/// test sees the original panic rather than a cascade of poison errors.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running simulated org. Clones share it; `shutdown` (or dropping the last clone) stops it.
#[derive(Clone)]
pub struct Sim {
    handle: Arc<Handle>,
}

struct Handle {
    shared: Arc<Shared>,
    cancel: CancellationToken,
    addr: SocketAddr,
    upload_addr: SocketAddr,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Sim {
    /// Binds two loopback listeners (API + uploads) on free ports and serves them on the current
    /// tokio runtime.
    pub async fn start(opts: SimOptions) -> std::io::Result<Sim> {
        let api = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let uploads = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let streaming = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = api.local_addr()?;
        let upload_addr = uploads.local_addr()?;
        let stream_addr = streaming.local_addr()?;
        let scan = opts.notifications.scan;
        let shared = Arc::new(Shared {
            cfg: Config {
                token_expires_in: opts.token_expires_in,
                rate_limit_per_minute: opts.rate_limit_per_minute,
                latency: opts.latency,
                max_page_size: opts.max_page_size.max(1),
            },
            org: Mutex::new(org::Org::new()),
            auth: Mutex::new(auth::Auth::new(&opts.client_id, &opts.client_secret)),
            faults: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            upload_base: format!("http://{upload_addr}"),
            notifications: Mutex::new(notifications::Notifications::new(
                opts.notifications,
                format!("ws://{stream_addr}"),
            )),
        });
        let cancel = CancellationToken::new();
        net::serve(api, pipeline::Listener::Api, shared.clone(), cancel.clone());
        net::serve(
            uploads,
            pipeline::Listener::Uploads,
            shared.clone(),
            cancel.clone(),
        );
        notifications::stream::serve(streaming, shared.clone(), cancel.clone());
        tokio::spawn(publish(shared.clone(), scan, cancel.clone()));
        if let Some(period) = opts.churn {
            tokio::spawn(churn(shared.clone(), period, cancel.clone()));
        }
        Ok(Sim {
            handle: Arc::new(Handle {
                shared,
                cancel,
                addr,
                upload_addr,
            }),
        })
    }

    /// `http://127.0.0.1:PORT`: both the login host and the API host.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.handle.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.handle.addr
    }

    /// Address of the listener that plays the upload bucket for CSV imports.
    pub fn upload_addr(&self) -> SocketAddr {
        self.handle.upload_addr
    }

    /// Stops accepting connections, lets in-flight requests finish, stops churn.
    pub fn shutdown(&self) {
        self.handle.cancel.cancel();
    }

    fn org(&self) -> MutexGuard<'_, org::Org> {
        lock(&self.handle.shared.org)
    }

    /// Adds a queue in the "Home" division; returns its id.
    pub fn add_queue(&self, name: &str) -> String {
        self.org().add_queue(name, directory::HOME_DIVISION)
    }

    /// Adds a queue in the named division (created on first use); returns its id.
    pub fn add_queue_in_division(&self, name: &str, division: &str) -> String {
        self.org().add_queue(name, division)
    }

    pub fn rename_queue(&self, id: &str, new_name: &str) {
        self.org().rename_queue(id, new_name);
    }

    /// Removes the queue, its memberships and conversation counts.
    pub fn delete_queue(&self, id: &str) {
        self.org().delete_queue(id);
    }

    /// Adds an agent who is a member of `queue_ids`; returns the user id.
    ///
    /// As in Genesys, an agent whose presence is not On Queue counts as OFF_QUEUE whatever
    /// routing status is given.
    pub fn add_agent(
        &self,
        presence: SystemPresence,
        routing: RoutingStatus,
        queue_ids: &[&str],
    ) -> String {
        self.org().add_agent(presence, routing, queue_ids)
    }

    pub fn set_agent(&self, user_id: &str, presence: SystemPresence, routing: RoutingStatus) {
        self.org().set_agent(user_id, presence, routing);
    }

    /// Adds (or removes) the agent's membership of a queue.
    pub fn set_membership(&self, user_id: &str, queue_id: &str, member: bool) {
        self.org().set_membership(user_id, queue_id, member);
    }

    /// Conversations waiting in the queue for a media type ("voice", "chat", ...).
    pub fn set_waiting(&self, queue_id: &str, media_type: &str, n: u32) {
        self.org()
            .set_conversations(queue_id, media_type, analytics::ConvKind::Waiting, n);
    }

    pub fn set_interacting(&self, queue_id: &str, media_type: &str, n: u32) {
        self.org()
            .set_conversations(queue_id, media_type, analytics::ConvKind::Interacting, n);
    }

    pub fn set_alerting(&self, queue_id: &str, media_type: &str, n: u32) {
        self.org()
            .set_conversations(queue_id, media_type, analytics::ConvKind::Alerting, n);
    }

    /// One more interaction waiting in the queue, which started waiting `waited` ago (kept
    /// in time order among the others); returns its conversation id. `set_waiting` adds
    /// interactions that start waiting now and, when lowering the count, answers the oldest
    /// first.
    pub fn add_waiting(&self, queue_id: &str, media_type: &str, waited: Duration) -> String {
        let since = chrono::Utc::now()
            - chrono::Duration::from_std(waited).unwrap_or(chrono::Duration::zero());
        self.org()
            .add_conversation(queue_id, media_type, analytics::ConvKind::Waiting, since)
    }

    /// Joins (or unjoins) a member to a queue: an unjoined member still counts in
    /// oMemberUsers but in none of the other user metrics.
    pub fn set_joined(&self, user_id: &str, queue_id: &str, joined: bool) {
        self.org().set_joined(user_id, queue_id, joined);
    }

    /// How many observations a `detailMetrics` list holds before it is truncated to its
    /// oldest and newest halves (default 10; Genesys does not document its number).
    pub fn set_detail_limit(&self, limit: usize) {
        self.org().detail_limit = limit.max(2);
    }

    /// Ground truth for a queue; `None` when it does not exist.
    pub fn truth(&self, queue_id: &str) -> Option<QueueTruth> {
        self.org().truth(queue_id)
    }

    /// Org presence ids that the observation endpoint maps a system presence to.
    pub fn presence_ids(&self, presence: SystemPresence) -> Vec<String> {
        self.org().presence_ids(presence)
    }

    /// Creates a data table whose schema has the required string "key" plus `fields` (in that
    /// display order). If a table of that name exists, its id is returned and it is left as is.
    pub fn create_table(&self, name: &str, fields: &[(&str, FieldType)]) -> String {
        self.org().create_table_direct(name, fields)
    }

    pub fn delete_table(&self, id: &str) {
        self.org().delete_table_direct(id);
    }

    /// Id of the table with this name (case-insensitive, as the API matches names).
    pub fn table_id(&self, name: &str) -> Option<String> {
        self.org().table_id(name)
    }

    /// Full rows by key (each including "key"); empty when the table does not exist.
    pub fn rows(&self, table_id: &str) -> BTreeMap<String, Map<String, Value>> {
        self.org().rows_direct(table_id)
    }

    /// Inserts or replaces a row without schema validation; the row needs a string "key".
    pub fn put_row(&self, table_id: &str, row: Value) {
        self.org().put_row_direct(table_id, row);
    }

    /// Removes a row as another writer (or an admin in Architect) would; false when the
    /// table or the row does not exist.
    pub fn delete_row(&self, table_id: &str, key: &str) -> bool {
        self.org().delete_row(table_id, key).is_ok()
    }

    /// The stored JSON schema document of a table.
    pub fn table_schema(&self, table_id: &str) -> Option<Value> {
        self.org().table_schema(table_id)
    }

    /// Import records with these keys fail from now on (as a value the schema refuses
    /// would): the job still ends `Succeeded`, with `countRecordsFailed` and
    /// `errorInformation` naming them. An empty list stops it.
    pub fn fail_import_rows(&self, keys: &[&str]) {
        self.org().import_script.fail_keys = keys.iter().map(|k| (*k).to_owned()).collect();
    }

    /// From now on an observation query naming more than `n` queue ids answers 400
    /// `bad.request` (default 100; Genesys does not document its maximum).
    pub fn set_max_queues_per_query(&self, n: usize) {
        self.org().max_observation_queues = n;
    }

    /// While on, API answers carry the `inin-ratelimit-count/allowed/reset` headers, as
    /// Genesys did until June 2021 (off by default, as today).
    pub fn send_legacy_rate_headers(&self, on: bool) {
        lock(&self.handle.shared.auth).legacy_headers = on;
    }

    /// While on, uploaded import jobs stay `Processing` for ever.
    pub fn stall_imports(&self, on: bool) {
        self.org().import_script.stall = on;
    }

    pub fn inject(&self, fault: Fault) {
        lock(&self.handle.shared.faults).push(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.handle.shared.faults).clear();
    }

    /// Every token issued so far answers 401 from now on.
    pub fn revoke_tokens(&self) {
        lock(&self.handle.shared.auth).revoke_all();
    }

    /// Replaces the accepted client credentials; tokens already issued stay valid, as when a
    /// secret is rotated in Genesys.
    pub fn set_credentials(&self, client_id: &str, client_secret: &str) {
        lock(&self.handle.shared.auth).set_credentials(client_id, client_secret);
    }

    /// Grants a permission to the client `SimOptions` names (every permission an endpoint
    /// accepts is granted by default).
    pub fn grant(&self, permission: &str) {
        self.grant_to(None, permission);
    }

    /// Takes a permission from the client `SimOptions` names; requests of its tokens that
    /// need it answer 403 from now on (an endpoint accepting any of several permissions
    /// still admits a client holding another one, as in Genesys).
    pub fn revoke(&self, permission: &str) {
        self.revoke_from(None, permission);
    }

    /// Gives the client `SimOptions` names exactly these permissions.
    pub fn set_permissions(&self, permissions: &[&str]) {
        if let Some(g) = lock(&self.handle.shared.auth).grants_mut(None) {
            *g = permissions.iter().map(|p| (*p).to_owned()).collect();
        }
    }

    /// Adds another OAuth client holding exactly `permissions`.
    pub fn add_client(&self, client_id: &str, client_secret: &str, permissions: &[&str]) {
        lock(&self.handle.shared.auth).add_client(
            client_id,
            client_secret,
            permissions.iter().map(|p| (*p).to_owned()).collect(),
        );
    }

    /// Grants a permission to a client (`None`: the one `SimOptions` names).
    pub fn grant_to(&self, client_id: Option<&str>, permission: &str) {
        if let Some(g) = lock(&self.handle.shared.auth).grants_mut(client_id) {
            g.insert(permission.to_owned());
        }
    }

    /// Takes a permission from a client (`None`: the one `SimOptions` names).
    pub fn revoke_from(&self, client_id: Option<&str>, permission: &str) {
        if let Some(g) = lock(&self.handle.shared.auth).grants_mut(client_id) {
            g.remove(permission);
        }
    }

    /// Every permission some endpoint of the simulator accepts.
    pub fn all_permissions() -> Vec<String> {
        permissions::all().into_iter().collect()
    }

    /// Every request so far, in the order they were answered (the oldest are dropped past
    /// 100,000 entries).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.handle.shared.log).clone()
    }

    pub fn clear_log(&self) {
        lock(&self.handle.shared.log).clear();
    }

    // ---- notifications ----

    fn notifications(&self) -> MutexGuard<'_, notifications::Notifications> {
        lock(&self.handle.shared.notifications)
    }

    /// The notification channels that exist now.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.notifications().info()
    }

    pub fn notification_stats(&self) -> NotificationStats {
        self.notifications().stats()
    }

    /// Creates `n` notification channels owned by an OAuth client (`None`: the one
    /// `SimOptions` names), as another integration sharing the client would; returns ids.
    pub fn add_channels(&self, client_id: Option<&str>, n: usize) -> Vec<String> {
        let owner = {
            let auth = lock(&self.handle.shared.auth);
            client_id.map_or_else(|| auth.client_id(None).to_owned(), str::to_owned)
        };
        let mut notes = self.notifications();
        (0..n)
            .filter_map(|_| {
                notes.create_channel(&owner, tokio::time::Instant::now())["id"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    /// From now on an observation topic needs `permission` (None: none, the default, as
    /// the documentation we have names none): a client without it is refused the
    /// subscription (403 listing it, or the topic rejected with `ignoreErrors=true`).
    pub fn require_topic_permission(&self, permission: Option<&str>) {
        self.notifications()
            .set_topic_permission(permission.map(str::to_owned));
    }

    /// Drops every open notification socket without a close frame (a network cut).
    pub fn drop_sockets(&self) {
        self.notifications().drop_sockets();
    }

    /// Open sockets stay open but receive nothing more, heartbeats included (a half-open
    /// connection); sockets opened later are normal.
    pub fn silence_sockets(&self) {
        self.notifications().silence_sockets();
    }

    /// Every channel expires now: sockets close, subscriptions and connects answer 404.
    pub fn expire_channels(&self) {
        self.notifications()
            .expire_channels(tokio::time::Instant::now());
    }

    /// While on, observation events are lost instead of delivered (heartbeats still come).
    pub fn drop_events(&self, on: bool) {
        self.notifications().set_drop_events(on);
    }
}

/// The notification publisher: expiries, heartbeats and events, every `scan`.
async fn publish(shared: Arc<Shared>, scan: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(scan.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {
                // Org first, then notifications: the one lock order used everywhere.
                let org = lock(&shared.org);
                lock(&shared.notifications).step(&org, tokio::time::Instant::now());
            }
        }
    }
}

async fn churn(shared: Arc<Shared>, period: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // The first tick fires at once; skip it so the scripted start state is visible for a period.
    tick.tick().await;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => lock(&shared.org).churn_step(),
        }
    }
}
