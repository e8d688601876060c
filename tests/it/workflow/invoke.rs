//! `context.invoke`: the invoked run starts from the request's `body`, and its end (success
//! or failure) comes back to the invoker as a step.

use serde_json::{Value, json};

use super::*;
use crate::common::TestServer;

async fn invoke(
    server: &TestServer,
    parent: &str,
    parent_url: &str,
    child: &str,
    child_url: &str,
) -> u16 {
    let mut headers = wf_headers(child, child_url, true);
    headers.push(("Upstash-Workflow-Invoke".into(), "true".into()));
    headers.push((
        "Upstash-Forward-Upstash-Workflow-Invoke-Count".into(),
        "1".into(),
    ));
    headers.push(("Upstash-Retries".into(), "0".into()));
    let body = json!({
        "body": "{\"n\":7}",
        "headers": {"Upstash-Workflow-RunId": [parent], "Upstash-Workflow-Runid": [parent],
                    "Upstash-Workflow-Init": ["false"], "Upstash-Workflow-Url": [parent_url],
                    "Upstash-Feature-Set": [JS_FEATURES],
                    "Upstash-Forward-Upstash-Workflow-Sdk-Version": ["1"]},
        "workflowRunId": parent, "workflowRunCreatedAt": 1, "workflowUrl": parent_url,
        "step": {"stepId": 2, "stepName": "call child", "stepType": "Invoke", "concurrent": 1}
    });
    publish(server, child_url, &headers, &body.to_string())
        .await
        .0
}

fn invoke_out(r: &crate::common::Received) -> (Value, Value) {
    let step: Value = serde_json::from_str(&delivered_steps(r).last().unwrap().1).unwrap();
    assert_eq!(step["stepType"], "Invoke");
    assert_eq!(
        (step["stepId"].clone(), step["stepName"].clone()),
        (json!(2), json!("call child"))
    );
    let out: Value = serde_json::from_str(step["out"].as_str().unwrap()).unwrap();
    (step, out)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_invoked_runs_result_or_failure_comes_back_to_the_invoker() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let parent_url = format!("{}/many/parent", rx.url);
    let child_url = format!("{}/many/child", rx.url);
    let parent = run_id("parent");
    trigger(
        &server,
        &parent_url,
        &parent,
        &[("Upstash-Forward-X-Tenant", "t1")],
        "{}",
    )
    .await;
    rx.wait_for(1).await;

    let child = run_id("child");
    assert_eq!(
        invoke(&server, &parent, &parent_url, &child, &child_url).await,
        200
    );
    let started = rx.wait_for(2).await.remove(1);
    assert_eq!(started.target, "/many/child");
    assert_eq!(
        delivered_steps(&started)[0].1,
        "{\"n\":7}",
        "the invoked run starts from `body`"
    );
    assert_eq!(started.header("upstash-workflow-invoke-count"), Some("1"));
    assert_eq!(end_run(&server, &child, false, "{\"sum\":8}").await, 200);
    let back = rx.wait_for(3).await.remove(2);
    assert_eq!(back.target, "/many/parent");
    assert_eq!(back.header("upstash-workflow-runid"), Some(parent.as_str()));
    assert_eq!(back.header("x-tenant"), Some("t1"));
    let (step, out) = invoke_out(&back);
    assert_eq!(step["invokedWorkflowRunId"], child.as_str());
    assert_eq!(
        out,
        json!({"body": "{\"sum\":8}", "isFailed": false, "isCanceled": false})
    );

    // A child that fails reports its failing answer.
    let failing = run_id("failing");
    rx.script(
        "/many/child",
        crate::common::Reply::status(500).body("{\"error\":\"boom\"}"),
    );
    assert_eq!(
        invoke(&server, &parent, &parent_url, &failing, &child_url).await,
        200
    );
    let back = rx.wait_for(5).await.remove(4);
    let (_, out) = invoke_out(&back);
    assert_eq!(
        out,
        json!({"body": "{\"error\":\"boom\"}", "isFailed": true, "isCanceled": false})
    );

    // And a cancelled child says so.
    let cancelled = run_id("cancelled");
    assert_eq!(
        invoke(&server, &parent, &parent_url, &cancelled, &child_url).await,
        200
    );
    rx.wait_for(6).await;
    assert_eq!(end_run(&server, &cancelled, true, "").await, 200);
    let back = rx.wait_for(7).await.remove(6);
    assert_eq!(
        invoke_out(&back).1,
        json!({"isFailed": false, "isCanceled": true})
    );
}
