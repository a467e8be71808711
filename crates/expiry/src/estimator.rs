//! Per-origin estimate of the server's idle timeout, learned from evidence
//! both ways, and the retire time that follows from it.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

use crate::KeepAlive;
use crate::margin::{Margin, Rtt};
use crate::tuning::Tuning;

mod explain;
mod retire;
mod round_trip;

pub use explain::Explanation;

use retire::Memo;

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
    /// The connection was reset (or a write found it broken).
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

/// Something a client saw on a connection of one origin: the input of
/// [`IdleEstimator::observe`].
///
/// Every variant is a *real* observation of the server. A client must not
/// report its own failures as closes: a request body that failed, a
/// timeout, or a cancelled request say nothing about the server's idle
/// timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Evidence {
    /// A response carried `Keep-Alive` (only its `timeout` is used here;
    /// `max` is per connection, see [`KeepAlive::permits_reuse`]).
    KeepAlive(KeepAlive),
    /// The server closed a connection that had been idle for `idle_for`,
    /// and the close was seen as it arrived (the connection's idle read
    /// returned end-of-file or an error): the server's timer fired then.
    Closed {
        /// How long the connection had been idle when the close arrived.
        idle_for: Duration,
        /// How it closed.
        kind: CloseKind,
    },
    /// A close found only later (by a probe at checkout, say): the
    /// connection closed at some point within `idle_for` of going idle. It
    /// is an upper bound, weaker than [`Closed`](Evidence::Closed).
    ClosedWithin {
        /// The idle time at which the close was found.
        idle_for: Duration,
        /// How it closed.
        kind: CloseKind,
    },
    /// The server closed a reused connection as its next request, sent
    /// `idle_for` after the connection went idle, was on its way (no byte
    /// of a response arrived): the close crossed the request. It counts as
    /// an upper bound, for a FIN or a reset. After at least
    /// [`min_crossed_idle`](Tuning::min_crossed_idle) of idleness one counts on its own; a quicker
    /// one is as likely a server that could not handle the request, and
    /// needs an agreeing close (a server that closes every connection
    /// right after its response fails requests so, again and again).
    Crossed {
        /// How long the connection had been idle when the request went out.
        idle_for: Duration,
        /// How it closed.
        kind: CloseKind,
    },
    /// A connection was still open after idling `idle_for`: a request
    /// reused it and got its response, or the client retired it and found
    /// it open. The server's idle timeout is longer than that. (A close
    /// seen as it arrived, [`Closed`](Evidence::Closed), is a survival up
    /// to its idle time too.)
    Survived(Duration),
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
    /// How long a piece of evidence counts before it ages out. Default: 5
    /// minutes. A steady server repeats its evidence long before that
    /// (every close, every reuse, every header); ageing out only lets an
    /// origin whose server changed recover from evidence nobody repeats.
    pub observation_ttl: Duration,
    /// How many recent closes are kept (the oldest is dropped first).
    /// Default: 8. Zero disables learning from closes.
    pub max_observations: usize,
    /// The numbers the rules rest on. Default: [`Tuning::default`].
    pub tuning: Tuning,
}

impl Default for EstimatorConfig {
    fn default() -> Self {
        EstimatorConfig {
            default_timeout: Duration::from_secs(90),
            margin: Margin::default(),
            observation_ttl: Duration::from_secs(5 * 60),
            max_observations: 8,
            tuning: Tuning::default(),
        }
    }
}

/// How a close was seen (see [`Evidence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// As it arrived.
    Arrived,
    /// Found later, by a probe.
    Later,
    /// By a request it crossed.
    Crossing,
}

/// A close the estimator remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Close {
    idle_for: Duration,
    kind: CloseKind,
    at: Instant,
    /// Seen as it arrived ([`Evidence::Closed`]), not found later.
    exact: bool,
    /// Met a request on its way ([`Evidence::Crossed`]).
    crossed: bool,
    /// Part of a mass close.
    mass: bool,
    /// Survivals longer than it seen since (see
    /// [`Tuning::outlived_after`]).
    outlived: u32,
}

