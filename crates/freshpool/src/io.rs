//! The IO wrapper every connection runs over.
//!
//! hyper's connection task owns the IO object; the pool must still be able
//! to probe the socket and to know what happened on it, and a probe must
//! never touch a closed or recycled descriptor. A stream whose probe looks
//! at its descriptor alone (plain TCP and Unix streams: see
//! [`Probe::detached`]) is owned by [`Io`] outright and read and written
//! without a lock; the pool probes the descriptor through a [`Gate`], a
//! prober count and a closing bit in one word, that keeps `Drop` from
//! closing the descriptor under a probe in flight. A stream whose probe
//! needs the stream itself (TLS: what its session buffered) is kept behind
//! an `Arc<Mutex<_>>` that only the connection task holds strongly: the
//! pool keeps a `Weak` to it, so a probe either upgrades (and the socket
//! stays open for the duration of the probe) or learns that the
//! connection is gone.
//!
//! [`ConnState`] is what the wrapper reports: bytes written and read during
//! the current attempt (so a retry decision *knows* whether any of the
//! request reached the socket), when and how the server closed the
//! connection (so the pool can learn the server's idle timeout), and how
//! long each request took to be answered (so the retire
//! margin covers both ends' runtimes, which the kernel's round trip does not
//! see).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use freshpool_expiry::{CloseKind, Key};
use freshpool_probe::{Detached, Liveness, Probe};
use futures_util::task::AtomicWaker;
use hyper::rt::{Read, ReadBufCursor, Write};

/// What a connection's IO reports to the pool.
///
/// The fields each side writes are apart, on cache lines of their own: the
/// connection task writes [`IoMarks`] on every read and write, the request
/// side writes [`AttemptMarks`] once per checkout.
#[derive(Debug)]
pub(crate) struct ConnState {
    created: Instant,
    io: IoMarks,
    attempt: AttemptMarks,
    /// The connection's entry in the pool's expiry queue, for the pool to
    /// remove when the connection's task ends outside the pool (written by
    /// the pool, once per retire period, not per request).
    expiry: Mutex<Option<Key>>,
    /// The connection's task has ended, and hyper's side of the request
    /// channel with it (see [`ConnState::task_ended`]).
    task_ended: AtomicBool,
    /// The attempt to wake when the task ends.
    task_waker: AtomicWaker,
}

/// Written by the connection task only (so plain loads and stores).
// 128: CPUs fetch cache lines in pairs.
#[derive(Debug)]
#[repr(align(128))]
struct IoMarks {
    /// Bytes the socket accepted and returned, since the connection opened.
    written: AtomicU64,
    read: AtomicU64,
    /// When the last read that returned bytes happened: nanoseconds after
    /// `created`, plus one (zero: nothing read yet). The idle clock starts
    /// here, when the last byte of a response came off the socket, not
    /// when the caller finished reading the body.
    last_read: AtomicU64,
    /// When the current request went out, as a stamp (zero: no request
    /// waiting for its response's first bytes): for a reused connection
    /// when [`ConnState::past_due`] last let it through, right before it
    /// was written; for a fresh one at its first write. Cleared by the read
    /// that brings the response.
    sent: AtomicU64,
    /// The latest measured round trip, from `sent` to the first read of
    /// the response, in nanoseconds plus one (zero: none since the pool
    /// last took it).
    round_trip: AtomicU64,
    /// Zero while open; once the server's close is seen, the nanoseconds
    /// after `created` at which it was seen, plus one, shifted left by two,
    /// with the close kind in the low two bits. One word, so the time and
    /// the kind are always read together.
    closed: AtomicU64,
}

/// Written by the request side only, once per checkout.
#[derive(Debug)]
#[repr(align(128))]
struct AttemptMarks {
    /// `IoMarks::written` and `read` when the current attempt began.
    written_base: AtomicU64,
    read_base: AtomicU64,
    /// Set while the connection sits in the pool.
    idle: AtomicBool,
    /// The retire time of the idle period a checkout just ended, as a
    /// stamp (zero: none). See [`ConnState::past_due`].
    due: AtomicU64,
}

const KIND_FIN: u8 = 0;
const KIND_RESET: u8 = 1;
const KIND_UNEXPECTED: u8 = 2;

impl ConnState {
    pub(crate) fn new(created: Instant) -> ConnState {
        ConnState {
            created,
            io: IoMarks {
                written: AtomicU64::new(0),
                read: AtomicU64::new(0),
                last_read: AtomicU64::new(0),
                sent: AtomicU64::new(0),
                round_trip: AtomicU64::new(0),
                closed: AtomicU64::new(0),
            },
            attempt: AttemptMarks {
                written_base: AtomicU64::new(0),
                read_base: AtomicU64::new(0),
                idle: AtomicBool::new(false),
                due: AtomicU64::new(0),
            },
            expiry: Mutex::new(None),
            task_ended: AtomicBool::new(false),
            task_waker: AtomicWaker::new(),
        }
    }

