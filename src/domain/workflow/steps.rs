//! A run's raw steps, in insertion order, and the steps array delivered with every step
//! message: `[{"messageId","body":<base64>,"callType":"step"}, …]` up to and including the
//! message's own entry.
//!
//! Each step's JSON fragment is encoded once, when the step is recorded, into the run's
//! segments: fragments back to back in shared buffers of about [`SEGMENT`] bytes. A delivery's
//! body is handles to the full segments plus a copy of at most one segment's worth (the one
//! still growing), so its cost does not grow with the history, and it goes out in a few large
//! writes rather than one per step. The SHA-256 state after each fragment is kept too, so the
//! body hash the signature needs costs one block, not a pass over the whole history.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sha2::{Digest, Sha256};

use super::meta::StepMeta;
use super::tag::CallType;
use crate::ids::MessageId;

static CLOSE: Bytes = Bytes::from_static(b"]");

/// Fragments are packed into shared segments of about this size; a larger fragment is a
/// segment of its own.
const SEGMENT: usize = 16 * 1024;

/// Where a delivered fragment lies: segment `seg` (the open one when it equals the number of
/// frozen segments), bytes `start..end`.
#[derive(Clone, Copy, Debug)]
struct Span {
    seg: u32,
    start: u32,
    end: u32,
}

/// One raw step: a message of the run and what it carried.
#[derive(Clone, Debug)]
pub struct RawStep {
    pub message_id: MessageId,
    pub call_type: CallType,
    pub created_at: i64,
    /// What the step says about itself (step messages other than the Init message).
    /// Shared, like the hash state and the bytes: a copy of a run's steps (for the logs, the
    /// lazy-fetch listing) is a pass of reference counts, not of the history.
    pub meta: Option<Arc<StepMeta>>,
    data: Data,
}

#[derive(Clone, Debug)]
enum Data {
    /// A step entry, part of delivered bodies: `[` or `,` then the entry's JSON (in the
    /// segments), and the body hash state after it.
    Delivered { at: Span, hash: Arc<Sha256> },
    /// A `context.call` entry (toCallback / fromCallback): only listed by the lazy-fetch
    /// route (the SDKs skip them when rebuilding a run), so its JSON is built on demand.
    Listed(Bytes),
}

/// The body of one delivery: fragments to send in order, their length and SHA-256.
#[derive(Debug, Clone)]
pub struct DeliveredBody {
    pub parts: Vec<Bytes>,
    pub len: usize,
    pub sha256: [u8; 32],
}

impl DeliveredBody {
    pub fn empty() -> Self {
        Self {
            parts: Vec::new(),
            len: 0,
            sha256: Sha256::digest(b"").into(),
        }
    }
}

fn entry_json(out: &mut Vec<u8>, id: MessageId, body: &[u8], call_type: CallType) {
    out.extend_from_slice(b"{\"messageId\":\"");
    out.extend_from_slice(id.text().as_str().as_bytes());
    out.extend_from_slice(b"\",\"body\":\"");
    let start = out.len();
    out.resize(start + body.len().div_ceil(3) * 4, 0);
    let written = STANDARD
        .encode_slice(body, &mut out[start..])
        .unwrap_or_default();
    out.truncate(start + written);
    out.extend_from_slice(b"\",\"callType\":\"");
    out.extend_from_slice(call_type.as_str().as_bytes());
    out.extend_from_slice(b"\"}");
}

/// The steps of one run.
#[derive(Clone, Debug, Default)]
pub struct Steps {
    entries: Vec<RawStep>,
    /// Full segments of delivered fragments, shared by the deliveries that include them.
    segments: Vec<Bytes>,
    /// The segment being filled.
    open: BytesMut,
    /// The hash state after the last delivered fragment (`None`: nothing delivered yet).
    tail: Option<Box<Sha256>>,
    bytes: usize,
}

impl Steps {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &RawStep> {
        self.entries.iter()
    }

    pub fn first(&self) -> Option<&RawStep> {
        self.entries.first()
    }

    /// Heap bytes held by the entries' bodies.
    pub fn heap_size(&self) -> usize {
        self.bytes
    }