/// Per-origin estimate of how long the server keeps idle connections open.
///
/// It weighs evidence both ways ([`Evidence`], [`observe`](Self::observe)):
/// a close says the timeout is *at most* the connection's idle time, a
/// connection still open after idling `t` says it is *above* `t`. Servers
/// close idle connections for reasons other than their idle timer (a
/// deploy, `nginx -s reload`, Go's `Shutdown`, a load balancer, Apache's
/// event MPM closing every idle connection when its workers are busy), so
/// the rules are about telling the timer from the rest:
///
/// 1. **Survivals outrank closes.** A close below the longest recent
///    survival that does not [agree](Tuning::agree) with it is not an
///    idle-timeout close and never lowers the estimate (one that agrees is
///    the same timer firing a little earlier, under load, and the one that
///    fails requests). A survival also contradicts closes already
///    learned: the estimate recovers at once, not when they age out. Only
///    agreeing closes below it that keep coming for [`change_span`](Tuning::change_span), all
///    newer than the survival, say the server's timeout really went down;
///    a spell of overload is over sooner, and costs no reuse after it.
/// 2. **A mass close is no timer.** Closes of several connections within
///    [`mass_window`](Tuning::mass_window) of each other whose idle times differ by more than
///    [`mass_spread`](Tuning::mass_spread) are one event (one timer closes connections at the
///    same idle age); none of them is learned.
/// 3. **One early close is not enough.** A single close below
///    [`min_lone_close`](Tuning::min_lone_close), or below a `Keep-Alive` header, needs a second
///    close that [agrees](Tuning::agree) with it before it counts. A server that
///    closes every connection right after its response produces such
///    agreeing closes at once, and is learned.
/// 4. **Upper bounds wait for measurements.** A close found later
///    ([`Evidence::ClosedWithin`], [`Evidence::Crossed`]) only bounds the
///    timeout; it is used while no close was seen as it arrived. Except
///    one: a close that crossed a request and [agrees](Tuning::agree) with one seen
///    as it arrived is the same timer seen without the lag of reading it
///    (the request met the close), and counts with it. A client that
///    learned from one close read late stops failing requests after the
///    first such crossing.
///
/// The estimate, strongest source first: the user's override; the smallest
/// learned close that passes the rules if it is below the advertised
/// `Keep-Alive` timeout; that header; the smallest learned close; the
/// client's own [`default_timeout`](EstimatorConfig::default_timeout).
/// Evidence ages out after
/// [`observation_ttl`](EstimatorConfig::observation_ttl).
///
/// All methods are pure: time is passed in, nothing reads the clock.
///
/// ```
/// use std::time::{Duration, Instant};
/// use freshpool_expiry::{CloseKind, EstimatorConfig, Evidence, IdleEstimator, KeepAlive, Source};
///
/// let ms = Duration::from_millis;
/// let t0 = Instant::now();
/// let at = |s| t0 + Duration::from_secs(s);
/// let mut origin = IdleEstimator::new(EstimatorConfig::default());
/// assert_eq!(origin.estimate(t0).source, Source::Default);
///
/// // A connection closed 2 s after going idle.
/// origin.observe(Evidence::Closed { idle_for: ms(2000), kind: CloseKind::Fin }, t0);
/// assert_eq!(origin.estimate(t0).timeout, ms(2000));
/// assert_eq!(origin.estimate(t0).source, Source::Learned);
///
/// // Later a deploy closed one idle for 300 ms: the connection that closed
/// // at 2 s had survived longer, so this is not the idle timer.
/// origin.observe(Evidence::Closed { idle_for: ms(300), kind: CloseKind::Fin }, at(10));
/// assert_eq!(origin.estimate(at(10)).timeout, ms(2000));
///
/// // The server says 5 s: one close below the header is not enough...
/// origin.observe(Evidence::KeepAlive(KeepAlive::parse(b"timeout=5").unwrap()), at(20));
/// assert_eq!(origin.estimate(at(20)).source, Source::Header);
/// // ...two agreeing ones are: the header was wrong.
/// origin.observe(Evidence::Closed { idle_for: ms(2010), kind: CloseKind::Reset }, at(30));
/// assert_eq!(origin.estimate(at(30)).timeout, ms(2000));
/// ```
#[derive(Debug, Clone)]
pub struct IdleEstimator {
    config: EstimatorConfig,
    overridden: Option<Duration>,
    /// The latest advertised timeout and when it was seen.
    header: Option<(Duration, Instant)>,
    /// Recent closes in arrival order.
    closes: Vec<Close>,
    /// The longest recent survival, and when it was last confirmed.
    survived: Option<(Duration, Instant)>,
    /// The longest survival is only the idle time at which a close was
    /// read: a survival as long as it, no read stretched, is news.
    survived_as_read: bool,
    /// What [`is_news`](Self::is_news) compares a survival with, worked
    /// out when `survived` changes: asked at nearly every response, it
    /// is then two comparisons.
    survival_marks: Option<SurvivalMarks>,
    /// The kernel's figures for the path.
    rtt: Option<Rtt>,
    /// Measured round trips, smoothed as TCP does, for when the kernel
    /// has no figures.
    measured: Option<Rtt>,
    /// [`retire_after`](Self::retire_after)'s last answer: asked at every
    /// check-in, it changes only with the evidence or when a piece of it
    /// ages out.
    memo: Cell<Option<Memo>>,
}

