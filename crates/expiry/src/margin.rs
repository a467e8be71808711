//! How much earlier than the server's idle deadline a connection is
//! retired, and the path round trip that decides it.

use std::time::Duration;

use crate::estimator::{Estimate, Source};
use crate::tuning::permille;

/// The round trip of the path to an origin, as far as the client knows it.
///
/// The kernel's own figures are best (`TCP_INFO`'s smoothed RTT and its
/// mean deviation, see `freshpool_probe::tcp_rtt`); elsewhere the client
/// measures the shortest request-to-response time it saw, which bounds the
/// round trip from above (it includes the server's processing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rtt {
    /// The smoothed round-trip time.
    pub srtt: Duration,
    /// Its mean deviation (zero for a measured minimum).
    pub rttvar: Duration,
}

impl Rtt {
    /// `srtt + 4 × rttvar`: how long a request may take to reach the
    /// server, with the same bound TCP uses for its retransmission timer.
    pub fn bound(&self) -> Duration {
        self.srtt.saturating_add(self.rttvar.saturating_mul(4))
    }

    /// The measured round trips that are no news for these figures: a
    /// sample shorter than the first bound, or longer than the second, would
    /// change them by more than their own jitter. The bounds are
    /// `srtt ± rttvar`; there is no upper one once `rttvar` is at the most
    /// one sample adds (`max_deviation`, see
    /// [`Tuning::max_deviation`](crate::Tuning::max_deviation)), and no lower one when the jitter
    /// is as wide as the path. Callers that see a round trip on every
    /// response report only the news (and one now and then, so that the
    /// jitter decays).
    pub fn quiet_band(&self, max_deviation: Duration) -> (Option<Duration>, Option<Duration>) {
        let below = self.srtt.checked_sub(self.rttvar).filter(|b| !b.is_zero());
        let above = (self.rttvar < max_deviation).then(|| self.srtt.saturating_add(self.rttvar));
        (below, above)
    }

    /// Whether a measured round trip `sample` is news for these figures
    /// (see [`quiet_band`](Self::quiet_band)).
    pub fn is_news(&self, sample: Duration, max_deviation: Duration) -> bool {
        let (below, above) = self.quiet_band(max_deviation);
        below.is_some_and(|below| sample < below) || above.is_some_and(|above| sample > above)
    }
}

