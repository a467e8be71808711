//! The pool: idle connections per origin, limits, waiters, and retirement.
//!
//! All mutable state sits behind one `Mutex` (as in hyper-util's pool).
//! Checkout pops the most recently used idle connection (LIFO keeps few
//! connections warm), skips any that are past their retire time, closed, or
//! that the probe rejects, and learns the server's idle timeout from the
//! dead ones. Returned connections go to the oldest waiter first (FIFO),
//! otherwise back on the idle list, scheduled in the client's single
//! [`ExpiryQueue`]. Past their origin's retire time no checkout takes them;
//! they stay parked until the end of their watch for the server's close
//! (see [`IdleEstimator::watch_after`](freshpool_expiry::IdleEstimator::watch_after)),
//! when the one driver task closes those the server has not. It holds
//! only a `Weak` to the pool.

mod checkout;
mod conn;
mod h2;
mod idle;
mod key;
mod learn;
mod origins;

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use freshpool_expiry::{Driver, Evidence, Expire, ExpiryQueue, IdleEstimator, Key, Rtt};
use freshpool_probe::Liveness;
use http::HeaderValue;
use tokio::sync::oneshot;

pub(crate) use conn::{Conn, ConnParts, H2Connecting, Handoff, OpenSlot, Streams, Tx};
use idle::{Idle, IdleList};
pub use key::Origin;
pub(crate) use key::OriginKey;
use learn::FAR;
pub(crate) use learn::Learned;
use origins::{Origins, Remembered};

use crate::builder::Config;
use crate::error::Error;
use crate::stats::{Counters, Event, OriginStats, Stats};

/// The queue's entry: enough to find the idle connection again.
#[derive(Debug)]
struct Expiring {
    origin: OriginKey,
    id: u64,
}

/// A checkout waiting for a connection or a slot.
struct Waiter<B> {
    tx: oneshot::Sender<Handoff<B>>,
    /// For a retry: it takes only a slot to connect (no idle HTTP/1
    /// connection), or a stream on another HTTP/2 connection than this one.
    retry: Option<Retry>,
}

/// What a retry's checkout must avoid (RFC 9112 §9.3.1: a retry goes on a
/// freshly connected connection).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    /// The connection the failed attempt ran on.
    pub(crate) failed: u64,
}

/// What the pool keeps per origin.
pub(crate) struct OriginState<B> {
    /// The `Host` header for this origin's requests (when the request has
    /// none), made once.
    host: Option<HeaderValue>,
    idle: IdleList<Idle<B>>,
    waiters: VecDeque<Waiter<B>>,
    /// Connections open or connecting, counted against the host limit.
    open: usize,
    estimator: IdleEstimator,
    /// When a measured round trip that is no news is taken anyway, so that
    /// the jitter it keeps decays (see [`PoolShared::round_trip_in`]).
    round_trip_refresh_at: Option<Instant>,
    pub(crate) counters: Counters,
    /// Shared HTTP/2 connections (the templates handles are cloned from).
    h2: Vec<Conn<B>>,
    /// Someone is opening an HTTP/2 connection to this origin.
    h2_connecting: bool,
    /// Requests waiting for that connection.
    h2_waiters: Vec<oneshot::Sender<()>>,
}

struct State<B> {
    origins: Origins<B>,
    queue: ExpiryQueue<Expiring>,
    /// The driver's lateness when the driver last expired: a higher one
    /// since moves the parked connections to earlier retire times.
    slack: Duration,
}

pub(crate) struct PoolShared<B> {
    state: Mutex<State<B>>,
    /// Random keys for hashing origins (see [`OriginKey::of`]).
    keys: RandomState,
    /// The key made last: most requests go to the origin the one before
    /// went to, and a URI spelled the same way needs no second parse.
    last_key: Mutex<Option<OriginKey>>,
    pub(crate) config: Arc<Config>,
    driver: Driver,
}

