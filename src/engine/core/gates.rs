//! The gates between "due" and "started": queue order and parallelism, the flow-control key's
//! pause/parallelism/rate, and the delivery slots (total, per host, per route; `slots.rs`). A message blocked by a gate is
//! parked in that gate's FIFO waitlist and retried when the gate opens; nothing is polled.

use std::sync::Arc;

use super::{Core, Dispatch, Pump, QueueRuntime};
use crate::domain::destination::route_key;
use crate::domain::flow_control::{Blocked, FlowState};
use crate::domain::log::LogState;
use crate::domain::message::{Gate, MessageSpec, Phase};
use crate::engine::timers::Wake;
use crate::ids::MessageId;
use crate::users::UserId;

impl Core {
    pub(super) fn flow_mut(&mut self, user: UserId, key: &str, now: i64) -> &mut FlowState {
        if self.track_flows {
            self.dirty_flows.insert((user, key.into()));
        }
        let flows = &mut self.users[user.index()].flows;
        if !flows.contains_key(key) {
            let key: Arc<str> = key.into();
            flows.insert(key.clone(), FlowState::new(key, now));
        }
        flows.get_mut(key).expect("flow state exists") // ok: inserted just above when missing
    }

    fn queue_rt(&mut self, user: UserId, name: &str) -> Option<&mut QueueRuntime> {
        self.users[user.index()].queues.get_mut(name)
    }

    /// A message became due (first attempt or retry).
    pub(super) fn ready(&mut self, user: UserId, id: MessageId, now: i64, out: &mut Vec<Dispatch>) {
        let Some(msg) = self.store.message(user, id) else {
            return;
        };
        let spec = msg.spec.clone();
        if let Some(q) = spec.queue_name() {
            let paused = self.store.queue(user, q).is_some_and(|i| i.paused);
            let Some(rt) = self.queue_rt(user, q) else {
                return;
            };
            if !rt.active.contains_key(&id) {
                // A first attempt: the queue decides when it is its turn.
                self.pump_queue(user, q, now, out);
                return;
            }
            if paused {
                rt.paused_retries.push(id);
                self.park(user, id, Gate::QueuePaused);
                return;
            }
        }
        self.try_gates(user, &spec, now, out);
    }

    fn park(&mut self, user: UserId, id: MessageId, gate: Gate) {
        if let Some(m) = self.store.message_mut(user, id) {
            m.phase = Phase::Parked(gate);
        }
    }

    /// Starts the message if its flow-control key and its host both have room; otherwise
    /// parks it at the first gate that is closed.
    pub(super) fn try_gates(
        &mut self,
        user: UserId,
        spec: &Arc<MessageSpec>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        self.try_gates_from(user, spec, false, now, out);
    }

    /// `from_waitlist`: the message is the flow-control waitlist's head being let through;
    /// any other message of a key with waiting messages queues up behind them.
    fn try_gates_from(
        &mut self,
        user: UserId,
        spec: &Arc<MessageSpec>,
        from_waitlist: bool,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        if !self.pass_flow(user, spec, from_waitlist, now) {
            return;
        }
        let (host, path) = route_key(&spec.url);
        if !self.slots.acquire_or_wait(host, path, (user, spec.id)) {
            self.park(user, spec.id, Gate::Host);
            return;
        }
        self.start_with_slot(user, spec, now, out);
    }

    /// Whether the message's flow-control key lets it start now; if not, it is parked on the
    /// key's waitlist (and a wake-up planned for a rate window).
    fn pass_flow(
        &mut self,
        user: UserId,
        spec: &Arc<MessageSpec>,
        from_waitlist: bool,
        now: i64,
    ) -> bool {
        let Some(fc) = spec.flow_control() else {
            return true;
        };
        let state = self.flow_mut(user, &fc.key, now);
        let behind = !from_waitlist && state.waiting > 0;
        let verdict = if behind {
            Err(Blocked::UntilReleased)
        } else {
            state.check(now)
        };
        let Err(blocked) = verdict else {
            return true;
        };
        state.waiting += 1;
        self.flow_waitlist(user, &fc.key).push_back(spec.id);
        if let Blocked::Until(at) = blocked {
            self.schedule_rate_wake(user, &fc.key, at);
        }
        self.park(user, spec.id, Gate::Flow);
        false
    }

