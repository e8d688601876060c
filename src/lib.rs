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
pub mod metrics;
pub mod persistence;
pub mod probe;
pub mod signing;
pub mod store;
pub mod users;

use std::future::Future;
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
    run_on(config, vec![listener], shutdown, || {}).await
}

/// [`run`] on several listeners at once (127.0.0.1 and ::1, say); `ready` is called once
/// everything is set up, right before the first connection is accepted (the banner).
pub async fn run_on(
    config: Config,
    listeners: Vec<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    ready: impl FnOnce(),
) -> std::io::Result<()> {
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    let limits = http::connections::Limits {
        max_connections: config.max_connections,
        ..Default::default()
    };
    let store = store::MemoryStore::with_budget(config.retention_bytes);
    let (data_dir, broker) = match config.data_dir.clone() {
        None => {
            let broker = Broker::start(
                Arc::new(config),
                Box::new(store),
                tracker.clone(),
                token.clone(),
            );
            (None, broker)
        }
        Some(dir) => {
            let now = config.clock.now_ms();
            // A directory that cannot be used stops the start: serving an empty state in
            // its place would look like everything was lost.
            let (data_dir, store, restored) =
                persistence::DataDir::open(&dir, store, now).map_err(std::io::Error::other)?;
            tracing::info!(
                dir = %dir.display(),
                messages = restored.messages.len(),
                "state read back from the data directory"
            );
            let durability = engine::Durability {
                journal: data_dir.journal.clone(),
                flows: restored.flows,
                messages: restored
                    .messages
                    .iter()
                    .map(|&(u, id, _)| (u, id))
                    .collect(),
            };
            let broker = Broker::start_with(
                Arc::new(config),
                Box::new(store),
                Some(durability),
                tracker.clone(),
                token.clone(),
            );
            (Some(data_dir), broker)
        }
    };
    let stop = token.clone();
    let closing = broker.clone();
    let shutdown = async move {
        tokio::select! {
            _ = shutdown => {}
            _ = stop.cancelled() => {}
        }
        // Long-lived responses (the console's event stream) end now, not at the grace's end.
        closing.begin_shutdown();
    };
    let api = http::Api::new(broker.clone());
    ready();
    http::connections::serve(listeners, api, limits, shutdown).await;
    let backlog = broker.backlog();
    token.cancel();
    tracker.close();
    // Deliveries abort on cancellation; this only waits for them to notice.
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    match data_dir {
        Some(dir) => {
            // Writes what the last steps changed; attempts cut short stay due for the next start.
            tokio::task::spawn_blocking(move || dir.close()).await.ok();
            tracing::info!(
                pending = backlog.pending,
                in_flight = backlog.in_flight,
                "stopped; these messages are kept in the data directory"
            );
        }
        None => tracing::info!(
            pending = backlog.pending,
            in_flight = backlog.in_flight,
            "stopped; everything is kept in memory only, so these messages are dropped"
        ),
    }
    Ok(())
}
