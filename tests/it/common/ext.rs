//! Request helpers shared by the feature tests (URL groups, batch, callbacks, dedup, webhook,
//! queues, flow control, schedules).

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder};
use serde_json::Value;

use super::{TOKEN, TestServer, WAIT};

/// Status and JSON body (`Null` when the body is empty or not JSON) of a response.
pub async fn send(req: RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Polls `check` until it yields `Some`, for at most [`WAIT`]; panics with `what` otherwise.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Headers as a list, for `with_headers`.
pub type Headers<'a> = &'a [(&'a str, &'a str)];

impl TestServer {
    /// Any method on an API path, with the default user's token.
    pub fn call(&self, method: &str, path: &str) -> RequestBuilder {
        self.http
            .request(
                Method::from_bytes(method.as_bytes()).expect("method"),
                format!("{}{path}", self.url),
            )
            .bearer_auth(TOKEN)
    }

    /// `POST` `path` with `headers` and a raw body; status and JSON answer.
    pub async fn post_raw(&self, path: &str, headers: Headers<'_>, body: &str) -> (u16, Value) {
        let mut req = self.post(path).body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        send(req).await
    }

    /// `POST` `path` with a JSON body; status and JSON answer.
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        send(
            self.post(path)
                .header("Content-Type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// Log entries matching the `/v2/events` query `query` (e.g. `messageId=…`), **oldest** first
    /// (unlike [`TestServer::events`]).
    pub async fn log_entries(&self, query: &str) -> Vec<Value> {
        let (status, json) = self
            .get_json(&format!("/v2/events?count=1000&{query}"))
            .await;
        assert_eq!(status, 200, "events {query}: {json}");
        let mut events = json["events"].as_array().cloned().unwrap_or_default();
        events.reverse();
        events
    }

    /// The first log entry of `message_id` in `state` (waits for it).
    pub async fn event(&self, message_id: &str, state: &str) -> Value {
        eventually(&format!("{state} entry of {message_id}"), || async {
            self.log_entries(&format!("messageId={message_id}&state={state}"))
                .await
                .into_iter()
                .next()
        })
        .await
    }
}
