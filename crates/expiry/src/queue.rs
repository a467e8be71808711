//! A sans-IO deadline queue: which tracked item expires next?
//!
//! # Structure
//!
//! [`ExpiryQueue`] is a *4-ary min-heap with lazy deletion over a
//! generational slab*:
//!
//! - the **slab** (`Vec<Slot<T>>`) owns the values. A [`Key`] is a slot
//!   index plus the slot's generation; the generation is bumped whenever the
//!   slot is freed, so a stale key can never reach the entry that reuses its
//!   slot. Free slots form an intrusive free list.
//! - the **heap** (`Vec<HeapEntry>`) holds `(deadline, slot, version)`
//!   entries ordered by deadline. Each slot carries a version, bumped by
//!   every `reset` and `remove`; a heap entry whose version no longer
//!   matches its slot is *stale* and is discarded when it reaches the top
//!   or when the heap is compacted.
//!
//! Lazy deletion is what makes `remove` and `reset` cheap at a million
//! entries: `remove` touches one slab slot and never walks the heap, where
//! an indexed heap would move entries and rewrite their slots'
//! back-pointers, one cache miss each. The price is memory for stale
//! entries, bounded by compaction: when the heap holds more than twice as
//! many entries as the queue (plus a small slack), stale entries are
//! dropped and the heap is rebuilt in O(n), which amortizes to O(1) per
//! operation. The top of the heap is always live, so
//! [`next_deadline`](ExpiryQueue::next_deadline) is exact.
//!
//! Deadlines are stored as signed nanoseconds from the first deadline the
//! queue saw (8 bytes instead of a 16-byte `Instant`), so a heap entry is
//! 16 bytes and the four children of a node span at most two 64-byte
//! cache lines.
//!
//! Why not a hierarchical timing wheel like tokio's? A wheel makes insert
//! and remove O(1) but rounds deadlines to ticks and needs a tick clock.
//! Pool deadlines come from many sources (learned per origin, jittered
//! lifetimes) and the driver sleeps until the exact earliest one, so exact
//! ordering is worth O(log n), and with lazy deletion the logarithm is only
//! paid where it is cheap (a new deadline is usually near the bottom of the
//! heap) or rare (expiry). See the `expiry` criterion bench.
//!
//! | operation | cost |
//! |---|---|
//! | [`insert`](ExpiryQueue::insert), [`reset`](ExpiryQueue::reset), [`poll_expired`](ExpiryQueue::poll_expired) | O(log n) amortized |
//! | [`remove`](ExpiryQueue::remove) | O(1) amortized (O(log n) when it removes the earliest entry) |
//! | [`next_deadline`](ExpiryQueue::next_deadline), [`get`](ExpiryQueue::get), [`len`](ExpiryQueue::len) | O(1) |
//! | memory per entry | `size_of::<Slot<T>>()` + 16 to 32 bytes of heap (24 + 16..32 for `T = u64`), plus `Vec` growth slack |

use std::fmt;
use std::time::{Duration, Instant};

/// Children per heap node.
const ARITY: usize = 4;

/// Stale heap entries tolerated on top of `2 × len` before compacting.
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
/// `remove` returns `Option<T>` rather than the `T` of DESIGN.md: a stale
/// key is an ordinary event in a pool (the entry expired a moment ago), not
/// a bug worth a panic.
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
    slots: Vec<Slot<T>>,
    heap: Vec<HeapEntry>,
    /// Number of live entries.
    len: usize,
    /// Head of the free-slot list, or `NONE`.
    free: u32,
    /// The instant deadlines are measured from; set by the first insert.
    origin: Option<Instant>,
}

/// One slab slot. `version` identifies the slot's one live heap entry.
enum Slot<T> {
    Occupied {
        value: T,
        generation: u32,
        version: u32,
    },
    Vacant {
        generation: u32,
        version: u32,
        /// The next free slot, or `NONE`.
        next: u32,
    },
}

#[derive(Clone, Copy)]
struct HeapEntry {
    /// Nanoseconds from `origin`, saturating at the `i64` bounds.
    when: i64,
    slot: u32,
    version: u32,
}

const NONE: u32 = u32::MAX;

impl<T> ExpiryQueue<T> {
    /// Creates an empty queue. It does not allocate until the first insert.
    pub const fn new() -> Self {
        ExpiryQueue {
            slots: Vec::new(),
            heap: Vec::new(),
            len: 0,
            free: NONE,
            origin: None,
        }
    }

