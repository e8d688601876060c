//! The broker's state machine: every decision about a message, made synchronously under one
//! lock. It never performs I/O; it returns [`Dispatch`]es that the async shell (`engine`)
//! turns into HTTP attempts, and takes their [`Attempt`] results back in [`Core::complete`].
//!
//! A message's path: [`Core::accept`] → (timer) → `ready` → the gates (queue order and
//! parallelism, flow-control key, host slot; `gates.rs`) → `start` → attempt → `complete` →
//! delivered / retry (timer again) / failed (DLQ) → `finish`.

mod admin;
mod controls;
mod gates;
mod log_events;
mod ops_view;
mod produce;
mod restore;
mod slots;
mod workflow;

pub use admin::FlowView;
pub use ops_view::{Busy, Gauges};
pub use produce::Template;
pub use slots::SlotLimits;
pub use workflow::{
    Notified, Recovered, Recovery, WorkflowDelivery, WorkflowPublish, is_override, next_step,
};

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::config::Config;
use crate::domain::attempt::{Verdict, judge, judge_refused, status_error};
use crate::domain::callback;
use crate::domain::dlq::DlqEntry;
use crate::domain::flow_control::FlowState;
use crate::domain::log::{LogDetail, LogState};
use crate::domain::message::{
    CallbackTarget, Message, MessageSpec, Origin, Phase, Response, Trigger,
};
use crate::domain::schedule::TickState;
use crate::engine::stats::Stats;
use crate::engine::timers::{Timers, Wake};
use crate::ids::{IdMap, MessageId};
use crate::signing::Signer;
use crate::store::Store;
use crate::users::{USER_COUNT, UserId};

/// Timer entries handled per lock acquisition, so a huge due backlog cannot freeze the API.
const DUE_BATCH: usize = 4096;
/// Timer entries sifted per step while the heap is being compacted.
const COMPACT_STEP: usize = 4096;

/// One HTTP attempt to make now.
#[derive(Debug)]
pub struct Dispatch {
    pub user: UserId,
    pub spec: Arc<MessageSpec>,
    pub retried: u32,
    pub signer: Arc<Signer>,
    pub timeout_ms: u64,
    /// The run's headers and steps array, for a message of a workflow run.
    pub workflow: Option<Box<WorkflowDelivery>>,
}

/// What an attempt produced: a response, or why there was none.
#[derive(Debug, Default)]
pub struct Attempt {
    pub response: Option<Response>,
    pub error: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    /// In flight and already marked: cancelling again changes nothing.
    AlreadyRequested,
    NotFound,
}

/// A queue slot held by a started message until it and its callbacks are finished.
#[derive(Default)]
struct Slot {
    open_children: u32,
    done: bool,
}

/// Scheduling state of one queue (its definition lives in the store).
#[derive(Default)]
struct QueueRuntime {
    /// Enqueued, not started yet, in order (cancelled ones are skipped lazily).
    pending: VecDeque<MessageId>,
    /// How many of `pending` are live.
    waiting: usize,
    active: IdMap<Slot>,
    /// The message handed to the gates that has not started yet: the next one waits for it,
    /// so starts happen in enqueue order.
    blocked_on: Option<MessageId>,
    /// Retries that came due while the queue was paused.
    paused_retries: Vec<MessageId>,
}

#[derive(Default)]
struct UserRuntime {
    queues: HashMap<Arc<str>, QueueRuntime>,
    flows: HashMap<Arc<str>, FlowState>,
    /// Messages parked on each flow-control key, in arrival order.
    flow_waitlists: HashMap<Arc<str>, VecDeque<MessageId>>,
    /// The rate-window wake-up already planned for each key.
    rate_wakes: HashMap<Arc<str>, i64>,
    in_flight: u32,
}

/// A gate whose waiting messages should be looked at again.
enum Pump {
    Queue(UserId, Arc<str>),
    Flow(UserId, Arc<str>),
}

/// An attempt that came back, as the verdict handlers of [`Core::complete`] see it.
struct Answered<'a> {
    user: UserId,
    spec: &'a Arc<MessageSpec>,
    /// Retries made before this attempt.
    retried: u32,
    response: Option<Arc<Response>>,
    now: i64,
}

/// How a message ended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Delivered,
    Failed,
    Canceled,
}

