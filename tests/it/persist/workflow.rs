//! Workflow runs across a crash: their steps, the waiters (and their timeouts), the
//! notifications stored for a run that did not wait yet.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Node, TempDir};
use crate::common::Received;
use crate::workflow::{JS_FEATURES, delivered_steps, sdk_rx, step_json, unb64, wf_headers};

async fn send(
    node: &Node,
    method: reqwest::Method,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> Value {
    let mut req = node.req(method, path).body(body.to_string());
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send().await.expect("send");
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

async fn trigger(node: &Node, url: &str, run: &str) {
    let headers: serde_json::Map<String, Value> = wf_headers(run, url, true)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let batch = json!([{"destination": url, "headers": headers, "body": "{}"}]);
    let h = [("content-type".to_string(), "application/json".to_string())];
    send(
        node,
        reqwest::Method::POST,
        "/v2/batch",
        &h,
        &batch.to_string(),
    )
    .await;
}

async fn wait(node: &Node, url: &str, run: &str, event: &str, timeout: &str) {
    let body = json!({
        "url": url, "timeout": timeout, "timeoutUrl": format!("{url}?timeout=1"),
        "timeoutHeaders": {"Upstash-Workflow-RunId": [run], "Upstash-Feature-Set": [JS_FEATURES],
                           "Upstash-Forward-Upstash-Workflow-Sdk-Version": ["1"]},
        "step": {"stepId": 2, "stepName": "wait", "stepType": "Wait", "concurrent": 1}
    });
    let headers = wf_headers(run, url, false);
    send(
        node,
        reqwest::Method::POST,
        &format!("/v2/wait/{event}"),
        &headers,
        &body.to_string(),
    )
    .await;
}

fn last_step(r: &Received) -> Value {
    serde_json::from_str(&delivered_steps(r).last().unwrap().1).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn persist_workflow_runs_survive_a_crash() {
    let dir = TempDir::new("workflow");
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let node = Node::start(&dir.0);
    let (a, b, c) = ("wfr_persist_a", "wfr_persist_b", "wfr_persist_c");
    for run in [a, b, c] {
        trigger(&node, &url, run).await;
    }
    rx.wait_for(3).await;
    // Run a: one step, then a wait of an hour; b: a wait of 30 s; c: notified before it waits.
    let headers = wf_headers(a, &url, false);
    send(
        &node,
        reqwest::Method::POST,
        &format!("/v2/publish/{url}"),
        &headers,
        &step_json(1, "s1", json!("one")),
    )
    .await;
    rx.wait_for(4).await;
    wait(&node, &url, a, "e-a", "1h").await;
    wait(&node, &url, b, "e-b", "30s").await;
    send(
        &node,
        reqwest::Method::POST,
        &format!("/v2/notify/{c}/e-c"),
        &[],
        "early",
    )
    .await;

    let paths = |runs: &[&str]| -> Vec<String> {
        let mut p: Vec<String> = runs
            .iter()
            .map(|r| format!("/v2/workflows/runs/{r}"))
            .collect();
        p.extend(["/v2/waiters/e-a".to_string(), "/v2/waiters/e-b".to_string()]);
        p
    };
    let mut before = Vec::new();
    for p in paths(&[a, b, c]) {
        before.push(node.get(&p).await);
    }
    node.stop("KILL");

    let node = Node::start(&dir.0);
    for (p, b) in paths(&[a, b, c]).iter().zip(&before) {
        assert_eq!(&node.get(p).await, b, "{p} differs after a crash");
    }
    // a's wait ends with the notification, its steps array intact.
    send(
        &node,
        reqwest::Method::POST,
        "/v2/notify/e-a",
        &[],
        "{\"paid\":true}",
    )
    .await;
    let woken = rx.wait_for(5).await.remove(4);
    assert_eq!(woken.header("upstash-workflow-runid"), Some(a));
    let steps = delivered_steps(&woken);
    assert_eq!(unb64_step(&steps[1].1), "\"one\"", "{steps:?}");
    assert_eq!(
        unb64(last_step(&woken)["out"].as_str().unwrap()),
        "{\"paid\":true}"
    );
    // c gets the notification stored before the crash as soon as it waits.
    wait(&node, &url, c, "e-c", "1h").await;
    let got = rx.wait_for(6).await.remove(5);
    assert_eq!(got.header("upstash-workflow-runid"), Some(c));
    assert_eq!(unb64(last_step(&got)["out"].as_str().unwrap()), "early");
    // b's wait times out on time.
    node.advance("31s").await;
    let timed_out = rx.wait_for(7).await.remove(6);
    assert_eq!(timed_out.target, "/wf?timeout=1");
    assert_eq!(last_step(&timed_out)["waitTimeout"], true);
    rx.assert_quiet(7, Duration::from_millis(300)).await;
}

/// The `out` of a step entry's JSON (entries carry the step the SDK published).
fn unb64_step(entry: &str) -> String {
    let v: Value = serde_json::from_str(entry).unwrap();
    v["out"].as_str().unwrap().to_string()
}

/// Every record write the server commits from now on, noted by a trigger in its database
/// (the server's writer runs it inside its own transactions).
fn note_record_writes(dir: &std::path::Path) -> rusqlite::Connection {
    let db = rusqlite::Connection::open(dir.join("qstash.db")).expect("open the database");
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    db.execute_batch(
        "CREATE TABLE test_writes (kind TEXT, key TEXT);
         CREATE TRIGGER test_note AFTER INSERT ON records
         BEGIN INSERT INTO test_writes VALUES (new.kind, new.key); END;",
    )
    .expect("add the trigger");
    db
}

fn record_writes(db: &rusqlite::Connection) -> Vec<(String, String)> {
    let mut q = db.prepare("SELECT kind, key FROM test_writes").unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A step of one run writes that run's record only, not the other runs kept (the whole book
/// was written at every step once: with thousands of finished runs kept, megabytes a step).
#[tokio::test(flavor = "multi_thread")]
async fn persist_a_workflow_step_writes_only_its_run() {
    let dir = TempDir::new("workflow-step");
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let node = Node::start(&dir.0);
    let (a, b) = ("wfr_step_a", "wfr_step_b");
    for run in [a, b] {
        trigger(&node, &url, run).await;
    }
    rx.wait_for(2).await;
    // The answers to those deliveries write their runs too: only then is the next write b's.
    node.post("/__qstash/idle?timeout=10s", &[], "").await;
    let db = note_record_writes(&dir.0);
    let headers = wf_headers(b, &url, false);
    send(
        &node,
        reqwest::Method::POST,
        &format!("/v2/publish/{url}"),
        &headers,
        &step_json(1, "s1", json!("one")),
    )
    .await;
    rx.wait_for(3).await;
    let written = record_writes(&db);
    assert!(
        written
            .iter()
            .any(|(k, key)| k == "workflow_run" && key.ends_with(&format!(":{b}"))),
        "run {b} was not written: {written:?}"
    );
    for (kind, key) in &written {
        assert!(
            !kind.starts_with("workflow") || key.ends_with(&format!(":{b}")),
            "a step of {b} wrote {kind} {key:?}: {written:?}"
        );
    }
    // The records read back: both runs are as they were after a crash, b with its step.
    let paths = [a, b].map(|r| format!("/v2/workflows/runs/{r}"));
    let mut before = Vec::new();
    for p in &paths {
        before.push(node.get(p).await);
    }
    node.stop("KILL");
    let node = Node::start(&dir.0);
    for (p, was) in paths.iter().zip(&before) {
        assert_eq!(&node.get(p).await, was, "{p} differs after a crash");
    }
}

/// MessagePack string header and bytes (short strings only).
fn mp_str(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 32, "{s}");
    out.push(0xa0 | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// Rewrites a format 2 directory as format 1 wrote it: each user's runs, waiters and
/// stored notifications as one `workflow_runs` record (the fields of its `Runs`). Spliced from the format 2 records'
/// bytes: a run record is `{finished, run}`, the index `{waiters, stored}`.
fn downgrade_to_format_1(dir: &std::path::Path) {
    let db = rusqlite::Connection::open(dir.join("qstash.db")).unwrap();
    let rows: Vec<(String, String, Vec<u8>)> = db
        .prepare("SELECT kind, key, value FROM records WHERE user = 0 AND kind LIKE 'workflow%'")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let (mut active, mut finished, mut index) = (Vec::new(), Vec::new(), None);
    for (kind, key, value) in rows {
        if kind == "workflow_index" {
            assert_eq!(value[0], 0x82, "index: a map of two");
            index = Some(value[1..].to_vec());
            continue;
        }
        // 0x82, "finished", nil or a small number, "run", the run.
        let head = 1 + 9;
        assert_eq!(&value[..head], b"\x82\xa8finished");
        let n = value[head];
        assert!(n == 0xc0 || n < 0x80, "finished: nil or a fixint");
        assert_eq!(&value[head + 1..head + 5], b"\xa3run");
        let run = value[head + 5..].to_vec();
        let id = key.split_once(':').unwrap().1.to_string();
        if n == 0xc0 {
            active.push((id, run));
        } else {
            finished.push((n, run));
        }
    }
    finished.sort_by_key(|(n, _)| *n);
    // Format 1 also kept `finished_bytes` (recomputed from the runs now).
    let mut legacy = vec![0x85];
    mp_str(&mut legacy, "finished_bytes");
    legacy.push(0x00);
    mp_str(&mut legacy, "active");
    legacy.push(0x80 | active.len() as u8);
    for (id, run) in &active {
        mp_str(&mut legacy, id);
        legacy.extend_from_slice(run);
    }
    mp_str(&mut legacy, "finished");
    legacy.push(0x90 | finished.len() as u8);
    for (_, run) in &finished {
        legacy.extend_from_slice(run);
    }
    legacy.extend_from_slice(&index.expect("an index record"));
    // Formats 1 and 2 kept the log WITHOUT ROWID, keyed (user, seq). (Its entries that name
    // a message row stay so: the reader takes both kinds whatever the format.) Messages had
    // no `created` column before format 4: the CREATED events it held are not compared.
    db.execute_batch(
        "DELETE FROM records WHERE kind LIKE 'workflow%';
         CREATE TABLE log_2 (
             user INTEGER NOT NULL, seq INTEGER NOT NULL, entry BLOB NOT NULL,
             PRIMARY KEY (user, seq)) WITHOUT ROWID;
         INSERT INTO log_2 SELECT user, seq, entry FROM log;
         DROP TABLE log;
         ALTER TABLE log_2 RENAME TO log;
         ALTER TABLE messages DROP COLUMN created;
         UPDATE meta SET value = '1' WHERE key = 'schema_version';",
    )
    .unwrap();
    db.execute(
        "INSERT INTO records (user, kind, key, value) VALUES (0, 'workflow_runs', '', ?1)",
        [legacy],
    )
    .unwrap();
}

/// A directory of format 1 (all of a user's runs in one record) opens: its runs, waiters
/// and stored notifications read back, and it is written as format 4 from then on.
#[tokio::test(flavor = "multi_thread")]
async fn persist_workflow_runs_of_format_1_are_upgraded() {
    let dir = TempDir::new("workflow-upgrade");
    let rx = sdk_rx().await;
    let url = format!("{}/wf", rx.url);
    let node = Node::start(&dir.0);
    let (a, b, c) = ("wfr_up_a", "wfr_up_b", "wfr_up_c");
    for run in [a, b, c] {
        trigger(&node, &url, run).await;
    }
    rx.wait_for(3).await;
    wait(&node, &url, a, "e-up", "1h").await;
    send(
        &node,
        reqwest::Method::POST,
        &format!("/v2/notify/{c}/e-c"),
        &[],
        "early",
    )
    .await;
    send(
        &node,
        reqwest::Method::DELETE,
        &format!("/v2/workflows/runs/{b}"),
        &[],
        "",
    )
    .await;
    // b is finished: only the logs show it.
    let paths: Vec<String> = [a, c]
        .iter()
        .map(|r| format!("/v2/workflows/runs/{r}"))
        .chain(["/v2/waiters/e-up", "/v2/workflows/logs"].map(String::from))
        .collect();
    let mut before = Vec::new();
    for p in &paths {
        before.push(node.get(p).await);
    }
    let logs = before.last().unwrap().to_string();
    assert!(logs.contains(b) && logs.contains("RUN_SUCCESS"), "{logs}");
    node.stop("TERM");
    downgrade_to_format_1(&dir.0);

    let node = Node::start(&dir.0);
    for (p, was) in paths.iter().zip(&before) {
        assert_eq!(&node.get(p).await, was, "{p} differs after the upgrade");
    }
    let db = rusqlite::Connection::open(dir.0.join("qstash.db")).unwrap();
    let (version, legacy): (String, i64) = db
        .query_row(
            "SELECT (SELECT value FROM meta WHERE key = 'schema_version'),
                    (SELECT count(*) FROM records WHERE kind = 'workflow_runs')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((version.as_str(), legacy), ("4", 0));
    // c's stored notification came along: it is handed over as soon as c waits.
    wait(&node, &url, c, "e-c", "1h").await;
    let got = rx.wait_for(4).await.remove(3);
    assert_eq!(got.header("upstash-workflow-runid"), Some(c));
    assert_eq!(unb64(last_step(&got)["out"].as_str().unwrap()), "early");
}
