//! Manual controls beyond the QStash API, for the console and for tests: fire a schedule now,
//! and make a delayed message (or a waiting retry) due now.

use super::{Core, Dispatch};
use crate::domain::message::{Gate, Phase};
use crate::engine::error::BrokerError;
use crate::ids::MessageId;
use crate::users::UserId;

impl Core {
    /// Publishes the schedule's messages now, paused or not, as a tick would; its planned
    /// ticks stay as they are.
    pub fn run_schedule_now(
        &mut self,
        user: UserId,
        id: &str,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<Vec<MessageId>, BrokerError> {
        self.fire(user, id, now, now, out)
    }

    /// Makes a message that waits for its delivery time (a delay, `Upstash-Not-Before`, or
    /// the backoff before a retry) due now. A message already due is left as it is; one in
    /// flight or held back by a gate cannot be hurried.
    pub fn deliver_now(
        &mut self,
        user: UserId,
        id: MessageId,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<(), BrokerError> {
        let msg = self
            .store
            .message_mut(user, id)
            .ok_or_else(|| BrokerError::not_found("message", id.to_string()))?;
        let why = match msg.phase {
            Phase::Waiting { at } if at <= now => return Ok(()),
            Phase::Waiting { .. } => {
                // The old timer entry no longer matches the phase and will be skipped.
                msg.phase = Phase::Waiting { at: now };
                self.timer_went_stale();
                self.ready(user, id, now, out);
                return Ok(());
            }
            Phase::InFlight => "is being delivered",
            Phase::Parked(Gate::Flow) => "waits for its flow-control key",
            Phase::Parked(Gate::Host) => "waits for a delivery slot to its host",
            Phase::Parked(Gate::QueuePaused) => "waits for its paused queue",
        };
        Err(BrokerError::Invalid(format!(
            "message {id} {why}: only a message waiting for its delivery time can be delivered now"
        )))
    }
}

impl Core {
    /// Flow-control keys the user has (for the overview).
    pub fn flow_key_count(&self, user: UserId) -> usize {
        self.users[user.index()].flows.len()
    }
}
