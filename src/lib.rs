//! A QStash-compatible development server: the Upstash QStash `/v2` REST API, a delivery
//! engine with signing, retries, callbacks and a DLQ, all in memory.
//!
//! Layout: [`http`] (axum routes, thin handlers) → [`engine`] (the broker: state machine,
//! timers, delivery tasks) → [`store`] (data behind one trait); [`domain`] holds the pure
//! rules, [`signing`] the JWTs, [`clock`] the one source of time.

pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod engine;
pub mod http;
pub mod ids;
pub mod signing;
pub mod store;
pub mod users;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::Config;
pub use engine::Broker;

/// Serves the API on `listener` until `shutdown` resolves, then stops the delivery engine.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let broker = Broker::start(
        Arc::new(config),
        Box::new(store::MemoryStore::new()),
        tracker.clone(),
        token.clone(),
    );
    let app = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<
        SocketAddr,
    >(http::Api::new(broker));
    let stop = token.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stop.cancelled() => {}
            }
        })
        .await?;
    token.cancel();
    tracker.close();
    // Deliveries abort on cancellation; this only waits for them to notice.
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    Ok(())
}
