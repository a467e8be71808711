//! What a connection shares with the rest of the adapter: the retire
//! signal the expiry driver sends it, and the facts about its current
//! exchange that [`RetryClient`](crate::RetryClient) needs after a failure.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Waker;

/// The state of one connection that outlives its IO wrapper's borrow.
///
/// The IO wrapper (owned by hyper's connection task) is the only writer of
/// the counters; the expiry driver sets `retire` and wakes the reader; a
/// [`ConnectionInfo`] reads the counters after an exchange failed.
// Aligned so that the reference count in front of it, which every
// response's `ConnectionInfo` bumps on the thread that reads the response,
// is not on a cache line with the fields the connection's IO updates on
// every read and write (128: CPUs fetch cache lines in pairs).
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct ConnShared {
    id: u64,
    /// Set by the expiry driver: the connection may be due for retirement.
    retire: AtomicBool,
    /// hyper's read waker, set while the connection is idle. Waking does
    /// not take it: it stays set until the reader's waker changes, so the
    /// reader sets it once, not on every idle read.
    waker: Mutex<Option<Waker>>,
    /// The inner connector negotiated HTTP/2 (ALPN).
    h2: AtomicBool,
    /// The counters below describe the exchanges exactly: the tracker
    /// followed every message up to the end of the connection.
    followed: AtomicBool,
    /// Responses completed on the connection.
    completed: AtomicU64,
    /// Bytes written since the last response completed (or since connect).
    written: AtomicU64,
    /// Bytes read since the last response completed (or since connect).
    read: AtomicU64,
    /// The connection's IO was dropped: hyper's connection task is ending
    /// or over.
    ended: AtomicBool,
    /// The request side to wake when it is (see [`RetryClient`]'s guard).
    ///
    /// [`RetryClient`]: crate::RetryClient
    ended_waker: Mutex<Option<Waker>>,
}

impl ConnShared {
    pub(crate) fn new() -> ConnShared {
        ConnShared {
            id: freshpool::next_connection_id(),
            retire: AtomicBool::new(false),
            waker: Mutex::new(None),
            h2: AtomicBool::new(false),
            followed: AtomicBool::new(true),
            completed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            read: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            ended_waker: Mutex::new(None),
        }
    }

