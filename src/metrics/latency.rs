//! Delivery latency histograms: how long each HTTP attempt took, per user and outcome.
//!
//! Written by every delivery task, outside the core lock, so each observation is three
//! relaxed atomic adds (bucket, count, sum) and never a lock; buckets are stored
//! non-cumulative and summed up when `/metrics` is scraped.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::users::{USER_COUNT, UserId};

/// Upper bounds in seconds: a local receiver answers in a millisecond or two, a slow
/// endpoint or a timeout takes seconds.
pub const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// How an attempt ended, as the histogram labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Success,
    /// Any other answer, or none (connection refused, timeout).
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 2] = [Outcome::Success, Outcome::Error];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
        }
    }
}

#[derive(Default)]
struct Histogram {
    /// One more than [`BUCKETS`]: the last counts what is above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_us: AtomicU64,
}

/// A histogram's reading: `(upper bound, observations in this bucket alone)` pairs (the text
/// encoder makes them cumulative), the count (which also holds what is above every bound)
/// and the sum.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

#[derive(Default)]
pub struct DeliveryLatency {
    by: [[Histogram; 2]; USER_COUNT],
}

impl DeliveryLatency {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn observe(&self, user: UserId, outcome: Outcome, took: Duration) {
        let h = &self.by[user.index()][outcome as usize];
        let seconds = took.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|&b| seconds <= b)
            .unwrap_or(BUCKETS.len());
        h.buckets[i].fetch_add(1, Relaxed);
        h.count.fetch_add(1, Relaxed);
        h.sum_us.fetch_add(took.as_micros() as u64, Relaxed);
    }

    pub fn read(&self, user: UserId, outcome: Outcome) -> Reading {
        let h = &self.by[user.index()][outcome as usize];
        let buckets = BUCKETS
            .iter()
            .zip(&h.buckets)
            .map(|(&bound, n)| (bound, n.load(Relaxed)))
            .collect();
        Reading {
            buckets,
            count: h.count.load(Relaxed),
            sum_seconds: h.sum_us.load(Relaxed) as f64 / 1e6,
        }
    }

    /// Forgets the user's observations (the reset control).
    pub fn reset(&self, user: UserId) {
        for h in &self.by[user.index()] {
            for b in &h.buckets {
                b.store(0, Relaxed);
            }
            h.count.store(0, Relaxed);
            h.sum_us.store(0, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_the_sum_is_in_seconds() {
        let l = DeliveryLatency::new();
        let u = UserId(2);
        l.observe(u, Outcome::Success, Duration::from_micros(800));
        l.observe(u, Outcome::Success, Duration::from_millis(30));
        l.observe(u, Outcome::Success, Duration::from_secs(60));
        l.observe(u, Outcome::Error, Duration::from_millis(1));
        let r = l.read(u, Outcome::Success);
        assert_eq!(r.count, 3);
        assert_eq!(r.buckets[0], (0.001, 1));
        assert_eq!(r.buckets[4], (0.025, 0));
        assert_eq!(r.buckets[5], (0.05, 1));
        // 60 s is above every bound: only +Inf (the count) holds it.
        assert_eq!(r.buckets.iter().map(|b| b.1).sum::<u64>(), 2);
        assert!((r.sum_seconds - 60.0308).abs() < 1e-9);
        assert_eq!(l.read(u, Outcome::Error).count, 1);
        assert_eq!(l.read(UserId(0), Outcome::Success).count, 0);
        l.reset(u);
        assert_eq!(l.read(u, Outcome::Success).count, 0);
    }
}
