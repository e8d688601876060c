//! The data directory's database: its tables and the version written into it.
//!
//! Version history (bump [`SCHEMA_VERSION`] and add a step to [`migrate`] for every change
//! a previous server could not read):
//! - 1: messages, log, dlq, records, dedup, meta.
//! - 2: workflow runs as one record per run (`workflow_run`) plus one per user for waiters
//!   and stored notifications (`workflow_index`), instead of one record per user
//!   (`workflow_runs`), which every workflow step wrote whole.
//! - 3: a log entry may name the row of the message whose spec it shows instead of holding
//!   it, and a finished message's row (empty state) stays while entries name it; the log
//!   is a rowid table keyed `user << 48 | seq`: entries are ~0.5 KB, and a WITHOUT ROWID
//!   table keeps whole rows in its interior pages too, so each commit rewrote more pages.
//! - 4: a message's row holds the CREATED log entry written when it was stored (`created`,
//!   the entry without its spec), instead of a log row of its own; the log is trimmed on
//!   disk in batches, so it may hold entries the retention has dropped (load drops them);
//!   a spec leaves out its empty options (read back empty; format 3 specs read as before).

use rusqlite::{Connection, OptionalExtension};

use super::journal::Kind;
use super::runs::split_legacy;

pub const SCHEMA_VERSION: i64 = 4;
/// Marks the database as ours: a SQLite file of another program is refused, not mixed in.
pub const APPLICATION: &str = "qstash-dev";

const TABLES: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- `row` is handed out in the order messages were stored (queues start them in that order);
-- the message id is inside `spec`; `created` is its CREATED log entry, without the spec.
CREATE TABLE messages (
    row INTEGER PRIMARY KEY, user INTEGER NOT NULL, spec BLOB NOT NULL, state BLOB NOT NULL,
    created BLOB);
-- `k` is `user << 48 | seq`.
CREATE TABLE log (
    k INTEGER PRIMARY KEY, user INTEGER NOT NULL, seq INTEGER NOT NULL, entry BLOB NOT NULL);
CREATE TABLE dlq (
    user INTEGER NOT NULL, seq INTEGER NOT NULL, entry BLOB NOT NULL,
    PRIMARY KEY (user, seq)) WITHOUT ROWID;
-- Whole records by kind: queues, URL groups, schedules, flow-control keys, workflow runs,
-- signing keys.
CREATE TABLE records (
    user INTEGER NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL,
    PRIMARY KEY (user, kind, key)) WITHOUT ROWID;
CREATE TABLE dedup (
    user INTEGER NOT NULL, key TEXT NOT NULL, until INTEGER NOT NULL, published BLOB NOT NULL,
    PRIMARY KEY (user, key)) WITHOUT ROWID;
CREATE INDEX dedup_until ON dedup (until);
";

/// Creates the tables in a new database, or checks (and upgrades) an existing one.
pub fn prepare(conn: &mut Connection) -> Result<(), String> {
    let has_meta: bool = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
            [],
            |_| Ok(true),
        )
        .optional()
        .map_err(|e| e.to_string())?
        .unwrap_or(false);
    if !has_meta {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        if tables > 0 {
            return Err("the database holds tables that are not qstash's".into());
        }
        let tx = conn.transaction().map_err(|e| e.to_string())?;
        tx.execute_batch(TABLES).map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('application', ?1), ('schema_version', ?2)",
            (APPLICATION, SCHEMA_VERSION.to_string()),
        )
        .map_err(|e| e.to_string())?;
        return tx.commit().map_err(|e| e.to_string());
    }
    let meta = |key: &str| -> Result<Option<String>, String> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| e.to_string())
    };
    if meta("application")?.as_deref() != Some(APPLICATION) {
        return Err("the database is not a qstash data directory".into());
    }
    let version: i64 = meta("schema_version")?
        .and_then(|v| v.parse().ok())
        .ok_or("the database has no readable schema version")?;
    if version > SCHEMA_VERSION {
        return Err(format!(
            "it was written by a newer qstash (data format {version}); this one reads formats up to {SCHEMA_VERSION}: upgrade qstash, or start on another directory"
        ));
    }
    migrate(conn, version)
}

/// Upgrades a directory written by an older server, one version at a time.
fn migrate(conn: &mut Connection, from: i64) -> Result<(), String> {
    match from {
        SCHEMA_VERSION => Ok(()),
        1 => {
            runs_per_run(conn)?;
            migrate(conn, 2)
        }
        2 => {
            log_by_rowid(conn)?;
            migrate(conn, 3)
        }
        3 => {
            created_in_row(conn)?;
            migrate(conn, 4)
        }
        other => Err(format!(
            "data format {other} is not one this qstash knows how to upgrade"
        )),
    }
}

/// 3 → 4: messages gain the `created` column (empty for the rows already there: their
/// CREATED entries stay in the log table, which reads as before).
fn created_in_row(conn: &mut Connection) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let tx = conn.transaction().map_err(sql)?;
    tx.execute_batch(
        "ALTER TABLE messages ADD COLUMN created BLOB;
         UPDATE meta SET value = '4' WHERE key = 'schema_version';",
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)
}

/// 2 → 3: the log moves to a rowid table (its entries read as before: they hold their spec).
fn log_by_rowid(conn: &mut Connection) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let tx = conn.transaction().map_err(sql)?;
    tx.execute_batch(
        "CREATE TABLE log_3 (
             k INTEGER PRIMARY KEY, user INTEGER NOT NULL, seq INTEGER NOT NULL,
             entry BLOB NOT NULL);
         INSERT INTO log_3 (k, user, seq, entry)
             SELECT (user << 48) | seq, user, seq, entry FROM log;
         DROP TABLE log;
         ALTER TABLE log_3 RENAME TO log;
         UPDATE meta SET value = '3' WHERE key = 'schema_version';",
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)
}

/// 1 → 2: splits each user's `workflow_runs` record, in one transaction with the version.
fn runs_per_run(conn: &mut Connection) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let tx = conn.transaction().map_err(sql)?;
    let old: Vec<(i64, Vec<u8>)> = tx
        .prepare("SELECT user, value FROM records WHERE kind = 'workflow_runs'")
        .map_err(sql)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    {
        let mut put = tx
            .prepare(
                "INSERT OR REPLACE INTO records (user, kind, key, value) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(sql)?;
        for (user, value) in old {
            let (runs, index) = split_legacy(&value)
                .map_err(|e| format!("record workflow_runs of user {user}: {e}"))?;
            for (key, value) in runs {
                put.execute((user, Kind::Run.name(), &*key, value))
                    .map_err(sql)?;
            }
            put.execute((user, Kind::RunIndex.name(), "", index))
                .map_err(sql)?;
        }
    }
    tx.execute("DELETE FROM records WHERE kind = 'workflow_runs'", [])
        .map_err(sql)?;
    tx.execute(
        "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
        [],
    )
    .map_err(sql)?;
    tx.commit().map_err(sql)
}
