//! What a perfect client could have reused: the oracle.
//!
//! A request could safely reuse its sender's connection when the server
//! still held that connection open when the request arrived: its gap (the
//! idle time since the previous response's head arrived on the same
//! sender) was below the server's real idle timeout, and the server did
//! not close its idle connections in between for another reason (a
//! restart's mass close, an overload's early closes). The built-in origin's
//! timeline is known exactly, so the oracle is exact up to the loopback
//! round trip; a sender's first request has no gap and is never in it.
//!
//! Efficiency is a client's reuse divided by the oracle: 1 means it reused
//! every connection it safely could.

use std::time::Duration;

use crate::race::Sample;

/// What the server did to idle connections, by time since the run began.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timeline {
    /// The idle timeout when nothing else happens.
    pub(crate) idle: Duration,
    /// When every idle connection was closed at once.
    pub(crate) mass_closes: Vec<Duration>,
    /// A window `[from, until)` in which the idle timeout was `timeout`.
    pub(crate) early: Option<Early>,
}

/// A window of early idle closes, as an overloaded server has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Early {
    /// When it began.
    pub(crate) from: Duration,
    /// When the normal timeout came back.
    pub(crate) until: Duration,
    /// The idle timeout meanwhile.
    pub(crate) timeout: Duration,
}

impl Timeline {
    /// A server that only ever closes at `idle`.
    pub(crate) fn steady(idle: Duration) -> Timeline {
        Timeline {
            idle,
            mass_closes: Vec::new(),
            early: None,
        }
    }

    /// Whether a connection idle from `from` was still open at `at`.
    pub(crate) fn survives(&self, from: Duration, at: Duration) -> bool {
        if at.saturating_sub(from) >= self.idle {
            return false;
        }
        if self.mass_closes.iter().any(|&c| from < c && c <= at) {
            return false;
        }
        match self.early {
            // The origin applies a shorter timeout to connections already
            // idle at once, counted from when each went idle.
            Some(e) if from.max(e.from) < at.min(e.until) => {
                at.min(e.until).saturating_sub(from) < e.timeout
            }
            _ => true,
        }
    }

    /// Whether `sample` is in the oracle: it had a gap, and the server kept
    /// the connection open through it.
    pub(crate) fn reusable(&self, sample: &Sample) -> bool {
        sample
            .idle_from
            .is_some_and(|from| self.survives(from, sample.at))
    }
}

/// Where a request's gap fell, against its client's retire time then and
/// the server's real idle timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Band {
    /// Below the client's retire time: the client should reuse.
    BelowRetire,
    /// At or past the retire time, below the real timeout: reuse a perfect
    /// client would have had, given up for safety.
    RetireToTimeout,
    /// At or past the real timeout: the server has closed.
    AboveTimeout,
}

impl Band {
    /// Every band, in table order.
    pub(crate) const ALL: [Band; 3] =
        [Band::BelowRetire, Band::RetireToTimeout, Band::AboveTimeout];

    /// The request's band, or `None` without a gap. Without a retire time
    /// (a client that never retires) every gap below the timeout is below
    /// it.
    pub(crate) fn of(sample: &Sample, timeout: Duration) -> Option<Band> {
        let gap = sample.gap()?;
        Some(if gap >= timeout {
            Band::AboveTimeout
        } else if sample.retire.is_none_or(|retire| gap < retire) {
            Band::BelowRetire
        } else {
            Band::RetireToTimeout
        })
    }

    /// The JSON key.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Band::BelowRetire => "below_retire",
            Band::RetireToTimeout => "retire_to_timeout",
            Band::AboveTimeout => "above_timeout",
        }
    }
}

/// Reuse over the oracle, if the oracle is not empty.
pub(crate) fn efficiency(reused: f64, oracle: f64) -> Option<f64> {
    (oracle > 0.0).then(|| reused / oracle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sample(from: Option<u64>, at: u64, retire: Option<u64>) -> Sample {
        Sample {
            at: ms(at),
            latency: ms(1),
            error: None,
            informed: true,
            idle_from: from.map(ms),
            reused: true,
            retire: retire.map(ms),
        }
    }

    #[test]
    fn a_steady_server_keeps_gaps_below_its_timeout() {
        let t = Timeline::steady(ms(200));
        assert!(t.survives(ms(1000), ms(1199)));
        assert!(!t.survives(ms(1000), ms(1200)));
        assert!(!t.reusable(&sample(None, 5, None)), "a first request");
        assert!(t.reusable(&sample(Some(0), 150, None)));
    }

    #[test]
    fn a_mass_close_inside_the_gap_closes_the_connection() {
        let mut t = Timeline::steady(ms(200));
        t.mass_closes.push(ms(500));
        assert!(!t.survives(ms(450), ms(550)));
        assert!(t.survives(ms(500), ms(550)), "idle from the close on");
        assert!(t.survives(ms(400), ms(500) - Duration::from_micros(1)));
    }

    #[test]
    fn early_closes_apply_to_connections_already_idle() {
        let mut t = Timeline::steady(ms(200));
        t.early = Some(Early {
            from: ms(1000),
            until: ms(2000),
            timeout: ms(5),
        });
        assert!(!t.survives(ms(990), ms(1010)), "idle 10 ms into the window");
        assert!(t.survives(ms(998), ms(1002)), "4 ms < 5 ms");
        assert!(!t.survives(ms(1500), ms(1510)));
        assert!(
            t.survives(ms(1997), ms(2100)),
            "3 ms idle when the window ended"
        );
        assert!(t.survives(ms(2000), ms(2150)));
        assert!(t.survives(ms(800), ms(990)), "before the window");
    }

    #[test]
    fn bands_split_at_the_retire_time_and_the_timeout() {
        let timeout = ms(200);
        let band = |gap, retire| Band::of(&sample(Some(0), gap, retire), timeout);
        assert_eq!(band(150, Some(180)), Some(Band::BelowRetire));
        assert_eq!(band(190, Some(180)), Some(Band::RetireToTimeout));
        assert_eq!(band(200, Some(180)), Some(Band::AboveTimeout));
        assert_eq!(band(190, None), Some(Band::BelowRetire));
        assert_eq!(band(250, None), Some(Band::AboveTimeout));
        assert_eq!(Band::of(&sample(None, 10, None), timeout), None);
        assert_eq!(efficiency(45.0, 50.0), Some(0.9));
        assert_eq!(efficiency(0.0, 0.0), None);
    }
}
