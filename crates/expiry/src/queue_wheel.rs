//! The far part of an [`ExpiryQueue`](crate::ExpiryQueue)'s schedule: a
//! hierarchical timing wheel of lazily deleted entries.
//!
//! Time is counted in ticks of 2²⁰ ns (about 1.05 ms). The wheel has
//! [`LEVELS`] levels of 64 buckets; a bucket of level `l` spans 64ˡ ticks,
//! so level 0 covers about 67 ms, level 1 4.3 s, level 2 4.6 min, level 3
//! 4.9 h, and the top level the whole `i64` nanosecond range.
//!
//! As in tokio's timer wheel, an entry due at tick `t` is filed relative to
//! the wheel's current tick `elapsed` (always `t > elapsed`): at the level
//! of the highest 6-bit digit in which `t` and `elapsed` differ, in the
//! bucket named by `t`'s digit at that level. Every entry of a lower level
//! is then due before every entry of a higher level, and within a level the
//! buckets are in slot order, so the earliest bucket is the lowest set bit
//! of the lowest non-empty level's occupancy mask.
//!
//! The wheel stores no deadlines, only what it needs to file an entry: an
//! [`Entry`] is a slab slot, the tag of the schedule entry it was filed as,
//! and the low 32 bits of its tick (12 bytes). When the queue takes the
//! earliest bucket out with [`Wheel::pop_earliest`], the wheel advances to
//! the bucket's first tick; an entry of the bucket shares every digit from
//! the bucket's level up with that tick, so its low bits tell its whole
//! tick ([`Wheel::tick_of`], up to level 5) and it goes one level down
//! without a look at the slab. Only entries due at the new current tick
//! are checked and handed to the queue's exact near heap. Stale entries
//! (their slot was removed or reset since) are never looked for: they are
//! dropped when they reach the current tick or when the queue compacts the
//! wheel with [`Wheel::retain`].

use std::mem;

/// log₂ of the tick length in nanoseconds.
const TICK_SHIFT: u32 = 20;

/// log₂ of the number of buckets per level.
const LEVEL_BITS: u32 = 6;

/// Buckets per level.
const SLOTS: usize = 1 << LEVEL_BITS;

/// Entries a bucket makes room for when it first grows.
const MIN_BUCKET: usize = 4;

/// Room an emptied bucket may keep for its next entries.
const KEPT_EMPTY: usize = 64;

/// Enough levels for every tick an `i64` of nanoseconds can name.
const LEVELS: usize = (64 - TICK_SHIFT).div_ceil(LEVEL_BITS) as usize;

/// The tick a deadline falls in. `when` is in signed nanoseconds; the map
/// preserves order (flipping the sign bit turns `i64` order into `u64`
/// order).
pub(super) fn tick(when: i64) -> u64 {
    (when.cast_unsigned() ^ (1 << 63)) >> TICK_SHIFT
}

/// The level an entry due at `tick` is filed at when the current tick is
/// `elapsed`: the highest base-64 digit in which the two differ.
fn level_between(tick: u64, elapsed: u64) -> usize {
    let differing = (tick ^ elapsed).max(1);
    ((63 - differing.leading_zeros()) / LEVEL_BITS) as usize
}

/// The base-64 digit of `tick` at `level`: its bucket at that level.
fn digit(tick: u64, level: usize) -> usize {
    (tick >> (level as u32 * LEVEL_BITS)) as usize & (SLOTS - 1)
}

/// One scheduled slab slot: which slot, the tag it had when filed, and
/// enough of its tick to file it again one level lower without a look at
/// the slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    /// Index of the slab slot.
    pub(super) slot: u32,
    /// The slot's tag when this entry was filed; the entry is live while
    /// the slot still carries it.
    pub(super) tag: u32,
    /// The low 32 bits of the tick the entry is due at.
    low: u32,
}

/// A hierarchical timing wheel of [`Entry`]s; see the module docs.
#[derive(Debug)]
pub(super) struct Wheel {
    /// `LEVELS × SLOTS` buckets, level by level; allocated on first use.
    buckets: Vec<Vec<Entry>>,
    /// Per level, bit `s` set when bucket `s` holds at least one entry.
    occupied: [u64; LEVELS],
    /// The wheel's current tick: every entry in the wheel is due after it.
    elapsed: u64,
    /// Entries held, live and stale.
    len: usize,
    /// Sum of the buckets' capacities, in entries.
    capacity: usize,
    /// The bucket the latest insert filed into.
    last: usize,
}

