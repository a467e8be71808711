//! A serve loop for a [`Proxy`]: HTTP/1.1 and h2c to clients, the peer's
//! address as a request extension, graceful shutdown. The TLS loop
//! (`tls.rs`) shares its accept loop and drain.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use http::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::proxy::{ClientAddr, Proxy};
use crate::upstream::Upstream;

/// Serves `proxy` on `listener` until `shutdown` resolves, then drains:
/// it stops accepting, lets every request in flight finish (idle
/// keep-alive connections are closed at once, busy ones after their
/// response), and returns when the last connection has ended.
///
/// Each connection is HTTP/1.1 or HTTP/2 over cleartext (prior knowledge),
/// whichever the client speaks, with upgrades. Every request carries the
/// peer's [`ClientAddr`].
///
/// # Errors
///
/// Only when the listener's local address cannot be read; an `accept`
/// error (too many open files, a connection reset before it was accepted)
/// is logged and the loop goes on.
pub async fn serve<Cl, F>(listener: TcpListener, proxy: Proxy<Cl>, shutdown: F) -> io::Result<()>
where
    Cl: Upstream,
    F: Future<Output = ()>,
{
    serve_with_drain(listener, proxy, shutdown, None).await
}

/// As [`serve`], but the drain after `shutdown` waits at most `drain`:
/// connections still busy then are dropped.
///
/// # Errors
///
/// As [`serve`].
pub async fn serve_with_drain<Cl, F>(
    listener: TcpListener,
    proxy: Proxy<Cl>,
    shutdown: F,
    drain: Option<Duration>,
) -> io::Result<()>
where
    Cl: Upstream,
    F: Future<Output = ()>,
{
    let builder = http_builder();
    accept_loop(listener, shutdown, drain, move |stream, peer, watcher| {
        let proxy = proxy.clone();
        let service = service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ClientAddr(peer));
            proxy.forward(req)
        });
        let conn = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let conn = watcher.watch(conn);
        async move {
            if let Err(error) = conn.await {
                tracing::debug!(%error, %peer, "client connection ended with an error");
            }
        }
    })
    .await
}

/// The connection builder every serve loop starts from: HTTP/1.1 or
/// HTTP/2, whichever the client speaks, with hyper-util's timer.
pub(crate) fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    builder
}

/// Accepts on `listener` until `shutdown` resolves, runs what `start`
/// returns for each connection as a task (`start` wraps the connection in
/// the [`Watcher`] it is given), then drains as [`serve_with_drain`]
/// describes.
pub(crate) async fn accept_loop<F, S, C>(
    listener: TcpListener,
    shutdown: F,
    drain: Option<Duration>,
    mut start: S,
) -> io::Result<()>
where
    F: Future<Output = ()>,
    S: FnMut(TcpStream, SocketAddr, Watcher) -> C,
    C: Future<Output = ()> + Send + 'static,
{
    let local = listener.local_addr()?;
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut tasks = JoinSet::new();
    loop {
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::debug!(%error, %local, "accept failed");
                    // Out of descriptors: let connections end before trying again.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        tasks.spawn(start(stream, peer, graceful.watcher()));
    }
    drop(listener);
    tracing::debug!(%local, connections = graceful.count(), "draining");
    match drain {
        Some(limit) => {
            if tokio::time::timeout(limit, graceful.shutdown())
                .await
                .is_err()
            {
                tracing::debug!(%local, "drain took too long; dropping busy connections");
            }
        }
        None => graceful.shutdown().await,
    }
    tasks.shutdown().await;
    Ok(())
}
