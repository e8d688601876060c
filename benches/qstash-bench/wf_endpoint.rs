//! A workflow endpoint that speaks the protocol without an SDK, for the workflow scenario:
//! on each delivery it does what `@upstash/workflow` does with `context.run` steps (reads the
//! steps array, publishes the next step, answers 200 with the SDK's version header) and ends
//! the run with `DELETE /v2/workflows/runs/{id}` after the last step. It also runs plain
//! chains (each delivery publishes the next plain message) to compare against, and can park
//! runs (a sleeping step or a wait) for the memory figure.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::client::TOKEN;
use crate::stamp::now_ns;

const FEATURES: &str = "LazyFetch,InitialBody,WF_DetectTrigger,WF_TriggerOnConfig";

#[derive(Default)]
pub struct Stats {
    /// Step publish → its delivery, per step (ns).
    pub step_latency: Vec<u64>,
    /// Plain publish → its delivery (ns).
    pub plain_latency: Vec<u64>,
    pub deliveries: u64,
    pub runs_done: u64,
    pub errors: u64,
    pub first_error: Option<String>,
}

struct State {
    server: SocketAddr,
    me: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
    /// When the step a run is waiting for was published.
    sent: Mutex<HashMap<String, u64>>,
    stats: Mutex<Stats>,
    /// New runs/chains start only while this is set.
    open: AtomicBool,
    next_run: AtomicU64,
    /// Parked (idle) runs whose Init was answered.
    parked: AtomicU64,
}

#[derive(Clone)]
pub struct Endpoint {
    state: Arc<State>,
}

impl Endpoint {
    pub async fn start(server: SocketAddr) -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("workflow endpoint: {e}"))?;
        let me = listener.local_addr().map_err(|e| e.to_string())?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(512)
            .build(http);
        let state = Arc::new(State {
            server,
            me,
            client,
            sent: Mutex::default(),
            stats: Mutex::default(),
            open: AtomicBool::new(false),
            next_run: AtomicU64::new(0),
            parked: AtomicU64::new(0),
        });
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let s = s.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(s.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { state })
    }

    /// Starts `n` runs of `steps` steps (`steps == 0`: plain chains) that restart until
    /// [`Endpoint::stop`].
    pub async fn start_chains(&self, n: usize, steps: u32) {
        self.state.open.store(true, Ordering::SeqCst);
        for _ in 0..n {
            start(&self.state, steps).await;
        }
    }

    /// Parks `n` runs: each answers its Init by sleeping an hour (even runs) or waiting for an
    /// event (odd ones).
    pub async fn park(&self, n: u64) {
        for i in 0..n {
            let id = format!("wfr_idle_{i}");
            let url = format!("http://{}/idle/{i}", self.state.me);
            publish(
                &self.state,
                &url,
                &wf_headers(&id, &url, true),
                Bytes::from_static(b"{}"),
            )
            .await;
        }
    }

    pub fn parked(&self) -> u64 {
        self.state.parked.load(Ordering::Relaxed)
    }

    pub fn stop(&self) {
        self.state.open.store(false, Ordering::SeqCst);
    }

    pub fn take_stats(&self) -> Stats {
        std::mem::take(&mut *self.state.stats.lock().expect("stats"))
    }
}

fn wf_headers(run: &str, url: &str, init: bool) -> Vec<(&'static str, String)> {
    vec![
        ("upstash-workflow-runid", run.to_string()),
        ("upstash-workflow-init", init.to_string()),
        ("upstash-workflow-url", url.to_string()),
        ("upstash-feature-set", FEATURES.to_string()),
        (
            "upstash-forward-upstash-workflow-sdk-version",
            "1".to_string(),
        ),
    ]
}

async fn start(s: &Arc<State>, steps: u32) {
    let n = s.next_run.fetch_add(1, Ordering::Relaxed);
    if steps == 0 {
        let url = format!("http://{}/plain/9", s.me);
        publish(s, &url, &[], Bytes::from(now_ns().to_string())).await;
        return;
    }
    let id = format!("wfr_bench_{n}");
    let url = format!("http://{}/wf/{steps}", s.me);
    publish(
        s,
        &url,
        &wf_headers(&id, &url, true),
        Bytes::from_static(b"{}"),
    )
    .await;
}

fn error(s: &State, what: String) {
    let mut st = s.stats.lock().expect("stats");
    st.errors += 1;
    st.first_error.get_or_insert(what);
}