impl Wheel {
    /// An empty wheel; it does not allocate until the first insert.
    pub(super) const fn new() -> Self {
        Wheel {
            buckets: Vec::new(),
            occupied: [0; LEVELS],
            elapsed: 0,
            len: 0,
            capacity: 0,
            last: 0,
        }
    }

    /// Entries held, live and stale.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Whether the wheel holds no entry at all.
    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The wheel's current tick.
    pub(super) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Moves the current tick anywhere, which is only meaningful for an
    /// empty wheel: entries are filed relative to the current tick.
    pub(super) fn restart(&mut self, elapsed: u64) {
        debug_assert!(self.is_empty());
        self.elapsed = elapsed;
    }

    /// Files the schedule entry `(slot, tag)`, due at `tick`, which must be
    /// after the current tick.
    pub(super) fn insert(&mut self, tick: u64, slot: u32, tag: u32) {
        let entry = Entry {
            slot,
            tag,
            low: tick as u32,
        };
        debug_assert!(tick > self.elapsed);
        let level = level_between(tick, self.elapsed);
        let index = level * SLOTS + digit(tick, level);
        if self.buckets.is_empty() {
            self.buckets = (0..LEVELS * SLOTS).map(|_| Vec::new()).collect();
        }
        let bucket = &mut self.buckets[index];
        if bucket.len() == bucket.capacity() {
            // Grow by a quarter rather than double: the buckets hold most of
            // the queue's schedule, stale entries included, and doubling
            // would leave up to half of that memory unused.
            let capacity = bucket.capacity();
            bucket.reserve_exact((capacity / 4).max(MIN_BUCKET));
            self.capacity += bucket.capacity() - capacity;
        }
        bucket.push(entry);
        self.occupied[level] |= 1 << (index % SLOTS);
        self.len += 1;
        self.last = index;
    }

    /// Takes the schedule entry `(slot, tag)` back out if the latest
    /// [`insert`](Self::insert) filed it and it is still the last of its
    /// bucket: an entry removed right after it was filed then leaves
    /// nothing stale behind. Returns whether it did.
    pub(super) fn unpush(&mut self, slot: u32, tag: u32) -> bool {
        let Some(bucket) = self.buckets.get_mut(self.last) else {
            return false;
        };
        if !bucket
            .last()
            .is_some_and(|e| e.slot == slot && e.tag == tag)
        {
            return false;
        }
        bucket.pop();
        self.len -= 1;
        if bucket.is_empty() {
            self.occupied[self.last / SLOTS] &= !(1 << (self.last % SLOTS));
            if bucket.capacity() > KEPT_EMPTY {
                self.capacity -= bucket.capacity();
                *bucket = Vec::new();
            }
        }
        true
    }

    /// Moves the current tick back to `to`, before it. Entries are filed by
    /// the highest digit in which their tick differs from the current one;
    /// going back to `to` changes that digit only for the entries of the
    /// levels below the highest digit in which `to` and the current tick
    /// differ: they all move to that level's bucket for the current tick.
    /// Costs a move per such entry, and no deadline lookups.
    pub(super) fn rewind(&mut self, to: u64) {
        debug_assert!(to < self.elapsed);
        let top = level_between(to, self.elapsed);
        let target = top * SLOTS + digit(self.elapsed, top);
        for level in 0..top {
            let mut mask = mem::take(&mut self.occupied[level]);
            while mask != 0 {
                let slot = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let mut bucket = mem::take(&mut self.buckets[level * SLOTS + slot]);
                let into = &mut self.buckets[target];
                let capacity = into.capacity() + bucket.capacity();
                if into.is_empty() {
                    *into = bucket;
                } else {
                    into.reserve_exact(bucket.len());
                    into.append(&mut bucket);
                }
                self.capacity = self.capacity + into.capacity() - capacity;
                self.occupied[top] |= 1 << digit(self.elapsed, top);
            }
        }
        self.elapsed = to;
    }

    /// Takes the earliest non-empty bucket out of the wheel and advances
    /// the current tick to that bucket's first tick. Every entry returned
    /// is due at or after the new current tick; every entry left in the
    /// wheel is due after the bucket's last tick. Returns the entries and
    /// the bucket's level, or `None` if the wheel is empty.
    pub(super) fn pop_earliest(&mut self) -> Option<(Vec<Entry>, usize)> {
        let level = self.occupied.iter().position(|&mask| mask != 0)?;
        let slot = self.occupied[level].trailing_zeros();
        self.occupied[level] &= !(1 << slot);
        let shift = level as u32 * LEVEL_BITS;
        let above = shift + LEVEL_BITS;
        // `above` is at most 48: ticks have 44 bits.
        self.elapsed = (self.elapsed >> above << above) | (u64::from(slot) << shift);
        let bucket = mem::take(&mut self.buckets[level * SLOTS + slot as usize]);
        self.len -= bucket.len();
        self.capacity -= bucket.capacity();
        Some((bucket, level))
    }

