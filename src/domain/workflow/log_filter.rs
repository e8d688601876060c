//! The selection of the run logs (`GET /v2/workflows/events|logs`): what `client.logs()`
//! sends (`groupBy`, `cursor`, `count`, the filter fields) and the opaque cursor of the next
//! page. Runs are listed newest first; values within a filter are OR-ed, filters AND-ed.

use crate::domain::filter::{count, int, push_list};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::run::{Run, RunState};
use crate::domain::options::InvalidInput;

/// Runs per page unless `count` says otherwise (the SDK's documented default).
pub const DEFAULT_COUNT: usize = 10;
/// Most runs one page holds.
pub const MAX_COUNT: usize = 1000;

#[derive(Debug, Default)]
pub struct LogFilter {
    pub run_ids: Vec<String>,
    pub urls: Vec<String>,
    pub created_at: Option<i64>,
    /// `workflowRuns=id@createdAt,…`
    pub runs: Vec<(String, i64)>,
    pub state: Option<RunState>,
    pub from_date: Option<i64>,
    pub to_date: Option<i64>,
    pub labels: Vec<String>,
    pub flow_control_keys: Vec<String>,
    pub caller_ips: Vec<String>,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub message_ids: Vec<String>,
    pub count: usize,
    /// Where the previous page ended: (createdAt, run id) of its last run.
    pub after: Option<(i64, String)>,
}

fn state(v: &str) -> Result<RunState, InvalidInput> {
    [
        RunState::Started,
        RunState::Success,
        RunState::Failed,
        RunState::Canceled,
    ]
    .into_iter()
    .find(|s| {
        s.as_str().eq_ignore_ascii_case(v) || (v == "RUN_CANCELLED" && *s == RunState::Canceled)
    })
    .ok_or_else(|| {
        InvalidInput::new(format!(
            "invalid state \"{v}\": expected RUN_STARTED, RUN_SUCCESS, RUN_FAILED or RUN_CANCELED"
        ))
    })
}

/// The cursor after the run `(created_at, id)`.
pub fn cursor_after(created_at: i64, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{created_at}:{id}"))
}

