//! What a connection is, for the requests that ran on it: the connector's
//! [`Connected`] (its extras reach every response's extensions, as with
//! hyper-util's Client), [`capture_connection`], and
//! [`ConnectionInfo::poison`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use http::{Extensions, Request};
use hyper_util::client::legacy::connect::Connected;
use tokio::sync::watch;

/// The one sequence that numbers connections in this process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// The next connection id: one sequence per process, shared by every
/// freshpool [`Client`](crate::Client) and by `freshpool-legacy`'s
/// `Connector`, so that an id (in a log, or from [`ConnectionInfo::id`])
/// names one connection whichever client made it. Ids start at 1 and do
/// not repeat.
pub fn next_connection_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// What the connector said about one connection, shared by every request
/// that runs on it.
///
/// Captured with [`capture_connection`]. [`poison`](Self::poison) keeps the
/// connection out of the pool.
#[derive(Clone)]
pub struct ConnectionInfo {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    connected: Connected,
    poisoned: AtomicBool,
}

impl ConnectionInfo {
    pub(crate) fn new(id: u64, connected: Connected) -> ConnectionInfo {
        ConnectionInfo {
            inner: Arc::new(Inner {
                id,
                connected,
                poisoned: AtomicBool::new(false),
            }),
        }
    }

    /// The connection's number (see [`next_connection_id`]), as the pool's
    /// logs give it.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The connector's description of the connection.
    pub fn connected(&self) -> &Connected {
        &self.inner.connected
    }

    /// The connection goes through a forward proxy.
    pub fn is_proxied(&self) -> bool {
        self.inner.connected.is_proxied()
    }

    /// Copies the connector's extras (such as hyper-util's `HttpInfo`, with
    /// the remote and local addresses) into `extensions`.
    pub fn get_extras(&self, extensions: &mut Extensions) {
        self.inner.connected.get_extras(extensions);
    }

    /// Keeps the connection out of the pool: once its current requests
    /// end, it is closed instead of reused.
    pub fn poison(&self) {
        self.inner.poisoned.store(true, Ordering::Relaxed);
        tracing::debug!("connection poisoned: it will not be reused");
    }

    /// Whether [`poison`](Self::poison) was called.
    pub fn is_poisoned(&self) -> bool {
        self.inner.poisoned.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for ConnectionInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectionInfo")
            .field("id", &self.inner.id)
            .field("connected", &self.inner.connected)
            .field("poisoned", &self.is_poisoned())
            .finish()
    }
}

/// The receiving end of [`capture_connection`].
#[derive(Debug, Clone)]
pub struct CaptureConnection {
    rx: watch::Receiver<Option<ConnectionInfo>>,
}

/// The request extension [`capture_connection`] leaves for the client.
#[derive(Clone)]
pub(crate) struct CaptureSender(Arc<watch::Sender<Option<ConnectionInfo>>>);

impl CaptureSender {
    /// Reports the connection the request is about to run on (a retry
    /// reports its own).
    pub(crate) fn set(&self, info: &ConnectionInfo) {
        self.0.send_replace(Some(info.clone()));
    }
}

/// Asks the client to report which connection `request` runs on, as
/// hyper-util's `capture_connection` does for its Client.
///
/// ```no_run
/// use bytes::Bytes;
/// use http_body_util::Empty;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let client = freshpool::Client::builder().build_http::<Empty<Bytes>>()?;
/// let mut req = http::Request::get("http://127.0.0.1:8080/").body(Empty::new())?;
/// let captured = freshpool::capture_connection(&mut req);
/// let _response = client.request(req).await?;
/// if let Some(info) = captured.connection_metadata() {
///     // This connection misbehaved: never reuse it.
///     info.poison();
/// }
/// # Ok(())
/// # }
/// ```
pub fn capture_connection<B>(request: &mut Request<B>) -> CaptureConnection {
    let (tx, rx) = watch::channel(None);
    request.extensions_mut().insert(CaptureSender(Arc::new(tx)));
    CaptureConnection { rx }
}

impl CaptureConnection {
    /// The connection, once the client has one for the request.
    pub fn connection_metadata(&self) -> Option<ConnectionInfo> {
        self.rx.borrow().clone()
    }

    /// Waits until the client has a connection for the request (`None` if
    /// the request ended without one).
    pub async fn wait_for_connection_metadata(&mut self) -> Option<ConnectionInfo> {
        if let Some(info) = self.rx.borrow().clone() {
            return Some(info);
        }
        let _ = self.rx.changed().await;
        self.rx.borrow().clone()
    }
}
