//! The broker's run logs and workflow DLQ: listing runs with their steps, the workflow DLQ
//! entries with their run's failure-function state, and the recoveries (resume, restart,
//! failure function retry). Each is one short locked step on the core.

use serde_json::Value;

use super::Broker;
use super::core::{Core, Recovered, Recovery, next_step};
use super::error::BrokerError;
use crate::domain::dlq::DlqEntry;
use crate::domain::message::Phase;
use crate::domain::workflow::dlq::{MAX_RECOVER, WorkflowDlqFilter};
use crate::domain::workflow::log_filter::{LogFilter, cursor_after};
use crate::domain::workflow::logs::{Context, Invoked, invoked_ids, run_json};
use crate::domain::workflow::run::{FailureFunction, Run};
use crate::domain::workflow::trace::NextState;
use crate::store::Page;
use crate::users::UserId;

type Result<T> = std::result::Result<T, BrokerError>;

/// DLQ entries per page unless `count` says otherwise, and at most.
const DLQ_PAGE: usize = 100;

/// A workflow DLQ entry and its run's failure function, if the run is still known.
pub struct WorkflowDlqEntry {
    pub entry: DlqEntry,
    pub failure: Option<FailureFunction>,
}

fn parse_dlq_cursor(c: Option<&str>) -> Result<Option<u64>> {
    c.map(|c| {
        c.parse::<u64>()
            .map_err(|_| BrokerError::Invalid(format!("invalid cursor \"{c}\"")))
    })
    .transpose()
}

impl Core {
    /// What one run's log entry is made of: a copy of the run (its history shared, not
    /// copied) and what the engine knows of it now. The JSON is built from it outside the
    /// lock.
    fn run_log(&self, user: UserId, run: &Run) -> (Run, Context) {
        let runs = self.store.workflow_runs(user);
        let live = if run.is_active() {
            run.live
                .iter()
                .filter_map(|m| self.store.message(user, *m))
                .map(|msg| {
                    let waiting_retry =
                        msg.retried > 0 && matches!(msg.phase, Phase::Waiting { .. });
                    let state = if waiting_retry {
                        NextState::Retry
                    } else {
                        NextState::Progress
                    };
                    next_step(msg, state)
                })
                .collect()
        } else {
            Vec::new()
        };
        let waiters = run
            .waiting_on
            .iter()
            .filter_map(|e| runs.waiter(&run.id, e).cloned())
            .collect();
        let invoked = invoked_ids(run)
            .filter_map(|id| Some((id.to_string(), Invoked::of(runs.any(id)?))))
            .collect();
        let failure_next_delivery = run
            .failure
            .as_ref()
            .and_then(|f| self.store.message(user, f.message_id))
            .and_then(|m| match m.phase {
                Phase::Waiting { at } if m.retried > 0 => Some(at),
                _ => None,
            });
        (
            run.clone(),
            Context {
                live,
                waiters,
                failure_next_delivery,
                invoked,
            },
        )
    }

    fn failure_state(&self, user: UserId, e: &DlqEntry) -> Option<FailureFunction> {
        let r = e.workflow.as_ref()?;
        self.store
            .workflow_runs(user)
            .exact(&r.run_id, r.created_at)?
            .failure
            .clone()
    }

    fn workflow_dlq_select(
        &mut self,
        user: UserId,
        filter: &WorkflowDlqFilter,
        now: i64,
        count: usize,
    ) -> Result<Page<DlqEntry>> {
        let before = parse_dlq_cursor(filter.base.cursor.as_deref())?;
        let count = count.max(filter.base.dlq_ids.len());
        let cutoff = self.dlq_cutoff(now);
        self.store.expire_dlq(user, cutoff);
        let store = &*self.store;
        Ok(store.dlq_page(
            user,
            before,
            &mut |e| {
                // The run's failure-function state costs a lookup: only for the filter by it.
                let by_state = !filter.failure_states.is_empty();
                let state = e.workflow.as_ref().filter(|_| by_state).and_then(|r| {
                    store
                        .workflow_runs(user)
                        .exact(&r.run_id, r.created_at)?
                        .failure
                        .as_ref()
                        .map(|f| f.state.as_str())
                });
                filter.matches(e, state)
            },
            count,
        ))
    }
}

impl Broker {
    /// `GET /v2/workflows/events`: a page of runs, newest first, and the next page's cursor.
    pub fn workflow_logs(&self, user: UserId, filter: &LogFilter) -> (Vec<Value>, Option<String>) {
        let (snapshots, cursor) = self.workflow_log_snapshots(user, filter);
        let page = snapshots.iter().map(|(r, cx)| run_json(r, cx)).collect();
        (page, cursor)
    }

