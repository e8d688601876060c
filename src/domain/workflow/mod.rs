//! Upstash Workflow runs (`delivery.md` §14): pure bookkeeping the engine consults when a
//! message of a run is accepted, delivered, or fails.
//!
//! A run is a chain of QStash messages tagged with `Upstash-Workflow-RunId`. The Init message
//! creates it; each step the SDK publishes is recorded as a raw step and delivered as the
//! steps array so far; the SDK ends the run with `DELETE /v2/workflows/runs/{id}`. Waits,
//! invokes and failure callbacks are messages the server writes into the run itself.
//!
//! - [`tag`]: which headers make a message part of a run, and how;
//! - [`config`]: the run configuration the Init message gives every later message;
//! - [`steps`] / [`meta`]: the recorded steps, their delivered form, their fields;
//! - [`run`] / [`book`]: runs and each user's collection of them, waiters included;
//! - [`wait`] / [`invoke`]: the wait and invoke requests; [`stored`]: notifications that
//!   came before their wait;
//! - [`filter`]: the bulk-cancel selection.

pub mod book;
pub mod config;
pub mod dlq;
pub mod filter;
pub mod invoke;
pub mod log_filter;
pub mod logs;
pub mod meta;
pub mod run;
pub mod steps;
pub mod stored;
pub mod tag;
pub mod trace;
pub mod wait;

pub use book::Runs;
pub use run::{FailureState, Run, RunState};
pub use tag::{CallType, Features, WorkflowTag};

use bytes::Bytes;

use super::message::{MessageSpec, Response};

/// The error an Init delivery gets when a 2xx answer lacks the SDK's version header
/// (`WF_DetectTrigger`); the workflow CI checks this text.
pub const NON_WORKFLOW_DESTINATION: &str = "detected a non-workflow destination for trigger/invoke. make sure you are sending the request to the correct endpoint";

/// The answer header every workflow SDK puts on its responses.
const SDK_VERSION_HEADER: &str = "upstash-workflow-sdk-version";

/// For an Init message of a run that asked for it: a 2xx answer without the SDK's version
/// header means the URL does not serve a workflow, and the attempt counts as failed.
pub fn non_workflow_answer(spec: &MessageSpec, response: Option<&Response>) -> Option<String> {
    let tag = spec.options.workflow.as_deref()?;
    let r = response?;
    let detect =
        tag.init && tag.call_type == CallType::Step && tag.features.has(Features::DETECT_TRIGGER);
    (detect && (200..300).contains(&r.status) && r.headers.get(SDK_VERSION_HEADER).is_none())
        .then(|| NON_WORKFLOW_DESTINATION.to_string())
}

/// The fields a run adds to the failure-callback body of one of its messages.
#[derive(Debug)]
pub struct FailureFields {
    pub run_id: std::sync::Arc<str>,
    pub created_at: i64,
    pub url: std::sync::Arc<str>,
    /// `sourceBody`: the initial payload (feature `InitialBody`), else what was delivered.
    pub source_body: Bytes,
}
