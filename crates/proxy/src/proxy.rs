//! The forwarding service.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TE, UPGRADE};
use http::uri::PathAndQuery;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tower_service::Service;

use crate::body::{RequestBody, ResponseBody, Source};
use crate::builder::{Builder, Config};
use crate::failure::Failure;
use crate::headers::{add_forwarded, append_via, strip_hop_by_hop};
use crate::stats::{Counters, ProxyStats};
use crate::tunnel;
use crate::upstream::Upstream;

/// The address of the client a request came from, as a request extension.
///
/// The serve loop that accepted the connection knows the peer's address;
/// it inserts this extension into every request before calling the
/// [`Proxy`] ([`serve`](crate::serve) does). The proxy reads it for
/// `X-Forwarded-For`; a request without it gets no `X-Forwarded-For`
/// entry of its own.
///
/// ```
/// # use std::net::SocketAddr;
/// # fn tag(req: &mut http::Request<()>, peer: SocketAddr) {
/// req.extensions_mut().insert(freshpool_proxy::ClientAddr(peer));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// A request extension: the request came to this proxy over TLS, so
/// `X-Forwarded-Proto` is `https` whatever
/// [`Builder::forwarded_proto`] says.
///
/// The TLS serve loop (`serve_tls`, with the `rustls` feature) inserts it
/// into every request; a server of your own that terminates TLS can too.
///
/// ```
/// # fn tag(req: &mut http::Request<()>) {
/// req.extensions_mut().insert(freshpool_proxy::ClientTls);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientTls;

/// The `X-Forwarded-Proto` of a request that carries [`ClientTls`].
static HTTPS: HeaderValue = HeaderValue::from_static("https");

