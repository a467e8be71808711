//! HTTP/2 over cleartext with prior knowledge, served by hyper.
//!
//! Exact wire control matters less here than for HTTP/1.1: the point is to
//! count requests per id like the HTTP/1.1 side, and to end connections
//! with a GOAWAY (after an idle timeout or after a number of requests) so
//! that clients can show that a GOAWAY loses no request.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::body::body_pattern;
use crate::builder::Config;
use crate::stats::{CloseReason, Shared, TaskGuard};

/// Serves HTTP/2 on `stream`; `preface` holds the bytes already read.
pub(crate) async fn serve(
    stream: TcpStream,
    preface: BytesMut,
    id: u64,
    config: &Arc<Config>,
    shared: &Arc<Shared>,
    streams: &StreamTasks,
) -> CloseReason {
    let state = Arc::new(ConnState::default());
    let ctx = Arc::new(StreamContext {
        config: Arc::clone(config),
        shared: Arc::clone(shared),
        state: Arc::clone(&state),
        connection_id: id,
    });
    let service = hyper::service::service_fn(move |req| {
        // Counted before the stream task starts, so the idle timer cannot
        // fire between the stream opening and its handler running.
        let active = ActiveStream::new(&ctx.state);
        let ctx = Arc::clone(&ctx);
        async move {
            let response = ctx.handle(req).await;
            drop(active);
            response
        }
    });
    // A second handle on the socket, so that it outlives hyper's: after a
    // GOAWAY, the socket is kept open (reading what the client still
    // sends) until the client closes it, as Go's server does for a second.
    // Closed at once, with the client's bytes unread, it would answer them
    // with a reset that can reach the client before the GOAWAY, and turn
    // every stream the GOAWAY refused into a broken pipe.
    let (stream, lingering) = match split_handle(stream) {
        Ok(pair) => pair,
        Err(err) => return CloseReason::Io(err.kind()),
    };
    let io = TokioIo::new(Rewind {
        prefix: preface.freeze(),
        inner: stream,
    });
    let conn =
        hyper::server::conn::http2::Builder::new(streams.clone()).serve_connection(io, service);
    tokio::pin!(conn);

    let mut goaway_sent = false;
    let mut idle_since = Some(Instant::now());
    loop {
        let idle_deadline = idle_since.map(|since| since + config.idle_timeout);
        let far_future = Instant::now() + Duration::from_secs(86_400);
        tokio::select! {
            result = conn.as_mut() => {
                let reason = match result {
                    _ if goaway_sent => CloseReason::GoAway,
                    Ok(()) => CloseReason::PeerClosed,
                    Err(err) => CloseReason::Io(io_kind(&err)),
                };
                if goaway_sent {
                    linger(lingering).await;
                }
                return reason;
            }
            () = state.changed.notified() => {
                let reached = config
                    .h2_goaway_after
                    .is_some_and(|after| state.served.load(Relaxed) >= after);
                if reached && !goaway_sent {
                    conn.as_mut().graceful_shutdown();
                    shared.goaway_sent(false);
                    goaway_sent = true;
                }
                idle_since = (state.in_flight.load(Relaxed) == 0).then(Instant::now);
            }
            () = tokio::time::sleep_until(idle_deadline.unwrap_or(far_future)),
                if idle_deadline.is_some() && !goaway_sent =>
            {
                if state.in_flight.load(Relaxed) == 0 {
                    conn.as_mut().graceful_shutdown();
                    shared.goaway_sent(true);
                    goaway_sent = true;
                }
                idle_since = None;
            }
        }
    }
}

/// How long a connection that sent a GOAWAY stays open for the client to
/// read it and close first (Go's `goAwayTimeout` is 1 s).
const GOAWAY_LINGER: Duration = Duration::from_secs(1);

/// `stream`, and a second handle on the same socket.
fn split_handle(stream: TcpStream) -> io::Result<(TcpStream, std::net::TcpStream)> {
    let std = stream.into_std()?;
    let other = std.try_clone()?;
    Ok((TcpStream::from_std(std)?, other))
}

/// Reads and discards what the client still sends on `socket` until it
/// closes, for at most [`GOAWAY_LINGER`]; then the socket closes.
async fn linger(socket: std::net::TcpStream) {
    let Ok(mut socket) = TcpStream::from_std(socket) else {
        return;
    };
    let drain = async {
        let mut scratch = [0u8; 4096];
        loop {
            match tokio::io::AsyncReadExt::read(&mut socket, &mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(GOAWAY_LINGER, drain).await;
}

/// The IO error kind behind a hyper error, or `InvalidData` for a protocol
/// error.
fn io_kind(err: &hyper::Error) -> io::ErrorKind {
    let mut source: Option<&(dyn StdError + 'static)> = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            return io.kind();
        }
        source = cause.source();
    }
    io::ErrorKind::InvalidData
}

/// Per-connection counters the streams share with the connection loop.
#[derive(Debug, Default)]
struct ConnState {
    served: AtomicU32,
    in_flight: AtomicUsize,
    changed: Notify,
}

/// Counts one open stream.
struct ActiveStream(Arc<ConnState>);

impl ActiveStream {
    fn new(state: &Arc<ConnState>) -> Self {
        state.in_flight.fetch_add(1, Relaxed);
        state.changed.notify_one();
        ActiveStream(Arc::clone(state))
    }
}

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Relaxed);
        self.0.changed.notify_one();
    }
}

