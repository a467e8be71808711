//! [`RetryClient`](crate::RetryClient)'s guard against a request that
//! would wait for ever.
//!
//! hyper's HTTP/1 connection task ends by dropping its end of the request
//! channel, which hands every request in it back unsent (hyper-util then
//! retries it). A request pushed at that very instant, by a sender that
//! found the connection ready just before, lands after that drain and stays
//! in the channel until its last sender is dropped. That sender is held by
//! hyper-util's checked-out connection, inside the future waiting for the
//! answer: neither is ever dropped, and the request never ends. Plain
//! hyper-util has the same race at every close of a pooled connection.
//!
//! The guard asks hyper-util which connection it gave the request
//! (`capture_connection`) and watches that connection: once its IO is gone
//! with nothing of the request written, hyper cannot send it any more, and
//! the attempt ends as [`Landed::Stranded`]. Dropping hyper-util's future
//! then frees the channel, and the request may be sent again under any
//! method (RFC 9112 §9.3.1: not one byte of it was written).

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use http::{Extensions, Request};
use hyper_util::client::legacy::connect::{CaptureConnection, capture_connection};

use crate::info::ConnectionInfo;

/// The connection of one attempt, as hyper-util reports it.
pub(crate) struct Watch {
    source: Source,
}

enum Source {
    /// The caller captures the connection: this attempt is not guarded.
    None,
    Capture(CaptureConnection),
    /// A connection given by a test.
    #[cfg(test)]
    Fixed(ConnectionInfo),
}

impl Watch {
    /// Asks hyper-util to report the connection it gives `req`. A request
    /// carries one such report: if the caller asked for it already, the
    /// caller's is kept and this attempt is not guarded.
    pub(crate) fn insert<B>(req: &mut Request<B>) -> Watch {
        let before = req.extensions().len();
        // Empty for nearly every request, so the copy costs nothing.
        let original = req.extensions().clone();
        let capture = capture_connection(req);
        if req.extensions().len() == before {
            // It replaced the caller's: give theirs back.
            *req.extensions_mut() = original;
            return Watch {
                source: Source::None,
            };
        }
        Watch {
            source: Source::Capture(capture),
        }
    }

    #[cfg(test)]
    pub(crate) fn fixed(info: ConnectionInfo) -> Watch {
        Watch {
            source: Source::Fixed(info),
        }
    }

    /// The adapter's handle to the connection hyper-util gave the request
    /// last (a retry of hyper-util's own reports its new one).
    fn connection(&self) -> Option<ConnectionInfo> {
        let capture = match &self.source {
            Source::None => return None,
            Source::Capture(capture) => capture,
            #[cfg(test)]
            Source::Fixed(info) => return Some(info.clone()),
        };
        let metadata = capture.connection_metadata();
        let mut extras = Extensions::new();
        metadata.as_ref()?.get_extras(&mut extras);
        extras.remove::<ConnectionInfo>()
    }
}

/// How an attempt ended.
pub(crate) enum Landed<T> {
    /// hyper-util answered.
    Answer(T),
    /// The connection ended while hyper held the request, unsent.
    Stranded,
}

/// Awaits `answer`, unless the connection the request was given ends with
/// nothing of it written first.
///
/// hyper-util's whole request path (its checkout, its own retries, the
/// send) runs inside `answer`'s poll, on this task: when the poll returns
/// pending and the connection reported last is gone, hyper-util has not
/// moved the request to another connection.
pub(crate) async fn guarded<F: Future>(answer: F, watch: Watch) -> Landed<F::Output> {
    let mut answer = pin!(answer);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = answer.as_mut().poll(cx) {
            return Poll::Ready(Landed::Answer(output));
        }
        match watch.connection() {
            Some(info) if info.ended_unwritten(cx.waker()) => {
                tracing::debug!(
                    id = info.id(),
                    "the connection ended with the request still in hyper's channel: sending it again"
                );
                Poll::Ready(Landed::Stranded)
            }
            _ => Poll::Pending,
        }
    })
    .await
}

#[cfg(test)]
#[path = "stranded_tests.rs"]
mod tests;
