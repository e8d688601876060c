//! The broker: the one service the HTTP layer calls. It owns the [`Core`] state machine
//! behind a mutex (held only for short synchronous steps, never across an `.await`), the
//! timer task that wakes due messages, and the delivery tasks.

mod body;
mod bulk;
mod controls;
mod core;
mod delivery;
mod durable;
mod error;
mod flow_control;
mod ops;
mod ops_view;
mod overview;
mod queues;
mod schedules;
pub mod stats;
mod timers;
mod tls;
mod url_groups;
mod workflow_logs;
mod workflows;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::controls::Upcoming;
pub use self::core::FlowView;
pub use self::core::Notified;
pub use self::core::{Attempt, CancelOutcome, Dispatch};
pub use self::core::{Busy, Gauges};
pub use self::core::{Recovered, Recovery, is_override};
pub use self::error::BrokerError;
pub use self::ops::{Backlog, MessageView, PublishRequest, PublishResult};
pub use self::overview::{Overview, RECENT_WINDOWS};
pub use self::queues::QueueView;
pub use self::schedules::ScheduleRequest;
pub use self::workflow_logs::WorkflowDlqEntry;
pub use self::workflows::{Inherited, Started};
pub use delivery::request_headers;
pub use durable::Durability;

use self::core::Core;
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics;
use crate::store::Store;

#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

struct Shared {
    /// parking_lot's mutex for its eventual fairness: a waiter is handed the lock within
    /// ~0.5 ms, where std's lets a task that re-locks right away (a bulk cancel working
    /// through a million messages slice by slice) keep it for hundreds of milliseconds.
    core: Mutex<Core>,
    config: Arc<Config>,
    client: delivery::HttpClient,
    /// Wakes the timer task when something became due earlier than it planned to sleep.
    wake: Notify,
    /// The time the timer task sleeps until; written under the core lock.
    sleeping_until: AtomicI64,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// Cancelled when the server begins to stop, before it waits for open connections.
    closing: CancellationToken,
    /// The core's counters, shared so they are read without its lock.
    stats: Arc<stats::Stats>,
    /// Attempt durations, written by the delivery tasks (never under the lock).
    latency: metrics::DeliveryLatency,
    /// With `-data-dir`: where changes wait to be written (`durable.rs`).
    journal: Option<Arc<crate::persistence::Journal>>,
}

impl Broker {
    /// Creates the broker and starts its timer task on `tracker`; everything stops when
    /// `shutdown` is cancelled.
    pub fn start(
        config: Arc<Config>,
        store: Box<dyn Store>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self::start_with(config, store, None, tracker, shutdown)
    }

