//! Messages that arrive on a notification channel's WebSocket, parsed without trusting them.
//!
//! A message is `{"topicName": "...", "version": "2", "eventBody": {...}}`. Heartbeats come
//! on `channel.metadata`; queue observations on `v2.analytics.queues.{id}.observations` with
//! a body shaped like the SDKs' `StatEventQueueTopicStatsNotification`:
//! `{"group": {"queueId", "mediaType"?}, "data": [{"interval", "metrics": [{"metric",
//! "qualifier", "stats": {"count"}}]}]}`. Which metrics an event carries is not documented,
//! so an event is read as "these metrics, for this queue (and media type), now hold these
//! counts" and nothing more: see [`crate::push::live`] for how they are merged.
//!
//! Nothing here panics on input: every shape problem is a [`Malformed`] the caller counts.

use serde::Deserialize;
use serde_json::Value;

/// The topic of heartbeats (and of the answer to a `{"message": "ping"}`).
pub const METADATA_TOPIC: &str = "channel.metadata";
/// Sent before Genesys closes a socket for maintenance: reconnect now, not after the drop.
pub const SOCKET_CLOSING_TOPIC: &str = "v2.system.socket_closing";

const TOPIC_PREFIX: &str = "v2.analytics.queues.";
const TOPIC_SUFFIX: &str = ".observations";

/// Metrics the observation query knows (the SDKs' enum); anything else is counted unknown.
pub const KNOWN_METRICS: &[&str] = &[
    "oActiveUsers",
    "oAlerting",
    "oInteracting",
    "oLongestInteracting",
    "oLongestWaiting",
    "oMemberUsers",
    "oOffQueueUsers",
    "oOnQueueUsers",
    "oUserPresences",
    "oUserRoutingStatuses",
    "oWaiting",
];

/// The largest count accepted; anything above is a malformed event, not a queue.
const MAX_COUNT: f64 = u32::MAX as f64;

/// The observation topic of a queue.
pub fn observation_topic(queue_id: &str) -> String {
    format!("{TOPIC_PREFIX}{queue_id}{TOPIC_SUFFIX}")
}

/// The queue id in an observation topic name, if it is one.
pub fn queue_of_topic(topic: &str) -> Option<&str> {
    topic
        .strip_prefix(TOPIC_PREFIX)?
        .strip_suffix(TOPIC_SUFFIX)
        .filter(|id| !id.is_empty() && !id.contains('.'))
}

/// One parsed message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `channel.metadata` with the heartbeat text.
    Heartbeat,
    /// `channel.metadata` with anything else (the pong, or a text we do not know): the
    /// socket is alive, nothing more.
    Metadata,
    /// The server is about to close this socket.
    SocketClosing,
    Observation(ObservationEvent),
    /// A topic this daemon did not subscribe to.
    OtherTopic,
}

/// What an observation event says about one queue (and media type, when the group has one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationEvent {
    pub queue_id: String,
    pub media_type: Option<String>,
    /// Counts of the metrics the event carries, known metrics only, in event order.
    pub counts: Vec<MetricCount>,
    /// Metrics in the event that are not in [`KNOWN_METRICS`] (ignored, counted).
    pub unknown_metrics: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricCount {
    pub metric: String,
    pub qualifier: Option<String>,
    pub count: u64,
}

/// Why a message could not be used; the text is for a debug log line and names no value
/// from the message beyond the metric or field name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed notification: {0}")]
pub struct Malformed(pub String);

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    topic_name: Option<String>,
    #[serde(default)]
    event_body: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    group: Option<Group>,
    #[serde(default)]
    data: Vec<Interval>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    queue_id: Option<String>,
    media_type: Option<String>,
}

#[derive(Deserialize)]
struct Interval {
    #[serde(default)]
    metrics: Vec<Metric>,
}

#[derive(Deserialize)]
struct Metric {
    metric: String,
    #[serde(default)]
    qualifier: Option<String>,
    #[serde(default)]
    stats: Option<Stats>,
}

#[derive(Deserialize)]
struct Stats {
    #[serde(default)]
    count: Option<f64>,
}

