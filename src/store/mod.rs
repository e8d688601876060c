//! Where the broker keeps its data: messages, the event log, the DLQ, signing keys, dedup
//! records and workflow runs, per user.
//!
//! The engine only talks to a `dyn Store`, always under its own lock and never across an
//! `.await`, so the methods are synchronous; a persistent backend (an embedded database,
//! say) would implement the same trait. Scheduling indexes (timers, waitlists) are not data:
//! they live in the engine and can be rebuilt from the messages.

mod durable;
mod memory;
pub mod retention;
mod sharded;

use std::sync::Arc;

pub use durable::DurableStore;
pub use memory::MemoryStore;
pub use retention::LOG_RETENTION;

use crate::domain::dlq::DlqEntry;
use crate::domain::log::{LogDetail, LogEntry, LogState};
use crate::domain::message::{Message, MessageSpec};
use crate::domain::queue::QueueInfo;
use crate::domain::schedule::Schedule;
use crate::domain::url_group::UrlGroup;
use crate::domain::workflow::Runs;
use crate::ids::MessageId;
use crate::users::UserId;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SigningKeys {
    pub current: Arc<str>,
    pub next: Arc<str>,
}

/// What a deduplicated publish answers: the original response.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// How much a user has of each kind of data, read in one call (the console's overview).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sizes {
    /// Unfinished messages.
    pub messages: usize,
    /// DLQ entries, workflow runs' included.
    pub dlq: usize,
    /// The DLQ entries of failed workflow runs (listed by the workflow DLQ routes).
    pub workflow_dlq: usize,
    /// The sequence number of the newest log entry (0 before the first): it moves whenever
    /// the log does.
    pub log_seq: u64,
    pub schedules: usize,
    pub paused_schedules: usize,
    pub queues: usize,
    pub url_groups: usize,
}

/// How many parts [`Store::message_ids`] splits the unfinished messages in.
pub const ID_PARTS: usize = sharded::SHARDS;

pub trait Store: Send {
    // Messages that are not finished yet.
    fn insert_message(&mut self, user: UserId, msg: Message);
    fn message(&self, user: UserId, id: MessageId) -> Option<&Message>;
    fn message_mut(&mut self, user: UserId, id: MessageId) -> Option<&mut Message>;
    fn remove_message(&mut self, user: UserId, id: MessageId) -> Option<Message>;
    /// The ids of the unfinished messages in part `part` (of [`ID_PARTS`]), in no order: bulk
    /// operations take their snapshot part by part, the lock released in between, and then
    /// work through it in slices. Only keys are copied, no message is read (a snapshot of
    /// (age, id) in one go held the lock ~130 ms at 1M messages, chasing every spec).
    fn message_ids(&self, user: UserId, part: usize) -> Vec<MessageId>;
    /// How many messages are unfinished.
    fn message_count(&self, user: UserId) -> usize;

    /// A message that finished (delivered, failed or cancelled) at or after `since` (ms), as
    /// long as the event log still holds its final entry.
    fn finished(&self, user: UserId, id: MessageId, since: i64) -> Option<Arc<MessageSpec>>;

    // The event log: the newest entries per user, within `retention`'s count and bytes.
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

    // Workflow runs: active and recently finished runs, waiters, stored notifications.
    fn workflow_runs(&self, user: UserId) -> &Runs;
    fn workflow_runs_mut(&mut self, user: UserId) -> &mut Runs;

    fn sizes(&self, user: UserId) -> Sizes;

    /// Forgets everything of the user, as on a fresh start (the reset test control).
    fn reset_user(&mut self, user: UserId);

    // Deduplication window.
    fn dedup_get(&self, user: UserId, key: &str, now: i64) -> Option<Published>;
    fn dedup_put(&mut self, user: UserId, key: String, until: i64, published: Published, now: i64);

    // Durability (`-data-dir`); the in-memory store keeps the defaults, which do nothing.

    /// A flow-control key's state (encoded) as it now is. The keys live in the engine, so it
    /// reports them here for a durable store to keep.
    fn put_flow(&mut self, _user: UserId, _key: &Arc<str>, _encoded: Vec<u8>) {}

    /// The engine lock is about to be released: hands this step's changes to the writer and
    /// returns the sequence number to wait for before answering or acting on them (`None`
    /// when nothing changed, or nothing is kept on disk).
    fn end_step(&mut self) -> Option<u64> {
        None
    }
}
