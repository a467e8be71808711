//! The pool's origins: those with connections, and a bounded memory of
//! those with none left.
//!
//! An origin with no connection open or connecting, no idle connection and
//! no waiter leaves the live map (its idle-list and waiter capacity go with
//! it). Its estimate and counters are remembered for the
//! [`REMEMBERED`] most recently emptied origins, so that one that comes
//! back keeps what was learned about its server; beyond that, only its
//! counts survive, in the totals.

use std::collections::VecDeque;

use freshpool_expiry::IdleEstimator;

use std::collections::hash_map::Entry;

use super::key::OriginMap;
use super::{OriginKey, OriginState};
use crate::stats::{Counters, Event, OriginStats};

/// How many origins with nothing left are remembered.
pub(crate) const REMEMBERED: usize = 256;

/// What is kept of an origin with nothing left.
pub(super) struct Remembered {
    pub(super) estimator: IdleEstimator,
    pub(super) counters: Counters,
}

pub(super) struct Origins<B> {
    live: OriginMap<OriginState<B>>,
    remembered: OriginMap<Remembered>,
    /// Remembered origins, oldest first (a key may also be stale: its
    /// origin came back, or was emptied again later).
    order: VecDeque<OriginKey>,
    /// The counts of origins no longer remembered, and of events for an
    /// origin already gone.
    forgotten: OriginStats,
    stray: Counters,
}

impl<B> Default for Origins<B> {
    fn default() -> Self {
        Origins {
            live: OriginMap::default(),
            remembered: OriginMap::default(),
            order: VecDeque::new(),
            forgotten: Counters::default().snapshot(),
            stray: Counters::default(),
        }
    }
}

impl<B> Origins<B> {
    pub(super) fn get_mut(&mut self, key: &OriginKey) -> Option<&mut OriginState<B>> {
        self.live.get_mut(key)
    }

    /// The live record of `key`, made with what was remembered of it if
    /// there is none. One lookup: the price is a clone of the key, a
    /// reference count, about what a second probe costs.
    pub(super) fn get_or_insert(
        &mut self,
        key: &OriginKey,
        make: impl FnOnce(Option<Remembered>) -> OriginState<B>,
    ) -> &mut OriginState<B> {
        match self.live.entry(key.clone()) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => entry.insert(make(self.remembered.remove(key))),
        }
    }

    /// Counts `event` for an origin that is not live.
    pub(super) fn count_absent(&mut self, key: &OriginKey, event: Event) {
        match self.remembered.get_mut(key) {
            Some(remembered) => remembered.counters.bump(event),
            None => self.stray.bump(event),
        }
    }

    /// Moves `key` out of the live map if nothing is left of it.
    pub(super) fn forget_if_empty(&mut self, key: &OriginKey) {
        let Some(origin) = self.live.get_mut(key) else {
            return;
        };
        origin.h2.retain(|conn| !conn.is_unusable());
        let empty = origin.open == 0
            && origin.idle.len() == 0
            && origin.waiters.is_empty()
            && origin.h2.is_empty()
            && !origin.h2_connecting
            && origin.h2_waiters.is_empty();
        if !empty {
            return;
        }
        let Some((key, origin)) = self.live.remove_entry(key) else {
            return;
        };
        self.remembered.insert(
            key.clone(),
            Remembered {
                estimator: origin.estimator,
                counters: origin.counters,
            },
        );
        self.order.push_back(key);
        while self.remembered.len() > REMEMBERED || self.order.len() > 2 * REMEMBERED {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if self.order.contains(&oldest) {
                // Emptied again later: that later place counts.
                continue;
            }
            if let Some(gone) = self.remembered.remove(&oldest) {
                self.forgotten.accumulate(&gone.counters.snapshot());
            }
        }
        if self.live.is_empty() {
            // Give back what a burst of origins grew.
            self.live = OriginMap::default();
        }
    }

    pub(super) fn live(&self) -> impl Iterator<Item = (&OriginKey, &OriginState<B>)> {
        self.live.iter()
    }

    pub(super) fn live_mut(&mut self) -> impl Iterator<Item = (&OriginKey, &mut OriginState<B>)> {
        self.live.iter_mut()
    }

    pub(super) fn remembered(&self) -> impl Iterator<Item = (&OriginKey, &Remembered)> {
        self.remembered.iter()
    }

    /// The counts of origins no longer listed.
    pub(super) fn forgotten(&self) -> OriginStats {
        let mut stats = self.stray.snapshot();
        stats.accumulate(&self.forgotten);
        stats
    }
}
