//! The log lines a user debugs with: one per lifecycle event of a message (accepted, retry
//! scheduled, delivered, failed into the DLQ, cancelled; callbacks and schedule ticks are
//! accepted messages of their own), each with the message id, user and destination. The
//! attempt line (status, duration) is written by the delivery task; workflow runs log where
//! they start and end.
//!
//! Called from the one place the core records state changes ([`super::Core::append_log`]),
//! so no transition can go unlogged. Under `RUST_LOG=warn` (the benchmark) the macros are
//! disabled at their call site and cost a branch.

use crate::domain::log::{LogDetail, LogState};
use crate::domain::message::{MessageSpec, Trigger};
use crate::users::UserId;

/// Unix ms as RFC 3339 (UTC), for the times a person reads in a log line.
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

pub(super) fn state_changed(
    user: UserId,
    now: i64,
    state: LogState,
    spec: &MessageSpec,
    detail: Option<&LogDetail>,
) {
    // The fields below are built before the macros see them (a delayed message's time is
    // formatted): skip it all when info lines are off, as in the benchmark.
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let user = user.info().name;
    let (id, destination) = (&spec.id, &*spec.url);
    match state {
        LogState::Created => accepted(user, now, spec),
        LogState::Retry => {
            let at = detail.and_then(|d| d.next_delivery_time).unwrap_or(now);
            tracing::info!(message_id = %id, user, destination, next_delivery_time = rfc3339(at), "retry scheduled");
        }
        LogState::Delivered => {
            let status = detail.and_then(|d| d.response.as_ref()).map(|r| r.status);
            tracing::info!(message_id = %id, user, destination, status, "message delivered");
        }
        LogState::Canceled => {
            tracing::info!(message_id = %id, user, destination, "message cancelled");
        }
        // FAILED is logged by `failed` (it knows the DLQ id); an attempt's ERROR by the
        // delivery task's attempt line.
        LogState::Failed | LogState::Error | LogState::Active | LogState::CancelRequested => {}
    }
}

fn accepted(user: &str, now: i64, spec: &MessageSpec) {
    let origin = spec.origin();
    let id = &spec.id;
    let destination = &*spec.url;
    let not_before = (spec.not_before > now).then(|| rfc3339(spec.not_before));
    let queue = origin.queue_name.as_deref();
    match (&origin.trigger, &origin.schedule_id) {
        (Some(Trigger::Callback { source }), _) => {
            tracing::info!(message_id = %source, callback_message_id = %id, user, destination, "callback sent");
        }
        (Some(Trigger::FailureCallback { source }), _) => {
            tracing::info!(message_id = %source, callback_message_id = %id, user, destination, "failure callback sent");
        }
        (None, Some(schedule_id)) => {
            tracing::info!(message_id = %id, schedule_id = &**schedule_id, user, destination, queue, "schedule fired");
        }
        (None, None) => {
            tracing::info!(message_id = %id, user, destination, queue, not_before, "message accepted");
        }
    }
}

/// A message failed for good and went into the DLQ as `dlq_id`.
pub(super) fn failed(user: UserId, spec: &MessageSpec, dlq_id: &str, error: Option<&str>) {
    tracing::warn!(
        message_id = %spec.id,
        user = user.info().name,
        destination = &*spec.url,
        dlq_id,
        error,
        "message failed into the DLQ"
    );
}
