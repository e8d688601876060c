use super::*;
use crate::config::{Quota, QuotaKind};

fn quota() -> Quota {
    Quota::new(QuotaKind::Payg)
}

fn parse_pairs(pairs: &[(&str, &str)]) -> Result<Parsed> {
    let pairs: Vec<Pair<'_>> = pairs.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    parse(&pairs, &quota(), 1_000_000)
}

fn err(pairs: &[(&str, &str)]) -> String {
    parse_pairs(pairs).unwrap_err().message
}

#[test]
fn defaults() {
    let p = parse_pairs(&[]).unwrap();
    assert_eq!(p.options.method, Method::Post);
    assert_eq!(p.options.retries, 3);
    assert!(p.options.headers.is_empty());
    assert_eq!(p.first_attempt_at(5), 5);
}

#[test]
fn full_configuration() {
    let p = parse_pairs(&[
        ("upstash-method", "put"),
        ("upstash-delay", "1m"),
        ("upstash-retries", "2"),
        ("upstash-retry-delay", "pow(2, retried) * 1000"),
        ("upstash-timeout", "30"),
        ("upstash-forward-x-api-key", "k"),
        ("upstash-forward-x-api-key", "k2"),
        ("content-type", "text/plain"),
        ("user-agent", "not forwarded"),
        ("upstash-label", "a, b,,c"),
        ("upstash-telemetry-sdk", "ignored"),
    ])
    .unwrap();
    let o = &p.options;
    assert_eq!(o.method, Method::Put);
    assert_eq!(p.delay_ms, 60_000);
    assert_eq!(o.retries, 2);
    assert_eq!(
        o.retry_delay.as_ref().unwrap().source(),
        "pow(2, retried) * 1000"
    );
    assert_eq!(o.timeout_ms, Some(30_000));
    let hs: Vec<_> = o
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    assert_eq!(
        hs,
        [
            ("X-Api-Key", "k"),
            ("X-Api-Key", "k2"),
            ("Content-Type", "text/plain")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(
        &*o.labels,
        &[Box::from("a"), Box::from("b"), Box::from("c")]
    );
    assert_eq!(o.label(), Some("a"));
}

#[test]
fn not_before_beats_delay() {
    let p = parse_pairs(&[("upstash-delay", "10s"), ("upstash-not-before", "2000")]).unwrap();
    assert_eq!(p.first_attempt_at(1_000_000), 2_000_000);
    let past = parse_pairs(&[("upstash-not-before", "1")]).unwrap();
    assert_eq!(
        past.first_attempt_at(1_000_000),
        1_000_000,
        "past means now"
    );
}

#[test]
fn header_beats_query_twin() {
    // Headers come first in `pairs`, query parameters after.
    let p = parse_pairs(&[("upstash-retries", "1"), ("upstash-retries", "4")]).unwrap();
    assert_eq!(p.options.retries, 1);
}

#[test]
fn errors_name_the_header() {
    assert!(err(&[("upstash-delay", "soon")]).contains("Upstash-Delay"));
    assert!(err(&[("upstash-delay", "400d")]).contains("maximum delay"));
    assert!(err(&[("upstash-not-before", "tomorrow")]).contains("Upstash-Not-Before"));
    assert!(err(&[("upstash-retries", "-1")]).contains("Upstash-Retries"));
    assert!(err(&[("upstash-retries", "6")]).contains("maximum of 5 retries"));
    assert!(err(&[("upstash-method", "FETCH")]).contains("Upstash-Method"));
    assert!(err(&[("upstash-timeout", "3h")]).contains("Upstash-Timeout"));
    assert!(err(&[("upstash-timeout", "0")]).contains("Upstash-Timeout"));
    assert!(err(&[("upstash-retry-delay", "pow(2)")]).contains("Upstash-Retry-Delay"));
    assert!(err(&[("upstash-callback", "ftp://x")]).contains("Upstash-Callback"));
    assert!(
        err(&[
            ("upstash-callback", "https://cb"),
            ("upstash-callback-retries", "x")
        ])
        .contains("Upstash-Callback-Retries")
    );
    assert!(
        err(&[
            ("upstash-failure-callback", "https://f"),
            ("upstash-failure-callback-method", "x")
        ])
        .contains("Upstash-Failure-Callback-Method")
    );
    assert!(err(&[("upstash-flow-control-key", "k")]).contains("Upstash-Flow-Control-Value"));
    assert!(err(&[("upstash-redact-fields", "everything")]).contains("Upstash-Redact-Fields"));
}

#[test]
fn callbacks_inherit_and_override() {
    let p = parse_pairs(&[
        ("upstash-retries", "2"),
        ("upstash-callback", "http://localhost/cb"),
        ("upstash-callback-method", "PUT"),
        ("upstash-callback-forward-x-cb", "1"),
        ("upstash-failure-callback", "http://localhost/fail"),
        ("upstash-failure-callback-retries", "0"),
        ("upstash-failure-callback-delay", "5s"),
    ])
    .unwrap();
    let cb = p.options.callback.as_ref().unwrap();
    assert_eq!(&*cb.url, "http://localhost/cb");
    assert_eq!(cb.options.method, Method::Put);
    assert_eq!(cb.options.retries, 2, "inherits the message's retries");
    assert_eq!(cb.options.headers.get_str("x-cb"), Some("1"));
    assert_eq!(
        cb.options.headers.get_str("content-type"),
        Some("application/json")
    );
    let f = p.options.failure_callback.as_ref().unwrap();
    assert_eq!(f.options.retries, 0);
    assert_eq!(f.delay_ms, 5000);
    assert!(
        p.options.headers.get("x-cb").is_none(),
        "callback headers stay with the callback"
    );
}

#[test]
fn header_forward_mode() {
    let p = parse_pairs(&[
        ("upstash-header-forward", "true"),
        ("authorization", "Bearer secret"),
        ("x-github-event", "push"),
        ("content-type", "application/json"),
        ("host", "localhost"),
    ])
    .unwrap();
    let names: Vec<_> = p.options.headers.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["X-Github-Event", "Content-Type"]);
}

#[test]
fn dedup_flags() {
    assert_eq!(
        parse_pairs(&[("upstash-deduplication-id", "abc")])
            .unwrap()
            .dedup,
        Some(Dedup::Id("abc".into()))
    );
    assert_eq!(
        parse_pairs(&[("upstash-content-based-deduplication", "True")])
            .unwrap()
            .dedup,
        Some(Dedup::ContentBased)
    );
    assert_eq!(
        parse_pairs(&[("upstash-content-based-deduplication", "false")])
            .unwrap()
            .dedup,
        None
    );
}

#[test]
fn flow_control_values() {
    let fc = parse_flow_control_value("k", "parallelism=3, rate=4, period=2s").unwrap();
    assert_eq!(
        (fc.parallelism, fc.rate, fc.period_s),
        (Some(3), Some(4), 2)
    );
    let fc = parse_flow_control_value("k", "rate=23, period=1h30m3s").unwrap();
    assert_eq!(
        (fc.parallelism, fc.rate, fc.period_s),
        (None, Some(23), 5403)
    );
    let fc = parse_flow_control_value("k", "parallelism=5").unwrap();
    assert_eq!((fc.parallelism, fc.rate, fc.period_s), (Some(5), None, 1));
    assert_eq!(
        parse_flow_control_value("k", "rate=1,period=1d")
            .unwrap()
            .period_s,
        86_400
    );
    for bad in [
        "period=1m",
        "",
        "rate=0",
        "rate=x",
        "burst=3",
        "rate=1,period=8d",
        "rate",
    ] {
        assert!(parse_flow_control_value("k", bad).is_err(), "{bad}");
    }
}

#[test]
fn redaction_spellings() {
    let r = parse_redaction("body, header[Authorization],headers[X-Key]", "h").unwrap();
    assert!(r.body && !r.all_headers);
    assert!(r.hides_header("AUTHORIZATION") && r.hides_header("x-key") && !r.hides_header("other"));
    assert!(parse_redaction("headers", "h").unwrap().all_headers);
    assert!(parse_redaction("header", "h").unwrap().all_headers);
    assert!(parse_redaction("header[]", "h").is_err());
}
