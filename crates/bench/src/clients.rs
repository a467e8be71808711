//! The clients under test, behind one small interface.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use freshpool::OriginStats;
use freshpool_legacy::{Connector, RetryClient};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tower_service::Service;

/// The request body every client sends.
pub(crate) type Body = Full<Bytes>;

/// A boxed, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A boxed error, for connectors.
type BoxError = Box<dyn StdError + Send + Sync>;

/// Which client, and for freshpool which of its mechanisms are on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// hyper-util's legacy `Client`, as is.
    HyperUtil,
    /// hyper-util's legacy `Client` over `freshpool_legacy::Connector`.
    Adapter,
    /// The same, wrapped in `freshpool_legacy::RetryClient`.
    AdapterRetry,
    /// `freshpool::Client` with the given mechanisms.
    Freshpool(Mechanisms),
}

/// freshpool's mechanisms, each of which the ablation switches off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mechanisms {
    /// The liveness probe at checkout.
    pub(crate) probe: bool,
    /// Expiry from the server's `Keep-Alive: timeout=N`.
    pub(crate) header: bool,
    /// Expiry learned from the server's closes.
    pub(crate) learn: bool,
    /// RFC 9112 retries.
    pub(crate) retry: bool,
}

impl Mechanisms {
    /// Everything on: freshpool's defaults.
    pub(crate) const ALL: Mechanisms = Mechanisms {
        probe: true,
        header: true,
        learn: true,
        retry: true,
    };
}

impl Kind {
    /// The name shown in tables, plots and JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::HyperUtil => "hyper-util",
            Kind::Adapter => "hyper-util + Connector",
            Kind::AdapterRetry => "hyper-util + RetryClient",
            Kind::Freshpool(Mechanisms::ALL) => "freshpool",
            Kind::Freshpool(_) => "freshpool (ablated)",
        }
    }

    /// Whether this client is one of freshpool's (its errors are bugs).
    pub(crate) fn is_freshpool(self) -> bool {
        !matches!(self, Kind::HyperUtil)
    }

    /// A new client of this kind with its own pool; connections it opens
    /// are counted in `opened`.
    pub(crate) fn build(self, opened: Arc<AtomicU64>) -> Result<Box<dyn Pool>, String> {
        let connector = Counting::new(opened);
        match self {
            Kind::HyperUtil => Ok(Box::new(
                LegacyClient::builder(TokioExecutor::new()).build::<_, Body>(connector),
            )),
            Kind::Adapter => {
                let connector = Connector::new(connector);
                Ok(Box::new(Adapter {
                    client: LegacyClient::builder(TokioExecutor::new()).build(connector.clone()),
                    connector,
                }))
            }
            Kind::AdapterRetry => {
                let connector = Connector::new(connector);
                Ok(Box::new(AdapterRetry {
                    client: RetryClient::new(
                        LegacyClient::builder(TokioExecutor::new()).build(connector.clone()),
                    ),
                    connector,
                }))
            }
            Kind::Freshpool(m) => {
                let mut builder = freshpool::Client::builder()
                    .keep_alive_hints(m.header)
                    .learn_from_closes(m.learn);
                if !m.probe {
                    builder = builder.probe_after(Duration::MAX);
                }
                if !m.retry {
                    builder = builder.retries(0).retry_canceled_requests(false);
                }
                let client = builder
                    .build::<_, Body>(connector)
                    .map_err(|e| format!("freshpool settings: {e}"))?;
                Ok(Box::new(client))
            }
        }
    }
}

/// One client with its own pool, as the scenarios drive it.
pub(crate) trait Pool: Send + Sync {
    /// Sends `req`, waits `pause` once the response head has arrived (a
    /// slow consumer), then reads the body. A complete `2xx` is `Ok`, with
    /// the instant the head arrived; anything else is an error kind a user
    /// would search for.
    fn exchange(&self, req: Request<Body>, pause: Duration) -> BoxFuture<Result<Instant, String>>;

    /// Sends `req` and reads the whole response at once.
    fn send(&self, req: Request<Body>) -> BoxFuture<Result<(), String>> {
        let exchange = self.exchange(req, Duration::ZERO);
        Box::pin(async move { exchange.await.map(|_| ()) })
    }

    /// The idle timeout this client believes `url`'s server has, and
    /// where it learned it.
    fn estimate(&self, url: &Uri) -> Option<(Duration, &'static str)> {
        let _ = url;
        None
    }

    /// How long this client lets a connection to `url`'s server idle
    /// before retiring it, as the client itself computes it; `None` for a
    /// client that does not retire (hyper-util's own pool has only its
    /// fixed idle timeout).
    fn retire_after(&self, url: &Uri) -> Option<Duration> {
        let _ = url;
        None
    }

    /// Requests this client retried.
    fn retries(&self) -> Option<u64> {
        None
    }
}

impl Pool for LegacyClient<Counting, Body> {
    fn exchange(&self, req: Request<Body>, pause: Duration) -> BoxFuture<Result<Instant, String>> {
        let response = self.request(req);
        Box::pin(async move { complete(response.await, pause).await })
    }
}

impl Pool for freshpool::Client<Counting, Body> {
    fn exchange(&self, req: Request<Body>, pause: Duration) -> BoxFuture<Result<Instant, String>> {
        let response = self.request(req);
        Box::pin(async move { complete(response.await, pause).await })
    }

    fn estimate(&self, url: &Uri) -> Option<(Duration, &'static str)> {
        origin_stats(self, url)?
            .estimate
            .map(|(timeout, source)| (timeout, source.as_str()))
    }

    fn retire_after(&self, url: &Uri) -> Option<Duration> {
        origin_stats(self, url)?.retire_after
    }

    fn retries(&self) -> Option<u64> {
        Some(self.stats().total.retries())
    }
}

