//! [`RetryClient`]: the retry rules of docs/design.md §7 over hyper-util's legacy
//! `Client`, using the facts the adapter's connections record.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use freshpool::ReplayBody;
use freshpool::retry::{Facts, Retries, RetryPolicy};
use http::{Extensions, Request, Response};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::Connect;
use hyper_util::client::legacy::{Client, Error as LegacyError};
use tower_service::Service;

use crate::Connector;
use crate::error::{Error, NotRetried};
use crate::info::ConnectionInfo;
use crate::stranded::{Landed, Watch, guarded};

type BoxError = Box<dyn StdError + Send + Sync>;

/// How much of a request body is kept for a retry by default: 64 KiB.
pub const DEFAULT_REPLAY_CAP: usize = 64 * 1024;

/// hyper-util's legacy `Client` over a [`Connector`], plus the retries
/// RFC 9112 §9.3.1 allows.
///
/// The connector alone keeps requests away from connections the server is
/// closing; what remains is a server that closes for a reason nobody could
/// foresee, or before its idle timeout was learned. When such a request
/// fails on a *reused* connection before any byte of a response arrived,
/// `RetryClient` sends it again when that is provably safe (the same rules
/// as [`freshpool::Client`], see [`freshpool::retry`]):
///
/// - not one byte of the request reached the socket (any method);
/// - the method is idempotent (`GET`, `HEAD`, `OPTIONS`, `TRACE`, `PUT`,
///   `DELETE`);
/// - the request carries an `Idempotency-Key` header.
///
/// It knows what reached the socket because the connection's
/// [`TrackedIo`](crate::TrackedIo) counted it. Requests hyper handed back
/// unsent are already retried by hyper-util itself. The body is replayed
/// from a buffer of at most [`DEFAULT_REPLAY_CAP`] bytes (see
/// [`with_replay_cap`](Self::with_replay_cap)); a longer streaming body is
/// not retried. A retry goes through hyper-util's pool like any request.
///
/// It also ends a wait plain hyper-util cannot: a request handed to a
/// connection at the very instant the connection's task ends can be left
/// in hyper's channel, answered never. `RetryClient` asks hyper-util which
/// connection each request was given (with `capture_connection`) and, once
/// that connection is gone with nothing of the request written, sends the
/// request again ([`Error::is_stranded`] if the rules forbid it). A request
/// that carries a `capture_connection` of the caller's keeps it, and is
/// not guarded.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use freshpool_legacy::{Connector, RetryClient};
/// use freshpool_origin::Origin;
/// use http_body_util::{BodyExt, Full};
/// use hyper_util::client::legacy::{Client, connect::HttpConnector};
/// use hyper_util::rt::TokioExecutor;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let origin = Origin::builder().idle_timeout(Duration::from_secs(5)).start().await?;
///
/// let client = RetryClient::new(
///     Client::builder(TokioExecutor::new()).build(Connector::new(HttpConnector::new())),
/// );
/// let order = http::Request::post(format!("{}/orders", origin.base_url()))
///     .header("idempotency-key", "order-42")
///     .header("x-request-id", "order-42")
///     .body(Full::new(Bytes::from_static(b"{\"qty\": 1}")))?;
/// let response = client.request(order).await?;
/// assert_eq!(response.status(), 200);
/// response.into_body().collect().await?;
/// assert_eq!(origin.processed("order-42"), 1);
/// # origin.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct RetryClient<C, B> {
    client: Client<Connector<C>, ReplayBody<B>>,
    policy: RetryPolicy,
    replay_cap: usize,
}

impl<C, B> RetryClient<C, B> {
    /// Wraps `client`, with the default [`RetryPolicy`] (up to 2 retries,
    /// `Idempotency-Key` honoured) and replay buffer
    /// ([`DEFAULT_REPLAY_CAP`]).
    ///
    /// Build the client as usual; its body type is the request body
    /// wrapped in a [`ReplayBody`], which type inference fills in:
    /// `RetryClient::new(Client::builder(exec).build(connector))`.
    pub fn new(client: Client<Connector<C>, ReplayBody<B>>) -> RetryClient<C, B> {
        RetryClient {
            client,
            policy: RetryPolicy::default(),
            replay_cap: DEFAULT_REPLAY_CAP,
        }
    }

    /// Sets the retry rules. Default: [`RetryPolicy::default`].
    #[must_use]
    pub fn with_policy(mut self, policy: RetryPolicy) -> RetryClient<C, B> {
        self.policy = policy;
        self
    }

