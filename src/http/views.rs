//! The JSON shapes of messages, log entries, DLQ entries and schedules, with redaction
//! applied.
//!
//! Field names follow what the SDKs read; where sources disagree on a name both are emitted
//! (`callerIP`/`callerIp`, `responseHeader`/`responseHeaders`,
//! `retryDelayExpression`/`retryDelayExpr`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use sha2::{Digest, Sha256};

use crate::domain::dlq::DlqEntry;
use crate::domain::header_list::HeaderList;
use crate::domain::log::{LogEntry, LogState};
use crate::domain::message::{DeliveryOptions, MessageSpec, Redaction, Response};
use crate::domain::schedule::Schedule;

fn redacted(value: &[u8]) -> String {
    let digest = Sha256::digest(value);
    let mut out = String::with_capacity(9 + 64);
    out.push_str("REDACTED:");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A header map shown through a redaction policy.
struct Headers<'a> {
    list: &'a HeaderList,
    redact: Option<&'a Redaction>,
}

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.list
            .serialize_with(s, |name, value| match self.redact {
                Some(r) if r.hides_header(name) => redacted(value),
                _ => String::from_utf8_lossy(value).into_owned(),
            })
    }
}

/// How a payload is shown: `body` when it is text, `bodyBase64` otherwise, nothing when empty.
fn put_body<M: SerializeMap>(
    map: &mut M,
    key: &str,
    bytes: &[u8],
    hide: bool,
) -> Result<(), M::Error> {
    if bytes.is_empty() {
        return Ok(());
    }
    if hide {
        return map.serialize_entry(key, &redacted(bytes));
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => map.serialize_entry(key, text),
        Err(_) => map.serialize_entry(&format!("{key}Base64"), &STANDARD.encode(bytes)),
    }
}

/// Which object the fields are written for: a few names and units differ between messages
/// (and DLQ entries), log entries and schedules.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Message,
    Log,
    Schedule,
}

/// The fields configured by the publish headers, shared by messages and schedules.
fn put_options<M: SerializeMap>(
    map: &mut M,
    o: &DeliveryOptions,
    shape: Shape,
) -> Result<(), M::Error> {
    let redact = Some(&o.redact);
    let message = shape != Shape::Schedule;
    map.serialize_entry(if message { "maxRetries" } else { "retries" }, &o.retries)?;
    if let Some(expr) = &o.retry_delay {
        map.serialize_entry("retryDelayExpression", expr.source())?;
        if message {
            map.serialize_entry("retryDelayExpr", expr.source())?;
        }
    }
    if let Some(t) = o.timeout_ms {
        // Log entries count in ms (OpenAPI); messages and schedules in seconds.
        map.serialize_entry("timeout", &if shape == Shape::Log { t } else { t / 1000 })?;
    }
    for (target, name) in [
        (&o.callback, "callback"),
        (&o.failure_callback, "failureCallback"),
    ] {
        let Some(cb) = target else { continue };
        map.serialize_entry(name, &*cb.url)?;
        let headers = Headers {
            list: &cb.options.headers,
            redact,
        };
        map.serialize_entry(&format!("{name}Header"), &headers)?;
        if message {
            // Python reads the singular, logs in the OpenAPI the plural.
            map.serialize_entry(&format!("{name}Headers"), &headers)?;
        }
    }
    if let Some(first) = o.label() {
        map.serialize_entry("label", first)?;
        map.serialize_entry("labels", &o.labels)?;
    }
    if let Some(fc) = &o.flow_control {
        map.serialize_entry("flowControlKey", &*fc.key)?;
        if let Some(p) = fc.parallelism {
            map.serialize_entry("parallelism", &p)?;
        }
        if let Some(r) = fc.rate {
            map.serialize_entry("rate", &r)?;
        }
        map.serialize_entry("period", &fc.period_s)?;
    }
    Ok(())
}

fn put_caller_ip<M: SerializeMap>(map: &mut M, ip: std::net::IpAddr) -> Result<(), M::Error> {
    let ip = ip.to_string();
    map.serialize_entry("callerIP", &ip)?;
    map.serialize_entry("callerIp", &ip)
}

/// Writes the fields every message-describing object shares.
fn put_message_fields<M: SerializeMap>(
    map: &mut M,
    spec: &MessageSpec,
    shape: Shape,
) -> Result<(), M::Error> {
    // Log entries always carry the body base64-encoded.
    let body_as_text = shape != Shape::Log;
    let o = &spec.options;
    let origin = spec.origin();
    map.serialize_entry("messageId", &spec.id)?;
    map.serialize_entry("url", &*spec.url)?;
    if let Some(t) = &origin.topic_name {
        map.serialize_entry("topicName", &**t)?;
    }
    if let Some(e) = &origin.endpoint_name {
        map.serialize_entry("endpointName", &**e)?;
    }
    map.serialize_entry("method", o.method.as_str())?;
    map.serialize_entry(
        "header",
        &Headers {
            list: &o.headers,
            redact: Some(&o.redact),
        },
    )?;
    if body_as_text {
        put_body(map, "body", &spec.body, o.redact.body)?;
    } else if o.redact.body {
        map.serialize_entry("body", &STANDARD.encode(redacted(&spec.body)))?;
    } else {
        map.serialize_entry("body", &STANDARD.encode(&spec.body))?;
    }
    put_options(map, o, shape)?;
    map.serialize_entry("notBefore", &spec.not_before)?;
    map.serialize_entry("createdAt", &spec.created_at)?;
    if let Some(q) = &origin.queue_name {
        map.serialize_entry("queueName", &**q)?;
    }
    if let Some(s) = &origin.schedule_id {
        map.serialize_entry("scheduleId", &**s)?;
    }
    put_caller_ip(map, spec.caller_ip)
}

