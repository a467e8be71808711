//! When must a pooled connection be retired?
//!
//! A server closes an idle keep-alive connection once its own idle timer
//! fires. A client that reuses the connection at about that moment sends
//! its request into a closing socket and gets `connection reset by peer`,
//! an EOF, or hyper's `IncompleteMessage`, and often may not retry. The
//! cure is to retire each pooled connection a margin *before* the server's
//! idle deadline. This crate computes that deadline and keeps track of it:
//!
//! - [`KeepAlive`] parses the `Keep-Alive: timeout=5, max=100` header real
//!   servers send, and [`response_reuse`] applies the HTTP/1.0 and 1.1
//!   rules of `Connection` to say whether a response's connection may be
//!   reused at all.
//! - [`IdleEstimator`] keeps, per origin, the best estimate of the server's
//!   idle timeout (a user override, the advertised header, or learned from
//!   [`Evidence`] both ways: the closes the server performed, and the idle
//!   times connections survived) and derives the retire time
//!   `estimate − margin` ([`Margin`], from the path's [`Rtt`] and the
//!   driver's measured lateness). [`Lifetime`] adds an optional maximum
//!   lifetime with jitter.
//! - [`ExpiryQueue`] holds the deadlines of a whole pool: O(1) amortized
//!   insert, reset and remove on a timing wheel with an exact near heap,
//!   expiring earliest first and never early.
//! - [`Driver`] is the one tokio task per pool that sleeps until the next
//!   deadline and calls the pool's [`Expire`] implementation.
//!
//! Everything except the driver is sans-IO: time is passed in as an
//! argument, nothing reads the clock.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use freshpool_expiry::{EstimatorConfig, Evidence, ExpiryQueue, IdleEstimator, response_reuse};
//!
//! let now = Instant::now();
//! let mut origin = IdleEstimator::new(EstimatorConfig::default());
//! let mut idle = ExpiryQueue::new();
//!
//! // A response from Apache httpd arrives; its connection goes idle.
//! let reuse = response_reuse(false, [(&b"Keep-Alive"[..], &b"timeout=5, max=100"[..])]);
//! assert!(reuse.reusable);
//! if let Some(hint) = reuse.keep_alive {
//!     origin.observe(Evidence::KeepAlive(hint), now);
//! }
//! // With 1 ms of scheduling slack measured on the client:
//! let key = idle.insert(now + origin.retire_after(now, Duration::from_millis(1)), "conn-1");
//!
//! // Retired 1 ms before Apache would close it (the loopback round trip is
//! // not known yet, so the 1 ms floor applies).
//! assert_eq!(idle.next_deadline(), Some(now + Duration::from_millis(4999)));
//! assert_eq!(idle.poll_expired(now + Duration::from_secs(5)), Some((key, "conn-1")));
//! ```

mod driver;
mod estimator;
mod keep_alive;
mod lifetime;
mod margin;
mod queue;
pub mod trace;
mod tuning;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use driver::{Driver, Expire, now};
pub use estimator::{
    CloseKind, Estimate, EstimatorConfig, Evidence, Explanation, IdleEstimator, Source,
};
pub use keep_alive::{KeepAlive, Reuse, connection_has, response_reuse};
pub use lifetime::Lifetime;
pub use margin::{Margin, Rtt};
pub use queue::{ExpiryQueue, Key};
pub use tuning::Tuning;
