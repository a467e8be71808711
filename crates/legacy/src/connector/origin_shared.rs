//! What the connections of one origin read without the connector's lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use freshpool_expiry::IdleEstimator;

/// What the connections of one origin read on every request, without the
/// lock: how long an idle connection may live, published by the estimator
/// whenever it changes, and the figures a connection compares its own
/// evidence with before it takes the lock to report it.
///
/// An estimate can also change by itself, as old evidence ages out; the
/// next report publishes again.
#[derive(Debug)]
pub(crate) struct OriginShared {
    retire_after_nanos: AtomicU64,
    /// How long a retired connection is watched for the server's close
    /// (see [`IdleEstimator::watch_after`]).
    watch_after_nanos: AtomicU64,
    /// The longest survival reported (the estimator's, when published).
    survived_nanos: AtomicU64,
    /// The smoothed round trip and its deviation, as last published.
    srtt_nanos: AtomicU64,
    rttvar_nanos: AtomicU64,
    /// The expiry driver's lateness the retire time was published with.
    slack_nanos: AtomicU64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl OriginShared {
    pub(super) fn new() -> OriginShared {
        OriginShared {
            retire_after_nanos: AtomicU64::new(0),
            watch_after_nanos: AtomicU64::new(0),
            survived_nanos: AtomicU64::new(0),
            srtt_nanos: AtomicU64::new(0),
            rttvar_nanos: AtomicU64::new(0),
            slack_nanos: AtomicU64::new(0),
        }
    }

    /// Whether the retire time was published with another lateness of the
    /// expiry driver than `slack`: a runtime turning busy must reach the
    /// retire times without waiting for other news.
    #[inline]
    pub(crate) fn published_with_other(&self, slack: Duration) -> bool {
        self.slack_nanos.load(Ordering::Relaxed) != nanos(slack)
    }

    #[inline]
    pub(crate) fn retire_after(&self) -> Duration {
        Duration::from_nanos(self.retire_after_nanos())
    }

    /// [`retire_after`](Self::retire_after) in nanoseconds.
    #[inline]
    pub(crate) fn retire_after_nanos(&self) -> u64 {
        self.retire_after_nanos.load(Ordering::Acquire)
    }

    /// How long after going idle a connection is watched for the server's
    /// close (at least [`retire_after`](Self::retire_after)).
    pub(crate) fn watch_after(&self) -> Duration {
        Duration::from_nanos(self.watch_after_nanos.load(Ordering::Acquire))
    }

    /// Whether a connection idle from `idle_since` that carried a request
    /// sent at `sent` survived longer than the estimator knows of: whether
    /// the survival would tell it something. (Compared as instants, so that
    /// the usual answer, no, costs no subtraction of instants.)
    #[inline]
    pub(crate) fn survival_is_news(&self, idle_since: Instant, sent: Instant) -> bool {
        let survived = Duration::from_nanos(self.survived_nanos.load(Ordering::Relaxed));
        idle_since
            .checked_add(survived)
            .is_some_and(|known| sent > known)
    }

    /// The published `(srtt, rttvar)`, in nanoseconds (`srtt` 0 while
    /// none is): what [`round_trip::Band`](crate::round_trip::Band) follows.
    #[inline]
    pub(crate) fn round_trip(&self) -> (u64, u64) {
        (
            self.srtt_nanos.load(Ordering::Relaxed),
            self.rttvar_nanos.load(Ordering::Relaxed),
        )
    }

    pub(super) fn publish(&self, estimator: &IdleEstimator, now: Instant, slack: Duration) {
        let retire = nanos(estimator.retire_after(now, slack));
        let watch = nanos(estimator.watch_after(now, slack));
        self.watch_after_nanos.store(watch, Ordering::Release);
        self.retire_after_nanos.store(retire, Ordering::Release);
        self.slack_nanos.store(nanos(slack), Ordering::Relaxed);
        let survived = estimator.survived(now).map_or(0, nanos);
        self.survived_nanos.store(survived, Ordering::Relaxed);
        if let Some(rtt) = estimator.measured_rtt() {
            self.srtt_nanos.store(nanos(rtt.srtt), Ordering::Relaxed);
            self.rttvar_nanos
                .store(nanos(rtt.rttvar), Ordering::Relaxed);
        }
    }
}
