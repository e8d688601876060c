//! Turns the `Upstash-*` headers (and their `?upstash-*` query twins) of a publish, enqueue,
//! batch item or schedule into validated [`DeliveryOptions`].
//!
//! One pass sorts the headers into a [`RawConfig`]; the callback and failure-callback messages
//! are configured by re-running the same pass under the `upstash-callback-` /
//! `upstash-failure-callback-` prefixes, so every option works at every level.

use std::sync::Arc;

mod overrides;
mod values;

pub use overrides::Overrides;
pub use values::{parse_flow_control_value, parse_redaction};

use super::duration::parse_duration_ms;
use super::header_list::{HeaderList, HeaderListBuilder};
use super::message::{CallbackTarget, DeliveryOptions, FlowControl, Method, Redaction};
use super::retry::RetryExpr;
use crate::config::Quota;

/// A publish-time validation failure; the text names the header at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidInput {
    pub message: String,
    /// The value is valid but above what the plan allows (answered 412, not 400: the
    /// workflow SDK turns a 412 into a non-retryable error and reads a 400 on a step as
    /// "the run is over").
    pub over_quota: bool,
}

impl InvalidInput {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            over_quota: false,
        }
    }

    pub fn over_quota(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            over_quota: true,
        }
    }

    pub fn header(name: &str, value: &str, expected: &str) -> Self {
        Self::new(format!("invalid {name} header \"{value}\": {expected}"))
    }
}

type Result<T> = std::result::Result<T, InvalidInput>;

/// One incoming header or query parameter: lower-case name, raw value.
pub type Pair<'a> = (&'a str, &'a [u8]);

/// Headers `Upstash-Header-Forward: true` does not pass on besides the framing ones: our
/// credentials, the content type (delivered as the message's own), and what the HTTP client
/// negotiates itself.
const NOT_FORWARDED: [&str; 4] = ["authorization", "content-type", "accept-encoding", "expect"];

/// Names that frame or route the HTTP exchange itself (`headers.md` §2.1). The server always
/// frames the delivered body and picks the host itself, so these are never forwarded, in
/// either forwarding mode: a forwarded `Content-Length: 5` on a longer body would truncate the
/// delivery (and break the signature's body hash), a forwarded `Host` would misroute it.
/// The SDKs forward the headers of the request they received, so this is everyday traffic.
pub fn is_framing_header(name: &str) -> bool {
    const FRAMING: [&str; 8] = [
        "host",
        "content-length",
        "connection",
        "transfer-encoding",
        "keep-alive",
        "upgrade",
        "te",
        "trailer",
    ];
    FRAMING.iter().any(|f| f.eq_ignore_ascii_case(name))
        || name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("proxy-"))
}

/// The configuration headers of one level (message, callback or failure callback), still
/// as text.
#[derive(Default, Debug)]
pub struct RawConfig<'a> {
    pub method: Option<&'a str>,
    pub delay: Option<&'a str>,
    pub not_before: Option<&'a str>,
    pub retries: Option<&'a str>,
    pub retry_delay: Option<&'a str>,
    pub timeout: Option<&'a str>,
    pub callback: Option<&'a str>,
    pub failure_callback: Option<&'a str>,
    pub label: Option<&'a str>,
    pub dedup_id: Option<&'a str>,
    pub content_dedup: Option<&'a str>,
    pub flow_key: Option<&'a str>,
    pub flow_value: Option<&'a str>,
    pub redact: Option<&'a str>,
    pub header_forward: Option<&'a str>,
    pub queue_name: Option<&'a str>,
    pub cron: Option<&'a str>,
    pub schedule_id: Option<&'a str>,
    pub content_type: Option<&'a [u8]>,
    /// `Upstash-Forward-*` (prefix stripped, original case of the suffix).
    pub forward: Vec<Pair<'a>>,
    /// `Upstash-Workflow-*` and `Upstash-Feature-Set` (suffix after the level's prefix).
    pub workflow: Vec<Pair<'a>>,
    /// A header whose value is not valid text, reported if it turns out to matter.
    pub bad_value: Option<&'a str>,
}

