//! Run-scoped notifications that arrived before the run waited for their event
//! (`POST /v2/notify/{runId}/{eventId}`, webhook calls), kept until it does.
//!
//! Bounded per (run, event), per run and per user, by count and bytes; past a bound the
//! oldest notification goes. Production QStash keeps no notification nobody waits for (the
//! notify answers an empty list and the event is lost), so a notify never fails for it and
//! nobody expects it to: this store is a courtesy for the webhook call that races the
//! `waitForWebhook` step, and a caller (often a third party behind a webhook URL) could do
//! nothing useful with a 4xx. Dropping the oldest keeps the newest events, which are the ones
//! a run about to wait is after.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

/// Notifications kept for one (run, event)…
pub const MAX_PER_EVENT: usize = 100;
/// …for one run, whatever the event…
pub const MAX_PER_RUN: usize = 1_000;
pub const MAX_BYTES_PER_RUN: usize = 16 * 1024 * 1024;
/// …and for all the runs of one user.
pub const MAX_PER_USER: usize = 10_000;
pub const MAX_BYTES_PER_USER: usize = 64 * 1024 * 1024;

/// Bytes a notification is counted for besides its body (ids, bookkeeping).
const OVERHEAD: usize = 64;

#[derive(serde::Serialize, serde::Deserialize)]
struct Note {
    /// Arrival order across the user's runs.
    seq: u64,
    event: Arc<str>,
    data: Bytes,
}

fn cost(n: &Note) -> usize {
    n.data.len() + n.event.len() + OVERHEAD
}

#[derive(Default, serde::Serialize, serde::Deserialize)]
struct RunNotes {
    /// Oldest first (ascending `seq`).
    notes: VecDeque<Note>,
    bytes: usize,
}

/// One user's stored notifications.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Stored {
    runs: HashMap<Arc<str>, RunNotes>,
    /// `(seq, run)` of every stored notification, oldest first, to find the user's oldest;
    /// may also hold notifications since taken or dropped (skipped, and compacted away).
    order: VecDeque<(u64, Arc<str>)>,
    next_seq: u64,
    count: usize,
    bytes: usize,
}

impl Stored {
    /// Keeps a notification of `event` for `run`, dropping the oldest past a bound.
    pub fn push(&mut self, run: Arc<str>, event: Arc<str>, data: Bytes) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let note = Note { seq, event, data };
        let size = cost(&note);
        let notes = self.runs.entry(run.clone()).or_default();
        let same_event = notes.notes.iter().filter(|n| n.event == note.event).count();
        if same_event >= MAX_PER_EVENT
            && let Some(i) = notes.notes.iter().position(|n| n.event == note.event)
        {
            self.remove_at(&run, i);
        }
        let notes = self.runs.entry(run.clone()).or_default();
        notes.notes.push_back(note);
        notes.bytes += size;
        self.count += 1;
        self.bytes += size;
        self.order.push_back((seq, run.clone()));
        while self.runs.get(&run).is_some_and(|r| {
            r.notes.len() > MAX_PER_RUN || (r.bytes > MAX_BYTES_PER_RUN && r.notes.len() > 1)
        }) {
            self.remove_at(&run, 0);
        }
        while self.count > MAX_PER_USER || (self.bytes > MAX_BYTES_PER_USER && self.count > 1) {
            self.drop_oldest();
        }
        self.compact();
    }

    /// Takes the oldest stored notification of `event` for `run`.
    pub fn take(&mut self, run: &str, event: &str) -> Option<Bytes> {
        let i = self
            .runs
            .get(run)?
            .notes
            .iter()
            .position(|n| &*n.event == event)?;
        let note = self.remove_at(run, i);
        self.compact();
        note.map(|n| n.data)
    }

    /// Forgets every notification of `run` (it ended).
    pub fn forget(&mut self, run: &str) {
        if let Some(r) = self.runs.remove(run) {
            self.count -= r.notes.len();
            self.bytes -= r.bytes;
            self.compact();
        }
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    fn remove_at(&mut self, run: &str, i: usize) -> Option<Note> {
        let r = self.runs.get_mut(run)?;
        let note = r.notes.remove(i)?;
        let size = cost(&note);
        r.bytes -= size;
        if r.notes.is_empty() {
            self.runs.remove(run);
        }
        self.count -= 1;
        self.bytes -= size;
        Some(note)
    }

    /// Drops the user's oldest notification still stored.
    fn drop_oldest(&mut self) {
        while let Some((seq, run)) = self.order.pop_front() {
            let at = self
                .runs
                .get(&run)
                .and_then(|r| r.notes.binary_search_by_key(&seq, |n| n.seq).ok());
            if let Some(i) = at {
                self.remove_at(&run, i);
                return;
            }
        }
    }

    /// Removes the order's records of notifications no longer stored, once they outnumber
    /// the stored ones: the order stays proportional to what is stored.
    fn compact(&mut self) {
        if self.order.len() <= 2 * self.count + 64 {
            return;
        }
        let runs = &self.runs;
        self.order.retain(|(seq, run)| {
            runs.get(run)
                .is_some_and(|r| r.notes.binary_search_by_key(seq, |n| n.seq).is_ok())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(s: &mut Stored, run: &str, event: &str, data: &str) {
        s.push(run.into(), event.into(), Bytes::from(data.to_string()));
    }

    #[test]
    fn bounds_per_event_run_and_user_drop_the_oldest() {
        let mut s = Stored::default();
        for i in 0..MAX_PER_EVENT + 1 {
            push(&mut s, "r", "e", &i.to_string());
        }
        assert_eq!(s.len(), MAX_PER_EVENT);
        assert_eq!(s.take("r", "e").as_deref(), Some(&b"1"[..]));

        let mut s = Stored::default();
        for i in 0..MAX_PER_RUN + 5 {
            push(&mut s, "r", &format!("e{i}"), "x");
        }
        assert_eq!(s.len(), MAX_PER_RUN);
        assert_eq!(s.take("r", "e4"), None, "the oldest went");
        assert!(s.take("r", "e5").is_some());

        let mut s = Stored::default();
        for i in 0..MAX_PER_USER + 3 {
            push(&mut s, &format!("r{i}"), "e", "x");
        }
        assert_eq!(s.len(), MAX_PER_USER);
        assert_eq!(s.take("r2", "e"), None);
        assert!(s.take("r3", "e").is_some());
        assert!(s.order.len() <= 2 * s.len() + 64);

        let mut s = Stored::default();
        let big = "x".repeat(MAX_BYTES_PER_RUN / 4);
        for i in 0..5 {
            push(&mut s, "r", &format!("e{i}"), &big);
        }
        assert!(s.bytes <= MAX_BYTES_PER_RUN, "{}", s.bytes);
        assert_eq!(s.take("r", "e0"), None);
        assert!(s.take("r", "e4").is_some());
        s.forget("r");
        assert!(s.is_empty());
        assert_eq!(s.bytes, 0);
    }
}