    /// The connection's task ended: hyper dropped its end of the request
    /// channel. Called once, after the task's connection future (and with
    /// it the channel's receiver) is dropped.
    pub(crate) fn task_ended(&self) {
        self.task_ended.store(true, Ordering::Release);
        self.task_waker.wake();
    }

    /// Whether the connection's task has ended; if not, `cx` is woken
    /// when it does.
    pub(crate) fn poll_task_ended(&self, cx: &Context<'_>) -> bool {
        if self.task_ended.load(Ordering::Acquire) {
            return true;
        }
        self.task_waker.register(cx.waker());
        self.task_ended.load(Ordering::Acquire)
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
        self.attempt.due.store(stamp, Ordering::Relaxed);
    }

    /// Whether the connection passed its retire time after checkout and
    /// before its request's first byte was written.
    ///
    /// hyper's connection task reads before it writes, on every turn, so
    /// this is asked right before the request goes out: a connection
    /// checked out just before its retire time, whose task then ran late,
    /// is caught here. Its read returns end-of-file, hyper hands the
    /// request back unsent, and the client sends it on a fresh connection.
    /// A request let through is written in the same turn, so this is also
    /// where its round trip starts (see [`take_round_trip`]).
    ///
    /// [`take_round_trip`]: Self::take_round_trip
    #[inline]
    fn past_due(&self) -> bool {
        let due = self.attempt.due.load(Ordering::Relaxed);
        if due == 0
            || self.io.written.load(Ordering::Relaxed)
                != self.attempt.written_base.load(Ordering::Relaxed)
        {
            return false;
        }
        let now = self.stamp();
        self.io.sent.store(now, Ordering::Relaxed);
        now >= due
    }

    /// The round trip of the latest request, from right before its first
    /// byte was written to the first read of its response, if one was
    /// measured since the last call.
    ///
    /// It includes both ends' runtimes (the client's read of the response,
    /// the server's of the request), which the kernel's round trip does not
    /// see and the retire margin must cover.
    pub(crate) fn take_round_trip(&self) -> Option<Duration> {
        match self.io.round_trip.swap(0, Ordering::Acquire) {
            0 => None,
            nanos => Some(Duration::from_nanos(nanos - 1)),
        }
    }

    /// When bytes last came off the socket, if any did.
    pub(crate) fn last_read(&self) -> Option<Instant> {
        match self.io.last_read.load(Ordering::Acquire) {
            0 => None,
            at => Some(self.created + Duration::from_nanos(at - 1)),
        }
    }

    /// Nanoseconds since `created`, plus one, clamped so that the tagged
    /// close word below cannot overflow (2^62 ns is 146 years).
    fn stamp(&self) -> u64 {
        let now = freshpool_expiry::now();
        let nanos = now.saturating_duration_since(self.created).as_nanos();
        u64::try_from(nanos).unwrap_or(u64::MAX).min((1 << 62) - 2) + 1
    }

    /// Starts counting bytes for a new attempt.
    ///
    /// The connection task is idle when a request is handed to it, so the
    /// counts taken here are where the attempt's own bytes start.
    pub(crate) fn begin_attempt(&self) {
        let marks = &self.attempt;
        marks.idle.store(false, Ordering::Relaxed);
        let written = self.io.written.load(Ordering::Acquire);
        marks.written_base.store(written, Ordering::Relaxed);
        let read = self.io.read.load(Ordering::Acquire);
        marks.read_base.store(read, Ordering::Relaxed);
    }

    /// Bytes of the current attempt the socket accepted.
    pub(crate) fn bytes_written(&self) -> u64 {
        let base = self.attempt.written_base.load(Ordering::Relaxed);
        self.io.written.load(Ordering::Acquire).wrapping_sub(base)
    }

    /// Bytes read from the socket during the current attempt.
    pub(crate) fn bytes_read(&self) -> u64 {
        let base = self.attempt.read_base.load(Ordering::Relaxed);
        self.io.read.load(Ordering::Acquire).wrapping_sub(base)
    }

    pub(crate) fn set_idle(&self) {
        self.attempt.idle.store(true, Ordering::Relaxed);
    }

    /// When and how the server closed the connection, if it has.
    pub(crate) fn closed(&self) -> Option<(Instant, CloseKind)> {
        let word = self.io.closed.load(Ordering::Acquire);
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
            .io
            .closed
            .compare_exchange(0, word, Ordering::Release, Ordering::Relaxed);
    }
}

