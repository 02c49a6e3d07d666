//! End-to-end tests of the simulator over real loopback HTTP.

use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Client, Response};
use serde_json::{Value, json};

use super::*;

struct Env {
    sim: Sim,
    http: Client,
    token: String,
}

impl Env {
    async fn start(opts: SimOptions) -> Env {
        let sim = Sim::start(opts).await.unwrap();
        let http = Client::new();
        let token = login(&sim, &http, "sim-client-id", "sim-client-secret")
            .await
            .json::<Value>()
            .await
            .unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        sim.clear_log();
        Env { sim, http, token }
    }

    async fn default() -> Env {
        Env::start(SimOptions::default()).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    async fn get(&self, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: &Value) -> Response {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> Response {
        self.send(reqwest::Method::POST, path, body).await
    }

    async fn put(&self, path: &str, body: &Value) -> Response {
        self.send(reqwest::Method::PUT, path, body).await
    }

    async fn delete(&self, path: &str) -> Response {
        self.http
            .delete(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    async fn observe(&self, ids: &[&str], metrics: &[&str]) -> Value {
        let preds: Vec<Value> = ids
            .iter()
            .map(|id| json!({"type": "dimension", "dimension": "queueId", "operator": "matches", "value": id}))
            .collect();
        let body = json!({"filter": {"type": "or", "predicates": preds}, "metrics": metrics});
        let r = self
            .post("/api/v2/analytics/queues/observations/query", &body)
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }
}

async fn login(sim: &Sim, http: &Client, id: &str, secret: &str) -> Response {
    http.post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(id, Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

async fn body(r: Response) -> Value {
    r.json().await.unwrap()
}

fn header(r: &Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// `(metric, qualifier) -> count` over all groups of a queue (and media type, if given).
fn counts(resp: &Value, queue: &str, media: Option<&str>) -> Vec<(String, Option<String>, u64)> {
    let mut out = Vec::new();
    for r in resp["results"].as_array().unwrap() {
        if r["group"]["queueId"] != queue || r["group"]["mediaType"].as_str() != media {
            continue;
        }
        for d in r["data"].as_array().cloned().unwrap_or_default() {
            out.push((
                d["metric"].as_str().unwrap().to_owned(),
                d["qualifier"].as_str().map(str::to_owned),
                d["stats"]["count"].as_u64().unwrap(),
            ));
        }
    }
    out
}

#[tokio::test]
async fn login_and_bearer_auth() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    let http = Client::new();
    let r = login(&sim, &http, "sim-client-id", "sim-client-secret").await;
    assert_eq!(r.status(), 200);
    let v = body(r).await;
    assert_eq!(v["token_type"], "bearer");
    assert_eq!(v["expires_in"], 86400);
    let token = v["access_token"].as_str().unwrap().to_owned();

    let r = login(&sim, &http, "sim-client-id", "wrong").await;
    assert_eq!(r.status(), 401);
    assert_eq!(body(r).await["error"], "invalid_client");
    let r = http
        .post(format!("{}/oauth/token", sim.base_url()))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth("sim-client-id", Some("sim-client-secret"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(body(r).await["error"], "unsupported_grant_type");

    let url = format!("{}/api/v2/routing/queues", sim.base_url());
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(header(&r, "inin-correlation-id").is_some());
    let v = body(r).await;
    assert_eq!(v["code"], "authentication.required");
    assert_eq!(v["status"], 401);
    assert_eq!(v["message"], "Authentication failed");
    assert!(v["contextId"].is_string());
    let r = http.get(&url).bearer_auth("bogus").send().await.unwrap();
    assert_eq!(r.status(), 401);

    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "inin-correlation-id").is_some());
    assert_eq!(header(&r, "inin-ratelimit-allowed").as_deref(), Some("300"));
    assert_eq!(header(&r, "inin-ratelimit-count").as_deref(), Some("1"));
    assert!(header(&r, "inin-ratelimit-reset").is_some());

    // Secret rotation: the old secret stops working, issued tokens keep working.
    sim.set_credentials("sim-client-id", "rotated");
    assert_eq!(
        login(&sim, &http, "sim-client-id", "sim-client-secret")
            .await
            .status(),
        401
    );
    assert_eq!(
        login(&sim, &http, "sim-client-id", "rotated")
            .await
            .status(),
        200
    );
    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200);

    sim.revoke_tokens();
    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let log = sim.requests();
    let last = log.last().unwrap();
    assert_eq!(last.status, 401);
    assert_eq!(
        last.authorization.as_deref(),
        Some(format!("Bearer {token}").as_str())
    );
    assert!(
        log.iter()
            .any(|l| l.path == "/oauth/token" && l.status == 400)
    );
}

#[tokio::test]
async fn expired_token_is_rejected() {
    let env = Env::start(SimOptions {
        token_expires_in: 0,
        ..SimOptions::default()
    })
    .await;
    let r = env.get("/api/v2/routing/queues").await;
    assert_eq!(r.status(), 401);
    assert_eq!(body(r).await["code"], "authentication.required");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let env = Env::start(SimOptions {
        rate_limit_per_minute: 3,
        ..SimOptions::default()
    })
    .await;
    for i in 1..=3 {
        let r = env.get("/api/v2/routing/queues").await;
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "inin-ratelimit-count"), Some(i.to_string()));
    }
    for _ in 0..2 {
        let r = env.get("/api/v2/routing/queues").await;
        assert_eq!(r.status(), 429);
        let retry: u64 = header(&r, "retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(header(&r, "inin-ratelimit-allowed").as_deref(), Some("3"));
        let v = body(r).await;
        assert_eq!(v["code"], "too.many.requests");
        assert_eq!(
            v["message"],
            "Rate limit exceeded the maximum. [3] requests for [60] seconds"
        );
    }
    // A new token has its own budget.
    let fresh = login(&env.sim, &env.http, "sim-client-id", "sim-client-secret")
        .await
        .json::<Value>()
        .await
        .unwrap();
    let r = env
        .http
        .get(env.url("/api/v2/routing/queues"))
        .bearer_auth(fresh["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

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
    assert_eq!(get("oActiveUsers", None), Some(4));
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
            ("oActiveUsers".to_owned(), None, 0),
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
    assert_eq!(
        env.sim.truth(&q),
        Some(QueueTruth {
            online: 4,
            on_queue: 3,
            idle: 1,
            interacting: 2,
            waiting: 5
        })
    );

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
    let ids: Vec<String> = (0..101).map(|_| state::new_id()).collect();
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

fn table_body(name: &str) -> Value {
    json!({
        "name": name,
        "description": "queue counts",
        "schema": {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "required": ["key"],
            "additionalProperties": false,
            "properties": {
                "key": {"title": "Queue", "type": "string", "$id": "/properties/key", "displayOrder": 0},
                "Online": {"title": "Online", "type": "integer", "$id": "/properties/Online", "displayOrder": 1, "minimum": 0, "maximum": 100000},
                "UpdatedAt": {"title": "UpdatedAt", "type": "string", "displayOrder": 2}
            }
        }
    })
}

fn row_path(table: &str, key: &str) -> String {
    format!(
        "/api/v2/flows/datatables/{table}/rows/{}",
        utf8_percent_encode(key, NON_ALPHANUMERIC)
    )
}

#[tokio::test]
async fn datatables_and_rows() {
    let env = Env::default().await;
    let r = env
        .post("/api/v2/flows/datatables", &table_body("Queue Counts"))
        .await;
    assert_eq!(r.status(), 200);
    let t = body(r).await;
    let id = t["id"].as_str().unwrap().to_owned();
    assert_eq!(t["schema"]["properties"]["key"]["maxLength"], 256);
    assert_eq!(env.sim.table_id("queue counts"), Some(id.clone()));
    assert_eq!(
        env.post("/api/v2/flows/datatables", &table_body("QUEUE COUNTS"))
            .await
            .status(),
        409
    );
    let v = body(
        env.get("/api/v2/flows/datatables?name=queue*&expand=schema")
            .await,
    )
    .await;
    assert_eq!(v["total"], 1);
    assert!(v["entities"][0]["schema"]["properties"]["Online"].is_object());
    let v = body(env.get(&format!("/api/v2/flows/datatables/{id}")).await).await;
    assert!(v.get("schema").is_none());
    assert_eq!(env.get("/api/v2/flows/datatables/nope").await.status(), 404);

    // Rows.
    let rows = format!("/api/v2/flows/datatables/{id}/rows");
    let r = env.post(&rows, &json!({"key": "Sales", "Online": 3})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await, json!({"key": "Sales", "Online": 3}));
    assert_eq!(
        env.post(&rows, &json!({"key": "Sales"})).await.status(),
        409
    );
    let r = env.post(&rows, &json!({"key": "X", "Bogus": 1})).await;
    assert_eq!(r.status(), 400);
    let v = body(r).await;
    assert_eq!(v["code"], "flows.datatables.schema.exception");
    assert!(v["message"].as_str().unwrap().contains("Bogus"));
    for bad in [
        json!({"key": "X", "Online": "3"}),
        json!({"key": "X", "Online": 3.5}),
        json!({"key": "X", "Online": -1}),
        json!({"key": "X", "UpdatedAt": 5}),
        json!({"Online": 1}),
    ] {
        let r = env.post(&rows, &bad).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    let r = env
        .put(&row_path(&id, "Sales"), &json!({"Online": 5}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await, json!({"key": "Sales", "Online": 5}));
    let r = env
        .put(&row_path(&id, "Missing"), &json!({"Online": 5}))
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(body(r).await["code"], "flows.datatables.row.not.found");
    assert_eq!(
        env.put(&row_path(&id, "Sales"), &json!({"Online": "x"}))
            .await
            .status(),
        400
    );

    // Keys that need encoding round-trip through the path.
    let odd = "a b/c%d#e ü";
    let r = env.post(&rows, &json!({"key": odd, "Online": 1})).await;
    assert_eq!(r.status(), 200);
    let r = env
        .get(&format!("{}?showbrief=false", row_path(&id, odd)))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(body(r).await, json!({"key": odd, "Online": 1}));
    let r = env.get(&row_path(&id, odd)).await;
    assert_eq!(body(r).await, json!({"key": odd}));
    let r = env
        .put(&row_path(&id, odd), &json!({"key": odd, "Online": 2}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(env.sim.rows(&id)[odd]["Online"], 2);
    let logged = env.sim.requests().into_iter().last().unwrap();
    assert!(logged.raw_path.ends_with("a%20b%2Fc%25d%23e%20%C3%BC"));
    assert!(logged.path.ends_with(odd));

    // Listing: brief by default, sorted by key.
    env.sim
        .put_row(&id, json!({"key": "Another", "Foreign": true}));
    let v = body(env.get(&format!("{rows}?pageSize=2")).await).await;
    assert_eq!(v["total"], 3);
    assert_eq!(v["entities"], json!([{"key": "Another"}, {"key": "Sales"}]));
    assert!(v["nextUri"].is_string());
    let v = body(
        env.get(&format!("{rows}?pageSize=2&pageNumber=2&showbrief=false"))
            .await,
    )
    .await;
    assert_eq!(v["entities"], json!([{"key": odd, "Online": 2}]));

    assert_eq!(env.delete(&row_path(&id, odd)).await.status(), 204);
    assert_eq!(env.delete(&row_path(&id, odd)).await.status(), 404);

    // Additive schema updates only.
    let mut schema = table_body("Queue Counts")["schema"].clone();
    schema["properties"]["Idle"] = json!({"type": "integer"});
    let r = env
        .put(
            &format!("/api/v2/flows/datatables/{id}?expand=schema"),
            &json!({"name": "Queue Counts", "schema": schema}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        body(r).await["schema"]["properties"]["Idle"]["displayOrder"],
        3
    );
    schema["properties"]
        .as_object_mut()
        .unwrap()
        .remove("Online");
    let r = env
        .put(
            &format!("/api/v2/flows/datatables/{id}"),
            &json!({"name": "Queue Counts", "schema": schema}),
        )
        .await;
    assert_eq!(r.status(), 400);

    assert_eq!(
        env.delete(&format!("/api/v2/flows/datatables/{id}"))
            .await
            .status(),
        204
    );
    assert_eq!(env.get(&rows).await.status(), 404);
    assert_eq!(env.post(&rows, &json!({"key": "a"})).await.status(), 404);
}

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

async fn wait_for_job(env: &Env, table: &str, job: &str) -> Value {
    for _ in 0..100 {
        let v = body(
            env.get(&format!(
                "/api/v2/flows/datatables/{table}/import/jobs/{job}"
            ))
            .await,
        )
        .await;
        if v["status"] == "Succeeded" || v["status"] == "Failed" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("import job {job} did not finish");
}

async fn upload(env: &Env, job: &Value, csv: &str) -> Response {
    let mut req = env.http.put(job["uploadURI"].as_str().unwrap());
    for (k, v) in job["uploadHeaders"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    req.body(csv.to_owned()).send().await.unwrap()
}

#[tokio::test]
async fn import_jobs() {
    let env = Env::default().await;
    let id = env.sim.create_table(
        "Counts",
        &[("Online", FieldType::Integer), ("Open", FieldType::Boolean)],
    );
    env.sim.put_row(&id, json!({"key": "old", "Online": 9}));
    let jobs = format!("/api/v2/flows/datatables/{id}/import/csv/jobs");

    let r = env.post(&jobs, &json!({"importMode": "ReplaceAll"})).await;
    assert_eq!(r.status(), 200);
    let job = body(r).await;
    assert_eq!(job["status"], "WaitingForUpload");
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert!(
        job["uploadURI"]
            .as_str()
            .unwrap()
            .starts_with(&format!("http://{}/uploads/", env.sim.upload_addr()))
    );
    // Missing upload headers: refused like a presigned URL whose signature does not match.
    let r = env
        .http
        .put(job["uploadURI"].as_str().unwrap())
        .body("key\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = upload(
        &env,
        &job,
        "key,Online,Open\r\n\"a, b\",1,true\r\nSales,4,\r\n",
    )
    .await;
    assert_eq!(r.status(), 200);
    let done = wait_for_job(&env, &id, &job_id).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    assert_eq!(done["countRecordsUpdated"], 2);
    assert_eq!(done["countRecordsDeleted"], 1);
    assert!(done["dateCompleted"].is_string());
    let rows = env.sim.rows(&id);
    assert_eq!(rows.len(), 2);
    assert_eq!(
        Value::Object(rows["a, b"].clone()),
        json!({"key": "a, b", "Online": 1, "Open": true})
    );
    assert_eq!(
        Value::Object(rows["Sales"].clone()),
        json!({"key": "Sales", "Online": 4})
    );

    // A bad file fails the job and changes nothing.
    let job = body(env.post(&jobs, &json!({"importMode": "Append"})).await).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(
        upload(&env, &job, "key,Online\nSales,many\n")
            .await
            .status(),
        200
    );
    let done = wait_for_job(&env, &id, &job_id).await;
    assert_eq!(done["status"], "Failed");
    assert_eq!(done["countRecordsFailed"], 1);
    let msg = done["errorInformation"]["message"].as_str().unwrap();
    assert!(msg.contains("line 2") && msg.contains("Online"), "{msg}");
    assert_eq!(env.sim.rows(&id), rows);

    assert_eq!(
        env.post(&jobs, &json!({"importMode": "Sometimes"}))
            .await
            .status(),
        400
    );
    let v = body(
        env.get(&format!("/api/v2/flows/datatables/{id}/import/jobs"))
            .await,
    )
    .await;
    assert_eq!(v["total"], 2);
    // The upload went through the log like any request.
    assert!(
        env.sim
            .requests()
            .iter()
            .any(|l| l.method == "PUT" && l.path.starts_with("/uploads/") && l.status == 403)
    );
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

#[tokio::test(start_paused = true)]
async fn paused_clock_drives_expiry_and_rate_window() {
    let env = Env::start(SimOptions {
        token_expires_in: 120,
        rate_limit_per_minute: 2,
        ..SimOptions::default()
    })
    .await;
    assert_eq!(env.get("/api/v2/routing/queues").await.status(), 200);
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(env.get("/api/v2/routing/queues").await.status(), 200);
    let r = env.get("/api/v2/routing/queues").await;
    assert_eq!(r.status(), 429);
    assert_eq!(header(&r, "retry-after").as_deref(), Some("40"));
    tokio::time::advance(Duration::from_secs(40)).await;
    assert_eq!(env.get("/api/v2/routing/queues").await.status(), 200);
    tokio::time::advance(Duration::from_secs(60)).await;
    let r = env.get("/api/v2/routing/queues").await;
    assert_eq!(r.status(), 401);
    // Requests are stamped with the (virtual) tokio clock.
    let log = env.sim.requests();
    let span = log.last().unwrap().at - log.first().unwrap().at;
    assert_eq!(span, Duration::from_secs(120));
}
