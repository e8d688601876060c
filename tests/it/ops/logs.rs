//! The log lines of the real binary, read from its stderr: one per lifecycle event, with the
//! message id, user and destination, in `-log-format json` (one object per line) and text
//! (no colour codes off a terminal, no empty `error=""` fields).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::get_plain;
use crate::common::binary::{Started, http};
use crate::common::{Receiver, Reply};

/// Waits until stderr holds a line containing every one of `needles`; returns all of it.
fn wait_stderr(server: &Started, needles: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = server.dev.stderr.lock().unwrap().clone();
        if text.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no line with {needles:?} in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn publish(port: u16, url: &str, headers: &[&str]) -> String {
    let (status, body) = http(port, "POST", &format!("/v2/publish/{url}"), 0, headers);
    assert!(status < 300, "{status} {body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    json["messageId"].as_str().unwrap().to_string()
}

/// Publishes one message that is delivered and one that is retried once, then fails into
/// the DLQ; returns (delivered id, failed id).
fn traffic(server: &Started, rx_url: &str) -> (String, String) {
    let ok = publish(server.port, &format!("{rx_url}/ok"), &[]);
    let failing = publish(
        server.port,
        &format!("{rx_url}/fail"),
        &["Upstash-Retries: 1", "Upstash-Retry-Delay: 0"],
    );
    wait_stderr(server, &[&failing, "DLQ"]);
    (ok, failing)
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_tell_each_lifecycle_event_with_id_user_and_destination() {
    let rx = Receiver::start().await;
    rx.route("/fail", Reply::status(503));
    let server = tokio::task::spawn_blocking(|| {
        Started::new(
            &["-log-format", "json"],
            &[("RUST_LOG", "info,qstash=debug")],
        )
    })
    .await
    .unwrap();
    let (ok, failing, text) = tokio::task::spawn_blocking({
        let rx_url = rx.url.clone();
        move || {
            let (ok, failing) = traffic(&server, &rx_url);
            // A request without a token: its 401 shows in the debug request log.
            let (status, _, _) = get_plain(server.port, "/v2/messages/x");
            assert_eq!(status, 401);
            let text = wait_stderr(&server, &["\"request\"", "401"]);
            (ok, failing, text)
        }
    })
    .await
    .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |message: &str, id: &str| -> &Value {
        lines
            .iter()
            .find(|l| l["message"] == message && l["message_id"] == id)
            .unwrap_or_else(|| panic!("no {message:?} line for {id} in:\n{text}"))
    };
    let accepted = find("message accepted", &ok);
    assert_eq!(accepted["user"], "defaultUser");
    assert_eq!(accepted["destination"], format!("{}/ok", rx.url));
    assert_eq!(accepted["level"], "INFO");
    assert!(accepted["timestamp"].is_string());
    let attempt = find("delivery attempt", &ok);
    assert_eq!(attempt["status"], 200);
    assert!(attempt["duration_ms"].is_u64(), "{attempt}");
    assert!(attempt.get("error").is_none(), "{attempt}");
    assert_eq!(find("message delivered", &ok)["status"], 200);

    let retry = find("retry scheduled", &failing);
    assert!(
        retry["next_delivery_time"].as_str().unwrap().ends_with('Z'),
        "{retry}"
    );
    let failed = find("message failed into the DLQ", &failing);
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["destination"], format!("{}/fail", rx.url));
    assert!(
        failed["error"].as_str().unwrap().contains("503"),
        "{failed}"
    );
    let dlq_id = failed["dlq_id"].as_str().unwrap();
    assert!(!dlq_id.is_empty());

    let request = lines
        .iter()
        .find(|l| l["message"] == "request" && l["status"] == 401)
        .unwrap();
    assert_eq!(request["method"], "GET");
    assert_eq!(request["path"], "/v2/messages/x");
    assert_eq!(request["route"], "/v2/messages/{id}");
    assert!(request["duration_us"].is_u64());
    assert!(!text.contains("\"error\":\"\""), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn text_lines_have_no_colour_codes_or_empty_error_fields_off_a_terminal() {
    let rx = Receiver::start().await;
    rx.route("/fail", Reply::status(503));
    let rx_url = rx.url.clone();
    let text = tokio::task::spawn_blocking(move || {
        // The default format; RUST_LOG unset means info.
        let server = Started::new(&[], &[]);
        let (ok, failing) = traffic(&server, &rx_url);
        let text = wait_stderr(&server, &["delivery attempt", &ok, "status=200"]);
        assert!(text.contains(&format!("message_id={failing}")), "{text}");
        text
    })
    .await
    .unwrap();
    assert!(!text.contains('\u{1b}'), "ANSI codes in a pipe:\n{text}");
    assert!(!text.contains("error=\"\""), "{text}");
    assert!(text.contains("retry scheduled"), "{text}");
    assert!(text.contains("message failed into the DLQ"), "{text}");
    assert!(
        text.contains("user=\"defaultUser\"") || text.contains("user=defaultUser"),
        "{text}"
    );
    // Request lines are debug: not there at the default level.
    assert!(!text.contains(" request "), "{text}");
}