/// Something the pool can probe without owning it.
pub(crate) trait ProbeTarget: Send + Sync {
    fn probe(&self) -> Liveness;
}

/// A stream whose probe needs the stream itself (a TLS stream): it is
/// shared behind a mutex, which a probe takes while the connection idles.
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

/// Set in [`Gate::word`] once the connection's IO is being dropped.
const CLOSING: usize = 1;
/// One prober in [`Gate::word`] (the count is above the closing bit).
const PROBER: usize = 2;

/// The pool's way to a stream whose probe looks at its descriptor alone
/// (plain TCP and Unix streams): the connection task owns the stream and
/// reads and writes it without a lock, and the pool probes the descriptor.
///
/// The descriptor must never be probed once closed (it may be another
/// socket's by then), and a check made before a `recv` says nothing about
/// a close during it. So a prober announces itself first (one
/// `fetch_add`) and only then looks for the closing bit, and the IO's
/// `Drop` sets that bit first and then waits for the probers it may have
/// missed (each is one non-blocking syscall) before the stream, and its
/// descriptor, are dropped.
struct Gate {
    word: AtomicUsize,
    detached: Detached,
}

impl Gate {
    fn probe(&self) -> Liveness {
        let before = self.word.fetch_add(PROBER, Ordering::Acquire);
        let liveness = if before & CLOSING == 0 {
            // SAFETY: the closing bit was clear after this prober was
            // counted, so `close` waits for the decrement below before the
            // stream (and with it the descriptor) is dropped.
            unsafe { self.detached.probe() }
        } else {
            Liveness::Closed
        };
        self.word.fetch_sub(PROBER, Ordering::Release);
        liveness
    }

    /// Called by the IO's `Drop`, before the stream is dropped.
    fn close(&self) {
        let mut word = self.word.fetch_or(CLOSING, Ordering::AcqRel);
        while word >= PROBER {
            // A probe in flight: one non-blocking syscall on another thread.
            std::thread::yield_now();
            word = self.word.load(Ordering::Acquire);
        }
    }
}

/// The pool's handle to a connection's socket.
#[derive(Clone)]
pub(crate) struct ProbeHandle(Handle);

#[derive(Clone)]
enum Handle {
    Gate(Arc<Gate>),
    Shared(Weak<dyn ProbeTarget>),
}

