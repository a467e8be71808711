//! The IO wrapper: follows the HTTP/1 messages of one connection from the
//! bytes hyper writes and reads, and ends the connection at its retire
//! time if, and only if, it is idle between messages.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use freshpool_expiry::{CloseKind, Evidence, KeepAlive, Key};
use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};

use crate::connector::{OriginKey, OriginShared, Shared, Slot, now};
use crate::info::{ConnShared, ConnectionInfo};
use crate::round_trip;

mod due;
mod tokio_io;
use crate::tracker::{StopReason, Tracker};

/// How far away "never" is, when a retire time overflows an `Instant`.
const FAR: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a connection repeats an unchanged `Keep-Alive` hint, or a
/// survival that is no longer news, to the estimator: well within the
/// estimator's memory of them.
const HINT_REFRESH: Duration = Duration::from_secs(10);

/// How often a connection reports an ordinary round trip (one inside the
/// published `srtt ± rttvar` band), so the smoothed figures keep following
/// the path.
const ROUND_TRIP_REFRESH: Duration = Duration::from_secs(1);

/// The least time a connection that has not carried a request yet is kept
/// before it may be retired. hyper-util hands a new connection to the
/// request it was made for right after the handshake, and a request that
/// meets a retired fresh connection fails (hyper-util retries only on
/// reused ones); this covers that hand-over, on a busy runtime too.
const FRESH_GRACE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Before the first read or write: whether the inner connector
    /// negotiated HTTP/2 (which hyper-util's `connected()` call, made before
    /// either, records) is not looked at yet.
    Unchecked,
    /// Every byte goes through the tracker.
    Following,
    /// HTTP/2: bytes pass untouched, nothing is counted.
    Passthrough,
    /// The adapter ended the connection: reads return EOF.
    Retired,
}

/// `now + after`; `now` itself (report again at once) in the impossible
/// case that the sum overflows.
fn refresh_at(now: Instant, after: Duration) -> Instant {
    now.checked_add(after).unwrap_or(now)
}

/// A connection made by [`Connector`](crate::Connector): the inner
/// connector's IO, followed message by message.
///
/// hyper reads and writes through it exactly as through the inner IO: it
/// never writes, buffers or holds back a byte. It differs in one way only:
/// once the connection's retire time has come *and* the connection is
/// idle between messages (every request written was fully answered, and
/// hyper will reuse the connection), the next read that finds nothing from
/// the server returns end-of-file. hyper then closes the connection, and
/// hyper-util's pool drops it. Until a read comes (a request, or the end of
/// its watch for the server's close), the connection stays open.
///
/// An HTTP/2 connection (negotiated with ALPN), or one whose exchange the
/// adapter cannot follow (an upgrade, a `CONNECT` tunnel, a malformed
/// response), is never ended early.
///
/// It gives its IO back: [`get_ref`](Self::get_ref),
/// [`get_mut`](Self::get_mut) and [`into_inner`](Self::into_inner), and it
/// is tokio's `AsyncRead` and `AsyncWrite` as well as hyper's `Read` and
/// `Write` (all four follow the messages alike). After an upgrade,
/// `hyper::upgrade::Upgraded::downcast::<TrackedIo<T>>()` recovers it,
/// where `T` is the inner connector's IO type.
pub struct TrackedIo<T> {
    inner: T,
    state: State,
}

