//! The operational edges: `/health` and `qstash health`, `/metrics`, the lifecycle log lines
//! in both formats, the `/__qstash` test controls and `-rewrite-localhost`.

mod controls;
mod health;
mod logs;
mod metrics;
mod rewrite;

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::common::binary::WAIT;

/// `GET {path}` without any token; returns (status, head, body).
pub fn get_plain(port: u16, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read answer");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head[9..12].parse().expect("status");
    (status, head.to_string(), body.to_string())
}
