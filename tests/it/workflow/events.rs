//! Waits and notifications: the waiter a wait registers, the step a notification (or the
//! timeout, or a webhook call) writes into the run, and run-scoped events that come early.

use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::common::TestServer;
use crate::common::ext::send;

/// Registers a wait of run `id` for `event` as the SDK does; the answer's status.
async fn wait(
    server: &TestServer,
    url: &str,
    id: &str,
    event: &str,
    timeout: &str,
    step: u64,
) -> u16 {
    let body = json!({
        "url": url, "timeout": timeout, "timeoutUrl": format!("{url}?timeout=1"),
        "timeoutHeaders": {"Upstash-Workflow-RunId": [id], "Upstash-Workflow-Runid": [id],
                           "Upstash-Forward-X-Timeout": ["yes"], "Upstash-Feature-Set": [JS_FEATURES],
                           "Upstash-Forward-Upstash-Workflow-Sdk-Version": ["1"]},
        "step": {"stepId": step, "stepName": "wait", "stepType": "Wait", "concurrent": 1}
    });
    let mut req = server
        .post(&format!("/v2/wait/{event}"))
        .body(body.to_string());
    for (k, v) in wf_headers(id, url, false) {
        req = req.header(k, v);
    }
    send(req).await.0
}

/// The wait step a delivery ends with.
fn last_step(r: &crate::common::Received) -> Value {
    serde_json::from_str(&delivered_steps(r).last().unwrap().1).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn notify_wakes_waiters_and_the_timeout_wakes_the_rest() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let (a, b) = (run_id("wait-a"), run_id("wait-b"));
    for id in [&a, &b] {
        trigger(
            &server,
            &url,
            id,
            &[("Upstash-Forward-X-User", "carol")],
            "{}",
        )
        .await;
    }
    rx.wait_for(2).await;
    assert_eq!(wait(&server, &url, &a, "order-1", "1h", 1).await, 200);
    assert_eq!(wait(&server, &url, &b, "order-2", "30s", 1).await, 200);
    let (_, waiters) = server.get_json("/v2/waiters/order-1").await;
    assert_eq!(waiters.as_array().unwrap().len(), 1);
    assert_eq!(waiters[0]["url"], url.as_str());
    assert!(
        waiters[0]["deadline"].as_i64().unwrap() > 1_600_000_000,
        "unix seconds"
    );
    assert_eq!(waiters[0]["timeoutUrl"], format!("{url}?timeout=1"));

    let (status, notified) = server
        .post_raw("/v2/notify/order-1", &[], "{\"paid\":true}")
        .await;
    assert_eq!(status, 200);
    assert_eq!(notified.as_array().unwrap().len(), 1, "{notified}");
    assert_eq!(notified[0]["waiter"]["url"], url.as_str());
    let woken = rx.wait_for(3).await.remove(2);
    assert_eq!(
        woken.header("upstash-message-id"),
        notified[0]["messageId"].as_str()
    );
    assert_eq!(woken.header("upstash-workflow-runid"), Some(a.as_str()));
    assert_eq!(
        woken.header("x-user"),
        Some("carol"),
        "the run's configuration applies"
    );
    let step = last_step(&woken);
    assert_eq!(step["stepType"], "Wait");
    assert_eq!(step["waitEventId"], "order-1");
    assert_eq!(step["waitTimeout"], false);
    assert_eq!(unb64(step["out"].as_str().unwrap()), "{\"paid\":true}");
    assert_eq!(server.get_json("/v2/waiters/order-1").await.1, json!([]));
    assert_eq!(
        server.post_raw("/v2/notify/order-1", &[], "x").await.1,
        json!([]),
        "nobody waits"
    );

    server.advance(Duration::from_secs(31));
    let timed_out = rx.wait_for(4).await.remove(3);
    assert_eq!(timed_out.target, "/wf?timeout=1");
    assert_eq!(timed_out.header("x-timeout"), Some("yes"));
    let step = last_step(&timed_out);
    assert_eq!(
        (step["waitTimeout"].clone(), step.get("out")),
        (json!(true), None)
    );
    assert_eq!(step["timeout"], "30s");
    rx.assert_quiet(4, QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_early_run_scoped_event_waits_for_its_wait_and_webhooks_need_no_token() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let id = run_id("early");
    trigger(&server, &url, &id, &[], "{}").await;
    rx.wait_for(1).await;
    let (status, stored) = server
        .post_raw(&format!("/v2/notify/{id}/ready"), &[], "early")
        .await;
    assert_eq!((status, stored), (200, json!([])));
    assert_eq!(wait(&server, &url, &id, "ready", "1h", 1).await, 200);
    let woken = rx.wait_for(2).await.remove(1);
    assert_eq!(unb64(last_step(&woken)["out"].as_str().unwrap()), "early");

    // createWebhook / waitForWebhook: any method on the hook URL, no token.
    assert_eq!(wait(&server, &url, &id, "evt_hook", "1h", 2).await, 200);
    let hook = format!(
        "{}/v2/workflows/hooks/defaultUser/{id}/evt_hook?src=gh",
        server.url
    );
    let resp = reqwest::Client::new()
        .put(&hook)
        .header("X-Hub", "push")
        .body("hook-body")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let woken = rx.wait_for(3).await.remove(2);
    let data: Value =
        serde_json::from_str(&unb64(last_step(&woken)["out"].as_str().unwrap())).unwrap();
    assert_eq!(data["method"], "PUT");
    assert_eq!(
        data["url"],
        format!("/v2/workflows/hooks/defaultUser/{id}/evt_hook?src=gh")
    );
    assert_eq!(data["header"]["X-Hub"], json!(["push"]));
    assert_eq!(unb64(data["body"].as_str().unwrap()), "hook-body");
    let unknown = reqwest::Client::new()
        .post(format!(
            "{}/v2/workflows/hooks/nobody/{id}/evt_hook",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // A wait needs an active run.
    assert_eq!(end_run(&server, &id, false, "").await, 200);
    assert_eq!(wait(&server, &url, &id, "late", "1h", 3).await, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn early_events_of_a_run_are_bounded_the_oldest_dropped() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let id = run_id("flood");
    trigger(&server, &url, &id, &[], "{}").await;
    rx.wait_for(1).await;
    // One more distinct event than a run keeps: every notify still succeeds.
    let n = qstash::domain::workflow::stored::MAX_PER_RUN + 1;
    for i in 0..n {
        let (status, stored) = server
            .post_raw(&format!("/v2/notify/{id}/e{i}"), &[], &format!("d{i}"))
            .await;
        assert_eq!((status, stored), (200, json!([])), "notify {i}");
    }
    // The oldest went: its wait waits.
    assert_eq!(wait(&server, &url, &id, "e0", "1h", 1).await, 200);
    let (_, waiters) = server.get_json("/v2/waiters/e0").await;
    assert_eq!(waiters.as_array().unwrap().len(), 1, "{waiters}");
    // The newest is kept.
    assert_eq!(
        wait(&server, &url, &id, &format!("e{}", n - 1), "1h", 2).await,
        200
    );
    let woken = rx.wait_for(2).await.remove(1);
    assert_eq!(
        unb64(last_step(&woken)["out"].as_str().unwrap()),
        format!("d{}", n - 1)
    );
    assert_eq!(end_run(&server, &id, true, "").await, 200);
}
