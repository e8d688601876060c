//! Each step message is delivered with the run's steps so far; the run's own headers come
//! with it; an Init for a running run is deduplicated.

use serde_json::{Value, json};

use super::*;
use crate::common::TestServer;

#[tokio::test(flavor = "multi_thread")]
async fn every_delivery_carries_the_steps_up_to_its_own() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let id = run_id("history");
    let init = trigger(&server, &url, &id, &[], r#"{"n":1}"#).await;
    let init_id = init["messageId"].as_str().unwrap().to_string();
    let first = rx.wait_for(1).await.remove(0);
    assert_eq!(first.signature_error, None);
    assert_eq!(
        delivered_steps(&first),
        [(init_id.clone(), r#"{"n":1}"#.to_string())]
    );
    assert_eq!(first.header("upstash-workflow-runid"), Some(id.as_str()));
    assert_eq!(first.header("upstash-workflow-url"), Some(url.as_str()));
    assert_eq!(first.header("upstash-workflow-sdk-version"), Some("1"));
    assert_eq!(first.header("content-type"), Some("application/json"));
    let created: i64 = first
        .header("upstash-workflow-createdat")
        .unwrap()
        .parse()
        .unwrap();
    assert!(created > 1_600_000_000_000, "ms: {created}");

    let (status, s1) = step(&server, &url, &id, 1, json!({"a": [1, 2]}), &[]).await;
    assert_eq!(status, 200, "{s1}");
    let (_, s2) = step(&server, &url, &id, 2, json!("two"), &[]).await;
    let got = rx.wait_for(3).await;
    // Deliveries may overtake each other; each carries the history up to itself.
    for r in &got[1..] {
        assert_eq!(r.signature_error, None);
        let steps = delivered_steps(r);
        let own = r.header("upstash-message-id").unwrap();
        assert_eq!(steps.last().unwrap().0, own);
        assert_eq!(steps[0].0, init_id);
        assert_eq!(
            r.header("upstash-workflow-createdat"),
            Some(created.to_string().as_str())
        );
    }
    let last = got
        .iter()
        .find(|r| r.header("upstash-message-id") == s2["messageId"].as_str())
        .unwrap();
    let steps = delivered_steps(last);
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[1].0, s1["messageId"].as_str().unwrap());
    let s1_step: Value = serde_json::from_str(&steps[1].1).unwrap();
    assert_eq!(
        (s1_step["stepId"].clone(), s1_step["out"].clone()),
        (json!(1), json!("{\"a\":[1,2]}"))
    );

    // The lazy-fetch listing has every entry; the run is gone once the SDK ends it.
    let (status, listing) = run_steps(&server, &id).await;
    assert_eq!(status, 200);
    assert_eq!(listing.as_array().unwrap().len(), 3);
    assert_eq!(unb64(listing[0]["body"].as_str().unwrap()), r#"{"n":1}"#);
    assert_eq!(end_run(&server, &id, false, "\"done\"").await, 200);
    assert_eq!(run_steps(&server, &id).await.0, 404);
    let (status, refused) = step(&server, &url, &id, 3, json!(3), &[]).await;
    assert_eq!(
        status, 400,
        "a step of a finished run is refused: {refused}"
    );
    assert!(refused["error"].as_str().unwrap().contains(&id));
    // Ending again (a retried final step) is fine; an unknown run is not.
    assert_eq!(end_run(&server, &id, false, "\"done\"").await, 200);
    assert_eq!(end_run(&server, "wfr_never", false, "").await, 404);
    rx.assert_quiet(3, QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_init_for_a_running_run_is_deduplicated_and_a_finished_id_can_start_again() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let id = run_id("dedup");
    let first = trigger(&server, &url, &id, &[], "a").await;
    assert_eq!(first.get("deduplicated"), None);
    let again = trigger(&server, &url, &id, &[], "b").await;
    assert_eq!(again["deduplicated"], true);
    assert_eq!(again["messageId"], first["messageId"]);
    let got = rx.wait_for(1).await;
    rx.assert_quiet(1, QUIET).await;
    let created = got[0]
        .header("upstash-workflow-createdat")
        .unwrap()
        .to_string();

    assert_eq!(end_run(&server, &id, false, "").await, 200);
    server.advance(std::time::Duration::from_millis(5));
    let restarted = trigger(&server, &url, &id, &[], "c").await;
    assert_eq!(restarted.get("deduplicated"), None);
    let got = rx.wait_for(2).await;
    assert_eq!(delivered_steps(&got[1])[0].1, "c");
    assert_ne!(
        got[1].header("upstash-workflow-createdat").unwrap(),
        created
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_steps_array_too_large_to_inline_is_fetched_by_the_sdk_that_can() {
    let server = TestServer::start().await;
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let id = run_id("lazy");
    trigger(&server, &url, &id, &[], "{}").await;
    rx.wait_for(1).await;
    // Two 600 KB results: the third delivery's array is over the 1 MB message size.
    let big = "x".repeat(600 * 1024);
    assert_eq!(step(&server, &url, &id, 1, json!(big), &[]).await.0, 200);
    let second = rx.wait_for(2).await.remove(1);
    assert_eq!(delivered_steps(&second).len(), 2, "still inlined");
    assert_eq!(step(&server, &url, &id, 2, json!(big), &[]).await.0, 200);
    let third = rx.wait_for(3).await.remove(2);
    assert!(third.body.is_empty(), "{} bytes inlined", third.body.len());
    assert_eq!(third.signature_error, None);
    let (_, listing) = run_steps(&server, &id).await;
    assert_eq!(listing.as_array().unwrap().len(), 3);

    // Python 2.x announces LazyFetch but cannot fetch: it always gets the array.
    let py = run_id("py");
    let py_headers = [(
        "Upstash-Feature-Set",
        "LazyFetch,InitialBody,WF_DetectTrigger",
    )];
    trigger(&server, &url, &py, &py_headers, "{}").await;
    rx.wait_for(4).await;
    step(&server, &url, &py, 1, json!(big), &py_headers).await;
    rx.wait_for(5).await;
    step(&server, &url, &py, 2, json!(big), &py_headers).await;
    let last = rx.wait_for(6).await.remove(5);
    assert_eq!(delivered_steps(&last).len(), 3);
    assert_eq!(last.signature_error, None);
}