/// Everything of a [`TrackedIo`] but its IO. Dropping it takes the
/// connection out of the connector's books (its expiry entry, its origin's
/// count), so that [`TrackedIo::into_inner`] does the same.
struct State {
    conn: Arc<ConnShared>,
    shared: Arc<Shared>,
    origin: OriginKey,
    slot: Slot,
    origin_shared: Arc<OriginShared>,
    tracker: Tracker,
    mode: Mode,
    /// Tracking stopped and that was accounted for.
    stop_seen: bool,
    /// When the connection last became idle.
    idle_since: Instant,
    /// When the current idle period ends, as computed from the origin's
    /// published retire time `due_basis` (nanoseconds, and as a duration
    /// in `basis_after`); recomputed when that changes.
    due: Instant,
    due_basis: u64,
    basis_after: Duration,
    /// Until when a connection past `due` is kept open (never reused) to
    /// see whether the server closes it: the close tells the server's
    /// timer again (see [`IdleEstimator::watch_after`]). Its queue entry
    /// fires then.
    ///
    /// [`IdleEstimator::watch_after`]: freshpool_expiry::IdleEstimator::watch_after
    watch_until: Instant,
    /// The connection's entry in the connector's expiry queue, and when it
    /// fires (`None` once the driver took it out).
    key: Option<Key>,
    entry_at: Option<Instant>,
    /// The last `Keep-Alive` timeout reported to the estimator, and when
    /// it is to be reported again even if unchanged.
    reported: Option<(Duration, Instant)>,
    /// The last response said `Keep-Alive: max=0`: no further request.
    exhausted: bool,
    /// A request began (its first byte was written) and its response has
    /// not completed.
    in_exchange: bool,
    /// The waker last set in `conn` for the driver to wake.
    watched: Option<Waker>,
    /// When the current request began on a connection that had carried a
    /// request before, idle since `idle_since`: once its response comes, a
    /// survival. (The idle time is worked out only when it is reported.)
    reused_at: Option<Instant>,
    /// When the current request's last byte was written, for the round
    /// trip to its response.
    written_at: Option<Instant>,
    /// When this connection reports a survival that is no news again.
    survival_refresh_at: Option<Instant>,
    /// When this connection reports an ordinary round trip again.
    round_trip_refresh_at: Option<Instant>,
    /// Which round trips are news, by the origin's published figures.
    round_trip_band: round_trip::Band,
    /// The first write was checked for a TLS record: a `Connector` wrapped
    /// *inside* a TLS connector sees the ClientHello, not HTTP.
    first_write_checked: bool,
}

impl<T> TrackedIo<T> {
    pub(crate) fn new(
        inner: T,
        conn: Arc<ConnShared>,
        shared: Arc<Shared>,
        origin: OriginKey,
        (slot, origin_shared): (Slot, Arc<OriginShared>),
        opened: Instant,
    ) -> TrackedIo<T> {
        let state = State {
            conn,
            shared,
            origin,
            slot,
            origin_shared,
            tracker: Tracker::new(),
            mode: Mode::Unchecked,
            stop_seen: false,
            idle_since: opened,
            due: opened,
            watch_until: opened,
            due_basis: 0,
            basis_after: Duration::ZERO,
            key: None,
            entry_at: None,
            reported: None,
            exhausted: false,
            in_exchange: false,
            watched: None,
            reused_at: None,
            written_at: None,
            survival_refresh_at: None,
            round_trip_refresh_at: None,
            round_trip_band: round_trip::Band::default(),
            first_write_checked: false,
        };
        let mut io = TrackedIo { inner, state };
        // A connection hyper-util parks before its first request ages too
        // (with [`FRESH_GRACE`] at the least, so that the request it was
        // made for always gets it).
        io.became_idle(opened);
        io
    }

    /// The inner connector's IO.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The inner connector's IO, mutably. Bytes read or written through it
    /// directly are not followed: do it only on a connection the adapter
    /// no longer follows (after an upgrade or a `CONNECT`, say), or the
    /// adapter's view of the exchange goes wrong.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    /// The inner connector's IO, taken out of the adapter: the connection
    /// is no longer scheduled for retirement or counted as the origin's.
    pub fn into_inner(self) -> T {
        // `State`'s drop does the bookkeeping.
        self.inner
    }

    /// The handle to this connection that responses and errors carry.
    pub fn info(&self) -> ConnectionInfo {
        ConnectionInfo::new(Arc::clone(&self.state.conn))
    }

    /// Switches to pass-through if the inner connector negotiated HTTP/2.
    /// hyper-util calls `connected()` before the first read or write.
    #[inline]
    fn check_mode(&mut self) {
        if self.state.mode == Mode::Unchecked {
            self.settle_mode();
        }
    }

    #[cold]
    fn settle_mode(&mut self) {
        self.state.mode = Mode::Following;
        if self.state.conn.is_h2() {
            self.state.mode = Mode::Passthrough;
            self.state.tracker.stop();
            self.state.stop_seen = true;
            self.unschedule();
        }
    }

    fn unschedule(&mut self) {
        self.state.unschedule();
    }

    /// Makes sure the driver's retire request wakes `waker`; `true` if it
    /// had to be set. The waker stays set in [`ConnShared`] (waking does
    /// not take it), so it is set again only when hyper's waker changes:
    /// not on every idle read.
    #[inline]
    fn watch(&mut self, waker: &Waker) -> bool {
        if self
            .state
            .watched
            .as_ref()
            .is_some_and(|set| set.will_wake(waker))
        {
            return false;
        }
        self.set_watched(waker);
        true
    }

    #[cold]
    fn set_watched(&mut self, waker: &Waker) {
        self.state.conn.set_waker(waker);
        self.state.watched = Some(waker.clone());
    }

