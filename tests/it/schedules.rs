//! Schedules on the controlled clock: create/get/list shapes, ticks, time zones across a DST
//! change, overwrite by id, delete, pause/resume, URL-group and queue destinations, validation.

use std::time::Duration;

use crate::common::ext::{eventually, send};
use crate::common::{Receiver, Reply, TestServer};
use base64::Engine;
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc, Weekday};
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(150);
const MINUTE: i64 = 60_000;

async fn create(
    server: &TestServer,
    dest: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    server
        .post_raw(&format!("/v2/schedules/{dest}"), headers, body)
        .await
}

async fn create_ok(
    server: &TestServer,
    dest: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let (status, resp) = create(server, dest, headers, body).await;
    assert_eq!(status, 200, "{resp}");
    resp["scheduleId"].as_str().expect("scheduleId").to_string()
}

async fn schedule(server: &TestServer, id: &str) -> Value {
    let (status, s) = server.get_json(&format!("/v2/schedules/{id}")).await;
    assert_eq!(status, 200, "{id}: {s}");
    s
}

/// Pauses the clock at hh:mm:30.000 so the next minute boundary is 30 s away.
fn freeze_mid_minute(server: &TestServer) {
    server.clock.pause();
    let rem = server.clock.now_ms().rem_euclid(MINUTE);
    server.advance(Duration::from_millis(
        ((MINUTE + 30_000 - rem) % MINUTE) as u64,
    ));
    assert_eq!(server.clock.now_ms().rem_euclid(MINUTE), 30_000);
}

/// Advances the (paused) clock to exactly `at_ms`.
fn advance_to(server: &TestServer, at_ms: i64) {
    let now = server.clock.now_ms();
    assert!(at_ms >= now, "cannot go back from {now} to {at_ms}");
    server.advance(Duration::from_millis((at_ms - now) as u64));
}