/// A reverse proxy: a tower [`Service`] that forwards each request to one
/// upstream with the client `Cl`, as RFC 9110 asks of an intermediary.
///
/// - Hop-by-hop fields (§7.6.1: `Connection` and every field it names,
///   `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`, `Proxy-*`) are
///   dropped both ways; `Via` is added both ways; `X-Forwarded-For`,
///   `-Proto` and `-Host` are added upstream ([configurable]); `Host` is
///   rewritten to the upstream's authority or preserved.
/// - Bodies stream both ways, frame by frame, with hyper's backpressure:
///   nothing is buffered whole. Size limits and an upstream timeout apply.
/// - When the upstream fails, the client gets a `502` (or `504` after the
///   timeout) whose body and RFC 9209 `Proxy-Status` name the cause.
/// - The proxy never retries: the client's own rules do. With
///   [`freshpool::Client`], that is RFC 9112 §9.3.1, and an
///   `Idempotency-Key` from the client is passed on for it.
/// - HTTP/1.1 upgrades (WebSocket) pass through; `CONNECT` is refused
///   unless [allowed](Builder::allow_connect).
///
/// Cloning is cheap: clones share the client and the counters.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Empty};
/// use hyper_util::client::legacy::{Client, connect::HttpConnector};
/// use hyper_util::rt::TokioExecutor;
/// use freshpool_proxy::{Proxy, RequestBody};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// // An upstream to forward to (any HTTP server; here the test origin).
/// let origin = freshpool_origin::Origin::builder().start().await?;
///
/// let upstream = freshpool::Client::builder().build_http::<RequestBody>()?;
/// let proxy = Proxy::builder(origin.base_url().parse()?).build(upstream)?;
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let addr = listener.local_addr()?;
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let serving = tokio::spawn(freshpool_proxy::serve(listener, proxy.clone(), async {
///     let _ = stopped.await;
/// }));
///
/// let client = Client::builder(TokioExecutor::new()).build::<_, Empty<Bytes>>(HttpConnector::new());
/// let response = client.get(format!("http://{addr}/hello").parse()?).await?;
/// assert_eq!(response.status(), 200);
/// assert_eq!(response.headers()["via"], "1.1 freshpool-proxy");
/// response.into_body().collect().await?;
/// assert_eq!(proxy.stats().requests, 1);
///
/// let _ = stop.send(());
/// serving.await??;
/// origin.shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// [configurable]: Builder::forwarded_headers
pub struct Proxy<Cl> {
    shared: Arc<Shared<Cl>>,
}

struct Shared<Cl> {
    client: Cl,
    config: Arc<Config>,
    counters: Counters,
}

impl<Cl> Clone for Proxy<Cl> {
    fn clone(&self) -> Self {
        Proxy {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<Cl> fmt::Debug for Proxy<Cl> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("upstream", &self.shared.config.upstream_name)
            .finish_non_exhaustive()
    }
}

impl Proxy<()> {
    /// A [`Builder`] for a proxy to `upstream` (`http://host[:port][/prefix]`;
    /// a prefix is put before every request's path).
    pub fn builder(upstream: Uri) -> Builder {
        Builder::new(upstream)
    }
}

/// The future of a [`Proxy`]'s response.
pub type ResponseFuture<B> =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody<B>>, Infallible>> + Send>>;

impl<Cl: Upstream> Proxy<Cl> {
    pub(crate) fn from_parts(client: Cl, config: Arc<Config>) -> Proxy<Cl> {
        Proxy {
            shared: Arc::new(Shared {
                client,
                config,
                counters: Counters::default(),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The client this proxy forwards with.
    pub fn client(&self) -> &Cl {
        &self.shared.client
    }

    /// The proxy's counters and, when the client keeps them, the upstream
    /// pool's (per upstream origin). Eventually consistent.
    pub fn stats(&self) -> ProxyStats {
        self.shared
            .counters
            .snapshot(self.shared.client.pool_stats())
    }

    /// Forwards one request and resolves to the response for the client;
    /// every failure is a response (`4xx`/`5xx`), never an error.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future abandons the upstream request (its connection
    /// is closed, not reused).
    pub fn forward(&self, req: Request<Incoming>) -> ResponseFuture<Cl::Body> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(shared.forward(req.map(Source::from)).await) })
    }

    /// As [`forward`](Proxy::forward), for a request whose body is not
    /// hyper's [`Incoming`] (an axum `Body`, a request built in code): the
    /// body is boxed, then streamed the same way.
    ///
    /// In axum, for example:
    /// `Router::new().fallback(move |req| proxy.forward_body(req))`.
    pub fn forward_body<B>(&self, req: Request<B>) -> ResponseFuture<Cl::Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<crate::body::BoxError>,
    {
        let shared = Arc::clone(&self.shared);
        let req = req.map(|body| Source::Boxed(body.map_err(Into::into).boxed_unsync()));
        Box::pin(async move { Ok(shared.forward(req).await) })
    }
}

impl<Cl: Upstream> Shared<Cl> {
    fn fail(&self, failure: &Failure) -> Response<ResponseBody<Cl::Body>> {
        self.counters.failure(failure);
        failure.response(&self.config.upstream_name, self.config.pseudonym.as_deref())
    }

    async fn forward(&self, mut req: Request<Source>) -> Response<ResponseBody<Cl::Body>> {
        let config = &*self.config;
        self.counters.request();
        if req.method() == Method::CONNECT {
            if !config.connect {
                return self.fail(&Failure::ConnectRefused(
                    "CONNECT is not enabled on this proxy",
                ));
            }
            return match tunnel::connect(req, config.upstream_timeout).await {
                Ok(response) => {
                    self.counters.tunnel();
                    response
                }
                Err(failure) => self.fail(&failure),
            };
        }
        if let Some(path) = &config.stats_path
            && req.uri().path() == path
            && req.method() == Method::GET
        {
            return self.stats_page();
        }
        if let (Some(limit), Some(declared)) =
            (config.max_request_body, content_length(req.headers()))
            && declared > limit
        {
            crate::body::linger(req.into_body(), Some(declared));
            return self.fail(&Failure::RequestTooLarge(limit));
        }

        let version = req.version();
        let client_upgrade = hyper::upgrade::on(&mut req);
        let client_ip = req.extensions().get::<ClientAddr>().map(|addr| addr.0.ip());
        let over_tls = req.extensions().get::<ClientTls>().is_some();
        let (mut parts, body) = req.into_parts();
        let client_host = parts.headers.get(HOST).cloned().or_else(|| {
            parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let removed = strip_hop_by_hop(&mut parts.headers);
        let upgrade = removed
            .upgrade
            .filter(|_| config.upgrades && version == Version::HTTP_11);
        let headers = &mut parts.headers;
        if let Some(protocol) = &upgrade {
            headers.insert(UPGRADE, protocol.clone());
            headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        if removed.te_trailers {
            headers.insert(TE, HeaderValue::from_static("trailers"));
        }
        if let Some(pseudonym) = &config.pseudonym {
            append_via(headers, version, pseudonym);
        }
        if config.forwarded {
            add_forwarded(
                headers,
                client_ip,
                if over_tls {
                    &HTTPS
                } else {
                    &config.forwarded_proto
                },
                client_host.clone(),
            );
        }
        if config.preserve_host {
            if let Some(host) = client_host {
                headers.insert(HOST, host);
            }
        } else {
            headers.remove(HOST);
        }
        let uri = match self.upstream_uri(parts.uri.path_and_query()) {
            Ok(uri) => uri,
            Err(failure) => return self.fail(&failure),
        };
        // Only a limited body can be cut off, and needs telling apart.
        let exceeded = config
            .max_request_body
            .map(|limit| (limit, Arc::new(AtomicBool::new(false))));
        let mut upstream_req = Request::new(RequestBody::new(
            body,
            exceeded
                .as_ref()
                .map(|(limit, flag)| (*limit, Arc::clone(flag))),
        ));
        let method = parts.method.clone();
        *upstream_req.method_mut() = parts.method;
        *upstream_req.uri_mut() = uri;
        *upstream_req.headers_mut() = parts.headers;

        let sent = self.client.send(upstream_req);
        let result = match config.upstream_timeout {
            Some(after) => match tokio::time::timeout(after, sent).await {
                Ok(result) => result,
                Err(_) => return self.fail(&Failure::Timeout(after)),
            },
            None => sent.await,
        };
        let mut response = match result {
            Ok(response) => response,
            Err(error) => {
                if let Some((limit, flag)) = &exceeded
                    && flag.load(Ordering::Relaxed)
                {
                    return self.fail(&Failure::RequestTooLarge(*limit));
                }
                let connect = Cl::is_connect_error(&error);
                return self.fail(&Failure::from_upstream(&error, connect));
            }
        };

        if response.status() == StatusCode::SWITCHING_PROTOCOLS {
            if upgrade.is_none() {
                return self.fail(&Failure::UnexpectedUpgrade);
            }
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            tunnel::join_upgrades(client_upgrade, upstream_upgrade);
            self.counters.upgrade();
        }
        // A HEAD response, a 204 and a 304 declare a length they do not send.
        let has_body = method != Method::HEAD
            && !matches!(
                response.status(),
                StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
            );
        if let (Some(limit), Some(declared), true) = (
            config.max_response_body,
            content_length(response.headers()),
            has_body,
        ) && declared > limit
        {
            return self.fail(&Failure::ResponseTooLarge(declared, limit));
        }
        let (mut parts, body) = response.into_parts();
        let upstream_version = parts.version;
        let response_upgrade = strip_hop_by_hop(&mut parts.headers).upgrade;
        if parts.status == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(protocol) = response_upgrade.or(upgrade) {
                parts.headers.insert(UPGRADE, protocol);
            }
            parts
                .headers
                .insert(CONNECTION, HeaderValue::from_static("upgrade"));
        }
        if let Some(pseudonym) = &config.pseudonym {
            append_via(&mut parts.headers, upstream_version, pseudonym);
        }
        parts.version = Version::default();
        parts.extensions = http::Extensions::new();
        if parts.status.is_server_error() {
            self.counters.upstream_5xx();
        }
        let body = ResponseBody::upstream(body, config.max_response_body, config.upstream_timeout);
        Response::from_parts(parts, body)
    }

    /// `scheme://authority[prefix]/path?query` of the upstream.
    fn upstream_uri(&self, path: Option<&PathAndQuery>) -> Result<Uri, Failure> {
        let config = &*self.config;
        let path = path.map_or("/", PathAndQuery::as_str);
        let mut builder = Uri::builder()
            .scheme(config.scheme.clone())
            .authority(config.authority.clone());
        builder = if config.prefix.is_empty() {
            builder.path_and_query(path)
        } else {
            builder.path_and_query(format!("{}{path}", config.prefix))
        };
        builder.build().map_err(|e| {
            Failure::Upstream("http_request_error", format!("bad request target: {e}"))
        })
    }

    fn stats_page(&self) -> Response<ResponseBody<Cl::Body>> {
        let text = self
            .counters
            .snapshot(self.client.pool_stats())
            .to_text(&self.config.upstream_name);
        let mut response = Response::new(ResponseBody::message(text));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// A message's declared `Content-Length`, when it has one valid value.
fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

impl<Cl: Upstream> Service<Request<Incoming>> for Proxy<Cl> {
    type Response = Response<ResponseBody<Cl::Body>>;
    type Error = Infallible;
    type Future = ResponseFuture<Cl::Body>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        self.forward(req)
    }
}

impl<Cl: Upstream> hyper::service::Service<Request<Incoming>> for Proxy<Cl> {
    type Response = Response<ResponseBody<Cl::Body>>;
    type Error = Infallible;
    type Future = ResponseFuture<Cl::Body>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        self.forward(req)
    }
}