    fn conn_id(&self) -> u64 {
        self.state.conn.id()
    }

    /// Bytes read; `was_idle`: the connection was idle between messages
    /// before them.
    fn on_bytes(&mut self, bytes: &[u8], was_idle: bool) {
        let outcome = self.state.tracker.on_read(bytes);
        if was_idle {
            self.on_unexpected_bytes();
        }
        match outcome.message_end {
            Some(end) => {
                self.state.in_exchange = false;
                self.state.conn.response_completed(
                    self.state.tracker.messages_completed(),
                    bytes.len().saturating_sub(end),
                );
            }
            None => self.state.conn.add_read(bytes.len()),
        }
        let idle = outcome.message_end.is_some() && self.state.tracker.is_idle();
        if outcome.response_head || idle {
            let now = now();
            if outcome.response_head {
                self.on_response_head(now);
            }
            if idle {
                self.became_idle(now);
            }
        }
        if !idle && !self.state.tracker.is_reusable() {
            // hyper will close it after this exchange: nothing to retire.
            self.unschedule();
        }
        self.check_stopped();
    }

    /// Bytes on an idle connection: a `408` or a desynchronised response.
    /// The tracker stopped; hyper will close it.
    #[cold]
    fn on_unexpected_bytes(&mut self) {
        if self.state.tracker.messages_completed() > 0 {
            let now = now();
            let idle_for = now.saturating_duration_since(self.state.idle_since);
            let kind = CloseKind::Unexpected;
            let evidence = Evidence::Closed { idle_for, kind };
            self.state
                .shared
                .observe(&self.state.origin, self.state.slot, evidence, now);
        }
    }

    /// What a response head says about the origin: its `Keep-Alive` hint,
    /// the survival of a reused connection, the round trip. Each is passed
    /// to the estimator only when it says something new, or to refresh it
    /// (the estimator forgets what is not repeated): not on every response.
    fn on_response_head(&mut self, now: Instant) {
        if let Some(hint) = self.keep_alive_hint() {
            let fresh = self.state.reported.is_some_and(|(timeout, refresh_at)| {
                hint.timeout == Some(timeout) && now < refresh_at
            });
            if !fresh {
                let evidence = Evidence::KeepAlive(hint);
                self.state
                    .shared
                    .observe(&self.state.origin, self.state.slot, evidence, now);
                self.state.reported = hint
                    .timeout
                    .map(|timeout| (timeout, refresh_at(now, HINT_REFRESH)));
            }
        }
        // Each refresh time is a sum made when reporting, so that the usual
        // response, which reports nothing, only compares instants.
        if let Some(sent) = self.state.reused_at.take() {
            let stale = self.state.survival_refresh_at.is_none_or(|at| now >= at);
            if stale
                || self
                    .state
                    .origin_shared
                    .survival_is_news(self.state.idle_since, sent)
            {
                let idle_for = sent.saturating_duration_since(self.state.idle_since);
                let evidence = Evidence::Survived(idle_for);
                self.state
                    .shared
                    .observe(&self.state.origin, self.state.slot, evidence, now);
                self.state.survival_refresh_at = Some(refresh_at(now, HINT_REFRESH));
            }
        }
        if let Some(written) = self.state.written_at.take() {
            let stale = self.state.round_trip_refresh_at.is_none_or(|at| now >= at);
            self.state.round_trip_band.follow(
                self.state.origin_shared.round_trip(),
                self.state.shared.tuning().max_deviation,
            );
            // A report also publishes the retire time again, with the
            // driver's latest lateness: a spike with the jitter at its cap
            // changes no figure, but a lateness that moved must get out.
            let late = self
                .state
                .origin_shared
                .published_with_other(self.state.shared.lateness());
            if stale || late || self.state.round_trip_band.is_news(written, now) {
                let sample = now.saturating_duration_since(written);
                self.state
                    .shared
                    .observe_round_trip(self.state.slot, sample, now);
                self.state.round_trip_refresh_at = Some(refresh_at(now, ROUND_TRIP_REFRESH));
            }
        }
    }

    /// The `Keep-Alive` header of the response head that just completed.
    fn keep_alive_hint(&mut self) -> Option<KeepAlive> {
        let hint = self
            .state
            .tracker
            .response_head()
            .and_then(|head| head.keep_alive_header)
            .and_then(KeepAlive::parse);
        self.state.exhausted = hint.is_some_and(|hint| !hint.permits_reuse());
        hint.filter(|hint| hint.timeout.is_some())
    }

