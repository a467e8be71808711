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
//! with nothing of the request written, hyper cannot send it any more. If
//! hyper-util has not moved the request to another connection within
//! [`STRANDED_AFTER`], the attempt ends as [`Landed::Stranded`]. Dropping
//! hyper-util's future then frees the channel, and the request may be sent
//! again under any method (RFC 9112 §9.3.1: not one byte of it was
//! written).

use std::future::Future;
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use http::{Extensions, Request};
use hyper_util::client::legacy::connect::{CaptureConnection, capture_connection};

use crate::info::ConnectionInfo;

/// How long a request may wait on a connection that is gone before it is
/// taken for stranded.
///
/// Not zero: the IO goes a moment before hyper's channel, and a request
/// the channel hands back is moved by hyper-util itself to another
/// connection, which it reports once its checkout or connect is done. A
/// request still on the gone connection a second later is not being
/// moved. On a path whose connects take longer, the guard ends
/// hyper-util's own retry early and sends the request again itself, which
/// is as safe: nothing of it was written.
pub(crate) const STRANDED_AFTER: Duration = Duration::from_secs(1);

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
    // The gone connection the request waits on, and since when.
    let mut gone: Option<(u64, Pin<Box<tokio::time::Sleep>>)> = None;
    let mut seen: Option<ConnectionInfo> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = answer.as_mut().poll(cx) {
            return Poll::Ready(Landed::Answer(output));
        }
        // While the connection seen last is open, hyper-util cannot have
        // moved the request: no need to ask again (an allocation) each poll.
        if let Some(open) = &seen
            && !open.ended_unwritten(cx.waker())
            && !open.is_ended()
        {
            return Poll::Pending;
        }
        let Some(info) = watch.connection() else {
            return Poll::Pending;
        };
        if !info.ended_unwritten(cx.waker()) {
            gone = None;
            seen = Some(info);
            return Poll::Pending;
        }
        let id = info.id();
        if gone.as_ref().is_none_or(|(on, _)| *on != id) {
            gone = Some((id, Box::pin(tokio::time::sleep(STRANDED_AFTER))));
        }
        let Some((_, grace)) = gone.as_mut() else {
            return Poll::Pending;
        };
        if grace.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        tracing::debug!(
            id,
            "the connection ended with the request still in hyper's channel: sending it again"
        );
        Poll::Ready(Landed::Stranded)
    })
    .await
}

#[cfg(test)]
#[path = "stranded_tests.rs"]
mod tests;
