//! HTTP requests answered, by method, route template (`/v2/messages/{id}`, never the raw
//! path, so the label set stays small) and status.
//!
//! Each route's counters are a flat array of atomics indexed by (method, status), created on
//! the route's first request; after that a request costs a read lock on the route map and
//! one relaxed add. Publishes (the hot path) skip even the map: their counters are held
//! directly.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

use http::Method;

/// Route label of requests no route matched (404s of unknown paths): one label for all, so a
/// scanner cannot grow the label set.
pub const UNMATCHED: &str = "unmatched";
/// The route of `POST /v2/publish/...`, as the router names it.
pub const PUBLISH_ROUTE: &str = "/v2/publish/{*destination}";

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OTHER"];
/// Statuses 100..=599.
const STATUSES: usize = 500;

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::POST => 1,
        Method::PUT => 2,
        Method::PATCH => 3,
        Method::DELETE => 4,
        _ => 5,
    }
}

struct RouteCounts(Box<[AtomicU64]>);

impl RouteCounts {
    fn new() -> Self {
        Self(
            (0..METHODS.len() * STATUSES)
                .map(|_| AtomicU64::new(0))
                .collect(),
        )
    }

    fn add(&self, method: &Method, status: u16) {
        let status = (status.clamp(100, 599) - 100) as usize;
        self.0[method_index(method) * STATUSES + status].fetch_add(1, Relaxed);
    }
}

/// One non-zero count: (method, route, status, count).
pub type RequestCount = (&'static str, Arc<str>, u16, u64);

pub struct Requests {
    routes: RwLock<HashMap<Arc<str>, Arc<RouteCounts>>>,
    publish: Arc<RouteCounts>,
}

impl Default for Requests {
    fn default() -> Self {
        let publish = Arc::new(RouteCounts::new());
        let mut routes = HashMap::new();
        routes.insert(Arc::from(PUBLISH_ROUTE), publish.clone());
        Self {
            routes: RwLock::new(routes),
            publish,
        }
    }
}

impl Requests {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a publish answered with `status` (the fast path).
    pub fn publish(&self, status: u16) {
        self.publish.add(&Method::POST, status);
    }

    /// Counts a request to `route` (a route template, or [`UNMATCHED`]).
    pub fn record(&self, method: &Method, route: &str, status: u16) {
        let known = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
            .cloned();
        let counts = match known {
            Some(c) => c,
            None => self
                .routes
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .entry(Arc::from(route))
                .or_insert_with(|| Arc::new(RouteCounts::new()))
                .clone(),
        };
        counts.add(method, status);
    }

    /// Every non-zero count, sorted by route, method and status.
    pub fn counts(&self) -> Vec<RequestCount> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (route, counts) in routes.iter() {
            for (i, n) in counts.0.iter().enumerate() {
                let n = n.load(Relaxed);
                if n > 0 {
                    let status = (i % STATUSES) as u16 + 100;
                    out.push((METHODS[i / STATUSES], route.clone(), status, n));
                }
            }
        }
        out.sort_by(|a, b| (&a.1, a.0, a.2).cmp(&(&b.1, b.0, b.2)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_method_route_and_status() {
        let r = Requests::new();
        r.publish(201);
        r.publish(201);
        r.record(&Method::GET, "/v2/messages/{id}", 404);
        r.record(&Method::DELETE, "/v2/messages/{id}", 200);
        r.record(&Method::OPTIONS, UNMATCHED, 404);
        let c = r.counts();
        assert_eq!(
            c,
            vec![
                ("DELETE", Arc::from("/v2/messages/{id}"), 200, 1),
                ("GET", Arc::from("/v2/messages/{id}"), 404, 1),
                ("POST", Arc::from(PUBLISH_ROUTE), 201, 2),
                ("OTHER", Arc::from(UNMATCHED), 404, 1),
            ]
        );
    }
}