/// How much earlier than the server's idle deadline a connection is
/// retired.
///
/// A request handed to a connection at idle time `t` reaches the server
/// about a round trip and the client's own scheduling delay later, and the
/// client's idle clock (started when the last response byte was read) runs
/// behind the server's (started when it wrote that byte). The margin covers
/// exactly that:
///
/// ```text
/// margin = min(cap, max(floor, srtt + 4·rttvar + slack) + share)
/// share  = learned_permille · timeout + slack    (learned estimates only)
///          + lone                    (while one close is all they rest on)
/// ```
///
/// - `srtt + 4·rttvar` is the path's round trip ([`Rtt::bound`]);
/// - `slack` is the client's real timer and scheduling lateness, measured
///   by the expiry [`Driver`](crate::Driver)
///   ([`Driver::lateness`](crate::Driver::lateness));
/// - `share` is only for a [learned](Source::Learned) estimate, which is
///   the idle time at which a close was *read*: later than the server's
///   timer by that timer's own lateness and by the client's, so a learned
///   value runs long. The client's part is at most `slack` (the runtime
///   that read the close is the one the driver measures), and
///   [`learned_permille`](Self::learned_permille) of the timeout covers
///   the server's. One close is often all a client sees (it retires its
///   connections before the server closes them from then on), so the share
///   must hold for the latest one, not for an average.
///   A `Keep-Alive: timeout=N` value gets no share: servers round it down
///   already, and a fixed share on top of it only gives away reuse.
/// - `lone` is for a learned estimate that rests on a single close
///   ([`for_lone_close`](Self::for_lone_close)): that one reading may be
///   late by more than the share allows, when the server or the client
///   ran late just then (a loaded 200 ms nginx closes at 200–205 ms, and
///   a loaded client saw one such close 12 ms past the timer), and
///   nothing yet says by how much. Those delays are time, not a share of the timeout, so
///   [`lone`](Self::lone) is a duration; it counts until a second close
///   agrees: the pools watch a connection past its retire time for that
///   (see [`IdleEstimator::watch_after`](crate::IdleEstimator::watch_after)).
///
/// The defaults (floor 1 ms, share 1%, lone 10 ms, cap 2 s) retire a
/// learned 200 ms server about 4–5 ms early on loopback (about 15 ms
/// while one close is all it rests on), and a `Keep-Alive: timeout=5`
/// server about 1–2 ms early.
///
/// ```
/// use std::time::Duration;
/// use freshpool_expiry::{Estimate, Margin, Rtt, Source};
///
/// let ms = Duration::from_millis;
/// let margin = Margin::default();
/// let header = Estimate { timeout: Duration::from_secs(5), source: Source::Header };
/// let learned = Estimate { timeout: ms(200), source: Source::Learned };
/// let path = Rtt { srtt: ms(10), rttvar: ms(2) };
///
/// // 10 ms + 4 × 2 ms of path, 1 ms of slack:
/// assert_eq!(margin.for_estimate(header, Some(path), ms(1)), ms(19));
/// // ...plus 1% of a learned timeout and the slack again:
/// assert_eq!(margin.for_estimate(learned, Some(path), ms(1)), ms(22));
/// // On loopback the floor and the share are most of it.
/// assert_eq!(margin.for_estimate(learned, None, Duration::ZERO), ms(3));
/// // One close alone: 10 ms more.
/// assert_eq!(margin.for_lone_close(learned, None, Duration::ZERO), ms(13));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Margin {
    /// The smallest margin (before the learned share). Default 1 ms.
    pub floor: Duration,
    /// The share of a learned timeout added on top, in thousandths.
    /// Default 10 (1%).
    pub learned_permille: u32,
    /// What is added while the learned timeout rests on one close.
    /// Default 10 ms.
    pub lone: Duration,
    /// The largest margin. Default 2 s.
    pub cap: Duration,
}

impl Margin {
    /// No margin at all: connections are retired at the estimated timeout.
    pub const ZERO: Margin = Margin {
        floor: Duration::ZERO,
        learned_permille: 0,
        lone: Duration::ZERO,
        cap: Duration::ZERO,
    };

    /// The margin for `estimate` over a path of round trip `rtt` (if
    /// known), with the client's measured scheduling `slack`.
    pub fn for_estimate(&self, estimate: Estimate, rtt: Option<Rtt>, slack: Duration) -> Duration {
        let path = rtt.unwrap_or_default().bound().saturating_add(slack);
        let share = match estimate.source {
            Source::Learned => {
                permille(estimate.timeout, self.learned_permille).saturating_add(slack)
            }
            _ => Duration::ZERO,
        };
        path.max(self.floor).saturating_add(share).min(self.cap)
    }

    /// [`for_estimate`](Self::for_estimate) for a learned estimate that
    /// rests on a single close: [`lone`](Self::lone) more, within the
    /// cap. Any other estimate gets the plain
    /// margin.
    pub fn for_lone_close(
        &self,
        estimate: Estimate,
        rtt: Option<Rtt>,
        slack: Duration,
    ) -> Duration {
        let margin = self.for_estimate(estimate, rtt, slack);
        if estimate.source != Source::Learned {
            return margin;
        }
        margin.saturating_add(self.lone).min(self.cap)
    }
}

impl Default for Margin {
    fn default() -> Self {
        Margin {
            floor: Duration::from_millis(1),
            learned_permille: 10,
            lone: Duration::from_millis(10),
            cap: Duration::from_secs(2),
        }
    }
}
