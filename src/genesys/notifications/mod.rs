//! The Notifications API: channels, their subscriptions and their WebSocket.
//!
//! `POST /api/v2/notifications/channels` gives `{id, connectUri, expires}`; `PUT
//! .../channels/{id}/subscriptions` sets the channel's topics (replacing the list); a
//! WebSocket to `connectUri` then carries the events. The REST calls go through the
//! ordinary request pipeline (budget, token, retries); the socket is opened by the same
//! HTTP client (an HTTP/1.1 upgrade), so it uses the same proxy settings, the same rustls
//! roots and the same user agent, and it is never sent the bearer token: the connectUri is
//! itself the capability.
//!
//! That is also why neither the connectUri nor the channel id is ever logged or shown in
//! `Debug`: anyone holding either can open the channel's one socket and take our events
//! (a second connection closes the first).

pub mod events;
pub mod liveness;
pub mod socket;

use chrono::{DateTime, Utc};
use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Client, Request, encode_segment};

/// Topics one channel may hold (Genesys' limit).
pub const MAX_TOPICS_PER_CHANNEL: usize = 1000;
/// Channels one OAuth client may hold; creating one more silently removes the oldest.
pub const MAX_CHANNELS: usize = 20;
/// How long a channel lives after its creation or last subscription change.
pub const CHANNEL_LIFETIME: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

const CREATE: &str = "notification_channel_create";
const SUBSCRIBE: &str = "notification_subscriptions";
const LIST: &str = "notification_channels";
const UNSUBSCRIBE: &str = "notification_unsubscribe";

/// A notification channel. The id and the connectUri are secrets (see the module doc).
#[derive(Clone)]
pub struct Channel {
    id: SecretString,
    connect_uri: SecretString,
    /// When the channel goes away unless resubscribed; None when the answer did not say.
    pub expires: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("id", &"[redacted]")
            .field("connect_uri", &"[redacted]")
            .field("expires", &self.expires)
            .finish()
    }
}

impl Channel {
    pub fn new(id: String, connect_uri: String, expires: Option<DateTime<Utc>>) -> Self {
        Self {
            id: id.into(),
            connect_uri: connect_uri.into(),
            expires,
        }
    }

    pub(crate) fn id(&self) -> &str {
        self.id.expose_secret()
    }

    pub(crate) fn connect_uri(&self) -> &str {
        self.connect_uri.expose_secret()
    }

    /// Whether `other` is the same channel (compared without exposing either).
    pub fn same_as(&self, other: &Channel) -> bool {
        self.id() == other.id()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChannelBody {
    id: Option<String>,
    connect_uri: Option<String>,
    #[serde(default)]
    expires: Option<String>,
}

#[derive(Deserialize)]
struct Listing<T> {
    #[serde(default = "Vec::new")]
    entities: Vec<T>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TopicBody {
    id: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    rejection_reason: Option<String>,
    #[serde(default)]
    missing_permissions: Vec<String>,
}

/// Topics the server did not take, with its reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscribed {
    pub accepted: usize,
    pub rejected: Vec<(String, String)>,
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Creates a channel.
pub async fn create_channel(client: &Client) -> Result<Channel, ApiError> {
    let req = Request::with_body(
        CREATE,
        Method::POST,
        "/api/v2/notifications/channels",
        json!({}),
    );
    let body: ChannelBody = client.send_json(req).await?;
    let (Some(id), Some(uri)) = (body.id, body.connect_uri) else {
        return Err(ApiError::Decode {
            endpoint: CREATE,
            message: "the answer has no id or connectUri".into(),
        });
    };
    if id.is_empty() || socket::ws_url(&uri).is_err() {
        return Err(ApiError::Decode {
            endpoint: CREATE,
            message: "the answer's id or connectUri is not usable".into(),
        });
    }
    crate::redact::register_channel(&id);
    Ok(Channel::new(
        id,
        uri,
        body.expires.as_deref().and_then(parse_time),
    ))
}

/// Sets the channel's topics to exactly `topics` (PUT replaces the list). Resubscribing
/// also extends the channel's life by another 24 h, with the socket left as it is.
pub async fn set_subscriptions(
    client: &Client,
    channel: &Channel,
    topics: &[String],
) -> Result<Subscribed, ApiError> {
    let body: Vec<_> = topics.iter().map(|t| json!({"id": t})).collect();
    let req = Request::with_body(
        SUBSCRIBE,
        Method::PUT,
        format!(
            "/api/v2/notifications/channels/{}/subscriptions",
            encode_segment(channel.id())
        ),
        serde_json::Value::Array(body),
    );
    let listing: Listing<TopicBody> = client.send_json(req).await?;
    let mut out = Subscribed::default();
    for t in listing.entities {
        let id = t.id.unwrap_or_default();
        // The state values are not documented beyond the field; anything other than an
        // explicit rejection (a reason, or a state naming one) counts as accepted.
        let rejected = t.rejection_reason.is_some()
            || t.state
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("rejected"));
        if rejected || !t.missing_permissions.is_empty() {
            let mut reason = t.rejection_reason.unwrap_or_else(|| "rejected".to_owned());
            if !t.missing_permissions.is_empty() {
                reason.push_str(&format!(
                    " (missing: {})",
                    t.missing_permissions
                        .iter()
                        .map(|p| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            out.rejected.push((id, reason));
        } else {
            out.accepted += 1;
        }
    }
    Ok(out)
}

/// The channels this OAuth client holds now (their expiries; ids are not kept: they are
/// other integrations' capabilities as much as ours).
pub async fn list_channels(client: &Client) -> Result<Vec<Option<DateTime<Utc>>>, ApiError> {
    let req = Request::get(LIST, "/api/v2/notifications/channels");
    let listing: Listing<ChannelBody> = client.send_json(req).await?;
    Ok(listing
        .entities
        .into_iter()
        .map(|c| c.expires.as_deref().and_then(parse_time))
        .collect())
}

/// Removes every subscription of `channel` (`DELETE .../subscriptions`): it then carries
/// nothing and, left alone, expires.
pub async fn delete_subscriptions(client: &Client, channel: &Channel) -> Result<(), ApiError> {
    let req = Request {
        endpoint: UNSUBSCRIBE,
        method: Method::DELETE,
        path: format!(
            "/api/v2/notifications/channels/{}/subscriptions",
            encode_segment(channel.id())
        ),
        query: Vec::new(),
        body: None,
    };
    client.send(req).await.map(|_| ())
}

/// The expiry the server now gives `channel`, read from the channel listing; None when
/// the channel is not listed (gone) or the listing gives no expiry.
pub async fn channel_expiry(
    client: &Client,
    channel: &Channel,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let req = Request::get(LIST, "/api/v2/notifications/channels");
    let listing: Listing<ChannelBody> = client.send_json(req).await?;
    Ok(listing
        .entities
        .into_iter()
        .find(|c| c.id.as_deref() == Some(channel.id()))
        .and_then(|c| c.expires.as_deref().and_then(parse_time)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_debug_shows_no_secret() {
        let c = Channel::new(
            "streaming-0-secretid".into(),
            "wss://streaming.example/channels/streaming-0-secretid".into(),
            None,
        );
        let d = format!("{c:?}");
        assert!(!d.contains("secretid"), "{d}");
        assert!(d.contains("redacted"));
    }
}
