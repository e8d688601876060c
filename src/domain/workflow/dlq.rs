//! The workflow DLQ (`GET /v2/dlq?source=workflow`, `/v2/workflows/dlq`): the DLQ entries of
//! step messages that failed their run, with the run they belong to, and the selection the
//! workflow SDK sends for listing, deleting, resuming and restarting them.

use crate::domain::filter::push_list;
use serde::{Deserialize, Serialize};

use crate::domain::dlq::DlqEntry;
use crate::domain::filter::{Filter, Scope};
use crate::domain::options::InvalidInput;

/// Resumes and restarts one call makes at most (the spec's limit).
pub const MAX_RECOVER: usize = 50;

/// The run a workflow DLQ entry failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRef {
    pub run_id: String,
    pub created_at: i64,
    pub url: String,
}

/// The workflow DLQ's selection: the DLQ's own filters plus the run's.
#[derive(Debug, Default)]
pub struct WorkflowDlqFilter {
    pub base: Filter,
    pub workflow_urls: Vec<String>,
    pub run_ids: Vec<String>,
    pub created_at: Option<i64>,
    pub failure_states: Vec<String>,
}

impl WorkflowDlqFilter {
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, InvalidInput> {
        let mut f = Self::default();
        let mut rest = Vec::new();
        for (name, value) in pairs {
            let list = |into: &mut Vec<String>| push_list(into, value);
            match name {
                "workflowUrl" if !value.is_empty() => f.workflow_urls.push(value.to_string()),
                "workflowRunId" | "workflowRunIds" => list(&mut f.run_ids),
                "workflowCreatedAt" if !value.is_empty() => {
                    f.created_at = Some(value.trim().parse().map_err(|_| {
                        InvalidInput::new(format!(
                            "invalid workflowCreatedAt \"{value}\": expected an integer"
                        ))
                    })?)
                }
                "failureFunctionState" => list(&mut f.failure_states),
                "workflowUrl" | "workflowCreatedAt" => {}
                _ => rest.push((name, value)),
            }
        }
        f.base = Filter::from_pairs(Scope::Dlq, rest)?;
        Ok(f)
    }

    /// `failure_state`: the state of the run's failure function, if it has one.
    pub fn matches(&self, e: &DlqEntry, failure_state: Option<&str>) -> bool {
        let Some(run) = &e.workflow else {
            return false;
        };
        if !self.base.dlq_ids.is_empty() {
            return self.base.dlq_ids.iter().any(|id| **id == *e.dlq_id);
        }
        let any =
            |wanted: &[String], have: &str| wanted.is_empty() || wanted.iter().any(|w| w == have);
        any(&self.workflow_urls, &run.url)
            && any(&self.run_ids, &run.run_id)
            && self.created_at.is_none_or(|t| t == run.created_at)
            && (self.failure_states.is_empty()
                || failure_state.is_some_and(|s| self.failure_states.iter().any(|w| w == s)))
            && (self.base.response_statuses.is_empty()
                || self.base.response_statuses.contains(&e.response.status))
            && self.base.in_dates(e.created_at)
            && self.base.matches_spec(&e.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_run_filters_from_the_dlq_ones() {
        let f = WorkflowDlqFilter::from_pairs([
            ("source", "workflow"),
            ("workflowRunId", "wfr_a"),
            ("workflowUrl", "http://x/a,b"),
            ("failureFunctionState", "CALLBACK_FAIL"),
            ("label", "l"),
            ("count", "3"),
        ])
        .unwrap();
        assert_eq!(f.run_ids, ["wfr_a"]);
        assert_eq!(f.workflow_urls, ["http://x/a,b"]);
        assert_eq!(f.failure_states, ["CALLBACK_FAIL"]);
        assert_eq!((f.base.labels.len(), f.base.count), (1, Some(3)));
        let err = WorkflowDlqFilter::from_pairs([("workflowCreatedAt", "soon")]).unwrap_err();
        assert!(err.message.contains("workflowCreatedAt"));
        assert!(WorkflowDlqFilter::from_pairs([("stateX", "1")]).is_err());
    }
}
