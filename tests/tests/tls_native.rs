//! The probe states over native-tls (OpenSSL here): `freshpool::Client`
//! over hyper-tls's `HttpsConnector` with the `native-tls` feature, against
//! the origin's TLS mode, with hyper's idle reads held so the pool's probe
//! meets what the server sent. Runs with `--features native-tls` (see
//! tests/Cargo.toml).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshpool::{Liveness, Probe};
use freshpool_origin::{CloseMode, Origin, TlsClose};
use freshpool_tests::tls::{HeldConnector, Hold, http_for_tls};
use http_body_util::{BodyExt, Empty};
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

type Held = HeldConnector<HttpsConnector<HttpConnector>>;

fn held_client(origin: &Origin) -> (freshpool::Client<Held, Empty<Bytes>>, Arc<Hold>) {
    let https = HttpsConnector::from((http_for_tls(), tls_connector(origin).into()));
    let hold = Arc::new(Hold::default());
    let client = freshpool::Client::builder()
        .build(HeldConnector::new(https, Arc::clone(&hold)))
        .expect("valid settings");
    (client, hold)
}

async fn get(client: &freshpool::Client<Held, Empty<Bytes>>, origin: &Origin) -> String {
    let url = format!("{}/", origin.base_url());
    let response = client
        .get(url.parse().expect("valid URL"))
        .await
        .expect("a response");
    let connection = response
        .headers()
        .get("x-connection-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    response.into_body().collect().await.expect("the body");
    connection
}

async fn tls_origin(builder: freshpool_origin::Builder) -> Origin {
    builder.tls(true).start().await.expect("TLS origin starts")
}

#[tokio::test]
async fn key_update_pending_is_reused() {
    let origin = tls_origin(
        Origin::builder()
            .idle_timeout(Duration::from_secs(5))
            .tls_key_update_when_idle(Duration::from_millis(10)),
    )
    .await;
    let (client, hold) = held_client(&origin);
    let first = get(&client, &origin).await;
    hold.hold_reads();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = get(&client, &origin).await;
    assert_eq!(first, second);
    let total = client.stats().total;
    assert_eq!(total.reused, 1, "{total:?}");
    assert_eq!(total.probe_rejected_unexpected, 0, "{total:?}");
    origin.shutdown().await;
}

#[tokio::test]
async fn close_notify_and_fin_pending_is_closed() {
    let origin = tls_origin(
        Origin::builder()
            .idle_timeout(Duration::from_millis(30))
            .tls_close(TlsClose::Notify),
    )
    .await;
    let (client, hold) = held_client(&origin);
    let first = get(&client, &origin).await;
    hold.hold_reads();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let second = get(&client, &origin).await;
    assert_ne!(first, second);
    let total = client.stats().total;
    assert_eq!(total.probe_rejected_closed, 1, "{total:?}");
    assert_eq!(total.probe_rejected_unexpected, 0, "{total:?}");
    origin.shutdown().await;
}

#[tokio::test]
async fn rst_pending_is_reset() {
    let origin = tls_origin(
        Origin::builder()
            .idle_timeout(Duration::from_millis(30))
            .close_mode(CloseMode::Rst),
    )
    .await;
    let (client, hold) = held_client(&origin);
    get(&client, &origin).await;
    hold.hold_reads();
    tokio::time::sleep(Duration::from_millis(150)).await;
    get(&client, &origin).await;
    assert_eq!(client.stats().total.probe_rejected_reset, 1);
    origin.shutdown().await;
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
