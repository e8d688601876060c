//! The changes waiting to be written, and how far the written ones reach.
//!
//! The store pushes a step's changes here (under the engine lock, so their order is the
//! order they happened in) and gets a sequence number back; the writer thread takes
//! everything pushed so far, commits it in one transaction, and publishes the sequence number
//! it reached. Whoever must not go on before a change is on disk (an API answer, a delivery)
//! waits for that number: requests arriving while a commit runs share the next one.

use std::sync::{Arc, Condvar, Mutex};

pub use super::watermark::NotDurable;
use super::watermark::Watermark;

use crate::domain::dlq::DlqEntry;
use crate::domain::log::LogEntry;
use crate::domain::message::{MessageSpec, Phase};
use crate::store::{Published, SigningKeys};

/// What of a message changes after it is stored; the spec never does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MsgState {
    pub retried: u32,
    pub phase: Phase,
    pub cancel_requested: bool,
}

/// Kinds of whole records kept in the `records` table, keyed by user, kind and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Queue,
    UrlGroup,
    Schedule,
    FlowKey,
    /// One workflow run (`persistence::runs`).
    Run,
    /// A user's workflow waiters and stored notifications.
    RunIndex,
    Keys,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::Queue,
        Kind::UrlGroup,
        Kind::Schedule,
        Kind::FlowKey,
        Kind::Run,
        Kind::RunIndex,
        Kind::Keys,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Queue => "queue",
            Kind::UrlGroup => "url_group",
            Kind::Schedule => "schedule",
            Kind::FlowKey => "flow_key",
            Kind::Run => "workflow_run",
            Kind::RunIndex => "workflow_index",
            Kind::Keys => "signing_keys",
        }
    }
}

/// One change. Records travel as they are (cheap `Arc` clones) and are encoded by the writer,
/// off the engine lock; the few that are not `Clone` arrive encoded.
pub enum Op {
    /// Messages are keyed on disk by a row number handed out in the order they were
    /// stored: appends, where random message ids would dirty index pages all over the file
    /// at every commit. The row keeps the store order that queues start messages in.
    MsgPut {
        row: i64,
        user: u8,
        spec: Arc<MessageSpec>,
        state: MsgState,
    },
    MsgState {
        row: i64,
        state: MsgState,
    },
    /// The message finished. Its row stays, as the spec of the log entries that name it
    /// (`Log::spec_row`), until the log is trimmed past them (`writer::Finished`).
    MsgDel {
        row: i64,
        user: u8,
    },
    /// `spec_row`: the row of the stored message whose spec this entry shows, written in
    /// its place (a publish then writes its spec once, not once more in its log entry).
    Log {
        user: u8,
        entry: LogEntry,
        spec_row: Option<i64>,
    },
    /// Entries below this sequence number left the log.
    LogTrim {
        user: u8,
        below: u64,
    },
    DlqPut {
        user: u8,
        seq: u64,
        entry: DlqEntry,
    },
    DlqDel {
        user: u8,
        seq: u64,
    },
    DlqTrim {
        user: u8,
        below: u64,
    },
    Keys {
        user: u8,
        keys: SigningKeys,
    },
    /// A record put (`Some`, encoded) or removed (`None`).
    Record {
        user: u8,
        kind: Kind,
        key: Arc<str>,
        value: Option<Vec<u8>>,
    },
    Dedup {
        user: u8,
        key: String,
        until: i64,
        published: Published,
        now: i64,
    },
    /// The reset control: the user's log, DLQ, records and dedup entries go (its messages
    /// went before, one `MsgDel` each, so the messages' netting sees them).
    UserReset {
        user: u8,
    },
}

#[derive(Default)]
struct Buffer {
    ops: Vec<Op>,
    /// The sequence number of the last step pushed.
    seq: u64,
    closed: bool,
    /// The writer sleeps on `more`: only then does a push wake it (a wake is a syscall, and
    /// pushes come at request rate).
    writer_waits: bool,
}

#[derive(Default)]
pub struct Journal {
    buffer: Mutex<Buffer>,
    more: Condvar,
    watermark: Watermark,
}

impl Journal {
    fn buffer(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands a step's changes to the writer; returns the step's sequence number.
    pub fn push(&self, ops: &mut Vec<Op>) -> u64 {
        let mut b = self.buffer();
        if b.ops.is_empty() {
            std::mem::swap(&mut b.ops, ops);
        } else {
            b.ops.append(ops);
        }
        b.seq += 1;
        let seq = b.seq;
        let wake = std::mem::take(&mut b.writer_waits);
        drop(b);
        if wake {
            self.more.notify_one();
        }
        seq
    }

    /// The sequence number of the last step pushed.
    pub fn pushed(&self) -> u64 {
        self.buffer().seq
    }

    /// Blocks (the writer thread) until there is something to write; `None` once closed and
    /// drained.
    pub(super) fn take(&self) -> Option<(Vec<Op>, u64)> {
        let mut b = self.buffer();
        loop {
            if !b.ops.is_empty() {
                let ops = std::mem::take(&mut b.ops);
                return Some((ops, b.seq));
            }
            if b.closed {
                return None;
            }
            b.writer_waits = true;
            b = self.more.wait(b).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Everything up to `seq` is on disk (a step without changes counts as written at once).
    pub(super) fn reached(&self, seq: u64) {
        self.watermark.reached(seq);
    }

    pub(super) fn fail(&self, why: String) {
        self.watermark.fail(why);
    }

    /// The writer drains what is left, then stops.
    pub fn close(&self) {
        self.buffer().closed = true;
        self.more.notify_all();
    }

    /// Resolves once step `seq` is on disk.
    pub async fn durable(&self, seq: u64) -> Result<(), NotDurable> {
        self.watermark.wait(seq).await
    }

    /// Whether step `seq` is on disk already (no waiting needed).
    pub fn is_durable(&self, seq: u64) -> bool {
        self.watermark.is_durable(seq)
    }
}
