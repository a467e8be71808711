//! A sans-IO deadline queue: which tracked item expires next?
//!
//! # Structure
//!
//! [`ExpiryQueue`] keeps its values in a generational slab and schedules
//! them in two parts that both delete lazily: a hierarchical timing wheel
//! for everything after the wheel's current tick, and a small exact heap
//! for everything up to it.
//!
//! - The **slab** (`Vec<Slot<T>>`) owns the values and their exact
//!   deadlines. A [`Key`] is a slot index plus the slot's generation; the
//!   generation is bumped whenever the slot is freed, so a stale key never
//!   reaches the entry that reuses its slot. Free slots form an intrusive
//!   LIFO list, so an insert right after a remove reuses the slot the
//!   remove just touched, still in cache.
//! - The **tags** (`Vec<u32>`, parallel to the slab) say which schedule
//!   entry of a slot is live. A schedule entry names a slot and the slot's
//!   tag when it was filed; `reset` and `remove` bump the tag, which makes
//!   the slot's earlier schedule entries *stale* without finding them.
//!   Telling live from stale reads 4 bytes of a 4 MB array (at a million
//!   entries), not the slot itself.
//! - The **wheel** (`queue_wheel.rs`) files 12-byte entries (slot, tag, low
//!   32 bits of the tick) in 8 levels of 64 buckets, as tokio's timer
//!   wheel does, over ticks of 2²⁰ ns (about 1 ms): level 0 spans 67 ms,
//!   level 1 4.3 s, level 2 4.6 min, level 3 4.9 h, and so on up to the
//!   `i64` range. Filing an entry is a push onto a bucket.
//! - The **near heap** (`Vec<NearEntry>`) is a 4-ary min-heap of 16-byte
//!   (deadline, slot, tag) entries: every schedule entry due at or before
//!   the wheel's current tick. Its top is live whenever the queue is not
//!   empty, so [`next_deadline`](ExpiryQueue::next_deadline) is exact and
//!   O(1).
//!
//! When the near heap has no live entry left, the wheel's earliest bucket
//! is taken out and the wheel advances to the bucket's first tick. Entries
//! not due at that tick go one level down, their tick taken from the entry
//! itself (no slab read, stale ones included); entries due at it are
//! checked against their tag, their exact deadline is read from the slab,
//! and they go to the near heap. An entry is thus filed at most once per
//! level (two to four times for deadlines seconds to hours away), and the
//! schedule reads its slab slot once, shortly before it expires (at every
//! level for deadlines more than about 2.3 years away). Deadlines are never
//! rounded: the tick only decides how many entries are sorted at once, so
//! entries expire earliest first and never before their deadline.
//!
//! A deadline before the wheel's current tick (the queue's first deadline
//! was a late one, or the wheel advanced to a distant deadline and nearer
//! ones followed) goes to the near heap. Once such entries outnumber an
//! eighth of the wheel, the wheel moves back to the near heap's earliest
//! tick and takes them: moving back refiles only the wheel's lowest levels
//! and reads no deadlines. The near heap so stays small, and a queue whose
//! deadlines keep arriving in the past degrades to a binary heap's costs,
//! not worse.
//!
//! Stale entries stay until their bucket is taken out or the schedule is
//! compacted: when the wheel and the near heap hold more than twice as many
//! entries as the queue (plus a small slack), every stale entry is dropped,
//! one tag read each, which amortizes to O(1) per operation. Removing the
//! entry inserted last (a LIFO pool's checkout) takes its schedule entry
//! back at once and leaves nothing stale.
//!
//! Why this shape: at a million entries, removing a random entry has to
//! touch its slab slot, a cache miss (about 110 ns on the machine the
//! figures below come from). The binary heap this queue replaced added
//! stale entries surfacing at its top (a sift-down through the heap each)
//! and rebuilds that read every slab slot again; an indexed heap, or a
//! wheel of intrusive lists, adds a miss for every neighbour it relinks.
//! Here an insert and a remove together cost about one miss.
//!
//! | operation | cost |
//! |---|---|
//! | [`insert`](ExpiryQueue::insert), [`reset`](ExpiryQueue::reset) | O(1) amortized; O(log k) if due before the wheel's current tick (k: near heap entries) |
//! | [`remove`](ExpiryQueue::remove) | O(1) amortized |
//! | [`poll_expired`](ExpiryQueue::poll_expired) | O(log k), plus O(1) amortized per level an entry descends (at most 8) |
//! | [`next_deadline`](ExpiryQueue::next_deadline), [`get`](ExpiryQueue::get), [`len`](ExpiryQueue::len) | O(1) |
//! | memory per entry | `size_of::<Slot<T>>()` + 4 (tag) + 12 per wheel entry (16 per near heap entry), up to two with stale ones, plus up to 25% bucket growth slack: 40 to 58 bytes for `T = u64` |
//!
//! Amortized means a single call may do O(n) work: compacting, or taking
//! out a bucket that holds most of the queue (entries minutes or hours
//! away, taken out when the near heap runs dry).
//!
//! Measured with `cargo bench -p freshpool-benches --bench expiry`
//! (1,000,000 entries, `T = u64`; AMD EPYC VM, 2 vCPUs shared with other
//! builds; ns per iteration, two runs each, alternating with the binary
//! heap this queue replaced):
//!
//! | workload | heap | wheel |
//! |---|---|---|
//! | insert+remove, LIFO | 29–31 | 33 |
//! | insert+remove, FIFO | 90–93 | 89–90 |
//! | insert+remove, checkout (increasing deadlines, random removal) | 384–399 | 177–206 |
//! | insert+remove, random deadlines, random removal | 187–190 | 187–191 |
//! | reset, random | 185–202 | 174–176 |
//! | insert+poll_expired | 365–392 | 193–210 |
//! | bytes per entry after the random workload | 58.7 | 52.8 |
//!
//! Random removal is bound by the one cache miss on the slab slot for both
//! structures; the wheel's gain is everything around it.

