//! `-data-dir`: state kept across restarts and crashes. Every test runs the real binary on a
//! temporary directory, stops it (SIGTERM or SIGKILL) and starts it again on the same one.

mod crash;
mod dir;
mod restart;
mod workflow;

use std::path::{Path, PathBuf};
use std::time::Duration;

use qstash::users::USERS;
use serde_json::Value;

use crate::common::binary::Started;

/// A fresh directory under the system's temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "qstash-persist-{name}-{}-{}",
            std::process::id(),
            qstash::ids::MessageId::random()
        ));
        Self(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary on `dir`, with the controllable clock, and a client for user 0.
pub struct Node {
    pub server: Started,
    pub http: reqwest::Client,
}

impl Node {
    pub fn start(dir: &Path) -> Self {
        let dir = dir.to_str().expect("utf-8 path");
        Self {
            server: Started::new(&["-data-dir", dir, "-clock-control"], &[]),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }

    pub fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(USERS[0].token)
    }

    pub async fn get(&self, path: &str) -> Value {
        let resp = self
            .req(reqwest::Method::GET, path)
            .send()
            .await
            .expect("GET");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "GET {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub async fn post(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Value {
        let mut req = self.req(reqwest::Method::POST, path).body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect("POST");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert!(status.is_success(), "POST {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub async fn advance(&self, by: &str) {
        self.post(&format!("/__qstash/clock/advance?by={by}"), &[], "")
            .await;
    }

    /// Stops the process with `signal` (TERM: a clean stop; KILL: a crash) and waits for it.
    pub fn stop(mut self, signal: &str) {
        self.server.dev.signal(signal);
        self.server.dev.wait_exit(Duration::from_secs(15));
    }
}
