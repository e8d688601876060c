//! The store with `-data-dir`: the in-memory store stays the working set, and every change
//! made through this trait is also handed to the journal, whose writer thread keeps the
//! on-disk copy (`crate::persistence`) in step.
//!
//! Methods that hand out `&mut` (a message, a schedule, a user's workflow runs) cannot see
//! what the caller changes, so they mark the record touched, and [`Store::end_step`] (called
//! when the engine lock is released) sends the touched records as they are then.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::memory::{MemoryStore, dlq_seq};
use super::{Page, Published, SigningKeys, Sizes, Store};
use crate::domain::dlq::DlqEntry;
use crate::domain::log::{LogDetail, LogEntry, LogState};
use crate::domain::message::{Message, MessageSpec};
use crate::domain::queue::QueueInfo;
use crate::domain::schedule::Schedule;
use crate::domain::url_group::UrlGroup;
use crate::domain::workflow::Runs;
use crate::ids::{IdMap, MessageId};
use crate::persistence::codec::encode;
use crate::persistence::journal::{Journal, Kind, MsgState, Op};
use crate::persistence::runs as run_records;
use crate::users::{USER_COUNT, UserId};

pub struct DurableStore {
    mem: MemoryStore,
    journal: Arc<Journal>,
    /// This step's changes so far, in order.
    ops: Vec<Op>,
    /// Messages stored during this step (written whole at its end) or changed through
    /// `message_mut` (their state written at its end), per user.
    new_msgs: [IdMap<()>; USER_COUNT],
    touched_msgs: [IdMap<()>; USER_COUNT],
    /// Each stored message's row on disk (`persistence::journal::Op::MsgPut`), and the next
    /// row to hand out.
    rows: [IdMap<i64>; USER_COUNT],
    next_row: i64,
    /// Rows named by this step's log entries (`Op::Log::spec_row`): a message stored and
    /// finished within the step is then written after all, as their spec.
    /// A list, not a set: pushed at every log entry, searched only when a message is
    /// stored and finished within one step (rare).
    named_rows: Vec<i64>,
    touched_schedules: HashSet<(UserId, Arc<str>)>,
    touched_runs: [bool; USER_COUNT],
    /// The oldest log and DLQ sequence numbers the disk holds, per user.
    log_floor: [u64; USER_COUNT],
    dlq_floor: [u64; USER_COUNT],
    /// Flow-control keys as last written (their encoded state), so unchanged keys are not
    /// written again at every step that looks at them.
    flows_written: HashMap<(UserId, Arc<str>), Vec<u8>>,
}

fn state_of(m: &Message) -> MsgState {
    MsgState {
        retried: m.retried,
        phase: m.phase,
        cancel_requested: m.cancel_requested,
    }
}

impl DurableStore {
    /// Wraps a store already filled from disk; `rows` are its messages' rows there, and
    /// `next_row` is past every row on disk (finished messages' included).
    pub fn new(
        mem: MemoryStore,
        journal: Arc<Journal>,
        rows: &[(UserId, MessageId, i64)],
        next_row: i64,
    ) -> Self {
        let mut s = Self {
            mem,
            journal,
            ops: Vec::new(),
            new_msgs: Default::default(),
            touched_msgs: Default::default(),
            rows: Default::default(),
            next_row: next_row.max(1),
            named_rows: Vec::new(),
            touched_schedules: HashSet::new(),
            touched_runs: [false; USER_COUNT],
            log_floor: [0; USER_COUNT],
            dlq_floor: [0; USER_COUNT],
            flows_written: HashMap::new(),
        };
        for &(user, id, row) in rows {
            s.rows[user.index()].insert(id, row);
        }
        for user in UserId::all() {
            s.mem.workflow_runs_mut(user).track_changes();
            s.log_floor[user.index()] = s.mem.log_floor(user);
            s.dlq_floor[user.index()] = s.mem.dlq_floor(user);
        }
        s
    }

    fn u8(user: UserId) -> u8 {
        user.index() as u8
    }

    fn record(&mut self, user: UserId, kind: Kind, key: Arc<str>, value: Option<Vec<u8>>) {
        self.ops.push(Op::Record {
            user: Self::u8(user),
            kind,
            key,
            value,
        });
    }