    /// Appends an entry. `body` is the message body (the initial payload for the Init entry).
    pub fn push(
        &mut self,
        message_id: MessageId,
        call_type: CallType,
        body: &Bytes,
        meta: Option<Arc<StepMeta>>,
        created_at: i64,
    ) {
        let data = match call_type {
            CallType::Step => {
                let mut fragment = Vec::with_capacity(body.len() * 4 / 3 + 80);
                fragment.push(if self.tail.is_some() { b',' } else { b'[' });
                entry_json(&mut fragment, message_id, body, call_type);
                let mut tail = self.tail.take().unwrap_or_default();
                tail.update(&fragment);
                let hash = Arc::new(Sha256::clone(&tail));
                self.tail = Some(tail);
                self.bytes += fragment.len() + 160;
                Data::Delivered {
                    at: self.store(fragment),
                    hash,
                }
            }
            _ => {
                self.bytes += body.len() + 64;
                Data::Listed(body.clone())
            }
        };
        self.entries.push(RawStep {
            message_id,
            call_type,
            created_at,
            meta,
            data,
        });
    }

    /// Packs a fragment into the segments.
    fn store(&mut self, fragment: Vec<u8>) -> Span {
        let len = fragment.len() as u32;
        if fragment.len() > SEGMENT / 2 {
            self.freeze();
            self.segments.push(fragment.into());
            let seg = self.segments.len() as u32 - 1;
            return Span {
                seg,
                start: 0,
                end: len,
            };
        }
        if self.open.len() + fragment.len() > SEGMENT {
            self.freeze();
        }
        let start = self.open.len() as u32;
        self.open.extend_from_slice(&fragment);
        Span {
            seg: self.segments.len() as u32,
            start,
            end: start + len,
        }
    }

    fn freeze(&mut self) {
        if !self.open.is_empty() {
            let full = self.open.split().freeze();
            self.segments.push(full);
        }
    }

    /// The bytes of segment `seg` up to `end` (a copy when it is the open segment).
    fn segment_prefix(&self, seg: u32, end: u32) -> Bytes {
        match self.segments.get(seg as usize) {
            Some(s) => s.slice(..end as usize),
            None => Bytes::copy_from_slice(&self.open[..end as usize]),
        }
    }

    fn fragment(&self, at: Span) -> Bytes {
        match self.segments.get(at.seg as usize) {
            Some(s) => s.slice(at.start as usize..at.end as usize),
            None => Bytes::copy_from_slice(&self.open[at.start as usize..at.end as usize]),
        }
    }

    /// The body an entry carries, decoded (the initial payload for the Init entry).
    pub fn body(&self, e: &RawStep) -> Bytes {
        match &e.data {
            Data::Listed(b) => b.clone(),
            Data::Delivered { at, .. } => {
                let fragment = self.fragment(*at);
                let text = &fragment[1..];
                let start = memchr_after(text, b"\"body\":\"");
                let end = start + text[start..].iter().position(|b| *b == b'"').unwrap_or(0);
                STANDARD
                    .decode(&text[start..end])
                    .unwrap_or_default()
                    .into()
            }
        }
    }

    /// Replaces the Init entry (the SDK re-published the Init message of a `/v2/trigger`
    /// run) and re-chains the hashes.
    pub fn replace_init(&mut self, message_id: MessageId, initial: &Bytes, created_at: i64) {
        let old = std::mem::take(self);
        self.push(message_id, CallType::Step, initial, None, created_at);
        for e in old.entries.iter().skip(1) {
            let body = old.body(e);
            self.push(
                e.message_id,
                e.call_type,
                &body,
                e.meta.clone(),
                e.created_at,
            );
        }
    }

    pub fn position(&self, id: MessageId) -> Option<usize> {
        // The message being delivered is almost always the newest entry.
        self.entries.iter().rposition(|e| e.message_id == id)
    }

    /// The steps array delivered with the step message at `index`: every step entry up to
    /// and including it.
    pub fn delivered(&self, index: usize) -> Option<DeliveredBody> {
        let Data::Delivered { at, hash } = &self.entries.get(index)?.data else {
            return None;
        };
        let mut parts: Vec<Bytes> = self.segments[..at.seg as usize].to_vec();
        parts.push(self.segment_prefix(at.seg, at.end));
        parts.push(CLOSE.clone());
        let len = parts.iter().map(Bytes::len).sum();
        let mut h = Sha256::clone(hash);
        h.update(b"]");
        Some(DeliveredBody {
            parts,
            len,
            sha256: h.finalize().into(),
        })
    }

