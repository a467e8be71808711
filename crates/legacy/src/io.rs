//! The IO wrapper: follows the HTTP/1 messages of one connection from the
//! bytes hyper writes and reads, and ends the connection at its retire
//! time if, and only if, it is idle between messages.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use freshpool_expiry::{CloseKind, IdleEstimator, KeepAlive, Key};
use hyper::rt::{Read, ReadBuf, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};

use crate::connector::{OriginKey, OriginShared, Shared, Slot, now};
use crate::info::{ConnShared, ConnectionInfo};
use crate::tracker::{StopReason, Tracker};

/// How far away "never" is, when a retire time overflows an `Instant`.
const FAR: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a connection repeats an unchanged `Keep-Alive` hint to the
/// estimator, well within the estimator's memory of it.
const HINT_REFRESH: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every byte goes through the tracker.
    Following,
    /// HTTP/2: bytes pass untouched, nothing is counted.
    Passthrough,
    /// The adapter ended the connection: reads return EOF.
    Retired,
}

/// A connection made by [`Connector`](crate::Connector): the inner
/// connector's IO, followed message by message.
///
/// hyper reads and writes through it exactly as through the inner IO: it
/// never writes, buffers or holds back a byte. It differs in one way only:
/// once the connection's retire time has come *and* the connection is
/// idle between messages (every request written was fully answered, and
/// hyper will reuse the connection), the next read returns end-of-file.
/// hyper then closes the connection, and hyper-util's pool drops it.
///
/// An HTTP/2 connection (negotiated with ALPN), or one whose exchange the
/// adapter cannot follow (an upgrade, a `CONNECT` tunnel, a malformed
/// response), is never ended early.
pub struct TrackedIo<T> {
    inner: T,
    conn: Arc<ConnShared>,
    shared: Arc<Shared>,
    origin: OriginKey,
    slot: Slot,
    origin_shared: Arc<OriginShared>,
    tracker: Tracker,
    mode: Mode,
    /// Whether the HTTP/2 flag set by `connected()` has been looked at.
    mode_checked: bool,
    /// Tracking stopped and that was accounted for.
    stop_seen: bool,
    /// When the connection last became idle.
    idle_since: Instant,
    /// When the current idle period's retire time is (stale while busy:
    /// every use checks that the tracker calls the connection idle).
    retire_at: Option<Instant>,
    /// The connection's entry in the connector's expiry queue, and when it
    /// fires (`None` once the driver took it out).
    key: Option<Key>,
    entry_at: Option<Instant>,
    /// The last `Keep-Alive` timeout reported to the estimator, and when.
    reported: Option<(Duration, Instant)>,
    /// The last response said `Keep-Alive: max=0`: no further request.
    exhausted: bool,
    /// A request began (its first byte was written) and its response has
    /// not completed.
    in_exchange: bool,
    /// The waker last set in `conn` for the driver to wake.
    watched: Option<Waker>,
    /// Issue 12: the first write was checked for TLS (wrong wrapping order).
    first_write_checked: bool,
}

impl<T> TrackedIo<T> {
    pub(crate) fn new(
        inner: T,
        shared: Arc<Shared>,
        origin: OriginKey,
        (slot, origin_shared): (Slot, Arc<OriginShared>),
        opened: Instant,
    ) -> TrackedIo<T> {
        let mut io = TrackedIo {
            inner,
            conn: Arc::new(ConnShared::new()),
            shared,
            origin,
            slot,
            origin_shared,
            tracker: Tracker::new(),
            mode: Mode::Following,
            mode_checked: false,
            stop_seen: false,
            idle_since: opened,
            retire_at: None,
            key: None,
            entry_at: None,
            reported: None,
            exhausted: false,
            in_exchange: false,
            watched: None,
            first_write_checked: false,
        };
        // The server's idle timer starts when it accepts: a connection that
        // waits in the pool before its first request ages too.
        io.became_idle(opened);
        io
    }

    /// The inner connector's IO.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The handle to this connection that responses and errors carry.
    pub fn info(&self) -> ConnectionInfo {
        ConnectionInfo::new(Arc::clone(&self.conn))
    }

    /// The connection is idle between messages from `now` on: computes
    /// its retire time from the origin's published estimate.
    ///
    /// The queue is only touched when the connection's entry would fire
    /// too late (there is none, or the estimate shrank). Otherwise the
    /// entry fires at its old, earlier time, and [`retire_if_due`] moves it
    /// to the current retire time then: one queue operation per retire
    /// period instead of one per request.
    ///
    /// [`retire_if_due`]: Self::retire_if_due
    fn became_idle(&mut self, now: Instant) {
        self.idle_since = now;
        if self.conn.take_retire() {
            // The entry fired while the connection was busy: it is gone.
            self.entry_at = None;
        }
        let after = if self.exhausted {
            Duration::ZERO
        } else {
            self.origin_shared.retire_after()
        };
        let at = now.checked_add(after).unwrap_or(now + FAR);
        self.retire_at = Some(at);
        if self.entry_at.is_none_or(|entry| entry > at) {
            self.arm(at);
        }
    }

