//! Waits and notifications: a run waiting for an event gets a step when the event comes
//! (`notify`, a webhook call) or when its timeout passes. A run-scoped notification that
//! finds no waiter is kept until the run waits for it.

use std::sync::Arc;

use bytes::Bytes;

use crate::domain::header_list::HeaderList;
use crate::domain::workflow::meta::wait_result;
use crate::domain::workflow::wait::Waiter;
use crate::engine::core::{Core, Dispatch};
use crate::engine::error::BrokerError;
use crate::engine::timers::Wake;
use crate::ids::MessageId;
use crate::users::UserId;

/// One waiter a notification reached, and the step message it got.
#[derive(Debug)]
pub struct Notified {
    pub waiter: Waiter,
    pub message_id: Option<MessageId>,
}

impl Core {
    /// `POST /v2/wait/{eventId}` from the run named in `headers`; a notification stored
    /// for it is delivered at once (its message id returned).
    pub fn workflow_wait(
        &mut self,
        user: UserId,
        event_id: &str,
        headers: HeaderList,
        body: &[u8],
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<Option<MessageId>, BrokerError> {
        let run_id = headers
            .get_str("upstash-workflow-runid")
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                BrokerError::Invalid(
                    "missing Upstash-Workflow-RunId header: a wait belongs to a workflow run"
                        .into(),
                )
            })?
            .to_string();
        let runs = self.store.workflow_runs_mut(user);
        if runs.active(&run_id).is_none() {
            return Err(BrokerError::Invalid(format!(
                "workflow run {run_id} is not active: it finished, was cancelled or never started"
            )));
        }
        let waiter = Waiter::parse(run_id.as_str().into(), event_id, body, headers, now)?;
        if let Some(data) = runs.take_stored_event(&run_id, event_id) {
            return Ok(self.deliver_event(user, &waiter, Some(&data), now, out));
        }
        if runs.waiter(&run_id, event_id).is_some() {
            self.timer_went_stale();
        }
        let runs = self.store.workflow_runs_mut(user);
        let wake = Wake::WaitTimeout(user, waiter.run_id.clone(), waiter.event_id.clone());
        let deadline = waiter.deadline_ms;
        runs.add_waiter(waiter);
        self.timers.push(deadline, wake);
        Ok(None)
    }

    /// Notifies the waiters of `event_id`: all runs' (`run == None`, lost when nobody
    /// waits), or one run's (stored when it does not wait yet).
    pub fn workflow_notify(
        &mut self,
        user: UserId,
        event_id: &str,
        data: Bytes,
        run: Option<&str>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<Vec<Notified>, BrokerError> {
        let runs = self.store.workflow_runs_mut(user);
        let waiters = match run {
            None => runs.take_waiters(event_id),
            Some(run_id) => match runs.remove_waiter(run_id, event_id) {
                Some(w) => vec![w],
                None if runs.active(run_id).is_some() => {
                    runs.store_event(run_id.into(), event_id.into(), data);
                    return Ok(Vec::new());
                }
                None => return Err(BrokerError::not_found("workflow run", run_id)),
            },
        };
        let mut notified = Vec::with_capacity(waiters.len());
        for w in waiters {
            self.timer_went_stale();
            let message_id = self.deliver_event(user, &w, Some(&data), now, out);
            notified.push(Notified {
                waiter: w,
                message_id,
            });
        }
        Ok(notified)
    }

    /// The waiters of an event, in registration order.
    pub fn workflow_waiters(&self, user: UserId, event_id: &str) -> Vec<Waiter> {
        self.store.workflow_runs(user).waiters(event_id).to_vec()
    }

    /// A wait's deadline came (timer).
    pub(in crate::engine::core) fn wait_timed_out(
        &mut self,
        user: UserId,
        run_id: &Arc<str>,
        event_id: &Arc<str>,
        at: i64,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        let runs = self.store.workflow_runs_mut(user);
        if runs
            .waiter(run_id, event_id)
            .is_none_or(|w| w.deadline_ms != at)
        {
            return;
        }
        if let Some(w) = runs.remove_waiter(run_id, event_id) {
            self.deliver_event(user, &w, None, now, out);
        }
    }

    /// The wait's result step: the event data, or (`None`) the timeout, which goes to the
    /// timeout URL with the timeout headers.
    fn deliver_event(
        &mut self,
        user: UserId,
        w: &Waiter,
        data: Option<&[u8]>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Option<MessageId> {
        let body = wait_result(&w.step, &w.event_id, (&w.timeout, w.deadline_ms), data);
        let (url, headers) = match (data, &w.timeout_url) {
            (None, Some(url)) if !w.timeout_headers.is_empty() => (url.clone(), &w.timeout_headers),
            (None, Some(url)) => (url.clone(), &w.headers),
            _ => (w.url.clone(), &w.headers),
        };
        self.run_step_message(user, &w.run_id, (url, headers), body, now, out)
    }
}
