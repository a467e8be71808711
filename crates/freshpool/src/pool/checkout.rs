//! Checkout: an idle connection for a request, a place to connect, or a
//! wait for either.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderValue;
use tokio::sync::oneshot;

use super::{
    Checkout, Conn, Dead, Found, H2Connecting, Handoff, OpenSlot, OriginKey, OriginState,
    PoolShared, Retry, Waiter, Waiting, now, unschedule,
};
use freshpool_expiry::Source;

use crate::error::{Error, Kind};
use crate::stats::Event;

impl<B: Send + 'static> PoolShared<B> {
    /// Finds a usable idle connection for `key`, or a slot to connect,
    /// without waiting: `Err` when the request must wait for either (see
    /// [`wait`](Self::wait)).
    ///
    /// The socket probe runs outside the pool's lock: one syscall per
    /// checkout must not serialise every other checkout behind it.
    ///
    /// With `host`, also fills in the origin's `Host` header. With `retry`,
    /// only a fresh connection will do (or, for HTTP/2, another connection
    /// than the one that failed); a retry is not counted as a request.
    pub(crate) fn checkout_now(
        self: &Arc<Self>,
        key: &OriginKey,
        host: Option<&mut Option<HeaderValue>>,
        retry: Option<Retry>,
    ) -> Result<Checkout<B>, Waiting<B>> {
        self.checkout_from(key, retry.is_none(), host, retry)
    }

    /// [`checkout_now`](Self::checkout_now), counting the request or not.
    fn checkout_from(
        self: &Arc<Self>,
        key: &OriginKey,
        mut count_request: bool,
        mut host: Option<&mut Option<HeaderValue>>,
        retry: Option<Retry>,
    ) -> Result<Checkout<B>, Waiting<B>> {
        loop {
            let found = self.find(key, count_request, host.take(), retry);
            count_request = false;
            match found {
                Found::Done(checkout) => return Ok(checkout),
                Found::Probe(mut idle) => {
                    let liveness = idle.conn.probe.probe();
                    let now = now();
                    if liveness.is_reusable() {
                        let idle_for = now.saturating_duration_since(idle.since);
                        return Ok(Checkout::Reused(idle.conn, idle_for));
                    }
                    let mut guard = self.lock();
                    let state = &mut *guard;
                    unschedule(&mut state.queue, &mut idle.conn);
                    let origin = self.origin(&mut state.origins, key);
                    origin.counters.unbump_reused();
                    let wake = self.bury(
                        origin,
                        &mut state.queue,
                        key,
                        &idle,
                        Dead::Probe(liveness),
                        now,
                    );
                    drop(guard);
                    drop(idle);
                    if let Some(at) = wake {
                        self.driver.schedule(self, at);
                    }
                }
                Found::Wait(waiter) => return Err(Waiting::Handoff(waiter)),
                Found::WaitH2(connected) => return Err(Waiting::H2(connected)),
            }
        }
    }

    /// Waits for what [`checkout_now`](Self::checkout_now) could not give
    /// at once. Waiting is the slow path: its timer stays out of every
    /// request's future.
    ///
    /// # Errors
    ///
    /// A checkout timeout when the host's connection limit stays reached,
    /// or [`Kind::PoolClosed`] if the pool goes away while waiting.
    pub(crate) async fn wait(
        self: &Arc<Self>,
        key: &OriginKey,
        mut waiting: Waiting<B>,
        retry: Option<Retry>,
    ) -> Result<Checkout<B>, Error> {
        let timeout = self.config.checkout_timeout;
        loop {
            match waiting {
                Waiting::Handoff(waiter) => {
                    return match Box::pin(tokio::time::timeout(timeout, waiter)).await {
                        Ok(Ok(Handoff::Conn(conn))) => {
                            self.count(key, Event::Reused);
                            Ok(Checkout::Reused(conn, Duration::ZERO))
                        }
                        Ok(Ok(Handoff::Slot(slot))) => Ok(Checkout::Connect(slot, None)),
                        Ok(Err(_)) => Err(Error::new(Kind::PoolClosed)),
                        Err(_) => Err(Error::new(Kind::CheckoutTimeout(timeout))),
                    };
                }
                Waiting::H2(connected) => {
                    // Whether it connected or failed, look again.
                    if Box::pin(tokio::time::timeout(timeout, connected))
                        .await
                        .is_err()
                    {
                        return Err(Error::new(Kind::CheckoutTimeout(timeout)));
                    }
                }
            }
            match self.checkout_from(key, false, None, retry) {
                Ok(checkout) => return Ok(checkout),
                Err(again) => waiting = again,
            }
        }
    }

    /// The locked part of checkout.
    fn find(
        self: &Arc<Self>,
        key: &OriginKey,
        count_request: bool,
        host: Option<&mut Option<HeaderValue>>,
        retry: Option<Retry>,
    ) -> Found<B> {
        let now = now();
        // Declared before the guard, so dropped after it: connections are
        // closed outside the lock.
        let mut dead = Vec::new();
        let mut guard = self.lock();
        let state = &mut *guard;
        let origin = self.origin(&mut state.origins, key);
        if count_request {
            self.bump(origin, Event::Request);
        }
        if let Some(host) = host {
            host.clone_from(&origin.host);
        }

        // HTTP/2: the least busy shared connection with a free stream.
        // One past its lifetime, or idle past the retire time, takes no new
        // streams: it drains, and closes once its last stream ends.
        let mut i = 0;
        let retire_after =
            (!origin.h2.is_empty()).then(|| origin.estimator.retire_after(now, self.slack()));
        while i < origin.h2.len() {
            let conn = &origin.h2[i];
            let expired = conn.lifetime_deadline.is_some_and(|at| at <= now)
                || conn
                    .streams()
                    .and_then(|streams| streams.idle_since())
                    .zip(retire_after)
                    .is_some_and(|(since, after)| now.saturating_duration_since(since) >= after);
            if conn.is_unusable() || expired {
                if expired && !conn.is_unusable() {
                    origin.counters.bump(Event::RetiredByExpiry);
                    tracing::debug!(origin = %key, id = conn.id, "HTTP/2 connection retired: draining");
                }
                dead.push(origin.h2.swap_remove(i));
            } else {
                i += 1;
            }
        }
        let max_streams = self.config.http2_max_streams;
        let avoid = retry.map(|r| r.failed);
        let shared = origin
            .h2
            .iter()
            .filter(|conn| Some(conn.id) != avoid && conn.open_streams() < max_streams)
            .min_by_key(|conn| conn.open_streams())
            .and_then(|conn| conn.share(true));
        if let Some(shared) = shared {
            self.bump(origin, Event::Reused);
            return Found::Done(Checkout::Reused(shared, Duration::ZERO));
        }
        let wants_h2 = self.config.http2_only || !origin.h2.is_empty();
        if wants_h2 && origin.h2_connecting {
            let (tx, rx) = oneshot::channel();
            origin.h2_waiters.push(tx);
            return Found::WaitH2(rx);
        }

        // HTTP/1: the most recently used idle connection that is still good.
        let mut wake: Option<Instant> = None;
        // Retired but watched for the server's close under a learned
        // estimate: not handed out, and not closed either, or a sender whose
        // gap outlasts the retire time would end every watch before it could
        // refute a low estimate. (Under a header nothing is to be refuted:
        // the client closes it first, as before.)
        let mut watched = Vec::new();
        let found = loop {
            // A retry never takes an idle connection: after one went stale,
            // the others may be too.
            if retry.is_some() {
                break None;
            }
            let Some(mut idle) = origin.idle.pop_latest() else {
                break None;
            };
            if idle.conn.info.is_poisoned() {
                // Its user said so; nothing to learn about the server.
                unschedule(&mut state.queue, &mut idle.conn);
                dead.push(idle.conn);
                continue;
            }
            let idle_for = now.saturating_duration_since(idle.since);
            // Closed first: a connection the server already closed is a
            // server close, whatever its retire time said. The retire time
            // follows the estimate (parked connections are rescheduled
            // when it drops), so `retire_at` is today's.
            let verdict = if idle.conn.is_closed() || !idle.conn.is_ready() {
                Some(Dead::Closed)
            } else if idle.retire_at <= now
                && now < idle.watch_until
                && origin.estimator.estimate(now).source == Source::Learned
            {
                watched.push(idle);
                continue;
            } else if idle.retire_at <= now {
                Some(Dead::Expired)
            } else {
                None
            };
            if verdict.is_none() {
                idle.conn.state.set_due(Some(idle.retire_at));
            }
            match verdict {
                None if idle_for >= self.config.probe_after => {
                    self.bump(origin, Event::Reused);
                    break Some(Found::Probe(idle));
                }
                None => {
                    self.bump(origin, Event::Reused);
                    break Some(Found::Done(Checkout::Reused(idle.conn, idle_for)));
                }
                Some(why) => {
                    unschedule(&mut state.queue, &mut idle.conn);
                    let at = self.bury(origin, &mut state.queue, key, &idle, why, now);
                    wake = match (wake, at) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    dead.push(idle.conn);
                }
            }
        };
        for idle in watched {
            origin.idle.push(idle);
        }
        if let Some(at) = wake {
            // Not under this lock: the driver takes its own.
            let pool = Arc::clone(self);
            drop(guard);
            pool.driver.schedule(&pool, at);
            if let Some(found) = found {
                return found;
            }
            return self.find_slot(key, wants_h2, retry);
        }
        if let Some(found) = found {
            return found;
        }
        self.slot_or_wait(origin, key, wants_h2, retry)
    }

    /// [`find`](Self::find) after it let go of the lock: take it again for
    /// the slot.
    fn find_slot(
        self: &Arc<Self>,
        key: &OriginKey,
        wants_h2: bool,
        retry: Option<Retry>,
    ) -> Found<B> {
        let mut guard = self.lock();
        let origin = self.origin(&mut guard.origins, key);
        self.slot_or_wait(origin, key, wants_h2, retry)
    }

    /// A place under the host limit, or a place in the queue of waiters.
    fn slot_or_wait(
        self: &Arc<Self>,
        origin: &mut OriginState<B>,
        key: &OriginKey,
        wants_h2: bool,
        retry: Option<Retry>,
    ) -> Found<B> {
        let limit = self.config.max_connections_per_host;
        if limit.is_none_or(|limit| origin.open < limit) {
            origin.open += 1;
            let slot = OpenSlot {
                pool: Arc::downgrade(self),
                origin: key.clone(),
                armed: true,
            };
            let h2 = wants_h2.then(|| {
                origin.h2_connecting = true;
                H2Connecting {
                    pool: Arc::downgrade(self),
                    origin: key.clone(),
                }
            });
            return Found::Done(Checkout::Connect(slot, h2));
        }
        let (tx, rx) = oneshot::channel();
        origin.waiters.push_back(Waiter { tx, retry });
        if !origin.h2.is_empty() {
            // Every stream is taken: the next one to end serves the
            // waiters. One may have ended before this mark, so look again.
            for streams in origin.h2.iter().filter_map(Conn::streams) {
                streams.wait_for_stream();
            }
            self.serve_h2_waiters(origin);
        }
        Found::Wait(rx)
    }
}
