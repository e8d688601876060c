//! Flow control: rate per period and parallelism per key, measured at the receiver; the key
//! state API (get/list, pause/resume, pin/unpin, resetRate), global parallelism, validation.

use std::time::Duration;

use crate::common::ext::{eventually, send};
use crate::common::{Receiver, Reply, TestServer};
use serde_json::Value;

const QUIET: Duration = Duration::from_millis(150);

fn fc<'a>(key: &'a str, value: &'a str) -> [(&'a str, &'a str); 2] {
    [
        ("Upstash-Flow-Control-Key", key),
        ("Upstash-Flow-Control-Value", value),
    ]
}

async fn key_state(server: &TestServer, key: &str) -> Value {
    let (status, state) = server.get_json(&format!("/v2/flowControl/{key}")).await;
    assert_eq!(status, 200, "{key}: {state}");
    state
}

/// Moves a paused clock to the next whole second, so windows start on a second boundary.
fn align(server: &TestServer) {
    let rem = server.clock.now_ms().rem_euclid(1000);
    if rem != 0 {
        server.advance(Duration::from_millis((1000 - rem) as u64));
    }
}

/// The largest number of requests in flight at once, given each was held for `hold`.
fn max_in_flight(got: &[crate::common::Received], hold: Duration) -> usize {
    got.iter()
        .map(|r| {
            got.iter()
                .filter(|o| o.at <= r.at && r.at < o.at + hold - Duration::from_millis(20))
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_allows_that_many_starts_per_period() {
    let server = TestServer::start().await;
    server.clock.pause();
    align(&server);
    let rx = Receiver::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            server
                .publish(
                    &format!("{}/m{i}", rx.url),
                    &fc("k-rate", "rate=2, period=10s"),
                    "x",
                )
                .await,
        );
    }
    let got = rx.wait_for(2).await;
    rx.assert_quiet(2, QUIET).await;
    let mut first: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    first.sort();
    assert_eq!(first, ["/m0", "/m1"], "the oldest two go first");
    let state = key_state(&server, "k-rate").await;
    assert_eq!(state["rateMax"], 2, "{state}");
    assert_eq!(state["ratePeriod"], 10, "{state}");
    assert_eq!(state["rateCount"], 2, "{state}");
    assert_eq!(state["waitListSize"], 3, "{state}");
    assert_eq!(
        state["ratePeriodStart"].as_i64().unwrap(),
        server.clock.now_ms() / 1000,
        "unix seconds: {state}"
    );

    server.advance(Duration::from_millis(9_999));
    rx.assert_quiet(2, QUIET).await;
    server.advance(Duration::from_millis(1));
    let got = rx.wait_for(4).await;
    rx.assert_quiet(4, QUIET).await;
    let mut second: Vec<&str> = got[2..].iter().map(|r| r.target.as_str()).collect();
    second.sort();
    assert_eq!(second, ["/m2", "/m3"]);
    server.advance(Duration::from_secs(10));
    let got = rx.wait_for(5).await;
    assert_eq!(got[4].target, "/m4");
    assert!(got.iter().all(|r| r.signature_error.is_none()));
    for id in &ids {
        server.wait_state(id, "DELIVERED").await;
    }
    let state = key_state(&server, "k-rate").await;
    assert_eq!(state["waitListSize"], 0, "{state}");
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_count_against_the_rate() {
    let server = TestServer::start().await;
    server.clock.pause();
    align(&server);
    let rx = Receiver::start().await;
    rx.script("/a", Reply::status(500).header("Retry-After", "0"));
    let a = server
        .publish(
            &format!("{}/a", rx.url),
            &fc("k-retry", "rate=2, period=1m"),
            "x",
        )
        .await;
    // Attempt 1 of /a fails, its immediate retry is the second start of the window.
    server.wait_retries(&a, 1).await;
    server.wait_state(&a, "DELIVERED").await;
    let b = server
        .publish(
            &format!("{}/b", rx.url),
            &fc("k-retry", "rate=2, period=1m"),
            "x",
        )
        .await;
    rx.assert_quiet(2, QUIET).await;
    assert_eq!(server.states(&b).await, ["CREATED"]);
    server.advance(Duration::from_secs(60));
    server.wait_state(&b, "DELIVERED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn parallelism_caps_deliveries_in_flight() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let hold = Duration::from_millis(400);
    rx.set_default(Reply::status(200).delay(hold));
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            server
                .publish(
                    &format!("{}/m{i}", rx.url),
                    &fc("k-par", "parallelism=2"),
                    "x",
                )
                .await,
        );
    }
    rx.wait_for(2).await;
    let state = key_state(&server, "k-par").await;
    assert_eq!(state["parallelismMax"], 2, "{state}");
    assert_eq!(state["parallelismCount"], 2, "{state}");
    assert_eq!(state["waitListSize"], 4, "{state}");
    assert_eq!(state["rateMax"], 0, "no rate configured: {state}");
    let got = rx.wait_for(6).await;
    assert_eq!(max_in_flight(&got, hold), 2, "two at a time, never more");
    for id in &ids {
        server.wait_state(id, "DELIVERED").await;
    }
    eventually("parallelismCount back to 0", || async {
        (key_state(&server, "k-par").await["parallelismCount"] == 0).then_some(())
    })
    .await;
    // The limit is per key, not per URL: another key is not held back.
    let other = Receiver::start().await;
    other.set_default(Reply::status(200).delay(hold));
    for i in 0..3 {
        server
            .publish(
                &format!("{}/o{i}", other.url),
                &fc(&format!("k-other-{i}"), "parallelism=1"),
                "x",
            )
            .await;
    }
    let got = other.wait_for(3).await;
    assert_eq!(max_in_flight(&got, hold), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn key_state_exists_right_after_publishing_with_every_field() {
    let server = TestServer::start().await;
    let id = server
        .publish(
            "http://127.0.0.1:1/later",
            &[
                ("Upstash-Delay", "1h"),
                ("Upstash-Flow-Control-Key", "k-get"),
                (
                    "Upstash-Flow-Control-Value",
                    "parallelism=3, rate=5, period=1m",
                ),
            ],
            "x",
        )
        .await;
    let state = key_state(&server, "k-get").await;
    assert_eq!(state["flowControlKey"], "k-get");
    for field in [
        "waitListSize",
        "parallelismMax",
        "parallelismCount",
        "rateMax",
        "rateCount",
        "ratePeriod",
        "ratePeriodStart",
    ] {
        assert!(state[field].is_number(), "{field}: {state}");
    }
    for field in ["isPinnedParallelism", "isPinnedRate", "isPaused"] {
        assert_eq!(state[field], false, "{field}: {state}");
    }
    assert_eq!(state["parallelismMax"], 3);
    assert_eq!(state["rateMax"], 5);
    assert_eq!(state["ratePeriod"], 60);
    assert_eq!(state["parallelismCount"], 0);
    assert_eq!(state["rateCount"], 0);
    assert_eq!(
        state["waitListSize"], 0,
        "a message that is not due yet is not waiting"
    );

    let (_, msg) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(msg["flowControlKey"], "k-get");
    assert_eq!(msg["parallelism"], 3);
    assert_eq!(msg["rate"], 5);
    assert_eq!(msg["period"], 60);
    let rate_only = server
        .publish(
            "http://127.0.0.1:1/later",
            &[
                ("Upstash-Delay", "1h"),
                ("Upstash-Flow-Control-Key", "k-rate-only"),
                ("Upstash-Flow-Control-Value", "rate=1"),
            ],
            "x",
        )
        .await;
    let (_, msg) = server.get_json(&format!("/v2/messages/{rate_only}")).await;
    assert!(msg.get("parallelism").is_none(), "{msg}");
    assert_eq!(msg["rate"], 1);
    assert_eq!(msg["period"], 1, "default period");
    for (value, period) in [
        ("rate=23, period=1h30m3s", 5403),
        ("parallelism=5,period=1d", 86400),
        ("rate=2,period=90", 90),
    ] {
        let id = server
            .publish(
                "http://127.0.0.1:1/later",
                &[
                    ("Upstash-Delay", "1h"),
                    ("Upstash-Flow-Control-Key", "k-periods"),
                    ("Upstash-Flow-Control-Value", value),
                ],
                "x",
            )
            .await;
        let (_, msg) = server.get_json(&format!("/v2/messages/{id}")).await;
        assert_eq!(msg["period"], period, "{value}: {msg}");
    }

    let (status, list) = server.get_json("/v2/flowControl").await;
    assert_eq!(status, 200);
    let mut keys: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["flowControlKey"].as_str().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["k-get", "k-periods", "k-rate-only"]);
    let (status, _) = server.get_json("/v2/flowControl/never-used").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_key_holds_deliveries_and_resume_releases_them_in_order() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(200).delay(Duration::from_millis(30)));
    let (status, _) = send(server.call("POST", "/v2/flowControl/k-pause/pause")).await;
    assert_eq!(status, 200, "pausing a key that was never used");
    let state = key_state(&server, "k-pause").await;
    assert_eq!(state["isPaused"], true);
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            server
                .publish(
                    &format!("{}/m{i}", rx.url),
                    &fc("k-pause", "parallelism=1"),
                    "x",
                )
                .await,
        );
        let state = key_state(&server, "k-pause").await;
        assert_eq!(state["waitListSize"], i + 1, "{state}");
    }
    rx.assert_quiet(0, Duration::from_millis(200)).await;
    assert_eq!(server.states(&ids[0]).await, ["CREATED"]);
    let (status, _) = send(server.call("POST", "/v2/flowControl/k-pause/resume")).await;
    assert_eq!(status, 200);
    let got = rx.wait_for(3).await;
    let targets: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["/m0", "/m1", "/m2"]);
    let state = key_state(&server, "k-pause").await;
    assert_eq!(state["isPaused"], false);
    for id in &ids {
        server.wait_state(id, "DELIVERED").await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pin_unpin_and_reset_rate() {
    let server = TestServer::start().await;
    server.clock.pause();
    align(&server);
    let rx = Receiver::start().await;
    server
        .publish(
            "http://127.0.0.1:1/later",
            &[
                ("Upstash-Delay", "1h"),
                ("Upstash-Flow-Control-Key", "k-pin"),
                ("Upstash-Flow-Control-Value", "rate=1"),
            ],
            "x",
        )
        .await;
    let (status, body) = send(server.call(
        "POST",
        "/v2/flowControl/k-pin/pin?parallelism=3&rate=20&period=120",
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let state = key_state(&server, "k-pin").await;
    assert_eq!(state["parallelismMax"], 3, "{state}");
    assert_eq!(state["rateMax"], 20, "{state}");
    assert_eq!(state["ratePeriod"], 120, "{state}");
    assert_eq!(state["isPinnedParallelism"], true);
    assert_eq!(state["isPinnedRate"], true);
    let (status, _) =
        send(server.call("POST", "/v2/flowControl/k-pin/unpin?parallelism=true")).await;
    assert_eq!(status, 200);
    let state = key_state(&server, "k-pin").await;
    assert_eq!(state["isPinnedParallelism"], false, "{state}");
    assert_eq!(state["isPinnedRate"], true, "{state}");
    assert_eq!(
        state["parallelismMax"], 3,
        "values stay after unpinning: {state}"
    );
    assert_eq!(state["rateMax"], 20);
    send(server.call(
        "POST",
        "/v2/flowControl/k-pin/unpin?rate=true&parallelism=false",
    ))
    .await;
    let state = key_state(&server, "k-pin").await;
    assert_eq!(state["isPinnedRate"], false, "{state}");

    for bad in [
        "pin",
        "pin?rate=0",
        "pin?parallelism=-1",
        "pin?period=0",
        "pin?rate=abc",
    ] {
        let (status, body) =
            send(server.call("POST", &format!("/v2/flowControl/k-pin/{bad}"))).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // A pinned rate overrides what messages ask for.
    send(server.call("POST", "/v2/flowControl/k-pinned/pause")).await;
    send(server.call("POST", "/v2/flowControl/k-pinned/pin?rate=1&period=3600")).await;
    send(server.call("POST", "/v2/flowControl/k-pinned/resume")).await;
    for i in 0..3 {
        server
            .publish(
                &format!("{}/p{i}", rx.url),
                &fc("k-pinned", "rate=100"),
                "x",
            )
            .await;
    }
    rx.wait_for(1).await;
    rx.assert_quiet(1, QUIET).await;
    let state = key_state(&server, "k-pinned").await;
    assert_eq!(state["rateMax"], 1, "{state}");
    assert_eq!(state["rateCount"], 1, "{state}");
    assert_eq!(state["waitListSize"], 2, "{state}");

    // resetRate: a fresh window starts now and lets the next one through.
    server.advance(Duration::from_secs(10));
    let (status, _) = send(server.call("POST", "/v2/flowControl/k-pinned/resetRate")).await;
    assert_eq!(status, 200);
    rx.wait_for(2).await;
    rx.assert_quiet(2, QUIET).await;
    let state = key_state(&server, "k-pinned").await;
    assert_eq!(
        state["ratePeriodStart"].as_i64().unwrap(),
        server.clock.now_ms() / 1000,
        "{state}"
    );
    assert_eq!(
        state["rateCount"], 1,
        "the released message counts in the new window: {state}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn global_parallelism_counts_the_users_deliveries_in_flight() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let (status, g) = server.get_json("/v2/globalParallelism").await;
    assert_eq!(status, 200);
    assert_eq!(g["parallelismMax"], 100, "payg quota: {g}");
    assert_eq!(g["parallelismCount"], 0);
    rx.set_default(Reply::status(200).delay(Duration::from_millis(800)));
    for i in 0..3 {
        server.publish(&format!("{}/g{i}", rx.url), &[], "x").await;
    }
    rx.wait_for(3).await;
    let (_, g) = server.get_json("/v2/globalParallelism").await;
    assert_eq!(g["parallelismCount"], 3, "{g}");
    eventually("all answered", || async {
        let (_, g) = server.get_json("/v2/globalParallelism").await;
        (g["parallelismCount"] == 0).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_flow_control_headers_are_rejected() {
    let server = TestServer::start().await;
    let dest = "/v2/publish/http://127.0.0.1:1/x";
    for value in [
        "rate=0",
        "parallelism=0",
        "rate=1, period=8d",
        "rate=1, period=0s",
        "burst=1",
        "rate=1, burst=2",
        "rate=abc",
        "period=10s",
        "",
        "rate",
    ] {
        let (status, body) = server.post_raw(dest, &fc("k-bad", value), "x").await;
        assert_eq!(status, 400, "{value:?}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or("")
                .contains("Flow-Control"),
            "{value:?}: {body}"
        );
    }
    let (status, body) = server
        .post_raw(dest, &[("Upstash-Flow-Control-Key", "k-bad")], "x")
        .await;
    assert_eq!(status, 400, "key without value: {body}");
    let (status, body) = server
        .post_raw(dest, &[("Upstash-Flow-Control-Value", "rate=1")], "x")
        .await;
    assert_eq!(status, 400, "value without key: {body}");
    let (status, body) = server
        .post_raw(dest, &fc("k-ok", "rate=1, period=7d"), "x")
        .await;
    assert_eq!(status, 200, "a week is the maximum period: {body}");
    let (status, _) = server.get_json("/v2/flowControl/k-bad").await;
    assert_eq!(status, 404, "rejected publishes create no key");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_creates_its_key_and_its_messages_are_gated() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let (status, resp) = server
        .post_raw(
            &format!("/v2/schedules/{}/s", rx.url),
            &[
                ("Upstash-Cron", "* * * * *"),
                ("Upstash-Flow-Control-Key", "k-sched"),
                ("Upstash-Flow-Control-Value", "rate=1, period=1h"),
            ],
            "",
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let state = key_state(&server, "k-sched").await;
    assert_eq!(state["rateMax"], 1, "{state}");
    assert_eq!(state["ratePeriod"], 3600, "{state}");
    let (_, schedule) = server
        .get_json(&format!(
            "/v2/schedules/{}",
            resp["scheduleId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(schedule["flowControlKey"], "k-sched", "{schedule}");
    assert_eq!(schedule["rate"], 1);
    assert_eq!(schedule["period"], 3600);
    // Two ticks, one start per hour.
    let minute = 60_000;
    let next = (server.clock.now_ms() / minute + 1) * minute;
    server.advance(Duration::from_millis((next - server.clock.now_ms()) as u64));
    rx.wait_for(1).await;
    server.advance(Duration::from_secs(60));
    eventually("the second tick waits", || async {
        (key_state(&server, "k-sched").await["waitListSize"] == 1).then_some(())
    })
    .await;
    rx.assert_quiet(1, QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_highest_pending_limits_win_until_older_messages_are_done() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let publish = |value: &'static str, delay: &'static str| {
        let server = &server;
        let url = format!("{}/m", rx.url);
        async move {
            server
                .publish(
                    &url,
                    &[
                        ("Upstash-Delay", delay),
                        ("Upstash-Flow-Control-Key", "k-mixed"),
                        ("Upstash-Flow-Control-Value", value),
                    ],
                    "x",
                )
                .await
        }
    };
    let old = publish("parallelism=3, rate=10, period=1m", "1h").await;
    let new = publish("parallelism=1, rate=2, period=1m", "2h").await;
    let state = key_state(&server, "k-mixed").await;
    assert_eq!(
        state["parallelismMax"], 3,
        "older pending message still asks for 3: {state}"
    );
    assert_eq!(state["rateMax"], 10, "{state}");
    assert_eq!(state["ratePeriod"], 60, "{state}");
    server.advance(Duration::from_secs(3600));
    server.wait_state(&old, "DELIVERED").await;
    let state = key_state(&server, "k-mixed").await;
    assert_eq!(
        state["parallelismMax"], 1,
        "once the old one is done: {state}"
    );
    assert_eq!(state["rateMax"], 2, "{state}");
    server.advance(Duration::from_secs(3600));
    server.wait_state(&new, "DELIVERED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_message_queues_behind_those_already_waiting_on_the_key() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let fc = [
        ("Upstash-Flow-Control-Key", "fifo"),
        ("Upstash-Flow-Control-Value", "rate=1, period=10s"),
    ];
    for i in 0..3 {
        server.publish(&format!("{}/m{i}", rx.url), &fc, "x").await;
    }
    rx.wait_for(1).await;
    for n in 2..=3 {
        server.advance(Duration::from_secs(10));
        rx.wait_for(n).await;
    }
    let got = rx.wait_for(3).await;
    let order: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(order, ["/m0", "/m1", "/m2"], "released in publish order");
}

#[tokio::test(flavor = "multi_thread")]
async fn pinning_only_a_period_does_not_stop_the_key() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let fc = [
        ("Upstash-Flow-Control-Key", "period-only"),
        ("Upstash-Flow-Control-Value", "parallelism=5"),
    ];
    server.publish(&format!("{}/first", rx.url), &fc, "x").await;
    rx.wait_for(1).await;
    let (status, _) = send(server.post("/v2/flowControl/period-only/pin?period=60")).await;
    assert_eq!(status, 200);
    let (_, key) = server.get_json("/v2/flowControl/period-only").await;
    assert_eq!(key["isPinnedRate"], true);
    assert_eq!(key["ratePeriod"], 60);
    assert_eq!(key["rateMax"], 0, "no rate: unlimited");
    let id = server
        .publish(&format!("{}/second", rx.url), &fc, "x")
        .await;
    server.wait_state(&id, "DELIVERED").await;
}
