//! Shared helpers: run the `poolbench` binary, parse its JSON, and start
//! servers to point it at.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

pub(crate) mod nginx;

use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use freshpool_origin::{Advertise, Origin};
use serde_json::Value;

/// Held by each test that runs a scenario in real time: one at a time,
/// so that no test's timing is disturbed by another's load on a small
/// machine.
static REAL_TIME: Mutex<()> = Mutex::new(());

/// Takes the real-time lock (a test that panicked while holding it does
/// not stop the others).
pub(crate) fn one_at_a_time() -> MutexGuard<'static, ()> {
    REAL_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `poolbench` with `args` and returns what it did.
pub(crate) fn poolbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_poolbench"))
        .args(args)
        .output()
        .expect("poolbench runs")
}

/// Runs `poolbench` with `args`, expects success, and parses its stdout
/// as JSON.
pub(crate) fn poolbench_json(args: &[&str]) -> Value {
    let output = poolbench(args);
    assert!(
        output.status.success(),
        "poolbench {args:?} failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "poolbench {args:?} printed no JSON ({e}):\n{}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// stderr as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A built-in origin on a runtime of its own, as a server in another
/// process would be.
pub(crate) struct OwnOrigin {
    /// The origin.
    pub(crate) origin: Origin,
    runtime: tokio::runtime::Runtime,
}

impl OwnOrigin {
    /// Starts an origin with this idle timeout and `Keep-Alive` header.
    pub(crate) fn start(idle: Duration, advertise: Advertise) -> OwnOrigin {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let origin = runtime
            .block_on(
                Origin::builder()
                    .idle_timeout(idle)
                    .advertise(advertise)
                    .start(),
            )
            .expect("origin starts");
        OwnOrigin { origin, runtime }
    }

    /// Stops the origin.
    pub(crate) fn shutdown(self) {
        let OwnOrigin { origin, runtime } = self;
        runtime.block_on(origin.shutdown());
    }
}

/// The client entry of a race or ablation JSON document, by id prefix.
pub(crate) fn client<'a>(doc: &'a Value, id_prefix: &str) -> &'a Value {
    doc["clients"]
        .as_array()
        .expect("clients")
        .iter()
        .find(|c| c["id_prefix"] == id_prefix)
        .unwrap_or_else(|| panic!("no client {id_prefix} in {doc:#}"))
}

/// `value` within `share` of `expected`.
pub(crate) fn within(value: f64, expected: f64, share: f64) -> bool {
    (value - expected).abs() <= expected * share
}