    /// The runs this step changed, each as its own record; the index if it changed.
    fn write_runs(&mut self, user: UserId) {
        let Some(mut changes) = self.mem.workflow_runs_mut(user).take_changes() else {
            return;
        };
        for gone in changes.gone {
            changes.runs.remove(&gone);
            self.record(user, Kind::Run, run_records::key(&gone), None);
        }
        let runs = self.mem.workflow_runs(user);
        let mut puts = Vec::with_capacity(changes.runs.len());
        for key in &changes.runs {
            let value = runs
                .place(&key.0, key.1)
                .map(|(finished, run)| run_records::encode_run(finished, run));
            puts.push((run_records::key(key), value));
        }
        let index = changes
            .index
            .then(|| run_records::encode_index(runs.index()));
        for (key, value) in puts {
            self.record(user, Kind::Run, key, value);
        }
        if let Some(index) = index {
            self.record(user, Kind::RunIndex, "".into(), Some(index));
        }
    }

    fn trim_log(&mut self, user: UserId) {
        let floor = self.mem.log_floor(user);
        if floor > self.log_floor[user.index()] {
            self.log_floor[user.index()] = floor;
            self.ops.push(Op::LogTrim {
                user: Self::u8(user),
                below: floor,
            });
        }
    }

    fn trim_dlq(&mut self, user: UserId) {
        let floor = self.mem.dlq_floor(user);
        if floor > self.dlq_floor[user.index()] {
            self.dlq_floor[user.index()] = floor;
            self.ops.push(Op::DlqTrim {
                user: Self::u8(user),
                below: floor,
            });
        }
    }
}

impl Store for DurableStore {
    fn insert_message(&mut self, user: UserId, msg: Message) {
        let id = msg.spec.id;
        self.mem.insert_message(user, msg);
        self.touched_msgs[user.index()].remove(&id);
        let fresh = self.new_msgs[user.index()].insert(id, ()).is_none();
        // Ids are random, so this is a new message; if one ever replaced a stored one, its
        // old row goes, or a restart would read both.
        let row = self.next_row;
        match self.rows[user.index()].insert(id, row) {
            Some(old) if fresh => self.ops.push(Op::MsgDel {
                row: old,
                user: Self::u8(user),
            }),
            // Replaced within this step: its first row is never written, so an entry of the
            // step that named it holds its spec after all.
            Some(old) => {
                for op in &mut self.ops {
                    if let Op::Log { spec_row, .. } = op
                        && *spec_row == Some(old)
                    {
                        *spec_row = None;
                    }
                }
            }
            None => {}
        }
        self.next_row += 1;
    }

    fn message(&self, user: UserId, id: MessageId) -> Option<&Message> {
        self.mem.message(user, id)
    }

    fn message_mut(&mut self, user: UserId, id: MessageId) -> Option<&mut Message> {
        let m = self.mem.message_mut(user, id)?;
        if !self.new_msgs[user.index()].contains_key(&id) {
            self.touched_msgs[user.index()].insert(id, ());
        }
        Some(m)
    }

    fn remove_message(&mut self, user: UserId, id: MessageId) -> Option<Message> {
        let removed = self.mem.remove_message(user, id)?;
        self.touched_msgs[user.index()].remove(&id);
        let Some(row) = self.rows[user.index()].remove(&id) else {
            return Some(removed);
        };
        let u = Self::u8(user);
        if self.new_msgs[user.index()].remove(&id).is_none() {
            self.ops.push(Op::MsgDel { row, user: u });
        } else if self.named_rows.contains(&row) {
            // Stored and finished within one step, but a log entry shows its spec.
            self.ops.push(Op::MsgPut {
                row,
                user: u,
                spec: removed.spec.clone(),
                state: state_of(&removed),
            });
            self.ops.push(Op::MsgDel { row, user: u });
        }
        // (Stored and finished within one step, never named: the disk never hears of it.)
        Some(removed)
    }

    fn message_ids(&self, user: UserId, part: usize) -> Vec<MessageId> {
        self.mem.message_ids(user, part)
    }

    fn message_count(&self, user: UserId) -> usize {
        self.mem.message_count(user)
    }

    fn finished(&self, user: UserId, id: MessageId, since: i64) -> Option<Arc<MessageSpec>> {
        self.mem.finished(user, id, since)
    }

