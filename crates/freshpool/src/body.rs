//! The response body, which gives its connection back when it ends.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;

use crate::pool::{Conn, Learned, OriginKey, PoolShared};

pin_project_lite::pin_project! {
    /// The body of a response from [`Client`](crate::Client).
    ///
    /// It streams hyper's [`Incoming`] body unchanged. When it has been read
    /// to its end, the connection goes back to the pool. A body dropped
    /// before its end takes its connection with it: the bytes still in
    /// flight would desynchronise the next response, so the connection is
    /// closed rather than reused.
    pub struct Body {
        #[pin]
        inner: Incoming,
        checkin: Option<Box<dyn Checkin>>,
    }
}

/// Returns a connection to the pool once hyper is ready for the next
/// request on it.
pub(crate) trait Checkin: Send + Sync {
    fn checkin(self: Box<Self>);
}

pub(crate) struct Returning<B> {
    /// Strong, to spare every response an upgrade: a body that outlives
    /// its client keeps the pool only until the body goes.
    pub(crate) pool: Arc<PoolShared<B>>,
    pub(crate) origin: OriginKey,
    pub(crate) conn: Conn<B>,
    /// What the response taught about the origin, applied at check-in.
    pub(crate) learned: Learned,
}

impl<B> Checkin for Returning<B>
where
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<crate::error::BoxError>,
    Conn<B>: Sync,
{
    fn checkin(self: Box<Self>) {
        let Returning {
            pool,
            origin,
            mut conn,
            learned,
        } = *self;
        if conn.is_ready() {
            pool.release(&origin, conn, learned);
            return;
        }
        // hyper finishes its bookkeeping for the message on the connection
        // task, which may not have run yet. Wait for it without holding the
        // pool alive.
        let pool = Arc::downgrade(&pool);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let ready = std::future::poll_fn(|cx| conn.poll_ready(cx)).await;
            if let (Ok(()), Some(pool)) = (ready, pool.upgrade()) {
                pool.release(&origin, conn, learned);
            }
        });
    }
}

/// Keeps a handle (an HTTP/2 stream) alive until the body ends.
pub(crate) struct Holding<B>(pub(crate) Conn<B>);

impl<B> Checkin for Holding<B>
where
    Conn<B>: Send + Sync,
{
    fn checkin(self: Box<Self>) {
        drop(self.0);
    }
}

impl Body {
    pub(crate) fn new(inner: Incoming, checkin: Option<Box<dyn Checkin>>) -> Body {
        let mut body = Body { inner, checkin };
        if http_body::Body::is_end_stream(&body.inner)
            && let Some(checkin) = body.checkin.take()
        {
            checkin.checkin();
        }
        body
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut this = self.project();
        let polled = this.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(None) => {
                if let Some(checkin) = this.checkin.take() {
                    checkin.checkin();
                }
            }
            Poll::Ready(Some(Ok(_))) => {
                if this.inner.is_end_stream()
                    && let Some(checkin) = this.checkin.take()
                {
                    checkin.checkin();
                }
            }
            // The connection saw an error: it goes with the body.
            Poll::Ready(Some(Err(_))) => drop(this.checkin.take()),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body")
            .field("inner", &self.inner)
            .field("pooled_on_end", &self.checkin.is_some())
            .finish()
    }
}