struct StreamContext {
    config: Arc<Config>,
    shared: Arc<Shared>,
    state: Arc<ConnState>,
    connection_id: u64,
}

/// Why a stream is reset instead of answered (hyper answers a service
/// error with `RST_STREAM`).
#[derive(Debug)]
enum StreamError {
    /// Reading the request body failed.
    Body(hyper::Error),
    /// `x-reset-after-read`.
    Reset,
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Body(_) => f.write_str("reading the request body failed"),
            StreamError::Reset => f.write_str("stream reset by x-reset-after-read"),
        }
    }
}

impl StdError for StreamError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            StreamError::Body(err) => Some(err),
            StreamError::Reset => None,
        }
    }
}

type StreamResult = Result<Response<Full<Bytes>>, StreamError>;

impl StreamContext {
    async fn handle(&self, req: Request<Incoming>) -> StreamResult {
        let mut knobs = self.config.defaults.clone();
        let mut request_id = None;
        for (name, value) in req.headers() {
            if name == "x-request-id" {
                let Ok(id) = value.to_str() else {
                    return Ok(self.reject(400, "x-request-id is not valid UTF-8".into()));
                };
                request_id = Some(id.trim().to_owned()).filter(|id| !id.is_empty());
            } else if let Err(err) = knobs.apply(name.as_str(), value.as_bytes()) {
                return Ok(self.reject(400, err.to_string()));
            }
        }
        let is_head = req.method() == hyper::Method::HEAD;
        let mut body = req.into_body();
        let mut received: u64 = 0;
        while let Some(frame) = body.frame().await {
            if let Some(data) = frame.map_err(StreamError::Body)?.data_ref() {
                received = received.saturating_add(data.len() as u64);
                if received > self.config.max_request_body {
                    let max = self.config.max_request_body;
                    return Ok(self.reject(413, format!("request body larger than {max} bytes")));
                }
            }
        }

        self.shared
            .request_processed(self.connection_id, request_id.as_deref());
        let served = self.state.served.fetch_add(1, Relaxed).saturating_add(1);
        self.state.changed.notify_one();
        if knobs.reset_after_read {
            self.shared.stream_reset();
            return Err(StreamError::Reset);
        }
        if !knobs.delay.is_zero() {
            tokio::time::sleep(knobs.delay).await;
        }
        let body = if is_head || !knobs.status_allows_body() {
            Bytes::new()
        } else {
            Bytes::from(body_pattern(knobs.body_size))
        };
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = StatusCode::from_u16(knobs.status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        headers.insert("x-connection-id", HeaderValue::from(self.connection_id));
        headers.insert("x-connection-requests", HeaderValue::from(served));
        if let Some(id) = request_id.and_then(|id| HeaderValue::try_from(id).ok()) {
            headers.insert("x-request-id", id);
        }
        Ok(response)
    }

    fn reject(&self, status: u16, message: String) -> Response<Full<Bytes>> {
        self.shared.stream_rejected();
        let mut response = Response::new(Full::new(Bytes::from(message + "\n")));
        *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// The executor hyper spawns HTTP/2 stream tasks on: a `JoinSet` per
/// connection, so that the connection task can end and await them all.
#[derive(Clone)]
pub(crate) struct StreamTasks {
    inner: Arc<StreamTasksInner>,
}

struct StreamTasksInner {
    set: Mutex<JoinSet<()>>,
    shared: Arc<Shared>,
}

impl fmt::Debug for StreamTasks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamTasks").finish_non_exhaustive()
    }
}

impl StreamTasks {
    pub(crate) fn new(shared: &Arc<Shared>) -> Self {
        StreamTasks {
            inner: Arc::new(StreamTasksInner {
                set: Mutex::new(JoinSet::new()),
                shared: Arc::clone(shared),
            }),
        }
    }

    /// Aborts every stream task still running and waits until they ended.
    pub(crate) async fn shutdown(&self) {
        let mut set = std::mem::take(
            &mut *self
                .inner
                .set
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        set.shutdown().await;
    }
}

impl<F> hyper::rt::Executor<F> for StreamTasks
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        let guard: TaskGuard = self.inner.shared.task_guard();
        let mut set = self
            .inner
            .set
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Forget finished streams so the set does not grow with them.
        while set.try_join_next().is_some() {}
        set.spawn(async move {
            let _guard = guard;
            drop(fut.await);
        });
    }
}

/// A stream that first replays bytes already read from it.
struct Rewind {
    prefix: Bytes,
    inner: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
