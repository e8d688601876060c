//! The in-memory store: everything is lost on restart, as with the official dev server.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use super::retention::{
    DLQ_RETENTION, LOG_RETENTION, LogLedger, PAGE_BYTES, dlq_entry_bytes, page_weight,
};
use super::sharded::ShardedMap;
use super::{Page, Published, SigningKeys, Sizes, Store};
use crate::domain::dlq::DlqEntry;
use crate::domain::log::{LogDetail, LogEntry, LogState};
use crate::domain::message::{Message, MessageSpec};
use crate::domain::queue::QueueInfo;
use crate::domain::schedule::Schedule;
use crate::domain::url_group::UrlGroup;
use crate::domain::workflow::Runs;
use crate::ids::MessageId;
use crate::users::{USER_COUNT, UserId};

#[derive(Default)]
struct UserData {
    messages: ShardedMap<Message>,
    logs: VecDeque<LogEntry>,
    log_ledger: LogLedger,
    log_seq: u64,
    dlq: BTreeMap<u64, DlqEntry>,
    dlq_bytes: usize,
    /// DLQ entries of failed workflow runs (the workflow DLQ), kept apart from the plain
    /// DLQ's count without a scan.
    dlq_workflow: usize,
    dlq_seq: u64,
    keys: Option<SigningKeys>,
    url_groups: BTreeMap<Arc<str>, UrlGroup>,
    queues: BTreeMap<Arc<str>, QueueInfo>,
    schedules: HashMap<Arc<str>, Schedule>,
    dedup: HashMap<String, (i64, Published)>,
    dedup_order: VecDeque<(i64, String)>,
    runs: Runs,
}

impl UserData {
    /// Takes a DLQ entry that left the map out of the DLQ's totals.
    fn forget_dlq(&mut self, e: &DlqEntry) {
        self.dlq_bytes = self.dlq_bytes.saturating_sub(dlq_entry_bytes(e));
        self.dlq_workflow -= usize::from(e.workflow.is_some());
    }
}

pub struct MemoryStore {
    users: [UserData; USER_COUNT],
    /// Bytes each user's log, and each user's DLQ, may hold.
    budget: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::with_budget(128 * 1024 * 1024)
    }

    pub fn with_budget(budget: usize) -> Self {
        let users = std::array::from_fn(|i| fresh(UserId(i as u8)));
        Self { users, budget }
    }

    fn u(&self, user: UserId) -> &UserData {
        &self.users[user.index()]
    }

    fn u_mut(&mut self, user: UserId) -> &mut UserData {
        &mut self.users[user.index()]
    }
}

/// A user's data on a fresh start: nothing but the default signing keys.
fn fresh(user: UserId) -> UserData {
    let info = user.info();
    UserData {
        keys: Some(SigningKeys {
            current: info.current_signing_key.into(),
            next: info.next_signing_key.into(),
        }),
        ..Default::default()
    }
}

/// What a durable store needs to mirror this one and to fill it back at start
/// (`store::durable`): the newest entries, the oldest sequence numbers still held, and the
/// counters restored as they were.
impl MemoryStore {
    pub(super) fn last_log(&self, user: UserId) -> Option<&LogEntry> {
        self.u(user).logs.back()
    }

    /// The oldest log sequence number still held (the next one when the log is empty).
    pub(super) fn log_floor(&self, user: UserId) -> u64 {
        let data = self.u(user);
        data.logs.front().map_or(data.log_seq + 1, |e| e.seq)
    }

    /// The oldest DLQ sequence number still held (the next one when the DLQ is empty).
    pub(super) fn dlq_floor(&self, user: UserId) -> u64 {
        let data = self.u(user);
        data.dlq.keys().next().copied().unwrap_or(data.dlq_seq)
    }

    /// Entries arrive oldest first; the disk may hold more than the retention keeps (it is
    /// trimmed in batches), and trimming each as it arrives keeps what the log kept.
    pub(crate) fn restore_log(&mut self, user: UserId, entry: LogEntry) {
        let budget = self.budget;
        let data = self.u_mut(user);
        data.log_seq = data.log_seq.max(entry.seq);
        data.log_ledger.add(&entry);
        data.logs.push_back(entry);
        trim_to_retention(data, budget);
    }

