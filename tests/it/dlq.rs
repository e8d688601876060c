//! The dead-letter queue: list, get, delete and retry, one by one and in bulk.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::{Receiver, Reply, TestServer, enc, status_json};
use serde_json::{Value, json};

fn dlq_ids(json: &Value) -> Vec<&str> {
    json["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("no messages array: {json}"))
        .iter()
        .map(|m| m["dlqId"].as_str().unwrap())
        .collect()
}

fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> HashSet<&'a str> {
    items.into_iter().collect()
}

async fn list(server: &TestServer, query: &str) -> Value {
    let (status, json) = server.get_json(&format!("/v2/dlq{query}")).await;
    assert_eq!(status, 200, "{query}: {json}");
    json
}

#[tokio::test(flavor = "multi_thread")]
async fn list_filters_count_and_cursor() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    rx.route("/fail", Reply::status(500).body("nope"));
    rx.route("/gone", Reply::status(404));
    let t0 = server.clock.now_ms();
    let mut entries = Vec::new();
    for (path, label) in [
        ("fail/1", "a"),
        ("fail/2", "b"),
        ("gone/3", "b"),
        ("fail/4", "c"),
    ] {
        entries.push(
            server
                .dead_letter(&format!("{}/{path}", rx.url), &[("Upstash-Label", label)])
                .await,
        );
        server.advance(Duration::from_secs(1));
    }
    let d: Vec<&str> = entries.iter().map(|(_, d)| d.as_str()).collect();
    let all = list(&server, "").await;
    assert!(all.get("cursor").is_none());
    assert_eq!(set(dlq_ids(&all)), set(d.clone()));
    let first = all["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["dlqId"] == d[0])
        .unwrap();
    assert_eq!(first["messageId"], entries[0].0.as_str());
    assert_eq!(first["url"], format!("{}/fail/1", rx.url));
    assert_eq!(first["method"], "POST");
    assert_eq!(first["maxRetries"], 0);
    assert_eq!(first["body"], "dead");
    assert_eq!(first["responseStatus"], 500);
    assert_eq!(first["responseBody"], "nope");
    assert_eq!(first["createdAt"], t0);
    assert!(first["notBefore"].is_i64());

    let filtered = async |query: String, expected: &[usize]| {
        let json = list(&server, &query).await;
        assert_eq!(
            set(dlq_ids(&json)),
            set(expected.iter().map(|i| d[*i])),
            "{query}"
        );
    };
    filtered(format!("?messageId={}", entries[1].0), &[1]).await;
    filtered(format!("?url={}", enc(&format!("{}/fail/1", rx.url))), &[0]).await;
    filtered("?responseStatus=404".into(), &[2]).await;
    filtered("?label=b".into(), &[1, 2]).await;
    filtered("?label=b&responseStatus=500".into(), &[1]).await;
    filtered(
        format!("?fromDate={}&toDate={}", t0 + 1000, t0 + 2000),
        &[1, 2],
    )
    .await;
    filtered(format!("?dlqIds={}&dlqIds={}", d[0], d[3]), &[0, 3]).await;
    filtered(format!("?dlqIds={},{}", d[0], d[3]), &[0, 3]).await;

    let page1 = list(&server, "?count=3").await;
    assert_eq!(dlq_ids(&page1).len(), 3);
    let cursor = page1["cursor"]
        .as_str()
        .expect("a cursor while more remain");
    let page2 = list(&server, &format!("?count=3&cursor={}", enc(cursor))).await;
    assert!(page2.get("cursor").is_none(), "{page2}");
    let mut walked = dlq_ids(&page1);
    walked.extend(dlq_ids(&page2));
    assert_eq!(walked.len(), 4);
    assert_eq!(set(walked), set(d.clone()));
    let page1 = list(&server, "?count=2").await;
    let page2 = list(
        &server,
        &format!("?count=2&cursor={}", enc(page1["cursor"].as_str().unwrap())),
    )
    .await;
    assert_eq!(dlq_ids(&page2).len(), 2);
    assert!(page2.get("cursor").is_none(), "exactly at the end: {page2}");
}

