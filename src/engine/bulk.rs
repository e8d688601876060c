//! Operations over many messages (bulk cancel, deleting a queue with a backlog), done in
//! bounded slices: the core lock is released between slices, so every other user's API calls
//! and all deliveries interleave with a cancel over a million messages instead of waiting
//! behind it.

use super::Broker;
use super::core::CancelOutcome;
use super::error::BrokerError;
use crate::domain::filter::Filter;
use crate::ids::MessageId;
use crate::store::ID_PARTS;
use crate::users::UserId;

use std::time::{Duration, Instant};

/// Messages looked at per lock acquisition at most...
const SLICE: usize = 2048;
/// ...and for at most this long (measured, not on the broker's clock: this bounds CPU work
/// under the lock, so a slow build or a busy machine does fewer per slice).
const SLICE_TIME: Duration = Duration::from_millis(4);

impl Broker {
    /// Cancels the selected unfinished messages, oldest first, at most `count` of them when
    /// it is given (all of them otherwise); returns how many this call cancelled. Messages
    /// published while it runs are not selected.
    pub async fn cancel_many(&self, user: UserId, filter: &Filter) -> Result<usize, BrokerError> {
        let limit = filter.bulk_count()?.unwrap_or(usize::MAX);
        let listed = !filter.message_ids.is_empty();
        let started_at = self.clock().now_ms();
        let ids: Vec<MessageId> = if listed {
            filter
                .message_ids
                .iter()
                .filter_map(|id| id.parse().ok())
                .collect()
        } else {
            let mut ids = Vec::new();
            for part in 0..ID_PARTS {
                ids.extend(self.lock().store.message_ids(user, part));
                tokio::task::yield_now().await;
            }
            // Order only matters when `count` picks some of them.
            if limit < ids.len() {
                self.oldest_first(user, ids).await
            } else {
                ids
            }
        };
        let mut cancelled = 0;
        let mut rest = &ids[..];
        while !rest.is_empty() && cancelled < limit {
            let (done, n) = self.with_core(|core, now, _| {
                let started = Instant::now();
                let mut n = 0;
                let mut done = 0;
                for &id in rest.iter().take(SLICE) {
                    if cancelled + n >= limit || started.elapsed() > SLICE_TIME {
                        break;
                    }
                    done += 1;
                    let selected = listed
                        || core.store.message(user, id).is_some_and(|m| {
                            !m.cancel_requested
                                && m.spec.created_at <= started_at
                                && filter.in_dates(m.spec.created_at)
                                && filter.matches_spec(&m.spec)
                        });
                    if selected && core.cancel(user, id, now) == CancelOutcome::Cancelled {
                        n += 1;
                    }
                }
                (done, n)
            });
            cancelled += n;
            rest = &rest[done.max(1).min(rest.len())..];
            tokio::task::yield_now().await;
        }
        Ok(cancelled)
    }

    /// `ids` sorted by creation time, read in slices; the ones finished meanwhile dropped.
    async fn oldest_first(&self, user: UserId, ids: Vec<MessageId>) -> Vec<MessageId> {
        let mut aged = Vec::with_capacity(ids.len());
        let mut rest = &ids[..];
        while !rest.is_empty() {
            let done = {
                let core = self.lock();
                let started = Instant::now();
                let mut done = 0;
                for &id in rest.iter().take(SLICE) {
                    if started.elapsed() > SLICE_TIME {
                        break;
                    }
                    done += 1;
                    if let Some(m) = core.store.message(user, id) {
                        aged.push((m.spec.created_at, id));
                    }
                }
                done
            };
            rest = &rest[done.max(1).min(rest.len())..];
            tokio::task::yield_now().await;
        }
        aged.sort_unstable();
        aged.into_iter().map(|(_, id)| id).collect()
    }

    /// Removes the queue; its waiting messages are cancelled (in slices), started ones finish.
    pub async fn delete_queue(&self, user: UserId, name: &str) {
        let waiting = self.with_core(|core, now, out| core.delete_queue(user, name, now, out));
        let mut rest = &waiting[..];
        while !rest.is_empty() {
            let done = self.with_core(|core, now, _| {
                let started = Instant::now();
                let mut done = 0;
                for &id in rest.iter().take(SLICE) {
                    if started.elapsed() > SLICE_TIME {
                        break;
                    }
                    core.cancel(user, id, now);
                    done += 1;
                }
                done
            });
            rest = &rest[done.max(1).min(rest.len())..];
            tokio::task::yield_now().await;
        }
        self.with_core(|core, _, _| core.forget_queue_if_idle(user, name));
    }
}
