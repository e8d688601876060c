//! What every answered request leaves behind: a count by route template and status (for
//! `/metrics`), and a debug-level log line (method, path, status, duration), so 401s and
//! 404s a client gets can be seen with `RUST_LOG=qstash=debug`.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use http::{Method, Uri};

use crate::engine::Broker;
use crate::metrics::{Requests, UNMATCHED};

/// State shared by the operational endpoints: the request counters and the start time.
pub struct Ops {
    pub requests: Requests,
    started_at_ms: i64,
}

impl Ops {
    pub fn new(broker: &Broker) -> Arc<Self> {
        Arc::new(Self {
            requests: Requests::new(),
            started_at_ms: broker.clock().now_ms(),
        })
    }

    /// Seconds since the start on the server's clock (so it moves with `/__qstash/clock`).
    pub fn uptime_seconds(&self, broker: &Broker) -> u64 {
        (broker.clock().now_ms() - self.started_at_ms).max(0) as u64 / 1000
    }
}

/// Copies the matched route template onto the response, where [`Seen::done`] reads it
/// (the router inserts it into the request only).
pub async fn tag_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// A request being answered: what its log line and count need, taken before the request
/// is handed on.
pub struct Seen {
    method: Method,
    /// Kept only when the debug line will be written.
    uri: Option<Uri>,
    started: Instant,
}

impl Seen {
    pub fn new(req: &Request) -> Self {
        Self {
            method: req.method().clone(),
            uri: tracing::enabled!(tracing::Level::DEBUG).then(|| req.uri().clone()),
            started: Instant::now(),
        }
    }

    /// Counts a publish (the fast path, which bypasses the router) and logs it.
    pub fn publish_done(self, ops: &Ops, response: &Response) {
        let status = response.status().as_u16();
        ops.requests.publish(status);
        self.log(status, crate::metrics::PUBLISH_ROUTE);
    }

    pub fn done(self, ops: &Ops, response: &Response) {
        let status = response.status().as_u16();
        let route = response
            .extensions()
            .get::<MatchedPath>()
            .map_or(UNMATCHED, |p| p.as_str());
        ops.requests.record(&self.method, route, status);
        self.log(status, route);
    }

    fn log(self, status: u16, route: &str) {
        if let Some(uri) = self.uri {
            tracing::debug!(
                method = %self.method,
                path = uri.path(),
                route,
                status,
                duration_us = self.started.elapsed().as_micros() as u64,
                "request"
            );
        }
    }
}
