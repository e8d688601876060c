//! Identifiers handed out by the broker.
//!
//! A message id is 128 random bits shown as `msg_` + 22 base62 characters. Keeping it as a
//! `u128` instead of a `String` saves an allocation and ~40 bytes per stored message.

use std::fmt;
use std::str::FromStr;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 62^22 > 2^128, so 22 digits hold any u128.
const DIGITS: usize = 22;

fn encode(mut v: u128, out: &mut [u8; DIGITS]) {
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(v % 62) as usize];
        v /= 62;
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
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; DIGITS];
        encode(self.0, &mut buf);
        f.write_str("msg_")?;
        // The alphabet is ASCII, so this never fails.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
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
