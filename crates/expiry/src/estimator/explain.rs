//! Why an estimate is what it is, in one line.

use std::fmt;
use std::time::{Duration, Instant};

use super::{IdleEstimator, Source};

/// [`IdleEstimator::explain`]'s answer; its `Display` is one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The estimate's source.
    pub source: Source,
    /// The estimate.
    pub timeout: Duration,
    /// For a learned estimate, how the close it rests on was seen: `"as
    /// it arrived"`, `"by a request it crossed"` or `"later, by a probe"`.
    pub seen: Option<&'static str>,
    /// For a learned estimate, whether another close agrees with it (if
    /// not, the lone-close margin applies).
    pub agreed: bool,
    /// The longest recent survival, if any.
    pub survived: Option<Duration>,
    /// Remembered closes the estimate does not rest on and that are not
    /// above it: early against a survival, part of a mass close, or alone
    /// and below a header or [`min_lone_close`](crate::Tuning::min_lone_close).
    pub set_aside: usize,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.source, self.timeout)?;
        match self.source {
            Source::Override => f.write_str(": set by the user")?,
            Source::Header => f.write_str(": advertised by Keep-Alive")?,
            Source::Default => f.write_str(": the client's own, nothing better known")?,
            Source::Learned => {
                let seen = self.seen.unwrap_or("as it arrived");
                let agreed = if self.agreed {
                    "agreed by another"
                } else {
                    "alone, so with the lone-close margin"
                };
                write!(f, ": a close seen {seen}, {agreed}")?;
            }
        }
        if let Some(survived) = self.survived {
            write!(f, "; longest survival {survived:?}")?;
        }
        if self.set_aside > 0 {
            write!(f, "; {} lower close(s) set aside", self.set_aside)?;
        }
        Ok(())
    }
}

impl IdleEstimator {
    /// Why the estimate is what it is at `now`: its source, what a learned
    /// one rests on, the longest survival and how many lower closes the
    /// rules set aside. Its `Display` is one line, the one the pools log
    /// at `debug` when an estimate changes.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use freshpool_expiry::{CloseKind, EstimatorConfig, Evidence, IdleEstimator};
    ///
    /// let now = Instant::now();
    /// let mut origin = IdleEstimator::new(EstimatorConfig::default());
    /// let close = Evidence::Closed { idle_for: Duration::from_millis(200), kind: CloseKind::Fin };
    /// origin.observe(close, now);
    /// assert_eq!(
    ///     origin.explain(now).to_string(),
    ///     "learned 200ms: a close seen as it arrived, alone, so with the lone-close margin; \
    ///      longest survival 200ms",
    /// );
    /// ```
    pub fn explain(&self, now: Instant) -> Explanation {
        let estimate = self.estimate(now);
        let learned = self.learned_close(self.header(now), now);
        let basis = learned.and_then(|(timeout, _)| {
            self.live(now)
                .filter(|c| c.idle_for == timeout)
                .min_by_key(|c| (!c.exact, !c.crossed))
        });
        let seen = (estimate.source == Source::Learned)
            .then(|| {
                basis.map(|c| match (c.exact, c.crossed) {
                    (true, _) => "as it arrived",
                    (false, true) => "by a request it crossed",
                    (false, false) => "later, by a probe",
                })
            })
            .flatten();
        let set_aside = self
            .live(now)
            .filter(|c| c.idle_for < estimate.timeout)
            .count();
        Explanation {
            source: estimate.source,
            timeout: estimate.timeout,
            seen,
            agreed: estimate.source == Source::Learned && learned.is_some_and(|(_, a)| a),
            survived: self.survived(now),
            set_aside,
        }
    }
}
