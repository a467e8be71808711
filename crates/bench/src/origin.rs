//! The built-in origin, on a runtime of its own.
//!
//! Timers of one tokio runtime fire on shared millisecond ticks: an origin
//! on the clients' runtime would close idle connections on the very ticks
//! the clients wake up on, and make the race far more frequent than
//! against a server in another process. So the origin gets its own
//! runtime and thread, as `crates/origin/examples/race_baseline.rs` does.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use freshpool_origin::{Advertise, CloseMode, Origin};
use tokio::runtime::Runtime;

/// A running built-in origin and the runtime that serves it.
#[derive(Debug)]
pub(crate) struct BuiltIn {
    origin: Origin,
    runtime: Runtime,
}

impl BuiltIn {
    /// Starts an origin on 127.0.0.1 with this idle timeout and close.
    pub(crate) fn start(
        idle: Duration,
        close: CloseMode,
        advertise: Advertise,
    ) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("poolbench-origin")
            .enable_all()
            .build()?;
        let origin = runtime.block_on(
            Origin::builder()
                .idle_timeout(idle)
                .close_mode(close)
                .advertise(advertise)
                .start(),
        )?;
        Ok(BuiltIn { origin, runtime })
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn base_url(&self) -> String {
        self.origin.base_url()
    }

    /// Extra processings per client, from the origin's exactly-once
    /// counters: request ids are `CLIENT.SENDER.N`, so each id processed
    /// `k > 1` times counts `k - 1` for `CLIENT`.
    pub(crate) fn duplicates_by_client(&self) -> BTreeMap<String, u64> {
        let mut by_client = BTreeMap::new();
        for (id, count) in self.origin.duplicates() {
            let client = id.split('.').next().unwrap_or_default().to_owned();
            *by_client.entry(client).or_insert(0) += u64::from(count.saturating_sub(1));
        }
        by_client
    }

    /// Closes every idle connection at once (see [`Origin::close_idle`]).
    pub(crate) fn close_idle(&self) {
        self.origin.close_idle();
    }

    /// Replaces the idle timeout, or restores it with `None` (see
    /// [`Origin::set_idle_timeout`]).
    pub(crate) fn set_idle_timeout(&self, timeout: Option<Duration>) {
        self.origin.set_idle_timeout(timeout);
    }

    /// The idle timeout in force.
    pub(crate) fn idle_timeout(&self) -> Duration {
        self.origin.idle_timeout()
    }

    /// Idle connections closed by [`BuiltIn::close_idle`] so far.
    pub(crate) fn idle_closes_ordered(&self) -> u64 {
        self.origin.stats().idle_closes_ordered
    }

    /// Requests processed in total.
    pub(crate) fn processed(&self) -> u64 {
        self.origin.stats().requests_processed
    }

    /// Stops the origin and waits for its tasks.
    pub(crate) fn shutdown(self) {
        let BuiltIn { origin, runtime } = self;
        runtime.block_on(origin.shutdown());
    }
}
