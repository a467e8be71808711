//! Counters shared by the accept loop and every connection, and the
//! snapshots read from them.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::builder::CloseMode;
use crate::control::IdleControl;

/// A snapshot of an origin's counters, from [`Origin::stats`](crate::Origin::stats).
///
/// Filled from relaxed atomics: each field is exact, but fields read while
/// connections are busy may be a moment apart. Read them after the client
/// side is done (or after [`Origin::shutdown`](crate::Origin::shutdown)) for
/// figures that add up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Connections accepted (HTTP/1.1 and HTTP/2).
    pub connections_accepted: u64,
    /// Connections currently open.
    pub connections_open: u64,
    /// The most connections that were open at once.
    pub max_connections_open: u64,
    /// Connections that were served as HTTP/2 (h2c).
    pub h2_connections: u64,
    /// HTTP/1.1 connections closed by the idle timeout with a FIN.
    pub idle_closes_fin: u64,
    /// HTTP/1.1 connections closed by the idle timeout with an RST.
    pub idle_closes_rst: u64,
    /// HTTP/1.1 connections closed by the idle timeout with a `408`.
    pub idle_closes_408: u64,
    /// HTTP/2 connections closed with a GOAWAY by the idle timeout.
    pub idle_closes_h2: u64,
    /// Idle HTTP/1.1 connections closed by
    /// [`Origin::close_idle`](crate::Origin::close_idle), any close mode.
    pub idle_closes_ordered: u64,
    /// Requests processed (see [the definition](crate#what-processed-means)).
    pub requests_processed: u64,
    /// Processings of a request id beyond its first: the sum over every
    /// `x-request-id` of `count - 1`. Zero means no request was processed
    /// twice.
    pub duplicate_requests: u64,
    /// Requests answered with an RST instead of a response
    /// (`x-reset-after-read`).
    pub requests_reset: u64,
    /// Responses cut off in the middle of their body (`x-close-mid-body`).
    pub responses_cut: u64,
    /// Malformed requests answered with a `4xx` (on HTTP/1.1 the connection
    /// is then closed; on HTTP/2 only the stream is answered).
    pub requests_rejected: u64,
    /// HTTP/1.1 connections closed after their last allowed request
    /// ([`Builder::max_requests`](crate::Builder::max_requests)).
    pub max_requests_closes: u64,
    /// GOAWAYs sent because an HTTP/2 connection reached
    /// [`Builder::h2_goaway_after`](crate::Builder::h2_goaway_after).
    pub h2_goaways: u64,
    /// Tasks of this origin still running (accept loop, connections, HTTP/2
    /// streams). Zero after [`Origin::shutdown`](crate::Origin::shutdown).
    pub tasks_alive: u64,
}

/// The protocol a connection was served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// Not known yet: no request byte has arrived.
    Unknown,
    /// HTTP/1.1 (or 1.0).
    Http1,
    /// HTTP/2 over cleartext with prior knowledge.
    H2c,
}

/// Why the server closed (or lost) a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The idle timeout expired; closed the given way.
    IdleTimeout(CloseMode),
    /// The connection was idle when
    /// [`Origin::close_idle`](crate::Origin::close_idle) was called; closed
    /// the given way.
    ClosedIdle(CloseMode),
    /// The client closed the connection (EOF) between requests.
    PeerClosed,
    /// The client asked for the close (`Connection: close`, or HTTP/1.0
    /// without keep-alive); the server responded, then closed.
    PeerRequestedClose,
    /// A request asked for the close with `x-close`.
    CloseKnob,
    /// The connection served its last allowed request.
    MaxRequests,
    /// A response was cut off mid-body by `x-close-mid-body`.
    CloseMidBody,
    /// A request was answered with an RST by `x-reset-after-read`.
    ResetAfterRead,
    /// A malformed request was rejected with a `4xx`.
    Rejected,
    /// The client vanished in the middle of a request.
    IncompleteRequest,
    /// An IO error, e.g. the client reset the connection.
    Io(io::ErrorKind),
    /// An HTTP/2 connection ended with a GOAWAY sent by the server.
    GoAway,
    /// The origin was shut down.
    Shutdown,
}

/// What the origin knows about one connection, from
/// [`Origin::connections`](crate::Origin::connections).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionRecord {
    /// Connection id, in accept order from 0; responses carry it as
    /// `x-connection-id`.
    pub id: u64,
    /// The client's address.
    pub peer: SocketAddr,
    /// The protocol it was served with.
    pub protocol: Protocol,
    /// Requests it processed so far.
    pub requests: u32,
    /// Why it was closed; `None` while it is open.
    pub closed: Option<CloseReason>,
}

/// State shared by every task of one origin.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    accepted: AtomicU64,
    open: AtomicU64,
    max_open: AtomicU64,
    h2: AtomicU64,
    idle_fin: AtomicU64,
    idle_rst: AtomicU64,
    idle_408: AtomicU64,
    idle_h2: AtomicU64,
    idle_ordered: AtomicU64,
    processed: AtomicU64,
    duplicates: AtomicU64,
    reset: AtomicU64,
    cut: AtomicU64,
    rejected: AtomicU64,
    max_requests: AtomicU64,
    goaways: AtomicU64,
    tasks: AtomicU64,
    registry: Mutex<Registry>,
    idle_control: IdleControl,
}

#[derive(Debug, Default)]
struct Registry {
    ids: HashMap<Box<str>, u32>,
    connections: Vec<ConnectionRecord>,
}

impl Shared {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The orders the handle gives idle connections.
    pub(crate) fn idle_control(&self) -> &IdleControl {
        &self.idle_control
    }

