//! Cost of the expiry queue with 1,000,000 tracked connections
//! (docs/design.md §15: at most 200 ns per insert+remove, 64 bytes per entry).
//!
//! `cargo bench -p freshpool-benches --bench expiry` reports ns per
//! iteration; every iteration keeps the queue at 1,000,000 entries (one
//! insert and one remove, or one reset, or one insert and one expiry). It
//! also prints the queue's bytes per entry for `T = u64` after the random
//! workload, the one that leaves the most stale schedule entries.
//!
//! Workloads, from a pool's point of view:
//!
//! - `insert+remove/lifo`: a connection goes idle (deadline later than all
//!   others) and the most recently idle one is checked out, as
//!   hyper-util's pool does;
//! - `insert+remove/fifo`: the longest idle one is checked out;
//! - `insert+remove/checkout`: a random idle connection is checked out;
//! - `insert+remove/random`: random deadlines and random removals, the
//!   worst case;
//! - `reset/random`: a random entry's deadline moves;
//! - `insert+poll_expired`: the earliest entry expires and a new one is
//!   tracked.
//!
//! In `checkout` and `random` the keys to remove are visited in a shuffled
//! order, read sequentially from the bench's own key list, so each removal
//! still lands on a random slot of the queue while the cost of finding the
//! key (a pool keeps it in the connection it checks out) is not charged to
//! the queue. Each new key takes the place of the one just removed, so a
//! second pass over the list would remove entries in the order they were
//! inserted: in `checkout`, whose deadlines increase, that is FIFO order.
//! `checkout` therefore shuffles the list again after every pass, outside
//! the measured time.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use freshpool_expiry::{ExpiryQueue, Key};
use freshpool_testkit::XorShift;

const ENTRIES: usize = 1_000_000;
/// Random deadlines spread over 15 minutes.
const SPREAD_NANOS: u64 = 15 * 60 * 1_000_000_000;
/// Increasing deadlines advance by 1 µs per new idle connection.
const STEP_NANOS: u64 = 1_000;

/// Shuffles `keys` (Fisher-Yates).
fn shuffle(keys: &mut [Key], rng: &mut XorShift) {
    for i in (1..keys.len()).rev() {
        keys.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
    }
}

/// A queue of `ENTRIES` with increasing deadlines `STEP_NANOS` apart.
fn increasing(t0: Instant) -> (ExpiryQueue<u64>, VecDeque<Key>, u64) {
    let mut queue = ExpiryQueue::new();
    let keys = (1..=ENTRIES as u64)
        .map(|i| queue.insert(t0 + Duration::from_nanos(i * STEP_NANOS), i))
        .collect();
    (queue, keys, ENTRIES as u64 * STEP_NANOS)
}

/// A queue of `ENTRIES` with random deadlines.
fn random(t0: Instant, rng: &mut XorShift) -> (ExpiryQueue<u64>, Vec<Key>) {
    let mut queue = ExpiryQueue::new();
    let keys = (0..ENTRIES as u64)
        .map(|i| queue.insert(t0 + Duration::from_nanos(rng.next_u64() % SPREAD_NANOS), i))
        .collect();
    (queue, keys)
}

fn bench_expiry(c: &mut Criterion) {
    let t0 = Instant::now();
    let mut rng = XorShift::from_state(0x9E37_79B9_7F4A_7C15);
    let mut group = c.benchmark_group("expiry");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let (mut queue, mut keys, mut clock) = increasing(t0);
    group.bench_function("insert+remove/lifo", |b| {
        b.iter(|| {
            clock += STEP_NANOS;
            let key = queue.insert(t0 + Duration::from_nanos(clock), clock);
            black_box(queue.remove(&key));
        });
    });
    group.bench_function("insert+remove/fifo", |b| {
        b.iter(|| {
            clock += STEP_NANOS;
            keys.push_back(queue.insert(t0 + Duration::from_nanos(clock), clock));
            let oldest = keys.pop_front().expect("queue is full");
            black_box(queue.remove(&oldest));
        });
    });
    let mut keys = Vec::from(keys);
    shuffle(&mut keys, &mut rng);
    let mut next = 0;
    group.bench_function("insert+remove/checkout", |b| {
        b.iter_custom(|iters| {
            let mut measured = Duration::ZERO;
            let mut start = Instant::now();
            for _ in 0..iters {
                clock += STEP_NANOS;
                let key = queue.insert(t0 + Duration::from_nanos(clock), clock);
                black_box(queue.remove(&keys[next]));
                keys[next] = key;
                next += 1;
                if next == ENTRIES {
                    measured += start.elapsed();
                    shuffle(&mut keys, &mut rng);
                    next = 0;
                    start = Instant::now();
                }
            }
            measured + start.elapsed()
        });
    });
    drop((queue, keys));

    let (mut queue, mut keys) = random(t0, &mut rng);
    shuffle(&mut keys, &mut rng);
    let mut next = 0;
    group.bench_function("insert+remove/random", |b| {
        b.iter(|| {
            let r = rng.next_u64();
            let key = queue.insert(t0 + Duration::from_nanos(r % SPREAD_NANOS), r);
            black_box(queue.remove(&keys[next]));
            keys[next] = key;
            next = (next + 1) % ENTRIES;
        });
    });
    println!(
        "expiry: {} entries (T = u64) after the random workload: {} bytes allocated, {:.1} bytes per entry",
        queue.len(),
        queue.allocated_bytes(),
        queue.allocated_bytes() as f64 / queue.len() as f64,
    );
    group.bench_function("reset/random", |b| {
        b.iter(|| {
            let r = rng.next_u64();
            black_box(queue.reset(&keys[next], t0 + Duration::from_nanos(r % SPREAD_NANOS)));
            next = (next + 1) % ENTRIES;
        });
    });
    group.bench_function("insert+poll_expired", |b| {
        b.iter(|| {
            let r = rng.next_u64();
            let now = queue.next_deadline().expect("queue is full");
            black_box(queue.poll_expired(now));
            queue.insert(now + Duration::from_nanos(r % SPREAD_NANOS), r)
        });
    });
    group.finish();
    assert_eq!(queue.len(), ENTRIES);
}

criterion_group!(benches, bench_expiry);
criterion_main!(benches);
