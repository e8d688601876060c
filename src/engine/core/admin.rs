//! Queue and flow-control management, and the counters the API reports about them.

use std::sync::Arc;

use super::{Core, Dispatch};
use crate::domain::flow_control::FlowChange;
use crate::domain::message::{Gate, Phase};
use crate::domain::queue::QueueInfo;
use crate::engine::error::BrokerError;
use crate::ids::MessageId;
use crate::users::UserId;

/// A flow-control key as `GET /v2/flowControl/{key}` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowView {
    pub key: Arc<str>,
    pub wait_list_size: usize,
    pub parallelism_max: u32,
    pub parallelism_count: u32,
    pub rate_max: u32,
    pub rate_count: u32,
    pub rate_period: u32,
    /// Unix seconds.
    pub rate_period_start: i64,
    pub pinned_parallelism: bool,
    pub pinned_rate: bool,
    pub paused: bool,
}

fn queue_not_found(name: &str) -> BrokerError {
    BrokerError::not_found("queue", name)
}

impl Core {
    /// Messages of the queue not finished yet (waiting and in progress).
    pub fn queue_lag(&self, user: UserId, name: &str) -> usize {
        self.users[user.index()]
            .queues
            .get(name)
            .map_or(0, |rt| rt.waiting + rt.active.len())
    }

    pub fn upsert_queue(
        &mut self,
        user: UserId,
        name: &str,
        parallelism: u32,
        paused: bool,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<(), BrokerError> {
        let quota = &self.config.quota;
        if parallelism > quota.max_queue_parallelism {
            return Err(BrokerError::quota(
                quota,
                quota.max_queue_parallelism,
                "parallel deliveries per queue",
            ));
        }
        self.ensure_queue(user, name, now)?;
        if let Some(info) = self.store.queue(user, name) {
            let mut info = info.clone();
            info.parallelism = parallelism;
            info.updated_at = now;
            self.store.put_queue(user, info);
        }
        self.set_queue_paused(user, name, paused, now, out)
    }

    pub fn set_queue_paused(
        &mut self,
        user: UserId,
        name: &str,
        paused: bool,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<(), BrokerError> {
        let info = self
            .store
            .queue(user, name)
            .ok_or_else(|| queue_not_found(name))?;
        if info.paused != paused {
            let info = QueueInfo {
                paused,
                updated_at: now,
                ..info.clone()
            };
            self.store.put_queue(user, info);
        }
        if !paused {
            let retries = self.users[user.index()]
                .queues
                .get_mut(name)
                .map(|rt| std::mem::take(&mut rt.paused_retries))
                .unwrap_or_default();
            for id in retries {
                let parked = self
                    .store
                    .message(user, id)
                    .filter(|m| m.phase == Phase::Parked(Gate::QueuePaused))
                    .map(|m| m.spec.clone());
                if let Some(spec) = parked {
                    self.try_gates(user, &spec, now, out);
                }
            }
            self.pump_queue(user, name, now, out);
        }
        Ok(())
    }

    /// Removes the queue's definition and returns its waiting messages, which the caller
    /// cancels (in slices); started ones finish. Nothing new starts from a deleted queue.
    pub fn delete_queue(
        &mut self,
        user: UserId,
        name: &str,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Vec<MessageId> {
        if self.store.remove_queue(user, name).is_none() {
            return Vec::new();
        }
        let Some(rt) = self.users[user.index()].queues.get_mut(name) else {
            return Vec::new();
        };
        let waiting: Vec<_> = rt.pending.drain(..).collect();
        let paused_retries = std::mem::take(&mut rt.paused_retries);
        // Retries held by the pause go on: their messages had started before the deletion.
        for id in paused_retries {
            let parked = self
                .store
                .message(user, id)
                .filter(|m| m.phase == Phase::Parked(Gate::QueuePaused));
            if let Some(spec) = parked.map(|m| m.spec.clone()) {
                self.try_gates(user, &spec, now, out);
            }
        }
        waiting
    }

    /// Drops the scheduling state of a deleted queue once nothing of it is left (unless a
    /// queue of that name was created again meanwhile).
    pub fn forget_queue_if_idle(&mut self, user: UserId, name: &str) {
        if self.store.queue(user, name).is_some() {
            return;
        }
        if let Some(rt) = self.users[user.index()].queues.get(name)
            && rt.active.is_empty()
            && rt.waiting == 0
        {
            self.users[user.index()].queues.remove(name);
        }
    }

    pub fn flow_keys(&self, user: UserId) -> Vec<Arc<str>> {
        let mut keys: Vec<Arc<str>> = self.users[user.index()].flows.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Makes a key known before any message uses it (a schedule referencing it).
    pub fn remember_flow(
        &mut self,
        user: UserId,
        fc: &crate::domain::message::FlowControl,
        now: i64,
    ) {
        self.flow_mut(user, &fc.key, now).remember(fc);
    }

    pub fn flow_view(&self, user: UserId, key: &str, now: i64) -> Option<FlowView> {
        let s = self.users[user.index()].flows.get(key)?;
        let period = s.period();
        let window_over = now >= s.window_start + period.max(1) as i64 * 1000;
        Some(FlowView {
            key: s.key.clone(),
            wait_list_size: s.waiting,
            parallelism_max: s.parallelism_max().unwrap_or(0),
            parallelism_count: s.in_flight,
            rate_max: s.rate_max().map_or(0, |(r, _)| r),
            rate_count: if window_over { 0 } else { s.rate_count },
            rate_period: period,
            rate_period_start: s.window_start / 1000,
            pinned_parallelism: s.pinned_parallelism.is_some(),
            pinned_rate: s.pinned_rate.is_some(),
            paused: s.paused,
        })
    }

    /// Applies `change` to the key (created if unknown), then lets waiting messages through
    /// if the new state allows.
    pub fn change_flow(
        &mut self,
        user: UserId,
        key: &str,
        change: FlowChange,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        self.flow_mut(user, key, now).apply(change, now);
        self.pump_flow(user, key, now, out);
    }
}
