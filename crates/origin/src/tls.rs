//! The TLS mode: a rustls front that terminates TLS and relays each
//! connection, byte for byte, to the plain origin behind it.
//!
//! Every knob of the plain origin therefore applies unchanged: the origin's
//! idle timer, close modes, counters and per-request headers see the
//! relayed connection as they see any other, and the front turns what the
//! origin does to it into its TLS equivalent on the client's connection:
//!
//! | the origin | the client sees |
//! |---|---|
//! | bytes | the same bytes, in TLS records |
//! | a FIN (idle close, `Connection: close`, `408` then close) | a `close_notify` alert, then a FIN ([`TlsClose::Notify`]), or a bare FIN ([`TlsClose::Bare`]) |
//! | an RST | an RST, no alert |
//!
//! and the client's FIN or RST reaches the origin the same way. One front
//! connection is one origin connection, accepted after the handshake.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use socket2::SockRef;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::builder::Builder;
use crate::server::{accept_until_stopped, stopped};
use crate::stats::Shared;

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How much one relay read asks for.
const RELAY_CHUNK: usize = 16 * 1024;

/// How the TLS front closes a connection the origin closed with a FIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TlsClose {
    /// A `close_notify` alert, then a FIN, as nginx and most TLS servers
    /// close. The default. The alert is bytes *before* the FIN: a client
    /// that peeks one byte sees data, not the close.
    #[default]
    Notify,
    /// A FIN without a `close_notify` (a truncating close, as some servers
    /// and load balancers do).
    Bare,
}

/// The TLS settings of a [`Builder`]; off unless [`Builder::tls`] is set.
#[derive(Debug, Clone, Default)]
pub(crate) struct TlsSettings {
    enabled: bool,
    close: TlsClose,
    key_update_when_idle: Option<Duration>,
}

impl TlsSettings {
    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }
}

/// TLS settings, available with the `tls` feature.
impl Builder {
    /// Serves HTTPS instead of plain HTTP: rustls (TLS 1.3 and 1.2, ALPN
    /// `http/1.1`) with a self-signed certificate for `localhost` and
    /// `127.0.0.1`, generated at start and read back with
    /// [`Origin::tls_certificate`](crate::Origin::tls_certificate).
    /// Default: `false`.
    ///
    /// Every other setting and header knob applies as over plain HTTP (the
    /// TLS front relays each connection to the plain origin); an origin
    /// FIN becomes [`tls_close`](Builder::tls_close)'s close, an origin RST
    /// an RST. h2c is not offered over TLS.
    pub fn tls(mut self, enabled: bool) -> Self {
        self.tls.enabled = enabled;
        self
    }

    /// How a connection closed by the origin with a FIN is closed over
    /// TLS. Default: [`TlsClose::Notify`] (`close_notify`, then a FIN).
    pub fn tls_close(mut self, close: TlsClose) -> Self {
        self.tls.close = close;
        self
    }

    /// Sends a TLS 1.3 `KeyUpdate` record on a connection that has been
    /// quiet for `after` since the last response bytes, once per response.
    /// Default: never.
    ///
    /// Like the session tickets a TLS 1.3 server may send at any time, the
    /// record is not an HTTP response: it sits unread on the client's idle
    /// socket until its TLS layer reads it, and a client that discards idle
    /// connections with pending bytes discards a healthy one.
    pub fn tls_key_update_when_idle(mut self, after: Duration) -> Self {
        self.tls.key_update_when_idle = Some(after);
        self
    }
}

/// The self-signed certificate of an origin in TLS mode, for a client to
/// trust.
#[derive(Clone)]
pub struct TlsCertificate {
    der: CertificateDer<'static>,
    pem: String,
}

impl TlsCertificate {
    /// The certificate, DER-encoded (`rustls::RootCertStore::add` takes
    /// it).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate, PEM-encoded (`native_tls::Certificate::from_pem`
    /// takes it).
    pub fn pem(&self) -> &str {
        &self.pem
    }
}

