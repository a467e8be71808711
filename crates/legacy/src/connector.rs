//! The connector: wraps the user's connector, and owns what all of its
//! connections share: the per-origin idle estimators, the one expiry queue
//! and the one driver task that retires idle connections.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use freshpool::Origin;
use freshpool_expiry::{
    Driver, Estimate, EstimatorConfig, Evidence, Expire, ExpiryQueue, IdleEstimator, Key, Tuning,
};
use http::Uri;
use hyper::rt::{Read, Write};
use hyper_util::client::legacy::connect::Connection;
use pin_project_lite::pin_project;
use tower_service::Service;

use crate::info::ConnShared;
use crate::io::TrackedIo;

pub(crate) use freshpool_expiry::now;
pub(crate) use origin_shared::OriginShared;

mod origin_shared;

/// What identifies an origin: freshpool's [`Origin`] (scheme, host
/// ignoring case, explicit port) for the schemes freshpool serves (`http`,
/// `https`, hyperlocal's `unix`), so that both clients agree on what one
/// origin is. The adapter wraps any connector, which may serve other
/// schemes; such a URI is keyed by its scheme and authority as written
/// (there is no default port to fill in).
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum OriginKey {
    Served(Origin),
    Other(Arc<str>),
}

impl OriginKey {
    pub(crate) fn of(uri: &Uri) -> OriginKey {
        match Origin::of(uri) {
            Ok(origin) => OriginKey::Served(origin),
            Err(_) => OriginKey::Other(
                format!(
                    "{}://{}",
                    uri.scheme_str().unwrap_or_default(),
                    uri.authority().map_or("", |a| a.as_str())
                )
                .into(),
            ),
        }
    }
}

impl fmt::Display for OriginKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OriginKey::Served(origin) => fmt::Display::fmt(origin, f),
            OriginKey::Other(key) => f.write_str(key),
        }
    }
}

impl fmt::Debug for OriginKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A snapshot of a [`Connector`]'s counters, shared by all its clones.
///
/// Filled from relaxed atomics: each counter is exact, but a snapshot taken
/// while connections are active may mix moments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections the inner connector made.
    pub connections: u64,
    /// Idle connections the adapter ended at their retire time, before the
    /// server's idle deadline.
    pub retired: u64,
    /// Server closes of idle connections observed (a FIN, a reset, or
    /// stray bytes such as a `408`); each one is learned from.
    pub server_closes: u64,
    /// Connections the adapter stopped following and never touches again:
    /// HTTP/2, upgrades, `CONNECT` tunnels, exchanges it cannot follow.
    pub untracked: u64,
    /// Connections whose first bytes written were a TLS record instead of
    /// HTTP: the connector is wrapped *inside* the TLS layer, sees only
    /// ciphertext, and protects nothing. Wrap the TLS connector instead:
    /// `Connector::new(https)` (see the [crate docs](crate#tls)). The
    /// first one is also logged as a `tracing` warning.
    pub wrong_order: u64,
    /// Origins the connector keeps an estimate for: every one with a
    /// connection, and the 256 whose connections went most recently.
    pub origins: usize,
}

#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    retired: AtomicU64,
    server_closes: AtomicU64,
    untracked: AtomicU64,
    wrong_order: AtomicU64,
}

/// Whether `first` (the first bytes written on a connection) starts a TLS
/// record (content type 20–23, version 3.x), as a ClientHello does. No
/// HTTP/1 request starts so: its method is a token of letters.
pub(crate) fn is_tls_record(first: &[u8]) -> bool {
    matches!(first, [0x14..=0x17, 0x03, ..])
}

/// An origin's place in [`State::origin_states`]: connections keep it, so
/// their updates need no hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot(usize);

/// One origin: its estimator, what its connections read without the lock,
/// and its live connections (so that a lower estimate reaches those
/// already parked).
struct OriginState {
    estimator: IdleEstimator,
    shared: Arc<OriginShared>,
    conns: Vec<Weak<ConnShared>>,
    /// `conns` is pruned of dead entries when it grows past this.
    prune_at: usize,
    /// Connections of this origin alive (made and not yet dropped).
    live: usize,
    /// Which emptying of the origin its entry in [`State::emptied`] is for.
    emptied: u64,
}

/// How many origins with no connection left keep their estimate (as the
/// native pool's bound): one that comes back keeps what was learned.
const REMEMBERED: usize = 256;