pub struct Core {
    pub store: Box<dyn Store>,
    timers: Timers,
    slots: slots::Slots,
    users: [UserRuntime; USER_COUNT],
    /// Each user's current signing key, keyed once: (key, signer).
    signers: [Option<(Arc<str>, Arc<Signer>)>; USER_COUNT],
    /// Queues and flow-control keys whose waiting messages may be able to move now; handled
    /// by [`Core::settle`] after each step, so letting one message through never recurses
    /// into letting the next one through.
    pumps: Vec<Pump>,
    /// Heap entries known to point at nothing any more (cancelled delayed messages, replaced
    /// schedules); the heap is rebuilt when they dominate it.
    stale_timers: usize,
    config: Arc<Config>,
    /// Counts every logged state change (see [`Core::append_log`]).
    stats: Arc<Stats>,
    /// With `-data-dir`: flow-control keys looked at during this step, reported to the store
    /// at its end (`restore.rs`).
    track_flows: bool,
    dirty_flows: std::collections::HashSet<(UserId, Arc<str>)>,
}

impl Core {
    pub fn new(store: Box<dyn Store>, config: Arc<Config>) -> Self {
        Self {
            store,
            timers: Timers::default(),
            slots: slots::Slots::new(SlotLimits::for_outbound(
                config.outbound_capacity,
                config.host_concurrency,
            )),
            users: Default::default(),
            signers: Default::default(),
            pumps: Vec::new(),
            stale_timers: 0,
            config,
            stats: Arc::new(Stats::new()),
            track_flows: false,
            dirty_flows: Default::default(),
        }
    }

    /// The per-user counters, readable without the lock.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Appends to the user's event log and counts the state change: every log entry of the
    /// engine goes through here.
    fn append_log(
        &mut self,
        user: UserId,
        now: i64,
        state: LogState,
        spec: Arc<MessageSpec>,
        detail: Option<Arc<LogDetail>>,
    ) {
        self.stats.record(user, state, now);
        log_events::state_changed(user, now, state, &spec, detail.as_deref());
        self.store.append_log(user, now, state, spec, detail);
    }

    /// The signer of the user's current key (re-keyed after a rotation).
    fn signer(&mut self, user: UserId) -> Arc<Signer> {
        let current = self.store.signing_keys(user).current;
        let slot = &mut self.signers[user.index()];
        match slot {
            Some((key, signer)) if *key == current => signer.clone(),
            _ => {
                let signer = Arc::new(Signer::new(&current));
                *slot = Some((current, signer.clone()));
                signer
            }
        }
    }

    /// Lets through whatever the last step made possible (see `pumps`). Every entry point
    /// of the engine ends with it.
    pub fn settle(&mut self, now: i64, out: &mut Vec<Dispatch>) {
        while let Some(pump) = self.pumps.pop() {
            match pump {
                Pump::Queue(user, name) => self.pump_queue(user, &name, now, out),
                Pump::Flow(user, key) => self.pump_flow(user, &key, now, out),
            }
        }
        if self.timers.compacting() {
            self.compact_timers_step();
        } else if self.stale_timers > 1024 && self.stale_timers > self.timers.len() / 2 {
            self.timers.start_compaction();
            self.stale_timers = 0;
            self.compact_timers_step();
        }
    }

    /// A timer entry will never apply: count it towards the next compaction.
    pub fn timer_went_stale(&mut self) {
        self.stale_timers += 1;
    }

    /// Drops heap entries that no longer apply, a slice per step, so cancelling far-future
    /// messages or replacing schedules over and over cannot grow the heap without bound.
    fn compact_timers_step(&mut self) {
        let store = &self.store;
        self.timers
            .compact_step(COMPACT_STEP, |at, wake| match wake {
                Wake::Message(user, id) => store
                    .message(*user, *id)
                    .is_some_and(|m| m.phase == Phase::Waiting { at }),
                Wake::Schedule(user, id) => store
                    .schedule(*user, id)
                    .is_some_and(|s| s.next_schedule_time == Some(at)),
                Wake::RateWindow(..) => true,
                Wake::WaitTimeout(user, run, event) => {
                    let runs = store.workflow_runs(*user);
                    runs.waiter(run, event).is_some_and(|w| w.deadline_ms == at)
                }
            });
    }

    pub fn next_due(&self) -> Option<i64> {
        self.timers.next_due()
    }

    pub fn in_flight(&self, user: UserId) -> u32 {
        self.users[user.index()].in_flight
    }

