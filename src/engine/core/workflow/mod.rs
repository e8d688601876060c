//! Workflow runs in the core: the rules of `domain::workflow` applied when a message of a run
//! is published, accepted, started, fails or finishes. Each hook is one call from the generic
//! path (`accept`, `start`, `complete`, `finish`, `callback`), as for queues and flow control.

mod admit;
mod end;
mod events;
mod recover;

pub use admit::WorkflowPublish;
pub use end::next_step;
pub use events::Notified;
pub use recover::{Recovered, Recovery, is_override};

use std::sync::Arc;

use super::{Core, End};
use crate::domain::message::{CallbackTarget, DeliveryOptions, MessageSpec, Response};
use crate::domain::workflow::dlq::RunRef;
use crate::domain::workflow::meta::StepMeta;
use crate::domain::workflow::run::FailureFunction;
use crate::domain::workflow::steps::DeliveredBody;
use crate::domain::workflow::trace::{Answer, error_of};
use crate::domain::workflow::{CallType, FailureFields, FailureState, Features, WorkflowTag};
use crate::users::UserId;

/// What a delivery of a workflow message adds: the run's headers and, for a step message,
/// the steps array as its body.
#[derive(Debug)]
pub struct WorkflowDelivery {
    /// `None`: the message's own body (callbacks are delivered unchanged).
    pub body: Option<DeliveredBody>,
    pub headers: Vec<(&'static str, String)>,
}

impl Core {
    /// A message was accepted: a step joins its run's history, a failure callback becomes the
    /// run's failure-function state. (Init messages are recorded when their run is created.)
    pub(super) fn workflow_accepted(&mut self, user: UserId, spec: &Arc<MessageSpec>, now: i64) {
        let Some(tag) = spec.options.workflow.as_deref() else {
            return;
        };
        let runs = self.store.workflow_runs_mut(user);
        match tag.call_type {
            CallType::Step if tag.init => {}
            CallType::FailureCall => {
                if let Some(run) = runs.reported_on(tag) {
                    run.failure = Some(FailureFunction {
                        message_id: spec.id,
                        url: spec.url.clone(),
                        state: FailureState::InProgress,
                        response: None,
                        errors: Vec::new(),
                    });
                }
            }
            call_type => {
                if let Some(run) = runs.active_mut(&tag.run_id) {
                    let meta = match call_type {
                        CallType::Step => StepMeta::parse(&spec.body).map(Arc::from),
                        CallType::ToCallback => Some(Arc::new(call_meta(spec))),
                        _ => None,
                    };
                    run.steps.push(spec.id, call_type, &spec.body, meta, now);
                    run.live.push(spec.id);
                }
            }
        }
    }

    /// An attempt of a run's message came back: a failed one joins the run's errors (the
    /// failure function's, for its message); the failure function's answer is kept.
    pub(super) fn workflow_attempted(
        &mut self,
        user: UserId,
        spec: &MessageSpec,
        error: Option<&str>,
        response: Option<&Response>,
        now: i64,
    ) {
        let Some(tag) = spec.options.workflow.as_deref() else {
            return;
        };
        let runs = self.store.workflow_runs_mut(user);
        if tag.call_type == CallType::FailureCall {
            let Some(f) = runs
                .reported_on(tag)
                .and_then(|r| r.failure.as_mut())
                .filter(|f| f.message_id == spec.id)
            else {
                return;
            };
            f.response = response.map(Answer::of);
            if error.is_some() {
                f.errors
                    .push(error_of(&spec.id.to_string(), error, response, now));
            }
            return;
        }
        if let Some(run) = runs.active_mut(&tag.run_id)
            && error.is_some()
        {
            run.trace
                .push_error(error_of(&spec.id.to_string(), error, response, now));
        }
    }

    /// The run a failed message's DLQ entry belongs to: a step (or call result) of a run.
    /// `None` for other messages; `Some(None)` for a run's other messages, which do not go
    /// to any DLQ (a failed failure function is its run's entry's state, a failed
    /// `context.call` request is reported to the run as the call's result).
    pub(super) fn workflow_dlq_ref(
        &self,
        user: UserId,
        spec: &MessageSpec,
    ) -> Option<Option<RunRef>> {
        let tag = spec.options.workflow.as_deref()?;
        if !matches!(tag.call_type, CallType::Step | CallType::FromCallback) {
            return Some(None);
        }
        let runs = self.store.workflow_runs(user);
        let run = runs.any(&tag.run_id);
        Some(Some(RunRef {
            run_id: tag.run_id.to_string(),
            created_at: run.map_or(spec.created_at, |r| r.created_at),
            url: run.map_or_else(|| spec.url.to_string(), |r| r.url.to_string()),
        }))
    }

