//! The console and the `/__qstash` controls it shares with tests: the page and its assets,
//! the overview counters, the live event stream, "run a schedule now", "deliver a waiting
//! message now" and a schedule's upcoming run times.

use std::time::Duration;

use crate::common::ext::send;
use crate::common::{Receiver, Reply, TestServer};
use serde_json::Value;

async fn overview(server: &TestServer, user: usize) -> Value {
    let (status, json) = server.user(user).get_json("/__qstash/overview").await;
    assert_eq!(status, 200, "{json}");
    json
}

#[tokio::test(flavor = "multi_thread")]
async fn page_assets_and_config_are_served_without_hiding_api_404s() {
    let server = TestServer::start().await;
    for path in ["/", "/console", "/console/"] {
        let resp = server
            .http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(resp.headers().contains_key("content-security-policy"));
        let html = resp.text().await.unwrap();
        assert!(html.contains("assets/app.js"), "{path}: {html}");
    }
    let js = server
        .http
        .get(format!("{}/console/assets/app.js", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    let (status, body) = send(
        server
            .http
            .get(format!("{}/console/assets/nope.js", server.url)),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("nope.js"),
        "{body}"
    );
    let (status, config) = send(
        server
            .http
            .get(format!("{}/console/config.json", server.url)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(config["users"].as_array().unwrap().len(), 4);
    assert_eq!(config["users"][0]["name"], "defaultUser");
    assert_eq!(config["clockControl"], false);
    // The API's answers are unchanged around the console.
    let (status, body) = server.get_json("/v2/nope").await;
    assert_eq!((status.as_u16(), body["error"].is_string()), (404, true));
    let (status, _) = send(server.http.get(format!("{}/__qstash/overview", server.url))).await;
    assert_eq!(status, 401, "the controls need a token");
}

#[tokio::test(flavor = "multi_thread")]
async fn overview_counts_each_users_messages() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.route("/fail", Reply::status(500));
    let ok = server.publish(&format!("{}/ok", rx.url), &[], "a").await;
    server.wait_state(&ok, "DELIVERED").await;
    server.dead_letter(&format!("{}/fail", rx.url), &[]).await;
    server
        .publish(
            &format!("{}/later", rx.url),
            &[("Upstash-Delay", "1h")],
            "b",
        )
        .await;
    let o = overview(&server, 0).await;
    let c = &o["counters"];
    assert_eq!(
        (
            &c["accepted"],
            &c["delivered"],
            &c["failed"],
            &c["deadLettered"],
            &c["attempts"]
        ),
        (
            &Value::from(3),
            &Value::from(1),
            &Value::from(1),
            &Value::from(1),
            &Value::from(2)
        ),
        "{o}"
    );
    assert_eq!(o["messages"]["unfinished"], 1, "{o}");
    assert_eq!(o["messages"]["waiting"], 1, "{o}");
    assert_eq!(o["dlq"], 1, "{o}");
    assert_eq!(o["recent"][0]["minutes"], 1);
    assert_eq!(
        (&o["recent"][0]["delivered"], &o["recent"][0]["failed"]),
        (&Value::from(1), &Value::from(1))
    );
    assert!(o["logSeq"].as_u64().unwrap() >= 7, "{o}");
    // Another user sees none of it.
    let other = overview(&server, 2).await;
    assert_eq!(other["counters"]["accepted"], 0, "{other}");
    assert_eq!(other["user"], "testUser2");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_schedule_now_publishes_without_moving_the_next_tick() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let (status, created) = server
        .post_raw(
            &format!("/v2/schedules/{}/tick", rx.url),
            &[
                ("Upstash-Cron", "0 0 1 1 *"),
                ("Upstash-Schedule-Id", "yearly"),
            ],
            "now please",
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let (_, before) = server.get_json("/v2/schedules/yearly").await;
    let (status, _) = send(server.post("/v2/schedules/yearly/pause")).await;
    assert_eq!(status, 200);
    let (status, ran) = send(server.post("/__qstash/schedules/yearly/run")).await;
    assert_eq!(status, 200, "{ran}");
    let id = ran["messageIds"][0].as_str().unwrap().to_string();
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].header("upstash-schedule-id"), Some("yearly"));
    assert_eq!(&got[0].body[..], b"now please");
    let (_, after) = server.get_json("/v2/schedules/yearly").await;
    assert_eq!(after["nextScheduleTime"], before["nextScheduleTime"]);
    assert!(after["lastScheduleTime"].is_i64(), "{after}");
    assert!(after["lastScheduleStates"][&id].is_string(), "{after}");
    assert_eq!(after["isPaused"], true);
    let (status, body) = send(server.post("/__qstash/schedules/nope/run")).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = send(server.user(1).post("/__qstash/schedules/yearly/run")).await;
    assert_eq!(status, 404, "another user's schedule");
}

#[tokio::test(flavor = "multi_thread")]
async fn deliver_now_hurries_a_delayed_message_and_a_waiting_retry() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let delayed = server
        .publish(&format!("{}/d", rx.url), &[("Upstash-Delay", "2h")], "x")
        .await;
    let (status, body) = send(server.post(&format!("/__qstash/messages/{delayed}/deliver"))).await;
    assert_eq!(status, 200, "{body}");
    server.wait_state(&delayed, "DELIVERED").await;

    rx.script("/r", Reply::status(500));
    let retried = server.publish(&format!("{}/r", rx.url), &[], "y").await;
    server.wait_retries(&retried, 1).await;
    let (status, _) = send(server.post(&format!("/__qstash/messages/{retried}/deliver"))).await;
    assert_eq!(status, 200);
    server.wait_state(&retried, "DELIVERED").await;
    assert_eq!(rx.count(), 3);

    let (status, _) = send(server.post(&format!("/__qstash/messages/{retried}/deliver"))).await;
    assert_eq!(status, 404, "finished");
    let (status, _) = send(server.post("/__qstash/messages/msg_nope/deliver")).await;
    assert_eq!(status, 404);

    rx.route(
        "/slow",
        Reply::status(200).delay(Duration::from_millis(500)),
    );
    let slow = server.publish(&format!("{}/slow", rx.url), &[], "z").await;
    server.wait_state(&slow, "ACTIVE").await;
    let (status, body) = send(server.post(&format!("/__qstash/messages/{slow}/deliver"))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("being delivered"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn upcoming_run_times_in_the_schedules_time_zone() {
    let server = TestServer::start().await;
    let (status, _) = server
        .post_raw(
            "/v2/schedules/http://127.0.0.1:9/x",
            &[
                ("Upstash-Cron", "CRON_TZ=Europe/Berlin 0 9 * * *"),
                ("Upstash-Schedule-Id", "nine"),
            ],
            "",
        )
        .await;
    assert_eq!(status, 200);
    let (status, up) = server
        .get_json("/__qstash/schedules/nine/upcoming?count=3")
        .await;
    assert_eq!(status, 200, "{up}");
    assert_eq!(up["timeZone"], "Europe/Berlin");
    let times: Vec<i64> = up["times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    let (_, s) = server.get_json("/v2/schedules/nine").await;
    assert_eq!(s["nextScheduleTime"].as_i64(), Some(times[0]));
    for pair in times.windows(2) {
        // A day apart, give or take a DST change.
        assert!(
            (pair[1] - pair[0] - 86_400_000).abs() <= 3_600_000,
            "{times:?}"
        );
    }
    let (status, _) = server
        .get_json("/__qstash/schedules/nine/upcoming?count=0")
        .await;
    assert_eq!(status, 400);
    let (status, _) = server.get_json("/__qstash/schedules/nope/upcoming").await;
    assert_eq!(status, 404);
}

/// Reads the stream until an `overview` event satisfying `want` arrives.
async fn next_overview(
    resp: &mut reqwest::Response,
    buf: &mut String,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let json: Value = serde_json::from_str(data).expect("event data is JSON");
                if want(&json) {
                    return json;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("an overview event in time")
            .expect("stream readable")
            .expect("stream still open");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stream_sends_the_overview_when_it_changes() {
    let server = TestServer::start().await;
    let token = qstash::users::USERS[1].token;
    let mut resp = server
        .http
        .get(format!(
            "{}/__qstash/console/stream?qstash_token={token}",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut buf = String::new();
    let first = next_overview(&mut resp, &mut buf, |_| true).await;
    assert_eq!(first["user"], "testUser1");
    assert_eq!(first["counters"]["accepted"], 0);
    server
        .user(1)
        .publish("http://127.0.0.1:9/x", &[("Upstash-Delay", "1h")], "")
        .await;
    let changed = next_overview(&mut resp, &mut buf, |o| o["counters"]["accepted"] == 1).await;
    assert_eq!(changed["messages"]["waiting"], 1);
    // Another user's publish changes nothing of this stream's.
    server
        .publish("http://127.0.0.1:9/x", &[("Upstash-Delay", "1h")], "")
        .await;
    let quiet = tokio::time::timeout(Duration::from_millis(600), resp.chunk()).await;
    assert!(
        quiet.is_err(),
        "no event for another user's change: {quiet:?}"
    );
    let (status, _) = send(
        server
            .http
            .get(format!("{}/__qstash/console/stream", server.url)),
    )
    .await;
    assert_eq!(status, 401);
}