use std::fmt;
use std::mem;
use std::time::{Duration, Instant};

#[path = "queue_wheel.rs"]
mod wheel;

use wheel::{Wheel, tick};

/// Children per node of the near heap.
const ARITY: usize = 4;

/// How many entries due before the wheel's current tick the near heap
/// takes, on top of an eighth of the wheel's entries, before the wheel
/// moves back to take them.
const REBASE_SLACK: usize = 64;

/// Stale schedule entries tolerated on top of `len` before compacting.
const COMPACT_SLACK: usize = 64;

/// A handle to an entry of an [`ExpiryQueue`].
///
/// Keys are generation-checked: once its entry has been removed or has
/// expired, a key is *stale*, and every operation given a stale key does
/// nothing and says so. (A slot's generation is a `u32` that wraps, so a
/// key kept across 2³² reuses of the same slot could alias; a pool never
/// keeps keys that long.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    index: u32,
    generation: u32,
}

/// A set of values, each with a deadline, that yields them earliest first
/// once their deadline has passed.
///
/// The queue never reads the clock: callers pass `now`, which makes it
/// usable from any runtime and trivially testable. One queue is meant to
/// serve a whole pool; [`Driver`](crate::Driver) is the thin task that
/// sleeps until [`next_deadline`](Self::next_deadline).
///
/// `remove` returns `Option<T>`, not `T`: a stale key is an ordinary event
/// in a pool (the entry expired a moment ago), not a bug worth a panic.
///
/// Entries with equal deadlines come out in an unspecified order.
///
/// ```
/// use std::time::{Duration, Instant};
/// use freshpool_expiry::ExpiryQueue;
///
/// let start = Instant::now();
/// let mut queue = ExpiryQueue::new();
/// let a = queue.insert(start + Duration::from_secs(5), "a");
/// let b = queue.insert(start + Duration::from_secs(1), "b");
/// assert_eq!(queue.next_deadline(), Some(start + Duration::from_secs(1)));
///
/// // The connection behind `b` was used again: push its deadline back.
/// assert!(queue.reset(&b, start + Duration::from_secs(10)));
///
/// assert_eq!(queue.poll_expired(start + Duration::from_secs(4)), None);
/// assert_eq!(queue.poll_expired(start + Duration::from_secs(6)), Some((a, "a")));
/// // `a` is gone; its key is stale now.
/// assert_eq!(queue.remove(&a), None);
/// assert_eq!(queue.remove(&b), Some("b"));
/// assert!(queue.is_empty());
/// ```
pub struct ExpiryQueue<T> {
    /// The values and their exact deadlines.
    slots: Vec<Slot<T>>,
    /// Per slot, the tag of its one live schedule entry. Every reset and
    /// removal bumps the slot's tag (a wrapping counter, like the keys'
    /// generation), which makes the slot's earlier schedule entries stale.
    /// Kept apart from `slots` so that telling live schedule entries from
    /// stale ones reads 4 bytes, not a whole slot.
    tags: Vec<u32>,
    /// The schedule's near part: every schedule entry due at or before the
    /// wheel's current tick, as a 4-ary min-heap by exact deadline. Its top
    /// is live whenever the queue is not empty.
    near: Vec<NearEntry>,
    /// The schedule's far part: every schedule entry due after the wheel's
    /// current tick.
    wheel: Wheel,
    /// The slot and tag of the schedule entry filed last (slot `NONE`
    /// once taken back).
    last: (u32, u32),
    /// Entries pushed onto the near heap due before the wheel's current
    /// tick since the heap was last filled from the wheel or rebased.
    early: usize,
    /// Number of live entries.
    len: usize,
    /// Head of the free-slot list, or `NONE`.
    free: u32,
    /// The instant deadlines are measured from; set by the first insert.
    origin: Option<Instant>,
}