    pub(crate) fn restore_dlq(&mut self, user: UserId, entry: DlqEntry) {
        let Some(seq) = dlq_seq(&entry.dlq_id) else {
            return;
        };
        let data = self.u_mut(user);
        data.dlq_seq = data.dlq_seq.max(seq + 1);
        data.dlq_bytes += dlq_entry_bytes(&entry);
        data.dlq_workflow += usize::from(entry.workflow.is_some());
        data.dlq.insert(seq, entry);
    }

    pub(crate) fn restore_runs(&mut self, user: UserId, runs: Runs) {
        self.u_mut(user).runs = runs;
    }
}

/// Drops a user's oldest log entries while the log is over its count or its bytes; the
/// newest entry stays whatever it weighs.
fn trim_to_retention(data: &mut UserData, budget: usize) {
    while data.logs.len() > 1
        && (data.logs.len() > LOG_RETENTION || data.log_ledger.bytes() > budget)
    {
        if let Some(old) = data.logs.pop_front() {
            data.log_ledger.remove(&old);
        }
    }
}

/// `<ms>-<seq>` → seq.
pub(super) fn dlq_seq(dlq_id: &str) -> Option<u64> {
    dlq_id.rsplit_once('-')?.1.parse().ok()
}

/// Walks `items` (ascending by key) newest first, starting strictly below `before`; a page
/// ends after `count` items or [`PAGE_BYTES`] of `weight`, whichever comes first.
fn page<'a, T: Clone + 'a>(
    newest_first: impl Iterator<Item = &'a T>,
    key: impl Fn(&T) -> u64,
    weight: impl Fn(&T) -> usize,
    pred: &mut dyn FnMut(&T) -> bool,
    count: usize,
) -> Page<T> {
    let mut items = Vec::new();
    let mut next = None;
    let mut bytes = 0;
    for item in newest_first {
        if !pred(item) {
            continue;
        }
        if items.len() == count || (!items.is_empty() && bytes + weight(item) > PAGE_BYTES) {
            // One more match exists: the page gets a cursor.
            next = items.last().map(&key);
            break;
        }
        bytes += weight(item);
        items.push(item.clone());
    }
    Page { items, next }
}

fn log_weight(e: &LogEntry) -> usize {
    page_weight(
        &e.spec,
        e.detail.as_ref().and_then(|d| d.response.as_deref()),
    )
}

fn dlq_weight(e: &DlqEntry) -> usize {
    page_weight(&e.spec, Some(&e.response))
}

impl Store for MemoryStore {
    fn insert_message(&mut self, user: UserId, msg: Message) {
        self.u_mut(user).messages.insert(msg.spec.id, msg);
    }

    fn message(&self, user: UserId, id: MessageId) -> Option<&Message> {
        self.u(user).messages.get(&id)
    }

    fn message_mut(&mut self, user: UserId, id: MessageId) -> Option<&mut Message> {
        self.u_mut(user).messages.get_mut(&id)
    }

    fn remove_message(&mut self, user: UserId, id: MessageId) -> Option<Message> {
        // Gives memory back after a burst (a million queued messages, then drained).
        self.u_mut(user).messages.remove(&id)
    }

    fn message_ids(&self, user: UserId, part: usize) -> Vec<MessageId> {
        self.u(user).messages.shard_keys(part).copied().collect()
    }

    fn message_count(&self, user: UserId) -> usize {
        self.u(user).messages.len()
    }

    fn finished(&self, user: UserId, id: MessageId, since: i64) -> Option<Arc<MessageSpec>> {
        // Looked up in the log rather than kept in a map of its own: reads are rare, finishing
        // messages is not.
        self.u(user)
            .logs
            .iter()
            .rev()
            .take_while(|e| e.time >= since)
            .find(|e| {
                e.spec.id == id
                    && matches!(
                        e.state,
                        LogState::Delivered | LogState::Failed | LogState::Canceled
                    )
            })
            .map(|e| e.spec.clone())
    }

