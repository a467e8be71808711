//! A request body that can be sent again after a failed attempt.
//!
//! Every attempt gets a [`ReplayBody`] sharing one state: frames already
//! pulled from the user's body are kept (up to a cap) so that a retry can
//! send them again and then continue with the rest of the original body.
//! Attempts never overlap, so the lock is never contended.
//!
//! An attempt that will not be retried (one on a fresh connection: RFC
//! 9112 never retries its failure) needs none of that: a pass-through
//! body ([`ReplayBody::pass_through`], [`ReplayBody::replay_last`]) owns
//! the user's body, records nothing and takes no lock.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};

use crate::error::BoxError;

/// A request body recorded as it is sent, so that a retry can send it again.
///
/// [`Client`](crate::Client) wraps every request body in one; adapters that
/// implement the same retry rules over another client (such as
/// `freshpool-legacy`'s `RetryClient`) use it directly.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Full};
/// use freshpool::ReplayBody;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let original = ReplayBody::new(Full::new(Bytes::from_static(b"hello")), 64 * 1024);
/// let first = original.replay().expect("nothing sent yet");
/// assert_eq!(first.collect().await.unwrap().to_bytes(), "hello");
/// // The first attempt failed: send the same bytes again.
/// let second = original.replay().expect("within the cap");
/// assert_eq!(second.collect().await.unwrap().to_bytes(), "hello");
/// # }
/// ```
pub struct ReplayBody<B> {
    /// `None` for a body that was empty from the start: there is nothing
    /// to record, so nothing is shared or locked.
    shared: Option<Arc<Mutex<Shared<B>>>>,
    /// Index of the next recorded frame this attempt sends.
    replayed: usize,
    /// Whether this attempt has started reading from the inner body.
    live: bool,
    /// A pass-through body: `shared` is `None`, and this owns the rest.
    direct: Option<Box<Direct<B>>>,
}

/// What a pass-through body sends: frames recorded by earlier attempts,
/// then the rest of the user's body, read directly.
struct Direct<B> {
    recorded: std::vec::IntoIter<Recorded>,
    inner: Option<B>,
    size_hint: SizeHint,
}

struct Shared<B> {
    inner: Option<B>,
    /// Frames pulled from `inner` so far, while they fit under `cap`.
    recorded: Vec<Recorded>,
    recorded_len: usize,
    cap: usize,
    /// A frame was pulled that could not be recorded: replay is impossible.
    overflowed: bool,
    /// The inner body reported its end.
    ended: bool,
    /// The inner body's size hint before anything was read.
    size_hint: SizeHint,
}

enum Recorded {
    Data(Bytes),
    Trailers(HeaderMap),
}

