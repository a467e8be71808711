//! One accepted connection: wait for its first bytes, pick the protocol,
//! and the waiting and closing helpers the protocols share.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::builder::{CloseMode, Config};
use crate::h1;
use crate::h2::{self, StreamTasks};
use crate::stats::{CloseReason, Protocol, Shared};

/// The HTTP/2 connection preface a prior-knowledge client starts with.
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// How much a read asks for at least.
const READ_CHUNK: usize = 8 * 1024;
/// How long a closing connection keeps reading (and discarding) what the
/// client still sends, so that its unread bytes do not turn our FIN into an
/// RST that could destroy the response in flight (a "lingering close").
const LINGER: Duration = Duration::from_millis(500);
/// How much a lingering close reads before giving up.
const LINGER_BYTES: usize = 256 * 1024;

/// Serves one connection until it closes, and says why it closed.
pub(crate) async fn serve(
    mut stream: TcpStream,
    id: u64,
    config: &Arc<Config>,
    shared: &Arc<Shared>,
    streams: &StreamTasks,
) -> CloseReason {
    // Responses are written whole; Nagle would only add latency.
    let _ = stream.set_nodelay(true);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        match wait_for_bytes(&mut stream, &mut buf, config, shared).await {
            Wait::Data => {}
            Wait::Idle => return close_idle(stream, config.close_mode).await,
            Wait::Closed => return close_on_order(stream, config.close_mode).await,
            Wait::Eof => return CloseReason::PeerClosed,
            Wait::Failed(kind) => return CloseReason::Io(kind),
        }
        let len = buf.len().min(PREFACE.len());
        if !config.h2c || buf[..len] != PREFACE[..len] {
            break;
        }
        if buf.len() >= PREFACE.len() {
            shared.set_protocol(id, Protocol::H2c);
            return h2::serve(stream, buf, id, config, shared, streams).await;
        }
    }
    shared.set_protocol(id, Protocol::Http1);
    h1::serve(stream, buf, id, config, shared).await
}

/// What waiting for the client's next bytes gave.
#[derive(Debug)]
pub(crate) enum Wait {
    /// Bytes were appended to the buffer.
    Data,
    /// Nothing arrived within the idle timeout.
    Idle,
    /// [`Origin::close_idle`](crate::Origin::close_idle) was called while
    /// nothing had arrived.
    Closed,
    /// The client closed its side.
    Eof,
    /// The read failed.
    Failed(io::ErrorKind),
}

/// Reads more bytes into `buf`, giving up at the idle timeout from now.
///
/// The timer starts when this is called and is cancelled by the first byte
/// that arrives, which is exactly the idle rule of Go's `IdleTimeout`. The
/// timeout is the builder's unless [`Origin::set_idle_timeout`] replaced
/// it; a replacement made during the wait applies to it at once (counted
/// from when the wait began), and [`Origin::close_idle`] ends the wait.
///
/// [`Origin::set_idle_timeout`]: crate::Origin::set_idle_timeout
/// [`Origin::close_idle`]: crate::Origin::close_idle
pub(crate) async fn wait_for_bytes(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    config: &Config,
    shared: &Shared,
) -> Wait {
    let started = Instant::now();
    let mut orders = shared.idle_control().subscribe();
    let purges = orders.borrow_and_update().purges;
    loop {
        let current = *orders.borrow_and_update();
        if current.purges != purges {
            return Wait::Closed;
        }
        let deadline = started + current.timeout.unwrap_or(config.idle_timeout);
        tokio::select! {
            // A byte that arrived with an order is served: the connection
            // was no longer idle.
            biased;
            read = tokio::time::timeout_at(deadline, read_more(stream, buf)) => {
                return match read {
                    Err(_elapsed) => Wait::Idle,
                    Ok(Ok(0)) => Wait::Eof,
                    Ok(Ok(_)) => Wait::Data,
                    Ok(Err(err)) => Wait::Failed(err.kind()),
                };
            }
            // The sender lives as long as `shared`; an error cannot happen.
            Ok(()) = orders.changed() => {}
        }
    }
}

/// Reads whatever is available into `buf` (0 means EOF).
///
/// # Cancel safety
///
/// Cancel safe: either bytes were appended, or none were read.
pub(crate) async fn read_more(stream: &mut TcpStream, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() - buf.len() < READ_CHUNK / 2 {
        buf.reserve(READ_CHUNK);
    }
    stream.read_buf(buf).await
}

/// Closes an idle HTTP/1.1 connection the configured way.
pub(crate) async fn close_idle(mut stream: TcpStream, mode: CloseMode) -> CloseReason {
    match mode {
        CloseMode::Fin => {
            // Shut down and drop at once, as Go does: a request that arrived
            // in the same instant is left unread and the kernel resets it.
            let _ = stream.shutdown().await;
        }
        CloseMode::Rst => abort(stream),
        CloseMode::Timeout408 => {
            let response = b"HTTP/1.1 408 Request Timeout\r\n\
                connection: close\r\ncontent-length: 0\r\n\r\n";
            if stream.write_all(response).await.is_ok() {
                close_gracefully(stream).await;
            }
        }
    }
    CloseReason::IdleTimeout(mode)
}

/// Closes an idle HTTP/1.1 connection on [`Origin::close_idle`]'s order,
/// the configured way.
///
/// [`Origin::close_idle`]: crate::Origin::close_idle
pub(crate) async fn close_on_order(stream: TcpStream, mode: CloseMode) -> CloseReason {
    close_idle(stream, mode).await;
    CloseReason::ClosedIdle(mode)
}

/// Drops the connection with an RST (`SO_LINGER` 0) instead of a FIN.
pub(crate) fn abort(stream: TcpStream) {
    // If setting the option fails the socket still closes, with a FIN.
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Sends a FIN after everything written so far, then reads and discards
/// what the client still sends for a short while before dropping, so the
/// client reads the whole response instead of an RST.
pub(crate) async fn close_gracefully(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let drain = async {
        let mut scratch = [0u8; 4096];
        let mut total = 0;
        while total < LINGER_BYTES {
            match stream.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}
