//! How runs end: the SDK reports success (`DELETE …?cancel=false`), someone cancels, or a
//! step fails for good. Either way the run's waiting messages go (calls marked
//! `WF_NoDelete` survive a success), its waiters are dropped, and an invoker learns the
//! outcome.

use bytes::Bytes;

use crate::domain::message::{Message, MessageSpec, Phase, Response};
use crate::domain::workflow::filter::RunFilter;
use crate::domain::workflow::meta::invoke_result;
use crate::domain::workflow::trace::{Answer, NextState, NextStep};
use crate::domain::workflow::{CallType, Features, RunState};
use crate::engine::core::{Core, Dispatch};
use crate::engine::error::BrokerError;
use crate::ids::MessageId;
use crate::users::UserId;

impl Core {
    /// `DELETE /v2/workflows/runs/{id}`: success (`cancel == false`, `body` = the route's
    /// result) or cancellation. A run that already ended answers OK again: the SDK repeats
    /// the call when the final step's delivery is retried.
    pub fn workflow_end(
        &mut self,
        user: UserId,
        id: &str,
        cancel: bool,
        body: Bytes,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<(), BrokerError> {
        let runs = self.store.workflow_runs(user);
        if runs.active(id).is_some() {
            let state = if cancel {
                RunState::Canceled
            } else {
                RunState::Success
            };
            self.end_run(user, id, state, Some(body), None, now, out);
            return Ok(());
        }
        if runs.ended(id).is_some() {
            return Ok(());
        }
        Err(BrokerError::not_found("workflow run", id))
    }

    /// Bulk cancel; returns how many runs were cancelled.
    pub fn workflow_cancel_many(
        &mut self,
        user: UserId,
        filter: &RunFilter,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> usize {
        let ids = self
            .store
            .workflow_runs(user)
            .select(|r| filter.matches(r), filter.limit());
        for id in &ids {
            self.end_run(user, id, RunState::Canceled, None, None, now, out);
        }
        ids.len()
    }

    /// A step (or call result) of a run failed for good: the run fails with it.
    pub(in crate::engine::core) fn workflow_failed(
        &mut self,
        user: UserId,
        spec: &MessageSpec,
        dlq_id: &str,
        response: Option<&Response>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        let Some(tag) = spec.options.workflow.as_deref() else {
            return;
        };
        if !matches!(tag.call_type, CallType::Step | CallType::FromCallback) {
            return;
        }
        let Some(run) = self.store.workflow_runs_mut(user).active_mut(&tag.run_id) else {
            return;
        };
        if !run.live.contains(&spec.id) {
            return;
        }
        run.dlq_id = Some(dlq_id.into());
        run.trace.failed_with = response.map(Answer::of);
        let body = response.map(|r| r.body.clone());
        let run_id = run.id.clone();
        self.end_run(
            user,
            &run_id,
            RunState::Failed,
            body,
            Some(spec.id),
            now,
            out,
        );
    }

    /// Ends an active run in `state`; `result` is the success result or the failing answer
    /// (for the invoker); `failing` is the message being failed by the caller right now.
    #[allow(clippy::too_many_arguments)]
    fn end_run(
        &mut self,
        user: UserId,
        id: &str,
        state: RunState,
        result: Option<Bytes>,
        failing: Option<MessageId>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        let runs = self.store.workflow_runs_mut(user);
        let Some(run) = runs.active_mut(id) else {
            return;
        };
        let live = std::mem::take(&mut run.live);
        run.end(state, now);
        let mut ended_next = Vec::new();
        if state == RunState::Success {
            run.response = result.clone();
        }
        let invoker = run.invoker.clone();
        let child = (run.id.clone(), run.url.clone(), run.created_at);
        let stale_waits = run.waiting_on.len();
        for m in live.iter().filter(|m| Some(**m) != failing) {
            if let Some(msg) = self.store.message(user, *m)
                && !keeps(state, msg)
            {
                ended_next.push(next_step(msg, NextState::Canceled));
            }
        }
        if let Some(m) = failing.and_then(|m| self.store.message(user, m)) {
            ended_next.push(next_step(m, NextState::Failed));
        }
        let runs = self.store.workflow_runs_mut(user);
        if let Some(run) = runs.active_mut(id) {
            run.trace.ended_next = ended_next;
        }
        runs.retire(id);
        for _ in 0..stale_waits {
            self.timer_went_stale();
        }
        self.stats.workflow_run(user, state);
        let (user_name, destination) = (user.info().name, &*child.1);
        match state {
            RunState::Failed => tracing::warn!(
                workflow_run_id = id,
                user = user_name,
                destination,
                "workflow run failed"
            ),
            RunState::Success => tracing::info!(
                workflow_run_id = id,
                user = user_name,
                destination,
                "workflow run finished"
            ),
            _ => tracing::info!(
                workflow_run_id = id,
                user = user_name,
                destination,
                state = state.as_str(),
                "workflow run ended"
            ),
        }
        for m in live.into_iter().filter(|m| Some(*m) != failing) {
            let Some(msg) = self.store.message(user, m) else {
                continue;
            };
            if !keeps(state, msg) {
                self.cancel(user, m, now);
            }
        }
        if let Some(inv) = invoker {
            let body = invoke_result(
                &inv.step,
                result.as_deref(),
                state == RunState::Failed,
                state == RunState::Canceled,
                (&child.0, &child.1, child.2),
            );
            self.run_step_message(
                user,
                &inv.run_id,
                (inv.url.clone(), &inv.headers),
                body,
                now,
                out,
            );
        }
    }
}

/// A success leaves alone what is in flight (it may be the call that reported the success)
/// and `context.call` requests marked to survive the run.
fn keeps(state: RunState, msg: &Message) -> bool {
    state == RunState::Success
        && (msg.phase == Phase::InFlight
            || msg
                .spec
                .options
                .workflow
                .as_deref()
                .is_some_and(|t| t.features.has(Features::NO_DELETE)))
}

/// How an unfinished message of the run shows in the `next` group.
pub fn next_step(msg: &Message, ended: NextState) -> NextStep {
    let o = &msg.spec.options;
    NextStep {
        message_id: msg.spec.id.to_string(),
        state: ended,
        retries: o.retries,
        retry_delay: o.retry_delay.as_ref().map(|r| r.source().to_string()),
    }
}
