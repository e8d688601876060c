//! Durable state (`-data-dir`): a SQLite database in the data directory keeps a copy of
//! everything the store holds, and is read back into memory at start.
//!
//! - [`journal`]: the changes the store hands over;
//! - [`watermark`]: how far the written ones reach, and who waits for that;
//! - [`writer`]: the thread that commits them in groups;
//! - [`schema`]: the tables and the data format's version;
//! - [`load`]: reading a directory back into a store;
//! - [`codec`]: how records are encoded;
//! - [`runs`]: workflow runs as records, one per run.
//!
//! The database runs in WAL mode with `synchronous=FULL`: a commit returns once the WAL is
//! fsynced, so an answered change survives a power loss, not just a crash of this process.

pub mod codec;
pub mod journal;
mod load;
pub mod runs;
mod schema;
mod watermark;
mod writer;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};

pub use journal::{Journal, NotDurable};
pub use load::Restored;
pub use writer::LOG_TRIM_BATCH;

use crate::store::{DurableStore, MemoryStore};

const DB_FILE: &str = "qstash.db";
const LOCK_FILE: &str = "qstash.lock";

/// Why a data directory cannot be used; the text says what to do.
#[derive(Debug, thiserror::Error)]
#[error("data directory {dir}: {reason}")]
pub struct OpenError {
    pub dir: String,
    pub reason: String,
}

/// An open data directory: held locked for as long as this lives.
pub struct DataDir {
    _lock: File,
    pub journal: Arc<Journal>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl DataDir {
    /// Opens (creating if needed) the directory, locks it, reads it into `mem` and starts
    /// the writer. Returns the store to run on and what the engine must rebuild.
    pub fn open(
        dir: &Path,
        mut mem: MemoryStore,
        now: i64,
    ) -> Result<(Self, DurableStore, Restored), OpenError> {
        let fail = |reason: String| OpenError {
            dir: dir.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(dir).map_err(|e| fail(format!("cannot create it: {e}")))?;
        let lock = lock(dir).map_err(fail)?;
        let path: PathBuf = dir.join(DB_FILE);
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| fail(format!("cannot open {}: {e}", path.display())))?;
        let unreadable =
            |e: String| fail(format!("{} is unreadable or corrupt: {e}", path.display()));
        conn.execute_batch(
            // A checkpoint copies each changed page once however often the WAL holds it, so
            // fewer, larger ones (32 MB of WAL) write less than SQLite's default of 4 MB.
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 8192;",
        )
        .map_err(|e| unreadable(e.to_string()))?;
        schema::prepare(&mut conn).map_err(unreadable)?;
        let restored = load::load(&conn, &mut mem, now).map_err(unreadable)?;
        let journal = Arc::new(Journal::default());
        let writer_journal = journal.clone();
        let finished = writer::Finished::new(&restored.finished, restored.log_last);
        let writer = std::thread::Builder::new()
            .name("qstash-writer".into())
            .spawn(move || writer::run(conn, writer_journal, finished))
            .map_err(|e| fail(format!("cannot start the writer thread: {e}")))?;
        let store = DurableStore::new(mem, journal.clone(), &restored.messages, restored.next_row);
        Ok((
            Self {
                _lock: lock,
                journal,
                writer: Some(writer),
            },
            store,
            restored,
        ))
    }

    /// Writes what is left and stops the writer (a clean stop).
    pub fn close(mut self) {
        self.journal.close();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Takes the directory's lock file (an OS lock, released by the OS when the process ends,
/// however it ends): a second server on the same directory would interleave two histories.
fn lock(dir: &Path) -> Result<File, String> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open its lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            let who = if holder.is_empty() {
                String::new()
            } else {
                format!(" (pid {holder})")
            };
            return Err(format!(
                "it is in use by another running qstash server{who}; stop that one or pass another -data-dir"
            ));
        }
        Err(TryLockError::Error(e)) => {
            return Err(format!("cannot lock {}: {e}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| write!(file, "{}", std::process::id()))
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write its lock file: {e}"))?;
    Ok(file)
}
