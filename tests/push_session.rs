//! The push session against the simulator's Notifications API over real loopback sockets:
//! channels, subscriptions, events, heartbeats, reconnects, expiry, refusal, limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use genesys_queue_sync::genesys::Client;
use genesys_queue_sync::metrics::Metrics;
use genesys_queue_sync::push::session::{self, Handle, PushEvent, Settings};
use genesys_sim::{
    Fault, FaultAction, Match, NotificationOptions, RoutingStatus, Sim, SimOptions, SystemPresence,
};
use tokio_util::sync::CancellationToken;

use support::{config, fast_heartbeat_sim, fast_retry, spawn_sim};

fn fast() -> Settings {
    Settings {
        reconnect_base: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        refused_base: Duration::from_millis(200),
        refused_max: Duration::from_millis(400),
        connect_timeout: Duration::from_secs(2),
        ..Settings::default()
    }
}

fn start(sim: &Sim, settings: Settings) -> (Handle, Metrics, CancellationToken) {
    let cfg = config(sim, &[], "0 * * * * *");
    let metrics = Metrics::new();
    let shutdown = CancellationToken::new();
    let client =
        Client::with_policy(&cfg, metrics.clone(), shutdown.clone(), fast_retry()).unwrap();
    (
        session::spawn(client, settings, shutdown.clone()),
        metrics,
        shutdown,
    )
}

/// The next message matching `want`, within 10 s.
async fn wait_for(h: &mut Handle, what: &str, want: impl Fn(&PushEvent) -> bool) -> PushEvent {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, h.events.recv()).await {
            Ok(Some(ev)) if want(&ev) => return ev,
            Ok(Some(_)) => {}
            Ok(None) => panic!("session ended while waiting for {what}"),
            Err(_) => panic!("no {what} within 10 s"),
        }
    }
}

fn is_up(e: &PushEvent) -> bool {
    matches!(e, PushEvent::Up)
}

fn is_down(e: &PushEvent) -> bool {
    matches!(e, PushEvent::Down)
}

fn waiting_event(queue: &str) -> impl Fn(&PushEvent) -> bool + '_ {
    move |e| matches!(e, PushEvent::Observation(ev, _) if ev.queue_id == queue && ev.counts.iter().any(|c| c.metric == "oWaiting"))
}

fn gauge(metrics: &Metrics, name: &str) -> f64 {
    metrics
        .encode()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test]
async fn events_arrive_for_the_selected_queues() {
    let sim = fast_heartbeat_sim().await;
    let q1 = sim.add_queue("Sales");
    let q2 = sim.add_queue("Support");
    let (mut h, metrics, _stop) = start(&sim, fast());
    h.selection.send(vec![q1.clone(), q2.clone()]).unwrap();
    wait_for(&mut h, "push up", is_up).await;
    assert_eq!(gauge(&metrics, "genesys_queue_sync_push_connected"), 1.0);
    let ch = sim.channels();
    assert_eq!(ch.len(), 1);
    assert_eq!(ch[0].topics, 2);

    sim.set_waiting(&q2, "voice", 3);
    let PushEvent::Observation(ev, _) =
        wait_for(&mut h, "an event for Support", waiting_event(&q2)).await
    else {
        unreachable!()
    };
    assert_eq!(ev.media_type.as_deref(), Some("voice"));
    assert_eq!(ev.counts[0].count, 3);

    let agent = sim.add_agent(SystemPresence::OnQueue, RoutingStatus::Idle, &[&q1]);
    let PushEvent::Observation(ev, _) = wait_for(&mut h, "a routing event for Sales", |e| {
        matches!(e, PushEvent::Observation(ev, _) if ev.queue_id == q1 && ev.counts.iter().any(|c| c.metric == "oOnQueueUsers" && c.count == 1))
    })
    .await
    else {
        unreachable!()
    };
    assert_eq!(ev.media_type, None);
    let _ = agent;
}

#[tokio::test]
async fn selection_changes_change_the_subscriptions() {
    let sim = fast_heartbeat_sim().await;
    let q1 = sim.add_queue("A");
    let q2 = sim.add_queue("B");
    let (mut h, _m, _stop) = start(&sim, fast());
    h.selection.send(vec![q1.clone()]).unwrap();
    wait_for(&mut h, "push up", is_up).await;
    h.selection.send(vec![q1.clone(), q2.clone()]).unwrap();
    // No Up/Down for a subscription change on an open socket: wait on the sim instead.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while sim.channels().first().map(|c| c.topics) != Some(2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not resubscribed: {:?}",
            sim.channels()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sim.set_waiting(&q2, "chat", 1);
    wait_for(&mut h, "an event for the added queue", waiting_event(&q2)).await;
    assert_eq!(sim.channels().len(), 1, "the same channel, resubscribed");
}

