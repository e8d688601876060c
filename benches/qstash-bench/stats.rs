//! Latency samples (nanoseconds, sorted once) and the medians taken across rounds.

/// A set of latency samples in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    sorted: Vec<u64>,
}

impl Samples {
    pub fn new(mut ns: Vec<u64>) -> Self {
        ns.sort_unstable();
        Self { sorted: ns }
    }

    /// Nearest-rank percentile, `q` in 0..=1; 0 when there are no samples.
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.sorted.is_empty() {
            return 0;
        }
        let rank = (q * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    /// A percentile in microseconds (the unit of every latency field in the output).
    pub fn us(&self, q: f64) -> f64 {
        round2(self.quantile_ns(q) as f64 / 1_000.0)
    }

    pub fn max_us(&self) -> f64 {
        round2(self.sorted.last().copied().unwrap_or(0) as f64 / 1_000.0)
    }
}

/// The median of per-round values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let m = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    round2(m)
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `a / b`, rounded to 3 decimals; 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        (a / b * 1000.0).round() / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s = Samples::new((1..=1000).rev().collect());
        assert_eq!(s.quantile_ns(0.5), 500);
        assert_eq!(s.quantile_ns(0.99), 990);
        assert_eq!(s.quantile_ns(0.999), 999);
        assert_eq!(s.quantile_ns(1.0), 1000);
        assert_eq!(s.quantile_ns(0.0), 1);
        assert_eq!(Samples::default().quantile_ns(0.5), 0);
    }

    #[test]
    fn medians_and_ratios() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(ratio(1.0, 3.0), 0.333);
        assert_eq!(ratio(1.0, 0.0), 0.0);
    }
}