    /// The tick of an entry of the bucket of `level` that
    /// [`pop_earliest`](Self::pop_earliest) just returned, if the entry
    /// itself tells: it shares every digit from `level` up with the current
    /// tick, so its 32 low bits are enough up to level 5 (entries due less
    /// than 2³⁶ ticks, about 2.3 years, ahead).
    pub(super) fn tick_of(&self, level: usize, entry: &Entry) -> Option<u64> {
        (level as u32 * LEVEL_BITS <= u32::BITS)
            .then(|| (self.elapsed >> u32::BITS << u32::BITS) | u64::from(entry.low))
    }

    /// Keeps only the entries for which `live` returns `true`. A bucket
    /// left with more than twice the room it needs keeps a quarter more
    /// than it needs and gives the rest back, so that the wheel's memory
    /// follows its entries even when they move between buckets.
    pub(super) fn retain(&mut self, mut live: impl FnMut(&Entry) -> bool) {
        for level in 0..LEVELS {
            let mut mask = self.occupied[level];
            while mask != 0 {
                let slot = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let bucket = &mut self.buckets[level * SLOTS + slot];
                let (len, capacity) = (bucket.len(), bucket.capacity());
                bucket.retain(&mut live);
                if bucket.is_empty() {
                    *bucket = Vec::new();
                    self.occupied[level] &= !(1 << slot);
                } else if bucket.capacity() > 2 * bucket.len() + MIN_BUCKET {
                    bucket.shrink_to(bucket.len() + bucket.len() / 4);
                }
                self.len -= len - bucket.len();
                self.capacity = self.capacity - capacity + bucket.capacity();
            }
        }
    }

    /// Drops every entry and gives back the buckets' memory.
    pub(super) fn clear(&mut self) {
        *self = Wheel::new();
    }

