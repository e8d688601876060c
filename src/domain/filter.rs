//! The selection filters shared by logs, the DLQ and bulk cancel: query parameters like
//! `?topicName=a&label=x,y&fromDate=…`, or the same keys in a JSON body.

use super::log::StateFilter;
use super::message::MessageSpec;
use super::options::InvalidInput;

/// Which route a filter is for: each accepts the parameters the official SDKs send to it and
/// refuses the rest, so a typo (`labeel=x`) is an error instead of silently selecting
/// everything, which on a bulk delete deletes everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// `GET /v2/events`, `GET /v2/logs`.
    Logs,
    /// `GET /v2/dlq` and the DLQ bulk delete and retry.
    Dlq,
    /// Bulk cancel, `DELETE /v2/messages`.
    Cancel,
}

impl Scope {
    fn accepts(self, name: &str) -> bool {
        const COMMON: [&str; 17] = [
            "messageId",
            "url",
            "topicName",
            "urlGroup",
            "scheduleId",
            "queueName",
            "label",
            "flowControlKey",
            "callerIp",
            "callerIP",
            "fromDate",
            "toDate",
            "count",
            "cursor",
            // Deprecated in the SDK types ("ignored"), still sent by older callers.
            "api",
            // Authentication by query parameter, read by the auth extractor.
            "qstash_token",
            "trimBody",
        ];
        COMMON.contains(&name)
            || match self {
                Self::Logs => matches!(
                    name,
                    "messageIds" | "state" | "host" | "path" | "workflowRunId" | "workflowUrl"
                ),
                // The SDK types say the DLQ rejects host/path; `source=workflow` selects the
                // workflow DLQ.
                Self::Dlq => matches!(name, "dlqId" | "dlqIds" | "responseStatus" | "source"),
                Self::Cancel => matches!(name, "messageIds" | "host" | "path"),
            }
    }

    fn route(self) -> &'static str {
        match self {
            Self::Logs => "the logs",
            Self::Dlq => "the DLQ",
            Self::Cancel => "bulk cancel",
        }
    }
}

/// Most items one bulk call (cancel, DLQ delete or retry) acts on when `count` is given.
pub const MAX_BULK_COUNT: usize = 500;

/// Values within one filter are OR-ed, different filters AND-ed; empty = no constraint.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub message_ids: Vec<String>,
    pub urls: Vec<String>,
    pub topic_names: Vec<String>,
    pub schedule_ids: Vec<String>,
    pub queue_names: Vec<String>,
    pub labels: Vec<String>,
    pub flow_control_keys: Vec<String>,
    pub caller_ips: Vec<String>,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub dlq_ids: Vec<String>,
    /// The messages of these workflow runs (logs only), to follow a run message by message.
    pub workflow_run_ids: Vec<String>,
    pub workflow_urls: Vec<String>,
    pub response_statuses: Vec<u16>,
    pub state: Option<StateFilter>,
    pub from_date: Option<i64>,
    pub to_date: Option<i64>,
    pub count: Option<usize>,
    pub cursor: Option<String>,
}

