//! An origin's idle connections: most recently parked first out, and
//! found by connection id in O(log n), so that the expiry driver and a
//! connection task's end never scan the list under the pool's lock.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::Conn;

/// An idle connection in the pool.
pub(super) struct Idle<B> {
    pub(super) conn: Conn<B>,
    /// When the last byte of its last response came off the socket.
    pub(super) since: Instant,
    pub(super) retire_at: Instant,
}

/// Idle connections by the order they were parked in, and that order by
/// connection id. Neither map allocates while empty, and both give their
/// memory back as they empty.
pub(super) struct IdleList<B> {
    by_order: BTreeMap<u64, Idle<B>>,
    order_of: HashMap<u64, u64>,
    next: u64,
}

impl<B> Default for IdleList<B> {
    fn default() -> Self {
        IdleList {
            by_order: BTreeMap::new(),
            order_of: HashMap::new(),
            next: 0,
        }
    }
}

impl<B> IdleList<B> {
    pub(super) fn len(&self) -> usize {
        self.by_order.len()
    }

    /// Parks `idle` as the most recently used.
    pub(super) fn push(&mut self, idle: Idle<B>) {
        let order = self.next;
        self.next += 1;
        if let Some(stale) = self.order_of.insert(idle.conn.id, order) {
            // A connection is parked once at a time; be safe anyway.
            self.by_order.remove(&stale);
        }
        self.by_order.insert(order, idle);
    }

    /// Takes the most recently used.
    pub(super) fn pop_latest(&mut self) -> Option<Idle<B>> {
        let (_, idle) = self.by_order.pop_last()?;
        self.forget(idle.conn.id);
        Some(idle)
    }

    /// The connection `id`, if it is parked here.
    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut Idle<B>> {
        let order = self.order_of.get(&id)?;
        self.by_order.get_mut(order)
    }

    /// Takes the connection `id` out, if it is parked here.
    pub(super) fn remove(&mut self, id: u64) -> Option<Idle<B>> {
        let order = self.order_of.get(&id).copied()?;
        self.forget(id);
        self.by_order.remove(&order)
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Idle<B>> {
        self.by_order.values_mut()
    }

    fn forget(&mut self, id: u64) {
        self.order_of.remove(&id);
        if self.order_of.is_empty() {
            // Give back what a burst grew.
            self.order_of = HashMap::new();
        }
    }
}
