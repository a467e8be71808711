use freshpool_testkit::XorShift;

use super::wheel::Entry;
use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn expires_in_deadline_order_and_not_before() {
    let t0 = Instant::now();
    let mut q = ExpiryQueue::new();
    let mut rng = XorShift::star(0x9E37_79B9_7F4A_7C15);
    let mut deadlines: Vec<u64> = (0..2000).map(|_| rng.next_u64() % 10_000).collect();
    for (i, d) in deadlines.iter().enumerate() {
        q.insert(t0 + ms(*d), i);
    }
    assert_eq!(q.len(), 2000);
    assert_eq!(
        q.next_deadline(),
        deadlines.iter().min().map(|d| t0 + ms(*d))
    );

    let mut seen = Vec::new();
    let mut now = 0;
    while now < 10_000 + 7 {
        while let Some((key, i)) = q.poll_expired(t0 + ms(now)) {
            assert!(
                deadlines[i] <= now,
                "entry due at {} expired at {now}",
                deadlines[i]
            );
            assert!(!q.contains(&key));
            seen.push(deadlines[i]);
        }
        if let Some(next) = q.next_deadline() {
            assert!(next > t0 + ms(now));
        }
        now += 7;
    }
    assert!(q.is_empty());
    deadlines.sort_unstable();
    assert_eq!(seen, deadlines);
}

#[test]
fn stale_keys_touch_nothing() {
    let t0 = Instant::now();
    let mut q = ExpiryQueue::new();
    let a = q.insert(t0, "a");
    assert_eq!(q.remove(&a), Some("a"));
    // The slot is reused by `b`, but `a`'s generation no longer matches.
    let b = q.insert(t0 + ms(5), "b");
    assert_eq!(q.remove(&a), None);
    assert!(!q.reset(&a, t0));
    assert_eq!(q.get(&a), None);
    assert_eq!(q.get(&b), Some(&"b"));
    assert_eq!(q.next_deadline(), Some(t0 + ms(5)));

    let (expired, value) = q.poll_expired(t0 + ms(5)).unwrap();
    assert_eq!((expired, value), (b, "b"));
    assert_eq!(q.remove(&b), None);
    assert!(q.is_empty());
}

#[test]
fn reset_moves_both_ways() {
    let t0 = Instant::now();
    let mut q = ExpiryQueue::new();
    let keys: Vec<Key> = (0..50).map(|i| q.insert(t0 + ms(100 + i), i)).collect();
    // Earlier than everything.
    assert!(q.reset(&keys[40], t0 + ms(1)));
    assert_eq!(q.next_deadline(), Some(t0 + ms(1)));
    // Later than everything.
    assert!(q.reset(&keys[40], t0 + ms(1000)));
    assert!(q.reset(&keys[0], t0 + ms(999)));
    assert_eq!(q.next_deadline(), Some(t0 + ms(101)));
    let order: Vec<u64> =
        std::iter::from_fn(|| q.poll_expired(t0 + ms(5000)).map(|(_, v)| v)).collect();
    let mut expected: Vec<u64> = (1..50).filter(|&i| i != 40).collect();
    expected.extend([0, 40]);
    assert_eq!(order, expected);
}

#[test]
fn deadlines_before_the_first_one_and_far_away() {
    let t0 = Instant::now() + Duration::from_secs(3600);
    let mut q = ExpiryQueue::new();
    q.insert(t0, 0);
    q.insert(t0 - Duration::from_secs(3000), 1);
    q.insert(t0 + Duration::from_secs(400 * 365 * 24 * 3600), 2);
    assert_eq!(q.next_deadline(), Some(t0 - Duration::from_secs(3000)));
    assert_eq!(q.poll_expired(t0 - Duration::from_secs(3001)), None);
    assert_eq!(q.poll_expired(t0).map(|(_, v)| v), Some(1));
    assert_eq!(q.poll_expired(t0).map(|(_, v)| v), Some(0));
    assert_eq!(q.poll_expired(t0 + Duration::from_secs(1_000_000)), None);
    assert_eq!(q.len(), 1);
}

#[test]
fn get_mut_and_clear() {
    let t0 = Instant::now();
    let mut q = ExpiryQueue::with_capacity(4);
    let a = q.insert(t0, 1);
    let b = q.insert(t0, 2);
    *q.get_mut(&a).unwrap() += 10;
    assert_eq!(q.get(&a), Some(&11));
    q.clear();
    assert!(q.is_empty());
    assert!(!q.contains(&a) && !q.contains(&b));
    assert_eq!(q.next_deadline(), None);
    assert_eq!(q.poll_expired(t0 + ms(1)), None);
}

#[test]
fn values_are_dropped_once() {
    use std::rc::Rc;
    let counter = Rc::new(());
    let t0 = Instant::now();
    let mut q = ExpiryQueue::new();
    let keys: Vec<Key> = (0..10)
        .map(|i| q.insert(t0 + ms(i), Rc::clone(&counter)))
        .collect();
    drop(q.remove(&keys[3]));
    drop(q.poll_expired(t0 + ms(100)));
    q.clear();
    q.insert(t0, Rc::clone(&counter));
    drop(q);
    assert_eq!(Rc::strong_count(&counter), 1);
}

