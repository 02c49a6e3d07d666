//! End-to-end tests of the simulator over real loopback HTTP.
//!
//! One test binary: `main.rs` holds the shared client helpers, each module one concern.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod directory;
mod pipeline;
mod tables;

use std::time::Duration;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Client, Response};
use serde_json::{Value, json};

use genesys_sim::*;

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
