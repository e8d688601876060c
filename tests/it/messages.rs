//! Reading and cancelling messages: `GET/DELETE /v2/messages/{id}` and bulk
//! `DELETE /v2/messages`.

use std::time::Duration;

use crate::common::{Receiver, Reply, TestServer, enc, status_json};
use base64::Engine;
use serde_json::json;

const QUIET: Duration = Duration::from_millis(150);
const HOUR: (&str, &str) = ("Upstash-Delay", "1h");

/// The last logged state of a message.
async fn last_state(server: &TestServer, id: &str) -> String {
    server.states(id).await.pop().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_message_is_readable_with_its_configuration() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let url = format!("{}/shape?a=1", rx.url);
    let before = server.clock.now_ms();
    let id = server
        .publish(
            &url,
            &[
                ("Content-Type", "text/plain"),
                ("Upstash-Forward-My-Header", "v"),
                HOUR,
                ("Upstash-Retries", "2"),
                ("Upstash-Method", "PUT"),
                ("Upstash-Label", "alpha,beta"),
                ("Upstash-Retry-Delay", "1000 * retried"),
                ("Upstash-Callback", "http://127.0.0.1:9/cb"),
            ],
            "hello",
        )
        .await;
    let (status, m) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["messageId"], id.as_str());
    assert_eq!(m["url"], url.as_str());
    assert_eq!(m["method"], "PUT");
    assert_eq!(m["body"], "hello");
    assert!(m.get("bodyBase64").is_none(), "{m}");
    assert_eq!(m["maxRetries"], 2);
    assert_eq!(m["createdAt"], before);
    assert_eq!(m["notBefore"], before + 3_600_000);
    assert_eq!(m["header"]["Content-Type"], json!(["text/plain"]));
    assert_eq!(m["header"]["My-Header"], json!(["v"]));
    assert_eq!(m["callerIP"], "127.0.0.1");
    assert_eq!(m["label"], "alpha");
    assert_eq!(m["labels"], json!(["alpha", "beta"]));
    assert_eq!(m["retryDelayExpression"], "1000 * retried");
    assert_eq!(m["callback"], "http://127.0.0.1:9/cb");

    // A binary body is shown base64-encoded, an empty one not at all.
    let binary = server
        .post(&format!("/v2/publish/{}/bin", rx.url))
        .header("Upstash-Delay", "1h")
        .body(vec![0xffu8, 0x00, 0xfe])
        .send()
        .await
        .unwrap();
    let (_, binary) = status_json(binary).await;
    let (_, m) = server
        .get_json(&format!(
            "/v2/messages/{}",
            binary["messageId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        m["bodyBase64"],
        base64::engine::general_purpose::STANDARD.encode([0xffu8, 0x00, 0xfe])
    );
    assert!(m.get("body").is_none(), "{m}");
    let empty = server.publish(&format!("{}/e", rx.url), &[HOUR], "").await;
    let (_, m) = server.get_json(&format!("/v2/messages/{empty}")).await;
    assert!(
        m.get("body").is_none() && m.get("bodyBase64").is_none(),
        "{m}"
    );
    assert_eq!(m["method"], "POST");
    assert_eq!(m["maxRetries"], 3, "the default is 3 retries");
}

#[tokio::test(flavor = "multi_thread")]
async fn finished_message_stays_readable_for_a_10s_grace_then_404() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let id = server.publish(&format!("{}/ok", rx.url), &[], "x").await;
    server.wait_state(&id, "DELIVERED").await;
    let (status, m) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(m["messageId"], id.as_str());
    // Finished: cancelling is refused even while it is still readable.
    let (status, json) = server.delete_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 404, "{json}");
    assert!(json["error"].is_string());
    server.advance(Duration::from_millis(9_999));
    let (status, _) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 200, "still inside the grace period");
    server.advance(Duration::from_millis(2));
    let (status, json) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 404, "{json}");
    assert!(json["error"].is_string(), "{json}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_messages_are_404_and_a_trailing_slash_cancels_nothing() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let pending = server.publish(&format!("{}/p", rx.url), &[HOUR], "x").await;
    for id in ["msg_doesnotexist", "not-a-message-id", "msg_"] {
        let (status, json) = server.get_json(&format!("/v2/messages/{id}")).await;
        assert_eq!(status, 404, "GET {id}: {json}");
        assert!(json["error"].is_string(), "{json}");
        let (status, json) = server.delete_json(&format!("/v2/messages/{id}")).await;
        assert_eq!(status, 404, "DELETE {id}: {json}");
        assert!(json["error"].is_string(), "{json}");
    }
    // Production routes `DELETE /v2/messages/` to the bulk endpoint and cancels everything.
    let (status, _) = server.delete_json("/v2/messages/").await;
    assert!(!status.is_success(), "{status}");
    assert_eq!(last_state(&server, &pending).await, "CREATED");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_delayed_message_is_never_delivered() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let id = server
        .publish(&format!("{}/later", rx.url), &[HOUR], "x")
        .await;
    let (status, json) = server.delete_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(json, json!({"cancelled": 1}));
    assert_eq!(
        server.states(&id).await,
        ["CREATED", "CANCEL_REQUESTED", "CANCELED"]
    );
    let (status, _) = server.delete_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 404, "cancelling twice");
    let (status, _) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 200, "readable during the grace period");
    server.advance(Duration::from_secs(2 * 3600));
    rx.assert_quiet(0, QUIET).await;
    let (status, _) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        server.states(&id).await,
        ["CREATED", "CANCEL_REQUESTED", "CANCELED"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_in_flight_message_lets_the_attempt_decide_without_retry() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let slow = Duration::from_millis(700);
    rx.route("/fails", Reply::status(500).delay(slow));
    rx.route("/works", Reply::status(200).delay(slow));
    let retrying = server
        .publish(
            &format!("{}/fails/retrying", rx.url),
            &[("Upstash-Retries", "3")],
            "x",
        )
        .await;
    // Without the cancel this one would fail for good: failure callback and DLQ entry.
    let last_try = server
        .publish(
            &format!("{}/fails/last", rx.url),
            &[
                ("Upstash-Retries", "0"),
                (
                    "Upstash-Failure-Callback",
                    &format!("{}/failure-callback", rx.url),
                ),
            ],
            "x",
        )
        .await;
    let working = server.publish(&format!("{}/works", rx.url), &[], "x").await;
    rx.wait_for(3).await;
    for id in [&retrying, &last_try, &working] {
        let (status, _) = server.get_json(&format!("/v2/messages/{id}")).await;
        assert_eq!(status, 200, "readable while in flight");
        let (status, json) = server.delete_json(&format!("/v2/messages/{id}")).await;
        assert_eq!(status, 200, "{json}");
        assert_eq!(json, json!({"cancelled": 1}));
    }
    assert_eq!(
        server.states(&retrying).await,
        ["CREATED", "ACTIVE", "CANCEL_REQUESTED"],
        "the attempt is still running"
    );
    for id in [&retrying, &last_try] {
        assert_eq!(
            server.wait_state(id, "CANCELED").await,
            ["CREATED", "ACTIVE", "CANCEL_REQUESTED", "CANCELED"]
        );
    }
    assert_eq!(
        server.wait_state(&working, "DELIVERED").await,
        ["CREATED", "ACTIVE", "CANCEL_REQUESTED", "DELIVERED"]
    );
    server.advance(Duration::from_secs(86_400));
    rx.assert_quiet(3, QUIET).await;
    let (_, dlq) = server.get_json("/v2/dlq").await;
    assert_eq!(
        dlq["messages"],
        json!([]),
        "a cancelled message is no DLQ entry"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_message_that_waits_for_its_retry_stops_the_retries() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let id = server
        .publish(&format!("{}/r", rx.url), &[("Upstash-Retries", "3")], "x")
        .await;
    server.wait_retries(&id, 1).await;
    let (status, json) = server.delete_json(&format!("/v2/messages/{id}")).await;
    assert_eq!((status.as_u16(), json), (200, json!({"cancelled": 1})));
    assert_eq!(
        server.states(&id).await,
        [
            "CREATED",
            "ACTIVE",
            "ERROR",
            "RETRY",
            "CANCEL_REQUESTED",
            "CANCELED"
        ]
    );
    server.advance(Duration::from_secs(86_400));
    rx.assert_quiet(1, QUIET).await;
    let (_, dlq) = server.get_json("/v2/dlq").await;
    assert_eq!(dlq["messages"], json!([]));
}

/// Publishes `n` messages delayed by an hour to `{rx}/{path}`.
async fn delayed(server: &TestServer, rx: &Receiver, path: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(
            server
                .publish(&format!("{}/{path}", rx.url), &[HOUR], "x")
                .await,
        );
    }
    ids
}

