//! `context.invoke`: the Init message of the invoked run carries, instead of the initial
//! payload, a request naming the invoker run and the step waiting for the result.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::meta::StepMeta;
use super::wait::header_map;
use crate::domain::header_list::HeaderList;
use crate::domain::options::InvalidInput;

/// The run waiting for an invoked run's result, and how to deliver it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Invoker {
    pub run_id: Arc<str>,
    pub url: Arc<str>,
    pub created_at: i64,
    /// Configuration of the result step (the invoker's workflow headers).
    #[serde(with = "crate::domain::header_list::raw")]
    pub headers: HeaderList,
    /// The invoke step the result answers.
    pub step: StepMeta,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    headers: Option<Value>,
    workflow_run_id: String,
    #[serde(default)]
    workflow_run_created_at: Option<Value>,
    workflow_url: String,
    step: StepMeta,
}

/// Reads an invoke request: the invoked run's initial payload and its invoker.
pub fn parse(body: &[u8]) -> Result<(Bytes, Invoker), InvalidInput> {
    let r: Request = serde_json::from_slice(body)
        .map_err(|e| InvalidInput::new(format!("invalid workflow invoke body: {e}")))?;
    let initial = match r.body {
        None | Some(Value::Null) => Bytes::new(),
        Some(Value::String(s)) => Bytes::from(s),
        Some(other) => Bytes::from(other.to_string()),
    };
    let created_at = match r.workflow_run_created_at {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    };
    crate::domain::destination::validate_url(&r.workflow_url).map_err(|why| {
        InvalidInput::new(format!(
            "invalid invoke workflowUrl \"{}\": {why}",
            r.workflow_url
        ))
    })?;
    Ok((
        initial,
        Invoker {
            run_id: r.workflow_run_id.into(),
            url: r.workflow_url.into(),
            created_at,
            headers: header_map(r.headers.as_ref(), "headers")?,
            step: r.step.head(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_sdk_invoke_request() {
        let body = br#"{"body":"{\"n\":1}","headers":{"Upstash-Workflow-RunId":["wfr_p"],"Upstash-Workflow-Runid":["wfr_p"]},
            "workflowRunId":"wfr_p","workflowRunCreatedAt":17,"workflowUrl":"http://localhost:1/wf/parent",
            "step":{"stepId":3,"stepName":"inv","stepType":"Invoke","concurrent":1}}"#;
        let (initial, inv) = parse(body).unwrap();
        assert_eq!(&initial[..], b"{\"n\":1}");
        assert_eq!(
            (&*inv.run_id, inv.created_at, inv.step.step_id),
            ("wfr_p", 17, 3)
        );
        assert_eq!(inv.headers.iter().count(), 1);
        assert!(parse(b"{}").is_err());
    }
}
