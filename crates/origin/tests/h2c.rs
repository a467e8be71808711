//! HTTP/2 with prior knowledge, through hyper's low-level client: the same
//! request-id counters, GOAWAY after N requests, the idle GOAWAY, and
//! stream resets.

mod support;

use std::time::Duration;

use bytes::Bytes;
use freshpool_origin::{CloseReason, Origin, Protocol, body_pattern};
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::wait_until;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

async fn connect(origin: &Origin) -> (SendRequest<Empty<Bytes>>, JoinHandle<hyper::Result<()>>) {
    let stream = TcpStream::connect(origin.addr()).await.expect("connect");
    // Paused time advances whenever the runtime waits: Nagle's algorithm
    // holding a small frame back for an ACK would look like a stall.
    stream.set_nodelay(true).expect("nodelay");
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2 handshake");
    (sender, tokio::spawn(conn))
}

/// Sends once the connection can take another stream.
async fn send(
    sender: &mut SendRequest<Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
) -> hyper::Result<hyper::Response<hyper::body::Incoming>> {
    sender.ready().await?;
    sender.send_request(request).await
}

fn request(id: &str, extra: &[(&str, &str)]) -> Request<Empty<Bytes>> {
    let mut builder = Request::builder()
        .uri("http://origin/")
        .header("x-request-id", id);
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder.body(Empty::new()).expect("request")
}

#[tokio::test(start_paused = true)]
async fn serves_h2c_and_counts_request_ids() {
    let origin = Origin::builder().start().await.expect("start origin");
    let (mut sender, _conn) = connect(&origin).await;
    for (id, size) in [("h2-a", 0), ("h2-b", 5), ("h2-a", 100_000)] {
        let response = send(
            &mut sender,
            request(id, &[("x-body-size", &size.to_string())]),
        )
        .await
        .expect("response");
        assert_eq!(response.headers()["x-request-id"], id);
        assert_eq!(response.headers()["x-connection-id"], "0");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(body, body_pattern(size));
    }
    assert_eq!((origin.processed("h2-a"), origin.processed("h2-b")), (2, 1));
    assert_eq!(origin.duplicates(), [("h2-a".to_owned(), 2)]);
    let stats = origin.stats();
    assert_eq!((stats.h2_connections, stats.requests_processed), (1, 3));
    assert_eq!(origin.connections()[0].protocol, Protocol::H2c);
    assert_eq!(origin.connections()[0].requests, 3);
}

#[tokio::test(start_paused = true)]
async fn goaway_after_n_requests_loses_none() {
    let origin = Origin::builder()
        .h2_goaway_after(2)
        .start()
        .await
        .expect("start origin");
    let (mut sender, conn) = connect(&origin).await;
    // Two concurrent slow streams: the GOAWAY after the second must not
    // cut either of them.
    let slow = [("x-delay-ms", "100")];
    sender.ready().await.expect("ready");
    let first = sender.send_request(request("g1", &slow));
    let second = sender.send_request(request("g2", &slow));
    let (first, second) = tokio::join!(first, second);
    assert_eq!(first.expect("g1").status(), 200);
    assert_eq!(second.expect("g2").status(), 200);

    // The server closes the connection once both streams are done.
    conn.await.expect("connection task").expect("clean close");
    let refused = send(&mut sender, request("g3", &[])).await;
    assert!(refused.is_err(), "a request after the GOAWAY was accepted");
    assert_eq!(
        (
            origin.processed("g1"),
            origin.processed("g2"),
            origin.processed("g3")
        ),
        (1, 1, 0)
    );
    wait_until("the close is recorded", || {
        origin.stats().connections_open == 0
    })
    .await;
    assert_eq!(origin.stats().h2_goaways, 1);
    assert_eq!(origin.connections()[0].closed, Some(CloseReason::GoAway));
}

#[tokio::test(start_paused = true)]
async fn idle_h2_connections_get_a_goaway_at_the_idle_timeout() {
    let idle = Duration::from_millis(200);
    let origin = Origin::builder()
        .idle_timeout(idle)
        .start()
        .await
        .expect("start origin");
    let (mut sender, conn) = connect(&origin).await;
    // A stream longer than the idle timeout keeps the connection open.
    send(&mut sender, request("slow", &[("x-delay-ms", "500")]))
        .await
        .expect("a slow stream is not cut by the idle timeout");
    let responded = tokio::time::Instant::now();
    conn.await.expect("connection task").expect("clean close");
    let elapsed = responded.elapsed();
    assert!(
        elapsed >= idle && elapsed < idle + Duration::from_millis(20),
        "{elapsed:?}"
    );
    wait_until("the idle GOAWAY is counted", || {
        origin.stats().idle_closes_h2 == 1
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn reset_after_read_resets_the_stream_only() {
    let origin = Origin::builder().start().await.expect("start origin");
    let (mut sender, _conn) = connect(&origin).await;
    let reset = sender
        .send_request(request("r1", &[("x-reset-after-read", "1")]))
        .await;
    assert!(reset.is_err(), "expected a stream reset");
    let ok = sender
        .send_request(request("r2", &[]))
        .await
        .expect("the connection survives");
    assert_eq!(ok.status(), 200);
    assert_eq!((origin.processed("r1"), origin.processed("r2")), (1, 1));
    assert_eq!(origin.stats().requests_reset, 1);
}

#[tokio::test(start_paused = true)]
async fn a_bad_knob_is_a_400_on_the_stream() {
    let origin = Origin::builder().start().await.expect("start origin");
    let (mut sender, _conn) = connect(&origin).await;
    let response = send(&mut sender, request("bad", &[("x-body-size", "lots")]))
        .await
        .expect("response");
    assert_eq!(response.status(), 400);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("x-body-size"));
    assert_eq!(origin.processed("bad"), 0);
    assert_eq!(origin.stats().requests_rejected, 1);
}