    /// DLQ entries created before this time have expired.
    pub fn dlq_cutoff(&self, now: i64) -> i64 {
        now - self.config.quota.dlq_retention_ms
    }

    /// Stores a new message, logs CREATED, and hands it on if it is due.
    pub fn accept(
        &mut self,
        user: UserId,
        spec: Arc<MessageSpec>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        let at = spec.not_before;
        let id = spec.id;
        if spec.options.workflow.is_some() {
            self.workflow_accepted(user, &spec, now);
        }
        if let Some(fc) = spec.flow_control() {
            let state = self.flow_mut(user, &fc.key, now);
            state.add(fc);
            // Its config may raise the key's limits for those already waiting.
            let key = state.key.clone();
            self.pumps.push(Pump::Flow(user, key));
        }
        let queue = spec.origin().queue_name.clone();
        self.store.insert_message(user, Message::new(spec.clone()));
        // Logged once stored: with `-data-dir` the entry then names the message's row
        // instead of carrying its spec and body a second time. A delayed CREATED entry shows
        // `nextDeliveryTime` from the spec (see the log view), so no detail is allocated here.
        self.append_log(user, now, LogState::Created, spec, None);
        if at > now {
            self.timers.push(at, Wake::Message(user, id));
        }
        match queue {
            Some(q) => {
                let rt = self.users[user.index()]
                    .queues
                    .entry(q.clone())
                    .or_default();
                rt.pending.push_back(id);
                rt.waiting += 1;
                self.pump_queue(user, &q, now, out);
            }
            None if at <= now => self.ready(user, id, now, out),
            None => {}
        }
    }

    /// Handles everything due by `now`, at most [`DUE_BATCH`] entries; returns whether more
    /// are due.
    pub fn run_due(&mut self, now: i64, out: &mut Vec<Dispatch>) -> bool {
        for _ in 0..DUE_BATCH {
            let Some((at, wake)) = self.timers.pop_due(now) else {
                return false;
            };
            match wake {
                Wake::Message(user, id) => {
                    let waiting = self
                        .store
                        .message(user, id)
                        .is_some_and(|m| m.phase == Phase::Waiting { at });
                    if waiting {
                        self.ready(user, id, now, out);
                    }
                }
                Wake::Schedule(user, id) => self.tick(user, &id, at, now, out),
                Wake::RateWindow(user, key) => self.rate_window_rolled(user, &key, now, out),
                Wake::WaitTimeout(user, run, event) => {
                    self.wait_timed_out(user, &run, &event, at, now, out)
                }
            }
        }
        true
    }

    /// Applies the result of an attempt started by `dispatch`.
    pub fn complete(
        &mut self,
        dispatch: &Dispatch,
        attempt: Attempt,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        let (user, spec) = (dispatch.user, &dispatch.spec);
        self.attempt_ended(user, spec, now, out);
        let Some(msg) = self.store.message(user, spec.id) else {
            return;
        };
        let a = Answered {
            user,
            spec,
            retried: msg.retried,
            response: attempt.response.map(Arc::new),
            now,
        };
        if msg.cancel_requested {
            // Cancelled in flight: the attempt decides, nothing follows.
            let delivered = a
                .response
                .as_ref()
                .is_some_and(|r| (200..300).contains(&r.status));
            let (state, end) = if delivered {
                (LogState::Delivered, End::Delivered)
            } else {
                (LogState::Canceled, End::Canceled)
            };
            self.log(
                &a,
                state,
                LogDetail {
                    response: a.response.clone(),
                    ..Default::default()
                },
            );
            self.finish(user, spec, end);
            return;
        }
        // A workflow's Init answered by something that is not a workflow counts as failed.
        let refusal = crate::domain::workflow::non_workflow_answer(spec, a.response.as_deref());
        let verdict = match refusal {
            Some(_) => judge_refused(spec, a.retried, a.response.as_deref(), now),
            None => judge(spec, a.retried, a.response.as_deref(), now),
        };
        let error = attempt.error.or(refusal).or_else(|| {
            a.response
                .as_ref()
                .filter(|r| !(200..300).contains(&r.status))
                .map(|r| status_error(r.status))
        });
        match verdict {
            Verdict::Delivered => self.on_delivered(&a, out),
            Verdict::Retry { at } => self.on_retry(&a, at, error, out),
            Verdict::Failed { .. } => self.on_failed(&a, error, out),
        }
    }

    fn log(&mut self, a: &Answered<'_>, state: LogState, detail: LogDetail) {
        self.append_log(a.user, a.now, state, a.spec.clone(), Some(Arc::new(detail)));
    }