/// One slab slot.
enum Slot<T> {
    Occupied {
        value: T,
        /// The deadline, in nanoseconds from `origin`, saturating at the
        /// `i64` bounds.
        when: i64,
        generation: u32,
    },
    Vacant {
        generation: u32,
        /// The next free slot, or `NONE`.
        next: u32,
    },
}

/// A schedule entry of the near heap: a slab slot, the tag it had when
/// filed, and its deadline.
#[derive(Clone, Copy)]
struct NearEntry {
    when: i64,
    slot: u32,
    tag: u32,
}

const NONE: u32 = u32::MAX;

impl<T> ExpiryQueue<T> {
    /// Creates an empty queue. It does not allocate until the first insert.
    pub const fn new() -> Self {
        ExpiryQueue {
            slots: Vec::new(),
            tags: Vec::new(),
            near: Vec::new(),
            wheel: Wheel::new(),
            last: (NONE, 0),
            early: 0,
            len: 0,
            free: NONE,
            origin: None,
        }
    }

    /// Creates an empty queue with room for `capacity` entries before its
    /// slab reallocates (the schedule grows as entries arrive).
    pub fn with_capacity(capacity: usize) -> Self {
        ExpiryQueue {
            slots: Vec::with_capacity(capacity),
            tags: Vec::with_capacity(capacity),
            ..Self::new()
        }
    }

    /// Number of entries in the queue.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the queue has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds `value`, due at `deadline`, and returns its key. A deadline in
    /// the past is due at the next [`poll_expired`](Self::poll_expired).
    ///
    /// # Panics
    ///
    /// Panics if the queue would hold more than `u32::MAX - 1` entries (the
    /// slab is indexed by `u32` to keep entries small), just as `Vec`
    /// panics when its capacity overflows.
    pub fn insert(&mut self, deadline: Instant, value: T) -> Key {
        let when = self.encode(deadline);
        let (key, tag) = if self.free == NONE {
            let index = u32::try_from(self.slots.len())
                .ok()
                .filter(|&i| i != NONE)
                .expect("ExpiryQueue holds at most u32::MAX - 1 entries");
            self.slots.push(Slot::Occupied {
                value,
                when,
                generation: 0,
            });
            self.tags.push(0);
            let key = Key {
                index,
                generation: 0,
            };
            (key, 0)
        } else {
            let index = self.free;
            let slot = &mut self.slots[index as usize];
            let Slot::Vacant { generation, next } = *slot else {
                unreachable!("the free list holds only vacant slots")
            };
            self.free = next;
            *slot = Slot::Occupied {
                value,
                when,
                generation,
            };
            // `vacate` gave the slot a fresh tag already.
            (Key { index, generation }, self.tags[index as usize])
        };
        self.len += 1;
        self.schedule(key.index, when, tag);
        key
    }