    fn append_log(
        &mut self,
        user: UserId,
        time: i64,
        state: LogState,
        spec: Arc<MessageSpec>,
        detail: Option<Arc<LogDetail>>,
    ) {
        self.mem.append_log(user, time, state, spec, detail);
        if let Some(entry) = self.mem.last_log(user) {
            let entry = entry.clone();
            // The entry shows the spec of a stored message: it names that message's row.
            let spec_row = self.rows[user.index()]
                .get(&entry.spec.id)
                .copied()
                .filter(|_| {
                    self.mem
                        .message(user, entry.spec.id)
                        .is_some_and(|m| Arc::ptr_eq(&m.spec, &entry.spec))
                });
            if let Some(row) = spec_row {
                self.named_rows.push(row);
            }
            self.ops.push(Op::Log {
                user: Self::u8(user),
                entry,
                spec_row,
            });
        }
        self.trim_log(user);
    }

    fn log_page(
        &self,
        user: UserId,
        before: Option<u64>,
        pred: &mut dyn FnMut(&LogEntry) -> bool,
        count: usize,
    ) -> Page<LogEntry> {
        self.mem.log_page(user, before, pred, count)
    }

    fn next_dlq_id(&mut self, user: UserId, now: i64) -> Arc<str> {
        self.mem.next_dlq_id(user, now)
    }

    fn insert_dlq(&mut self, user: UserId, entry: DlqEntry) {
        let seq = dlq_seq(&entry.dlq_id);
        let copy = entry.clone();
        self.mem.insert_dlq(user, entry);
        if let Some(seq) = seq {
            self.ops.push(Op::DlqPut {
                user: Self::u8(user),
                seq,
                entry: copy,
            });
        }
        self.trim_dlq(user);
    }

    fn dlq(&self, user: UserId, dlq_id: &str) -> Option<&DlqEntry> {
        self.mem.dlq(user, dlq_id)
    }

    fn remove_dlq(&mut self, user: UserId, dlq_id: &str) -> Option<DlqEntry> {
        let removed = self.mem.remove_dlq(user, dlq_id)?;
        if let Some(seq) = dlq_seq(dlq_id) {
            self.ops.push(Op::DlqDel {
                user: Self::u8(user),
                seq,
            });
        }
        Some(removed)
    }

    fn dlq_page(
        &self,
        user: UserId,
        before: Option<u64>,
        pred: &mut dyn FnMut(&DlqEntry) -> bool,
        count: usize,
    ) -> Page<DlqEntry> {
        self.mem.dlq_page(user, before, pred, count)
    }

    fn expire_dlq(&mut self, user: UserId, cutoff: i64) {
        self.mem.expire_dlq(user, cutoff);
        self.trim_dlq(user);
    }

    fn signing_keys(&self, user: UserId) -> SigningKeys {
        self.mem.signing_keys(user)
    }

    fn set_signing_keys(&mut self, user: UserId, keys: SigningKeys) {
        self.mem.set_signing_keys(user, keys.clone());
        self.ops.push(Op::Keys {
            user: Self::u8(user),
            keys,
        });
    }

    fn url_group(&self, user: UserId, name: &str) -> Option<&UrlGroup> {
        self.mem.url_group(user, name)
    }

    fn url_groups(&self, user: UserId) -> Vec<&UrlGroup> {
        self.mem.url_groups(user)
    }

    fn url_group_count(&self, user: UserId) -> usize {
        self.mem.url_group_count(user)
    }

    fn put_url_group(&mut self, user: UserId, group: UrlGroup) {
        let (key, value) = (group.name.clone(), encode(&group));
        self.mem.put_url_group(user, group);
        self.record(user, Kind::UrlGroup, key, Some(value));
    }

    fn remove_url_group(&mut self, user: UserId, name: &str) -> Option<UrlGroup> {
        let removed = self.mem.remove_url_group(user, name)?;
        self.record(user, Kind::UrlGroup, removed.name.clone(), None);
        Some(removed)
    }

    fn queue(&self, user: UserId, name: &str) -> Option<&QueueInfo> {
        self.mem.queue(user, name)
    }

    fn queues(&self, user: UserId) -> Vec<&QueueInfo> {
        self.mem.queues(user)
    }

    fn queue_count(&self, user: UserId) -> usize {
        self.mem.queue_count(user)
    }

    fn put_queue(&mut self, user: UserId, queue: QueueInfo) {
        let (key, value) = (queue.name.clone(), encode(&queue));
        self.mem.put_queue(user, queue);
        self.record(user, Kind::Queue, key, Some(value));
    }

    fn remove_queue(&mut self, user: UserId, name: &str) -> Option<QueueInfo> {
        let removed = self.mem.remove_queue(user, name)?;
        self.record(user, Kind::Queue, removed.name.clone(), None);
        Some(removed)
    }