    /// Bytes of heap memory the wheel has allocated.
    pub(super) fn allocated_bytes(&self) -> usize {
        self.capacity * size_of::<Entry>() + self.buckets.capacity() * size_of::<Vec<Entry>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entry `insert(tick, slot, 0)` files.
    fn entry(slot: u32, tick: u64) -> Entry {
        Entry {
            slot,
            tag: 0,
            low: tick as u32,
        }
    }

    #[test]
    fn tick_preserves_order_over_the_whole_range() {
        let samples = [
            i64::MIN,
            -1 << 40,
            -1,
            0,
            1,
            (1 << 20) - 1,
            1 << 20,
            i64::MAX,
        ];
        for pair in samples.windows(2) {
            assert!(tick(pair[0]) <= tick(pair[1]), "{pair:?}");
        }
        assert_eq!(tick(0) + 1, tick(1 << 20));
        assert_eq!(tick(i64::MAX), (1 << 44) - 1);
        assert_eq!(LEVELS, 8);
    }

    #[test]
    fn pops_buckets_earliest_first_across_levels() {
        let mut wheel = Wheel::new();
        wheel.restart(1000);
        // Level 0, level 1, level 3 and the top level.
        let ticks = [1001, 1000 + 64, 1000 + 64 * 64 * 64, (1 << 44) - 1];
        for (slot, &t) in ticks.iter().enumerate().rev() {
            wheel.insert(t, slot as u32, 0);
        }
        assert_eq!(wheel.len(), 4);
        for (slot, &t) in ticks.iter().enumerate() {
            let (bucket, _) = wheel.pop_earliest().expect("a bucket is left");
            assert_eq!(bucket, [entry(slot as u32, t)]);
            // The new current tick is at or before the entry, after the
            // previous current tick.
            assert!(wheel.elapsed() <= t);
        }
        assert!(wheel.pop_earliest().is_none());
        assert!(wheel.is_empty());
    }

    /// Drains the wheel the way the queue does: takes the earliest bucket
    /// and files its entries again, one level lower, until each comes out
    /// at its own tick. `ticks[slot]` is the tick of the entry for `slot`.
    fn drain(wheel: &mut Wheel, ticks: &[u64]) -> Vec<u64> {
        let mut order = Vec::new();
        while let Some((bucket, level)) = wheel.pop_earliest() {
            let elapsed = wheel.elapsed();
            for e in bucket {
                let t = ticks[e.slot as usize];
                if let Some(told) = wheel.tick_of(level, &e) {
                    assert_eq!(told, t, "the entry tells its tick");
                }
                if t == elapsed {
                    order.push(t);
                } else {
                    wheel.insert(t, e.slot, e.tag);
                }
            }
        }
        order
    }

    /// Asserts that every entry sits where `insert` would file it now.
    fn assert_filed(wheel: &Wheel, ticks: &[u64]) {
        for (index, bucket) in wheel.buckets.iter().enumerate() {
            let (level, slot) = (index / SLOTS, index % SLOTS);
            assert_eq!(wheel.occupied[level] & (1 << slot) != 0, !bucket.is_empty());
            for e in bucket {
                let t = ticks[e.slot as usize];
                assert!(t > wheel.elapsed);
                assert_eq!(
                    (level_between(t, wheel.elapsed), digit(t, level)),
                    (level, slot)
                );
            }
        }
    }

    fn sorted(ticks: &[u64]) -> Vec<u64> {
        let mut sorted = ticks.to_vec();
        sorted.sort_unstable();
        sorted
    }

    #[test]
    fn cascading_keeps_order_within_a_high_bucket() {
        let mut wheel = Wheel::new();
        wheel.restart(0);
        // All in one level-2 bucket, in no particular order.
        let ticks = [5000, 4100, 4096, 4097, 4096 + 63, 4096 + 64, 8191];
        for (slot, &t) in ticks.iter().enumerate() {
            wheel.insert(t, slot as u32, 0);
        }
        assert_eq!(drain(&mut wheel, &ticks), sorted(&ticks));
    }

    #[test]
    fn rewinding_refiles_the_levels_below_the_change() {
        let start = 100_000;
        // Due after `start`, at levels 0, 1 and 2.
        let after = [start + 1, start + 33, start + 70, start + 5000];
        // Due between the rewound tick and `start`.
        let before = [99_001, 99_500, 99_999, start];
        for to in [99_000, start - 1] {
            let mut wheel = Wheel::new();
            wheel.restart(start);
            let mut ticks = after.to_vec();
            for (slot, &t) in after.iter().enumerate() {
                wheel.insert(t, slot as u32, 0);
            }
            wheel.rewind(to);
            assert_eq!(wheel.elapsed(), to);
            assert_eq!(wheel.len(), after.len());
            assert_filed(&wheel, &ticks);
            for &t in before.iter().filter(|&&t| t > to) {
                wheel.insert(t, ticks.len() as u32, 0);
                ticks.push(t);
            }
            assert_filed(&wheel, &ticks);
            assert_eq!(drain(&mut wheel, &ticks), sorted(&ticks), "rewound to {to}");
        }
    }

    #[test]
    fn unpush_takes_back_only_the_latest_entry() {
        let mut wheel = Wheel::new();
        wheel.insert(10, 1, 0);
        wheel.insert(10, 2, 0);
        assert!(!wheel.unpush(1, 0), "not the latest");
        assert!(!wheel.unpush(2, 1), "another tag");
        assert!(wheel.unpush(2, 0));
        assert!(!wheel.unpush(2, 0), "already taken back");
        assert_eq!(wheel.len(), 1);
        wheel.insert(5000, 3, 0);
        assert!(wheel.unpush(3, 0));
        assert_eq!(wheel.pop_earliest(), Some((vec![entry(1, 10)], 0)));
        assert!(
            wheel.pop_earliest().is_none(),
            "an emptied bucket is not occupied"
        );
    }

    #[test]
    fn retain_tracks_length_and_capacity() {
        let mut wheel = Wheel::new();
        for slot in 0..1000 {
            wheel.insert(1 + u64::from(slot % 300), slot, 0);
        }
        assert_eq!(wheel.len(), 1000);
        wheel.retain(|e| e.slot % 10 == 0);
        assert_eq!(wheel.len(), 100);
        let held: usize = wheel.buckets.iter().map(Vec::capacity).sum();
        assert_eq!(wheel.capacity, held);
        wheel.retain(|_| false);
        assert!(wheel.is_empty());
        assert_eq!(wheel.capacity, 0);
        assert_eq!(wheel.occupied, [0; LEVELS]);
        assert!(wheel.pop_earliest().is_none());
    }
}