    /// The connection's IO was dropped: wakes the request side waiting on
    /// it, if any.
    pub(crate) fn mark_ended(&self) {
        self.ended.store(true, Ordering::Release);
        let waker = self
            .ended_waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether the connection's IO was dropped; if not, `waker` is woken
    /// when it is.
    pub(crate) fn poll_ended(&self, waker: &Waker) -> bool {
        if self.ended.load(Ordering::Acquire) {
            return true;
        }
        {
            let mut slot = self
                .ended_waker
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if !slot.as_ref().is_some_and(|set| set.will_wake(waker)) {
                *slot = Some(waker.clone());
            }
        }
        self.ended.load(Ordering::Acquire)
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Asks the reader to check whether the connection is due, and wakes
    /// it. Called by the expiry driver.
    pub(crate) fn request_retire(&self) {
        self.retire.store(true, Ordering::Release);
        let waker = self.lock_waker().clone();
        // Outside the lock: waking runs hyper's waker code.
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Marks the connection due without waking anyone: its reader is about
    /// to read again (the IO wrapper calls it from its own read).
    pub(crate) fn mark_due(&self) {
        self.retire.store(true, Ordering::Release);
    }

    /// Sets the waker [`request_retire`](Self::request_retire) wakes. A
    /// request made before it was set is seen by the reader's next
    /// [`take_retire`](Self::take_retire): the flag is stored before the
    /// lock is taken.
    pub(crate) fn set_waker(&self, waker: &Waker) {
        let mut slot = self.lock_waker();
        if !slot.as_ref().is_some_and(|set| set.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    fn lock_waker(&self) -> MutexGuard<'_, Option<Waker>> {
        // Nothing panics while it is held; a poisoned slot is still valid.
        self.waker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a retire request may be pending (a plain load: the request
    /// itself is taken with [`take_retire`](Self::take_retire)).
    #[inline]
    pub(crate) fn retire_pending(&self) -> bool {
        self.retire.load(Ordering::Relaxed)
    }

    /// Consumes a pending retire request.
    #[inline]
    pub(crate) fn take_retire(&self) -> bool {
        // A plain load first: the read path must not pay an atomic
        // read-modify-write per call.
        self.retire.load(Ordering::Relaxed) && self.retire.swap(false, Ordering::Acquire)
    }

    /// Marks the connection HTTP/2, never to be followed; `true` the
    /// first time.
    pub(crate) fn mark_h2(&self) -> bool {
        self.followed.store(false, Ordering::Release);
        !self.h2.swap(true, Ordering::AcqRel)
    }

    #[inline]
    pub(crate) fn is_h2(&self) -> bool {
        self.h2.load(Ordering::Acquire)
    }

    /// From now on the counters say nothing reliable about the exchanges.
    pub(crate) fn set_unfollowed(&self) {
        self.followed.store(false, Ordering::Release);
    }

    // The IO wrapper is the only writer of the counters, so a load and a
    // store (no read-modify-write) is exact.

    #[inline]
    pub(crate) fn add_written(&self, n: usize) {
        let written = self.written.load(Ordering::Relaxed);
        self.written
            .store(written.saturating_add(n as u64), Ordering::Release);
    }

    #[inline]
    pub(crate) fn add_read(&self, n: usize) {
        let read = self.read.load(Ordering::Relaxed);
        self.read
            .store(read.saturating_add(n as u64), Ordering::Release);
    }

    /// Bytes read since the last response completed.
    #[inline]
    pub(crate) fn read_since_response(&self) -> u64 {
        self.read.load(Ordering::Acquire)
    }

    /// A response completed; `extra` bytes of the same read followed it.
    #[inline]
    pub(crate) fn response_completed(&self, completed: u64, extra: usize) {
        self.written.store(0, Ordering::Release);
        self.read.store(extra as u64, Ordering::Release);
        self.completed.store(completed, Ordering::Release);
    }
}

/// What is known about the request a failed exchange was sending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Facts {
    /// A response had completed on the connection before: it was reused.
    pub(crate) reused: bool,
    /// Bytes of the failed request the socket accepted.
    pub(crate) bytes_written: u64,
    /// A byte of a response to it arrived.
    pub(crate) response_started: bool,
}

/// The adapter's handle to one connection, attached by
/// [`Connector`](crate::Connector) to the connection's
/// `hyper_util::client::legacy::connect::Connected` as an extra.
///
/// hyper-util copies it into the extensions of every response the
/// connection carries, and into the `connect_info` of every error, so both
/// can be traced to their connection:
///
/// ```
/// use freshpool_legacy::ConnectionInfo;
///
/// fn connection_of(response: &http::Response<hyper::body::Incoming>) -> Option<u64> {
///     response.extensions().get::<ConnectionInfo>().map(ConnectionInfo::id)
/// }
/// ```
///
/// The extras of the inner connector (such as hyper-util's `HttpInfo`) are
/// kept: hyper-util chains extras rather than replacing them.
#[derive(Clone)]
pub struct ConnectionInfo {
    conn: Arc<ConnShared>,
}

impl ConnectionInfo {
    pub(crate) fn new(conn: Arc<ConnShared>) -> ConnectionInfo {
        ConnectionInfo { conn }
    }

    /// A number that identifies the connection within this process, from
    /// the sequence freshpool's own connections are numbered from
    /// ([`freshpool::next_connection_id`]).
    pub fn id(&self) -> u64 {
        self.conn.id
    }

    /// Whether the adapter followed every HTTP/1 message of the connection
    /// so far (`false` for HTTP/2, upgrades, `CONNECT` tunnels and
    /// exchanges it does not follow; such connections are never touched).
    pub fn is_followed(&self) -> bool {
        self.conn.followed.load(Ordering::Acquire)
    }

    /// Responses completed on the connection so far.
    pub fn responses_completed(&self) -> u64 {
        self.conn.completed.load(Ordering::Acquire)
    }

    /// Whether the connection's IO was dropped.
    pub(crate) fn is_ended(&self) -> bool {
        self.conn.ended.load(Ordering::Acquire)
    }

    /// Whether the connection has ended with nothing of its current
    /// request written; if it has not ended, `waker` is woken when it
    /// does.
    pub(crate) fn ended_unwritten(&self, waker: &Waker) -> bool {
        self.conn.poll_ended(waker)
            && self.is_followed()
            && self.conn.written.load(Ordering::Acquire) == 0
    }

    /// The facts of the exchange in progress when the connection failed;
    /// `None` when the adapter did not follow the connection.
    ///
    /// hyper sends one request at a time on an HTTP/1 connection, so the
    /// bytes written and read since the last completed response all belong
    /// to the failed request, whether it had started or not.
    pub(crate) fn facts(&self) -> Option<Facts> {
        if !self.is_followed() {
            return None;
        }
        Some(Facts {
            reused: self.conn.completed.load(Ordering::Acquire) > 0,
            bytes_written: self.conn.written.load(Ordering::Acquire),
            response_started: self.conn.read.load(Ordering::Acquire) > 0,
        })
    }
}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("id", &self.id())
            .field("followed", &self.is_followed())
            .field("responses_completed", &self.responses_completed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_one_sequence_freshpool_numbers_connections_from() {
        let before = freshpool::next_connection_id();
        let info = ConnectionInfo::new(Arc::new(ConnShared::new()));
        let after = freshpool::next_connection_id();
        assert!(
            before < info.id() && info.id() < after,
            "{before} {info:?} {after}"
        );
    }
}