/// What checkout found.
pub(crate) enum Checkout<B> {
    /// An idle connection, with how long it had been idle.
    Reused(Conn<B>, Duration),
    /// No idle connection: connect, holding this slot (and, for HTTP/2
    /// with prior knowledge, the right to open the shared connection).
    Connect(OpenSlot<B>, Option<H2Connecting<B>>),
}

/// What the locked part of checkout decided.
enum Found<B> {
    Done(Checkout<B>),
    /// An idle HTTP/1 connection to probe outside the lock (already
    /// counted as reused: a rejection takes that back).
    Probe(Idle<B>),
    /// Wait for a connection or a slot.
    Wait(oneshot::Receiver<Handoff<B>>),
    /// Wait for another request's HTTP/2 connection.
    WaitH2(oneshot::Receiver<()>),
}

/// What a checkout that could not finish at once waits for.
pub(crate) enum Waiting<B> {
    /// A connection or a slot from a waiter queue.
    Handoff(oneshot::Receiver<Handoff<B>>),
    /// Another request's HTTP/2 connection.
    H2(oneshot::Receiver<()>),
}

/// Why an idle connection was not handed out.
enum Dead {
    Expired,
    Closed,
    Probe(Liveness),
}

/// Takes `conn`'s entry (if it still has one) out of the expiry queue.
fn unschedule<B>(queue: &mut ExpiryQueue<Expiring>, conn: &mut Conn<B>) {
    if let Some((entry, _)) = conn.expiry {
        conn.set_expiry(None);
        queue.remove(&entry);
    }
}

pub(crate) use freshpool_expiry::now;

impl<B> PoolShared<B> {
    pub(crate) fn new(config: Arc<Config>) -> Arc<PoolShared<B>> {
        Arc::new(PoolShared {
            state: Mutex::new(State {
                origins: Origins::default(),
                queue: ExpiryQueue::new(),
                slack: Duration::ZERO,
            }),
            keys: RandomState::new(),
            last_key: Mutex::new(None),
            config,
            driver: Driver::new(),
        })
    }

    /// The pool key of a request URI, or why it has none.
    pub(crate) fn key(&self, uri: &http::Uri) -> Result<OriginKey, Error> {
        let mut last = self.last_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(key) = last.as_ref().filter(|key| key.is_spelled_as(uri)) {
            return Ok(key.clone());
        }
        let key = OriginKey::of(uri, &self.keys)?;
        *last = Some(key.clone());
        Ok(key)
    }

    fn lock(&self) -> MutexGuard<'_, State<B>> {
        // Nothing panics while the lock is held; if something did, the
        // state is still a set of valid lists.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bumps a counter of `origin`; totals are summed when read.
    pub(crate) fn bump(&self, origin: &mut OriginState<B>, event: Event) {
        origin.counters.bump(event);
    }

    /// Bumps a counter of the origin named `origin`.
    pub(crate) fn count(&self, origin: &OriginKey, event: Event) {
        let mut state = self.lock();
        match state.origins.get_mut(origin) {
            Some(o) => o.counters.bump(event),
            None => state.origins.count_absent(origin, event),
        }
    }