struct State {
    /// Where each origin's estimator is: those with a connection, and the
    /// [`REMEMBERED`] most recently emptied ones. The rest are forgotten,
    /// so a connector facing many origins (a proxy) stays bounded.
    origins: HashMap<OriginKey, Slot>,
    /// Places of origins; `None` where one was forgotten (reused by the
    /// next new origin).
    origin_states: Vec<Option<OriginState>>,
    free: Vec<usize>,
    /// Origins whose last connection went, oldest first, with which
    /// emptying each was for (an origin that got a connection since, or
    /// emptied again, has a newer one).
    emptied: VecDeque<(Slot, u64, OriginKey)>,
    emptyings: u64,
    /// Every idle connection's retire time, at most one entry per
    /// connection. The entries hold only a `Weak`: a connection hyper
    /// dropped is simply skipped.
    queue: ExpiryQueue<Weak<ConnShared>>,
    /// The driver's lateness when the driver last expired: a higher one
    /// since is published at once.
    slack: Duration,
}

/// What every clone of a [`Connector`] and every one of its connections
/// share.
pub(crate) struct Shared {
    state: Mutex<State>,
    config: EstimatorConfig,
    counters: Counters,
    driver: Driver,
}

impl Shared {
    /// The numbers the origins' estimators rest on.
    pub(crate) fn tuning(&self) -> &Tuning {
        &self.config.tuning
    }

