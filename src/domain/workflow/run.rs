//! One workflow run: its identity, configuration, raw steps and how it ended.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;

use super::config::RunDefaults;
use super::invoke::Invoker;
use super::steps::Steps;
use super::trace::{Answer, StepError, Trace};
use crate::ids::MessageId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RunState {
    Started,
    Success,
    Failed,
    Canceled,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Started => "RUN_STARTED",
            Self::Success => "RUN_SUCCESS",
            Self::Failed => "RUN_FAILED",
            Self::Canceled => "RUN_CANCELED",
        }
    }
}

/// Where the run's failure function (or failure URL) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FailureState {
    InProgress,
    Success,
    Fail,
    Canceled,
}

impl FailureState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "CALLBACK_INPROGRESS",
            Self::Success => "CALLBACK_SUCCESS",
            Self::Fail => "CALLBACK_FAIL",
            Self::Canceled => "CALLBACK_CANCELED",
        }
    }
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FailureFunction {
    pub message_id: MessageId,
    pub url: Arc<str>,
    pub state: FailureState,
    /// The failure function's last answer.
    pub response: Option<Answer>,
    /// Its failed attempts.
    pub errors: Vec<StepError>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Run {
    pub id: Arc<str>,
    pub created_at: i64,
    pub url: Arc<str>,
    pub state: RunState,
    pub completed_at: Option<i64>,
    /// What the route function returned (`DELETE …?cancel=false` body).
    pub response: Option<Bytes>,
    pub defaults: Arc<RunDefaults>,
    pub labels: Box<[Box<str>]>,
    pub flow_control_key: Option<Arc<str>>,
    pub caller_ip: IpAddr,
    pub steps: Steps,
    pub invoker: Option<Box<Invoker>>,
    pub failure: Option<FailureFunction>,
    /// DLQ entry of the message whose failure failed the run.
    pub dlq_id: Option<Arc<str>>,
    /// Unfinished messages of the run (to cancel with it).
    pub live: Vec<MessageId>,
    /// Events the run waits for.
    pub waiting_on: Vec<Arc<str>>,
    /// Started by `/v2/trigger`: the SDK's re-published Init message is adopted once.
    pub unknown_sdk: bool,
    /// Failed attempts and how the run's messages ended, for the logs.
    pub trace: Trace,
}

/// What a new run starts with.
pub struct NewRun {
    pub id: Arc<str>,
    pub url: Arc<str>,
    pub init_message: MessageId,
    pub initial_body: Bytes,
    pub defaults: Arc<RunDefaults>,
    pub labels: Box<[Box<str>]>,
    pub flow_control_key: Option<Arc<str>>,
    pub caller_ip: IpAddr,
    pub invoker: Option<Box<Invoker>>,
    pub unknown_sdk: bool,
}

impl Run {
    pub fn new(n: NewRun, now: i64) -> Self {
        let mut steps = Steps::default();
        steps.push(
            n.init_message,
            super::tag::CallType::Step,
            &n.initial_body,
            None,
            now,
        );
        Self {
            id: n.id,
            created_at: now,
            url: n.url,
            state: RunState::Started,
            completed_at: None,
            response: None,
            defaults: n.defaults,
            labels: n.labels,
            flow_control_key: n.flow_control_key,
            caller_ip: n.caller_ip,
            steps,
            invoker: n.invoker,
            failure: None,
            dlq_id: None,
            live: vec![n.init_message],
            waiting_on: Vec::new(),
            unknown_sdk: n.unknown_sdk,
            trace: Trace::default(),
        }
    }

    pub fn is_active(&self) -> bool {
        self.state == RunState::Started
    }

    /// The message that started the run.
    pub fn init_message(&self) -> Option<MessageId> {
        self.steps.first().map(|s| s.message_id)
    }

    /// The initial payload.
    pub fn initial_body(&self) -> Bytes {
        self.steps
            .first()
            .map(|s| self.steps.body(s))
            .unwrap_or_default()
    }

    /// Marks the run ended.
    pub fn end(&mut self, state: RunState, now: i64) {
        self.state = state;
        self.completed_at = Some(now);
        self.live.clear();
        self.waiting_on.clear();
    }

    /// Heap bytes (approximate), for the bound on kept finished runs.
    pub fn heap_size(&self) -> usize {
        self.steps.heap_size()
            + self.defaults.heap_size()
            + self.response.as_ref().map_or(0, Bytes::len)
            + self.url.len()
            + self.trace.heap_size()
            + 256
    }
}
