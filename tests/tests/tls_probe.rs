//! Each probe state over a real TLS connection to the origin's TLS mode,
//! first on a tokio-rustls stream made by hand (nobody reads it, so what
//! the server sent is still on the socket), then through
//! `freshpool::Client` over hyper-rustls's `HttpsConnector` with the
//! `rustls` feature and no wrapper.
//!
//! The point of the TLS rule: a `KeyUpdate` (like a session ticket) on an
//! idle connection is bytes a peek sees, yet the connection is healthy; a
//! `close_notify` is bytes too, with the FIN behind them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshpool::{Liveness, Probe};
use freshpool_origin::{CloseMode, Origin, TlsClose};
use freshpool_tests::tls::{
    self, HeldConnector, Hold, connect, get_through, https_connector, tls_origin,
};
use http_body_util::Empty;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads one response head (the origin's responses here have no body) and
/// returns it.
async fn read_head(stream: &mut (impl AsyncReadExt + Unpin)) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read the response");
        assert_eq!(n, 1, "the connection closed mid-response: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("an ASCII head")
}

async fn get(stream: &mut (impl AsyncReadExt + AsyncWriteExt + Unpin), id: &str) -> String {
    let request = format!("GET / HTTP/1.1\r\nhost: localhost\r\nx-request-id: {id}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the request");
    stream.flush().await.expect("flush");
    read_head(stream).await
}

/// Probes with `probe` until it differs from `Alive` or two seconds pass.
async fn settled(probe: impl Fn() -> Liveness) -> Liveness {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let state = probe();
        if state != Liveness::Alive || Instant::now() >= deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn key_update_pending_on_an_idle_connection_is_alive_and_reusable() {
    let origin = tls_origin(
        Origin::builder()
            .idle_timeout(Duration::from_secs(5))
            .tls_key_update_when_idle(Duration::from_millis(20)),
    )
    .await;
    let mut tls = connect(&origin).await;
    let head = get(&mut tls, "k1").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");

    // The KeyUpdate record arrives and sits unread: a peek sees bytes.
    assert_eq!(
        settled(|| tls.get_ref().0.probe()).await,
        Liveness::Unexpected
    );
    assert_eq!(tls.probe(), Liveness::Alive, "records alone do not discard");

    // And the connection really is healthy.
    let head = get(&mut tls, "k2").await;
    assert!(head.contains("x-connection-requests: 2\r\n"), "{head}");
    assert_eq!(origin.stats().connections_accepted, 1);
    origin.shutdown().await;
    // The TLS front and its relays are the origin's tasks too.
    assert_eq!(origin.stats().tasks_alive, 0);
    // Shutdown cuts connections off: a FIN without an alert.
    let mut rest = Vec::new();
    let end = tls.read_to_end(&mut rest).await;
    assert!(
        end.as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{end:?}"
    );
}

#[tokio::test]
async fn close_notify_then_fin_is_closed() {
    let origin = tls_origin(
        Origin::builder()
            .idle_timeout(Duration::from_millis(50))
            .close_mode(CloseMode::Fin)
            .tls_close(TlsClose::Notify),
    )
    .await;
    let mut tls = connect(&origin).await;
    get(&mut tls, "c1").await;

    assert_eq!(settled(|| tls.probe()).await, Liveness::Closed);
    // A one-byte peek sees only the alert in front of the FIN.
    assert_eq!(tls.get_ref().0.probe(), Liveness::Unexpected);
    // It was a clean close: the TLS layer reads end-of-stream.
    let mut rest = Vec::new();
    tls.read_to_end(&mut rest).await.expect("a clean close");
    assert!(rest.is_empty());
    origin.shutdown().await;
}

#[tokio::test]
async fn bare_fin_is_closed() {
    let origin = tls_origin(
        Origin::builder()
            .idle_timeout(Duration::from_millis(50))
            .tls_close(TlsClose::Bare),
    )
    .await;
    let mut tls = connect(&origin).await;
    get(&mut tls, "b1").await;
    assert_eq!(settled(|| tls.probe()).await, Liveness::Closed);
    assert_eq!(tls.get_ref().0.probe(), Liveness::Closed);
    origin.shutdown().await;
}

#[tokio::test]
async fn rst_is_reset() {
    let origin = tls_origin(
        Origin::builder()
            .idle_timeout(Duration::from_millis(50))
            .close_mode(CloseMode::Rst),
    )
    .await;
    let mut tls = connect(&origin).await;
    get(&mut tls, "r1").await;
    assert_eq!(settled(|| tls.probe()).await, Liveness::Reset);
    origin.shutdown().await;
}

/// hyper-rustls's connector, with reads the test can hold.
/// A freshpool client over hyper-rustls whose connections' reads the test
/// holds while idle, so the pool's probe meets what the server sent.
fn held_client(origin: &Origin) -> tls::HeldClient<HttpsConnector<HttpConnector>> {
    let hold = Arc::new(Hold::default());
    let connector = HeldConnector::new(https_connector(origin), Arc::clone(&hold));
    let client = freshpool::Client::builder()
        .build(connector)
        .expect("valid settings");
    (client, hold)
}

#[tokio::test]
async fn the_pool_reuses_a_connection_with_a_key_update_pending() {
    tls::the_pool_reuses_a_connection_with_a_key_update_pending(held_client).await;
}

#[tokio::test]
async fn the_pool_rejects_a_connection_with_close_notify_and_fin_pending_as_closed() {
    tls::the_pool_rejects_a_connection_with_close_notify_and_fin_pending_as_closed(held_client)
        .await;
}

#[tokio::test]
async fn the_pool_rejects_a_reset_tls_connection_as_reset() {
    tls::the_pool_rejects_a_reset_tls_connection_as_reset(held_client).await;
}

#[tokio::test]
async fn https_connector_needs_no_wrapper() {
    // hyper-rustls's own connector, as a user builds it: it compiles
    // because the `rustls` feature implements `Probe` for its stream.
    let origin = tls_origin(Origin::builder().idle_timeout(Duration::from_secs(5))).await;
    let client = freshpool::Client::builder()
        .build::<_, Empty<Bytes>>(https_connector(&origin))
        .expect("valid settings");
    let first = get_through(&client, &origin).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = get_through(&client, &origin).await;
    assert_eq!(first, second);
    assert_eq!(client.stats().total.reused, 1);
    origin.shutdown().await;
}