    /// Sets how many bytes of a streaming request body are kept so that it
    /// can be sent again. Default: [`DEFAULT_REPLAY_CAP`] (64 KiB).
    #[must_use]
    pub fn with_replay_cap(mut self, cap: usize) -> RetryClient<C, B> {
        self.replay_cap = cap;
        self
    }

    /// The retry rules in force.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The wrapped hyper-util client.
    pub fn client(&self) -> &Client<Connector<C>, ReplayBody<B>> {
        &self.client
    }
}

impl<C, B> RetryClient<C, B>
where
    Connector<C>: Connect + Clone + Send + Sync + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    /// Sends a request, retrying it as the [`RetryPolicy`] allows, and
    /// returns the response head; the body streams from it.
    ///
    /// # Errors
    ///
    /// An [`Error`] wrapping hyper-util's error of the last attempt and
    /// saying why the request was not sent again.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the request, as with hyper-util.
    pub fn request(&self, req: Request<B>) -> ResponseFuture {
        let client = self.client.clone();
        let policy = self.policy;
        let cap = self.replay_cap;
        ResponseFuture {
            inner: Box::pin(send(client, policy, cap, req)),
        }
    }
}

async fn send<C, B>(
    client: Client<Connector<C>, ReplayBody<B>>,
    policy: RetryPolicy,
    cap: usize,
    req: Request<B>,
) -> Result<Response<Incoming>, Error>
where
    Connector<C>: Connect + Clone + Send + Sync + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let mut retries = Retries::new(policy, body, cap);
    loop {
        let attempts = retries.attempt();
        let Some(body) = retries.body() else {
            // A fresh body always replays, and `decide` allows a retry only
            // if it still can; this is a guard, not an expected path.
            return Err(Error::unreplayable(attempts));
        };
        let mut req = Request::from_parts(parts.clone(), body);
        let watch = Watch::insert(&mut req);
        let error = match guarded(client.request(req), watch).await {
            Landed::Answer(Ok(response)) => return Ok(response),
            Landed::Answer(Err(error)) => error,
            Landed::Stranded => {
                // Nothing of it reached the server (see `stranded`).
                let unsent = Facts {
                    reused: true,
                    returned_unsent: true,
                    refused: false,
                    bytes_written: 0,
                    response_started: false,
                };
                match retries.after_failure(&parts.method, &parts.headers, unsent) {
                    Ok(rule) => {
                        tracing::debug!(%rule, attempt = attempts, "retrying a stranded request");
                        continue;
                    }
                    Err(refusal) => return Err(Error::stranded(refusal, attempts)),
                }
            }
        };
        let decision = match connection_of(&error).and_then(|info| info.facts()) {
            _ if error.is_connect() => Err(NotRetried::Connect),
            None => Err(NotRetried::Unknown),
            Some(facts) => retries
                .after_failure(
                    &parts.method,
                    &parts.headers,
                    Facts {
                        reused: facts.reused,
                        // hyper-util retries what hyper hands back unsent on
                        // a reused connection; on a fresh one it is not.
                        returned_unsent: false,
                        // An HTTP/2 refusal: HTTP/2 connections are not
                        // followed.
                        refused: false,
                        bytes_written: facts.bytes_written,
                        response_started: facts.response_started,
                    },
                )
                .map_err(NotRetried::Refused),
        };
        match decision {
            Ok(rule) => {
                tracing::debug!(%rule, attempt = attempts, %error, "retrying the request");
            }
            Err(why) => {
                tracing::debug!(?why, attempt = attempts, %error, "not retrying the request");
                return Err(Error::new(error, why, attempts));
            }
        }
    }
}

/// The connection a failed request was sent on, from the extra
/// [`Connector`] attached to it.
fn connection_of(error: &LegacyError) -> Option<ConnectionInfo> {
    let connected = error.connect_info()?;
    let mut extensions = Extensions::new();
    connected.get_extras(&mut extensions);
    extensions.remove::<ConnectionInfo>()
}

impl<C: Clone, B> Clone for RetryClient<C, B> {
    fn clone(&self) -> Self {
        RetryClient {
            client: self.client.clone(),
            policy: self.policy,
            replay_cap: self.replay_cap,
        }
    }
}

impl<C, B> fmt::Debug for RetryClient<C, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryClient")
            .field("policy", &self.policy)
            .field("replay_cap", &self.replay_cap)
            .finish_non_exhaustive()
    }
}

/// The future of a response, from [`RetryClient::request`].
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<Incoming>, Error>> + Send>>,
}

impl Future for ResponseFuture {
    type Output = Result<Response<Incoming>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<C, B> Service<Request<B>> for RetryClient<C, B>
where
    Connector<C>: Connect + Clone + Send + Sync + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<Incoming>;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        self.request(req)
    }
}