    /// Registers an accepted connection and returns its id.
    pub(crate) fn connection_opened(&self, peer: SocketAddr) -> u64 {
        let mut registry = self.registry();
        let id = registry.connections.len() as u64;
        registry.connections.push(ConnectionRecord {
            id,
            peer,
            protocol: Protocol::Unknown,
            requests: 0,
            closed: None,
        });
        drop(registry);
        self.accepted.fetch_add(1, Relaxed);
        let open = self.open.fetch_add(1, Relaxed) + 1;
        self.max_open.fetch_max(open, Relaxed);
        id
    }

    /// Records the protocol a connection turned out to speak.
    pub(crate) fn set_protocol(&self, conn: u64, protocol: Protocol) {
        if protocol == Protocol::H2c {
            self.h2.fetch_add(1, Relaxed);
        }
        if let Some(record) = self.registry().connections.get_mut(conn as usize) {
            record.protocol = protocol;
        }
    }

    /// Counts one processed request on `conn`.
    pub(crate) fn request_processed(&self, conn: u64, request_id: Option<&str>) {
        let mut registry = self.registry();
        if let Some(record) = registry.connections.get_mut(conn as usize) {
            record.requests = record.requests.saturating_add(1);
        }
        if let Some(id) = request_id {
            let count = match registry.ids.get_mut(id) {
                Some(count) => count,
                None => registry.ids.entry(id.into()).or_insert(0),
            };
            *count = count.saturating_add(1);
            if *count > 1 {
                self.duplicates.fetch_add(1, Relaxed);
            }
        }
        drop(registry);
        self.processed.fetch_add(1, Relaxed);
    }

    /// Records why a connection ended and updates the close counters.
    pub(crate) fn connection_closed(&self, conn: u64, reason: CloseReason) {
        let counter = match reason {
            CloseReason::IdleTimeout(CloseMode::Fin) => Some(&self.idle_fin),
            CloseReason::IdleTimeout(CloseMode::Rst) => Some(&self.idle_rst),
            CloseReason::IdleTimeout(CloseMode::Timeout408) => Some(&self.idle_408),
            CloseReason::ClosedIdle(_) => Some(&self.idle_ordered),
            CloseReason::MaxRequests => Some(&self.max_requests),
            CloseReason::CloseMidBody => Some(&self.cut),
            CloseReason::ResetAfterRead => Some(&self.reset),
            CloseReason::Rejected => Some(&self.rejected),
            _ => None,
        };
        if let Some(counter) = counter {
            counter.fetch_add(1, Relaxed);
        }
        if let Some(record) = self.registry().connections.get_mut(conn as usize) {
            record.closed = Some(reason);
        }
        self.open.fetch_sub(1, Relaxed);
    }

    /// Counts a GOAWAY sent by an HTTP/2 connection (`idle`: because of the
    /// idle timeout rather than `h2_goaway_after`).
    pub(crate) fn goaway_sent(&self, idle: bool) {
        if idle { &self.idle_h2 } else { &self.goaways }.fetch_add(1, Relaxed);
    }

    /// Counts a request reset on an HTTP/2 stream by `x-reset-after-read`.
    pub(crate) fn stream_reset(&self) {
        self.reset.fetch_add(1, Relaxed);
    }

    /// Counts a request rejected without closing the connection (HTTP/2).
    pub(crate) fn stream_rejected(&self) {
        self.rejected.fetch_add(1, Relaxed);
    }

    /// A guard that counts a running task until it is dropped.
    pub(crate) fn task_guard(self: &Arc<Self>) -> TaskGuard {
        self.tasks.fetch_add(1, Relaxed);
        TaskGuard(Arc::clone(self))
    }

    pub(crate) fn snapshot(&self) -> Stats {
        Stats {
            connections_accepted: self.accepted.load(Relaxed),
            connections_open: self.open.load(Relaxed),
            max_connections_open: self.max_open.load(Relaxed),
            h2_connections: self.h2.load(Relaxed),
            idle_closes_fin: self.idle_fin.load(Relaxed),
            idle_closes_rst: self.idle_rst.load(Relaxed),
            idle_closes_408: self.idle_408.load(Relaxed),
            idle_closes_h2: self.idle_h2.load(Relaxed),
            idle_closes_ordered: self.idle_ordered.load(Relaxed),
            requests_processed: self.processed.load(Relaxed),
            duplicate_requests: self.duplicates.load(Relaxed),
            requests_reset: self.reset.load(Relaxed),
            responses_cut: self.cut.load(Relaxed),
            requests_rejected: self.rejected.load(Relaxed),
            max_requests_closes: self.max_requests.load(Relaxed),
            h2_goaways: self.goaways.load(Relaxed),
            tasks_alive: self.tasks.load(Relaxed),
        }
    }

    pub(crate) fn processed(&self, id: &str) -> u32 {
        self.registry().ids.get(id).copied().unwrap_or(0)
    }

    pub(crate) fn duplicates(&self) -> Vec<(String, u32)> {
        let mut dups: Vec<(String, u32)> = self
            .registry()
            .ids
            .iter()
            .filter(|&(_, &n)| n > 1)
            .map(|(id, &n)| (id.to_string(), n))
            .collect();
        dups.sort();
        dups
    }

    pub(crate) fn request_ids(&self) -> usize {
        self.registry().ids.len()
    }

    pub(crate) fn connections(&self) -> Vec<ConnectionRecord> {
        self.registry().connections.clone()
    }
}

/// Counts one running task; dropping it (the task ended or was aborted)
/// uncounts it.
#[derive(Debug)]
pub(crate) struct TaskGuard(Arc<Shared>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.tasks.fetch_sub(1, Relaxed);
    }
}
