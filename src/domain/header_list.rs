//! A compact, immutable list of HTTP headers kept with every stored message.
//!
//! All pairs live in one boxed byte buffer (`[name_len u32][name][value_len u32][value]…`),
//! one allocation per message instead of two per header: at a million queued messages with
//! five forwarded headers each that is the difference between ~0.5 KB and ~0.15 KB.
//! Names are stored in canonical MIME form (`Content-Type`), which is also how the API
//! reports them.

use std::fmt;

use serde::ser::{SerializeMap, Serializer};

#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderList(Box<[u8]>);

#[derive(Default)]
pub struct HeaderListBuilder(Vec<u8>);

impl HeaderListBuilder {
    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.0.extend_from_slice(&(name.len() as u32).to_le_bytes());
        let start = self.0.len();
        self.0.extend_from_slice(name.as_bytes());
        canonicalize_in_place(&mut self.0[start..]);
        self.0
            .extend_from_slice(&(value.len() as u32).to_le_bytes());
        self.0.extend_from_slice(value);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn with_capacity(bytes: usize) -> Self {
        Self(Vec::with_capacity(bytes))
    }

    pub fn finish(self) -> HeaderList {
        HeaderList(self.0.into_boxed_slice())
    }
}

/// `content-type` → `Content-Type`, as Go's `textproto.CanonicalMIMEHeaderKey` does for
/// names made of token characters.
fn canonicalize_in_place(name: &mut [u8]) {
    let mut upper = true;
    for b in name.iter_mut() {
        *b = if upper {
            b.to_ascii_uppercase()
        } else {
            b.to_ascii_lowercase()
        };
        upper = *b == b'-';
    }
}

pub fn canonical_name(name: &str) -> String {
    let mut bytes = name.as_bytes().to_vec();
    canonicalize_in_place(&mut bytes);
    String::from_utf8(bytes).unwrap_or_else(|_| name.to_string())
}

impl HeaderList {
    pub fn builder() -> HeaderListBuilder {
        HeaderListBuilder::default()
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut b = HeaderListBuilder(Vec::with_capacity(256));
        for (n, v) in pairs {
            b.push(n, v);
        }
        b.finish()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> Iter<'_> {
        Iter { buf: &self.0 }
    }

    /// First value of a header, name compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Bytes used on the heap, for the memory benchmark's accounting.
    pub fn heap_size(&self) -> usize {
        self.0.len()
    }

    /// Serializes as the API's header map (`{"Name": ["v1", "v2"]}`), with `transform`
    /// deciding what is shown for each value (redaction).
    pub fn serialize_with<S: Serializer>(
        &self,
        s: S,
        transform: impl Fn(&str, &[u8]) -> String,
    ) -> Result<S::Ok, S::Error> {
        let mut names: Vec<&str> = Vec::new();
        for (n, _) in self.iter() {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let mut map = s.serialize_map(Some(names.len()))?;
        for name in names {
            let values: Vec<String> = self
                .iter()
                .filter(|(n, _)| *n == name)
                .map(|(n, v)| transform(n, v))
                .collect();
            map.serialize_entry(name, &values)?;
        }
        map.end()
    }
}

impl serde::Serialize for HeaderList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize_with(s, |_, v| String::from_utf8_lossy(v).into_owned())
    }
}

impl fmt::Debug for HeaderList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|(n, v)| (n, String::from_utf8_lossy(v))))
            .finish()
    }
}

pub struct Iter<'a> {
    buf: &'a [u8],
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (name, rest) = take(self.buf)?;
        let (value, rest) = take(rest)?;
        self.buf = rest;
        // Names were pushed as &str and only ASCII-case-mapped, so they stay valid UTF-8.
        Some((std::str::from_utf8(name).unwrap_or(""), value))
    }
}

fn take(buf: &[u8]) -> Option<(&[u8], &[u8])> {
    let len_bytes: [u8; 4] = buf.get(..4)?.try_into().ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    let body = buf.get(4..4 + len)?;
    Some((body, &buf[4 + len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_canonicalizes_and_groups() {
        let list = HeaderList::from_pairs([
            ("test-header", b"a".as_slice()),
            ("content-type", b"application/json"),
            ("TEST-HEADER", b"b"),
            ("bypass-tunnel-reminder", b"client-test"),
        ]);
        let names: Vec<_> = list.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "Test-Header",
                "Content-Type",
                "Test-Header",
                "Bypass-Tunnel-Reminder"
            ]
        );
        assert_eq!(
            list.get("CONTENT-TYPE"),
            Some(b"application/json".as_slice())
        );
        let json = serde_json::to_value(&list).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "Test-Header": ["a", "b"],
                "Content-Type": ["application/json"],
                "Bypass-Tunnel-Reminder": ["client-test"],
            })
        );
    }

    #[test]
    fn binary_values_survive() {
        let list = HeaderList::from_pairs([("x-bin", [0u8, 255, 10].as_slice())]);
        assert_eq!(list.get("x-bin"), Some([0u8, 255, 10].as_slice()));
        assert!(HeaderList::default().is_empty());
        assert_eq!(HeaderList::default().iter().count(), 0);
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("x-api-key"), "X-Api-Key");
        assert_eq!(canonical_name("HELICONE-AUTH"), "Helicone-Auth");
    }
}

/// The stored form of a list (`#[serde(with = "…::raw")]`): its buffer as it is, so duplicate
/// names, their order and non-text values survive a restart (the API's map form keeps none
/// of these).
pub mod raw {
    use serde::{Deserialize, Deserializer, Serializer};

    use super::HeaderList;

    pub fn serialize<S: Serializer>(list: &HeaderList, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&list.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<HeaderList, D::Error> {
        let buf = serde_bytes_buf(d)?;
        // Read back only what a builder wrote: a buffer that does not parse to its end is
        // refused rather than served half.
        let mut rest: &[u8] = &buf;
        while !rest.is_empty() {
            let (_, r) = super::take(rest).ok_or_else(bad)?;
            let (_, r) = super::take(r).ok_or_else(bad)?;
            rest = r;
        }
        Ok(HeaderList(buf.into_boxed_slice()))
    }

    fn bad<E: serde::de::Error>() -> E {
        E::custom("a stored header list is malformed")
    }

    fn serde_bytes_buf<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(bytes::Bytes::deserialize(d)?.to_vec())
    }
}
