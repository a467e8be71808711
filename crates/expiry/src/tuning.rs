//! The numbers the estimator's rules rest on, each named once with its
//! reason.

use std::time::Duration;

use crate::{CloseKind, Evidence};

/// The numbers an [`IdleEstimator`](crate::IdleEstimator)'s rules rest on
/// (see its documentation for the rules, and `docs/learning.md` for the
/// table of rules and the tests that show them).
///
/// Every field's default is the value the rules were designed and tested
/// with; the reason is on each field. A number that does two jobs has two
/// fields, even where they are equal.
///
/// ```
/// use std::time::Duration;
/// use freshpool_expiry::{EstimatorConfig, Tuning};
///
/// // A service mesh whose sidecars close idle connections after 50 ms:
/// // let one close that early teach the timeout on its own.
/// let mut tuning = Tuning::default();
/// tuning.min_lone_close = Duration::from_millis(45);
/// let config = EstimatorConfig { tuning, ..EstimatorConfig::default() };
/// assert!(config.tuning.agree(Duration::from_millis(200), Duration::from_millis(209)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Tuning {
    /// The shortest idle timeout one close may teach on its own. Default
    /// 90 ms: servers with idle timers shorter than 100 ms are rare, and a
    /// single close that early is far likelier a restart, a deploy or a
    /// load balancer; shorter values need an agreeing close. 90, not 100:
    /// the client's idle clock starts when it reads a response's last
    /// byte, after the server's started, so it sees a 100 ms timer close a
    /// connection idle for a little less than 100 ms.
    pub min_lone_close: Duration,
    /// The shortest idle time after which a close crossing a request
    /// counts on its own (see
    /// [`Evidence::Crossed`](crate::Evidence::Crossed)). Default 90 ms, for
    /// the same 100 ms timer as `min_lone_close`: a quicker crossing is as
    /// likely a server that could not handle the request.
    pub min_crossed_idle: Duration,
    /// Closes of several connections seen within this long of each other,
    /// with idle times further apart than
    /// [`mass_spread`](Self::mass_spread), are one mass close. Default
    /// 10 ms: a restart's closes arrive together.
    pub mass_window: Duration,
    /// See [`mass_window`](Self::mass_window). Default 20 ms: one idle
    /// timer closes connections at the same idle age (within its jitter,
    /// which [`agree`](Self::agree) puts at 10 ms); a restart closes them
    /// whatever their age.
    pub mass_spread: Duration,
    /// How long closes below a proven survival must keep agreeing before
    /// they count as a lower timeout (a new server configuration). Default
    /// 30 s: longer than a restart, a deploy or a spell of overload lasts,
    /// which must cost reuse no longer than they do.
    pub change_span: Duration,
    /// How long a close not seen as it arrived (an upper bound, a
    /// crossing) is remembered. Default 30 s: it may tell something other
    /// than the timer, and an estimate it lowered must not cost reuse for
    /// long.
    pub bound_memory: Duration,
    /// How long a confirmation stays news: a survival no longer than the
    /// longest one, or a `Keep-Alive` timeout equal to the last one,
    /// within this long of the last confirmation changes nothing the
    /// estimate rests on. Default 1 s: clients see one of these on nearly
    /// every response, and skipping them keeps learning off the hot path.
    pub confirm_refresh: Duration,
    /// The most one measured round trip adds to the path's jitter. Default
    /// 1 ms: a response that took a second is the server's second, not the
    /// path's.
    pub max_deviation: Duration,
    /// Two closes (or a close and a survival) [agree](Self::agree) when
    /// they are within this much of each other, or within
    /// [`agree_permille`](Self::agree_permille) of the larger. Default
    /// 10 ms: one timer's jitter on a loaded machine.
    pub agree_floor: Duration,
    /// See [`agree_floor`](Self::agree_floor). Default 100 (10%): a late
    /// timer fires later on a longer timeout.
    pub agree_permille: u32,
    /// A survival shorter than the longest one by more than this, or than
    /// [`confirm_permille`](Self::confirm_permille) of it, confirms nothing.
    /// Default 5 ms: survivals are read a little late.
    pub confirm_floor: Duration,
    /// See [`confirm_floor`](Self::confirm_floor). Default 50 (5%).
    pub confirm_permille: u32,
    /// How far past a learned estimate and its margin a retired connection
    /// is watched, at least (see
    /// [`IdleEstimator::watch_after`](crate::IdleEstimator::watch_after)).
    /// Default 20 ms: twice `agree_floor`, so that a short estimate is
    /// refutable too.
    pub refute_floor: Duration,
    /// See [`refute_floor`](Self::refute_floor): that share of the
    /// estimate. Default 250 (a quarter): a survival that far out disagrees
    /// with the estimate (by more than `agree_permille`), so it refutes it,
    /// even read a margin late.
    pub refute_permille: u32,
    /// A close that this many later survivals outlived (connections found
    /// open past its idle time, after it, with no close agreeing with it
    /// since) is no timer, even where they agree with it: a timer that
    /// fired that early would have closed some of them, and a timer that is
    /// really there keeps closing connections, each close a new reading
    /// that starts the count again. Default 3: a late timer lets one or two through, and
    /// survivals within [`confirm_refresh`](Self::confirm_refresh) of each
    /// other are no news, so three take two seconds at least. This is how
    /// a client whose watched connections are handed out (the adapter:
    /// hyper-util's pool holds them) refutes an estimate too low.
    pub outlived_after: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        let ms = Duration::from_millis;
        Tuning {
            min_lone_close: ms(90),
            min_crossed_idle: ms(90),
            mass_window: ms(10),
            mass_spread: ms(20),
            change_span: Duration::from_secs(30),
            bound_memory: Duration::from_secs(30),
            confirm_refresh: Duration::from_secs(1),
            max_deviation: ms(1),
            agree_floor: ms(10),
            agree_permille: 100,
            confirm_floor: ms(5),
            confirm_permille: 50,
            refute_floor: ms(20),
            refute_permille: 250,
            outlived_after: 3,
        }
    }
}

