//! A user's situation at a glance: the counters, the recent delivered/failed figures and the
//! sizes of everything the user has, read with one short lock acquisition. The console's
//! live overview sends it whenever it changes.

use super::Broker;
use super::stats::{Counters, Recent};
use crate::domain::workflow::run::RunState;
use crate::store::Sizes;
use crate::users::UserId;

/// The windows of the "delivered / failed in the last minutes" figures.
pub const RECENT_WINDOWS: [usize; 3] = [1, 5, 15];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overview {
    pub counters: Counters,
    /// One per [`RECENT_WINDOWS`] entry.
    pub recent: [Recent; 3],
    pub sizes: Sizes,
    /// Deliveries of the user in flight right now.
    pub in_flight: u32,
    pub flow_keys: usize,
    pub workflow_runs: WorkflowRuns,
}

/// Workflow runs by state: the active ones now, the ended ones since the start (or a reset).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkflowRuns {
    pub active: usize,
    pub succeeded: u64,
    pub failed: u64,
    pub canceled: u64,
}

impl Overview {
    /// Unfinished messages that are not in flight: delayed, waiting for a retry, a queue or a
    /// gate.
    pub fn waiting(&self) -> usize {
        self.sizes.messages.saturating_sub(self.in_flight as usize)
    }
}

impl Broker {
    pub fn overview(&self, user: UserId) -> Overview {
        let now = self.clock().now_ms();
        let (sizes, in_flight, flow_keys, active_runs) = {
            let core = self.lock();
            (
                core.store.sizes(user),
                core.in_flight(user),
                core.flow_key_count(user),
                core.store.workflow_runs(user).active_count(),
            )
        };
        let stats = self.stats();
        let workflow_runs = WorkflowRuns {
            active: active_runs,
            succeeded: stats.workflow_runs(user, RunState::Success),
            failed: stats.workflow_runs(user, RunState::Failed),
            canceled: stats.workflow_runs(user, RunState::Canceled),
        };
        Overview {
            counters: stats.counters(user),
            recent: RECENT_WINDOWS.map(|m| stats.recent(user, now, m)),
            sizes,
            in_flight,
            flow_keys,
            workflow_runs,
        }
    }
}
