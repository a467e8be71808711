//! An origin's idle connections: most recently parked first out, and
//! found by connection id in O(1), so that the expiry driver and a
//! connection task's end never scan the list under the pool's lock.
//!
//! Parking and taking the latest, which every request does, are a `Vec`
//! push and pop. A list that has grown past a handful of slots also keeps
//! an id map with a trivial hash (one insert and removal per request); a
//! shorter one is scanned instead. Taking a connection out of the middle
//! leaves a hole; holes at the top are trimmed at once, and the rest are
//! compacted away once they outnumber the connections, which keeps every
//! operation amortised O(1).

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
    /// When it stops being handed out.
    pub(super) retire_at: Instant,
    /// When the pool closes it, if the server has not: until then, past
    /// `retire_at`, it is watched for the server's close (see
    /// [`IdleEstimator::watch_after`](freshpool_expiry::IdleEstimator::watch_after)).
    /// Its queue entry is for this time.
    pub(super) watch_until: Instant,
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

/// How many slots a list scans for a connection id before it keeps an id
/// map: an origin's handful of idle connections (the usual case: most
/// lists hold none or one between requests) costs no map operations.
const SCAN: usize = 16;

/// Idle connections in the order they were parked in (holes where one was
/// taken out of the middle), and, once the list grew past [`SCAN`] slots,
/// each one's place by connection id.
pub(super) struct IdleList<T> {
    slots: Vec<Option<T>>,
    /// Kept from the first time the list reaches [`SCAN`] slots until it
    /// empties.
    place: Option<HashMap<u64, usize, BuildU64Hasher>>,
    len: usize,
    /// Steps taken over slots, for the complexity test.
    #[cfg(test)]
    steps: usize,
}

impl<T> Default for IdleList<T> {
    fn default() -> Self {
        IdleList {
            slots: Vec::new(),
            place: None,
            len: 0,
            #[cfg(test)]
            steps: 0,
        }
    }
}

impl<T: Parked> IdleList<T> {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Parks `idle` as the most recently used.
    pub(super) fn push(&mut self, idle: T) {
        // A connection is parked once at a time; be safe anyway.
        self.remove(idle.id());
        if self.place.is_none() && self.slots.len() >= SCAN {
            self.index();
        }
        if let Some(place) = &mut self.place {
            place.insert(idle.id(), self.slots.len());
        }
        self.slots.push(Some(idle));
        self.len += 1;
    }

    /// Takes the most recently used.
    pub(super) fn pop_latest(&mut self) -> Option<T> {
        // The top slot is never a hole (`remove` trims them).
        let idle = self.slots.pop()??;
        if let Some(place) = &mut self.place {
            place.remove(&idle.id());
        }
        self.len -= 1;
        self.trim();
        Some(idle)
    }

    /// The connection `id`, if it is parked here.
    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut T> {
        let at = self.find(id)?;
        self.slots.get_mut(at)?.as_mut()
    }

    /// Takes the connection `id` out, if it is parked here.
    pub(super) fn remove(&mut self, id: u64) -> Option<T> {
        let at = self.find(id)?;
        if let Some(place) = &mut self.place {
            place.remove(&id);
        }
        let idle = self.slots.get_mut(at)?.take();
        self.len -= 1;
        self.trim();
        let holes = self.slots.len() - self.len;
        if holes > self.len.max(KEEP_CAPACITY) {
            self.compact();
        }
        idle
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten()
    }

    /// Where the connection `id` is: from the map if there is one, else by
    /// scanning at most [`SCAN`] slots.
    fn find(&mut self, id: u64) -> Option<usize> {
        if let Some(place) = &self.place {
            return place.get(&id).copied();
        }
        #[cfg(test)]
        {
            self.steps += self.slots.len();
        }
        self.slots
            .iter()
            .rposition(|slot| slot.as_ref().is_some_and(|idle| idle.id() == id))
    }

    /// Makes the id map of a list grown past [`SCAN`] slots.
    fn index(&mut self) {
        #[cfg(test)]
        {
            self.steps += self.slots.len();
        }
        let place = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(at, slot)| slot.as_ref().map(|idle| (idle.id(), at)))
            .collect();
        self.place = Some(place);
    }

    /// Drops the holes at the top, and gives back what a burst grew once
    /// the list is empty.
    fn trim(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
            self.step();
        }
        if self.slots.is_empty() {
            self.place = None;
            if self.slots.capacity() > KEEP_CAPACITY {
                self.slots = Vec::new();
            }
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
        if let Some(place) = &mut self.place {
            for (at, idle) in self.slots.iter().enumerate() {
                if let Some(idle) = idle {
                    place.insert(idle.id(), at);
                }
            }
            place.shrink_to(self.len.max(KEEP_CAPACITY));
        }
        self.slots.shrink_to(self.slots.len().max(KEEP_CAPACITY));
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
