//! Delays, retries, backoff, Retry-After and the DLQ, on the controlled clock: nothing here
//! waits for a real backoff.

use std::time::Duration;

use crate::common::{Receiver, Reply, TestServer};

const QUIET: Duration = Duration::from_millis(150);

#[tokio::test(flavor = "multi_thread")]
async fn delay_and_not_before_wait_for_the_clock() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let delayed = server
        .publish(&format!("{}/d", rx.url), &[("Upstash-Delay", "1h")], "a")
        .await;
    let at = server.clock.now_ms() / 1000 + 7200;
    let not_before = server
        .publish(
            &format!("{}/n", rx.url),
            &[
                ("Upstash-Not-Before", &at.to_string()),
                ("Upstash-Delay", "1s"),
            ],
            "b",
        )
        .await;
    let (_, msg) = server.get_json(&format!("/v2/messages/{delayed}")).await;
    assert!(msg["notBefore"].as_i64().unwrap() >= msg["createdAt"].as_i64().unwrap() + 3_600_000);
    rx.assert_quiet(0, QUIET).await;
    server.advance(Duration::from_secs(3599));
    rx.assert_quiet(0, QUIET).await;
    server.advance(Duration::from_secs(2));
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].target, "/d");
    server.advance(Duration::from_secs(3600));
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].target, "/n", "Not-Before wins over Delay");
    server.wait_state(&delayed, "DELIVERED").await;
    server.wait_state(&not_before, "DELIVERED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn default_backoff_is_12s_then_2m28s() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script("/r", Reply::status(500));
    rx.script("/r", Reply::status(502));
    let id = server.publish(&format!("{}/r", rx.url), &[], "x").await;
    // The retry is planned when the answer is processed: wait for it before moving time.
    server.wait_state(&id, "RETRY").await;
    server.advance(Duration::from_secs(11));
    rx.assert_quiet(1, QUIET).await;
    server.advance(Duration::from_secs(1));
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].header("upstash-retried"), Some("1"));
    assert_eq!(got[1].signature_error, None);
    server.wait_retries(&id, 2).await;
    server.advance(Duration::from_secs(147));
    rx.assert_quiet(2, QUIET).await;
    server.advance(Duration::from_secs(1));
    let got = rx.wait_for(3).await;
    assert_eq!(got[2].header("upstash-retried"), Some("2"));
    let states = server.wait_state(&id, "DELIVERED").await;
    assert_eq!(
        states,
        [
            "CREATED",
            "ACTIVE",
            "ERROR",
            "RETRY",
            "ACTIVE",
            "ERROR",
            "RETRY",
            "ACTIVE",
            "DELIVERED"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_after_and_rate_limit_headers_set_the_next_attempt() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script("/a", Reply::status(429).header("Retry-After", "30"));
    rx.script("/a", Reply::status(429).header("X-RateLimit-Reset", "6m5s"));
    rx.script("/a", Reply::status(503).header("Retry-After", "0"));
    let id = server.publish(&format!("{}/a", rx.url), &[], "x").await;
    server.wait_retries(&id, 1).await;
    server.advance(Duration::from_secs(29));
    rx.assert_quiet(1, QUIET).await;
    server.advance(Duration::from_secs(1));
    server.wait_retries(&id, 2).await;
    server.advance(Duration::from_secs(364));
    rx.assert_quiet(2, QUIET).await;
    server.advance(Duration::from_secs(1));
    rx.wait_for(3).await;
    // Retry-After: 0 retries at once, and still consumes a retry.
    let got = rx.wait_for(4).await;
    assert_eq!(got[3].header("upstash-retried"), Some("3"));
    server.wait_state(&id, "DELIVERED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_retry_delay_expression_in_milliseconds() {
    let server = TestServer::start().await;
    // Frozen time: only `advance` moves it, so millisecond boundaries are exact.
    server.clock.pause();
    let rx = Receiver::start().await;
    rx.script("/e", Reply::status(500));
    rx.script("/e", Reply::status(500));
    let id = server
        .publish(
            &format!("{}/e", rx.url),
            &[("Upstash-Retry-Delay", "pow(2, retried) * 10000")],
            "x",
        )
        .await;
    server.wait_retries(&id, 1).await;
    server.advance(Duration::from_millis(9_900));
    rx.assert_quiet(1, QUIET).await;
    server.advance(Duration::from_millis(100));
    server.wait_retries(&id, 2).await;
    server.advance(Duration::from_millis(19_900));
    rx.assert_quiet(2, QUIET).await;
    server.advance(Duration::from_millis(100));
    rx.wait_for(3).await;
    server.wait_state(&id, "DELIVERED").await;
    let (_, logs) = server
        .get_json(&format!("/v2/events?messageId={id}&state=ERROR"))
        .await;
    let entry = &logs["events"][0];
    assert_eq!(entry["retryDelayExpression"], "pow(2, retried) * 10000");
    assert_eq!(entry["responseStatus"], 500);
    assert!(entry["nextDeliveryTime"].is_i64());
}

#[tokio::test(flavor = "multi_thread")]
async fn exhausted_retries_end_in_the_dlq_with_the_last_response() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500).header("X-Why", "broken").body("boom"));
    let id = server
        .publish(
            &format!("{}/fail?q=1", rx.url),
            &[("Upstash-Retries", "2")],
            "payload",
        )
        .await;
    server.wait_retries(&id, 1).await;
    server.advance(Duration::from_secs(12));
    server.wait_retries(&id, 2).await;
    server.advance(Duration::from_secs(148));
    let got = rx.wait_for(3).await;
    assert!(got.iter().all(|r| r.signature_error.is_none()));
    let states = server.wait_state(&id, "FAILED").await;
    assert_eq!(
        states,
        [
            "CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR",
            "FAILED"
        ]
    );
    server.advance(Duration::from_secs(86_400));
    rx.assert_quiet(3, QUIET).await;
    let (_, dlq) = server.get_json("/v2/dlq").await;
    let messages = dlq["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m["messageId"], id.as_str());
    assert_eq!(m["url"], format!("{}/fail?q=1", rx.url));
    assert_eq!(m["body"], "payload");
    assert_eq!(m["maxRetries"], 2);
    assert_eq!(m["responseStatus"], 500);
    assert_eq!(m["responseBody"], "boom");
    assert_eq!(m["responseHeader"]["X-Why"][0], "broken");
    assert!(dlq.get("cursor").is_none(), "no cursor on the last page");
    let dlq_id = m["dlqId"].as_str().unwrap();
    let (status, one) = server.get_json(&format!("/v2/dlq/{dlq_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(one["messageId"], id.as_str());
    let (_, failed) = server
        .get_json(&format!("/v2/events?messageId={id}&state=FAILED"))
        .await;
    assert!(
        failed["events"][0]["error"]
            .as_str()
            .unwrap()
            .contains("500")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn non_retryable_489_fails_at_once() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script(
        "/nr",
        Reply::status(489)
            .header("Upstash-NonRetryable-Error", "true")
            .body("bad payload"),
    );
    let id = server
        .publish(&format!("{}/nr", rx.url), &[("Upstash-Retries", "5")], "x")
        .await;
    let states = server.wait_state(&id, "FAILED").await;
    assert_eq!(states, ["CREATED", "ACTIVE", "ERROR", "FAILED"]);
    server.advance(Duration::from_secs(86_400));
    rx.assert_quiet(1, QUIET).await;
    let (_, dlq) = server.get_json("/v2/dlq").await;
    assert_eq!(dlq["messages"][0]["responseStatus"], 489);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeouts_and_refused_connections_are_failures_without_a_status() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(200).delay(Duration::from_secs(5)));
    let slow = server
        .publish(
            &format!("{}/slow", rx.url),
            &[("Upstash-Timeout", "1s"), ("Upstash-Retries", "0")],
            "x",
        )
        .await;
    // Port 9 (discard) is closed on test machines: connection refused.
    let refused = server
        .publish(
            "http://127.0.0.1:9/nothing",
            &[("Upstash-Retries", "0")],
            "x",
        )
        .await;
    server.wait_state(&slow, "FAILED").await;
    server.wait_state(&refused, "FAILED").await;
    let (_, dlq) = server.get_json("/v2/dlq").await;
    let entries = dlq["messages"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for e in entries {
        assert_eq!(e["responseStatus"], 0, "{e}");
    }
    let (_, errors) = server
        .get_json(&format!("/v2/events?messageId={slow}&state=ERROR"))
        .await;
    assert!(
        errors["events"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timeout"),
        "{errors}"
    );
}