    /// A delivery is starting: the run's headers, and the steps array for a step message.
    pub(super) fn workflow_delivery(
        &self,
        user: UserId,
        spec: &MessageSpec,
    ) -> Option<Box<WorkflowDelivery>> {
        let tag = spec.options.workflow.as_deref()?;
        if tag.call_type == CallType::ToCallback {
            // The third party of `context.call` gets the request unchanged.
            return None;
        }
        let runs = self.store.workflow_runs(user);
        let run = runs.any(&tag.run_id);
        let mut headers = vec![("upstash-workflow-runid", tag.run_id.to_string())];
        if let Some(run) = run {
            headers.push(("upstash-workflow-createdat", run.created_at.to_string()));
            headers.push(("upstash-workflow-url", run.url.to_string()));
            if run.unknown_sdk && run.is_active() && run.init_message() == Some(spec.id) {
                headers.push(("upstash-workflow-unknown-sdk", "true".to_string()));
            }
        }
        let body = (tag.call_type == CallType::Step).then(|| {
            let active = run.filter(|r| r.is_active());
            match active.and_then(|r| r.steps.delivered(r.steps.position(spec.id)?)) {
                // Too large to inline: an SDK that can fetch the steps itself gets none.
                Some(b)
                    if tag.features.can_lazy_fetch()
                        && b.len > self.config.quota.max_message_size =>
                {
                    DeliveredBody::empty()
                }
                Some(b) => b,
                // The run ended while this message waited: the SDK's fetch of the steps
                // answers "run ended".
                None => DeliveredBody::empty(),
            }
        });
        Some(Box::new(WorkflowDelivery { body, headers }))
    }

    /// A message of a run reached a terminal state.
    pub(super) fn workflow_finished(&mut self, user: UserId, spec: &MessageSpec, end: End) {
        let Some(tag) = spec.options.workflow.as_deref() else {
            return;
        };
        let runs = self.store.workflow_runs_mut(user);
        if let Some(run) = runs.active_mut(&tag.run_id) {
            run.live.retain(|m| *m != spec.id);
        }
        if tag.call_type == CallType::FailureCall
            && let Some(run) = runs.reported_on(tag)
            && let Some(f) = run.failure.as_mut().filter(|f| f.message_id == spec.id)
        {
            f.state = match end {
                End::Delivered => FailureState::Success,
                End::Failed => FailureState::Fail,
                End::Canceled => FailureState::Canceled,
            };
        }
    }

    /// The run fields of a failure-callback body, when the failed message is a run's step
    /// (of the run with its id now: the one it just failed).
    pub(super) fn workflow_failure_fields(
        &self,
        user: UserId,
        source: &MessageSpec,
    ) -> Option<FailureFields> {
        self.workflow_failure_fields_of(user, source, None)
    }

    /// The same for the run created at `created_at`, when given: a failure function run
    /// again later, when the run's id may be in use by a newer run.
    pub(super) fn workflow_failure_fields_of(
        &self,
        user: UserId,
        source: &MessageSpec,
        created_at: Option<i64>,
    ) -> Option<FailureFields> {
        let tag = source.options.workflow.as_deref()?;
        if !matches!(tag.call_type, CallType::Step | CallType::FromCallback) {
            return None;
        }
        let runs = self.store.workflow_runs(user);
        let run = match created_at {
            Some(at) => runs.exact(&tag.run_id, at)?,
            None => runs.any(&tag.run_id)?,
        };
        // Without `InitialBody` (the deprecated qstash-js workflow) the SDK re-reads the
        // body it was delivered.
        let source_body = if tag.features.has(Features::INITIAL_BODY) {
            run.initial_body()
        } else {
            let delivered = run
                .steps
                .position(source.id)
                .and_then(|i| run.steps.delivered(i));
            match delivered {
                Some(b) => b.parts.concat().into(),
                None => source.body.clone(),
            }
        };
        Some(FailureFields {
            run_id: run.id.clone(),
            created_at: run.created_at,
            url: run.url.clone(),
            source_body,
        })
    }

    /// The result of a `context.call` whose run has ended has nowhere to go (a step of an
    /// ended run is refused): its callback is not created.
    pub(super) fn workflow_drops_callback(&self, user: UserId, target: &CallbackTarget) -> bool {
        target.options.workflow.as_deref().is_some_and(|tag| {
            tag.call_type == CallType::FromCallback
                && self.store.workflow_runs(user).active(&tag.run_id).is_none()
        })
    }
}

/// A failure callback's options naming the run it reports on by creation time too.
pub(super) fn failure_options(
    options: &Arc<DeliveryOptions>,
    run_created_at: i64,
) -> Arc<DeliveryOptions> {
    match options.workflow.as_deref() {
        Some(tag) if tag.call_type == CallType::FailureCall => {
            let mut named = (**options).clone();
            named.workflow = Some(Box::new(WorkflowTag {
                run_created_at: Some(run_created_at),
                ..tag.clone()
            }));
            Arc::new(named)
        }
        _ => options.clone(),
    }
}

/// What the logs show of a `context.call` request: its URL, method, headers and body.
fn call_meta(spec: &MessageSpec) -> StepMeta {
    StepMeta {
        step_type: "Call".into(),
        call_url: Some(spec.url.to_string()),
        call_method: Some(spec.options.method.as_str().to_string()),
        call_headers: serde_json::to_value(&spec.options.headers).ok(),
        // The SDK names the call's step on the result's callback; the logs pair the result
        // with its request by it.
        step_id: spec
            .options
            .callback
            .as_ref()
            .and_then(|c| c.options.headers.get_str("upstash-workflow-stepid"))
            .and_then(|id| id.trim().parse().ok())
            .unwrap_or(0),
        ..StepMeta::default()
    }
}
