//! What operators and tests ask of the core beyond the QStash API: the gauges `/metrics`
//! shows, whether a user's work has settled (wait-until-idle), and wiping a user's state
//! (reset). All read or write under the lock the caller holds, off the delivery path.

use std::sync::Arc;

use super::{Core, UserRuntime};
use crate::domain::message::{Gate, Phase};
use crate::store::ID_PARTS;
use crate::users::UserId;

/// A user's gauges at one instant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// Per queue: (name, messages waiting to start, messages started and not finished).
    pub queues: Vec<(Arc<str>, usize, usize)>,
    /// Per flow-control key: (key, messages on its waitlist, deliveries in flight).
    pub flow_keys: Vec<(Arc<str>, usize, u32)>,
    pub in_flight: u32,
    pub unfinished: usize,
    pub dlq: usize,
    pub schedules_active: usize,
    pub schedules_paused: usize,
    pub workflow_runs_active: usize,
}

/// What keeps a user from being idle: messages due now (or the timer behind), in flight, or
/// held at a gate that will open by itself. Messages held by a pause are not counted: they
/// move only when someone resumes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Busy {
    pub due: usize,
    pub in_flight: usize,
    pub gated: usize,
}

impl Busy {
    pub fn is_idle(&self) -> bool {
        *self == Self::default()
    }
}

impl Core {
    pub fn gauges(&self, user: UserId) -> Gauges {
        let rt = &self.users[user.index()];
        let sizes = self.store.sizes(user);
        let mut queues: Vec<_> = rt
            .queues
            .iter()
            .map(|(name, q)| (name.clone(), q.waiting, q.active.len()))
            .collect();
        queues.sort();
        let mut flow_keys: Vec<_> = rt
            .flows
            .values()
            .map(|f| (f.key.clone(), f.waiting, f.in_flight))
            .collect();
        flow_keys.sort();
        Gauges {
            queues,
            flow_keys,
            in_flight: rt.in_flight,
            unfinished: sizes.messages,
            dlq: sizes.dlq,
            schedules_active: sizes.schedules - sizes.paused_schedules,
            schedules_paused: sizes.paused_schedules,
            workflow_runs_active: self.store.workflow_runs(user).active_count(),
        }
    }

    /// What is still moving for `user` at `now` (a scan of the user's unfinished messages).
    pub fn busy(&self, user: UserId, now: i64) -> Busy {
        let rt = &self.users[user.index()];
        let mut busy = Busy::default();
        // A schedule tick or wake-up the timer task has not handled yet.
        if self.next_due().is_some_and(|at| at <= now) {
            busy.due += 1;
        }
        for id in (0..ID_PARTS).flat_map(|part| self.store.message_ids(user, part)) {
            let Some(m) = self.store.message(user, id) else {
                continue;
            };
            let queue_paused = || {
                m.spec
                    .queue_name()
                    .and_then(|q| self.store.queue(user, q))
                    .is_some_and(|q| q.paused)
            };
            match m.phase {
                Phase::InFlight => busy.in_flight += 1,
                Phase::Waiting { at } if at <= now && !queue_paused() => busy.due += 1,
                Phase::Waiting { .. } => {}
                Phase::Parked(Gate::QueuePaused) => {}
                Phase::Parked(Gate::Flow) => {
                    let paused = m
                        .spec
                        .flow_control()
                        .and_then(|fc| rt.flows.get(&*fc.key))
                        .is_some_and(|f| f.paused);
                    if !paused {
                        busy.gated += 1;
                    }
                }
                Phase::Parked(Gate::Host) => busy.gated += 1,
            }
        }
        // Attempts whose message is gone (a reset while they were on the wire) still hold a
        // delivery slot until they end.
        busy.in_flight = busy.in_flight.max(rt.in_flight as usize);
        busy
    }

    /// Forgets everything of `user`: messages, logs, DLQ, schedules, queues, URL groups,
    /// workflow runs, flow-control keys, dedup records, signing keys and counters. Attempts
    /// in flight finish on the wire; their results find no message and are dropped.
    pub fn reset_user(&mut self, user: UserId) {
        self.store.reset_user(user);
        let rt = &mut self.users[user.index()];
        // The deliveries still in flight give their slot back when they end.
        let in_flight = rt.in_flight;
        *rt = UserRuntime {
            in_flight,
            ..Default::default()
        };
        self.signers[user.index()] = None;
        self.stats.reset(user);
    }
}
