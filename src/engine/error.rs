//! What the broker's operations can refuse; `http::ApiError` maps each kind to a status.

use crate::config::Quota;
use crate::domain::options::InvalidInput;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BrokerError {
    /// Bad input: 400.
    #[error("{0}")]
    Invalid(String),
    /// Something named does not exist (for this user): 404.
    #[error("{what} {name} not found")]
    NotFound { what: &'static str, name: String },
    /// A simulated plan limit was reached: 412.
    #[error("the {quota} quota allows at most {max} {what}")]
    Quota {
        quota: String,
        max: String,
        what: &'static str,
    },
    /// A value above the plan's limit, described by the validation that found it: 412.
    #[error("{0}")]
    OverQuota(String),
}

impl BrokerError {
    pub fn not_found(what: &'static str, name: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            name: name.into(),
        }
    }

    /// `max` of `what` ("queues", "schedules", …) reached under `quota`.
    pub fn quota(quota: &Quota, max: impl ToString, what: &'static str) -> Self {
        Self::Quota {
            quota: quota.kind.to_string(),
            max: max.to_string(),
            what,
        }
    }
}

impl From<InvalidInput> for BrokerError {
    fn from(e: InvalidInput) -> Self {
        if e.over_quota {
            Self::OverQuota(e.message)
        } else {
            Self::Invalid(e.message)
        }
    }
}
