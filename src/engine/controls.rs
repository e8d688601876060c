//! Controls beyond the QStash API, shared by the console and by tests (`/__qstash/...`): run a
//! schedule now, deliver a waiting message now, and a schedule's upcoming run times.

use chrono_tz::Tz;

use super::Broker;
use super::error::BrokerError;
use crate::ids::MessageId;
use crate::users::UserId;

type Result<T> = std::result::Result<T, BrokerError>;

/// The next run times of a schedule, in unix ms, and the time zone its cron is written in.
pub struct Upcoming {
    pub time_zone: Tz,
    pub times: Vec<i64>,
}

impl Broker {
    /// Publishes the schedule's messages now (paused or not), as a cron tick would; its next
    /// planned tick is unchanged. Returns the ids of the messages.
    pub fn run_schedule_now(&self, user: UserId, id: &str) -> Result<Vec<MessageId>> {
        self.with_core(|core, now, out| core.run_schedule_now(user, id, now, out))
    }

    /// Makes a delayed message, or one waiting for its next retry, due now.
    pub fn deliver_now(&self, user: UserId, id: &str) -> Result<()> {
        let mid: MessageId = id
            .parse()
            .map_err(|_| BrokerError::not_found("message", id))?;
        self.with_core(|core, now, out| core.deliver_now(user, mid, now, out))
    }

    /// The schedule's next `count` run times after now (whether or not it is paused).
    pub fn schedule_upcoming(&self, user: UserId, id: &str, count: usize) -> Result<Upcoming> {
        let cron = self
            .lock()
            .store
            .schedule(user, id)
            .map(|s| s.cron.clone())
            .ok_or_else(|| BrokerError::not_found("schedule", id))?;
        let mut times = Vec::with_capacity(count);
        let mut after = self.clock().now_ms();
        while times.len() < count {
            let Some(next) = cron.next_after(after) else {
                break;
            };
            times.push(next);
            after = next;
        }
        Ok(Upcoming {
            time_zone: cron.tz,
            times,
        })
    }
}
