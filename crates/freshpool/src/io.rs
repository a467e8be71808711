//! The IO wrapper every connection runs over.
//!
//! hyper's connection task owns the IO object; the pool must still be able
//! to probe the socket and to know what happened on it. [`Io`] keeps the
//! connector's stream behind an `Arc<Mutex<_>>` that only the connection
//! task holds strongly: the pool keeps a `Weak` to it, so a probe either
//! upgrades (and the socket stays open for the duration of the probe) or
//! learns that the connection is gone. It can never touch a closed or
//! recycled descriptor. The mutex is only contended by a probe, which runs
//! while the connection is idle.
//!
//! [`ConnState`] is what the wrapper reports: bytes written and read during
//! the current attempt (so a retry decision *knows* whether any of the
//! request reached the socket), and when and how the server closed the
//! connection (so the pool can learn the server's idle timeout).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use freshpool_expiry::{CloseKind, Key};
use freshpool_probe::{Liveness, Probe};
use hyper::rt::{Read, ReadBufCursor, Write};

/// What a connection's IO reports to the pool.
#[derive(Debug)]
pub(crate) struct ConnState {
    created: Instant,
    written: AtomicU64,
    read: AtomicU64,
    /// Set while the connection sits in the pool.
    idle: AtomicBool,
    /// When the last read that returned bytes happened: nanoseconds after
    /// `created`, plus one (zero: nothing read yet). The idle clock starts
    /// here, when the last byte of a response came off the socket, not
    /// when the caller finished reading the body.
    last_read: AtomicU64,
    /// The retire time of the idle period a checkout just ended, as a
    /// stamp (zero: none). See [`ConnState::past_due`].
    due: AtomicU64,
    /// Zero while open; once the server's close is seen, the nanoseconds
    /// after `created` at which it was seen, plus one, shifted left by two,
    /// with the close kind in the low two bits. One word, so the time and
    /// the kind are always read together.
    closed: AtomicU64,
    /// The connection's entry in the pool's expiry queue, for the pool to
    /// remove when the connection's task ends outside the pool (written
    /// once per retire period, not per request).
    expiry: Mutex<Option<Key>>,
}

const KIND_FIN: u8 = 0;
const KIND_RESET: u8 = 1;
const KIND_UNEXPECTED: u8 = 2;

impl ConnState {
    pub(crate) fn new(created: Instant) -> ConnState {
        ConnState {
            created,
            written: AtomicU64::new(0),
            read: AtomicU64::new(0),
            idle: AtomicBool::new(false),
            last_read: AtomicU64::new(0),
            due: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            expiry: Mutex::new(None),
        }
    }

    /// Records the connection's expiry queue entry (or that it has none).
    pub(crate) fn set_expiry(&self, key: Option<Key>) {
        *self.expiry.lock().unwrap_or_else(|p| p.into_inner()) = key;
    }

    /// The connection's expiry queue entry, if it has one.
    pub(crate) fn expiry(&self) -> Option<Key> {
        *self.expiry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets (or clears) the retire time the connection was checked out
    /// under.
    pub(crate) fn set_due(&self, due: Option<Instant>) {
        let stamp = due.map_or(0, |due| {
            let nanos = due.saturating_duration_since(self.created).as_nanos();
            u64::try_from(nanos).unwrap_or(u64::MAX).min((1 << 62) - 2) + 1
        });
        self.due.store(stamp, Ordering::Relaxed);
    }

    /// Whether the connection passed its retire time after checkout and
    /// before its request's first byte was written.
    ///
    /// hyper's connection task reads before it writes, on every turn, so
    /// this is asked right before the request goes out: a connection
    /// checked out just before its retire time, whose task then ran late,
    /// is caught here. Its read returns end-of-file, hyper hands the
    /// request back unsent, and the client sends it on a fresh connection.
    /// A request let through is written in the same turn.
    #[inline]
    fn past_due(&self) -> bool {
        let due = self.due.load(Ordering::Relaxed);
        due != 0 && self.written.load(Ordering::Relaxed) == 0 && self.stamp() >= due
    }

    /// When bytes last came off the socket, if any did.
    pub(crate) fn last_read(&self) -> Option<Instant> {
        match self.last_read.load(Ordering::Acquire) {
            0 => None,
            at => Some(self.created + Duration::from_nanos(at - 1)),
        }
    }

    /// Nanoseconds since `created`, plus one, clamped so that the tagged
    /// close word below cannot overflow (2^62 ns is 146 years).
    fn stamp(&self) -> u64 {
        let now = tokio::time::Instant::now().into_std();
        let nanos = now.saturating_duration_since(self.created).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX).min((1 << 62) - 2) + 1
    }

    /// Starts counting bytes for a new attempt.
    pub(crate) fn begin_attempt(&self) {
        self.idle.store(false, Ordering::Relaxed);
        self.written.store(0, Ordering::Relaxed);
        self.read.store(0, Ordering::Relaxed);
    }

