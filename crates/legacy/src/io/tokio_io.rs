//! tokio's `AsyncRead` and `AsyncWrite` for [`TrackedIo`], through its
//! hyper `Read` and `Write`: whichever traits the bytes go through, the
//! adapter follows them alike. Code that recovers its stream after an
//! upgrade (`Upgraded::downcast`) gets a tokio stream back.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::{Read, Write};

use super::TrackedIo;

impl<T: Read + Unpin> tokio::io::AsyncRead for TrackedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let filled = buf.filled().len();
        // SAFETY: hyper's `ReadBuf` only initialises bytes of the unfilled
        // part it is given (it never de-initialises memory), and the bytes
        // it reports filled were written by the inner read.
        let added = unsafe {
            let mut inner = hyper::rt::ReadBuf::uninit(buf.unfilled_mut());
            match Read::poll_read(self, cx, inner.unfilled()) {
                Poll::Ready(Ok(())) => inner.filled().len(),
                other => return other,
            }
        };
        // SAFETY: the `added` bytes after `filled` were initialised and
        // filled by the read above.
        unsafe {
            buf.assume_init(added);
        }
        buf.set_filled(filled + added);
        Poll::Ready(Ok(()))
    }
}

impl<T: Write + Unpin> tokio::io::AsyncWrite for TrackedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Write::poll_write(self, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Write::poll_write_vectored(self, cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        Write::is_write_vectored(self)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Write::poll_flush(self, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Write::poll_shutdown(self, cx)
    }
}