    /// Starts a message that holds a delivery slot.
    fn start_with_slot(
        &mut self,
        user: UserId,
        spec: &Arc<MessageSpec>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        if let Some(fc) = spec.flow_control() {
            self.flow_mut(user, &fc.key, now).started();
        }
        self.start(user, spec.id, now, out);
    }

    fn flow_waitlist(
        &mut self,
        user: UserId,
        key: &str,
    ) -> &mut std::collections::VecDeque<MessageId> {
        self.users[user.index()]
            .flow_waitlists
            .entry(Arc::from(key))
            .or_default()
    }

    fn schedule_rate_wake(&mut self, user: UserId, key: &Arc<str>, at: i64) {
        let pending = &mut self.users[user.index()].rate_wakes;
        if pending.get(&**key) != Some(&at) {
            pending.insert(key.clone(), at);
            self.timers.push(at, Wake::RateWindow(user, key.clone()));
        }
    }

    pub(super) fn rate_window_rolled(
        &mut self,
        user: UserId,
        key: &str,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        self.users[user.index()].rate_wakes.remove(key);
        self.pump_flow(user, key, now, out);
    }

    fn start(&mut self, user: UserId, id: MessageId, now: i64, out: &mut Vec<Dispatch>) {
        let Some(msg) = self.store.message_mut(user, id) else {
            return;
        };
        msg.phase = Phase::InFlight;
        let spec = msg.spec.clone();
        let retried = msg.retried;
        self.append_log(user, now, LogState::Active, spec.clone(), None);
        self.users[user.index()].in_flight += 1;
        if let Some(q) = spec.queue_name()
            && let Some(rt) = self.queue_rt(user, q)
            && rt.blocked_on == Some(id)
        {
            // The next message of the queue may go now (it waited for this one to start).
            rt.blocked_on = None;
            self.pumps.push(Pump::Queue(user, q.into()));
        }
        let timeout_ms = spec
            .options
            .timeout_ms
            .unwrap_or(self.config.quota.max_timeout_ms);
        out.push(Dispatch {
            user,
            workflow: self.workflow_delivery(user, &spec),
            spec,
            retried,
            signer: self.signer(user),
            timeout_ms,
        });
    }

    /// An attempt returned: its host slot and flow-control slot go to whoever waits.
    pub(super) fn attempt_ended(
        &mut self,
        user: UserId,
        spec: &Arc<MessageSpec>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        let rt = &mut self.users[user.index()];
        rt.in_flight = rt.in_flight.saturating_sub(1);
        if let Some(fc) = spec.flow_control()
            && let Some(state) = rt.flows.get_mut(&*fc.key)
        {
            state.finished();
        }
        let (host, path) = route_key(&spec.url);
        self.slots.release(host, path);
        self.pump_slots(now, out);
        if let Some(fc) = spec.flow_control() {
            self.pump_flow(user, &fc.key, now, out);
        }
    }

    /// Hands freed delivery slots to waiting messages, routes taking turns. A message whose
    /// flow-control key closed meanwhile gives its slot back and waits on the key instead.
    fn pump_slots(&mut self, now: i64, out: &mut Vec<Dispatch>) {
        let mut starts = Vec::new();
        let store = &self.store;
        self.slots.next_starts(
            |user, id| {
                store
                    .message(user, id)
                    .is_some_and(|m| m.phase == Phase::Parked(Gate::Host))
            },
            &mut starts,
        );
        for (user, id) in starts {
            let Some(spec) = self.store.message(user, id).map(|m| m.spec.clone()) else {
                continue;
            };
            if self.pass_flow(user, &spec, false, now) {
                self.start_with_slot(user, &spec, now, out);
            } else {
                let (host, path) = route_key(&spec.url);
                self.slots.release(host, path);
            }
        }
    }

