//! Reads a data directory back into a store at start. Any record that does not decode
//! fails the start with its location: starting without it would silently drop state.

use rusqlite::Connection;

use super::codec::decode;
use super::journal::{Kind, MsgState};
use crate::domain::dlq::DlqEntry;
use crate::domain::flow_control::FlowState;
use crate::domain::log::LogEntry;
use crate::domain::message::{Message, MessageSpec};
use crate::ids::MessageId;
use crate::store::{MemoryStore, Published, Store};
use crate::users::{USER_COUNT, UserId};

/// What the engine rebuilds its scheduling state from (timers, queue order, gates).
#[derive(Default)]
pub struct Restored {
    /// Every unfinished message, in the order it was stored, with its row on disk.
    pub messages: Vec<(UserId, MessageId, i64)>,
    /// Flow-control keys: their pause and pins (their counters start from zero).
    pub flows: Vec<(UserId, FlowState)>,
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

    let mut log = conn
        .prepare("SELECT user, seq, entry FROM log ORDER BY user, seq")
        .map_err(sql)?;
    let mut rows = log.query([]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        let user = user_of(row.get(0).map_err(sql)?)?;
        let seq: i64 = row.get(1).map_err(sql)?;
        let value: Vec<u8> = row.get(2).map_err(sql)?;
        let entry: LogEntry = decode(&value).map_err(|e| format!("log entry {seq}: {e}"))?;
        mem.restore_log(user, entry);
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

    let mut messages = conn
        .prepare("SELECT row, user, spec, state FROM messages ORDER BY row")
        .map_err(sql)?;
    let mut rows = messages.query([]).map_err(sql)?;
    while let Some(row) = rows.next().map_err(sql)? {
        let n: i64 = row.get(0).map_err(sql)?;
        let user = user_of(row.get(1).map_err(sql)?)?;
        let at = |e: String| format!("message row {n}: {e}");
        let spec: MessageSpec = decode(
            row.get_ref(2)
                .map_err(sql)?
                .as_blob()
                .map_err(|e| e.to_string())?,
        )
        .map_err(at)?;
        let state: MsgState = decode(
            row.get_ref(3)
                .map_err(sql)?
                .as_blob()
                .map_err(|e| e.to_string())?,
        )
        .map_err(at)?;
        restored.messages.push((user, spec.id, n));
        mem.insert_message(
            user,
            Message {
                spec: spec.into(),
                retried: state.retried,
                phase: state.phase,
                cancel_requested: state.cancel_requested,
            },
        );
    }
    Ok(restored)
}
