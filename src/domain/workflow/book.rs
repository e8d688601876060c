//! One user's workflow runs: the active ones by id, the recently finished ones (bounded, for
//! the run logs), the waiters by event id and the run-scoped notifications nobody waited for
//! yet.
//!
//! With `-data-dir` on, `Runs` also notes which runs each change touched ([`Changes`]), so
//! the durable store writes only those runs, not the whole book, at the end of a step.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use super::run::Run;
use super::stored::Stored;
use super::tag::WorkflowTag;
use super::wait::Waiter;

/// Finished runs kept for their logs, at most this many per user…
const MAX_FINISHED_RUNS: usize = 10_000;
/// …and at most this many bytes of their steps.
const MAX_FINISHED_BYTES: usize = 64 * 1024 * 1024;

/// What identifies a run: its id, and when it was created (ids may be reused once a run
/// ends).
pub type RunKey = (Arc<str>, i64);

/// The waiters and stored notifications: per user, not per run (a notification may arrive
/// for a run that does not wait yet).
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct RunsIndex {
    pub waiters: HashMap<Arc<str>, Vec<Waiter>>,
    /// Bounded: see [`Stored`].
    pub stored: Stored,
}

/// What changed since the durable store last took the changes.
#[derive(Default)]
pub struct Changes {
    /// Runs added or changed (possibly through a `&mut Run` handed out).
    pub runs: HashSet<RunKey>,
    /// Runs that left the book (evicted finished runs, replaced runs).
    pub gone: Vec<RunKey>,
    /// The [`RunsIndex`] changed.
    pub index: bool,
}

#[derive(Default)]
pub struct Runs {
    active: HashMap<Arc<str>, Run>,
    finished: VecDeque<Run>,
    /// Finished runs evicted so far: `evicted + i` numbers `finished[i]` for good, which is
    /// how their order is kept on disk…
    evicted: u64,
    /// …and the numbers of the finished runs of each id, oldest first: lookups by id without
    /// a pass over every finished run.
    finished_by_id: HashMap<Arc<str>, Vec<u64>>,
    finished_bytes: usize,
    index: RunsIndex,
    /// `None` without `-data-dir`: nothing is tracked, nothing grows.
    changes: Option<Box<Changes>>,
}

fn key_of(run: &Run) -> RunKey {
    (run.id.clone(), run.created_at)
}

impl Runs {
    /// Rebuilds a book from its parts as stored: runs with their finished number (`None`:
    /// active), in any order.
    pub fn from_parts(runs: Vec<(Option<u64>, Run)>, index: RunsIndex) -> Self {
        let mut book = Runs {
            index,
            ..Runs::default()
        };
        let mut finished = Vec::new();
        for (n, run) in runs {
            match n {
                None => {
                    book.active.insert(run.id.clone(), run);
                }
                Some(n) => finished.push((n, run)),
            }
        }
        finished.sort_unstable_by_key(|(n, _)| *n);
        book.evicted = finished.first().map_or(0, |(n, _)| *n);
        for (n, run) in finished {
            book.finished_bytes += run.heap_size();
            book.finished_by_id
                .entry(run.id.clone())
                .or_default()
                .push(n);
            book.finished.push_back(run);
        }
        book
    }

    /// From now on, note what changes (the durable store takes it at the end of each step).
    pub fn track_changes(&mut self) {
        self.changes.get_or_insert_default();
    }

    /// The changes since the last call, if any.
    pub fn take_changes(&mut self) -> Option<Changes> {
        let c = self.changes.as_deref_mut()?;
        if c.runs.is_empty() && c.gone.is_empty() && !c.index {
            return None;
        }
        Some(std::mem::take(c))
    }

    fn touch(changes: &mut Option<Box<Changes>>, run: &Run) {
        if let Some(c) = changes {
            c.runs.insert(key_of(run));
        }
    }

    fn touch_index(&mut self) {
        if let Some(c) = &mut self.changes {
            c.index = true;
        }
    }

    fn gone(&mut self, run: &Run) {
        if let Some(c) = &mut self.changes {
            c.gone.push(key_of(run));
        }
    }

    pub fn index(&self) -> &RunsIndex {
        &self.index
    }

    /// Where a kept run stands: `Some(None)` active, `Some(Some(n))` the `n`th finished run,
    /// `None` no longer kept.
    pub fn place(&self, id: &str, created_at: i64) -> Option<(Option<u64>, &Run)> {
        if let Some(r) = self.active.get(id)
            && r.created_at == created_at
        {
            return Some((None, r));
        }
        let i = self.ended_at(id, created_at)?;
        Some((Some(self.evicted + i as u64), &self.finished[i]))
    }

    pub fn active(&self, id: &str) -> Option<&Run> {
        self.active.get(id)
    }

