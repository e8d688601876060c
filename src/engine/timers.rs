//! One min-heap of due times for everything that happens later: delayed first attempts,
//! retries, cron ticks, rate-window rollovers. Entries are never removed early; whoever pops
//! one checks it still applies (a cancelled message is simply gone from the store, a
//! rescheduled tick has another time), which keeps cancel O(1) and the heap free of
//! per-entry bookkeeping.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
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
}

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(i64, u64, Wake)>>,
    seq: u64,
}

impl Timers {
    pub fn push(&mut self, at: i64, wake: Wake) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, wake)));
    }

    pub fn next_due(&self) -> Option<i64> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next entry due at or before `now`, with its due time.
    pub fn pop_due(&mut self, now: i64) -> Option<(i64, Wake)> {
        if self.next_due()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse((at, _, wake))| (at, wake))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keeps only the entries `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(i64, &Wake) -> bool) {
        self.heap.retain(|Reverse((at, _, wake))| keep(*at, wake));
    }

    /// Frees the heap's spare capacity after a large backlog drained.
    pub fn compact(&mut self) {
        if self.heap.capacity() > 1024 && self.heap.len() < self.heap.capacity() / 8 {
            self.heap.shrink_to(self.heap.len() * 2);
        }
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
}