    /// The server closed the connection (a FIN, or an error reading);
    /// `due`: an idle read found it due, and the retire time it had.
    fn on_close(&mut self, kind: CloseKind, due: Option<Instant>) {
        let was_tracking = self.state.tracker.is_tracking();
        let outcome = match kind {
            CloseKind::Fin => self.state.tracker.on_eof(),
            _ => self.state.tracker.on_read_error(),
        };
        if outcome.message_end {
            self.state
                .conn
                .response_completed(self.state.tracker.messages_completed(), 0);
        }
        if outcome.was_idle && self.state.tracker.messages_completed() > 0 {
            let now = now();
            let idle_for = now.saturating_duration_since(self.state.idle_since);
            let evidence = Evidence::Closed { idle_for, kind };
            if due.is_some_and(|due| now >= due) {
                tracing::debug!(
                    origin = %self.state.origin,
                    id = self.conn_id(),
                    ?idle_for,
                    "the server closed a retired idle connection while it was watched"
                );
                self.state.shared.observe_watched(
                    &self.state.origin,
                    self.state.slot,
                    evidence,
                    now,
                );
            } else {
                self.state
                    .shared
                    .observe(&self.state.origin, self.state.slot, evidence, now);
            }
        } else if self.state.in_exchange
            && was_tracking
            && !outcome.message_end
            && self.state.tracker.messages_completed() > 0
            && self.state.conn.read_since_response() == 0
        {
            // The server closed a reused connection without a byte of
            // response, as the next request was on its way: the close
            // crossed the request (the estimator's rule decides whether
            // it says anything about the idle timer).
            let now = now();
            let idle_for = self
                .state
                .reused_at
                .unwrap_or(now)
                .saturating_duration_since(self.state.idle_since);
            let evidence = Evidence::Crossed { idle_for, kind };
            self.state
                .shared
                .observe(&self.state.origin, self.state.slot, evidence, now);
        }
        self.check_stopped();
    }

    fn on_written(&mut self, bytes: &[u8]) {
        if !self.state.first_write_checked {
            self.check_first_write(bytes);
        }
        let was_idle = self.state.tracker.is_idle();
        let was_writing = !self.state.tracker.request_written();
        self.state.tracker.on_write(bytes);
        self.state.conn.add_written(bytes.len());
        let idle = self.state.tracker.is_idle();
        let began = was_idle && !idle;
        // One clock read for both marks below: a request head written
        // whole (the usual case) begins and ends on this write.
        let mut clock = None;
        let mut now = || *clock.get_or_insert_with(now);
        if began {
            self.state.in_exchange = true;
            if self.state.tracker.messages_completed() > 0 {
                self.state.reused_at = Some(now());
            }
        }
        if (was_writing || began) && self.state.tracker.request_written() {
            let now = now();
            if idle {
                // The response was complete before the request's body: the
                // connection became idle on this write.
                self.became_idle(now);
            } else {
                self.state.written_at = Some(now);
            }
        }
    }

    /// A ClientHello here means this adapter is inside the TLS layer, where
    /// it can follow nothing.
    #[cold]
    fn check_first_write(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.state.first_write_checked = true;
            if crate::connector::is_tls_record(bytes) {
                self.state.shared.count_wrong_order(&self.state.origin);
            }
        }
    }

    /// Accounts for the tracker stopping: a connection it stopped following
    /// for any reason other than its end is never touched again.
    #[inline]
    fn check_stopped(&mut self) {
        if !(self.state.stop_seen || self.state.tracker.is_tracking()) {
            self.on_stopped();
        }
    }

    #[cold]
    fn on_stopped(&mut self) {
        let Some(reason) = self.state.tracker.stop_reason() else {
            return;
        };
        self.state.stop_seen = true;
        self.unschedule();
        if !matches!(
            reason,
            StopReason::Closed | StopReason::ReadError | StopReason::Stopped
        ) {
            self.state.conn.set_unfollowed();
            self.state.shared.count_untracked();
            tracing::debug!(
                origin = %self.state.origin,
                id = self.conn_id(),
                %reason,
                "no longer following the connection"
            );
        }
    }
}

impl<T: Read + Unpin> Read for TrackedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Most reads are hyper's reads of an idle connection (several per
        // request): they take the short way.
        if this.state.mode == Mode::Following && this.state.tracker.is_idle() {
            this.poll_idle_read(cx, buf)
        } else {
            this.poll_other_read(cx, buf)
        }
    }
}