    /// Bytes of the current attempt the socket accepted.
    pub(crate) fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Bytes read from the socket during the current attempt.
    pub(crate) fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Acquire)
    }

    pub(crate) fn set_idle(&self) {
        self.idle.store(true, Ordering::Relaxed);
    }

    /// When and how the server closed the connection, if it has.
    pub(crate) fn closed(&self) -> Option<(Instant, CloseKind)> {
        let word = self.closed.load(Ordering::Acquire);
        if word == 0 {
            return None;
        }
        let kind = match (word & 0b11) as u8 {
            KIND_RESET => CloseKind::Reset,
            KIND_UNEXPECTED => CloseKind::Unexpected,
            _ => CloseKind::Fin,
        };
        Some((self.created + Duration::from_nanos((word >> 2) - 1), kind))
    }

    fn record_close(&self, kind: u8) {
        let word = (self.stamp() << 2) | u64::from(kind);
        // First close wins: later errors on a dead socket say nothing new.
        let _ = self
            .closed
            .compare_exchange(0, word, Ordering::Release, Ordering::Relaxed);
    }
}

/// Something the pool can probe without owning it.
pub(crate) trait ProbeTarget: Send + Sync {
    fn probe(&self) -> Liveness;
}

struct Cell<T> {
    io: Mutex<T>,
}

impl<T: Probe + Send> ProbeTarget for Cell<T> {
    fn probe(&self) -> Liveness {
        lock(&self.io).probe()
    }
}

fn lock<T>(io: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code path panics while holding the lock except the IO's own
    // methods; the stream is still a stream afterwards.
    io.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The pool's handle to a connection's socket.
#[derive(Clone)]
pub(crate) struct ProbeHandle(Weak<dyn ProbeTarget>);

impl ProbeHandle {
    /// Probes the socket, or reports `Closed` if the connection task has
    /// already dropped it.
    pub(crate) fn probe(&self) -> Liveness {
        match self.0.upgrade() {
            Some(target) => target.probe(),
            None => Liveness::Closed,
        }
    }
}

impl std::fmt::Debug for ProbeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProbeHandle")
    }
}

/// The connector's stream, as hyper sees it.
pub(crate) struct Io<T> {
    cell: Arc<Cell<T>>,
    state: Arc<ConnState>,
}

impl<T> Io<T>
where
    T: Probe + Send + 'static,
{
    pub(crate) fn new(io: T, state: Arc<ConnState>) -> (Io<T>, ProbeHandle) {
        let cell = Arc::new(Cell { io: Mutex::new(io) });
        let weak: Weak<dyn ProbeTarget> = Arc::downgrade(&cell) as Weak<dyn ProbeTarget>;
        (Io { cell, state }, ProbeHandle(weak))
    }
}

impl<T: Read + Unpin> Read for Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if self.state.past_due() {
            return Poll::Ready(Ok(()));
        }
        let before = buf.remaining();
        // SAFETY: the inner read only initialises bytes of this slice (a
        // `ReadBuf` never de-initialises memory), as `as_mut` requires.
        let mut inner = hyper::rt::ReadBuf::uninit(unsafe { buf.as_mut() });
        let result = {
            let mut io = lock(&self.cell.io);
            Pin::new(&mut *io).poll_read(cx, inner.unfilled())
        };
        let n = inner.filled().len();
        // SAFETY: the inner read initialised and filled these `n` bytes.
        unsafe { buf.advance(n) };
        match &result {
            Poll::Ready(Ok(())) => {
                if n == 0 && before > 0 {
                    self.state.record_close(KIND_FIN);
                } else {
                    if self.state.idle.load(Ordering::Relaxed) {
                        self.state.record_close(KIND_UNEXPECTED);
                    }
                    if n > 0 {
                        self.state
                            .last_read
                            .store(self.state.stamp(), Ordering::Release);
                    }
                    self.state.read.fetch_add(n as u64, Ordering::Release);
                }
            }
            Poll::Ready(Err(_)) => self.state.record_close(KIND_RESET),
            Poll::Pending => {}
        }
        result
    }
}

impl<T: Write + Unpin> Write for Io<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = {
            let mut io = lock(&self.cell.io);
            Pin::new(&mut *io).poll_write(cx, buf)
        };
        self.count(result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = {
            let mut io = lock(&self.cell.io);
            Pin::new(&mut *io).poll_write_vectored(cx, bufs)
        };
        self.count(result)
    }

    fn is_write_vectored(&self) -> bool {
        lock(&self.cell.io).is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut io = lock(&self.cell.io);
        Pin::new(&mut *io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut io = lock(&self.cell.io);
        Pin::new(&mut *io).poll_shutdown(cx)
    }
}

impl<T> Io<T> {
    fn count(&self, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match &result {
            Poll::Ready(Ok(n)) => {
                self.state.written.fetch_add(*n as u64, Ordering::Release);
            }
            Poll::Ready(Err(_)) => self.state.record_close(KIND_RESET),
            Poll::Pending => {}
        }
        result
    }
}
