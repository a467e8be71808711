//! The bodies the proxy streams: a client's request body on its way up,
//! an upstream's response body on its way down. Neither is ever buffered:
//! each frame is passed on when the other side asks for it, so a slow
//! reader slows the writer (backpressure), whatever the body's size.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// A boxed error, as hyper takes them.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// A client's request body as the proxy forwards it upstream: hyper's
/// [`Incoming`] (or, through [`Proxy::forward_body`](crate::Proxy::forward_body),
/// any other body, boxed), counted against the request size limit.
///
/// This is the body type an [`Upstream`](crate::Upstream) client sends.
/// Past the limit it fails with a [`BodyTooLarge`] error, and the proxy
/// answers `413` if no response has started.
pub struct RequestBody {
    inner: Source,
    seen: u64,
    /// The limit, and the flag set when the body goes past it.
    limit: Option<(u64, Arc<AtomicBool>)>,
}

/// Where a request body comes from.
pub(crate) enum Source {
    /// hyper's server: no box.
    Incoming(Incoming),
    /// Any other body (an axum `Body`, a test's `Full`).
    Boxed(UnsyncBoxBody<Bytes, BoxError>),
}

impl From<Incoming> for Source {
    fn from(body: Incoming) -> Source {
        Source::Incoming(body)
    }
}

impl RequestBody {
    pub(crate) fn new(inner: Source, limit: Option<(u64, Arc<AtomicBool>)>) -> Self {
        RequestBody {
            inner,
            seen: 0,
            limit,
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        // Cut off at the limit: what the client still sends is read away
        // while the `413` goes out (see `linger`).
        if self
            .limit
            .as_ref()
            .is_some_and(|(_, exceeded)| exceeded.load(Ordering::Relaxed))
        {
            let rest = std::mem::replace(&mut self.inner, Source::Boxed(UnsyncBoxBody::default()));
            linger(rest, None);
        }
    }
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("seen", &self.seen)
            .field("limit", &self.limit.as_ref().map(|(limit, _)| limit))
            .finish_non_exhaustive()
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let frame = match &mut self.inner {
            Source::Incoming(body) => {
                ready!(Pin::new(body).poll_frame(cx)).map(|f| f.map_err(BoxError::from))
            }
            Source::Boxed(body) => ready!(Pin::new(body).poll_frame(cx)),
        };
        let Some(frame) = frame else {
            return Poll::Ready(None);
        };
        let frame = frame?;
        if let (Some(data), Some((limit, exceeded))) = (frame.data_ref(), &self.limit) {
            let seen = self.seen.saturating_add(data.len() as u64);
            if seen > *limit {
                exceeded.store(true, Ordering::Relaxed);
                let limit = *limit;
                return Poll::Ready(Some(Err(Box::new(BodyTooLarge {
                    limit,
                    direction: "request",
                }))));
            }
            self.seen = seen;
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Source::Incoming(body) => body.is_end_stream(),
            Source::Boxed(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Source::Incoming(body) => body.size_hint(),
            Source::Boxed(body) => body.size_hint(),
        }
    }
}

/// How much of a refused request body the proxy still reads, at most, and
/// for how long, before the connection closes: what the client sent past
/// a `413` would otherwise be unread at the close, and the kernel answers
/// unread bytes with a reset that can destroy the `413` on its way (the
/// reason for nginx's lingering close).
const LINGER_BYTES: u64 = 256 * 1024;
const LINGER: Duration = Duration::from_secs(2);

/// Reads and discards what is left of a refused request body (at most
/// [`LINGER_BYTES`], for at most [`LINGER`]) in a task of its own, so that
/// the answer to it reaches the client before the connection closes. A
/// body declared longer than that is dropped at once: the client is in the
/// middle of a large upload, and reading it all is not the proxy's job.
pub(crate) fn linger(body: Source, declared: Option<u64>) {
    if declared.is_some_and(|declared| declared > LINGER_BYTES) {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut body = RequestBody::new(body, None);
        let drain = async {
            let mut read = 0u64;
            while read <= LINGER_BYTES {
                match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                    Some(Ok(frame)) => {
                        read += frame.data_ref().map_or(0, |data| data.len() as u64);
                    }
                    Some(Err(_)) | None => break,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
    });
}

/// A body that went past the proxy's size limit.
#[derive(Debug, Clone)]
pub struct BodyTooLarge {
    limit: u64,
    direction: &'static str,
}

impl BodyTooLarge {
    /// The limit it went past, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl fmt::Display for BodyTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} body larger than the proxy's limit of {} bytes",
            self.direction, self.limit
        )
    }
}