    /// The pool's record of `key`, made on first use.
    fn origin<'a>(&self, origins: &'a mut Origins<B>, key: &OriginKey) -> &'a mut OriginState<B> {
        origins.get_or_insert(key, |remembered| self.new_origin(key, remembered))
    }

    fn new_origin(&self, key: &OriginKey, remembered: Option<Remembered>) -> OriginState<B> {
        let (estimator, counters) = match remembered {
            Some(Remembered {
                estimator,
                counters,
            }) => (estimator, counters),
            None => {
                let mut estimator = IdleEstimator::new(self.config.estimator);
                estimator.set_override(self.config.overrides.get(&key.authority()).copied());
                (estimator, Counters::default())
            }
        };
        OriginState {
            host: key.host_header(),
            idle: IdleList::default(),
            waiters: VecDeque::new(),
            open: 0,
            estimator,
            counters,
            h2: Vec::new(),
            h2_connecting: false,
            round_trip_refresh_at: None,
            h2_waiters: Vec::new(),
        }
    }

    /// The kernel's round trip for a new connection, or the connect time
    /// when there is none, for the margin.
    pub(crate) fn observe_rtt(&self, key: &OriginKey, rtt: Option<Rtt>, connect_time: Duration) {
        let mut state = self.lock();
        let estimator = &mut self.origin(&mut state.origins, key).estimator;
        match rtt {
            Some(rtt) => estimator.observe_rtt(rtt),
            None => estimator.observe_round_trip(connect_time),
        }
    }

    /// A connection (or connect attempt) ended: give its place to a waiter,
    /// or lower the host's count.
    pub(crate) fn free_slot(self: &Arc<Self>, key: &OriginKey) {
        let mut state = self.lock();
        let Some(origin) = state.origins.get_mut(key) else {
            return;
        };
        while let Some(waiter) = origin.waiters.pop_front() {
            let slot = OpenSlot {
                pool: Arc::downgrade(self),
                origin: key.clone(),
                armed: true,
            };
            match waiter.tx.send(Handoff::Slot(slot)) {
                Ok(()) => return,
                // Disarm before dropping: this lock is held.
                Err(Handoff::Slot(mut slot)) => slot.armed = false,
                // Only a slot was sent.
                Err(Handoff::Conn(_)) => {}
            }
        }
        origin.open = origin.open.saturating_sub(1);
        if origin.open == 0 {
            state.origins.forget_if_empty(key);
        }
    }
}

