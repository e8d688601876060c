//! Workflow runs against the real server, with the test playing the SDK: it publishes the
//! messages `@upstash/workflow` would (Init, steps, calls, waits) and reads what the
//! receiver got, checking the run engine's rules on the wire.

mod config;
mod events;
mod failure;
mod history;
mod invoke;
mod lifecycle;
mod logs;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::common::ext::send;
use crate::common::{Received, Receiver, Reply, TestServer};

pub const QUIET: Duration = Duration::from_millis(200);

/// The feature set of `@upstash/workflow` 1.x.
pub const JS_FEATURES: &str = "LazyFetch,InitialBody,WF_DetectTrigger,WF_TriggerOnConfig";

pub fn unb64(s: &str) -> String {
    String::from_utf8(STANDARD.decode(s).expect("base64")).expect("utf-8")
}

/// A receiver that answers as a workflow endpoint does (with the SDK's version header, which
/// the server checks on the answers to Init messages).
pub async fn sdk_rx() -> Receiver {
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(200).header("Upstash-Workflow-Sdk-Version", "1"));
    rx
}

/// The headers every message of run `run_id` at `url` carries, as the SDK sends them.
pub fn wf_headers(run_id: &str, url: &str, init: bool) -> Vec<(String, String)> {
    vec![
        ("Upstash-Workflow-RunId".into(), run_id.into()),
        ("Upstash-Workflow-Init".into(), init.to_string()),
        ("Upstash-Workflow-Url".into(), url.into()),
        ("Upstash-Feature-Set".into(), JS_FEATURES.into()),
        ("Upstash-Workflow-Sdk-Version".into(), "1".into()),
        (
            "Upstash-Forward-Upstash-Workflow-Sdk-Version".into(),
            "1".into(),
        ),
        ("Content-Type".into(), "application/json".into()),
    ]
}

/// Publishes `body` to `url` with `headers` (`/v2/publish`); status and answer.
pub async fn publish(
    server: &TestServer,
    url: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, Value) {
    let mut req = server
        .post(&format!("/v2/publish/{url}"))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    send(req).await
}

/// Starts run `run_id` at `url` as `client.trigger` does (one batch item); the answer item.
pub async fn trigger(
    server: &TestServer,
    url: &str,
    run_id: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> Value {
    let mut headers: serde_json::Map<String, Value> = wf_headers(run_id, url, true)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    for (k, v) in extra {
        headers.insert(k.to_string(), Value::String(v.to_string()));
    }
    let (status, answer) = server
        .post_json(
            "/v2/batch",
            &json!([{"destination": url, "headers": headers, "body": body}]),
        )
        .await;
    assert_eq!(status, 200, "trigger: {answer}");
    answer[0].clone()
}

/// A step message's body, as the SDK serializes a result step.
pub fn step_json(id: u64, name: &str, out: Value) -> String {
    json!({"stepId": id, "stepName": name, "stepType": "Run", "out": out.to_string(), "concurrent": 1})
        .to_string()
}

/// Publishes step `id` of run `run_id`; status and answer.
pub async fn step(
    server: &TestServer,
    url: &str,
    run_id: &str,
    id: u64,
    out: Value,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut headers = wf_headers(run_id, url, false);
    headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    publish(
        server,
        url,
        &headers,
        &step_json(id, &format!("s{id}"), out),
    )
    .await
}

/// The steps array a delivery carried, each entry's body decoded.
pub fn delivered_steps(r: &Received) -> Vec<(String, String)> {
    let v: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("delivery body is not a steps array ({e}): {:?}", r.body));
    v.as_array()
        .expect("array")
        .iter()
        .map(|e| {
            assert_eq!(e["callType"], "step");
            (
                e["messageId"].as_str().unwrap().to_string(),
                unb64(e["body"].as_str().unwrap()),
            )
        })
        .collect()
}

/// `DELETE /v2/workflows/runs/{id}?cancel=…` with `body`; the status.
pub async fn end_run(server: &TestServer, run_id: &str, cancel: bool, body: &str) -> u16 {
    let (status, _) = send(
        server
            .delete(&format!("/v2/workflows/runs/{run_id}?cancel={cancel}"))
            .body(body.to_string()),
    )
    .await;
    status
}

/// The raw steps `GET /v2/workflows/runs/{id}` lists (status, array).
pub async fn run_steps(server: &TestServer, run_id: &str) -> (u16, Value) {
    send(server.get(&format!("/v2/workflows/runs/{run_id}"))).await
}

/// A fresh run id in the SDK's shape.
pub fn run_id(tag: &str) -> String {
    format!("wfr_{tag}_{}", uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{:x}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
