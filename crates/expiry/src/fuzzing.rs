//! Fuzz harnesses, shared by the `fuzz/` targets (libFuzzer, nightly) and
//! by `tests/fuzz_corpus.rs`, which replays the committed corpus and a
//! bounded number of pseudo-random inputs on stable.
//!
//! Each harness panics when it finds a bug; it never panics otherwise.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use freshpool_testkit::XorShift;

use crate::{ExpiryQueue, KeepAlive, Key, response_reuse};

/// `KeepAlive::parse` never panics, keeps its clamp, and round-trips what
/// it accepts; `response_reuse` never panics and is consistent with it.
pub fn keep_alive(data: &[u8]) {
    if let Some(hint) = KeepAlive::parse(data) {
        assert!(hint.timeout.is_some() || hint.max.is_some());
        if let Some(timeout) = hint.timeout {
            assert!((KeepAlive::MIN_TIMEOUT..=KeepAlive::MAX_TIMEOUT).contains(&timeout));
            assert_eq!(timeout.subsec_nanos(), 0);
        }
        let written = hint.to_string();
        assert_eq!(
            KeepAlive::parse(written.as_bytes()),
            Some(hint),
            "{written}"
        );
    }

    // The same bytes as a header block: `name:value` lines.
    let http10 = data.first().is_some_and(|b| b & 1 == 1);
    let headers =
        data.split(|&b| b == b'\n')
            .map(|line| match line.iter().position(|&b| b == b':') {
                Some(colon) => (&line[..colon], &line[colon + 1..]),
                None => (line, &[][..]),
            });
    let reuse = response_reuse(http10, headers);
    if let Some(hint) = reuse.keep_alive {
        assert!(!reuse.reusable || hint.permits_reuse());
    }
}

/// Runs an operation sequence decoded from `data` against an
/// [`ExpiryQueue`] and a model (a sorted set plus a key map), and checks
/// that they agree after every step.
pub fn expiry_queue(data: &[u8]) {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let mut queue = ExpiryQueue::new();
    let mut model = Model::default();
    let mut issued: Vec<Key> = Vec::new();
    let mut now: u64 = 0;
    let mut next_id: u64 = 0;

    let mut bytes = data.iter().copied();
    while let Some(op) = bytes.next() {
        let arg = bytes.next().unwrap_or(0);
        let pick = |issued: &[Key]| issued.get(usize::from(arg) % issued.len().max(1)).copied();
        // Resets are frequent so that stale schedule entries pile up and
        // the schedule gets compacted.
        match op % 8 {
            0 | 1 => {
                let deadline = (now + u64::from(arg) * 2).saturating_sub(32);
                let id = next_id;
                next_id += 1;
                let key = queue.insert(at(deadline), id);
                assert!(
                    !model.by_key.contains_key(&key),
                    "a live key was handed out twice"
                );
                model.insert(key, deadline, id);
                issued.push(key);
            }
            2..=4 => {
                let deadline = now + u64::from(bytes.next().unwrap_or(0)) * 3;
                if let Some(key) = pick(&issued) {
                    let live = model.remove(&key);
                    assert_eq!(queue.reset(&key, at(deadline)), live.is_some());
                    if let Some((_, id)) = live {
                        model.insert(key, deadline, id);
                    }
                }
            }
            5 => {
                if let Some(key) = pick(&issued) {
                    let expected = model.remove(&key).map(|(_, id)| id);
                    assert_eq!(queue.remove(&key), expected);
                    assert!(!queue.contains(&key));
                }
            }
            6 => {
                now += u64::from(arg);
                while poll_once(&mut queue, &mut model, now, at(now)) {}
            }
            _ => {
                poll_once(&mut queue, &mut model, now, at(now));
            }
        }
        assert_eq!(queue.len(), model.by_key.len());
        assert_eq!(
            queue.next_deadline(),
            model.sorted.first().map(|&(d, _)| at(d))
        );
        if issued.len() > 4096 {
            issued.drain(..2048);
        }
    }
    queue.clear();
    assert!(issued.iter().all(|key| !queue.contains(key)));
}

