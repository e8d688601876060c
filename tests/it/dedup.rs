//! Deduplication by id and by content: 202 with the original message id inside the 10-minute
//! window, one delivery, a new message after the window; what content identity includes.

use std::time::Duration;

use crate::common::{Receiver, TestServer};
use qstash::users::USERS;
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(150);

/// (what changes, destination, headers, body)
type Variant<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str);

async fn publish(
    server: &TestServer,
    dest: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    server
        .post_raw(&format!("/v2/publish/{dest}"), headers, body)
        .await
}

fn id(v: &Value) -> &str {
    v["messageId"]
        .as_str()
        .unwrap_or_else(|| panic!("no messageId: {v}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn deduplication_id_holds_for_ten_minutes() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let dest = format!("{}/d", rx.url);
    let (status, first) = publish(
        &server,
        &dest,
        &[("Upstash-Deduplication-Id", "abc")],
        "one",
    )
    .await;
    assert_eq!(status, 200, "{first}");
    assert_ne!(first["deduplicated"], true);
    let first_id = id(&first).to_string();
    rx.wait_for(1).await;

    // Same id, other body and even another destination: a duplicate.
    let (status, dup) = publish(
        &server,
        &dest,
        &[("Upstash-Deduplication-Id", "abc")],
        "two",
    )
    .await;
    assert_eq!(status, 202, "{dup}");
    assert_eq!(id(&dup), first_id);
    assert_eq!(dup["deduplicated"], true);
    server.advance(Duration::from_secs(599));
    let (status, dup) = publish(
        &server,
        &format!("{}/other", rx.url),
        &[("upstash-deduplication-id", "abc")],
        "three",
    )
    .await;
    assert_eq!(status, 202, "still inside the window: {dup}");
    assert_eq!(id(&dup), first_id);
    rx.assert_quiet(1, QUIET).await;
    assert_eq!(&rx.received()[0].body[..], b"one");
    assert_eq!(
        server.log_entries("state=CREATED").await.len(),
        1,
        "no message and no log entry for duplicates"
    );

    // Another id is independent.
    let (status, other) =
        publish(&server, &dest, &[("Upstash-Deduplication-Id", "abd")], "x").await;
    assert_eq!(status, 200);
    assert_ne!(id(&other), first_id);
    rx.wait_for(2).await;

    // Past the window the same id creates a new message.
    server.advance(Duration::from_secs(2));
    let (status, again) = publish(
        &server,
        &dest,
        &[("Upstash-Deduplication-Id", "abc")],
        "four",
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_ne!(again["deduplicated"], true);
    let again_id = id(&again).to_string();
    assert_ne!(again_id, first_id);
    let got = rx.wait_for(3).await;
    assert_eq!(&got[2].body[..], b"four");
    server.wait_state(&again_id, "DELIVERED").await;
    // …and that new message opens a new window.
    let (status, dup) = publish(
        &server,
        &dest,
        &[("Upstash-Deduplication-Id", "abc")],
        "five",
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(id(&dup), again_id);
    rx.assert_quiet(3, QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn content_based_identity_is_destination_body_content_type_and_forwarded_headers() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let dest = format!("{}/c", rx.url);
    let base: Vec<(&str, &str)> = vec![
        ("Upstash-Content-Based-Deduplication", "true"),
        ("Content-Type", "application/json"),
        ("Upstash-Forward-X-A", "1"),
    ];
    let (status, first) = publish(&server, &dest, &base, "{}").await;
    assert_eq!(status, 200);
    let first_id = id(&first).to_string();

    // Same content: duplicate, also with headers that are not part of the identity.
    let mut same = base.clone();
    same.push(("X-Not-Forwarded", "whatever"));
    same.push(("Upstash-Retries", "1"));
    let (status, dup) = publish(&server, &dest, &same, "{}").await;
    assert_eq!(status, 202, "{dup}");
    assert_eq!(id(&dup), first_id);
    assert_eq!(dup["deduplicated"], true);

    // Each part of the identity makes a new message.
    let with = |k: &'static str, v: &'static str| {
        let mut h: Vec<(&str, &str)> = base.iter().filter(|(n, _)| *n != k).cloned().collect();
        h.push((k, v));
        h
    };
    let variants: Vec<Variant> = vec![
        ("body", dest.clone(), base.clone(), "{ }"),
        (
            "content type",
            dest.clone(),
            with("Content-Type", "text/plain"),
            "{}",
        ),
        (
            "forwarded value",
            dest.clone(),
            with("Upstash-Forward-X-A", "2"),
            "{}",
        ),
        (
            "extra forwarded header",
            dest.clone(),
            {
                let mut h = base.clone();
                h.push(("Upstash-Forward-X-B", "1"));
                h
            },
            "{}",
        ),
        ("destination", format!("{}/c2", rx.url), base.clone(), "{}"),
        (
            "destination query",
            format!("{}/c?q=1", rx.url),
            base.clone(),
            "{}",
        ),
    ];
    let mut ids = vec![first_id.clone()];
    for (what, d, headers, body) in &variants {
        let (status, resp) = publish(&server, d, headers, body).await;
        assert_eq!(status, 200, "{what} changes the identity: {resp}");
        assert!(!ids.contains(&id(&resp).to_string()), "{what}: {resp}");
        ids.push(id(&resp).to_string());
    }
    rx.wait_for(1 + variants.len()).await;
    rx.assert_quiet(1 + variants.len(), QUIET).await;

    // Python sends `True`.
    let py = [("Upstash-Content-Based-Deduplication", "True")];
    let (status, p1) = publish(&server, &dest, &py, "py").await;
    assert_eq!(status, 200);
    let (status, p2) = publish(&server, &dest, &py, "py").await;
    assert_eq!(status, 202, "True is true: {p2}");
    assert_eq!(id(&p1), id(&p2));

    // Without the header (or with false) identical publishes are separate messages.
    let (_, n1) = publish(&server, &dest, &[], "same").await;
    let (status, n2) = publish(
        &server,
        &dest,
        &[("Upstash-Content-Based-Deduplication", "false")],
        "same",
    )
    .await;
    assert_eq!(status, 200);
    assert_ne!(id(&n1), id(&n2));

    // Past 10 minutes the same content is new again.
    server.advance(Duration::from_secs(601));
    let (status, later) = publish(&server, &dest, &base, "{}").await;
    assert_eq!(status, 200, "{later}");
    assert_ne!(id(&later), first_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn deduplication_is_per_user() {
    let server = TestServer::start().await;
    let rx =
        Receiver::start_with_keys(&[USERS[0].current_signing_key, USERS[1].current_signing_key])
            .await;
    let dest = format!("{}/u", rx.url);
    let (status, mine) = publish(
        &server,
        &dest,
        &[("Upstash-Deduplication-Id", "shared")],
        "x",
    )
    .await;
    assert_eq!(status, 200);
    let other = |headers: Vec<(&'static str, &'static str)>| {
        let mut req = server
            .http
            .post(format!("{}/v2/publish/{dest}", server.url))
            .bearer_auth(USERS[1].token)
            .body("x");
        for (k, v) in headers {
            req = req.header(k, v);
        }
        crate::common::ext::send(req)
    };
    let (status, theirs) = other(vec![("Upstash-Deduplication-Id", "shared")]).await;
    assert_eq!(status, 200, "another user's id space: {theirs}");
    assert_ne!(id(&theirs), id(&mine));
    let (status, _) = publish(
        &server,
        &dest,
        &[("Upstash-Content-Based-Deduplication", "true")],
        "cb",
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = other(vec![("Upstash-Content-Based-Deduplication", "true")]).await;
    assert_eq!(status, 200, "content identity is per user too");
    let got = rx.wait_for(4).await;
    rx.assert_quiet(4, QUIET).await;
    assert!(got.iter().all(|r| r.signature_error.is_none()));
    let (status, dup) = other(vec![("Upstash-Deduplication-Id", "shared")]).await;
    assert_eq!(status, 202);
    assert_eq!(id(&dup), id(&theirs));
}

#[tokio::test(flavor = "multi_thread")]
async fn groups_batches_and_enqueues_are_deduplicated_too() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    server
        .post_json(
            "/v2/topics/dg/endpoints",
            &json!({"endpoints": [{"url": format!("{}/g1", rx.url)}, {"url": format!("{}/g2", rx.url)}]}),
        )
        .await;
    let headers = [("Upstash-Deduplication-Id", "grp-1")];
    let (status, first) = publish(&server, "dg", &headers, "g").await;
    assert_eq!(status, 200, "{first}");
    let (status, dup) = publish(&server, "dg", &headers, "g").await;
    assert_eq!(status, 202, "{dup}");
    let dup = dup.as_array().expect("the original array");
    assert_eq!(dup.len(), 2);
    for (d, f) in dup.iter().zip(first.as_array().unwrap()) {
        assert_eq!(d["messageId"], f["messageId"]);
        assert_eq!(d["url"], f["url"]);
        assert_eq!(d["deduplicated"], true);
    }

    // Enqueue.
    let path = format!("/v2/enqueue/dq/{}/q", rx.url);
    let (status, e1) = server
        .post_raw(&path, &[("Upstash-Deduplication-Id", "q-1")], "q")
        .await;
    assert_eq!(status, 200);
    let (status, e2) = server
        .post_raw(&path, &[("Upstash-Deduplication-Id", "q-1")], "q")
        .await;
    assert_eq!(status, 202);
    assert_eq!(id(&e1), id(&e2));

    // Batch: each item on its own; the batch itself answers 200.
    let item = json!({"destination": format!("{}/b", rx.url), "headers": {"upstash-deduplication-id": "b-1"}, "body": "b"});
    let (status, b) = server
        .post_json(
            "/v2/batch",
            &json!([item, item, {"destination": format!("{}/b2", rx.url)}]),
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b[0]["messageId"], b[1]["messageId"], "{b}");
    assert_ne!(b[0]["deduplicated"], true);
    assert_eq!(b[1]["deduplicated"], true, "{b}");
    assert_ne!(b[2]["messageId"], b[0]["messageId"]);

    // 2 group endpoints + 1 enqueue + 2 distinct batch messages.
    rx.wait_for(5).await;
    rx.assert_quiet(5, QUIET).await;
}
