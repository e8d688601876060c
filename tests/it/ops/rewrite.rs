//! `-rewrite-localhost HOST` (env `QSTASH_DEV_REWRITE_LOCALHOST`): deliveries to localhost
//! go to HOST. Checked with a receiver on 127.0.0.2, where a delivery to `localhost` (which
//! is 127.0.0.1 or ::1) can only arrive through the rewrite.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::common::binary::{Started, accept_within, http};

/// The request head one delivery sends to `listener`, answered 200.
fn receive_one(listener: &TcpListener) -> Vec<String> {
    let stream = accept_within(listener, Duration::from_secs(10));
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let mut stream = stream;
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    head
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn check(args: &[&str], env: &[(&str, &str)]) {
    let listener = TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2");
    let port = listener.local_addr().unwrap().port();
    let server = Started::new(args, env);
    let destination = format!("http://localhost:{port}/hook?a=1");
    let (status, body) = http(
        server.port,
        "POST",
        &format!("/v2/publish/{destination}"),
        0,
        &[],
    );
    assert!(status < 300, "{status} {body}");
    let head = receive_one(&listener);
    assert_eq!(head[0], "POST /hook?a=1 HTTP/1.1", "{head:?}");
    assert_eq!(
        header(&head, "host"),
        Some(format!("127.0.0.2:{port}").as_str())
    );
    // The signature names the URL as published: what the receiver's code checks.
    let jwt = header(&head, "upstash-signature").expect("signed");
    let claims = jwt.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], destination);
}

#[test]
fn localhost_destinations_are_delivered_to_the_rewrite_host() {
    check(&["-rewrite-localhost", "127.0.0.2"], &[]);
}

#[test]
fn the_rewrite_host_can_come_from_the_environment() {
    check(&[], &[("QSTASH_DEV_REWRITE_LOCALHOST", "127.0.0.2")]);
}
