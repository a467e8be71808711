//! Shared driving code for the criterion benchmarks in `benches/benches/`.
//!
//! Every throughput bench runs the same way: a number of tasks, each
//! sending its share of the requests one after another over a client of
//! the kind under test, timed as a whole. Keeping that loop in one place
//! keeps the clients' figures comparable.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// Sends one request and reads its response to the end.
pub type Sender = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Runs `iters` requests split over `concurrency` tasks, each task sending
/// its share one after another with a sender from `make`, and returns the
/// wall time of the sending (making the senders is not timed).
pub async fn drive<F, Fut>(iters: u64, concurrency: u64, make: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = Sender>,
{
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        senders.push(make().await);
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut send) in senders.into_iter().enumerate() {
        let share = iters / concurrency + u64::from((i as u64) < iters % concurrency);
        tasks.spawn(async move {
            for _ in 0..share {
                send().await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("bench task");
    }
    start.elapsed()
}

/// The runtime every throughput bench runs on (two workers, as this
/// machine has two cores) and a keep-alive origin on it that never closes
/// an idle connection during a run.
pub fn runtime_with_origin() -> (tokio::runtime::Runtime, freshpool_origin::Origin) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let origin = rt
        .block_on(
            freshpool_origin::Origin::builder()
                .idle_timeout(Duration::from_secs(60))
                .start(),
        )
        .expect("origin");
    (rt, origin)
}
