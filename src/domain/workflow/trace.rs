//! What a run remembers about its messages' attempts, for the run logs and the workflow DLQ:
//! failed attempts (`errors` of a step), how its unfinished messages ended with the run, the
//! answer that failed it and the failure function's answers.
//!
//! Plain serde records (owned strings, no shared buffers) so a persistent store can keep them
//! as they are.

use serde::{Deserialize, Serialize};

use crate::domain::header_list::HeaderList;
use crate::domain::message::Response;

/// Failed attempts kept per run (the newest), so a step retried for days stays bounded.
const MAX_ERRORS: usize = 200;
/// Bytes of an answer body kept in an error record.
const MAX_BODY: usize = 64 * 1024;

/// An HTTP answer as the logs show it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn of(r: &Response) -> Self {
        let cut = r.body.len().min(MAX_BODY);
        Self {
            status: r.status,
            headers: r
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
                .collect(),
            body: String::from_utf8_lossy(&r.body[..cut]).into_owned(),
        }
    }

    /// The headers as the API's map (`{"Name": ["v"]}`).
    pub fn header_map(&self) -> HeaderList {
        HeaderList::from_pairs(self.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())))
    }
}

/// One failed attempt of a message of the run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    pub message_id: String,
    pub error: String,
    /// Status 0 when there was no answer (connection refused, timeout).
    pub answer: Answer,
    pub time: i64,
}

/// How a message of the run that was not delivered ended with the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NextState {
    Progress,
    Retry,
    Failed,
    Canceled,
}

impl NextState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Progress => "STEP_PROGRESS",
            Self::Retry => "STEP_RETRY",
            Self::Failed => "STEP_FAILED",
            Self::Canceled => "STEP_CANCELED",
        }
    }
}

/// A message of the run still unfinished (live), or left unfinished when the run ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextStep {
    pub message_id: String,
    pub state: NextState,
    /// Configured retries of the message.
    pub retries: u32,
    pub retry_delay: Option<String>,
}

/// The attempt records of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    pub errors: Vec<StepError>,
    /// Set when the run ended: its unfinished messages, as they ended.
    pub ended_next: Vec<NextStep>,
    /// The last answer of the message that failed the run.
    pub failed_with: Option<Answer>,
}

impl Trace {
    pub fn push_error(&mut self, e: StepError) {
        if self.errors.len() == MAX_ERRORS {
            self.errors.remove(0);
        }
        self.errors.push(e);
    }

    pub fn errors_of<'a>(&'a self, message_id: &'a str) -> impl Iterator<Item = &'a StepError> {
        self.errors
            .iter()
            .filter(move |e| e.message_id == message_id)
    }

    pub fn heap_size(&self) -> usize {
        self.errors
            .iter()
            .map(|e| e.answer.body.len() + e.error.len() + 128)
            .sum::<usize>()
            + self.ended_next.len() * 64
    }
}

/// A failed attempt's record.
pub fn error_of(
    message_id: &str,
    error: Option<&str>,
    response: Option<&Response>,
    time: i64,
) -> StepError {
    let answer = response.map(Answer::of).unwrap_or_default();
    let error = error.map_or_else(
        || format!("the endpoint answered {}", answer.status),
        str::to_string,
    );
    StepError {
        message_id: message_id.to_string(),
        error,
        answer,
        time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn errors_are_bounded_and_found_by_message() {
        let mut t = Trace::default();
        for i in 0..(MAX_ERRORS + 5) {
            t.push_error(error_of(
                &format!("m{}", i % 2),
                Some("boom"),
                None,
                i as i64,
            ));
        }
        assert_eq!(t.errors.len(), MAX_ERRORS);
        assert_eq!(t.errors[0].time, 5, "the oldest go first");
        assert!(t.errors_of("m1").all(|e| e.message_id == "m1"));
        let r = Response {
            status: 500,
            headers: HeaderList::from_pairs([("X-A", &b"1"[..])]),
            body: Bytes::from_static(b"broke"),
        };
        let e = error_of("m", None, Some(&r), 1);
        assert_eq!((e.answer.status, e.answer.body.as_str()), (500, "broke"));
        assert_eq!(e.error, "the endpoint answered 500");
        assert_eq!(e.answer.header_map().get_str("x-a"), Some("1"));
    }
}