/// When the longest survival stops counting, and what it makes news.
#[derive(Debug, Clone, Copy)]
struct SurvivalMarks {
    /// A survival shorter than this (the longest less its early
    /// tolerance) confirms nothing; `None`: none is that short.
    below: Option<Duration>,
    /// The longest is fresh until then (`None`: for ever).
    fresh_until: Option<Instant>,
    /// And a confirmation of it recent until then.
    recent_until: Option<Instant>,
}

impl IdleEstimator {
    /// Creates an estimator that knows nothing about its origin yet.
    pub fn new(config: EstimatorConfig) -> Self {
        IdleEstimator {
            config,
            overridden: None,
            header: None,
            closes: Vec::new(),
            survived: None,
            survived_as_read: false,
            survival_marks: None,
            rtt: None,
            measured: None,
            memo: Cell::new(None),
        }
    }

    /// The settings this estimator was created with.
    pub fn config(&self) -> &EstimatorConfig {
        &self.config
    }

    /// Sets (or with `None` clears) the user's override of this origin's
    /// idle timeout. An override beats every other source.
    pub fn set_override(&mut self, timeout: Option<Duration>) {
        self.memo.set(None);
        self.overridden = timeout;
    }

    /// Records one piece of evidence; returns the new estimate if it
    /// changed.
    pub fn observe(&mut self, evidence: Evidence, now: Instant) -> Option<Estimate> {
        if !self.is_news(&evidence, now) {
            return None;
        }
        self.memo.set(None);
        let before = self.estimate(now);
        self.forget_old(now);
        match evidence {
            Evidence::KeepAlive(hint) => {
                if let Some(timeout) = hint.timeout {
                    self.header = Some((timeout, now));
                }
            }
            Evidence::Closed { idle_for, kind } => {
                // The connection was open until the close arrived: whatever
                // closed it, the timer had not fired before. (Arrived as
                // far as the client can tell: it may have been read late.)
                self.record_survival(idle_for, true, now);
                self.record_close(idle_for, kind, Seen::Arrived, now);
            }
            Evidence::ClosedWithin { idle_for, kind } => {
                self.record_close(idle_for, kind, Seen::Later, now);
            }
            Evidence::Crossed { idle_for, kind } => {
                // Stray bytes are a response, not a close. A quick one
                // (below `min_lone_close`) needs an agreeing close like
                // any early close: a server that closes every connection
                // right after its response fails requests this way far
                // more often than it is seen idle.
                if kind != CloseKind::Unexpected {
                    self.record_close(idle_for, kind, Seen::Crossing, now);
                }
            }
            Evidence::Survived(idle_for) => {
                for close in &mut self.closes {
                    if close.idle_for < idle_for && close.at < now {
                        close.outlived = close.outlived.saturating_add(1);
                    }
                }
                self.record_survival(idle_for, false, now);
            }
        }
        let after = self.estimate(now);
        (after != before).then_some(after)
    }

    /// Whether [`observe`](Self::observe) would take `evidence` into
    /// account: everything but a recent confirmation (see
    /// [`confirm_refresh`](Tuning::confirm_refresh)) and a `Keep-Alive` header without a timeout.
    /// A caller may skip its own work for evidence that is not news.
    pub fn is_news(&self, evidence: &Evidence, now: Instant) -> bool {
        let recent = |at: Instant| {
            self.fresh(at, now)
                && now.saturating_duration_since(at) < self.config.tuning.confirm_refresh
        };
        match *evidence {
            // One well below the longest confirms nothing (see
            // `record_survival`); one near it only while it is recent.
            Evidence::Survived(idle_for) => match (self.survived, self.survival_marks) {
                (Some((longest, _)), Some(marks)) => {
                    let fresh = marks.fresh_until.is_none_or(|until| now < until);
                    let below = marks.below.is_some_and(|below| idle_for < below);
                    let recent = marks.recent_until.is_none_or(|until| now < until);
                    // One as long as a close's reading proves it.
                    let proves = self.survived_as_read && idle_for >= longest;
                    !(fresh && below) && (idle_for > longest || proves || !recent)
                }
                _ => true,
            },
            Evidence::KeepAlive(KeepAlive { timeout: None, .. }) => false,
            Evidence::KeepAlive(KeepAlive {
                timeout: Some(timeout),
                ..
            }) => self
                .header
                .is_none_or(|(known, at)| known != timeout || !recent(at)),
            Evidence::Closed { .. } | Evidence::ClosedWithin { .. } | Evidence::Crossed { .. } => {
                true
            }
        }
    }

