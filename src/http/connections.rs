//! The listener: accepts connections and serves the API on each, with the limits a server
//! facing arbitrary clients needs, so slow or idle clients cannot take it over:
//! * a connection must send a complete request head within [`Limits::head_timeout`] of
//!   connecting or of its previous answer (this is also the keep-alive idle timeout);
//! * a request body that sends nothing for [`Limits::body_idle_timeout`] fails;
//! * at most [`Limits::max_connections`] are open: at the cap, the connection idle the longest
//!   is closed to make room (one in the middle of a request never is), so thousands of
//!   clients that connect and say nothing cannot lock the others out;
//! * on shutdown, connections get [`Limits::shutdown_grace`] to finish what they are doing,
//!   then whatever is left (half-sent heads or bodies, unread pipelined answers) is closed.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Api;
use super::idle_body::IdleTimeoutBody;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub head_timeout: Duration,
    pub body_idle_timeout: Duration,
    /// Request headers accepted at most...
    pub max_headers: usize,
    /// ...and the bytes of a request head at most (hyper's read buffer; a larger head gets
    /// hyper's own 431).
    pub max_head_bytes: usize,
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            head_timeout: Duration::from_secs(10),
            body_idle_timeout: Duration::from_secs(10),
            // A publish may forward hundreds of headers (`Upstash-Forward-*`).
            max_headers: 1000,
            max_head_bytes: 1024 * 1024,
            shutdown_grace: Duration::from_secs(3),
        }
    }
}

/// What is known of one open connection. Updated by its requests without the registry's
/// lock (twice per request, from every worker), read only when evicting.
#[derive(Default)]
struct ConnState {
    /// Requests being handled right now.
    busy: AtomicUsize,
    /// When it last became idle (accepted, or answered its last request), as a tick of
    /// [`IDLE_CLOCK`]: the smallest tick has been idle the longest.
    idle_since: AtomicU64,
}

static IDLE_CLOCK: AtomicU64 = AtomicU64::new(0);

impl ConnState {
    fn idle_now(&self) {
        self.idle_since.store(
            IDLE_CLOCK.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
    }
}

struct Conn {
    state: Arc<ConnState>,
    close: CancellationToken,
}

/// The open connections, for the cap and for eviction.
#[derive(Default)]
struct Registry {
    next_id: u64,
    conns: HashMap<u64, Conn>,
}

type Shared = Arc<Mutex<Registry>>;

fn registry(shared: &Shared) -> std::sync::MutexGuard<'_, Registry> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    fn open(&mut self, close: CancellationToken) -> (u64, Arc<ConnState>) {
        self.next_id += 1;
        let state = Arc::new(ConnState::default());
        state.idle_now();
        let conn = Conn {
            state: state.clone(),
            close,
        };
        self.conns.insert(self.next_id, conn);
        (self.next_id, state)
    }

    /// Closes the connection that has been idle the longest; false if every one is busy.
    fn evict_idle(&mut self) -> bool {
        let oldest = self
            .conns
            .iter()
            .filter(|(_, c)| c.state.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.state.idle_since.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        match oldest.and_then(|id| self.conns.remove(&id)) {
            Some(conn) => {
                conn.close.cancel();
                true
            }
            None => false,
        }
    }
}

/// Marks a connection busy for as long as one of its requests is being handled.
struct BusyGuard(Arc<ConnState>);

impl BusyGuard {
    fn new(state: &Arc<ConnState>) -> Self {
        state.busy.fetch_add(1, Ordering::AcqRel);
        Self(state.clone())
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        if self.0.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle_now();
        }
    }
}

/// Whether accepting failed because the process ran out of file descriptors.
fn out_of_fds(e: &std::io::Error) -> bool {
    // EMFILE (24) and ENFILE (23) on Linux and macOS alike.
    cfg!(unix) && matches!(e.raw_os_error(), Some(23 | 24))
}