impl<T: Read + Unpin> TrackedIo<T> {
    /// A read of a connection idle between messages: the read that ends it
    /// when it is due, and that notices the server closing it.
    #[inline]
    fn poll_idle_read(
        &mut self,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // Due or not, the server gets its say first: a close that arrived
        // is read as one (during the watch past the retire time, it is the
        // reading of the server's timer the watch is for), and only a
        // connection with nothing from the server is retired.
        // Whether a close is one of a connection retired already is judged
        // by the retire time it had before this read: one the estimate only
        // now brought into the past was not retired when the close came.
        let due_before = self.state.due;
        let due = self.idle_read_may_end() && self.is_due();
        let wanted = buf.remaining();
        // SAFETY: the inner read only initialises bytes of this slice (a
        // `ReadBuf` never de-initialises memory), as `as_mut` requires.
        let mut read = ReadBuf::uninit(unsafe { buf.as_mut() });
        let result = Pin::new(&mut self.inner).poll_read(cx, read.unfilled());
        let n = read.filled().len();
        match &result {
            Poll::Pending => {
                // hyper reads while a connection is idle, to notice a close:
                // this is the read the driver wakes. Check again after
                // setting a new waker, so that a request made in between is
                // not missed (one made while the same waker was set woke
                // it, and is seen on the next read).
                if due || (self.watch(cx.waker()) && self.due_requested()) {
                    self.retire(now());
                    return Poll::Ready(Ok(()));
                }
            }
            Poll::Ready(Ok(())) if n == 0 && wanted > 0 => {
                self.on_close(CloseKind::Fin, due.then_some(due_before));
            }
            Poll::Ready(Ok(())) => self.on_bytes(read.filled(), true),
            Poll::Ready(Err(_)) => self.on_close(CloseKind::Reset, due.then_some(due_before)),
        }
        // SAFETY: the inner read initialised and filled these `n` bytes.
        unsafe { buf.advance(n) };
        result
    }

    /// Any other read: of a busy connection (a response), or of one not
    /// followed.
    #[inline(never)]
    fn poll_other_read(
        &mut self,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        self.check_mode();
        match self.state.mode {
            Mode::Following if self.state.tracker.is_idle() => return self.poll_idle_read(cx, buf),
            Mode::Following => {}
            Mode::Passthrough | Mode::Unchecked => {
                return Pin::new(&mut self.inner).poll_read(cx, buf);
            }
            Mode::Retired => return Poll::Ready(Ok(())),
        }
        let wanted = buf.remaining();
        // SAFETY: as in `poll_idle_read`.
        let mut read = ReadBuf::uninit(unsafe { buf.as_mut() });
        let result = Pin::new(&mut self.inner).poll_read(cx, read.unfilled());
        let n = read.filled().len();
        match &result {
            Poll::Ready(Ok(())) if n == 0 && wanted > 0 => self.on_close(CloseKind::Fin, None),
            Poll::Ready(Ok(())) => self.on_bytes(read.filled(), false),
            Poll::Ready(Err(_)) => self.on_close(CloseKind::Reset, None),
            Poll::Pending => {}
        }
        // SAFETY: the inner read initialised and filled these `n` bytes.
        unsafe { buf.advance(n) };
        result
    }
}

impl<T: Write + Unpin> Write for TrackedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_mode();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if this.state.mode != Mode::Passthrough
            && let Poll::Ready(Ok(n)) = result
        {
            this.on_written(&buf[..n.min(buf.len())]);
            this.check_stopped();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_mode();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if this.state.mode != Mode::Passthrough
            && let Poll::Ready(Ok(n)) = result
        {
            // The inner IO accepted the first `n` bytes of the slices.
            let mut left = n;
            for buf in bufs {
                if left == 0 {
                    break;
                }
                let take = left.min(buf.len());
                this.on_written(&buf[..take]);
                left -= take;
            }
            this.check_stopped();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<T: Connection> Connection for TrackedIo<T> {
    fn connected(&self) -> Connected {
        let connected = self.inner.connected();
        if connected.is_negotiated_h2() && self.state.conn.mark_h2() {
            self.state.shared.count_untracked();
        }
        connected.extra(self.info())
    }
}

impl State {
    /// Takes the connection's entry out of the expiry queue, if it has one.
    fn unschedule(&mut self) {
        self.entry_at = None;
        if let Some(key) = self.key.take() {
            self.shared.unschedule(&key);
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.unschedule();
        self.shared.disconnected(&self.origin, self.slot);
        self.conn.mark_ended();
    }
}

impl<T: fmt::Debug> fmt::Debug for TrackedIo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedIo")
            .field("inner", &self.inner)
            .field("origin", &self.state.origin)
            .field("id", &self.conn_id())
            .field("idle", &self.state.tracker.is_idle())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
