//! Schedules: create-or-replace, list, get, delete, pause/resume.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::Broker;
use super::error::BrokerError;
use crate::domain::cron::CronSpec;
use crate::domain::dedup;
use crate::domain::destination::{Destination, validate_name};
use crate::domain::options::Parsed;
use crate::domain::schedule::{Schedule, valid_schedule_id};
use crate::ids::random_base62;
use crate::store::Published;
use crate::users::UserId;

type Result<T> = std::result::Result<T, BrokerError>;

pub struct ScheduleRequest {
    pub destination: Destination,
    pub parsed: Parsed,
    pub body: Bytes,
    pub caller_ip: IpAddr,
}

fn not_found(id: &str) -> BrokerError {
    BrokerError::not_found("schedule", id)
}

impl Broker {
    /// Creates a schedule, or replaces the one with the same `Upstash-Schedule-Id` entirely.
    /// Returns its id and whether the request was a duplicate.
    pub fn create_schedule(&self, user: UserId, req: ScheduleRequest) -> Result<(Arc<str>, bool)> {
        let ScheduleRequest {
            destination,
            parsed,
            body,
            caller_ip,
        } = req;
        let cron_text = parsed
            .cron
            .as_deref()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| {
                BrokerError::Invalid(
                    "the Upstash-Cron header is required (e.g. \"*/5 * * * *\")".into(),
                )
            })?;
        let cron = CronSpec::parse(cron_text)
            .map_err(|why| BrokerError::Invalid(format!("invalid Upstash-Cron header: {why}")))?;
        let (target, is_group) = match destination {
            Destination::Url(u) => (u, false),
            Destination::Group(g) => (g, true),
            Destination::Api(a) => {
                return Err(BrokerError::Invalid(format!(
                    "api/{a} destinations cannot be scheduled"
                )));
            }
        };
        let id: Arc<str> = match &parsed.schedule_id {
            Some(id) if !valid_schedule_id(id) => {
                return Err(BrokerError::Invalid(format!(
                    "invalid Upstash-Schedule-Id \"{id}\": only letters, digits, '.', '_' and '-' are allowed"
                )));
            }
            Some(id) => id.as_str().into(),
            None => format!("scd_{}", random_base62(26)).into(),
        };
        if let Some(q) = &parsed.queue_name {
            validate_name(q, "Upstash-Queue-Name")?;
        }
        let dedup_key = parsed.dedup.as_ref().map(|d| {
            format!(
                "schedule:{}",
                dedup::key(d, &target, &body, &parsed.options.headers)
            )
        });
        let quota = self.config().quota.clone();
        self.with_core(|core, now, _| {
            if let Some(key) = &dedup_key
                && let Some(Published::Schedule(existing)) = core.store.dedup_get(user, key, now) {
                    return Ok((existing, true));
                }
            if is_group && core.store.url_group(user, &target).is_none() {
                return Err(BrokerError::not_found("url group", target.as_str()));
            }
            let replacing = core.store.schedule(user, &id).is_some();
            if replacing {
                core.timer_went_stale();
            }
            if !replacing && core.store.schedule_count(user) >= quota.max_schedules {
                return Err(BrokerError::quota(&quota, quota.max_schedules, "schedules"));
            }
            if let Some(fc) = &parsed.options.flow_control {
                core.remember_flow(user, fc, now);
            }
            let schedule = Schedule {
                id: id.clone(),
                cron,
                destination: target.as_str().into(),
                is_group,
                options: parsed.options.clone(),
                body,
                delay_ms: parsed.delay_ms,
                queue: parsed.queue_name.as_deref().map(Into::into),
                created_at: now,
                caller_ip,
                paused: false,
                last_schedule_time: None,
                next_schedule_time: None,
                last_states: Vec::new(),
                error: None,
            };
            core.store.put_schedule(user, schedule);
            core.plan_tick(user, &id, now);
            if let Some(key) = dedup_key {
                core.store.dedup_put(user, key, now + dedup::WINDOW_MS, Published::Schedule(id.clone()), now);
            }
            tracing::info!(schedule_id = %id, destination = %target, cron = cron_text, "schedule saved");
            Ok((id, false))
        })
    }

    pub fn schedules(&self, user: UserId) -> Vec<Schedule> {
        self.lock()
            .store
            .schedules(user)
            .into_iter()
            .cloned()
            .collect()
    }

    pub fn schedule(&self, user: UserId, id: &str) -> Result<Schedule> {
        self.lock()
            .store
            .schedule(user, id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// Messages already produced keep going; deleting an unknown id succeeds.
    pub fn delete_schedule(&self, user: UserId, id: &str) {
        let mut core = self.lock();
        if core.store.remove_schedule(user, id).is_some() {
            core.timer_went_stale();
        }
    }

    /// A paused schedule skips its ticks (they are not replayed on resume).
    pub fn set_schedule_paused(&self, user: UserId, id: &str, paused: bool) -> Result<()> {
        let mut core = self.lock();
        let s = core
            .store
            .schedule_mut(user, id)
            .ok_or_else(|| not_found(id))?;
        s.paused = paused;
        Ok(())
    }
}
