//! Run configuration (`WF_TriggerOnConfig`): what the Init message sets reaches every later
//! message of the run that goes to the workflow, but not the third party of a call.

use serde_json::json;

use super::*;
use crate::common::ext::eventually;
use crate::common::{Receiver, Reply, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn init_configuration_reaches_later_steps_and_the_call_callback_but_not_the_third_party() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let third = Receiver::start().await;
    let url = format!("{}/wf", rx.url);
    let failure_url = format!("{}/failure", rx.url);
    let id = run_id("config");
    let extra = [
        ("Upstash-Forward-X-User", "alice"),
        ("Upstash-Forward-X-Both", "from-init"),
        ("Upstash-Retries", "1"),
        ("Upstash-Retry-Delay", "1000"),
        ("Upstash-Label", "billing"),
        ("Upstash-Flow-Control-Key", "wf-config"),
        ("Upstash-Flow-Control-Value", "parallelism=2"),
        ("Upstash-Failure-Callback", failure_url.as_str()),
        ("Upstash-Failure-Callback-Forward-X-User", "alice"),
    ];
    trigger(&server, &url, &id, &extra, "{}").await;
    let init = rx.wait_for(1).await.remove(0);
    assert_eq!(init.header("x-user"), Some("alice"));

    // A step carries only the workflow headers, as the SDK sends them since 1.0.
    let (_, s1) = step(
        &server,
        &url,
        &id,
        1,
        json!(1),
        &[("Upstash-Forward-X-Both", "mine")],
    )
    .await;
    let delivered = rx.wait_for(2).await.remove(1);
    assert_eq!(delivered.header("x-user"), Some("alice"));
    assert_eq!(
        delivered.header("x-both"),
        Some("mine"),
        "the message's own header wins"
    );
    let id1 = s1["messageId"].as_str().unwrap();
    let event = server.event(id1, "DELIVERED").await;
    assert_eq!(event["label"], "billing");
    assert_eq!(event["maxRetries"], 1);
    assert_eq!(event["flowControlKey"], "wf-config");
    assert_eq!(event["failureCallback"], failure_url.as_str());

    // context.call: the third party gets only what the call says.
    third.set_default(
        Reply::status(201)
            .header("Content-Type", "application/json")
            .body("{\"ok\":1}"),
    );
    let call_url = format!("{}/api", third.url);
    let mut headers = wf_headers(&id, &url, false);
    headers.retain(|(k, _)| k != "Upstash-Forward-Upstash-Workflow-Sdk-Version");
    for (k, v) in [
        ("Upstash-Workflow-CallType", "toCallback"),
        ("Upstash-Feature-Set", "WF_NoDelete,InitialBody"),
        ("Upstash-Method", "PUT"),
        ("Upstash-Retries", "0"),
        ("Upstash-Forward-Authorization", "Bearer third"),
        ("Upstash-Callback", url.as_str()),
        ("Upstash-Callback-Workflow-RunId", id.as_str()),
        ("Upstash-Callback-Workflow-CallType", "fromCallback"),
        ("Upstash-Callback-Workflow-Init", "false"),
        ("Upstash-Callback-Workflow-Url", url.as_str()),
        ("Upstash-Callback-Feature-Set", JS_FEATURES),
        ("Upstash-Callback-Forward-Upstash-Workflow-Callback", "true"),
        ("Upstash-Callback-Forward-Upstash-Workflow-StepId", "2"),
    ] {
        headers.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
        headers.push((k.into(), v.into()));
    }
    let (status, call) = publish(&server, &call_url, &headers, "{\"q\":1}").await;
    assert_eq!(status, 200, "{call}");
    let got = third.wait_for(1).await.remove(0);
    assert_eq!(got.method, "PUT");
    assert_eq!(&got.body[..], b"{\"q\":1}");
    assert_eq!(got.header("authorization"), Some("Bearer third"));
    for absent in [
        "x-user",
        "x-both",
        "upstash-workflow-runid",
        "upstash-workflow-sdk-version",
    ] {
        assert_eq!(got.header(absent), None, "{absent} reached the third party");
    }
    let call_id = call["messageId"].as_str().unwrap();
    assert_eq!(server.event(call_id, "DELIVERED").await.get("label"), None);

    // The callback brings the result back with the run's headers, as the call's JSON.
    let back = rx.wait_for(3).await.remove(2);
    assert_eq!(back.header("x-user"), Some("alice"));
    assert_eq!(back.header("upstash-workflow-callback"), Some("true"));
    assert_eq!(back.header("upstash-workflow-runid"), Some(id.as_str()));
    assert_eq!(back.header("upstash-workflow-sdk-version"), None);
    let cb = back.json();
    assert_eq!(
        (cb["status"].clone(), unb64(cb["body"].as_str().unwrap())),
        (json!(201), "{\"ok\":1}".into())
    );
    let (_, listing) = run_steps(&server, &id).await;
    let kinds: Vec<_> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["callType"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["step", "step", "toCallback", "fromCallback"]);
    let cb_event = eventually("the callback's log entry", || async {
        server
            .log_entries(&format!("state=DELIVERED&url={}", crate::common::enc(&url)))
            .await
            .into_iter()
            .find(|e| e["messageId"] == back.header("upstash-message-id").unwrap())
    })
    .await;
    assert_eq!(cb_event["label"], "billing");
    assert_eq!(cb_event["failureCallback"], failure_url.as_str());
}