#[tokio::test]
async fn dropped_socket_reconnects() {
    let sim = fast_heartbeat_sim().await;
    let q = sim.add_queue("Q");
    let (mut h, metrics, _stop) = start(&sim, fast());
    h.selection.send(vec![q.clone()]).unwrap();
    wait_for(&mut h, "push up", is_up).await;
    sim.drop_sockets();
    wait_for(&mut h, "push down", is_down).await;
    wait_for(&mut h, "push up again", is_up).await;
    assert_eq!(
        gauge(&metrics, "genesys_queue_sync_push_reconnects_total"),
        1.0
    );
    assert_eq!(sim.channels().len(), 1, "the same channel, a new socket");
    sim.set_waiting(&q, "voice", 2);
    wait_for(&mut h, "an event after the reconnect", waiting_event(&q)).await;
}

#[tokio::test]
async fn a_silent_socket_is_abandoned_after_two_heartbeats() {
    let sim = fast_heartbeat_sim().await;
    let q = sim.add_queue("Q");
    let (mut h, _m, _stop) = start(&sim, fast());
    h.selection.send(vec![q.clone()]).unwrap();
    wait_for(&mut h, "push up", is_up).await;
    // Let the session see two heartbeats so it knows the period (150 ms).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let opened = sim.notification_stats().sockets_opened;
    sim.silence_sockets();
    let t = tokio::time::Instant::now();
    wait_for(&mut h, "push down", is_down).await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "a 150 ms heartbeat gives up far before the 90 s default"
    );
    wait_for(&mut h, "push up again", is_up).await;
    assert!(sim.notification_stats().sockets_opened > opened);
    sim.set_waiting(&q, "voice", 5);
    wait_for(&mut h, "an event on the new socket", waiting_event(&q)).await;
}

#[tokio::test]
async fn an_expired_channel_is_replaced() {
    let sim = fast_heartbeat_sim().await;
    let q = sim.add_queue("Q");
    let (mut h, _m, _stop) = start(&sim, fast());
    h.selection.send(vec![q.clone()]).unwrap();
    wait_for(&mut h, "push up", is_up).await;
    let before = sim.channels()[0].id.clone();
    sim.expire_channels();
    wait_for(&mut h, "push down", is_down).await;
    wait_for(&mut h, "push up again", is_up).await;
    let now = sim.channels();
    assert_eq!(now.len(), 1);
    assert_ne!(now[0].id, before, "a new channel");
    assert_eq!(now[0].topics, 1, "subscribed again");
    sim.set_waiting(&q, "voice", 1);
    wait_for(&mut h, "an event on the new channel", waiting_event(&q)).await;
}

#[tokio::test]
async fn channels_are_renewed_before_they_expire() {
    let sim = spawn_sim(SimOptions {
        notifications: NotificationOptions {
            heartbeat: Duration::from_millis(150),
            channel_lifetime: Duration::from_secs(2),
            ..NotificationOptions::default()
        },
        ..SimOptions::default()
    })
    .await;
    let q = sim.add_queue("Q");
    let (mut h, metrics, _stop) = start(&sim, fast());
    h.selection.send(vec![q.clone()]).unwrap();
    wait_for(&mut h, "push up", is_up).await;
    let id = sim.channels()[0].id.clone();
    // Three lifetimes later the same channel still carries events, on the same socket.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(sim.channels().len(), 1);
    assert_eq!(sim.channels()[0].id, id, "renewed, not replaced");
    assert_eq!(sim.notification_stats().channels_expired, 0);
    assert_eq!(
        sim.notification_stats().sockets_opened,
        1,
        "no gap: one socket all along"
    );
    assert!(gauge(&metrics, "genesys_queue_sync_push_channel_renewals_total") >= 2.0);
    sim.set_waiting(&q, "voice", 4);
    wait_for(&mut h, "an event after the renewals", waiting_event(&q)).await;
}

#[tokio::test]
async fn refused_channels_are_retried_with_backoff() {
    let sim = fast_heartbeat_sim().await;
    let q = sim.add_queue("Q");
    sim.inject(Fault {
        matcher: Match::Path {
            method: Some("POST"),
            contains: "/api/v2/notifications/channels".into(),
        },
        action: FaultAction::Status {
            status: 403,
            retry_after: None,
        },
        times: 3,
    });
    let (mut h, metrics, _stop) = start(&sim, fast());
    h.selection.send(vec![q.clone()]).unwrap();
    wait_for(&mut h, "push up after the refusals", is_up).await;
    let creates = sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/api/v2/notifications/channels")
        .count();
    assert_eq!(creates, 4, "three refused, the fourth taken");
    assert_eq!(
        gauge(&metrics, "genesys_queue_sync_push_channel_failures_total"),
        3.0
    );
}

