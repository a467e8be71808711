//! A connector adapter for IO types that cannot be probed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use freshpool_probe::{Liveness, Probe};
use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use tower_service::Service;

/// Wraps a connector whose IO type does not implement [`Probe`] so that
/// [`Client`](crate::Client) accepts it.
///
/// hyper-rustls's and hyper-tls's connectors need no wrapper: enable the
/// `rustls` or `native-tls` feature instead, and their connections are
/// probed (see [HTTPS](crate#https)).
///
/// Its connections report [`Liveness::Unknown`] at checkout: they are
/// still retired before the server's idle deadline and retried under the
/// RFC 9112 rules, but a FIN that arrived while they sat idle is only
/// noticed once hyper reads it. Prefer implementing [`Probe`] for the IO
/// type (probing its TCP socket) where you can.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::Empty;
/// use hyper_util::client::legacy::connect::HttpConnector;
///
/// // Any connector works; HttpConnector stands in for one whose IO has no
/// // `Probe` implementation.
/// let connector = freshpool::Unprobed::new(HttpConnector::new());
/// let client = freshpool::Client::builder().build::<_, Empty<Bytes>>(connector)?;
/// # drop(client);
/// # Ok::<(), freshpool::BuildError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Unprobed<C> {
    inner: C,
}

impl<C> Unprobed<C> {
    /// Wraps `inner`.
    pub fn new(inner: C) -> Unprobed<C> {
        Unprobed { inner }
    }

    /// The wrapped connector.
    pub fn into_inner(self) -> C {
        self.inner
    }
}

impl<C> Service<Uri> for Unprobed<C>
where
    C: Service<Uri>,
    C::Future: Send + 'static,
{
    type Response = UnprobedIo<C::Response>;
    type Error = C::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, C::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        Box::pin(async move { connecting.await.map(|io| UnprobedIo { io }) })
    }
}

/// The IO type of [`Unprobed`]: the inner connector's, probing as
/// [`Liveness::Unknown`].
#[derive(Debug)]
pub struct UnprobedIo<T> {
    io: T,
}

impl<T> UnprobedIo<T> {
    #[cfg(test)]
    pub(crate) fn new(io: T) -> UnprobedIo<T> {
        UnprobedIo { io }
    }
}

impl<T> Probe for UnprobedIo<T> {
    fn probe(&self) -> Liveness {
        Liveness::Unknown
    }

    fn detached(&self) -> Option<freshpool_probe::Detached> {
        Some(freshpool_probe::Detached::Always(Liveness::Unknown))
    }
}

impl<T: Connection> Connection for UnprobedIo<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl<T: Read + Unpin> Read for UnprobedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for UnprobedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
