//! Through a forward proxy (a connector whose `Connected` says
//! `is_proxied`), requests go out as hyper-util's Client sends them:
//! absolute form for plain `http`, authority form for `CONNECT`. A small
//! forward proxy over loopback records the request line it sees.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use freshpool::{Liveness, Probe};
use freshpool_origin::Origin;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A forward proxy: records each connection's first request line, then
/// answers a `CONNECT` itself (200, then tunnels to the origin), and
/// relays anything else to the origin unchanged.
struct ForwardProxy {
    addr: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ForwardProxy {
    async fn start(origin: SocketAddr) -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&lines);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, origin, Arc::clone(&seen)));
            }
        });
        ForwardProxy { addr, lines, task }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(mut client: TcpStream, origin: SocketAddr, lines: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line_end = head.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
    let line = String::from_utf8_lossy(&head[..line_end]).into_owned();
    let connect = line.starts_with("CONNECT ");
    lines.lock().expect("lines").push(line);
    let Ok(mut upstream) = TcpStream::connect(origin).await else {
        return;
    };
    if connect {
        if client.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await.is_err() {
            return;
        }
    } else if upstream.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// A connector that reaches every origin through the proxy at `proxy`.
#[derive(Clone)]
struct ViaProxy {
    proxy: SocketAddr,
}

impl tower_service::Service<Uri> for ViaProxy {
    type Response = ProxiedIo;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<ProxiedIo>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _origin: Uri) -> Self::Future {
        let proxy = self.proxy;
        Box::pin(async move { Ok(ProxiedIo(TokioIo::new(TcpStream::connect(proxy).await?))) })
    }
}

/// A TCP stream to a forward proxy, which says so.
struct ProxiedIo(TokioIo<TcpStream>);

impl Connection for ProxiedIo {
    fn connected(&self) -> Connected {
        Connected::new().proxy(true)
    }
}

impl Probe for ProxiedIo {
    fn probe(&self) -> Liveness {
        self.0.probe()
    }
}

impl Read for ProxiedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl Write for ProxiedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn request(method: Method, uri: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(uri)
        .body(Full::default())
        .expect("request")
}

/// Sends `method uri` through a fresh proxy with freshpool and with
/// hyper-util's Client; returns the request line each made the proxy see.
async fn lines_seen(origin: &Origin, method: Method, uri: &str) -> (String, String) {
    let proxy = ForwardProxy::start(origin.addr()).await;
    let connector = ViaProxy { proxy: proxy.addr };

    let fresh: freshpool::Client<ViaProxy, Full<Bytes>> = freshpool::Client::builder()
        .build(connector.clone())
        .expect("settings");
    let response = fresh
        .request(request(method.clone(), uri))
        .await
        .expect("freshpool through the proxy");
    assert!(response.status().is_success(), "{response:?}");
    if method != Method::CONNECT {
        response.into_body().collect().await.expect("body");
    }

    let legacy = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build::<_, Full<Bytes>>(connector);
    let response = legacy
        .request(request(method.clone(), uri))
        .await
        .expect("hyper-util through the proxy");
    assert!(response.status().is_success(), "{response:?}");
    if method != Method::CONNECT {
        response.into_body().collect().await.expect("body");
    }

    let lines = proxy.lines();
    assert_eq!(lines.len(), 2, "one connection each: {lines:?}");
    (lines[0].clone(), lines[1].clone())
}

#[tokio::test]
async fn a_plain_request_through_a_forward_proxy_goes_in_absolute_form() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    let uri = format!("{}/p?q=1", origin.base_url());
    let (freshpool, hyper_util) = lines_seen(&origin, Method::GET, &uri).await;
    assert_eq!(freshpool, hyper_util);
    assert_eq!(freshpool, format!("GET {uri} HTTP/1.1"));
    assert_eq!(
        origin.stats().requests_processed,
        2,
        "both reached the origin"
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn connect_goes_in_authority_form() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    let authority = origin.addr().to_string();
    let uri = format!("http://{authority}");
    let (freshpool, hyper_util) = lines_seen(&origin, Method::CONNECT, &uri).await;
    assert_eq!(freshpool, hyper_util);
    assert_eq!(freshpool, format!("CONNECT {authority} HTTP/1.1"));
    origin.shutdown().await;
}

/// hyper-util's own tunnelling connector (`Tunnel`, which sends `CONNECT`
/// to the proxy and hands over the tunnel): both clients make the proxy see
/// the same `CONNECT` line, send the origin its origin-form request inside
/// the tunnel, and reuse the tunnel for the next request (the origin is the
/// pool key: a client's connector chooses the route from the URI alone).
#[tokio::test]
async fn hyper_utils_tunnel_connector_carries_reused_origin_form_requests() {
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::client::legacy::connect::proxy::Tunnel;

    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(5))
        .start()
        .await
        .expect("origin");
    let proxy = ForwardProxy::start(origin.addr()).await;
    let proxy_uri: Uri = format!("http://{}", proxy.addr).parse().expect("proxy uri");
    let tunnel = Tunnel::new(proxy_uri, HttpConnector::new());
    let uri = format!("{}/p?q=1", origin.base_url());

    let fresh: freshpool::Client<Tunnel<HttpConnector>, Full<Bytes>> = freshpool::Client::builder()
        .build(tunnel.clone())
        .expect("settings");
    let legacy = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build::<_, Full<Bytes>>(tunnel);
    for _ in 0..2 {
        let response = fresh
            .request(request(Method::GET, &uri))
            .await
            .expect("freshpool through the tunnel");
        assert!(response.status().is_success(), "{response:?}");
        response.into_body().collect().await.expect("body");
    }
    for _ in 0..2 {
        let response = legacy
            .request(request(Method::GET, &uri))
            .await
            .expect("hyper-util through the tunnel");
        assert!(response.status().is_success(), "{response:?}");
        response.into_body().collect().await.expect("body");
    }

    let lines = proxy.lines();
    assert_eq!(lines.len(), 2, "one tunnel per client, reused: {lines:?}");
    assert_eq!(lines[0], lines[1], "the same CONNECT from both clients");
    let authority = origin.addr().to_string();
    assert_eq!(lines[0], format!("CONNECT {authority} HTTP/1.1"));
    let stats = origin.stats();
    assert_eq!(stats.requests_processed, 4);
    assert_eq!(
        stats.connections_accepted, 2,
        "each client reused its tunnel"
    );
    assert_eq!(fresh.stats().total.reused, 1);
    origin.shutdown().await;
}