impl<B> ReplayBody<B>
where
    B: Body,
{
    /// Wraps `body`, recording up to `cap` bytes of it for replay.
    ///
    /// Keep this value as the original and send only bodies made by
    /// [`replay`](Self::replay): each attempt gets its own.
    pub fn new(body: B, cap: usize) -> ReplayBody<B> {
        if body.is_end_stream() {
            return ReplayBody::empty();
        }
        let size_hint = body.size_hint();
        ReplayBody {
            direct: None,
            shared: Some(Arc::new(Mutex::new(Shared {
                inner: Some(body),
                recorded: Vec::new(),
                recorded_len: 0,
                cap,
                overflowed: false,
                ended: false,
                size_hint,
            }))),
            replayed: 0,
            live: false,
        }
    }

    /// A body for the next attempt: the frames already sent, then the rest
    /// of the original body. `None` if what was already sent can no longer
    /// be reproduced (the body outgrew the cap, or failed).
    pub fn replay(&self) -> Option<ReplayBody<B>> {
        if !self.is_replayable() {
            return None;
        }
        if self.direct.is_some() {
            return None;
        }
        Some(ReplayBody {
            shared: self.shared.clone(),
            replayed: 0,
            live: false,
            direct: None,
        })
    }

    fn empty() -> ReplayBody<B> {
        ReplayBody {
            shared: None,
            replayed: 0,
            live: false,
            direct: None,
        }
    }

    /// Wraps `body` for an attempt that will never be retried: it is sent
    /// as is, nothing is recorded and no lock is taken per frame;
    /// [`replay`](Self::replay) gives `None`.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::{BodyExt, Full};
    /// use freshpool::ReplayBody;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let once = ReplayBody::pass_through(Full::new(Bytes::from_static(b"hello")));
    /// assert!(once.replay().is_none());
    /// assert_eq!(once.collect().await.unwrap().to_bytes(), "hello");
    /// # }
    /// ```
    pub fn pass_through(body: B) -> ReplayBody<B> {
        if body.is_end_stream() {
            return ReplayBody::empty();
        }
        let size_hint = body.size_hint();
        ReplayBody {
            direct: Some(Box::new(Direct {
                recorded: Vec::new().into_iter(),
                inner: Some(body),
                size_hint,
            })),
            ..ReplayBody::empty()
        }
    }

    /// A body for the last attempt, one that will not be retried (on a
    /// fresh connection, whose failure RFC 9112 never retries): the same
    /// bytes as [`replay`](Self::replay), but the rest of the original
    /// body is read directly, with nothing recorded and no lock per frame.
    /// From then on nothing can be replayed: [`is_replayable`] is `false`.
    /// `None` when [`replay`](Self::replay) would give `None`.
    ///
    /// [`is_replayable`]: Self::is_replayable
    pub fn replay_last(&self) -> Option<ReplayBody<B>> {
        if self.direct.is_some() {
            return None;
        }
        let Some(shared) = &self.shared else {
            return Some(ReplayBody::empty());
        };
        let mut shared = lock(shared);
        if shared.overflowed {
            return None;
        }
        // Nothing can be replayed once the rest is read elsewhere.
        shared.overflowed = true;
        let recorded = std::mem::take(&mut shared.recorded);
        let inner = if shared.ended {
            None
        } else {
            shared.inner.take()
        };
        if recorded.is_empty() && inner.is_none() {
            return Some(ReplayBody::empty());
        }
        Some(ReplayBody {
            direct: Some(Box::new(Direct {
                recorded: recorded.into_iter(),
                inner,
                size_hint: shared.size_hint,
            })),
            ..ReplayBody::empty()
        })
    }

    /// Whether [`replay`](Self::replay) would succeed.
    pub fn is_replayable(&self) -> bool {
        self.direct.is_none()
            && self
                .shared
                .as_ref()
                .is_none_or(|shared| !lock(shared).overflowed)
    }
}

fn lock<B>(shared: &Mutex<Shared<B>>) -> MutexGuard<'_, Shared<B>> {
    // A panic while holding this lock can only come from the user's body;
    // the recorded frames are still consistent, so keep going.
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<B> Body for ReplayBody<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(direct) = &mut this.direct {
            return direct.poll_frame(cx);
        }
        let Some(shared) = &this.shared else {
            return Poll::Ready(None);
        };
        let mut shared = lock(shared);
        if !this.live {
            if let Some(frame) = shared.recorded.get(this.replayed) {
                this.replayed += 1;
                return Poll::Ready(Some(Ok(match frame {
                    Recorded::Data(bytes) => Frame::data(bytes.clone()),
                    Recorded::Trailers(trailers) => Frame::trailers(trailers.clone()),
                })));
            }
            this.live = true;
        }
        let shared = &mut *shared;
        if shared.ended {
            return Poll::Ready(None);
        }
        let Some(inner) = shared.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                shared.ended = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                // A broken body cannot be replayed either.
                shared.overflowed = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(mut data) => {
                        let bytes = data.copy_to_bytes(data.remaining());
                        if !shared.overflowed && shared.recorded_len + bytes.len() <= shared.cap {
                            shared.recorded_len += bytes.len();
                            shared.recorded.push(Recorded::Data(bytes.clone()));
                            this.replayed = shared.recorded.len();
                        } else {
                            shared.overflowed = true;
                            shared.recorded = Vec::new();
                        }
                        Frame::data(bytes)
                    }
                    Err(frame) => match frame.into_trailers() {
                        Ok(trailers) => {
                            if !shared.overflowed {
                                shared.recorded.push(Recorded::Trailers(trailers.clone()));
                                this.replayed = shared.recorded.len();
                            }
                            Frame::trailers(trailers)
                        }
                        // A frame kind this version of http-body does not
                        // know: pass it on, but it cannot be replayed.
                        Err(_unknown) => {
                            shared.overflowed = true;
                            return Poll::Ready(None);
                        }
                    },
                };
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if let Some(direct) = &self.direct {
            return direct.recorded.len() == 0
                && direct.inner.as_ref().is_none_or(B::is_end_stream);
        }
        let Some(shared) = &self.shared else {
            return true;
        };
        let shared = lock(shared);
        let replay_done = self.live || self.replayed >= shared.recorded.len();
        replay_done && shared.ended
    }

    fn size_hint(&self) -> SizeHint {
        if let Some(direct) = &self.direct {
            return direct.size_hint;
        }
        match &self.shared {
            Some(shared) => lock(shared).size_hint,
            None => SizeHint::with_exact(0),
        }
    }
}

