//! Serving the origin on a Unix domain socket too ([`Origin::listen_unix`]).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio::sync::watch;

use crate::server::{Listener, Origin, accept_until_stopped, stopped};

impl Origin {
    /// Also serves this origin on a Unix domain socket bound at `path`, for
    /// clients that speak HTTP over Unix sockets.
    ///
    /// Each Unix connection is relayed byte for byte to a loopback TCP
    /// connection of its own to [`addr`](Origin::addr), so everything the
    /// origin does (idle closes, knobs, counters, connection records) holds
    /// for it, one TCP connection per Unix connection. A close of the TCP
    /// side reaches the Unix client as an end-of-file: a FIN or a `408`
    /// arrive as they are, an RST arrives as a close (Unix sockets have no
    /// reset). The relay adds one loopback hop of latency.
    ///
    /// The listener stops with [`shutdown`](Origin::shutdown), which also
    /// removes the socket file.
    ///
    /// ```
    /// use freshpool_origin::Origin;
    /// use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// use tokio::net::UnixStream;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let path = std::env::temp_dir().join(format!("origin-doc-{}.sock", std::process::id()));
    /// # let _ = std::fs::remove_file(&path);
    /// let origin = Origin::builder().start().await?;
    /// origin.listen_unix(&path)?;
    ///
    /// let mut stream = UnixStream::connect(&path).await?;
    /// stream.write_all(b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n").await?;
    /// let mut response = String::new();
    /// stream.read_to_string(&mut response).await?;
    /// assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
    ///
    /// origin.shutdown().await;
    /// assert!(!path.exists());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The error of binding the socket (for example, `path` exists).
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime, like [`tokio::spawn`].
    pub fn listen_unix(&self, path: impl AsRef<Path>) -> io::Result<()> {
        let path = path.as_ref().to_path_buf();
        let listener = UnixListener::bind(&path)?;
        let upstream = self.addr();
        self.spawn_listener(move |signal| relay_loop(listener, path, upstream, signal));
        Ok(())
    }
}

impl Listener for UnixListener {
    type Accepted = (UnixStream, tokio::net::unix::SocketAddr);
    fn accept_one(&self) -> impl Future<Output = io::Result<Self::Accepted>> + Send + '_ {
        self.accept()
    }
}

async fn relay_loop(
    listener: UnixListener,
    path: PathBuf,
    upstream: SocketAddr,
    signal: watch::Receiver<bool>,
) {
    let serve = |(stream, _)| relay(stream, upstream, signal.clone());
    accept_until_stopped(listener, serve, signal.clone()).await;
    let _ = std::fs::remove_file(&path);
}

/// Copies both ways until both sides are closed, passing each end-of-file
/// on as a shutdown of the other side's writes; drops both on an error or
/// at shutdown.
async fn relay(mut client: UnixStream, upstream: SocketAddr, signal: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        () = stopped(signal) => {}
    }
}
