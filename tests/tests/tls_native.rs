//! The probe states over native-tls (OpenSSL here): `freshpool::Client`
//! over hyper-tls's `HttpsConnector` with the `native-tls` feature, against
//! the origin's TLS mode, with hyper's idle reads held so the pool's probe
//! meets what the server sent. Runs with `--features native-tls` (see
//! tests/Cargo.toml).

use std::sync::Arc;
use std::time::{Duration, Instant};

use freshpool::{Liveness, Probe};
use freshpool_origin::{Origin, TlsClose};
use freshpool_tests::tls::{self, HeldConnector, Hold, http_for_tls, tls_origin};
use hyper_tls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_native_tls::native_tls;

fn tls_connector(origin: &Origin) -> native_tls::TlsConnector {
    let pem = origin.tls_certificate().expect("TLS mode").pem();
    let certificate = native_tls::Certificate::from_pem(pem.as_bytes()).expect("a PEM certificate");
    native_tls::TlsConnector::builder()
        .add_root_certificate(certificate)
        .disable_built_in_roots(true)
        .build()
        .expect("a native-tls connector")
}

fn held_client(origin: &Origin) -> tls::HeldClient<HttpsConnector<HttpConnector>> {
    let https = HttpsConnector::from((http_for_tls(), tls_connector(origin).into()));
    let hold = Arc::new(Hold::default());
    let client = freshpool::Client::builder()
        .build(HeldConnector::new(https, Arc::clone(&hold)))
        .expect("valid settings");
    (client, hold)
}

#[tokio::test]
async fn key_update_pending_is_reused() {
    tls::the_pool_reuses_a_connection_with_a_key_update_pending(held_client).await;
}

#[tokio::test]
async fn close_notify_and_fin_pending_is_closed() {
    tls::the_pool_rejects_a_connection_with_close_notify_and_fin_pending_as_closed(held_client)
        .await;
}

#[tokio::test]
async fn rst_pending_is_reset() {
    tls::the_pool_rejects_a_reset_tls_connection_as_reset(held_client).await;
}

#[tokio::test]
async fn a_tokio_native_tls_stream_probes_its_socket_with_the_tls_rule() {
    let origin = tls_origin(
        Origin::builder()
            .idle_timeout(Duration::from_millis(50))
            .tls_close(TlsClose::Notify),
    )
    .await;
    let tcp = tokio::net::TcpStream::connect(origin.addr())
        .await
        .expect("connect");
    let connector = tokio_native_tls::TlsConnector::from(tls_connector(&origin));
    let mut tls = connector
        .connect("127.0.0.1", tcp)
        .await
        .expect("handshake");
    tls.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(tls.read(&mut byte).await.expect("read"), 1);
        head.push(byte[0]);
    }
    assert_eq!(tls.probe(), Liveness::Alive);
    let deadline = Instant::now() + Duration::from_secs(2);
    while tls.probe() == Liveness::Alive && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(tls.probe(), Liveness::Closed);
    let socket = tls.get_ref().get_ref().get_ref();
    assert_eq!(
        socket.probe(),
        Liveness::Unexpected,
        "the alert before the FIN"
    );
    origin.shutdown().await;
}