fn parse_cursor(c: &str) -> Result<(i64, String), InvalidInput> {
    let bad = || {
        InvalidInput::new(format!(
            "invalid cursor \"{c}\": pass the cursor of the previous page"
        ))
    };
    let text = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (at, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((at.parse().map_err(|_| bad())?, id.to_string()))
}

impl LogFilter {
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, InvalidInput> {
        let mut f = Self {
            count: DEFAULT_COUNT,
            ..Self::default()
        };
        for (name, value) in pairs {
            let list = |into: &mut Vec<String>| push_list(into, value);
            match name {
                "workflowRunId" | "workflowRunIds" => list(&mut f.run_ids),
                // URLs may contain commas: one value per parameter.
                "workflowUrl" if !value.is_empty() => f.urls.push(value.to_string()),
                "workflowCreatedAt" if !value.is_empty() => f.created_at = Some(int(name, value)?),
                "workflowRuns" => {
                    for item in value.split(',').map(str::trim).filter(|v| !v.is_empty()) {
                        let (id, at) = item.rsplit_once('@').ok_or_else(|| {
                            InvalidInput::new(format!(
                                "invalid workflowRuns item \"{item}\": expected <workflowRunId>@<createdAt>"
                            ))
                        })?;
                        f.runs
                            .push((id.to_string(), int("workflowRuns createdAt", at)?));
                    }
                }
                "state" if !value.is_empty() => f.state = Some(state(value)?),
                "fromDate" if !value.is_empty() => f.from_date = Some(int(name, value)?),
                "toDate" if !value.is_empty() => f.to_date = Some(int(name, value)?),
                "label" => list(&mut f.labels),
                "flowControlKey" => list(&mut f.flow_control_keys),
                "callerIp" | "callerIP" => list(&mut f.caller_ips),
                "host" => list(&mut f.hosts),
                "path" => list(&mut f.paths),
                "messageId" => list(&mut f.message_ids),
                "count" if !value.is_empty() => f.count = count(value)?.min(MAX_COUNT),
                "cursor" if !value.is_empty() => f.after = Some(parse_cursor(value)?),
                // Always sent by the SDK (runs are the only grouping); bodies are never trimmed.
                "groupBy" | "trimBody" | "qstash_token" => {}
                "workflowUrl" | "workflowCreatedAt" | "state" | "fromDate" | "toDate" | "count"
                | "cursor" => {}
                other => {
                    return Err(InvalidInput::new(format!(
                        "unknown parameter \"{other}\": the workflow logs do not filter by it"
                    )));
                }
            }
        }
        Ok(f)
    }

    /// Whether the run comes after the cursor (newest first: older, or as old with a
    /// smaller id).
    pub fn after_cursor(&self, r: &Run) -> bool {
        self.after
            .as_ref()
            .is_none_or(|(at, id)| (r.created_at, &*r.id) < (*at, id.as_str()))
    }

    pub fn matches(&self, r: &Run) -> bool {
        let any =
            |wanted: &[String], have: &str| wanted.is_empty() || wanted.iter().any(|w| w == have);
        let url = url::Url::parse(&r.url).ok();
        any(&self.run_ids, &r.id)
            && any(&self.urls, &r.url)
            && self.created_at.is_none_or(|t| t == r.created_at)
            && (self.runs.is_empty()
                || self
                    .runs
                    .iter()
                    .any(|(id, at)| **id == *r.id && *at == r.created_at))
            && self.state.is_none_or(|s| s == r.state)
            && self.from_date.is_none_or(|d| r.created_at >= d)
            && self.to_date.is_none_or(|d| r.created_at <= d)
            && (self.labels.is_empty()
                || self
                    .labels
                    .iter()
                    .any(|l| r.labels.iter().any(|x| **x == **l)))
            && (self.flow_control_keys.is_empty()
                || r.flow_control_key
                    .as_deref()
                    .is_some_and(|k| self.flow_control_keys.iter().any(|x| x == k)))
            && any(&self.caller_ips, &r.caller_ip.to_string())
            && (self.hosts.is_empty()
                || url
                    .as_ref()
                    .and_then(|u| u.host_str())
                    .is_some_and(|h| self.hosts.iter().any(|x| x == h)))
            && (self.paths.is_empty()
                || url
                    .as_ref()
                    .is_some_and(|u| self.paths.iter().any(|x| x == u.path())))
            && (self.message_ids.is_empty()
                || r.steps.iter().any(|s| {
                    self.message_ids
                        .iter()
                        .any(|m| *m == s.message_id.to_string())
                }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_the_sdk_sends_and_names_bad_fields() {
        let f = LogFilter::from_pairs([
            ("groupBy", "workflowRunId"),
            ("count", "5000"),
            ("state", "RUN_FAILED"),
            ("label", "a,b"),
            ("workflowRuns", "wfr_a@1,wfr_b@2"),
        ])
        .unwrap();
        assert_eq!(f.count, MAX_COUNT);
        assert_eq!(f.state, Some(RunState::Failed));
        assert_eq!(f.labels, ["a", "b"]);
        assert_eq!(f.runs, [("wfr_a".to_string(), 1), ("wfr_b".to_string(), 2)]);
        assert_eq!(LogFilter::from_pairs([]).unwrap().count, DEFAULT_COUNT);
        for (name, value) in [
            ("state", "DONE"),
            ("count", "0"),
            ("cursor", "!!"),
            ("fromDate", "x"),
            ("workflowRuns", "nope"),
            ("labeel", "x"),
        ] {
            let err = LogFilter::from_pairs([(name, value)]).unwrap_err();
            assert!(err.message.contains(name), "{name}: {}", err.message);
        }
        let c = cursor_after(17, "wfr_x:y");
        let f = LogFilter::from_pairs([("cursor", c.as_str())]).unwrap();
        assert_eq!(f.after, Some((17, "wfr_x:y".to_string())));
    }
}
