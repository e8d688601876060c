//! Configuration headers on a DLQ retry request, which override what the dead message was
//! published with.

use std::sync::Arc;

use super::{Pair, Parsed, RawConfig, Result, parse};
use crate::config::Quota;
use crate::domain::message::DeliveryOptions;

/// The overriding settings of one retry request, parsed once for all the entries it retries.
pub struct Overrides {
    parsed: Parsed,
    method: bool,
    retries: bool,
    retry_delay: bool,
    timeout: bool,
    callback: bool,
    failure_callback: bool,
    labels: bool,
    flow_control: bool,
}

impl Overrides {
    pub fn parse(pairs: &[Pair<'_>], quota: &Quota, now_ms: i64) -> Result<Self> {
        let raw = RawConfig::collect(pairs, "upstash-");
        let parsed = parse(pairs, quota, now_ms)?;
        Ok(Self {
            method: raw.method.is_some(),
            retries: raw.retries.is_some(),
            retry_delay: raw.retry_delay.is_some(),
            timeout: raw.timeout.is_some(),
            callback: raw.callback.is_some(),
            failure_callback: raw.failure_callback.is_some(),
            labels: raw.label.is_some(),
            flow_control: raw.flow_key.is_some(),
            parsed,
        })
    }

    fn any(&self) -> bool {
        self.method
            || self.retries
            || self.retry_delay
            || self.timeout
            || self.callback
            || self.failure_callback
            || self.labels
            || self.flow_control
    }

    /// `base` with the overridden settings replaced, and the first attempt's time.
    pub fn apply(&self, base: &Arc<DeliveryOptions>, now_ms: i64) -> (Arc<DeliveryOptions>, i64) {
        let at = self.parsed.first_attempt_at(now_ms);
        if !self.any() {
            return (base.clone(), at);
        }
        let o = &self.parsed.options;
        let mut merged = DeliveryOptions::clone(base);
        if self.method {
            merged.method = o.method;
        }
        if self.retries {
            merged.retries = o.retries;
        }
        if self.retry_delay {
            merged.retry_delay = o.retry_delay.clone();
        }
        if self.timeout {
            merged.timeout_ms = o.timeout_ms;
        }
        if self.callback {
            merged.callback = o.callback.clone();
        }
        if self.failure_callback {
            merged.failure_callback = o.failure_callback.clone();
        }
        if self.labels {
            merged.labels = o.labels.clone();
        }
        if self.flow_control {
            merged.flow_control = o.flow_control.clone();
        }
        (Arc::new(merged), at)
    }
}
