//! When a connection of the origin stops being reused, and how long after
//! that a pool keeps watching it for the server's close.

use std::time::{Duration, Instant};

use super::{IdleEstimator, Source};

/// The [`retire_after`](IdleEstimator::retire_after) and
/// [`watch_after`](IdleEstimator::watch_after) answers for `slack`, which
/// hold from `from` until `until` (forever: `None`) unless the estimator
/// learns something.
#[derive(Debug, Clone, Copy)]
pub(super) struct Memo {
    slack: Duration,
    from: Instant,
    until: Option<Instant>,
    retire: Duration,
    watch: Duration,
}

impl IdleEstimator {
    /// How long a connection of this origin may stay idle before it must
    /// be retired, given the client's measured scheduling `slack` (see
    /// [`Margin`](crate::Margin)).
    ///
    /// For a server-side estimate this is `estimate − margin` (zero when
    /// that is shorter than the margin itself), with the wider
    /// [lone-close margin](crate::Margin::for_lone_close) while a learned
    /// estimate rests on one close; for [`Source::Default`] it is the
    /// client's own timeout with no margin, since that deadline is ours,
    /// not the server's. Either way it never exceeds the client's own
    /// [`default_timeout`](crate::EstimatorConfig::default_timeout).
    pub fn retire_after(&self, now: Instant, slack: Duration) -> Duration {
        self.answers(now, slack).retire
    }

    /// How long a connection retired for idleness may still be kept open,
    /// not reused, to see whether the server closes it: until
    /// `estimate + margin` for an advertised estimate, `estimate + margin +`
    /// [`refute_span`](crate::Tuning::refute_span) for a learned one, and
    /// no longer than
    /// [`retire_after`](Self::retire_after) for the client's own default or
    /// the user's override.
    ///
    /// A learned estimate below the server's real timeout would otherwise
    /// lock itself out: every connection is retired before the server
    /// closes it, so no survival above the estimate is ever seen. Watched
    /// this long, the first connection retired under such an estimate
    /// survives past it by more than [`agree`](crate::Tuning::agree) allows, which
    /// refutes it: a wrong estimate meets its refutation within one
    /// `watch_after` of a connection going idle, and no request is at
    /// risk, since a watched connection carries none.
    ///
    /// A pool that retires every connection before the server closes it
    /// never sees the server's timer again after the close it learned
    /// from, and one close is a noisy reading of it (see
    /// [`Margin::for_lone_close`](crate::Margin::for_lone_close)). A
    /// connection nobody reuses past its retire time costs nothing to keep
    /// a little longer, and its close is the second reading. A pool that
    /// does so must hand no request to such a connection, and must report
    /// its close as [`Evidence::Closed`](crate::Evidence::Closed) only if
    /// it read the close as it arrived.
    pub fn watch_after(&self, now: Instant, slack: Duration) -> Duration {
        self.answers(now, slack).watch
    }

    fn answers(&self, now: Instant, slack: Duration) -> Memo {
        if let Some(memo) = self.memo.get()
            && memo.slack == slack
            && memo.from <= now
            && memo.until.is_none_or(|until| now < until)
        {
            return memo;
        }
        let (retire, watch) = self.compute(now, slack);
        let memo = Memo {
            slack,
            from: now,
            until: self.unchanged_until(now),
            retire,
            watch,
        };
        self.memo.set(Some(memo));
        memo
    }

    /// Until when nothing the estimate rests on at `now` ages out (`None`:
    /// never). Time changes the estimate only that way: evidence stops
    /// counting once it is older than its time to live (see
    /// [`fresh`](Self::fresh) and [`remembered`](Self::remembered)).
    fn unchanged_until(&self, now: Instant) -> Option<Instant> {
        let ttl = self.config.observation_ttl;
        let header = self.header.map(|(_, at)| (at, ttl));
        let survived = self.survived.map(|(_, at)| (at, ttl));
        let closes = self.closes.iter().map(|c| {
            let ttl = if c.exact {
                ttl
            } else {
                ttl.min(self.config.tuning.bound_memory)
            };
            (c.at, ttl)
        });
        header
            .into_iter()
            .chain(survived)
            .chain(closes)
            .filter_map(|(at, ttl)| at.checked_add(ttl))
            .filter(|ends| *ends > now)
            .min()
    }

    /// `(retire_after, watch_after)`, worked out afresh.
    pub(super) fn compute(&self, now: Instant, slack: Duration) -> (Duration, Duration) {
        let estimate = self.estimate(now);
        let own = self.config.default_timeout;
        match estimate.source {
            Source::Default => {
                let retire = estimate.timeout.min(own);
                (retire, retire)
            }
            source => {
                let margin = self.config.margin;
                let lone = source == Source::Learned
                    && self
                        .learned_close(self.header(now), now)
                        .is_some_and(|(_, agreed)| !agreed);
                let margin = if lone {
                    margin.for_lone_close(estimate, self.rtt(), slack)
                } else {
                    margin.for_estimate(estimate, self.rtt(), slack)
                };
                let retire = match estimate.timeout.saturating_sub(margin) {
                    // A window to reuse in that is shorter than the margin
                    // (the client's own uncertainty) is a gamble on
                    // scheduling, not reuse: a server that closes at once
                    // gets no reuse at all.
                    retire if retire < margin => Duration::ZERO,
                    retire => retire,
                }
                .min(own);
                let past = match source {
                    Source::Override => None,
                    Source::Learned => Some(
                        margin.saturating_add(self.config.tuning.refute_span(estimate.timeout)),
                    ),
                    _ => Some(margin),
                };
                let watch = past.map_or(retire, |past| {
                    estimate.timeout.saturating_add(past).min(own).max(retire)
                });
                (retire, watch)
            }
        }
    }
}
