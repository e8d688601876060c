//! URL groups ("topics"): endpoint CRUD, default headers, and fan-out publishing to real
//! receivers (each endpoint gets its own message, retries and DLQ entry).

use std::time::Duration;

use crate::common::ext::send;
use crate::common::{Receiver, Reply, TestServer};
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(150);

async fn add(server: &TestServer, group: &str, endpoints: Value) -> u16 {
    let (status, body) = server
        .post_json(
            &format!("/v2/topics/{group}/endpoints"),
            &json!({ "endpoints": endpoints }),
        )
        .await;
    assert!(status == 200 || status >= 400, "{status} {body}");
    status
}

async fn remove(server: &TestServer, group: &str, endpoints: Value) -> u16 {
    send(
        server
            .call("DELETE", &format!("/v2/topics/{group}/endpoints"))
            .header("Content-Type", "application/json")
            .body(json!({ "endpoints": endpoints }).to_string()),
    )
    .await
    .0
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_created_listed_and_removed_with_exact_shapes() {
    let server = TestServer::start().await;
    let before = server.clock.now_ms();
    assert_eq!(
        add(
            &server,
            "orders",
            json!([{"name": "first", "url": "http://127.0.0.1:1/a"}, {"url": "https://example.com/b"}])
        )
        .await,
        200,
        "the group is created on first use"
    );
    let (status, group) = server.get_json("/v2/topics/orders").await;
    assert_eq!(status, 200);
    let keys: Vec<&String> = group.as_object().unwrap().keys().collect();
    for k in ["name", "createdAt", "updatedAt", "endpoints"] {
        assert!(group.get(k).is_some(), "{k} missing: {group}");
    }
    assert_eq!(keys.len(), 4, "{group}");
    assert_eq!(group["name"], "orders");
    let created = group["createdAt"].as_i64().expect("createdAt ms");
    assert!(
        created >= before && created <= server.clock.now_ms(),
        "{group}"
    );
    assert!(group["updatedAt"].as_i64().unwrap() >= created);
    assert_eq!(
        group["endpoints"],
        json!([{"name": "first", "url": "http://127.0.0.1:1/a"}, {"url": "https://example.com/b"}]),
        "unnamed endpoints have no name key and endpoints carry no other keys"
    );

    // A second group, and adding to the first one again.
    server.advance(Duration::from_secs(5));
    assert_eq!(
        add(
            &server,
            "other.group_1-x",
            json!([{"url": "http://127.0.0.1:1/o"}])
        )
        .await,
        200
    );
    assert_eq!(
        add(
            &server,
            "orders",
            json!([{"name": "third", "url": "http://127.0.0.1:1/c"}])
        )
        .await,
        200
    );
    let (_, group) = server.get_json("/v2/topics/orders").await;
    assert_eq!(group["endpoints"].as_array().unwrap().len(), 3, "{group}");
    assert_eq!(group["createdAt"].as_i64().unwrap(), created);
    assert!(
        group["updatedAt"].as_i64().unwrap() >= created + 5_000,
        "updatedAt moves on change: {group}"
    );
    let (status, list) = server.get_json("/v2/topics").await;
    assert_eq!(status, 200);
    let mut names: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["orders", "other.group_1-x"]);

    // Remove by name, then by url; the last removal deletes the group.
    assert_eq!(
        remove(&server, "orders", json!([{"name": "first"}])).await,
        200
    );
    assert_eq!(
        remove(&server, "orders", json!([{"url": "https://example.com/b"}])).await,
        200
    );
    let (_, group) = server.get_json("/v2/topics/orders").await;
    assert_eq!(
        group["endpoints"],
        json!([{"name": "third", "url": "http://127.0.0.1:1/c"}])
    );
    assert_eq!(
        remove(&server, "orders", json!([{"url": "http://127.0.0.1:1/c"}])).await,
        200
    );
    let (status, _) = server.get_json("/v2/topics/orders").await;
    assert_eq!(status, 404, "group deleted with its last endpoint");
    let (_, list) = server.get_json("/v2/topics").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Deleting a whole group, and deleting one that does not exist.
    let (status, _) = send(server.call("DELETE", "/v2/topics/other.group_1-x")).await;
    assert_eq!(status, 200);
    let (status, _) = server.get_json("/v2/topics/other.group_1-x").await;
    assert_eq!(status, 404);
    let (status, _) = send(server.call("DELETE", "/v2/topics/never-existed")).await;
    assert_eq!(
        status, 200,
        "deleting an unknown group succeeds (Python SDK relies on it)"
    );
    let (_, list) = server.get_json("/v2/topics").await;
    assert_eq!(list, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_names_and_urls_are_rejected() {
    let server = TestServer::start().await;
    for bad in ["bad%20name", "bad$name", "a%2Fb", "caf%C3%A9"] {
        let (status, body) = server
            .post_json(
                &format!("/v2/topics/{bad}/endpoints"),
                &json!({"endpoints": [{"url": "http://127.0.0.1:1/a"}]}),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    for bad_url in ["ftp://example.com/x", "example.com/x", ""] {
        let (status, body) = server
            .post_json(
                "/v2/topics/g/endpoints",
                &json!({"endpoints": [{"url": bad_url}]}),
            )
            .await;
        assert_eq!(status, 400, "{bad_url:?}: {body}");
    }
    let (status, _) = server
        .post_json("/v2/topics/g/endpoints", &json!({"nothing": 1}))
        .await;
    assert_eq!(status, 400, "body without endpoints");
    let (status, _) = server
        .post_raw("/v2/topics/g/endpoints", &[], "{not json")
        .await;
    assert_eq!(status, 400);
    let (_, list) = server.get_json("/v2/topics").await;
    assert_eq!(list, json!([]), "nothing was created");
    let (status, _) = server.get_json("/v2/topics/nope").await;
    assert_eq!(status, 404);
    assert_eq!(
        remove(&server, "nope", json!([{"url": "http://127.0.0.1:1/a"}])).await,
        404,
        "removing endpoints of an unknown group"
    );
    add(&server, "exists", json!([{"url": "http://127.0.0.1:1/a"}])).await;
    assert_eq!(
        remove(&server, "exists", json!([{}])).await,
        400,
        "an endpoint selector needs a url or a name"
    );
    let (_, group) = server.get_json("/v2/topics/exists").await;
    assert_eq!(group["endpoints"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn publishing_fans_out_one_message_per_endpoint() {
    let server = TestServer::start().await;
    server.clock.pause();
    let a = Receiver::start().await;
    let b = Receiver::start().await;
    let url_a = format!("{}/a?k=1", a.url);
    let url_b = format!("{}/b", b.url);
    add(
        &server,
        "fan",
        json!([{"name": "alpha", "url": url_a}, {"url": url_b}]),
    )
    .await;
    let (status, resp) = server
        .post_raw(
            "/v2/publish/fan",
            &[
                ("Content-Type", "text/plain"),
                ("Upstash-Forward-X-Trace", "t1"),
                ("Upstash-Delay", "30s"),
            ],
            "fan-body",
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let elements = resp.as_array().expect("a bare JSON array");
    assert_eq!(elements.len(), 2, "{resp}");
    assert_eq!(elements[0]["url"], url_a.as_str());
    assert_eq!(elements[1]["url"], url_b.as_str());
    let id_a = elements[0]["messageId"].as_str().unwrap().to_string();
    let id_b = elements[1]["messageId"].as_str().unwrap().to_string();
    assert_ne!(id_a, id_b);

    // Both messages exist, with the group and endpoint names.
    let (status, msg_a) = server.get_json(&format!("/v2/messages/{id_a}")).await;
    assert_eq!(status, 200);
    assert_eq!(msg_a["url"], url_a.as_str());
    assert_eq!(msg_a["topicName"], "fan");
    assert_eq!(msg_a["endpointName"], "alpha");
    assert_eq!(msg_a["body"], "fan-body");
    let (_, msg_b) = server.get_json(&format!("/v2/messages/{id_b}")).await;
    assert_eq!(msg_b["url"], url_b.as_str());
    assert_eq!(msg_b["topicName"], "fan");
    assert!(msg_b.get("endpointName").is_none(), "{msg_b}");

    a.assert_quiet(0, QUIET).await;
    server.advance(Duration::from_secs(30));
    let got_a = a.wait_for(1).await;
    let got_b = b.wait_for(1).await;
    for (r, id, target) in [(&got_a[0], &id_a, "/a?k=1"), (&got_b[0], &id_b, "/b")] {
        assert_eq!(r.signature_error, None, "signed for the endpoint URL");
        assert_eq!(r.target, target);
        assert_eq!(r.header("upstash-topic-name"), Some("fan"));
        assert_eq!(r.header("upstash-message-id"), Some(id.as_str()));
        assert_eq!(r.header("x-trace"), Some("t1"));
        assert_eq!(r.header("content-type"), Some("text/plain"));
        assert_eq!(&r.body[..], b"fan-body");
    }
    server.wait_state(&id_a, "DELIVERED").await;
    server.wait_state(&id_b, "DELIVERED").await;
    for e in server.log_entries(&format!("messageId={id_a}")).await {
        assert_eq!(e["topicName"], "fan", "{e}");
        assert_eq!(e["endpointName"], "alpha", "{e}");
        assert_eq!(e["url"], url_a.as_str(), "{e}");
    }
    let filtered = server.log_entries("topicName=fan&state=DELIVERED").await;
    assert_eq!(filtered.len(), 2, "topicName filter: {filtered:?}");
    a.assert_quiet(1, QUIET).await;
    assert_eq!(b.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_fail_retry_and_dead_letter_independently() {
    let server = TestServer::start().await;
    let ok = Receiver::start().await;
    let bad = Receiver::start().await;
    bad.set_default(Reply::status(500).body("down"));
    add(
        &server,
        "mixed",
        json!([{"url": format!("{}/ok", ok.url)}, {"name": "broken", "url": format!("{}/bad", bad.url)}]),
    )
    .await;
    let (status, resp) = server
        .post_raw("/v2/publish/mixed", &[("Upstash-Retries", "1")], "x")
        .await;
    assert_eq!(status, 200, "{resp}");
    let id_ok = resp[0]["messageId"].as_str().unwrap().to_string();
    let id_bad = resp[1]["messageId"].as_str().unwrap().to_string();
    assert_eq!(
        server.wait_state(&id_ok, "DELIVERED").await,
        ["CREATED", "ACTIVE", "DELIVERED"]
    );
    server.wait_retries(&id_bad, 1).await;
    server.advance(Duration::from_secs(12));
    let states = server.wait_state(&id_bad, "FAILED").await;
    assert_eq!(
        states,
        [
            "CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "FAILED"
        ]
    );
    let got = bad.wait_for(2).await;
    assert_eq!(got[1].header("upstash-retried"), Some("1"));
    assert_eq!(got[1].header("upstash-topic-name"), Some("mixed"));
    assert_eq!(
        ok.count(),
        1,
        "the healthy endpoint got exactly one delivery"
    );

    let (_, dlq) = server.get_json("/v2/dlq").await;
    let entries = dlq["messages"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{dlq}");
    let e = &entries[0];
    assert_eq!(e["messageId"], id_bad.as_str());
    assert_eq!(e["topicName"], "mixed");
    assert_eq!(e["endpointName"], "broken");
    assert_eq!(e["url"], format!("{}/bad", bad.url));
    assert_eq!(e["responseStatus"], 500);
    let (_, by_topic) = server.get_json("/v2/dlq?topicName=mixed").await;
    assert_eq!(by_topic["messages"].as_array().unwrap().len(), 1);
    let (_, failed) = server
        .get_json(&format!("/v2/events?messageId={id_bad}&state=FAILED"))
        .await;
    assert_eq!(failed["events"][0]["topicName"], "mixed");
    assert_eq!(failed["events"][0]["endpointName"], "broken");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_or_emptied_groups_and_bad_names_cannot_be_published_to() {
    let server = TestServer::start().await;
    let (status, body) = server.post_raw("/v2/publish/no-such-group", &[], "x").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let (status, body) = server.post_raw("/v2/publish/bad$group", &[], "x").await;
    assert_eq!(status, 400, "{body}");
    add(&server, "gone", json!([{"url": "http://127.0.0.1:1/x"}])).await;
    remove(&server, "gone", json!([{"url": "http://127.0.0.1:1/x"}])).await;
    let (status, body) = server.post_raw("/v2/publish/gone", &[], "x").await;
    assert_eq!(status, 404, "{body}");
    add(&server, "dropped", json!([{"url": "http://127.0.0.1:1/x"}])).await;
    send(server.call("DELETE", "/v2/topics/dropped")).await;
    let (status, body) = server.post_raw("/v2/publish/dropped", &[], "x").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        server.log_entries("").await.is_empty(),
        "no message was created"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn patched_default_headers_apply_and_request_headers_win() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script("/d", Reply::status(500));
    rx.script("/d", Reply::status(500));
    add(
        &server,
        "defaults",
        json!([{"url": format!("{}/d", rx.url)}]),
    )
    .await;
    let (status, body) = send(
        server
            .call("PATCH", "/v2/topics/defaults")
            .header("Content-Type", "application/json")
            .body(
                json!({"headers": {
                    "Upstash-Retries": "0",
                    "Upstash-Forward-X-Default": ["from-group"],
                    "Upstash-Header-Forward": ["true"],
                }})
                .to_string(),
            ),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // Defaults only: no retry, the default forward header and header forwarding apply.
    let (_, resp) = server
        .post_raw("/v2/publish/defaults", &[("X-Webhook-Sig", "abc")], "one")
        .await;
    let first = resp[0]["messageId"].as_str().unwrap().to_string();
    assert_eq!(
        server.wait_state(&first, "FAILED").await,
        ["CREATED", "ACTIVE", "ERROR", "FAILED"],
        "Upstash-Retries: 0 from the group"
    );
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].header("x-default"), Some("from-group"));
    assert_eq!(
        got[0].header("x-webhook-sig"),
        Some("abc"),
        "Header-Forward from the group"
    );

    // The request's own header beats the default.
    let (_, resp) = server
        .post_raw(
            "/v2/publish/defaults",
            &[
                ("Upstash-Retries", "2"),
                ("Upstash-Forward-X-Default", "mine"),
            ],
            "two",
        )
        .await;
    let second = resp[0]["messageId"].as_str().unwrap().to_string();
    server.wait_retries(&second, 1).await;
    let (_, msg) = server.get_json(&format!("/v2/messages/{second}")).await;
    assert_eq!(msg["maxRetries"], 2, "{msg}");
    server.advance(Duration::from_secs(12));
    server.wait_state(&second, "DELIVERED").await;
    let got = rx.wait_for(3).await;
    for r in &got[1..] {
        assert_eq!(
            r.headers
                .get_all("x-default")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect::<Vec<_>>(),
            ["mine"],
            "the request's Upstash-Forward-X-Default replaces the group default"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn re_adding_a_url_renames_it_and_created_messages_ignore_later_changes() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let a = format!("{}/a", rx.url);
    let b = format!("{}/b", rx.url);
    add(&server, "g", json!([{"url": a}, {"url": b}])).await;
    add(&server, "g", json!([{"name": "renamed", "url": a}])).await;
    let (_, group) = server.get_json("/v2/topics/g").await;
    assert_eq!(
        group["endpoints"],
        json!([{"name": "renamed", "url": a}, {"url": b}]),
        "the URL is the identity: no duplicate endpoint"
    );
    let (status, resp) = server
        .post_raw("/v2/publish/g", &[("Upstash-Delay", "1m")], "x")
        .await;
    assert_eq!(status, 200, "{resp}");
    assert_eq!(resp.as_array().unwrap().len(), 2);
    // Changing or deleting the group does not touch messages already created.
    remove(&server, "g", json!([{"url": b}])).await;
    send(server.call("DELETE", "/v2/topics/g")).await;
    server.advance(Duration::from_secs(60));
    let got = rx.wait_for(2).await;
    let mut targets: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    targets.sort();
    assert_eq!(targets, ["/a", "/b"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn enqueueing_to_a_group_fans_out_into_the_queue() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(200).delay(Duration::from_millis(100)));
    add(
        &server,
        "qg",
        json!([{"url": format!("{}/1", rx.url)}, {"url": format!("{}/2", rx.url)}]),
    )
    .await;
    let (status, resp) = server.post_raw("/v2/enqueue/gq/qg", &[], "x").await;
    assert_eq!(status, 200, "{resp}");
    let elements = resp.as_array().expect("array for a group");
    assert_eq!(elements.len(), 2);
    let got = rx.wait_for(2).await;
    assert_eq!(got[0].target, "/1");
    assert_eq!(got[1].target, "/2");
    assert!(
        got[1].at.duration_since(got[0].at) >= Duration::from_millis(90),
        "one at a time through the queue"
    );
    for e in elements {
        let id = e["messageId"].as_str().unwrap();
        let created = server.event(id, "CREATED").await;
        assert_eq!(created["queueName"], "gq", "{created}");
        assert_eq!(created["topicName"], "qg", "{created}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn payg_allows_100_groups_of_100_endpoints() {
    let server = TestServer::start().await;
    for i in 0..100 {
        assert_eq!(
            add(
                &server,
                &format!("g{i}"),
                json!([{"url": "http://127.0.0.1:1/x"}])
            )
            .await,
            200,
            "group {i}"
        );
    }
    assert_eq!(
        add(&server, "g100", json!([{"url": "http://127.0.0.1:1/x"}])).await,
        412
    );
    let endpoints: Vec<Value> = (1..100)
        .map(|i| json!({"url": format!("http://127.0.0.1:1/{i}")}))
        .collect();
    assert_eq!(add(&server, "g0", Value::Array(endpoints)).await, 200);
    assert_eq!(
        add(
            &server,
            "g0",
            json!([{"url": "http://127.0.0.1:1/one-more"}])
        )
        .await,
        412
    );
    let (_, group) = server.get_json("/v2/topics/g0").await;
    assert_eq!(group["endpoints"].as_array().unwrap().len(), 100);
}

#[tokio::test(flavor = "multi_thread")]
async fn default_headers_are_validated_when_set() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let (status, _) = server
        .post_json(
            "/v2/topics/checked/endpoints",
            &json!({"endpoints": [{"url": format!("{}/a", rx.url)}]}),
        )
        .await;
    assert_eq!(status, 200);
    let patch = |headers: Value| {
        send(
            server
                .http
                .patch(format!("{}/v2/topics/checked", server.url))
                .bearer_auth(crate::common::TOKEN)
                .header("Content-Type", "application/json")
                .body(json!({ "headers": headers }).to_string()),
        )
    };
    let (status, body) = patch(json!({"Upstash-Retries": "lots"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("Upstash-Retries"),
        "{body}"
    );
    // The group still publishes normally.
    let (status, body) = server.post_raw("/v2/publish/checked", &[], "x").await;
    assert_eq!(status, 200, "{body}");
    rx.wait_for(1).await;
}
