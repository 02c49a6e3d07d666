use super::*;
use crate::analytics::ConvKind;
use crate::directory::HOME_DIVISION;
use crate::{RoutingStatus, SystemPresence};

fn topic(q: &str) -> String {
    format!("v2.analytics.queues.{q}.observations")
}

const OWNER: &str = "sim-client-id";

fn sub<'a>(id: &'a str, body: &'a Value) -> Subscribe<'a> {
    Subscribe {
        owner: OWNER,
        id,
        body,
        replace: true,
        permitted: true,
        ignore_errors: false,
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Out>) -> Vec<Value> {
    let mut v = Vec::new();
    while let Ok(Out::Text(t)) = rx.try_recv() {
        v.push(serde_json::from_str(&t).unwrap());
    }
    v
}

#[tokio::test(start_paused = true)]
async fn events_on_change_at_most_once_a_second_per_topic() {
    let mut org = Org::new();
    let q = org.add_queue("Q", HOME_DIVISION);
    let agent = org.add_agent(SystemPresence::OnQueue, RoutingStatus::Idle, &[&q]);
    let mut n = Notifications::new(NotificationOptions::default(), "ws://x".into());
    let t0 = Instant::now();
    let ch = n.create_channel(OWNER, t0);
    let id = ch["id"].as_str().unwrap().to_owned();
    n.subscribe(sub(&id, &json!([{"id": topic(&q)}])), &org, t0)
        .unwrap();
    let (_, mut rx) = n.connect(&id, t0).unwrap();
    n.step(&org, t0);
    assert!(drain(&mut rx).is_empty(), "no snapshot on subscription");

    org.set_conversations(&q, "voice", ConvKind::Waiting, 2);
    n.step(&org, t0 + Duration::from_millis(100));
    let got = drain(&mut rx);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["eventBody"]["group"]["mediaType"], "voice");
    assert_eq!(
        got[0]["eventBody"]["data"][0]["metrics"][0]["metric"],
        "oWaiting"
    );
    assert_eq!(
        got[0]["eventBody"]["data"][0]["metrics"][0]["stats"]["count"],
        2
    );

    // Two more changes within the second: one publication, after it, with the latest.
    org.set_agent(&agent, SystemPresence::OnQueue, RoutingStatus::Interacting);
    n.step(&org, t0 + Duration::from_millis(500));
    org.set_conversations(&q, "voice", ConvKind::Waiting, 0);
    n.step(&org, t0 + Duration::from_millis(900));
    assert!(drain(&mut rx).is_empty());
    n.step(&org, t0 + Duration::from_millis(1100));
    let got = drain(&mut rx);
    assert_eq!(got.len(), 2, "the user group and the voice group changed");
    let user = got
        .iter()
        .find(|m| m["eventBody"]["group"].get("mediaType").is_none())
        .unwrap();
    let metrics = user["eventBody"]["data"][0]["metrics"].as_array().unwrap();
    let idle = metrics
        .iter()
        .find(|m| m["metric"] == "oOnQueueUsers" && m["qualifier"] == "IDLE")
        .unwrap();
    assert_eq!(
        idle["stats"]["count"], 0,
        "a qualifier that dropped to 0 says so"
    );
    let voice = got
        .iter()
        .find(|m| m["eventBody"]["group"]["mediaType"] == "voice")
        .unwrap();
    assert_eq!(
        voice["eventBody"]["data"][0]["metrics"][0]["stats"]["count"],
        0
    );
    assert!(
        !metrics.iter().any(|m| m["metric"] == "oUserPresences"),
        "presence is query-only"
    );
}

