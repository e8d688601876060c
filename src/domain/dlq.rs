//! Dead-letter entries: a snapshot of a message that failed for good, with its last answer.

use std::sync::Arc;

use super::message::{MessageSpec, Response};

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DlqEntry {
    /// `<ms>-<seq>`, unique per user, like production's Redis stream ids.
    pub dlq_id: Arc<str>,
    pub created_at: i64,
    pub spec: Arc<MessageSpec>,
    pub retried: u32,
    /// Last attempt's answer; status 0 when there was none.
    pub response: Arc<Response>,
    pub error: Option<String>,
    /// For the step message of a workflow run that failed with it: that run. Such entries
    /// make up the workflow DLQ and are left out of the plain one.
    pub workflow: Option<super::workflow::dlq::RunRef>,
}
