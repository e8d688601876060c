//! Durable state (`-data-dir`): what the engine reports to the store at the end of each step,
//! and how it rebuilds its scheduling state (timers, queue order, gates) from a store read
//! back from disk.

use std::sync::Arc;

use super::{Core, Dispatch, End, Pump};
use crate::domain::flow_control::FlowState;
use crate::domain::log::LogState;
use crate::domain::message::Phase;
use crate::engine::timers::Wake;
use crate::ids::MessageId;
use crate::persistence::codec::encode;
use crate::users::UserId;

impl Core {
    /// Called (with `-data-dir`) whenever the engine lock is released: hands the step's
    /// changes to the store's writer; returns the sequence number to wait for.
    pub fn end_step(&mut self) -> Option<u64> {
        for (user, key) in std::mem::take(&mut self.dirty_flows) {
            if let Some(state) = self.users[user.index()].flows.get(&key) {
                let encoded = encode(state);
                self.store.put_flow(user, &key, encoded);
            }
        }
        self.store.end_step()
    }

    /// Takes up the state of a store read back from disk: flow-control keys, schedule and
    /// wait timers, then every unfinished message in the order it was stored. A message
    /// whose attempt was in flight (or that waited at a gate) when the server stopped is due
    /// again now: it is delivered at least once more, never lost.
    pub fn restore(
        &mut self,
        flows: Vec<(UserId, FlowState)>,
        messages: Vec<(UserId, MessageId)>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        self.track_flows = true;
        for (user, state) in flows {
            let key = state.key.clone();
            self.users[user.index()].flows.insert(key, state);
        }
        for user in UserId::all() {
            let ticks: Vec<(i64, Arc<str>)> = self
                .store
                .schedules(user)
                .iter()
                .filter_map(|s| Some((s.next_schedule_time?, s.id.clone())))
                .collect();
            for (at, id) in ticks {
                self.timers.push(at, Wake::Schedule(user, id));
            }
            let waits: Vec<(i64, Arc<str>, Arc<str>)> = self
                .store
                .workflow_runs(user)
                .all_waiters()
                .map(|w| (w.deadline_ms, w.run_id.clone(), w.event_id.clone()))
                .collect();
            for (at, run, event) in waits {
                self.timers.push(at, Wake::WaitTimeout(user, run, event));
            }
        }
        for (user, id) in messages {
            self.restore_message(user, id, now, out);
        }
    }

    fn restore_message(&mut self, user: UserId, id: MessageId, now: i64, out: &mut Vec<Dispatch>) {
        let Some(msg) = self.store.message(user, id) else {
            return;
        };
        let spec = msg.spec.clone();
        if msg.cancel_requested {
            // Cancelled while its attempt was in flight: that attempt's answer is lost with
            // the process, and the cancel stands.
            self.append_log(user, now, LogState::Canceled, spec.clone(), None);
            self.finish(user, &spec, End::Canceled);
            return;
        }
        let at = match msg.phase {
            Phase::Waiting { at } => at,
            Phase::InFlight | Phase::Parked(_) => now,
        };
        if msg.phase != (Phase::Waiting { at })
            && let Some(m) = self.store.message_mut(user, id)
        {
            m.phase = Phase::Waiting { at };
        }
        if let Some(fc) = spec.flow_control() {
            let state = self.flow_mut(user, &fc.key, now);
            state.add(fc);
            let key = state.key.clone();
            self.pumps.push(Pump::Flow(user, key));
        }
        if at > now {
            self.timers.push(at, Wake::Message(user, id));
        }
        match spec.origin().queue_name.clone() {
            Some(q) => {
                let rt = self.users[user.index()]
                    .queues
                    .entry(q.clone())
                    .or_default();
                rt.pending.push_back(id);
                rt.waiting += 1;
                self.pumps.push(Pump::Queue(user, q));
            }
            None if at <= now => self.ready(user, id, now, out),
            None => {}
        }
    }
}
