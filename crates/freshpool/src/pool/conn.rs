//! One pooled connection, and the slot it occupies under a host's limit.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use freshpool_expiry::Key;
use futures_util::future::Either;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{TrySendError, http1, http2};

use super::{OriginKey, PoolShared};
use crate::info::ConnectionInfo;
use crate::io::{ConnState, ProbeHandle};
use crate::replay::ReplayBody;

/// The sending half of a connection: hyper's `SendRequest` for either
/// protocol.
pub(crate) enum Tx<B> {
    Http1(http1::SendRequest<ReplayBody<B>>),
    /// A shared HTTP/2 connection and what its handles share.
    Http2(http2::SendRequest<ReplayBody<B>>, Arc<Streams<B>>),
}

/// What the handles on one shared HTTP/2 connection share: the count of
/// those carrying a request (open streams, as far as this client knows),
/// and whether a checkout waits for one of them to end.
pub(crate) struct Streams<B> {
    open: AtomicUsize,
    /// Set (under the pool's lock) when a checkout queued because every
    /// stream was taken; the stream that ends next wakes it.
    waited_for: AtomicBool,
    /// When the last stream ended, as nanoseconds after `epoch` plus one
    /// (zero: never idle yet).
    idle_since: AtomicU64,
    epoch: Instant,
    pool: Weak<PoolShared<B>>,
    origin: OriginKey,
}

impl<B> Streams<B> {
    pub(crate) fn new(pool: Weak<PoolShared<B>>, origin: OriginKey) -> Arc<Streams<B>> {
        Arc::new(Streams {
            open: AtomicUsize::new(0),
            waited_for: AtomicBool::new(false),
            idle_since: AtomicU64::new(1),
            epoch: super::now(),
            pool,
            origin,
        })
    }

    /// Marks the connection as waited for; the pool then looks again for a
    /// free stream, because one may have ended before the mark was seen.
    pub(crate) fn wait_for_stream(&self) {
        self.waited_for.store(true, Ordering::SeqCst);
    }

    pub(crate) fn stop_waiting(&self) {
        self.waited_for.store(false, Ordering::SeqCst);
    }

    /// Since when no stream has been open, if none is.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        if self.open.load(Ordering::SeqCst) > 0 {
            return None;
        }
        match self.idle_since.load(Ordering::Relaxed) {
            0 => None,
            stamp => Some(self.epoch + Duration::from_nanos(stamp - 1)),
        }
    }
}

/// One open stream on a shared HTTP/2 connection: counted while alive.
pub(crate) struct Stream<B> {
    streams: Arc<Streams<B>>,
    /// Whether its end may wake a waiter (not when dropped under the
    /// pool's lock).
    wake: bool,
}

impl<B> Stream<B> {
    fn new(streams: &Arc<Streams<B>>) -> Stream<B> {
        streams.open.fetch_add(1, Ordering::SeqCst);
        Stream {
            streams: Arc::clone(streams),
            wake: true,
        }
    }
}

impl<B> Drop for Stream<B> {
    fn drop(&mut self) {
        // Sequentially consistent with `wait_for_stream` and the count the
        // pool reads after it: either the pool sees this stream gone, or
        // this sees the mark and hands the stream to the waiter.
        if self.streams.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            let after = super::now().saturating_duration_since(self.streams.epoch);
            let stamp = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX - 1);
            self.streams.idle_since.store(stamp + 1, Ordering::Relaxed);
        }
        if self.wake
            && self.streams.waited_for.load(Ordering::SeqCst)
            && let Some(pool) = self.streams.pool.upgrade()
        {
            pool.h2_stream_ended(&self.streams.origin);
        }
    }
}

/// A connection the pool can hand out.
///
/// Boxed once per connection (and per HTTP/2 handle): a request moves its
/// connection from the pool to the attempt to the response body and back,
/// and a pointer moves for free.
pub(crate) struct Conn<B>(Box<ConnParts<B>>);

impl<B> Conn<B> {
    pub(crate) fn new(parts: ConnParts<B>) -> Conn<B> {
        Conn(Box::new(parts))
    }
}

impl<B> std::ops::Deref for Conn<B> {
    type Target = ConnParts<B>;

    fn deref(&self) -> &ConnParts<B> {
        &self.0
    }
}

impl<B> std::ops::DerefMut for Conn<B> {
    fn deref_mut(&mut self) -> &mut ConnParts<B> {
        &mut self.0
    }
}

/// What a [`Conn`] is made of.
pub(crate) struct ConnParts<B> {
    pub(crate) id: u64,
    pub(crate) tx: Tx<B>,
    pub(crate) state: Arc<ConnState>,
    pub(crate) probe: ProbeHandle,
    /// What the connector said about it (a forward proxy's connection
    /// gets plain HTTP requests in absolute form), and whether it is
    /// poisoned.
    pub(crate) info: ConnectionInfo,
    /// Requests sent on this connection so far.
    pub(crate) requests: u32,
    /// Requests the server still allows (`Keep-Alive: max`), if it said.
    pub(crate) remaining: Option<u32>,
    /// When the connection must go, whatever its activity (max lifetime).
    pub(crate) lifetime_deadline: Option<Instant>,
    /// The connection's entry in the client's expiry queue, and when it
    /// fires. It stays while the connection is in use (see
    /// [`PoolShared::release`]), so it may be stale.
    pub(crate) expiry: Option<(Key, Instant)>,
    /// For a handle on a shared HTTP/2 connection: the stream it carries,
    /// counted until the handle is dropped (held only for its `Drop`).
    pub(crate) _stream: Option<Stream<B>>,
}

