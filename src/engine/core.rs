//! The broker's state machine: every decision about a message, made synchronously under one
//! lock. It never performs I/O; it returns [`Dispatch`]es that the async shell (`mod.rs`)
//! turns into HTTP attempts, and takes their [`Attempt`] results back in [`Core::complete`].

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::config::Config;
use crate::domain::attempt::{Verdict, judge, status_error};
use crate::domain::callback;
use crate::domain::destination::host_key;
use crate::domain::dlq::DlqEntry;
use crate::domain::log::{LogDetail, LogState};
use crate::domain::message::{
    CallbackTarget, Message, MessageSpec, Origin, Phase, Response, Trigger,
};
use crate::engine::timers::{Timers, Wake};
use crate::ids::MessageId;
use crate::store::Store;
use crate::users::{USER_COUNT, UserId};

/// Timer entries handled per lock acquisition, so a huge due backlog cannot freeze the API.
const DUE_BATCH: usize = 4096;

/// One HTTP attempt to make now.
#[derive(Debug)]
pub struct Dispatch {
    pub user: UserId,
    pub spec: Arc<MessageSpec>,
    pub retried: u32,
    pub signing_key: Arc<str>,
    pub timeout_ms: u64,
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

#[derive(Default)]
struct HostGate {
    in_flight: usize,
    waiting: VecDeque<(UserId, MessageId)>,
}

pub struct Core {
    pub store: Box<dyn Store>,
    timers: Timers,
    hosts: HashMap<Box<str>, HostGate>,
    in_flight: [u32; USER_COUNT],
    config: Arc<Config>,
}

impl Core {
    pub fn new(store: Box<dyn Store>, config: Arc<Config>) -> Self {
        Self {
            store,
            timers: Timers::default(),
            hosts: HashMap::new(),
            in_flight: [0; USER_COUNT],
            config,
        }
    }

    pub fn next_due(&self) -> Option<i64> {
        self.timers.next_due()
    }

    /// DLQ entries created before this time have expired.
    pub fn store_retention_cutoff(&self, now: i64) -> i64 {
        now - self.config.quota.dlq_retention_ms
    }

    pub fn in_flight(&self, user: UserId) -> u32 {
        self.in_flight[user.index()]
    }

    /// Stores a new message, logs CREATED, and starts it if it is due.
    pub fn accept(
        &mut self,
        user: UserId,
        spec: Arc<MessageSpec>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        let at = spec.not_before;
        let id = spec.id;
        let detail = (at > now).then(|| {
            Arc::new(LogDetail {
                next_delivery_time: Some(at),
                ..Default::default()
            })
        });
        self.store
            .append_log(user, now, LogState::Created, spec.clone(), detail);
        self.store.insert_message(user, Message::new(spec));
        if at <= now {
            self.ready(user, id, now, out);
        } else {
            self.timers.push(at, Wake::Message(user, id));
        }
    }

    /// Handles everything due by `now`, at most [`DUE_BATCH`] entries; returns whether more
    /// are due.
    pub fn run_due(&mut self, now: i64, out: &mut Vec<Dispatch>) -> bool {
        for _ in 0..DUE_BATCH {
            let Some((at, wake)) = self.timers.pop_due(now) else {
                self.timers.compact();
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
                Wake::Named(..) => {}
            }
        }
        true
    }

    /// A due message asks for a delivery slot.
    fn ready(&mut self, user: UserId, id: MessageId, now: i64, out: &mut Vec<Dispatch>) {
        let Some(msg) = self.store.message_mut(user, id) else {
            return;
        };
        let host = host_key(&msg.spec.url);
        let gate = match self.hosts.get_mut(host) {
            Some(g) => g,
            None => self.hosts.entry(host.into()).or_default(),
        };
        if gate.in_flight >= self.config.host_concurrency {
            msg.phase = Phase::Parked;
            gate.waiting.push_back((user, id));
            return;
        }
        gate.in_flight += 1;
        self.start(user, id, now, out);
    }

    fn start(&mut self, user: UserId, id: MessageId, now: i64, out: &mut Vec<Dispatch>) {
        let Some(msg) = self.store.message_mut(user, id) else {
            return;
        };
        msg.phase = Phase::InFlight;
        let spec = msg.spec.clone();
        let retried = msg.retried;
        self.store
            .append_log(user, now, LogState::Active, spec.clone(), None);
        self.in_flight[user.index()] += 1;
        let timeout_ms = spec
            .options
            .timeout_ms
            .unwrap_or(self.config.quota.max_timeout_ms);
        out.push(Dispatch {
            user,
            spec,
            retried,
            signing_key: self.store.signing_keys(user).current,
            timeout_ms,
        });
    }

