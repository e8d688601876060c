//! One min-heap of due times for everything that happens later: delayed first attempts,
//! retries, cron ticks, rate-window rollovers. Entries are never removed early; whoever pops
//! one checks it still applies (a cancelled message is simply gone from the store, a
//! rescheduled tick has another time), which keeps cancel O(1) and the heap free of
//! per-entry bookkeeping.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ids::MessageId;
use crate::users::UserId;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wake {
    /// A message's first attempt or retry is due.
    Message(UserId, MessageId),
    /// A schedule's cron tick.
    Schedule(UserId, Arc<str>),
    /// A flow-control key's rate window rolls over.
    RateWindow(UserId, Arc<str>),
    /// A workflow run's wait for an event times out: (user, run id, event id).
    WaitTimeout(UserId, Arc<str>, Arc<str>),
}

/// Entries by (due time, insertion order).
///
/// A B-tree rather than a binary heap: a heap is one vector, and growing it past a million
/// entries copies all of them at once (tens of milliseconds under the engine lock); a tree
/// grows a node at a time.
type Queue = BTreeMap<(i64, u64), Wake>;

/// The queue, and while a compaction runs, the old queue it is moving out of.
///
/// Compaction (dropping entries that no longer apply, after many cancellations) is done in
/// bounded steps rather than in one pass: a million stale entries took over 50 ms to sweep
/// under the core lock. The old queue is drained in due order, a slice per step, into the new
/// one; until it is empty both are consulted, so nothing is due late.
#[derive(Default)]
pub struct Timers {
    queue: Queue,
    draining: Queue,
    seq: u64,
}

fn due(q: &Queue) -> Option<i64> {
    q.first_key_value().map(|((at, _), _)| *at)
}

impl Timers {
    pub fn push(&mut self, at: i64, wake: Wake) {
        self.seq += 1;
        self.queue.insert((at, self.seq), wake);
    }

    pub fn next_due(&self) -> Option<i64> {
        match (due(&self.queue), due(&self.draining)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next entry due at or before `now`, with its due time.
    pub fn pop_due(&mut self, now: i64) -> Option<(i64, Wake)> {
        let from_draining = match (due(&self.queue), due(&self.draining)) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => b < a,
        };
        let queue = if from_draining {
            &mut self.draining
        } else {
            &mut self.queue
        };
        if due(queue)? > now {
            return None;
        }
        queue.pop_first().map(|((at, _), wake)| (at, wake))
    }

    pub fn len(&self) -> usize {
        self.queue.len() + self.draining.len()
    }

    pub fn compacting(&self) -> bool {
        !self.draining.is_empty()
    }

    /// Starts a compaction: the entries move out to be sifted by [`Self::compact_step`].
    pub fn start_compaction(&mut self) {
        if self.draining.is_empty() {
            std::mem::swap(&mut self.queue, &mut self.draining);
        }
    }

    /// Moves up to `budget` entries of the queue being compacted back, keeping those `keep`
    /// accepts; returns whether the compaction is done.
    pub fn compact_step(
        &mut self,
        budget: usize,
        mut keep: impl FnMut(i64, &Wake) -> bool,
    ) -> bool {
        for _ in 0..budget {
            let Some((key, wake)) = self.draining.pop_first() else {
                break;
            };
            if keep(key.0, &wake) {
                self.queue.insert(key, wake);
            }
        }
        self.draining.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_order_then_insertion_order() {
        let mut t = Timers::default();
        let a = MessageId::random();
        let b = MessageId::random();
        t.push(20, Wake::Message(UserId(0), a));
        t.push(10, Wake::Message(UserId(0), b));
        t.push(10, Wake::Schedule(UserId(1), "s".into()));
        assert_eq!(t.next_due(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(15), Some((10, Wake::Message(UserId(0), b))));
        assert!(matches!(t.pop_due(15), Some((10, Wake::Schedule(..)))));
        assert_eq!(t.pop_due(15), None);
        assert_eq!(t.pop_due(20), Some((20, Wake::Message(UserId(0), a))));
        assert_eq!(t.next_due(), None);
    }

    #[test]
    fn compaction_in_steps_keeps_order_and_drops_what_no_longer_applies() {
        let mut t = Timers::default();
        let ids: Vec<MessageId> = (0..100).map(|_| MessageId::random()).collect();
        for (i, id) in ids.iter().enumerate() {
            t.push(100 + i as i64, Wake::Message(UserId(0), *id));
        }
        let keep = |at: i64, _: &Wake| at % 2 == 0;
        t.start_compaction();
        assert!(!t.compact_step(10, keep));
        t.push(1, Wake::Schedule(UserId(0), "s".into()));
        assert_eq!(
            t.next_due(),
            Some(1),
            "new entries count during a compaction"
        );
        assert_eq!(t.len(), 96, "5 of the first 10 were dropped");
        let mut popped = vec![t.pop_due(1000).unwrap().0];
        assert!(!t.compact_step(10, keep));
        while let Some((at, _)) = t.pop_due(1000) {
            popped.push(at);
        }
        // Two steps of 10 sifted 100..120; the rest was never looked at.
        let mut expected: Vec<i64> = (100..120).filter(|at| at % 2 == 0).collect();
        expected.extend(120..200);
        expected.insert(0, 1);
        // Entries not yet sifted are still delivered (the caller re-checks them on pop).
        assert_eq!(popped, expected);
    }
}
