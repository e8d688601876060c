//! Hostile input and hostile destinations: nothing a client or an endpoint does may crash the
//! server or stall deliveries to other endpoints.

use std::time::{Duration, Instant};

use crate::common::{Receiver, Reply, TestServer, free_port, status_json};
use qstash::config::{Config, QuotaKind};
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The server still answers and no server task has panicked.
async fn assert_healthy(server: &TestServer) {
    let (status, _) = server.get_json("/v2/keys").await;
    assert_eq!(status, 200, "the server stopped answering");
    assert_eq!(
        server.panics(),
        0,
        "a server task panicked (see the output above)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_or_refusing_destination_does_not_delay_other_deliveries() {
    let server = TestServer::start().await;
    let hanging = Receiver::start().await;
    hanging.set_default(Reply::status(200).delay(Duration::from_secs(30)));
    let fast = Receiver::start().await;
    let refusing = format!("http://127.0.0.1:{}/x", free_port());
    let mut publishers = tokio::task::JoinSet::new();
    for i in 0..400 {
        let (http, base) = (server.http.clone(), server.url.clone());
        let url = if i % 2 == 0 {
            format!("{}/hang/{i}", hanging.url)
        } else {
            refusing.clone()
        };
        publishers.spawn(async move {
            let resp = http
                .post(format!("{base}/v2/publish/{url}"))
                .bearer_auth(crate::common::TOKEN)
                .header("Upstash-Timeout", "1h")
                .body("x")
                .send()
                .await
                .expect("publish");
            assert_eq!(resp.status(), 200);
        });
    }
    while let Some(done) = publishers.join_next().await {
        done.expect("publisher");
    }
    // Make sure the hanging endpoint really holds many attempts open.
    hanging.wait_for(50).await;
    let start = Instant::now();
    server
        .publish(&format!("{}/fast", fast.url), &[], "x")
        .await;
    let got = fast.wait_for(1).await;
    let took = got[0].at - start;
    assert!(
        took < Duration::from_secs(1),
        "the fast endpoint waited {took:?} behind the slow ones"
    );
    let start = Instant::now();
    let (status, _) = server.get_json("/v2/events?count=10").await;
    assert_eq!(status, 200);
    assert!(start.elapsed() < Duration::from_secs(1), "the API is slow");
}

/// Request headers given as raw bytes (the values need not be UTF-8).
type RawHeaders<'a> = Vec<(&'a str, &'a [u8])>;

/// A request with arbitrary (possibly non-UTF-8) header values, authenticated as the
/// default user unless `headers` bring their own `Authorization`. `Err` when no answer came
/// back, which is what a panicking handler looks like from outside.
async fn try_send(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<(u16, serde_json::Value), reqwest::Error> {
    let mut req = server
        .http
        .request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", server.url),
        )
        .body(body.to_vec());
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
    {
        req = req.bearer_auth(crate::common::TOKEN);
    }
    for (name, value) in headers {
        req = req.header(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let (status, json) = status_json(req.send().await?).await;
    Ok((status.as_u16(), json))
}

async fn send(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> (u16, serde_json::Value) {
    try_send(server, method, path, headers, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: no answer ({e}): did the handler panic?"))
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_wrong_methods_answer_json() {
    let server = TestServer::start().await;
    // "/" and "/console" are the web console (tests/it/console.rs).
    for path in [
        "/console/nothing",
        "/v2",
        "/v2/",
        "/v2/nothing",
        "/v3/publish/http://x",
        "/v2/messages/a/b",
        "/v2/dlq/a/b",
        "/v2/keys/rotate/again",
    ] {
        let (status, json) = send(&server, "GET", path, &[], b"").await;
        assert_eq!(status, 404, "{path}: {json}");
        assert!(json["error"].is_string(), "{path}: {json}");
    }
    for (method, path) in [
        ("PUT", "/v2/messages/msg_x"),
        ("GET", "/v2/publish/http://127.0.0.1:9/x"),
        ("POST", "/v2/events"),
        ("POST", "/v2/logs"),
        ("PATCH", "/v2/keys"),
        ("DELETE", "/v2/keys/rotate"),
        ("GET", "/v2/dlq/retry/1-1"),
        ("POST", "/v2/messages"),
        ("PUT", "/v2/dlq"),
    ] {
        let (status, json) = send(&server, method, path, &[], b"").await;
        assert_eq!(status, 405, "{method} {path}: {json}");
        assert!(json["error"].is_string(), "{method} {path}: {json}");
    }
    assert_healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_requests_get_a_clean_4xx() {
    let server = TestServer::start().await;
    let deep = "(".repeat(20_000) + "1" + &")".repeat(20_000);
    let long_number = "9".repeat(5_000);
    let long_id = format!("/v2/messages/msg_{}", "x".repeat(10_000));
    let huge = "a".repeat(500_000);
    #[rustfmt::skip]
    let cases: Vec<(&str, &str, RawHeaders, &[u8], u16)> = vec![
        ("POST", "/v2/publish/http:%2F%2F", vec![], b"", 400),
        ("POST", "/v2/publish/http://[::1", vec![], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:99999/x", vec![], b"", 400),
        ("POST", "/v2/publish/ftp://127.0.0.1/x", vec![], b"", 400),
        ("POST", "/v2/publish/%ff%fe", vec![], b"", 400),
        ("POST", "/v2/publish/http://%ff/", vec![], b"", 400),
        ("POST", "/v2/publish/a%20b", vec![], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x?upstash-retries=abc", vec![], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Delay", b"\xff\xfe")], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Method", b"P\xffST")], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Retries", b"\xff")], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Retries", b"-1")], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Retries", long_number.as_bytes())], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Delay", long_number.as_bytes())], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Delay", b"99999999999999999999d")], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Not-Before", b"-1")], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Not-Before", b"9223372036854775807")], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Timeout", b"99999999999999999999h")], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Retry-Delay", deep.as_bytes())], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Retry-Delay", b"pow(2,")], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Callback", b"http://[")], b"", 400),
        ("POST", "/v2/publish/http://127.0.0.1:9/x", vec![("Upstash-Failure-Callback", b"\xff")], b"", 400),
        ("GET", "/v2/publish/x", vec![], b"", 405),
        ("GET", &long_id, vec![], b"", 404),
        ("GET", "/v2/dlq/%00", vec![], b"", 404),
        ("GET", "/v2/events?count=99999999999999999999", vec![], b"", 400),
        ("GET", "/v2/events?count=-5", vec![], b"", 400),
        ("GET", "/v2/events?cursor=-1", vec![], b"", 400),
        ("GET", "/v2/events?cursor=99999999999999999999999", vec![], b"", 400),
        ("GET", "/v2/events?fromDate=1e3", vec![], b"", 400),
        ("GET", "/v2/dlq?responseStatus=abc", vec![], b"", 400),
        ("GET", "/v2/dlq?responseStatus=99999", vec![], b"", 400),
        ("GET", "/v2/dlq?cursor=abc", vec![], b"", 400),
        ("DELETE", "/v2/messages", vec![("Content-Type", b"application/json")], b"not json", 400),
        ("DELETE", "/v2/messages", vec![("Content-Type", b"application/json")], b"[1]", 400),
        ("DELETE", "/v2/dlq", vec![("Content-Type", b"application/json")], b"{", 400),
        ("POST", "/v2/dlq/retry", vec![("Content-Type", b"application/json")], b"\xff\xfe", 400),
        ("GET", "/v2/keys", vec![("Authorization", b"Bearer \xff\xfe")], b"", 401),
        ("GET", "/v2/keys", vec![("Authorization", b"Bearer")], b"", 401),
        ("GET", "/v2/keys", vec![("Authorization", b"Basic Zm9vOmJhcg==")], b"", 401),
        ("GET", "/v2/keys", vec![("Authorization", huge.as_bytes())], b"", 401),
    ];
    for (method, path, headers, body, expected) in &cases {
        let shown = &path[..path.len().min(80)];
        let (status, json) = send(&server, method, path, headers, body).await;
        assert_eq!(status, *expected, "{method} {shown}: {json}");
        assert!(json["error"].is_string(), "{method} {shown}: {json}");
    }
    // Headers beyond any sane size: refused by the HTTP layer or by the handler.
    let enormous = "a".repeat(4 << 20);
    let (status, _) = send(
        &server,
        "POST",
        "/v2/publish/http://127.0.0.1:9/x",
        &[("Upstash-Forward-Huge", enormous.as_bytes())],
        b"",
    )
    .await;
    assert!(matches!(status, 400 | 413 | 431), "{status}");
    // Bodies that name no valid id select nothing.
    let (status, json) = send(
        &server,
        "DELETE",
        "/v2/messages",
        &[("Content-Type", b"application/json")],
        br#"{"messageIds": [1, null, {"a": 1}, "msg_x", "\u0000"]}"#,
    )
    .await;
    assert_eq!((status, json), (200, serde_json::json!({"cancelled": 0})));
    assert_healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_that_do_not_decode_get_a_json_error() {
    let server = TestServer::start().await;
    // Unknown (404) or invalid (400), in JSON either way.
    let mut not_json = Vec::new();
    for (method, path) in [
        ("GET", "/v2/messages/%ff%fe%00"),
        ("DELETE", "/v2/messages/%ff"),
        ("GET", "/v2/dlq/%ff"),
        ("DELETE", "/v2/dlq/%c3%28"),
        ("POST", "/v2/dlq/retry/%ff"),
    ] {
        let (status, json) = send(&server, method, path, &[], b"").await;
        assert!(matches!(status, 400 | 404), "{method} {path}: {status}");
        if !json["error"].is_string() {
            not_json.push(format!("{method} {path} -> {status}"));
        }
    }
    assert!(
        not_json.is_empty(),
        "error bodies that are not JSON: {not_json:?}"
    );
    assert_healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_but_acceptable_publishes_are_stored_shown_and_delivered() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let big = "b".repeat(60_000);
    let long_label = "l".repeat(10_000);
    let many: Vec<(String, Vec<u8>)> = (0..60)
        .map(|i| {
            (
                format!("Upstash-Forward-H{i}"),
                format!("v{i}").into_bytes(),
            )
        })
        .collect();
    let cases: Vec<(&str, RawHeaders)> = vec![
        ("bin", vec![("Upstash-Forward-X-Bin", b"\xff\xfe ok")]),
        ("ctype", vec![("Content-Type", b"text/\xffplain")]),
        ("big", vec![("Upstash-Forward-X-Big", big.as_bytes())]),
        (
            "many",
            many.iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect(),
        ),
        ("label", vec![("Upstash-Label", long_label.as_bytes())]),
    ];
    let mut accepted = Vec::new();
    for (path, headers) in &cases {
        let (status, json) = send(
            &server,
            "POST",
            &format!("/v2/publish/{}/{path}", rx.url),
            headers,
            b"body",
        )
        .await;
        assert!(status == 200 || status == 400, "{path}: {status} {json}");
        if status == 200 {
            accepted.push((path, json["messageId"].as_str().unwrap().to_string()));
        } else {
            assert!(json["error"].is_string(), "{json}");
        }
    }
    for (path, id) in &accepted {
        server.wait_state(id, "DELIVERED").await;
        let (status, _) = server.get_json(&format!("/v2/messages/{id}")).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(server.events(&format!("messageId={id}")).await.len(), 3);
    }
    let got = rx.wait_for(accepted.len()).await;
    for r in &got {
        assert_eq!(r.signature_error, None, "{}", r.target);
        match r.target.as_str() {
            "/bin" => assert_eq!(r.headers["x-bin"].as_bytes(), b"\xff\xfe ok"),
            "/big" => assert_eq!(r.headers["x-big"].len(), 60_000),
            "/many" => assert_eq!(r.header("h59"), Some("v59")),
            _ => {}
        }
    }
    // Every stored oddity can be listed.
    let (status, _) = server.get_json("/v2/events?count=1000").await;
    assert_eq!(status, 200);
    assert_healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn weird_destinations_never_break_the_server() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let port = rx.url.rsplit(':').next().unwrap();
    for destination in [
        format!("http%3A%2F%2F127.0.0.1%3A{port}%2Fencoded"),
        format!("https:/127.0.0.1:{port}/one-slash"),
        format!("http:/127.0.0.1:{port}/one-slash"),
        format!("HTTP://127.0.0.1:{port}/upper"),
        format!("http://user:pass@127.0.0.1:{port}/creds"),
        format!("http://127.0.0.1:{port}/%ff%00/x?%ff=%fe"),
        format!("http://127.0.0.1:{port}/#fragment"),
        "http://".into(),
        "https://".into(),
        "http:".into(),
        "api/".into(),
        "api/llm".into(),
        "...".into(),
        "%".into(),
    ] {
        let (status, json) = send(
            &server,
            "POST",
            &format!("/v2/publish/{destination}"),
            &[("Upstash-Retries", b"0")],
            b"x",
        )
        .await;
        assert!(
            matches!(status, 200 | 400 | 404),
            "{destination}: {status} {json}"
        );
        if status != 200 {
            assert!(json["error"].is_string(), "{destination}: {json}");
        }
    }
    assert_healthy(&server).await;
}

