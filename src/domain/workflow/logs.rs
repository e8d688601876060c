//! The run logs (`GET /v2/workflows/events`, `delivery.md` §14.13): one run as the SDK's
//! `WorkflowRunLog` — its recorded steps grouped `sequential` / `parallel`, then a `next`
//! group for the messages still unfinished (or left unfinished when the run ended) with their
//! failed attempts.
//!
//! Parallel branches are recognised as the SDK writes them: plan steps (`stepId` 0 with a
//! `targetStep`) are messages, not results, and are left out; result steps with
//! `concurrent` n > 1 that follow each other form one group of n.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::config::RunDefaults;
use super::meta::StepMeta;
use super::run::Run;
use super::steps::RawStep;
use super::tag::CallType;
use super::trace::{Answer, NextState, NextStep, StepError};
use super::wait::Waiter;
use crate::domain::duration::parse_duration_ms;
use crate::domain::header_list::HeaderList;

/// Retries of a message without `Upstash-Retries`.
const DEFAULT_RETRIES: u32 = 3;

/// What the logs need from the engine besides the run itself; owned, so the JSON is built
/// after the engine's lock is released.
pub struct Context {
    /// The unfinished messages of an active run, as they stand now.
    pub live: Vec<NextStep>,
    /// The waits the run is in.
    pub waiters: Vec<Waiter>,
    /// When the failure function's next attempt is due, while it waits for a retry.
    pub failure_next_delivery: Option<i64>,
    /// The runs the run invoked, by id (for `invokedWorkflowRunBody` / `-Headers`).
    pub invoked: HashMap<String, Invoked>,
}

/// What the logs show of an invoked run.
pub struct Invoked {
    pub initial_body: Bytes,
    pub defaults: Arc<RunDefaults>,
}

impl Invoked {
    pub fn of(run: &Run) -> Self {
        Self {
            initial_body: run.initial_body(),
            defaults: run.defaults.clone(),
        }
    }
}

/// The ids of the runs `run` invoked.
pub fn invoked_ids(run: &Run) -> impl Iterator<Item = &str> {
    run.steps
        .iter()
        .filter_map(|e| e.meta.as_deref()?.invoked_workflow_run_id.as_deref())
}

fn headers_json(h: &HeaderList) -> Value {
    serde_json::to_value(h).unwrap_or_else(|_| json!({}))
}

fn answer_headers(a: &Answer) -> Value {
    headers_json(&a.header_map())
}

fn error_json(e: &StepError) -> Value {
    json!({
        "error": e.error,
        "body": e.answer.body,
        "headers": answer_headers(&e.answer),
        "status": e.answer.status,
        "time": e.time,
    })
}

/// The run's forwarded headers (what each of its deliveries carries besides its own).
pub fn run_headers(run: &Run) -> Value {
    defaults_headers(&run.defaults)
}

fn defaults_headers(defaults: &RunDefaults) -> Value {
    let pairs: Vec<(&str, &[u8])> = defaults
        .for_step()
        .iter()
        .filter_map(|(n, v)| Some((n.strip_prefix("upstash-forward-")?, v.as_bytes())))
        .collect();
    let list = HeaderList::from_pairs(pairs.iter().map(|(n, v)| (&**n, *v)));
    headers_json(&list)
}

/// Configured retries of the run's steps.
pub fn run_retries(run: &Run) -> u32 {
    run.defaults
        .for_step()
        .iter()
        .find(|(n, _)| n == "upstash-retries")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(DEFAULT_RETRIES)
}

fn text_or_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// A duration as submitted (`10`, `"10s"`) in seconds.
fn seconds(v: &Value) -> Value {
    match v {
        Value::String(s) => parse_duration_ms(s).map_or_else(|| v.clone(), |ms| (ms / 1000).into()),
        other => other.clone(),
    }
}

