//! Per-origin estimate of the server's idle timeout, and the retire time
//! that follows from it.

use std::fmt;
use std::time::{Duration, Instant};

use crate::KeepAlive;

/// Where an [`Estimate`] came from, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The user configured this origin's idle timeout.
    Override,
    /// The server advertised it with `Keep-Alive: timeout=N`.
    Header,
    /// It was learned from server-initiated closes of idle connections.
    Learned,
    /// Nothing is known about the server: the client's own idle timeout
    /// applies.
    Default,
}

impl Source {
    /// A short, stable, lower-case name, suitable for metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Override => "override",
            Source::Header => "header",
            Source::Learned => "learned",
            Source::Default => "default",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the server closed an idle connection (compare
/// `freshpool_probe::Liveness`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseKind {
    /// An orderly close: a FIN was read.
    Fin,
    /// The connection was reset.
    Reset,
    /// Bytes arrived on the idle connection (typically a `408 Request
    /// Timeout`) and it was then closed.
    Unexpected,
}

/// An estimate of a server's idle timeout and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Estimate {
    /// How long the server is believed to keep an idle connection open.
    pub timeout: Duration,
    /// Where `timeout` came from.
    pub source: Source,
}

/// How much earlier than the server's idle deadline a connection is
/// retired.
///
/// The margin covers a request's trip to the server plus scheduling slack:
/// `clamp(max(fraction × timeout, floor, rtt), .., cap)`. The default is
/// `max(10% of the timeout, 20 ms, measured connect RTT)`, at most 2 s
/// (DESIGN.md §4). When `cap` is below `floor`, `cap` wins.
///
/// ```
/// use std::time::Duration;
/// use freshpool_expiry::Margin;
///
/// let margin = Margin::default();
/// assert_eq!(margin.for_timeout(Duration::from_millis(200), None), Duration::from_millis(20));
/// assert_eq!(margin.for_timeout(Duration::from_secs(5), None), Duration::from_millis(500));
/// assert_eq!(margin.for_timeout(Duration::from_secs(60), None), Duration::from_secs(2));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Margin {
    /// The share of the timeout, in thousandths (default 100, i.e. 10%).
    pub fraction_permille: u32,
    /// The smallest margin (default 20 ms).
    pub floor: Duration,
    /// The largest margin (default 2 s).
    pub cap: Duration,
}

impl Margin {
    /// No margin at all: connections are retired at the estimated timeout.
    pub const ZERO: Margin = Margin {
        fraction_permille: 0,
        floor: Duration::ZERO,
        cap: Duration::ZERO,
    };

    /// The margin for a server timeout of `timeout`, given the measured
    /// round-trip time if there is one.
    pub fn for_timeout(&self, timeout: Duration, rtt: Option<Duration>) -> Duration {
        let nanos = timeout.as_nanos() * u128::from(self.fraction_permille) / 1000;
        let share = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        share
            .max(self.floor)
            .max(rtt.unwrap_or_default())
            .min(self.cap)
    }
}

impl Default for Margin {
    fn default() -> Self {
        Margin {
            fraction_permille: 100,
            floor: Duration::from_millis(20),
            cap: Duration::from_secs(2),
        }
    }
}

/// Settings of an [`IdleEstimator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EstimatorConfig {
    /// The client's own idle timeout (`pool_idle_timeout`), used when
    /// nothing is known about the server, and never exceeded by
    /// [`IdleEstimator::retire_after`]. Default: 90 s, as hyper-util.
    pub default_timeout: Duration,
    /// The margin rule. Default: [`Margin::default`].
    pub margin: Margin,
    /// How long an observed close counts before it ages out. Default: 5
    /// minutes, so an origin whose server was briefly misconfigured or
    /// restarted recovers within minutes, while a steady idle timeout is
    /// re-observed long before that.
    pub observation_ttl: Duration,
    /// How many recent closes are kept (the oldest is dropped first).
    /// Default: 8. Zero disables learning.
    pub max_observations: usize,
}

impl Default for EstimatorConfig {
    fn default() -> Self {
        EstimatorConfig {
            default_timeout: Duration::from_secs(90),
            margin: Margin::default(),
            observation_ttl: Duration::from_secs(5 * 60),
            max_observations: 8,
        }
    }
}

/// A close observed on an idle connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Observation {
    idle_for: Duration,
    kind: CloseKind,
    at: Instant,
}

/// The shortest idle time after which a close crossing a request counts as
/// the server's idle timer (see [`IdleEstimator::crossed_close_counts`]).
pub const MIN_CROSSED_IDLE: Duration = Duration::from_millis(100);

