//! One attempt of a request: handed to hyper, then its response head (or
//! its failure) turned into what the client returns.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use freshpool_expiry::{Evidence, response_reuse};
use http::request::Parts;
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::client::conn::TrySendError;

use super::{Client, Pending};
use crate::body::{Body, Checkin, Holding, Returning};
use crate::error::{Error, Kind};
use crate::io::ConnState;
use crate::pool::{Conn, Learned};
use crate::replay::ReplayBody;
use crate::{Connect, RequestBody};

/// What hyper's future for one attempt gives.
pub(super) type Sent<B> = Result<Response<Incoming>, TrySendError<Request<ReplayBody<B>>>>;

/// The future returned by a boxed attempt loop.
type Boxed = Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send>>;

pin_project_lite::pin_project! {
    /// An attempt handed to hyper, until hyper answers: its connection,
    /// the future of its response, and how long the connection had been
    /// idle, if it was reused.
    ///
    /// It also ends a wait that nothing else would. hyper's HTTP/1
    /// connection task ends by dropping its end of the request channel,
    /// which hands every request in the channel back unsent. A request
    /// pushed at that very instant, by a sender that found the connection
    /// ready just before, lands after that drain and stays in the channel
    /// until the channel's last sender is dropped: the sender this attempt
    /// holds, while it waits for the answer. So once the connection's task
    /// has ended and hyper has not answered, the attempt drops its
    /// connection (the sender with it), and hyper hands the request back
    /// unsent, to be retried like any request hyper never sent.
    pub(super) struct Landing<B, F> {
        #[pin]
        response: F,
        conn: Option<Conn<B>>,
        // The state of a connection the attempt let go (see above).
        released: Option<Arc<ConnState>>,
        reused_after: Option<Duration>,
    }
}

impl<B, F> Landing<B, F> {
    pub(super) fn new(conn: Conn<B>, response: F, reused_after: Option<Duration>) -> Self {
        Landing {
            response,
            conn: Some(conn),
            released: None,
            reused_after,
        }
    }
}

/// The connection of an attempt hyper answered.
pub(super) enum Landed<B> {
    /// As it was handed the request.
    Conn(Conn<B>),
    /// Let go while hyper held the request (see [`Landing`]): only its
    /// state is left.
    Released(Arc<ConnState>),
}

impl<B> Landed<B> {
    fn is_http2(&self) -> bool {
        matches!(self, Landed::Conn(conn) if conn.is_http2())
    }

    fn state(&self) -> &ConnState {
        match self {
            Landed::Conn(conn) => &conn.state,
            Landed::Released(state) => state,
        }
    }
}

impl<B, F> Future for Landing<B, F>
where
    F: Future<Output = Sent<B>>,
{
    type Output = (Landed<B>, Sent<B>, Option<Duration>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            if let Poll::Ready(sent) = this.response.as_mut().poll(cx) {
                let landed = match (this.conn.take(), this.released.take()) {
                    (Some(conn), _) => Landed::Conn(conn),
                    (None, Some(state)) => Landed::Released(state),
                    // hyper's future would have panicked first.
                    (None, None) => unreachable!("Landing polled after completion"),
                };
                return Poll::Ready((landed, sent, *this.reused_after));
            }
            let stranded = this
                .conn
                .as_ref()
                .is_some_and(|conn| !conn.is_http2() && conn.state.poll_task_ended(cx));
            if !stranded {
                return Poll::Pending;
            }
            if let Some(conn) = this.conn.take() {
                tracing::debug!(
                    id = conn.id,
                    "the connection ended with the request still in hyper's channel: let go"
                );
                *this.released = Some(Arc::clone(&conn.state));
            }
            // Dropping the connection dropped the channel's last sender, and
            // with it the request: hyper's answer is ready now.
        }
    }
}

/// How [`Client::start`] left a request (its [`Pending`] state, if it
/// has one, is in the slot `start` was given).
pub(super) enum Start<B, F> {
    /// Launched on an idle connection.
    Launched(Landing<B, F>),
    /// In the attempt loop (waiting, or connecting).
    Looping(Boxed),
    Failed(Error),
}

