//! What the pool learns about each origin's idle timeout, and how a lower
//! estimate reaches the connections already parked.
//!
//! Every piece of evidence goes through [`PoolShared::observe_in`], under
//! the pool's lock: the estimator ([`IdleEstimator::observe`](freshpool_expiry::IdleEstimator::observe)) weighs it,
//! and when the retire time went down, the origin's idle connections are
//! rescheduled at once instead of keeping the deadline they were parked
//! with. A request's measured round trip goes the same way
//! ([`PoolShared::round_trip_in`]): more jitter is a wider margin.

use std::time::{Duration, Instant};

use freshpool_expiry::{CloseKind, Evidence, ExpiryQueue, IdleEstimator, KeepAlive};
use freshpool_probe::Liveness;

use super::{Dead, Expiring, Idle, OriginKey, OriginState, PoolShared, now, unschedule};
use crate::stats::Event;

/// What one response taught about its origin, carried to check-in so that
/// it costs no lock of its own.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Learned {
    /// The response's `Keep-Alive` hint, if it had a timeout.
    pub(crate) hint: Option<KeepAlive>,
    /// The request reused a connection idle this long, and got its
    /// response: the server keeps idle connections longer.
    pub(crate) survived: Option<Duration>,
}

impl Learned {
    pub(crate) fn is_empty(&self) -> bool {
        self.hint.is_none() && self.survived.is_none()
    }

    fn evidence(self) -> impl Iterator<Item = Evidence> {
        let hint = self.hint.map(Evidence::KeepAlive);
        hint.into_iter()
            .chain(self.survived.map(Evidence::Survived))
    }
}

/// How far away "never" is, when a retire time overflows an `Instant`.
pub(super) const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// How often an origin takes a measured round trip that is no news, so
/// that the smoothed figures keep following the path.
const ROUND_TRIP_REFRESH: Duration = Duration::from_secs(1);

impl<B> PoolShared<B> {
    /// Records `evidence` about `origin`'s server. Returns the earliest
    /// deadline it gave an idle connection, for the driver; `now` after a
    /// server's close, so that the driver wakes at once and measures its
    /// lateness (see [`Driver::calibrate`](freshpool_expiry::Driver::calibrate)):
    /// the close was read as late as the runtime runs.
    pub(super) fn observe_in(
        &self,
        origin: &mut OriginState<B>,
        queue: &mut ExpiryQueue<Expiring>,
        key: &OriginKey,
        evidence: Evidence,
        now: Instant,
    ) -> Option<Instant> {
        if origin.estimator.config().tuning.is_server_close(&evidence) {
            origin.counters.bump(Event::ServerClose);
        }
        self.learn_in(origin, queue, key, evidence, now)
    }

    /// [`observe_in`](Self::observe_in) without counting a server close:
    /// for the close of a connection retired already (and counted so),
    /// while it was watched for it.
    fn learn_in(
        &self,
        origin: &mut OriginState<B>,
        queue: &mut ExpiryQueue<Expiring>,
        key: &OriginKey,
        evidence: Evidence,
        now: Instant,
    ) -> Option<Instant> {
        if matches!(evidence, Evidence::KeepAlive(_)) && !self.config.keep_alive_hints {
            return None;
        }
        let tuning = &origin.estimator.config().tuning;
        let calibrate = tuning.is_server_close(&evidence).then_some(now);
        // Most responses only confirm what the estimator knows.
        if !origin.estimator.is_news(&evidence, now) {
            return None;
        }
        let moved = self.reestimate(origin, queue, key, now, |estimator| {
            let Some(estimate) = estimator.observe(evidence, now) else {
                return false;
            };
            tracing::debug!(
                origin = %key,
                ?evidence,
                estimate = ?estimate.timeout,
                source = %estimate.source,
                why = %estimator.explain(now),
                "idle timeout estimate changed"
            );
            true
        });
        moved.into_iter().chain(calibrate).min()
    }