    /// [`Broker::start`] on a store read back from a data directory: the engine takes up
    /// where it was before anything is served.
    pub fn start_with(
        config: Arc<Config>,
        store: Box<dyn Store>,
        durability: Option<Durability>,
        tracker: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let client = delivery::client(config.insecure_tls);
        let core = Core::new(store, config.clone());
        let stats = core.stats().clone();
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            config,
            client,
            wake: Notify::new(),
            sleeping_until: AtomicI64::new(i64::MAX),
            tracker,
            shutdown,
            closing: CancellationToken::new(),
            stats,
            latency: metrics::DeliveryLatency::new(),
            journal: durability.as_ref().map(|d| d.journal.clone()),
        });
        let broker = Self { shared };
        if let Some(d) = durability {
            broker.with_core(|core, now, out| core.restore(d.flows, d.messages, now, out));
        }
        let timer = broker.clone();
        broker
            .shared
            .tracker
            .spawn(async move { timer.timer_loop().await });
        broker
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn clock(&self) -> &Clock {
        &self.shared.config.clock
    }

    /// Attempt durations per user and outcome.
    pub fn delivery_latency(&self) -> &metrics::DeliveryLatency {
        &self.shared.latency
    }

    /// Per-user message counters (read without the core lock).
    pub fn stats(&self) -> &stats::Stats {
        &self.shared.stats
    }

    /// Cancelled when the server begins to stop ([`Broker::begin_shutdown`]) or stops:
    /// long-lived responses (the console's event stream) end with it, so the graceful
    /// shutdown does not wait for them.
    pub async fn closing(&self) {
        tokio::select! {
            _ = self.shared.closing.cancelled() => {}
            _ = self.shared.shutdown.cancelled() => {}
        }
    }

    /// The server stops accepting requests: ends the long-lived responses.
    pub fn begin_shutdown(&self) {
        self.shared.closing.cancel();
    }

    fn lock(&self) -> durable::CoreGuard<'_> {
        // A panic under the lock is a bug; the state may then be partly updated, but serving
        // on (best effort) is more useful for a development server than failing every later
        // request (parking_lot's lock is not poisoned).
        durable::CoreGuard::new(self.shared.core.lock(), self.shared.journal.is_some())
    }

    /// Runs `f` on the core, then starts the deliveries it decided on and wakes the timer
    /// task if `f` scheduled something earlier than it planned to sleep.
    fn with_core<R>(&self, f: impl FnOnce(&mut Core, i64, &mut Vec<Dispatch>) -> R) -> R {
        let mut out = Vec::new();
        let result = {
            let mut core = self.lock();
            let now = self.clock().now_ms();
            let r = f(&mut core, now, &mut out);
            core.settle(now, &mut out);
            if core
                .next_due()
                .is_some_and(|due| due < self.shared.sleeping_until.load(Ordering::Acquire))
            {
                self.shared.wake.notify_one();
            }
            r
        };
        self.dispatch(out);
        result
    }

    fn dispatch(&self, dispatches: Vec<Dispatch>) {
        if dispatches.is_empty() {
            return;
        }
        // With `-data-dir`, an attempt starts only once what it acts on is on disk: a message
        // is never delivered unless a restart would still know it.
        let written = self.shared.journal.as_ref().map_or(0, |j| j.pushed());
        for d in dispatches {
            let broker = self.clone();
            self.shared
                .tracker
                .spawn(async move { broker.deliver(d, written).await });
        }
    }

    async fn deliver(self, d: Dispatch, written: u64) {
        if let Some(journal) = &self.shared.journal
            && !journal.is_durable(written)
        {
            tokio::select! {
                // A failed writer is logged where it fails; the attempt goes ahead on what is
                // in memory rather than never.
                _ = journal.durable(written) => {}
                _ = self.shared.shutdown.cancelled() => return,
            }
        }
        let started = Instant::now();
        let rewrite = self.shared.config.rewrite_localhost.as_deref();
        let attempt = tokio::select! {
            a = delivery::send(&self.shared.client, &d, rewrite) => a,
            _ = self.shared.shutdown.cancelled() => return,
        };
        let took = started.elapsed();
        let status = attempt.response.as_ref().map(|r| r.status);
        let outcome = match status {
            Some(200..=299) => metrics::Outcome::Success,
            _ => metrics::Outcome::Error,
        };
        self.shared.latency.observe(d.user, outcome, took);
        tracing::info!(
            message_id = %d.spec.id,
            user = d.user.info().name,
            destination = %d.spec.url,
            status,
            duration_ms = took.as_millis() as u64,
            retried = d.retried,
            error = attempt.error.as_deref(),
            "delivery attempt"
        );
        self.with_core(|core, now, out| core.complete(&d, attempt, now, out));
    }

    async fn timer_loop(self) {
        loop {
            let (more, next) = {
                let mut out = Vec::new();
                let (more, next) = {
                    let mut core = self.lock();
                    let now = self.clock().now_ms();
                    let more = core.run_due(now, &mut out);
                    core.settle(now, &mut out);
                    let next = core.next_due();
                    self.shared
                        .sleeping_until
                        .store(next.unwrap_or(i64::MAX), Ordering::Release);
                    (more, next)
                };
                self.dispatch(out);
                (more, next)
            };
            if more {
                tokio::task::yield_now().await;
                continue;
            }
            let clock = self.clock().clone();
            tokio::select! {
                _ = self.shared.shutdown.cancelled() => return,
                _ = self.shared.wake.notified() => {}
                _ = async {
                    match next {
                        Some(at) => clock.sleep_until(at).await,
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        }
    }
}
