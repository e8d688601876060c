//! Duration syntaxes: the publish headers' (`1d10h30m`, `50s`, `1500ms`, bare seconds) and
//! Go's `time.ParseDuration` (`6m5s`, `1.5h`) used by `Retry-After`.

/// Parses a publish-header duration into milliseconds.
///
/// Groups of `<digits><unit>` with units `d`, `h`, `m`, `s`, `ms`, in any order; a bare
/// integer means seconds. Returns `None` for anything else, including overflow.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().ok()?.checked_mul(1000);
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return None;
        }
        let n: u64 = s[start..i].parse().ok()?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let factor = match &s[unit_start..i] {
            "d" => 86_400_000,
            "h" => 3_600_000,
            "m" => 60_000,
            "s" => 1000,
            "ms" => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(factor)?)?;
    }
    Some(total)
}

/// Parses a Go duration (`300ms`, `-1.5h`, `2h45m`, units ns/us/µs/ms/s/m/h) into
/// milliseconds, rounding down. Negative durations are returned as negative numbers.
pub fn parse_go_duration_ms(text: &str) -> Option<i64> {
    let mut s = text.trim();
    let mut sign = 1.0;
    if let Some(rest) = s.strip_prefix('-') {
        sign = -1.0;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        s = rest;
    }
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut total_ms = 0.0f64;
    while !s.is_empty() {
        let num_end = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let number = &s[..num_end];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        s = &s[num_end..];
        let unit_end = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let factor = match &s[..unit_end] {
            "ns" => 1e-6,
            "us" | "µs" | "μs" => 1e-3,
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        s = &s[unit_end..];
        total_ms += value * factor;
    }
    if !total_ms.is_finite() || total_ms > i64::MAX as f64 {
        return None;
    }
    Some((sign * total_ms).floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_durations() {
        assert_eq!(parse_duration_ms("50s"), Some(50_000));
        assert_eq!(parse_duration_ms("1m"), Some(60_000));
        assert_eq!(parse_duration_ms("2h"), Some(7_200_000));
        assert_eq!(parse_duration_ms("7d"), Some(604_800_000));
        assert_eq!(
            parse_duration_ms("1d10h30m"),
            Some(86_400_000 + 36_000_000 + 1_800_000)
        );
        assert_eq!(parse_duration_ms("1h30m3s"), Some(5_403_000));
        assert_eq!(parse_duration_ms("1500ms"), Some(1500));
        assert_eq!(parse_duration_ms("30"), Some(30_000));
        assert_eq!(parse_duration_ms(" 10s "), Some(10_000));
        assert_eq!(parse_duration_ms("0s"), Some(0));
    }

    #[test]
    fn publish_durations_reject_garbage() {
        for bad in [
            "",
            "s",
            "-5s",
            "1.5s",
            "10x",
            "1 h",
            "abc",
            "10s5",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration_ms(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration_ms("6m5s"), Some(365_000));
        assert_eq!(parse_go_duration_ms("1.5h"), Some(5_400_000));
        assert_eq!(parse_go_duration_ms("300ms"), Some(300));
        assert_eq!(parse_go_duration_ms("1500us"), Some(1));
        assert_eq!(parse_go_duration_ms("2µs"), Some(0));
        assert_eq!(parse_go_duration_ms("0"), Some(0));
        assert_eq!(parse_go_duration_ms("-2s"), Some(-2000));
        assert_eq!(parse_go_duration_ms("10"), None);
        assert_eq!(parse_go_duration_ms("5d"), None);
        assert_eq!(parse_go_duration_ms(""), None);
    }
}