    /// Every entry, the `context.call` ones included: the lazy-fetch listing.
    pub fn listing(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bytes + 2);
        out.push(b'[');
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match &e.data {
                Data::Delivered { at, .. } => out.extend_from_slice(&self.fragment(*at)[1..]),
                Data::Listed(body) => entry_json(&mut out, e.message_id, body, e.call_type),
            }
        }
        out.push(b']');
        out
    }
}

fn memchr_after(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .map_or(hay.len(), |p| p + needle.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(b: &DeliveredBody) -> Vec<u8> {
        b.parts.iter().flat_map(|p| p.iter().copied()).collect()
    }

    #[test]
    fn delivered_bodies_are_prefixes_with_their_own_hash() {
        let mut s = Steps::default();
        let (a, b, c) = (
            MessageId::random(),
            MessageId::random(),
            MessageId::random(),
        );
        s.push(
            a,
            CallType::Step,
            &Bytes::from_static(b"{\"x\":1}"),
            None,
            1,
        );
        s.push(
            b,
            CallType::ToCallback,
            &Bytes::from_static(b"call"),
            None,
            2,
        );
        s.push(
            c,
            CallType::Step,
            &Bytes::from_static(b"{\"stepId\":1}"),
            None,
            3,
        );
        let first = s.delivered(0).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&joined(&first)).unwrap();
        assert_eq!(json.as_array().unwrap().len(), 1);
        assert_eq!(json[0]["body"], STANDARD.encode("{\"x\":1}"));
        let last = s.delivered(2).unwrap();
        let bytes = joined(&last);
        assert_eq!(bytes.len(), last.len);
        assert_eq!(last.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            json.as_array().unwrap().len(),
            2,
            "call entries are not delivered"
        );
        assert!(s.delivered(1).is_none());
        let all: serde_json::Value = serde_json::from_slice(&s.listing()).unwrap();
        assert_eq!(all[1]["callType"], "toCallback");
        assert_eq!(all[1]["body"], STANDARD.encode("call"));
        assert_eq!(&s.body(s.iter().nth(2).unwrap())[..], b"{\"stepId\":1}");
        assert_eq!(s.position(b), Some(1));
    }

    #[test]
    fn replacing_the_init_entry_rechains() {
        let mut s = Steps::default();
        s.push(
            MessageId::random(),
            CallType::Step,
            &Bytes::from_static(b"old"),
            None,
            1,
        );
        let new = MessageId::random();
        s.replace_init(new, &Bytes::from_static(b"new"), 2);
        let body = s.delivered(0).unwrap();
        assert_eq!(body.sha256, <[u8; 32]>::from(Sha256::digest(joined(&body))));
        assert_eq!(s.first().unwrap().message_id, new);
        assert_eq!(&s.body(s.first().unwrap())[..], b"new");
    }

    #[test]
    fn long_histories_go_out_in_a_few_segments_with_a_bounded_copy() {
        let mut s = Steps::default();
        let step = Bytes::from(vec![b'x'; 150]);
        for _ in 0..300 {
            s.push(MessageId::random(), CallType::Step, &step, None, 1);
        }
        let big = Bytes::from(vec![b'y'; 40_000]);
        s.push(MessageId::random(), CallType::Step, &big, None, 1);
        s.push(MessageId::random(), CallType::Step, &step, None, 1);
        for i in [0, 150, 299, 300, 301] {
            let b = s.delivered(i).unwrap();
            assert!(
                b.parts.len() <= 300 * 300 / SEGMENT + 4,
                "{} parts",
                b.parts.len()
            );
            let bytes = joined(&b);
            assert_eq!(bytes.len(), b.len);
            assert_eq!(b.sha256, <[u8; 32]>::from(Sha256::digest(&bytes)));
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(json.as_array().unwrap().len(), i + 1);
        }
        assert_eq!(s.body(s.iter().nth(300).unwrap()).len(), 40_000);
        let listing: serde_json::Value = serde_json::from_slice(&s.listing()).unwrap();
        assert_eq!(listing.as_array().unwrap().len(), 302);
    }
}