    /// Moves the entry's deadline to `deadline`. Returns `false`, and does
    /// nothing, if `key` is stale.
    pub fn reset(&mut self, key: &Key, deadline: Instant) -> bool {
        let when = self.encode(deadline);
        match self.slots.get_mut(key.index as usize) {
            Some(Slot::Occupied {
                when: current,
                generation,
                ..
            }) if *generation == key.generation => *current = when,
            _ => return false,
        }
        let tag = self.retag(key.index);
        self.schedule(key.index, when, tag);
        // The entry's previous schedule entry may have been the earliest.
        self.settle();
        true
    }

    /// Removes the entry and returns its value, or `None` if `key` is
    /// stale. The key is stale afterwards.
    pub fn remove(&mut self, key: &Key) -> Option<T> {
        match self.slots.get(key.index as usize) {
            Some(Slot::Occupied { generation, .. }) if *generation == key.generation => {}
            _ => return None,
        }
        if self.last.0 == key.index && self.is_live(self.last.0, self.last.1) {
            self.unschedule_last();
        }
        let (_, value) = self.vacate(key.index)?;
        self.settle();
        if self.scheduled() > 2 * self.len + COMPACT_SLACK {
            self.compact();
        }
        Some(value)
    }

    /// Removes and returns the entry with the earliest deadline if that
    /// deadline is at or before `now`; `None` otherwise.
    ///
    /// Call it in a loop to drain everything due. The returned key is
    /// already stale; it lets the caller tell which entry expired.
    pub fn poll_expired(&mut self, now: Instant) -> Option<(Key, T)> {
        let top = *self.near.first()?;
        if top.when > self.encode_existing(now) {
            return None;
        }
        pop(&mut self.near);
        let (generation, value) = self.vacate(top.slot)?;
        self.settle();
        let key = Key {
            index: top.slot,
            generation,
        };
        Some((key, value))
    }

    /// The earliest deadline in the queue, if any.
    ///
    /// Deadlines more than about 292 years from the first deadline the
    /// queue saw are stored saturated, and reported as that bound.
    pub fn next_deadline(&self) -> Option<Instant> {
        let top = self.near.first()?;
        Some(decode(self.origin?, top.when))
    }

