//! The run logs (`/v2/workflows/events`): how recorded steps are grouped (parallel branches
//! whose results arrive in any order, plan steps left out, back-to-back parallel groups) and
//! every filter, with the test playing the SDK.

use serde_json::{Value, json};

use super::*;
use crate::common::TestServer;
use crate::common::ext::eventually;

fn plan(target: u64, name: &str, concurrent: u64) -> String {
    json!({"stepId": 0, "stepName": name, "stepType": "Run", "concurrent": concurrent, "targetStep": target})
        .to_string()
}

fn result(id: u64, name: &str, concurrent: u64) -> String {
    json!({"stepId": id, "stepName": name, "stepType": "Run", "out": format!("\"{name}\""), "concurrent": concurrent})
        .to_string()
}

async fn logs(server: &TestServer, query: &str) -> Value {
    let (status, body) = server
        .get_json(&format!("/v2/workflows/events?{query}"))
        .await;
    assert_eq!(status, 200, "{query}: {body}");
    body
}

async fn run_ids(server: &TestServer, query: &str) -> Vec<String> {
    let body = logs(server, query).await;
    body["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["workflowRunId"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_results_are_grouped_whatever_their_order() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let id = run_id("groups");
    trigger(&server, &url, &id, &[], r#"{"n":1}"#).await;
    let headers = wf_headers(&id, &url, false);
    let publish_step = async |body: String| {
        let (status, answer) = publish(&server, &url, &headers, &body).await;
        assert_eq!(status, 200, "{answer}");
    };
    publish_step(result(1, "first", 1)).await;
    // Two branches: plans, then the results in reverse order.
    publish_step(plan(2, "a", 2)).await;
    publish_step(plan(3, "b", 2)).await;
    publish_step(result(3, "b", 2)).await;
    publish_step(result(2, "a", 2)).await;
    // Right after it, a second parallel group of three.
    for (i, name) in [(4, "x"), (5, "y"), (6, "z")] {
        publish_step(plan(i, name, 3)).await;
    }
    for (i, name) in [(5, "y"), (4, "x"), (6, "z")] {
        publish_step(result(i, name, 3)).await;
    }
    publish_step(result(7, "last", 1)).await;
    rx.wait_for(12).await;
    assert_eq!(end_run(&server, &id, false, "\"done\"").await, 200);

    let body = logs(
        &server,
        &format!("workflowRunId={id}&groupBy=workflowRunId"),
    )
    .await;
    assert!(body.get("cursor").is_none(), "one page: {body}");
    let run = &body["runs"][0];
    assert_eq!(run["workflowState"], "RUN_SUCCESS");
    assert_eq!(run["workflowRunResponse"], "\"done\"");
    let groups: Vec<(String, Vec<String>)> = run["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let names = g["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["stepName"].as_str().unwrap_or("?").to_string())
                .collect();
            (g["type"].as_str().unwrap().to_string(), names)
        })
        .collect();
    let expect = |t: &str, names: &[&str]| {
        (
            t.to_string(),
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        groups,
        [
            expect("sequential", &["init"]),
            expect("sequential", &["first"]),
            expect("parallel", &["b", "a"]),
            expect("parallel", &["y", "x", "z"]),
            expect("sequential", &["last"]),
        ],
        "{run}"
    );
    let b = &run["steps"][2]["steps"][0];
    assert_eq!(
        (b["stepId"].clone(), b["concurrent"].clone()),
        (json!(3), json!(2))
    );
    assert_eq!(b["out"], "\"b\"");
    assert_eq!(b["state"], "STEP_SUCCESS");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_filter_and_the_cursor() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let (a_url, b_url) = (format!("{}/wf/a", rx.url), format!("{}/wf/b", rx.url));
    let (a, b, c) = (run_id("fa"), run_id("fb"), run_id("fc"));
    let init_a = trigger(&server, &a_url, &a, &[("Upstash-Label", "red")], "{}").await;
    server.advance(std::time::Duration::from_millis(10));
    trigger(
        &server,
        &b_url,
        &b,
        &[
            ("Upstash-Label", "blue"),
            ("Upstash-Flow-Control-Key", "k1"),
            ("Upstash-Flow-Control-Value", "parallelism=1"),
        ],
        "{}",
    )
    .await;
    server.advance(std::time::Duration::from_millis(10));
    trigger(&server, &a_url, &c, &[("Upstash-Label", "red,green")], "{}").await;
    rx.wait_for(3).await;
    assert_eq!(end_run(&server, &c, true, "").await, 200);

    let all = logs(&server, "").await;
    let runs = all["runs"].as_array().unwrap();
    assert_eq!(
        run_ids(&server, "").await,
        [c.clone(), b.clone(), a.clone()],
        "newest first"
    );
    let created = |i: usize| runs[i]["workflowRunCreatedAt"].as_i64().unwrap();
    let (c_at, b_at, a_at) = (created(0), created(1), created(2));

    assert_eq!(
        run_ids(&server, &format!("workflowRunId={b}")).await,
        vec![b.clone()]
    );
    assert_eq!(
        run_ids(&server, &format!("workflowUrl={}", urlencode(&a_url))).await,
        [c.clone(), a.clone()]
    );
    assert_eq!(
        run_ids(&server, &format!("workflowUrl={}/wf", urlencode(&rx.url))).await,
        Vec::<String>::new(),
        "workflowUrl is exact"
    );
    assert_eq!(
        run_ids(&server, "state=RUN_CANCELED").await,
        vec![c.clone()]
    );
    assert_eq!(
        run_ids(&server, "state=RUN_STARTED").await,
        [b.clone(), a.clone()]
    );
    assert_eq!(run_ids(&server, "label=red").await, [c.clone(), a.clone()]);
    assert_eq!(
        run_ids(&server, "label=green&label=blue").await,
        [c.clone(), b.clone()]
    );
    assert_eq!(run_ids(&server, "flowControlKey=k1").await, vec![b.clone()]);
    assert_eq!(run_ids(&server, "callerIp=127.0.0.1").await.len(), 3);
    assert_eq!(run_ids(&server, "callerIp=10.0.0.1").await.len(), 0);
    assert_eq!(
        run_ids(&server, &format!("fromDate={b_at}")).await,
        [c.clone(), b.clone()]
    );
    assert_eq!(
        run_ids(&server, &format!("toDate={b_at}")).await,
        [b.clone(), a.clone()]
    );
    assert_eq!(
        run_ids(&server, &format!("workflowCreatedAt={a_at}")).await,
        vec![a.clone()]
    );
    assert_eq!(
        run_ids(
            &server,
            &format!("workflowRuns={a}@{a_at},{c}@{c_at},{b}@1")
        )
        .await,
        [c.clone(), a.clone()]
    );
    assert_eq!(
        run_ids(&server, "host=127.0.0.1&path=/wf/b").await,
        vec![b.clone()]
    );
    let init_id = init_a["messageId"].as_str().unwrap();
    assert_eq!(
        run_ids(&server, &format!("messageId={init_id}")).await,
        vec![a.clone()]
    );

    // Pages of one, to the end; the cursor is absent on the last.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = logs(&server, &format!("count=1&cursor={cursor}")).await;
        seen.extend(
            page["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["workflowRunId"].as_str().unwrap().to_string()),
        );
        match page["cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, [c.clone(), b.clone(), a.clone()]);

    for (query, field) in [
        ("state=DONE", "state"),
        ("count=0", "count"),
        ("cursor=%21%21", "cursor"),
        ("fromDate=today", "fromDate"),
        ("workflowRunz=x", "workflowRunz"),
    ] {
        let (status, body) = server
            .get_json(&format!("/v2/workflows/logs?{query}"))
            .await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(field),
            "{query}: {body}"
        );
    }
    // The plain logs follow a run message by message.
    let (_, events) = server
        .get_json(&format!("/v2/events?messageId={init_id}"))
        .await;
    assert_eq!(events["events"][0]["workflowRunId"], a.as_str());
    assert_eq!(events["events"][0]["workflowUrl"], a_url.as_str());
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_step_is_in_the_next_group_with_its_errors_until_delivered() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf/retried", rx.url);
    let id = run_id("retried");
    trigger(&server, &url, &id, &[], "{}").await;
    rx.wait_for(1).await;
    rx.script(
        "/wf/retried",
        Reply::status(503).body("try later").header("X-Why", "busy"),
    );
    let extra = [("Upstash-Retries", "2"), ("Upstash-Retry-Delay", "1000")];
    let (status, s1) = step(&server, &url, &id, 1, json!("one"), &extra).await;
    assert_eq!(status, 200, "{s1}");
    let message_id = s1["messageId"].as_str().unwrap();
    server.wait_retries(message_id, 1).await;

    let run = &logs(&server, &format!("workflowRunId={id}")).await["runs"][0];
    assert_eq!(run["workflowState"], "RUN_STARTED");
    let next = run["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(next["type"], "next", "{run}");
    let pending = &next["steps"][0];
    assert_eq!(pending["messageId"], message_id);
    assert_eq!(pending["state"], "STEP_RETRY");
    assert_eq!(pending["retries"], 2);
    assert_eq!(pending["retryDelay"], "1000");
    let errors = pending["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{pending}");
    assert_eq!(errors[0]["status"], 503);
    assert_eq!(errors[0]["body"], "try later");
    assert!(
        errors[0]["error"].as_str().unwrap().contains("503"),
        "{}",
        errors[0]
    );
    assert!(errors[0]["time"].as_i64().unwrap() > 0);
    let why = errors[0]["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-why"))
        .map(|(_, v)| v.clone());
    assert_eq!(why, Some(json!(["busy"])), "{}", errors[0]);

    server.advance(std::time::Duration::from_secs(2));
    server.wait_state(message_id, "DELIVERED").await;
    let run = &logs(&server, &format!("workflowRunId={id}")).await["runs"][0];
    let groups = run["steps"].as_array().unwrap();
    assert!(
        groups.iter().all(|g| g["type"] != "next"),
        "nothing in flight: {run}"
    );
    let s1 = &groups[1]["steps"][0];
    assert_eq!(
        (s1["stepName"].clone(), s1["state"].clone()),
        (json!("s1"), json!("STEP_SUCCESS"))
    );
}

/// DLQ entries of runs whose Init message failed at `url` (each answered 500).
async fn failed_runs(server: &TestServer, url: &str, ids: &[&str], label: &str) -> Vec<String> {
    for id in ids {
        trigger(
            server,
            url,
            id,
            &[("Upstash-Retries", "0"), ("Upstash-Label", label)],
            "\"p\"",
        )
        .await;
    }
    eventually("the runs' DLQ entries", || async {
        let (_, body) = server
            .get_json(&format!("/v2/workflows/dlq?label={label}"))
            .await;
        let entries = body["messages"].as_array().cloned().unwrap_or_default();
        (entries.len() == ids.len()).then(|| {
            entries
                .iter()
                .map(|e| e["dlqId"].as_str().unwrap().to_string())
                .collect()
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn single_and_bulk_recovery_routes_with_overrides() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500).body("down"));
    let url = format!("{}/wf/down", rx.url);
    let (a, b, c) = (run_id("ra"), run_id("rb"), run_id("rc"));
    let dlq = failed_runs(&server, &url, &[&a, &b, &c], "down").await;

    // A failed Init message has no steps to keep: resume starts over, like restart.
    let (status, one) = send(
        server
            .post(&format!("/v2/workflows/dlq/resume/{}", dlq[0]))
            .header("Upstash-Label", "again")
            .header("Upstash-Retries", "0"),
    )
    .await;
    assert_eq!(status, 200, "{one}");
    let new_run = one["workflowRunId"].as_str().unwrap();
    assert!(
        new_run.starts_with("wfr_") && one["workflowCreatedAt"].is_i64(),
        "{one}"
    );
    let run = &logs(&server, &format!("workflowRunId={new_run}")).await["runs"][0];
    assert_eq!(run["label"], "again", "the override applies: {run}");
    assert_eq!(run["steps"][0]["steps"][0]["out"], "\"p\"");
    let (status, _) = server
        .get_json(&format!("/v2/workflows/dlq/{}", dlq[0]))
        .await;
    assert_eq!(status, 404, "the entry left the DLQ");

    // Bulk by filter, one per call, with a cursor to the rest.
    let (status, page) = send(server.post("/v2/workflows/dlq/restart?label=down&count=1")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["workflowRuns"].as_array().unwrap().len(), 1);
    let cursor = page["cursor"].as_str().expect("more to restart");
    let (_, page) = send(server.post(&format!(
        "/v2/workflows/dlq/restart?label=down&count=1&cursor={cursor}"
    )))
    .await;
    assert_eq!(page["workflowRuns"].as_array().unwrap().len(), 1, "{page}");

    let (status, err) = send(server.post("/v2/workflows/dlq/restart?dlqIds=1-0")).await;
    assert_eq!(status, 404, "{err}");
    let (status, err) = send(server.post("/v2/workflows/dlq/callback/1-0")).await;
    assert_eq!(status, 404, "{err}");
    let (status, err) = send(server.post("/v2/workflows/dlq/resume?dlqIdz=1-0")).await;
    assert_eq!(status, 400, "{err}");
    assert!(err["error"].as_str().unwrap().contains("dlqIdz"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_recovery_starts_every_run_or_none() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500).body("down"));
    let url = format!("{}/wf/all-or-none", rx.url);
    // Runs with flow control around one without: a new flow-control key alone is complete
    // for them (the rate comes from the run) and incomplete for it, whatever the order.
    let (a, b, c) = (run_id("aon"), run_id("aon"), run_id("aon"));
    let label = "all-or-none";
    let flow = [
        ("Upstash-Retries", "0"),
        ("Upstash-Label", label),
        ("Upstash-Flow-Control-Key", "k"),
        ("Upstash-Flow-Control-Value", "parallelism=1"),
    ];
    trigger(&server, &url, &a, &flow, "\"a\"").await;
    trigger(&server, &url, &b, &flow[..2], "\"b\"").await;
    trigger(&server, &url, &c, &flow, "\"c\"").await;
    let dlq: Vec<String> = eventually("the DLQ entries", || async {
        let (_, body) = server
            .get_json(&format!("/v2/workflows/dlq?label={label}"))
            .await;
        let entries = body["messages"].as_array().cloned().unwrap_or_default();
        (entries.len() == 3).then(|| {
            entries
                .iter()
                .map(|e| e["dlqId"].as_str().unwrap().to_string())
                .collect()
        })
    })
    .await;
    let started_before = logs(&server, "").await["runs"].as_array().unwrap().len();

    let (status, err) = send(
        server
            .post(&format!(
                "/v2/workflows/dlq/restart?dlqIds={}",
                dlq.join(",")
            ))
            .header("Upstash-Flow-Control-Key", "k2"),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("Upstash-Flow-Control-Value"),
        "{err}"
    );
    let (_, body) = server
        .get_json(&format!("/v2/workflows/dlq?label={label}"))
        .await;
    assert_eq!(
        body["messages"].as_array().unwrap().len(),
        3,
        "no entry left the DLQ: {body}"
    );
    assert_eq!(
        logs(&server, "").await["runs"].as_array().unwrap().len(),
        started_before,
        "no run started"
    );
}
