//! The bench clock (nanoseconds since the bench started) and the stamped message body:
//! fixed-size JSON carrying a run id and the intended send time, so the receiver can compute
//! publish→receipt latency on arrival and ignore messages of earlier runs.

use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The instant every `now_ns` is measured from.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

const RUN_KEY: &[u8] = b"{\"run\":\"";
const T_KEY: &[u8] = b"\",\"t\":\"";
const PAD_KEY: &[u8] = b"\",\"pad\":\"";
const RUN_DIGITS: usize = 10;
const T_DIGITS: usize = 20;

/// A body template of exactly `len` bytes: `{"run":"<10 digits>","t":"<20 digits>","pad":"xx…"}`.
#[derive(Clone, Debug)]
pub struct Stamp {
    template: Vec<u8>,
    t_at: usize,
}

impl Stamp {
    pub fn new(len: usize, run: u32) -> Stamp {
        let mut b = Vec::with_capacity(len);
        b.extend_from_slice(RUN_KEY);
        b.extend_from_slice(format!("{run:0RUN_DIGITS$}").as_bytes());
        b.extend_from_slice(T_KEY);
        let t_at = b.len();
        b.extend_from_slice(&[b'0'; T_DIGITS]);
        b.extend_from_slice(PAD_KEY);
        let fixed = b.len() + 2; // closing `"}`
        b.resize(len.max(fixed) - 2, b'x');
        b.extend_from_slice(b"\"}");
        Stamp { template: b, t_at }
    }

    /// The body with `t_ns` written in (one allocation: the body itself).
    pub fn body(&self, t_ns: u64) -> Bytes {
        let mut b = self.template.clone();
        let mut v = t_ns;
        for d in b[self.t_at..self.t_at + T_DIGITS].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Bytes::from(b)
    }

    /// The body with t = 0 (for requests whose timing nobody reads).
    pub fn plain(&self) -> Bytes {
        Bytes::from(self.template.clone())
    }
}

/// `(run, t_ns)` from a stamped body; `None` for anything else.
pub fn parse(body: &[u8]) -> Option<(u32, u64)> {
    let rest = body.strip_prefix(RUN_KEY)?;
    let run = digits(rest.get(..RUN_DIGITS)?)?;
    let rest = rest[RUN_DIGITS..].strip_prefix(T_KEY)?;
    let t = digits(rest.get(..T_DIGITS)?)?;
    Some((u32::try_from(run).ok()?, t))
}

fn digits(b: &[u8]) -> Option<u64> {
    b.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit()
            .then(|| acc.wrapping_mul(10).wrapping_add(u64::from(c - b'0')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_body_is_fixed_size_json_and_parses_back() {
        let s = Stamp::new(100, 42);
        let b = s.body(1_234_567_890_123);
        assert_eq!(b.len(), 100);
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["t"], "00000001234567890123");
        assert_eq!(parse(&b), Some((42, 1_234_567_890_123)));
        assert_eq!(parse(&s.plain()), Some((42, 0)));
        assert_eq!(parse(b"{\"hello\":1}"), None);
    }
}