#[tokio::test(start_paused = true)]
async fn limits_expiry_and_faults() {
    let org = Org::new();
    let mut n = Notifications::new(NotificationOptions::default(), "ws://x".into());
    let t0 = Instant::now();
    let first = n.create_channel(OWNER, t0)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, mut first_rx) = n.connect(&first, t0).unwrap();
    for _ in 0..MAX_CHANNELS {
        n.create_channel(OWNER, t0);
    }
    assert_eq!(n.info().len(), MAX_CHANNELS);
    assert!(
        n.info().iter().any(|c| c.id == first),
        "channels without a socket go first"
    );
    let ids: Vec<String> = n.info().into_iter().map(|c| c.id).collect();
    let _rxs: Vec<_> = ids
        .iter()
        .filter(|id| **id != first)
        .map(|id| n.connect(id, t0).unwrap().1)
        .collect();
    n.create_channel(OWNER, t0);
    assert!(!n.info().iter().any(|c| c.id == first), "then the oldest");
    assert!(matches!(first_rx.try_recv(), Ok(Out::Close(..))));

    let id = n.create_channel(OWNER, t0)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let too_many: Vec<Value> = (0..=MAX_TOPICS)
        .map(|i| json!({"id": topic(&format!("q{i}"))}))
        .collect();
    let e = n
        .subscribe(sub(&id, &Value::Array(too_many)), &org, t0)
        .unwrap_err();
    assert_eq!(e.status, 400);
    assert!(n.subscribe(sub("nope", &json!([])), &org, t0).is_err());

    // Subscribing renews; past the lifetime the channel and its socket go.
    let life = NotificationOptions::default().channel_lifetime;
    n.subscribe(sub(&id, &json!([{"id": topic("a")}])), &org, t0 + life / 2)
        .unwrap();
    let (_, mut rx) = n.connect(&id, t0 + life / 2).unwrap();
    n.step(&org, t0 + life - Duration::from_secs(1));
    assert!(n.info().iter().any(|c| c.id == id), "renewed");
    n.step(&org, t0 + life + life / 2);
    assert!(!n.info().iter().any(|c| c.id == id));
    let mut closed = false;
    while let Ok(out) = rx.try_recv() {
        closed |= matches!(out, Out::Close(..));
    }
    assert!(closed, "the expired channel's socket is closed");
    assert!(n.stats().heartbeats_sent > 0);
}

#[tokio::test(start_paused = true)]
async fn channels_belong_to_their_client_and_can_be_emptied() {
    let org = Org::new();
    let mut n = Notifications::new(NotificationOptions::default(), "ws://x".into());
    let t0 = Instant::now();
    let other: Vec<String> = (0..MAX_CHANNELS)
        .map(|_| {
            n.create_channel("other", t0)["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mine = n.create_channel(OWNER, t0)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(n.stats().channels_evicted, 0, "the limit is per client");
    assert_eq!(
        n.list_channels(OWNER)["entities"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        n.list_channels("other")["entities"]
            .as_array()
            .unwrap()
            .len(),
        MAX_CHANNELS
    );
    // Another client's channel is not ours to change.
    let body = json!([{"id": topic("q")}]);
    let e = n.subscribe(sub(&other[0], &body), &org, t0).unwrap_err();
    assert_eq!(e.status, 404);
    assert_eq!(n.unsubscribe_all(OWNER, &other[0]).unwrap_err().status, 404);
    // Its 21st channel evicts its own oldest.
    n.create_channel("other", t0);
    assert_eq!(n.stats().channels_evicted, 1);
    assert!(!n.info().iter().any(|c| c.id == other[0]));
    assert!(n.info().iter().any(|c| c.id == mine));

    n.subscribe(sub(&mine, &body), &org, t0).unwrap();
    n.unsubscribe_all(OWNER, &mine).unwrap();
    let c = n.info().into_iter().find(|c| c.id == mine).unwrap();
    assert_eq!(c.topics, 0);

    // A topic permission the client lacks: 403 naming it, or rejected topics.
    n.set_topic_permission(Some("analytics:queueObservation:view".into()));
    let refused = Subscribe {
        permitted: false,
        ..sub(&mine, &body)
    };
    let e = n.subscribe(refused, &org, t0).unwrap_err();
    assert_eq!(e.status, 403);
    assert!(e.message.contains("[analytics:queueObservation:view]"));
    let ignored = Subscribe {
        permitted: false,
        ignore_errors: true,
        ..sub(&mine, &body)
    };
    let listing = n.subscribe(ignored, &org, t0).unwrap();
    assert_eq!(listing["entities"][0]["state"], "Rejected");
    assert_eq!(
        listing["entities"][0]["missingPermissions"][0],
        "analytics:queueObservation:view"
    );
    assert_eq!(
        n.info().into_iter().find(|c| c.id == mine).unwrap().topics,
        0
    );
}
