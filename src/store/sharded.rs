//! The map of unfinished messages, split in shards by id.
//!
//! A single hash map of a million messages resizes in one step that rehashes every entry
//! (tens of milliseconds under the engine lock: every API call and delivery waits), and
//! shrinking it after a drain costs the same. Split in [`SHARDS`] maps, each resize or
//! shrink touches a sixty-fourth of the entries. Ids are random, so the shards fill evenly.

use crate::ids::{IdMap, MessageId};

pub const SHARDS: usize = 64;

pub struct ShardedMap<V> {
    shards: [IdMap<V>; SHARDS],
    len: usize,
}

impl<V> Default for ShardedMap<V> {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| IdMap::default()),
            len: 0,
        }
    }
}

impl<V> ShardedMap<V> {
    fn shard(id: &MessageId) -> usize {
        id.shard(SHARDS)
    }

    pub fn insert(&mut self, id: MessageId, v: V) {
        if self.shards[Self::shard(&id)].insert(id, v).is_none() {
            self.len += 1;
        }
    }

    pub fn get(&self, id: &MessageId) -> Option<&V> {
        self.shards[Self::shard(id)].get(id)
    }

    pub fn get_mut(&mut self, id: &MessageId) -> Option<&mut V> {
        self.shards[Self::shard(id)].get_mut(id)
    }

    /// Removes an entry; gives a shard's memory back once it drained far below its size.
    pub fn remove(&mut self, id: &MessageId) -> Option<V> {
        let shard = &mut self.shards[Self::shard(id)];
        let removed = shard.remove(id);
        if removed.is_some() {
            self.len -= 1;
            if shard.capacity() > 1024 && shard.len() < shard.capacity() / 8 {
                shard.shrink_to(shard.len() * 2);
            }
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The keys of shard `i` (none past the last one).
    pub fn shard_keys(&self, i: usize) -> impl Iterator<Item = &MessageId> {
        self.shards.get(i).into_iter().flat_map(|s| s.keys())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_one_map() {
        let mut m = ShardedMap::default();
        let ids: Vec<MessageId> = (0..5000).map(|_| MessageId::random()).collect();
        for (i, id) in ids.iter().enumerate() {
            m.insert(*id, i);
        }
        m.insert(ids[0], 0);
        assert_eq!(m.len(), 5000);
        assert_eq!(m.get(&ids[42]), Some(&42));
        *m.get_mut(&ids[7]).unwrap() = 70;
        assert_eq!(m.remove(&ids[7]), Some(70));
        assert_eq!(m.remove(&ids[7]), None);
        assert_eq!(m.len(), 4999);
        let keys: usize = (0..SHARDS + 1).map(|i| m.shard_keys(i).count()).sum();
        assert_eq!(keys, 4999);
        for id in &ids {
            m.remove(id);
        }
        assert_eq!(m.len(), 0);
        assert!(m.shards.iter().all(|s| s.capacity() <= 1024 * 2));
    }
}
