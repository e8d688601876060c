//! Judging one delivery attempt: delivered, retry later, or failed for good.

use super::message::{MessageSpec, Response};
use super::retry::{next_retry_delay_ms, retry_after_from};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Try again at this time (ms).
    Retry {
        at: i64,
    },
    /// Retries exhausted, or the destination said not to retry.
    Failed {
        non_retryable: bool,
    },
}

/// `response` is `None` when the attempt got no HTTP answer at all.
pub fn judge(
    spec: &MessageSpec,
    retried: u32,
    response: Option<&Response>,
    now_ms: i64,
) -> Verdict {
    if response.is_some_and(|r| (200..300).contains(&r.status)) {
        return Verdict::Delivered;
    }
    judge_refused(spec, retried, response, now_ms)
}

/// Judges an attempt that did not deliver: its answer (if any) was not a success, or was
/// refused for another reason (a workflow Init answered by something that is not a workflow).
pub fn judge_refused(
    spec: &MessageSpec,
    retried: u32,
    response: Option<&Response>,
    now_ms: i64,
) -> Verdict {
    if let Some(r) = response {
        let non_retryable = r.status == 489
            && r.headers
                .get_str("upstash-nonretryable-error")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if non_retryable {
            return Verdict::Failed {
                non_retryable: true,
            };
        }
    }
    if retried >= spec.options.retries {
        return Verdict::Failed {
            non_retryable: false,
        };
    }
    let retry_after =
        response.and_then(|r| retry_after_from(|name| r.headers.get_str(name), now_ms));
    let delay = next_retry_delay_ms(retried, spec.options.retry_delay.as_ref(), retry_after);
    Verdict::Retry { at: now_ms + delay }
}

/// The `error` text of an ERROR log entry for a non-2xx answer.
pub fn status_error(status: u16) -> String {
    format!("unexpected status {status}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::header_list::HeaderList;

    fn spec(headers: &[(&str, &str)]) -> MessageSpec {
        MessageSpec::for_test(headers)
    }

    fn resp(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: HeaderList::from_pairs(headers.iter().map(|(n, v)| (*n, v.as_bytes()))),
            body: Default::default(),
        }
    }

    #[test]
    fn success_and_default_backoff() {
        let s = spec(&[]);
        assert_eq!(judge(&s, 0, Some(&resp(204, &[])), 0), Verdict::Delivered);
        assert_eq!(
            judge(&s, 0, Some(&resp(500, &[])), 1000),
            Verdict::Retry { at: 13_000 }
        );
        assert_eq!(judge(&s, 1, None, 0), Verdict::Retry { at: 148_000 });
        assert_eq!(
            judge(&s, 3, Some(&resp(500, &[])), 0),
            Verdict::Failed {
                non_retryable: false
            }
        );
    }

    #[test]
    fn non_retryable_needs_489_and_the_header() {
        let s = spec(&[]);
        let nr = resp(489, &[("upstash-nonretryable-error", "TRUE")]);
        assert_eq!(
            judge(&s, 0, Some(&nr), 0),
            Verdict::Failed {
                non_retryable: true
            }
        );
        assert!(matches!(
            judge(&s, 0, Some(&resp(489, &[])), 0),
            Verdict::Retry { .. }
        ));
        let other = resp(500, &[("upstash-nonretryable-error", "true")]);
        assert!(matches!(
            judge(&s, 0, Some(&other), 0),
            Verdict::Retry { .. }
        ));
    }

    #[test]
    fn retry_after_and_expression() {
        let s = spec(&[("upstash-retry-delay", "1000 * (1 + retried)")]);
        assert_eq!(
            judge(&s, 1, Some(&resp(503, &[])), 0),
            Verdict::Retry { at: 2000 }
        );
        assert_eq!(
            judge(&s, 1, Some(&resp(429, &[("retry-after", "7")])), 0),
            Verdict::Retry { at: 7000 }
        );
    }
}
