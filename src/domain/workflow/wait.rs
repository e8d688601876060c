//! `context.waitForEvent` / `waitForWebhook`: the waiter a `POST /v2/wait/{eventId}`
//! registers, and the event data notifications carry.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::meta::StepMeta;
use crate::domain::duration::parse_duration_ms;
use crate::domain::header_list::{HeaderList, HeaderListBuilder};
use crate::domain::options::InvalidInput;

/// The SDK's default wait.
const DEFAULT_TIMEOUT: &str = "7d";

/// A run waiting for an event.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Waiter {
    pub run_id: Arc<str>,
    pub event_id: Arc<str>,
    /// Where the event's step goes, configured by `headers` (the wait request's own).
    pub url: Arc<str>,
    #[serde(with = "crate::domain::header_list::raw")]
    pub headers: HeaderList,
    pub deadline_ms: i64,
    /// The timeout as the SDK gave it, echoed in the result step.
    pub timeout: Box<str>,
    pub timeout_url: Option<Arc<str>>,
    pub timeout_body: Option<Bytes>,
    #[serde(with = "crate::domain::header_list::raw")]
    pub timeout_headers: HeaderList,
    /// The wait step the result answers.
    pub step: StepMeta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WaitBody {
    url: String,
    #[serde(default)]
    timeout: Option<Value>,
    #[serde(default)]
    timeout_url: Option<String>,
    #[serde(default)]
    timeout_body: Option<Value>,
    #[serde(default)]
    timeout_headers: Option<Value>,
    step: StepMeta,
}

/// Reads a JSON header map (`{"Name": ["v1", …]}`, or plain string values). The SDK may send
/// two keys that differ only in case (`Upstash-Workflow-RunId` and `-Runid`): a value already
/// given under the same name is kept once.
pub fn header_map(v: Option<&Value>, field: &str) -> Result<HeaderList, InvalidInput> {
    let mut seen: Vec<(String, String)> = Vec::new();
    match v {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let values: Vec<String> = match value {
                    Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                        .collect(),
                    Value::String(s) => vec![s.clone()],
                    other => vec![other.to_string()],
                };
                for value in values {
                    let lower = name.to_ascii_lowercase();
                    if !seen.iter().any(|(n, v)| *n == lower && *v == value) {
                        seen.push((lower, value));
                    }
                }
            }
        }
        Some(_) => {
            return Err(InvalidInput::new(format!(
                "{field} must be an object of header names to value lists"
            )));
        }
    }
    let mut b = HeaderListBuilder::default();
    for (n, v) in &seen {
        b.push(n, v.as_bytes());
    }
    Ok(b.finish())
}

/// The configuration-relevant headers of a request (`Upstash-*` and `Content-Type`).
pub fn config_headers<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> HeaderList {
    HeaderList::from_pairs(
        pairs
            .into_iter()
            .filter(|(n, _)| n.starts_with("upstash-") || *n == "content-type"),
    )
}

impl Waiter {
    /// Reads the body of `POST /v2/wait/{eventId}` for `run_id` at time `now`.
    pub fn parse(
        run_id: Arc<str>,
        event_id: &str,
        body: &[u8],
        headers: HeaderList,
        now: i64,
    ) -> Result<Self, InvalidInput> {
        let b: WaitBody = serde_json::from_slice(body)
            .map_err(|e| InvalidInput::new(format!("invalid wait request body: {e}")))?;
        let timeout = match &b.timeout {
            None | Some(Value::Null) => DEFAULT_TIMEOUT.to_string(),
            Some(Value::Number(n)) => format!("{n}s"),
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(other) => {
                return Err(InvalidInput::new(format!(
                    "invalid wait timeout {other}: expected a duration such as 30s or 7d"
                )));
            }
        };
        let ms = parse_duration_ms(&timeout).ok_or_else(|| {
            InvalidInput::new(format!(
                "invalid wait timeout \"{timeout}\": expected a duration such as 30s or 7d"
            ))
        })?;
        crate::domain::destination::validate_url(&b.url)
            .map_err(|why| InvalidInput::new(format!("invalid wait url \"{}\": {why}", b.url)))?;
        let timeout_body = match b.timeout_body {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Bytes::from(s)),
            Some(other) => Some(Bytes::from(other.to_string())),
        };
        Ok(Self {
            run_id,
            event_id: event_id.into(),
            url: b.url.into(),
            headers,
            deadline_ms: now.saturating_add(ms.min(i64::MAX as u64 / 2) as i64),
            timeout: timeout.into(),
            timeout_url: b.timeout_url.filter(|u| !u.is_empty()).map(Into::into),
            timeout_body,
            timeout_headers: header_map(b.timeout_headers.as_ref(), "timeoutHeaders")?,
            step: b.step.head(),
        })
    }

    /// Heap bytes, for memory accounting.
    pub fn heap_size(&self) -> usize {
        self.headers.heap_size() + self.timeout_headers.heap_size() + self.url.len() + 200
    }
}

/// The event data of a webhook call (`context.waitForWebhook`): the SDK rebuilds a `Request`
/// from it.
pub fn webhook_event(
    method: &str,
    headers: &HeaderList,
    body: &[u8],
    host: &str,
    url: &str,
) -> Vec<u8> {
    use base64::Engine;
    let v = serde_json::json!({
        "method": method,
        "header": headers,
        "body": base64::engine::general_purpose::STANDARD.encode(body),
        "proto": "http",
        "host": host,
        "url": url,
    });
    serde_json::to_vec(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_sdk_wait_request() {
        let body = br#"{"url":"http://localhost:3000/wf","timeout":"20s","timeoutUrl":"http://localhost:3000/wf",
            "timeoutHeaders":{"Upstash-Workflow-RunId":["wfr_a"],"Upstash-Workflow-Runid":["wfr_a"],"content-type":["application/json"]},
            "step":{"stepId":2,"stepName":"w","stepType":"Wait","concurrent":1}}"#;
        let w = Waiter::parse("wfr_a".into(), "evt", body, HeaderList::default(), 1000).unwrap();
        assert_eq!(w.deadline_ms, 21_000);
        assert_eq!(w.step.step_id, 2);
        let runids: Vec<_> = w
            .timeout_headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("upstash-workflow-runid"))
            .collect();
        assert_eq!(runids.len(), 1, "case twins with the same value merge");
        let bare = br#"{"url":"http://x","timeout":30,"step":{"stepType":"Wait","stepName":"w"}}"#;
        assert_eq!(
            Waiter::parse("r".into(), "e", bare, HeaderList::default(), 0)
                .unwrap()
                .deadline_ms,
            30_000
        );
        let bad = br#"{"url":"http://x","timeout":"soon","step":{}}"#;
        assert!(Waiter::parse("r".into(), "e", bad, HeaderList::default(), 0).is_err());
    }
}
