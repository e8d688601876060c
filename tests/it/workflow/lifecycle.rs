//! How runs end (success, cancel, bulk cancel) and how they start without an SDK client
//! (`/v2/trigger`), including the check that the destination serves a workflow.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::common::ext::send;
use crate::common::{Receiver, Reply, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn cancel_drops_waiting_messages_and_success_keeps_calls_marked_no_delete() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let third = Receiver::start().await;
    third.route(
        "/slow",
        Reply::status(200).delay(Duration::from_millis(400)),
    );
    let url = format!("{}/wf", rx.url);

    // Cancel: a sleeping step is cancelled and later steps are refused.
    let id = run_id("cancel");
    trigger(&server, &url, &id, &[], "{}").await;
    rx.wait_for(1).await;
    let (_, sleeping) = step(
        &server,
        &url,
        &id,
        1,
        json!(null),
        &[("Upstash-Delay", "1h")],
    )
    .await;
    let sleeping = sleeping["messageId"].as_str().unwrap().to_string();
    assert_eq!(end_run(&server, &id, true, "").await, 200);
    server.wait_state(&sleeping, "CANCELED").await;
    assert_eq!(step(&server, &url, &id, 2, json!(2), &[]).await.0, 400);

    // Success: the waiting step goes, the call marked WF_NoDelete still reaches the third
    // party, and its result (with nowhere to go) is not delivered.
    let id = run_id("success");
    trigger(&server, &url, &id, &[], "{}").await;
    rx.wait_for(2).await;
    let (_, later) = step(
        &server,
        &url,
        &id,
        1,
        json!(null),
        &[("Upstash-Delay", "1h")],
    )
    .await;
    let mut call = wf_headers(&id, &url, false);
    call.retain(|(k, _)| k != "Upstash-Feature-Set");
    call.extend([
        ("Upstash-Workflow-CallType".into(), "toCallback".into()),
        (
            "Upstash-Feature-Set".into(),
            "WF_NoDelete,InitialBody".into(),
        ),
        ("Upstash-Delay".into(), "2s".into()),
        ("Upstash-Callback".into(), url.clone()),
        ("Upstash-Callback-Workflow-RunId".into(), id.clone()),
        (
            "Upstash-Callback-Workflow-CallType".into(),
            "fromCallback".into(),
        ),
    ]);
    let (status, _) = publish(&server, &format!("{}/slow", third.url), &call, "c").await;
    assert_eq!(status, 200);
    assert_eq!(end_run(&server, &id, false, "{\"result\":1}").await, 200);
    server
        .wait_state(later["messageId"].as_str().unwrap(), "CANCELED")
        .await;
    server.advance(Duration::from_secs(3));
    third.wait_for(1).await;
    rx.assert_quiet(2, Duration::from_millis(700)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_cancel_selects_runs_by_id_url_label_and_count() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let mut ids = Vec::new();
    for (path, label) in [("/a/1", "x"), ("/a/2", "y"), ("/b/1", "x"), ("/b/2", "y")] {
        let id = run_id("bulk");
        let url = format!("{}{path}", rx.url);
        trigger(
            &server,
            &url,
            &id,
            &[("Upstash-Label", label), ("Upstash-Delay", "1h")],
            "{}",
        )
        .await;
        ids.push(id);
    }
    let cancel = |query: String| {
        let server = &server;
        async move { send(server.delete(&format!("/v2/workflows/runs?{query}"))).await }
    };
    assert_eq!(
        cancel(format!("workflowRunIds={}", ids[0])).await,
        (200, json!({"cancelled": 1}))
    );
    let prefix = crate::common::enc(&format!("{}/a", rx.url));
    assert_eq!(
        cancel(format!("workflowUrl={prefix}&label=y")).await.1,
        json!({"cancelled": 1})
    );
    let exact = crate::common::enc(&format!("{}/b", rx.url));
    assert_eq!(
        cancel(format!("workflowUrl={exact}&workflowUrlExactMatch=true"))
            .await
            .1,
        json!({"cancelled": 0})
    );
    assert_eq!(cancel("count=1".into()).await.1, json!({"cancelled": 1}));
    assert_eq!(cancel(String::new()).await.1, json!({"cancelled": 1}));
    assert_eq!(cancel(String::new()).await.1, json!({"cancelled": 0}));
    for id in &ids {
        assert_eq!(run_steps(&server, id).await.0, 404);
    }
    assert_eq!(cancel("count=0".into()).await.0, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn trigger_route_hands_the_run_to_the_sdk_once() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    rx.set_default(Reply::status(200).header("Upstash-Workflow-Sdk-Version", "1"));
    let url = format!("{}/wf", rx.url);
    let (status, started) = server
        .post_raw(
            &format!("/v2/trigger/{url}"),
            &[
                ("Upstash-Forward-X-User", "bob"),
                ("Content-Type", "text/plain"),
            ],
            "payload",
        )
        .await;
    assert_eq!(status, 200, "{started}");
    let id = started["workflowRunId"].as_str().unwrap().to_string();
    assert!(id.starts_with("wfr_"), "{id}");
    assert!(started["workflowCreatedAt"].as_i64().unwrap() > 0);
    let first = rx.wait_for(1).await.remove(0);
    assert_eq!(first.header("upstash-workflow-unknown-sdk"), Some("true"));
    assert_eq!(first.header("upstash-workflow-runid"), Some(id.as_str()));
    assert_eq!(first.header("x-user"), Some("bob"));
    assert_eq!(delivered_steps(&first)[0].1, "payload");

    // The SDK answers by re-publishing the Init message with its real configuration.
    let extra = [
        ("upstash-workflow-trigger-by-sdk", "true"),
        ("Upstash-Forward-X-Sdk", "1"),
    ];
    let adopted = trigger(&server, &url, &id, &extra, "payload").await;
    assert_eq!(adopted.get("deduplicated"), None, "{adopted}");
    let second = rx.wait_for(2).await.remove(1);
    assert_eq!(second.header("upstash-workflow-unknown-sdk"), None);
    assert_eq!(second.header("x-sdk"), Some("1"));
    let steps = delivered_steps(&second);
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].0, adopted["messageId"].as_str().unwrap());
    // Only once: a repeat is a duplicate.
    assert_eq!(
        trigger(&server, &url, &id, &extra, "payload").await["deduplicated"],
        true
    );

    let (status, batch) = server
        .post_json(
            "/v2/batch/trigger",
            &json!([{"destination": url, "body": "b1", "headers": {"Upstash-Workflow-RunId": "wfr_given"}},
                    {"destination": "not a url"}]),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(batch[0]["workflowRunId"], "wfr_given");
    assert!(batch[1]["error"].is_string(), "{batch}");
    rx.wait_for(3).await;
    rx.assert_quiet(3, QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_destination_answering_without_the_sdk_header_fails_the_trigger() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    rx.set_default(Reply::status(200).body("i am not a workflow"));
    let url = format!("{}/plain", rx.url);
    let id = run_id("detect");
    let init = trigger(&server, &url, &id, &[("Upstash-Retries", "0")], "{}").await;
    let message_id = init["messageId"].as_str().unwrap();
    server.wait_state(message_id, "FAILED").await;
    let error = server.event(message_id, "ERROR").await;
    assert_eq!(
        error["error"],
        "detected a non-workflow destination for trigger/invoke. make sure you are sending the request to the correct endpoint"
    );
    let (_, dlq) = server
        .get_json(&format!("/v2/dlq?source=workflow&messageId={message_id}"))
        .await;
    assert_eq!(dlq["messages"][0]["responseBody"], "i am not a workflow");
    assert_eq!(run_steps(&server, &id).await.0, 404, "the run failed");
    // The console's overview counts it as a failed run in the workflow DLQ, not in the DLQ
    // that `GET /v2/dlq` lists.
    let (_, overview) = server.get_json("/__qstash/overview").await;
    assert_eq!(overview["dlq"], 0);
    assert_eq!(overview["workflowDlq"], 1);
    assert_eq!(overview["workflowRuns"]["failed"], 1);
    assert_eq!(overview["workflowRuns"]["active"], 0);

    // Without the feature (older SDKs) a 2xx is a delivery like any other.
    let plain = run_id("nodetect");
    let init = trigger(
        &server,
        &url,
        &plain,
        &[("Upstash-Feature-Set", "LazyFetch")],
        "{}",
    )
    .await;
    server
        .wait_state(init["messageId"].as_str().unwrap(), "DELIVERED")
        .await;
    let _: Value = run_steps(&server, &plain).await.1;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_items_error_is_the_batchs_so_the_sdk_sees_400_and_412() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let id = run_id("batch");
    trigger(&server, &url, &id, &[], "{}").await;
    rx.wait_for(1).await;
    let item = |run: &str, retries: &str| {
        let mut h: serde_json::Map<String, Value> = wf_headers(run, &url, false)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        h.insert("Upstash-Retries".into(), retries.into());
        json!([{"destination": url, "headers": h, "body": step_json(1, "s", json!(1))}])
    };
    let (status, answer) = server.post_json("/v2/batch", &item(&id, "99")).await;
    assert_eq!(status, 412, "quota errors are 412: {answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("Upstash-Retries")
    );
    let (status, _) = server.post_json("/v2/batch", &item("wfr_over", "1")).await;
    assert_eq!(status, 400, "a step of a run that is not active");
    let (status, _) = server.post_json("/v2/batch", &item(&id, "1")).await;
    assert_eq!(status, 200);
}
