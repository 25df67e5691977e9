//! A map of bounded size that drops its least recently used entry to make
//! room. Every operation is O(1): a hash lookup and a few index updates in
//! a doubly linked list kept in a slab, never a scan, so a client that
//! sprays new keys costs the same per request as one that does not.

use std::collections::HashMap;
use std::hash::Hash;

/// No slot: the end of the list.
const NIL: usize = usize::MAX;

struct Slot<K, V> {
    key: K,
    value: V,
    /// The slot used just more recently, or [`NIL`].
    prev: usize,
    /// The slot used just less recently, or [`NIL`].
    next: usize,
}

/// At most `capacity` entries, in order of use.
pub struct Lru<K, V> {
    index: HashMap<K, usize>,
    slots: Vec<Slot<K, V>>,
    /// The most recently used slot.
    head: usize,
    /// The least recently used slot: the next to go.
    tail: usize,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    /// An empty map of at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            index: HashMap::new(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.max(1),
        }
    }

    /// How many entries it holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// The value of `key`, which becomes the most recently used.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = *self.index.get(key)?;
        self.touch(i);
        Some(&mut self.slots[i].value)
    }

    /// Set `key` to `value`, as the most recently used entry. When the map
    /// is full and `key` is new, the least recently used entry makes room:
    /// its key is returned.
    pub fn insert(&mut self, key: K, value: V) -> Option<K> {
        if let Some(&i) = self.index.get(&key) {
            self.slots[i].value = value;
            self.touch(i);
            return None;
        }
        if self.slots.len() < self.capacity {
            let i = self.slots.len();
            self.slots.push(Slot {
                key: key.clone(),
                value,
                prev: NIL,
                next: NIL,
            });
            self.index.insert(key, i);
            self.push_front(i);
            return None;
        }
        let i = self.tail;
        self.unlink(i);
        let slot = &mut self.slots[i];
        let evicted = std::mem::replace(&mut slot.key, key.clone());
        slot.value = value;
        self.index.remove(&evicted);
        self.index.insert(key, i);
        self.push_front(i);
        Some(evicted)
    }

    /// Make slot `i` the most recently used.
    fn touch(&mut self, i: usize) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn unlink(&mut self, i: usize) {
        let (prev, next) = (self.slots[i].prev, self.slots[i].next);
        match prev {
            NIL => self.head = next,
            p => self.slots[p].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n].prev = prev,
        }
    }

    fn push_front(&mut self, i: usize) {
        self.slots[i].prev = NIL;
        self.slots[i].next = self.head;
        match self.head {
            NIL => self.tail = i,
            h => self.slots[h].prev = i,
        }
        self.head = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_past_the_capacity_evicts_exactly_the_least_recently_used() {
        let mut lru = Lru::new(3);
        for k in 0..3 {
            assert_eq!(lru.insert(k, k * 10), None);
        }
        // 0 is used again, so 1 is now the least recently used.
        assert_eq!(lru.get_mut(&0), Some(&mut 0));
        assert_eq!(lru.insert(3, 30), Some(1));
        assert_eq!(lru.get_mut(&1), None);
        // Setting a present key evicts nothing and makes it recent.
        assert_eq!(lru.insert(2, 21), None);
        assert_eq!(lru.insert(4, 40), Some(0));
        assert_eq!(lru.insert(5, 50), Some(3));
        assert_eq!(lru.get_mut(&2), Some(&mut 21));
        assert_eq!(lru.len(), 3);
    }

    #[test]
    fn a_spray_of_keys_costs_one_eviction_each_and_never_grows_the_map() {
        const CAP: usize = 64;
        let mut lru = Lru::new(CAP);
        let mut evictions = 0;
        for k in 0..CAP * 100 {
            // The work of each insert: at most one entry leaves, and it is
            // the oldest: the key inserted CAP keys ago.
            if let Some(evicted) = lru.insert(k, ()) {
                assert_eq!(evicted, k - CAP);
                evictions += 1;
            }
            assert!(lru.len() <= CAP);
        }
        assert_eq!(lru.len(), CAP);
        assert_eq!(evictions, CAP * 99);
    }
}
