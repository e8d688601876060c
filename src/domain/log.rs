//! The message event log: one entry per state change, newest kept per user.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::message::{MessageSpec, Response};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LogState {
    Created,
    Active,
    Retry,
    Error,
    Delivered,
    Failed,
    CancelRequested,
    Canceled,
}

impl LogState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Active => "ACTIVE",
            Self::Retry => "RETRY",
            Self::Error => "ERROR",
            Self::Delivered => "DELIVERED",
            Self::Failed => "FAILED",
            Self::CancelRequested => "CANCEL_REQUESTED",
            // One L: the Python SDK's enum rejects "CANCELLED" and breaks the whole page.
            Self::Canceled => "CANCELED",
        }
    }
}

impl fmt::Display for LogState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `state` filter value: one state, or `IN_PROGRESS` (= ACTIVE, RETRY or ERROR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateFilter {
    Is(LogState),
    InProgress,
}

impl StateFilter {
    pub fn matches(self, s: LogState) -> bool {
        match self {
            Self::Is(x) => x == s,
            Self::InProgress => matches!(s, LogState::Active | LogState::Retry | LogState::Error),
        }
    }
}

impl FromStr for StateFilter {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(Self::Is(match s.trim().to_ascii_uppercase().as_str() {
            "CREATED" => LogState::Created,
            "ACTIVE" => LogState::Active,
            "RETRY" => LogState::Retry,
            "ERROR" => LogState::Error,
            "DELIVERED" => LogState::Delivered,
            "FAILED" => LogState::Failed,
            "CANCEL_REQUESTED" => LogState::CancelRequested,
            "CANCELED" | "CANCELLED" => LogState::Canceled,
            "IN_PROGRESS" => return Ok(Self::InProgress),
            _ => return Err(()),
        }))
    }
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct LogDetail {
    pub error: Option<String>,
    pub response: Option<Arc<Response>>,
    pub next_delivery_time: Option<i64>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    /// Monotonic per user; the pagination cursor.
    pub seq: u64,
    pub time: i64,
    pub state: LogState,
    pub spec: Arc<MessageSpec>,
    pub detail: Option<Arc<LogDetail>>,
}

impl LogEntry {
    pub fn error(&self) -> Option<&str> {
        self.detail.as_ref().and_then(|d| d.error.as_deref())
    }
}