    fn arm(&mut self, at: Instant) {
        self.shared.schedule(&self.conn, &mut self.key, at);
        self.entry_at = Some(at);
    }

    /// Switches to pass-through if the inner connector negotiated HTTP/2.
    /// hyper-util calls `connected()` before the first read or write.
    fn check_mode(&mut self) {
        if self.mode_checked {
            return;
        }
        self.mode_checked = true;
        if self.conn.is_h2() {
            self.mode = Mode::Passthrough;
            self.tracker.stop();
            self.stop_seen = true;
            self.unschedule();
        }
    }

    fn unschedule(&mut self) {
        self.entry_at = None;
        if let Some(key) = self.key.take() {
            self.shared.unschedule(&key);
        }
    }

    /// Ends the connection if a retire request is pending, its time has
    /// come, and the connection is idle between messages.
    fn retire_if_due(&mut self) -> bool {
        // Every read asks; nearly always, no request is pending.
        self.conn.take_retire() && self.retire_requested()
    }

    /// [`retire_if_due`](Self::retire_if_due), once a request came.
    #[cold]
    fn retire_requested(&mut self) -> bool {
        // The driver took the entry out of the queue.
        self.entry_at = None;
        if !self.tracker.is_idle() {
            // In use: the next idle period schedules it again.
            return false;
        }
        let Some(at) = self.retire_at else {
            return false;
        };
        let now = now();
        if now < at {
            // Used since the entry was made: wait for the current time.
            self.arm(at);
            return false;
        }
        self.tracker.stop();
        self.stop_seen = true;
        self.mode = Mode::Retired;
        self.retire_at = None;
        self.key = None;
        self.shared.count_retired();
        tracing::debug!(
            origin = self.origin.as_str(),
            id = self.conn_id(),
            idle_for = ?now.saturating_duration_since(self.idle_since),
            "retired idle connection before the server's deadline"
        );
        true
    }

    /// Makes sure the driver's retire request wakes `waker`. The waker
    /// stays set in [`ConnShared`] (waking does not take it), so it is set
    /// again only when hyper's waker changes: not on every idle read.
    fn watch(&mut self, waker: &Waker) {
        if !self
            .watched
            .as_ref()
            .is_some_and(|set| set.will_wake(waker))
        {
            self.conn.set_waker(waker);
            self.watched = Some(waker.clone());
        }
    }

    fn conn_id(&self) -> u64 {
        self.conn.id()
    }

    fn on_bytes(&mut self, bytes: &[u8]) {
        let was_idle = self.tracker.is_idle();
        let outcome = self.tracker.on_read(bytes);
        if was_idle {
            // Bytes on an idle connection: a `408` or a desynchronised
            // response. The tracker stopped; hyper will close it.
            let now = now();
            let idle_for = now.saturating_duration_since(self.idle_since);
            self.shared.observe_close(
                &self.origin,
                self.slot,
                idle_for,
                CloseKind::Unexpected,
                now,
            );
        }
        match outcome.message_end {
            Some(end) => {
                self.in_exchange = false;
                self.conn.response_completed(
                    self.tracker.messages_completed(),
                    bytes.len().saturating_sub(end),
                );
            }
            None => self.conn.add_read(bytes.len()),
        }
        let hint = if outcome.response_head {
            self.keep_alive_hint()
        } else {
            None
        };
        let idle = outcome.message_end.is_some() && self.tracker.is_idle();
        if hint.is_some() || idle {
            let now = now();
            if let Some(hint) = hint {
                self.report(hint, now);
            }
            if idle {
                self.became_idle(now);
            }
        }
        if !idle && !self.tracker.is_reusable() {
            // hyper will close it after this exchange: nothing to retire.
            self.unschedule();
        }
        self.check_stopped();
    }

    /// Passes a `Keep-Alive` hint to the origin's estimator when it says
    /// something new, or to refresh it (the estimator forgets a hint that
    /// is not repeated): not on every response.
    fn report(&mut self, hint: KeepAlive, now: Instant) {
        let fresh = self.reported.is_some_and(|(timeout, at)| {
            hint.timeout == Some(timeout) && now.saturating_duration_since(at) < HINT_REFRESH
        });
        if !fresh {
            self.shared.observe_keep_alive(self.slot, hint, now);
            self.reported = hint.timeout.map(|timeout| (timeout, now));
        }
    }

