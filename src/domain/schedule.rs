//! Schedules: a message template published at every cron tick.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::cron::CronSpec;
use super::message::DeliveryOptions;
use crate::ids::MessageId;

/// What became of a message a tick produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TickState {
    InProgress,
    Success,
    Fail,
}

impl TickState {
    /// The only three values the Python SDK's enum accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "IN_PROGRESS",
            Self::Success => "SUCCESS",
            Self::Fail => "FAIL",
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Schedule {
    pub id: Arc<str>,
    pub cron: CronSpec,
    /// URL (query included) or URL group name, as given.
    pub destination: Arc<str>,
    pub is_group: bool,
    pub options: Arc<DeliveryOptions>,
    pub body: Bytes,
    /// `Upstash-Delay` applied to every produced message.
    pub delay_ms: u64,
    pub queue: Option<Arc<str>>,
    pub created_at: i64,
    pub caller_ip: IpAddr,
    pub paused: bool,
    pub last_schedule_time: Option<i64>,
    pub next_schedule_time: Option<i64>,
    pub last_states: Vec<(MessageId, TickState)>,
    /// Why the last tick could not publish (e.g. its URL group was deleted).
    pub error: Option<String>,
}

impl Schedule {
    /// Records the outcome of a message the last tick produced.
    pub fn settle(&mut self, id: MessageId, state: TickState) {
        if let Some(entry) = self.last_states.iter_mut().find(|(m, _)| *m == id) {
            entry.1 = state;
        }
    }
}

/// `[A-Za-z0-9._-]+`, the rule for caller-chosen schedule ids.
pub fn valid_schedule_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}
