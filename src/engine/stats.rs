//! Per-user message counters: how many messages were accepted, attempted, delivered, retried,
//! failed, cancelled and dead-lettered since the start, and how many were delivered or failed
//! in each of the last minutes.
//!
//! The core records every state change it logs here ([`Stats::record`], called from the one
//! place it appends to the event log), so the counters cost one relaxed atomic add per log
//! entry (two for a delivery or a failure, which also count in their 10-second slot). They are atomics, not core fields, so readers (the console's live
//! overview, a metrics exporter) never take the core lock to read them.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use crate::domain::log::LogState;
use crate::domain::workflow::run::RunState;
use crate::users::{USER_COUNT, UserId};

/// Minutes of history kept for the "last N minutes" figures.
pub const RECENT_MINUTES: usize = 16;

const MINUTE_MS: i64 = 60_000;
/// The history is kept in slots of this many ms, so "the last minute" is the last 50–60 s
/// rather than whatever part of the current minute has passed.
const SLOT_MS: i64 = 10_000;
const SLOTS_PER_MINUTE: usize = (MINUTE_MS / SLOT_MS) as usize;
const SLOTS: usize = RECENT_MINUTES * SLOTS_PER_MINUTE;

/// Totals since the server started, per user.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages created (publishes, fan-out copies, schedule ticks, callbacks, DLQ retries).
    pub accepted: u64,
    /// Delivery attempts started.
    pub attempts: u64,
    pub delivered: u64,
    /// Attempts that failed and were scheduled again.
    pub retried: u64,
    /// Messages that failed for good.
    pub failed: u64,
    pub cancelled: u64,
    /// Entries put into the dead-letter queue.
    pub dead_lettered: u64,
}

impl Counters {
    /// Messages accepted and not finished yet (waiting, parked at a gate or in flight).
    pub fn unfinished(&self) -> u64 {
        self.accepted
            .saturating_sub(self.delivered + self.failed + self.cancelled)
    }
}

/// Delivered and failed messages in the last `minutes` minutes (to the 10 s).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recent {
    pub minutes: u32,
    pub delivered: u64,
    pub failed: u64,
}

struct Slot {
    /// Slot number (ms / SLOT_MS) this slot counts, -1 when unused.
    at: AtomicI64,
    delivered: AtomicU64,
    failed: AtomicU64,
}

struct UserStats {
    accepted: AtomicU64,
    attempts: AtomicU64,
    delivered: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
    dead_lettered: AtomicU64,
    /// Workflow runs started, then ended in each [`RunState`] but `Started` (in its order).
    runs: [AtomicU64; 4],
    /// A ring of 10-second slots indexed by slot number.
    slots: [Slot; SLOTS],
}

impl Default for UserStats {
    fn default() -> Self {
        Self {
            accepted: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            runs: Default::default(),
            slots: std::array::from_fn(|_| Slot {
                at: AtomicI64::new(-1),
                delivered: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            }),
        }
    }
}

/// The counters of every user. Written only under the core lock (one writer at a time), read
/// from anywhere.
#[derive(Default)]
pub struct Stats {
    users: [UserStats; USER_COUNT],
}

