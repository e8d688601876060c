//! The broker side of `/metrics` (gauges read under one short lock) and of the reset and
//! wait-until-idle test controls.

use std::time::Duration;

use super::Broker;
use super::core::{Busy, Gauges};
use crate::users::UserId;

/// How often wait-until-idle looks again. Polling keeps the delivery path free of any
/// bookkeeping for a control only tests use.
const IDLE_POLL: Duration = Duration::from_millis(5);

impl Broker {
    pub fn gauges(&self, user: UserId) -> Gauges {
        self.lock().gauges(user)
    }

    pub fn busy(&self, user: UserId) -> Busy {
        let core = self.lock();
        core.busy(user, self.clock().now_ms())
    }

    /// Waits until [`Broker::busy`] reports nothing for `user`, at most `timeout` (real time:
    /// it bounds how long a test's request may hang, whatever the server's clock does).
    /// Returns the last reading: idle, or what was still moving when time ran out.
    pub async fn wait_idle(&self, user: UserId, timeout: Duration) -> Busy {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let busy = self.busy(user);
            if busy.is_idle() || tokio::time::Instant::now() >= deadline {
                return busy;
            }
            tokio::time::sleep(IDLE_POLL).await;
        }
    }

    /// Wipes `user`'s state, or every user's with `None`, without a restart.
    pub fn reset(&self, user: Option<UserId>) {
        let mut core = self.lock();
        let users: Vec<UserId> = match user {
            Some(u) => vec![u],
            None => UserId::all().collect(),
        };
        for u in users {
            core.reset_user(u);
            self.shared.latency.reset(u);
            tracing::info!(user = u.info().name, "state reset");
        }
    }
}
