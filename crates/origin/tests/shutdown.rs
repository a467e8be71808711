//! Shutting down closes every connection and leaves no task behind.

mod support;

use std::time::Duration;

use bytes::Bytes;
use freshpool_origin::{CloseReason, Origin};
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{Conn, End, wait_until};
use tokio::net::TcpStream;

#[tokio::test(start_paused = true)]
async fn shutdown_closes_everything_and_awaits_every_task() {
    let origin = Origin::builder()
        .idle_timeout(Duration::from_secs(60))
        .start()
        .await
        .expect("start origin");
    // An idle HTTP/1.1 connection, one with a request in flight, and an h2
    // connection with a stream in flight.
    let mut idle = Conn::open(&origin).await;
    let mut busy = Conn::open(&origin).await;
    busy.get("x-request-id: busy\r\nx-delay-ms: 600000\r\n")
        .await;
    let stream = TcpStream::connect(origin.addr()).await.expect("connect");
    // No Nagle: in paused time a held-back frame would look like a stall.
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, h2_conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    let h2_conn = tokio::spawn(h2_conn);
    let h2_request = Request::builder()
        .uri("http://origin/")
        .header("x-request-id", "h2-busy")
        .header("x-delay-ms", "600000")
        .body(Empty::<Bytes>::new())
        .expect("request");
    sender.ready().await.expect("ready");
    let h2_response = tokio::spawn(sender.send_request(h2_request));
    wait_until("both requests are in flight", || {
        origin.stats().requests_processed == 2
    })
    .await;
    // Accept loop, three connections, one h2 stream.
    assert_eq!(origin.stats().tasks_alive, 5);

    origin.shutdown().await;
    let stats = origin.stats();
    assert_eq!(stats.tasks_alive, 0);
    assert_eq!(stats.connections_open, 0);
    assert!(
        origin
            .connections()
            .iter()
            .all(|c| c.closed == Some(CloseReason::Shutdown))
    );

    assert!(matches!(idle.end().await, End::Fin(_)));
    assert!(matches!(busy.end().await, End::Fin(rest) if rest.is_empty()));
    assert!(h2_response.await.expect("client task").is_err());
    let _ = h2_conn.await.expect("client connection task");
    let refused = TcpStream::connect(origin.addr()).await;
    assert!(refused.is_err(), "still accepting after shutdown");
    // A second shutdown is a no-op.
    origin.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_stops_the_server() {
    let origin = Origin::builder().start().await.expect("start origin");
    let addr = origin.addr();
    let mut conn = Conn::open(&origin).await;
    conn.get("").await;
    conn.response().await.expect("response");
    drop(origin);

    assert!(matches!(conn.end().await, End::Fin(_)));
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("still accepting after the handle was dropped");
}
