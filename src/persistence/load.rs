//! Reads a data directory back into a store at start. Any record that does not decode
//! fails the start with its location: starting without it would silently drop state.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;

use super::codec::{LogRow, decode};
use super::journal::{Kind, MsgState};
use super::writer::FINISHED;
use crate::domain::dlq::DlqEntry;
use crate::domain::flow_control::FlowState;
use crate::domain::log::LogEntry;
use crate::domain::message::{Message, MessageSpec};
use crate::ids::MessageId;
use crate::store::{LOG_RETENTION, MemoryStore, Published, Store};
use crate::users::{USER_COUNT, UserId};

/// What the engine rebuilds its scheduling state from (timers, queue order, gates).
#[derive(Default)]
pub struct Restored {
    /// Every unfinished message, in the order it was stored, with its row on disk.
    pub messages: Vec<(UserId, MessageId, i64)>,
    /// Flow-control keys: their pause and pins (their counters start from zero).
    pub flows: Vec<(UserId, FlowState)>,
    /// Rows of finished messages kept as the spec of log entries, with their user.
    pub finished: Vec<(u8, i64)>,
    /// The sequence number of the last log entry read, per user.
    pub log_last: [u64; USER_COUNT],
    /// Past every row on disk, finished ones included.
    pub next_row: i64,
}

fn user_of(raw: i64) -> Result<UserId, String> {
    usize::try_from(raw)
        .ok()
        .filter(|u| *u < USER_COUNT)
        .map(|u| UserId(u as u8))
        .ok_or_else(|| format!("unknown user {raw}"))
}

pub fn load(conn: &Connection, mem: &mut MemoryStore, now: i64) -> Result<Restored, String> {
    let mut restored = Restored::default();
    let sql = |e: rusqlite::Error| e.to_string();

    let mut runs: [super::runs::Gather; USER_COUNT] = Default::default();
    let mut records = conn
        .prepare("SELECT user, kind, key, value FROM records")
        .map_err(sql)?;
    let mut rows = records.query([]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        let user = user_of(row.get(0).map_err(sql)?)?;
        let kind: String = row.get(1).map_err(sql)?;
        let key: String = row.get(2).map_err(sql)?;
        let value: Vec<u8> = row.get(3).map_err(sql)?;
        let at = |e: String| format!("record {kind} \"{key}\": {e}");
        let Some(kind) = Kind::ALL.into_iter().find(|k| k.name() == kind) else {
            return Err(at("unknown kind".into()));
        };
        match kind {
            Kind::Queue => mem.put_queue(user, decode(&value).map_err(at)?),
            Kind::UrlGroup => mem.put_url_group(user, decode(&value).map_err(at)?),
            Kind::Schedule => mem.put_schedule(user, decode(&value).map_err(at)?),
            Kind::Keys => mem.set_signing_keys(user, decode(&value).map_err(at)?),
            Kind::Run => runs[user.index()].run(&value).map_err(at)?,
            Kind::RunIndex => runs[user.index()].index(&value).map_err(at)?,
            Kind::FlowKey => restored.flows.push((user, decode(&value).map_err(at)?)),
        }
    }
    drop(rows);
    for (user, gathered) in UserId::all().zip(runs) {
        if !gathered.is_empty() {
            mem.restore_runs(user, gathered.build());
        }
    }

    let mut dlq = conn
        .prepare("SELECT user, seq, entry FROM dlq ORDER BY user, seq")
        .map_err(sql)?;
    let mut rows = dlq.query([]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        let user = user_of(row.get(0).map_err(sql)?)?;
        let seq: i64 = row.get(1).map_err(sql)?;
        let value: Vec<u8> = row.get(2).map_err(sql)?;
        let entry: DlqEntry = decode(&value).map_err(|e| format!("DLQ entry {seq}: {e}"))?;
        mem.restore_dlq(user, entry);
    }

    let mut dedup = conn
        .prepare("SELECT user, key, until, published FROM dedup WHERE until > ?1 ORDER BY until")
        .map_err(sql)?;
    let mut rows = dedup.query([now]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        let user = user_of(row.get(0).map_err(sql)?)?;
        let key: String = row.get(1).map_err(sql)?;
        let until: i64 = row.get(2).map_err(sql)?;
        let value: Vec<u8> = row.get(3).map_err(sql)?;
        let published: Published =
            decode(&value).map_err(|e| format!("dedup record \"{key}\": {e}"))?;
        mem.dedup_put(user, key, until, published, now);
    }

    // Messages before the log: since format 3 its entries may name a message's row for
    // their spec. A finished message's row (an empty state) is kept only for that.
    let mut specs: HashMap<i64, Arc<MessageSpec>> = HashMap::new();
    // Since format 4 a message's CREATED entry is in its row; the entries a log of
    // LOG_RETENTION could still hold are merged into the log below, by sequence number.
    let mut created: [Created; USER_COUNT] = Default::default();
    let mut messages = conn
        .prepare("SELECT row, user, spec, state, created FROM messages ORDER BY row")
        .map_err(sql)?;
    let mut rows = messages.query([]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        let n: i64 = row.get(0).map_err(sql)?;
        let user = user_of(row.get(1).map_err(sql)?)?;
        restored.next_row = restored.next_row.max(n + 1);
        let at = |e: String| format!("message row {n}: {e}");
        let spec: Arc<MessageSpec> = decode::<MessageSpec>(
            row.get_ref(2)
                .map_err(sql)?
                .as_blob()
                .map_err(|e| e.to_string())?,
        )
        .map_err(at)?
        .into();
        let state = row
            .get_ref(3)
            .map_err(sql)?
            .as_blob()
            .map_err(|e| e.to_string())?;
        if let Some(entry) = row
            .get_ref(4)
            .map_err(sql)?
            .as_blob_or_null()
            .map_err(|e| e.to_string())?
        {
            let stored: LogRow<Arc<MessageSpec>> = decode(entry).map_err(at)?;
            created[user.index()].push(stored.into_entry(spec.clone()));
        }
        specs.insert(n, spec.clone());
        if state == FINISHED {
            restored.finished.push((user.index() as u8, n));
            continue;
        }
        let state: MsgState = decode(state).map_err(at)?;
        restored.messages.push((user, spec.id, n));
        mem.insert_message(
            user,
            Message {
                spec,
                retried: state.retried,
                phase: state.phase,
                cancel_requested: state.cancel_requested,
            },
        );
    }
    drop(rows);
    for c in &mut created {
        c.sort();
    }

    let mut log = conn
        .prepare("SELECT user, seq, entry FROM log ORDER BY k")
        .map_err(sql)?;
    let mut rows = log.query([]).map_err(sql)?;
    let mut unnamed = 0usize;
    while let Some(row) = rows.next().map_err(sql)? {
        let user = user_of(row.get(0).map_err(sql)?)?;
        let seq: i64 = row.get(1).map_err(sql)?;
        let value: Vec<u8> = row.get(2).map_err(sql)?;
        let mut stored: LogRow<Arc<MessageSpec>> =
            decode(&value).map_err(|e| format!("log entry {seq}: {e}"))?;
        let spec = match (stored.spec.take(), stored.spec_row) {
            (Some(spec), _) => spec,
            (None, Some(n)) => match specs.get(&n) {
                Some(spec) => spec.clone(),
                // The writer keeps a named row while the log holds the entry; an entry
                // without its spec is dropped (counted below), not the whole start.
                None => {
                    unnamed += 1;
                    continue;
                }
            },
            (None, None) => return Err(format!("log entry {seq}: no spec")),
        };
        for entry in created[user.index()].before(stored.seq) {
            restore(mem, &mut restored, user, entry);
        }
        restore(mem, &mut restored, user, stored.into_entry(spec));
    }
    for (user, mut rest) in UserId::all().zip(created) {
        for entry in rest.before(u64::MAX) {
            restore(mem, &mut restored, user, entry);
        }
    }
    if unnamed > 0 {
        tracing::warn!(
            entries = unnamed,
            "log entries whose message row is missing were skipped"
        );
    }

    Ok(restored)
}