fn put_response<M: SerializeMap>(
    map: &mut M,
    r: &Response,
    body_as_text: bool,
) -> Result<(), M::Error> {
    map.serialize_entry("responseStatus", &r.status)?;
    let headers = Headers {
        list: &r.headers,
        redact: None,
    };
    map.serialize_entry("responseHeader", &headers)?;
    map.serialize_entry("responseHeaders", &headers)?;
    if body_as_text {
        put_body(map, "responseBody", &r.body, false)
    } else {
        map.serialize_entry("responseBody", &STANDARD.encode(&r.body))
    }
}

/// The run a workflow message belongs to, so a run can be followed message by message.
fn put_workflow<M: SerializeMap>(
    map: &mut M,
    spec: &MessageSpec,
    run_created_at: Option<i64>,
) -> Result<(), M::Error> {
    let Some(tag) = spec.options.workflow.as_deref() else {
        return Ok(());
    };
    map.serialize_entry("workflowRunId", &*tag.run_id)?;
    if let Some(at) = run_created_at {
        map.serialize_entry("workflowCreatedAt", &at)?;
    }
    if let Some(url) = &tag.url {
        map.serialize_entry("workflowUrl", &**url)?;
    }
    map.serialize_entry("workflowCallType", tag.call_type.as_str())
}

pub struct MessageJson<'a>(pub &'a MessageSpec);

impl Serialize for MessageJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        put_message_fields(&mut map, self.0, Shape::Message)?;
        map.end()
    }
}

/// A log entry, with the creation time of its workflow run when it is a run's message.
pub struct LogJson<'a>(pub &'a LogEntry, pub Option<i64>);

impl Serialize for LogJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("time", &e.time)?;
        map.serialize_entry("state", e.state.as_str())?;
        put_message_fields(&mut map, &e.spec, Shape::Log)?;
        put_workflow(&mut map, &e.spec, self.1)?;
        if e.state == LogState::Created && e.spec.not_before > e.time {
            map.serialize_entry("nextDeliveryTime", &e.spec.not_before)?;
        }
        if let Some(d) = &e.detail {
            if let Some(err) = &d.error {
                map.serialize_entry("error", err)?;
            }
            if let Some(t) = d.next_delivery_time {
                map.serialize_entry("nextDeliveryTime", &t)?;
            }
            if let Some(r) = &d.response {
                put_response(&mut map, r, false)?;
            }
        }
        map.end()
    }
}

pub struct DlqJson<'a>(pub &'a DlqEntry);

impl Serialize for DlqJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("dlqId", &*e.dlq_id)?;
        put_message_fields(&mut map, &e.spec, Shape::Message)?;
        put_response(&mut map, &e.response, true)?;
        if let Some(err) = &e.error {
            map.serialize_entry("error", err)?;
        }
        map.end()
    }
}

pub struct ScheduleJson<'a>(pub &'a Schedule);

impl Serialize for ScheduleJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sc = self.0;
        let o = &sc.options;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("scheduleId", &*sc.id)?;
        map.serialize_entry("cron", &sc.cron.source)?;
        map.serialize_entry("destination", &*sc.destination)?;
        map.serialize_entry("createdAt", &sc.created_at)?;
        map.serialize_entry("method", o.method.as_str())?;
        map.serialize_entry(
            "header",
            &Headers {
                list: &o.headers,
                redact: Some(&o.redact),
            },
        )?;
        put_body(&mut map, "body", &sc.body, o.redact.body)?;
        put_options(&mut map, o, Shape::Schedule)?;
        if sc.delay_ms > 0 {
            map.serialize_entry("delay", &(sc.delay_ms / 1000))?;
        }
        put_caller_ip(&mut map, sc.caller_ip)?;
        map.serialize_entry("isPaused", &sc.paused)?;
        if let Some(q) = &sc.queue {
            map.serialize_entry("queueName", &**q)?;
        }
        if let Some(t) = sc.last_schedule_time {
            map.serialize_entry("lastScheduleTime", &t)?;
        }
        if let Some(t) = sc.next_schedule_time {
            map.serialize_entry("nextScheduleTime", &t)?;
        }
        let states: serde_json::Map<String, serde_json::Value> = sc
            .last_states
            .iter()
            .map(|(id, st)| (id.to_string(), st.as_str().into()))
            .collect();
        map.serialize_entry("lastScheduleStates", &states)?;
        if let Some(e) = &sc.error {
            map.serialize_entry("error", e)?;
        }
        map.end()
    }
}