impl<B: Send + 'static> PoolShared<B> {
    /// Evidence about `key`'s server outside a check-in (a failed request,
    /// a non-reusable response).
    pub(crate) fn observe(self: &Arc<Self>, key: &OriginKey, evidence: Evidence) {
        let now = now();
        let wake = {
            let mut state = self.lock();
            let state = &mut *state;
            let origin = self.origin(&mut state.origins, key);
            self.observe_in(origin, &mut state.queue, key, evidence, now)
        };
        if let Some(at) = wake {
            self.driver.schedule(self, at);
        }
    }

    /// An HTTP/1 connection's task ended: if the connection is parked, it
    /// leaves the pool now (it no longer holds its buffers, and is no
    /// longer counted idle), and its close is learned from. If it died
    /// checked out, its expiry queue entry (`expiry`, if still its own)
    /// goes: with no idle timeout it would never fire.
    pub(crate) fn connection_ended(
        self: &Arc<Self>,
        key: &OriginKey,
        id: u64,
        expiry: Option<Key>,
    ) {
        let now = now();
        let (dead, wake) = {
            let mut guard = self.lock();
            let state = &mut *guard;
            let Some(origin) = state.origins.get_mut(key) else {
                return;
            };
            let Some(mut idle) = origin.idle.remove(id) else {
                if let Some(entry) = expiry
                    && state.queue.get(&entry).is_some_and(|e| e.id == id)
                {
                    state.queue.remove(&entry);
                }
                return;
            };
            unschedule(&mut state.queue, &mut idle.conn);
            let wake = self.bury(origin, &mut state.queue, key, &idle, Dead::Closed, now);
            (idle, wake)
        };
        // Closed outside the lock.
        drop(dead);
        if let Some(at) = wake {
            self.driver.schedule(self, at);
        }
    }

    /// Takes back a connection whose response has been read to its end,
    /// with what the response taught about its origin.
    pub(crate) fn release(self: &Arc<Self>, key: &OriginKey, conn: Conn<B>, learned: Learned) {
        let poolable = !(conn.is_http2() || conn.is_unusable() || conn.remaining == Some(0));
        if !poolable && learned.is_empty() {
            return;
        }
        let now = now();
        // The idle clock started when the last byte came off the socket,
        // however long the caller then took to finish reading the body.
        let since = conn.state.last_read().map_or(now, |at| at.min(now));
        let round_trip = conn.state.take_round_trip();
        let wake = {
            let mut state = self.lock();
            let state = &mut *state;
            let origin = self.origin(&mut state.origins, key);
            let measured_wake = round_trip
                .and_then(|sample| self.round_trip_in(origin, &mut state.queue, key, sample, now));
            let learned_wake = self.learn_from(origin, &mut state.queue, key, learned, now);
            let learned_wake = match (learned_wake, measured_wake) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if !poolable {
                learned_wake
            } else {
                match self.park(origin, &mut state.queue, key, conn, since, now) {
                    Some(at) => Some(learned_wake.map_or(at, |l| l.min(at))),
                    None => learned_wake,
                }
            }
        };
        if let Some(at) = wake {
            self.driver.schedule(self, at);
        }
    }

    /// Gives `conn` to the oldest waiter, or parks it idle until its
    /// retire time. Returns a deadline the driver must be told about.
    fn park(
        self: &Arc<Self>,
        origin: &mut OriginState<B>,
        queue: &mut ExpiryQueue<Expiring>,
        key: &OriginKey,
        mut conn: Conn<B>,
        since: Instant,
        now: Instant,
    ) -> Option<Instant> {
        // A waiter takes it at once; a checkout sets the next one.
        conn.state.set_due(None);
        // Retries wait for a slot to connect, not for a used connection.
        while let Some(at) = origin.waiters.iter().position(|w| w.retry.is_none()) {
            let Some(waiter) = origin.waiters.remove(at) else {
                break;
            };
            match waiter.tx.send(Handoff::Conn(conn)) {
                Ok(()) => return None,
                Err(Handoff::Conn(back)) => conn = back,
                // Only a connection was sent.
                Err(Handoff::Slot(mut slot)) => {
                    slot.armed = false;
                    return None;
                }
            }
        }
        // Connections watched past their retire time are never handed out
        // again: they hold no place a reusable one could take. (Counted
        // only at the limit, which by default is never reached.)
        let max = self.config.pool_max_idle_per_host;
        if origin.idle.len() >= max
            && origin
                .idle
                .iter_mut()
                .filter(|idle| idle.retire_at > now)
                .count()
                >= max
        {
            return None;
        }
        // With no idle timeout anywhere, park it a century away.
        let slack = self.slack();
        let after = origin.estimator.retire_after(now, slack);
        let mut retire_at = since.checked_add(after).unwrap_or(now + FAR);
        let mut watch_until = since
            .checked_add(origin.estimator.watch_after(now, slack))
            .unwrap_or(now + FAR);
        if let Some(deadline) = conn.lifetime_deadline {
            retire_at = retire_at.min(deadline);
        }
        // Watched only past the server's retire time, not past our own
        // lifetime deadline.
        if retire_at < since.checked_add(after).unwrap_or(now + FAR) {
            watch_until = retire_at;
        }
        let watch_until = watch_until.max(retire_at);
        if retire_at <= now {
            self.bump(origin, Event::RetiredByExpiry);
            tracing::debug!(origin = %key, id = conn.id, "retired at check-in: due already");
            return None;
        }
        conn.state.set_idle();
        // A connection keeps one queue entry across its idle periods. An
        // entry due before `retire_at` stays: if it fires while the
        // connection is idle again, `expire` moves it to the watch's end of
        // that idle period. So a busy connection costs one queue operation
        // per retire period, not two per request. (One due later, during
        // the watch, would end the watch early.)
        let current = conn
            .expiry
            .is_some_and(|(entry, at)| at < retire_at && queue.contains(&entry));
        let wake = if current {
            None
        } else {
            unschedule(queue, &mut conn);
            // The driver already wakes for the queue's earliest deadline;
            // it only needs telling about an earlier one.
            let earlier = queue.next_deadline().is_none_or(|next| watch_until < next);
            let entry = queue.insert(
                watch_until,
                Expiring {
                    origin: key.clone(),
                    id: conn.id,
                },
            );
            conn.set_expiry(Some((entry, watch_until)));
            earlier.then_some(watch_until)
        };
        origin.idle.push(Idle {
            conn,
            since,
            retire_at,
            watch_until,
        });
        wake
    }

    pub(crate) fn stats(&self) -> Stats {
        let now = now();
        let state = self.lock();
        let mut total = state.origins.forgotten();
        let slack = self.slack();
        let remembered = state.origins.remembered().map(|(key, remembered)| {
            let mut stats: OriginStats = remembered.counters.snapshot();
            let estimate = remembered.estimator.estimate(now);
            stats.estimate = Some((estimate.timeout, estimate.source));
            stats.retire_after = Some(remembered.estimator.retire_after(now, slack));
            (key, stats)
        });
        let origins = state
            .origins
            .live()
            .map(|(key, origin)| {
                let mut stats: OriginStats = origin.counters.snapshot();
                stats.idle = origin.idle.len();
                stats.open = origin.open;
                let estimate = origin.estimator.estimate(now);
                stats.estimate = Some((estimate.timeout, estimate.source));
                stats.retire_after = Some(origin.estimator.retire_after(now, slack));
                (key, stats)
            })
            .chain(remembered)
            .map(|(key, stats)| {
                total.accumulate(&stats);
                (key.to_string(), stats)
            })
            .collect();
        Stats {
            total,
            origins,
            scheduled: state.queue.len(),
        }
    }
}

