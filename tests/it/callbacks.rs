//! Callbacks after every attempt and failure callbacks after the last one: the documented body
//! field by field, signing, and the `Upstash-Callback-*` / `Upstash-Failure-Callback-*`
//! configuration of the callback messages.

use std::time::Duration;

use crate::common::ext::eventually;
use crate::common::{Receiver, Reply, TestServer};
use base64::Engine;
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(150);

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// The message id of the callback message delivered to `url` (from the logs).
async fn message_to(server: &TestServer, url: &str) -> String {
    eventually(&format!("a message to {url}"), || async {
        server
            .log_entries(&format!("url={}&state=CREATED", urlencode(url)))
            .await
            .first()
            .map(|e| e["messageId"].as_str().unwrap().to_string())
    })
    .await
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_follows_every_attempt_with_the_documented_body() {
    let server = TestServer::start().await;
    let dest = Receiver::start().await;
    let cb = Receiver::start().await;
    dest.script(
        "/dest",
        Reply::status(500).header("X-Resp", "r1").body("fail-1"),
    );
    dest.script(
        "/dest",
        Reply::status(201).header("X-Resp", "r2").body("ok-2"),
    );
    let dest_url = format!("{}/dest?d=1", dest.url);
    let cb_url = format!("{}/cb?x=1", cb.url);
    let (status, resp) = server
        .post_raw(
            &format!("/v2/publish/{dest_url}"),
            &[
                ("Content-Type", "text/plain"),
                ("Upstash-Forward-X-Src", "s"),
                ("Upstash-Method", "PUT"),
                ("Upstash-Retries", "2"),
                ("Upstash-Callback", &cb_url),
            ],
            "source body",
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let id = resp["messageId"].as_str().unwrap().to_string();

    // First attempt fails: a callback with status 500 arrives at once.
    let got = cb.wait_for(1).await;
    let first = &got[0];
    assert_eq!(
        first.signature_error, None,
        "signed, sub = the callback URL"
    );
    assert_eq!(first.claims.as_ref().unwrap()["sub"], cb_url.as_str());
    assert_eq!(first.target, "/cb?x=1");
    assert_eq!(first.method, "POST");
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.header("upstash-retried"), Some("0"));
    let cb_id = first.header("upstash-message-id").unwrap().to_string();
    assert_ne!(cb_id, id, "the callback is a message of its own");
    server.wait_retries(&id, 1).await;
    let (status, msg) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 200, "{msg}");

    let body = first.json();
    assert_eq!(body["status"], 500, "{body}");
    assert_eq!(body["header"]["X-Resp"], json!(["r1"]), "{body}");
    assert_eq!(body["body"], b64("fail-1"));
    assert!(
        body.get("retried").is_none(),
        "retried is omitted on the first attempt: {body}"
    );
    assert_eq!(body["maxRetries"], 2);
    assert_eq!(body["sourceMessageId"], id.as_str());
    assert_eq!(body["url"], dest_url.as_str());
    assert_eq!(body["method"], "PUT");
    assert_eq!(body["sourceHeader"]["X-Src"], json!(["s"]), "{body}");
    assert_eq!(
        body["sourceHeader"]["Content-Type"],
        json!(["text/plain"]),
        "{body}"
    );
    assert_eq!(body["sourceBody"], b64("source body"));
    assert_eq!(
        body["createdAt"],
        Value::String(msg["createdAt"].as_i64().unwrap().to_string()),
        "createdAt is a string of ms"
    );
    assert_eq!(
        body["notBefore"],
        Value::String(msg["notBefore"].as_i64().unwrap().to_string()),
        "notBefore is a string of ms"
    );
    assert_eq!(body["callerIP"], "127.0.0.1");
    for absent in ["dlqId", "topicName", "endpointName", "scheduleId"] {
        assert!(body.get(absent).is_none(), "{absent} present: {body}");
    }

    // The retry succeeds: a second callback.
    server.advance(Duration::from_secs(12));
    let got = cb.wait_for(2).await;
    let second = got[1].json();
    assert_eq!(got[1].signature_error, None);
    assert_ne!(got[1].header("upstash-message-id"), Some(cb_id.as_str()));
    assert_eq!(second["status"], 201);
    assert_eq!(second["retried"], 1);
    assert_eq!(second["maxRetries"], 2);
    assert_eq!(second["body"], b64("ok-2"));
    assert_eq!(second["header"]["X-Resp"], json!(["r2"]));
    assert_eq!(second["sourceMessageId"], id.as_str());
    assert!(second.get("dlqId").is_none());
    server.wait_state(&id, "DELIVERED").await;
    assert_eq!(
        server.wait_state(&cb_id, "DELIVERED").await,
        ["CREATED", "ACTIVE", "DELIVERED"],
        "callback messages have their own log"
    );
    server.advance(Duration::from_secs(86_400));
    cb.assert_quiet(2, QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_failure_callback_fires_once_after_the_last_attempt() {
    let server = TestServer::start().await;
    let dest = Receiver::start().await;
    let fcb = Receiver::start().await;
    dest.set_default(Reply::status(503).header("X-Why", "down").body("nope"));
    let dest_url = format!("{}/dest", dest.url);
    let fcb_url = format!("{}/failed", fcb.url);
    let (_, resp) = server
        .post_raw(
            &format!("/v2/publish/{dest_url}"),
            &[
                ("Upstash-Retries", "1"),
                ("Upstash-Failure-Callback", &fcb_url),
                ("Upstash-Failure-Callback-Forward-X-F", "ff"),
                ("Upstash-Failure-Callback-Method", "PUT"),
            ],
            "payload",
        )
        .await;
    let id = resp["messageId"].as_str().unwrap().to_string();
    server.wait_retries(&id, 1).await;
    fcb.assert_quiet(0, QUIET).await;
    server.advance(Duration::from_secs(12));
    server.wait_state(&id, "FAILED").await;
    let got = fcb.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.signature_error, None);
    assert_eq!(r.claims.as_ref().unwrap()["sub"], fcb_url.as_str());
    assert_eq!(r.method, "PUT", "Upstash-Failure-Callback-Method");
    assert_eq!(
        r.header("x-f"),
        Some("ff"),
        "Upstash-Failure-Callback-Forward-X-F"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["status"], 503, "{body}");
    assert_eq!(body["header"]["X-Why"], json!(["down"]));
    assert_eq!(body["body"], b64("nope"));
    assert_eq!(body["retried"], 1);
    assert_eq!(body["maxRetries"], 1);
    assert_eq!(body["sourceMessageId"], id.as_str());
    assert_eq!(body["url"], dest_url.as_str());
    assert_eq!(body["method"], "POST");
    assert_eq!(body["sourceBody"], b64("payload"));
    assert!(
        body["createdAt"].is_string() && body["notBefore"].is_string(),
        "{body}"
    );
    assert_eq!(body["callerIP"], "127.0.0.1");
    let dlq_id = body["dlqId"].as_str().expect("dlqId on failure callbacks");
    let (status, entry) = server.get_json(&format!("/v2/dlq/{dlq_id}")).await;
    assert_eq!(status, 200, "{entry}");
    assert_eq!(entry["messageId"], id.as_str());
    assert_eq!(entry["dlqId"], dlq_id);
    server.advance(Duration::from_secs(86_400));
    fcb.assert_quiet(1, QUIET).await;
    assert_eq!(dest.count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_failure_callback_when_the_message_is_delivered() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script("/d", Reply::status(500));
    let (_, resp) = server
        .post_raw(
            &format!("/v2/publish/{}/d", rx.url),
            &[
                ("Upstash-Failure-Callback", &format!("{}/f", rx.url)),
                ("Upstash-Callback", &format!("{}/c", rx.url)),
            ],
            "x",
        )
        .await;
    let id = resp["messageId"].as_str().unwrap().to_string();
    server.wait_retries(&id, 1).await;
    server.advance(Duration::from_secs(12));
    server.wait_state(&id, "DELIVERED").await;
    let got = rx.wait_for(4).await;
    rx.assert_quiet(4, QUIET).await;
    let mut targets: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    targets.sort();
    assert_eq!(
        targets,
        ["/c", "/c", "/d", "/d"],
        "two attempts, two callbacks, no failure callback"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_messages_take_their_configuration_from_prefixed_headers() {
    let server = TestServer::start().await;
    server.clock.pause();
    let dest = Receiver::start().await;
    let cb = Receiver::start().await;
    dest.set_default(Reply::status(500));
    // The callback's retry comes 100 s after its failed attempt is processed, which may be
    // before or after the clock moves on below: either way it stays clear of the checks.
    cb.set_default(Reply::status(500).header("Retry-After", "100"));
    let cb_url = format!("{}/cb", cb.url);
    let fcb_url = format!("{}/fcb", cb.url);
    let (_, resp) = server
        .post_raw(
            &format!("/v2/publish/{}/d", dest.url),
            &[
                ("Upstash-Retries", "0"),
                ("Upstash-Callback", &cb_url),
                ("Upstash-Callback-Retries", "1"),
                ("Upstash-Callback-Delay", "30s"),
                ("Upstash-Callback-Method", "PATCH"),
                ("Upstash-Callback-Forward-X-Cb", "c"),
                ("Upstash-Failure-Callback", &fcb_url),
                ("Upstash-Failure-Callback-Delay", "1m"),
                ("Upstash-Failure-Callback-Retries", "0"),
            ],
            "x",
        )
        .await;
    let id = resp["messageId"].as_str().unwrap().to_string();
    server.wait_state(&id, "FAILED").await;
    let cb_id = message_to(&server, &cb_url).await;
    let fcb_id = message_to(&server, &fcb_url).await;
    let created = server.event(&cb_id, "CREATED").await;
    assert_eq!(
        created["maxRetries"], 1,
        "Upstash-Callback-Retries: {created}"
    );
    assert_eq!(created["method"], "PATCH", "{created}");
    let created = server.event(&fcb_id, "CREATED").await;
    assert_eq!(
        created["maxRetries"], 0,
        "Upstash-Failure-Callback-Retries: {created}"
    );

    // Delays: nothing before 30 s, the callback at 30 s, the failure callback at 1 min.
    server.advance(Duration::from_millis(29_999));
    cb.assert_quiet(0, QUIET).await;
    server.advance(Duration::from_millis(1));
    let got = cb.wait_for(1).await;
    assert_eq!(got[0].target, "/cb");
    assert_eq!(got[0].method, "PATCH");
    assert_eq!(got[0].header("x-cb"), Some("c"));
    assert_eq!(got[0].signature_error, None);
    server.advance(Duration::from_secs(29));
    cb.assert_quiet(1, QUIET).await;
    server.advance(Duration::from_secs(1));
    let got = cb.wait_for(2).await;
    assert_eq!(got[1].target, "/fcb");
    assert_eq!(got[1].method, "POST", "failure callbacks default to POST");
    assert!(
        got[1].header("x-cb").is_none(),
        "callback headers stay on the callback"
    );

    // The failure callback (0 retries) fails for good; the callback (1 retry) retries once.
    server.wait_state(&fcb_id, "FAILED").await;
    server.wait_retries(&cb_id, 1).await;
    server.advance(Duration::from_secs(100));
    server.wait_state(&cb_id, "FAILED").await;
    let got = cb.wait_for(3).await;
    assert_eq!(got[2].target, "/cb");
    assert_eq!(got[2].header("upstash-retried"), Some("1"));
    server.advance(Duration::from_secs(86_400));
    cb.assert_quiet(3, QUIET).await;
    // A callback never triggers callbacks of its own.
    assert_eq!(dest.count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_retries_default_to_the_original_messages_retries() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let cb_url = format!("{}/cb", rx.url);
    let id = server
        .publish(
            &format!("{}/d", rx.url),
            &[("Upstash-Retries", "4"), ("Upstash-Callback", &cb_url)],
            "x",
        )
        .await;
    server.wait_state(&id, "DELIVERED").await;
    let cb_id = message_to(&server, &cb_url).await;
    let created = server.event(&cb_id, "CREATED").await;
    assert_eq!(created["maxRetries"], 4, "{created}");
}

#[tokio::test(flavor = "multi_thread")]
async fn group_messages_report_topic_and_endpoint_in_callbacks() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script("/named", Reply::status(500).body("bad"));
    server
        .post_json(
            "/v2/topics/cbgroup/endpoints",
            &json!({"endpoints": [{"name": "ep1", "url": format!("{}/named", rx.url)}]}),
        )
        .await;
    let (status, resp) = server
        .post_raw(
            "/v2/publish/cbgroup",
            &[
                ("Upstash-Retries", "0"),
                ("Upstash-Callback", &format!("{}/cb", rx.url)),
                ("Upstash-Failure-Callback", &format!("{}/fcb", rx.url)),
            ],
            "g",
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let id = resp[0]["messageId"].as_str().unwrap().to_string();
    server.wait_state(&id, "FAILED").await;
    let got = rx.wait_for(3).await;
    for target in ["/cb", "/fcb"] {
        let r = got.iter().find(|r| r.target == target).unwrap();
        let body = r.json();
        assert_eq!(body["topicName"], "cbgroup", "{target}: {body}");
        assert_eq!(body["endpointName"], "ep1", "{target}: {body}");
        assert_eq!(body["sourceMessageId"], id.as_str());
        assert_eq!(body["url"], format!("{}/named", rx.url));
        assert_eq!(body["status"], 500);
        assert_eq!(
            body.get("dlqId").is_some(),
            target == "/fcb",
            "dlqId only on the failure callback: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn callback_urls_must_be_http() {
    let server = TestServer::start().await;
    for header in ["Upstash-Callback", "Upstash-Failure-Callback"] {
        for bad in [
            "ftp://example.com/cb",
            "not a url",
            "/relative/cb",
            "example.com/cb",
        ] {
            let (status, body) = server
                .post_raw("/v2/publish/http://127.0.0.1:1/x", &[(header, bad)], "x")
                .await;
            assert_eq!(status, 400, "{header}: {bad}: {body}");
            assert!(
                body["error"].as_str().unwrap_or("").contains(header),
                "{header}: {bad}: {body}"
            );
        }
    }
    assert!(server.log_entries("").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_attempt_without_a_response_reports_status_0() {
    let server = TestServer::start().await;
    let cb = Receiver::start().await;
    // Nothing listens there: connection refused.
    let dead = format!("http://127.0.0.1:{}/nothing", crate::common::free_port());
    let id = server
        .publish(
            &dead,
            &[
                ("Upstash-Retries", "0"),
                ("Upstash-Callback", &format!("{}/cb", cb.url)),
                ("Upstash-Failure-Callback", &format!("{}/fcb", cb.url)),
            ],
            "x",
        )
        .await;
    server.wait_state(&id, "FAILED").await;
    let got = cb.wait_for(2).await;
    for r in &got {
        let body = r.json();
        assert_eq!(body["status"], 0, "{}: {body}", r.target);
        assert_eq!(body["sourceMessageId"], id.as_str());
        assert_eq!(body["url"], dead.as_str());
    }
    cb.assert_quiet(2, QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_retryable_answer_fires_both_callbacks_at_once() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script(
        "/d",
        Reply::status(489)
            .header("Upstash-NonRetryable-Error", "true")
            .body("invalid"),
    );
    let id = server
        .publish(
            &format!("{}/d", rx.url),
            &[
                ("Upstash-Retries", "3"),
                ("Upstash-Callback", &format!("{}/cb", rx.url)),
                ("Upstash-Failure-Callback", &format!("{}/fcb", rx.url)),
            ],
            "x",
        )
        .await;
    server.wait_state(&id, "FAILED").await;
    let got = rx.wait_for(3).await;
    rx.assert_quiet(3, QUIET).await;
    let fcb = got
        .iter()
        .find(|r| r.target == "/fcb")
        .expect("failure callback")
        .json();
    assert_eq!(fcb["status"], 489);
    assert_eq!(fcb["body"], b64("invalid"));
    assert_eq!(fcb["maxRetries"], 3);
    assert!(fcb.get("retried").is_none() || fcb["retried"] == 0, "{fcb}");
    assert!(fcb["dlqId"].is_string(), "{fcb}");
    let cb = got
        .iter()
        .find(|r| r.target == "/cb")
        .expect("callback")
        .json();
    assert_eq!(cb["status"], 489);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_message_produces_no_further_callbacks() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let cb = Receiver::start().await;
    let id = server
        .publish(
            &format!("{}/d", rx.url),
            &[
                ("Upstash-Callback", &format!("{}/cb", cb.url)),
                ("Upstash-Failure-Callback", &format!("{}/fcb", cb.url)),
            ],
            "x",
        )
        .await;
    server.wait_retries(&id, 1).await;
    cb.wait_for(1).await;
    let (status, body) =
        crate::common::ext::send(server.call("DELETE", &format!("/v2/messages/{id}"))).await;
    assert_eq!(status, 200, "{body}");
    server.wait_state(&id, "CANCELED").await;
    server.advance(Duration::from_secs(86_400));
    cb.assert_quiet(1, QUIET).await;
    assert_eq!(rx.count(), 1);
}
