//! QStash as a webhook receiver: configuration through query parameters, `?qstash_token=`
//! instead of Authorization, `Upstash-Header-Forward`, and `Upstash-Redact-Fields`.

use std::time::Duration;

use crate::common::ext::send;
use crate::common::{Receiver, Reply, TOKEN, TestServer};
use base64::Engine;
use serde_json::{Value, json};

const QUIET: Duration = Duration::from_millis(150);

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &str) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_else(|e| panic!("{s:?} is not base64: {e}")),
    )
    .unwrap()
}

/// A publish without any Authorization header.
async fn tokenless(
    server: &TestServer,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let mut req = server
        .http
        .post(format!("{}/v2/publish/{target}", server.url))
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(req).await
}

#[tokio::test(flavor = "multi_thread")]
async fn query_parameters_configure_a_tokenless_publish_and_are_not_delivered() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let (status, resp) = tokenless(
        &server,
        &format!(
            "{}/hook?a=1&qstash_token={TOKEN}&upstash-retries=0&upstash-delay=10s&upstash-forward-x-a=b&Upstash-Method=PUT&b=2",
            rx.url
        ),
        &[],
        "event",
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let id = resp["messageId"].as_str().unwrap().to_string();
    let (_, msg) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(msg["url"], format!("{}/hook?a=1&b=2", rx.url), "{msg}");
    assert_eq!(msg["maxRetries"], 0, "{msg}");
    assert_eq!(msg["method"], "PUT", "{msg}");
    assert_eq!(
        msg["notBefore"].as_i64().unwrap(),
        msg["createdAt"].as_i64().unwrap() + 10_000,
        "{msg}"
    );
    assert_eq!(msg["header"]["X-A"], json!(["b"]), "{msg}");
    server.advance(Duration::from_millis(9_999));
    rx.assert_quiet(0, QUIET).await;
    server.advance(Duration::from_millis(1));
    let got = rx.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.target, "/hook?a=1&b=2", "token and config params removed");
    assert_eq!(r.signature_error, None);
    assert_eq!(r.method, "PUT");
    assert_eq!(r.header("x-a"), Some("b"));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(
        server.wait_state(&id, "FAILED").await,
        ["CREATED", "ACTIVE", "ERROR", "FAILED"],
        "upstash-retries=0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_header_beats_the_query_parameter_and_bad_tokens_are_refused() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let (status, resp) = tokenless(
        &server,
        &format!(
            "{}/h?qstash_token={TOKEN}&upstash-retries=0&upstash-delay=1m",
            rx.url
        ),
        &[("Upstash-Retries", "2")],
        "x",
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let (_, msg) = server
        .get_json(&format!(
            "/v2/messages/{}",
            resp["messageId"].as_str().unwrap()
        ))
        .await;
    assert_eq!(msg["maxRetries"], 2, "{msg}");

    for target in [
        format!("{}/h?qstash_token=wrong", rx.url),
        format!("{}/h?qstash_token=", rx.url),
        format!("{}/h?upstash-retries=0", rx.url),
    ] {
        let (status, body) = tokenless(&server, &target, &[], "x").await;
        assert_eq!(status, 401, "{target}: {body}");
    }
    // Invalid configuration through the query is a 400 like the header.
    let (status, body) = tokenless(
        &server,
        &format!("{}/h?qstash_token={TOKEN}&upstash-delay=soon", rx.url),
        &[],
        "x",
    )
    .await;
    assert_eq!(status, 400, "{body}");
    server.advance(Duration::from_secs(60));
    rx.wait_for(1).await;
    rx.assert_quiet(1, QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_forward_passes_the_callers_own_headers_but_not_credentials() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    // Header form, with the token in the Authorization header.
    let (status, resp) = server
        .post_raw(
            &format!("/v2/publish/{}/gh", rx.url),
            &[
                ("Upstash-Header-Forward", "true"),
                ("Content-Type", "application/json"),
                ("X-GitHub-Event", "push"),
                ("X-Hub-Signature-256", "sha256=abc"),
                ("Upstash-Retries", "1"),
            ],
            r#"{"ref":"main"}"#,
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let got = rx.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.signature_error, None);
    assert_eq!(r.header("x-github-event"), Some("push"));
    assert_eq!(r.header("x-hub-signature-256"), Some("sha256=abc"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.header("authorization"),
        None,
        "the QStash token is never forwarded"
    );
    let rx_host = rx.url.trim_start_matches("http://");
    assert_eq!(r.header("host"), Some(rx_host), "Host is the destination's");
    for config in ["upstash-header-forward", "upstash-retries"] {
        assert_eq!(
            r.header(config),
            None,
            "{config} is configuration, not forwarded"
        );
    }

    // Query form, token in the query: the webhook sender only controls its own headers.
    let (status, resp) = tokenless(
        &server,
        &format!(
            "{}/q?upstash-header-forward=true&qstash_token={TOKEN}",
            rx.url
        ),
        &[("Stripe-Signature", "t=1,v1=x"), ("X-Custom", "c")],
        "evt",
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let got = rx.wait_for(2).await;
    let r = &got[1];
    assert_eq!(r.target, "/q");
    assert_eq!(r.header("stripe-signature"), Some("t=1,v1=x"));
    assert_eq!(r.header("x-custom"), Some("c"));
    assert_eq!(r.signature_error, None);

    // Without it, plain headers stay behind.
    server
        .publish(&format!("{}/off", rx.url), &[("X-Custom", "c")], "x")
        .await;
    let got = rx.wait_for(3).await;
    assert_eq!(got[2].header("x-custom"), None);
    let (status, resp) = server
        .post_raw(
            &format!("/v2/publish/{}/false", rx.url),
            &[("Upstash-Header-Forward", "false"), ("X-Custom", "c")],
            "x",
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let got = rx.wait_for(4).await;
    assert_eq!(got[3].header("x-custom"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn redacted_fields_are_hidden_in_messages_logs_and_dlq_but_delivered_intact() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    rx.set_default(Reply::status(500));
    let secret_body = "card=4242-4242-4242-4242";
    let (status, resp) = server
        .post_raw(
            &format!("/v2/publish/{}/pay", rx.url),
            &[
                ("Upstash-Redact-Fields", "body, header[Authorization]"),
                ("Upstash-Forward-Authorization", "Bearer s3cret"),
                ("Upstash-Forward-X-Public", "visible"),
                ("Upstash-Retries", "1"),
                ("Content-Type", "text/plain"),
            ],
            secret_body,
        )
        .await;
    assert_eq!(status, 200, "{resp}");
    let id = resp["messageId"].as_str().unwrap().to_string();

    let got = rx.wait_for(1).await;
    assert_eq!(
        &got[0].body[..],
        secret_body.as_bytes(),
        "delivered with the original body"
    );
    assert_eq!(got[0].header("authorization"), Some("Bearer s3cret"));
    assert_eq!(got[0].header("x-public"), Some("visible"));
    assert_eq!(got[0].signature_error, None);
    server.wait_retries(&id, 1).await;

    let leaks = |what: &str, v: &Value| {
        let text = v.to_string();
        for needle in ["s3cret", secret_body, &b64(secret_body)] {
            assert!(!text.contains(needle), "{what} shows {needle:?}: {text}");
        }
    };
    let (status, msg) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 200);
    leaks("message", &msg);
    assert!(
        msg["body"].as_str().unwrap().starts_with("REDACTED:"),
        "{msg}"
    );
    let auth = msg["header"]["Authorization"][0].as_str().unwrap();
    assert!(auth.starts_with("REDACTED:"), "{msg}");
    assert_eq!(msg["header"]["X-Public"], json!(["visible"]));
    assert_eq!(msg["header"]["Content-Type"], json!(["text/plain"]));

    server.advance(Duration::from_secs(12));
    server.wait_state(&id, "FAILED").await;
    let events = server.log_entries(&format!("messageId={id}")).await;
    assert!(events.len() >= 6, "{events:?}");
    for e in &events {
        leaks("log entry", e);
        assert!(
            unb64(e["body"].as_str().unwrap()).starts_with("REDACTED:"),
            "log body is base64 of the redacted value: {e}"
        );
        assert!(
            e["header"]["Authorization"][0]
                .as_str()
                .unwrap()
                .starts_with("REDACTED:"),
            "{e}"
        );
        assert_eq!(e["header"]["X-Public"], json!(["visible"]), "{e}");
    }

    let (_, dlq) = server.get_json("/v2/dlq").await;
    let entry = &dlq["messages"][0];
    assert_eq!(entry["messageId"], id.as_str());
    leaks("DLQ entry", entry);
    assert!(
        entry["body"].as_str().unwrap().starts_with("REDACTED:"),
        "{entry}"
    );
    assert!(
        entry["header"]["Authorization"][0]
            .as_str()
            .unwrap()
            .starts_with("REDACTED:")
    );
    assert_eq!(entry["header"]["X-Public"], json!(["visible"]));
    let dlq_id = entry["dlqId"].as_str().unwrap();
    let (_, one) = server.get_json(&format!("/v2/dlq/{dlq_id}")).await;
    leaks("DLQ entry by id", &one);

    // A DLQ retry delivers the original values again.
    rx.set_default(Reply::status(200));
    let (status, retried) = send(server.call("POST", &format!("/v2/dlq/retry/{dlq_id}"))).await;
    assert!((200..300).contains(&status), "{retried}");
    let got = rx.wait_for(3).await;
    assert_eq!(&got[2].body[..], secret_body.as_bytes());
    assert_eq!(got[2].header("authorization"), Some("Bearer s3cret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_redaction_spelling_is_accepted_and_unknown_items_are_refused() {
    let server = TestServer::start().await;
    server.clock.pause();
    let dest = "http://127.0.0.1:1/x";
    let path = format!("/v2/publish/{dest}");
    let publish = |fields: &'static str| {
        let path = path.clone();
        let server = &server;
        async move {
            server
                .post_raw(
                    &path,
                    &[
                        ("Upstash-Redact-Fields", fields),
                        ("Upstash-Delay", "1h"),
                        ("Upstash-Forward-Authorization", "Bearer s3cret"),
                        ("Upstash-Forward-X-Other", "other"),
                    ],
                    "the body",
                )
                .await
        }
    };
    // (fields, body redacted, Authorization redacted, X-Other redacted)
    for (fields, body, auth, other) in [
        ("header", false, true, true),
        ("headers", false, true, true),
        ("headers[authorization]", false, true, false),
        ("header[AUTHORIZATION],body", true, true, false),
        ("body", true, false, false),
    ] {
        let (status, resp) = publish(fields).await;
        assert_eq!(status, 200, "{fields}: {resp}");
        let (_, msg) = server
            .get_json(&format!(
                "/v2/messages/{}",
                resp["messageId"].as_str().unwrap()
            ))
            .await;
        let redacted = |v: &Value| v.as_str().unwrap_or("").starts_with("REDACTED:");
        assert_eq!(redacted(&msg["body"]), body, "{fields}: {msg}");
        assert_eq!(
            redacted(&msg["header"]["Authorization"][0]),
            auth,
            "{fields}: {msg}"
        );
        assert_eq!(
            redacted(&msg["header"]["X-Other"][0]),
            other,
            "{fields}: {msg}"
        );
    }
    for bad in ["password", "header[", "bodies", "header[]"] {
        let (status, body) = publish(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or("")
                .contains("Upstash-Redact-Fields"),
            "{bad}: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn query_values_are_decoded_for_configuration_and_kept_for_the_destination() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let (status, resp) = tokenless(
        &server,
        &format!(
            "{}/enc?q=a%20b&upstash-forward-x-sig=t%3D1%2Cv1%3Dab&qstash_token={TOKEN}&r=%2F",
            rx.url
        ),
        &[],
        "x",
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let got = rx.wait_for(1).await;
    assert_eq!(
        got[0].target, "/enc?q=a%20b&r=%2F",
        "the destination's encoding is kept"
    );
    assert_eq!(
        got[0].header("x-sig"),
        Some("t=1,v1=ab"),
        "config values are decoded"
    );
    assert_eq!(got[0].signature_error, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forward_header_beats_the_same_query_parameter() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let (status, resp) = tokenless(
        &server,
        &format!(
            "{}/fw?qstash_token={TOKEN}&upstash-forward-x-a=query&upstash-forward-x-b=only-query",
            rx.url
        ),
        &[("Upstash-Forward-X-A", "header")],
        "x",
    )
    .await;
    assert_eq!(status, 200, "{resp}");
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].header("x-b"), Some("only-query"));
    assert_eq!(
        got[0].headers.get_all("x-a").iter().collect::<Vec<_>>(),
        ["header"],
        "a real header wins over the query parameter of the same name"
    );
}
