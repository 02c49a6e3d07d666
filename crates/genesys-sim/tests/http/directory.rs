//! Queue listing, members and observation queries.

use genesys_sim::*;
use serde_json::{Value, json};

use crate::*;

#[tokio::test]
async fn queue_listing_paging_and_name_filters() {
    let env = Env::start(SimOptions {
        max_page_size: 20,
        ..SimOptions::default()
    })
    .await;
    let mut sales = Vec::new();
    for i in (0..30).rev() {
        sales.push(env.sim.add_queue(&format!("Sales {i:02}")));
    }
    let support = env.sim.add_queue("Support");
    let eu = env.sim.add_queue_in_division("EU Sales", "Europe");
    let a1 = env.sim.add_agent(
        SystemPresence::OnQueue,
        RoutingStatus::Idle,
        &[&support, &eu],
    );
    env.sim.add_agent(
        SystemPresence::Offline,
        RoutingStatus::OffQueue,
        &[&support],
    );

    let v = body(
        env.get("/api/v2/routing/queues?name=sales%20*&pageSize=10")
            .await,
    )
    .await;
    assert_eq!(v["total"], 30);
    assert_eq!(v["pageCount"], 3);
    assert_eq!(v["pageSize"], 10);
    let names: Vec<&str> = v["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"Sales 00"));
    assert_eq!(names.last(), Some(&"Sales 09"));
    assert_eq!(v["entities"][0]["division"]["name"], "Home");
    let next = v["nextUri"].as_str().unwrap().to_owned();
    let v2 = body(env.get(&next).await).await;
    assert_eq!(v2["pageNumber"], 2);
    assert_eq!(v2["entities"][0]["name"], "Sales 10");
    let v3 = body(env.get(v2["nextUri"].as_str().unwrap()).await).await;
    assert!(v3.get("nextUri").is_none());

    let v = body(env.get("/api/v2/routing/queues?name=SUPPORT").await).await;
    assert_eq!(v["total"], 1);
    assert_eq!(v["entities"][0]["id"], support.as_str());
    assert_eq!(v["entities"][0]["memberCount"], 2);
    assert_eq!(
        body(env.get("/api/v2/routing/queues?name=sup").await).await["total"],
        0
    );
    assert_eq!(
        body(env.get("/api/v2/routing/queues?name=*PORT").await).await["total"],
        1
    );
    assert_eq!(
        body(env.get("/api/v2/routing/queues?name=*les*").await).await["total"],
        31
    );
    let v = body(
        env.get(&format!(
            "/api/v2/routing/queues?id={}&id={}",
            support, sales[0]
        ))
        .await,
    )
    .await;
    assert_eq!(v["total"], 2);
    let div = body(env.get("/api/v2/routing/queues?name=EU%20Sales").await).await["entities"]
        [0]["division"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = body(
        env.get(&format!("/api/v2/routing/queues?divisionId={div}"))
            .await,
    )
    .await;
    assert_eq!(v["total"], 1);
    assert_eq!(v["entities"][0]["division"]["name"], "Europe");
    // pageSize is capped at max_page_size; bad paging is a 400.
    let v = body(env.get("/api/v2/routing/queues?pageSize=1000").await).await;
    assert_eq!(v["pageSize"], 20);
    assert_eq!(v["entities"].as_array().unwrap().len(), 20);
    assert_eq!(
        env.get("/api/v2/routing/queues?pageNumber=0")
            .await
            .status(),
        400
    );

    let v = body(
        env.get(&format!(
            "/api/v2/routing/queues/{support}/members?expand=routingStatus,presence"
        ))
        .await,
    )
    .await;
    assert_eq!(v["total"], 2);
    let m = v["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == a1.as_str())
        .unwrap();
    assert_eq!(m["routingStatus"]["status"], "IDLE");
    assert_eq!(
        m["user"]["presence"]["presenceDefinition"]["systemPresence"],
        "ON_QUEUE"
    );

    env.sim.rename_queue(&support, "Help Desk");
    env.sim.delete_queue(&sales[0]);
    let v = body(env.get("/api/v2/routing/queues?pageSize=100").await).await;
    assert_eq!(v["total"], 31);
    assert_eq!(v["entities"][1]["name"], "Help Desk");
    assert_eq!(v["entities"][1]["id"], support.as_str());
    assert_eq!(
        env.get(&format!("/api/v2/routing/queues/{}", sales[0]))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn observations_absent_means_zero_and_media_groups() {
    let env = Env::default().await;
    let q = env.sim.add_queue("Q");
    let empty = env.sim.add_queue("Empty");
    let gone = env.sim.add_queue("Gone");
    env.sim
        .add_agent(SystemPresence::OnQueue, RoutingStatus::Idle, &[&q]);
    env.sim
        .add_agent(SystemPresence::OnQueue, RoutingStatus::Interacting, &[&q]);
    let moving = env
        .sim
        .add_agent(SystemPresence::OnQueue, RoutingStatus::Interacting, &[&q]);
    env.sim
        .add_agent(SystemPresence::Away, RoutingStatus::OffQueue, &[&q]);
    env.sim.add_agent(
        SystemPresence::Offline,
        RoutingStatus::OffQueue,
        &[&q, &empty],
    );
    env.sim.set_waiting(&q, "voice", 4);
    env.sim.set_waiting(&q, "chat", 1);
    env.sim.set_interacting(&q, "voice", 2);
    env.sim.delete_queue(&gone);

    let metrics = [
        "oOnQueueUsers",
        "oOffQueueUsers",
        "oUserPresences",
        "oUserRoutingStatuses",
        "oActiveUsers",
        "oMemberUsers",
        "oWaiting",
        "oInteracting",
        "oAlerting",
    ];
    let v = env.observe(&[&q, &empty, &gone], &metrics).await;
    let mappings = v["systemToOrganizationMappings"].as_object().unwrap();
    assert_eq!(mappings.len(), 10);
    assert_eq!(mappings["AVAILABLE"].as_array().unwrap().len(), 2);
    let on_queue_id = mappings["ON_QUEUE"][0].as_str().unwrap();
    let offline_id = mappings["OFFLINE"][0].as_str().unwrap();

    let c = counts(&v, &q, None);
    let get = |m: &str, qual: Option<&str>| {
        c.iter()
            .find(|(mm, qq, _)| mm == m && qq.as_deref() == qual)
            .map(|x| x.2)
    };
    assert_eq!(get("oOnQueueUsers", Some("IDLE")), Some(1));
    assert_eq!(get("oOnQueueUsers", Some("INTERACTING")), Some(2));
    assert_eq!(get("oOnQueueUsers", Some("NOT_RESPONDING")), None);
    assert_eq!(get("oUserPresences", Some(on_queue_id)), Some(3));
    assert_eq!(get("oUserPresences", Some(offline_id)), Some(1));
    assert_eq!(get("oUserRoutingStatuses", Some("OFF_QUEUE")), Some(2));
    // Active = joined members, whatever their presence.
    assert_eq!(get("oActiveUsers", None), Some(5));
    assert_eq!(get("oMemberUsers", None), Some(5));
    // Conversation metrics live in their own (queueId, mediaType) groups.
    assert_eq!(get("oWaiting", None), None);
    let voice = counts(&v, &q, Some("voice"));
    assert!(voice.contains(&("oWaiting".into(), None, 4)));
    assert!(voice.contains(&("oInteracting".into(), None, 2)));
    assert!(!voice.iter().any(|x| x.0 == "oAlerting"));
    let chat = counts(&v, &q, Some("chat"));
    assert_eq!(chat, vec![("oWaiting".to_owned(), None, 1)]);
    assert!(counts(&v, &q, Some("email")).is_empty());

    let e = counts(&v, &empty, None);
    assert_eq!(
        e,
        vec![
            ("oUserPresences".to_owned(), Some(offline_id.to_owned()), 1),
            (
                "oUserRoutingStatuses".to_owned(),
                Some("OFF_QUEUE".to_owned()),
                1
            ),
            ("oActiveUsers".to_owned(), None, 1),
            ("oMemberUsers".to_owned(), None, 1),
        ]
    );
    assert!(
        !v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["group"]["queueId"] == gone.as_str())
    );
    let t = env.sim.truth(&q).unwrap();
    assert_eq!(
        [t.online, t.on_queue, t.idle, t.interacting, t.waiting],
        [4, 3, 1, 2, 5]
    );
    assert_eq!([t.members, t.active, t.off_queue], [5, 5, 1]);

    // Only requested metrics come back; state changes show up on the next query.
    env.sim
        .set_agent(&moving, SystemPresence::Available, RoutingStatus::Idle);
    env.sim.set_waiting(&q, "voice", 0);
    let v = env.observe(&[&q], &["oOnQueueUsers", "oWaiting"]).await;
    assert_eq!(
        counts(&v, &q, None),
        vec![
            ("oOnQueueUsers".to_owned(), Some("IDLE".to_owned()), 1),
            (
                "oOnQueueUsers".to_owned(),
                Some("INTERACTING".to_owned()),
                1
            ),
        ]
    );
    assert!(counts(&v, &q, Some("voice")).is_empty());
}

#[tokio::test]
async fn observations_reject_bad_queries() {
    let env = Env::default().await;
    let ids: Vec<String> = (0..101)
        .map(|i| format!("00000000-0000-4000-8000-{i:012}"))
        .collect();
    let preds: Vec<Value> = ids
        .iter()
        .map(|id| json!({"dimension": "queueId", "value": id}))
        .collect();
    let r = env
        .post(
            "/api/v2/analytics/queues/observations/query",
            &json!({"filter": {"type": "or", "predicates": preds}, "metrics": ["oWaiting"]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    let v = body(r).await;
    assert!(v["message"].as_str().unwrap().contains("100"), "{v}");
    assert!(v["contextId"].is_string());

    let r = env
        .post(
            "/api/v2/analytics/queues/observations/query",
            &json!({"filter": {"type": "or", "predicates": [{"dimension": "queueId", "value": "x"}]}, "metrics": ["oOnQueue"]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        body(r).await["message"]
            .as_str()
            .unwrap()
            .contains("oOnQueue")
    );
    let r = env
        .http
        .post(env.url("/api/v2/analytics/queues/observations/query"))
        .bearer_auth(&env.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = env
        .http
        .post(env.url("/api/v2/analytics/queues/observations/query"))
        .bearer_auth(&env.token)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test]
async fn churn_changes_state() {
    let sim = Sim::start(SimOptions {
        churn: Some(Duration::from_millis(10)),
        ..SimOptions::default()
    })
    .await
    .unwrap();
    let q = sim.add_queue("Q");
    for _ in 0..10 {
        sim.add_agent(SystemPresence::Offline, RoutingStatus::OffQueue, &[&q]);
    }
    let start = sim.truth(&q).unwrap();
    let mut changed = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if sim.truth(&q).unwrap() != start {
            changed = true;
            break;
        }
    }
    assert!(changed);
}