/// docs/design.md §15: at most 64 bytes per entry with 1,000,000 entries, in the
/// steady state where stale schedule entries (from `remove` and `reset`)
/// accumulate until compaction.
#[test]
fn memory_per_entry_at_one_million() {
    const N: usize = 1_000_000;
    let t0 = Instant::now();
    let mut q: ExpiryQueue<u64> = ExpiryQueue::new();
    let mut rng = XorShift::star(7);
    let spread = 1_000_000_000_000;
    let mut keys: Vec<Key> = (0..N as u64)
        .map(|i| q.insert(t0 + Duration::from_nanos(rng.next_u64() % spread), i))
        .collect();
    assert_eq!(size_of::<Slot<u64>>(), 24);
    assert_eq!(size_of::<Entry>(), 12);
    assert_eq!(size_of::<NearEntry>(), 16);
    let mut worst = 0;
    for i in 0..3 * N {
        let r = rng.next_u64();
        let slot = (r % N as u64) as usize;
        if i % 3 == 0 {
            assert!(q.reset(&keys[slot], t0 + Duration::from_nanos(r % spread)));
        } else {
            let key = q.insert(t0 + Duration::from_nanos(r % spread), r);
            assert!(q.remove(&keys[slot]).is_some());
            keys[slot] = key;
        }
        worst = worst.max(q.allocated_bytes());
        assert!(q.scheduled() <= 2 * q.len() + COMPACT_SLACK);
    }
    assert_eq!(q.len(), N);
    let per_entry = worst as f64 / N as f64;
    assert!(per_entry <= 64.0, "{per_entry:.1} bytes per entry");
}

/// The memory bound also holds while the wheel turns: increasing
/// deadlines (each new idle connection is due last), a random connection
/// checked out or the earliest one retired at every step, so entries keep
/// moving down the wheel's levels and buckets keep emptying.
#[test]
fn memory_per_entry_at_one_million_while_expiring() {
    const N: u64 = 1_000_000;
    let t0 = Instant::now();
    let mut q: ExpiryQueue<u64> = ExpiryQueue::new();
    let mut rng = XorShift::star(11);
    let step = Duration::from_micros(3);
    let mut keys: Vec<Key> = (0..N).map(|i| q.insert(t0 + step * i as u32, i)).collect();
    let mut worst = 0;
    let mut expired = 0;
    for clock in N..3 * N {
        let key = q.insert(t0 + step * clock as u32, clock);
        let r = rng.next_u64();
        let slot = (r % N) as usize;
        if r & 1 == 0 || q.remove(&keys[slot]).is_none() {
            let due = q.next_deadline().expect("the queue is full");
            assert!(q.poll_expired(due).is_some());
            expired += 1;
        }
        keys[slot] = key;
        worst = worst.max(q.allocated_bytes());
    }
    assert_eq!(q.len(), N as usize);
    assert!(expired > N / 2, "the wheel turned");
    let per_entry = worst as f64 / N as f64;
    assert!(per_entry <= 64.0, "{per_entry:.1} bytes per entry");
}

#[test]
fn compaction_keeps_every_live_entry() {
    let t0 = Instant::now();
    let mut q = ExpiryQueue::new();
    let keys: Vec<Key> = (0..1000).map(|i| q.insert(t0 + ms(1000 - i), i)).collect();
    // Reset every entry many times: the schedule fills with stale entries
    // and is compacted several times over.
    for round in 1..=5 {
        for (i, key) in keys.iter().enumerate() {
            assert!(q.reset(key, t0 + ms(round * 2000 + i as u64)));
        }
        assert!(q.scheduled() <= 2 * q.len() + COMPACT_SLACK);
    }
    for key in keys.iter().step_by(2) {
        assert!(q.remove(key).is_some());
    }
    let expired: Vec<u64> =
        std::iter::from_fn(|| q.poll_expired(t0 + ms(20_000)).map(|(_, v)| v)).collect();
    assert_eq!(expired, (1..1000).step_by(2).collect::<Vec<_>>());
    assert!(q.is_empty() && q.next_deadline().is_none());
}

#[test]
fn compaction_with_random_deadlines_keeps_order() {
    let t0 = Instant::now();
    let mut rng = XorShift::star(99);
    let mut q = ExpiryQueue::new();
    let keys: Vec<Key> = (0..100)
        .map(|i| q.insert(t0 + ms(rng.next_u64() % 1000), i))
        .collect();
    let mut deadlines = vec![0; keys.len()];
    for _ in 0..5000 {
        let i = (rng.next_u64() % keys.len() as u64) as usize;
        deadlines[i] = rng.next_u64() % 1000;
        assert!(q.reset(&keys[i], t0 + ms(deadlines[i])));
        assert!(q.scheduled() <= 2 * q.len() + COMPACT_SLACK);
    }
    let mut last = 0;
    while let Some((_, i)) = q.poll_expired(t0 + ms(1000)) {
        let deadline = deadlines[i as usize];
        assert!(deadline >= last, "out of order after compaction");
        last = deadline;
    }
    assert!(q.is_empty());
}

