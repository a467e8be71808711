//! Upgrades (`101 Switching Protocols`, WebSocket-style) pass through the
//! proxy end to end; `CONNECT` is refused by default and tunnelled when
//! allowed.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use support::{freshpool_proxy, legacy_client, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream that switches to an echo protocol on `Upgrade: echo` (or
/// `websocket`) and answers `200 plain` otherwise.
async fn upgrade_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(switch);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn switch(mut req: Request<Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    let Some(protocol) = req.headers().get("upgrade").cloned() else {
        let mut plain = Response::new(Empty::new());
        plain
            .headers_mut()
            .insert("x-plain", "1".parse().expect("value"));
        return Ok(plain);
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut io = TokioIo::new(upgraded);
        let mut buf = [0; 1024];
        loop {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if io.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let mut response = Response::new(Empty::new());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    response.headers_mut().insert("upgrade", protocol);
    response
        .headers_mut()
        .insert("connection", "upgrade".parse().expect("value"));
    Ok(response)
}

/// Writes `head` and reads a response head (up to the blank line).
async fn exchange_head(stream: &mut TcpStream, head: &str) -> String {
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let mut byte = [0; 1];
    while !got.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read");
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&got));
        got.push(byte[0]);
    }
    String::from_utf8_lossy(&got).to_lowercase()
}

async fn echo_round_trips(stream: &mut TcpStream) {
    for message in ["ping", "a longer message through both upgrades", "bye"] {
        stream.write_all(message.as_bytes()).await.expect("write");
        let mut buf = vec![0; message.len()];
        stream.read_exact(&mut buf).await.expect("echo");
        assert_eq!(buf, message.as_bytes());
    }
}

const UPGRADE: &str =
    "GET /ws HTTP/1.1\r\nhost: app\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_style_upgrade_passes_through_both_clients() {
    let upstream = upgrade_upstream().await;
    let (proxy, handle) = freshpool_proxy(&format!("http://{upstream}"), |b| b).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let head = exchange_head(&mut stream, UPGRADE).await;
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(head.contains("upgrade: websocket\r\n"), "{head}");
    assert!(head.contains("connection: upgrade\r\n"), "{head}");
    echo_round_trips(&mut stream).await;
    assert_eq!(handle.stats().upgrades, 1);

    // The same through the hyper-util proxy.
    let legacy = run(freshpool_proxy::Proxy::builder(
        format!("http://{upstream}").parse().expect("url"),
    )
    .build(legacy_client())
    .expect("proxy"))
    .await;
    let mut stream = TcpStream::connect(legacy.addr).await.expect("connect");
    let head = exchange_head(&mut stream, UPGRADE).await;
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    echo_round_trips(&mut stream).await;
    drop(stream);
    legacy.stop().await;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_upgrades_off_the_upgrade_header_is_dropped_as_hop_by_hop() {
    let upstream = upgrade_upstream().await;
    let (proxy, _) = freshpool_proxy(&format!("http://{upstream}"), |b| b.upgrades(false)).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let head = exchange_head(&mut stream, UPGRADE).await;
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    assert!(head.contains("x-plain: 1\r\n"), "{head}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_is_refused_by_default_and_tunnelled_when_allowed() {
    let origin = freshpool_origin::Origin::builder()
        .start()
        .await
        .expect("origin");
    let target = origin.addr();
    let connect = format!("CONNECT {target} HTTP/1.1\r\nhost: {target}\r\n\r\n");

    let (refusing, handle) = freshpool_proxy(&origin.base_url(), |b| b).await;
    let mut stream = TcpStream::connect(refusing.addr).await.expect("connect");
    let head = exchange_head(&mut stream, &connect).await;
    assert!(head.starts_with("http/1.1 405 "), "{head}");
    assert!(head.contains("error=http_request_denied"), "{head}");
    assert_eq!(handle.stats().refused, 1);
    drop(stream);
    refusing.stop().await;

    let (tunnelling, handle) = freshpool_proxy(&origin.base_url(), |b| b.allow_connect(true)).await;
    let mut stream = TcpStream::connect(tunnelling.addr).await.expect("connect");
    let head = exchange_head(&mut stream, &connect).await;
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    // Now the bytes go straight to the origin.
    let head = exchange_head(
        &mut stream,
        "GET /through HTTP/1.1\r\nhost: o\r\nx-request-id: tunnelled\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 200 "), "{head}");
    assert!(
        !head.contains("via:"),
        "the tunnel passes bytes, not messages: {head}"
    );
    assert_eq!(origin.processed("tunnelled"), 1);
    assert_eq!(handle.stats().tunnels, 1);

    // A target nobody listens on is a 502 naming it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut stream = TcpStream::connect(tunnelling.addr).await.expect("connect");
    let head = exchange_head(
        &mut stream,
        &format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\nhost: x\r\n\r\n"),
    )
    .await;
    assert!(head.starts_with("http/1.1 502 "), "{head}");
    assert!(head.contains(&format!("127.0.0.1:{port}")), "{head}");
    drop(stream);
    tunnelling.stop().await;
    origin.shutdown().await;
}
