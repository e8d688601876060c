//! The broker's workflow operations: publishes of workflow messages, the run routes
//! (`/v2/workflows/runs`), waits and notifications, `/v2/trigger`. Each is one short locked
//! step on the core, like the other operations.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::Broker;
use super::core::{Notified, WorkflowPublish};
use super::error::BrokerError;
use super::ops::PublishResult;
use crate::domain::header_list::HeaderList;
use crate::domain::options::{Pair, Parsed};
use crate::domain::workflow::config::RunDefaults;
use crate::domain::workflow::filter::RunFilter;
use crate::domain::workflow::tag::{self, CallType};
use crate::domain::workflow::wait::Waiter;
use crate::ids::MessageId;
use crate::store::Published;
use crate::users::UserId;

type Result<T> = std::result::Result<T, BrokerError>;

/// The configuration a workflow message inherits from its run (below its own headers).
pub enum Inherited {
    Step(Arc<RunDefaults>),
    /// For `context.call`: moved to the callback level.
    Call(Vec<(String, String)>),
}

impl Inherited {
    pub fn pairs(&self) -> &[(String, String)] {
        match self {
            Self::Step(d) => d.for_step(),
            Self::Call(p) => p,
        }
    }
}

/// A run started (or found already running) by a trigger.
#[derive(Debug)]
pub struct Started {
    pub run_id: Arc<str>,
    pub created_at: i64,
    pub deduplicated: bool,
}

impl Broker {
    /// A publish (or batch item) carrying `Upstash-Workflow-RunId`.
    pub(super) fn publish_workflow(
        &self,
        user: UserId,
        url: String,
        parsed: Parsed,
        body: Bytes,
        caller_ip: IpAddr,
        queue: Option<String>,
    ) -> Result<PublishResult> {
        let admitted = self.with_core(|core, now, out| {
            let p = WorkflowPublish {
                url: url.into(),
                not_before: parsed.first_attempt_at(now),
                options: parsed.options,
                body,
                caller_ip,
                queue: queue.map(Into::into),
                unknown_sdk: false,
            };
            core.workflow_publish(user, p, now, out)
        })?;
        Ok(PublishResult {
            published: Published::Message(admitted.message_id),
            deduplicated: admitted.deduplicated,
        })
    }

    /// What a publish with these headers inherits from its run, if it is a later message of
    /// an active run.
    pub fn workflow_defaults(&self, user: UserId, pairs: &[Pair<'_>]) -> Option<Inherited> {
        let (run_id, init, call_type) = tag::peek(pairs)?;
        if init {
            return None;
        }
        let core = self.lock();
        let defaults = core
            .store
            .workflow_runs(user)
            .active(run_id)?
            .defaults
            .clone();
        Some(match call_type {
            CallType::ToCallback => Inherited::Call(defaults.for_call()),
            _ => Inherited::Step(defaults),
        })
    }

    /// `POST /v2/trigger/{url}`: starts a run without an SDK client; the first delivery
    /// tells the SDK so (`Upstash-Workflow-Unknown-Sdk`).
    pub fn workflow_trigger(
        &self,
        user: UserId,
        url: String,
        parsed: Parsed,
        body: Bytes,
        caller_ip: IpAddr,
    ) -> Result<Started> {
        let run_id = parsed
            .options
            .workflow
            .as_ref()
            .map(|t| t.run_id.clone())
            .ok_or_else(|| BrokerError::Invalid("a trigger needs a workflow run id".into()))?;
        let admitted = self.with_core(|core, now, out| {
            let p = WorkflowPublish {
                url: url.into(),
                not_before: parsed.first_attempt_at(now),
                options: parsed.options,
                body,
                caller_ip,
                queue: None,
                unknown_sdk: true,
            };
            core.workflow_publish(user, p, now, out)
        })?;
        Ok(Started {
            run_id,
            created_at: admitted.run_created_at,
            deduplicated: admitted.deduplicated,
        })
    }

    /// `GET /v2/workflows/runs/{id}`: the raw steps of an active run, as JSON.
    pub fn workflow_steps(&self, user: UserId, id: &str) -> Result<Vec<u8>> {
        // A copy of the steps shares their bytes; the listing (a large run's whole history)
        // is written after the lock is released.
        let steps = self
            .lock()
            .store
            .workflow_runs(user)
            .active(id)
            .map(|r| r.steps.clone())
            .ok_or_else(|| BrokerError::not_found("workflow run", id))?;
        Ok(steps.listing())
    }

    /// `DELETE /v2/workflows/runs/{id}?cancel=…`.
    pub fn workflow_end(&self, user: UserId, id: &str, cancel: bool, body: Bytes) -> Result<()> {
        self.with_core(|core, now, out| core.workflow_end(user, id, cancel, body, now, out))
    }

    /// `DELETE /v2/workflows/runs`: how many runs were cancelled.
    pub fn workflow_cancel(&self, user: UserId, filter: &RunFilter) -> usize {
        self.with_core(|core, now, out| core.workflow_cancel_many(user, filter, now, out))
    }

    /// `POST /v2/wait/{eventId}`.
    pub fn workflow_wait(
        &self,
        user: UserId,
        event_id: &str,
        headers: HeaderList,
        body: &[u8],
    ) -> Result<Option<MessageId>> {
        self.with_core(|core, now, out| core.workflow_wait(user, event_id, headers, body, now, out))
    }

    /// `POST /v2/notify/…` and webhook calls.
    pub fn workflow_notify(
        &self,
        user: UserId,
        event_id: &str,
        data: Bytes,
        run: Option<&str>,
    ) -> Result<Vec<Notified>> {
        self.with_core(|core, now, out| core.workflow_notify(user, event_id, data, run, now, out))
    }

    /// `GET /v2/waiters/{eventId}`.
    pub fn workflow_waiters(&self, user: UserId, event_id: &str) -> Vec<Waiter> {
        self.lock().workflow_waiters(user, event_id)
    }
}
