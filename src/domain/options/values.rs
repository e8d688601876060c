//! Value syntaxes of single headers: `Upstash-Flow-Control-Value` and
//! `Upstash-Redact-Fields`.

use super::{InvalidInput, Result};
use crate::domain::duration::parse_duration_ms;
use crate::domain::message::{FlowControl, Redaction};

const MAX_PERIOD_S: u64 = 7 * 86_400;

/// `rate=10, parallelism=20, period=1m` → limits; at least one of rate/parallelism.
pub fn parse_flow_control_value(
    key: &str,
    value: &str,
) -> std::result::Result<FlowControl, String> {
    let mut fc = FlowControl {
        key: key.into(),
        parallelism: None,
        rate: None,
        period_s: 1,
    };
    let mut period_given = false;
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim()))
            .ok_or_else(|| format!("\"{part}\" is not a key=value pair"))?;
        let positive = |v: &str| -> std::result::Result<u32, String> {
            v.parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{k} must be a positive integer, got \"{v}\""))
        };
        match k.as_str() {
            "parallelism" => fc.parallelism = Some(positive(v)?),
            "rate" => fc.rate = Some(positive(v)?),
            "period" => {
                let ms = parse_duration_ms(v).ok_or_else(|| {
                    format!(
                        "period must be a duration such as 1s, 1m, 1h or plain seconds, got \"{v}\""
                    )
                })?;
                let secs = ms / 1000;
                if !(1..=MAX_PERIOD_S).contains(&secs) {
                    return Err(format!("period must be between 1s and 1 week, got \"{v}\""));
                }
                fc.period_s = secs as u32;
                period_given = true;
            }
            other => {
                return Err(format!(
                    "unknown key \"{other}\" (expected rate, parallelism or period)"
                ));
            }
        }
    }
    if fc.parallelism.is_none() && fc.rate.is_none() {
        return Err(if period_given {
            "period needs a rate".into()
        } else {
            "at least one of rate or parallelism is required".into()
        });
    }
    Ok(fc)
}

/// `body, header[Authorization], headers` → what to hide in API output.
pub fn parse_redaction(value: &str, header: &str) -> Result<Redaction> {
    let mut r = Redaction::default();
    let mut names = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let lower = item.to_ascii_lowercase();
        if lower == "body" {
            r.body = true;
        } else if lower == "header" || lower == "headers" {
            r.all_headers = true;
        } else if let Some(name) = lower
            .strip_prefix("headers[")
            .or_else(|| lower.strip_prefix("header["))
            .and_then(|rest| rest.strip_suffix(']'))
            .filter(|n| !n.is_empty())
        {
            names.push(Box::from(name));
        } else {
            return Err(InvalidInput::new(format!(
                "invalid {header} item \"{item}\": expected body, header, or header[Name]"
            )));
        }
    }
    r.headers = names.into_boxed_slice();
    Ok(r)
}
