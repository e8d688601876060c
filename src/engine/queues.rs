//! Queue management.

use super::Broker;
use super::error::BrokerError;
use crate::domain::destination::validate_name;
use crate::domain::queue::QueueInfo;
use crate::users::UserId;

type Result<T> = std::result::Result<T, BrokerError>;

/// A queue with its current backlog.
pub struct QueueView {
    pub info: QueueInfo,
    pub lag: usize,
}

impl Broker {
    pub fn upsert_queue(
        &self,
        user: UserId,
        name: &str,
        parallelism: Option<i64>,
        paused: bool,
    ) -> Result<()> {
        validate_name(name, "queue name")?;
        let parallelism = match parallelism {
            None => 1,
            Some(p) if p >= 1 && p <= u32::MAX as i64 => p as u32,
            Some(p) => {
                return Err(BrokerError::Invalid(format!(
                    "invalid parallelism {p}: must be at least 1"
                )));
            }
        };
        self.with_core(|core, now, out| {
            core.upsert_queue(user, name, parallelism, paused, now, out)
        })
    }

    pub fn queues(&self, user: UserId) -> Vec<QueueView> {
        let core = self.lock();
        core.store
            .queues(user)
            .into_iter()
            .map(|info| QueueView {
                info: info.clone(),
                lag: core.queue_lag(user, &info.name),
            })
            .collect()
    }

    pub fn queue(&self, user: UserId, name: &str) -> Result<QueueView> {
        validate_name(name, "queue name")?;
        let core = self.lock();
        let info = core
            .store
            .queue(user, name)
            .cloned()
            .ok_or_else(|| BrokerError::not_found("queue", name))?;
        Ok(QueueView {
            lag: core.queue_lag(user, name),
            info,
        })
    }

    pub fn set_queue_paused(&self, user: UserId, name: &str, paused: bool) -> Result<()> {
        self.with_core(|core, now, out| core.set_queue_paused(user, name, paused, now, out))
    }
}