pin_project_lite::pin_project! {
    #[project = StageProj]
    enum Stage<B, F> {
        /// Not polled yet.
        Unsent { req: Option<Request<B>> },
        /// The first attempt, on an idle connection.
        Landing { #[pin] landing: Landing<B, F> },
        /// The attempt loop.
        Looping { looping: Boxed },
        Done,
    }
}

pin_project_lite::pin_project! {
    /// A request, from [`Client::request`] to its response.
    ///
    /// A struct, not an `async fn`: every request's future is one
    /// allocation of under a kilobyte, moved once, and the attempt loop's
    /// states (connecting, waiting, retrying) are boxed only for a request
    /// that needs them. `S` is [`Conn::send`], whose return type is hyper's
    /// future, `F`.
    pub(super) struct Requesting<C, B, S, F> {
        #[pin]
        stage: Stage<B, F>,
        client: Client<C, B>,
        send: Option<S>,
        request: Option<Pending<B>>,
        span: tracing::Span,
    }
}

impl<C, B, S, F> Requesting<C, B, S, F>
where
    S: FnOnce(&mut Conn<B>, Request<ReplayBody<B>>) -> F,
{
    pub(super) fn new(client: Client<C, B>, req: Request<B>, send: S) -> Self {
        Requesting {
            stage: Stage::Unsent { req: Some(req) },
            client,
            send: Some(send),
            request: None,
            span: tracing::Span::none(),
        }
    }
}

impl<C, B, S, F> Future for Requesting<C, B, S, F>
where
    C: Connect,
    B: RequestBody,
    S: FnOnce(&mut Conn<B>, Request<ReplayBody<B>>) -> F,
    F: Future<Output = Sent<B>>,
{
    type Output = Result<Response<Body>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.stage.as_mut().project() {
                StageProj::Unsent { req } => {
                    let (Some(req), Some(send)) = (req.take(), this.send.take()) else {
                        unreachable!("a request is started once")
                    };
                    match this.client.start(req, send, this.request, this.span) {
                        Start::Launched(landing) => this.stage.set(Stage::Landing { landing }),
                        Start::Looping(looping) => this.stage.set(Stage::Looping { looping }),
                        Start::Failed(error) => {
                            this.stage.set(Stage::Done);
                            return Poll::Ready(Err(error));
                        }
                    }
                }
                StageProj::Landing { landing } => {
                    // Entering a span costs even when nobody listens.
                    let entered = (!this.span.is_disabled()).then(|| this.span.enter());
                    let (conn, sent, reused_after) = ready!(landing.poll(cx));
                    let Some(request) = this.request.as_mut() else {
                        unreachable!("a launched request has its attempts")
                    };
                    let failure = match this.client.on_sent(request, conn, sent, reused_after) {
                        Ok(response) => {
                            drop(entered);
                            this.stage.set(Stage::Done);
                            return Poll::Ready(Ok(response));
                        }
                        Err(failure) => failure,
                    };
                    let decided = this.client.after_failure(request, failure, true, this.span);
                    drop(entered);
                    if let Err(error) = decided {
                        this.stage.set(Stage::Done);
                        return Poll::Ready(Err(error));
                    }
                    let next = this.client.retry_checkout(request);
                    let Some(request) = this.request.take() else {
                        unreachable!("borrowed above")
                    };
                    let looping = Box::pin(this.client.clone().send(request, next));
                    this.stage.set(Stage::Looping { looping });
                }
                StageProj::Looping { looping } => return looping.as_mut().poll(cx),
                StageProj::Done => panic!("ResponseFuture polled after completion"),
            }
        }
    }
}

