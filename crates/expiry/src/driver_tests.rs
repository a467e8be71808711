use freshpool_testkit::XorShift;

use super::*;
use crate::ExpiryQueue;

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A pool stand-in: one lock around the queue, a log of what expired.
struct Owner {
    queue: Mutex<ExpiryQueue<u32>>,
    /// `(id, deadline, expired at)`.
    fired: Mutex<Vec<(u32, Instant, Instant)>>,
    driver: Driver,
}

impl Owner {
    fn new() -> Arc<Self> {
        Arc::new(Owner {
            queue: Mutex::new(ExpiryQueue::new()),
            fired: Mutex::new(Vec::new()),
            driver: Driver::new(),
        })
    }

    fn insert(self: &Arc<Self>, id: u32, deadline: Instant) {
        self.queue.lock().unwrap().insert(deadline, id);
        self.driver.schedule(self, deadline);
    }

    fn fired(&self) -> Vec<u32> {
        self.fired.lock().unwrap().iter().map(|f| f.0).collect()
    }
}

impl Expire for Owner {
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut queue = self.queue.lock().unwrap();
        let mut fired = self.fired.lock().unwrap();
        loop {
            let deadline = queue.next_deadline()?;
            if deadline > now {
                return Some(deadline);
            }
            let (_, id) = queue.poll_expired(now).unwrap();
            fired.push((id, deadline, now));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn fires_each_entry_once_in_order_not_before_its_deadline() {
    let owner = Owner::new();
    let t0 = now();
    let mut rng = XorShift::from_state(0x2545_F491_4F6C_DD1D);
    for id in 0..200 {
        owner.insert(id, t0 + ms(500 + rng.next_u64() % 10_000));
        // Some inserts arrive while the task is already sleeping.
        if id % 50 == 49 {
            tokio::time::sleep(ms(100)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(11)).await;

    let fired = owner.fired.lock().unwrap().clone();
    let mut ids: Vec<u32> = fired.iter().map(|f| f.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..200).collect::<Vec<_>>(), "each entry exactly once");
    for pair in fired.windows(2) {
        assert!(pair[0].1 <= pair[1].1, "in deadline order");
    }
    for &(id, deadline, at) in &fired {
        assert!(at >= deadline, "entry {id} expired before its deadline");
        assert!(
            at.saturating_duration_since(deadline) <= ms(2),
            "entry {id} expired late"
        );
    }
    // Nothing left: the task ended by itself.
    assert!(!owner.driver.is_running());
}

#[tokio::test(start_paused = true)]
async fn an_earlier_deadline_wakes_the_sleeping_task() {
    let owner = Owner::new();
    let t0 = now();
    owner.insert(1, t0 + Duration::from_secs(60));
    tokio::time::sleep(ms(10)).await;
    owner.insert(2, t0 + ms(500));
    tokio::time::sleep_until((t0 + ms(499)).into()).await;
    assert!(owner.fired().is_empty());
    tokio::time::sleep_until((t0 + ms(502)).into()).await;
    assert_eq!(owner.fired(), [2]);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(owner.fired(), [2, 1]);
}

#[tokio::test(start_paused = true)]
async fn calibrate_measures_how_late_the_runtime_runs_now() {
    let owner = Owner::new();
    let t0 = now();
    owner.insert(1, t0 + Duration::from_secs(60));
    tokio::time::sleep(ms(10)).await;
    assert_eq!(owner.driver.lateness(), INITIAL_LATENESS);
    // The runtime runs 8 ms behind the calibration's wake.
    owner.driver.calibrate(&owner);
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    tokio::time::advance(ms(9)).await;
    for _ in 0..4 {
        tokio::task::yield_now().await;
    }
    let late = owner.driver.lateness();
    assert!(late >= ms(7) && late <= ms(9), "{late:?}");
    // The wake moved no deadline.
    assert!(owner.fired().is_empty());
    tokio::time::sleep_until((t0 + Duration::from_secs(61)).into()).await;
    assert_eq!(owner.fired(), [1]);
}

#[tokio::test(start_paused = true)]
async fn restarts_after_running_dry() {
    let owner = Owner::new();
    owner.insert(1, now() + ms(100));
    tokio::time::sleep(ms(200)).await;
    assert_eq!(owner.fired(), [1]);
    assert!(!owner.driver.is_running());

    owner.insert(2, now() + ms(100));
    assert!(owner.driver.is_running());
    tokio::time::sleep(ms(200)).await;
    assert_eq!(owner.fired(), [1, 2]);
}

#[tokio::test(start_paused = true)]
async fn holds_only_a_weak_reference_and_stops_when_the_owner_is_dropped() {
    let owner = Owner::new();
    owner.insert(1, now() + Duration::from_secs(3600));
    tokio::task::yield_now().await;
    assert!(owner.driver.is_running());
    assert_eq!(
        Arc::strong_count(&owner),
        1,
        "the sleeping task keeps no strong reference"
    );

    let shared = Arc::clone(&owner.driver.shared);
    drop(owner);
    // Dropping the owner drops its `Driver`, which wakes the task at once:
    // no need to wait for the hour-long deadline.
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    assert!(!shared.lock().running);
    assert_eq!(Arc::strong_count(&shared), 1, "the task is gone");
}

/// An owner that does not store the driver.
struct Detached(Mutex<ExpiryQueue<u32>>);

impl Expire for Detached {
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut queue = self.0.lock().unwrap();
        while queue.poll_expired(now).is_some() {}
        queue.next_deadline()
    }
}

#[tokio::test(start_paused = true)]
async fn stops_at_its_next_wake_when_the_owner_is_gone() {
    let driver = Driver::new();
    let owner = Arc::new(Detached(Mutex::new(ExpiryQueue::new())));
    let deadline = now() + Duration::from_secs(5);
    owner.0.lock().unwrap().insert(deadline, 1);
    driver.schedule(&owner, deadline);
    tokio::task::yield_now().await;
    let weak = Arc::downgrade(&owner);
    drop(owner);
    assert!(
        weak.upgrade().is_none(),
        "the driver did not keep the owner alive"
    );
    assert!(driver.is_running());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(!driver.is_running());
}

#[test]
fn schedule_outside_a_runtime_does_not_panic() {
    let owner = Owner::new();
    let deadline = Instant::now();
    owner.insert(1, deadline);
    assert!(!owner.driver.is_running());

    // The next schedule inside a runtime starts the task; the first
    // deadline was remembered and expires too.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        owner.insert(2, now() + ms(10));
        tokio::time::sleep(ms(20)).await;
    });
    assert_eq!(owner.fired(), [1, 2]);
}

#[test]
fn runtime_shutdown_lets_the_next_runtime_restart_the_task() {
    let owner = Owner::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        owner.insert(1, now() + Duration::from_secs(3600));
        tokio::task::yield_now().await;
    });
    assert!(owner.driver.is_running());
    drop(rt);
    assert!(
        !owner.driver.is_running(),
        "the task's guard noticed the shutdown"
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        owner.insert(2, now() + ms(10));
        tokio::time::sleep(ms(20)).await;
    });
    assert_eq!(owner.fired(), [2]);
}