#[tokio::test(flavor = "multi_thread")]
async fn get_and_delete_one_entry() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let (id, d) = server.dead_letter(&format!("{}/x", rx.url), &[]).await;
    let (status, entry) = server.get_json(&format!("/v2/dlq/{d}")).await;
    assert_eq!(status, 200);
    assert_eq!(entry["dlqId"], d.as_str());
    assert_eq!(entry["messageId"], id.as_str());
    assert_eq!(entry["responseStatus"], 500);
    let resp = server.delete(&format!("/v2/dlq/{d}")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    for _ in 0..2 {
        let (status, json) = server.get_json(&format!("/v2/dlq/{d}")).await;
        assert_eq!(status, 404, "{json}");
        assert!(json["error"].is_string());
        let (status, json) = server.delete_json(&format!("/v2/dlq/{d}")).await;
        assert_eq!(status, 404, "deleting twice: {json}");
        assert!(json["error"].is_string());
    }
    for unknown in ["1-1", "garbage", "99999999999999999999-0"] {
        let (status, _) = server.get_json(&format!("/v2/dlq/{unknown}")).await;
        assert_eq!(status, 404, "{unknown}");
    }
    assert_eq!(list(&server, "").await["messages"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_expire_after_the_quota_retention() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let (_, d) = server.dead_letter(&format!("{}/x", rx.url), &[]).await;
    const WEEK: u64 = 7 * 86_400;
    server.advance(Duration::from_secs(WEEK - 1));
    let (status, _) = server.get_json(&format!("/v2/dlq/{d}")).await;
    assert_eq!(status, 200, "payg keeps entries for 7 days");
    server.advance(Duration::from_secs(2));
    let (status, _) = server.get_json(&format!("/v2/dlq/{d}")).await;
    assert_eq!(status, 404);
    assert_eq!(list(&server, "").await["messages"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_delete_by_ids_json_body_or_everything() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let mut d = Vec::new();
    for i in 0..9 {
        d.push(server.dead_letter(&format!("{}/{i}", rx.url), &[]).await.1);
    }
    let deleted = async |query: String| {
        let (status, json) = server.delete_json(&format!("/v2/dlq{query}")).await;
        assert_eq!(status, 200, "{query}: {json}");
        json
    };
    assert_eq!(
        deleted(format!("?dlqIds={}&dlqIds={}", d[0], d[1])).await,
        json!({"deleted": 2})
    );
    assert_eq!(
        deleted(format!("?dlqIds={},{}", d[2], d[3])).await,
        json!({"deleted": 2})
    );
    let resp = server
        .delete("/v2/dlq")
        .header("Content-Type", "application/json")
        .body(json!({"dlqIds": [d[4], d[0]]}).to_string())
        .send()
        .await
        .unwrap();
    let (status, json) = status_json(resp).await;
    assert_eq!(status, 200);
    assert_eq!(json, json!({"deleted": 1}), "d[0] was already gone");
    assert_eq!(
        set(dlq_ids(&list(&server, "").await)),
        set(d[5..].iter().map(String::as_str))
    );
    // No selector: everything, a page at a time.
    let json = deleted("?count=3".into()).await;
    assert_eq!(json["deleted"], 3);
    assert!(json["cursor"].is_string(), "more remain: {json}");
    let json = deleted(String::new()).await;
    assert_eq!(json, json!({"deleted": 1}));
    assert_eq!(list(&server, "").await["messages"], json!([]));
    assert_eq!(deleted(String::new()).await, json!({"deleted": 0}));
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_republishes_as_a_new_message_which_is_delivered() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    rx.script("/flaky", Reply::status(500));
    rx.script("/flaky", Reply::status(503));
    let id = server
        .publish(
            &format!("{}/flaky?x=1", rx.url),
            &[
                ("Upstash-Retries", "1"),
                ("Upstash-Forward-Thing", "yes"),
                ("Content-Type", "text/plain"),
            ],
            "again",
        )
        .await;
    server.wait_retries(&id, 1).await;
    server.advance(Duration::from_secs(12));
    server.wait_state(&id, "FAILED").await;
    let d = dlq_ids(&list(&server, "").await)[0].to_string();
    let resp = server
        .post(&format!("/v2/dlq/retry/{d}"))
        .header("Upstash-Retries", "0")
        .send()
        .await
        .unwrap();
    let (status, json) = status_json(resp).await;
    assert!(status.is_success(), "{status} {json}");
    let new = json["messageId"].as_str().expect("messageId").to_string();
    assert!(new.starts_with("msg_") && new != id, "{new}");
    let (status, _) = server.get_json(&format!("/v2/dlq/{d}")).await;
    assert_eq!(status, 404, "the entry left the DLQ");
    let got = rx.wait_for(3).await;
    let r = &got[2];
    assert_eq!(r.header("upstash-message-id"), Some(new.as_str()));
    assert_eq!(r.target, "/flaky?x=1");
    assert_eq!(&r.body[..], b"again");
    assert_eq!(r.header("thing"), Some("yes"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("upstash-retried"), Some("0"));
    assert_eq!(r.signature_error, None);
    assert_eq!(
        server.wait_state(&new, "DELIVERED").await,
        ["CREATED", "ACTIVE", "DELIVERED"]
    );
    let (_, m) = server.get_json(&format!("/v2/messages/{new}")).await;
    assert_eq!(m["maxRetries"], 0, "the override applies: {m}");
    assert_eq!(server.states(&id).await.last().unwrap(), "FAILED");
    let (status, _) = status_json(
        server
            .post(&format!("/v2/dlq/retry/{d}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404, "retrying twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn retry_overrides_decide_how_the_new_message_fails() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.script(
        "/down",
        Reply::status(489).header("Upstash-NonRetryable-Error", "true"),
    );
    rx.set_default(Reply::status(500));
    let id = server
        .publish(
            &format!("{}/down", rx.url),
            &[("Upstash-Retries", "5")],
            "x",
        )
        .await;
    server.wait_state(&id, "FAILED").await;
    let d = dlq_ids(&list(&server, "").await)[0].to_string();
    let resp = server
        .post(&format!("/v2/dlq/retry/{d}"))
        .header("Upstash-Retries", "0")
        .send()
        .await
        .unwrap();
    let (_, json) = status_json(resp).await;
    let new = json["messageId"].as_str().unwrap().to_string();
    // Without the override it would be retried 5 times.
    assert_eq!(
        server.wait_state(&new, "FAILED").await,
        ["CREATED", "ACTIVE", "ERROR", "FAILED"]
    );
    let entries = list(&server, "").await;
    let again = &entries["messages"][0];
    assert_eq!(again["messageId"], new.as_str());
    assert_eq!(again["maxRetries"], 0);
    assert_ne!(
        again["dlqId"],
        d.as_str(),
        "a second failure gets a new DLQ id"
    );
    // An invalid override is refused and the entry stays.
    let d2 = again["dlqId"].as_str().unwrap();
    let resp = server
        .post(&format!("/v2/dlq/retry/{d2}"))
        .header("Upstash-Retries", "lots")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let (status, _) = server.get_json(&format!("/v2/dlq/{d2}")).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_retry_by_ids_or_everything() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    for _ in 0..3 {
        rx.script("/r", Reply::status(500));
    }
    let mut dead = Vec::new();
    for i in 0..3 {
        dead.push(server.dead_letter(&format!("{}/r/{i}", rx.url), &[]).await);
    }
    let retry = async |query: String| {
        let resp = server
            .post(&format!("/v2/dlq/retry{query}"))
            .send()
            .await
            .unwrap();
        let (status, json) = status_json(resp).await;
        (status.as_u16(), json)
    };
    let (status, json) = retry(format!("?dlqIds={}&dlqIds={}", dead[0].1, dead[1].1)).await;
    assert!((200..300).contains(&status), "{status} {json}");
    let responses = json["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), 2, "{json}");
    let new: Vec<String> = responses
        .iter()
        .map(|r| r["messageId"].as_str().unwrap().to_string())
        .collect();
    assert!(new.iter().all(|n| n.starts_with("msg_")));
    assert!(new.iter().all(|n| dead.iter().all(|(old, _)| old != n)));
    assert_ne!(new[0], new[1]);
    assert_eq!(dlq_ids(&list(&server, "").await), [dead[2].1.as_str()]);
    for n in &new {
        server.wait_state(n, "DELIVERED").await;
    }
    let targets: HashSet<String> = rx.wait_for(5).await[3..]
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(targets, HashSet::from(["/r/0".into(), "/r/1".into()]));

    let (status, json) = retry(format!("?dlqIds={}", dead[0].1)).await;
    assert_eq!(status, 404, "already retried: {json}");
    assert_eq!(dlq_ids(&list(&server, "").await), [dead[2].1.as_str()]);

    let (status, json) = retry(String::new()).await;
    assert!((200..300).contains(&status), "{status} {json}");
    assert_eq!(json["responses"].as_array().unwrap().len(), 1, "{json}");
    assert!(json.get("cursor").is_none_or(|c| c == ""), "{json}");
    assert_eq!(list(&server, "").await["messages"], json!([]));
    let last = json["responses"][0]["messageId"].as_str().unwrap();
    server.wait_state(last, "DELIVERED").await;
}

/// More entries than one page holds (100).
const BEYOND_A_PAGE: usize = 101;

/// Fills the DLQ with `n` entries; returns their DLQ ids.
async fn many_dead_letters(server: &TestServer, rx: &Receiver, n: usize) -> Vec<String> {
    rx.route("/many", Reply::status(500));
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(
            server
                .publish(
                    &format!("{}/many/{i}", rx.url),
                    &[("Upstash-Retries", "0")],
                    "x",
                )
                .await,
        );
    }
    for id in &ids {
        server.wait_state(id, "FAILED").await;
    }
    let mut dead = Vec::new();
    let mut query = "?count=100".to_string();
    loop {
        let page = list(server, &query).await;
        dead.extend(dlq_ids(&page).into_iter().map(String::from));
        match page["cursor"].as_str() {
            Some(c) => query = format!("?count=100&cursor={}", enc(c)),
            None => break,
        }
    }
    assert_eq!(dead.len(), n);
    dead
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_delete_removes_every_listed_id_not_just_one_page() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let dead = many_dead_letters(&server, &rx, BEYOND_A_PAGE).await;
    let page = list(&server, "?count=500").await;
    assert_eq!(dlq_ids(&page).len(), 100, "count is capped at 100");
    assert!(page["cursor"].is_string());
    let page = list(&server, "").await;
    assert_eq!(dlq_ids(&page).len(), 100, "the default page is 100");
    // Python's `dlq.delete_many(ids)` sends one JSON body and reads `deleted` once.
    let resp = server
        .delete("/v2/dlq")
        .header("Content-Type", "application/json")
        .body(json!({ "dlqIds": dead }).to_string())
        .send()
        .await
        .unwrap();
    let (status, json) = status_json(resp).await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["deleted"], BEYOND_A_PAGE, "{json}");
    assert_eq!(list(&server, "").await["messages"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn bulk_retry_retries_every_listed_id_not_just_one_page() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let dead = many_dead_letters(&server, &rx, BEYOND_A_PAGE).await;
    // The JS SDK's `dlq.retry({dlqIds})` sends them all as query parameters in one call.
    let query: Vec<String> = dead.iter().map(|d| format!("dlqIds={d}")).collect();
    let resp = server
        .post(&format!("/v2/dlq/retry?{}", query.join("&")))
        .send()
        .await
        .unwrap();
    let (status, json) = status_json(resp).await;
    assert!(status.is_success(), "{status} {json}");
    assert_eq!(
        json["responses"].as_array().map(Vec::len),
        Some(BEYOND_A_PAGE),
        "{json}"
    );
}
