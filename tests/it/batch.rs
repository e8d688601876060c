//! `POST /v2/batch`: URL, URL-group and queue items with their own headers and bodies,
//! per-item errors, and requests rejected as a whole.

use std::time::Duration;

use crate::common::ext::eventually;
use crate::common::{Receiver, TestServer};
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(150);

fn id(v: &Value) -> String {
    v["messageId"]
        .as_str()
        .unwrap_or_else(|| panic!("no messageId in {v}"))
        .to_string()
}

fn by_target<'a>(got: &'a [crate::common::Received], target: &str) -> &'a crate::common::Received {
    got.iter()
        .find(|r| r.target == target)
        .unwrap_or_else(|| panic!("nothing delivered to {target}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_batch_answers_in_item_order_and_delivers_every_item() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let g1 = format!("{}/g1", rx.url);
    let g2 = format!("{}/g2", rx.url);
    server
        .post_json(
            "/v2/topics/grp/endpoints",
            &json!({"endpoints": [{"url": g1}, {"url": g2}]}),
        )
        .await;
    let items = json!([
        {"destination": format!("{}/plain", rx.url), "body": "one"},
        {"destination": "grp", "body": "two", "headers": {"Content-Type": "text/plain"}},
        {"destination": format!("{}/delayed", rx.url), "body": "three",
         "headers": {"upstash-delay": "10s", "upstash-forward-hello": "again", "content-type": "application/json"}},
        {"destination": format!("{}/queued", rx.url), "body": "four", "queue": "batch-q"},
        {"destination": format!("{}/nulls", rx.url), "body": null, "queue": null, "headers": null},
    ]);
    let (status, resp) = server.post_json("/v2/batch", &items).await;
    assert_eq!(status, 200, "{resp}");
    let elements = resp.as_array().expect("array");
    assert_eq!(elements.len(), 5, "{resp}");
    let plain = id(&elements[0]);
    let group = elements[1]
        .as_array()
        .expect("nested array for the group item");
    assert_eq!(group.len(), 2);
    assert_eq!(group[0]["url"], g1.as_str());
    assert_eq!(group[1]["url"], g2.as_str());
    let delayed = id(&elements[2]);
    let queued = id(&elements[3]);
    let nulls = id(&elements[4]);

    let got = rx.wait_for(5).await;
    rx.assert_quiet(5, QUIET).await;
    assert!(got.iter().all(|r| r.signature_error.is_none()));
    let r = by_target(&got, "/plain");
    assert_eq!(r.header("upstash-message-id"), Some(plain.as_str()));
    assert_eq!(&r.body[..], b"one");
    for (t, e) in [("/g1", &group[0]), ("/g2", &group[1])] {
        let r = by_target(&got, t);
        assert_eq!(&r.body[..], b"two");
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(r.header("upstash-topic-name"), Some("grp"));
        assert_eq!(r.header("upstash-message-id"), e["messageId"].as_str());
    }
    let r = by_target(&got, "/queued");
    assert_eq!(r.header("upstash-message-id"), Some(queued.as_str()));
    assert_eq!(&r.body[..], b"four");
    let r = by_target(&got, "/nulls");
    assert_eq!(r.header("upstash-message-id"), Some(nulls.as_str()));
    assert!(r.body.is_empty(), "null body = empty body");

    // The queued item went through the queue, which was created on the fly.
    let created = server.event(&queued, "CREATED").await;
    assert_eq!(created["queueName"], "batch-q", "{created}");
    let (status, queue) = server.get_json("/v2/queues/batch-q").await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["parallelism"], 1);

    // The delayed item waits for its 10 s and carries its own forwarded header.
    let (_, msg) = server.get_json(&format!("/v2/messages/{delayed}")).await;
    assert_eq!(
        msg["notBefore"].as_i64().unwrap(),
        msg["createdAt"].as_i64().unwrap() + 10_000,
        "{msg}"
    );
    assert_eq!(msg["header"]["Hello"], json!(["again"]), "{msg}");
    server.advance(Duration::from_millis(9_999));
    rx.assert_quiet(5, QUIET).await;
    server.advance(Duration::from_millis(1));
    let got = rx.wait_for(6).await;
    let r = by_target(&got, "/delayed");
    assert_eq!(r.header("hello"), Some("again"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(&r.body[..], b"three");
    server.wait_state(&delayed, "DELIVERED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_item_still_gets_an_array() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let (status, resp) = server
        .post_json(
            "/v2/batch",
            &json!([{"destination": format!("{}/one", rx.url)}]),
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let elements = resp.as_array().expect("array even for one item");
    assert_eq!(elements.len(), 1);
    let got = rx.wait_for(1).await;
    assert_eq!(
        got[0].header("upstash-message-id"),
        Some(id(&elements[0]).as_str())
    );
    let (status, resp) = server.post_json("/v2/batch", &json!([])).await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_item_gets_an_error_element_while_the_others_are_sent() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let items = json!([
        {"destination": format!("{}/first", rx.url), "body": "1"},
        {"destination": "no-such-group", "body": "2"},
        {"destination": format!("{}/bad-header", rx.url), "headers": {"Upstash-Delay": "soon"}},
        {"destination": format!("{}/bad-retries", rx.url), "headers": {"Upstash-Retries": "many"}},
        {"destination": format!("{}/last", rx.url), "body": "5"},
    ]);
    let (status, resp) = server.post_json("/v2/batch", &items).await;
    assert_eq!(status, 200, "{resp}");
    let elements = resp.as_array().expect("array");
    assert_eq!(elements.len(), 5, "{resp}");
    let first = id(&elements[0]);
    let last = id(&elements[4]);
    for (i, needle) in [(1, ""), (2, "Upstash-Delay"), (3, "Upstash-Retries")] {
        let error = elements[i]["error"]
            .as_str()
            .unwrap_or_else(|| panic!("element {i} is not an error: {}", elements[i]));
        assert!(error.contains(needle), "element {i}: {error}");
        assert!(elements[i].get("messageId").is_none());
    }
    let got = rx.wait_for(2).await;
    rx.assert_quiet(2, QUIET).await;
    let mut targets: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    targets.sort();
    assert_eq!(targets, ["/first", "/last"]);
    server.wait_state(&first, "DELIVERED").await;
    server.wait_state(&last, "DELIVERED").await;
    let created = server.log_entries("state=CREATED").await;
    assert_eq!(created.len(), 2, "only the good items became messages");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_batches_are_rejected_whole() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let good = json!({"destination": format!("{}/x", rx.url), "body": "x"});
    let cases: Vec<(&str, String)> = vec![
        (
            "not an array",
            json!({"destination": format!("{}/x", rx.url)}).to_string(),
        ),
        ("bad JSON", format!("[{good}")),
        (
            "item without destination",
            json!([good, {"body": "x"}]).to_string(),
        ),
        (
            "empty destination",
            json!([good, {"destination": ""}]).to_string(),
        ),
        (
            "item not an object",
            json!([good, "https://example.com"]).to_string(),
        ),
        ("empty body", String::new()),
    ];
    for (what, body) in cases {
        let (status, resp) = server
            .post_raw("/v2/batch", &[("Content-Type", "application/json")], &body)
            .await;
        assert_eq!(status, 400, "{what}: {resp}");
        assert!(resp["error"].is_string(), "{what}: {resp}");
    }
    rx.assert_quiet(0, QUIET).await;
    assert!(
        server.log_entries("").await.is_empty(),
        "nothing was created"
    );
    // The batch needs the token like everything else.
    let resp = server
        .http
        .post(format!("{}/v2/batch", server.url))
        .body(json!([good]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    rx.assert_quiet(0, QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn batch_items_to_one_queue_are_delivered_in_item_order() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(crate::common::Reply::status(200).delay(Duration::from_millis(30)));
    let items: Vec<Value> = (0..4)
        .map(|i| json!({"destination": format!("{}/q{i}", rx.url), "queue": "ordered", "body": i.to_string()}))
        .collect();
    let (status, resp) = server.post_json("/v2/batch", &Value::Array(items)).await;
    assert_eq!(status, 200, "{resp}");
    let got = rx.wait_for(4).await;
    let targets: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["/q0", "/q1", "/q2", "/q3"]);
    for w in got.windows(2) {
        assert!(
            w[1].at.duration_since(w[0].at) >= Duration::from_millis(25),
            "queue parallelism 1: one at a time"
        );
    }
    eventually("queue drained", || async {
        let (_, q) = server.get_json("/v2/queues/ordered").await;
        (q["lag"] == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_may_exceed_one_message_size_but_each_item_may_not() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let big = "a".repeat(700 * 1024);
    let items = json!([
        {"destination": format!("{}/one", rx.url), "body": big},
        {"destination": format!("{}/two", rx.url), "body": big},
        {"destination": format!("{}/huge", rx.url), "body": "b".repeat(1024 * 1024 + 1)},
    ]);
    let (status, res) = server.post_json("/v2/batch", &items).await;
    assert_eq!(status, 200, "{res}");
    assert!(
        res[0]["messageId"].is_string() && res[1]["messageId"].is_string(),
        "{res}"
    );
    assert!(res[2]["error"].as_str().unwrap().contains("1 MB"), "{res}");
    let got = rx.wait_for(2).await;
    assert!(got.iter().all(|r| r.body.len() == 700 * 1024));
}
