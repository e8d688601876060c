//! Recovering a failed run from its workflow DLQ entry: `restart` (a new run from the initial
//! payload), `resume` (a new run that keeps the failed run's recorded steps but the failing
//! message, and delivers that message again), and re-running a failure function that failed.
//!
//! The new run's messages are configured as the SDK would have configured them: the run's
//! workflow headers, the forwarded SDK version and the run configuration kept from its Init
//! message, below the overrides given on the recovery request.

use std::sync::Arc;

use crate::domain::callback;
use crate::domain::dlq::DlqEntry;
use crate::domain::message::{MessageSpec, Origin, Trigger};
use crate::domain::options::{self, Pair};
use crate::domain::workflow::config::RunDefaults;
use crate::domain::workflow::run::{NewRun, Run};
use crate::domain::workflow::{CallType, FailureState};
use crate::engine::core::workflow::WorkflowPublish;
use crate::engine::core::{Core, Dispatch};
use crate::engine::error::BrokerError;
use crate::ids::{MessageId, random_base62};
use crate::users::UserId;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recovery {
    Resume,
    Restart,
}

/// The run a recovery started (or whose failure function it re-ran).
#[derive(Debug)]
pub struct Recovered {
    pub run_id: Arc<str>,
    pub created_at: i64,
}

/// A checked recovery, ready to start.
pub struct RecoveryPlan {
    dlq_id: Arc<str>,
    new_id: Arc<str>,
    /// A resume's new run, holding the old run's steps.
    resumed: Option<Run>,
    /// The message that starts (restart) or continues (resume) the new run.
    publish: WorkflowPublish,
}

/// The request headers a recovery takes as overrides of the run's configuration.
pub fn is_override(name: &str) -> bool {
    matches!(
        name,
        "upstash-retries"
            | "upstash-delay"
            | "upstash-not-before"
            | "upstash-retry-delay"
            | "upstash-flow-control-key"
            | "upstash-flow-control-value"
            | "upstash-label"
    ) || name.starts_with("upstash-failure-callback")
}

fn pairs_of(owned: &[(String, String)]) -> Vec<Pair<'_>> {
    owned
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect()
}

fn not_found(dlq_id: &str) -> BrokerError {
    BrokerError::not_found("workflow dlq message", dlq_id)
}

impl Core {
    fn workflow_entry(&self, user: UserId, dlq_id: &str) -> Result<DlqEntry, BrokerError> {
        self.store
            .dlq(user, dlq_id)
            .filter(|e| e.workflow.is_some())
            .cloned()
            .ok_or_else(|| not_found(dlq_id))
    }

    /// Checks and prepares the resume or restart of DLQ entry `dlq_id`'s run, changing
    /// nothing: everything that can refuse a recovery is decided here, so a bulk recovery
    /// refuses all its entries or starts them all. `overrides`: `(lower-case name, value)` of
    /// the request's configuration headers.
    pub fn workflow_recovery(
        &self,
        user: UserId,
        dlq_id: &str,
        how: Recovery,
        overrides: &[(String, String)],
        now: i64,
    ) -> Result<RecoveryPlan, BrokerError> {
        let entry = self.workflow_entry(user, dlq_id)?;
        let run_ref = entry.workflow.clone().ok_or_else(|| not_found(dlq_id))?;
        let old = self
            .store
            .workflow_runs(user)
            .exact(&run_ref.run_id, run_ref.created_at)
            .ok_or_else(|| {
                BrokerError::Invalid(format!(
                    "the history of workflow run {} is no longer kept: it cannot be resumed or restarted",
                    run_ref.run_id
                ))
            })?
            .clone();
        let tag = entry
            .spec
            .options
            .workflow
            .as_deref()
            .ok_or_else(|| not_found(dlq_id))?;
        // Resuming at the Init message is starting over.
        let failed_at = old.steps.position(entry.spec.id).filter(|i| *i > 0);
        let how = if failed_at.is_none() {
            Recovery::Restart
        } else {
            how
        };
        let new_id: Arc<str> = format!("wfr_{}", random_base62(21)).into();
        let init = how == Recovery::Restart;
        let call_type = if init { CallType::Step } else { tag.call_type };
        let features = tag.features.names();
        let mut pairs: Vec<(String, String)> = vec![
            ("upstash-workflow-runid".into(), new_id.to_string()),
            ("upstash-workflow-init".into(), init.to_string()),
            ("upstash-workflow-url".into(), old.url.to_string()),
            (
                "upstash-workflow-calltype".into(),
                call_type.as_str().into(),
            ),
            ("upstash-feature-set".into(), features),
        ];
        // The message's own forwarded headers (the SDK version, a call result's markers)
        // for a resume; a restart starts like a trigger, with the SDK version only.
        for (name, value) in entry.spec.options.headers.iter() {
            let name = name.to_ascii_lowercase();
            let value = String::from_utf8_lossy(value).into_owned();
            if name == "content-type" {
                pairs.push((name, value));
            } else if !init || name == "upstash-workflow-sdk-version" {
                pairs.push((format!("upstash-forward-{name}"), value));
            }
        }
        // The new run's configuration: the old run's below the overrides. The failing
        // message's own headers (a call result's markers among them) are that message's
        // only, not the run's.
        let mut config: Vec<(String, String)> = overrides
            .iter()
            .filter(|(n, _)| is_override(n))
            .cloned()
            .collect();
        let given = config.len();
        for (name, value) in old.defaults.for_step() {
            if config[..given].iter().any(|(n, _)| n == name) {
                continue;
            }
            // The failure function's headers name the run.
            let value = if name.ends_with("workflow-runid") && *value == *old.id {
                new_id.to_string()
            } else {
                value.clone()
            };
            config.push((name.clone(), value));
        }
        pairs.extend(config.iter().cloned());
        let borrowed = pairs_of(&pairs);
        let parsed = options::parse(&borrowed, &self.config.quota, now)?;
        let resumed = if let (Recovery::Resume, Some(at)) = (how, failed_at) {
            let mut run = Run::new(
                NewRun {
                    id: new_id.clone(),
                    url: old.url.clone(),
                    init_message: old.init_message().unwrap_or_else(MessageId::random),
                    initial_body: old.initial_body(),
                    defaults: Arc::new(RunDefaults::capture(&pairs_of(&config))),
                    labels: parsed.options.labels.clone(),
                    flow_control_key: parsed.options.flow_control.as_ref().map(|f| f.key.clone()),
                    caller_ip: old.caller_ip,
                    invoker: None,
                    unknown_sdk: false,
                },
                now,
            );
            // The Init message of the old run is not a message of this one.
            run.live.clear();
            // Every step the old run recorded but the failing message: with parallel
            // branches, the other branches' results may have been recorded after it.
            for (_, e) in old
                .steps
                .iter()
                .enumerate()
                .skip(1)
                .filter(|(i, _)| *i != at)
            {
                let body = old.steps.body(e);
                run.steps.push(
                    e.message_id,
                    e.call_type,
                    &body,
                    e.meta.clone(),
                    e.created_at,
                );
            }
            Some(run)
        } else {
            None
        };
        let body = if init {
            old.initial_body()
        } else {
            entry.spec.body.clone()
        };
        let p = WorkflowPublish {
            url: if init {
                old.url.clone()
            } else {
                entry.spec.url.clone()
            },
            not_before: parsed.first_attempt_at(now),
            options: parsed.options,
            body,
            caller_ip: old.caller_ip,
            queue: None,
            unknown_sdk: false,
        };
        Ok(RecoveryPlan {
            dlq_id: entry.dlq_id.clone(),
            new_id,
            resumed,
            publish: p,
        })
    }

