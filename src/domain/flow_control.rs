//! Flow-control limits of one key: at most `parallelism` attempts in flight and `rate`
//! attempt starts per `period`. Pure bookkeeping; the engine owns the waitlist.

use std::collections::HashMap;
use std::sync::Arc;

use super::message::FlowControl;

/// (parallelism, rate, period seconds) as carried by one message.
type Config = (Option<u32>, Option<u32>, u32);

/// Stored with `-data-dir` without its counters (`serde(skip)`): those describe attempts and
/// waiting messages, which the engine counts again as it restores the messages.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct FlowState {
    pub key: Arc<str>,
    /// Configs of the key's unfinished messages, with how many carry each.
    #[serde(skip)]
    pending: HashMap<Config, u32>,
    /// What applies when no message is pending (the last effective config).
    last: Config,
    /// After an unpin, the pinned values keep applying until a message brings its config.
    sticky: Option<Config>,
    pub pinned_parallelism: Option<u32>,
    /// Pinned (rate, period).
    /// Pinned (rate, period); the rate may be absent when only the period was pinned.
    pub pinned_rate: Option<(Option<u32>, u32)>,
    #[serde(skip)]
    pub in_flight: u32,
    #[serde(skip)]
    pub rate_count: u32,
    /// Start of the current rate window (ms).
    pub window_start: i64,
    pub paused: bool,
    /// Messages waiting on this key's limits or pause.
    #[serde(skip)]
    pub waiting: usize,
}

/// An operator's change to a key (the `/v2/flowControl/{key}/…` actions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowChange {
    Pause,
    Resume,
    ResetRate,
    Pin {
        parallelism: Option<u32>,
        rate: Option<u32>,
        period: Option<u32>,
    },
    Unpin {
        parallelism: bool,
        rate: bool,
    },
}

/// Why an attempt cannot start now.
#[derive(Debug, PartialEq, Eq)]
pub enum Blocked {
    /// Paused, or all parallel slots taken: an attempt ending (or resume) frees it.
    UntilReleased,
    /// The rate window is used up; it rolls over at this time (ms).
    Until(i64),
}

impl FlowState {
    pub fn new(key: Arc<str>, now: i64) -> Self {
        Self {
            key,
            pending: HashMap::new(),
            last: (None, None, 1),
            sticky: None,
            pinned_parallelism: None,
            pinned_rate: None,
            in_flight: 0,
            rate_count: 0,
            window_start: now,
            paused: false,
            waiting: 0,
        }
    }

    fn config_of(fc: &FlowControl) -> Config {
        (fc.parallelism, fc.rate, fc.period_s)
    }

    /// A message with this config was accepted.
    pub fn add(&mut self, fc: &FlowControl) {
        let c = Self::config_of(fc);
        *self.pending.entry(c).or_default() += 1;
        self.last = c;
        self.sticky = None;
    }

    /// Makes the key known (schedules) without counting a pending message.
    pub fn remember(&mut self, fc: &FlowControl) {
        if self.pending.is_empty() {
            self.last = Self::config_of(fc);
        }
    }

    /// A message with this config finished.
    pub fn remove(&mut self, fc: &FlowControl) {
        let c = Self::config_of(fc);
        if let Some(n) = self.pending.get_mut(&c) {
            *n -= 1;
            if *n == 0 {
                self.pending.remove(&c);
                if self.pending.is_empty() {
                    self.last = self.computed();
                }
            }
        }
    }

    /// The highest limits among pending messages (older higher limits are not lowered by a
    /// newer message), or the last config when none is pending.
    fn computed(&self) -> Config {
        if let Some(s) = self.sticky {
            return s;
        }
        if self.pending.is_empty() {
            return self.last;
        }
        let parallelism = self.pending.keys().filter_map(|c| c.0).max();
        let rate = self
            .pending
            .keys()
            .filter_map(|c| c.1.map(|r| (r, c.2)))
            .max_by_key(|(r, _)| *r);
        let period = rate.map(|(_, p)| p).unwrap_or(self.last.2);
        (parallelism, rate.map(|(r, _)| r), period)
    }

    pub fn parallelism_max(&self) -> Option<u32> {
        self.pinned_parallelism.or(self.computed().0)
    }

    /// Effective (rate, period seconds).
    pub fn rate_max(&self) -> Option<(u32, u32)> {
        match self.pinned_rate {
            Some((rate, period)) => rate.map(|r| (r, period)),
            None => {
                let c = self.computed();
                c.1.map(|r| (r, c.2))
            }
        }
    }

    pub fn period(&self) -> u32 {
        match self.pinned_rate {
            Some((_, period)) => period,
            None => self.rate_max().map(|(_, p)| p).unwrap_or(self.computed().2),
        }
    }

    fn roll(&mut self, now: i64) {
        let period_ms = self.period().max(1) as i64 * 1000;
        if now >= self.window_start + period_ms {
            self.window_start = now;
            self.rate_count = 0;
        }
    }

    /// Whether an attempt may start at `now`.
    pub fn check(&mut self, now: i64) -> Result<(), Blocked> {
        self.roll(now);
        if self.paused {
            return Err(Blocked::UntilReleased);
        }
        if self.parallelism_max().is_some_and(|p| self.in_flight >= p) {
            return Err(Blocked::UntilReleased);
        }
        if let Some((rate, period)) = self.rate_max()
            && self.rate_count >= rate
        {
            return Err(Blocked::Until(
                self.window_start + period.max(1) as i64 * 1000,
            ));
        }
        Ok(())
    }