/// One recorded step. `call` is the `context.call` request this step is the result of.
fn step_json(run: &Run, e: &RawStep, meta: &StepMeta, call: Option<&RawStep>) -> Value {
    let body = run.steps.body(e);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut v = Map::new();
    v.insert("stepId".into(), meta.step_id.into());
    v.insert("stepName".into(), meta.step_name.clone().into());
    v.insert("stepType".into(), meta.step_type.clone().into());
    v.insert("callType".into(), e.call_type.as_str().into());
    v.insert("messageId".into(), e.message_id.to_string().into());
    if let Some(out) = parsed.get("out").filter(|o| !o.is_null()) {
        v.insert("out".into(), out.clone());
    }
    v.insert("concurrent".into(), meta.concurrent.into());
    v.insert("state".into(), "STEP_SUCCESS".into());
    v.insert("createdAt".into(), e.created_at.into());
    v.insert("retries".into(), run_retries(run).into());
    v.insert("headers".into(), run_headers(run));
    if let Some(s) = &meta.sleep_for {
        v.insert("sleepFor".into(), seconds(s));
    }
    if let Some(s) = meta.sleep_until {
        v.insert("sleepUntil".into(), s.into());
    }
    if let Some(c) = call.and_then(|c| c.meta.as_deref().map(|m| (c, m))) {
        let (req, m) = c;
        v.insert("callUrl".into(), m.call_url.clone().into());
        v.insert("callMethod".into(), m.call_method.clone().into());
        v.insert(
            "callHeaders".into(),
            m.call_headers.clone().unwrap_or(json!({})),
        );
        let call_body = String::from_utf8_lossy(&run.steps.body(req)).into_owned();
        v.insert("callBody".into(), text_or_json(&call_body));
        // The result step's `out` is the JSON text of {status, body, header}.
        let response = parsed
            .get("out")
            .and_then(Value::as_str)
            .and_then(|o| serde_json::from_str::<Value>(o).ok())
            .unwrap_or(Value::Null);
        if !response.is_null() {
            v.insert("callResponseStatus".into(), response["status"].clone());
            let body = response["body"].as_str().unwrap_or_default();
            v.insert("callResponseBody".into(), text_or_json(body));
            v.insert("callResponseHeaders".into(), response["header"].clone());
        }
    }
    if let Some(id) = &meta.wait_event_id {
        v.insert("waitEventId".into(), id.clone().into());
        if let Some(t) = &meta.timeout {
            v.insert("waitTimeoutDuration".into(), t.clone());
        }
        if let Some(d) = meta.wait_timeout_deadline {
            v.insert("waitTimeoutDeadline".into(), d.into());
        }
        v.insert(
            "waitTimeout".into(),
            meta.wait_timeout.unwrap_or(false).into(),
        );
    }
    if let Some(id) = &meta.invoked_workflow_run_id {
        v.insert("invokedWorkflowRunId".into(), id.clone().into());
        v.insert(
            "invokedWorkflowUrl".into(),
            meta.invoked_workflow_url.clone().into(),
        );
        v.insert(
            "invokedWorkflowCreatedAt".into(),
            meta.invoked_workflow_created_at.into(),
        );
    }
    Value::Object(v)
}

/// The Initial step: the run's payload as the SDK sees it before the first step.
fn initial_json(run: &Run, e: &RawStep) -> Value {
    json!({
        "stepId": 0,
        "stepName": "init",
        "stepType": "Initial",
        "callType": "step",
        "messageId": e.message_id.to_string(),
        "out": String::from_utf8_lossy(&run.initial_body()),
        "concurrent": 1,
        "state": "STEP_SUCCESS",
        "createdAt": e.created_at,
        "retries": run_retries(run),
        "headers": run_headers(run),
    })
}

/// The latest `context.call` request of step `step_id`; the latest request at all when the
/// requests carry no step id (an SDK that does not name it).
fn request_of<'a>(calls: &[&'a RawStep], step_id: u64) -> Option<&'a RawStep> {
    let id_of = |c: &&RawStep| c.meta.as_deref().map_or(0, |m| m.step_id);
    calls
        .iter()
        .rev()
        .find(|c| id_of(c) == step_id)
        .or_else(|| calls.last().filter(|c| id_of(c) == 0))
        .copied()
}

/// The recorded steps, grouped.
pub fn groups(run: &Run) -> Vec<Value> {
    let mut groups = Vec::new();
    let mut parallel: Vec<Value> = Vec::new();
    let mut expected = 0;
    // The `context.call` requests so far; a Call result is paired with the request of its
    // step id (parallel calls are all requested before any result comes back).
    let mut calls: Vec<&RawStep> = Vec::new();
    for (i, e) in run.steps.iter().enumerate() {
        if i == 0 {
            groups.push(json!({ "type": "sequential", "steps": [initial_json(run, e)] }));
            continue;
        }
        if e.call_type == CallType::ToCallback {
            calls.push(e);
        }
        let Some(meta) = e.meta.as_deref().filter(|_| e.call_type == CallType::Step) else {
            continue;
        };
        if meta.step_id == 0 {
            // A plan step: the message that runs a parallel branch, not a result.
            continue;
        }
        let call = (meta.step_type == "Call")
            .then(|| request_of(&calls, meta.step_id))
            .flatten();
        let step = step_json(run, e, meta, call);
        if meta.concurrent > 1 {
            if parallel.is_empty() {
                expected = meta.concurrent as usize;
            }
            parallel.push(step);
            if parallel.len() == expected {
                groups.push(json!({ "type": "parallel", "steps": std::mem::take(&mut parallel) }));
            }
        } else {
            if !parallel.is_empty() {
                groups.push(json!({ "type": "parallel", "steps": std::mem::take(&mut parallel) }));
            }
            groups.push(json!({ "type": "sequential", "steps": [step] }));
        }
    }
    if !parallel.is_empty() {
        groups.push(json!({ "type": "parallel", "steps": parallel }));
    }
    groups
}

