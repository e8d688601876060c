//! Messages entering a run: an Init message creates it (or is deduplicated against it), a
//! later message must find it active; and the step messages the server writes into a run
//! (wait and invoke results), configured like the SDK's own.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use crate::domain::header_list::HeaderList;
use crate::domain::message::{DeliveryOptions, MessageSpec, Origin};
use crate::domain::options::{self, Pair};
use crate::domain::workflow::CallType;
use crate::domain::workflow::config::RunDefaults;
use crate::domain::workflow::invoke;
use crate::domain::workflow::run::{NewRun, Run, RunState};
use crate::engine::core::{Core, Dispatch};
use crate::engine::error::BrokerError;
use crate::ids::MessageId;
use crate::users::UserId;

/// A publish of a workflow message (`options.workflow` is set).
pub struct WorkflowPublish {
    pub url: Arc<str>,
    pub options: Arc<DeliveryOptions>,
    pub body: Bytes,
    pub caller_ip: IpAddr,
    pub not_before: i64,
    pub queue: Option<Arc<str>>,
    /// Started by `/v2/trigger` (no SDK involved yet).
    pub unknown_sdk: bool,
}

/// What admission decided: the message (new, or the run's Init message when deduplicated)
/// and the run's creation time.
pub struct Admitted {
    pub message_id: MessageId,
    pub deduplicated: bool,
    pub run_created_at: i64,
}

fn not_active(id: &str) -> BrokerError {
    BrokerError::Invalid(format!(
        "workflow run {id} is not active: it finished, was cancelled or never started"
    ))
}

