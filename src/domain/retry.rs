//! When the next attempt happens: the default backoff, `Upstash-Retry-Delay` expressions and
//! the `Retry-After` family of response headers. All pure; `now` is an argument.

use super::duration::parse_go_duration_ms;
pub use super::retry_expr::RetryExpr;

pub const MAX_RETRY_DELAY_MS: i64 = 86_400_000;

/// Default backoff before retry number `k` (1 = first retry): `min(1 day, e^(2.5k))` seconds,
/// truncated to whole seconds as in the docs' table (12 s, 2 m 28 s, 30 m 8 s, 6 h 7 m 6 s, …).
pub fn default_backoff_ms(k: u32) -> i64 {
    let secs = (2.5 * k as f64).exp().floor();
    (secs.min(86_400.0) as i64) * 1000
}

/// The response headers that can dictate the next retry, in the order they are consulted.
pub const RETRY_AFTER_HEADERS: [&str; 4] = [
    "retry-after",
    "x-ratelimit-reset",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
];

/// Interprets one `Retry-After`-family value as a delay in ms from `now_ms`: integer seconds,
/// an RFC 1123 date, or a Go duration. Past dates and negative values mean "now".
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<i64> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if let Ok(secs) = v.parse::<i64>() {
        return Some(secs.max(0).saturating_mul(1000));
    }
    if let Ok(when) = httpdate::parse_http_date(v) {
        let at = when
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        return Some((at - now_ms).max(0));
    }
    parse_go_duration_ms(v).map(|ms| ms.max(0))
}

/// The retry delay dictated by a failed response's headers, if any header parses and stays
/// within one day (beyond that the normal backoff applies, as documented).
pub fn retry_after_from<'a>(
    mut header: impl FnMut(&str) -> Option<&'a str>,
    now_ms: i64,
) -> Option<i64> {
    RETRY_AFTER_HEADERS
        .iter()
        .find_map(|name| header(name).and_then(|v| parse_retry_after(v, now_ms)))
        .filter(|ms| *ms <= MAX_RETRY_DELAY_MS)
}

/// Delay before the next attempt after `retried` retries have already been made.
pub fn next_retry_delay_ms(
    retried: u32,
    expr: Option<&RetryExpr>,
    retry_after: Option<i64>,
) -> i64 {
    if let Some(ms) = retry_after {
        return ms;
    }
    expr.and_then(|e| e.eval(retried))
        .map(|v| v.round().clamp(0.0, MAX_RETRY_DELAY_MS as f64) as i64)
        .unwrap_or_else(|| default_backoff_ms(retried + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_backoff_matches_documented_table() {
        assert_eq!(default_backoff_ms(1), 12_000);
        assert_eq!(default_backoff_ms(2), 148_000);
        assert_eq!(default_backoff_ms(3), 1_808_000);
        assert_eq!(default_backoff_ms(4), 22_026_000);
        assert_eq!(default_backoff_ms(5), 86_400_000);
        assert_eq!(default_backoff_ms(60), 86_400_000);
    }

    fn eval_at(src: &str, retried: u32) -> Option<i64> {
        let expr = RetryExpr::parse(src).expect(src);
        let delay = next_retry_delay_ms(retried, Some(&expr), None);
        // Non-finite results fall back to the default backoff.
        expr.eval(retried).map(|_| delay)
    }

    #[test]
    fn documented_expressions() {
        assert_eq!(eval_at("1000", 0), Some(1000));
        assert_eq!(eval_at("1000 * (1 + retried)", 2), Some(3000));
        assert_eq!(eval_at("pow(2, retried) * 1000", 0), Some(1000));
        assert_eq!(eval_at("pow(2, retried) * 1000", 3), Some(8000));
        assert_eq!(eval_at("max(1000, pow(2, retried) * 100)", 1), Some(1000));
        assert_eq!(eval_at("max(1000, pow(2, retried) * 100)", 5), Some(3200));
    }

    #[test]
    fn every_function_and_operator() {
        assert_eq!(
            eval_at("sqrt(16)+abs(-3)+floor(1.7)+ceil(1.2)+round(2.5)", 0),
            Some(4 + 3 + 1 + 2 + 3)
        );
        assert_eq!(eval_at("min(5, 3, 9) * 10 % 7", 0), Some(2));
        assert_eq!(eval_at("exp(0) - 1 + 10 / 4", 0), Some(3));
        assert_eq!(eval_at("-(-5)", 0), Some(5));
        assert_eq!(eval_at("  retried*retried ", 4), Some(16));
    }

    #[test]
    fn runtime_edge_results() {
        assert_eq!(eval_at("0 - 500", 0), Some(0), "negative means now");
        assert_eq!(eval_at("1 / 0", 0), None, "infinity falls back");
        assert_eq!(eval_at("sqrt(0 - 1)", 0), None, "NaN falls back");
        assert_eq!(
            eval_at("pow(10, 12)", 0),
            Some(MAX_RETRY_DELAY_MS),
            "capped at a day"
        );
    }

    #[test]
    fn invalid_expressions_explain_themselves() {
        for (src, needle) in [
            ("", "end of expression"),
            ("pow(2)", "pow() takes 2 arguments"),
            ("min(1)", "at least 2"),
            ("foo(1)", "unknown function \"foo\""),
            ("retries * 2", "unknown variable \"retries\""),
            ("(1 + 2", "expected ')'"),
            ("1 +* 2", "unexpected '*'"),
            ("1 2", "unexpected '2'"),
            ("1..2", "invalid number"),
        ] {
            let err = RetryExpr::parse(src).unwrap_err();
            assert!(err.contains(needle), "{src:?}: {err}");
        }
        let deep = "(".repeat(500) + "1" + &")".repeat(500);
        assert!(RetryExpr::parse(&deep).is_err());
    }

    #[test]
    fn retry_after_forms() {
        let now = 1_719_490_584_000; // Thu, 27 Jun 2024 12:16:24 GMT
        assert_eq!(parse_retry_after("0", now), Some(0));
        assert_eq!(parse_retry_after("10", now), Some(10_000));
        assert_eq!(parse_retry_after("6m5s", now), Some(365_000));
        assert_eq!(parse_retry_after("1.5h", now), Some(5_400_000));
        assert_eq!(
            parse_retry_after("Thu, 27 Jun 2024 12:17:24 GMT", now),
            Some(60_000)
        );
        assert_eq!(
            parse_retry_after("Thu, 27 Jun 2024 12:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), Some(0));
    }

    #[test]
    fn retry_after_precedence_and_cap() {
        let headers = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        };
        assert_eq!(
            retry_after_from(
                headers(&[("x-ratelimit-reset", "3"), ("retry-after", "7")]),
                0
            ),
            Some(7000)
        );
        assert_eq!(
            retry_after_from(
                headers(&[("retry-after", "junk"), ("x-ratelimit-reset-tokens", "2s")]),
                0
            ),
            Some(2000)
        );
        assert_eq!(
            retry_after_from(headers(&[("retry-after", "90000")]), 0),
            None,
            "over a day is ignored"
        );
        assert_eq!(retry_after_from(headers(&[]), 0), None);
    }

    #[test]
    fn next_delay_prefers_retry_after_then_expression_then_backoff() {
        let expr = RetryExpr::parse("pow(2, retried) * 1000").unwrap();
        assert_eq!(next_retry_delay_ms(2, Some(&expr), Some(500)), 500);
        assert_eq!(next_retry_delay_ms(2, Some(&expr), None), 4000);
        assert_eq!(next_retry_delay_ms(0, None, None), 12_000);
        assert_eq!(next_retry_delay_ms(1, None, None), 148_000);
    }
}