fn next_json(run: &Run, n: &NextStep) -> Value {
    let mut v = json!({
        "messageId": n.message_id,
        "state": n.state.as_str(),
        "retries": n.retries,
    });
    if let Some(d) = &n.retry_delay {
        v["retryDelay"] = d.clone().into();
    }
    let errors: Vec<Value> = run.trace.errors_of(&n.message_id).map(error_json).collect();
    if let Some(name) = run.trace.errors_of(&n.message_id).last().and_then(|e| {
        e.answer
            .header_map()
            .get_str("upstash-error-step-name")
            .map(String::from)
    }) {
        v["stepName"] = name.into();
    }
    if !errors.is_empty() {
        v["errors"] = errors.into();
    }
    v
}

fn waiter_json(w: &Waiter) -> Value {
    json!({
        "stepId": w.step.step_id,
        "stepName": w.step.step_name,
        "stepType": w.step.step_type,
        "state": NextState::Progress.as_str(),
        "retries": 0,
        "waitEventId": &*w.event_id,
        "waitTimeoutDuration": &*w.timeout,
        "waitTimeoutDeadline": w.deadline_ms,
    })
}

/// The whole `WorkflowRunLog` of one run.
pub fn run_json(run: &Run, cx: &Context) -> Value {
    let mut v = Map::new();
    v.insert("workflowRunId".into(), (*run.id).into());
    v.insert("workflowUrl".into(), (*run.url).into());
    v.insert("workflowState".into(), run.state.as_str().into());
    v.insert("workflowRunCreatedAt".into(), run.created_at.into());
    if let Some(t) = run.completed_at {
        v.insert("workflowRunCompletedAt".into(), t.into());
    }
    if let Some(r) = run.response.as_ref().filter(|r| !r.is_empty()) {
        v.insert(
            "workflowRunResponse".into(),
            String::from_utf8_lossy(r).into_owned().into(),
        );
    }
    let mut steps = groups(run);
    for g in &mut steps {
        fill_invoked_bodies(g, cx);
    }
    let next_steps: Vec<Value> = if run.is_active() {
        cx.live
            .iter()
            .map(|n| next_json(run, n))
            .chain(cx.waiters.iter().map(waiter_json))
            .collect()
    } else {
        run.trace
            .ended_next
            .iter()
            .map(|n| next_json(run, n))
            .collect()
    };
    if !next_steps.is_empty() {
        steps.push(json!({ "type": "next", "steps": next_steps }));
    }
    v.insert("steps".into(), steps.into());
    if let Some(inv) = &run.invoker {
        v.insert(
            "invoker".into(),
            json!({
                "workflowRunId": &*inv.run_id,
                "workflowUrl": &*inv.url,
                "workflowRunCreatedAt": inv.created_at,
            }),
        );
    }
    if let Some(f) = &run.failure {
        let mut f = failure_json(run, f);
        if let Some(t) = cx.failure_next_delivery {
            f["nextDeliveryTime"] = t.into();
        }
        v.insert("failureFunction".into(), f);
    }
    if let Some(d) = &run.dlq_id {
        v.insert("dlqId".into(), (**d).into());
    }
    if let Some(first) = run.labels.first() {
        v.insert("label".into(), (**first).into());
        v.insert(
            "labels".into(),
            run.labels.iter().map(|l| Value::from(&**l)).collect(),
        );
    }
    if let Some(k) = &run.flow_control_key {
        v.insert("flowControlKey".into(), (**k).into());
    }
    v.insert(
        "workflowRunCallerIp".into(),
        run.caller_ip.to_string().into(),
    );
    Value::Object(v)
}

fn fill_invoked_bodies(group: &mut Value, cx: &Context) {
    let Some(steps) = group["steps"].as_array_mut() else {
        return;
    };
    for s in steps {
        if let Some(id) = s["invokedWorkflowRunId"].as_str().map(String::from) {
            let child = cx.invoked.get(&id);
            s["invokedWorkflowRunBody"] = child
                .map(|r| text_or_json(&String::from_utf8_lossy(&r.initial_body)))
                .unwrap_or(Value::Null);
            s["invokedWorkflowRunHeaders"] =
                child.map_or_else(|| json!({}), |r| defaults_headers(&r.defaults));
        }
    }
}

fn failure_json(run: &Run, f: &super::run::FailureFunction) -> Value {
    let fail = run.trace.failed_with.clone().unwrap_or_default();
    let mut v = json!({
        "messageId": f.message_id.to_string(),
        "url": &*f.url,
        "state": f.state.as_str(),
        "failHeaders": answer_headers(&fail),
        "failStatus": fail.status,
        "failResponse": fail.body,
        "dlqId": run.dlq_id.as_deref().unwrap_or_default(),
    });
    if !f.errors.is_empty() {
        v["errors"] = f.errors.iter().map(error_json).collect();
    }
    if let Some(r) = &f.response {
        v["responseBody"] = r.body.clone().into();
        v["responseHeaders"] = answer_headers(r);
        v["responseStatus"] = r.status.into();
    }
    v
}