impl fmt::Debug for TlsCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsCertificate")
            .field("der_len", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// A running TLS front.
pub(crate) struct Front {
    pub(crate) addr: SocketAddr,
    pub(crate) certificate: TlsCertificate,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Front {
    /// Binds `listen` and relays every connection to `origin`.
    pub(crate) async fn start(
        listen: SocketAddr,
        origin: SocketAddr,
        settings: &TlsSettings,
        shared: &Arc<Shared>,
        signal: watch::Receiver<bool>,
    ) -> io::Result<Front> {
        let (acceptor, certificate) = acceptor()?;
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let relay = Relay {
            origin,
            close: settings.close,
            key_update_when_idle: settings.key_update_when_idle,
        };
        let guard = shared.task_guard();
        let accept = accept_loop(listener, acceptor, relay, signal);
        let task = tokio::spawn(async move {
            let _guard = guard;
            accept.await;
        });
        Ok(Front {
            addr,
            certificate,
            task: Mutex::new(Some(task)),
        })
    }

    /// Waits for the accept loop and every relay to end (after the
    /// shutdown signal).
    pub(crate) async fn join(&self) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            // The loop never panics; an error means the runtime is ending.
            let _ = task.await;
        }
    }
}

fn acceptor() -> io::Result<(TlsAcceptor, TlsCertificate)> {
    let invalid = |what: &str, e: &dyn fmt::Display| io::Error::other(format!("{what}: {e}"));
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let generated = rcgen::generate_simple_self_signed(names)
        .map_err(|e| invalid("generating the TLS certificate", &e))?;
    let der = generated.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(generated.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS protocol versions", &e))?
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .map_err(|e| invalid("the TLS certificate", &e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let certificate = TlsCertificate {
        pem: generated.cert.pem(),
        der,
    };
    Ok((TlsAcceptor::from(Arc::new(config)), certificate))
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    relay: Relay,
    signal: watch::Receiver<bool>,
) {
    let serve = |(stream, _)| {
        let acceptor = acceptor.clone();
        let signal = signal.clone();
        async move {
            tokio::select! {
                () = relay.serve(acceptor, stream) => {}
                () = stopped(signal) => {}
            }
        }
    };
    accept_until_stopped(listener, serve, signal.clone()).await;
}

#[derive(Debug, Clone, Copy)]
struct Relay {
    origin: SocketAddr,
    close: TlsClose,
    key_update_when_idle: Option<Duration>,
}

impl Relay {
    async fn serve(self, acceptor: TlsAcceptor, client: TcpStream) {
        let _ = client.set_nodelay(true);
        let Ok(Ok(mut tls)) =
            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client)).await
        else {
            return;
        };
        let Ok(mut origin) = TcpStream::connect(self.origin).await else {
            abort(tls.get_ref().0);
            return;
        };
        let _ = origin.set_nodelay(true);
        let mut from_client = vec![0u8; RELAY_CHUNK];
        let mut from_origin = vec![0u8; RELAY_CHUNK];
        let mut client_done = false;
        let mut key_update_at: Option<Instant> = None;
        loop {
            let key_update = async move {
                match key_update_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = tls.read(&mut from_client), if !client_done => match read {
                    Ok(0) => {
                        client_done = true;
                        let _ = origin.shutdown().await;
                    }
                    Ok(n) => {
                        key_update_at = None;
                        if origin.write_all(&from_client[..n]).await.is_err() {
                            abort(tls.get_ref().0);
                            return;
                        }
                    }
                    Err(_) => {
                        abort(&origin);
                        return;
                    }
                },
                read = origin.read(&mut from_origin) => match read {
                    Ok(0) => {
                        self.close_client(tls).await;
                        return;
                    }
                    Ok(n) => {
                        let written = async {
                            tls.write_all(&from_origin[..n]).await?;
                            tls.flush().await
                        };
                        if written.await.is_err() {
                            abort(&origin);
                            return;
                        }
                        key_update_at = self.key_update_when_idle.map(|after| Instant::now() + after);
                    }
                    Err(_) => {
                        abort(tls.get_ref().0);
                        return;
                    }
                },
                () = key_update => {
                    key_update_at = None;
                    let sent = tls.get_mut().1.refresh_traffic_keys().is_ok()
                        && tls.flush().await.is_ok();
                    if !sent {
                        abort(&origin);
                        return;
                    }
                }
            }
        }
    }

    /// The origin sent its FIN: close the client's connection the TLS way.
    async fn close_client(self, mut tls: TlsStream<TcpStream>) {
        match self.close {
            TlsClose::Notify => {
                // `close_notify`, flushed, then the TCP write side shut down.
                let _ = tls.shutdown().await;
            }
            TlsClose::Bare => {
                let _ = tls.get_mut().0.shutdown().await;
            }
        }
    }
}

/// Drops the connection with an RST (`SO_LINGER` 0) once its owner drops
/// it.
fn abort(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}
