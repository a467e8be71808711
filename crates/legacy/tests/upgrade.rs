//! A wrapped connection gives its IO back: after a `101` upgrade through
//! hyper-util's `Client` over the adapter, `Upgraded::downcast` recovers
//! the `TrackedIo` (the IO type hyper saw), and `into_inner` the inner
//! connector's stream, which then carries bytes as any stream does.

use freshpool_legacy::{Connector, TrackedIo};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A server of a few lines (freshpool-origin speaks no upgrade protocol):
/// answers the first request with `101`, then echoes.
async fn echo_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                return;
            }
            head.push(byte[0]);
        }
        let switching =
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";
        if socket.write_all(switching).await.is_err() {
            return;
        }
        let mut buf = [0u8; 64];
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    });
    (addr, server)
}

fn upgrade_request(
    addr: std::net::SocketAddr,
) -> http::Request<http_body_util::Empty<bytes::Bytes>> {
    http::Request::get(format!("http://{addr}/"))
        .header("connection", "upgrade")
        .header("upgrade", "echo")
        .body(http_body_util::Empty::new())
        .expect("request")
}

#[tokio::test]
async fn an_upgraded_connection_downcasts_to_the_inner_stream() {
    let (addr, server) = echo_server().await;
    let connector = Connector::new(HttpConnector::new());
    let client = Client::builder(TokioExecutor::new()).build(connector.clone());
    let response = client.request(upgrade_request(addr)).await.expect("101");
    assert_eq!(response.status(), 101);
    let upgraded = hyper::upgrade::on(response).await.expect("upgraded IO");

    let parts = upgraded
        .downcast::<TrackedIo<TokioIo<TcpStream>>>()
        .expect("the IO hyper saw is the adapter's, over the inner connector's");
    assert!(parts.read_buf.is_empty(), "nothing read past the 101");
    let mut stream: TcpStream = parts.io.into_inner().into_inner();
    assert_eq!(stream.peer_addr().expect("peer"), addr);
    stream.write_all(b"ping").await.expect("write");
    let mut echo = [0u8; 4];
    stream.read_exact(&mut echo).await.expect("echo");
    assert_eq!(&echo, b"ping");
    // The adapter stopped following the connection at the 101.
    assert_eq!(connector.stats().untracked, 1, "{:?}", connector.stats());
    server.abort();
}

#[tokio::test]
async fn the_wrapped_io_is_a_tokio_stream_too() {
    let (addr, server) = echo_server().await;
    let client = Client::builder(TokioExecutor::new()).build(Connector::new(HttpConnector::new()));
    let response = client.request(upgrade_request(addr)).await.expect("101");
    let upgraded = hyper::upgrade::on(response).await.expect("upgraded IO");
    let mut parts = upgraded
        .downcast::<TrackedIo<TokioIo<TcpStream>>>()
        .expect("downcast");
    // tokio's traits on the wrapper itself, and `get_mut` to the stream.
    parts.io.write_all(b"pong").await.expect("write");
    let mut echo = [0u8; 4];
    parts.io.read_exact(&mut echo).await.expect("echo");
    assert_eq!(&echo, b"pong");
    let local = parts.io.get_mut().inner_mut().local_addr().expect("local");
    assert_eq!(
        parts.io.get_ref().inner().local_addr().expect("local"),
        local
    );
    server.abort();
}