impl<B> Conn<B> {
    pub(crate) fn is_http2(&self) -> bool {
        matches!(self.tx, Tx::Http2(..))
    }

    /// Streams open on this HTTP/2 connection (zero for HTTP/1).
    pub(crate) fn open_streams(&self) -> usize {
        match &self.tx {
            Tx::Http1(_) => 0,
            Tx::Http2(_, streams) => streams.open.load(Ordering::SeqCst),
        }
    }

    /// Closed, or poisoned by its user: not to be handed out again.
    pub(crate) fn is_unusable(&self) -> bool {
        self.info.is_poisoned() || self.is_closed()
    }

    pub(crate) fn is_closed(&self) -> bool {
        match &self.tx {
            Tx::Http1(tx) => tx.is_closed(),
            Tx::Http2(tx, _) => tx.is_closed(),
        }
    }

    pub(crate) fn is_ready(&self) -> bool {
        match &self.tx {
            Tx::Http1(tx) => tx.is_ready(),
            Tx::Http2(tx, _) => tx.is_ready(),
        }
    }

    /// Sets (or clears) the connection's expiry queue entry.
    pub(crate) fn set_expiry(&mut self, expiry: Option<(Key, Instant)>) {
        self.state.set_expiry(expiry.map(|(key, _)| key));
        self.expiry = expiry;
    }

    /// Drops this handle's stream without waking a waiter: for handles
    /// dropped under the pool's lock.
    pub(crate) fn end_stream_quietly(mut self) {
        if let Some(stream) = &mut self._stream {
            stream.wake = false;
        }
    }

    /// The shared state of an HTTP/2 connection's handles.
    pub(crate) fn streams(&self) -> Option<&Arc<Streams<B>>> {
        match &self.tx {
            Tx::Http1(_) => None,
            Tx::Http2(_, streams) => Some(streams),
        }
    }

    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        match &mut self.tx {
            Tx::Http1(tx) => tx.poll_ready(cx),
            Tx::Http2(tx, _) => tx.poll_ready(cx),
        }
    }

    /// A second handle on a shared HTTP/2 connection; with `stream`, one
    /// that counts as an open stream while it lives.
    pub(crate) fn share(&self, stream: bool) -> Option<Conn<B>> {
        match &self.tx {
            Tx::Http1(_) => None,
            Tx::Http2(tx, streams) => Some(Conn::new(ConnParts {
                id: self.id,
                tx: Tx::Http2(tx.clone(), Arc::clone(streams)),
                state: Arc::clone(&self.state),
                probe: self.probe.clone(),
                info: self.info.clone(),
                requests: self.requests,
                remaining: None,
                lifetime_deadline: self.lifetime_deadline,
                expiry: None,
                _stream: stream.then(|| Stream::new(streams)),
            })),
        }
    }
}

impl<B> Conn<B>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<crate::error::BoxError>,
{
    /// Hands `req` to hyper. Not an `async fn`: the returned future is
    /// hyper's own, without a second copy of the request around it.
    pub(crate) fn send(
        &mut self,
        req: Request<ReplayBody<B>>,
    ) -> impl Future<Output = Result<Response<Incoming>, TrySendError<Request<ReplayBody<B>>>>>
    + Send
    + use<B> {
        self.requests = self.requests.saturating_add(1);
        if let Some(remaining) = &mut self.remaining {
            *remaining = remaining.saturating_sub(1);
        }
        match &mut self.tx {
            Tx::Http1(tx) => Either::Left(tx.try_send_request(req)),
            Tx::Http2(tx, _) => Either::Right(tx.try_send_request(req)),
        }
    }
}

/// A place under `max_connections_per_host`, held by a connection (or a
/// connect attempt) for as long as its socket may be open.
///
/// Dropping it frees the place: a waiter is given it, or the host's count
/// goes down.
pub(crate) struct OpenSlot<B> {
    pub(crate) pool: Weak<PoolShared<B>>,
    pub(crate) origin: OriginKey,
    pub(crate) armed: bool,
}

impl<B> Drop for OpenSlot<B> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pool) = self.pool.upgrade() {
            pool.free_slot(&self.origin);
        }
    }
}

/// The right to open an origin's shared HTTP/2 connection. Other requests
/// wait for it instead of opening connections of their own; dropping it
/// (connected or not) lets them look again.
pub(crate) struct H2Connecting<B> {
    pub(crate) pool: Weak<PoolShared<B>>,
    pub(crate) origin: OriginKey,
}

impl<B> Drop for H2Connecting<B> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.h2_connected(&self.origin);
        }
    }
}

/// What a waiting checkout receives.
pub(crate) enum Handoff<B> {
    /// A connection that just became idle.
    Conn(Conn<B>),
    /// A place under the limit: connect.
    Slot(OpenSlot<B>),
}
