//! The [`Origin`] handle and its accept loop.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::builder::{Builder, Config};
use crate::conn;
use crate::h2::StreamTasks;
use crate::stats::{CloseReason, ConnectionRecord, Shared, Stats};

/// A running origin server.
///
/// Created with [`Origin::builder`]. It listens until
/// [`shutdown`](Origin::shutdown) is awaited or the handle is dropped;
/// meanwhile its counters can be read at any time.
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use tokio::net::TcpStream;
/// use freshpool_origin::Origin;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let origin = Origin::builder().body_size(5).start().await?;
///
/// let mut stream = TcpStream::connect(origin.addr()).await?;
/// stream
///     .write_all(b"GET / HTTP/1.1\r\nhost: a\r\nx-request-id: r1\r\nconnection: close\r\n\r\n")
///     .await?;
/// let mut response = String::new();
/// stream.read_to_string(&mut response).await?;
/// assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(response.ends_with("\r\n\r\nabcde"));
///
/// assert_eq!(origin.processed("r1"), 1);
/// origin.shutdown().await;
/// assert_eq!(origin.stats().tasks_alive, 0);
/// # Ok(())
/// # }
/// ```
pub struct Origin {
    addr: SocketAddr,
    idle_timeout: Duration,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    accept_task: Mutex<Option<JoinHandle<()>>>,
    /// Further accept loops ([`Origin::listen_unix`]).
    listeners: Mutex<Vec<JoinHandle<()>>>,
    /// The TLS front in TLS mode; `addr` is then its address.
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::Front>,
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Origin")
            .field("addr", &self.addr)
            .field("stats", &self.shared.snapshot())
            .finish_non_exhaustive()
    }
}

impl Origin {
    /// A [`Builder`] with default settings.
    pub fn builder() -> Builder {
        Builder::new()
    }

    pub(crate) async fn start(listen: SocketAddr, config: Config) -> io::Result<Origin> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let idle_timeout = config.idle_timeout;
        let (shutdown, signal) = watch::channel(false);
        let guard = shared.task_guard();
        let accept = accept_loop(listener, Arc::new(config), Arc::clone(&shared), signal);
        let accept_task = tokio::spawn(async move {
            let _guard = guard;
            accept.await;
        });
        Ok(Origin {
            addr,
            idle_timeout,
            shared,
            shutdown,
            accept_task: Mutex::new(Some(accept_task)),
            listeners: Mutex::new(Vec::new()),
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// Runs another accept loop as part of this origin: it is handed the
    /// shutdown signal, counts in [`Stats::tasks_alive`], and
    /// [`shutdown`](Origin::shutdown) waits for it.
    pub(crate) fn spawn_listener<F>(&self, accept: impl FnOnce(watch::Receiver<bool>) -> F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let guard = self.shared.task_guard();
        let accept = accept(self.shutdown.subscribe());
        let task = tokio::spawn(async move {
            let _guard = guard;
            accept.await;
        });
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }

    /// Starts the plain origin on a free loopback port and the TLS front
    /// that relays to it on `listen`.
    #[cfg(feature = "tls")]
    pub(crate) async fn start_tls(
        listen: SocketAddr,
        config: Config,
        tls: &crate::tls::TlsSettings,
    ) -> io::Result<Origin> {
        let behind = SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0));
        let mut origin = Origin::start(behind, config).await?;
        let signal = origin.shutdown.subscribe();
        let front =
            crate::tls::Front::start(listen, origin.addr, tls, &origin.shared, signal).await?;
        origin.addr = front.addr;
        origin.tls = Some(front);
        Ok(origin)
    }

    /// The self-signed certificate a client must trust, in TLS mode
    /// ([`Builder::tls`]); `None` over plain HTTP.
    #[cfg(feature = "tls")]
    pub fn tls_certificate(&self) -> Option<&crate::TlsCertificate> {
        self.tls.as_ref().map(|front| &front.certificate)
    }

    /// The address the server listens on (the TLS front's, in TLS mode).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>` (`https://` in TLS mode), ready to have a path
    /// appended.
    pub fn base_url(&self) -> String {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return format!("https://{}", self.addr);
        }
        format!("http://{}", self.addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.snapshot()
    }

    /// How many times the request with this `x-request-id` was processed
    /// (0 if never).
    pub fn processed(&self, request_id: &str) -> u32 {
        self.shared.processed(request_id)
    }

    /// Every `x-request-id` processed more than once, with its count,
    /// sorted by id. Empty when no request was processed twice.
    pub fn duplicates(&self) -> Vec<(String, u32)> {
        self.shared.duplicates()
    }

    /// How many distinct `x-request-id`s were processed.
    pub fn request_ids(&self) -> usize {
        self.shared.request_ids()
    }

    /// Closes every HTTP/1.1 connection that is idle right now, at once
    /// and the [`CloseMode`](crate::CloseMode) way, then serves as before:
    /// what a restart, a reload or an overloaded Apache event MPM looks
    /// like to its clients.
    ///
    /// Idle means between requests (or accepted, before any byte): a
    /// connection reading a request or writing a response is left alone,
    /// and so is one whose next request's first byte has arrived. HTTP/2
    /// connections are not affected. Each close is counted in
    /// [`Stats::idle_closes_ordered`] and recorded as
    /// [`CloseReason::ClosedIdle`] once the connection has closed, a moment
    /// after this returns.
    pub fn close_idle(&self) {
        self.shared.idle_control().purge();
    }