    fn append_log(
        &mut self,
        user: UserId,
        time: i64,
        state: LogState,
        spec: Arc<MessageSpec>,
        detail: Option<Arc<LogDetail>>,
    ) {
        let budget = self.budget;
        let data = self.u_mut(user);
        data.log_seq += 1;
        let entry = LogEntry {
            seq: data.log_seq,
            time,
            state,
            spec,
            detail,
        };
        data.log_ledger.add(&entry);
        data.logs.push_back(entry);
        trim_to_retention(data, budget);
    }

    fn log_page(
        &self,
        user: UserId,
        before: Option<u64>,
        pred: &mut dyn FnMut(&LogEntry) -> bool,
        count: usize,
    ) -> Page<LogEntry> {
        let logs = &self.u(user).logs;
        let end = match before {
            Some(b) => logs.partition_point(|e| e.seq < b),
            None => logs.len(),
        };
        page(logs.range(..end).rev(), |e| e.seq, log_weight, pred, count)
    }

    fn next_dlq_id(&mut self, user: UserId, now: i64) -> Arc<str> {
        let data = self.u_mut(user);
        let seq = data.dlq_seq;
        data.dlq_seq += 1;
        format!("{now}-{seq}").into()
    }

    fn insert_dlq(&mut self, user: UserId, entry: DlqEntry) {
        let Some(seq) = dlq_seq(&entry.dlq_id) else {
            return;
        };
        let budget = self.budget;
        let data = self.u_mut(user);
        data.dlq_bytes += dlq_entry_bytes(&entry);
        data.dlq_workflow += usize::from(entry.workflow.is_some());
        data.dlq.insert(seq, entry);
        // Oldest first; the newest entry stays whatever it weighs.
        while data.dlq.len() > 1 && (data.dlq.len() > DLQ_RETENTION || data.dlq_bytes > budget) {
            if let Some((_, old)) = data.dlq.pop_first() {
                data.forget_dlq(&old);
                tracing::debug!(dlq_id = %old.dlq_id, "DLQ over its budget: oldest entry dropped");
            }
        }
    }

    fn dlq(&self, user: UserId, dlq_id: &str) -> Option<&DlqEntry> {
        let seq = dlq_seq(dlq_id)?;
        self.u(user).dlq.get(&seq).filter(|e| &*e.dlq_id == dlq_id)
    }

    fn remove_dlq(&mut self, user: UserId, dlq_id: &str) -> Option<DlqEntry> {
        self.dlq(user, dlq_id)?;
        let seq = dlq_seq(dlq_id)?;
        let data = self.u_mut(user);
        let removed = data.dlq.remove(&seq)?;
        data.forget_dlq(&removed);
        Some(removed)
    }

    fn dlq_page(
        &self,
        user: UserId,
        before: Option<u64>,
        pred: &mut dyn FnMut(&DlqEntry) -> bool,
        count: usize,
    ) -> Page<DlqEntry> {
        let dlq = &self.u(user).dlq;
        let newest_first = dlq
            .range(..before.unwrap_or(u64::MAX))
            .rev()
            .map(|(_, e)| e);
        page(
            newest_first,
            |e| dlq_seq(&e.dlq_id).unwrap_or(0),
            dlq_weight,
            pred,
            count,
        )
    }

    fn expire_dlq(&mut self, user: UserId, cutoff: i64) {
        // Entries are created in seq order, so the expired ones are at the front.
        let data = self.u_mut(user);
        while data
            .dlq
            .first_key_value()
            .is_some_and(|(_, e)| e.created_at < cutoff)
        {
            if let Some((_, old)) = data.dlq.pop_first() {
                data.forget_dlq(&old);
            }
        }
    }

    fn signing_keys(&self, user: UserId) -> SigningKeys {
        // Set for every user in `new`.
        self.u(user).keys.clone().unwrap_or_else(|| SigningKeys {
            current: "".into(),
            next: "".into(),
        })
    }

    fn set_signing_keys(&mut self, user: UserId, keys: SigningKeys) {
        self.u_mut(user).keys = Some(keys);
    }