    /// `as_read`: the survival is only a close's reading (see the field
    /// `survived_as_read`).
    fn record_survival(&mut self, idle_for: Duration, as_read: bool, now: Instant) {
        let longest = self
            .survived
            .filter(|(_, at)| self.fresh(*at, now))
            .map(|(longest, _)| longest);
        if longest.is_none_or(|longest| idle_for >= longest) {
            self.survived_as_read = as_read;
        }
        self.survived = match self.survived {
            // A survival near the longest one confirms it.
            Some((longest, at))
                if self.fresh(at, now)
                    && idle_for + self.config.tuning.confirm_tolerance(longest) < longest =>
            {
                Some((longest, at))
            }
            Some((longest, at)) if self.fresh(at, now) => Some((longest.max(idle_for), now)),
            _ => Some((idle_for, now)),
        };
        self.survival_marks = self.survived.map(|(longest, at)| {
            let ttl = self.config.observation_ttl;
            SurvivalMarks {
                below: longest.checked_sub(self.config.tuning.confirm_tolerance(longest)),
                fresh_until: at.checked_add(ttl),
                recent_until: at.checked_add(ttl.min(self.config.tuning.confirm_refresh)),
            }
        });
    }

    fn record_close(&mut self, idle_for: Duration, kind: CloseKind, seen: Seen, now: Instant) {
        if self.config.max_observations == 0 {
            return;
        }
        if self.closes.len() >= self.config.max_observations {
            // A burst of closes that agree (an overload closing everything
            // at 5 ms) must not push out the one that told the real
            // timeout: drop the newest close the new one agrees with, which
            // keeps the burst's first (for its span, see `change_span`);
            // else the oldest. Kept in arrival order.
            let mut agreeing = self
                .closes
                .iter()
                .enumerate()
                .filter(|(_, c)| self.config.tuning.agree(c.idle_for, idle_for))
                .map(|(i, _)| i);
            let at = match agreeing.clone().nth(1) {
                Some(_) => agreeing.next_back().unwrap_or(0),
                None => 0,
            };
            self.closes.remove(at);
        }
        let mut close = Close {
            idle_for,
            kind,
            at: now,
            exact: seen == Seen::Arrived,
            crossed: seen == Seen::Crossing,
            mass: false,
            outlived: 0,
        };
        for other in &mut self.closes {
            let together =
                now.saturating_duration_since(other.at) <= self.config.tuning.mass_window;
            if together && other.idle_for.abs_diff(idle_for) > self.config.tuning.mass_spread {
                other.mass = true;
                close.mass = true;
            }
            // A new reading of the same timer: what outlived the old ones
            // was its jitter, not proof that no timer fires there.
            if self.config.tuning.agree(other.idle_for, idle_for) {
                other.outlived = 0;
            }
        }
        self.closes.push(close);
    }

    /// The longest recent idle time a connection of this origin survived.
    pub fn survived(&self, now: Instant) -> Option<Duration> {
        self.survived
            .filter(|(_, at)| self.fresh(*at, now))
            .map(|(d, _)| d)
    }

    /// The learned timeout: the smallest remembered close that passes the
    /// rules of the [type's documentation](IdleEstimator), if any.
    pub fn learned(&self, now: Instant) -> Option<Duration> {
        self.learned_against(self.header(now), now)
    }

    /// How the most recent remembered close happened, if any.
    pub fn last_close(&self, now: Instant) -> Option<CloseKind> {
        self.live(now).last().map(|c| c.kind)
    }

