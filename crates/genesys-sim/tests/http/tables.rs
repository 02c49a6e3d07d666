//! Data tables, rows and CSV import jobs.

use genesys_sim::*;
use serde_json::{Value, json};

use crate::*;

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

    // A bad record fails alone: the job succeeds, counts it and names it; the rest lands.
    let job = body(env.post(&jobs, &json!({"importMode": "Append"})).await).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(
        upload(&env, &job, "key,Online\nSales,many\nNew,2\n")
            .await
            .status(),
        200
    );
    let done = wait_for_job(&env, &id, &job_id).await;
    assert_eq!(done["status"], "Succeeded", "{done}");
    assert_eq!(done["countRecordsFailed"], 1);
    assert_eq!(done["countRecordsUpdated"], 1);
    let msg = done["errorInformation"]["message"].as_str().unwrap();
    assert!(msg.contains("line 2") && msg.contains("Online"), "{msg}");
    let after = env.sim.rows(&id);
    assert_eq!(
        after["Sales"], rows["Sales"],
        "the failed record left its row alone"
    );
    assert_eq!(after["New"]["Online"], 2);

    // A bad file fails the job and changes nothing.
    let job = body(env.post(&jobs, &json!({"importMode": "Append"})).await).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(
        upload(&env, &job, "key,Bogus\nSales,1\n").await.status(),
        200
    );
    let done = wait_for_job(&env, &id, &job_id).await;
    assert_eq!(done["status"], "Failed");
    assert!(
        done["errorInformation"]["message"]
            .as_str()
            .unwrap()
            .contains("Bogus")
    );
    assert_eq!(env.sim.rows(&id), after);

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
    assert_eq!(v["total"], 3);
    // The upload went through the log like any request.
    assert!(
        env.sim
            .requests()
            .iter()
            .any(|l| l.method == "PUT" && l.path.starts_with("/uploads/") && l.status == 403)
    );
}

#[tokio::test]
async fn replace_all_empties_the_table_for_a_moment_append_never_does() {
    let env = Env::default().await;
    let id = env
        .sim
        .create_table("Counts", &[("Online", FieldType::Integer)]);
    env.sim.put_row(&id, json!({"key": "a", "Online": 1}));
    env.sim.put_row(&id, json!({"key": "foreign", "Online": 7}));
    let jobs = format!("/api/v2/flows/datatables/{id}/import/csv/jobs");
    let rows = format!("/api/v2/flows/datatables/{id}/rows?showbrief=false");
    let listed = |v: Value| v["entities"].as_array().unwrap().len();

    let job = body(env.post(&jobs, &json!({"importMode": "ReplaceAll"})).await).await;
    upload(&env, &job, "key,Online\na,2\n").await;
    // Every row is deleted, then (after a gap a reader can see) the file's rows inserted.
    let mut saw_empty = false;
    for _ in 0..50 {
        if listed(body(env.get(&rows).await).await) == 0 {
            saw_empty = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_empty, "ReplaceAll left no moment without rows");
    let done = wait_for_job(&env, &id, job["id"].as_str().unwrap()).await;
    assert_eq!(done["countRecordsDeleted"], 2);
    assert_eq!(env.sim.rows(&id).len(), 1);

    env.sim.put_row(&id, json!({"key": "foreign", "Online": 7}));
    env.sim.fail_import_rows(&["b"]);
    let job = body(env.post(&jobs, &json!({"importMode": "Append"})).await).await;
    upload(&env, &job, "key,Online\na,3\nb,1\n").await;
    for _ in 0..20 {
        assert_eq!(
            listed(body(env.get(&rows).await).await),
            2,
            "Append hides no row"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let done = wait_for_job(&env, &id, job["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "Succeeded");
    assert_eq!(done["countRecordsFailed"], 1);
    assert!(
        done["errorInformation"]["message"]
            .as_str()
            .unwrap()
            .contains("key \"b\"")
    );
    let after = env.sim.rows(&id);
    assert_eq!(after["a"]["Online"], 3);
    assert_eq!(after["foreign"]["Online"], 7);
    assert!(!after.contains_key("b"));

    env.sim.fail_import_rows(&[]);
    env.sim.stall_imports(true);
    let job = body(env.post(&jobs, &json!({"importMode": "Append"})).await).await;
    upload(&env, &job, "key,Online\nb,1\n").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let v = body(
        env.get(&format!(
            "/api/v2/flows/datatables/{id}/import/jobs/{}",
            job["id"].as_str().unwrap()
        ))
        .await,
    )
    .await;
    assert_eq!(v["status"], "Processing");
}