impl ProbeHandle {
    /// Probes the socket, or reports `Closed` if the connection task has
    /// already dropped it.
    pub(crate) fn probe(&self) -> Liveness {
        match &self.0 {
            Handle::Gate(gate) => gate.probe(),
            Handle::Shared(weak) => match weak.upgrade() {
                Some(target) => target.probe(),
                None => Liveness::Closed,
            },
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
    inner: Inner<T>,
    state: Arc<ConnState>,
}

enum Inner<T> {
    /// Owned outright: the pool probes through the [`Gate`].
    Owned(T, Arc<Gate>),
    /// Shared with the pool, whose probe needs the stream.
    Shared(Arc<Cell<T>>),
}

impl<T> Io<T>
where
    T: Probe + Send + 'static,
{
    pub(crate) fn new(io: T, state: Arc<ConnState>) -> (Io<T>, ProbeHandle) {
        let (inner, handle) = match io.detached() {
            Some(detached) => {
                let gate = Arc::new(Gate {
                    word: AtomicUsize::new(0),
                    detached,
                });
                let handle = Handle::Gate(Arc::clone(&gate));
                (Inner::Owned(io, gate), handle)
            }
            None => {
                let cell = Arc::new(Cell { io: Mutex::new(io) });
                let weak: Weak<dyn ProbeTarget> = Arc::downgrade(&cell) as Weak<dyn ProbeTarget>;
                (Inner::Shared(cell), Handle::Shared(weak))
            }
        };
        (Io { inner, state }, ProbeHandle(handle))
    }
}

impl<T: Unpin> Io<T> {
    /// Runs `f` on the stream.
    #[inline]
    fn with<R>(&mut self, f: impl FnOnce(Pin<&mut T>) -> R) -> R {
        match &mut self.inner {
            Inner::Owned(io, _) => f(Pin::new(io)),
            Inner::Shared(cell) => f(Pin::new(&mut *lock(&cell.io))),
        }
    }
}

impl<T> Drop for Io<T> {
    fn drop(&mut self) {
        if let Inner::Owned(_, gate) = &self.inner {
            gate.close();
        }
    }
}

impl<T: Read + Unpin> Read for Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state.past_due() {
            return Poll::Ready(Ok(()));
        }
        let before = buf.remaining();
        // SAFETY: the inner read only initialises bytes of this slice (a
        // `ReadBuf` never de-initialises memory), as `as_mut` requires.
        let mut inner = hyper::rt::ReadBuf::uninit(unsafe { buf.as_mut() });
        let result = this.with(|io| io.poll_read(cx, inner.unfilled()));
        let n = inner.filled().len();
        // SAFETY: the inner read initialised and filled these `n` bytes.
        unsafe { buf.advance(n) };
        let state = &this.state;
        match &result {
            Poll::Ready(Ok(())) => {
                if n == 0 && before > 0 {
                    state.record_close(KIND_FIN);
                } else {
                    if state.attempt.idle.load(Ordering::Relaxed) {
                        state.record_close(KIND_UNEXPECTED);
                    }
                    if n > 0 {
                        let now = state.stamp();
                        state.io.last_read.store(now, Ordering::Release);
                        add(&state.io.read, n);
                        let sent = state.io.sent.load(Ordering::Relaxed);
                        if sent != 0 {
                            state.io.sent.store(0, Ordering::Relaxed);
                            let trip = now.saturating_sub(sent) + 1;
                            state.io.round_trip.store(trip, Ordering::Release);
                        }
                    }
                }
            }
            Poll::Ready(Err(_)) => state.record_close(KIND_RESET),
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
        let this = self.get_mut();
        let result = this.with(|io| io.poll_write(cx, buf));
        this.count(result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = this.with(|io| io.poll_write_vectored(cx, bufs));
        this.count(result)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Owned(io, _) => io.is_write_vectored(),
            Inner::Shared(cell) => lock(&cell.io).is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().with(|io| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().with(|io| io.poll_shutdown(cx))
    }
}

impl<T> Io<T> {
    fn count(&self, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match &result {
            Poll::Ready(Ok(n)) => {
                let state = &self.state;
                let written = state.io.written.load(Ordering::Relaxed);
                if written == state.attempt.written_base.load(Ordering::Relaxed)
                    && state.attempt.due.load(Ordering::Relaxed) == 0
                {
                    // A fresh connection's first request (a reused one's
                    // was stamped by `past_due`): its round trip starts.
                    state.io.sent.store(state.stamp(), Ordering::Relaxed);
                }
                state
                    .io
                    .written
                    .store(written.wrapping_add(*n as u64), Ordering::Release);
            }
            Poll::Ready(Err(_)) => self.state.record_close(KIND_RESET),
            Poll::Pending => {}
        }
        result
    }
}

/// Adds to a counter only the connection task writes: a load and a store,
/// no read-modify-write.
#[inline]
fn add(counter: &AtomicU64, n: usize) {
    let value = counter.load(Ordering::Relaxed);
    counter.store(value.wrapping_add(n as u64), Ordering::Release);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_probe_after_the_io_is_dropped_never_touches_the_descriptor() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let client = tokio::net::TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (_server, _) = listener.accept().await.expect("accept");
        let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
        let state = Arc::new(ConnState::new(Instant::now()));
        let (io, handle) = Io::new(hyper_util::rt::TokioIo::new(client), state);
        assert!(
            matches!(handle.0, Handle::Gate(_)),
            "a TCP stream is probed detached"
        );
        assert_eq!(handle.probe(), Liveness::Alive);
        drop(io);
        // A socket made now usually gets the same descriptor number: had
        // the handle probed it, an idle UDP socket would answer `Alive`.
        let reused = std::net::UdpSocket::bind("127.0.0.1:0").expect("socket");
        let same = std::os::fd::AsRawFd::as_raw_fd(&reused) == fd;
        assert_eq!(
            handle.probe(),
            Liveness::Closed,
            "descriptor reused: {same}"
        );
    }

    #[test]
    fn probers_and_the_closing_bit_share_one_word() {
        let gate = Arc::new(Gate {
            word: AtomicUsize::new(0),
            detached: Detached::Always(Liveness::Alive),
        });
        let probers: Vec<_> = (0..4)
            .map(|_| {
                let gate = Arc::clone(&gate);
                std::thread::spawn(move || {
                    let mut alive = 0;
                    while gate.probe() == Liveness::Alive {
                        alive += 1;
                    }
                    alive
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(5));
        gate.close();
        // Every prober counted before the bit was set has finished.
        assert_eq!(gate.word.load(Ordering::Acquire), CLOSING);
        for prober in probers {
            prober.join().expect("prober");
        }
        assert_eq!(gate.probe(), Liveness::Closed);
        assert_eq!(gate.word.load(Ordering::Acquire), CLOSING);
    }
}
