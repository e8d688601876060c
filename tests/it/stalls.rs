//! Slow and hanging peers against the real binary: destinations that never answer, clients
//! that connect and say nothing, a shutdown while clients hold requests half-sent.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::common::binary::{Dev, Started, heavy, http};
use crate::common::ext::send;
use crate::common::{Receiver, Reply, TOKEN};
use qstash::users::USERS;

async fn publish(http: &reqwest::Client, server: &Started, user: usize, url: &str) {
    let (status, body) = send(
        http.post(format!("{}/v2/publish/{url}", server.url))
            .bearer_auth(USERS[user].token)
            .header("Upstash-Retries", "0"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_route_does_not_starve_the_other_routes_of_its_host_for_any_user() {
    let _heavy = heavy().await;
    let server = Started::new(&[], &[]);
    let rx =
        Receiver::start_with_keys(&[USERS[0].current_signing_key, USERS[1].current_signing_key])
            .await;
    rx.route("/hang", Reply::status(200).delay(Duration::from_secs(60)));
    let http = reqwest::Client::new();
    for _ in 0..200 {
        publish(&http, &server, 0, &format!("{}/hang", rx.url)).await;
    }
    let start = Instant::now();
    for i in 0..400 {
        // Half from another user: the host's capacity is shared across users too.
        publish(&http, &server, i % 2, &format!("{}/fast", rx.url)).await;
    }
    let fast = || rx.received().iter().filter(|r| r.target == "/fast").count();
    while fast() < 400 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} of 400 deliveries to /fast arrived while /hang hangs",
            fast()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hanging_destinations_cannot_exhaust_the_file_descriptors() {
    let _heavy = heavy().await;
    let mut server = Started::with_fd_limit(Some(1024), &[], &[]);
    let mut hanging = Vec::new();
    for _ in 0..8 {
        let rx = Receiver::start().await;
        rx.set_default(Reply::status(200).delay(Duration::from_secs(60)));
        hanging.push(rx);
    }
    let http = reqwest::Client::new();
    for rx in &hanging {
        for _ in 0..150 {
            publish(&http, &server, 0, &format!("{}/hang", rx.url)).await;
        }
    }
    let fast = Receiver::start().await;
    for _ in 0..50 {
        publish(&http, &server, 0, &format!("{}/fast", fast.url)).await;
    }
    fast.wait_for(50).await;
    // Nothing failed for lack of file descriptors, and the API answers.
    let (_, failed) = send(
        http.get(format!("{}/v2/events?state=ERROR", server.url))
            .bearer_auth(TOKEN),
    )
    .await;
    assert_eq!(failed["events"], serde_json::json!([]), "{failed}");
    server.assert_serving();
}

/// Opens `n` connections that send half a request head and then nothing.
fn slowloris(port: u16, n: usize) -> Vec<std::net::TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
            s.write_all(b"GET /v2/keys HTTP/1.1\r\nHost: x\r\n").ok()?;
            Some(s)
        })
        .collect()
}

/// Times `n` API calls, each on a new connection; returns the 99th percentile.
async fn api_p99(url: &str, n: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..n {
        let http = reqwest::Client::new();
        let t = Instant::now();
        let resp = http
            .get(format!("{url}/v2/keys"))
            .bearer_auth(TOKEN)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("the API must stay reachable");
        assert_eq!(resp.status(), 200);
        times.push(t.elapsed());
    }
    times.sort();
    times[n * 99 / 100]
}

#[tokio::test(flavor = "multi_thread")]
async fn thousands_of_slow_clients_do_not_lock_the_api_out() {
    let _heavy = heavy().await;
    let server = Started::new(&[], &[]);
    let held = slowloris(server.port, 3000);
    assert!(held.len() > 2500);
    let p99 = api_p99(&server.url, 100).await;
    assert!(
        p99 < Duration::from_millis(150),
        "API p99 {p99:?} behind 3000 slow clients"
    );

    // With 1024 file descriptors, 1,100 idle connections made the API unreachable.
    let small = Started::with_fd_limit(Some(1024), &[], &[]);
    let held = slowloris(small.port, 1100);
    assert!(held.len() > 1000);
    let p99 = api_p99(&small.url, 50).await;
    assert!(
        p99 < Duration::from_millis(150),
        "API p99 {p99:?} with 1024 fds"
    );
}