/// A freshpool client's figures for `url`'s origin (or its only origin).
fn origin_stats(client: &freshpool::Client<Counting, Body>, url: &Uri) -> Option<OriginStats> {
    let mut stats = client.stats();
    let origin = format!(
        "{}://{}",
        url.scheme_str().unwrap_or("http"),
        url.authority().map_or("", |a| a.as_str())
    );
    let at = stats
        .origins
        .iter()
        .position(|(key, _)| *key == origin)
        .or((!stats.origins.is_empty()).then_some(0))?;
    Some(stats.origins.swap_remove(at).1)
}

/// hyper-util over freshpool-legacy's `Connector`; the connector is kept to
/// read what it learned.
struct Adapter {
    client: LegacyClient<Connector<Counting>, Body>,
    connector: Connector<Counting>,
}

impl Pool for Adapter {
    fn exchange(&self, req: Request<Body>, pause: Duration) -> BoxFuture<Result<Instant, String>> {
        let response = self.client.request(req);
        Box::pin(async move { complete(response.await, pause).await })
    }

    fn estimate(&self, url: &Uri) -> Option<(Duration, &'static str)> {
        adapter_estimate(&self.connector, url)
    }

    fn retire_after(&self, url: &Uri) -> Option<Duration> {
        self.connector.retire_after(url)
    }
}

/// [`Adapter`] wrapped in freshpool-legacy's `RetryClient`.
struct AdapterRetry {
    client: RetryClient<Counting, Body>,
    connector: Connector<Counting>,
}

impl Pool for AdapterRetry {
    fn exchange(&self, req: Request<Body>, pause: Duration) -> BoxFuture<Result<Instant, String>> {
        let response = self.client.request(req);
        Box::pin(async move { complete(response.await, pause).await })
    }

    fn estimate(&self, url: &Uri) -> Option<(Duration, &'static str)> {
        adapter_estimate(&self.connector, url)
    }

    fn retire_after(&self, url: &Uri) -> Option<Duration> {
        self.connector.retire_after(url)
    }
}

fn adapter_estimate(
    connector: &Connector<Counting>,
    url: &Uri,
) -> Option<(Duration, &'static str)> {
    connector
        .estimate(url)
        .map(|estimate| (estimate.timeout, estimate.source.as_str()))
}

/// Reads a response to its end, `pause` after its head, and judges it;
/// `Ok` is when the head arrived.
async fn complete<B, E>(
    response: Result<Response<B>, E>,
    pause: Duration,
) -> Result<Instant, String>
where
    B: hyper::body::Body,
    B::Error: StdError + Send + Sync + 'static,
    E: StdError + Send + Sync + 'static,
{
    let response = response.map_err(|e| error_kind(&e))?;
    let head = Instant::now();
    if !pause.is_zero() {
        tokio::time::sleep(pause).await;
    }
    let status = response.status();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| error_kind(&e))?;
    if status == http::StatusCode::REQUEST_TIMEOUT {
        // A 408 the server wrote while closing an idle connection, read
        // as the response to this request.
        Err("stray 408 read as the response".into())
    } else if !status.is_success() {
        Err(format!("status {}", status.as_u16()))
    } else {
        Ok(head)
    }
}

/// Names the kind of an HTTP client error from its source chain: the
/// words a user would search for.
pub(crate) fn error_kind(error: &(dyn StdError + 'static)) -> String {
    let mut current = Some(error);
    let mut kind = None;
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionReset => "connection reset".into(),
                std::io::ErrorKind::BrokenPipe => "broken pipe".into(),
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                std::io::ErrorKind::TimedOut => "timed out".into(),
                other => format!("io: {other}"),
            };
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() {
                kind = Some("closed before message completed".to_owned());
            } else if h.is_canceled() {
                kind = Some("canceled".to_owned());
            } else if h.is_parse() {
                kind = Some("parse error".to_owned());
            } else if kind.is_none() {
                kind = Some(format!("hyper: {h}"));
            }
        }
        if let Some(l) = e.downcast_ref::<hyper_util::client::legacy::Error>()
            && l.is_connect()
            && kind.is_none()
        {
            kind = Some("connect error".to_owned());
        }
        if let Some(f) = e.downcast_ref::<freshpool::Error>()
            && f.is_connect()
            && kind.is_none()
        {
            kind = Some("connect error".to_owned());
        }
        current = e.source();
    }
    kind.unwrap_or_else(|| error.to_string())
}

/// hyper-util's `HttpConnector` (with `TCP_NODELAY`, as every client here
/// uses it) that counts the connections it opens.
#[derive(Debug, Clone)]
pub(crate) struct Counting {
    inner: HttpConnector,
    opened: Arc<AtomicU64>,
}

impl Counting {
    /// A connector counting into `opened`.
    pub(crate) fn new(opened: Arc<AtomicU64>) -> Counting {
        let mut inner = HttpConnector::new();
        inner.set_nodelay(true);
        Counting { inner, opened }
    }
}

impl Service<Uri> for Counting {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let opened = Arc::clone(&self.opened);
        Box::pin(async move {
            let io = connecting.await?;
            opened.fetch_add(1, Ordering::Relaxed);
            Ok(io)
        })
    }
}

/// A POST with a unique `x-request-id` and a small JSON body.
pub(crate) fn post(url: &Uri, id: &str) -> Request<Body> {
    let mut req = Request::new(Full::new(Bytes::from_static(b"{\"order\":1}")));
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = url.clone();
    if let Ok(value) = http::HeaderValue::from_str(id) {
        req.headers_mut().insert("x-request-id", value);
    }
    req.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    req
}

/// A GET with an empty body.
pub(crate) fn get(url: &Uri) -> Request<Body> {
    let mut req = Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = url.clone();
    req
}