impl Core {
    pub fn workflow_publish(
        &mut self,
        user: UserId,
        p: WorkflowPublish,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Result<Admitted, BrokerError> {
        let Some(tag) = p.options.workflow.clone() else {
            return Err(BrokerError::Invalid("not a workflow message".into()));
        };
        if let Some(q) = &p.queue {
            self.ensure_queue(user, q, now)?;
        }
        let runs = self.store.workflow_runs(user);
        let active = runs.active(&tag.run_id);
        let is_init = tag.init && tag.call_type == CallType::Step;
        if !is_init {
            if matches!(tag.call_type, CallType::Step | CallType::ToCallback) && active.is_none() {
                return Err(not_active(&tag.run_id));
            }
            let created = active.map_or(now, |r| r.created_at);
            let id = self.accept_new(user, &p, p.body.clone(), now, out);
            return Ok(Admitted {
                message_id: id,
                deduplicated: false,
                run_created_at: created,
            });
        }
        if let Some(run) = active {
            if !(run.unknown_sdk && tag.trigger_by_sdk) {
                // The run exists: the SDK reads `deduplicated` as "already started".
                return Ok(Admitted {
                    message_id: run.init_message().unwrap_or_else(MessageId::random),
                    deduplicated: true,
                    run_created_at: run.created_at,
                });
            }
            // The SDK answering `/v2/trigger`: its Init message and configuration replace
            // the server's.
            let created = run.created_at;
            let id = MessageId::random();
            let run = self
                .store
                .workflow_runs_mut(user)
                .active_mut(&tag.run_id)
                .ok_or_else(|| not_active(&tag.run_id))?;
            run.steps.replace_init(id, &p.body, now);
            run.defaults = tag.defaults.clone().unwrap_or_default();
            run.labels = p.options.labels.clone();
            run.flow_control_key = p.options.flow_control.as_ref().map(|f| f.key.clone());
            run.unknown_sdk = false;
            run.live.push(id);
            self.accept_with_id(user, id, &p, p.body.clone(), now, out);
            return Ok(Admitted {
                message_id: id,
                deduplicated: false,
                run_created_at: created,
            });
        }
        let (initial, invoker) = if tag.invoke {
            let (initial, inv) = invoke::parse(&p.body)?;
            (initial, Some(Box::new(inv)))
        } else {
            (p.body.clone(), None)
        };
        let id = MessageId::random();
        let run = Run::new(
            NewRun {
                id: tag.run_id.clone(),
                url: tag.url.clone().unwrap_or_else(|| p.url.clone()),
                init_message: id,
                initial_body: initial,
                defaults: tag.defaults.clone().unwrap_or_default(),
                labels: p.options.labels.clone(),
                flow_control_key: p.options.flow_control.as_ref().map(|f| f.key.clone()),
                caller_ip: p.caller_ip,
                invoker,
                unknown_sdk: p.unknown_sdk,
            },
            now,
        );
        self.store.workflow_runs_mut(user).insert(run);
        tracing::info!(workflow_run_id = %tag.run_id, user = user.info().name, destination = %p.url, "workflow run started");
        self.stats.workflow_run(user, RunState::Started);
        self.accept_with_id(user, id, &p, p.body.clone(), now, out);
        Ok(Admitted {
            message_id: id,
            deduplicated: false,
            run_created_at: now,
        })
    }

    fn accept_new(
        &mut self,
        user: UserId,
        p: &WorkflowPublish,
        body: Bytes,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> MessageId {
        let id = MessageId::random();
        self.accept_with_id(user, id, p, body, now, out);
        id
    }

    fn accept_with_id(
        &mut self,
        user: UserId,
        id: MessageId,
        p: &WorkflowPublish,
        body: Bytes,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) {
        let origin = p.queue.as_ref().map(|q| {
            Box::new(Origin {
                queue_name: Some(q.clone()),
                ..Default::default()
            })
        });
        let spec = Arc::new(MessageSpec {
            id,
            url: p.url.clone(),
            body,
            created_at: now,
            not_before: p.not_before,
            caller_ip: p.caller_ip,
            options: p.options.clone(),
            origin,
        });
        self.accept(user, spec, now, out);
    }

    /// Writes a step into an active run and delivers it to `to.0`, configured by `to.1`
    /// (the SDK's workflow headers for this kind of result) above the run's configuration.
    pub(super) fn run_step_message(
        &mut self,
        user: UserId,
        run_id: &str,
        to: (Arc<str>, &HeaderList),
        body: Vec<u8>,
        now: i64,
        out: &mut Vec<Dispatch>,
    ) -> Option<MessageId> {
        let (url, headers) = to;
        let run = self.store.workflow_runs(user).active(run_id)?;
        let (caller_ip, defaults, run_url) = (run.caller_ip, run.defaults.clone(), run.url.clone());
        let options = step_options(
            (run_id, &run_url),
            headers,
            &defaults,
            &self.config.quota,
            now,
        );
        let id = MessageId::random();
        let p = WorkflowPublish {
            url,
            options,
            body: Bytes::new(),
            caller_ip,
            not_before: now,
            queue: None,
            unknown_sdk: false,
        };
        self.accept_with_id(user, id, &p, body.into(), now, out);
        Some(id)
    }
}

/// The options of a server-written step: its run's workflow headers first (with the run's
/// URL, as the SDK's own steps carry it), then the given headers, then the run's
/// configuration, each name taken from the first source that has it.
fn step_options(
    (run_id, run_url): (&str, &str),
    headers: &HeaderList,
    defaults: &RunDefaults,
    quota: &crate::config::Quota,
    now: i64,
) -> Arc<DeliveryOptions> {
    let given: Vec<(String, &[u8])> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .collect();
    let mut pairs: Vec<Pair<'_>> = vec![
        ("upstash-workflow-runid", run_id.as_bytes()),
        ("upstash-workflow-init", b"false"),
        ("upstash-workflow-calltype", b"step"),
        ("upstash-workflow-url", run_url.as_bytes()),
    ];
    for (n, v) in &given {
        if !pairs[..4].iter().any(|(m, _)| m == n) {
            pairs.push((n.as_str(), v));
        }
    }
    let above = pairs.len();
    for (n, v) in defaults.for_step() {
        if !pairs[..above].iter().any(|(m, _)| m == n) {
            pairs.push((n.as_str(), v.as_bytes()));
        }
    }
    options::parse(&pairs, quota, now)
        .or_else(|e| {
            tracing::warn!(workflow_run_id = run_id, error = %e.message, "stored workflow headers no longer parse; using the run's workflow headers only");
            options::parse(&pairs[..4], quota, now)
        })
        .map(|p| p.options)
        .unwrap_or_else(|_| unreachable!("the run's workflow headers always parse"))
}
