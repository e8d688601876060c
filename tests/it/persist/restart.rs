//! Stop the server (cleanly or by crash) with one of everything in it, start it again on the
//! same directory: every API view reads the same, and deliveries go on as if it never
//! stopped, on the controlled clock.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Node, TempDir};
use crate::common::{Receiver, Reply};

/// Polls `path` until `done` holds for its JSON.
async fn wait_until(node: &Node, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..500 {
        let v = node.get(path).await;
        if done(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{path} never reached the expected state: {}",
        node.get(path).await
    );
}

fn states(events: &Value) -> Vec<String> {
    let mut s: Vec<String> = events["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["state"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default();
    s.reverse();
    s
}

/// Everything the API shows of the state built by `populate`.
async fn views(node: &Node, ids: &[String]) -> Vec<(String, Value)> {
    let mut paths: Vec<String> = [
        "/v2/queues",
        "/v2/schedules",
        "/v2/topics",
        "/v2/keys",
        "/v2/dlq",
        "/v2/flowControl",
        "/v2/events?count=1000",
        "/v2/logs?count=1000",
    ]
    .iter()
    .map(|p| p.to_string())
    .collect();
    paths.extend(ids.iter().map(|id| format!("/v2/messages/{id}")));
    let mut out = Vec::new();
    for p in paths {
        let mut v = node.get(&p).await;
        if p == "/v2/flowControl" {
            // The start of the current rate window is live timing (it rolls whenever a
            // window has passed), not kept state.
            for k in v.as_array_mut().into_iter().flatten() {
                k.as_object_mut().map(|o| o.remove("ratePeriodStart"));
            }
        }
        out.push((p, v));
    }
    out
}

struct Built {
    ids: Vec<String>,
    delayed: String,
    dedup: String,
    keys: (String, String),
}

/// One of everything: a paused queue with three messages, a delayed message, one waiting
/// for its second attempt, one in the DLQ, two schedules (one paused), a URL group, a paused
/// and pinned flow-control key with a message parked on it, a dedup record, rotated keys.
async fn populate(node: &Node, rx: &Receiver) -> Built {
    let r = &rx.url;
    let keys = node.post("/v2/keys/rotate", &[], "").await;
    let keys = (
        keys["current"].as_str().unwrap().to_string(),
        keys["next"].as_str().unwrap().to_string(),
    );
    rx.set_keys(&[&keys.0, &keys.1]);
    let mut ids = Vec::new();
    let id = |v: Value| v["messageId"].as_str().unwrap().to_string();

    node.post(
        "/v2/queues",
        &[("content-type", "application/json")],
        r#"{"queueName":"q","parallelism":1}"#,
    )
    .await;
    node.post("/v2/queues/q/pause", &[], "").await;
    for i in 0..3 {
        ids.push(id(node
            .post(&format!("/v2/enqueue/q/{r}/q{i}"), &[], &format!("q{i}"))
            .await));
    }

    let delayed = id(node
        .post(
            &format!("/v2/publish/{r}/delayed"),
            &[("Upstash-Delay", "1h")],
            "later",
        )
        .await);
    ids.push(delayed.clone());

    rx.script("/retry", Reply::status(500));
    let retry = id(node
        .post(
            &format!("/v2/publish/{r}/retry"),
            &[("Upstash-Retries", "2"), ("Upstash-Retry-Delay", "600000")],
            "again",
        )
        .await);
    wait_until(node, &format!("/v2/events?messageId={retry}"), |v| {
        states(v).last().map(String::as_str) == Some("RETRY")
    })
    .await;
    ids.push(retry);

    rx.script("/fail", Reply::status(500));
    let failed = id(node
        .post(
            &format!("/v2/publish/{r}/fail"),
            &[("Upstash-Retries", "0")],
            "dead",
        )
        .await);
    wait_until(node, "/v2/dlq", |v| {
        v["messages"].as_array().is_some_and(|m| m.len() == 1)
    })
    .await;
    let _ = failed;

    node.post(
        &format!("/v2/schedules/{r}/cron"),
        &[("Upstash-Cron", "0 * * * *")],
        "tick",
    )
    .await;
    let paused = node
        .post(
            &format!("/v2/schedules/{r}/paused"),
            &[("Upstash-Cron", "0 * * * *")],
            "never",
        )
        .await;
    let paused = paused["scheduleId"].as_str().unwrap().to_string();
    node.post(&format!("/v2/schedules/{paused}/pause"), &[], "")
        .await;

    let endpoints = json!({"endpoints": [{"url": format!("{r}/g1")}, {"name": "two", "url": format!("{r}/g2")}]});
    node.post(
        "/v2/topics/g/endpoints",
        &[("content-type", "application/json")],
        &endpoints.to_string(),
    )
    .await;

    node.post("/v2/flowControl/k/pause", &[], "").await;
    node.post("/v2/flowControl/k/pin?parallelism=3", &[], "")
        .await;
    ids.push(id(node
        .post(
            &format!("/v2/publish/{r}/flow"),
            &[
                ("Upstash-Flow-Control-Key", "k"),
                ("Upstash-Flow-Control-Value", "parallelism=1"),
            ],
            "flow",
        )
        .await));

    let dedup = id(node
        .post(
            &format!("/v2/publish/{r}/dedup"),
            &[("Upstash-Deduplication-Id", "d1"), ("Upstash-Delay", "2h")],
            "once",
        )
        .await);
    ids.push(dedup.clone());
    Built {
        ids,
        delayed,
        dedup,
        keys,
    }
}

fn paths(rx: &Receiver) -> Vec<String> {
    rx.received().iter().map(|r| r.target.clone()).collect()
}

async fn survives(signal: &str) {
    let dir = TempDir::new(&format!("restart-{signal}"));
    let rx = Receiver::start().await;
    let node = Node::start(&dir.0);
    let built = populate(&node, &rx).await;
    let before = views(&node, &built.ids).await;
    let delivered_before = rx.count();
    assert_eq!(paths(&rx), ["/retry", "/fail"]);
    node.stop(signal);

    let node = Node::start(&dir.0);
    let after = views(&node, &built.ids).await;
    for ((path, b), (_, a)) in before.iter().zip(after.iter()) {
        assert_eq!(a, b, "{path} differs after a restart ({signal})");
    }
    // Nothing was due, so nothing was sent while starting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.count(), delivered_before);

    // A dedup id is still taken: the same message, no second one.
    let again = node
        .post(
            &format!("/v2/publish/{}/dedup", rx.url),
            &[("Upstash-Deduplication-Id", "d1"), ("Upstash-Delay", "2h")],
            "once",
        )
        .await;
    assert_eq!(again["messageId"], built.dedup.as_str());

    // An hour later: the delayed message, the retry (its second attempt, counted as such)
    // and one cron tick; not the paused schedule.
    node.advance("61m").await;
    let got = rx.wait_for(delivered_before + 3).await;
    let mut new: Vec<&str> = got[delivered_before..]
        .iter()
        .map(|r| r.target.as_str())
        .collect();
    new.sort();
    assert_eq!(new, ["/cron", "/delayed", "/retry"]);
    let retry = got.iter().rev().find(|r| r.target == "/retry").unwrap();
    assert_eq!(retry.header("upstash-retried"), Some("1"));
    let delayed = got.iter().find(|r| r.target == "/delayed").unwrap();
    assert_eq!(
        delayed.header("upstash-message-id"),
        Some(built.delayed.as_str())
    );
    // Signed with the rotated key.
    assert!(
        got.iter().all(|r| r.claims.is_some()),
        "{:?}",
        got.iter().map(|r| &r.signature_error).collect::<Vec<_>>()
    );

    // The queue and the flow-control key go on where they were.
    node.post("/v2/queues/q/resume", &[], "").await;
    node.post("/v2/flowControl/k/resume", &[], "").await;
    node.post("/v2/publish/g", &[], "fan").await;
    let got = rx.wait_for(delivered_before + 9).await;
    let queued: Vec<&str> = got
        .iter()
        .map(|r| r.target.as_str())
        .filter(|t| t.starts_with("/q"))
        .collect();
    assert_eq!(queued, ["/q0", "/q1", "/q2"], "queue order after a restart");
    let mut rest: Vec<&str> = got[delivered_before + 3..]
        .iter()
        .map(|r| r.target.as_str())
        .filter(|t| !t.starts_with("/q"))
        .collect();
    rest.sort();
    assert_eq!(rest, ["/flow", "/g1", "/g2"]);
    assert_eq!(
        node.get("/v2/keys").await,
        json!({"current": built.keys.0, "next": built.keys.1})
    );
    // The dedup'd message is still due in its second hour, once.
    node.advance("61m").await;
    let got = rx.wait_for(delivered_before + 11).await;
    let tail: Vec<&str> = got[delivered_before + 9..]
        .iter()
        .map(|r| r.target.as_str())
        .collect();
    assert!(
        tail.contains(&"/dedup") && tail.contains(&"/cron"),
        "{tail:?}"
    );
    rx.assert_quiet(delivered_before + 11, Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn persist_state_survives_a_clean_stop() {
    survives("TERM").await;
}

#[tokio::test]
async fn persist_state_survives_a_crash() {
    survives("KILL").await;
}

/// Publishes `n` messages (`Upstash-Delay: 1h`) in one batch.
async fn publish(node: &Node, n: usize) {
    let one = json!({"destination": "http://127.0.0.1:9/t", "headers": {"Upstash-Delay": "1h"}, "body": "x"});
    let batch = Value::Array(vec![one; n]).to_string();
    node.post("/v2/batch", &[("content-type", "application/json")], &batch)
        .await;
}

async fn cancel_all(node: &Node) {
    let resp = node
        .req(reqwest::Method::DELETE, "/v2/messages")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Past the event log's retention the disk keeps what memory keeps: entries held in log
/// rows and in message rows (CREATED) read back as one log, in order, and what the
/// retention dropped stays dropped, though the disk is trimmed only in batches.
#[tokio::test(flavor = "multi_thread")]
async fn persist_the_event_log_past_its_retention_reads_back_the_same() {
    let dir = TempDir::new("log-trim");
    let node = Node::start(&dir.0);
    let retention = qstash::store::LOG_RETENTION;
    // CREATED entries (in message rows), then as many CANCELED (log rows), then the
    // newest CREATED again: the log keeps CANCELED entries and the newest CREATED ones.
    for _ in 0..retention / 100 + 3 {
        publish(&node, 100).await;
    }
    cancel_all(&node).await;
    for _ in 0..3 {
        publish(&node, 100).await;
    }
    let events = all_events(&node).await;
    assert_eq!(events.len(), retention);
    let created = events
        .iter()
        .take_while(|e| e["state"] == "CREATED")
        .count();
    assert_eq!(
        created, 300,
        "newest first: the 300 CREATED, then cancels only"
    );
    assert!(events[300..].iter().all(|e| e["state"] != "CREATED"));
    node.stop("KILL");

    let db = rusqlite::Connection::open(dir.0.join("qstash.db")).unwrap();
    let (count, low, high): (i64, i64, i64) = db
        .query_row("SELECT count(*), min(seq), max(seq) FROM log", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    drop(db);
    let batch = qstash::persistence::LOG_TRIM_BATCH as i64;
    assert!(
        count <= retention as i64 + batch,
        "the disk is trimmed too: {count} log rows"
    );
    assert_eq!(high - low + 1, count, "no gaps");
    let node = Node::start(&dir.0);
    assert_eq!(all_events(&node).await, events);
}

/// Rows of finished messages on disk (kept as the spec their log entries name).
fn finished_rows(dir: &std::path::Path) -> i64 {
    let db = rusqlite::Connection::open(dir.join("qstash.db")).unwrap();
    db.query_row(
        "SELECT count(*) FROM messages WHERE length(state) = 0",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// Every event of the log, page by page.
async fn all_events(node: &Node) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = node
            .get(&format!("/v2/events?count=100&cursor={cursor}"))
            .await;
        all.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["cursor"].as_str() {
            Some(c) if !c.is_empty() => cursor = c.to_string(),
            _ => return all,
        }
    }
}

/// A log entry names its message's row instead of holding the spec a second time: the row
/// of a finished message stays while the log shows it (so the log reads back the same) and
/// goes once the log is trimmed past it.
#[tokio::test(flavor = "multi_thread")]
async fn persist_finished_messages_stay_as_long_as_the_log_shows_them() {
    let dir = TempDir::new("log-names-rows");
    let node = Node::start(&dir.0);
    publish(&node, 500).await;
    cancel_all(&node).await;
    let events = all_events(&node).await;
    assert!(
        events.len() >= 1000,
        "500 CREATED and 500 CANCELED at least"
    );
    node.stop("TERM");
    assert_eq!(finished_rows(&dir.0), 500, "kept for the log");

    let node = Node::start(&dir.0);
    assert_eq!(all_events(&node).await, events);
    // Push the log past them (the disk is trimmed in batches): they go.
    let past = qstash::store::LOG_RETENTION + qstash::persistence::LOG_TRIM_BATCH as usize;
    for _ in 0..past / 100 + 1 {
        publish(&node, 100).await;
    }
    let newest = all_events(&node).await;
    node.stop("KILL");
    assert_eq!(finished_rows(&dir.0), 0, "no log entry shows them any more");
    let node = Node::start(&dir.0);
    assert_eq!(all_events(&node).await, newest);
}

/// A publish writes its message's spec (and body) to disk once: its CREATED entry is kept
/// in the message's row without a copy of the spec, and reads back whole.
#[tokio::test(flavor = "multi_thread")]
async fn persist_a_publish_writes_its_body_once() {
    let dir = TempDir::new("body-once");
    let node = Node::start(&dir.0);
    let body = "b".repeat(20_000);
    let h = [("Upstash-Delay", "1h")];
    node.post("/v2/publish/http://127.0.0.1:9/t", &h, &body)
        .await;
    let one = json!({"destination": "http://127.0.0.1:9/t", "headers": {"Upstash-Delay": "1h"}, "body": body});
    let batch = Value::Array(vec![one; 3]).to_string();
    node.post("/v2/batch", &[("content-type", "application/json")], &batch)
        .await;
    let events = all_events(&node).await;
    assert_eq!(events.len(), 4, "{events:?}");
    node.stop("KILL");

    let db = rusqlite::Connection::open(dir.0.join("qstash.db")).unwrap();
    let (specs, entries): (i64, i64) = db
        .query_row(
            "SELECT (SELECT sum(length(spec)) FROM messages),
                    (SELECT coalesce(sum(length(entry)), 0) FROM log)
                        + (SELECT coalesce(sum(length(created)), 0) FROM messages)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(db);
    assert!(specs > 4 * 20_000, "the 4 bodies, once each: {specs} bytes");
    assert!(
        entries < 4 * 1_000,
        "no body in the log entries: {entries} bytes"
    );
    let node = Node::start(&dir.0);
    assert_eq!(all_events(&node).await, events);
}
