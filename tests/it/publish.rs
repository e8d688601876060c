//! Publishing to a URL: what is accepted, and what the destination receives.

use crate::common::{Receiver, TestServer};
use qstash::users::USERS;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread")]
async fn published_message_is_delivered_signed_with_its_headers_and_body() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let id = server
        .publish(
            &format!(
                "{}/hook/a?x=1&qstash_token=secret&upstash-retries=1",
                rx.url
            ),
            &[
                ("Content-Type", "application/json"),
                ("Upstash-Forward-X-Custom", "v1"),
                ("X-Not-Forwarded", "no"),
            ],
            r#"{"hello":"world"}"#,
        )
        .await;
    assert!(id.starts_with("msg_"), "{id}");
    let got = rx.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.signature_error, None, "signature must verify");
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.target, "/hook/a?x=1",
        "query re-attached minus our parameters"
    );
    assert_eq!(&r.body[..], br#"{"hello":"world"}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("x-custom"), Some("v1"));
    assert_eq!(r.header("x-not-forwarded"), None);
    assert_eq!(r.header("user-agent"), Some("Upstash-QStash"));
    assert_eq!(r.header("upstash-message-id"), Some(id.as_str()));
    assert_eq!(r.header("upstash-retried"), Some("0"));
    assert_eq!(r.header("upstash-caller-ip"), Some("127.0.0.1"));
    let claims = r.claims.as_ref().unwrap();
    assert_eq!(claims["iss"], "Upstash");
    assert!(claims["jti"].as_str().unwrap().starts_with("jwt_"));
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap(), iat + 300);
    assert_eq!(
        server.wait_state(&id, "DELIVERED").await,
        ["CREATED", "ACTIVE", "DELIVERED"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn method_binary_body_and_double_slashes_are_kept() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let body: Vec<u8> = (0..=255u8).collect();
    let resp = server
        .post(&format!("/v2/publish/{}//a//b", rx.url))
        .header("Upstash-Method", "put")
        .header("Content-Type", "application/octet-stream")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].target, "//a//b");
    assert_eq!(&got[0].body[..], &body[..]);
    assert_eq!(got[0].signature_error, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_user_signs_with_its_own_key_and_sees_only_its_messages() {
    let server = TestServer::start().await;
    let rx = Receiver::start_with_keys(&[USERS[2].current_signing_key]).await;
    let resp = server
        .http
        .post(format!("{}/v2/publish/{}/u2", server.url, rx.url))
        .bearer_auth(USERS[2].token)
        .body("x")
        .send()
        .await
        .unwrap();
    let id = resp.json::<serde_json::Value>().await.unwrap()["messageId"]
        .as_str()
        .unwrap()
        .to_string();
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].signature_error, None, "signed with user 3's key");
    // The default user sees nothing of it.
    let (_, logs) = server.get_json(&format!("/v2/events?messageId={id}")).await;
    assert_eq!(logs["events"].as_array().unwrap().len(), 0);
    let (status, _) = server.get_json(&format!("/v2/messages/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_headers_are_rejected_with_the_header_named_and_nothing_stored() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    // Above the plan is a quota error (412), which the workflow SDK tells apart from a 400.
    let (status, json) = server
        .post_raw(
            &format!("/v2/publish/{}/x", rx.url),
            &[("Upstash-Retries", "99")],
            "x",
        )
        .await;
    assert_eq!(status, 412, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("Upstash-Retries"),
        "{json}"
    );
    for (header, value, needle) in [
        ("Upstash-Delay", "soon", "Upstash-Delay"),
        ("Upstash-Not-Before", "x", "Upstash-Not-Before"),
        ("Upstash-Retries", "many", "Upstash-Retries"),
        ("Upstash-Retry-Delay", "pow(2", "Upstash-Retry-Delay"),
        ("Upstash-Timeout", "forever", "Upstash-Timeout"),
        ("Upstash-Method", "BREW", "Upstash-Method"),
        ("Upstash-Callback", "not a url", "Upstash-Callback"),
    ] {
        let resp = server
            .post(&format!("/v2/publish/{}/x", rx.url))
            .header(header, value)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{header}: {value}");
        let json: serde_json::Value = resp.json().await.unwrap();
        assert!(
            json["error"].as_str().unwrap().contains(needle),
            "{header}: {json}"
        );
    }
    let (_, logs) = server.get_json("/v2/events").await;
    assert_eq!(
        logs["events"].as_array().unwrap().len(),
        0,
        "nothing was stored"
    );
    rx.assert_quiet(0, Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_destinations_and_oversized_bodies() {
    let server = TestServer::start().await;
    let status_and_error = |resp: reqwest::Response| async move {
        let status = resp.status().as_u16();
        let json: serde_json::Value = resp.json().await.unwrap();
        (status, json["error"].as_str().unwrap_or("").to_string())
    };
    let (status, error) = status_and_error(server.post("/v2/publish/").send().await.unwrap()).await;
    assert_eq!(status, 400, "{error}");
    let (status, error) =
        status_and_error(server.post("/v2/publish/http://").send().await.unwrap()).await;
    assert_eq!(status, 400, "{error}");
    let (status, _) = status_and_error(
        server
            .post("/v2/publish/no-such-group")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let big = vec![b'a'; 1024 * 1024 + 1];
    let resp = server
        .post("/v2/publish/http://127.0.0.1:9/x")
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, error) = status_and_error(resp).await;
    assert_eq!(status, 413);
    assert!(error.contains("1 MB"), "{error}");
    // Far more than the sockets buffer: the sender still gets the 413, not a broken pipe.
    let resp = server
        .post("/v2/publish/http://127.0.0.1:9/x")
        .body(vec![b'a'; 24 * 1024 * 1024])
        .send()
        .await
        .expect("the 413 of an oversized body, read to its end");
    assert_eq!(resp.status(), 413);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth_is_required_everywhere() {
    let server = TestServer::start().await;
    for (method, path) in [
        ("POST", "/v2/publish/http://localhost/x"),
        ("GET", "/v2/events"),
        ("GET", "/v2/logs"),
        ("GET", "/v2/dlq"),
        ("GET", "/v2/keys"),
        ("POST", "/v2/keys/rotate"),
        ("GET", "/v2/messages/msg_x"),
        ("DELETE", "/v2/messages"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let url = format!("{}{path}", server.url);
        let resp = server
            .http
            .request(method.clone(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        let json: serde_json::Value = resp.json().await.unwrap();
        assert!(json["error"].is_string());
        let resp = server
            .http
            .request(method, &url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    let resp = server
        .http
        .get(format!(
            "{}/v2/keys?qstash_token={}",
            server.url,
            crate::common::TOKEN
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = server.get("/v3/nothing").send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.json::<serde_json::Value>().await.unwrap()["error"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn framing_headers_are_never_forwarded_in_either_mode() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let body = r#"{"framed":"by the server"}"#;
    let framing = [
        ("Upstash-Forward-Content-Length", "5"),
        ("Upstash-Forward-Host", "evil.example"),
        ("Upstash-Forward-Connection", "close"),
        ("Upstash-Forward-Transfer-Encoding", "gzip"),
        ("Upstash-Forward-Keep-Alive", "timeout=1"),
        ("Upstash-Forward-Upgrade", "websocket"),
        ("Upstash-Forward-TE", "trailers"),
        ("Upstash-Forward-Trailer", "X-Sum"),
        ("Upstash-Forward-Proxy-Authorization", "Basic eA=="),
        ("Upstash-Forward-X-Kept", "yes"),
    ];
    server
        .publish(&format!("{}/explicit", rx.url), &framing, body)
        .await;
    // Forward-all mode passes the caller's own headers on; its framing stays behind too.
    let resp = server
        .post(&format!("/v2/publish/{}/all", rx.url))
        .header("Upstash-Header-Forward", "true")
        .header("Keep-Alive", "timeout=9")
        .header("Proxy-Authorization", "Basic eQ==")
        .header("TE", "trailers")
        .header("X-Also-Kept", "yes")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = rx.wait_for(2).await;
    let host = rx.url.trim_start_matches("http://").to_string();
    for r in &got {
        assert_eq!(
            r.signature_error, None,
            "{}: body hash must match",
            r.target
        );
        assert_eq!(
            &r.body[..],
            body.as_bytes(),
            "{}: whole body delivered",
            r.target
        );
        assert_eq!(r.header("host"), Some(host.as_str()), "{}", r.target);
        for name in [
            "keep-alive",
            "upgrade",
            "te",
            "trailer",
            "proxy-authorization",
        ] {
            assert_eq!(r.header(name), None, "{}: {name} forwarded", r.target);
        }
        assert_ne!(r.header("connection"), Some("close"), "{}", r.target);
        assert_eq!(r.header("transfer-encoding"), None, "{}", r.target);
    }
    let explicit = got.iter().find(|r| r.target == "/explicit").unwrap();
    assert_eq!(explicit.header("x-kept"), Some("yes"));
    let all = got.iter().find(|r| r.target == "/all").unwrap();
    assert_eq!(all.header("x-also-kept"), Some("yes"));
}