/// Serves `api` on every listener until `shutdown` resolves; then lets open connections
/// finish for the grace period and closes the rest.
pub async fn serve(
    listeners: Vec<TcpListener>,
    api: Api,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let server = Server {
        api,
        limits,
        shared: Shared::default(),
        tasks: TaskTracker::new(),
        graceful: CancellationToken::new(),
        hard: CancellationToken::new(),
    };
    let stop_accepting = CancellationToken::new();
    let accepting = TaskTracker::new();
    for listener in listeners {
        let (server, stop) = (server.clone(), stop_accepting.clone());
        accepting.spawn(async move {
            tokio::select! {
                _ = server.accept_loop(&listener) => {}
                _ = stop.cancelled() => {}
            }
        });
    }
    accepting.close();
    shutdown.await;
    stop_accepting.cancel();
    accepting.wait().await;
    server.graceful.cancel();
    server.tasks.close();
    if tokio::time::timeout(limits.shutdown_grace, server.tasks.wait())
        .await
        .is_err()
    {
        let left = registry(&server.shared).conns.len();
        tracing::info!(
            connections = left,
            "closing connections still open after the shutdown grace period"
        );
        server.hard.cancel();
        server.tasks.wait().await;
    }
}

#[derive(Clone)]
struct Server {
    api: Api,
    limits: Limits,
    shared: Shared,
    tasks: TaskTracker,
    /// Asks every connection to finish its current request and close.
    graceful: CancellationToken,
    /// Closes every connection at once.
    hard: CancellationToken,
}

impl Server {
    async fn accept_loop(&self, listener: &TcpListener) {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    if out_of_fds(&e) {
                        registry(&self.shared).evict_idle();
                    }
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            };
            let close = self.hard.child_token();
            let id = {
                let mut reg = registry(&self.shared);
                if reg.conns.len() >= self.limits.max_connections && !reg.evict_idle() {
                    tracing::warn!(
                        max = self.limits.max_connections,
                        "connection refused: every connection is busy"
                    );
                    continue;
                }
                reg.open(close.clone())
            };
            let (id, state) = id;
            let conn = Connection {
                api: self.api.clone(),
                limits: self.limits,
                shared: self.shared.clone(),
                id,
                state,
                peer,
            };
            self.tasks
                .spawn(conn.run(stream, close, self.graceful.clone()));
        }
    }
}

struct Connection {
    api: Api,
    limits: Limits,
    shared: Shared,
    id: u64,
    state: Arc<ConnState>,
    peer: SocketAddr,
}

impl Connection {
    async fn run(self, stream: TcpStream, close: CancellationToken, graceful: CancellationToken) {
        let _ = stream.set_nodelay(true);
        let Self {
            api,
            limits,
            shared,
            id,
            state,
            peer,
        } = self;
        let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
            let guard = BusyGuard::new(&state);
            let mut req = req.map(|body| {
                axum::body::Body::new(IdleTimeoutBody::new(limits.body_idle_timeout, body))
            });
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut api = api.clone();
            async move {
                let response = tower::Service::call(&mut api, req).await;
                drop(guard);
                response
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.head_timeout)
            .max_headers(limits.max_headers)
            .max_buf_size(limits.max_head_bytes)
            .serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let mut draining = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                    break;
                }
                _ = close.cancelled() => break,
                _ = graceful.cancelled(), if !draining => {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        registry(&shared).conns.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_takes_the_longest_idle_and_never_a_busy_one() {
        let mut reg = Registry::default();
        let (a, b, c) = (
            CancellationToken::new(),
            CancellationToken::new(),
            CancellationToken::new(),
        );
        let (_, sa) = reg.open(a.clone());
        let (_, sb) = reg.open(b.clone());
        let (_, sc) = reg.open(c.clone());
        let busy_a = BusyGuard::new(&sa);
        assert!(reg.evict_idle());
        assert!(b.is_cancelled() && !a.is_cancelled() && !c.is_cancelled());
        drop(BusyGuard::new(&sb)); // gone already: nothing happens
        assert!(reg.evict_idle());
        assert!(c.is_cancelled());
        assert!(!reg.evict_idle(), "only a busy one is left");
        assert!(!a.is_cancelled());
        // Answered: idle since now, so after a connection idle since before.
        let d = CancellationToken::new();
        let (_, _sd) = reg.open(d.clone());
        drop(busy_a);
        assert!(reg.evict_idle());
        assert!(d.is_cancelled() && !a.is_cancelled());
        drop(sc);
    }
}
