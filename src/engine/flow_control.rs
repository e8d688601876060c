//! Flow-control keys: inspection, pause/resume, pinning, rate reset.

use super::Broker;
use super::core::FlowView;
use super::error::BrokerError;
use crate::domain::flow_control::FlowChange;
use crate::users::UserId;

type Result<T> = std::result::Result<T, BrokerError>;

impl Broker {
    pub fn flow_controls(&self, user: UserId, search: Option<&str>) -> Vec<FlowView> {
        let now = self.clock().now_ms();
        let core = self.lock();
        core.flow_keys(user)
            .iter()
            .filter(|k| search.is_none_or(|s| k.contains(s)))
            .filter_map(|k| core.flow_view(user, k, now))
            .collect()
    }

    pub fn flow_control(&self, user: UserId, key: &str) -> Result<FlowView> {
        let now = self.clock().now_ms();
        self.lock()
            .flow_view(user, key, now)
            .ok_or_else(|| BrokerError::not_found("flow control key", key))
    }

    /// Pauses, resumes, pins, unpins or resets a key (creating it if unknown) and releases
    /// what the change allows.
    pub fn change_flow_control(&self, user: UserId, key: &str, change: FlowChange) {
        self.with_core(|core, now, out| core.change_flow(user, key, change, now, out));
    }

    /// (parallelismMax, parallelismCount) of the user.
    pub fn global_parallelism(&self, user: UserId) -> (u32, u32) {
        (self.config().quota.global_parallelism, self.in_flight(user))
    }
}
