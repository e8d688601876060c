//! One min-heap of due times for everything that happens later: delayed first attempts,
//! retries, cron ticks, rate-window rollovers. Entries are never removed early; whoever pops
//! one checks it still applies (a cancelled message is simply gone from the store), which
//! keeps cancel O(1) and the heap free of per-entry bookkeeping.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::ids::MessageId;
use crate::users::UserId;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wake {
    /// A message's first attempt or retry is due.
    Message(UserId, MessageId),
    /// Something identified by a name is due: a schedule tick or a rate window.
    Named(UserId, WakeKind, Box<str>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum WakeKind {
    Schedule,
    RateWindow,
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

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
        t.push(10, Wake::Named(UserId(1), WakeKind::Schedule, "s".into()));
        assert_eq!(t.next_due(), Some(10));
        assert_eq!(t.pop_due(5), None);
        assert_eq!(t.pop_due(15), Some((10, Wake::Message(UserId(0), b))));
        assert!(matches!(t.pop_due(15), Some((10, Wake::Named(..)))));
        assert_eq!(t.pop_due(15), None);
        assert_eq!(t.pop_due(20), Some((20, Wake::Message(UserId(0), a))));
        assert!(t.is_empty());
    }
}