impl<B: Send + 'static> Expire for PoolShared<B> {
    fn expire(&self, now: Instant) -> Option<Instant> {
        let mut retired = Vec::new();
        let mut watched = Vec::new();
        let mut guard = self.lock();
        let state = &mut *guard;
        let slack = self.slack();
        if slack > state.slack {
            // The runtime runs later than when these were parked (the
            // driver just measured it): their margins must grow too.
            for (key, origin) in state.origins.live_mut() {
                self.retire_parked_earlier(origin, &mut state.queue, key, now);
            }
        }
        state.slack = slack;
        let mut next_wake: Option<Instant> = None;
        while let Some((_, entry)) = state.queue.poll_expired(now) {
            let Some(origin) = state.origins.get_mut(&entry.origin) else {
                continue;
            };
            // In use (it gets a new entry when it is back), or gone.
            let Some(parked) = origin.idle.get_mut(entry.id) else {
                continue;
            };
            if parked.watch_until > now {
                // Used since the entry was made (due at the end of this
                // idle period's watch instead), or the driver came early.
                let due = parked.watch_until;
                let key = state.queue.insert(due, entry);
                parked.conn.set_expiry(Some((key, due)));
                continue;
            }
            let Some(idle) = origin.idle.remove(entry.id) else {
                continue;
            };
            let key = &entry.origin;
            let Some(wake) = self.learn_from_close(origin, &mut state.queue, key, &idle, now)
            else {
                // The watch is over: retired. How long it survived is
                // known once its socket is probed, outside the lock.
                self.bump(origin, Event::RetiredByExpiry);
                watched.push((entry.origin.clone(), idle));
                continue;
            };
            if let Some(at) = wake {
                next_wake = Some(next_wake.map_or(at, |n: Instant| n.min(at)));
            }
            retired.push(idle.conn);
        }
        let next = state.queue.next_deadline();
        // Close the retired connections outside the lock.
        drop(guard);
        drop(retired);
        for (key, idle) in watched {
            if let Some(at) = self.watched_survival(&key, &idle) {
                next_wake = Some(next_wake.map_or(at, |n: Instant| n.min(at)));
            }
        }
        match (next, next_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl<B> fmt::Debug for PoolShared<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}