    /// Replaces the HTTP/1.1 idle timeout until called again (`None`:
    /// back to the builder's [`idle_timeout`](Builder::idle_timeout)), as an
    /// overloaded server that closes idle connections early does.
    ///
    /// The new timeout applies at once to connections that are idle now,
    /// counted from when each went idle: one idle for longer than the new
    /// timeout closes immediately. Closes are counted as idle-timeout
    /// closes. The `Keep-Alive` header, if any, still advertises the
    /// builder's timeout. HTTP/2 connections keep the builder's.
    pub fn set_idle_timeout(&self, timeout: Option<Duration>) {
        self.shared.idle_control().set_timeout(timeout);
    }

    /// The HTTP/1.1 idle timeout in force: the builder's, or the one set
    /// with [`set_idle_timeout`](Origin::set_idle_timeout).
    pub fn idle_timeout(&self) -> Duration {
        self.shared
            .idle_control()
            .timeout()
            .unwrap_or(self.idle_timeout)
    }

    /// A record of every connection accepted so far, in accept order.
    ///
    /// The log keeps one small record per connection for the life of the
    /// origin, which suits tests and demos, not a server running for days.
    pub fn connections(&self) -> Vec<ConnectionRecord> {
        self.shared.connections()
    }

    /// Stops the server and waits until every task of it has ended.
    ///
    /// Stops accepting (new connects are refused), closes every open
    /// connection (in-flight requests are cut off; closed sockets send a FIN,
    /// or an RST if the client's bytes were left unread) and awaits the
    /// accept loop, every connection task and every HTTP/2 stream task.
    /// Counters stay readable afterwards. Calling it again returns at once.
    ///
    /// # Cancel safety
    ///
    /// Cancelling the returned future does not stop the shutdown: the
    /// server still stops, only the wait is abandoned.
    pub async fn shutdown(&self) {
        self.shutdown.send_replace(true);
        let task = self
            .accept_task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let listeners = std::mem::take(
            &mut *self
                .listeners
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        // The accept loops never panic; a JoinError can only mean the
        // runtime is shutting down, and then nothing is left to wait for.
        for task in task.into_iter().chain(listeners) {
            let _ = task.await;
        }
        #[cfg(feature = "tls")]
        if let Some(front) = &self.tls {
            front.join().await;
        }
    }
}

impl Drop for Origin {
    /// Signals the server to stop; its tasks end on their own shortly after.
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

/// Waits for the shutdown signal (or for the [`Origin`] to be dropped).
pub(crate) async fn stopped(mut signal: watch::Receiver<bool>) {
    // An error means the sender is gone: the handle was dropped.
    let _ = signal.wait_for(|&stop| stop).await;
}

/// A listener the origin accepts connections from: TCP, or a Unix socket.
pub(crate) trait Listener: Send + 'static {
    /// What one accept yields.
    type Accepted: Send + 'static;
    /// Accepts one connection.
    fn accept_one(&self) -> impl Future<Output = io::Result<Self::Accepted>> + Send + '_;
}

impl Listener for TcpListener {
    type Accepted = (TcpStream, SocketAddr);
    fn accept_one(&self) -> impl Future<Output = io::Result<Self::Accepted>> + Send + '_ {
        self.accept()
    }
}

/// Accepts from `listener` until the shutdown signal, running `serve` for
/// each connection as a task of its own; then closes the listener and
/// waits for those tasks (each watches the same signal and ends promptly).
/// An accept error (out of descriptors, a connection that died in the
/// backlog) backs off briefly instead of spinning.
pub(crate) async fn accept_until_stopped<L, F>(
    listener: L,
    mut serve: impl FnMut(L::Accepted) -> F + Send,
    signal: watch::Receiver<bool>,
) where
    L: Listener,
    F: Future<Output = ()> + Send + 'static,
{
    let mut tasks = JoinSet::new();
    let stop = stopped(signal);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            biased;
            () = &mut stop => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept_one() => match accepted {
                Ok(accepted) => {
                    tasks.spawn(serve(accepted));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

async fn accept_loop(
    listener: TcpListener,
    config: Arc<Config>,
    shared: Arc<Shared>,
    signal: watch::Receiver<bool>,
) {
    let serve = |(stream, peer)| {
        connection_task(
            stream,
            peer,
            Arc::clone(&config),
            Arc::clone(&shared),
            signal.clone(),
        )
    };
    accept_until_stopped(listener, serve, signal.clone()).await;
}

fn connection_task(
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<Config>,
    shared: Arc<Shared>,
    signal: watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + 'static {
    let guard = shared.task_guard();
    let id = shared.connection_opened(peer);
    async move {
        let _guard = guard;
        let streams = StreamTasks::new(&shared);
        let reason = tokio::select! {
            reason = conn::serve(stream, id, &config, &shared, &streams) => reason,
            () = stopped(signal) => CloseReason::Shutdown,
        };
        // HTTP/2 stream tasks outlive the connection future; end them here
        // so that no task of a closed connection keeps running.
        streams.shutdown().await;
        shared.connection_closed(id, reason);
    }
}
