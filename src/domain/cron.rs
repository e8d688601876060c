//! Cron expressions of schedules: five fields (Vixie semantics: day-of-month and
//! day-of-week are OR-ed when both are set, 0 and 7 are Sunday, names allowed), an optional
//! `CRON_TZ=<IANA zone>` prefix (UTC by default), `@hourly`-style nicknames.

use std::str::FromStr;

use chrono::TimeZone;
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// 2000-01-01T00:00:00Z.
const EPOCH_2000_MS: i64 = 946_684_800_000;

#[derive(Clone, Debug)]
pub struct CronSpec {
    /// The expression as given, surrounding whitespace trimmed (echoed back by the API).
    pub source: String,
    pub tz: Tz,
    cron: Cron,
}

impl CronSpec {
    pub fn parse(text: &str) -> Result<Self, String> {
        let source = text.trim().to_string();
        let (tz, pattern) = match source.split_once(char::is_whitespace) {
            Some((first, rest)) if first.starts_with("CRON_TZ=") || first.starts_with("TZ=") => {
                let zone = first.split_once('=').map(|(_, z)| z).unwrap_or("");
                let tz = Tz::from_str(zone).map_err(|_| format!("unknown time zone \"{zone}\" (expected an IANA name such as America/New_York)"))?;
                (tz, rest.trim())
            }
            _ => (Tz::UTC, source.as_str()),
        };
        if pattern.is_empty() {
            return Err("the cron expression is empty".into());
        }
        if !pattern.starts_with('@') && pattern.split_whitespace().count() != 5 {
            return Err(format!(
                "\"{pattern}\" must have 5 fields: minute hour day-of-month month day-of-week"
            ));
        }
        let parser = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(pattern)
            .map_err(|e| format!("invalid cron expression \"{pattern}\": {e}"))?;
        let pattern = pattern.to_string();
        let spec = Self { source, tz, cron };
        // Any expression that can fire does so within 28 years of any date (the calendar
        // repeats); croner gives up on the others (31 February) after a bounded search.
        if spec.next_after(EPOCH_2000_MS).is_none() {
            return Err(format!(
                "cron expression \"{pattern}\" can never fire (no date matches it)"
            ));
        }
        Ok(spec)
    }

    /// The first fire time strictly after `after_ms` (unix ms), as unix ms.
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start = self.tz.timestamp_millis_opt(after_ms).single()?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp_millis())
    }
}

impl CronSpec {
    /// The latest fire time at or before `at_ms`.
    pub fn last_at_or_before(&self, at_ms: i64) -> Option<i64> {
        let start = self.tz.timestamp_millis_opt(at_ms).single()?;
        let prev = self.cron.find_previous_occurrence(&start, true).ok()?;
        Some(prev.timestamp_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn ms(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn every_five_minutes_in_utc() {
        let c = CronSpec::parse("*/5 * * * * ").unwrap();
        assert_eq!(c.source, "*/5 * * * *");
        assert_eq!(
            c.next_after(ms(2024, 1, 1, 10, 2)),
            Some(ms(2024, 1, 1, 10, 5))
        );
        assert_eq!(
            c.next_after(ms(2024, 1, 1, 10, 5)),
            Some(ms(2024, 1, 1, 10, 10)),
            "strictly after"
        );
    }

    #[test]
    fn time_zone_follows_dst() {
        let c = CronSpec::parse("CRON_TZ=America/New_York 0 4 * * *").unwrap();
        // Before the March 10, 2024 change New York is UTC-5, after it UTC-4.
        assert_eq!(
            c.next_after(ms(2024, 3, 9, 0, 0)),
            Some(ms(2024, 3, 9, 9, 0))
        );
        assert_eq!(
            c.next_after(ms(2024, 3, 9, 9, 0)),
            Some(ms(2024, 3, 10, 8, 0))
        );
    }

    #[test]
    fn names_sunday_seven_and_or_semantics() {
        let sun = CronSpec::parse("0 12 * * 7").unwrap();
        // 2024-01-07 is a Sunday.
        assert_eq!(
            sun.next_after(ms(2024, 1, 1, 0, 0)),
            Some(ms(2024, 1, 7, 12, 0))
        );
        let named = CronSpec::parse("0 12 * JAN SUN").unwrap();
        assert_eq!(
            named.next_after(ms(2024, 1, 1, 0, 0)),
            Some(ms(2024, 1, 7, 12, 0))
        );
        // The 15th OR a Monday: Monday Jan 8 comes first.
        let or = CronSpec::parse("0 0 15 * MON").unwrap();
        assert_eq!(
            or.next_after(ms(2024, 1, 2, 0, 0)),
            Some(ms(2024, 1, 8, 0, 0))
        );
        assert!(CronSpec::parse("@hourly").is_ok());
    }

    #[test]
    fn latest_fire_time() {
        let c = CronSpec::parse("*/5 * * * *").unwrap();
        assert_eq!(
            c.last_at_or_before(ms(2024, 1, 1, 10, 7)),
            Some(ms(2024, 1, 1, 10, 5))
        );
        assert_eq!(
            c.last_at_or_before(ms(2024, 1, 1, 10, 5)),
            Some(ms(2024, 1, 1, 10, 5))
        );
    }

    #[test]
    fn invalid_expressions() {
        assert!(CronSpec::parse("* * * *").unwrap_err().contains("5 fields"));
        assert!(
            CronSpec::parse("0 * * * * *")
                .unwrap_err()
                .contains("5 fields")
        );
        assert!(CronSpec::parse("61 * * * *").is_err());
        assert!(
            CronSpec::parse("CRON_TZ=Mars/Olympus 0 4 * * *")
                .unwrap_err()
                .contains("Mars/Olympus")
        );
        assert!(CronSpec::parse("").is_err());
    }

    #[test]
    fn expressions_that_can_never_fire_are_refused() {
        for never in ["0 0 31 2 *", "0 0 30 2 *", "15 10 31 4 *"] {
            let err = CronSpec::parse(never).unwrap_err();
            assert!(err.contains("can never fire"), "{never}: {err}");
        }
        assert!(CronSpec::parse("0 0 29 2 *").is_ok(), "leap days exist");
        assert!(CronSpec::parse("0 0 31 2 1").is_ok(), "or any Monday");
    }
}
