//! Turning a publish (or a schedule tick) into messages: one per destination URL, one per
//! endpoint of a URL group, enqueued when a queue is named.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::{Core, Dispatch};
use crate::domain::message::{DeliveryOptions, MessageSpec, Origin};
use crate::domain::schedule::TickState;
use crate::engine::error::BrokerError;
use crate::engine::timers::Wake;
use crate::ids::MessageId;
use crate::users::UserId;

/// After a clock jump the missed ticks are replayed (time passed, as far as the schedule can
/// tell); when more than this many are due at once, only the latest fires.
const MAX_REPLAYED_TICKS: usize = 100;

/// What to publish: the shared parts of the messages one publish or tick produces.
pub struct Template<'a> {
    /// URL, or URL group name when `is_group`.
    pub target: &'a str,
    pub is_group: bool,
    pub options: &'a Arc<DeliveryOptions>,
    pub body: &'a Bytes,
    pub caller_ip: IpAddr,
    pub not_before: i64,
    pub queue: Option<Arc<str>>,
    pub schedule_id: Option<Arc<str>>,
}

impl Core {
    /// Creates the queue with default settings if it does not exist yet.
    pub fn ensure_queue(&mut self, user: UserId, name: &str, now: i64) -> Result<(), BrokerError> {
        if self.store.queue(user, name).is_some() {
            return Ok(());
        }
        let quota = &self.config.quota;
        if self.store.queue_count(user) >= quota.max_queues {
            return Err(BrokerError::quota(quota, quota.max_queues, "queues"));
        }
        self.store
            .put_queue(user, crate::domain::queue::QueueInfo::new(name, now));
        Ok(())
    }

    /// Creates and accepts the messages of `t`; returns (id, URL) of each.
    pub fn produce(
        &mut self,
        user: UserId,
        t: &Template<'_>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<Vec<(MessageId, Arc<str>)>, BrokerError> {
        let topic: Option<Arc<str>> = t.is_group.then(|| t.target.into());
        let endpoints: Vec<(Arc<str>, Option<Arc<str>>)> = match &topic {
            None => vec![(t.target.into(), None)],
            Some(name) => {
                let group = self
                    .store
                    .url_group(user, name)
                    .ok_or_else(|| BrokerError::not_found("url group", &**name))?;
                if group.endpoints.is_empty() {
                    return Err(BrokerError::Invalid(format!(
                        "url group {name} has no endpoints"
                    )));
                }
                group
                    .endpoints
                    .iter()
                    .map(|e| (e.url.clone(), e.name.clone()))
                    .collect()
            }
        };
        if let Some(q) = &t.queue {
            self.ensure_queue(user, q, now)?;
        }
        let mut produced = Vec::with_capacity(endpoints.len());
        for (url, endpoint_name) in endpoints {
            let needs_origin = topic.is_some() || t.queue.is_some() || t.schedule_id.is_some();
            let origin = needs_origin.then(|| {
                Box::new(Origin {
                    topic_name: topic.clone(),
                    endpoint_name,
                    queue_name: t.queue.clone(),
                    schedule_id: t.schedule_id.clone(),
                    ..Default::default()
                })
            });
            let spec = Arc::new(MessageSpec {
                id: MessageId::random(),
                url: url.clone(),
                body: t.body.clone(),
                created_at: now,
                not_before: t.not_before,
                caller_ip: t.caller_ip,
                options: t.options.clone(),
                origin,
            });
            produced.push((spec.id, url));
            self.accept(user, spec, now, out);
        }
        Ok(produced)
    }

    /// Plans the schedule's next tick after `after`.
    pub fn plan_tick(&mut self, user: UserId, id: &str, after: i64) {
        let Some(s) = self.store.schedule_mut(user, id) else {
            return;
        };
        s.next_schedule_time = s.cron.next_after(after);
        if let Some(at) = s.next_schedule_time {
            let id = s.id.clone();
            self.timers.push(at, Wake::Schedule(user, id));
        }
    }

    /// When more than [`MAX_REPLAYED_TICKS`] ticks are due at once, the time just before the
    /// latest of them: the tick to skip ahead to.
    fn skip_to(&self, user: UserId, id: &str, at: i64, now: i64) -> Option<i64> {
        let s = self.store.schedule(user, id)?;
        let mut t = at;
        for _ in 0..MAX_REPLAYED_TICKS {
            t = s.cron.next_after(t).filter(|next| *next <= now)?;
        }
        s.cron.last_at_or_before(now).map(|latest| latest - 1)
    }

    /// A schedule's tick time `at` came.
    pub(super) fn tick(
        &mut self,
        user: UserId,
        id: &str,
        at: i64,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        let Some(s) = self.store.schedule(user, id) else {
            return;
        };
        if s.next_schedule_time != Some(at) {
            return;
        }
        if let Some(before_latest) = self.skip_to(user, id, at, now) {
            self.plan_tick(user, id, before_latest);
            return;
        }
        let Some(s) = self.store.schedule(user, id) else {
            return;
        };
        if !s.paused {
            // A failure is recorded on the schedule (its `error`); the next tick tries again.
            let _ = self.fire(user, id, at, now, out);
        }
        self.plan_tick(user, id, at);
    }

    /// Publishes the schedule's messages for the tick at `at` and records the outcome as its
    /// last run (a cron tick, or a "run now"); returns the ids of the messages.
    pub(super) fn fire(
        &mut self,
        user: UserId,
        id: &str,
        at: i64,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<Vec<MessageId>, BrokerError> {
        let Some(s) = self.store.schedule(user, id) else {
            return Err(BrokerError::not_found("schedule", id));
        };
        let s = s.clone();
        let template = Template {
            target: &s.destination,
            is_group: s.is_group,
            options: &s.options,
            body: &s.body,
            caller_ip: s.caller_ip,
            not_before: at + s.delay_ms as i64,
            queue: s.queue.clone(),
            schedule_id: Some(s.id.clone()),
        };
        let result = self
            .produce(user, &template, now, out)
            .map(|produced| produced.into_iter().map(|(m, _)| m).collect::<Vec<_>>());
        if let Some(s) = self.store.schedule_mut(user, id) {
            s.last_schedule_time = Some(at);
            match &result {
                Ok(ids) => {
                    s.error = None;
                    s.last_states = ids.iter().map(|m| (*m, TickState::InProgress)).collect();
                }
                Err(e) => {
                    tracing::warn!(schedule_id = id, error = %e, "schedule tick could not publish");
                    s.error = Some(e.to_string());
                    s.last_states.clear();
                }
            }
        }
        result
    }
}
