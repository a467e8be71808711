//! Which measured round trips are worth reporting to the estimator.

use std::time::{Duration, Instant};

use freshpool_expiry::Rtt;

/// The round trips that are news for an origin's published `srtt` and
/// `rttvar` (nanoseconds; `srtt` 0 while none is published): those outside
/// `srtt ± rttvar`, by the estimator's own rule ([`Rtt::quiet_band`]). Only such samples (and a periodic one) are worth the
/// estimator's lock. A spike always is, so the margin grows with the
/// path's (and the runtime's) jitter, up to what the estimator counts of
/// one sample ([`max_deviation`](freshpool_expiry::Tuning::max_deviation)): once the jitter is there, a longer
/// spike would leave it as it is, and is no news. (A report also publishes
/// the retire time again with the expiry driver's latest lateness; a
/// connection reports when that lateness moved whatever the band says.)
///
/// Kept by each connection as offsets from a request's last byte, made
/// again only when the published figures change, so that the usual
/// response compares instants instead of subtracting them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Band {
    /// The `(srtt, rttvar)` this band is for.
    published: (u64, u64),
    /// Nothing is published: every sample is news.
    always: bool,
    /// A response sooner than this is news (a shorter path).
    below: Option<Duration>,
    /// A response later than this is news (more jitter).
    above: Option<Duration>,
}

impl Band {
    /// The band for `(srtt, rttvar)`, as last published.
    pub(crate) fn of(published: (u64, u64), max_deviation: Duration) -> Band {
        let (srtt, rttvar) = published;
        let (below, above) = Rtt {
            srtt: Duration::from_nanos(srtt),
            rttvar: Duration::from_nanos(rttvar),
        }
        .quiet_band(max_deviation);
        Band {
            published,
            always: srtt == 0,
            below,
            above,
        }
    }

    /// Makes this the band for `published`, unless it is already.
    #[inline]
    pub(crate) fn follow(&mut self, published: (u64, u64), max_deviation: Duration) {
        if self.published != published || *self == Band::default() {
            *self = Band::of(published, max_deviation);
        }
    }

    /// Whether the round trip of a request whose last byte was written at
    /// `written`, answered at `now`, is news.
    #[inline]
    pub(crate) fn is_news(&self, written: Instant, now: Instant) -> bool {
        self.always
            || self
                .above
                .is_some_and(|after| written.checked_add(after).is_some_and(|at| now > at))
            || self
                .below
                .is_some_and(|before| written.checked_add(before).is_none_or(|at| now < at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use freshpool_expiry::Tuning;

    fn nanos(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap()
    }

    #[test]
    fn a_round_trip_is_news_outside_the_band_and_below_the_jitter_cap() {
        let written = Instant::now();
        let us = Duration::from_micros;
        let news = |band: &Band, sample: Duration| band.is_news(written, written + sample);
        // Nothing published yet: every sample is news.
        let mut band = Band::default();
        band.follow((0, 0), Tuning::default().max_deviation);
        assert!(news(&band, us(1_000)));
        band.follow(
            (nanos(us(2_000)), nanos(us(500))),
            Tuning::default().max_deviation,
        );
        assert!(!news(&band, us(2_000)));
        assert!(!news(&band, us(2_400)));
        assert!(!news(&band, us(2_500)));
        assert!(news(&band, us(2_501)));
        assert!(news(&band, us(50_000)));
        assert!(!news(&band, us(1_500)));
        assert!(news(&band, us(1_499)));
        // The jitter at the most one sample adds: a longer spike changes
        // nothing, a shorter path still does.
        band.follow(
            (nanos(us(2_000)), nanos(Tuning::default().max_deviation)),
            Tuning::default().max_deviation,
        );
        assert!(!news(&band, us(50_000)));
        assert!(!news(&band, us(3_000)));
        assert!(news(&band, us(900)));
        // A jitter as wide as the path: nothing is too short.
        band.follow(
            (nanos(us(400)), nanos(us(500))),
            Tuning::default().max_deviation,
        );
        assert!(!news(&band, us(1)));
        assert!(news(&band, us(901)));
    }
}