    /// Creates an empty queue with room for `capacity` entries before it
    /// reallocates (the heap reserves twice that, for stale entries).
    pub fn with_capacity(capacity: usize) -> Self {
        ExpiryQueue {
            slots: Vec::with_capacity(capacity),
            heap: Vec::with_capacity(capacity.saturating_mul(2)),
            len: 0,
            free: NONE,
            origin: None,
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
        let (index, generation, version) = if self.free == NONE {
            let index = u32::try_from(self.slots.len())
                .ok()
                .filter(|&i| i != NONE)
                .expect("ExpiryQueue holds at most u32::MAX - 1 entries");
            self.slots.push(Slot::Occupied {
                value,
                generation: 0,
                version: 0,
            });
            (index, 0, 0)
        } else {
            let index = self.free;
            let slot = &mut self.slots[index as usize];
            let Slot::Vacant {
                generation,
                version,
                next,
            } = *slot
            else {
                unreachable!("the free list holds only vacant slots")
            };
            self.free = next;
            *slot = Slot::Occupied {
                value,
                generation,
                version,
            };
            (index, generation, version)
        };
        self.len += 1;
        self.push(HeapEntry {
            when,
            slot: index,
            version,
        });
        Key { index, generation }
    }

    /// Moves the entry's deadline to `deadline`. Returns `false`, and does
    /// nothing, if `key` is stale.
    pub fn reset(&mut self, key: &Key, deadline: Instant) -> bool {
        let when = self.encode(deadline);
        let Some(Slot::Occupied {
            generation,
            version,
            ..
        }) = self.slots.get_mut(key.index as usize)
        else {
            return false;
        };
        if *generation != key.generation {
            return false;
        }
        *version = version.wrapping_add(1);
        let version = *version;
        self.push(HeapEntry {
            when,
            slot: key.index,
            version,
        });
        // The entry's previous heap entry may have been the top.
        self.discard_stale_top();
        true
    }

    /// Removes the entry and returns its value, or `None` if `key` is
    /// stale. The key is stale afterwards.
    pub fn remove(&mut self, key: &Key) -> Option<T> {
        match self.slots.get(key.index as usize) {
            Some(Slot::Occupied { generation, .. }) if *generation == key.generation => {}
            _ => return None,
        }
        let value = self.vacate(key.index);
        self.discard_stale_top();
        if self.heap.len() > 2 * self.len + COMPACT_SLACK {
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
        let top = *self.heap.first()?;
        if top.when > self.encode_existing(now) {
            return None;
        }
        self.pop_top();
        let generation = match &self.slots[top.slot as usize] {
            Slot::Occupied { generation, .. } => *generation,
            Slot::Vacant { .. } => unreachable!("the top of the heap is live"),
        };
        let value = self.vacate(top.slot);
        self.discard_stale_top();
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
        let top = self.heap.first()?;
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
        self.heap.clear();
        for index in 0..self.slots.len() {
            if matches!(self.slots[index], Slot::Occupied { .. }) {
                drop(self.vacate(index as u32));
            }
        }
    }

    /// Bytes of heap memory the queue itself has allocated (capacity-based:
    /// what its two vectors reserved), not counting memory owned by the
    /// values.
    pub fn allocated_bytes(&self) -> usize {
        self.slots.capacity() * size_of::<Slot<T>>() + self.heap.capacity() * size_of::<HeapEntry>()
    }

    /// Frees a live slot, returning its value. Bumping the version makes
    /// the slot's heap entry stale; bumping the generation makes its keys
    /// stale.
    fn vacate(&mut self, index: u32) -> T {
        let slot = &mut self.slots[index as usize];
        let (generation, version) = match slot {
            Slot::Occupied {
                generation,
                version,
                ..
            } => (generation.wrapping_add(1), version.wrapping_add(1)),
            Slot::Vacant { .. } => unreachable!("only live slots are vacated"),
        };
        let vacant = Slot::Vacant {
            generation,
            version,
            next: self.free,
        };
        let Slot::Occupied { value, .. } = std::mem::replace(slot, vacant) else {
            unreachable!("checked above")
        };
        self.free = index;
        self.len -= 1;
        value
    }

    /// Whether a heap entry is its slot's live entry.
    fn is_live(&self, entry: &HeapEntry) -> bool {
        matches!(
            self.slots[entry.slot as usize],
            Slot::Occupied { version, .. } if version == entry.version
        )
    }

    /// Pushes a heap entry, compacting first if the heap is mostly stale.
    fn push(&mut self, entry: HeapEntry) {
        if self.heap.len() >= 2 * self.len + COMPACT_SLACK {
            self.compact();
        }
        self.heap.push(entry);
        self.sift_up(self.heap.len() - 1);
    }

    fn pop_top(&mut self) {
        self.heap.swap_remove(0);
        if !self.heap.is_empty() {
            self.sift_down(0);
        }
    }

    /// Restores the invariant that the top of the heap is live.
    fn discard_stale_top(&mut self) {
        while let Some(top) = self.heap.first() {
            if self.is_live(top) {
                break;
            }
            self.pop_top();
        }
    }

    /// Drops every stale heap entry and rebuilds the heap in O(n).
    fn compact(&mut self) {
        let mut heap = std::mem::take(&mut self.heap);
        heap.retain(|entry| self.is_live(entry));
        self.heap = heap;
        if self.heap.len() > 1 {
            for pos in (0..=(self.heap.len() - 2) / ARITY).rev() {
                self.sift_down(pos);
            }
        }
    }

    fn sift_up(&mut self, mut pos: usize) {
        let entry = self.heap[pos];
        while pos > 0 {
            let parent = (pos - 1) / ARITY;
            let above = self.heap[parent];
            if above.when <= entry.when {
                break;
            }
            self.heap[pos] = above;
            pos = parent;
        }
        self.heap[pos] = entry;
    }

    fn sift_down(&mut self, mut pos: usize) {
        let entry = self.heap[pos];
        let len = self.heap.len();
        loop {
            let first = pos * ARITY + 1;
            if first >= len {
                break;
            }
            let last = (first + ARITY).min(len);
            let mut child = first;
            for c in first + 1..last {
                if self.heap[c].when < self.heap[child].when {
                    child = c;
                }
            }
            let below = self.heap[child];
            if entry.when <= below.when {
                break;
            }
            self.heap[pos] = below;
            pos = child;
        }
        self.heap[pos] = entry;
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