impl<'a> RawConfig<'a> {
    /// Sorts `pairs` (headers first, then query parameters, so a header beats its query twin)
    /// into the slots of the level named by `prefix` (`"upstash-"`, `"upstash-callback-"`, …).
    pub fn collect(pairs: &[Pair<'a>], prefix: &str) -> Self {
        let mut raw = Self::default();
        let top_level = prefix == "upstash-";
        for &(name, value) in pairs {
            let Some(suffix) = name.strip_prefix(prefix) else {
                if top_level && name == "content-type" {
                    raw.content_type.get_or_insert(value);
                }
                continue;
            };
            if let Some(fwd) = suffix.strip_prefix("forward-") {
                if !fwd.is_empty() {
                    raw.forward.push((fwd, value));
                }
                continue;
            }
            if suffix.starts_with("workflow-") || suffix == "feature-set" {
                raw.workflow.push((suffix, value));
                continue;
            }
            let slot = match suffix {
                "method" => &mut raw.method,
                "delay" => &mut raw.delay,
                "not-before" => &mut raw.not_before,
                "retries" => &mut raw.retries,
                "retry-delay" => &mut raw.retry_delay,
                "timeout" => &mut raw.timeout,
                "callback" => &mut raw.callback,
                "failure-callback" => &mut raw.failure_callback,
                "label" => &mut raw.label,
                "deduplication-id" => &mut raw.dedup_id,
                "content-based-deduplication" => &mut raw.content_dedup,
                "flow-control-key" => &mut raw.flow_key,
                "flow-control-value" => &mut raw.flow_value,
                "redact-fields" => &mut raw.redact,
                "header-forward" => &mut raw.header_forward,
                "queue-name" => &mut raw.queue_name,
                "cron" => &mut raw.cron,
                "schedule-id" => &mut raw.schedule_id,
                _ => continue,
            };
            if slot.is_none() {
                match std::str::from_utf8(value) {
                    Ok(text) => *slot = Some(text.trim()),
                    Err(_) => {
                        raw.bad_value.get_or_insert(name);
                    }
                }
            }
        }
        raw
    }
}

/// How a header of this level is named in error messages.
struct Level<'p> {
    /// `"Upstash-"`, `"Upstash-Callback-"`, `"Upstash-Failure-Callback-"`.
    display: &'p str,
    /// The lower-case prefix used to collect it.
    prefix: &'p str,
}

impl Level<'_> {
    fn name(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.display)
    }
}

/// Defaults a level inherits from its parent (callbacks reuse the message's retries).
#[derive(Clone, Copy)]
struct Inherited {
    retries: Option<u32>,
    json_content_type: bool,
}