    /// The selected runs, copied under the lock (cheaply: their bytes and step fields are
    /// shared), so decoding and serialising their steps holds nobody up.
    fn workflow_log_snapshots(
        &self,
        user: UserId,
        filter: &LogFilter,
    ) -> (Vec<(Run, Context)>, Option<String>) {
        let core = self.lock();
        let runs = core.store.workflow_runs(user);
        let mut selected: Vec<&Run> = runs
            .all()
            .filter(|r| filter.after_cursor(r) && filter.matches(r))
            .collect();
        selected.sort_unstable_by(|a, b| (b.created_at, &*b.id).cmp(&(a.created_at, &*a.id)));
        let more = selected.len() > filter.count;
        selected.truncate(filter.count);
        let cursor = more
            .then(|| selected.last().map(|r| cursor_after(r.created_at, &r.id)))
            .flatten();
        let snapshots = selected.iter().map(|r| core.run_log(user, r)).collect();
        (snapshots, cursor)
    }

    pub fn workflow_dlq_list(
        &self,
        user: UserId,
        filter: &WorkflowDlqFilter,
    ) -> Result<(Vec<WorkflowDlqEntry>, Option<u64>)> {
        let count = filter.base.count.unwrap_or(DLQ_PAGE).min(DLQ_PAGE);
        self.with_core(|core, now, _| {
            let page = core.workflow_dlq_select(user, filter, now, count)?;
            let items = page
                .items
                .into_iter()
                .map(|entry| WorkflowDlqEntry {
                    failure: core.failure_state(user, &entry),
                    entry,
                })
                .collect();
            Ok((items, page.next))
        })
    }

    pub fn workflow_dlq_get(&self, user: UserId, dlq_id: &str) -> Result<WorkflowDlqEntry> {
        self.with_core(|core, now, _| {
            let cutoff = core.dlq_cutoff(now);
            core.store.expire_dlq(user, cutoff);
            let entry = core
                .store
                .dlq(user, dlq_id)
                .filter(|e| e.workflow.is_some())
                .cloned()?;
            Some(WorkflowDlqEntry {
                failure: core.failure_state(user, &entry),
                entry,
            })
        })
        .ok_or_else(|| BrokerError::not_found("workflow dlq message", dlq_id))
    }

    pub fn workflow_dlq_delete(&self, user: UserId, dlq_id: &str) -> Result<()> {
        self.with_core(|core, _, _| {
            if core
                .store
                .dlq(user, dlq_id)
                .is_some_and(|e| e.workflow.is_some())
            {
                core.store.remove_dlq(user, dlq_id)
            } else {
                None
            }
        })
        .map(|_| ())
        .ok_or_else(|| BrokerError::not_found("workflow dlq message", dlq_id))
    }

    /// Deletes the selected entries (a page of them for a filter); the count and the cursor
    /// of the rest.
    pub fn workflow_dlq_delete_many(
        &self,
        user: UserId,
        filter: &WorkflowDlqFilter,
    ) -> Result<(usize, Option<u64>)> {
        let count = filter.base.bulk_count()?.unwrap_or(DLQ_PAGE);
        self.with_core(|core, now, _| {
            let page = core.workflow_dlq_select(user, filter, now, count)?;
            let deleted = page
                .items
                .iter()
                .filter(|e| core.store.remove_dlq(user, &e.dlq_id).is_some())
                .count();
            Ok((deleted, page.next))
        })
    }

    /// Resumes or restarts the selected entries' runs (at most [`MAX_RECOVER`] a call).
    pub fn workflow_recover(
        &self,
        user: UserId,
        filter: &WorkflowDlqFilter,
        how: Recovery,
        overrides: &[(String, String)],
    ) -> Result<(Vec<Recovered>, Option<u64>)> {
        let count = filter.base.count.unwrap_or(MAX_RECOVER).min(MAX_RECOVER);
        if filter.base.dlq_ids.len() > MAX_RECOVER {
            return Err(BrokerError::Invalid(format!(
                "invalid dlqIds: at most {MAX_RECOVER} runs are resumed or restarted at a time"
            )));
        }
        self.with_core(|core, now, out| {
            let page = core.workflow_dlq_select(user, filter, now, count)?;
            if let Some(missing) = filter
                .base
                .dlq_ids
                .iter()
                .find(|id| !page.items.iter().any(|e| *e.dlq_id == ***id))
            {
                return Err(BrokerError::not_found(
                    "workflow dlq message",
                    missing.as_str(),
                ));
            }
            // All or nothing: every entry is checked before any run starts.
            let plans = page
                .items
                .iter()
                .map(|e| core.workflow_recovery(user, &e.dlq_id, how, overrides, now))
                .collect::<Result<Vec<_>>>()?;
            let mut started = Vec::with_capacity(plans.len());
            for plan in plans {
                started.push(core.workflow_recover(user, plan, now, out)?);
            }
            Ok((started, page.next))
        })
    }

    /// `POST /v2/workflows/dlq/callback/{dlqId}`.
    pub fn workflow_retry_failure(&self, user: UserId, dlq_id: &str) -> Result<Recovered> {
        self.with_core(|core, now, out| core.workflow_retry_failure(user, dlq_id, now, out))
    }
}

impl Broker {
    /// `DELETE /v2/workflows/dlq/callback/{dlqId}`.
    pub fn workflow_cancel_failure(&self, user: UserId, dlq_id: &str) -> Result<()> {
        self.with_core(|core, now, _| core.workflow_cancel_failure(user, dlq_id, now))
    }
}
