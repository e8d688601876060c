//! Where the broker keeps its data: messages, the event log, the DLQ, signing keys and
//! dedup records, per user.
//!
//! The engine only talks to a `dyn Store`, always under its own lock and never across an
//! `.await`, so the methods are synchronous; a persistent backend (an embedded database,
//! say) would implement the same trait. Scheduling indexes (timers, waitlists) are not data:
//! they live in the engine and can be rebuilt from the messages.

mod memory;

use std::sync::Arc;

pub use memory::MemoryStore;

use crate::domain::dlq::DlqEntry;
use crate::domain::log::{LogDetail, LogEntry, LogState};
use crate::domain::message::{Message, MessageSpec};
use crate::domain::queue::QueueInfo;
use crate::domain::schedule::Schedule;
use crate::domain::url_group::UrlGroup;
use crate::ids::MessageId;
use crate::users::UserId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningKeys {
    pub current: Arc<str>,
    pub next: Arc<str>,
}

/// What a deduplicated publish answers: the original response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Published {
    Message(MessageId),
    /// One message per URL-group endpoint: (id, endpoint URL).
    Fanout(Vec<(MessageId, Arc<str>)>),
    Schedule(Arc<str>),
}

/// One page of a newest-first listing; `next` is the cursor of the following page, `None` on
/// the last one.
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<u64>,
}

pub trait Store: Send {
    // Messages that are not finished yet.
    fn insert_message(&mut self, user: UserId, msg: Message);
    fn message(&self, user: UserId, id: MessageId) -> Option<&Message>;
    fn message_mut(&mut self, user: UserId, id: MessageId) -> Option<&mut Message>;
    fn remove_message(&mut self, user: UserId, id: MessageId) -> Option<Message>;
    /// Ids of unfinished messages for which `pred` holds, at most `limit`.
    fn select_messages(
        &self,
        user: UserId,
        pred: &mut dyn FnMut(&Message) -> bool,
        limit: usize,
    ) -> Vec<MessageId>;

    /// A message that finished (delivered, failed or cancelled) at or after `since` (ms), as
    /// long as the event log still holds its final entry.
    fn finished(&self, user: UserId, id: MessageId, since: i64) -> Option<Arc<MessageSpec>>;

    // The event log: newest `LOG_RETENTION` entries per user.
    fn append_log(
        &mut self,
        user: UserId,
        time: i64,
        state: LogState,
        spec: Arc<MessageSpec>,
        detail: Option<Arc<LogDetail>>,
    );
    fn log_page(
        &self,
        user: UserId,
        before: Option<u64>,
        pred: &mut dyn FnMut(&LogEntry) -> bool,
        count: usize,
    ) -> Page<LogEntry>;

    // Dead-letter queue.
    fn next_dlq_id(&mut self, user: UserId, now: i64) -> Arc<str>;
    fn insert_dlq(&mut self, user: UserId, entry: DlqEntry);
    fn dlq(&self, user: UserId, dlq_id: &str) -> Option<&DlqEntry>;
    fn remove_dlq(&mut self, user: UserId, dlq_id: &str) -> Option<DlqEntry>;
    fn dlq_page(
        &self,
        user: UserId,
        before: Option<u64>,
        pred: &mut dyn FnMut(&DlqEntry) -> bool,
        count: usize,
    ) -> Page<DlqEntry>;
    /// Drops entries created before `cutoff` (ms).
    fn expire_dlq(&mut self, user: UserId, cutoff: i64);

    fn signing_keys(&self, user: UserId) -> SigningKeys;
    fn set_signing_keys(&mut self, user: UserId, keys: SigningKeys);

    // URL groups, listed by name.
    fn url_group(&self, user: UserId, name: &str) -> Option<&UrlGroup>;
    fn url_groups(&self, user: UserId) -> Vec<&UrlGroup>;
    fn url_group_count(&self, user: UserId) -> usize;
    fn put_url_group(&mut self, user: UserId, group: UrlGroup);
    fn remove_url_group(&mut self, user: UserId, name: &str) -> Option<UrlGroup>;

    // Queues, listed by name.
    fn queue(&self, user: UserId, name: &str) -> Option<&QueueInfo>;
    fn queues(&self, user: UserId) -> Vec<&QueueInfo>;
    fn queue_count(&self, user: UserId) -> usize;
    fn put_queue(&mut self, user: UserId, queue: QueueInfo);
    fn remove_queue(&mut self, user: UserId, name: &str) -> Option<QueueInfo>;

    // Schedules, listed by creation.
    fn schedule(&self, user: UserId, id: &str) -> Option<&Schedule>;
    fn schedule_mut(&mut self, user: UserId, id: &str) -> Option<&mut Schedule>;
    fn schedules(&self, user: UserId) -> Vec<&Schedule>;
    fn schedule_count(&self, user: UserId) -> usize;
    fn put_schedule(&mut self, user: UserId, schedule: Schedule);
    fn remove_schedule(&mut self, user: UserId, id: &str) -> Option<Schedule>;

    // Deduplication window.
    fn dedup_get(&self, user: UserId, key: &str, now: i64) -> Option<Published>;
    fn dedup_put(&mut self, user: UserId, key: String, until: i64, published: Published, now: i64);
}

/// Newest entries kept in each user's event log.
pub const LOG_RETENTION: usize = 10_000;