    /// The `Keep-Alive` header of the response head that just completed.
    fn keep_alive_hint(&mut self) -> Option<KeepAlive> {
        let hint = self
            .tracker
            .response_head()
            .and_then(|head| head.keep_alive_header)
            .and_then(KeepAlive::parse);
        self.exhausted = hint.is_some_and(|hint| !hint.permits_reuse());
        hint.filter(|hint| hint.timeout.is_some())
    }

    fn on_close(&mut self, kind: CloseKind) {
        let was_tracking = self.tracker.is_tracking();
        let outcome = match kind {
            CloseKind::Fin => self.tracker.on_eof(),
            _ => self.tracker.on_read_error(),
        };
        if outcome.message_end {
            self.conn
                .response_completed(self.tracker.messages_completed(), 0);
        }
        if outcome.was_idle {
            let now = now();
            let idle_for = now.saturating_duration_since(self.idle_since);
            self.shared
                .observe_close(&self.origin, self.slot, idle_for, kind, now);
        } else if self.in_exchange
            && was_tracking
            && !outcome.message_end
            && self.tracker.messages_completed() > 0
            && self.conn.read_since_response() == 0
        {
            // The server closed a reused connection without a byte of
            // response, as the next request was on its way: the close
            // crossed the request (the estimator's rule decides whether
            // it says anything about the idle timer).
            let now = now();
            let idle_for = now.saturating_duration_since(self.idle_since);
            if IdleEstimator::crossed_close_counts(idle_for, kind) {
                self.shared
                    .observe_close(&self.origin, self.slot, idle_for, kind, now);
            }
        }
        self.check_stopped();
    }

    fn on_written(&mut self, bytes: &[u8]) {
        // Issue 12: a ClientHello here means we are inside the TLS layer.
        if !self.first_write_checked && !bytes.is_empty() {
            self.first_write_checked = true;
            if crate::connector::is_tls_record(bytes) {
                self.shared.count_wrong_order(&self.origin);
            }
        }
        let was_idle = self.tracker.is_idle();
        self.tracker.on_write(bytes);
        self.conn.add_written(bytes.len());
        if was_idle && !self.tracker.is_idle() {
            self.in_exchange = true;
        }
    }

    /// Accounts for the tracker stopping: a connection it stopped following
    /// for any reason other than its end is never touched again.
    fn check_stopped(&mut self) {
        if self.stop_seen || self.tracker.is_tracking() {
            return;
        }
        let Some(reason) = self.tracker.stop_reason() else {
            return;
        };
        self.stop_seen = true;
        self.unschedule();
        if !matches!(
            reason,
            StopReason::Closed | StopReason::ReadError | StopReason::Stopped
        ) {
            self.conn.set_unfollowed();
            self.shared.count_untracked();
            tracing::debug!(
                origin = self.origin.as_str(),
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
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_mode();
        match this.mode {
            Mode::Following => {}
            Mode::Passthrough => return Pin::new(&mut this.inner).poll_read(cx, buf),
            Mode::Retired => return Poll::Ready(Ok(())),
        }
        if this.retire_if_due() {
            return Poll::Ready(Ok(()));
        }
        let wanted = buf.remaining();
        // SAFETY: the inner read only initialises bytes of this slice (a
        // `ReadBuf` never de-initialises memory), as `as_mut` requires.
        let mut read = ReadBuf::uninit(unsafe { buf.as_mut() });
        let result = Pin::new(&mut this.inner).poll_read(cx, read.unfilled());
        let n = read.filled().len();
        match &result {
            Poll::Ready(Ok(())) if n == 0 && wanted > 0 => this.on_close(CloseKind::Fin),
            Poll::Ready(Ok(())) => this.on_bytes(read.filled()),
            Poll::Ready(Err(_)) => this.on_close(CloseKind::Reset),
            Poll::Pending => {
                if this.tracker.is_idle() {
                    // hyper reads while a connection is idle, to notice a
                    // close: this is the read the driver wakes. Check again
                    // after setting the waker, so a request made in between
                    // is not missed.
                    this.watch(cx.waker());
                    if this.retire_if_due() {
                        return Poll::Ready(Ok(()));
                    }
                }
            }
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
        if this.mode != Mode::Passthrough
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
        if this.mode != Mode::Passthrough
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
        if connected.is_negotiated_h2() && self.conn.mark_h2() {
            self.shared.count_untracked();
        }
        connected.extra(self.info())
    }
}

impl<T> Drop for TrackedIo<T> {
    fn drop(&mut self) {
        self.unschedule();
    }
}

impl<T: fmt::Debug> fmt::Debug for TrackedIo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedIo")
            .field("inner", &self.inner)
            .field("origin", &self.origin)
            .field("id", &self.conn_id())
            .field("idle", &self.tracker.is_idle())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[path = "io_tests.rs"]
mod tests;