/// The validated configuration of a publish-like request.
#[derive(Debug)]
pub struct Parsed {
    pub options: Arc<DeliveryOptions>,
    /// Absolute earliest delivery (ms) from `Upstash-Not-Before`, if given.
    pub not_before_ms: Option<i64>,
    /// `Upstash-Delay` in ms (0 when absent).
    pub delay_ms: u64,
    pub dedup: Option<Dedup>,
    pub queue_name: Option<String>,
    pub cron: Option<String>,
    pub schedule_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dedup {
    Id(String),
    ContentBased,
}

impl Parsed {
    /// When the first attempt may happen, given the time of the request.
    pub fn first_attempt_at(&self, now_ms: i64) -> i64 {
        match self.not_before_ms {
            Some(at) => at.max(now_ms),
            None => now_ms.saturating_add(self.delay_ms as i64),
        }
    }
}

/// Parses the configuration of a message. `pairs` are the request's headers (lower-case
/// names) followed by its `upstash-*` query parameters.
pub fn parse(pairs: &[Pair<'_>], quota: &Quota, now_ms: i64) -> Result<Parsed> {
    let level = Level {
        display: "Upstash-",
        prefix: "upstash-",
    };
    let raw = RawConfig::collect(pairs, level.prefix);
    if let Some(name) = raw.bad_value {
        return Err(InvalidInput::new(format!(
            "header {name} must be valid UTF-8 text"
        )));
    }
    let inherited = Inherited {
        retries: None,
        json_content_type: false,
    };
    let options = build_options(pairs, &raw, &level, inherited, quota)?;

    let not_before_ms = match raw.not_before {
        None => None,
        Some(v) => {
            let secs: i64 = v.parse().map_err(|_| {
                InvalidInput::header(
                    "Upstash-Not-Before",
                    v,
                    "expected a unix timestamp in seconds",
                )
            })?;
            let at = secs
                .checked_mul(1000)
                .filter(|ms| {
                    *ms >= 0 && *ms <= now_ms.saturating_add(MAX_SUPPORTED_DELAY_MS as i64)
                })
                .ok_or_else(|| {
                    InvalidInput::header(
                        "Upstash-Not-Before",
                        v,
                        "expected a unix timestamp in seconds",
                    )
                })?;
            if let Some(max) = quota.max_delay_ms
                && at - now_ms > max as i64
            {
                return Err(InvalidInput::new(format!(
                    "Upstash-Not-Before {v} is too far in the future: the {} quota allows at most {} days",
                    quota.kind,
                    max / 86_400_000
                )));
            }
            Some(at)
        }
    };
    let delay_ms = match raw.delay {
        None => 0,
        Some(v) => parse_delay(v, "Upstash-Delay", quota)?,
    };
    let dedup = match (raw.dedup_id, raw.content_dedup) {
        (Some(id), _) if !id.is_empty() => Some(Dedup::Id(id.to_string())),
        (_, Some(flag)) if flag.eq_ignore_ascii_case("true") => Some(Dedup::ContentBased),
        _ => None,
    };
    Ok(Parsed {
        options,
        not_before_ms,
        delay_ms,
        dedup,
        queue_name: raw.queue_name.map(str::to_string),
        cron: raw.cron.map(str::to_string),
        schedule_id: raw.schedule_id.map(str::to_string),
    })
}

/// Beyond this even an "unlimited" quota refuses a delay: time arithmetic must not overflow.
const MAX_SUPPORTED_DELAY_MS: u64 = 100 * 365 * 86_400_000;

fn parse_delay(v: &str, name: &str, quota: &Quota) -> Result<u64> {
    let ms = parse_duration_ms(v).ok_or_else(|| {
        InvalidInput::header(
            name,
            v,
            "expected a duration such as 50s, 10m, 2h, 1d10h30m or plain seconds",
        )
    })?;
    if ms > MAX_SUPPORTED_DELAY_MS {
        return Err(InvalidInput::new(format!(
            "{name} \"{v}\" is more than 100 years"
        )));
    }
    if let Some(max) = quota.max_delay_ms
        && ms > max
    {
        return Err(InvalidInput::new(format!(
            "{name} \"{v}\" exceeds the maximum delay of {} days of the {} quota",
            max / 86_400_000,
            quota.kind
        )));
    }
    Ok(ms)
}

fn build_options(
    pairs: &[Pair<'_>],
    raw: &RawConfig<'_>,
    level: &Level<'_>,
    inherited: Inherited,
    quota: &Quota,
) -> Result<Arc<DeliveryOptions>> {
    let method = match raw.method {
        None | Some("") => Method::Post,
        Some(v) => v.parse().map_err(|_| {
            InvalidInput::header(
                &level.name("Method"),
                v,
                "expected GET, POST, PUT, PATCH or DELETE",
            )
        })?,
    };
    let retries = match raw.retries {
        None | Some("") => inherited.retries.unwrap_or(3).min(quota.max_retries),
        Some(v) => {
            let n: u32 = v.parse().map_err(|_| {
                InvalidInput::header(&level.name("Retries"), v, "expected a non-negative integer")
            })?;
            if n > quota.max_retries {
                return Err(InvalidInput::over_quota(format!(
                    "{} {n} exceeds the maximum of {} retries of the {} quota",
                    level.name("Retries"),
                    quota.max_retries,
                    quota.kind
                )));
            }
            n
        }
    };
    let retry_delay = match raw.retry_delay {
        None | Some("") => None,
        Some(v) => Some(RetryExpr::parse(v).map_err(|why| {
            InvalidInput::new(format!(
                "invalid {} expression \"{v}\": {why}",
                level.name("Retry-Delay")
            ))
        })?),
    };
    let timeout_ms = match raw.timeout {
        None | Some("") => None,
        Some(v) => {
            let ms = parse_duration_ms(v).filter(|ms| *ms > 0).ok_or_else(|| {
                InvalidInput::header(
                    &level.name("Timeout"),
                    v,
                    "expected a positive duration such as 30s, 5m or plain seconds",
                )
            })?;
            if ms > quota.max_timeout_ms {
                return Err(InvalidInput::new(format!(
                    "{} \"{v}\" exceeds the maximum of {} hours of the {} quota",
                    level.name("Timeout"),
                    quota.max_timeout_ms / 3_600_000,
                    quota.kind
                )));
            }
            Some(ms)
        }
    };
    let headers = forwarded_headers(pairs, raw, inherited);
    let labels = raw
        .label
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(Box::from)
                .collect::<Vec<_>>()
                .into_boxed_slice()
        })
        .unwrap_or_default();
    let flow_control = parse_flow_control(raw, level)?;
    let workflow = super::workflow::tag::parse(
        &raw.workflow,
        pairs,
        level.display,
        level.prefix == "upstash-",
    )?
    .map(Box::new);
    let redact = match raw.redact {
        None => Redaction::default(),
        Some(v) => parse_redaction(v, &level.name("Redact-Fields"))?,
    };
    let callback = callback_target(
        pairs,
        raw.callback,
        level,
        "callback-",
        "Callback-",
        retries,
        quota,
    )?;
    let failure_callback = callback_target(
        pairs,
        raw.failure_callback,
        level,
        "failure-callback-",
        "Failure-Callback-",
        retries,
        quota,
    )?;
    Ok(Arc::new(DeliveryOptions {
        method,
        headers,
        retries,
        retry_delay,
        timeout_ms,
        callback,
        failure_callback,
        labels,
        flow_control,
        redact,
        workflow,
    }))
}

/// The caller's own headers `Upstash-Header-Forward: true` passes on.
fn plain_headers<'a>(pairs: &'a [Pair<'a>]) -> impl Iterator<Item = &'a Pair<'a>> {
    pairs.iter().filter(|(name, _)| {
        !name.starts_with("upstash-") && !NOT_FORWARDED.contains(name) && !is_framing_header(name)
    })
}

fn forwarded_headers(pairs: &[Pair<'_>], raw: &RawConfig<'_>, inherited: Inherited) -> HeaderList {
    let forward_all = raw
        .header_forward
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let size: usize = raw
        .forward
        .iter()
        .map(|(n, v)| n.len() + v.len() + 8)
        .sum::<usize>()
        + raw.content_type.map_or(24, |c| c.len() + 20);
    let mut b = HeaderListBuilder::with_capacity(size);
    if forward_all {
        for &(name, value) in plain_headers(pairs) {
            b.push(name, value);
        }
    }
    for &(name, value) in &raw.forward {
        // A content type forwarded this way is dropped by QStash (the real one is used).
        if !name.eq_ignore_ascii_case("content-type") && !is_framing_header(name) {
            b.push(name, value);
        }
    }
    match raw.content_type {
        Some(ct) => b.push("content-type", ct),
        None if inherited.json_content_type => b.push("content-type", b"application/json"),
        None => {}
    }
    b.finish()
}

fn callback_target(
    pairs: &[Pair<'_>],
    url: Option<&str>,
    parent: &Level<'_>,
    prefix_suffix: &str,
    display_suffix: &str,
    parent_retries: u32,
    quota: &Quota,
) -> Result<Option<CallbackTarget>> {
    let Some(url) = url.filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let url_header = format!("{}{}", parent.display, display_suffix.trim_end_matches('-'));
    super::destination::validate_url(url)
        .map_err(|why| InvalidInput::new(format!("invalid {url_header} \"{url}\": {why}")))?;
    let prefix = format!("{}{prefix_suffix}", parent.prefix);
    let display = format!("{}{display_suffix}", parent.display);
    let level = Level {
        display: &display,
        prefix: &prefix,
    };
    let raw = RawConfig::collect(pairs, &prefix);
    if let Some(name) = raw.bad_value {
        return Err(InvalidInput::new(format!(
            "header {name} must be valid UTF-8 text"
        )));
    }
    let delay_ms = match raw.delay {
        None | Some("") => 0,
        Some(v) => parse_delay(v, &level.name("Delay"), quota)?,
    };
    let inherited = Inherited {
        retries: Some(parent_retries),
        json_content_type: true,
    };
    let options = build_options(pairs, &raw, &level, inherited, quota)?;
    Ok(Some(CallbackTarget {
        url: url.into(),
        delay_ms,
        options,
    }))
}

fn parse_flow_control(raw: &RawConfig<'_>, level: &Level<'_>) -> Result<Option<FlowControl>> {
    if raw.flow_key.is_none() && raw.flow_value.is_none() {
        return Ok(None);
    }
    let key_header = level.name("Flow-Control-Key");
    let value_header = level.name("Flow-Control-Value");
    let key = match raw.flow_key {
        None | Some("") => {
            if raw.flow_value.is_some_and(|v| !v.is_empty()) {
                return Err(InvalidInput::new(format!(
                    "{value_header} requires {key_header}"
                )));
            }
            return Ok(None);
        }
        Some(k) => k,
    };
    if key.len() > 256
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-/@".contains(&b))
    {
        return Err(InvalidInput::header(
            &key_header,
            key,
            "expected at most 256 characters among letters, digits and . _ : - / @",
        ));
    }
    let value = raw.flow_value.filter(|v| !v.is_empty()).ok_or_else(|| {
        InvalidInput::new(format!(
            "{key_header} requires {value_header} (e.g. \"rate=10,parallelism=5,period=1m\")"
        ))
    })?;
    let fc = parse_flow_control_value(key, value)
        .map_err(|why| InvalidInput::new(format!("invalid {value_header} \"{value}\": {why}")))?;
    Ok(Some(fc))
}

#[cfg(test)]
mod tests;
