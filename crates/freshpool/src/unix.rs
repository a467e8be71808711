//! [`UnixConnector`]: HTTP over Unix domain sockets, with the probe.

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tower_service::Service;

/// A connector to Unix domain sockets, for servers such as the Docker
/// daemon, containerd or a local sidecar that listen on a socket path
/// instead of a port.
///
/// Its connections are `TokioIo<UnixStream>`s, which implement
/// [`Probe`](crate::Probe): an idle connection the server closed is caught
/// at checkout as on TCP. The pool keys connections by URI (scheme, host,
/// port), so two socket paths are two origins as long as their URIs differ.
///
/// - [`UnixConnector::new(path)`](UnixConnector::new) sends every request to
///   one socket, whatever its URI says: `http://localhost/containers/json`.
/// - [`UnixConnector::from_uri()`](UnixConnector::from_uri) reads the socket
///   from hyperlocal's `unix://` URIs, whose host is the socket path in hex
///   ([`unix_uri`] makes them, as `hyperlocal::Uri::new` does), so one
///   client reaches many sockets.
///
/// The `Host` header of a `unix://` request is `localhost`.
///
/// ```no_run
/// use bytes::Bytes;
/// use freshpool::UnixConnector;
/// use http_body_util::Empty;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let docker = freshpool::Client::builder()
///     .build::<_, Empty<Bytes>>(UnixConnector::new("/var/run/docker.sock"))?;
/// let response = docker.get("http://localhost/version".parse()?).await?;
///
/// let any_socket = freshpool::Client::builder()
///     .build::<_, Empty<Bytes>>(UnixConnector::from_uri())?;
/// let uri = freshpool::unix_uri("/run/containerd/api.sock", "/v1/version")?;
/// let response = any_socket.get(uri).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct UnixConnector {
    /// The one socket, or `None` to read it from each `unix://` URI.
    path: Option<Arc<Path>>,
}

impl UnixConnector {
    /// A connector that sends every request to the socket at `path`.
    pub fn new(path: impl Into<PathBuf>) -> UnixConnector {
        UnixConnector {
            path: Some(Arc::from(path.into())),
        }
    }

    /// A connector that reads the socket path from each URI, which must be
    /// a hyperlocal-style `unix://<hex-encoded path>[:0]/...` (see
    /// [`unix_uri`]).
    pub fn from_uri() -> UnixConnector {
        UnixConnector { path: None }
    }
}

impl fmt::Debug for UnixConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => f.debug_tuple("UnixConnector").field(path).finish(),
            None => f.write_str("UnixConnector(from URI)"),
        }
    }
}

/// A hyperlocal-style URI for `path_and_query` on the socket at `socket`:
/// `unix://<socket path in hex>:0<path_and_query>`, as `hyperlocal::Uri::new`
/// makes it (the encoding is byte for byte, so any path works).
///
/// # Errors
///
/// When `path_and_query` is not a valid URI path (it must start with `/`).
pub fn unix_uri(socket: impl AsRef<Path>, path_and_query: &str) -> Result<Uri, http::Error> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = socket.as_ref().as_os_str().as_bytes();
    let mut host = String::with_capacity(bytes.len() * 2 + 2);
    for &b in bytes {
        host.push(char::from(HEX[usize::from(b >> 4)]));
        host.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    host.push_str(":0");
    Uri::builder()
        .scheme("unix")
        .authority(host)
        .path_and_query(path_and_query)
        .build()
}

/// The socket path a `unix://` URI names, or why it names none.
fn socket_path(uri: &Uri) -> io::Result<PathBuf> {
    let invalid = |message: &str| io::Error::new(io::ErrorKind::InvalidInput, message.to_owned());
    if !uri
        .scheme_str()
        .is_some_and(|s| s.eq_ignore_ascii_case("unix"))
    {
        return Err(invalid(
            "UnixConnector::from_uri needs a unix:// URI with the socket path \
             hex-encoded as its host (see freshpool::unix_uri); use \
             UnixConnector::new(path) to send http:// URIs to one socket",
        ));
    }
    let host = uri.host().unwrap_or_default().as_bytes();
    let digit = |b: u8| char::from(b).to_digit(16);
    if host.is_empty() || !host.len().is_multiple_of(2) {
        return Err(invalid(
            "the host of a unix:// URI must be the socket path, hex-encoded",
        ));
    }
    let mut bytes = Vec::with_capacity(host.len() / 2);
    for pair in host.chunks_exact(2) {
        let (Some(hi), Some(lo)) = (digit(pair[0]), digit(pair[1])) else {
            return Err(invalid(
                "the host of a unix:// URI must be the socket path, hex-encoded",
            ));
        };
        // Both digits are below 16, so the byte cannot overflow.
        bytes.push((hi * 16 + lo) as u8);
    }
    Ok(PathBuf::from(OsString::from_vec(bytes)))
}

impl Service<Uri> for UnixConnector {
    type Response = TokioIo<UnixStream>;
    type Error = io::Error;
    type Future = UnixConnecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> UnixConnecting {
        let path = match &self.path {
            Some(path) => Ok(PathBuf::from(&**path)),
            None => socket_path(&uri),
        };
        UnixConnecting(Box::pin(async move {
            let path = path?;
            match UnixStream::connect(&path).await {
                Ok(stream) => Ok(TokioIo::new(stream)),
                Err(error) => Err(io::Error::new(
                    error.kind(),
                    format!("connecting to {}: {error}", path.display()),
                )),
            }
        }))
    }
}

/// The future of a [`UnixConnector`]'s connection.
#[must_use = "futures do nothing unless polled"]
pub struct UnixConnecting(Pin<Box<dyn Future<Output = io::Result<TokioIo<UnixStream>>> + Send>>);

impl Future for UnixConnecting {
    type Output = io::Result<TokioIo<UnixStream>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

impl fmt::Debug for UnixConnecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UnixConnecting")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_carry_the_socket_path_byte_for_byte() {
        let uri = unix_uri("/tmp/a.sock", "/x?y=1").unwrap();
        assert_eq!(uri, "unix://2f746d702f612e736f636b:0/x?y=1");
        assert_eq!(socket_path(&uri).unwrap(), Path::new("/tmp/a.sock"));
        let odd = Path::new(std::ffi::OsStr::from_bytes(b"/tmp/\xff\x00 s"));
        assert_eq!(socket_path(&unix_uri(odd, "/").unwrap()).unwrap(), odd);
        let upper: Uri = "unix://2F746D70:0/".parse().unwrap();
        assert_eq!(socket_path(&upper).unwrap(), Path::new("/tmp"));
    }

    #[test]
    fn uris_without_a_socket_path_are_refused_with_the_cause() {
        let cases = [
            ("http://localhost/", "needs a unix:// URI"),
            ("unix://2f7:0/", "hex-encoded"),
            ("unix://zz:0/", "hex-encoded"),
        ];
        for (uri, needle) in cases {
            let error = socket_path(&uri.parse().unwrap()).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
            assert!(error.to_string().contains(needle), "{uri}: {error}");
        }
        assert!(unix_uri("/tmp/a.sock", "no-slash").is_err());
    }
}