    pub fn active_mut(&mut self, id: &str) -> Option<&mut Run> {
        let run = self.active.get_mut(id)?;
        Self::touch(&mut self.changes, run);
        Some(run)
    }

    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    pub fn insert(&mut self, run: Run) {
        Self::touch(&mut self.changes, &run);
        if let Some(old) = self.active.insert(run.id.clone(), run)
            && self.active.get(&old.id).map(|r| r.created_at) != Some(old.created_at)
        {
            self.gone(&old);
        }
    }

    /// Indexes into `finished` of the runs with this id, newest first.
    fn finished_of(&self, id: &str) -> impl Iterator<Item = usize> + use<'_> {
        let base = self.evicted;
        self.finished_by_id
            .get(id)
            .into_iter()
            .flat_map(|seqs| seqs.iter().rev())
            .map(move |seq| (seq - base) as usize)
    }

    /// The newest finished run with this id.
    pub fn ended(&self, id: &str) -> Option<&Run> {
        let i = self.finished_of(id).next()?;
        self.finished.get(i)
    }

    pub fn ended_mut(&mut self, id: &str) -> Option<&mut Run> {
        let i = self.finished_of(id).next()?;
        let run = self.finished.get_mut(i)?;
        Self::touch(&mut self.changes, run);
        Some(run)
    }

    fn ended_at(&self, id: &str, created_at: i64) -> Option<usize> {
        self.finished_of(id)
            .find(|i| self.finished[*i].created_at == created_at)
    }

    /// The active run with this id, else the newest finished one.
    pub fn any_mut(&mut self, id: &str) -> Option<&mut Run> {
        if self.active.contains_key(id) {
            return self.active_mut(id);
        }
        self.ended_mut(id)
    }

    /// The run a failure-function message reports on: the one of its id created at the time
    /// it names, else (a message that names no time) the active run, else the newest ended.
    pub fn reported_on(&mut self, tag: &WorkflowTag) -> Option<&mut Run> {
        match tag.run_created_at {
            Some(at) => self.exact_mut(&tag.run_id, at),
            None => self.any_mut(&tag.run_id),
        }
    }

    pub fn exact_mut(&mut self, id: &str, created_at: i64) -> Option<&mut Run> {
        if self
            .active
            .get(id)
            .is_some_and(|r| r.created_at == created_at)
        {
            return self.active_mut(id);
        }
        let i = self.ended_at(id, created_at)?;
        let run = self.finished.get_mut(i)?;
        Self::touch(&mut self.changes, run);
        Some(run)
    }

    /// The creation time of the run with this id that message created at `at` belongs to:
    /// the latest created at or before it (a reused id's later run came after the message).
    pub fn created_at_of(&self, id: &str, at: i64) -> Option<i64> {
        let active = self.active(id).map(|r| r.created_at).filter(|c| *c <= at);
        active.or_else(|| {
            self.finished_of(id)
                .map(|i| self.finished[i].created_at)
                .filter(|c| *c <= at)
                .max()
        })
    }

    pub fn any(&self, id: &str) -> Option<&Run> {
        self.active(id).or_else(|| self.ended(id))
    }

    /// Every run kept, active or finished, in no order.
    pub fn all(&self) -> impl Iterator<Item = &Run> {
        self.active.values().chain(self.finished.iter())
    }

    /// The run with this id created at `created_at` (run ids may be reused once a run ends).
    pub fn exact(&self, id: &str, created_at: i64) -> Option<&Run> {
        if let Some(r) = self.active(id).filter(|r| r.created_at == created_at) {
            return Some(r);
        }
        let i = self.ended_at(id, created_at)?;
        self.finished.get(i)
    }

    /// Ids of active runs for which `pred` holds, oldest first, at most `limit`.
    pub fn select(&self, mut pred: impl FnMut(&Run) -> bool, limit: usize) -> Vec<Arc<str>> {
        let mut found: Vec<(i64, Arc<str>)> = self
            .active
            .values()
            .filter(|r| pred(r))
            .map(|r| (r.created_at, r.id.clone()))
            .collect();
        found.sort_unstable();
        found.truncate(limit);
        found.into_iter().map(|(_, id)| id).collect()
    }

    /// Moves an ended run out of the active set, forgetting its waiters and stored events;
    /// the oldest finished runs go when the bounds are exceeded.
    pub fn retire(&mut self, id: &str) -> Option<&Run> {
        let run = self.active.remove(id)?;
        Self::touch(&mut self.changes, &run);
        for event in &run.waiting_on {
            self.remove_waiter(id, event);
        }
        let stored = self.index.stored.len();
        self.index.stored.forget(id);
        if self.index.stored.len() != stored {
            self.touch_index();
        }
        self.finished_bytes += run.heap_size();
        let seq = self.evicted + self.finished.len() as u64;
        self.finished_by_id
            .entry(run.id.clone())
            .or_default()
            .push(seq);
        self.finished.push_back(run);
        while self.finished.len() > MAX_FINISHED_RUNS || self.finished_bytes > MAX_FINISHED_BYTES {
            let Some(old) = self.finished.pop_front() else {
                break;
            };
            self.evicted += 1;
            if let Some(seqs) = self.finished_by_id.get_mut(&old.id) {
                // The oldest finished run is the first of its id.
                seqs.remove(0);
                if seqs.is_empty() {
                    self.finished_by_id.remove(&old.id);
                }
            }
            self.finished_bytes = self.finished_bytes.saturating_sub(old.heap_size());
            self.gone(&old);
        }
        self.finished.back()
    }

    /// Registers a waiter, replacing the run's earlier one for the same event.
    pub fn add_waiter(&mut self, w: Waiter) {
        let (run, event) = (w.run_id.clone(), w.event_id.clone());
        self.touch_index();
        let list = self.index.waiters.entry(event.clone()).or_default();
        list.retain(|x| x.run_id != run);
        list.push(w);
        if let Some(r) = self.active.get_mut(&run)
            && !r.waiting_on.contains(&event)
        {
            r.waiting_on.push(event);
            Self::touch(&mut self.changes, r);
        }
    }

    /// Every waiter, of every event (the engine plans their timeouts again after a restart).
    pub fn all_waiters(&self) -> impl Iterator<Item = &Waiter> {
        self.index.waiters.values().flatten()
    }

    pub fn waiter(&self, run: &str, event: &str) -> Option<&Waiter> {
        self.index
            .waiters
            .get(event)?
            .iter()
            .find(|w| &*w.run_id == run)
    }

    /// Current waiters for an event, in registration order.
    pub fn waiters(&self, event: &str) -> &[Waiter] {
        self.index.waiters.get(event).map_or(&[], Vec::as_slice)
    }

    pub fn remove_waiter(&mut self, run: &str, event: &str) -> Option<Waiter> {
        let list = self.index.waiters.get_mut(event)?;
        let i = list.iter().position(|w| &*w.run_id == run)?;
        let w = list.remove(i);
        if list.is_empty() {
            self.index.waiters.remove(event);
        }
        self.touch_index();
        if let Some(r) = self.active.get_mut(run) {
            r.waiting_on.retain(|e| &**e != event);
            Self::touch(&mut self.changes, r);
        }
        Some(w)
    }

    /// Takes every waiter of an event (a notification for all runs).
    pub fn take_waiters(&mut self, event: &str) -> Vec<Waiter> {
        let taken = self.index.waiters.remove(event).unwrap_or_default();
        if !taken.is_empty() {
            self.touch_index();
        }
        for w in &taken {
            if let Some(r) = self.active.get_mut(&w.run_id) {
                r.waiting_on.retain(|e| &**e != event);
                Self::touch(&mut self.changes, r);
            }
        }
        taken
    }

    /// Keeps a run-scoped notification until the run waits for its event (bounded: see
    /// [`Stored`]).
    pub fn store_event(&mut self, run: Arc<str>, event: Arc<str>, data: Bytes) {
        self.touch_index();
        self.index.stored.push(run, event, data);
    }

    pub fn take_stored_event(&mut self, run: &str, event: &str) -> Option<Bytes> {
        let data = self.index.stored.take(run, event)?;
        self.touch_index();
        Some(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workflow::run::NewRun;
    use crate::ids::MessageId;

    fn run(id: &str, created_at: i64) -> Run {
        Run::new(
            NewRun {
                id: id.into(),
                url: "http://w".into(),
                init_message: MessageId::random(),
                initial_body: Bytes::new(),
                defaults: Default::default(),
                labels: Box::default(),
                flow_control_key: None,
                caller_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                invoker: None,
                unknown_sdk: false,
            },
            created_at,
        )
    }

    #[test]
    fn finished_runs_are_found_by_id_and_creation_time_across_eviction() {
        let mut runs = Runs::default();
        for t in 0..3 {
            runs.insert(run("same", t));
            runs.retire("same");
        }
        for i in 0..MAX_FINISHED_RUNS {
            runs.insert(run(&format!("r{i}"), 10 + i as i64));
            runs.retire(&format!("r{i}"));
        }
        // The three "same" runs were the oldest and went.
        assert!(runs.ended("same").is_none());
        assert!(runs.exact("r0", 10).is_some());
        runs.insert(run("r0", 99_999));
        assert_eq!(runs.any("r0").map(|r| r.created_at), Some(99_999));
        assert_eq!(runs.exact("r0", 10).map(|r| r.created_at), Some(10));
        assert_eq!(runs.created_at_of("r0", 50), Some(10));
        runs.retire("r0");
        assert_eq!(runs.ended("r0").map(|r| r.created_at), Some(99_999));
        assert!(runs.exact("r0", 10).is_none(), "evicted by the newest");
        assert_eq!(runs.exact_mut("r1", 11).map(|r| r.created_at), Some(11));
    }
}
