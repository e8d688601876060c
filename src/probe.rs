//! `qstash health`: asks a running server's `GET /health` and says whether it is up. The
//! Docker image's HEALTHCHECK runs it (the runtime image has no shell or curl), so it is a
//! plain blocking HTTP/1.1 exchange over std's TCP: no runtime, no dependencies.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// Answers larger than this are not a health answer.
const MAX_ANSWER: u64 = 64 * 1024;

/// `Ok(version)` when the server at `host:port` answers 200 with `"status": "ok"`, else why
/// not.
pub fn check(host: IpAddr, port: u16, timeout: Duration) -> Result<String, String> {
    // A server listening on every interface is asked on loopback.
    let host = match host {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(host, port);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let io = |e: std::io::Error| format!("no answer from {addr}: {e}");
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let request = format!(
        "GET /health HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut answer = Vec::new();
    stream
        .take(MAX_ANSWER)
        .read_to_end(&mut answer)
        .map_err(io)?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("{addr} answered /health with \"{status}\""));
    }
    let json: serde_json::Value = serde_json::from_str(body.trim())
        .map_err(|_| format!("{addr} answered /health with something that is not JSON"))?;
    if json["status"] != "ok" {
        return Err(format!("{addr} reports status {}", json["status"]));
    }
    Ok(json["version"].as_str().unwrap_or("unknown").to_string())
}
