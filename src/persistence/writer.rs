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
use crate::domain::log::{LogEntry, LogState};
use crate::domain::message::MessageSpec;
use crate::users::USER_COUNT;

/// Expired dedup records are deleted at most this often (ms of the engine's clock).
const DEDUP_SWEEP_MS: i64 = 60_000;

/// The log is trimmed on disk once this many entries of a user have left it in memory.
/// Past its retention every new entry trims one, and a delete at every commit rewrote the
/// leftmost leaf, its neighbour (rebalanced) and their parent: about 2 of the 8 pages a
/// commit of ~30 publishes wrote. Entries left on disk below the floor are dropped again at
/// load, which applies the same retention (`MemoryStore::restore_log`).
pub const LOG_TRIM_BATCH: u64 = 2048;

/// Per user, how far the log should be trimmed and how far it is on disk.
#[derive(Default)]
pub struct LogFloors {
    asked: [u64; USER_COUNT],
    done: [u64; USER_COUNT],
}

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
    let mut floors = LogFloors::default();
    loop {
        let Some((ops, seq)) = journal.take() else {
            break;
        };
        let (count, started) = (ops.len(), std::time::Instant::now());
        match commit(&mut conn, ops, &mut last_sweep, &mut finished, &mut floors) {
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
    floors: &mut LogFloors,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    // Netted per message, written in the order first seen.
    let mut msgs: HashMap<i64, Net> = HashMap::new();
    let mut order: Vec<i64> = Vec::new();
    // Rows this group's log entries name: stored and finished within the group, such a
    // message is still written (as their spec), where an unnamed one nets out to nothing.
    let mut named: HashSet<i64> = HashSet::new();
    let mut log_trims: HashMap<u8, u64> = HashMap::new();
    // The CREATED entry of a message stored in this group is written into the message's
    // row (`created`) rather than as a log row: a publish then writes one row, not two,
    // and the log's pages are not rewritten at every commit (format 4). By row.
    let mut created: HashMap<i64, (u8, LogEntry)> = HashMap::new();
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
                    if entry.seq < log_trims.get(&user).copied().unwrap_or(0) {
                        continue;
                    }
                    match spec_row {
                        Some(row)
                            if entry.state == LogState::Created && !created.contains_key(&row) =>
                        {
                            created.insert(row, (user, entry));
                        }
                        _ => {
                            put_log.execute((
                                user,
                                entry.seq as i64,
                                encode_log_row(&entry, spec_row),
                            ))?;
                        }
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
                    // Entries of its messages stored earlier in the group went with them.
                    created.retain(|_, (u, _)| *u != user);
                    let u = usize::from(user).min(USER_COUNT - 1);
                    finished.rows[u].clear();
                    floors.done[u] = floors.done[u].max(floors.asked[u]);
                }
            }
        }
        // A CREATED entry whose message is not stored in this group (none today: a step
        // pushes both) is a log row like any other.
        let mut unattached: Vec<i64> = created
            .keys()
            .copied()
            .filter(|row| !matches!(msgs.get(row), Some(Net::Put(..))))
            .collect();
        unattached.sort_unstable();
        for row in unattached {
            if let Some((user, entry)) = created.remove(&row) {
                put_log.execute((user, entry.seq as i64, encode_log_row(&entry, Some(row))))?;
            }
        }
    }
    // Sequence numbers only grow (a reset keeps them going), so deleting below the highest
    // floor after every put of the group leaves what deleting at each trim did.
    let mut trimmed: Vec<(u8, u64)> = Vec::new();
    for (&user, &below) in &log_trims {
        let u = usize::from(user).min(USER_COUNT - 1);
        floors.asked[u] = floors.asked[u].max(below);
        if floors.asked[u] >= floors.done[u] + LOG_TRIM_BATCH {
            floors.done[u] = floors.asked[u];
            trimmed.push((user, floors.asked[u]));
        }
    }
    {
        let mut trim_log =
            tx.prepare_cached("DELETE FROM log WHERE k >= (?1 << 48) AND k < ((?1 << 48) | ?2)")?;
        for &(user, below) in &trimmed {
            trim_log.execute((user, below as i64))?;
        }
    }
    {
        let mut put = tx.prepare_cached(
            "INSERT OR REPLACE INTO messages (row, user, spec, state, created) VALUES (?1, ?2, ?3, ?4, ?5)",
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
                    let entry = created.remove(&row).map(|(_, e)| encode_log(&e, None));
                    put.execute((
                        row,
                        user,
                        encode(&*spec),
                        state.as_deref().unwrap_or(FINISHED),
                        entry,
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
        for &(user, below) in &trimmed {
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

/// A log entry as stored, without its spec: in a log row it names the row of the message
/// whose spec it is (`spec_row`); in a message's `created` column it is that message's.
fn encode_log(entry: &LogEntry, spec_row: Option<i64>) -> Vec<u8> {
    encode(&LogRow::<&MessageSpec> {
        seq: entry.seq,
        time: entry.time,
        state: entry.state,
        spec: None,
        spec_row,
        detail: entry.detail.clone(),
    })
}

/// A log entry as stored in a log row: its spec inline, or the row that holds it.
fn encode_log_row(entry: &LogEntry, spec_row: Option<i64>) -> Vec<u8> {
    match spec_row {
        None => encode(entry),
        Some(_) => encode_log(entry, spec_row),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::message::Phase;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::prepare(&mut conn).unwrap();
        conn
    }

    fn spec() -> Arc<MessageSpec> {
        Arc::new(MessageSpec::for_test(&[]))
    }

    fn put(row: i64, spec: &Arc<MessageSpec>) -> Op {
        Op::MsgPut {
            row,
            user: 0,
            spec: spec.clone(),
            state: MsgState {
                retried: 0,
                phase: Phase::Waiting { at: 0 },
                cancel_requested: false,
            },
        }
    }

    fn log(seq: u64, state: LogState, spec: &Arc<MessageSpec>, spec_row: Option<i64>) -> Op {
        Op::Log {
            user: 0,
            entry: LogEntry {
                seq,
                time: 0,
                state,
                spec: spec.clone(),
                detail: None,
            },
            spec_row,
        }
    }

    struct Writer {
        conn: Connection,
        sweep: i64,
        finished: Finished,
        floors: LogFloors,
    }

    impl Writer {
        fn new() -> Self {
            Self {
                conn: db(),
                sweep: i64::MIN,
                finished: Finished::default(),
                floors: LogFloors::default(),
            }
        }

        fn commit(&mut self, ops: Vec<Op>) {
            let (sweep, finished, floors) = (&mut self.sweep, &mut self.finished, &mut self.floors);
            commit(&mut self.conn, ops, sweep, finished, floors).unwrap();
        }

        fn count(&self, sql: &str) -> i64 {
            self.conn.query_row(sql, [], |r| r.get(0)).unwrap()
        }
    }

    #[test]
    fn a_created_entry_is_written_into_its_message_row() {
        let mut w = Writer::new();
        let s = spec();
        // As a step pushes them: the entry first, the message at the step's end.
        w.commit(vec![log(1, LogState::Created, &s, Some(1)), put(1, &s)]);
        assert_eq!(w.count("SELECT count(*) FROM log"), 0);
        assert_eq!(
            w.count("SELECT count(*) FROM messages WHERE created IS NOT NULL"),
            1
        );
        // Any other entry naming the row is a log row.
        w.commit(vec![log(2, LogState::Canceled, &s, Some(1))]);
        assert_eq!(w.count("SELECT count(*) FROM log"), 1);
    }

    #[test]
    fn a_reset_drops_the_created_entries_of_its_group_before_it() {
        let mut w = Writer::new();
        let (a, b) = (spec(), spec());
        w.commit(vec![
            log(1, LogState::Created, &a, Some(1)),
            put(1, &a),
            Op::MsgDel { row: 1, user: 0 },
            Op::UserReset { user: 0 },
            log(2, LogState::Created, &b, Some(2)),
            put(2, &b),
        ]);
        assert_eq!(w.count("SELECT count(*) FROM log"), 0, "a's entry went");
        assert_eq!(w.count("SELECT count(*) FROM messages WHERE row = 1"), 0);
        assert_eq!(
            w.count("SELECT count(*) FROM messages WHERE row = 2 AND created IS NOT NULL"),
            1
        );
    }

    #[test]
    fn the_log_is_trimmed_on_disk_in_batches() {
        let mut w = Writer::new();
        let s = spec();
        let batch = LOG_TRIM_BATCH;
        let entries = (1..=batch + 100)
            .map(|seq| log(seq, LogState::Delivered, &s, None))
            .collect();
        w.commit(entries);
        w.commit(vec![Op::LogTrim {
            user: 0,
            below: batch - 1,
        }]);
        let all = (batch + 100) as i64;
        assert_eq!(w.count("SELECT count(*) FROM log"), all, "not yet");
        w.commit(vec![Op::LogTrim {
            user: 0,
            below: batch + 50,
        }]);
        assert_eq!(w.count("SELECT min(seq) FROM log"), batch as i64 + 50);
    }
}