/// Parses one text frame.
pub fn parse(text: &str) -> Result<Message, Malformed> {
    let env: Envelope =
        serde_json::from_str(text).map_err(|e| Malformed(format!("not a JSON message: {e}")))?;
    let topic = env
        .topic_name
        .ok_or_else(|| Malformed("no topicName".into()))?;
    if topic == METADATA_TOPIC {
        let msg = env.event_body.get("message").and_then(Value::as_str);
        return Ok(if msg == Some("WebSocket Heartbeat") {
            Message::Heartbeat
        } else {
            Message::Metadata
        });
    }
    if topic == SOCKET_CLOSING_TOPIC {
        return Ok(Message::SocketClosing);
    }
    let Some(topic_queue) = queue_of_topic(&topic) else {
        return Ok(Message::OtherTopic);
    };
    let body: Body = serde_json::from_value(env.event_body)
        .map_err(|e| Malformed(format!("eventBody is not an observation: {e}")))?;
    let group = body.group.unwrap_or(Group {
        queue_id: None,
        media_type: None,
    });
    // The topic names the queue; a group naming another one is not to be believed.
    if let Some(q) = &group.queue_id
        && q != topic_queue
    {
        return Err(Malformed(
            "group.queueId differs from the topic's queue".into(),
        ));
    }
    let mut counts: Vec<MetricCount> = Vec::new();
    let mut unknown_metrics = 0;
    for interval in body.data {
        for m in interval.metrics {
            if !KNOWN_METRICS.contains(&m.metric.as_str()) {
                unknown_metrics += 1;
                continue;
            }
            let count = match m.stats.and_then(|s| s.count) {
                Some(c) if c.is_finite() && (0.0..=MAX_COUNT).contains(&c) => c as u64,
                Some(_) => {
                    return Err(Malformed(format!("{}: count is not a count", m.metric)));
                }
                // A metric entry without a count says nothing: treat it like the query, 0.
                None => 0,
            };
            counts.push(MetricCount {
                metric: m.metric,
                qualifier: m.qualifier,
                count,
            });
        }
    }
    Ok(Message::Observation(ObservationEvent {
        queue_id: topic_queue.to_owned(),
        media_type: group.media_type.filter(|m| !m.is_empty()),
        counts,
        unknown_metrics,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        let t = observation_topic("abc-1");
        assert_eq!(t, "v2.analytics.queues.abc-1.observations");
        assert_eq!(queue_of_topic(&t), Some("abc-1"));
        assert_eq!(queue_of_topic("v2.analytics.queues..observations"), None);
        assert_eq!(queue_of_topic("v2.analytics.queues.a.b.observations"), None);
        assert_eq!(queue_of_topic("v2.routing.queues.a.conversations"), None);
    }

    #[test]
    fn heartbeats_and_metadata() {
        let hb =
            r#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#;
        assert_eq!(parse(hb).unwrap(), Message::Heartbeat);
        let pong = r#"{"topicName":"channel.metadata","eventBody":{"message":"pong"}}"#;
        assert_eq!(parse(pong).unwrap(), Message::Metadata);
        let closing = r#"{"topicName":"v2.system.socket_closing","eventBody":{"message":"x"}}"#;
        assert_eq!(parse(closing).unwrap(), Message::SocketClosing);
        let other = r#"{"topicName":"v2.users.u.presence","eventBody":{}}"#;
        assert_eq!(parse(other).unwrap(), Message::OtherTopic);
    }

    #[test]
    fn observation_event_in_the_documented_shape() {
        let text = r#"{"topicName":"v2.analytics.queues.q1.observations","version":"2",
          "eventBody":{"group":{"queueId":"q1","mediaType":"voice"},
            "data":[{"interval":"2026-12-02T10:00:00.000Z/2026-12-02T10:00:01.000Z","metrics":[
              {"metric":"oWaiting","stats":{"count":3}},
              {"metric":"oOnQueueUsers","qualifier":"IDLE","stats":{"count":2,"max":9}},
              {"metric":"oBrandNew","stats":{"count":1}}]}]}}"#;
        let Message::Observation(ev) = parse(text).unwrap() else {
            panic!("not an observation")
        };
        assert_eq!(ev.queue_id, "q1");
        assert_eq!(ev.media_type.as_deref(), Some("voice"));
        assert_eq!(ev.unknown_metrics, 1);
        assert_eq!(
            ev.counts,
            vec![
                MetricCount {
                    metric: "oWaiting".into(),
                    qualifier: None,
                    count: 3
                },
                MetricCount {
                    metric: "oOnQueueUsers".into(),
                    qualifier: Some("IDLE".into()),
                    count: 2
                },
            ]
        );
    }

    #[test]
    fn group_may_be_absent_then_the_topic_names_the_queue() {
        let text = r#"{"topicName":"v2.analytics.queues.q9.observations","eventBody":{"data":[]}}"#;
        let Message::Observation(ev) = parse(text).unwrap() else {
            panic!("not an observation")
        };
        assert_eq!(ev.queue_id, "q9");
        assert!(ev.counts.is_empty());
    }

    #[test]
    fn malformed_messages_are_errors_never_panics() {
        for text in [
            "",
            "not json",
            "[1,2]",
            r#"{"eventBody":{}}"#,
            r#"{"topicName":5}"#,
            r#"{"topicName":"v2.analytics.queues.q.observations","eventBody":{"data":5}}"#,
            r#"{"topicName":"v2.analytics.queues.q.observations","eventBody":{"data":[{"metrics":[{"metric":"oWaiting","stats":{"count":-1}}]}]}}"#,
            r#"{"topicName":"v2.analytics.queues.q.observations","eventBody":{"data":[{"metrics":[{"metric":"oWaiting","stats":{"count":1e300}}]}]}}"#,
            r#"{"topicName":"v2.analytics.queues.q.observations","eventBody":{"group":{"queueId":"other"},"data":[]}}"#,
            r#"{"topicName":"v2.analytics.queues.q.observations","eventBody":{"data":[{"metrics":[{"stats":{"count":1}}]}]}}"#,
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }
}