/// Per-origin estimate of how long the server keeps idle connections open.
///
/// Sources, strongest first (DESIGN.md §4):
///
/// 1. a user override ([`set_override`](Self::set_override));
/// 2. the latest `Keep-Alive: timeout=N` the server sent
///    ([`observe_keep_alive`](Self::observe_keep_alive));
/// 3. learned: each server-initiated close of an idle connection, seen
///    `t` after the connection went idle, says the server's timeout is at
///    most `t` ([`observe_close`](Self::observe_close)). The estimate is the
///    smallest recent observation; observations age out after
///    [`observation_ttl`](EstimatorConfig::observation_ttl) so that the
///    estimate can recover;
/// 4. the client's own [`default_timeout`](EstimatorConfig::default_timeout).
///
/// One refinement of that order: a learned timeout *below* the advertised
/// one wins over the header. The server has then demonstrably closed idle
/// connections earlier than it claimed (a header rounded down from a
/// sub-second timeout, a proxy in between, or a server that lies), and
/// trusting the header would reproduce exactly the failures this crate
/// exists to prevent.
///
/// All methods are pure: time is passed in, nothing reads the clock.
///
/// ```
/// use std::time::{Duration, Instant};
/// use freshpool_expiry::{CloseKind, EstimatorConfig, IdleEstimator, KeepAlive, Source};
///
/// let now = Instant::now();
/// let mut origin = IdleEstimator::new(EstimatorConfig::default());
/// assert_eq!(origin.estimate(now).source, Source::Default);
/// assert_eq!(origin.retire_after(now), Duration::from_secs(90));
///
/// // The server says it keeps idle connections for 5 s:
/// origin.observe_keep_alive(KeepAlive::parse(b"timeout=5").unwrap(), now);
/// assert_eq!(origin.retire_after(now), Duration::from_millis(4500));
///
/// // ...but closed one after 2 s of idleness.
/// assert!(origin.observe_close(Duration::from_secs(2), CloseKind::Fin, false, now));
/// assert_eq!(origin.estimate(now).source, Source::Learned);
/// assert_eq!(origin.retire_after(now), Duration::from_millis(1800));
/// ```
#[derive(Debug, Clone)]
pub struct IdleEstimator {
    config: EstimatorConfig,
    overridden: Option<Duration>,
    /// The latest advertised timeout and when it was seen.
    header: Option<(Duration, Instant)>,
    observations: Vec<Observation>,
    srtt: Option<Duration>,
}

impl IdleEstimator {
    /// Creates an estimator that knows nothing about its origin yet.
    pub fn new(config: EstimatorConfig) -> Self {
        IdleEstimator {
            config,
            overridden: None,
            header: None,
            observations: Vec::new(),
            srtt: None,
        }
    }

    /// The settings this estimator was created with.
    pub fn config(&self) -> &EstimatorConfig {
        &self.config
    }

    /// Sets (or with `None` clears) the user's override of this origin's
    /// idle timeout. An override beats every other source.
    pub fn set_override(&mut self, timeout: Option<Duration>) {
        self.overridden = timeout;
    }

    /// Records a `Keep-Alive` hint from a response of this origin.
    ///
    /// The latest hint wins: a server's configuration can change (a
    /// deploy, a different backend behind a balancer) and its newest word
    /// is its best. A hint without `timeout` leaves the previous one in
    /// place. Like an observed close, a hint is forgotten once
    /// [`observation_ttl`](EstimatorConfig::observation_ttl) has passed
    /// without a response repeating it (servers send it on every
    /// response, so only a server that stopped advertising loses it).
    /// `max` is per connection and is not recorded here; see
    /// [`KeepAlive::permits_reuse`].
    pub fn observe_keep_alive(&mut self, hint: KeepAlive, now: Instant) {
        if let Some(timeout) = hint.timeout {
            self.header = Some((timeout, now));
        }
    }

    /// Whether a close that met the next request on a reused connection,
    /// before any byte of its response, counts as an observation of the
    /// idle timeout (to be passed to [`observe_close`](Self::observe_close)
    /// with `in_flight == false`).
    ///
    /// Such a close crossed the request: the server's idle timer fired as
    /// the request was on its way, so its timeout is at most `idle_for`
    /// (the request's own trip on top is what the margin's round trip
    /// covers). Without it a client can fail twice before it ever sees an
    /// idle close. It counts for a FIN or a reset after at least
    /// [`MIN_CROSSED_IDLE`]; below that, a server that crashed or reset
    /// over a request it could not handle is likelier than an idle timer,
    /// and one such failure must not stop all reuse of an origin. Stray
    /// bytes are a response, not a crossing close.
    pub fn crossed_close_counts(idle_for: Duration, kind: CloseKind) -> bool {
        idle_for >= MIN_CROSSED_IDLE && kind != CloseKind::Unexpected
    }

    /// Records a server-initiated close.
    ///
    /// `idle_for` is how long the connection had been idle when the close
    /// was seen; `in_flight` is whether a request was outstanding, in which
    /// case the close says nothing about the idle timeout and is ignored.
    /// All three [`CloseKind`]s count: a reset or a `408` on an idle
    /// connection is the server's idle timer as much as a FIN is.
    ///
    /// Returns whether the observation changed the estimate.
    pub fn observe_close(
        &mut self,
        idle_for: Duration,
        kind: CloseKind,
        in_flight: bool,
        now: Instant,
    ) -> bool {
        if in_flight || self.config.max_observations == 0 {
            return false;
        }
        let before = self.estimate(now);
        self.forget_old(now);
        if self.observations.len() >= self.config.max_observations {
            // Drop the oldest; observations are kept in arrival order.
            self.observations.remove(0);
        }
        self.observations.push(Observation {
            idle_for,
            kind,
            at: now,
        });
        self.estimate(now) != before
    }