impl<B> Direct<B>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(frame) = self.recorded.next() {
            return Poll::Ready(Some(Ok(match frame {
                Recorded::Data(bytes) => Frame::data(bytes),
                Recorded::Trailers(trailers) => Frame::trailers(trailers),
            })));
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.inner = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(
                frame.map_data(|mut data| data.copy_to_bytes(data.remaining()))
            ))),
        }
    }
}

impl<B> std::fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("ReplayBody");
        if self.direct.is_some() {
            return f.field("pass_through", &true).finish();
        }
        match &self.shared {
            Some(shared) => {
                let shared = lock(shared);
                f.field("recorded_len", &shared.recorded_len)
                    .field("overflowed", &shared.overflowed)
                    .field("ended", &shared.ended)
            }
            None => f.field("empty", &true),
        }
        .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty, Full, StreamBody};

    async fn collect<B>(body: ReplayBody<B>) -> Vec<u8>
    where
        B: Body + Unpin,
        B::Error: Into<BoxError>,
    {
        body.collect().await.expect("body").to_bytes().to_vec()
    }

    #[tokio::test]
    async fn full_and_empty_bodies_replay_exactly() {
        let first = ReplayBody::new(Full::new(Bytes::from_static(b"hello")), 64 * 1024);
        let second = first.replay().expect("replayable");
        assert_eq!(collect(first).await, b"hello");
        assert_eq!(collect(second).await, b"hello");

        let empty = ReplayBody::new(Empty::<Bytes>::new(), 0);
        assert!(empty.is_end_stream());
        assert_eq!(collect(empty.replay().expect("replayable")).await, b"");
    }

    #[tokio::test]
    async fn a_partly_sent_stream_replays_then_continues() {
        let chunks = (0..4).map(|i| {
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![b'a' + i; 3])))
        });
        let mut first = ReplayBody::new(StreamBody::new(futures_util::stream::iter(chunks)), 1024);
        // The first attempt sends two frames and fails.
        let _ = first.frame().await;
        let _ = first.frame().await;
        let second = first.replay().expect("replayable");
        drop(first);
        assert_eq!(collect(second).await, b"aaabbbcccddd");
    }

    #[tokio::test]
    async fn the_last_attempt_sends_what_was_sent_then_the_rest_directly() {
        let chunks = (0..4).map(|i| {
            Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![b'a' + i; 3])))
        });
        let original = ReplayBody::new(StreamBody::new(futures_util::stream::iter(chunks)), 1024);
        let mut first = original.replay().expect("nothing sent yet");
        let _ = first.frame().await;
        drop(first);
        let last = original.replay_last().expect("within the cap");
        assert!(!original.is_replayable());
        assert!(original.replay().is_none() && original.replay_last().is_none());
        assert!(last.replay().is_none());
        assert_eq!(collect(last).await, b"aaabbbcccddd");

        let once = ReplayBody::pass_through(Full::new(Bytes::from_static(b"hi")));
        assert!(!once.is_replayable());
        assert_eq!(once.size_hint().exact(), Some(2));
        assert_eq!(collect(once).await, b"hi");
        let empty = ReplayBody::new(Empty::<Bytes>::new(), 0);
        assert!(empty.replay_last().expect("empty").is_end_stream());
    }

    #[tokio::test]
    async fn a_stream_past_the_cap_is_not_replayable() {
        let chunks = (0..4)
            .map(|_| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(vec![0u8; 10]))));
        let first = ReplayBody::new(StreamBody::new(futures_util::stream::iter(chunks)), 25);
        let replay = first.replay().expect("nothing sent yet");
        assert_eq!(collect(first).await.len(), 40);
        assert!(!replay.is_replayable());
        assert!(replay.replay().is_none());
    }
}
