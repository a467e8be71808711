//! The client: request validation, the attempt loop, retries.

mod attempt;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use freshpool_expiry::connection_has;
use http::header::{CONNECTION, HOST};
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response, Uri, Version};
use tower_service::Service;
use tracing::Instrument;

use crate::body::Body;
use crate::builder::{Builder, Config};
use crate::connect::connect;
use crate::error::{BoxError, Error, Kind};
use crate::info::CaptureSender;
use crate::pool::{Checkout, Conn, OriginKey, PoolShared, Retry, Waiting};
use crate::{Connect, RequestBody};

use crate::replay::ReplayBody;
use crate::retry::{Facts, Retries};
use crate::stats::{Event, Stats};
use attempt::{Failure, Landing, Requesting, Start};

/// A pooled HTTP client that never hands a request to a connection the
/// server is closing.
///
/// A drop-in for `hyper_util::client::legacy::Client`: it takes the same
/// connectors (`C` is any `tower::Service<Uri>` whose IO is
/// `hyper::rt::Read + Write + Connection`, and [`Probe`](crate::Probe):
/// the [`Connect`] bound), and cloning it is cheap: clones share one pool.
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Empty};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let client = freshpool::Client::builder().build_http::<Empty<Bytes>>()?;
/// let response = client.get("http://127.0.0.1:8080/".parse()?).await?;
/// let body = response.into_body().collect().await?.to_bytes();
/// println!("{} bytes", body.len());
/// # Ok(())
/// # }
/// ```
pub struct Client<C, B> {
    inner: Arc<Inner<C, B>>,
}

/// What clones of a [`Client`] share: one reference count per request.
struct Inner<C, B> {
    connector: C,
    pool: Arc<PoolShared<B>>,
    config: Arc<Config>,
}

impl Client<(), ()> {
    /// A [`Builder`] with every default.
    pub fn builder() -> Builder {
        Builder::new()
    }
}

impl<C, B> Clone for Client<C, B> {
    fn clone(&self) -> Self {
        Client {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<C, B> fmt::Debug for Client<C, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").finish_non_exhaustive()
    }
}

impl<C, B> Client<C, B> {
    pub(crate) fn from_parts(connector: C, config: Arc<Config>) -> Client<C, B>
    where
        B: http_body::Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        Client {
            inner: Arc::new(Inner {
                connector,
                pool: PoolShared::new(Arc::clone(&config)),
                config,
            }),
        }
    }
}

