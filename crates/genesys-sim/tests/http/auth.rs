//! Login, bearer tokens, expiry and the per-token rate limit.

use genesys_sim::*;
use serde_json::Value;

use crate::*;

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
    // Removed by Genesys in June 2021: absent unless a test asks for them.
    assert!(header(&r, "inin-ratelimit-count").is_none());
    sim.send_legacy_rate_headers(true);
    let r = http.get(&url).bearer_auth(&token).send().await.unwrap();
    assert_eq!(header(&r, "inin-ratelimit-allowed").as_deref(), Some("300"));
    assert_eq!(header(&r, "inin-ratelimit-count").as_deref(), Some("2"));
    assert!(header(&r, "inin-ratelimit-reset").is_some());
    sim.send_legacy_rate_headers(false);

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
    env.sim.send_legacy_rate_headers(true);
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
        // Genesys' normalized 429 body, with the limit it names.
        let v = body(r).await;
        assert_eq!(v["code"], "too.many.requests.retry.after");
        assert_eq!(
            v["message"],
            format!("Rate limit exceeded the maximum. Retry the request in [{retry}] seconds")
        );
        assert_eq!(v["status"], 429);
        assert!(v["contextId"].is_string());
        assert_eq!(
            v["limit"]["key"],
            "client.credentials.token.rate.per.minute"
        );
        assert_eq!(v["limit"]["value"], 3);
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

#[tokio::test]
async fn a_missing_permission_answers_genesys_403_body_before_anything_else() {
    let env = Env::default().await;
    let q = env.sim.add_queue("Sales");
    let t = env.sim.create_table("T", &[("Online", FieldType::Integer)]);
    env.sim.revoke("analytics:queueObservation:view");
    let body_of = json!({"filter": {"type": "or", "predicates": [{"type": "dimension", "dimension": "queueId", "operator": "matches", "value": q}]}, "metrics": ["oOnQueueUsers"]});
    let r = env
        .post("/api/v2/analytics/queues/observations/query", &body_of)
        .await;
    assert_eq!(r.status(), 403);
    let v = body(r).await;
    assert_eq!(v["status"], 403);
    assert_eq!(v["code"], "missing.permissions");
    assert_eq!(
        v["message"],
        "Unable to perform the requested action. You are missing the following permission(s): [analytics:queueObservation:view]"
    );
    // The grant is read at each request: the same token works once it is given back.
    env.sim.grant("analytics:queueObservation:view");
    let r = env
        .post("/api/v2/analytics/queues/observations/query", &body_of)
        .await;
    assert_eq!(r.status(), 200);

    // Rows accept the row-level or the table-level permission (type ANY).
    let rows = format!("/api/v2/flows/datatables/{t}/rows");
    env.sim.revoke("architect:datatableRow:view");
    assert_eq!(env.get(&rows).await.status(), 200);
    env.sim.revoke("architect:datatable:view");
    let r = env.get(&rows).await;
    assert_eq!(r.status(), 403);
    let v = body(r).await;
    assert_eq!(v["code"], "missing.any.permissions");
    assert!(
        v["message"].as_str().unwrap().contains(
            "at least one of the following permissions assigned: [architect:datatable:view, architect:datatableRow:view]"
        ),
        "{v}"
    );
    // Checked before existence: a DELETE of a key that cannot exist answers 404 with the
    // permission and 403 without.
    let gone = format!("/api/v2/flows/datatables/{t}/rows/no-such-key");
    assert_eq!(env.delete(&gone).await.status(), 404);
    env.sim.revoke("architect:datatableRow:delete");
    env.sim.revoke("architect:datatable:delete");
    assert_eq!(env.delete(&gone).await.status(), 403);
}

#[tokio::test]
async fn each_oauth_client_has_its_own_permission_set() {
    let sim = Sim::start(SimOptions::default()).await.unwrap();
    sim.add_queue("Sales");
    sim.add_client("reader", "s3cret", &["architect:datatable:view"]);
    let http = Client::new();
    let token = |r: Value| r["access_token"].as_str().unwrap().to_owned();
    let reader = token(body(login(&sim, &http, "reader", "s3cret").await).await);
    let main = token(body(login(&sim, &http, "sim-client-id", "sim-client-secret").await).await);
    let get = |tok: String| {
        let http = http.clone();
        let url = format!("{}/api/v2/routing/queues", sim.base_url());
        async move { http.get(url).bearer_auth(tok).send().await.unwrap() }
    };
    assert_eq!(get(main.clone()).await.status(), 200);
    let r = get(reader.clone()).await;
    assert_eq!(r.status(), 403);
    assert!(
        body(r).await["message"]
            .as_str()
            .unwrap()
            .contains("[routing:queue:view]")
    );
    sim.grant_to(Some("reader"), "routing:queue:view");
    assert_eq!(get(reader.clone()).await.status(), 200);
    sim.revoke_from(Some("reader"), "routing:queue:view");
    assert_eq!(get(reader).await.status(), 403);
    assert_eq!(get(main).await.status(), 200);
}