#[tokio::test]
async fn twenty_channels_at_most_and_a_thousand_topics_each() {
    let sim = fast_heartbeat_sim().await;
    let ids: Vec<String> = (0..25).map(|i| sim.add_queue(&format!("Q{i}"))).collect();
    let (mut h, _m, _stop) = start(
        &sim,
        Settings {
            // One topic per channel makes the 20-channel limit reachable with 25 queues.
            topics_per_channel: 1,
            ..fast()
        },
    );
    h.selection.send(ids.clone()).unwrap();
    wait_for(&mut h, "push up", is_up).await;
    let ch = sim.channels();
    assert_eq!(
        ch.len(),
        20,
        "never a 21st channel (it would remove the oldest)"
    );
    assert!(ch.iter().all(|c| c.topics == 1 && c.connected));
    assert_eq!(sim.notification_stats().channels_evicted, 0);

    // The real per-channel limit: 1,000 topics per channel, 2,500 queues on 3 channels.
    let sim = fast_heartbeat_sim().await;
    let many: Vec<String> = (0..2500).map(|i| format!("q{i}")).collect();
    let (mut h, _m, _stop) = start(&sim, fast());
    h.selection.send(many).unwrap();
    wait_for(&mut h, "push up", is_up).await;
    let mut topics: Vec<usize> = sim.channels().iter().map(|c| c.topics).collect();
    topics.sort_unstable();
    assert_eq!(topics, [500, 1000, 1000]);
}

/// A daemon busy for seconds (it takes no event) while 1,000 queues change in 4 media
/// types, three times over: 12,000 messages, three times the daemon's queue. The socket
/// is still read throughout (heartbeats every 150 ms, silence limit 300 ms), so no
/// reconnect happens, and once the daemon takes events again each queue's media group
/// ends on its latest count; what waited was coalesced, and counted so.
#[tokio::test]
async fn a_busy_daemon_and_a_burst_beyond_its_queue_cause_no_reconnect() {
    const MEDIA: [&str; 4] = ["voice", "chat", "email", "message"];
    let sim = fast_heartbeat_sim().await;
    let ids: Vec<String> = (0..1000)
        .map(|i| sim.add_queue(&format!("Q{i:04}")))
        .collect();
    let (mut h, metrics, _stop) = start(&sim, fast());
    h.selection.send(ids.clone()).unwrap();
    wait_for(&mut h, "push up", is_up).await;
    assert_eq!(sim.notification_stats().sockets_opened, 1);
    // From here on the daemon takes nothing until the burst is over.
    for round in 1..=3u32 {
        for id in &ids {
            for m in MEDIA {
                sim.set_waiting(id, m, round);
            }
        }
        // Genesys publishes a topic at most once a second.
        tokio::time::sleep(Duration::from_millis(1300)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats = sim.notification_stats();
    assert!(
        stats.events_sent >= 3 * 4000,
        "the burst was sent: {stats:?}"
    );
    assert_eq!(stats.sockets_opened, 1, "no reconnect during the burst");
    assert_eq!(stats.events_lost, 0);
    // The daemon takes events again: every group ends on its latest count.
    let mut last: std::collections::HashMap<(String, String), u64> = Default::default();
    let mut received = 0u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while last.len() < ids.len() * MEDIA.len() || last.values().any(|&n| n != 3) {
        let ev = tokio::time::timeout_at(deadline, h.events.recv())
            .await
            .unwrap_or_else(|_| {
                let behind = last.values().filter(|&&n| n != 3).count();
                panic!(
                    "{} groups seen, {behind} not at their latest count; {:?}; {}",
                    last.len(),
                    sim.notification_stats(),
                    metrics
                        .encode()
                        .lines()
                        .filter(|l| l.contains("push_"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            })
            .expect("session running");
        if let PushEvent::Observation(ev, _) = ev {
            received += 1;
            let media = ev.media_type.clone().unwrap_or_default();
            if let Some(c) = ev.counts.iter().find(|c| c.metric == "oWaiting") {
                last.insert((ev.queue_id.clone(), media), c.count);
            }
        }
    }
    assert_eq!(sim.notification_stats().sockets_opened, 1);
    assert_eq!(
        gauge(&metrics, "genesys_queue_sync_push_reconnects_total"),
        0.0
    );
    assert_eq!(gauge(&metrics, "genesys_queue_sync_push_connected"), 1.0);
    let coalesced = gauge(
        &metrics,
        "genesys_queue_sync_push_events_total{result=\"coalesced\"}",
    );
    // Every event the simulator sent was handed over or coalesced, none lost.
    assert!(coalesced > 0.0, "the burst was coalesced");
    assert_eq!(received + coalesced as u64, stats.events_sent);
}