    /// The current estimate of the server's idle timeout.
    pub fn estimate(&self, now: Instant) -> Estimate {
        if let Some(timeout) = self.overridden {
            return Estimate {
                timeout,
                source: Source::Override,
            };
        }
        let header = self.header(now);
        match (header, self.learned_against(header, now)) {
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

    fn header(&self, now: Instant) -> Option<Duration> {
        self.header
            .filter(|(_, at)| self.fresh(*at, now))
            .map(|(timeout, _)| timeout)
    }

    /// The longest recent survival, unless the server changed since: three
    /// or more agreeing closes below it, all after it was last confirmed
    /// and spread over [`change_span`](Tuning::change_span), mean the timeout is lower now (a
    /// new configuration, not a restart or an overload).
    fn survived_unless_changed(&self, now: Instant) -> Option<Duration> {
        let (survived, at) = self.survived.filter(|(_, at)| self.fresh(*at, now))?;
        let below =
            |c: &&Close| !c.mass && c.at > at && self.config.tuning.is_early(c.idle_for, survived);
        let changed = self.live(now).filter(below).any(|c| {
            let agreeing = || {
                self.live(now)
                    .filter(below)
                    .filter(|other| self.config.tuning.agree(c.idle_for, other.idle_for))
            };
            let first = agreeing().map(|o| o.at).min();
            let last = agreeing().map(|o| o.at).max();
            let span = first
                .zip(last)
                .map_or(Duration::ZERO, |(f, l)| l.saturating_duration_since(f));
            agreeing().count() >= 3 && span >= self.config.tuning.change_span
        });
        (!changed).then_some(survived)
    }

    fn learned_against(&self, header: Option<Duration>, now: Instant) -> Option<Duration> {
        self.learned_close(header, now).map(|(timeout, _)| timeout)
    }

    /// [`learned_against`](Self::learned_against), and whether another
    /// close agrees with the one it rests on.
    fn learned_close(&self, header: Option<Duration>, now: Instant) -> Option<(Duration, bool)> {
        let survived = self.survived_unless_changed(now);
        let tuning = &self.config.tuning;
        // A reading of the timer; one that later survivals outlived still
        // agrees with a new one, but is no estimate itself.
        let reading =
            |c: &&Close| !c.mass && survived.is_none_or(|s| !tuning.is_early(c.idle_for, s));
        let valid = |c: &&Close| reading(c) && c.outlived < tuning.outlived_after;
        // Upper bounds only while nothing was measured.
        let exact_closes = || self.live(now).filter(valid).filter(|c| c.exact);
        let exact = exact_closes().next().is_some();
        // A crossing that agrees with a close seen as it arrived refines
        // it: the request met the close itself, with none of the lag the
        // read of a close adds.
        let refines = move |c: &Close| {
            c.crossed && exact_closes().any(|e| self.config.tuning.agree(e.idle_for, c.idle_for))
        };
        let candidates = || {
            self.live(now)
                .filter(valid)
                .filter(move |c| c.exact || !exact || refines(c))
        };
        let agreeing = |c: &Close| {
            self.live(now).filter(reading).any(|other| {
                !std::ptr::eq(c, other) && self.config.tuning.agree(c.idle_for, other.idle_for)
            })
        };
        let chosen = candidates()
            .filter(|c| {
                let alone = c.idle_for >= self.config.tuning.min_lone_close
                    && header.is_none_or(|header| c.idle_for >= header);
                alone || agreeing(c)
            })
            .min_by_key(|c| c.idle_for)?;
        Some((chosen.idle_for, agreeing(chosen)))
    }

    fn fresh(&self, at: Instant, now: Instant) -> bool {
        now.saturating_duration_since(at) < self.config.observation_ttl
    }

    /// Closes still remembered. One that was not seen as it arrived (an
    /// upper bound, a close crossing a request) is kept only for
    /// [`change_span`](Tuning::change_span): it may tell something other than the timer, and an
    /// estimate it lowered must not cost reuse for long.
    fn live(&self, now: Instant) -> impl Iterator<Item = &Close> {
        self.closes.iter().filter(move |c| self.remembered(c, now))
    }

    fn remembered(&self, close: &Close, now: Instant) -> bool {
        let ttl = if close.exact {
            self.config.observation_ttl
        } else {
            self.config
                .observation_ttl
                .min(self.config.tuning.bound_memory)
        };
        now.saturating_duration_since(close.at) < ttl
    }

    fn forget_old(&mut self, now: Instant) {
        let mut closes = std::mem::take(&mut self.closes);
        closes.retain(|c| self.remembered(c, now));
        self.closes = closes;
    }
}

#[cfg(test)]
#[path = "estimator_tests.rs"]
mod tests;
