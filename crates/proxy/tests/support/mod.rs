//! Shared helpers: proxies on loopback, a client, and upstreams that echo
//! what they received or misbehave on purpose.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of these helpers"
)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use freshpool_proxy::{Builder, Proxy, RequestBody, Upstream};
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A boxed error.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body the test client sends.
pub(crate) type TestBody = BoxBody<Bytes, BoxError>;

/// A proxy serving on loopback; `stop` drains it.
pub(crate) struct Running {
    /// Where clients connect.
    pub(crate) addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Signals shutdown and waits for the drain to finish.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task)
            .await
            .expect("serve task")
            .expect("serve loop");
    }
}

/// Serves `proxy` on 127.0.0.1 with [`freshpool_proxy::serve`].
pub(crate) async fn run<Cl: Upstream>(proxy: Proxy<Cl>) -> Running {
    run_with(|listener, shutdown| freshpool_proxy::serve(listener, proxy, shutdown)).await
}

/// Serves on 127.0.0.1 with the serve loop `serve` starts from a listener
/// and a shutdown signal ([`freshpool_proxy::serve`] or another).
pub(crate) async fn run_with<S, F>(serve: S) -> Running
where
    S: FnOnce(TcpListener, Pin<Box<dyn Future<Output = ()> + Send>>) -> F,
    F: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        Box::pin(async {
            let _ = stopped.await;
        }),
    ));
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

/// The freshpool client a proxy forwards with.
pub(crate) fn freshpool_client() -> freshpool::Client<HttpConnector, RequestBody> {
    freshpool::Client::builder()
        .build_http::<RequestBody>()
        .expect("client")
}

/// hyper-util's legacy client, for the same proxy.
pub(crate) fn legacy_client() -> LegacyClient<HttpConnector, RequestBody> {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    LegacyClient::builder(TokioExecutor::new()).build(http)
}

/// A freshpool proxy to `upstream`, configured by `configure`.
pub(crate) async fn freshpool_proxy(
    upstream: &str,
    configure: impl FnOnce(Builder) -> Builder,
) -> (
    Running,
    Proxy<freshpool::Client<HttpConnector, RequestBody>>,
) {
    let proxy = configure(Proxy::builder(upstream.parse().expect("upstream URL")))
        .build(freshpool_client())
        .expect("proxy");
    (run(proxy.clone()).await, proxy)
}

/// The test client: hyper-util's legacy client, which keeps its own
/// connections to the proxy (the proxy never closes idle client
/// connections, so this hop cannot race).
pub(crate) fn client() -> LegacyClient<HttpConnector, TestBody> {
    LegacyClient::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A body from bytes.
pub(crate) fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into()).map_err(|e| match e {}).boxed()
}

/// An empty body.
pub(crate) fn empty() -> TestBody {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// A response, read whole: status, headers, body.
pub(crate) struct Read {
    /// The status.
    pub(crate) status: u16,
    /// The headers.
    pub(crate) headers: http::HeaderMap,
    /// The body as text.
    pub(crate) body: String,
}

/// Sends `req` with `client` and reads the whole response.
pub(crate) async fn send(
    client: &LegacyClient<HttpConnector, TestBody>,
    req: Request<TestBody>,
) -> Read {
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("the proxy answered within 10 s")
        .expect("the proxy answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(10), response.into_body().collect())
        .await
        .expect("the body ended within 10 s")
        .expect("the body arrived")
        .to_bytes();
    Read {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// A GET of `url`.
pub(crate) fn get(url: &str) -> Request<TestBody> {
    Request::get(url).body(empty()).expect("request")
}

/// An upstream that answers every request with the request it received:
/// `METHOD PATH` on the first line, then one `name: value` line per
/// header, then the body. Its responses also carry hop-by-hop fields
/// (`Connection: x-hop`, `X-Hop`, `Keep-Alive`) that a proxy must drop.
pub(crate) async fn echo_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(echo);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut text = format!(
        "{} {}\n",
        req.method(),
        req.uri().path_and_query().map_or("", |p| p.as_str())
    );
    for (name, value) in req.headers() {
        text.push_str(&format!(
            "{}: {}\n",
            name,
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&body));
    let response = Response::builder()
        .header("connection", "x-hop")
        .header("x-hop", "must go")
        .header("keep-alive", "timeout=5")
        .header("x-end-to-end", "stays")
        .body(Full::new(Bytes::from(text)))
        .expect("response");
    Ok(response)
}

/// The header lines an [`echo_upstream`] reported, lowercased names.
pub(crate) fn echoed_headers(body: &str) -> Vec<(String, String)> {
    body.lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// The value of `name` an [`echo_upstream`] reported, if any.
pub(crate) fn echoed<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A raw-TCP upstream that misbehaves by request path:
///
/// - `/garbage`: answers bytes that are not HTTP;
/// - `/big-head`: a response head with a 1 MiB header;
/// - `/hang`: reads the request and never answers;
/// - `/hang-mid-body`: a head promising 100 bytes, 10 of them, then nothing;
/// - `/rst-mid-body`: a head promising 100 bytes, 10 of them, then an RST;
/// - `/rst`: an RST right after the request;
/// - anything else: `200 ok`, keep-alive.
pub(crate) async fn hostile_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(hostile_conn(stream));
        }
    });
    addr
}

async fn hostile_conn(mut stream: TcpStream) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            let mut chunk = [0; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end + 4);
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let result = match path.as_str() {
            "/garbage" => {
                stream
                    .write_all(b"SSH-2.0-OpenSSH_9.2\r\n\x00\x01\x02\xff\r\n\r\n")
                    .await
            }
            "/big-head" => {
                let mut head = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
                head.resize(head.len() + (1 << 20), b'a');
                head.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
                stream.write_all(&head).await
            }
            "/hang" => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                return;
            }
            "/hang-mid-body" | "/rst-mid-body" => {
                let head = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789";
                if stream.write_all(head).await.is_err() {
                    return;
                }
                if path == "/rst-mid-body" {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    reset(stream);
                } else {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                }
                return;
            }
            "/rst" => {
                reset(stream);
                return;
            }
            _ => {
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
            }
        };
        if result.is_err() || path == "/garbage" || path == "/big-head" {
            return;
        }
    }
}

/// Closes `stream` with an RST (linger 0).
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}