    /// Lets messages waiting on a flow-control key through while its limits allow.
    pub(super) fn pump_flow(&mut self, user: UserId, key: &str, now: i64, out: &mut Vec<Dispatch>) {
        loop {
            let Some(&front) = self.users[user.index()]
                .flow_waitlists
                .get(key)
                .and_then(|w| w.front())
            else {
                return;
            };
            let parked = self
                .store
                .message(user, front)
                .filter(|m| m.phase == Phase::Parked(Gate::Flow))
                .map(|m| m.spec.clone());
            let Some(spec) = parked else {
                self.flow_waitlist(user, key).pop_front();
                continue;
            };
            let state = self.flow_mut(user, key, now);
            match state.check(now) {
                Err(Blocked::Until(at)) => {
                    let key = state.key.clone();
                    self.schedule_rate_wake(user, &key, at);
                    return;
                }
                Err(Blocked::UntilReleased) => return,
                Ok(()) => {
                    state.waiting = state.waiting.saturating_sub(1);
                    self.flow_waitlist(user, key).pop_front();
                    self.try_gates_from(user, &spec, true, now, out);
                }
            }
        }
    }

    /// Starts the queue's next messages, in order, while it has free slots.
    pub(super) fn pump_queue(
        &mut self,
        user: UserId,
        name: &str,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        loop {
            let Some(info) = self.store.queue(user, name) else {
                return;
            };
            if info.paused {
                return;
            }
            let parallelism = info.parallelism as usize;
            let Some(rt) = self.users[user.index()].queues.get_mut(name) else {
                return;
            };
            if rt.blocked_on.is_some() || rt.active.len() >= parallelism {
                return;
            }
            let Some(&front) = rt.pending.front() else {
                return;
            };
            let Some(msg) = self.store.message(user, front) else {
                rt.pending.pop_front();
                continue;
            };
            if matches!(msg.phase, Phase::Waiting { at } if at > now) {
                // The head is not due yet; its timer calls `ready`, which pumps again.
                return;
            }
            let spec = msg.spec.clone();
            rt.pending.pop_front();
            rt.waiting = rt.waiting.saturating_sub(1);
            rt.active.insert(front, Default::default());
            rt.blocked_on = Some(front);
            self.try_gates(user, &spec, now, out);
        }
    }

    /// A queued message (`owner == true`) or one of its callbacks finished; the queue slot is
    /// free once both are.
    pub(super) fn slot_done(&mut self, user: UserId, queue: &str, id: MessageId, owner: bool) {
        let Some(rt) = self.queue_rt(user, queue) else {
            return;
        };
        let Some(slot) = rt.active.get_mut(&id) else {
            return;
        };
        if owner {
            slot.done = true;
        } else {
            slot.open_children = slot.open_children.saturating_sub(1);
        }
        if slot.done && slot.open_children == 0 {
            rt.active.remove(&id);
            if rt.blocked_on == Some(id) {
                rt.blocked_on = None;
            }
            rt.paused_retries.retain(|m| *m != id);
            let idle = rt.active.is_empty() && rt.waiting == 0;
            if idle && self.store.queue(user, queue).is_none() {
                // The queue was deleted and its last message is done.
                self.users[user.index()].queues.remove(queue);
                return;
            }
            self.pumps.push(Pump::Queue(user, queue.into()));
        }
    }

    /// A waiting message is being cancelled: forget it in the counters of what it waited for.
    pub(super) fn unpark(&mut self, user: UserId, spec: &MessageSpec, phase: Phase) {
        match phase {
            Phase::Parked(Gate::Flow) => {
                if let Some(state) = spec
                    .flow_control()
                    .and_then(|fc| self.users[user.index()].flows.get_mut(&*fc.key))
                {
                    state.waiting = state.waiting.saturating_sub(1);
                }
            }
            Phase::Waiting { .. } => {
                if let Some(rt) = spec
                    .queue_name()
                    .and_then(|q| self.users[user.index()].queues.get_mut(q))
                    && !rt.active.contains_key(&spec.id)
                {
                    rt.waiting = rt.waiting.saturating_sub(1);
                }
            }
            Phase::Parked(Gate::Host) | Phase::Parked(Gate::QueuePaused) | Phase::InFlight => {}
        }
    }
}