    /// Starts a recovery [`Core::workflow_recovery`] prepared; its entry leaves the DLQ.
    pub fn workflow_recover(
        &mut self,
        user: UserId,
        plan: RecoveryPlan,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<Recovered, BrokerError> {
        let RecoveryPlan {
            dlq_id,
            new_id,
            resumed,
            publish,
        } = plan;
        if let Some(run) = resumed {
            tracing::info!(workflow_run_id = %new_id, "workflow run resumed");
            self.store.workflow_runs_mut(user).insert(run);
        }
        let admitted = self.workflow_publish(user, publish, now, out)?;
        self.store.remove_dlq(user, &dlq_id);
        Ok(Recovered {
            run_id: new_id,
            created_at: admitted.run_created_at,
        })
    }

    /// Runs the failure function of entry `dlq_id`'s run again, when it failed.
    pub fn workflow_retry_failure(
        &mut self,
        user: UserId,
        dlq_id: &str,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<Recovered, BrokerError> {
        let entry = self.workflow_entry(user, dlq_id)?;
        let run_ref = entry.workflow.clone().ok_or_else(|| not_found(dlq_id))?;
        let run = self
            .store
            .workflow_runs(user)
            .exact(&run_ref.run_id, run_ref.created_at);
        let state = run.and_then(|r| r.failure.as_ref()).map(|f| f.state);
        if state != Some(FailureState::Fail) {
            return Err(BrokerError::Invalid(format!(
                "the failure function of workflow run {} has not failed ({}): only a failed one can be retried",
                run_ref.run_id,
                state.map_or("it never ran", FailureState::as_str)
            )));
        }
        let target = entry.spec.options.failure_callback.clone().ok_or_else(|| {
            BrokerError::Invalid(format!(
                "workflow run {} has no failure function",
                run_ref.run_id
            ))
        })?;
        let source = &entry.spec;
        let body = match self.workflow_failure_fields_of(user, source, Some(run_ref.created_at)) {
            Some(fields) => callback::body_for_run(
                source,
                entry.retried,
                Some(&entry.response),
                Some(dlq_id),
                &fields,
            ),
            None => callback::body(source, entry.retried, Some(&entry.response), Some(dlq_id)),
        };
        let spec = Arc::new(MessageSpec {
            id: MessageId::random(),
            url: target.url.clone(),
            body: body.into(),
            created_at: now,
            not_before: now,
            caller_ip: source.caller_ip,
            options: super::failure_options(&target.options, run_ref.created_at),
            origin: Some(Box::new(Origin {
                trigger: Some(Trigger::FailureCallback { source: source.id }),
                ..Default::default()
            })),
        });
        self.accept(user, spec, now, out);
        Ok(Recovered {
            run_id: run_ref.run_id.into(),
            created_at: run_ref.created_at,
        })
    }
}

impl Core {
    /// `DELETE /v2/workflows/dlq/callback/{dlqId}`: cancels the run's failure function while
    /// it is in progress (then `CALLBACK_CANCELED`).
    pub fn workflow_cancel_failure(
        &mut self,
        user: UserId,
        dlq_id: &str,
        now: i64,
    ) -> Result<(), BrokerError> {
        let entry = self.workflow_entry(user, dlq_id)?;
        let run_ref = entry.workflow.ok_or_else(|| not_found(dlq_id))?;
        let failure = self
            .store
            .workflow_runs(user)
            .exact(&run_ref.run_id, run_ref.created_at)
            .and_then(|r| r.failure.as_ref())
            .filter(|f| f.state == FailureState::InProgress)
            .map(|f| f.message_id)
            .ok_or_else(|| {
                BrokerError::Invalid(format!(
                    "the failure function of workflow run {} is not in progress: nothing to cancel",
                    run_ref.run_id
                ))
            })?;
        self.cancel(user, failure, now);
        Ok(())
    }
}