impl<C, B> Client<C, B>
where
    C: Connect,
    B: RequestBody,
{
    /// Sends a `GET` request to `uri`.
    ///
    /// # Errors
    ///
    /// As [`request`](Client::request).
    pub fn get(&self, uri: Uri) -> ResponseFuture
    where
        B: Default,
    {
        let mut req = Request::new(B::default());
        *req.uri_mut() = uri;
        self.request(req)
    }

    /// Sends a request and returns its response head; the body streams
    /// from the returned [`Body`].
    ///
    /// The URI must be absolute (`http://host[:port]/path`). A failure on a
    /// reused connection is retried on a fresh one only as RFC 9112 §9.3.1
    /// allows (see [`retry`](crate::retry)).
    ///
    /// # Errors
    ///
    /// An [`Error`] naming the cause: an invalid URI or version, a connect
    /// or handshake failure, a checkout timeout, or a request failure with
    /// the rule that refused its retry.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the request; the connection it was
    /// using is closed, never returned to the pool mid-message.
    pub fn request(&self, req: Request<B>) -> ResponseFuture {
        ResponseFuture {
            inner: Box::pin(Requesting::new(self.clone(), req, Conn::send)),
        }
    }

    /// A snapshot of the pool's counters, per origin and in total.
    pub fn stats(&self) -> Stats {
        self.inner.pool.stats()
    }

    /// The request's first attempt, made when its future is first polled
    /// (a request is not sent before it is awaited): launched at once on
    /// an idle connection, or the attempt loop, boxed, for a request that
    /// must wait or connect.
    fn start<S, F>(
        &self,
        req: Request<B>,
        send: S,
        slot: &mut Option<Pending<B>>,
        span: &mut tracing::Span,
    ) -> Start<B, F>
    where
        S: FnOnce(&mut Conn<B>, Request<ReplayBody<B>>) -> F,
    {
        let request = match self.begin(req) {
            Ok(request) => slot.insert(request),
            Err(error) => return Start::Failed(error),
        };
        let host = request.needs_host.then_some(&mut request.host);
        match self.inner.pool.checkout_now(&request.origin, host, None) {
            Ok(Checkout::Reused(conn, idle_for)) => {
                *span = attempt_span(request, true, idle_for);
                match self.launch(request, conn, true, idle_for, send) {
                    Ok(landing) => Start::Launched(landing),
                    Err(error) => Start::Failed(error),
                }
            }
            next => match slot.take() {
                Some(request) => Start::Looping(Box::pin(self.clone().send(request, next))),
                None => unreachable!("inserted above"),
            },
        }
    }

    /// The attempt loop, from a checkout that did not give an idle
    /// connection at once, or for a retry.
    async fn send(
        self,
        mut request: Pending<B>,
        mut next: Result<Checkout<B>, Waiting<B>>,
    ) -> Result<Response<Body>, Error> {
        loop {
            let checkout = match next {
                Ok(checkout) => checkout,
                Err(waiting) => {
                    let waited = self
                        .inner
                        .pool
                        .wait(&request.origin, waiting, request.retry)
                        .await;
                    match waited {
                        Ok(checkout) => checkout,
                        Err(e) => return Err(self.fail(&request, e)),
                    }
                }
            };
            let (conn, reused, idle_for) = match checkout {
                Checkout::Reused(conn, idle) => (conn, true, idle),
                Checkout::Connect(slot, h2_connecting) => {
                    let connector = self.inner.connector.clone();
                    // Boxed: connecting is the rare path, and its future
                    // is large; every request's future would carry it.
                    let connected = Box::pin(connect(
                        connector,
                        &self.inner.pool,
                        &self.inner.config,
                        &request.origin,
                        slot,
                    ))
                    .await;
                    // Requests waiting for this HTTP/2 connection look again.
                    drop(h2_connecting);
                    match connected {
                        Ok(conn) => (conn, false, Duration::ZERO),
                        Err(e) => return Err(self.fail(&request, e)),
                    }
                }
            };
            let span = attempt_span(&request, reused, idle_for);
            let landing = self.launch(&mut request, conn, reused, idle_for, Conn::send)?;
            let (conn, sent, reused_after) = landing.instrument(span.clone()).await;
            let outcome = span.in_scope(|| self.on_sent(&request, conn, sent, reused_after));
            match outcome {
                Ok(response) => return Ok(response),
                Err(failure) => self.after_failure(&mut request, failure, reused, &span)?,
            }
            next = self.retry_checkout(&mut request);
        }
    }

    /// The checkout for a retry (which fills in `Host` if no attempt has).
    fn retry_checkout(&self, request: &mut Pending<B>) -> Result<Checkout<B>, Waiting<B>> {
        let host = (request.needs_host && request.host.is_none()).then_some(&mut request.host);
        self.inner
            .pool
            .checkout_now(&request.origin, host, request.retry)
    }

    /// Checks `req` and sets up its attempts.
    ///
    /// Everything here and in [`prepare`](Self::prepare) and
    /// [`after_failure`](Self::after_failure) is synchronous, so that none
    /// of its temporaries is kept in every request's future.
    fn begin(&self, req: Request<B>) -> Result<Pending<B>, Error> {
        let origin = self.inner.pool.key(req.uri())?;
        let (parts, body) = req.into_parts();
        if !matches!(
            parts.version,
            Version::HTTP_10 | Version::HTTP_11 | Version::HTTP_2
        ) {
            return Err(Error::new(Kind::UnsupportedVersion));
        }
        // Read before `Host` joins them: a request with no headers of its
        // own (most) does not look.
        let closes = !parts.headers.is_empty()
            && parts
                .headers
                .get_all(CONNECTION)
                .iter()
                .any(|v| connection_has(v.as_bytes(), b"close"));
        let config = &self.inner.config;
        Ok(Pending {
            origin,
            // The pool keeps each origin's `Host` value: asked for once.
            host: None,
            needs_host: config.set_host && !parts.headers.contains_key(HOST),
            closes,
            method: parts.method.clone(),
            retries: Retries::new(config.retry, body, config.replay_cap),
            head: Head::Next(parts),
            failed_on: 0,
            retry: None,
        })
    }

    /// Hands the next attempt's request to hyper on `conn`, with `send`
    /// ([`Conn::send`]; a parameter so that the type of hyper's future can
    /// be named, as `F`, by [`Requesting`]).
    fn launch<S, F>(
        &self,
        request: &mut Pending<B>,
        mut conn: Conn<B>,
        reused: bool,
        idle_for: Duration,
        send: S,
    ) -> Result<Landing<B, F>, Error>
    where
        S: FnOnce(&mut Conn<B>, Request<ReplayBody<B>>) -> F,
    {
        let req = self.prepare(request, &conn, reused)?;
        conn.state.begin_attempt();
        let response = send(&mut conn, req);
        Ok(Landing::new(conn, response, reused.then_some(idle_for)))
    }

    /// The request for the next attempt, on `conn`.
    fn prepare(
        &self,
        request: &mut Pending<B>,
        conn: &Conn<B>,
        reused: bool,
    ) -> Result<Request<ReplayBody<B>>, Error> {
        let Head::Next(mut parts) = std::mem::replace(&mut request.head, Head::Nothing) else {
            return Err(self.fail(request, Error::new(Kind::Request)));
        };
        // A request hyper hands back unsent comes back whole; any other
        // retry needs a copy of the head, which only a failure on a reused
        // connection, or a stream an HTTP/2 server refused, can use. Copied
        // before `Host` goes in: a retry puts it back.
        let may_retry = self.inner.config.retry.retries > 0;
        request.head = if may_retry && (reused || conn.is_http2()) {
            Head::Kept(parts.clone())
        } else {
            Head::Uri(parts.uri.clone())
        };
        request.failed_on = conn.id;
        if request.needs_host {
            let Some(value) = request.host.clone() else {
                let error = Error::new(Kind::InvalidUri("host is not a valid header value"));
                return Err(self.fail(request, error));
            };
            parts.headers.insert(HOST, value);
        }
        let Some(body) = request.retries.body() else {
            let error =
                Error::new(Kind::Request).with_refusal(crate::retry::Refusal::BodyNotReplayable);
            return Err(self.fail(request, error));
        };
        if let Some(capture) = parts.extensions.get::<CaptureSender>() {
            capture.set(&conn.info);
        }
        set_uri_form(&mut parts, conn);
        Ok(Request::from_parts(parts, body))
    }

    /// Decides whether a failed attempt goes again: `Ok` sets the request
    /// up for its retry, on a fresh connection.
    fn after_failure(
        &self,
        request: &mut Pending<B>,
        mut failure: Box<Failure>,
        reused: bool,
        span: &tracing::Span,
    ) -> Result<(), Error> {
        // Handed back unsent: the request itself, with its absolute URI
        // again (and without `Host`, which the next attempt sets).
        let keep = match std::mem::replace(&mut request.head, Head::Nothing) {
            Head::Kept(parts) => Some(parts),
            Head::Uri(uri) => failure.returned.take().map(|mut parts| {
                parts.uri = uri;
                if request.needs_host {
                    parts.headers.remove(HOST);
                }
                parts
            }),
            Head::Next(_) | Head::Nothing => None,
        };
        let empty = http::HeaderMap::new();
        let facts = Facts {
            reused,
            returned_unsent: failure.returned_unsent,
            refused: failure.refused,
            bytes_written: failure.bytes_written,
            response_started: failure.response_started,
        };
        let attempts = request.retries.attempt();
        let headers = keep.as_ref().map_or(&empty, |p| &p.headers);
        let decision = request
            .retries
            .after_failure(&request.method, headers, facts);
        match decision {
            // With no head kept, no rule applies (retries are off, or the
            // connection was fresh and the request not handed back).
            Ok(rule) if keep.is_some() => {
                self.inner.pool.count(&request.origin, Event::Retry(rule));
                span.in_scope(|| {
                    tracing::debug!(%rule, error = %failure.error, "retrying on a fresh connection");
                });
                request.head = keep.map_or(Head::Nothing, Head::Next);
                request.retry = Some(Retry {
                    failed: request.failed_on,
                });
                Ok(())
            }
            Ok(_) => {
                self.inner.pool.count(&request.origin, Event::Error);
                Err(failure.into_error(reused, attempts))
            }
            Err(refusal) => {
                span.in_scope(|| {
                    tracing::debug!(%refusal, error = %failure.error, "not retrying");
                });
                self.inner.pool.count(&request.origin, Event::Error);
                Err(failure.into_error(reused, attempts).with_refusal(refusal))
            }
        }
    }

    /// Counts a request that failed, and says on which attempt.
    fn fail(&self, request: &Pending<B>, error: Error) -> Error {
        self.inner.pool.count(&request.origin, Event::Error);
        error.with_attempts(request.retries.attempt())
    }
}

