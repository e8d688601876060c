//! The in-memory store: everything is lost on restart, as with the official dev server.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use super::{LOG_RETENTION, Page, Published, SigningKeys, Store};
use crate::domain::dlq::DlqEntry;
use crate::domain::log::{LogDetail, LogEntry, LogState};
use crate::domain::message::{Message, MessageSpec};
use crate::domain::queue::QueueInfo;
use crate::domain::schedule::Schedule;
use crate::domain::url_group::UrlGroup;
use crate::ids::{IdMap, MessageId};
use crate::users::{USER_COUNT, UserId};

#[derive(Default)]
struct UserData {
    messages: IdMap<Message>,
    logs: VecDeque<LogEntry>,
    log_seq: u64,
    dlq: BTreeMap<u64, DlqEntry>,
    dlq_seq: u64,
    keys: Option<SigningKeys>,
    url_groups: BTreeMap<Arc<str>, UrlGroup>,
    queues: BTreeMap<Arc<str>, QueueInfo>,
    schedules: HashMap<Arc<str>, Schedule>,
    dedup: HashMap<String, (i64, Published)>,
    dedup_order: VecDeque<(i64, String)>,
}

pub struct MemoryStore {
    users: [UserData; USER_COUNT],
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        let mut users: [UserData; USER_COUNT] = Default::default();
        for (i, data) in users.iter_mut().enumerate() {
            let info = UserId(i as u8).info();
            data.keys = Some(SigningKeys {
                current: info.current_signing_key.into(),
                next: info.next_signing_key.into(),
            });
        }
        Self { users }
    }

    fn u(&self, user: UserId) -> &UserData {
        &self.users[user.index()]
    }

    fn u_mut(&mut self, user: UserId) -> &mut UserData {
        &mut self.users[user.index()]
    }
}

/// `<ms>-<seq>` → seq.
fn dlq_seq(dlq_id: &str) -> Option<u64> {
    dlq_id.rsplit_once('-')?.1.parse().ok()
}

/// Walks `items` (ascending by key) newest first, starting strictly below `before`.
fn page<'a, T: Clone + 'a>(
    newest_first: impl Iterator<Item = &'a T>,
    key: impl Fn(&T) -> u64,
    pred: &mut dyn FnMut(&T) -> bool,
    count: usize,
) -> Page<T> {
    let mut items = Vec::new();
    let mut next = None;
    for item in newest_first {
        if !pred(item) {
            continue;
        }
        if items.len() == count {
            // One more match exists: the page gets a cursor.
            next = items.last().map(&key);
            break;
        }
        items.push(item.clone());
    }
    Page { items, next }
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
        let data = self.u_mut(user);
        let removed = data.messages.remove(&id);
        // Give memory back after a burst (a million queued messages, then drained).
        if data.messages.capacity() > 1024 && data.messages.len() < data.messages.capacity() / 8 {
            data.messages.shrink_to(data.messages.len() * 2);
        }
        removed
    }

    fn select_messages(
        &self,
        user: UserId,
        pred: &mut dyn FnMut(&Message) -> bool,
        limit: usize,
    ) -> Vec<MessageId> {
        let mut ids: Vec<(i64, MessageId)> = self
            .u(user)
            .messages
            .values()
            .filter(|m| pred(m))
            .map(|m| (m.spec.created_at, m.spec.id))
            .collect();
        // Oldest first, so a capped bulk operation is predictable.
        ids.sort_unstable();
        ids.truncate(limit);
        ids.into_iter().map(|(_, id)| id).collect()
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
        let data = self.u_mut(user);
        data.log_seq += 1;
        if data.logs.len() == LOG_RETENTION {
            data.logs.pop_front();
        }
        data.logs.push_back(LogEntry {
            seq: data.log_seq,
            time,
            state,
            spec,
            detail,
        });
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
        page(logs.range(..end).rev(), |e| e.seq, pred, count)
    }

    fn next_dlq_id(&mut self, user: UserId, now: i64) -> Arc<str> {
        let data = self.u_mut(user);
        let seq = data.dlq_seq;
        data.dlq_seq += 1;
        format!("{now}-{seq}").into()
    }

    fn insert_dlq(&mut self, user: UserId, entry: DlqEntry) {
        if let Some(seq) = dlq_seq(&entry.dlq_id) {
            self.u_mut(user).dlq.insert(seq, entry);
        }
    }

    fn dlq(&self, user: UserId, dlq_id: &str) -> Option<&DlqEntry> {
        let seq = dlq_seq(dlq_id)?;
        self.u(user).dlq.get(&seq).filter(|e| &*e.dlq_id == dlq_id)
    }

    fn remove_dlq(&mut self, user: UserId, dlq_id: &str) -> Option<DlqEntry> {
        self.dlq(user, dlq_id)?;
        let seq = dlq_seq(dlq_id)?;
        self.u_mut(user).dlq.remove(&seq)
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
            pred,
            count,
        )
    }

    fn expire_dlq(&mut self, user: UserId, cutoff: i64) {
        // Entries are created in seq order, so the expired ones are at the front.
        let dlq = &mut self.u_mut(user).dlq;
        while dlq
            .first_key_value()
            .is_some_and(|(_, e)| e.created_at < cutoff)
        {
            dlq.pop_first();
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