async fn cancel_many(server: &TestServer, query: &str) -> serde_json::Value {
    let (status, json) = server.delete_json(&format!("/v2/messages{query}")).await;
    assert_eq!(status, 200, "{query}: {json}");
    json["cancelled"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_cancel_by_message_ids_in_the_query_or_a_json_body() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let m = delayed(&server, &rx, "ids", 9).await;
    let q = |ids: &[usize]| {
        ids.iter()
            .map(|i| format!("messageIds={}", m[*i]))
            .collect::<Vec<_>>()
            .join("&")
    };
    assert_eq!(cancel_many(&server, &format!("?{}", q(&[0, 1]))).await, 2);
    assert_eq!(
        cancel_many(&server, &format!("?messageIds={},{}", m[2], m[3])).await,
        2,
        "comma-separated"
    );
    let resp = server
        .delete("/v2/messages")
        .header("Content-Type", "application/json")
        .body(json!({"messageIds": [m[4], m[5]]}).to_string())
        .send()
        .await
        .unwrap();
    let (status, json) = status_json(resp).await;
    assert_eq!((status.as_u16(), json), (200, json!({"cancelled": 2})));
    assert_eq!(
        cancel_many(&server, &format!("?{}", q(&[0, 6]))).await,
        1,
        "already cancelled ids are not counted"
    );
    assert_eq!(
        cancel_many(
            &server,
            &format!("?{}&url={}", q(&[7]), enc("http://elsewhere.test/"))
        )
        .await,
        1,
        "other filters are ignored when ids are given"
    );
    for id in &m[..8] {
        assert_eq!(last_state(&server, id).await, "CANCELED", "{id}");
    }
    assert_eq!(last_state(&server, &m[8]).await, "CREATED");
    let (status, _) = server.get_json(&format!("/v2/messages/{}", m[8])).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_cancel_by_filters() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let t0 = server.clock.now_ms();
    let mut ids = Vec::new();
    for (path, label) in [
        ("a", Some("x")),
        ("a", Some("y")),
        ("b", Some("x")),
        ("b", Some("z")),
        ("c?q=1", None),
        ("d/deep", None),
        ("e", None),
    ] {
        let mut headers = vec![HOUR];
        if let Some(l) = label {
            headers.push(("Upstash-Label", l));
        }
        ids.push(
            server
                .publish(&format!("{}/{path}", rx.url), &headers, "x")
                .await,
        );
        server.advance(Duration::from_secs(1));
    }
    let cancelled = async |query: String, expected: &[usize]| {
        assert_eq!(
            cancel_many(&server, &query).await,
            expected.len(),
            "{query}"
        );
        for i in expected {
            assert_eq!(last_state(&server, &ids[*i]).await, "CANCELED", "{query}");
        }
    };
    let url_a = enc(&format!("{}/a", rx.url));
    cancelled(format!("?url={url_a}&label=x"), &[0]).await;
    cancelled("?label=y&label=x".into(), &[1, 2]).await;
    cancelled(
        format!("?fromDate={}&toDate={}", t0 + 3000, t0 + 3000),
        &[3],
    )
    .await;
    cancelled(format!("?url={}", enc(&format!("{}/c?q=1", rx.url))), &[4]).await;
    cancelled("?path=/d/deep".into(), &[5]).await;
    cancelled(format!("?url={url_a}"), &[]).await;
    cancelled("?host=elsewhere.test".into(), &[]).await;
    cancelled("?callerIp=10.0.0.1".into(), &[]).await;
    assert_eq!(last_state(&server, &ids[6]).await, "CREATED");
    server.advance(Duration::from_secs(2 * 3600));
    let got = rx.wait_for(1).await;
    rx.assert_quiet(1, QUIET).await;
    assert_eq!(
        got[0].target, "/e",
        "only the unselected message is delivered"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_cancel_honours_count_oldest_first_and_takes_everything_without_it() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        // Distinct creation times, so "oldest first" is observable.
        server.advance(Duration::from_millis(5));
        ids.extend(delayed(&server, &rx, "all", 1).await);
    }
    let other = server
        .user(1)
        .publish(&format!("{}/u2", rx.url), &[HOUR], "x")
        .await;
    // The official SDK suites: `cancel({all: true, count: 1})` cancels one.
    assert_eq!(cancel_many(&server, "?count=2").await, 2);
    assert_eq!(
        last_state(&server, &ids[0]).await,
        "CANCELED",
        "oldest first"
    );
    assert_eq!(last_state(&server, &ids[1]).await, "CANCELED");
    assert_eq!(last_state(&server, &ids[2]).await, "CREATED");
    let (status, body) = server.delete_json("/v2/messages?count=501").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("count"), "{body}");
    let (status, body) = server.delete_json("/v2/messages?labeel=x").await;
    assert_eq!(status, 400, "a typo must not select everything: {body}");
    assert!(body["error"].as_str().unwrap().contains("labeel"), "{body}");
    assert_eq!(last_state(&server, &ids[2]).await, "CREATED");
    // No count: everything that is left.
    assert_eq!(cancel_many(&server, "").await, 3);
    assert_eq!(cancel_many(&server, "").await, 0);
    for id in &ids {
        assert_eq!(last_state(&server, id).await, "CANCELED");
    }
    let (status, _) = server
        .user(1)
        .get_json(&format!("/v2/messages/{other}"))
        .await;
    assert_eq!(status, 200, "another user's message is untouched");
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_cancel_counts_in_flight_messages_once() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.route(
        "/busy",
        Reply::status(200).delay(Duration::from_millis(800)),
    );
    let mut busy = Vec::new();
    for _ in 0..3 {
        busy.push(server.publish(&format!("{}/busy", rx.url), &[], "x").await);
    }
    let waiting = delayed(&server, &rx, "waiting", 2).await;
    rx.wait_for(3).await;
    // Older JS SDKs loop `cancel({all: true})` with count=100 until nothing is cancelled.
    assert_eq!(cancel_many(&server, "?count=100").await, 5);
    assert_eq!(cancel_many(&server, "?count=100").await, 0);
    assert_eq!(
        cancel_many(&server, &format!("?messageIds={}", busy[0])).await,
        0
    );
    for id in &busy {
        assert_eq!(
            server.wait_state(id, "DELIVERED").await,
            ["CREATED", "ACTIVE", "CANCEL_REQUESTED", "DELIVERED"]
        );
    }
    for id in &waiting {
        assert_eq!(last_state(&server, id).await, "CANCELED");
    }
}
