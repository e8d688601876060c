//! The writer thread: commits the journal's changes in groups, one transaction per group.
//!
//! Group commit is what makes durability cheap: while one commit waits for the disk, the
//! requests that arrive pile up in the journal and all go into the next one, so the number
//! of fsyncs follows the disk's pace, not the request rate. Within a group, a message stored
//! and finished (or a log entry written and trimmed) nets out to nothing.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use rusqlite::Connection;

use super::codec::{LogRow, encode};
use super::journal::{Journal, Kind, MsgState, Op};
use crate::domain::message::MessageSpec;
use crate::users::USER_COUNT;

/// Expired dedup records are deleted at most this often (ms of the engine's clock).
const DEDUP_SWEEP_MS: i64 = 60_000;

enum Net {
    /// New: the whole message (of this user); finished (`None`) when it is kept only as
    /// the spec of log entries.
    Put(u8, Arc<MessageSpec>, Option<MsgState>),
    /// Existing on disk: its state only.
    State(MsgState),
    /// Existing on disk, finished (of this user): kept as the spec of log entries.
    Finished(u8),
    Del,
}

/// A finished message's row stays while log entries may name it (`Op::Log::spec_row`).
/// Entries name a row only while its message is unfinished, so once the log is trimmed past
/// the last entry written before the message finished, nothing names the row and it goes.
#[derive(Default)]
pub struct Finished {
    /// Per user: (last log sequence number when it finished, row), in finishing order, so
    /// in order of that number too.
    rows: [VecDeque<(u64, i64)>; USER_COUNT],
    /// Per user, the sequence number of the last log entry seen.
    last_seq: [u64; USER_COUNT],
}

impl Finished {
    /// What a directory holds at start: the finished rows, which every entry of the
    /// loaded log may name, and the last sequence number of each user's log.
    pub fn new(rows: &[(u8, i64)], last_seq: [u64; USER_COUNT]) -> Self {
        let mut f = Self {
            last_seq,
            ..Self::default()
        };
        for &(user, row) in rows {
            f.push(user, row);
        }
        f
    }

    fn push(&mut self, user: u8, row: i64) {
        let u = usize::from(user).min(USER_COUNT - 1);
        self.rows[u].push_back((self.last_seq[u], row));
    }

    /// Rows no entry at or above `floor` can name.
    fn unnamed_below(&mut self, user: u8, floor: u64, out: &mut Vec<i64>) {
        let q = &mut self.rows[usize::from(user).min(USER_COUNT - 1)];
        while q.front().is_some_and(|&(seq, _)| seq < floor) {
            out.extend(q.pop_front().map(|(_, row)| row));
        }
    }
}

/// Marks a finished message's row (an empty state; `load` keeps its spec for the log only).
pub const FINISHED: &[u8] = &[];

/// Takes whatever is waiting as soon as the last commit is done: at c=64 a commit already
/// gathers ~30 publishes (those that arrived during the previous one), and holding the
/// next one back to let it fill (200 µs was tried) only added that wait to every answer.
pub fn run(mut conn: Connection, journal: Arc<Journal>, mut finished: Finished) {
    let mut last_sweep = i64::MIN;
    loop {
        let Some((ops, seq)) = journal.take() else {
            break;
        };
        let (count, started) = (ops.len(), std::time::Instant::now());
        match commit(&mut conn, ops, &mut last_sweep, &mut finished) {
            Ok(()) => {
                journal.reached(seq);
                tracing::debug!(
                    changes = count,
                    us = started.elapsed().as_micros() as u64,
                    "committed"
                );
            }
            Err(e) => {
                let why = format!("cannot write to the data directory: {e}");
                tracing::error!("{why}; later changes are kept in memory only");
                journal.fail(why);
                return;
            }
        }
    }
}