    pub fn started(&mut self) {
        self.in_flight += 1;
        self.rate_count += 1;
    }

    pub fn finished(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    pub fn apply(&mut self, change: FlowChange, now: i64) {
        match change {
            FlowChange::Pause => self.paused = true,
            FlowChange::Resume => self.paused = false,
            FlowChange::ResetRate => self.reset_rate(now),
            FlowChange::Pin {
                parallelism,
                rate,
                period,
            } => self.pin(parallelism, rate, period, now),
            FlowChange::Unpin { parallelism, rate } => self.unpin(parallelism, rate),
        }
    }

    pub fn reset_rate(&mut self, now: i64) {
        self.rate_count = 0;
        self.window_start = now;
    }

    /// Overrides the limits with the given values, ignoring message configs until unpinned.
    pub fn pin(
        &mut self,
        parallelism: Option<u32>,
        rate: Option<u32>,
        period: Option<u32>,
        now: i64,
    ) {
        if let Some(p) = parallelism {
            self.pinned_parallelism = Some(p);
        }
        if rate.is_some() || period.is_some() {
            let current = self.rate_max();
            let r = rate.or(current.map(|(r, _)| r));
            let p = period.unwrap_or_else(|| self.period());
            self.pinned_rate = Some((r, p));
        }
        self.reset_rate(now);
    }

    /// Drops the selected pins; their values stay in force until a message brings a config.
    pub fn unpin(&mut self, parallelism: bool, rate: bool) {
        let (mut p, mut r, mut period) = self.computed();
        if parallelism {
            if let Some(v) = self.pinned_parallelism.take() {
                p = Some(v);
            }
        } else if self.pinned_parallelism.is_some() {
            p = self.pinned_parallelism;
        }
        if rate && let Some((v, per)) = self.pinned_rate.take() {
            r = v;
            period = per;
        }
        if parallelism || rate {
            self.sticky = Some((p, r, period));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fc(p: Option<u32>, r: Option<u32>, period: u32) -> FlowControl {
        FlowControl {
            key: "k".into(),
            parallelism: p,
            rate: r,
            period_s: period,
        }
    }

    #[test]
    fn parallelism_blocks_until_released() {
        let mut s = FlowState::new("k".into(), 0);
        s.add(&fc(Some(2), None, 1));
        s.check(0).unwrap();
        s.started();
        s.check(0).unwrap();
        s.started();
        assert_eq!(s.check(0), Err(Blocked::UntilReleased));
        s.finished();
        assert_eq!(s.check(0), Ok(()));
    }

    #[test]
    fn rate_window_rolls_over() {
        let mut s = FlowState::new("k".into(), 0);
        s.add(&fc(None, Some(2), 60));
        for _ in 0..2 {
            s.check(10).unwrap();
            s.started();
        }
        assert_eq!(s.check(59_999), Err(Blocked::Until(60_000)));
        assert_eq!(s.check(60_000), Ok(()));
        assert_eq!((s.rate_count, s.window_start), (0, 60_000));
    }

    #[test]
    fn highest_pending_config_applies_and_last_remains() {
        let mut s = FlowState::new("k".into(), 0);
        let high = fc(Some(10), Some(100), 1);
        let low = fc(Some(2), Some(5), 1);
        s.add(&high);
        s.add(&low);
        assert_eq!(
            (s.parallelism_max(), s.rate_max()),
            (Some(10), Some((100, 1)))
        );
        s.remove(&high);
        assert_eq!((s.parallelism_max(), s.rate_max()), (Some(2), Some((5, 1))));
        s.remove(&low);
        assert_eq!(
            (s.parallelism_max(), s.rate_max()),
            (Some(2), Some((5, 1))),
            "last config stays"
        );
    }

    #[test]
    fn pause_blocks_and_keeps_counts() {
        let mut s = FlowState::new("k".into(), 0);
        s.add(&fc(None, Some(5), 1));
        s.started();
        s.paused = true;
        assert_eq!(s.check(0), Err(Blocked::UntilReleased));
        assert_eq!(s.rate_count, 1);
    }

    #[test]
    fn pinning_only_a_period_keeps_an_unlimited_rate_unlimited() {
        let mut s = FlowState::new("k".into(), 0);
        s.add(&fc(Some(2), None, 1));
        s.pin(None, None, Some(60), 0);
        assert!(s.pinned_rate.is_some());
        assert_eq!((s.rate_max(), s.period()), (None, 60));
        assert_eq!(s.check(0), Ok(()));
    }

    #[test]
    fn pin_and_unpin() {
        let mut s = FlowState::new("k".into(), 0);
        s.add(&fc(Some(1), Some(1), 1));
        s.rate_count = 1;
        s.pin(Some(3), Some(20), Some(120), 500);
        assert_eq!(
            (
                s.parallelism_max(),
                s.rate_max(),
                s.rate_count,
                s.window_start
            ),
            (Some(3), Some((20, 120)), 0, 500)
        );
        s.unpin(true, false);
        assert!(s.pinned_parallelism.is_none() && s.pinned_rate.is_some());
        assert_eq!(s.parallelism_max(), Some(3), "value stays after unpin");
        s.add(&fc(Some(7), None, 1));
        assert_eq!(
            s.parallelism_max(),
            Some(7),
            "a new message brings its config"
        );
        assert_eq!(s.rate_max(), Some((20, 120)), "rate still pinned");
    }
}