    fn new(config: EstimatorConfig) -> Arc<Shared> {
        Arc::new(Shared {
            state: Mutex::new(State {
                origins: HashMap::new(),
                origin_states: Vec::new(),
                free: Vec::new(),
                emptied: VecDeque::new(),
                emptyings: 0,
                queue: ExpiryQueue::new(),
                slack: Duration::ZERO,
            }),
            config,
            counters: Counters::default(),
            driver: Driver::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; if something did, the
        // estimators and the queue are still valid.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records evidence about the origin in `slot`, publishes the result,
    /// and, when the retire time went down, asks every live connection of
    /// the origin to look at it again: a connection parked with the old
    /// estimate retires by the new one.
    ///
    /// A server's close also has the driver measure its lateness at once
    /// ([`Driver::calibrate`]): the close was read as late as the runtime
    /// runs, and the margin must cover that.
    pub(crate) fn observe(
        self: &Arc<Self>,
        origin: &OriginKey,
        slot: Slot,
        evidence: Evidence,
        now: Instant,
    ) {
        if self.config.tuning.is_server_close(&evidence) {
            self.counters.server_closes.fetch_add(1, Ordering::Relaxed);
        }
        self.learn(origin, slot, evidence, now);
    }

    /// The server closed a connection already retired for idleness, while
    /// it was watched for that (see [`IdleEstimator::watch_after`]): a
    /// reading of its timer like any close, but no close of a connection
    /// in use, so it counts as retired.
    pub(crate) fn observe_watched(
        self: &Arc<Self>,
        origin: &OriginKey,
        slot: Slot,
        evidence: Evidence,
        now: Instant,
    ) {
        self.count_retired();
        self.learn(origin, slot, evidence, now);
    }

    fn learn(self: &Arc<Self>, origin: &OriginKey, slot: Slot, evidence: Evidence, now: Instant) {
        if self.config.tuning.is_server_close(&evidence) {
            self.driver.calibrate(self);
        }
        let slack = self.driver.lateness();
        let mut state = self.lock();
        let Some(o) = state.origin_state(slot) else {
            return;
        };
        let before = o.estimator.retire_after(now, slack);
        let changed = o.estimator.observe(evidence, now);
        o.shared.publish(&o.estimator, now, slack);
        let Some(estimate) = changed else {
            return;
        };
        tracing::debug!(
            origin = %origin,
            ?evidence,
            estimate = ?estimate.timeout,
            source = %estimate.source,
            why = %o.estimator.explain(now),
            "idle timeout estimate changed"
        );
        if o.estimator.retire_after(now, slack) >= before {
            return;
        }
        let conns: Vec<_> = o.conns.iter().filter_map(Weak::upgrade).collect();
        drop(state);
        // Outside the lock: waking runs hyper's waker code.
        for conn in conns {
            conn.request_retire();
        }
    }

    /// A new connection to `origin`: returns the origin's slot and what its
    /// connections share.
    pub(crate) fn connected(
        &self,
        origin: &OriginKey,
        conn: &Arc<ConnShared>,
        now: Instant,
    ) -> (Slot, Arc<OriginShared>) {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        let slack = self.driver.lateness();
        let mut state = self.lock();
        let state = &mut *state;
        let slot = match state.origins.get(origin) {
            Some(&slot) => slot,
            None => {
                let slot = match state.free.pop() {
                    Some(at) => Slot(at),
                    None => {
                        state.origin_states.push(None);
                        Slot(state.origin_states.len() - 1)
                    }
                };
                state.origins.insert(origin.clone(), slot);
                slot
            }
        };
        let o = state.origin_states[slot.0].get_or_insert_with(|| OriginState {
            estimator: IdleEstimator::new(self.config),
            shared: Arc::new(OriginShared::new()),
            conns: Vec::new(),
            prune_at: 16,
            live: 0,
            emptied: 0,
        });
        o.live += 1;
        if o.conns.len() >= o.prune_at {
            o.conns.retain(|c| c.strong_count() > 0);
            o.prune_at = (o.conns.len() * 2).max(16);
        }
        o.conns.push(Arc::downgrade(conn));
        o.shared.publish(&o.estimator, now, slack);
        (slot, Arc::clone(&o.shared))
    }

    /// A connection of `origin` (in `slot`) went. Once an origin has none,
    /// it is remembered among the [`REMEMBERED`] most recently emptied;
    /// the oldest beyond that is forgotten.
    pub(crate) fn disconnected(&self, origin: &OriginKey, slot: Slot) {
        let mut state = self.lock();
        let state = &mut *state;
        let Some(o) = state.origin_states.get_mut(slot.0).and_then(Option::as_mut) else {
            return;
        };
        o.live = o.live.saturating_sub(1);
        if o.live > 0 {
            return;
        }
        state.emptyings += 1;
        o.emptied = state.emptyings;
        state.emptied.push_back((slot, o.emptied, origin.clone()));
        while state.emptied.len() > REMEMBERED {
            let Some((slot, emptying, key)) = state.emptied.pop_front() else {
                break;
            };
            let Some(place) = state.origin_states.get_mut(slot.0) else {
                continue;
            };
            if place
                .as_ref()
                .is_some_and(|o| o.live == 0 && o.emptied == emptying)
            {
                *place = None;
                state.origins.remove(&key);
                state.free.push(slot.0);
            }
        }
    }

    /// The expiry driver's current lateness (see [`Driver::lateness`]),
    /// which every published retire time includes.
    #[inline]
    pub(crate) fn lateness(&self) -> Duration {
        self.driver.lateness()
    }

    /// A round trip a connection measured (its request's last byte to its
    /// response's head), for the margin.
    pub(crate) fn observe_round_trip(&self, slot: Slot, sample: Duration, now: Instant) {
        let slack = self.driver.lateness();
        let mut state = self.lock();
        if let Some(o) = state.origin_state(slot) {
            o.estimator.observe_round_trip(sample);
            o.shared.publish(&o.estimator, now, slack);
        }
    }

    /// Puts (or moves) a connection's entry in the queue at `deadline`.
    pub(crate) fn schedule(
        self: &Arc<Self>,
        conn: &Arc<ConnShared>,
        key: &mut Option<Key>,
        deadline: Instant,
    ) {
        let earliest = {
            let mut state = self.lock();
            let earliest = state
                .queue
                .next_deadline()
                .is_none_or(|next| deadline < next);
            let moved = key.as_ref().is_some_and(|k| state.queue.reset(k, deadline));
            if !moved {
                *key = Some(state.queue.insert(deadline, Arc::downgrade(conn)));
            }
            earliest
        };
        // The driver already wakes at the queue's earliest deadline (one
        // moved later only makes it wake for nothing once).
        if earliest {
            self.driver.schedule(self, deadline);
        }
    }

    /// Drops a connection's queue entry (it closed, or is not followed).
    pub(crate) fn unschedule(&self, key: &Key) {
        let removed = self.lock().queue.remove(key);
        drop(removed);
    }

    pub(crate) fn count_retired(&self) {
        self.counters.retired.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_untracked(&self) {
        self.counters.untracked.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection wrote TLS instead of HTTP: counted, and said once per
    /// connector (and its clones).
    pub(crate) fn count_wrong_order(&self, origin: &OriginKey) {
        if self.counters.wrong_order.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!(
                origin = %origin,
                "freshpool_legacy::Connector is wrapped inside a TLS connector and sees only \
                 ciphertext, so it protects nothing: wrap the TLS connector instead, \
                 Connector::new(https)"
            );
        }
    }

    fn stats(&self) -> Stats {
        Stats {
            connections: self.counters.connections.load(Ordering::Relaxed),
            retired: self.counters.retired.load(Ordering::Relaxed),
            server_closes: self.counters.server_closes.load(Ordering::Relaxed),
            untracked: self.counters.untracked.load(Ordering::Relaxed),
            wrong_order: self.counters.wrong_order.load(Ordering::Relaxed),
            origins: self.lock().origins.len(),
        }
    }
}

impl State {
    fn origin_state(&mut self, slot: Slot) -> Option<&mut OriginState> {
        self.origin_states.get_mut(slot.0)?.as_mut()
    }
}

impl Expire for Shared {
    fn expire(&self, now: Instant) -> Option<Instant> {
        let slack = self.driver.lateness();
        let mut due = Vec::new();
        let next = {
            let mut state = self.lock();
            if slack > state.slack {
                // The runtime runs later than the published retire times
                // allow for (the driver just measured it): publish them
                // again, and have the connections of an origin whose time
                // went down look at it.
                for o in state.origin_states.iter_mut().flatten() {
                    let before = o.shared.retire_after_nanos();
                    o.shared.publish(&o.estimator, now, slack);
                    if o.shared.retire_after_nanos() < before {
                        due.extend(o.conns.iter().cloned());
                    }
                }
            }
            state.slack = slack;
            while let Some((_, conn)) = state.queue.poll_expired(now) {
                due.push(conn);
            }
            state.queue.next_deadline()
        };
        // Outside the lock: waking runs hyper's waker code.
        for conn in due {
            if let Some(conn) = conn.upgrade() {
                conn.request_retire();
            }
        }
        next
    }
}

/// Wraps a hyper-util connector so that hyper-util's legacy `Client` never
/// reuses a connection the server is about to close for idleness.
///
/// `Connector::new(inner)` takes any connector hyper-util's `Client`
/// accepts (`HttpConnector`, hyper-rustls's `HttpsConnector`, a proxy
/// connector) and is one itself. Its connections are [`TrackedIo`]s: each
/// follows its HTTP/1 messages, learns the server's idle timeout per origin
/// (from `Keep-Alive` headers and from the closes it observes), and ends
/// itself, while provably idle, a margin before the server would (see the
/// [crate documentation](crate)).
///
/// Clones share their estimates, their counters and their one driver task,
/// as clones of a hyper-util `Client` share their pool.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use freshpool_legacy::Connector;
/// use freshpool_origin::{Advertise, Origin};
/// use http_body_util::{BodyExt, Empty};
/// use hyper_util::client::legacy::{Client, connect::HttpConnector};
/// use hyper_util::rt::TokioExecutor;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// // A server that closes idle connections after 1 s, and says so.
/// let origin = Origin::builder()
///     .idle_timeout(Duration::from_secs(1))
///     .advertise(Advertise::Truthful)
///     .start()
///     .await?;
///
/// let connector = Connector::new(HttpConnector::new());
/// let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(connector.clone());
///
/// let url: http::Uri = format!("{}/", origin.base_url()).parse()?;
/// let response = client.get(url.clone()).await?;
/// response.into_body().collect().await?;
///
/// // `Keep-Alive: timeout=1`: the connection is retired just before the
/// // server would close it (the margin is the round trip and the
/// // client's scheduling slack, 1 ms at least, here: at 999 ms). From
/// // then on no request goes out on it; it is watched a little longer,
/// // and the server's close, another reading of its timer, counts as
/// // retired too.
/// tokio::time::sleep(Duration::from_millis(1100)).await;
/// assert_eq!(connector.stats().retired, 1);
/// assert_eq!(connector.stats().server_closes, 0);
///
/// // The next request gets a fresh connection instead of a dying one.
/// client.get(url).await?.into_body().collect().await?;
/// assert_eq!(origin.stats().connections_accepted, 2);
/// # origin.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Connector<C> {
    inner: C,
    shared: Arc<Shared>,
}

impl<C> Connector<C> {
    /// Wraps `inner`, with the default estimator settings: a 90 s idle
    /// timeout when nothing is known about a server (hyper-util's own
    /// `pool_idle_timeout`), and [`Margin::default`](crate::Margin): the
    /// measured round trip plus the driver's lateness, at least 1 ms, plus
    /// 1% of a learned estimate and the lateness again (10 ms more while it
    /// rests on one close), at most 2 s.
    pub fn new(inner: C) -> Connector<C> {
        Connector::with_config(inner, EstimatorConfig::default())
    }

    /// Wraps `inner` with the given estimator settings.
    ///
    /// Set [`default_timeout`](EstimatorConfig::default_timeout) to the
    /// client's `pool_idle_timeout` if it is not the default 90 s.
    pub fn with_config(inner: C, config: EstimatorConfig) -> Connector<C> {
        Connector {
            inner,
            shared: Shared::new(config),
        }
    }

    /// The wrapped connector.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The wrapped connector, mutably (to change its settings).
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// A snapshot of the counters of this connector and all its clones.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The current estimate of the idle timeout of `uri`'s origin (scheme,
    /// host and port), or `None` if no connection was made to it yet (or it
    /// has had none for long enough to be forgotten: see
    /// [`Stats::origins`]).
    pub fn estimate(&self, uri: &Uri) -> Option<Estimate> {
        self.with_origin(uri, |o| o.estimator.estimate(now()))
    }

    /// How long an idle connection to `uri`'s origin may stay idle now
    /// before the adapter retires it (the estimate less the margin), or
    /// `None` if the origin is not known, as for
    /// [`estimate`](Self::estimate).
    pub fn retire_after(&self, uri: &Uri) -> Option<Duration> {
        self.with_origin(uri, |o| o.shared.retire_after())
    }

    fn with_origin<T>(&self, uri: &Uri, f: impl FnOnce(&OriginState) -> T) -> Option<T> {
        let origin = OriginKey::of(uri);
        let state = self.shared.lock();
        let slot = state.origins.get(&origin)?;
        state.origin_states.get(slot.0)?.as_ref().map(f)
    }
}

impl<C: Clone> Clone for Connector<C> {
    fn clone(&self) -> Self {
        Connector {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C: fmt::Debug> fmt::Debug for Connector<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector")
            .field("inner", &self.inner)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<C> Service<Uri> for Connector<C>
where
    C: Service<Uri>,
    C::Response: Read + Write + Connection + Unpin,
{
    type Response = TrackedIo<C::Response>;
    type Error = C::Error;
    type Future = Connecting<C::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let origin = OriginKey::of(&uri);
        Connecting {
            inner: self.inner.call(uri),
            shared: Arc::clone(&self.shared),
            origin,
        }
    }
}

pin_project! {
    /// The future of a connection from [`Connector`]: the inner
    /// connector's, with its IO wrapped in a [`TrackedIo`]. Errors are the
    /// inner connector's, unchanged.
    #[must_use = "futures do nothing unless polled"]
    pub struct Connecting<F> {
        #[pin]
        inner: F,
        shared: Arc<Shared>,
        origin: OriginKey,
    }
}

impl<F, T, E> Future for Connecting<F>
where
    F: Future<Output = Result<T, E>>,
    T: Read + Write + Connection + Unpin,
{
    type Output = Result<TrackedIo<T>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let io = ready!(this.inner.poll(cx))?;
        let opened = now();
        let conn = Arc::new(ConnShared::new());
        let (slot, origin_shared) = this.shared.connected(this.origin, &conn, opened);
        Poll::Ready(Ok(TrackedIo::new(
            io,
            conn,
            Arc::clone(this.shared),
            this.origin.clone(),
            (slot, origin_shared),
            opened,
        )))
    }
}

impl<F> fmt::Debug for Connecting<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connecting")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A retire time carries the driver's lateness it was published with,
    /// so that a connection can tell when a new lateness has to get out.
    #[test]
    fn a_retire_time_knows_the_lateness_it_was_published_with() {
        let shared = OriginShared::new();
        let estimator = IdleEstimator::new(EstimatorConfig::default());
        let now = Instant::now();
        let (calm, busy) = (Duration::from_millis(1), Duration::from_millis(40));
        shared.publish(&estimator, now, calm);
        assert!(!shared.published_with_other(calm));
        assert!(shared.published_with_other(busy));
        shared.publish(&estimator, now, busy);
        assert!(!shared.published_with_other(busy));
    }

    #[test]
    fn origin_keys_are_freshpools_origins_and_other_schemes_as_written() {
        let key = |s: &str| OriginKey::of(&s.parse().unwrap());
        assert_eq!(key("http://Example.com/x"), key("http://example.com:80/y"));
        assert_eq!(
            key("http://example.com/").to_string(),
            "http://example.com:80"
        );
        assert_eq!(
            key("https://example.com/").to_string(),
            "https://example.com:443"
        );
        assert_ne!(key("http://example.com/"), key("https://example.com/"));
        assert_ne!(key("http://example.com:8080/"), key("http://example.com/"));
        // The same origin the native client keys its pool by.
        let uri: Uri = "unix://2F746D70:0/x".parse().unwrap();
        assert_eq!(
            key("unix://2f746d70/y"),
            OriginKey::Served(Origin::of(&uri).unwrap())
        );
        // A scheme freshpool does not serve, as the URI wrote it.
        assert_eq!(key("ws://example.com/chat").to_string(), "ws://example.com");
        assert_ne!(key("ws://example.com/"), key("http://example.com/"));
    }
}
