//! The broker: the one service the HTTP layer calls. It owns the [`Core`] state machine
//! behind a mutex (held only for short synchronous steps, never across an `.await`), the
//! timer task that wakes due messages, and the delivery tasks.

mod core;
mod delivery;
mod error;
mod flow_control;
mod ops;
mod queues;
mod schedules;
mod timers;
mod url_groups;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use self::core::FlowView;
pub use self::core::{Attempt, CancelOutcome, Dispatch};
pub use self::error::BrokerError;
pub use self::ops::{MessageView, PublishRequest, PublishResult};
pub use self::queues::QueueView;
pub use self::schedules::ScheduleRequest;
pub use delivery::request_headers;

use self::core::Core;
use crate::clock::Clock;
use crate::config::Config;
use crate::store::Store;

#[derive(Clone)]
pub struct Broker {
    shared: Arc<Shared>,
}

struct Shared {
    core: Mutex<Core>,
    config: Arc<Config>,
    client: delivery::HttpClient,
    /// Wakes the timer task when something became due earlier than it planned to sleep.
    wake: Notify,
    /// The time the timer task sleeps until; written under the core lock.
    sleeping_until: AtomicI64,
    tracker: TaskTracker,
    shutdown: CancellationToken,
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
        let shared = Arc::new(Shared {
            core: Mutex::new(Core::new(store, config.clone())),
            config,
            client: delivery::client(),
            wake: Notify::new(),
            sleeping_until: AtomicI64::new(i64::MAX),
            tracker,
            shutdown,
        });
        let broker = Self { shared };
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

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic under the lock is a bug; the state may then be partly updated, but serving
        // on (best effort) is more useful for a development server than failing every later
        // request on a poisoned lock.
        self.shared.core.lock().unwrap_or_else(|e| e.into_inner())
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
        for d in dispatches {
            let broker = self.clone();
            self.shared
                .tracker
                .spawn(async move { broker.deliver(d).await });
        }
    }

    async fn deliver(self, d: Dispatch) {
        let started = Instant::now();
        let attempt = tokio::select! {
            a = delivery::send(&self.shared.client, &d) => a,
            _ = self.shared.shutdown.cancelled() => return,
        };
        let status = attempt.response.as_ref().map_or(0, |r| r.status);
        tracing::info!(
            message_id = %d.spec.id,
            destination = %d.spec.url,
            status,
            duration_ms = started.elapsed().as_millis() as u64,
            retried = d.retried,
            error = attempt.error.as_deref().unwrap_or(""),
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
