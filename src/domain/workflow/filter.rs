//! The selection of `DELETE /v2/workflows/runs` (bulk cancel): run ids, or filters on the
//! workflow URL (prefix unless `workflowUrlExactMatch=true`), host, path, dates, caller IP,
//! label and flow-control key. Values within a filter are OR-ed, filters AND-ed.

use super::run::Run;
use crate::domain::destination::host_key;
use crate::domain::filter::{count, int, push_list};
use crate::domain::options::InvalidInput;

/// Runs cancelled per call unless `count` says otherwise (the SDK's default too).
pub const DEFAULT_COUNT: usize = 100;

#[derive(Debug, Default)]
pub struct RunFilter {
    pub run_ids: Vec<String>,
    pub urls: Vec<String>,
    pub url_exact: bool,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub from_date: Option<i64>,
    pub to_date: Option<i64>,
    pub caller_ips: Vec<String>,
    pub labels: Vec<String>,
    pub flow_control_keys: Vec<String>,
    pub count: usize,
}

impl RunFilter {
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
                "workflowRunIds" | "workflowRunId" => list(&mut f.run_ids),
                // URLs may contain commas: one value per parameter.
                "workflowUrl" if !value.is_empty() => f.urls.push(value.to_string()),
                "workflowUrlExactMatch" => f.url_exact = value.eq_ignore_ascii_case("true"),
                "host" => list(&mut f.hosts),
                "path" => list(&mut f.paths),
                "fromDate" if !value.is_empty() => f.from_date = Some(int(name, value)?),
                "toDate" if !value.is_empty() => f.to_date = Some(int(name, value)?),
                "callerIp" | "callerIP" => list(&mut f.caller_ips),
                "label" => list(&mut f.labels),
                "flowControlKey" => list(&mut f.flow_control_keys),
                "count" if !value.is_empty() => f.count = count(value)?,
                _ => {}
            }
        }
        Ok(f)
    }

    /// Listed run ids select on their own; otherwise every filter must hold.
    pub fn matches(&self, r: &Run) -> bool {
        if !self.run_ids.is_empty() {
            return self.run_ids.iter().any(|id| **id == *r.id);
        }
        let url_ok = self.urls.is_empty()
            || self.urls.iter().any(|u| {
                if self.url_exact {
                    **u == *r.url
                } else {
                    r.url.starts_with(u.as_str())
                }
            });
        let path = url::Url::parse(&r.url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        url_ok
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| host_matches(h, &r.url)))
            && (self.paths.is_empty() || self.paths.contains(&path))
            && self.from_date.is_none_or(|d| r.created_at >= d)
            && self.to_date.is_none_or(|d| r.created_at <= d)
            && (self.caller_ips.is_empty()
                || self
                    .caller_ips
                    .iter()
                    .any(|ip| *ip == r.caller_ip.to_string()))
            && (self.labels.is_empty()
                || self
                    .labels
                    .iter()
                    .any(|l| r.labels.iter().any(|x| **x == **l)))
            && (self.flow_control_keys.is_empty()
                || r.flow_control_key
                    .as_deref()
                    .is_some_and(|k| self.flow_control_keys.iter().any(|x| x == k)))
    }

    /// How many runs one call cancels: all listed ids, else `count`.
    pub fn limit(&self) -> usize {
        if self.run_ids.is_empty() {
            self.count
        } else {
            self.run_ids.len()
        }
    }
}

fn host_matches(host: &str, url: &str) -> bool {
    let key = host_key(url);
    key == host || key.split(':').next() == Some(host)
}