    fn on_delivered(&mut self, a: &Answered<'_>, out: &mut Vec<Dispatch>) {
        if a.spec.options.workflow.is_some() {
            self.workflow_attempted(a.user, a.spec, None, a.response.as_deref(), a.now);
        }
        self.log(
            a,
            LogState::Delivered,
            LogDetail {
                response: a.response.clone(),
                ..Default::default()
            },
        );
        self.callback(a, None, out);
        self.finish(a.user, a.spec, End::Delivered);
    }

    fn on_retry(
        &mut self,
        a: &Answered<'_>,
        at: i64,
        error: Option<String>,
        out: &mut Vec<Dispatch>,
    ) {
        let next_delivery_time = Some(at);
        if a.spec.options.workflow.is_some() {
            let e = error.as_deref().or(Some("failed"));
            self.workflow_attempted(a.user, a.spec, e, a.response.as_deref(), a.now);
        }
        self.log(
            a,
            LogState::Error,
            LogDetail {
                error,
                response: a.response.clone(),
                next_delivery_time,
            },
        );
        self.log(
            a,
            LogState::Retry,
            LogDetail {
                next_delivery_time,
                ..Default::default()
            },
        );
        if let Some(msg) = self.store.message_mut(a.user, a.spec.id) {
            msg.retried += 1;
            msg.phase = Phase::Waiting { at };
        }
        self.timers.push(at, Wake::Message(a.user, a.spec.id));
        self.callback(a, None, out);
    }

    /// Retries exhausted or refused: FAILED, into the DLQ, then both callbacks.
    fn on_failed(&mut self, a: &Answered<'_>, error: Option<String>, out: &mut Vec<Dispatch>) {
        let detail = LogDetail {
            error: error.clone(),
            response: a.response.clone(),
            next_delivery_time: None,
        };
        let detail = Arc::new(detail);
        self.append_log(
            a.user,
            a.now,
            LogState::Error,
            a.spec.clone(),
            Some(detail.clone()),
        );
        self.append_log(
            a.user,
            a.now,
            LogState::Failed,
            a.spec.clone(),
            Some(detail),
        );
        if a.spec.options.workflow.is_some() {
            let e = error.as_deref().or(Some("failed"));
            self.workflow_attempted(a.user, a.spec, e, a.response.as_deref(), a.now);
        }
        let run = self.workflow_dlq_ref(a.user, a.spec);
        let dlq_id = self.store.next_dlq_id(a.user, a.now);
        self.workflow_failed(a.user, a.spec, &dlq_id, a.response.as_deref(), a.now, out);
        if !matches!(run, Some(None)) {
            let cutoff = self.dlq_cutoff(a.now);
            self.store.expire_dlq(a.user, cutoff);
            log_events::failed(a.user, a.spec, &dlq_id, error.as_deref());
            let entry = DlqEntry {
                dlq_id: dlq_id.clone(),
                created_at: a.now,
                spec: a.spec.clone(),
                retried: a.retried,
                response: a.response.clone().unwrap_or_default(),
                error,
                workflow: run.flatten(),
            };
            self.store.insert_dlq(a.user, entry);
            self.stats.dead_lettered(a.user);
        }
        self.callback(a, None, out);
        self.callback(a, Some(&dlq_id), out);
        self.finish(a.user, a.spec, End::Failed);
    }

    /// Publishes the callback (or, with a `dlq_id`, the failure callback) of an attempt.
    fn callback(&mut self, a: &Answered<'_>, dlq_id: Option<&str>, out: &mut Vec<Dispatch>) {
        let (user, source, retried, now) = (a.user, a.spec, a.retried, a.now);
        let response = a.response.as_deref();
        let (target, trigger): (&CallbackTarget, Trigger) = match dlq_id {
            None => match &source.options.callback {
                Some(t) => (t, Trigger::Callback { source: source.id }),
                None => return,
            },
            Some(_) => match &source.options.failure_callback {
                Some(t) => (t, Trigger::FailureCallback { source: source.id }),
                None => return,
            },
        };
        if self.workflow_drops_callback(user, target) {
            return;
        }
        // A queued message keeps its slot until its callbacks are done too.
        let slot_owner = source.queue_name().and_then(|q| {
            let rt = self.users[user.index()].queues.get_mut(q)?;
            let slot = rt.active.get_mut(&source.id)?;
            slot.open_children += 1;
            Some((Arc::<str>::from(q), source.id))
        });
        let run = dlq_id.and(self.workflow_failure_fields(user, source));
        let body = match &run {
            Some(run) => callback::body_for_run(source, retried, response, dlq_id, run),
            None => callback::body(source, retried, response, dlq_id),
        };
        let options = match &run {
            Some(run) => workflow::failure_options(&target.options, run.created_at),
            None => target.options.clone(),
        };
        let spec = Arc::new(MessageSpec {
            id: MessageId::random(),
            url: target.url.clone(),
            body: body.into(),
            created_at: now,
            not_before: now + target.delay_ms as i64,
            caller_ip: source.caller_ip,
            options,
            origin: Some(Box::new(Origin {
                trigger: Some(trigger),
                slot_owner,
                ..Default::default()
            })),
        });
        self.accept(user, spec, now, out);
    }