    /// Applies `change` to `origin`'s estimator (`false`: it changed
    /// nothing). When that brought the retire time down, the parked
    /// connections move to the earlier time wherever it is earlier than
    /// the one they were parked with; returns the earliest new deadline,
    /// for the driver.
    fn reestimate(
        &self,
        origin: &mut OriginState<B>,
        queue: &mut ExpiryQueue<Expiring>,
        key: &OriginKey,
        now: Instant,
        change: impl FnOnce(&mut IdleEstimator) -> bool,
    ) -> Option<Instant> {
        let slack = self.slack();
        let before = origin.estimator.retire_after(now, slack);
        if !change(&mut origin.estimator) {
            return None;
        }
        let after = origin.estimator.retire_after(now, slack);
        if after >= before {
            return None;
        }
        self.retire_parked_earlier(origin, queue, key, now)
    }

    /// Moves `origin`'s parked connections to the retire (and watch) times
    /// of the current figures wherever those are earlier than the ones
    /// they were parked with; returns the earliest new deadline, for the
    /// driver.
    pub(super) fn retire_parked_earlier(
        &self,
        origin: &mut OriginState<B>,
        queue: &mut ExpiryQueue<Expiring>,
        key: &OriginKey,
        now: Instant,
    ) -> Option<Instant> {
        let slack = self.slack();
        let after = origin.estimator.retire_after(now, slack);
        let watch = origin.estimator.watch_after(now, slack);
        let mut earliest: Option<Instant> = None;
        for idle in origin.idle.iter_mut() {
            let at = idle.since.checked_add(after).unwrap_or(now + FAR);
            if at >= idle.retire_at {
                continue;
            }
            // Retired from now, not from a past it was not retired in: a
            // close read before now is still the server's.
            let at = at.max(now);
            idle.retire_at = at;
            let until = idle.since.checked_add(watch).unwrap_or(now + FAR);
            let at = until.min(idle.watch_until).max(at);
            idle.watch_until = at;
            unschedule(queue, &mut idle.conn);
            let entry = queue.insert(
                at,
                Expiring {
                    origin: key.clone(),
                    id: idle.conn.id,
                },
            );
            idle.conn.set_expiry(Some((entry, at)));
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        }
        earliest
    }

    /// Applies what a response taught; see [`observe_in`](Self::observe_in).
    pub(super) fn learn_from(
        &self,
        origin: &mut OriginState<B>,
        queue: &mut ExpiryQueue<Expiring>,
        key: &OriginKey,
        learned: Learned,
        now: Instant,
    ) -> Option<Instant> {
        learned
            .evidence()
            .filter_map(|evidence| self.observe_in(origin, queue, key, evidence, now))
            .min()
    }

    /// Takes a request's measured round trip (see
    /// [`ConnState::take_round_trip`](crate::io::ConnState::take_round_trip))
    /// into the origin's margin when it is news to the estimator, and once
    /// per [`ROUND_TRIP_REFRESH`] otherwise: most responses change nothing
    /// and cost no recomputation of the retire time.
    ///
    /// When more jitter makes the margin longer, the connections already
    /// parked move to the earlier retire time at once, as for a lower
    /// estimate. Returns the earliest deadline that gave, for the driver.
    pub(super) fn round_trip_in(
        &self,
        origin: &mut OriginState<B>,
        queue: &mut ExpiryQueue<Expiring>,
        key: &OriginKey,
        sample: Duration,
        now: Instant,
    ) -> Option<Instant> {
        let stale = origin.round_trip_refresh_at.is_none_or(|at| now >= at);
        if !(stale || origin.estimator.round_trip_is_news(sample)) {
            return None;
        }
        origin.round_trip_refresh_at = now.checked_add(ROUND_TRIP_REFRESH);
        self.reestimate(origin, queue, key, now, |estimator| {
            estimator.observe_round_trip(sample);
            true
        })
    }

    /// The scheduling slack the margin covers: how late the expiry driver
    /// has been waking, a measure of how busy the runtime is.
    pub(super) fn slack(&self) -> Duration {
        self.driver.lateness()
    }

