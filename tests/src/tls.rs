//! Support for the TLS tests: clients that trust the origin's self-signed
//! certificate, and an IO wrapper that keeps hyper from reading an idle
//! connection, so that what arrived on it is still on the socket when the
//! pool probes.

use std::io;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use freshpool::{Liveness, Probe};
use freshpool_origin::Origin;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tower_service::Service;

/// A rustls client configuration (ring) that trusts exactly `origin`'s
/// certificate.
pub fn client_config(origin: &Origin) -> rustls::ClientConfig {
    let certificate = origin
        .tls_certificate()
        .expect("the origin runs in TLS mode");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(certificate.der().to_vec()))
        .expect("the origin's certificate is valid");
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// hyper-rustls's `HttpsConnector` over `HttpConnector`, trusting `origin`.
pub fn https_connector(origin: &Origin) -> HttpsConnector<HttpConnector> {
    HttpsConnectorBuilder::new()
        .with_tls_config(client_config(origin))
        .https_only()
        .enable_http1()
        .build()
}

/// An `HttpConnector` that accepts `https://` URIs, for a TLS layer to
/// wrap.
pub fn http_for_tls() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http
}

/// A TLS connection to `origin` made by hand with tokio-rustls.
pub async fn connect(origin: &Origin) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(origin.addr()).await.expect("connect");
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(origin)));
    connector
        .connect(ServerName::from(Ipv4Addr::LOCALHOST), tcp)
        .await
        .expect("TLS handshake with the origin")
}

/// Whether reads of the connections of one [`HeldConnector`] are held.
#[derive(Debug, Default)]
pub struct Hold {
    held: AtomicBool,
    wakers: Mutex<Vec<Waker>>,
}

impl Hold {
    /// Holds every read until the connection next writes: like a client
    /// whose connection task has not got round to reading yet.
    pub fn hold_reads(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
        for waker in self.wakers.lock().expect("wakers").drain(..) {
            waker.wake();
        }
    }
}

/// Wraps a connector so that its connections' reads can be held
/// ([`Hold::hold_reads`]). Probes go to the real IO.
#[derive(Debug, Clone)]
pub struct HeldConnector<C> {
    inner: C,
    hold: Arc<Hold>,
}

impl<C> HeldConnector<C> {
    /// Wraps `inner`; `hold` controls its connections.
    pub fn new(inner: C, hold: Arc<Hold>) -> HeldConnector<C> {
        HeldConnector { inner, hold }
    }
}

impl<C> Service<http::Uri> for HeldConnector<C>
where
    C: Service<http::Uri>,
    C::Future: Send + 'static,
{
    type Response = HeldIo<C::Response>;
    type Error = C::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<HeldIo<C::Response>, C::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), C::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let hold = Arc::clone(&self.hold);
        Box::pin(async move {
            Ok(HeldIo {
                io: connecting.await?,
                hold,
            })
        })
    }
}

/// The IO of a [`HeldConnector`].
#[derive(Debug)]
pub struct HeldIo<T> {
    io: T,
    hold: Arc<Hold>,
}

impl<T: Probe> Probe for HeldIo<T> {
    fn probe(&self) -> Liveness {
        self.io.probe()
    }
}