impl Tuning {
    /// Whether idle times `a` and `b` tell the same timeout: within
    /// [`agree_floor`](Self::agree_floor) or
    /// [`agree_permille`](Self::agree_permille) of the larger.
    pub fn agree(&self, a: Duration, b: Duration) -> bool {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        high - low <= permille(high, self.agree_permille).max(self.agree_floor)
    }

    /// Whether a close at idle time `close` is early for a connection that
    /// survived `survived`: below it, and not [agreeing](Self::agree) with
    /// it.
    ///
    /// A server's timer fires late under load (a loaded 200 ms origin let
    /// a request through at 212 ms and closed the next connection at
    /// 200 ms), so a survival and a close that agree are two readings of
    /// one jittery timer, and the close is the one that fails requests:
    /// taking it costs the reuse between them, taking the survival costs
    /// errors. A restart or an overload closes connections at any idle
    /// age, mostly far below.
    pub fn is_early(&self, close: Duration, survived: Duration) -> bool {
        close < survived && !self.agree(close, survived)
    }

    /// Whether `evidence` is a server close the estimator takes as
    /// evidence: every [`Closed`](Evidence::Closed) and
    /// [`ClosedWithin`](Evidence::ClosedWithin), and a
    /// [`Crossed`](Evidence::Crossed) close after
    /// [`min_crossed_idle`](Self::min_crossed_idle) of idleness that is not
    /// stray bytes. Clients count these as the server closes they observed.
    pub fn is_server_close(&self, evidence: &Evidence) -> bool {
        match *evidence {
            Evidence::Closed { .. } | Evidence::ClosedWithin { .. } => true,
            Evidence::Crossed { idle_for, kind } => {
                idle_for >= self.min_crossed_idle && kind != CloseKind::Unexpected
            }
            Evidence::KeepAlive(_) | Evidence::Survived(_) => false,
        }
    }

    /// How far below the longest survival `longest` another must be to
    /// confirm nothing (see [`confirm_floor`](Self::confirm_floor)).
    pub(crate) fn confirm_tolerance(&self, longest: Duration) -> Duration {
        permille(longest, self.confirm_permille).max(self.confirm_floor)
    }

    /// How far past a learned `estimate` and its margin a retired
    /// connection is watched (see [`refute_floor`](Self::refute_floor)).
    pub fn refute_span(&self, estimate: Duration) -> Duration {
        permille(estimate, self.refute_permille).max(self.refute_floor)
    }
}

/// `per_mille` thousandths of `of`, saturating.
pub(crate) fn permille(of: Duration, per_mille: u32) -> Duration {
    let nanos = of.as_nanos() * u128::from(per_mille) / 1000;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}