    /// Frees the host slot of a finished attempt and hands it to the next parked message.
    fn release_host(&mut self, url: &str, now: i64, out: &mut Vec<Dispatch>) {
        let host = host_key(url);
        let Some(gate) = self.hosts.get_mut(host) else {
            return;
        };
        gate.in_flight = gate.in_flight.saturating_sub(1);
        while let Some((user, id)) = gate.waiting.pop_front() {
            let parked = self
                .store
                .message(user, id)
                .is_some_and(|m| m.phase == Phase::Parked);
            if parked {
                gate.in_flight += 1;
                self.start(user, id, now, out);
                return;
            }
        }
        if gate.in_flight == 0 && self.hosts.len() > 256 {
            self.hosts.remove(host);
        }
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
        self.release_host(&spec.url, now, out);
        let slot = &mut self.in_flight[user.index()];
        *slot = slot.saturating_sub(1);
        let Some(msg) = self.store.message_mut(user, spec.id) else {
            return;
        };
        let retried = msg.retried;
        let cancel_requested = msg.cancel_requested;
        let response = attempt.response.map(Arc::new);
        if cancel_requested {
            let delivered = response
                .as_ref()
                .is_some_and(|r| (200..300).contains(&r.status));
            let state = if delivered {
                LogState::Delivered
            } else {
                LogState::Canceled
            };
            let detail = LogDetail {
                response: response.clone(),
                ..Default::default()
            };
            self.store
                .append_log(user, now, state, spec.clone(), Some(Arc::new(detail)));
            self.finish(user, spec, now);
            return;
        }
        let verdict = judge(spec, retried, response.as_deref(), now);
        let error = attempt.error.or_else(|| {
            response
                .as_ref()
                .filter(|r| !(200..300).contains(&r.status))
                .map(|r| status_error(r.status))
        });
        match verdict {
            Verdict::Delivered => {
                let detail = LogDetail {
                    response: response.clone(),
                    ..Default::default()
                };
                self.store.append_log(
                    user,
                    now,
                    LogState::Delivered,
                    spec.clone(),
                    Some(Arc::new(detail)),
                );
                self.finish(user, spec, now);
            }
            Verdict::Retry { at } => {
                let detail = LogDetail {
                    error,
                    response: response.clone(),
                    next_delivery_time: Some(at),
                };
                self.store.append_log(
                    user,
                    now,
                    LogState::Error,
                    spec.clone(),
                    Some(Arc::new(detail)),
                );
                let retry = LogDetail {
                    next_delivery_time: Some(at),
                    ..Default::default()
                };
                self.store.append_log(
                    user,
                    now,
                    LogState::Retry,
                    spec.clone(),
                    Some(Arc::new(retry)),
                );
                if let Some(msg) = self.store.message_mut(user, spec.id) {
                    msg.retried += 1;
                    msg.phase = Phase::Waiting { at };
                }
                self.timers.push(at, Wake::Message(user, spec.id));
            }
            Verdict::Failed { .. } => {
                let detail = Arc::new(LogDetail {
                    error: error.clone(),
                    response: response.clone(),
                    next_delivery_time: None,
                });
                self.store.append_log(
                    user,
                    now,
                    LogState::Error,
                    spec.clone(),
                    Some(detail.clone()),
                );
                self.store
                    .append_log(user, now, LogState::Failed, spec.clone(), Some(detail));
                let dlq_id = self.store.next_dlq_id(user, now);
                self.store
                    .expire_dlq(user, now - self.config.quota.dlq_retention_ms);
                self.store.insert_dlq(
                    user,
                    DlqEntry {
                        dlq_id: dlq_id.clone(),
                        created_at: now,
                        spec: spec.clone(),
                        retried,
                        response: response.clone().unwrap_or_default(),
                        error,
                    },
                );
                if let Some(target) = &spec.options.callback {
                    let trigger = Trigger::Callback { source: spec.id };
                    self.callback(
                        user,
                        spec,
                        target,
                        retried,
                        response.as_deref(),
                        None,
                        trigger,
                        now,
                        out,
                    );
                }
                if let Some(target) = &spec.options.failure_callback {
                    let trigger = Trigger::FailureCallback { source: spec.id };
                    self.callback(
                        user,
                        spec,
                        target,
                        retried,
                        response.as_deref(),
                        Some(&dlq_id),
                        trigger,
                        now,
                        out,
                    );
                }
                self.finish(user, spec, now);
                return;
            }
        }
        if let Some(target) = &spec.options.callback {
            let trigger = Trigger::Callback { source: spec.id };
            self.callback(
                user,
                spec,
                target,
                retried,
                response.as_deref(),
                None,
                trigger,
                now,
                out,
            );
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn callback(
        &mut self,
        user: UserId,
        source: &Arc<MessageSpec>,
        target: &CallbackTarget,
        retried: u32,
        response: Option<&Response>,
        dlq_id: Option<&str>,
        trigger: Trigger,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        let body = callback::body(source, retried, response, dlq_id);
        let spec = Arc::new(MessageSpec {
            id: MessageId::random(),
            url: target.url.clone(),
            body: body.into(),
            created_at: now,
            not_before: now + target.delay_ms as i64,
            caller_ip: source.caller_ip,
            options: target.options.clone(),
            origin: Some(Box::new(Origin {
                trigger: Some(trigger),
                ..Default::default()
            })),
        });
        self.accept(user, spec, now, out);
    }

    /// A message reached a terminal state: it leaves the store but stays readable a while.
    fn finish(&mut self, user: UserId, spec: &Arc<MessageSpec>, now: i64) {
        self.store.remove_message(user, spec.id);
        self.store.remember_finished(
            user,
            spec.clone(),
            now + self.config.finished_message_grace_ms,
        );
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
        let in_flight = msg.phase == Phase::InFlight;
        msg.cancel_requested = in_flight;
        self.store
            .append_log(user, now, LogState::CancelRequested, spec.clone(), None);
        if !in_flight {
            self.store
                .append_log(user, now, LogState::Canceled, spec.clone(), None);
            self.finish(user, &spec, now);
        }
        CancelOutcome::Cancelled
    }
}