/// The span of one attempt (disabled, and nearly free, without a
/// subscriber that wants it).
fn attempt_span<B: http_body::Body>(
    request: &Pending<B>,
    reused: bool,
    idle_for: Duration,
) -> tracing::Span {
    tracing::debug_span!(
        "request",
        origin = %request.origin,
        reused,
        idle_ms = idle_for.as_millis() as u64,
        attempt = request.retries.attempt(),
    )
}

/// One request on its way through its attempts.
struct Pending<B> {
    origin: OriginKey,
    /// The origin's `Host` value, once the pool gave it.
    host: Option<HeaderValue>,
    needs_host: bool,
    /// The caller asked for `Connection: close`.
    closes: bool,
    method: Method,
    retries: Retries<B>,
    head: Head,
    /// The connection the attempt in flight runs on.
    failed_on: u64,
    /// Set once an attempt failed: the retry goes on a fresh connection.
    retry: Option<Retry>,
}

/// A request's head: the next attempt's, or what the attempt in flight
/// keeps of it for a retry.
enum Head {
    /// The head of the next attempt.
    Next(Parts),
    /// A copy of the head, where a retry could need one.
    Kept(Parts),
    /// Only the URI, for a request hyper hands back unsent (whose URI the
    /// attempt rewrote to origin form).
    Uri(Uri),
    Nothing,
}