/// Checks the queue against a sorted model through random inserts, resets,
/// removals and polls whose deadlines span every level of the wheel (from
/// nanoseconds to years, in the past too), with the clock advancing by as
/// much.
#[test]
fn matches_a_sorted_model_across_wheel_levels() {
    use std::collections::{BTreeSet, HashMap};

    let t0 = Instant::now() + Duration::from_secs(1 << 40);
    let at = |nanos: i128| {
        let offset = Duration::from_nanos(nanos.unsigned_abs() as u64);
        if nanos >= 0 { t0 + offset } else { t0 - offset }
    };
    let mut rng = XorShift::star(0x0DDB_A110);
    let mut q = ExpiryQueue::new();
    let mut sorted: BTreeSet<(i128, u64)> = BTreeSet::new();
    let mut live: HashMap<Key, (i128, u64)> = HashMap::new();
    let mut keys: Vec<Key> = Vec::new();
    let mut now: i128 = 0;
    for id in 0..60_000u64 {
        let r = rng.next_u64();
        // A span of 2^0 .. 2^56 ns (about 2.3 years).
        let span = 1i128 << (r % 57);
        let offset = i128::from(rng.next_u64()) % span - span / 8;
        match r >> 60 {
            0..=6 => {
                let deadline = now + offset;
                let key = q.insert(at(deadline), id);
                sorted.insert((deadline, id));
                live.insert(key, (deadline, id));
                keys.push(key);
            }
            7..=9 if !keys.is_empty() => {
                let key = keys[(rng.next_u64() % keys.len() as u64) as usize];
                let deadline = now + offset;
                let expected = live.get(&key).copied();
                assert_eq!(q.reset(&key, at(deadline)), expected.is_some());
                if let Some((old, id)) = expected {
                    sorted.remove(&(old, id));
                    sorted.insert((deadline, id));
                    live.insert(key, (deadline, id));
                }
            }
            10..=12 if !keys.is_empty() => {
                let key = keys.swap_remove((rng.next_u64() % keys.len() as u64) as usize);
                let expected = live.remove(&key);
                if let Some(entry) = expected {
                    sorted.remove(&entry);
                }
                assert_eq!(q.remove(&key), expected.map(|(_, id)| id));
            }
            _ => {
                now += offset.abs() / 4;
                while let Some((key, id)) = q.poll_expired(at(now)) {
                    let (deadline, expected) = live.remove(&key).expect("expired a live key");
                    assert_eq!(id, expected);
                    assert!(deadline <= now, "expired early");
                    // Equal deadlines come out in any order.
                    assert_eq!(
                        sorted.first().map(|&(d, _)| d),
                        Some(deadline),
                        "out of order"
                    );
                    sorted.remove(&(deadline, id));
                }
                assert!(sorted.first().is_none_or(|&(d, _)| d > now));
            }
        }
        assert_eq!(q.len(), sorted.len());
        assert_eq!(q.next_deadline(), sorted.first().map(|&(d, _)| at(d)));
        assert!(q.scheduled() <= 2 * q.len() + COMPACT_SLACK);
        if keys.len() > 4096 {
            keys.drain(..2048);
        }
    }
}

/// Deadlines earlier than the wheel's current tick first go to the near
/// heap; once there are many, the wheel moves back and takes them, so the
/// near heap stays small and order is kept.
#[test]
fn earlier_deadlines_move_the_wheel_back() {
    let t0 = Instant::now();
    let mut q = ExpiryQueue::new();
    // The first deadline is the latest: the wheel starts at its tick.
    q.insert(t0 + Duration::from_secs(3600), 10_000);
    for i in (0..10_000u64).rev() {
        q.insert(t0 + ms(i * 100), i);
        assert!(q.near.len() <= REBASE_SLACK + q.wheel.len() / 8 + 1);
    }
    assert!(q.wheel.len() > 9_000, "the wheel took the earlier entries");
    assert_eq!(q.next_deadline(), Some(t0));
    let order: Vec<u64> = std::iter::from_fn(|| {
        q.poll_expired(t0 + Duration::from_secs(3600))
            .map(|(_, v)| v)
    })
    .collect();
    assert_eq!(order, (0..=10_000).collect::<Vec<_>>());
}

/// A pool that checks out the connection it returned last (hyper-util's
/// LIFO order) leaves no stale schedule entries behind.
#[test]
fn lifo_removal_leaves_nothing_stale() {
    let t0 = Instant::now();
    let mut q = ExpiryQueue::new();
    for i in 0..1000 {
        q.insert(t0 + ms(i), i);
    }
    for i in 1000..5000 {
        // Both ahead of the wheel and within its current tick.
        for deadline in [i, 0] {
            let key = q.insert(t0 + ms(deadline), i);
            assert_eq!(q.remove(&key), Some(i));
            assert_eq!(q.scheduled(), q.len());
        }
    }
    assert_eq!(q.next_deadline(), Some(t0));
}
