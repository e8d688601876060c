//! A step that fails for good fails its run and calls the run's failure function with the
//! run's fields; the SDK's non-retryable and retry-after answers work as for any message.

use std::time::Duration;

use serde_json::json;

use super::*;
use crate::common::{Reply, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_fails_the_run_and_calls_the_failure_function_with_the_run_fields() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let id = run_id("fail");
    let failure = [
        ("Upstash-Retries", "1"),
        ("Upstash-Retry-Delay", "2000"),
        ("Upstash-Failure-Callback", url.as_str()),
        ("Upstash-Failure-Callback-Workflow-Runid", id.as_str()),
        ("Upstash-Failure-Callback-Workflow-Init", "false"),
        ("Upstash-Failure-Callback-Workflow-Url", url.as_str()),
        ("Upstash-Failure-Callback-Workflow-Calltype", "failureCall"),
        ("Upstash-Failure-Callback-Feature-Set", JS_FEATURES),
        (
            "Upstash-Failure-Callback-Forward-Upstash-Workflow-Is-Failure",
            "true",
        ),
        (
            "Upstash-Failure-Callback-Forward-Upstash-Workflow-Failure-Callback",
            "true",
        ),
    ];
    trigger(&server, &url, &id, &failure, "{\"order\":42}").await;
    let init = rx.wait_for(1).await.remove(0);
    let created = init
        .header("upstash-workflow-createdat")
        .unwrap()
        .to_string();

    let error = "{\"error\":\"Error\",\"message\":\"step broke\"}";
    rx.script("/wf", Reply::status(500).body(error));
    rx.script("/wf", Reply::status(500).body(error));
    let (_, s1) = step(&server, &url, &id, 1, json!(1), &[]).await;
    let s1 = s1["messageId"].as_str().unwrap().to_string();
    server.wait_retries(&s1, 1).await;
    // The retry delay given at trigger applies to the step.
    server.advance(Duration::from_millis(2100));
    server.wait_state(&s1, "FAILED").await;

    let callback = rx.wait_for(4).await.remove(3);
    assert_eq!(callback.signature_error, None);
    assert_eq!(
        callback.header("upstash-workflow-failure-callback"),
        Some("true")
    );
    assert_eq!(callback.header("upstash-workflow-runid"), Some(id.as_str()));
    let body = callback.json();
    assert_eq!(body["workflowRunId"], id.as_str());
    assert_eq!(body["workflowCreatedAt"].to_string(), created);
    assert_eq!(body["url"], url.as_str());
    assert_eq!(
        unb64(body["sourceBody"].as_str().unwrap()),
        "{\"order\":42}"
    );
    assert_eq!(body["status"], 500);
    assert_eq!(unb64(body["body"].as_str().unwrap()), error);
    assert!(body["dlqId"].is_string());
    assert_eq!(body["sourceMessageId"], s1.as_str());
    assert_eq!(run_steps(&server, &id).await.0, 404, "the run failed");
    assert_eq!(step(&server, &url, &id, 2, json!(2), &[]).await.0, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn non_retryable_and_retry_after_answers() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let id = run_id("489");
    trigger(&server, &url, &id, &[], "{}").await;
    rx.wait_for(1).await;
    rx.script(
        "/wf",
        Reply::status(489).header("Upstash-NonRetryable-Error", "true"),
    );
    let (_, s1) = step(&server, &url, &id, 1, json!(1), &[]).await;
    server
        .wait_state(s1["messageId"].as_str().unwrap(), "FAILED")
        .await;
    assert_eq!(run_steps(&server, &id).await.0, 404);

    let id = run_id("429");
    trigger(&server, &url, &id, &[], "{}").await;
    rx.wait_for(3).await;
    rx.script("/wf", Reply::status(429).header("Retry-After", "30"));
    let (_, s1) = step(&server, &url, &id, 1, json!(1), &[]).await;
    let s1 = s1["messageId"].as_str().unwrap();
    server.wait_retries(s1, 1).await;
    server.advance(Duration::from_secs(29));
    rx.assert_quiet(4, QUIET).await;
    server.advance(Duration::from_secs(2));
    server.wait_state(s1, "DELIVERED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_initial_body_the_failure_callback_carries_the_delivered_steps() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let failure_url = format!("{}/failure", rx.url);
    let id = run_id("old-sdk");
    // The deprecated qstash-js workflow: no InitialBody, so it re-reads what was delivered.
    let extra = [
        ("Upstash-Feature-Set", "LazyFetch"),
        ("Upstash-Retries", "0"),
        ("Upstash-Failure-Callback", failure_url.as_str()),
    ];
    trigger(&server, &url, &id, &extra, "{\"start\":1}").await;
    rx.wait_for(1).await;
    rx.script("/wf", Reply::status(500));
    step(&server, &url, &id, 1, json!(1), &extra[..1]).await;
    let callback = rx.wait_for(3).await.remove(2);
    assert_eq!(callback.target, "/failure");
    let source = unb64(callback.json()["sourceBody"].as_str().unwrap());
    let steps: serde_json::Value = serde_json::from_str(&source).unwrap();
    assert_eq!(steps.as_array().unwrap().len(), 2, "{source}");
    assert_eq!(unb64(steps[0]["body"].as_str().unwrap()), "{\"start\":1}");
}