/// The request target's form, as hyper-util's Client chooses it (RFC 9112
/// §3.2). HTTP/1 sends `CONNECT` in authority form (`host:port`), plain
/// `http` through a forward proxy in absolute form, and everything else in
/// origin form (`/path?query`), `https` through a proxy too (the connector
/// tunnelled it). HTTP/2 keeps the absolute URI for its pseudo-headers.
fn set_uri_form<B>(parts: &mut Parts, conn: &Conn<B>) {
    if conn.is_http2() {
        parts.version = Version::HTTP_2;
        return;
    }
    if parts.method == Method::CONNECT {
        if let Some(authority) = parts.uri.authority().cloned() {
            let mut target = http::uri::Parts::default();
            target.authority = Some(authority);
            if let Ok(uri) = Uri::from_parts(target) {
                parts.uri = uri;
            }
        }
        return;
    }
    if conn.info.is_proxied() && parts.uri.scheme() == Some(&http::uri::Scheme::HTTP) {
        return;
    }
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    parts.uri = Uri::from(path);
}

/// The future of a response, from [`Client::request`].
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Result<Response<Body>, Error>> + Send>>,
}

impl Future for ResponseFuture {
    type Output = Result<Response<Body>, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<C, B> Service<Request<B>> for Client<C, B>
where
    C: Connect,
    B: RequestBody,
{
    type Response = Response<Body>;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        self.request(req)
    }
}

impl<C, B> Service<Request<B>> for &'_ Client<C, B>
where
    C: Connect,
    B: RequestBody,
{
    type Response = Response<Body>;
    type Error = Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        self.request(req)
    }
}