    /// A reference to the entry's value, or `None` if `key` is stale.
    pub fn get(&self, key: &Key) -> Option<&T> {
        match self.slots.get(key.index as usize)? {
            Slot::Occupied {
                value, generation, ..
            } if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// A mutable reference to the entry's value, or `None` if `key` is
    /// stale.
    pub fn get_mut(&mut self, key: &Key) -> Option<&mut T> {
        match self.slots.get_mut(key.index as usize)? {
            Slot::Occupied {
                value, generation, ..
            } if *generation == key.generation => Some(value),
            _ => None,
        }
    }

    /// Whether `key` refers to an entry still in the queue.
    pub fn contains(&self, key: &Key) -> bool {
        self.get(key).is_some()
    }

    /// Removes every entry. Every key handed out so far becomes stale.
    pub fn clear(&mut self) {
        self.near.clear();
        self.wheel.clear();
        self.last = (NONE, 0);
        self.early = 0;
        for index in 0..self.slots.len() {
            drop(self.vacate(index as u32));
        }
    }

    /// Bytes of heap memory the queue itself has allocated (capacity-based:
    /// what its vectors reserved), not counting memory owned by the values.
    pub fn allocated_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot<T>>()
            + self.tags.capacity() * size_of::<u32>()
            + self.near.capacity() * size_of::<NearEntry>()
            + self.wheel.allocated_bytes()
    }

    /// Schedule entries held, live and stale.
    fn scheduled(&self) -> usize {
        self.near.len() + self.wheel.len()
    }

    /// Gives a slot a fresh tag, making its schedule entries stale, and
    /// returns the tag.
    fn retag(&mut self, slot: u32) -> u32 {
        let tag = &mut self.tags[slot as usize];
        *tag = tag.wrapping_add(1);
        *tag
    }

    /// Whether a schedule entry is its slot's live entry.
    fn is_live(&self, slot: u32, tag: u32) -> bool {
        self.tags[slot as usize] == tag
    }

    /// Frees a live slot, returning its generation and value, or `None` if
    /// the slot is vacant. The fresh tag makes the slot's schedule entry
    /// stale; the bumped generation makes its keys stale.
    fn vacate(&mut self, index: u32) -> Option<(u32, T)> {
        let slot = &mut self.slots[index as usize];
        let Slot::Occupied { generation, .. } = *slot else {
            return None;
        };
        let vacant = Slot::Vacant {
            generation: generation.wrapping_add(1),
            next: self.free,
        };
        let Slot::Occupied { value, .. } = mem::replace(slot, vacant) else {
            unreachable!("checked above")
        };
        self.free = index;
        self.retag(index);
        self.len -= 1;
        Some((generation, value))
    }

    /// Files a slot's schedule entry, compacting first if the schedule is
    /// mostly stale.
    fn schedule(&mut self, slot: u32, when: i64, tag: u32) {
        if self.scheduled() >= 2 * self.len + COMPACT_SLACK {
            self.compact();
        }
        let due = tick(when);
        self.last = (slot, tag);
        if self.near.is_empty() && self.wheel.is_empty() {
            self.wheel.restart(due);
        }
        if due > self.wheel.elapsed() {
            self.wheel.insert(due, slot, tag);
            return;
        }
        let pos = self.near.len();
        self.near.push(NearEntry { when, slot, tag });
        sift_up(&mut self.near, pos);
        if due < self.wheel.elapsed() {
            self.early += 1;
            if self.early > REBASE_SLACK + self.wheel.len() / 8 {
                self.rebase();
            }
        }
    }

    /// Moves the wheel back to the near heap's earliest tick and files the
    /// near entries due after it into the wheel, so that deadlines earlier
    /// than the wheel's tick (the first insert came late, or the wheel
    /// advanced to a distant deadline and nearer ones followed) do not pile
    /// up in the near heap. Costs O(near entries + the wheel entries of the
    /// levels it merges), paid for by the early entries it takes a rebase to
    /// trigger (an eighth of the wheel's entries).
    fn rebase(&mut self) {
        self.early = 0;
        let Some(top) = self.near.first() else {
            return;
        };
        let to = tick(top.when);
        if to >= self.wheel.elapsed() {
            return;
        }
        self.wheel.rewind(to);
        let mut kept = 0;
        for pos in 0..self.near.len() {
            let entry = self.near[pos];
            if self.tags[entry.slot as usize] != entry.tag {
                continue;
            }
            let due = tick(entry.when);
            if due <= to {
                self.near[kept] = entry;
                kept += 1;
            } else {
                self.wheel.insert(due, entry.slot, entry.tag);
            }
        }
        self.near.truncate(kept);
        heapify(&mut self.near);
    }

    /// Takes the schedule entry filed last back out of the schedule if it is
    /// still where it was filed (the end of the near heap or of its wheel
    /// bucket): removing the entry inserted last, as a LIFO pool does, then
    /// leaves no stale entry behind.
    fn unschedule_last(&mut self) {
        let (slot, tag) = mem::replace(&mut self.last, (NONE, 0));
        // The end of a heap is a leaf: popping it keeps the heap order.
        if self
            .near
            .last()
            .is_some_and(|e| e.slot == slot && e.tag == tag)
        {
            self.near.pop();
        } else {
            self.wheel.unpush(slot, tag);
        }
    }

    /// Restores the invariant that the top of the near heap is live
    /// whenever the queue is not empty.
    fn settle(&mut self) {
        while let Some(top) = self.near.first() {
            if self.is_live(top.slot, top.tag) {
                return;
            }
            pop(&mut self.near);
        }
        self.refill();
    }

    /// Fills the empty near heap from the wheel's earliest buckets: each
    /// bucket taken advances the wheel to the bucket's first tick; its live
    /// entries due at that tick go to the near heap, the others back into
    /// the wheel, one level lower or more. Ends when the near heap has a
    /// live entry or the wheel is empty.
    fn refill(&mut self) {
        self.early = 0;
        while self.near.is_empty() {
            let Some((bucket, level)) = self.wheel.pop_earliest() else {
                return;
            };
            let elapsed = self.wheel.elapsed();
            for entry in bucket {
                // An entry that tells its tick and is not due yet goes one
                // level down untouched, stale or not: no slab or tag reads
                // until it reaches the near heap.
                let told = self.wheel.tick_of(level, &entry);
                if let Some(due) = told.filter(|&due| due > elapsed) {
                    self.wheel.insert(due, entry.slot, entry.tag);
                    continue;
                }
                if !self.is_live(entry.slot, entry.tag) {
                    continue;
                }
                let Slot::Occupied { when, .. } = self.slots[entry.slot as usize] else {
                    continue;
                };
                let due = tick(when);
                if due <= elapsed {
                    self.near.push(NearEntry {
                        when,
                        slot: entry.slot,
                        tag: entry.tag,
                    });
                } else {
                    self.wheel.insert(due, entry.slot, entry.tag);
                }
            }
        }
        heapify(&mut self.near);
    }

    /// Drops every stale schedule entry: O(n), amortized O(1) over the
    /// operations that made them stale.
    fn compact(&mut self) {
        let tags = &self.tags;
        self.near.retain(|e| tags[e.slot as usize] == e.tag);
        if self.near.capacity() > 2 * self.near.len() + COMPACT_SLACK {
            self.near.shrink_to(self.near.len() + COMPACT_SLACK);
        }
        heapify(&mut self.near);
        self.wheel.retain(|e| tags[e.slot as usize] == e.tag);
    }

    /// Encodes a deadline, fixing the origin on first use.
    fn encode(&mut self, instant: Instant) -> i64 {
        let origin = *self.origin.get_or_insert(instant);
        encode(origin, instant)
    }

    /// Encodes an instant against the current origin (any value works when
    /// the queue has never held an entry, since it is then empty).
    fn encode_existing(&self, instant: Instant) -> i64 {
        self.origin.map_or(0, |origin| encode(origin, instant))
    }
}

/// Removes the top of a near heap.
fn pop(heap: &mut Vec<NearEntry>) {
    heap.swap_remove(0);
    if !heap.is_empty() {
        sift_down(heap, 0);
    }
}

/// Makes a near heap of `heap` in O(n).
fn heapify(heap: &mut [NearEntry]) {
    if heap.len() > 1 {
        for pos in (0..=(heap.len() - 2) / ARITY).rev() {
            sift_down(heap, pos);
        }
    }
}

fn sift_up(heap: &mut [NearEntry], mut pos: usize) {
    let entry = heap[pos];
    while pos > 0 {
        let parent = (pos - 1) / ARITY;
        let above = heap[parent];
        if above.when <= entry.when {
            break;
        }
        heap[pos] = above;
        pos = parent;
    }
    heap[pos] = entry;
}

fn sift_down(heap: &mut [NearEntry], mut pos: usize) {
    let entry = heap[pos];
    let len = heap.len();
    loop {
        let first = pos * ARITY + 1;
        if first >= len {
            break;
        }
        let last = (first + ARITY).min(len);
        let mut child = first;
        for c in first + 1..last {
            if heap[c].when < heap[child].when {
                child = c;
            }
        }
        let below = heap[child];
        if entry.when <= below.when {
            break;
        }
        heap[pos] = below;
        pos = child;
    }
    heap[pos] = entry;
}

/// The inverse of [`encode`] (exact for every value `encode` did not
/// saturate).
fn decode(origin: Instant, when: i64) -> Instant {
    let offset = Duration::from_nanos(when.unsigned_abs());
    let decoded = if when >= 0 {
        origin.checked_add(offset)
    } else {
        origin.checked_sub(offset)
    };
    decoded.unwrap_or(origin)
}

/// Signed nanoseconds from `origin` to `instant`, saturating.
fn encode(origin: Instant, instant: Instant) -> i64 {
    match instant.checked_duration_since(origin) {
        Some(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        None => {
            let before = origin.saturating_duration_since(instant);
            i64::try_from(before.as_nanos()).map_or(i64::MIN, |n| -n)
        }
    }
}

impl<T> Default for ExpiryQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for ExpiryQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpiryQueue")
            .field("len", &self.len())
            .field("next_deadline", &self.next_deadline())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