    /// Records a measured round-trip time (typically the TCP connect time)
    /// for the margin. Samples are smoothed like TCP's SRTT: the first sets
    /// it, each later one moves it an eighth of the way.
    pub fn observe_rtt(&mut self, rtt: Duration) {
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(srtt) => srtt.saturating_sub(srtt / 8).saturating_add(rtt / 8),
        });
    }

    /// The smoothed round-trip time, if one was observed.
    pub fn rtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The smallest idle time among the closes still remembered at `now`.
    pub fn learned(&self, now: Instant) -> Option<Duration> {
        self.live_observations(now).map(|o| o.idle_for).min()
    }

    /// How the most recent remembered close happened, if any.
    pub fn last_close(&self, now: Instant) -> Option<CloseKind> {
        self.live_observations(now).last().map(|o| o.kind)
    }

    /// The current estimate of the server's idle timeout.
    pub fn estimate(&self, now: Instant) -> Estimate {
        if let Some(timeout) = self.overridden {
            return Estimate {
                timeout,
                source: Source::Override,
            };
        }
        let ttl = self.config.observation_ttl;
        let header = self
            .header
            .filter(|(_, at)| now.saturating_duration_since(*at) < ttl)
            .map(|(timeout, _)| timeout);
        match (header, self.learned(now)) {
            (Some(header), Some(learned)) if learned < header => Estimate {
                timeout: learned,
                source: Source::Learned,
            },
            (Some(header), _) => Estimate {
                timeout: header,
                source: Source::Header,
            },
            (None, Some(learned)) => Estimate {
                timeout: learned,
                source: Source::Learned,
            },
            (None, None) => Estimate {
                timeout: self.config.default_timeout,
                source: Source::Default,
            },
        }
    }

    /// How long a connection of this origin may stay idle before it must
    /// be retired.
    ///
    /// For a server-side estimate this is `estimate − margin` (see
    /// [`Margin`]); for [`Source::Default`] it is the client's own timeout
    /// with no margin, since that deadline is ours, not the server's.
    /// Either way it never exceeds the client's own
    /// [`default_timeout`](EstimatorConfig::default_timeout).
    pub fn retire_after(&self, now: Instant) -> Duration {
        let Estimate { timeout, source } = self.estimate(now);
        let retire = match source {
            Source::Default => timeout,
            _ => timeout.saturating_sub(self.config.margin.for_timeout(timeout, self.srtt)),
        };
        retire.min(self.config.default_timeout)
    }

    fn live_observations(&self, now: Instant) -> impl Iterator<Item = &Observation> {
        let ttl = self.config.observation_ttl;
        self.observations
            .iter()
            .filter(move |o| now.saturating_duration_since(o.at) < ttl)
    }

    fn forget_old(&mut self, now: Instant) {
        let ttl = self.config.observation_ttl;
        self.observations
            .retain(|o| now.saturating_duration_since(o.at) < ttl);
    }
}

/// An optional maximum connection lifetime, with jitter.
///
/// Retiring every connection after a while, whatever its activity, lets a
/// client follow DNS changes and rebalance across servers. Jitter spreads
/// the retirements of connections opened together, so that they are not
/// all replaced at once.
///
/// ```
/// use std::time::{Duration, Instant};
/// use freshpool_expiry::Lifetime;
///
/// let lifetime = Lifetime { max: Duration::from_secs(300), jitter: Duration::from_secs(30) };
/// let created = Instant::now();
/// let deadline = lifetime.deadline(created, 0x5eed);
/// assert!(deadline <= created + Duration::from_secs(300));
/// assert!(deadline >= created + Duration::from_secs(270));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lifetime {
    /// The longest a connection lives.
    pub max: Duration,
    /// How much earlier than `max` a connection may be retired; the
    /// deadline is spread over `[max − jitter, max]`.
    pub jitter: Duration,
}

impl Lifetime {
    /// The retire deadline of a connection created at `created`.
    ///
    /// `entropy` is any random `u64` the caller supplies (this crate stays
    /// pure and has no random source); the same inputs give the same
    /// deadline. The result is never later than `created + max`; if that
    /// instant is not representable, the farthest representable instant
    /// on the way is used instead.
    pub fn deadline(&self, created: Instant, entropy: u64) -> Instant {
        let jitter = self.jitter.min(self.max).as_nanos();
        let early = u128::from(entropy) % (jitter + 1);
        let early = Duration::from_nanos(u64::try_from(early).unwrap_or(u64::MAX));
        let mut after = self.max.saturating_sub(early);
        loop {
            if let Some(deadline) = created.checked_add(after) {
                return deadline;
            }
            after /= 2;
        }
    }
}

#[cfg(test)]
#[path = "estimator_tests.rs"]
mod tests;
