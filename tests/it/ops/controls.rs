//! The test controls under `/__qstash/`: reset, wait until idle, run a schedule now and
//! deliver a delayed message now.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::ext::send;
use crate::common::{Receiver, Reply, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn idle_waits_for_deliveries_and_their_callbacks_then_answers() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.route(
        "/slow",
        Reply::status(200).delay(Duration::from_millis(400)),
    );
    let cb = format!("{}/callback", rx.url);
    for _ in 0..3 {
        server
            .publish(
                &format!("{}/slow", rx.url),
                &[("Upstash-Callback", &cb)],
                "x",
            )
            .await;
    }
    // Delayed messages are not "due now": they do not keep the user busy.
    server
        .publish(
            &format!("{}/later", rx.url),
            &[("Upstash-Delay", "1h")],
            "x",
        )
        .await;
    let started = Instant::now();
    let (status, body) = send(server.post("/__qstash/idle?timeout=10s")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"idle": true, "due": 0, "inFlight": 0, "gated": 0})
    );
    assert!(started.elapsed() >= Duration::from_millis(400));
    // Three deliveries and their three callbacks, all answered before idle was.
    let got = rx.received();
    assert_eq!(got.iter().filter(|r| r.target == "/slow").count(), 3);
    assert_eq!(got.iter().filter(|r| r.target == "/callback").count(), 3);
    // GET works too, and an idle user answers at once.
    let (status, _) = send(server.get("/__qstash/idle")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_gives_up_after_its_timeout_with_what_is_still_moving() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(200).delay(Duration::from_secs(3)));
    server.publish(&format!("{}/slow", rx.url), &[], "x").await;
    rx.wait_for(1).await;
    let started = Instant::now();
    let (status, body) = send(server.post("/__qstash/idle?timeout=200ms")).await;
    assert_eq!(status, 408, "{body}");
    assert_eq!(body["idle"], false);
    assert_eq!(body["inFlight"], 1);
    assert!(
        body["error"].as_str().unwrap().contains("1 in flight"),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // Another user's work is not this user's.
    let (status, _) = send(server.user(1).post("/__qstash/idle?timeout=1s")).await;
    assert_eq!(status, 200);
    let (status, body) = send(server.post("/__qstash/idle?timeout=forever")).await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = send(server.http.post(format!("{}/__qstash/idle", server.url))).await;
    assert_eq!(status, 401);
}

async fn count(server: &TestServer, user: usize, path: &str, key: &str) -> usize {
    let (status, body) = server.user(user).get_json(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    let list = if key.is_empty() { &body } else { &body[key] };
    list.as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_wipes_one_users_state_or_everyones() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.route("/fail", Reply::status(500));
    let delayed = server
        .publish(
            &format!("{}/later", rx.url),
            &[("Upstash-Delay", "1h")],
            "x",
        )
        .await;
    server.dead_letter(&format!("{}/fail", rx.url), &[]).await;
    let (status, _) = server
        .post_raw(
            &format!("/v2/schedules/{}/tick", rx.url),
            &[("Upstash-Cron", "0 0 1 1 *")],
            "s",
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post_json("/v2/queues", &json!({"queueName": "q", "parallelism": 1}))
        .await;
    assert_eq!(status, 200);
    let other = server
        .user(1)
        .publish(
            &format!("{}/other", rx.url),
            &[("Upstash-Delay", "1h")],
            "x",
        )
        .await;
    assert_eq!(count(&server, 0, "/v2/schedules", "").await, 1);
    assert_eq!(count(&server, 0, "/v2/dlq", "messages").await, 1);

    let (status, body) = send(server.post("/__qstash/reset")).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.get_json(&format!("/v2/messages/{delayed}")).await;
    assert_eq!(status, 404);
    assert_eq!(count(&server, 0, "/v2/schedules", "").await, 0);
    assert_eq!(count(&server, 0, "/v2/dlq", "messages").await, 0);
    assert_eq!(count(&server, 0, "/v2/queues", "").await, 0);
    assert_eq!(count(&server, 0, "/v2/events", "events").await, 0);
    let (_, overview) = server.get_json("/__qstash/overview").await;
    assert_eq!(overview["counters"]["accepted"], 0, "{overview}");
    // The other users keep theirs.
    let (status, _) = server
        .user(1)
        .get_json(&format!("/v2/messages/{other}"))
        .await;
    assert_eq!(status, 200);
    // The server goes on serving the reset user.
    let fresh = server.publish(&format!("{}/again", rx.url), &[], "x").await;
    server.wait_state(&fresh, "DELIVERED").await;

    let (status, _) = send(server.post("/__qstash/reset?all=true")).await;
    assert_eq!(status, 200);
    let (status, _) = server
        .user(1)
        .get_json(&format!("/v2/messages/{other}"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = send(server.post("/__qstash/reset?all=maybe")).await;
    assert_eq!(status, 400);
    let (status, _) = send(server.http.post(format!("{}/__qstash/reset", server.url))).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_a_schedule_now_and_deliver_a_delayed_message_now() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let (status, body) = server
        .post_raw(
            &format!("/v2/schedules/{}/yearly", rx.url),
            &[
                ("Upstash-Cron", "0 0 1 1 *"),
                ("Upstash-Schedule-Id", "yearly"),
            ],
            "tick",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, ran) = send(server.post("/__qstash/schedules/yearly/run")).await;
    assert_eq!(status, 200, "{ran}");
    assert_eq!(ran["messageIds"].as_array().unwrap().len(), 1);
    let delayed = server
        .publish(
            &format!("{}/delayed", rx.url),
            &[("Upstash-Delay", "30d")],
            "d",
        )
        .await;
    let (status, body) = send(server.post(&format!("/__qstash/messages/{delayed}/deliver"))).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = send(server.post("/__qstash/idle")).await;
    assert_eq!(status, 200);
    let targets: Vec<String> = rx.received().into_iter().map(|r| r.target).collect();
    assert!(targets.contains(&"/yearly".to_string()), "{targets:?}");
    assert!(targets.contains(&"/delayed".to_string()), "{targets:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reset_during_an_attempt_drops_its_result_and_keeps_serving() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.route(
        "/slow",
        Reply::status(500).delay(Duration::from_millis(500)),
    );
    let fc = [
        ("Upstash-Flow-Control-Key", "k"),
        ("Upstash-Flow-Control-Value", "parallelism=1"),
    ];
    let slow = server.publish(&format!("{}/slow", rx.url), &fc, "x").await;
    rx.wait_for(1).await;
    let (status, _) = send(server.post("/__qstash/reset")).await;
    assert_eq!(status, 200);
    // The attempt ends after the reset: no retry, no DLQ entry, nothing left in flight.
    let (status, body) = send(server.post("/__qstash/idle?timeout=5s")).await;
    assert_eq!(status, 200, "{body}");
    let (_, overview) = server.get_json("/__qstash/overview").await;
    assert_eq!(overview["messages"]["inFlight"], 0, "{overview}");
    assert_eq!(count(&server, 0, "/v2/dlq", "messages").await, 0);
    let (status, _) = server.get_json(&format!("/v2/messages/{slow}")).await;
    assert_eq!(status, 404);
    // The same key and host go on working.
    let again = server.publish(&format!("{}/fast", rx.url), &fc, "y").await;
    server.wait_state(&again, "DELIVERED").await;
}