/// Sends raw bytes and returns the answer's status, if any; the server must close the
/// connection within a few seconds. (No half-close from our side: hyper drops a request whose
/// client shut its write side before the answer was written.)
async fn raw(server: &TestServer, request: &[u8]) -> Option<u16> {
    let addr = server.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("the server neither answered nor closed the connection")
        .ok()?;
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_protocol_garbage_is_refused_cleanly() {
    let server = TestServer::start().await;
    let auth = format!("Authorization: Bearer {}\r\n", crate::common::TOKEN);
    let req = |line: &str, extra: &str| -> Vec<u8> {
        format!("{line}\r\nHost: x\r\n{auth}{extra}Connection: close\r\n\r\n").into_bytes()
    };
    let mut non_utf8_target = b"GET /v2/messages/\xff\xfe HTTP/1.1\r\nHost: x\r\n".to_vec();
    non_utf8_target.extend_from_slice(auth.as_bytes());
    non_utf8_target.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut non_utf8_header = b"GET /v2/keys HTTP/1.1\r\nHost: x\r\nX-Bin: \xff\xfe\r\n".to_vec();
    non_utf8_header.extend_from_slice(auth.as_bytes());
    non_utf8_header.extend_from_slice(b"Connection: close\r\n\r\n");
    let cases: Vec<(Vec<u8>, Option<u16>)> = vec![
        (b"GARBAGE\r\n\r\n".to_vec(), None),
        (b"\x00\x01\x02\xff\r\n\r\n".to_vec(), None),
        (non_utf8_target, None),
        (non_utf8_header, Some(200)),
        (req("GET /v2/../v2/keys HTTP/1.1", ""), None),
        (req("GET http://x/v2/keys HTTP/1.1", ""), Some(200)),
        (req("GET /v2/keys HTTP/1.1", "Bad Header Line\r\n"), None),
        (
            req(
                "POST /v2/publish/http://127.0.0.1:9/x/../../y HTTP/1.1",
                "Content-Length: abc\r\n",
            ),
            None,
        ),
        (
            req(
                "POST /v2/publish/http://127.0.0.1:9/x/../../y HTTP/1.1",
                "Upstash-Retries: 0\r\nContent-Length: 1\r\n",
            )
            .into_iter()
            .chain(*b"x")
            .collect(),
            Some(200),
        ),
        (
            req(
                "POST /v2/publish/http://127.0.0.1:9/x HTTP/1.1",
                "Upstash-Retries: 0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            )
            .into_iter()
            .chain(*b"1\r\nx\r\n0\r\n\r\n")
            .collect(),
            None,
        ),
    ];
    for (request, expected) in cases {
        let shown = String::from_utf8_lossy(&request[..request.len().min(60)]).into_owned();
        let status = raw(&server, &request).await;
        match expected {
            Some(code) => assert_eq!(status, Some(code), "{shown:?}"),
            None => assert!(status.is_none_or(|s| s < 500), "{shown:?}: {status:?}"),
        }
    }
    assert_healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn enormous_delays_neither_overflow_nor_deliver_early() {
    // The pro quota has no maximum delay.
    let server = TestServer::start_with(Config::new(QuotaKind::Pro)).await;
    let rx = Receiver::start().await;
    let mut problems = Vec::new();
    for (i, (header, value)) in [
        ("Upstash-Delay", "9223372036854775s"),
        ("Upstash-Delay", "18446744073709551s"),
        ("Upstash-Delay", "106751991167d"),
        ("Upstash-Delay", "9223372036854775807ms"),
        ("Upstash-Not-Before", "9223372036854775"),
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/v2/publish/{}/{i}", rx.url);
        match try_send(&server, "POST", &path, &[(header, value.as_bytes())], b"x").await {
            Err(e) => problems.push(format!("{header}: {value}: no answer ({e})")),
            Ok((400, json)) if json["error"].is_string() => {}
            Ok((200, json)) => {
                let id = json["messageId"].as_str().unwrap();
                let (_, m) = server.get_json(&format!("/v2/messages/{id}")).await;
                if m["notBefore"].as_i64() <= m["createdAt"].as_i64() {
                    problems.push(format!("{header}: {value}: due at once: {m}"));
                }
            }
            Ok((status, json)) => problems.push(format!("{header}: {value}: {status} {json}")),
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for r in rx.received() {
        problems.push(format!("case {} was delivered at once", &r.target[1..]));
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert_healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_retry_after_values_keep_the_next_attempt_within_a_day() {
    let server = TestServer::start().await;
    server.clock.pause();
    let rx = Receiver::start().await;
    let values = [
        ("Retry-After", "99999999999999999999"),
        ("Retry-After", "9223372036854775807"),
        ("Retry-After", "-1"),
        ("Retry-After", "1e400"),
        ("Retry-After", "NaN"),
        ("Retry-After", ""),
        ("Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("Retry-After", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ("Retry-After", "9999999999999999h"),
        ("Retry-After", "-9223372036854775808ms"),
        ("X-RateLimit-Reset", "18446744073709551615"),
        ("X-RateLimit-Reset-Tokens", "1.5e308s"),
    ];
    let mut ids = Vec::new();
    for (i, (name, value)) in values.iter().enumerate() {
        rx.script(&format!("/ra/{i}"), Reply::status(503).header(name, value));
        ids.push(
            server
                .publish(
                    &format!("{}/ra/{i}", rx.url),
                    &[("Upstash-Retries", "1")],
                    "x",
                )
                .await,
        );
    }
    for (id, (name, value)) in ids.iter().zip(values) {
        server.wait_retries(id, 1).await;
        let retry = &server.events(&format!("messageId={id}&state=RETRY")).await[0];
        let delay = retry["nextDeliveryTime"].as_i64().unwrap() - retry["time"].as_i64().unwrap();
        assert!(
            (0..=86_400_000).contains(&delay),
            "{name}: {value} planned the retry {delay} ms later"
        );
    }
    for (i, (name, value)) in [
        "pow(10, 400)",
        "0 / 0",
        "-5",
        "retried - 1000000000000000000",
        "sqrt(-1)",
    ]
    .iter()
    .map(|e| ("Upstash-Retry-Delay", *e))
    .enumerate()
    {
        rx.script(&format!("/rd/{i}"), Reply::status(500));
        let (status, json) = send(
            &server,
            "POST",
            &format!("/v2/publish/{}/rd/{i}", rx.url),
            &[(name, value.as_bytes()), ("Upstash-Retries", b"1")],
            b"x",
        )
        .await;
        if status == 200 {
            let id = json["messageId"].as_str().unwrap();
            server.wait_retries(id, 1).await;
            let retry = &server.events(&format!("messageId={id}&state=RETRY")).await[0];
            let delay =
                retry["nextDeliveryTime"].as_i64().unwrap() - retry["time"].as_i64().unwrap();
            assert!(delay >= 0, "{value}: {delay}");
        } else {
            assert_eq!(status, 400, "{value}: {json}");
        }
    }
    assert_healthy(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_and_wrong_methods_answer_json_with_the_details_a_client_needs() {
    let server = TestServer::start().await;
    // A body over the limit, on a route whose body axum reads: JSON, not text/plain.
    let resp = server
        .delete("/v2/messages")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let (_, json) = status_json(resp).await;
    assert!(
        json["error"].as_str().unwrap().contains("too large"),
        "{json}"
    );
    // A wrong method: 405 with Allow, and the error names what the route takes.
    let resp = server.call("PATCH", "/v2/keys").send().await.unwrap();
    assert_eq!(resp.status(), 405);
    let allow = resp.headers()["allow"].to_str().unwrap().to_string();
    assert!(allow.contains("GET"), "{allow}");
    let (_, json) = status_json(resp).await;
    assert!(json["error"].as_str().unwrap().contains("GET"), "{json}");
    // The clock routes without -clock-control say which flag turns them on.
    let (status, json) = server.get_json("/__qstash/clock").await;
    assert_eq!(status, 404);
    assert!(
        json["error"].as_str().unwrap().contains("-clock-control"),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_publish_may_forward_hundreds_of_headers() {
    let server = TestServer::start().await;
    let rx = Receiver::start().await;
    let mut req = server
        .post(&format!("/v2/publish/{}/many", rx.url))
        .body("x");
    // 500 headers reach the server (hyper's default was 100, answered 431); 80 are forwarded,
    // which the test receiver (at most 100 headers itself) can take.
    for i in 0..500 {
        let name = if i < 80 {
            "Upstash-Forward-X-H"
        } else {
            "X-Not-Forwarded-"
        };
        req = req.header(format!("{name}{i}"), format!("v{i}"));
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].header("x-h79"), Some("v79"));
    assert_eq!(got[0].signature_error, None);
}