fn commit(
    conn: &mut Connection,
    ops: Vec<Op>,
    last_sweep: &mut i64,
    finished: &mut Finished,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    // Netted per message, written in the order first seen.
    let mut msgs: HashMap<i64, Net> = HashMap::new();
    let mut order: Vec<i64> = Vec::new();
    // Rows this group's log entries name: stored and finished within the group, such a
    // message is still written (as their spec), where an unnamed one nets out to nothing.
    let mut named: HashSet<i64> = HashSet::new();
    let mut log_trims: HashMap<u8, u64> = HashMap::new();
    let mut newest_now = i64::MIN;
    // Messages are netted in `msgs` and written last; they share no row with anything else,
    // so moving them after the other changes of the group keeps every table's final state.
    {
        let mut put_log = tx.prepare_cached(
            "INSERT OR REPLACE INTO log (k, user, seq, entry) VALUES ((?1 << 48) | ?2, ?1, ?2, ?3)",
        )?;
        // Log entries trimmed later in this same group are never written, and the trims
        // become one delete per user after the group's other changes: past the log's
        // retention every stored message trims one entry, and a statement per trim cost as
        // much as the entry's insert.
        for op in &ops {
            if let Op::LogTrim { user, below } = op {
                let t = log_trims.entry(*user).or_default();
                *t = (*t).max(*below);
            }
        }
        for op in ops {
            match op {
                Op::MsgPut {
                    row,
                    user,
                    spec,
                    state,
                } => {
                    order.push(row);
                    msgs.insert(row, Net::Put(user, spec, Some(state)));
                }
                Op::MsgState { row, state } => {
                    let slot = msgs.entry(row).or_insert_with(|| {
                        order.push(row);
                        Net::State(state)
                    });
                    match slot {
                        Net::Put(_, _, Some(s)) | Net::State(s) => *s = state,
                        Net::Put(_, _, None) | Net::Finished(_) | Net::Del => {}
                    }
                }
                Op::MsgDel { row, user } => match msgs.get_mut(&row) {
                    Some(Net::Put(_, _, state)) if named.contains(&row) => {
                        *state = None;
                        finished.push(user, row);
                    }
                    Some(Net::Put(..)) => {
                        msgs.remove(&row);
                    }
                    Some(net @ Net::State(_)) => {
                        *net = Net::Finished(user);
                        finished.push(user, row);
                    }
                    Some(Net::Finished(_) | Net::Del) => {}
                    None => {
                        order.push(row);
                        msgs.insert(row, Net::Finished(user));
                        finished.push(user, row);
                    }
                },
                Op::Log {
                    user,
                    entry,
                    spec_row,
                } => {
                    let u = usize::from(user).min(USER_COUNT - 1);
                    finished.last_seq[u] = finished.last_seq[u].max(entry.seq);
                    if let Some(row) = spec_row {
                        named.insert(row);
                    }
                    if entry.seq >= log_trims.get(&user).copied().unwrap_or(0) {
                        put_log.execute((user, entry.seq as i64, encode_log(&entry, spec_row)))?;
                    }
                }
                // Done once per user below, with the group's highest floor.
                Op::LogTrim { .. } => {}
                Op::DlqPut { user, seq, entry } => {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO dlq (user, seq, entry) VALUES (?1, ?2, ?3)",
                    )?
                    .execute((user, seq as i64, encode(&entry)))?;
                }
                Op::DlqDel { user, seq } => {
                    tx.prepare_cached("DELETE FROM dlq WHERE user = ?1 AND seq = ?2")?
                        .execute((user, seq as i64))?;
                }
                Op::DlqTrim { user, below } => {
                    tx.prepare_cached("DELETE FROM dlq WHERE user = ?1 AND seq < ?2")?
                        .execute((user, below as i64))?;
                }
                Op::Keys { user, keys } => {
                    put_record(&tx, user, Kind::Keys.name(), "", &encode(&keys))?;
                }
                Op::Record {
                    user,
                    kind,
                    key,
                    value,
                } => match value {
                    Some(v) => put_record(&tx, user, kind.name(), &key, &v)?,
                    None => {
                        tx.prepare_cached(
                            "DELETE FROM records WHERE user = ?1 AND kind = ?2 AND key = ?3",
                        )?
                        .execute((user, kind.name(), &*key))?;
                    }
                },
                Op::Dedup {
                    user,
                    key,
                    until,
                    published,
                    now,
                } => {
                    newest_now = newest_now.max(now);
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO dedup (user, key, until, published) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute((user, key, until, encode(&published)))?;
                }
                Op::UserReset { user } => {
                    for table in ["log", "dlq", "records", "dedup"] {
                        tx.prepare_cached(&format!("DELETE FROM {table} WHERE user = ?1"))?
                            .execute([user])?;
                    }
                    // Its log is gone, so are the rows kept for it; its messages were
                    // finished (`MsgDel`) just before.
                    tx.prepare_cached("DELETE FROM messages WHERE user = ?1 AND state = ?2")?
                        .execute((user, FINISHED))?;
                    for net in msgs.values_mut() {
                        match net {
                            Net::Put(u, _, None) | Net::Finished(u) if *u == user => {
                                *net = Net::Del;
                            }
                            _ => {}
                        }
                    }
                    finished.rows[usize::from(user).min(USER_COUNT - 1)].clear();
                }
            }
        }
    }
    {
        // Sequence numbers only grow (a reset keeps them going), so deleting below the
        // highest floor after every put of the group leaves what deleting at each trim did.
        let mut trim_log =
            tx.prepare_cached("DELETE FROM log WHERE k >= (?1 << 48) AND k < ((?1 << 48) | ?2)")?;
        for (&user, &below) in &log_trims {
            trim_log.execute((user, below as i64))?;
        }
    }
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO messages (row, user, spec, state) VALUES (?1, ?2, ?3, ?4)",
        )?;
        let mut update = tx.prepare_cached("UPDATE messages SET state = ?2 WHERE row = ?1")?;
        let mut delete = tx.prepare_cached("DELETE FROM messages WHERE row = ?1")?;
        for row in order {
            let Some(net) = msgs.remove(&row) else {
                continue;
            };
            match net {
                Net::Put(user, spec, state) => {
                    let state = state.map(|s| encode(&s));
                    put.execute((
                        row,
                        user,
                        encode(&*spec),
                        state.as_deref().unwrap_or(FINISHED),
                    ))?;
                }
                Net::State(state) => {
                    update.execute((row, encode(&state)))?;
                }
                Net::Finished(_) => {
                    update.execute((row, FINISHED))?;
                }
                Net::Del => {
                    delete.execute([row])?;
                }
            }
        }
        // After the messages: a row finished in this group may already be unnamed.
        let mut unnamed = Vec::new();
        for (&user, &below) in &log_trims {
            finished.unnamed_below(user, below, &mut unnamed);
        }
        // Only ever a finished row, whatever a bug upstream says.
        let mut drop_finished =
            tx.prepare_cached("DELETE FROM messages WHERE row = ?1 AND state = ?2")?;
        for row in unnamed {
            drop_finished.execute((row, FINISHED))?;
        }
    }
    if newest_now > *last_sweep + DEDUP_SWEEP_MS {
        *last_sweep = newest_now;
        tx.prepare_cached("DELETE FROM dedup WHERE until <= ?1")?
            .execute([newest_now])?;
    }
    tx.commit()
}

/// A log entry as stored: its spec inline, or the row of the message whose spec it is.
fn encode_log(entry: &crate::domain::log::LogEntry, spec_row: Option<i64>) -> Vec<u8> {
    match spec_row {
        None => encode(entry),
        Some(row) => encode(&LogRow::<&MessageSpec> {
            seq: entry.seq,
            time: entry.time,
            state: entry.state,
            spec: None,
            spec_row: Some(row),
            detail: entry.detail.clone(),
        }),
    }
}

fn put_record(
    tx: &rusqlite::Transaction<'_>,
    user: u8,
    kind: &str,
    key: &str,
    value: &[u8],
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO records (user, kind, key, value) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute((user, kind, key, value))?;
    Ok(())
}
