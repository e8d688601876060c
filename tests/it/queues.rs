//! Queues: CRUD and shapes, enqueue, FIFO with parallelism 1 (slow and failing heads),
//! parallelism N, pause/resume, callbacks holding the queue, quotas.

use std::time::Duration;

use crate::common::ext::{eventually, send};
use crate::common::{Receiver, Reply, TestServer};
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(150);

async fn upsert(server: &TestServer, body: Value) -> (u16, Value) {
    server.post_json("/v2/queues", &body).await
}

async fn enqueue(server: &TestServer, queue: &str, url: &str, headers: &[(&str, &str)]) -> String {
    let (status, resp) = server
        .post_raw(&format!("/v2/enqueue/{queue}/{url}"), headers, url)
        .await;
    assert_eq!(status, 200, "enqueue {url}: {resp}");
    resp["messageId"].as_str().unwrap().to_string()
}

/// `time` of the first log entry of `id` in `state`.
async fn time_of(server: &TestServer, id: &str, state: &str) -> i64 {
    server.event(id, state).await["time"].as_i64().unwrap()
}

async fn wait_lag(server: &TestServer, queue: &str, lag: i64) {
    eventually(&format!("lag {lag} on {queue}"), || async {
        let (_, q) = server.get_json(&format!("/v2/queues/{queue}")).await;
        (q["lag"] == lag).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn queues_are_upserted_listed_paused_and_deleted() {
    let server = TestServer::start().await;
    let before = server.clock.now_ms();
    let (status, body) = upsert(
        &server,
        json!({"queueName": "q1", "parallelism": 3, "paused": false}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, q) = server.get_json("/v2/queues/q1").await;
    assert_eq!(status, 200);
    let mut keys: Vec<&str> = q.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "createdAt",
            "lag",
            "name",
            "parallelism",
            "paused",
            "updatedAt"
        ],
        "{q}"
    );
    assert_eq!(q["name"], "q1");
    assert_eq!(q["parallelism"], 3);
    assert_eq!(q["lag"], 0);
    assert_eq!(q["paused"], false);
    let created = q["createdAt"].as_i64().unwrap();
    assert!(created >= before, "{q}");

    server.advance(Duration::from_secs(3));
    let (status, _) = upsert(
        &server,
        json!({"queueName": "q1", "parallelism": 5, "paused": true}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, q) = server.get_json("/v2/queues/q1").await;
    assert_eq!(q["parallelism"], 5);
    assert_eq!(q["paused"], true, "upsert sets paused");
    assert_eq!(q["createdAt"].as_i64().unwrap(), created);
    assert!(q["updatedAt"].as_i64().unwrap() >= created + 3_000, "{q}");

    let (status, _) = send(server.call("POST", "/v2/queues/q1/resume")).await;
    assert_eq!(status, 200);
    let (_, q) = server.get_json("/v2/queues/q1").await;
    assert_eq!(q["paused"], false);
    for _ in 0..2 {
        let (status, _) = send(server.call("POST", "/v2/queues/q1/pause")).await;
        assert_eq!(status, 200, "pause is idempotent");
    }
    let (_, q) = server.get_json("/v2/queues/q1").await;
    assert_eq!(q["paused"], true);

    upsert(&server, json!({"queueName": "q2"})).await;
    let (_, q2) = server.get_json("/v2/queues/q2").await;
    assert_eq!(q2["parallelism"], 1, "default parallelism");
    assert_eq!(q2["paused"], false);
    let (status, list) = server.get_json("/v2/queues").await;
    assert_eq!(status, 200);
    let mut names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["q1", "q2"]);

    let (status, _) = send(server.call("DELETE", "/v2/queues/q1")).await;
    assert_eq!(status, 200);
    let (status, _) = server.get_json("/v2/queues/q1").await;
    assert_eq!(status, 404);
    let (_, list) = server.get_json("/v2/queues").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_queue_requests_and_quotas() {
    let server = TestServer::start().await;
    for (body, expected) in [
        (json!({"queueName": "bad name", "parallelism": 1}), 400),
        (json!({"queueName": "", "parallelism": 1}), 400),
        (json!({"parallelism": 1}), 400),
        (json!({"queueName": "q", "parallelism": 0}), 400),
        (json!({"queueName": "q", "parallelism": -1}), 400),
        (json!({"queueName": "q", "parallelism": 101}), 412),
    ] {
        let (status, resp) = upsert(&server, body.clone()).await;
        assert_eq!(status, expected, "{body}: {resp}");
        assert!(resp["error"].is_string(), "{body}: {resp}");
    }
    let (status, _) = server.get_json("/v2/queues/bad$name").await;
    assert_eq!(status, 400);
    let (status, _) = server.get_json("/v2/queues/missing").await;
    assert_eq!(status, 404);
    let (status, resp) = server
        .post_raw("/v2/enqueue/bad$q/http://127.0.0.1:1/x", &[], "x")
        .await;
    assert_eq!(status, 400, "{resp}");
    let (_, list) = server.get_json("/v2/queues").await;
    assert_eq!(list, json!([]), "nothing was created");

    let (status, resp) = upsert(&server, json!({"queueName": "q", "parallelism": 100})).await;
    assert_eq!(status, 200, "the payg maximum itself is fine: {resp}");
    // At most 100 queues on payg.
    for i in 1..100 {
        let (status, resp) = upsert(&server, json!({"queueName": format!("q{i}")})).await;
        assert_eq!(status, 200, "queue {i}: {resp}");
    }
    let (status, resp) = upsert(&server, json!({"queueName": "one-too-many"})).await;
    assert_eq!(status, 412, "{resp}");
    let (status, resp) = server
        .post_raw("/v2/enqueue/one-too-many/http://127.0.0.1:1/x", &[], "x")
        .await;
    assert_eq!(status, 412, "enqueue cannot create a 101st queue: {resp}");
    let (status, _) = upsert(&server, json!({"queueName": "q1", "parallelism": 2})).await;
    assert_eq!(status, 200, "updating an existing queue is fine");
}

#[tokio::test(flavor = "multi_thread")]
async fn enqueue_creates_the_queue_and_tags_the_message() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let id = enqueue(
        &server,
        "fresh",
        &format!("{}/e", rx.url),
        &[("Upstash-Forward-X-A", "a")],
    )
    .await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].header("x-a"), Some("a"));
    assert_eq!(got[0].signature_error, None);
    assert_eq!(
        server.wait_state(&id, "DELIVERED").await,
        ["CREATED", "ACTIVE", "DELIVERED"]
    );
    for e in server.log_entries(&format!("messageId={id}")).await {
        assert_eq!(e["queueName"], "fresh", "{e}");
    }
    assert_eq!(server.log_entries("queueName=fresh").await.len(), 3);
    let (status, q) = server.get_json("/v2/queues/fresh").await;
    assert_eq!(status, 200);
    assert_eq!(q["parallelism"], 1);
    assert_eq!(q["paused"], false);
    wait_lag(&server, "fresh", 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn parallelism_one_is_fifo_behind_a_slow_endpoint() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(200).delay(Duration::from_millis(200)));
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(enqueue(&server, "slow", &format!("{}/m{i}", rx.url), &[]).await);
    }
    let (_, q) = server.get_json("/v2/queues/slow").await;
    assert_eq!(q["lag"], 3, "waiting + in flight: {q}");
    let got = rx.wait_for(3).await;
    let targets: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["/m0", "/m1", "/m2"]);
    for w in got.windows(2) {
        assert!(
            w[1].at.duration_since(w[0].at) >= Duration::from_millis(190),
            "the next delivery waits for the previous answer: {:?}",
            w[1].at.duration_since(w[0].at)
        );
    }
    for id in &ids {
        server.wait_state(id, "DELIVERED").await;
    }
    for w in ids.windows(2) {
        let done = time_of(&server, &w[0], "DELIVERED").await;
        let next_active = time_of(&server, &w[1], "ACTIVE").await;
        assert!(
            next_active >= done,
            "{} ACTIVE at {next_active} before DELIVERED {done}",
            w[1]
        );
    }
    wait_lag(&server, "slow", 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_head_holds_the_queue_through_its_retries() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script("/m0", Reply::status(500));
    rx.script("/m1", Reply::status(500));
    let m0 = enqueue(&server, "held", &format!("{}/m0", rx.url), &[]).await;
    let m1 = enqueue(
        &server,
        "held",
        &format!("{}/m1", rx.url),
        &[("Upstash-Retries", "0")],
    )
    .await;
    let m2 = enqueue(&server, "held", &format!("{}/m2", rx.url), &[]).await;
    server.wait_retries(&m0, 1).await;
    rx.assert_quiet(1, QUIET).await;
    let states = server.states(&m1).await;
    assert_eq!(states, ["CREATED"], "m1 waits while m0 awaits its retry");
    server.advance(Duration::from_secs(12));
    server.wait_state(&m0, "DELIVERED").await;
    server.wait_state(&m1, "FAILED").await;
    server.wait_state(&m2, "DELIVERED").await;
    let got = rx.wait_for(4).await;
    let targets: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["/m0", "/m0", "/m1", "/m2"]);
    assert!(time_of(&server, &m1, "ACTIVE").await >= time_of(&server, &m0, "DELIVERED").await);
    assert!(
        time_of(&server, &m2, "ACTIVE").await >= time_of(&server, &m1, "FAILED").await,
        "a FAILED head also releases the queue"
    );
    wait_lag(&server, "held", 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn parallelism_n_caps_deliveries_in_flight_in_enqueue_order() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let hold = Duration::from_millis(250);
    rx.set_default(Reply::status(200).delay(hold));
    upsert(
        &server,
        json!({"queueName": "wide", "parallelism": 2, "paused": false}),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(enqueue(&server, "wide", &format!("{}/m{i}", rx.url), &[]).await);
    }
    let got = rx.wait_for(6).await;
    // In flight at each arrival: requests that arrived earlier and have not been answered.
    let max = got
        .iter()
        .map(|r| {
            got.iter()
                .filter(|o| o.at <= r.at && r.at < o.at + hold - Duration::from_millis(20))
                .count()
        })
        .max()
        .unwrap();
    assert_eq!(max, 2, "two at a time, never more");
    for id in &ids {
        server.wait_state(id, "DELIVERED").await;
    }
    let mut last = 0;
    for id in &ids {
        let t = time_of(&server, id, "ACTIVE").await;
        assert!(t >= last, "started in enqueue order");
        last = t;
    }
    // Pairs: m2 starts only after m0 or m1 finished.
    let first_done = time_of(&server, &ids[0], "DELIVERED")
        .await
        .min(time_of(&server, &ids[1], "DELIVERED").await);
    assert!(time_of(&server, &ids[2], "ACTIVE").await >= first_done);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_queue_delivers_nothing_until_resumed_and_loses_nothing() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    upsert(
        &server,
        json!({"queueName": "p", "parallelism": 1, "paused": true}),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(enqueue(&server, "p", &format!("{}/m{i}", rx.url), &[]).await);
    }
    rx.assert_quiet(0, Duration::from_millis(200)).await;
    let (_, q) = server.get_json("/v2/queues/p").await;
    assert_eq!(q["lag"], 3, "{q}");
    assert_eq!(q["paused"], true);
    let (status, _) = server.get_json(&format!("/v2/messages/{}", ids[2])).await;
    assert_eq!(status, 200, "waiting messages are still there");
    let (status, _) = send(server.call("POST", "/v2/queues/p/resume")).await;
    assert_eq!(status, 200);
    let got = rx.wait_for(3).await;
    let targets: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
    assert_eq!(targets, ["/m0", "/m1", "/m2"]);
    wait_lag(&server, "p", 0).await;

    // Pausing mid-stream: the attempt in flight finishes, nothing new starts.
    rx.set_default(Reply::status(200).delay(Duration::from_millis(400)));
    let mut more = Vec::new();
    for i in 3..6 {
        more.push(enqueue(&server, "p", &format!("{}/m{i}", rx.url), &[]).await);
    }
    rx.wait_for(4).await;
    let (status, _) = send(server.call("POST", "/v2/queues/p/pause")).await;
    assert_eq!(status, 200);
    server.wait_state(&more[0], "DELIVERED").await;
    rx.assert_quiet(4, Duration::from_millis(300)).await;
    assert_eq!(server.states(&more[1]).await, ["CREATED"]);
    let (_, q) = server.get_json("/v2/queues/p").await;
    assert_eq!(q["lag"], 2, "{q}");
    send(server.call("POST", "/v2/queues/p/resume")).await;
    let got = rx.wait_for(6).await;
    assert_eq!(got[4].target, "/m4");
    assert_eq!(got[5].target, "/m5");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_message_waits_for_the_callback_of_the_previous_one() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let cb = Receiver::start().await;
    cb.set_default(Reply::status(200).delay(Duration::from_millis(300)));
    let m0 = enqueue(
        &server,
        "cbq",
        &format!("{}/m0", rx.url),
        &[("Upstash-Callback", &format!("{}/cb", cb.url))],
    )
    .await;
    let m1 = enqueue(&server, "cbq", &format!("{}/m1", rx.url), &[]).await;
    cb.wait_for(1).await;
    let cb_id = cb.received()[0]
        .header("upstash-message-id")
        .unwrap()
        .to_string();
    server.wait_state(&m1, "DELIVERED").await;
    let cb_done = time_of(&server, &cb_id, "DELIVERED").await;
    let m1_active = time_of(&server, &m1, "ACTIVE").await;
    assert!(
        m1_active >= cb_done,
        "m1 ACTIVE at {m1_active}, callback of m0 DELIVERED at {cb_done}"
    );
    let got = rx.received();
    assert!(got[1].at.duration_since(got[0].at) >= Duration::from_millis(280));
    server.wait_state(&m0, "DELIVERED").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn raising_parallelism_applies_at_once() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let hold = Duration::from_millis(600);
    rx.set_default(Reply::status(200).delay(hold));
    upsert(
        &server,
        json!({"queueName": "grow", "parallelism": 1, "paused": true}),
    )
    .await;
    for i in 0..4 {
        enqueue(&server, "grow", &format!("{}/m{i}", rx.url), &[]).await;
    }
    let (status, _) = upsert(
        &server,
        json!({"queueName": "grow", "parallelism": 4, "paused": false}),
    )
    .await;
    assert_eq!(status, 200);
    let got = rx.wait_for(4).await;
    let spread = got[3].at.duration_since(got[0].at);
    assert!(
        spread < hold,
        "all four in flight together, spread {spread:?}"
    );
    wait_lag(&server, "grow", 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_message_waits_for_the_failure_callback_of_the_previous_one() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script("/m0", Reply::status(500));
    let fcb = Receiver::start().await;
    fcb.set_default(Reply::status(200).delay(Duration::from_millis(300)));
    let m0 = enqueue(
        &server,
        "fcbq",
        &format!("{}/m0", rx.url),
        &[
            ("Upstash-Retries", "0"),
            ("Upstash-Failure-Callback", &format!("{}/fcb", fcb.url)),
        ],
    )
    .await;
    let m1 = enqueue(&server, "fcbq", &format!("{}/m1", rx.url), &[]).await;
    fcb.wait_for(1).await;
    let fcb_id = fcb.received()[0]
        .header("upstash-message-id")
        .unwrap()
        .to_string();
    server.wait_state(&m0, "FAILED").await;
    server.wait_state(&m1, "DELIVERED").await;
    let fcb_done = time_of(&server, &fcb_id, "DELIVERED").await;
    let m1_active = time_of(&server, &m1, "ACTIVE").await;
    assert!(
        m1_active >= fcb_done,
        "m1 ACTIVE at {m1_active}, failure callback of m0 DELIVERED at {fcb_done}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_queue_cancels_its_waiting_messages() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    upsert(
        &server,
        json!({"queueName": "doomed", "parallelism": 1, "paused": true}),
    )
    .await;
    let id = enqueue(&server, "doomed", &format!("{}/x", rx.url), &[]).await;
    let (status, _) = send(server.call("DELETE", "/v2/queues/doomed")).await;
    assert_eq!(status, 200);
    assert_eq!(
        server.wait_state(&id, "CANCELED").await,
        ["CREATED", "CANCEL_REQUESTED", "CANCELED"]
    );
    rx.assert_quiet(0, QUIET).await;
    let (status, _) = send(server.call("DELETE", "/v2/queues/doomed")).await;
    assert_eq!(status, 200, "deleting again is fine");
    let (status, _) = send(server.call("POST", "/v2/queues/doomed/resume")).await;
    assert_eq!(status, 404, "resuming an unknown queue");
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelling_a_delayed_head_lets_the_next_message_go() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let head = enqueue(
        &server,
        "q",
        &format!("{}/late", rx.url),
        &[("Upstash-Delay", "1h")],
    )
    .await;
    let next = enqueue(&server, "q", &format!("{}/next", rx.url), &[]).await;
    rx.assert_quiet(0, QUIET).await;
    let (status, _) = send(server.delete(&format!("/v2/messages/{head}"))).await;
    assert_eq!(status, 200);
    server.wait_state(&next, "DELIVERED").await;
    wait_lag(&server, "q", 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_head_released_by_flow_control_lets_the_queue_use_its_parallelism() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(200).delay(Duration::from_millis(400)));
    upsert(&server, json!({"queueName": "wide", "parallelism": 3})).await;
    let fc = [
        ("Upstash-Flow-Control-Key", "gate"),
        ("Upstash-Flow-Control-Value", "rate=1, period=10s"),
    ];
    // The first takes the key's one start of this window; the second waits for the next one.
    let a = enqueue(&server, "wide", &format!("{}/a", rx.url), &fc).await;
    let b = enqueue(&server, "wide", &format!("{}/b", rx.url), &fc).await;
    let c = enqueue(&server, "wide", &format!("{}/c", rx.url), &[]).await;
    let d = enqueue(&server, "wide", &format!("{}/d", rx.url), &[]).await;
    server.wait_state(&a, "DELIVERED").await;
    assert_eq!(
        server.states(&c).await,
        ["CREATED"],
        "c waits behind b, which waits for its rate"
    );
    server.advance(Duration::from_secs(10));
    // b starts when the window rolls; c and d must follow at once (parallelism 3), not one by one.
    for id in [&b, &c, &d] {
        server.wait_state(id, "ACTIVE").await;
    }
    for id in [&b, &c, &d] {
        server.wait_state(id, "DELIVERED").await;
    }
    let got = rx.wait_for(4).await;
    let (b_at, d_at) = (got[1].at, got[3].at);
    assert!(
        d_at.duration_since(b_at) < Duration::from_millis(300),
        "c and d ran alongside b"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_paused_queue_lets_its_started_retries_finish() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script("/r", Reply::status(500));
    let id = enqueue(&server, "doomed", &format!("{}/r", rx.url), &[]).await;
    server.wait_retries(&id, 1).await;
    let (status, _) = send(server.post("/v2/queues/doomed/pause")).await;
    assert_eq!(status, 200);
    server.advance(Duration::from_secs(12));
    rx.assert_quiet(1, QUIET).await;
    let (status, _) = send(server.delete("/v2/queues/doomed")).await;
    assert_eq!(status, 200);
    server.wait_state(&id, "DELIVERED").await;
    let (status, _) = server.get_json("/v2/queues/doomed").await;
    assert_eq!(status, 404);
    // A new queue of the same name starts clean.
    upsert(&server, json!({"queueName": "doomed", "parallelism": 1})).await;
    let (_, q) = server.get_json("/v2/queues/doomed").await;
    assert_eq!(q["lag"], 0);
}
