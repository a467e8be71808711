//! A request body that can be sent again after a failed attempt.
//!
//! Every attempt gets a [`ReplayBody`] sharing one state: frames already
//! pulled from the user's body are kept (up to a cap) so that a retry can
//! send them again and then continue with the rest of the original body.
//! Attempts never overlap, so the lock is never contended.

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
            return ReplayBody {
                shared: None,
                replayed: 0,
                live: false,
            };
        }
        let size_hint = body.size_hint();
        ReplayBody {
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
        Some(ReplayBody {
            shared: self.shared.clone(),
            replayed: 0,
            live: false,
        })
    }

    /// Whether [`replay`](Self::replay) would succeed.
    pub fn is_replayable(&self) -> bool {
        self.shared
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
        let Some(shared) = &self.shared else {
            return true;
        };
        let shared = lock(shared);
        let replay_done = self.live || self.replayed >= shared.recorded.len();
        replay_done && shared.ended
    }

    fn size_hint(&self) -> SizeHint {
        match &self.shared {
            Some(shared) => lock(shared).size_hint,
            None => SizeHint::with_exact(0),
        }
    }
}

impl<B> std::fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("ReplayBody");
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