    fn url_group(&self, user: UserId, name: &str) -> Option<&UrlGroup> {
        self.u(user).url_groups.get(name)
    }

    fn url_groups(&self, user: UserId) -> Vec<&UrlGroup> {
        self.u(user).url_groups.values().collect()
    }

    fn url_group_count(&self, user: UserId) -> usize {
        self.u(user).url_groups.len()
    }

    fn put_url_group(&mut self, user: UserId, group: UrlGroup) {
        self.u_mut(user)
            .url_groups
            .insert(group.name.clone(), group);
    }

    fn remove_url_group(&mut self, user: UserId, name: &str) -> Option<UrlGroup> {
        self.u_mut(user).url_groups.remove(name)
    }

    fn queue(&self, user: UserId, name: &str) -> Option<&QueueInfo> {
        self.u(user).queues.get(name)
    }

    fn queues(&self, user: UserId) -> Vec<&QueueInfo> {
        self.u(user).queues.values().collect()
    }

    fn queue_count(&self, user: UserId) -> usize {
        self.u(user).queues.len()
    }

    fn put_queue(&mut self, user: UserId, queue: QueueInfo) {
        self.u_mut(user).queues.insert(queue.name.clone(), queue);
    }

    fn remove_queue(&mut self, user: UserId, name: &str) -> Option<QueueInfo> {
        self.u_mut(user).queues.remove(name)
    }

    fn schedule(&self, user: UserId, id: &str) -> Option<&Schedule> {
        self.u(user).schedules.get(id)
    }

    fn schedule_mut(&mut self, user: UserId, id: &str) -> Option<&mut Schedule> {
        self.u_mut(user).schedules.get_mut(id)
    }

    fn schedules(&self, user: UserId) -> Vec<&Schedule> {
        let mut all: Vec<&Schedule> = self.u(user).schedules.values().collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    fn schedule_count(&self, user: UserId) -> usize {
        self.u(user).schedules.len()
    }

    fn put_schedule(&mut self, user: UserId, schedule: Schedule) {
        self.u_mut(user)
            .schedules
            .insert(schedule.id.clone(), schedule);
    }

    fn remove_schedule(&mut self, user: UserId, id: &str) -> Option<Schedule> {
        self.u_mut(user).schedules.remove(id)
    }

    fn workflow_runs(&self, user: UserId) -> &Runs {
        &self.u(user).runs
    }

    fn workflow_runs_mut(&mut self, user: UserId) -> &mut Runs {
        &mut self.u_mut(user).runs
    }

    fn sizes(&self, user: UserId) -> Sizes {
        let data = self.u(user);
        Sizes {
            messages: data.messages.len(),
            dlq: data.dlq.len(),
            workflow_dlq: data.dlq_workflow,
            log_seq: data.log_seq,
            schedules: data.schedules.len(),
            paused_schedules: data.schedules.values().filter(|s| s.paused).count(),
            queues: data.queues.len(),
            url_groups: data.url_groups.len(),
        }
    }

    fn reset_user(&mut self, user: UserId) {
        let old = self.u(user);
        // Sequences go on, so log cursors and DLQ ids handed out before never repeat.
        let (log_seq, dlq_seq) = (old.log_seq, old.dlq_seq);
        *self.u_mut(user) = UserData {
            log_seq,
            dlq_seq,
            ..fresh(user)
        };
    }

    fn dedup_get(&self, user: UserId, key: &str, now: i64) -> Option<Published> {
        self.u(user)
            .dedup
            .get(key)
            .filter(|(until, _)| *until > now)
            .map(|(_, p)| p.clone())
    }

    fn dedup_put(&mut self, user: UserId, key: String, until: i64, published: Published, now: i64) {
        let data = self.u_mut(user);
        while data.dedup_order.front().is_some_and(|(t, _)| *t <= now) {
            if let Some((t, k)) = data.dedup_order.pop_front()
                && data.dedup.get(&k).is_some_and(|(u, _)| *u == t)
            {
                data.dedup.remove(&k);
            }
        }
        data.dedup_order.push_back((until, key.clone()));
        data.dedup.insert(key, (until, published));
    }
}