    fn schedule(&self, user: UserId, id: &str) -> Option<&Schedule> {
        self.mem.schedule(user, id)
    }

    fn schedule_mut(&mut self, user: UserId, id: &str) -> Option<&mut Schedule> {
        let s = self.mem.schedule_mut(user, id)?;
        self.touched_schedules.insert((user, s.id.clone()));
        Some(s)
    }

    fn schedules(&self, user: UserId) -> Vec<&Schedule> {
        self.mem.schedules(user)
    }

    fn schedule_count(&self, user: UserId) -> usize {
        self.mem.schedule_count(user)
    }

    fn put_schedule(&mut self, user: UserId, schedule: Schedule) {
        self.touched_schedules.insert((user, schedule.id.clone()));
        self.mem.put_schedule(user, schedule);
    }

    fn remove_schedule(&mut self, user: UserId, id: &str) -> Option<Schedule> {
        let removed = self.mem.remove_schedule(user, id)?;
        self.touched_schedules.remove(&(user, removed.id.clone()));
        self.record(user, Kind::Schedule, removed.id.clone(), None);
        Some(removed)
    }

    fn workflow_runs(&self, user: UserId) -> &Runs {
        self.mem.workflow_runs(user)
    }

    fn workflow_runs_mut(&mut self, user: UserId) -> &mut Runs {
        self.touched_runs[user.index()] = true;
        self.mem.workflow_runs_mut(user)
    }

    fn sizes(&self, user: UserId) -> Sizes {
        self.mem.sizes(user)
    }

    fn reset_user(&mut self, user: UserId) {
        let i = user.index();
        for (_, row) in self.rows[i].drain() {
            self.ops.push(Op::MsgDel {
                row,
                user: Self::u8(user),
            });
        }
        self.new_msgs[i].clear();
        self.touched_msgs[i].clear();
        self.touched_runs[i] = false;
        self.touched_schedules.retain(|(u, _)| *u != user);
        self.flows_written.retain(|(u, _), _| *u != user);
        self.ops.push(Op::UserReset {
            user: Self::u8(user),
        });
        self.mem.reset_user(user);
        self.mem.workflow_runs_mut(user).track_changes();
        self.log_floor[i] = self.mem.log_floor(user);
        self.dlq_floor[i] = self.mem.dlq_floor(user);
    }

    fn dedup_get(&self, user: UserId, key: &str, now: i64) -> Option<Published> {
        self.mem.dedup_get(user, key, now)
    }

    fn dedup_put(&mut self, user: UserId, key: String, until: i64, published: Published, now: i64) {
        self.ops.push(Op::Dedup {
            user: Self::u8(user),
            key: key.clone(),
            until,
            published: published.clone(),
            now,
        });
        self.mem.dedup_put(user, key, until, published, now);
    }

    fn put_flow(&mut self, user: UserId, key: &Arc<str>, encoded: Vec<u8>) {
        let slot = (user, key.clone());
        if self.flows_written.get(&slot) == Some(&encoded) {
            return;
        }
        self.flows_written.insert(slot, encoded.clone());
        self.record(user, Kind::FlowKey, key.clone(), Some(encoded));
    }

    fn end_step(&mut self) -> Option<u64> {
        for user in UserId::all() {
            let i = user.index();
            let u = Self::u8(user);
            for (id, ()) in self.new_msgs[i].drain() {
                if let Some(m) = self.mem.message(user, id)
                    && let Some(&row) = self.rows[i].get(&id)
                {
                    self.ops.push(Op::MsgPut {
                        row,
                        user: u,
                        spec: m.spec.clone(),
                        state: state_of(m),
                    });
                }
            }
            for (id, ()) in self.touched_msgs[i].drain() {
                if let Some(m) = self.mem.message(user, id)
                    && let Some(&row) = self.rows[i].get(&id)
                {
                    self.ops.push(Op::MsgState {
                        row,
                        state: state_of(m),
                    });
                }
            }
            if std::mem::take(&mut self.touched_runs[i]) {
                self.write_runs(user);
            }
        }
        for (user, id) in std::mem::take(&mut self.touched_schedules) {
            if let Some(s) = self.mem.schedule(user, &id) {
                let value = encode(s);
                self.record(user, Kind::Schedule, id, Some(value));
            }
        }
        self.named_rows.clear();
        if self.ops.is_empty() {
            return None;
        }
        Some(self.journal.push(&mut self.ops))
    }
}