async fn call(s: &State, method: Method, path: &str, headers: &[(&str, String)], body: Bytes) {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method;
    *req.uri_mut() = match format!("http://{}{path}", s.server).parse() {
        Ok(u) => u,
        Err(e) => return error(s, format!("bad uri {path}: {e}")),
    };
    let h = req.headers_mut();
    h.insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("token"),
    );
    h.insert("content-type", "application/json".parse().expect("ct"));
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            v.parse(),
        ) {
            h.insert(k, v);
        }
    }
    match s.client.request(req).await {
        Ok(resp) if resp.status().is_success() => {
            let _ = resp.into_body().collect().await;
        }
        Ok(resp) => {
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            error(
                s,
                format!("{path}: {status} {}", String::from_utf8_lossy(&body)),
            );
        }
        Err(e) => error(s, format!("{path}: {e}")),
    }
}

async fn publish(s: &State, url: &str, headers: &[(&str, String)], body: Bytes) {
    call(
        s,
        Method::POST,
        &format!("/v2/publish/{url}"),
        headers,
        body,
    )
    .await;
}

fn header(req: &Request<Incoming>, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Entries in a steps array (`"messageId"` occurs once per entry).
fn entries(body: &[u8]) -> u32 {
    body.windows(12).filter(|w| w == b"\"messageId\":").count() as u32
}

async fn handle(
    s: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let run = header(&req, "upstash-workflow-runid");
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let at = now_ns();
    s.stats.lock().expect("stats").deliveries += 1;
    let mut parts = path.trim_start_matches('/').split('/');
    match (
        parts.next(),
        parts.next().and_then(|n| n.parse::<u32>().ok()),
    ) {
        (Some("plain"), Some(left)) => {
            if let Ok(t) = std::str::from_utf8(&body).unwrap_or("").parse::<u64>() {
                s.stats
                    .lock()
                    .expect("stats")
                    .plain_latency
                    .push(at.saturating_sub(t));
            }
            if left > 0 {
                let url = format!("http://{}/plain/{}", s.me, left - 1);
                publish(&s, &url, &[], Bytes::from(now_ns().to_string())).await;
            } else {
                s.stats.lock().expect("stats").runs_done += 1;
                if s.open.load(Ordering::Relaxed) {
                    start(&s, 0).await;
                }
            }
        }
        (Some("wf"), Some(steps)) => {
            let done = entries(&body).saturating_sub(1);
            if let Some(t) = s.sent.lock().expect("sent").remove(&run) {
                s.stats
                    .lock()
                    .expect("stats")
                    .step_latency
                    .push(at.saturating_sub(t));
            }
            let url = format!("http://{}/wf/{steps}", s.me);
            if done < steps {
                let id = done + 1;
                let step = format!(
                    r#"{{"stepId":{id},"stepName":"step {id}","stepType":"Run","out":"{{\"n\":{id}}}","concurrent":1}}"#
                );
                s.sent.lock().expect("sent").insert(run.clone(), now_ns());
                publish(&s, &url, &wf_headers(&run, &url, false), Bytes::from(step)).await;
            } else {
                let path = format!("/v2/workflows/runs/{run}?cancel=false");
                call(
                    &s,
                    Method::DELETE,
                    &path,
                    &[],
                    Bytes::from_static(b"\"done\""),
                )
                .await;
                s.stats.lock().expect("stats").runs_done += 1;
                if s.open.load(Ordering::Relaxed) {
                    start(&s, steps).await;
                }
            }
        }
        (Some("idle"), Some(i)) => {
            let url = format!("http://{}/idle/{i}", s.me);
            if i % 2 == 0 {
                let mut h = wf_headers(&run, &url, false);
                h.push(("upstash-delay", "1h".to_string()));
                let step = r#"{"stepId":1,"stepName":"nap","stepType":"SleepFor","sleepFor":3600,"concurrent":1}"#;
                publish(&s, &url, &h, Bytes::from_static(step.as_bytes())).await;
            } else {
                let wait = format!(
                    r#"{{"url":"{url}","timeout":"7d","timeoutUrl":"{url}","timeoutHeaders":{{"Upstash-Workflow-RunId":["{run}"]}},"step":{{"stepId":1,"stepName":"wait","stepType":"Wait","concurrent":1}}}}"#
                );
                let path = format!("/v2/wait/evt-{i}");
                call(
                    &s,
                    Method::POST,
                    &path,
                    &wf_headers(&run, &url, false),
                    Bytes::from(wait),
                )
                .await;
            }
            s.parked.fetch_add(1, Ordering::Relaxed);
        }
        _ => {}
    }
    let mut resp = Response::new(Full::new(Bytes::new()));
    resp.headers_mut()
        .insert("upstash-workflow-sdk-version", "1".parse().expect("header"));
    Ok(resp)
}

/// Waits (bounded) until `cond` holds.
pub async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