fn restore(mem: &mut MemoryStore, restored: &mut Restored, user: UserId, entry: LogEntry) {
    let last = &mut restored.log_last[user.index()];
    *last = (*last).max(entry.seq);
    mem.restore_log(user, entry);
}

/// A user's CREATED entries read from message rows. Rows come in storing order, so the
/// entries come nearly in sequence order; only the newest [`LOG_RETENTION`] can survive
/// the log's retention, so older ones are dropped as the list grows (a start on a million
/// stored messages does not hold a million entries).
#[derive(Default)]
struct Created {
    entries: Vec<LogEntry>,
    newest: u64,
}

impl Created {
    fn push(&mut self, entry: LogEntry) {
        self.newest = self.newest.max(entry.seq);
        self.entries.push(entry);
        if self.entries.len() >= 2 * LOG_RETENTION {
            self.prune();
        }
    }

    fn prune(&mut self) {
        let floor = self.newest.saturating_sub(LOG_RETENTION as u64);
        self.entries.retain(|e| e.seq > floor);
    }

    /// Once every row is read: newest first, so the oldest come off the end.
    fn sort(&mut self) {
        self.prune();
        self.entries
            .sort_unstable_by_key(|e| std::cmp::Reverse(e.seq));
    }

    /// Takes the entries below `seq`, oldest first (after [`Created::sort`]).
    fn before(&mut self, seq: u64) -> std::vec::Drain<'_, LogEntry> {
        let keep = self.entries.partition_point(|e| e.seq >= seq);
        self.entries[keep..].reverse();
        self.entries.drain(keep..)
    }
}
