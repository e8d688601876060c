//! Workflow runs on disk: one record per run (key: creation time and id), written when the
//! run changed in a step, removed when it leaves the book; the waiters and stored
//! notifications as one more record per user. A step of one run so writes that run, not
//! every run kept for the logs.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use super::codec::{decode, encode};
use crate::domain::workflow::book::{RunKey, RunsIndex};
use crate::domain::workflow::stored::Stored;
use crate::domain::workflow::wait::Waiter;
use crate::domain::workflow::{Run, Runs};

/// The record key of a run.
pub fn key(run: &RunKey) -> Arc<str> {
    format!("{}:{}", run.1, run.0).into()
}

#[derive(serde::Serialize)]
struct StoredRunRef<'a> {
    /// `None`: active; else its number among the finished runs (their order).
    finished: Option<u64>,
    run: &'a Run,
}

#[derive(serde::Deserialize)]
pub struct StoredRun {
    finished: Option<u64>,
    run: Run,
}

impl StoredRun {
    pub fn into_part(self) -> (Option<u64>, Run) {
        (self.finished, self.run)
    }
}

pub fn encode_run(finished: Option<u64>, run: &Run) -> Vec<u8> {
    encode(&StoredRunRef { finished, run })
}

pub fn encode_index(index: &RunsIndex) -> Vec<u8> {
    encode(index)
}

/// The single record format 1 kept all of a user's runs in.
#[derive(serde::Deserialize)]
struct LegacyRuns {
    active: HashMap<Arc<str>, Run>,
    finished: VecDeque<Run>,
    waiters: HashMap<Arc<str>, Vec<Waiter>>,
    stored: LegacyStored,
}

/// Format 1 kept stored notifications as a map per (run, event); directories written after
/// the notifications got their per-run and per-user bounds hold them bounded already.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum LegacyStored {
    PerEvent(HashMap<(Arc<str>, Arc<str>), VecDeque<Bytes>>),
    Bounded(Stored),
}

/// Records as `(key, value)`.
pub type Records = Vec<(Arc<str>, Vec<u8>)>;

/// A format 1 record as the records of format 2: one per run, and the index.
pub fn split_legacy(value: &[u8]) -> Result<(Records, Vec<u8>), String> {
    let old: LegacyRuns = decode(value)?;
    let mut parts: Vec<(Option<u64>, Run)> = old.active.into_values().map(|r| (None, r)).collect();
    parts.extend(
        old.finished
            .into_iter()
            .enumerate()
            .map(|(i, r)| (Some(i as u64), r)),
    );
    let runs = parts
        .iter()
        .map(|(n, r)| (key(&(r.id.clone(), r.created_at)), encode_run(*n, r)))
        .collect();
    let mut index = RunsIndex {
        waiters: old.waiters,
        ..RunsIndex::default()
    };
    match old.stored {
        LegacyStored::PerEvent(map) => {
            for ((run, event), notes) in map {
                for data in notes {
                    index.stored.push(run.clone(), event.clone(), data);
                }
            }
        }
        LegacyStored::Bounded(stored) => index.stored = stored,
    }
    Ok((runs, encode_index(&index)))
}

/// Gathers a user's run records while loading, then builds the book.
#[derive(Default)]
pub struct Gather {
    runs: Vec<(Option<u64>, Run)>,
    index: Option<RunsIndex>,
}

impl Gather {
    pub fn run(&mut self, value: &[u8]) -> Result<(), String> {
        let stored: StoredRun = decode(value)?;
        self.runs.push(stored.into_part());
        Ok(())
    }

    pub fn index(&mut self, value: &[u8]) -> Result<(), String> {
        self.index = Some(decode(value)?);
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.index.is_none()
    }

    pub fn build(self) -> Runs {
        Runs::from_parts(self.runs, self.index.unwrap_or_default())
    }
}
