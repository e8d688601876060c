//! The delivery target: HTTP/1.1 on 127.0.0.1:0 answering 200 at once. It verifies nothing;
//! for each stamped body of the current run it records (arrival time, arrival − stamped time).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::stamp::{self, now_ns};

#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// Bench clock (ns) at arrival.
    pub at: u64,
    /// Arrival minus the time stamped in the body (ns).
    pub latency: u64,
}

#[derive(Default)]
struct State {
    run: AtomicU32,
    /// Deliveries of the current run.
    count: AtomicU64,
    arrivals: Mutex<Vec<Arrival>>,
}

#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<State>,
}

impl Receiver {
    pub async fn start() -> Result<Receiver, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("receiver: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let state = Arc::new(State::default());
        let s = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
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
        Ok(Receiver { addr, state })
    }

    /// Starts recording deliveries stamped with `run` (earlier runs' stragglers are ignored).
    pub fn begin(&self, run: u32) {
        self.state.run.store(run, Ordering::SeqCst);
        let mut a = self.state.arrivals.lock().expect("arrivals");
        a.clear();
        self.state.count.store(0, Ordering::SeqCst);
    }

    pub fn count(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state.arrivals.lock().expect("arrivals").clone()
    }

    /// Waits until `expected` deliveries of the current run arrived or `limit` passed;
    /// returns the time waited and whether all arrived.
    pub async fn wait_for(&self, expected: u64, limit: Duration) -> (Duration, bool) {
        let start = now_ns();
        loop {
            let waited = Duration::from_nanos(now_ns() - start);
            if self.count() >= expected {
                return (waited, true);
            }
            if waited >= limit {
                return (waited, false);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn handle(
    s: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let at = now_ns();
    if let Some((run, t)) = stamp::parse(&body)
        && run == s.run.load(Ordering::Relaxed)
    {
        let arrival = Arrival {
            at,
            latency: at.saturating_sub(t),
        };
        if let Ok(mut a) = s.arrivals.lock() {
            a.push(arrival);
        }
        s.count.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Response::new(Empty::new()))
}
