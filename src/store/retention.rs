//! What the event log and the DLQ keep, by count and by bytes.
//!
//! Log entries and DLQ entries share the message's body and the stored response (`Arc`s),
//! so memory is what those bodies add up to, not the number of entries: 3,000 deliveries
//! with 1 MB answers held 3 GB in a log capped only by count. Each user's log and DLQ have a
//! byte budget (`-retention-mb`) besides their count cap, and the oldest entries go first.
//!
//! A large body is charged once per message however many log entries share it (a ledger
//! counts the entries per message id); a small one is simply charged to each entry (a map
//! update per entry cost more than the bytes it saves); a response is charged to each entry
//! that carries it.

use crate::domain::dlq::DlqEntry;
use crate::domain::log::LogEntry;
use crate::domain::message::{MessageSpec, Response};
use crate::ids::{IdMap, MessageId};

/// Bookkeeping bytes of one entry besides the bodies (the entry, its `Arc`s, map slots).
const ENTRY_OVERHEAD: usize = 160;

/// Newest entries kept in each user's event log.
pub const LOG_RETENTION: usize = 10_000;
/// Entries kept in each user's DLQ at most (besides the byte budget and the quota's days).
pub const DLQ_RETENTION: usize = 100_000;

fn spec_bytes(spec: &MessageSpec) -> usize {
    spec.body.len() + spec.options.headers.heap_size()
}

fn response_bytes(r: &Response) -> usize {
    r.body.len() + r.headers.heap_size()
}

/// Bodies (with their headers) from this size on are charged once per message.
const SHARED_BODY: usize = 4096;

/// The bytes a user's event log holds.
#[derive(Default)]
pub struct LogLedger {
    bytes: usize,
    /// Per message: entries in the log, and the body bytes charged for them.
    bodies: IdMap<(u32, usize)>,
}

impl LogLedger {
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn entry_bytes(e: &LogEntry) -> usize {
        ENTRY_OVERHEAD
            + e.detail
                .as_ref()
                .and_then(|d| d.response.as_deref())
                .map_or(0, response_bytes)
    }

    pub fn add(&mut self, e: &LogEntry) {
        self.bytes += Self::entry_bytes(e);
        let size = spec_bytes(&e.spec);
        if size < SHARED_BODY {
            self.bytes += size;
            return;
        }
        let body = self.bodies.entry(e.spec.id).or_insert((0, 0));
        if body.0 == 0 {
            body.1 = size;
            self.bytes += body.1;
        }
        body.0 += 1;
    }

    pub fn remove(&mut self, e: &LogEntry) {
        self.bytes = self.bytes.saturating_sub(Self::entry_bytes(e));
        let size = spec_bytes(&e.spec);
        if size < SHARED_BODY {
            self.bytes = self.bytes.saturating_sub(size);
            return;
        }
        let id: MessageId = e.spec.id;
        if let Some(body) = self.bodies.get_mut(&id) {
            body.0 = body.0.saturating_sub(1);
            if body.0 == 0 {
                self.bytes = self.bytes.saturating_sub(body.1);
                self.bodies.remove(&id);
            }
        }
    }
}

/// The bytes one DLQ entry holds.
pub fn dlq_entry_bytes(e: &DlqEntry) -> usize {
    ENTRY_OVERHEAD + spec_bytes(&e.spec) + response_bytes(&e.response)
}

/// What one entry weighs in a JSON page (bodies are shown base64-encoded): the API bounds
/// a page by this as well as by count.
pub fn page_weight(spec: &MessageSpec, response: Option<&Response>) -> usize {
    let raw = spec.body.len() + response.map_or(0, |r| r.body.len());
    512 + raw / 3 * 4
}

/// Bytes of JSON one page of logs or DLQ entries may carry (at least one entry is always
/// returned, however large).
pub const PAGE_BYTES: usize = 8 * 1024 * 1024;
