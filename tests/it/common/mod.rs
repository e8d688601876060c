//! Test harness: the real server on an ephemeral port (in-process, its clock in our hands)
//! and a real receiver that records every delivery and verifies its signature.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use qstash::clock::Clock;
use qstash::config::{Config, QuotaKind};
use qstash::users::USERS;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

pub mod binary;
pub mod ext;

pub const TOKEN: &str = USERS[0].token;

/// Every wait in the tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub url: String,
    pub clock: Clock,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    /// The server runs on its own runtime, whose threads are named after `id`, so a panic
    /// in one of its tasks can be told apart from everything else in the test process.
    runtime: Option<tokio::runtime::Runtime>,
    id: usize,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(Config::new(QuotaKind::Payg)).await
    }

    pub async fn start_with(mut config: Config) -> Self {
        static NEXT_ID: AtomicUsize = AtomicUsize::new(0);
        install_panic_counter();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let clock = Clock::system();
        config.clock = clock.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("{SERVER_THREAD}{id}"))
            .enable_all()
            .build()
            .expect("server runtime");
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            let _ = qstash::run(config, listener, async move {
                let _ = stopped.await;
            })
            .await;
        });
        Self {
            url: format!("http://{addr}"),
            clock,
            http: reqwest::Client::new(),
            stop: Some(stop),
            runtime: Some(runtime),
            id,
        }
    }

    /// How many of this server's tasks panicked so far. A handler that panics only drops
    /// its connection, so this is how the tests notice.
    pub fn panics(&self) -> usize {
        SERVER_PANICS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&self.id)
            .copied()
            .unwrap_or(0)
    }

    /// Requests on behalf of one of the four predefined users (0 = the default user).
    pub fn user(&self, index: usize) -> AsUser<'_> {
        AsUser {
            server: self,
            token: USERS[index].token,
        }
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.user(0).post(path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.user(0).get(path)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.user(0).delete(path)
    }

    /// Publishes `body` to `destination`; returns the message id.
    pub async fn publish(&self, destination: &str, headers: &[(&str, &str)], body: &str) -> String {
        self.user(0).publish(destination, headers, body).await
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, serde_json::Value) {
        self.user(0).get_json(path).await
    }

    pub async fn delete_json(&self, path: &str) -> (StatusCode, serde_json::Value) {
        self.user(0).delete_json(path).await
    }

    /// The `events` of `GET /v2/events?{query}`, newest first (asserts a 200).
    pub async fn events(&self, query: &str) -> Vec<serde_json::Value> {
        self.user(0).events(query).await
    }

    /// Publishes a message that fails at once (no retries) to `url`, whose receiver must
    /// answer it with a non-2xx; returns (message id, DLQ id).
    pub async fn dead_letter(&self, url: &str, headers: &[(&str, &str)]) -> (String, String) {
        let mut all = vec![("Upstash-Retries", "0")];
        all.extend_from_slice(headers);
        let id = self.publish(url, &all, "dead").await;
        self.wait_state(&id, "FAILED").await;
        let (_, dlq) = self.get_json(&format!("/v2/dlq?messageId={id}")).await;
        let dlq_id = dlq["messages"][0]["dlqId"]
            .as_str()
            .unwrap_or_else(|| panic!("no DLQ entry for {id}: {dlq}"))
            .to_string();
        (id, dlq_id)
    }

    /// All log entries of a message, oldest first.
    pub async fn states(&self, message_id: &str) -> Vec<String> {
        let (_, json) = self
            .get_json(&format!("/v2/events?messageId={message_id}&count=1000"))
            .await;
        let mut states: Vec<String> = json["events"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["state"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default();
        states.reverse();
        states
    }

    /// Waits until the message's log ends with `state`.
    pub async fn wait_state(&self, message_id: &str, state: &str) -> Vec<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let states = self.states(message_id).await;
            if states.last().map(String::as_str) == Some(state) {
                return states;
            }
            assert!(
                Instant::now() < deadline,
                "message {message_id} never reached {state}: {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until `n` retries have been planned (n RETRY entries): only then is it safe to
    /// move the clock towards the next attempt.
    pub async fn wait_retries(&self, message_id: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let states = self.states(message_id).await;
            if states.iter().filter(|s| *s == "RETRY").count() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "message {message_id} never planned retry {n}: {states:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub fn advance(&self, d: Duration) {
        self.clock.advance(d.as_millis() as i64);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A [`TestServer`] seen through one user's token.
#[derive(Clone, Copy)]
pub struct AsUser<'a> {
    pub server: &'a TestServer,
    pub token: &'static str,
}

impl AsUser<'_> {
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.server
            .http
            .request(method, format!("{}{path}", self.server.url))
            .bearer_auth(self.token)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST, path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::GET, path)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::DELETE, path)
    }

    pub async fn publish(&self, destination: &str, headers: &[(&str, &str)], body: &str) -> String {
        let mut req = self
            .post(&format!("/v2/publish/{destination}"))
            .body(body.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (status, json) = status_json(req.send().await.expect("publish")).await;
        assert!(status.is_success(), "publish failed: {status} {json}");
        json["messageId"].as_str().expect("messageId").to_string()
    }

    pub async fn get_json(&self, path: &str) -> (StatusCode, serde_json::Value) {
        status_json(self.get(path).send().await.expect("get")).await
    }

    pub async fn delete_json(&self, path: &str) -> (StatusCode, serde_json::Value) {
        status_json(self.delete(path).send().await.expect("delete")).await
    }

    pub async fn events(&self, query: &str) -> Vec<serde_json::Value> {
        let (status, json) = self.get_json(&format!("/v2/events?{query}")).await;
        assert_eq!(status, 200, "events?{query}: {json}");
        json["events"]
            .as_array()
            .unwrap_or_else(|| panic!("no events array: {json}"))
            .clone()
    }
}