fn next_minute(ms: i64) -> i64 {
    (ms / MINUTE + 1) * MINUTE
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_are_created_and_described_with_every_field() {
    let server = TestServer::start().await;
    freeze_mid_minute(&server);
    let now = server.clock.now_ms();
    let dest = "https://example.com/sched?x=1";
    let id = create_ok(
        &server,
        dest,
        &[
            ("Upstash-Cron", "*/5 * * * * "),
            ("Content-Type", "application/json"),
            ("Upstash-Forward-Test-Header", "test-value"),
            ("upstash-forward-bypass-tunnel-reminder", "client-test"),
            ("Upstash-Method", "PUT"),
            ("Upstash-Retries", "2"),
            ("Upstash-Retry-Delay", "1000 * retried"),
            ("Upstash-Delay", "10s"),
            ("Upstash-Timeout", "30s"),
            ("Upstash-Callback", "https://example.com/cb"),
            ("Upstash-Failure-Callback", "https://example.com/fcb"),
            ("Upstash-Label", "nightly"),
        ],
        r#"{"a":1}"#,
    )
    .await;
    assert!(id.starts_with("scd_"), "{id}");
    let s = schedule(&server, &id).await;
    assert_eq!(s["scheduleId"], id.as_str());
    assert_eq!(s["cron"], "*/5 * * * *", "trimmed");
    assert_eq!(s["destination"], dest);
    let created = s["createdAt"].as_i64().expect("createdAt ms");
    assert_eq!(created, now);
    assert_eq!(s["method"], "PUT");
    assert_eq!(
        s["header"],
        json!({"Bypass-Tunnel-Reminder": ["client-test"], "Content-Type": ["application/json"], "Test-Header": ["test-value"]})
    );
    assert_eq!(s["body"], r#"{"a":1}"#);
    assert_eq!(s["retries"], 2);
    assert_eq!(s["retryDelayExpression"], "1000 * retried");
    assert_eq!(s["delay"], 10);
    assert_eq!(s["timeout"], 30);
    assert_eq!(s["callback"], "https://example.com/cb");
    assert_eq!(s["failureCallback"], "https://example.com/fcb");
    assert_eq!(s["callerIP"], "127.0.0.1");
    assert_eq!(s["callerIp"], "127.0.0.1");
    assert_eq!(s["isPaused"], false);
    assert_eq!(s["label"], "nightly");
    let five = 5 * MINUTE;
    assert_eq!(
        s["nextScheduleTime"].as_i64().unwrap(),
        (now / five + 1) * five,
        "next multiple of 5 minutes: {s}"
    );
    assert!(s.get("lastScheduleTime").is_none(), "{s}");
    assert!(s.get("queueName").is_none());

    // Defaults.
    let plain = create_ok(
        &server,
        "https://example.com/plain",
        &[("Upstash-Cron", "0 0 * * *")],
        "",
    )
    .await;
    let p = schedule(&server, &plain).await;
    assert_eq!(p["method"], "POST");
    assert_eq!(p["retries"], 3);
    assert!(
        p.get("body").is_none() && p.get("bodyBase64").is_none(),
        "{p}"
    );
    assert_eq!(p["isPaused"], false);
    assert_eq!(
        p["nextScheduleTime"].as_i64().unwrap(),
        (now / 86_400_000 + 1) * 86_400_000
    );

    let (status, list) = server.get_json("/v2/schedules").await;
    assert_eq!(status, 200);
    let mut ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["scheduleId"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected = vec![id.as_str(), plain.as_str()];
    expected.sort();
    assert_eq!(ids, expected);
    let (status, _) = server.get_json("/v2/schedules/scd_unknown").await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_tick_produces_one_signed_delivery_and_updates_the_schedule() {
    let server = TestServer::start().await;
    freeze_mid_minute(&server);
    let rx = Receiver::start().await;
    let cb = Receiver::start().await;
    let dest = format!("{}/tick", rx.url);
    let id = create_ok(
        &server,
        &dest,
        &[
            ("Upstash-Cron", "* * * * *"),
            ("Upstash-Retries", "0"),
            ("Upstash-Forward-X-S", "s"),
            ("Upstash-Callback", &format!("{}/cb", cb.url)),
        ],
        "tick-body",
    )
    .await;
    let fire = next_minute(server.clock.now_ms());
    assert_eq!(schedule(&server, &id).await["nextScheduleTime"], fire);
    advance_to(&server, fire - 1);
    rx.assert_quiet(0, QUIET).await;
    server.advance(Duration::from_millis(1));
    let got = rx.wait_for(1).await;
    rx.assert_quiet(1, QUIET).await;
    let r = &got[0];
    assert_eq!(r.signature_error, None);
    assert_eq!(r.target, "/tick");
    assert_eq!(r.header("upstash-schedule-id"), Some(id.as_str()));
    assert_eq!(r.header("x-s"), Some("s"));
    assert_eq!(&r.body[..], b"tick-body");
    let msg_id = r.header("upstash-message-id").unwrap().to_string();
    server.wait_state(&msg_id, "DELIVERED").await;
    for e in server.log_entries(&format!("messageId={msg_id}")).await {
        assert_eq!(e["scheduleId"], id.as_str(), "{e}");
    }
    assert_eq!(
        server
            .log_entries(&format!("scheduleId={id}&state=DELIVERED"))
            .await
            .len(),
        1
    );
    let s = eventually("lastScheduleStates SUCCESS", || async {
        let s = schedule(&server, &id).await;
        (s["lastScheduleStates"][&msg_id] == "SUCCESS").then_some(s)
    })
    .await;
    assert_eq!(s["lastScheduleTime"], fire, "{s}");
    assert_eq!(s["nextScheduleTime"], fire + MINUTE, "{s}");
    assert_eq!(s["lastScheduleStates"].as_object().unwrap().len(), 1, "{s}");
    let got = cb.wait_for(1).await;
    let body = got[0].json();
    assert_eq!(
        body["scheduleId"],
        id.as_str(),
        "callback of a scheduled message: {body}"
    );
    assert_eq!(body["sourceMessageId"], msg_id.as_str());

    // While the next tick is being delivered its state is IN_PROGRESS.
    rx.script(
        "/tick",
        Reply::status(200).delay(Duration::from_millis(600)),
    );
    server.advance(Duration::from_secs(60));
    let got = rx.wait_for(2).await;
    let slow = got[1].header("upstash-message-id").unwrap().to_string();
    let s = schedule(&server, &id).await;
    assert_eq!(s["lastScheduleStates"][&slow], "IN_PROGRESS", "{s}");
    server.wait_state(&slow, "DELIVERED").await;
    cb.wait_for(2).await;

    // The next tick fails (no retries): FAIL.
    rx.script("/tick", Reply::status(500));
    server.advance(Duration::from_secs(60));
    let got = rx.wait_for(3).await;
    let second = got[2].header("upstash-message-id").unwrap().to_string();
    assert_ne!(second, msg_id);
    server.wait_state(&second, "FAILED").await;
    let s = eventually("lastScheduleStates FAIL", || async {
        let s = schedule(&server, &id).await;
        (s["lastScheduleStates"][&second] == "FAIL").then_some(s)
    })
    .await;
    assert_eq!(s["lastScheduleTime"], fire + 2 * MINUTE);
    assert!(
        s["lastScheduleStates"].get(&msg_id).is_none(),
        "only the last trigger: {s}"
    );
    rx.assert_quiet(3, QUIET).await;
}

/// The first day after `from` on which 04:00 in New York is not 24 h after 04:00 the day
/// before, and the UTC ms of 04:00 New York time on that day and the two around it.
fn new_york_dst_change(from_ms: i64) -> (i64, i64, i64) {
    let ny = chrono_tz::America::New_York;
    let at4 = |d: NaiveDate| {
        ny.from_local_datetime(&d.and_hms_opt(4, 0, 0).unwrap())
            .single()
            .unwrap()
            .timestamp_millis()
    };
    let mut day = Utc
        .timestamp_millis_opt(from_ms)
        .unwrap()
        .date_naive()
        .succ_opt()
        .unwrap();
    for _ in 0..400 {
        let next = day.succ_opt().unwrap();
        if at4(next) - at4(day) != 86_400_000 {
            return (at4(day), at4(next), at4(next.succ_opt().unwrap()));
        }
        day = next;
    }
    panic!("no DST change within 400 days");
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_tz_fires_at_local_time_across_a_dst_change() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let (before, change, after) = new_york_dst_change(server.clock.now_ms());
    assert_ne!(change - before, 86_400_000);
    // Get close to the change first (the schedule must not tick for months on the way).
    advance_to(&server, before - 3_600_000);
    let id = create_ok(
        &server,
        &format!("{}/ny", rx.url),
        &[("Upstash-Cron", "CRON_TZ=America/New_York 0 4 * * *")],
        "",
    )
    .await;
    let s = schedule(&server, &id).await;
    assert_eq!(s["cron"], "CRON_TZ=America/New_York 0 4 * * *");
    assert_eq!(s["nextScheduleTime"], before, "{s}");
    for (i, fire) in [before, change, after].into_iter().enumerate() {
        advance_to(&server, fire - 1);
        rx.assert_quiet(i, QUIET).await;
        server.advance(Duration::from_millis(1));
        rx.wait_for(i + 1).await;
        let s = eventually("the tick is recorded", || async {
            let s = schedule(&server, &id).await;
            (s["lastScheduleTime"] == fire).then_some(s)
        })
        .await;
        if i == 0 {
            assert_eq!(
                s["nextScheduleTime"],
                change,
                "{} h after the last tick: {s}",
                (change - before) / 3_600_000
            );
        }
    }
    rx.assert_quiet(3, QUIET).await;

    // A zone without DST, for contrast: Asia/Tokyo 09:00 = 00:00 UTC.
    let tokyo = create_ok(
        &server,
        &format!("{}/tokyo", rx.url),
        &[("Upstash-Cron", "CRON_TZ=Asia/Tokyo 0 9 * * *")],
        "",
    )
    .await;
    let next = schedule(&server, &tokyo).await["nextScheduleTime"]
        .as_i64()
        .unwrap();
    assert_eq!(next % 86_400_000, 0, "00:00 UTC");
    assert!(next > server.clock.now_ms() && next <= server.clock.now_ms() + 86_400_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_id_overwrites_the_whole_definition() {
    let server = TestServer::start().await;
    freeze_mid_minute(&server);
    let rx = Receiver::start().await;
    let dest = format!("{}/ow", rx.url);
    let id = create_ok(
        &server,
        &dest,
        &[
            ("Upstash-Cron", "0 0 1 1 *"),
            ("Upstash-Schedule-Id", "my-sched.1_x"),
            ("Upstash-Forward-X-Old", "old"),
            ("Upstash-Retries", "1"),
            ("Content-Type", "text/plain"),
        ],
        "old body",
    )
    .await;
    assert_eq!(id, "my-sched.1_x");
    let again = create_ok(
        &server,
        &format!("{dest}2"),
        &[
            ("Upstash-Cron", "* * * * *"),
            ("Upstash-Schedule-Id", "my-sched.1_x"),
        ],
        "",
    )
    .await;
    assert_eq!(again, id);
    let s = schedule(&server, &id).await;
    assert_eq!(s["cron"], "* * * * *");
    assert_eq!(s["destination"], format!("{dest}2"));
    assert!(
        s.get("body").is_none() && s.get("bodyBase64").is_none(),
        "body removed: {s}"
    );
    assert!(
        s.get("header")
            .is_none_or(|h| h.get("X-Old").is_none() && h.get("Content-Type").is_none()),
        "{s}"
    );
    assert_eq!(s["retries"], 3, "back to the default");
    let (_, list) = server.get_json("/v2/schedules").await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    server.advance(Duration::from_secs(30));
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].target, "/ow2");
    assert!(got[0].body.is_empty());
    assert_eq!(got[0].header("x-old"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_schedule_keeps_the_messages_it_produced() {
    let server = TestServer::start().await;
    freeze_mid_minute(&server);
    let rx = Receiver::start().await;
    let id = create_ok(
        &server,
        &format!("{}/del", rx.url),
        &[("Upstash-Cron", "* * * * *"), ("Upstash-Delay", "2m")],
        "d",
    )
    .await;
    let fire = next_minute(server.clock.now_ms());
    advance_to(&server, fire);
    let msg = eventually("the produced message", || async {
        server
            .log_entries(&format!("scheduleId={id}&state=CREATED"))
            .await
            .first()
            .map(|e| e["messageId"].as_str().unwrap().to_string())
    })
    .await;
    let (status, m) = server.get_json(&format!("/v2/messages/{msg}")).await;
    assert_eq!(status, 200);
    assert_eq!(m["scheduleId"], id.as_str());
    assert_eq!(
        m["notBefore"],
        fire + 2 * MINUTE,
        "fire time + the schedule's delay: {m}"
    );
    let (status, _) = send(server.call("DELETE", &format!("/v2/schedules/{id}"))).await;
    assert_eq!(status, 200);
    let (status, _) = server.get_json(&format!("/v2/schedules/{id}")).await;
    assert_eq!(status, 404);
    let (_, list) = server.get_json("/v2/schedules").await;
    assert_eq!(list, json!([]));
    rx.assert_quiet(0, QUIET).await;
    server.advance(Duration::from_secs(60));
    rx.assert_quiet(0, QUIET).await;
    server.advance(Duration::from_secs(60));
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].header("upstash-message-id"), Some(msg.as_str()));
    assert_eq!(got[0].header("upstash-schedule-id"), Some(id.as_str()));
    server.wait_state(&msg, "DELIVERED").await;
    server.advance(Duration::from_secs(60));
    rx.assert_quiet(1, QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_schedules_skip_ticks_and_resume_without_replaying() {
    let server = TestServer::start().await;
    freeze_mid_minute(&server);
    let rx = Receiver::start().await;
    let id = create_ok(
        &server,
        &format!("{}/p", rx.url),
        &[("Upstash-Cron", "* * * * *")],
        "",
    )
    .await;
    let mut fire = next_minute(server.clock.now_ms());
    for (pause_method, resume_method) in [("PATCH", "POST"), ("POST", "PATCH")] {
        for _ in 0..2 {
            let (status, _) =
                send(server.call(pause_method, &format!("/v2/schedules/{id}/pause"))).await;
            assert_eq!(status, 200, "{pause_method} pause (idempotent)");
        }
        assert_eq!(schedule(&server, &id).await["isPaused"], true);
        let seen = rx.count();
        for _ in 0..2 {
            advance_to(&server, fire);
            rx.assert_quiet(seen, QUIET).await;
            fire += MINUTE;
        }
        server.advance(Duration::from_secs(20));
        let (status, _) =
            send(server.call(resume_method, &format!("/v2/schedules/{id}/resume"))).await;
        assert_eq!(status, 200, "{resume_method} resume");
        let s = schedule(&server, &id).await;
        assert_eq!(s["isPaused"], false);
        assert_eq!(s["nextScheduleTime"], fire, "{s}");
        rx.assert_quiet(seen, QUIET).await;
        advance_to(&server, fire);
        rx.wait_for(seen + 1).await;
        rx.assert_quiet(seen + 1, QUIET).await;
        fire += MINUTE;
    }
    for action in ["pause", "resume"] {
        let (status, _) =
            send(server.call("PATCH", &format!("/v2/schedules/scd_nope/{action}"))).await;
        assert_eq!(status, 404, "{action} of an unknown schedule");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_to_a_url_group_resolve_the_group_at_each_tick() {
    let server = TestServer::start().await;
    freeze_mid_minute(&server);
    let a = Receiver::start().await;
    let b = Receiver::start().await;
    server
        .post_json(
            "/v2/topics/sg/endpoints",
            &json!({"endpoints": [{"url": format!("{}/a", a.url)}]}),
        )
        .await;
    let id = create_ok(&server, "sg", &[("Upstash-Cron", "* * * * *")], "g").await;
    let s = schedule(&server, &id).await;
    assert_eq!(s["destination"], "sg");
    let fire = next_minute(server.clock.now_ms());
    advance_to(&server, fire);
    let got = a.wait_for(1).await;
    assert_eq!(got[0].header("upstash-schedule-id"), Some(id.as_str()));
    assert_eq!(got[0].header("upstash-topic-name"), Some("sg"));
    server
        .post_json(
            "/v2/topics/sg/endpoints",
            &json!({"endpoints": [{"url": format!("{}/b", b.url)}]}),
        )
        .await;
    advance_to(&server, fire + MINUTE);
    a.wait_for(2).await;
    let got = b.wait_for(1).await;
    assert_eq!(got[0].header("upstash-schedule-id"), Some(id.as_str()));
    assert_eq!(got[0].signature_error, None);
    let s = eventually("two states for the second tick", || async {
        let s = schedule(&server, &id).await;
        let states = s["lastScheduleStates"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        (states.len() == 2 && states.values().all(|v| v == "SUCCESS")).then_some(s)
    })
    .await;
    assert_eq!(s["lastScheduleTime"], fire + MINUTE);

    // The group disappears: the next tick records an error instead of a message.
    send(server.call("DELETE", "/v2/topics/sg")).await;
    advance_to(&server, fire + 2 * MINUTE);
    let s = eventually("an error on the schedule", || async {
        let s = schedule(&server, &id).await;
        s["error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
            .then_some(s)
    })
    .await;
    assert!(s["error"].as_str().unwrap().contains("sg"), "{s}");
    a.assert_quiet(2, QUIET).await;
    let (status, body) = create(
        &server,
        "no-such-group",
        &[("Upstash-Cron", "* * * * *")],
        "",
    )
    .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_to_a_queue_enqueue_each_tick() {
    let server = TestServer::start().await;
    freeze_mid_minute(&server);
    let rx = Receiver::start().await;
    let id = create_ok(
        &server,
        &format!("{}/q", rx.url),
        &[
            ("Upstash-Cron", "* * * * *"),
            ("Upstash-Queue-Name", "sched-q"),
        ],
        "q",
    )
    .await;
    assert_eq!(schedule(&server, &id).await["queueName"], "sched-q");
    // The queue is paused: the produced message waits in it.
    server
        .post_json(
            "/v2/queues",
            &json!({"queueName": "sched-q", "parallelism": 1, "paused": true}),
        )
        .await;
    advance_to(&server, next_minute(server.clock.now_ms()));
    let msg = eventually("the produced message", || async {
        server
            .log_entries(&format!("scheduleId={id}&state=CREATED"))
            .await
            .first()
            .cloned()
    })
    .await;
    assert_eq!(msg["queueName"], "sched-q", "{msg}");
    rx.assert_quiet(0, QUIET).await;
    let (_, q) = server.get_json("/v2/queues/sched-q").await;
    assert_eq!(q["lag"], 1, "{q}");
    send(server.call("POST", "/v2/queues/sched-q/resume")).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].header("upstash-schedule-id"), Some(id.as_str()));
    assert_eq!(
        got[0].header("upstash-message-id"),
        msg["messageId"].as_str()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn redacted_schedule_fields_are_hidden_but_delivered() {
    let server = TestServer::start().await;
    freeze_mid_minute(&server);
    let rx = Receiver::start().await;
    let id = create_ok(
        &server,
        &format!("{}/r", rx.url),
        &[
            ("Upstash-Cron", "* * * * *"),
            ("Upstash-Redact-Fields", "body,header[Authorization]"),
            ("Upstash-Forward-Authorization", "Bearer s3cret"),
        ],
        "secret body",
    )
    .await;
    for s in [
        schedule(&server, &id).await,
        server.get_json("/v2/schedules").await.1[0].clone(),
    ] {
        let text = s.to_string();
        assert!(
            !text.contains("s3cret") && !text.contains("secret body"),
            "{text}"
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode("secret body");
        assert!(!text.contains(&b64), "{text}");
        assert!(
            s["body"].as_str().unwrap_or("").starts_with("REDACTED:"),
            "{s}"
        );
        assert!(
            s["header"]["Authorization"][0]
                .as_str()
                .unwrap_or("")
                .starts_with("REDACTED:"),
            "{s}"
        );
    }
    advance_to(&server, next_minute(server.clock.now_ms()));
    let got = rx.wait_for(1).await;
    assert_eq!(&got[0].body[..], b"secret body");
    assert_eq!(got[0].header("authorization"), Some("Bearer s3cret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_schedules_are_rejected_with_the_problem_named() {
    let server = TestServer::start().await;
    let dest = "https://example.com/x";
    for (headers, needle) in [
        (vec![], "Upstash-Cron"),
        (vec![("Upstash-Cron", "* * * *")], "cron"),
        (vec![("Upstash-Cron", "61 * * * *")], "cron"),
        (vec![("Upstash-Cron", "* * * * * *")], "cron"),
        (vec![("Upstash-Cron", "* * 32 * *")], "cron"),
        (vec![("Upstash-Cron", "every minute")], "cron"),
        (vec![("Upstash-Cron", "0 0 31 2 *")], "can never fire"),
        (
            vec![("Upstash-Cron", "CRON_TZ=Mars/Olympus * * * * *")],
            "Mars/Olympus",
        ),
        (
            vec![
                ("Upstash-Cron", "* * * * *"),
                ("Upstash-Schedule-Id", "bad id!"),
            ],
            "Upstash-Schedule-Id",
        ),
        (
            vec![
                ("Upstash-Cron", "* * * * *"),
                ("Upstash-Schedule-Id", "a/b"),
            ],
            "Upstash-Schedule-Id",
        ),
        (
            vec![("Upstash-Cron", "* * * * *"), ("Upstash-Retries", "x")],
            "Upstash-Retries",
        ),
    ] {
        let (status, body) = create(&server, dest, &headers, "").await;
        assert_eq!(status, 400, "{headers:?}: {body}");
        let error = body["error"].as_str().unwrap_or("");
        assert!(
            error.to_lowercase().contains(&needle.to_lowercase()),
            "{headers:?}: {error:?} should name {needle}"
        );
    }
    let (status, body) = create(&server, "bad$group", &[("Upstash-Cron", "* * * * *")], "").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = create(&server, "api/llm", &[("Upstash-Cron", "* * * * *")], "").await;
    assert_eq!(
        status, 400,
        "schedules cannot target api/ destinations: {body}"
    );
    let (_, list) = server.get_json("/v2/schedules").await;
    assert_eq!(list, json!([]), "nothing was created");
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_fields_follow_classic_semantics() {
    let server = TestServer::start().await;
    freeze_mid_minute(&server);
    let now = server.clock.now_ms();
    type Matches = fn(&DateTime<Utc>) -> bool;
    let cases: [(&str, Matches); 8] = [
        ("0 0 13 * 5", |t| {
            t.hour() == 0 && t.minute() == 0 && (t.day() == 13 || t.weekday() == Weekday::Fri)
        }),
        ("15 10 * * SUN", |t| {
            t.hour() == 10 && t.minute() == 15 && t.weekday() == Weekday::Sun
        }),
        ("0 0 * * 7", |t| {
            t.hour() == 0 && t.minute() == 0 && t.weekday() == Weekday::Sun
        }),
        ("30 8 1 FEB,JUL *", |t| {
            t.minute() == 30 && t.hour() == 8 && t.day() == 1 && [2, 7].contains(&t.month())
        }),
        ("*/20 9-17/4 * * MON-FRI", |t| {
            t.minute() % 20 == 0
                && [9, 13, 17].contains(&t.hour())
                && t.weekday().number_from_monday() <= 5
        }),
        ("5,35 */6 * * *", |t| {
            [5, 35].contains(&t.minute()) && t.hour() % 6 == 0
        }),
        ("TZ=UTC 5 4 * * *", |t| t.hour() == 4 && t.minute() == 5),
        ("0 12 29 2 *", |t| {
            t.hour() == 12 && t.minute() == 0 && t.day() == 29 && t.month() == 2
        }),
    ];
    for (cron, matches) in cases {
        let id = create_ok(
            &server,
            "https://example.com/c",
            &[("Upstash-Cron", cron)],
            "",
        )
        .await;
        let next = schedule(&server, &id).await["nextScheduleTime"].as_i64();
        let mut t = next_minute(now);
        let limit = now + 5 * 366 * 86_400_000;
        while !matches(&Utc.timestamp_millis_opt(t).unwrap()) {
            t += MINUTE;
            assert!(t < limit, "{cron}: no match within 5 years");
        }
        assert_eq!(
            next,
            Some(t),
            "{cron}: expected {}",
            Utc.timestamp_millis_opt(t).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upstash_cron_on_publish_is_refused() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let (status, body) = server
        .post_raw(
            &format!("/v2/publish/{}/cron", rx.url),
            &[("Upstash-Cron", "* * * * *")],
            "",
        )
        .await;
    assert_eq!(status, 400, "Upstash-Cron belongs on /v2/schedules: {body}");
    rx.assert_quiet(0, QUIET).await;
    let (_, list) = server.get_json("/v2/schedules").await;
    assert_eq!(list, json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clock_jump_replays_missed_ticks_up_to_a_hundred() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    freeze_mid_minute(&server);
    create_ok(
        &server,
        &format!("{}/every-minute", rx.url),
        &[("Upstash-Cron", "* * * * *")],
        "tick",
    )
    .await;
    // Ten minutes pass at once: ten ticks, each delivered.
    server.advance(Duration::from_secs(600));
    rx.wait_for(10).await;
    rx.assert_quiet(10, QUIET).await;
    // Five hours at once: more than a hundred missed ticks, so only the latest fires.
    server.advance(Duration::from_secs(5 * 3600));
    rx.wait_for(11).await;
    rx.assert_quiet(11, QUIET).await;
    let s = schedule(&server, &schedule_ids(&server).await[0]).await;
    let now = server.clock.now_ms();
    assert_eq!(
        s["lastScheduleTime"].as_i64().unwrap(),
        now - now.rem_euclid(MINUTE)
    );
    assert_eq!(
        s["nextScheduleTime"].as_i64().unwrap(),
        now - now.rem_euclid(MINUTE) + MINUTE
    );
}

async fn schedule_ids(server: &TestServer) -> Vec<String> {
    let (_, list) = server.get_json("/v2/schedules").await;
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["scheduleId"].as_str().unwrap().to_string())
        .collect()
}
