//! `GET /health` and the `qstash health` subcommand the Docker HEALTHCHECK runs.

use std::process::Command;
use std::time::Duration;

use qstash::cli::VERSION;
use serde_json::Value;

use super::get_plain;
use crate::common::binary::{Started, accept_within, bin};

#[test]
fn health_answers_without_a_token_with_status_version_and_uptime() {
    let server = Started::new(&[], &[]);
    let (status, head, body) = get_plain(server.port, "/health");
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], VERSION);
    assert!(json["uptimeSeconds"].as_u64().is_some(), "{json}");
}

fn probe(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(bin())
        .arg("health")
        .args(args)
        .env_remove("QSTASH_DEV_PORT")
        .envs(env.iter().copied())
        .output()
        .expect("run qstash health");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn health_subcommand_exits_0_while_the_server_answers_and_1_once_it_is_gone() {
    let mut server = Started::new(&[], &[]);
    let port = server.port.to_string();
    let (code, out, err) = probe(&["-port", &port], &[]);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains(VERSION), "{out}");
    // The port also comes from QSTASH_DEV_PORT, as `qstash dev` takes it (Docker's -e).
    let (code, _, err) = probe(&[], &[("QSTASH_DEV_PORT", &port)]);
    assert_eq!(code, Some(0), "{err}");
    // Listening on every interface: asked on loopback.
    let (code, _, err) = probe(&["-host", "0.0.0.0", "--port", &port], &[]);
    assert_eq!(code, Some(0), "{err}");

    server.dev.signal("TERM");
    server.dev.wait_exit(Duration::from_secs(10));
    let (code, out, err) = probe(&["-port", &port], &[]);
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("unhealthy"), "{err}");
}

#[test]
fn health_subcommand_fails_on_something_that_is_not_a_qstash_server() {
    // A listener that answers 404 to everything, as another program on the port might.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        // Bounded: a build without the subcommand never connects.
        let mut s = accept_within(&listener, Duration::from_secs(10));
        s.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 1024];
        let _ = std::io::Read::read(&mut s, &mut buf);
        let _ = std::io::Write::write_all(
            &mut s,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    });
    let (code, _, err) = probe(&["-port", &port.to_string()], &[]);
    answer.join().unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("404"), "{err}");
}
