//! An origin's idle connections: most recently parked first out, and
//! found by connection id in O(1), so that the expiry driver and a
//! connection task's end never scan the list under the pool's lock.
//!
//! Parking and taking the latest, which every request does, are a `Vec`
//! push and pop and one insert and removal in an id map with a trivial
//! hash. Taking a connection out of the middle leaves a hole; holes at
//! the top are trimmed at once, and the rest are compacted away once they
//! outnumber the connections, which keeps every operation amortised O(1).

use std::collections::HashMap;
use std::time::Instant;

use super::Conn;
use super::key::BuildU64Hasher;

/// Capacity an emptied list keeps: enough for a busy origin's usual
/// handful, so that a connection going out and back in does not allocate.
const KEEP_CAPACITY: usize = 16;

/// An idle connection in the pool.
pub(super) struct Idle<B> {
    pub(super) conn: Conn<B>,
    /// When the last byte of its last response came off the socket.
    pub(super) since: Instant,
    pub(super) retire_at: Instant,
}

/// What an [`IdleList`] holds: anything with a connection id.
pub(super) trait Parked {
    fn id(&self) -> u64;
}

impl<B> Parked for Idle<B> {
    fn id(&self) -> u64 {
        self.conn.id
    }
}

/// Idle connections in the order they were parked in (holes where one was
/// taken out of the middle), and each one's place by connection id.
pub(super) struct IdleList<T> {
    slots: Vec<Option<T>>,
    place: HashMap<u64, usize, BuildU64Hasher>,
    /// Steps taken over slots, for the complexity test.
    #[cfg(test)]
    steps: usize,
}

impl<T> Default for IdleList<T> {
    fn default() -> Self {
        IdleList {
            slots: Vec::new(),
            place: HashMap::default(),
            #[cfg(test)]
            steps: 0,
        }
    }
}

impl<T: Parked> IdleList<T> {
    pub(super) fn len(&self) -> usize {
        self.place.len()
    }

    /// Parks `idle` as the most recently used.
    pub(super) fn push(&mut self, idle: T) {
        // A connection is parked once at a time; be safe anyway.
        self.remove(idle.id());
        self.place.insert(idle.id(), self.slots.len());
        self.slots.push(Some(idle));
    }

    /// Takes the most recently used.
    pub(super) fn pop_latest(&mut self) -> Option<T> {
        // The top slot is never a hole (`remove` trims them).
        let idle = self.slots.pop()??;
        self.place.remove(&idle.id());
        self.trim();
        Some(idle)
    }

    /// The connection `id`, if it is parked here.
    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let at = *self.place.get(&id)?;
        self.slots.get_mut(at)?.as_mut()
    }

    /// Takes the connection `id` out, if it is parked here.
    pub(super) fn remove(&mut self, id: u64) -> Option<T> {
        let at = self.place.remove(&id)?;
        let idle = self.slots.get_mut(at)?.take();
        self.trim();
        let holes = self.slots.len() - self.place.len();
        if holes > self.place.len().max(KEEP_CAPACITY) {
            self.compact();
        }
        idle
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten()
    }

    /// Drops the holes at the top, and gives back what a burst grew once
    /// the list is empty.
    fn trim(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
            self.step();
        }
        if self.slots.is_empty() && self.slots.capacity() > KEEP_CAPACITY {
            self.slots = Vec::new();
            self.place = HashMap::default();
        }
    }

    /// Closes every hole, keeping the order; O(slots), done only after as
    /// many removals.
    fn compact(&mut self) {
        #[cfg(test)]
        {
            self.steps += self.slots.len();
        }
        self.slots.retain(Option::is_some);
        for (at, idle) in self.slots.iter().enumerate() {
            if let Some(idle) = idle {
                self.place.insert(idle.id(), at);
            }
        }
        self.slots.shrink_to(self.slots.len().max(KEEP_CAPACITY));
        self.place.shrink_to(self.place.len().max(KEEP_CAPACITY));
    }

    #[inline]
    fn step(&mut self) {
        #[cfg(test)]
        {
            self.steps += 1;
        }
    }
}

#[cfg(test)]
#[path = "idle_tests.rs"]
mod tests;