    /// Reports how long a connection whose watch ended without a close it
    /// read had survived: up to the probe that finds it open, or, if the
    /// probe finds the server's close, up to its retire time (the close
    /// came after that, unread: it bounds nothing). Called outside the
    /// lock, as every probe is. Returns a deadline for the driver, as
    /// [`observe_in`](Self::observe_in) does.
    ///
    /// The probe is what lets a watch refute an estimate too low (see
    /// [`IdleEstimator::watch_after`]): the survival it proves reaches
    /// past the estimate.
    pub(super) fn watched_survival(&self, key: &OriginKey, idle: &Idle<B>) -> Option<Instant> {
        let liveness = idle.conn.probe.probe();
        let now = now();
        let until = if liveness.is_reusable() {
            now
        } else {
            idle.retire_at
        };
        let idle_for = until.saturating_duration_since(idle.since);
        tracing::debug!(
            origin = %key,
            id = idle.conn.id,
            ?idle_for,
            %liveness,
            "retired idle connection before the server's deadline"
        );
        let mut guard = self.lock();
        let state = &mut *guard;
        let origin = state.origins.get_mut(key)?;
        let evidence = Evidence::Survived(idle_for);
        self.observe_in(origin, &mut state.queue, key, evidence, now)
    }

    /// What the close `idle`'s connection read says, if it read one (`None`
    /// otherwise): a server close if it came before the retire time, and
    /// from then on one the pool watched for (see [`Idle::watch_until`]),
    /// counted as retired. Returns a deadline for the driver, as
    /// [`observe_in`](Self::observe_in) does.
    pub(super) fn learn_from_close(
        &self,
        origin: &mut OriginState<B>,
        queue: &mut ExpiryQueue<Expiring>,
        key: &OriginKey,
        idle: &Idle<B>,
        now: Instant,
    ) -> Option<Option<Instant>> {
        let (at, kind) = idle.conn.state.closed()?;
        let evidence = Evidence::Closed {
            idle_for: at.saturating_duration_since(idle.since),
            kind,
        };
        if at < idle.retire_at {
            return Some(self.observe_in(origin, queue, key, evidence, now));
        }
        origin.counters.bump(Event::RetiredByExpiry);
        tracing::debug!(
            origin = %key,
            id = idle.conn.id,
            ?evidence,
            "the server closed a retired idle connection while it was watched"
        );
        Some(self.learn_in(origin, queue, key, evidence, now))
    }

    /// Records why an idle connection died, and what that says about the
    /// server's idle timeout.
    pub(super) fn bury(
        &self,
        origin: &mut OriginState<B>,
        queue: &mut ExpiryQueue<Expiring>,
        key: &OriginKey,
        idle: &Idle<B>,
        why: Dead,
        now: Instant,
    ) -> Option<Instant> {
        let evidence = match why {
            Dead::Expired => {
                origin.counters.bump(Event::RetiredByExpiry);
                tracing::debug!(
                    origin = %key,
                    id = idle.conn.id,
                    "retired idle connection at checkout"
                );
                // Still open after idling until its retire time. (Not
                // later: past it, a close may have arrived unread.)
                Evidence::Survived(
                    idle.retire_at
                        .min(now)
                        .saturating_duration_since(idle.since),
                )
            }
            // hyper saw the connection end; only a close its IO read
            // says something about the server.
            Dead::Closed => return self.learn_from_close(origin, queue, key, idle, now)?,
            Dead::Probe(liveness) => {
                origin.counters.bump(Event::ProbeRejected(liveness));
                tracing::debug!(
                    origin = %key,
                    id = idle.conn.id,
                    %liveness,
                    "probe rejected idle connection"
                );
                if let Some(wake) = self.learn_from_close(origin, queue, key, idle, now) {
                    return wake;
                }
                // Found only now: it closed at some point before.
                Evidence::ClosedWithin {
                    idle_for: now.saturating_duration_since(idle.since),
                    kind: match liveness {
                        Liveness::Reset => CloseKind::Reset,
                        Liveness::Unexpected => CloseKind::Unexpected,
                        _ => CloseKind::Fin,
                    },
                }
            }
        };
        self.observe_in(origin, queue, key, evidence, now)
    }
}
