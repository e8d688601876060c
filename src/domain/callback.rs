//! The JSON body of callback and failure-callback messages.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::ser::Serializer;

use super::header_list::HeaderList;
use super::message::{MessageSpec, Response};
use super::workflow::FailureFields;

struct Headers<'a>(&'a HeaderList);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    status: u16,
    header: Headers<'a>,
    body: String,
    #[serde(skip_serializing_if = "is_zero")]
    retried: u32,
    max_retries: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    dlq_id: Option<&'a str>,
    source_message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint_name: Option<&'a str>,
    url: &'a str,
    method: &'static str,
    source_header: Headers<'a>,
    source_body: String,
    not_before: String,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule_id: Option<&'a str>,
    #[serde(rename = "callerIP")]
    caller_ip: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow_run_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow_created_at: Option<i64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The body sent to `Upstash-Callback` (after an attempt) or, with `dlq_id`, to
/// `Upstash-Failure-Callback` (after the final failure). Source headers and body are shown
/// unredacted: the callback goes to the user's own endpoint.
pub fn body(
    source: &MessageSpec,
    retried: u32,
    response: Option<&Response>,
    dlq_id: Option<&str>,
) -> Vec<u8> {
    body_with(source, retried, response, dlq_id, None)
}

/// The failure-callback body of a workflow run's message: the same fields plus the run's
/// `workflowRunId` and `workflowCreatedAt`, with `url` the workflow URL and `sourceBody` the
/// run's initial payload (which the SDK's failure function gets as its request payload).
pub fn body_for_run(
    source: &MessageSpec,
    retried: u32,
    response: Option<&Response>,
    dlq_id: Option<&str>,
    run: &FailureFields,
) -> Vec<u8> {
    body_with(source, retried, response, dlq_id, Some(run))
}

fn body_with(
    source: &MessageSpec,
    retried: u32,
    response: Option<&Response>,
    dlq_id: Option<&str>,
    run: Option<&FailureFields>,
) -> Vec<u8> {
    let empty = Response::default();
    let r = response.unwrap_or(&empty);
    let origin = source.origin();
    let body = Body {
        status: r.status,
        header: Headers(&r.headers),
        body: STANDARD.encode(&r.body),
        retried,
        max_retries: source.options.retries,
        dlq_id,
        source_message_id: source.id.to_string(),
        topic_name: origin.topic_name.as_deref(),
        endpoint_name: origin.endpoint_name.as_deref(),
        url: run.map_or(&source.url, |r| &r.url),
        method: source.options.method.as_str(),
        source_header: Headers(&source.options.headers),
        source_body: STANDARD.encode(run.map_or(&source.body, |r| &r.source_body)),
        not_before: source.not_before.to_string(),
        created_at: source.created_at.to_string(),
        schedule_id: origin.schedule_id.as_deref(),
        caller_ip: source.caller_ip.to_string(),
        workflow_run_id: run.map(|r| &*r.run_id),
        workflow_created_at: run.map(|r| r.created_at),
    };
    // Plain strings, numbers and maps: serialization cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}
