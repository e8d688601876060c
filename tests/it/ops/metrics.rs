//! `GET /metrics`: the Prometheus text format, scraped over real HTTP after real traffic.

use std::time::Duration;

use serde_json::json;

use crate::common::ext::{eventually, send};
use crate::common::{Receiver, Reply, TestServer};

async fn scrape(server: &TestServer) -> String {
    // No token: a Prometheus scraper has none.
    let resp = server
        .http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    resp.text().await.unwrap()
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn must(text: &str, series: &str) -> f64 {
    sample(text, series).unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn message_outcomes_latency_and_requests_by_route_template() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.route("/fail", Reply::status(500));
    let delivered = server.publish(&format!("{}/ok", rx.url), &[], "a").await;
    server.wait_state(&delivered, "DELIVERED").await;
    let (_, dlq_id) = server.dead_letter(&format!("{}/fail", rx.url), &[]).await;
    // One 404 for a message id, one 401 without a token.
    let (status, _) = send(server.get("/v2/messages/msg_nope")).await;
    assert_eq!(status, 404);
    let resp = server
        .http
        .get(format!("{}/v2/messages/{delivered}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let text = scrape(&server).await;
    let user = r#"user="defaultUser""#;
    for (outcome, n) in [
        ("accepted", 2.0),
        ("attempted", 2.0),
        ("delivered", 1.0),
        ("failed", 1.0),
        ("dead_lettered", 1.0),
        ("cancelled", 0.0),
    ] {
        let series = format!(r#"qstash_messages_total{{{user},outcome="{outcome}"}}"#);
        assert_eq!(must(&text, &series), n, "{series}");
    }
    assert_eq!(
        must(
            &text,
            r#"qstash_messages_total{user="testUser1",outcome="accepted"}"#
        ),
        0.0
    );
    for outcome in ["success", "error"] {
        let count =
            format!(r#"qstash_delivery_duration_seconds_count{{{user},outcome="{outcome}"}}"#);
        assert_eq!(must(&text, &count), 1.0, "{count}");
        let inf = format!(
            r#"qstash_delivery_duration_seconds_bucket{{{user},outcome="{outcome}",le="+Inf"}}"#
        );
        assert_eq!(must(&text, &inf), 1.0, "{inf}");
    }
    assert_eq!(must(&text, &format!("qstash_dlq_messages{{{user}}}")), 1.0);
    let publish = r#"qstash_http_requests_total{method="POST",route="/v2/publish/{*destination}",status="201"}"#;
    let publishes = sample(&text, publish)
        .or_else(|| sample(&text, &publish.replace("201", "200")))
        .unwrap_or_else(|| panic!("no publish count in\n{text}"));
    assert_eq!(publishes, 2.0);
    assert_eq!(
        must(
            &text,
            r#"qstash_http_requests_total{method="GET",route="/v2/messages/{id}",status="404"}"#
        ),
        1.0
    );
    assert_eq!(
        must(
            &text,
            r#"qstash_http_requests_total{method="GET",route="/v2/messages/{id}",status="401"}"#
        ),
        1.0
    );
    // Route templates only: no message id, DLQ id or unknown path becomes a label.
    assert!(!text.contains(&delivered), "{text}");
    assert!(!text.contains("msg_nope"), "{text}");
    assert!(!text.contains(&dlq_id), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn gauges_for_queues_flow_control_schedules_and_in_flight() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.route("/slow", Reply::status(200).delay(Duration::from_secs(3)));
    let (status, body) = server
        .post_json(
            "/v2/queues",
            &json!({"queueName": "orders", "parallelism": 1, "paused": true}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..2 {
        let (status, body) = server
            .post_raw(&format!("/v2/enqueue/orders/{}/q", rx.url), &[], "q")
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // Parallelism 1: one in flight on the slow endpoint, two on the key's waitlist.
    let fc = [
        ("Upstash-Flow-Control-Key", "emails"),
        ("Upstash-Flow-Control-Value", "parallelism=1"),
    ];
    for _ in 0..3 {
        server.publish(&format!("{}/slow", rx.url), &fc, "f").await;
    }
    let (status, body) = server
        .post_raw(
            &format!("/v2/schedules/{}/tick", rx.url),
            &[("Upstash-Cron", "0 0 1 1 *")],
            "s",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    rx.wait_for(1).await;

    let user = r#"user="defaultUser""#;
    let text = eventually("the flow-control waitlist", || async {
        let text = scrape(&server).await;
        (sample(
            &text,
            &format!(r#"qstash_flow_control_waitlist{{{user},key="emails"}}"#),
        ) == Some(2.0))
        .then_some(text)
    })
    .await;
    assert_eq!(
        must(
            &text,
            &format!(r#"qstash_flow_control_in_flight{{{user},key="emails"}}"#)
        ),
        1.0
    );
    assert_eq!(
        must(
            &text,
            &format!(r#"qstash_queue_messages{{{user},queue="orders",state="waiting"}}"#)
        ),
        2.0
    );
    assert_eq!(
        must(&text, &format!("qstash_deliveries_in_flight{{{user}}}")),
        1.0
    );
    assert_eq!(
        must(&text, &format!("qstash_messages_unfinished{{{user}}}")),
        5.0
    );
    assert_eq!(
        must(
            &text,
            &format!(r#"qstash_schedules{{{user},state="active"}}"#)
        ),
        1.0
    );
    assert_eq!(
        must(
            &text,
            &format!(r#"qstash_schedules{{{user},state="paused"}}"#)
        ),
        0.0
    );
    assert!(text.contains("qstash_build_info{version="), "{text}");
}
