use super::*;

#[derive(Debug, PartialEq)]
struct Entry(u64);

impl Parked for Entry {
    fn id(&self) -> u64 {
        self.0
    }
}

fn ids(list: &mut IdleList<Entry>) -> Vec<u64> {
    list.iter_mut().map(|e| e.0).collect()
}

#[test]
fn latest_first_and_found_by_id() {
    let mut list = IdleList::default();
    for id in 1..=5 {
        list.push(Entry(id));
    }
    assert_eq!(list.remove(3), Some(Entry(3)));
    assert_eq!(list.remove(3), None);
    assert_eq!(list.get_mut(4).map(|e| e.0), Some(4));
    assert_eq!(ids(&mut list), [1, 2, 4, 5]);
    assert_eq!(list.pop_latest(), Some(Entry(5)));
    // A hole below the top is skipped, never handed out.
    assert_eq!(list.remove(4), Some(Entry(4)));
    assert_eq!(list.pop_latest(), Some(Entry(2)));
    // Parked again: it becomes the latest.
    list.push(Entry(1));
    list.push(Entry(7));
    list.push(Entry(1));
    assert_eq!(ids(&mut list), [7, 1]);
    assert_eq!(list.len(), 2);
    assert_eq!(list.pop_latest(), Some(Entry(1)));
    assert_eq!(list.pop_latest(), Some(Entry(7)));
    assert_eq!(list.pop_latest(), None);
    assert_eq!(list.len(), 0);
}

/// Issue 11 item 8: taking connections out by id (as the expiry driver and
/// the end of a connection's task do) must not scan the list. A burst of
/// 20,000 idle connections retired in an order unrelated to their parking
/// takes O(n) steps in all; a list scanned per removal takes O(n²)
/// (200 million here).
#[test]
fn removing_a_burst_in_any_order_is_linear() {
    const N: u64 = 20_000;
    let mut list = IdleList::default();
    for id in 0..N {
        list.push(Entry(id));
    }
    // A fixed permutation: 7919 is prime, so coprime to N.
    for i in 0..N {
        let id = (i * 7919) % N;
        assert_eq!(list.remove(id), Some(Entry(id)), "connection {id}");
    }
    assert_eq!(list.len(), 0);
    assert!(
        list.steps <= 4 * N as usize,
        "{} steps for {N} removals",
        list.steps
    );
    // And an emptied list gives back what the burst grew.
    assert!(list.slots.capacity() <= KEEP_CAPACITY);
    assert!(list.place.is_none());
}

#[test]
fn compaction_keeps_the_order() {
    let mut list = IdleList::default();
    for id in 0..100 {
        list.push(Entry(id));
    }
    for id in (0..90).filter(|id| id % 3 != 0) {
        list.remove(id);
    }
    let expected: Vec<u64> = (0..100).filter(|id| id % 3 == 0 || *id >= 90).collect();
    assert_eq!(ids(&mut list), expected);
    assert!(list.slots.len() < 100, "holes compacted");
    let mut popped = Vec::new();
    while let Some(e) = list.pop_latest() {
        popped.push(e.0);
    }
    assert_eq!(popped, expected.into_iter().rev().collect::<Vec<_>>());
}

#[test]
fn short_lists_scan_and_long_ones_keep_a_map_until_empty() {
    let mut list = IdleList::default();
    for id in 0..SCAN as u64 {
        list.push(Entry(id));
    }
    assert!(list.place.is_none(), "{SCAN} slots are scanned");
    list.push(Entry(100));
    assert!(list.place.is_some(), "past {SCAN} slots, ids are mapped");
    // Found by id through the map, holes and all.
    assert_eq!(list.remove(3), Some(Entry(3)));
    assert_eq!(list.get_mut(100).map(|e| e.0), Some(100));
    assert_eq!(list.len(), SCAN);
    while list.pop_latest().is_some() {}
    assert!(list.place.is_none(), "an emptied list drops its map");
    list.push(Entry(7));
    list.push(Entry(8));
    assert_eq!(list.remove(7), Some(Entry(7)));
    assert_eq!(ids(&mut list), [8]);
}