#[test]
fn slow_clients_are_disconnected_after_the_head_timeout() {
    let server = Started::new(&[], &[]);
    let mut held = slowloris(server.port, 1).remove(0);
    held.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 64];
    let n = std::io::Read::read(&mut held, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed, no answer");
    let waited = start.elapsed();
    assert!(
        waited > Duration::from_secs(8) && waited < Duration::from_secs(15),
        "closed after {waited:?}"
    );
}

#[test]
fn a_body_that_stops_arriving_fails_after_the_idle_timeout_and_nothing_is_stored() {
    use std::io::{Read, Write};
    let server = Started::new(&[], &[]);
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let head = format!(
        "POST /v2/publish/http://127.0.0.1:9/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n0123456789"
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer);
    let waited = start.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        waited > Duration::from_secs(8) && waited < Duration::from_secs(15),
        "ended after {waited:?}: {answer}"
    );
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    let (status, body) = http(server.port, "GET", "/v2/events", 0, &[]);
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("127.0.0.1:9/x"), "nothing stored: {body}");
}

#[test]
fn shutdown_has_a_deadline_even_with_half_sent_requests_and_logs_what_is_dropped() {
    let mut server = Started::new(&[], &[]);
    let (status, _) = http(
        server.port,
        "POST",
        "/v2/publish/http://127.0.0.1:9/later",
        0,
        &["Upstash-Delay: 1h"],
    );
    assert_eq!(status, 200);
    let _half_head = slowloris(server.port, 1);
    let mut half_body = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    half_body
        .write_all(
            format!(
                "POST /v2/publish/http://127.0.0.1:9/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\nonly a part"
            )
            .as_bytes(),
        )
        .unwrap();
    // Pipelined requests whose answers are never read.
    let mut unread = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let one = format!("GET /v2/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    let _ = unread.write_all(one.repeat(20_000).as_bytes());
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    server.dev.signal("TERM");
    let status = server.dev.wait_exit(Duration::from_secs(8));
    assert_eq!(status.code(), Some(0), "{}", server.dev.output());
    assert!(
        start.elapsed() < Duration::from_secs(6),
        "took {:?}",
        start.elapsed()
    );
    let stderr = server.dev.stderr.lock().unwrap().clone();
    assert!(
        stderr.contains("pending=1") && stderr.contains("in_flight=0"),
        "one line with what was pending or in flight: {stderr}"
    );
}

#[test]
fn a_signal_right_after_the_banner_shuts_down_cleanly() {
    for _ in 0..20 {
        let mut dev = Dev::spawn(&["dev", "-port", "0"], &[]);
        // The very first line, before the rest of the banner is even read.
        dev.wait_line("readiness", |l| l.contains("is running"));
        dev.signal("TERM");
        let status = dev.wait_exit(Duration::from_secs(8));
        assert_eq!(
            status.code(),
            Some(0),
            "killed instead of shut down: {status}"
        );
    }
}

#[test]
fn it_listens_on_loopback_only_by_default() {
    let server = Started::new(&[], &[]);
    let everywhere = Started::new(&["-host", "0.0.0.0"], &[]);
    let listening = |port: u16| -> Vec<String> {
        let hex = format!(":{port:04X}");
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .iter()
            .flat_map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .filter_map(|l| {
                let cols: Vec<&str> = l.split_whitespace().collect();
                // Local address, and state 0A = LISTEN.
                (cols.get(3) == Some(&"0A") && cols.get(1)?.ends_with(&hex))
                    .then(|| cols[1].split(':').next().unwrap_or("").to_string())
            })
            .collect()
    };
    let local = listening(server.port);
    assert!(!local.is_empty());
    for addr in &local {
        assert!(
            addr == "0100007F" || addr == "00000000000000000000000001000000",
            "listening on {addr}, not loopback"
        );
    }
    assert_eq!(listening(everywhere.port), ["00000000"], "-host 0.0.0.0");
}
