//! Scripted faults, latency, limits and shutdown.

use genesys_sim::*;
use serde_json::json;

use crate::*;

#[tokio::test]
async fn faults_status_drop_delay_body() {
    let env = Env::default().await;
    env.sim.inject(Fault {
        matcher: Match::Path {
            method: Some("GET"),
            contains: "/routing/queues".into(),
        },
        action: FaultAction::Status {
            status: 503,
            retry_after: Some(7),
        },
        times: 1,
    });
    let r = env.get("/api/v2/routing/queues").await;
    assert_eq!(r.status(), 503);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("7"));
    assert_eq!(body(r).await["code"], "service.unavailable");
    assert_eq!(env.get("/api/v2/routing/queues").await.status(), 200);

    env.sim.inject(Fault {
        matcher: Match::Any,
        action: FaultAction::Drop,
        times: 1,
    });
    let err = env
        .http
        .get(env.url("/api/v2/routing/queues"))
        .bearer_auth(&env.token)
        .send()
        .await;
    assert!(err.is_err(), "{err:?}");
    assert_eq!(env.get("/api/v2/routing/queues").await.status(), 200);

    env.sim.inject(Fault {
        matcher: Match::Login,
        action: FaultAction::Delay(Duration::from_millis(120)),
        times: 1,
    });
    let started = std::time::Instant::now();
    let r = login(&env.sim, &env.http, "sim-client-id", "sim-client-secret").await;
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(120));

    env.sim.inject(Fault {
        matcher: Match::Path {
            method: None,
            contains: "observations".into(),
        },
        action: FaultAction::Body("{\"results\": [".into()),
        times: u32::MAX,
    });
    for _ in 0..2 {
        let r = env
            .post("/api/v2/analytics/queues/observations/query", &json!({}))
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "{\"results\": [");
    }
    env.sim.clear_faults();
    assert_eq!(
        env.post("/api/v2/analytics/queues/observations/query", &json!({}))
            .await
            .status(),
        400
    );

    let statuses: Vec<(String, u16)> = env
        .sim
        .requests()
        .iter()
        .map(|l| (l.path.clone(), l.status))
        .collect();
    assert_eq!(
        statuses[..4],
        [
            ("/api/v2/routing/queues".to_owned(), 503),
            ("/api/v2/routing/queues".to_owned(), 200),
            ("/api/v2/routing/queues".to_owned(), 0),
            ("/api/v2/routing/queues".to_owned(), 200),
        ]
    );
    assert_eq!(statuses[4], ("/oauth/token".to_owned(), 200));
}

#[tokio::test]
async fn latency_limits_and_unknown_routes() {
    let env = Env::start(SimOptions {
        latency: Duration::from_millis(60),
        ..SimOptions::default()
    })
    .await;
    let started = std::time::Instant::now();
    let r = env.get("/api/v2/nothing/here").await;
    assert!(started.elapsed() >= Duration::from_millis(60));
    assert_eq!(r.status(), 404);
    let v = body(r).await;
    assert_eq!(v["code"], "not.found");
    assert_eq!(v["status"], 404);
    let r = env
        .http
        .post(env.url("/api/v2/flows/datatables"))
        .bearer_auth(&env.token)
        .header("content-type", "application/json")
        .body(vec![b' '; (1 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(env.delete("/api/v2/routing/queues").await.status(), 405);
    let r = env.get("/api/v2/tokens/me").await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await["OAuthClient"]["id"], "sim-client-id");
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let env = Env::default().await;
    assert_eq!(env.get("/api/v2/routing/queues").await.status(), 200);
    env.sim.shutdown();
    let mut refused = false;
    for _ in 0..50 {
        let fresh = Client::new();
        if fresh
            .get(env.url("/api/v2/routing/queues"))
            .send()
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused);
}
