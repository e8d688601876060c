//! The writer thread: commits the journal's changes in groups, one transaction per group.
//!
//! Group commit is what makes durability cheap: while one commit waits for the disk, the
//! requests that arrive pile up in the journal and all go into the next one, so the number
//! of fsyncs follows the disk's pace, not the request rate. Within a group, a message stored
//! and finished (or a log entry written and trimmed) nets out to nothing.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::Connection;

use super::codec::encode;
use super::journal::{Journal, Kind, MsgState, Op};
use crate::domain::message::MessageSpec;

/// Expired dedup records are deleted at most this often (ms of the engine's clock).
const DEDUP_SWEEP_MS: i64 = 60_000;

enum Net {
    /// New: the whole message (of this user).
    Put(u8, Arc<MessageSpec>, MsgState),
    /// Existing on disk: its state only.
    State(MsgState),
    Del,
}

/// A group smaller than this, with more changes already waiting when it is committed, means
/// requests arrive faster than commits: the writer then lets the next group fill for
/// [`GATHER`] before taking it. Fewer, larger commits cost less CPU per change (fsyncs,
/// WAL frames, pages written again, wake-ups); a lone client never waits for this, since
/// nothing is waiting after its commit.
const GATHER_BELOW: usize = 512;
const GATHER: std::time::Duration = std::time::Duration::from_micros(200);

pub fn run(mut conn: Connection, journal: Arc<Journal>) {
    let mut last_sweep = i64::MIN;
    let mut last_count = usize::MAX;
    loop {
        if last_count < GATHER_BELOW && journal.has_pending() {
            std::thread::sleep(GATHER);
        }
        let Some((ops, seq)) = journal.take() else {
            break;
        };
        last_count = ops.len();
        let (count, started) = (ops.len(), std::time::Instant::now());
        match commit(&mut conn, ops, &mut last_sweep) {
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

fn commit(conn: &mut Connection, ops: Vec<Op>, last_sweep: &mut i64) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    // Netted per message, written in the order first seen.
    let mut msgs: HashMap<i64, Net> = HashMap::new();
    let mut order: Vec<i64> = Vec::new();
    let mut log_trims: HashMap<u8, u64> = HashMap::new();
    let mut newest_now = i64::MIN;
    // Messages are netted in `msgs` and written last; they share no row with anything else,
    // so moving them after the other changes of the group keeps every table's final state.
    {
        let mut put_log =
            tx.prepare_cached("INSERT OR REPLACE INTO log (user, seq, entry) VALUES (?1, ?2, ?3)")?;
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
                    msgs.insert(row, Net::Put(user, spec, state));
                }
                Op::MsgState { row, state } => {
                    let slot = msgs.entry(row).or_insert_with(|| {
                        order.push(row);
                        Net::State(state)
                    });
                    match slot {
                        Net::Put(_, _, s) | Net::State(s) => *s = state,
                        Net::Del => {}
                    }
                }
                Op::MsgDel { row } => {
                    if let Some(Net::Put(..)) = msgs.get(&row) {
                        msgs.remove(&row);
                    } else if msgs.insert(row, Net::Del).is_none() {
                        order.push(row);
                    }
                }
                Op::Log { user, entry } => {
                    if entry.seq >= log_trims.get(&user).copied().unwrap_or(0) {
                        put_log.execute((user, entry.seq as i64, encode(&entry)))?;
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
                }
            }
        }
    }
    {
        // Sequence numbers only grow (a reset keeps them going), so deleting below the
        // highest floor after every put of the group leaves what deleting at each trim did.
        let mut trim_log = tx.prepare_cached("DELETE FROM log WHERE user = ?1 AND seq < ?2")?;
        for (user, below) in log_trims {
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
                    put.execute((row, user, encode(&*spec), encode(&state)))?;
                }
                Net::State(state) => {
                    update.execute((row, encode(&state)))?;
                }
                Net::Del => {
                    delete.execute([row])?;
                }
            }
        }
    }
    if newest_now > *last_sweep + DEDUP_SWEEP_MS {
        *last_sweep = newest_now;
        tx.prepare_cached("DELETE FROM dedup WHERE until <= ?1")?
            .execute([newest_now])?;
    }
    tx.commit()
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
