//! The TLS mode: the plain origin's knobs over rustls, and how each close
//! looks to a TLS client.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use freshpool_origin::{CloseMode, Origin, TlsClose};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

async fn connect(origin: &Origin) -> TlsStream<TcpStream> {
    let der = origin.tls_certificate().expect("TLS mode").der().to_vec();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(der))
        .expect("a valid certificate");
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("default versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    // Offered, as a browser would; the origin speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(origin.addr()).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::from(Ipv4Addr::LOCALHOST), tcp)
        .await
        .expect("handshake")
}

/// Sends `request` and reads until the connection ends (the requests here
/// close it), returning what was read and how the stream ended.
async fn exchange(tls: &mut TlsStream<TcpStream>, request: &str) -> (String, std::io::Result<()>) {
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut seen = Vec::new();
    let end = tls.read_to_end(&mut seen).await.map(drop);
    (String::from_utf8_lossy(&seen).into_owned(), end)
}

#[tokio::test]
async fn header_knobs_apply_and_connection_close_ends_with_close_notify() {
    let origin = Origin::builder().tls(true).start().await.expect("start");
    assert!(origin.base_url().starts_with("https://127.0.0.1:"));
    let mut tls = connect(&origin).await;
    let (response, end) = exchange(
        &mut tls,
        "GET / HTTP/1.1\r\nhost: localhost\r\nx-request-id: a\r\nx-status: 503\r\n\
         x-body-size: 5\r\nx-close: 1\r\n\r\n",
    )
    .await;
    assert!(response.starts_with("HTTP/1.1 503 "), "{response}");
    assert!(response.ends_with("\r\n\r\nabcde"), "{response}");
    end.expect("a clean close: close_notify before the FIN");
    assert_eq!(origin.processed("a"), 1);
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    origin.shutdown().await;
    assert_eq!(origin.stats().tasks_alive, 0);
}

#[tokio::test]
async fn idle_408_arrives_over_tls_then_close_notify() {
    let origin = Origin::builder()
        .tls(true)
        .idle_timeout(Duration::from_millis(30))
        .close_mode(CloseMode::Timeout408)
        .start()
        .await
        .expect("start");
    let mut tls = connect(&origin).await;
    let mut seen = Vec::new();
    tls.read_to_end(&mut seen).await.expect("a clean close");
    assert!(seen.starts_with(b"HTTP/1.1 408 "), "{seen:?}");
    origin.shutdown().await;
}

#[tokio::test]
async fn bare_close_and_rst_are_not_clean() {
    let origin = Origin::builder()
        .tls(true)
        .idle_timeout(Duration::from_millis(30))
        .tls_close(TlsClose::Bare)
        .start()
        .await
        .expect("start");
    let mut tls = connect(&origin).await;
    let mut seen = Vec::new();
    let err = tls
        .read_to_end(&mut seen)
        .await
        .expect_err("no close_notify");
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    origin.shutdown().await;

    let origin = Origin::builder()
        .tls(true)
        .idle_timeout(Duration::from_millis(30))
        .close_mode(CloseMode::Rst)
        .start()
        .await
        .expect("start");
    let mut tls = connect(&origin).await;
    let err = tls.read_to_end(&mut seen).await.expect_err("a reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    origin.shutdown().await;
}

#[tokio::test]
async fn plain_origins_have_no_certificate() {
    let origin = Origin::builder().start().await.expect("start");
    assert!(origin.tls_certificate().is_none());
    assert!(origin.base_url().starts_with("http://"));
    origin.shutdown().await;
}
