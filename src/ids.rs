//! Identifiers handed out by the broker.
//!
//! A message id is 128 random bits shown as `msg_` + 22 base62 characters. Keeping it as a
//! `u128` instead of a `String` saves an allocation and ~40 bytes per stored message.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::str::FromStr;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 62^22 > 2^128, so 22 digits hold any u128.
const DIGITS: usize = 22;

/// 62^10, the largest power of 62 whose digits fit comfortably in a u64 step.
const CHUNK: u128 = 839_299_365_868_340_224;

fn encode(v: u128, out: &mut [u8; DIGITS]) {
    // Three 128-bit divisions, then cheap 64-bit ones: u128 division is a libcall, and ids
    // are formatted on every response and delivery.
    let (high, low) = (v / CHUNK, (v % CHUNK) as u64);
    let (top, mid) = ((high / CHUNK) as u64, (high % CHUNK) as u64);
    for (range, mut n) in [(12..22, low), (2..12, mid), (0..2, top)] {
        for slot in out[range].iter_mut().rev() {
            *slot = ALPHABET[(n % 62) as usize];
            n /= 62;
        }
    }
}

fn decode(s: &str) -> Option<u128> {
    if s.len() != DIGITS {
        return None;
    }
    let mut v: u128 = 0;
    for b in s.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return None,
        };
        v = v.checked_mul(62)?.checked_add(d as u128)?;
    }
    Some(v)
}

fn random_u128() -> u128 {
    uuid::Uuid::new_v4().as_u128()
}

/// Random alphanumeric text, for ids that are only ever shown (`jwt_…`, `scd_…`, keys).
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut buf = [0u8; DIGITS];
        encode(random_u128(), &mut buf);
        // The leading digit is biased (62^22 is far above 2^128); skip it.
        for &b in &buf[1..] {
            if out.len() == len {
                break;
            }
            out.push(b as char);
        }
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(u128);

impl MessageId {
    pub fn random() -> Self {
        Self(random_u128())
    }

    /// Which of `n` shards the id belongs to (the ids are random, so shards fill evenly).
    pub fn shard(&self, n: usize) -> usize {
        ((self.0 >> 64) as u64 % n as u64) as usize
    }

    /// A fixed id, for tests.
    #[cfg(test)]
    pub fn from_u128(n: u128) -> Self {
        Self(n)
    }
}

/// Hashes a [`MessageId`] by folding its bits: the ids are random already, so the default
/// SipHash (a visible cost on every store lookup) buys nothing.
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ b as u64;
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = (n as u64) ^ ((n >> 64) as u64);
    }
}

/// FNV-1a for short strings we key maps by (hosts): cheaper than SipHash, and nobody
/// outside can use hash flooding against a local development server.
#[derive(Default)]
pub struct FnvHasher(u64);

impl Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}

/// A map keyed by short strings.
pub type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<FnvHasher>>;

/// A map keyed by message id.
pub type IdMap<V> = HashMap<MessageId, V, BuildHasherDefault<IdHasher>>;

impl MessageId {
    /// The textual form (`msg_…`) on the stack, for headers and JSON without a `String`.
    pub fn text(&self) -> IdText {
        let mut buf = [0u8; 4 + DIGITS];
        buf[..4].copy_from_slice(b"msg_");
        let digits: &mut [u8; DIGITS] = (&mut buf[4..])
            .try_into()
            .unwrap_or_else(|_| unreachable!());
        encode(self.0, digits);
        IdText(buf)
    }
}

/// A message id's text, `msg_` + 22 base62 digits.
pub struct IdText([u8; 4 + DIGITS]);

impl IdText {
    pub fn as_str(&self) -> &str {
        // Only ASCII from `ALPHABET` and the prefix is ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text().as_str())
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for MessageId {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        s.strip_prefix("msg_").and_then(decode).map(Self).ok_or(())
    }
}

impl serde::Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_round_trips() {
        for _ in 0..100 {
            let id = MessageId::random();
            let text = id.to_string();
            assert!(text.starts_with("msg_") && text.len() == 26, "{text}");
            assert_eq!(text.parse::<MessageId>(), Ok(id));
        }
        assert_eq!(
            MessageId(u128::MAX).to_string().parse(),
            Ok(MessageId(u128::MAX))
        );
    }

    #[test]
    fn chunked_encoding_matches_plain_base62() {
        fn slow(mut v: u128) -> String {
            let mut out = [0u8; DIGITS];
            for slot in out.iter_mut().rev() {
                *slot = ALPHABET[(v % 62) as usize];
                v /= 62;
            }
            String::from_utf8(out.to_vec()).unwrap()
        }
        for v in [
            0,
            1,
            61,
            62,
            CHUNK - 1,
            CHUNK,
            CHUNK * CHUNK + 5,
            u128::MAX,
            MessageId::random().0,
        ] {
            let mut out = [0u8; DIGITS];
            encode(v, &mut out);
            assert_eq!(std::str::from_utf8(&out).unwrap(), slow(v), "{v}");
        }
    }

    #[test]
    fn foreign_ids_do_not_parse() {
        assert!("msg_short".parse::<MessageId>().is_err());
        assert!("scd_0123456789012345678901".parse::<MessageId>().is_err());
        assert!(
            "msg_zzzzzzzzzzzzzzzzzzzzzz".parse::<MessageId>().is_err(),
            "overflow"
        );
    }

    #[test]
    fn random_text_has_requested_length() {
        let s = random_base62(28);
        assert_eq!(s.len(), 28);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
