//! What a message is: its immutable description ([`MessageSpec`], shared by the store, the
//! logs, the DLQ and in-flight deliveries through one `Arc`) and the configuration parsed from
//! the publish headers ([`DeliveryOptions`], shared by every message of one publish).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;

use bytes::Bytes;

use super::header_list::HeaderList;
use super::retry::RetryExpr;
use crate::ids::MessageId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

impl FromStr for Method {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s.trim().to_ascii_uppercase().as_str() {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-key limits carried by a message (`Upstash-Flow-Control-Key`/`-Value`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct FlowControl {
    pub key: Arc<str>,
    pub parallelism: Option<u32>,
    pub rate: Option<u32>,
    /// Rate window in seconds (default 1).
    pub period_s: u32,
}

/// What `Upstash-Redact-Fields` hides from the API (never from deliveries).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Redaction {
    pub body: bool,
    pub all_headers: bool,
    /// Lower-cased names of individually redacted headers.
    pub headers: Box<[Box<str>]>,
}

impl Redaction {
    pub fn is_empty(&self) -> bool {
        !self.body && !self.all_headers && self.headers.is_empty()
    }

    pub fn hides_header(&self, name: &str) -> bool {
        self.all_headers || self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }
}

/// A follow-up message target: `Upstash-Callback` or `Upstash-Failure-Callback` with the
/// options parsed from its `Upstash-Callback-*` / `Upstash-Failure-Callback-*` headers.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CallbackTarget {
    pub url: Arc<str>,
    pub delay_ms: u64,
    pub options: Arc<DeliveryOptions>,
}

/// Everything the publish headers configure about delivery. Shared (`Arc`) by all messages
/// produced by one publish, one URL-group fan-out, or one schedule.
///
/// Serde is for the data directory (MessagePack with field names): options left empty are
/// not written and read back empty, which keeps a plain publish's stored spec ~100 bytes
/// (a fifth) smaller, and with it every commit.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DeliveryOptions {
    pub method: Method,
    /// Forwarded headers (prefix stripped) and `Content-Type`.
    #[serde(with = "crate::domain::header_list::raw")]
    pub headers: HeaderList,
    pub retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<RetryExpr>,
    /// Per-attempt deadline; `None` = the quota's maximum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_callback: Option<CallbackTarget>,
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    pub labels: Box<[Box<str>]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow_control: Option<FlowControl>,
    #[serde(default, skip_serializing_if = "Redaction::is_empty")]
    pub redact: Redaction,
    /// Set when the message belongs to a workflow run (`Upstash-Workflow-RunId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<Box<super::workflow::WorkflowTag>>,
}

impl DeliveryOptions {
    pub fn label(&self) -> Option<&str> {
        self.labels.first().map(|l| &**l)
    }
}

/// Why a message exists, when it is not a plain publish.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum Trigger {
    Callback { source: MessageId },
    FailureCallback { source: MessageId },
}

/// Where a message came from; absent for the common plain publish to keep specs small.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_name: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_name: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_name: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_id: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// For callbacks of a queued message: (queue, source) whose queue slot waits for this
    /// message to finish.
    pub slot_owner: Option<(Arc<str>, MessageId)>,
}

/// The immutable part of a message.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct MessageSpec {
    pub id: MessageId,
    /// The exact URL called (and signed as `sub`), query string included. Shared with the
    /// URL group's endpoint, the publish response and other messages to the same endpoint.
    pub url: Arc<str>,
    pub body: Bytes,
    pub created_at: i64,
    /// Earliest first delivery (ms); equals `created_at` when not delayed.
    pub not_before: i64,
    pub caller_ip: IpAddr,
    pub options: Arc<DeliveryOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Box<Origin>>,
}

impl MessageSpec {
    pub fn origin(&self) -> &Origin {
        static EMPTY: Origin = Origin {
            topic_name: None,
            endpoint_name: None,
            queue_name: None,
            schedule_id: None,
            trigger: None,
            slot_owner: None,
        };
        self.origin.as_deref().unwrap_or(&EMPTY)
    }

    pub fn queue_name(&self) -> Option<&str> {
        self.origin().queue_name.as_deref()
    }

    pub fn flow_control(&self) -> Option<&FlowControl> {
        self.options.flow_control.as_ref()
    }
}

#[cfg(test)]
impl MessageSpec {
    /// A message to `http://x` with the options `headers` configure, for unit tests.
    pub(crate) fn for_test(headers: &[(&str, &str)]) -> Self {
        use crate::config::{Quota, QuotaKind};
        let pairs: Vec<_> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        let parsed = crate::domain::options::parse(&pairs, &Quota::new(QuotaKind::Payg), 0)
            .expect("valid test headers");
        MessageSpec {
            id: crate::ids::MessageId::random(),
            url: "http://x".into(),
            body: Default::default(),
            created_at: 0,
            not_before: 0,
            caller_ip: [127, 0, 0, 1].into(),
            options: parsed.options,
            origin: None,
        }
    }
}

/// The destination's answer to one attempt. `status` 0 means there was none (timeout,
/// connection error); `error` then says why.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Response {
    pub status: u16,
    #[serde(with = "crate::domain::header_list::raw")]
    pub headers: HeaderList,
    pub body: Bytes,
}

/// Mutable delivery state, owned by the store.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub spec: Arc<MessageSpec>,
    /// Retries already started (sent as `Upstash-Retried`).
    pub retried: u32,
    pub phase: Phase,
    pub cancel_requested: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Phase {
    /// Not started yet, or waiting for the next retry; due at `at` (ms).
    Waiting { at: i64 },
    /// Due, but held back until a gate lets it through.
    Parked(Gate),
    /// An attempt is in flight.
    InFlight,
}

/// What a parked message waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Gate {
    /// Its flow-control key's parallelism, rate or pause.
    Flow,
    /// A delivery slot to its host.
    Host,
    /// Its queue to be resumed (a retry of a message of a paused queue).
    QueuePaused,
}

impl Message {
    pub fn new(spec: Arc<MessageSpec>) -> Self {
        let at = spec.not_before;
        Self {
            spec,
            retried: 0,
            phase: Phase::Waiting { at },
            cancel_requested: false,
        }
    }
}
