//! The TLS serve loop: HTTP/1.1 or HTTP/2 to clients, chosen by ALPN,
//! with the plain loop's accept loop, drain and [`ClientAddr`].

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

use crate::proxy::{ClientAddr, ClientTls, Proxy};
use crate::server::{accept_loop, http_builder};
use crate::upstream::Upstream;

/// How long a client may take over its TLS handshake before its
/// connection is closed.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The ALPN protocols offered when the caller's config offers none, in
/// order of preference.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Serves `proxy` over TLS on `listener` until `shutdown` resolves, then
/// drains as [`serve`](crate::serve) does.
///
/// `tls` is the server's certificate, key and crypto provider. When its
/// `alpn_protocols` is empty, `h2` and `http/1.1` are offered (in that
/// order); otherwise the caller's list is kept. Each connection is HTTP/2
/// when ALPN chose `h2`, HTTP/1.1 (with upgrades) when it chose
/// `http/1.1`, and whichever the client speaks when ALPN chose nothing.
/// Every request carries the peer's [`ClientAddr`] and the [`ClientTls`]
/// marker, so `X-Forwarded-Proto` is `https`.
///
/// A handshake that fails, or takes longer than [`TLS_HANDSHAKE_TIMEOUT`],
/// closes that connection and is logged (at `debug`); the loop goes on.
/// A connection still in its handshake when `shutdown` resolves holds the
/// drain until its handshake ends (at most that timeout).
///
/// Available with the `rustls` feature.
///
/// ```no_run
/// use freshpool_proxy::{Proxy, RequestBody};
/// use rustls::pki_types::pem::PemObject;
/// use rustls::pki_types::{CertificateDer, PrivateKeyDer};
///
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let certs = CertificateDer::pem_file_iter("cert.pem")?.collect::<Result<Vec<_>, _>>()?;
/// let key = PrivateKeyDer::from_pem_file("key.pem")?;
/// let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
/// let tls = rustls::ServerConfig::builder_with_provider(provider)
///     .with_safe_default_protocol_versions()?
///     .with_no_client_auth()
///     .with_single_cert(certs, key)?;
/// let client = freshpool::Client::builder().build_http::<RequestBody>()?;
/// let proxy = Proxy::builder("http://127.0.0.1:8080".parse()?).build(client)?;
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
/// let ctrl_c = async { let _ = tokio::signal::ctrl_c().await; };
/// freshpool_proxy::serve_tls(listener, tls, proxy, ctrl_c).await?;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// As [`serve`](crate::serve): only when the listener's local address
/// cannot be read.
pub async fn serve_tls<Cl, F>(
    listener: TcpListener,
    tls: ServerConfig,
    proxy: Proxy<Cl>,
    shutdown: F,
) -> io::Result<()>
where
    Cl: Upstream,
    F: Future<Output = ()>,
{
    serve_tls_with_drain(listener, tls, proxy, shutdown, None).await
}

/// As [`serve_tls`], but the drain after `shutdown` waits at most `drain`:
/// connections still busy then are dropped.
///
/// # Errors
///
/// As [`serve_tls`].
pub async fn serve_tls_with_drain<Cl, F>(
    listener: TcpListener,
    mut tls: ServerConfig,
    proxy: Proxy<Cl>,
    shutdown: F,
    drain: Option<Duration>,
) -> io::Result<()>
where
    Cl: Upstream,
    F: Future<Output = ()>,
{
    if tls.alpn_protocols.is_empty() {
        tls.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    }
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let builders = Arc::new(Builders {
        any: http_builder(),
        http1: http_builder().http1_only(),
        http2: http_builder().http2_only(),
    });
    accept_loop(listener, shutdown, drain, move |stream, peer, watcher| {
        let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
        let builders = Arc::clone(&builders);
        let proxy = proxy.clone();
        async move {
            let stream = match handshake.await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(%error, %peer, "TLS handshake failed; connection closed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, timeout = ?TLS_HANDSHAKE_TIMEOUT,
                        "TLS handshake timed out; connection closed");
                    return;
                }
            };
            let builder = builders.for_alpn(stream.get_ref().1.alpn_protocol());
            let service = service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(ClientAddr(peer));
                req.extensions_mut().insert(ClientTls);
                proxy.forward(req)
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(error) = watcher.watch(conn).await {
                tracing::debug!(%error, %peer, "TLS client connection ended with an error");
            }
        }
    })
    .await
}

/// One connection builder per ALPN outcome.
struct Builders {
    any: auto::Builder<TokioExecutor>,
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn for_alpn(&self, protocol: Option<&[u8]>) -> &auto::Builder<TokioExecutor> {
        match protocol {
            Some(b"h2") => &self.http2,
            Some(b"http/1.1") => &self.http1,
            _ => &self.any,
        }
    }
}