impl<T: Connection> Connection for HeldIo<T> {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl<T: Read + Unpin> Read for HeldIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        if self.hold.held.load(Ordering::SeqCst) {
            self.hold
                .wakers
                .lock()
                .expect("wakers")
                .push(cx.waker().clone());
            // Re-check: a write may have released the hold meanwhile.
            if self.hold.held.load(Ordering::SeqCst) {
                return Poll::Pending;
            }
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> Write for HeldIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.hold.release();
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A client whose connections' reads the test holds while idle, and the
/// hold: what the pool-over-TLS scenarios below run on, for any TLS stack.
pub type HeldClient<C> = (
    freshpool::Client<HeldConnector<C>, http_body_util::Empty<bytes::Bytes>>,
    Arc<Hold>,
);

/// A `GET /` through `client`; returns the origin's connection id.
pub async fn get_through<C: freshpool::Connect>(
    client: &freshpool::Client<C, http_body_util::Empty<bytes::Bytes>>,
    origin: &Origin,
) -> String {
    use http_body_util::BodyExt;
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

/// The origin in its TLS mode, from `builder`.
pub async fn tls_origin(builder: freshpool_origin::Builder) -> Origin {
    builder.tls(true).start().await.expect("TLS origin starts")
}

/// Two `GET`s through a fresh client on a fresh TLS origin from `builder`,
/// `idle` apart, with hyper's reads held in between so that the pool's
/// probe meets what the server sent: the connection ids of the two, the
/// client's totals, and the origin.
async fn two_gets_held_apart<C>(
    builder: freshpool_origin::Builder,
    idle: Duration,
    held_client: impl Fn(&Origin) -> HeldClient<C>,
) -> (String, String, freshpool::OriginStats, Origin)
where
    HeldConnector<C>: freshpool::Connect,
{
    let origin = tls_origin(builder).await;
    let (client, hold) = held_client(&origin);
    let first = get_through(&client, &origin).await;
    hold.hold_reads();
    tokio::time::sleep(idle).await;
    let second = get_through(&client, &origin).await;
    (first, second, client.stats().total, origin)
}

/// A TLS 1.3 KeyUpdate pending on an idle connection is not a close: the
/// pool reuses the connection.
pub async fn the_pool_reuses_a_connection_with_a_key_update_pending<C>(
    held_client: impl Fn(&Origin) -> HeldClient<C>,
) where
    HeldConnector<C>: freshpool::Connect,
{
    // The KeyUpdate arrives at 10 ms and stays on the socket: hyper's
    // reads are held until the next request is written.
    let (first, second, total, origin) = two_gets_held_apart(
        Origin::builder()
            .idle_timeout(Duration::from_secs(5))
            .tls_key_update_when_idle(Duration::from_millis(10)),
        Duration::from_millis(100),
        held_client,
    )
    .await;
    assert_eq!(first, second, "the same connection served both");
    assert_eq!(total.reused, 1, "{total:?}");
    assert_eq!(total.probe_rejected_unexpected, 0, "{total:?}");
    assert_eq!(origin.stats().connections_accepted, 1);
    origin.shutdown().await;
}

/// A `close_notify` and FIN pending on an idle connection: the probe
/// rejects it as closed, and a fresh connection serves the request.
pub async fn the_pool_rejects_a_connection_with_close_notify_and_fin_pending_as_closed<C>(
    held_client: impl Fn(&Origin) -> HeldClient<C>,
) where
    HeldConnector<C>: freshpool::Connect,
{
    let (first, second, total, origin) = two_gets_held_apart(
        Origin::builder()
            .idle_timeout(Duration::from_millis(30))
            .tls_close(freshpool_origin::TlsClose::Notify),
        Duration::from_millis(150),
        held_client,
    )
    .await;
    assert_ne!(first, second, "a fresh connection served the second");
    assert_eq!(total.probe_rejected_closed, 1, "{total:?}");
    assert_eq!(total.probe_rejected_unexpected, 0, "{total:?}");
    assert_eq!(total.reused, 0, "{total:?}");
    origin.shutdown().await;
}

/// A reset TLS connection is rejected as reset.
pub async fn the_pool_rejects_a_reset_tls_connection_as_reset<C>(
    held_client: impl Fn(&Origin) -> HeldClient<C>,
) where
    HeldConnector<C>: freshpool::Connect,
{
    let (_, _, total, origin) = two_gets_held_apart(
        Origin::builder()
            .idle_timeout(Duration::from_millis(30))
            .close_mode(freshpool_origin::CloseMode::Rst),
        Duration::from_millis(150),
        held_client,
    )
    .await;
    assert_eq!(total.probe_rejected_reset, 1, "{total:?}");
    assert_eq!(total.reused, 0, "{total:?}");
    origin.shutdown().await;
}