    /// A message reached a terminal state: it leaves the store (staying readable a while) and
    /// gives back what it held.
    fn finish(&mut self, user: UserId, spec: &Arc<MessageSpec>, end: End) {
        self.store.remove_message(user, spec.id);
        if spec.options.workflow.is_some() {
            self.workflow_finished(user, spec, end);
        }
        if let Some(fc) = spec.flow_control()
            && let Some(state) = self.users[user.index()].flows.get_mut(&*fc.key)
        {
            state.remove(fc);
        }
        if let Some(q) = spec.queue_name() {
            self.slot_done(user, q, spec.id, true);
            // A cancelled message that never started may have been the head the others
            // waited behind.
            self.pumps.push(Pump::Queue(user, q.into()));
        }
        if let Some((q, owner)) = spec.origin().slot_owner.clone() {
            self.slot_done(user, &q, owner, false);
        }
        if let Some(schedule_id) = &spec.origin().schedule_id
            && let Some(s) = self.store.schedule_mut(user, schedule_id)
        {
            s.settle(
                spec.id,
                if end == End::Delivered {
                    TickState::Success
                } else {
                    TickState::Fail
                },
            );
        }
    }

    /// Cancels a message: at once if it is waiting, after its attempt if it is in flight.
    pub fn cancel(&mut self, user: UserId, id: MessageId, now: i64) -> CancelOutcome {
        let Some(msg) = self.store.message_mut(user, id) else {
            return CancelOutcome::NotFound;
        };
        if msg.cancel_requested {
            return CancelOutcome::AlreadyRequested;
        }
        let spec = msg.spec.clone();
        let phase = msg.phase;
        let in_flight = phase == Phase::InFlight;
        msg.cancel_requested = in_flight;
        self.append_log(user, now, LogState::CancelRequested, spec.clone(), None);
        if in_flight {
            return CancelOutcome::Cancelled;
        }
        if matches!(phase, Phase::Waiting { at } if at > now) {
            self.timer_went_stale();
        }
        self.unpark(user, &spec, phase);
        self.append_log(user, now, LogState::Canceled, spec.clone(), None);
        self.finish(user, &spec, End::Canceled);
        CancelOutcome::Cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::QuotaKind;
    use crate::domain::options;
    use crate::store::MemoryStore;

    fn delayed_spec(now: i64) -> Arc<MessageSpec> {
        let parsed = options::parse(&[], &crate::config::Quota::new(QuotaKind::Payg), now).unwrap();
        Arc::new(MessageSpec {
            id: MessageId::random(),
            url: "http://localhost:1/x".into(),
            body: Default::default(),
            created_at: now,
            not_before: now + 3_600_000,
            caller_ip: [127, 0, 0, 1].into(),
            options: parsed.options,
            origin: None,
        })
    }

    #[test]
    fn cancelled_far_future_messages_do_not_keep_the_timer_heap_growing() {
        let mut core = Core::new(Box::new(MemoryStore::new()), Arc::new(Config::default()));
        let (user, now, mut out) = (UserId(0), 1_000, Vec::new());
        for _ in 0..5000 {
            let spec = delayed_spec(now);
            let id = spec.id;
            core.accept(user, spec, now, &mut out);
            assert_eq!(core.cancel(user, id, now), CancelOutcome::Cancelled);
            core.settle(now, &mut out);
        }
        let kept = core.timers.len();
        assert!(
            kept < 3000,
            "the heap holds {kept} entries and no live message"
        );
        assert!(out.is_empty());
    }
}
