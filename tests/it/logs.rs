//! The event log: `GET /v2/events` and `GET /v2/logs`, filters, cursors and retention.

use std::collections::HashSet;
use std::time::Duration;

use crate::common::{Receiver, Reply, TestServer, enc};
use base64::Engine;
use serde_json::Value;

const HOUR: (&str, &str) = ("Upstash-Delay", "1h");

fn states(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["state"].as_str().unwrap())
        .collect()
}

fn ids(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["messageId"].as_str().unwrap())
        .collect()
}

/// Follows the cursor of `GET {path}?{query}&count={count}` to the end; returns the pages.
/// The envelope key is `events` or `logs`, after the route.
async fn walk(server: &TestServer, path: &str, query: &str, count: usize) -> Vec<Vec<Value>> {
    let key = path.rsplit('/').next().unwrap();
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}?{query}&count={count}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", enc(c)));
        }
        let (status, json) = server.get_json(&url).await;
        assert_eq!(status, 200, "{url}: {json}");
        pages.push(json[key].as_array().unwrap().clone());
        match json.get("cursor") {
            None => return pages,
            Some(c) => {
                let c = c
                    .as_str()
                    .unwrap_or_else(|| panic!("cursor not a string: {c}"));
                assert!(!c.is_empty(), "an empty cursor makes Python loop forever");
                cursor = Some(c.to_string());
            }
        }
        assert!(pages.len() <= 200, "the cursor never ends");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn events_and_logs_list_the_same_entries_newest_first() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let delivered = server
        .publish(&format!("{}/now", rx.url), &[], "payload")
        .await;
    server.wait_state(&delivered, "DELIVERED").await;
    let delayed = server
        .publish(&format!("{}/later", rx.url), &[HOUR], "x")
        .await;
    let (status, events) = server.get_json("/v2/events").await;
    assert_eq!(status, 200);
    let (status, logs) = server.get_json("/v2/logs").await;
    assert_eq!(status, 200);
    assert!(events.get("cursor").is_none() && logs.get("cursor").is_none());
    let events = events["events"].as_array().unwrap();
    assert_eq!(events, logs["logs"].as_array().unwrap());
    assert_eq!(
        states(events),
        ["CREATED", "DELIVERED", "ACTIVE", "CREATED"]
    );
    assert_eq!(ids(events), [&delayed, &delivered, &delivered, &delivered]);
    let times: Vec<i64> = events.iter().map(|e| e["time"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    let created = &events[3];
    assert_eq!(created["url"], format!("{}/now", rx.url));
    assert_eq!(
        created["body"],
        base64::engine::general_purpose::STANDARD.encode("payload"),
        "log bodies are base64"
    );
    assert_eq!(
        events[0]["nextDeliveryTime"].as_i64().unwrap(),
        events[0]["time"].as_i64().unwrap() + 3_600_000
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_select_entries_and_combine() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    rx.route("/fail", Reply::status(500));
    let t0 = server.clock.now_ms();
    // t0: CREATED, ACTIVE, DELIVERED
    let ok = server
        .publish(&format!("{}/ok", rx.url), &[("Upstash-Label", "l1")], "x")
        .await;
    server.wait_state(&ok, "DELIVERED").await;
    server.advance(Duration::from_secs(1));
    // t0+1s: CREATED, ACTIVE, ERROR, RETRY
    let failing = server
        .publish(
            &format!("{}/fail", rx.url),
            &[("Upstash-Label", "l2"), ("Upstash-Retries", "1")],
            "x",
        )
        .await;
    server.wait_retries(&failing, 1).await;
    server.advance(Duration::from_secs(1));
    // t0+2s: CREATED, CANCEL_REQUESTED, CANCELED
    let cancelled = server
        .publish(&format!("{}/ok", rx.url), &[HOUR], "x")
        .await;
    let (status, _) = server
        .delete_json(&format!("/v2/messages/{cancelled}"))
        .await;
    assert_eq!(status, 200);

    let all = server.events("").await;
    assert_eq!(all.len(), 10, "{:?}", states(&all));
    let check = async |query: String, expected: &[(&str, &str)]| {
        let got = server.events(&query).await;
        let got: Vec<(&str, &str)> = got
            .iter()
            .map(|e| {
                (
                    e["messageId"].as_str().unwrap(),
                    e["state"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(got, expected, "{query}");
    };
    let (o, f, c) = (ok.as_str(), failing.as_str(), cancelled.as_str());
    check(
        format!("messageId={ok}"),
        &[(o, "DELIVERED"), (o, "ACTIVE"), (o, "CREATED")],
    )
    .await;
    check("state=DELIVERED".into(), &[(o, "DELIVERED")]).await;
    check(
        "state=IN_PROGRESS".into(),
        &[(f, "RETRY"), (f, "ERROR"), (f, "ACTIVE"), (o, "ACTIVE")],
    )
    .await;
    check("state=CANCELED".into(), &[(c, "CANCELED")]).await;
    check("state=CANCELLED".into(), &[(c, "CANCELED")]).await;
    check("state=CANCEL_REQUESTED".into(), &[(c, "CANCEL_REQUESTED")]).await;
    check(
        format!("url={}", enc(&format!("{}/fail", rx.url))),
        &[(f, "RETRY"), (f, "ERROR"), (f, "ACTIVE"), (f, "CREATED")],
    )
    .await;
    check(
        "label=l2".into(),
        &[(f, "RETRY"), (f, "ERROR"), (f, "ACTIVE"), (f, "CREATED")],
    )
    .await;
    assert_eq!(server.events("label=l1,l2").await.len(), 7);
    assert_eq!(server.events("label=l1&label=l2").await.len(), 7);
    check(
        format!("fromDate={}&toDate={}", t0 + 1000, t0 + 1000),
        &[(f, "RETRY"), (f, "ERROR"), (f, "ACTIVE"), (f, "CREATED")],
    )
    .await;
    check(
        format!("fromDate={}", t0 + 2000),
        &[(c, "CANCELED"), (c, "CANCEL_REQUESTED"), (c, "CREATED")],
    )
    .await;
    check(
        format!("toDate={t0}"),
        &[(o, "DELIVERED"), (o, "ACTIVE"), (o, "CREATED")],
    )
    .await;
    check(format!("messageId={ok}&state=ACTIVE"), &[(o, "ACTIVE")]).await;
    check(
        format!("url={}&label=l1", enc(&format!("{}/fail", rx.url))),
        &[],
    )
    .await;
    check(
        "count=2".into(),
        &[(c, "CANCELED"), (c, "CANCEL_REQUESTED")],
    )
    .await;
    let error = &server.events("state=ERROR").await[0];
    assert_eq!(error["responseStatus"], 500);
    assert!(error["error"].is_string(), "{error}");
    for bad in [
        "state=DONE",
        "count=abc",
        "count=0",
        "fromDate=yesterday",
        "cursor=zzz",
    ] {
        let (status, json) = server.get_json(&format!("/v2/events?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {json}");
        assert!(json["error"].is_string(), "{json}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cursor_pagination_reaches_the_end_without_a_cursor() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let mut published = Vec::new();
    for i in 0..25 {
        let label = if i % 2 == 0 { "even" } else { "odd" };
        published.push(
            server
                .publish(
                    &format!("{}/p", rx.url),
                    &[HOUR, ("Upstash-Label", label)],
                    "x",
                )
                .await,
        );
    }
    let newest_first: Vec<&str> = published.iter().rev().map(String::as_str).collect();
    for path in ["/v2/events", "/v2/logs"] {
        let pages = walk(&server, path, "", 10).await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5], "{path}");
        let all: Vec<Value> = pages.concat();
        assert_eq!(ids(&all), newest_first, "{path}");
    }
    // A page that ends exactly at the last entry carries no cursor either.
    let sizes: Vec<usize> = walk(&server, "/v2/events", "", 5)
        .await
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, [5, 5, 5, 5, 5]);
    // Filters apply on every page.
    let pages = walk(&server, "/v2/events", "label=even", 4).await;
    let even: Vec<Value> = pages.concat();
    assert_eq!(
        ids(&even),
        newest_first.iter().step_by(2).copied().collect::<Vec<_>>()
    );
    // New entries do not shift a walk that already started: the cursor resumes strictly
    // after the last entry returned.
    let (_, first) = server.get_json("/v2/events?count=10").await;
    for _ in 0..3 {
        server.publish(&format!("{}/p", rx.url), &[HOUR], "x").await;
    }
    let cursor = first["cursor"].as_str().unwrap();
    let (_, second) = server
        .get_json(&format!("/v2/events?count=10&cursor={}", enc(cursor)))
        .await;
    assert_eq!(
        ids(second["events"].as_array().unwrap()),
        newest_first[10..20]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_newest_10000_entries_are_kept_per_user() {
    const TOTAL: usize = 10_050;
    const EVICTED: usize = TOTAL - 10_000;
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let url = format!("{}/bulk", rx.url);
    let other = server.user(1).publish(&url, &[HOUR], "x").await;
    // The first EVICTED publishes, in order: exactly these must fall out of the log.
    let mut first = HashSet::new();
    for _ in 0..EVICTED {
        first.insert(server.publish(&url, &[HOUR], "x").await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 8;
    for w in 0..workers {
        let (http, base, url) = (server.http.clone(), server.url.clone(), url.clone());
        tasks.spawn(async move {
            for _ in (w..TOTAL - EVICTED).step_by(workers) {
                let resp = http
                    .post(format!("{base}/v2/publish/{url}"))
                    .bearer_auth(crate::common::TOKEN)
                    .header("Upstash-Delay", "1h")
                    .body("x")
                    .send()
                    .await
                    .expect("publish");
                assert_eq!(resp.status(), 200);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("publisher");
    }
    let (_, first_page) = server.get_json("/v2/events").await;
    assert_eq!(
        first_page["events"].as_array().unwrap().len(),
        100,
        "default page size"
    );
    assert!(first_page["cursor"].is_string());
    let (_, capped) = server.get_json("/v2/events?count=5000").await;
    assert_eq!(
        capped["events"].as_array().unwrap().len(),
        100,
        "count is capped at 100"
    );
    let pages = walk(&server, "/v2/events", "", 100).await;
    assert_eq!(pages.len(), 100);
    let all: Vec<Value> = pages.concat();
    assert_eq!(all.len(), 10_000);
    let kept: HashSet<&str> = ids(&all).into_iter().collect();
    assert_eq!(kept.len(), 10_000, "one CREATED entry per message");
    assert!(
        first.iter().all(|id| !kept.contains(id.as_str())),
        "the oldest went first"
    );
    let evicted = first.iter().next().unwrap();
    assert_eq!(
        server.events(&format!("messageId={evicted}")).await.len(),
        0
    );
    // Another user's log is its own.
    let theirs = server.user(1).events("").await;
    assert_eq!(ids(&theirs), [other.as_str()]);
}