impl StdError for BodyTooLarge {}

/// The upstream sent nothing for longer than the proxy waits.
#[derive(Debug, Clone)]
pub struct UpstreamStalled {
    after: Duration,
}

impl fmt::Display for UpstreamStalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "upstream sent no response body data for {:?}",
            self.after
        )
    }
}

impl StdError for UpstreamStalled {}

pin_project_lite::pin_project! {
    /// The body of a response from [`Proxy`](crate::Proxy): the upstream's
    /// body streamed frame by frame, or a short message the proxy wrote
    /// itself (a `502`, a `504`, the stats page).
    ///
    /// An upstream body that goes past the response size limit, or sends
    /// nothing for longer than the upstream timeout, ends in an error: the
    /// response head has already gone to the client, so hyper then aborts
    /// the client's connection (HTTP/1) or stream (HTTP/2) rather than let
    /// a truncated body pass for a whole one.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Upstream {
            #[pin]
            inner: B,
            seen: u64,
            limit: Option<u64>,
            idle: Option<Duration>,
            timer: Option<Pin<Box<Sleep>>>,
        },
        Message {
            data: Option<Bytes>,
        },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn upstream(inner: B, limit: Option<u64>, idle: Option<Duration>) -> Self {
        ResponseBody {
            kind: Kind::Upstream {
                inner,
                seen: 0,
                limit,
                idle,
                timer: None,
            },
        }
    }

    pub(crate) fn message(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        ResponseBody {
            kind: Kind::Message {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    pub(crate) fn empty() -> Self {
        ResponseBody {
            kind: Kind::Message { data: None },
        }
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Upstream { seen, limit, .. } => f
                .debug_struct("ResponseBody::Upstream")
                .field("seen", seen)
                .field("limit", limit)
                .finish_non_exhaustive(),
            Kind::Message { data } => f
                .debug_struct("ResponseBody::Message")
                .field("len", &data.as_ref().map_or(0, Bytes::len))
                .finish(),
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project().kind.project() {
            KindProj::Message { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Upstream {
                inner,
                seen,
                limit,
                idle,
                timer,
            } => match inner.poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    if let (Some(idle), Some(timer)) = (*idle, timer.as_mut()) {
                        timer.as_mut().reset(Instant::now() + idle);
                    }
                    if let Some(data) = frame.data_ref() {
                        *seen = seen.saturating_add(data.len() as u64);
                        if let Some(limit) = limit.filter(|&limit| *seen > limit) {
                            return Poll::Ready(Some(Err(Box::new(BodyTooLarge {
                                limit,
                                direction: "response",
                            }))));
                        }
                    }
                    Poll::Ready(Some(Ok(frame)))
                }
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => {
                    let Some(idle) = *idle else {
                        return Poll::Pending;
                    };
                    let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                    ready!(timer.as_mut().poll(cx));
                    Poll::Ready(Some(Err(Box::new(UpstreamStalled { after: idle }))))
                }
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Upstream { inner, .. } => inner.is_end_stream(),
            Kind::Message { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Upstream { inner, .. } => inner.size_hint(),
            Kind::Message { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, Bytes::len) as u64)
            }
        }
    }
}
