//! What a step says about itself (`stepId`, `stepName`, `stepType`, …), read once when the
//! step is recorded and kept for the run's logs; and the steps the server writes itself
//! (wait results, invoke results).
//!
//! `out` is not copied here: it can be megabytes, and the step's recorded fragment already
//! holds it ([`super::steps::RawStep::body`] gives it back when a log needs it).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The identifying fields of a step, and the ones specific to its type.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepMeta {
    #[serde(default)]
    pub step_id: u64,
    #[serde(default)]
    pub step_name: String,
    #[serde(default)]
    pub step_type: String,
    #[serde(default = "one")]
    pub concurrent: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_step: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_for: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep_until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_method: Option<String>,
    /// For `context.call`: the request's headers and body (recorded from its message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_headers: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_event_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_timeout: Option<bool>,
    /// When the wait would have timed out (ms); the server writes it into wait results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_timeout_deadline: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_workflow_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_workflow_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoked_workflow_created_at: Option<i64>,
}

fn one() -> u64 {
    1
}

impl StepMeta {
    /// Reads a step message's body; `None` when it is not a step object.
    pub fn parse(body: &[u8]) -> Option<Box<Self>> {
        serde_json::from_slice::<Self>(body)
            .ok()
            .filter(|m| !m.step_type.is_empty())
            .map(Box::new)
    }

    /// The identifying fields only (the step a wait or invoke result answers).
    pub fn head(&self) -> Self {
        Self {
            step_id: self.step_id,
            step_name: self.step_name.clone(),
            step_type: self.step_type.clone(),
            concurrent: self.concurrent,
            target_step: self.target_step,
            ..Self::default()
        }
    }
}

/// The result step of a wait: the event data (base64, as the SDKs decode it) or a timeout.
/// `deadline` (ms) is for the run logs; the SDKs ignore it.
pub fn wait_result(
    step: &StepMeta,
    event_id: &str,
    (timeout, deadline): (&str, i64),
    data: Option<&[u8]>,
) -> Vec<u8> {
    use base64::Engine;
    let mut v = serde_json::to_value(step.head()).unwrap_or_default();
    v["waitEventId"] = event_id.into();
    v["timeout"] = timeout.into();
    v["waitTimeoutDeadline"] = deadline.into();
    match data {
        Some(d) => {
            v["out"] = base64::engine::general_purpose::STANDARD.encode(d).into();
            v["waitTimeout"] = false.into();
        }
        None => v["waitTimeout"] = true.into(),
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The result step of an invoke: `out` is the JSON text of `{body?, isFailed, isCanceled}`,
/// `body` being the invoked run's result as text (absent when there is none).
pub fn invoke_result(
    step: &StepMeta,
    body: Option<&[u8]>,
    failed: bool,
    canceled: bool,
    invoked: (&str, &str, i64),
) -> Vec<u8> {
    let mut out = serde_json::Map::new();
    if let Some(b) = body.filter(|b| !b.is_empty()) {
        out.insert("body".into(), String::from_utf8_lossy(b).into());
    }
    out.insert("isFailed".into(), failed.into());
    out.insert("isCanceled".into(), canceled.into());
    let mut meta = step.head();
    meta.step_type = "Invoke".into();
    meta.invoked_workflow_run_id = Some(invoked.0.into());
    meta.invoked_workflow_url = Some(invoked.1.into());
    meta.invoked_workflow_created_at = Some(invoked.2);
    let mut v = serde_json::to_value(meta).unwrap_or_default();
    v["out"] = Value::Object(out).to_string().into();
    serde_json::to_vec(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_both_sdks_send() {
        let js = br#"{"stepId":2,"stepName":"s","stepType":"Run","out":"\"x\"","concurrent":1}"#;
        let m = StepMeta::parse(js).unwrap();
        assert_eq!((m.step_id, m.step_name.as_str(), m.concurrent), (2, "s", 1));
        let py = br#"{"method":"POST","stepId":1,"stepName":"p","stepType":"SleepFor","out":"null","sleepFor":"5s","sleepUntil":null,"concurrent":1,"targetStep":null,"callUrl":null}"#;
        let m = StepMeta::parse(py).unwrap();
        assert_eq!(m.sleep_for, Some(Value::from("5s")));
        assert!(StepMeta::parse(b"\"just a payload\"").is_none());
        assert!(StepMeta::parse(b"{\"a\":1}").is_none());
    }

    #[test]
    fn server_written_steps() {
        let step = StepMeta {
            step_id: 3,
            step_name: "w".into(),
            step_type: "Wait".into(),
            concurrent: 1,
            ..Default::default()
        };
        let v: Value =
            serde_json::from_slice(&wait_result(&step, "e", ("7d", 9), Some(b"hi"))).unwrap();
        assert_eq!(v["out"], "aGk=");
        assert_eq!(v["waitTimeout"], false);
        let v: Value = serde_json::from_slice(&wait_result(&step, "e", ("7d", 9), None)).unwrap();
        assert!(v.get("out").is_none() && v["waitTimeout"] == true);
        let v: Value = serde_json::from_slice(&invoke_result(
            &step,
            Some(b"{\"r\":1}"),
            false,
            false,
            ("wfr_c", "u", 5),
        ))
        .unwrap();
        assert_eq!(v["stepType"], "Invoke");
        let out: Value = serde_json::from_str(v["out"].as_str().unwrap()).unwrap();
        assert_eq!(out["body"], "{\"r\":1}");
    }
}