/// One `poll_expired`, checked against the model. Returns whether an entry
/// expired.
fn poll_once(queue: &mut ExpiryQueue<u64>, model: &mut Model, now: u64, now_at: Instant) -> bool {
    let earliest = model.sorted.first().map(|&(d, _)| d);
    match queue.poll_expired(now_at) {
        Some((key, id)) => {
            let (deadline, model_id) = model.remove(&key).expect("expired a key the model lacks");
            assert_eq!(id, model_id);
            assert!(deadline <= now, "expired early");
            assert_eq!(Some(deadline), earliest, "not the earliest entry");
            assert!(!queue.contains(&key), "an expired key stays live");
            true
        }
        None => {
            assert!(
                earliest.is_none_or(|d| d > now),
                "a due entry did not expire"
            );
            false
        }
    }
}

#[derive(Default)]
struct Model {
    sorted: BTreeSet<(u64, u64)>,
    by_key: HashMap<Key, (u64, u64)>,
}

impl Model {
    fn insert(&mut self, key: Key, deadline: u64, id: u64) {
        self.sorted.insert((deadline, id));
        self.by_key.insert(key, (deadline, id));
    }

    fn remove(&mut self, key: &Key) -> Option<(u64, u64)> {
        let entry = self.by_key.remove(key)?;
        self.sorted.remove(&entry);
        Some(entry)
    }
}

/// Seed inputs for the `keep_alive` target: real header values (Apache,
/// Node, IIS), edge cases and malformed ones.
pub fn keep_alive_seeds() -> Vec<Vec<u8>> {
    let values: &[&[u8]] = &[
        b"timeout=5, max=100",
        b"timeout=5, max=99",
        b"timeout=15, max=100",
        b"timeout=5",
        b"timeout=5, max=1000",
        b"timeout=120",
        b"timeout=0",
        b"Timeout=5, MAX=7",
        b"  timeout = 5 ,\tmax\t=\t7  ",
        b"timeout=\"5\", max=\"7\"",
        b"timeout=\"\\5\"",
        b"timeout=5;max=7",
        b"foo=bar, timeout=5, baz",
        b"x=\"a, timeout=1\", timeout=9",
        b"timeout=5, timeout=3",
        b"max=9, max=4, max=6",
        b"timeout=-5",
        b"timeout=5.5",
        b"timeout=",
        b"timeout=\"5",
        b"timeout=18446744073709551616",
        b"timeout=18446744073709551615",
        b"timeout=3601",
        b"max=4294967296",
        b"max=0",
        b"timeout=\xff\xfe",
        b"",
        b",,,;;;===\"\"\"\\\\",
        b"Connection: keep-alive\nKeep-Alive: timeout=5, max=100",
        b"\x01Connection: Keep-Alive\nKeep-Alive: timeout=5",
        b"Connection: close\nKeep-Alive: timeout=5",
        b"Keep-Alive: timeout=10, max=3\nkeep-alive: timeout=4, max=0",
        b"\x01Server: Microsoft-IIS/6.0\nConnection: Keep-Alive",
    ];
    values.iter().map(|v| v.to_vec()).collect()
}

/// Seed inputs for the `expiry_queue` target: a few hand-written sequences
/// and pseudo-random ones from a fixed seed.
pub fn expiry_queue_seeds() -> Vec<Vec<u8>> {
    let mut seeds: Vec<Vec<u8>> = vec![
        // insert, insert, poll all after 255 ms.
        vec![0, 10, 1, 5, 6, 255],
        // insert, reset earlier, remove, stale remove.
        vec![0, 100, 2, 0, 0, 5, 0, 5, 0],
        // many inserts at the same deadline, then drain.
        [0u8, 7].repeat(40).into_iter().chain([6, 255]).collect(),
        // insert in the past, single polls.
        vec![0, 0, 7, 0, 7, 0],
        // a few entries reset over and over: forces schedule compaction.
        (0..24u8)
            .flat_map(|i| [0, i * 5])
            .chain((0..600u32).flat_map(|i| [2, (i % 24) as u8, (i * 37 % 101) as u8]))
            .chain([6, 255, 6, 255])
            .collect(),
    ];
    let mut rng = XorShift::star(0x5EED_F00D);
    for len in (8..200).step_by(7) {
        seeds.push((0..len).map(|_| rng.next_u64() as u8).collect());
    }
    seeds
}