impl<C, B> Client<C, B>
where
    C: Connect,
    B: RequestBody,
{
    /// What hyper's answer to an attempt on `conn` makes: the response, its
    /// body set to give the connection back, or what went wrong.
    pub(super) fn on_sent(
        &self,
        request: &Pending<B>,
        landed: Landed<B>,
        sent: Sent<B>,
        reused_after: Option<Duration>,
    ) -> Result<Response<Body>, Box<Failure>> {
        let origin = &request.origin;
        let method = &request.method;
        let request_closes = request.closes;
        let response = match sent {
            Ok(response) => response,
            Err(mut error) => {
                let returned = error.take_message().map(|req| req.into_parts().0);
                let returned_unsent = returned.is_some();
                let error = error.into_error();
                // An HTTP/2 connection carries other streams: its byte
                // counts say nothing about this request, and no response
                // head arrived or `send` would have succeeded.
                let (bytes_written, response_started, refused) = if landed.is_http2() {
                    (u64::MAX, false, refused_unprocessed(&error))
                } else {
                    (
                        landed.state().bytes_written(),
                        landed.state().bytes_read() > 0,
                        false,
                    )
                };
                // Learned only from a close the socket itself reported (an
                // EOF, a reset, a broken pipe): never from the caller's own
                // body error, which fails the request the same way.
                if let (Some(idle_for), false, false, Some((_, kind))) = (
                    reused_after,
                    response_started,
                    landed.is_http2(),
                    landed.state().closed(),
                ) {
                    self.inner
                        .pool
                        .observe(origin, Evidence::Crossed { idle_for, kind });
                }
                return Err(Box::new(Failure {
                    returned,
                    returned_unsent,
                    refused,
                    bytes_written,
                    response_started,
                    error,
                }));
            }
        };
        let (mut parts, incoming) = response.into_parts();
        let Landed::Conn(mut conn) = landed else {
            // An answer after the attempt let its connection go (hyper had
            // taken the request after all): the connection is gone, so
            // nothing is checked in.
            return Ok(Response::from_parts(parts, Body::new(incoming, None)));
        };
        conn.info.get_extras(&mut parts.extensions);
        if conn.is_http2() {
            // The handle counts as an open stream until the body ends.
            let stream: Box<dyn Checkin> = Box::new(Holding(conn));
            return Ok(Response::from_parts(
                parts,
                Body::new(incoming, Some(stream)),
            ));
        }

        let status = parts.status;
        let upgraded = status == StatusCode::SWITCHING_PROTOCOLS
            || (method == Method::CONNECT && status.is_success());
        let reuse = response_reuse(
            parts.version == Version::HTTP_10,
            parts
                .headers
                .iter()
                .map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes())),
        );
        let mut learned = Learned {
            hint: None,
            // A response came on a connection idle this long.
            survived: reused_after,
        };
        if let Some(hint) = reuse.keep_alive {
            if hint.timeout.is_some() {
                learned.hint = Some(hint);
            }
            if let Some(max) = hint.max {
                conn.remaining = Some(conn.remaining.map_or(max, |r| r.min(max)));
            }
        }
        let checkin: Option<Box<dyn Checkin>> = if reuse.reusable && !upgraded && !request_closes {
            Some(Box::new(Returning {
                pool: Arc::clone(&self.inner.pool),
                origin: origin.clone(),
                conn,
                learned,
            }))
        } else {
            tracing::debug!(%status, "connection not reusable after this response");
            // No check-in to carry what it taught.
            if let Some(hint) = learned.hint {
                self.inner.pool.observe(origin, Evidence::KeepAlive(hint));
            }
            if let Some(idle_for) = learned.survived {
                self.inner
                    .pool
                    .observe(origin, Evidence::Survived(idle_for));
            }
            None
        };
        Ok(Response::from_parts(parts, Body::new(incoming, checkin)))
    }
}

/// What went wrong in one attempt, and what the client knows about it.
pub(super) struct Failure {
    /// The head of a request hyper handed back unsent.
    pub(super) returned: Option<Parts>,
    pub(super) returned_unsent: bool,
    pub(super) refused: bool,
    pub(super) bytes_written: u64,
    pub(super) response_started: bool,
    pub(super) error: hyper::Error,
}

impl Failure {
    pub(super) fn into_error(self, reused: bool, attempts: u32) -> Error {
        Error::new(Kind::Request)
            .with(self.error)
            .with_attempts(attempts)
            .with_reused(reused)
    }
}

/// Whether an HTTP/2 error proves the server did not process the stream:
/// `REFUSED_STREAM`, or a `GOAWAY` that excluded it (RFC 9113 §8.7).
fn refused_unprocessed(error: &hyper::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(h2) = e.downcast_ref::<h2::Error>() {
            return h2.is_remote()
                && (h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM));
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
#[path = "attempt_tests.rs"]
mod tests;