impl Stats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one log entry of `user` in `state`, written at `now` (ms).
    pub fn record(&self, user: UserId, state: LogState, now: i64) {
        let u = &self.users[user.index()];
        let counter = match state {
            LogState::Created => &u.accepted,
            LogState::Active => &u.attempts,
            LogState::Retry => &u.retried,
            LogState::Delivered => &u.delivered,
            LogState::Failed => &u.failed,
            LogState::Canceled => &u.cancelled,
            LogState::Error | LogState::CancelRequested => return,
        };
        counter.fetch_add(1, Relaxed);
        match state {
            LogState::Delivered => u.slot(now).delivered.fetch_add(1, Relaxed),
            LogState::Failed => u.slot(now).failed.fetch_add(1, Relaxed),
            _ => 0,
        };
    }

    /// Counts one entry put into `user`'s dead-letter queue.
    pub fn dead_lettered(&self, user: UserId) {
        self.users[user.index()].dead_lettered.fetch_add(1, Relaxed);
    }

    /// Counts a workflow run that started (`Started`) or ended in `state`.
    pub fn workflow_run(&self, user: UserId, state: RunState) {
        self.users[user.index()].runs[run_index(state)].fetch_add(1, Relaxed);
    }

    /// Workflow runs of `user` that reached `state` (`Started`: every run that began).
    pub fn workflow_runs(&self, user: UserId, state: RunState) -> u64 {
        self.users[user.index()].runs[run_index(state)].load(Relaxed)
    }

    /// Zeroes the user's counters (the reset control). Called under the core lock, like
    /// every other write.
    pub fn reset(&self, user: UserId) {
        let u = &self.users[user.index()];
        for c in [
            &u.accepted,
            &u.attempts,
            &u.delivered,
            &u.retried,
            &u.failed,
            &u.cancelled,
            &u.dead_lettered,
        ]
        .into_iter()
        .chain(&u.runs)
        {
            c.store(0, Relaxed);
        }
        for slot in &u.slots {
            slot.at.store(-1, Relaxed);
        }
    }

    pub fn counters(&self, user: UserId) -> Counters {
        let u = &self.users[user.index()];
        Counters {
            accepted: u.accepted.load(Relaxed),
            attempts: u.attempts.load(Relaxed),
            delivered: u.delivered.load(Relaxed),
            retried: u.retried.load(Relaxed),
            failed: u.failed.load(Relaxed),
            cancelled: u.cancelled.load(Relaxed),
            dead_lettered: u.dead_lettered.load(Relaxed),
        }
    }

    /// Delivered and failed messages of `user` in the last `minutes` minutes before `now`
    /// (at most [`RECENT_MINUTES`]; the current, partial 10-second slot counts as a whole).
    pub fn recent(&self, user: UserId, now: i64, minutes: usize) -> Recent {
        let u = &self.users[user.index()];
        let current = now.div_euclid(SLOT_MS);
        let minutes = minutes.clamp(1, RECENT_MINUTES);
        let mut out = Recent {
            minutes: minutes as u32,
            ..Default::default()
        };
        for back in 0..(minutes * SLOTS_PER_MINUTE) as i64 {
            let want = current - back;
            let slot = &u.slots[want.rem_euclid(SLOTS as i64) as usize];
            if slot.at.load(Relaxed) == want {
                out.delivered += slot.delivered.load(Relaxed);
                out.failed += slot.failed.load(Relaxed);
            }
        }
        out
    }
}

fn run_index(state: RunState) -> usize {
    match state {
        RunState::Started => 0,
        RunState::Success => 1,
        RunState::Failed => 2,
        RunState::Canceled => 3,
    }
}

impl UserStats {
    /// The slot containing `now`, cleared first if it held an older one.
    fn slot(&self, now: i64) -> &Slot {
        let at = now.div_euclid(SLOT_MS);
        let slot = &self.slots[at.rem_euclid(SLOTS as i64) as usize];
        if slot.at.load(Relaxed) != at {
            // Only the core (under its lock) writes, so this reset cannot race another write.
            slot.delivered.store(0, Relaxed);
            slot.failed.store(0, Relaxed);
            slot.at.store(at, Relaxed);
        }
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_state_and_derives_unfinished() {
        let s = Stats::new();
        let u = UserId(1);
        for state in [
            LogState::Created,
            LogState::Created,
            LogState::Created,
            LogState::Active,
            LogState::Error,
            LogState::Retry,
            LogState::Active,
            LogState::Delivered,
            LogState::CancelRequested,
            LogState::Canceled,
        ] {
            s.record(u, state, 0);
        }
        let c = s.counters(u);
        assert_eq!(
            (c.accepted, c.attempts, c.retried, c.delivered, c.cancelled),
            (3, 2, 1, 1, 1)
        );
        assert_eq!(c.unfinished(), 1);
        assert_eq!(s.counters(UserId(0)), Counters::default());
    }

    #[test]
    fn recent_minutes_age_out() {
        let s = Stats::new();
        let u = UserId(0);
        let t0 = 10 * MINUTE_MS;
        s.record(u, LogState::Delivered, t0);
        s.record(u, LogState::Failed, t0 + 1);
        s.record(u, LogState::Delivered, t0 + 2 * MINUTE_MS);
        let now = t0 + 2 * MINUTE_MS + 5;
        assert_eq!(s.recent(u, now, 1).delivered, 1);
        // "The last minute" is not reset by a minute boundary.
        assert_eq!(s.recent(u, t0 + 2 * MINUTE_MS + 45_000, 1).delivered, 1);
        assert_eq!(s.recent(u, t0 + 3 * MINUTE_MS + 10_000, 1).delivered, 0);
        assert_eq!(
            (s.recent(u, now, 5).delivered, s.recent(u, now, 5).failed),
            (2, 1)
        );
        // The ring wraps: a slot reused for a later minute forgets the old one.
        let later = t0 + RECENT_MINUTES as i64 * MINUTE_MS;
        s.record(u, LogState::Delivered, later);
        assert_eq!(s.recent(u, later, RECENT_MINUTES).delivered, 2);
        assert_eq!(
            s.recent(u, later + 20 * MINUTE_MS, 5),
            Recent {
                minutes: 5,
                ..Default::default()
            }
        );
    }
}