/// The status and JSON body of a response (`Null` when the body is not JSON).
pub async fn status_json(resp: reqwest::Response) -> (StatusCode, serde_json::Value) {
    let status = resp.status();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// Percent-encodes a query parameter value.
pub fn enc(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A TCP port nothing listens on (bound once, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

const SERVER_THREAD: &str = "qstash-test-server-";

/// Panics per server id, counted by the name of the thread they happen on.
static SERVER_PANICS: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

fn install_panic_counter() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let server = std::thread::current()
                .name()
                .and_then(|n| n.strip_prefix(SERVER_THREAD))
                .and_then(|id| id.parse::<usize>().ok());
            if let Some(id) = server {
                *SERVER_PANICS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(id)
                    .or_default() += 1;
            }
            previous(info)
        }));
    });
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: Method,
    /// Path and query, as received.
    pub target: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// The JWT claims, if the signature verified with one of the keys.
    pub claims: Option<serde_json::Value>,
    pub signature_error: Option<String>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

/// A canned answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.body = body.into();
        self
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Vec<Received>,
    /// Replies consumed in order; when empty, `default` answers.
    script: Vec<(String, Reply)>,
    /// Standing replies by path prefix (first match), after the script.
    routes: Vec<(String, Reply)>,
    default: Option<Reply>,
}

/// An HTTP endpoint on an ephemeral port that records deliveries and checks each
/// `Upstash-Signature` against the given signing keys (current, then next), the exact URL it
/// was called with, and the body hash.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    keys: Arc<Mutex<Vec<String>>>,
    state: Arc<Mutex<ReceiverState>>,
    arrived: Arc<Notify>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::start_with_keys(&[USERS[0].current_signing_key, USERS[0].next_signing_key]).await
    }

    pub async fn start_with_keys(keys: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let rx = Self {
            url: format!("http://{addr}"),
            keys: Arc::new(Mutex::new(keys.iter().map(|k| k.to_string()).collect())),
            state: Arc::default(),
            arrived: Arc::new(Notify::new()),
        };
        let app = axum::Router::new().fallback(record).with_state(rx.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        rx
    }

    pub fn set_keys(&self, keys: &[&str]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.to_string()).collect();
    }

    /// The next request whose path starts with `path_prefix` gets `reply` (in order).
    pub fn script(&self, path_prefix: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .script
            .push((path_prefix.into(), reply));
    }

    /// Every request whose path starts with `path_prefix` gets `reply` (unless scripted).
    pub fn route(&self, path_prefix: &str, reply: Reply) {
        self.state
            .lock()
            .unwrap()
            .routes
            .push((path_prefix.into(), reply));
    }

    pub fn set_default(&self, reply: Reply) {
        self.state.lock().unwrap().default = Some(reply);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// Waits until at least `n` requests arrived; returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.arrived.notified();
            let all = self.received();
            if all.len() >= n {
                return all;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "receiver got {} requests, expected {n}: {:#?}",
                    all.len(),
                    all.iter().map(|r| &r.target).collect::<Vec<_>>()
                );
            }
        }
    }

    /// Asserts nothing more arrives for `d` (used after a cancel or a final failure).
    pub async fn assert_quiet(&self, already: usize, d: Duration) {
        tokio::time::sleep(d).await;
        assert_eq!(self.count(), already, "unexpected extra deliveries");
    }
}

fn verify(
    keys: &[String],
    token: &str,
    url: &str,
    body: &[u8],
) -> Result<serde_json::Value, String> {
    use base64::Engine;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use sha2::Digest;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_issuer(&["Upstash"]);
    validation.set_required_spec_claims(&["iss", "sub", "exp", "nbf"]);
    validation.leeway = 0;
    let mut last = String::from("no keys");
    for key in keys {
        match jsonwebtoken::decode::<serde_json::Value>(
            token,
            &DecodingKey::from_secret(key.as_bytes()),
            &validation,
        ) {
            Ok(data) => {
                let claims = data.claims;
                if claims["sub"] != url {
                    return Err(format!("sub {} != called url {url}", claims["sub"]));
                }
                let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(sha2::Sha256::digest(body));
                let claimed = claims["body"].as_str().unwrap_or("").trim_end_matches('=');
                if claimed != hash {
                    return Err(format!("body hash {claimed} != {hash}"));
                }
                return Ok(claims);
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

async fn record(
    State(rx): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let url = format!("{}{}", rx.url, target);
    let keys = rx.keys.lock().unwrap().clone();
    let (claims, signature_error) = match headers
        .get("upstash-signature")
        .and_then(|v| v.to_str().ok())
    {
        None => (None, Some("missing Upstash-Signature".to_string())),
        Some(token) => match verify(&keys, token, &url, &body) {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e)),
        },
    };
    let reply = {
        let mut state = rx.state.lock().unwrap();
        state.received.push(Received {
            method,
            target: target.clone(),
            headers,
            body,
            at: Instant::now(),
            claims,
            signature_error,
        });
        let pos = state
            .script
            .iter()
            .position(|(p, _)| target.starts_with(p.as_str()));
        match pos {
            Some(i) => state.script.remove(i).1,
            None => state
                .routes
                .iter()
                .find(|(p, _)| target.starts_with(p.as_str()))
                .map(|(_, r)| r.clone())
                .or_else(|| state.default.clone())
                .unwrap_or_else(|| Reply::status(200)),
        }
    };
    rx.arrived.notify_waiters();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
        reply.body,
    )
        .into_response();
    for (k, v) in reply.headers {
        if let (Ok(n), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().append(n, v);
        }
    }
    resp
}