impl Filter {
    /// Reads filter keys from (name, value) pairs; a name `scope` does not know is an error.
    pub fn from_pairs<'a>(
        scope: Scope,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, InvalidInput> {
        let mut f = Self::default();
        for (name, value) in pairs {
            if !scope.accepts(name) {
                return Err(InvalidInput::new(format!(
                    "unknown parameter \"{name}\": {} does not filter by it",
                    scope.route()
                )));
            }
            let multi = |into: &mut Vec<String>| push_list(into, value);
            match name {
                "messageId" | "messageIds" => multi(&mut f.message_ids),
                "url"
                    if !value.is_empty() => {
                        f.urls.push(value.to_string())
                    }
                "topicName" | "urlGroup" => multi(&mut f.topic_names),
                "scheduleId" => multi(&mut f.schedule_ids),
                "queueName" => multi(&mut f.queue_names),
                "label" => multi(&mut f.labels),
                "flowControlKey" => multi(&mut f.flow_control_keys),
                "callerIp" | "callerIP" => multi(&mut f.caller_ips),
                "host" => multi(&mut f.hosts),
                "path" => multi(&mut f.paths),
                "dlqId" | "dlqIds" => multi(&mut f.dlq_ids),
                "workflowRunId" => multi(&mut f.workflow_run_ids),
                "workflowUrl" if !value.is_empty() => f.workflow_urls.push(value.to_string()),
                "responseStatus" => {
                    for v in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                        f.response_statuses.push(v.parse().map_err(|_| {
                            InvalidInput::new(format!("invalid responseStatus \"{v}\": expected an HTTP status code"))
                        })?);
                    }
                }
                "state" if !value.is_empty() => {
                    f.state = Some(value.parse().map_err(|_| {
                        InvalidInput::new(format!(
                            "invalid state \"{value}\": expected CREATED, ACTIVE, RETRY, ERROR, DELIVERED, FAILED, CANCEL_REQUESTED, CANCELED or IN_PROGRESS"
                        ))
                    })?)
                }
                "fromDate" if !value.is_empty() => f.from_date = Some(int(name, value)?),
                "toDate" if !value.is_empty() => f.to_date = Some(int(name, value)?),
                "count" if !value.is_empty() => f.count = Some(count(value)?),
                "cursor" if !value.is_empty() => f.cursor = Some(value.to_string()),
                _ => {}
            }
        }
        Ok(f)
    }

    /// Reads the same keys from a JSON object body (arrays, strings and numbers accepted).
    pub fn from_json(scope: Scope, body: &serde_json::Value) -> Result<Self, InvalidInput> {
        let obj = body
            .as_object()
            .ok_or_else(|| InvalidInput::new("the request body must be a JSON object"))?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (k, v) in obj {
            let mut push = |v: &serde_json::Value| match v {
                serde_json::Value::String(s) => pairs.push((k.clone(), s.clone())),
                serde_json::Value::Number(n) => pairs.push((k.clone(), n.to_string())),
                serde_json::Value::Bool(b) => pairs.push((k.clone(), b.to_string())),
                _ => {}
            };
            match v {
                serde_json::Value::Array(items) => items.iter().for_each(&mut push),
                other => push(other),
            }
        }
        Self::from_pairs(scope, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The `count` of a bulk action: at most [`MAX_BULK_COUNT`]; `None` when not given.
    pub fn bulk_count(&self) -> Result<Option<usize>, InvalidInput> {
        match self.count {
            Some(n) if n > MAX_BULK_COUNT => Err(InvalidInput::new(format!(
                "invalid count \"{n}\": a bulk action takes at most {MAX_BULK_COUNT} at a time"
            ))),
            other => Ok(other),
        }
    }

    pub fn in_dates(&self, time: i64) -> bool {
        self.from_date.is_none_or(|f| time >= f) && self.to_date.is_none_or(|t| time <= t)
    }

    /// Checks the message-describing filters (ids, destination, origin, labels, caller).
    pub fn matches_spec(&self, spec: &MessageSpec) -> bool {
        let origin = spec.origin();
        let any = |wanted: &[String], have: Option<&str>| {
            wanted.is_empty() || have.is_some_and(|h| wanted.iter().any(|w| w == h))
        };
        if !self.message_ids.is_empty() {
            let id = spec.id.to_string();
            if !self.message_ids.contains(&id) {
                return false;
            }
        }
        if !any(&self.urls, Some(&spec.url))
            || !any(&self.topic_names, origin.topic_name.as_deref())
            || !any(&self.schedule_ids, origin.schedule_id.as_deref())
            || !any(&self.queue_names, origin.queue_name.as_deref())
            || !any(
                &self.flow_control_keys,
                spec.flow_control().map(|f| &*f.key),
            )
        {
            return false;
        }
        let tag = spec.options.workflow.as_deref();
        if !any(&self.workflow_run_ids, tag.map(|t| &*t.run_id))
            || !any(&self.workflow_urls, tag.and_then(|t| t.url.as_deref()))
        {
            return false;
        }
        if !self.labels.is_empty()
            && !spec
                .options
                .labels
                .iter()
                .any(|l| self.labels.iter().any(|w| **w == **l))
        {
            return false;
        }
        if !self.caller_ips.is_empty() && !self.caller_ips.contains(&spec.caller_ip.to_string()) {
            return false;
        }
        if !self.hosts.is_empty() || !self.paths.is_empty() {
            let Ok(url) = url::Url::parse(&spec.url) else {
                return false;
            };
            if !any(&self.hosts, url.host_str()) || !any(&self.paths, Some(url.path())) {
                return false;
            }
        }
        true
    }
}

/// An integer filter parameter, or a 400 naming it.
pub fn int(name: &str, value: &str) -> Result<i64, InvalidInput> {
    value
        .trim()
        .parse()
        .map_err(|_| InvalidInput::new(format!("invalid {name} \"{value}\": expected an integer")))
}

/// A page size (`count`): at least 1.
pub fn count(value: &str) -> Result<usize, InvalidInput> {
    let n = int("count", value)?;
    if n < 1 {
        return Err(InvalidInput::new(format!(
            "invalid count \"{value}\": must be at least 1"
        )));
    }
    Ok(n as usize)
}

/// Appends the comma-separated values of a filter parameter (`a,b`), trimmed, empty ones
/// left out: every list filter of the logs and DLQ routes reads its values this way.
pub fn push_list(into: &mut Vec<String>, value: &str) {
    into.extend(
        value
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_values_and_errors() {
        let f = Filter::from_pairs(
            Scope::Logs,
            [
                ("label", "a,b"),
                ("label", "c"),
                ("count", "10"),
                ("state", "cancelled"),
            ],
        )
        .unwrap();
        assert_eq!(f.labels, ["a", "b", "c"]);
        assert_eq!(f.count, Some(10));
        assert!(f.state.is_some());
        assert!(Filter::from_pairs(Scope::Logs, [("count", "0")]).is_err());
        assert!(
            Filter::from_pairs(Scope::Logs, [("fromDate", "yesterday")])
                .unwrap_err()
                .message
                .contains("fromDate")
        );
        assert!(
            Filter::from_pairs(Scope::Logs, [("state", "DONE")])
                .unwrap_err()
                .message
                .contains("state")
        );
        let paging = Filter::from_pairs(Scope::Dlq, [("count", "5"), ("cursor", "x")]).unwrap();
        assert_eq!(
            (paging.count, paging.cursor.as_deref()),
            (Some(5), Some("x"))
        );
    }

    #[test]
    fn json_body() {
        let f = Filter::from_json(
            Scope::Cancel,
            &serde_json::json!({"messageIds": ["msg_a", "msg_b"], "count": 3}),
        )
        .unwrap();
        assert_eq!(f.message_ids, ["msg_a", "msg_b"]);
        assert_eq!(f.count, Some(3));
        assert!(Filter::from_json(Scope::Cancel, &serde_json::json!([1])).is_err());
    }

    #[test]
    fn unknown_parameters_are_named_and_scopes_differ() {
        let err = Filter::from_pairs(Scope::Dlq, [("labeel", "x")]).unwrap_err();
        assert!(err.message.contains("\"labeel\""), "{}", err.message);
        assert!(Filter::from_pairs(Scope::Dlq, [("host", "a")]).is_err());
        assert!(Filter::from_pairs(Scope::Logs, [("host", "a"), ("trimBody", "1")]).is_ok());
        assert!(Filter::from_pairs(Scope::Cancel, [("dlqIds", "1-0")]).is_err());
        assert!(
            Filter::from_pairs(Scope::Dlq, [("source", "workflow"), ("qstash_token", "t")]).is_ok()
        );
        let too_many = Filter::from_pairs(Scope::Cancel, [("count", "501")]).unwrap();
        assert!(too_many.bulk_count().unwrap_err().message.contains("500"));
    }
}
