//! Is an idle pooled socket still safe to reuse?
//!
//! An HTTP/1.1 client keeps idle keep-alive connections in a pool. While a
//! connection sits there the server may close it (FIN), abort it (RST), or
//! write something nobody asked for (a `408 Request Timeout`, a TLS
//! `close_notify`, the tail of a desynchronised response). Handing such a
//! connection to the next request fails that request, and a failed request
//! on a reused connection is exactly the error users see as
//! `connection closed before message completed`.
//!
//! [`probe`] answers the question at checkout time with a single
//! non-blocking `recv(MSG_PEEK | MSG_DONTWAIT)` of one byte: it never
//! blocks, never consumes a byte, and never allocates. [`Probe`] lets IO
//! types answer it for themselves, so a pool can probe whatever stream its
//! connector produced (including [`TokioIo`](hyper_util::rt::TokioIo)
//! wrappers and TLS streams that expose their TCP socket).
//!
//! ```
//! use std::io::Write;
//! use std::net::{Shutdown, TcpListener, TcpStream};
//! use freshpool_probe::{Liveness, Probe};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let client = TcpStream::connect(listener.local_addr()?)?;
//! let (mut server, _) = listener.accept()?;
//! assert_eq!(client.probe(), Liveness::Alive);
//!
//! server.write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")?;
//! server.shutdown(Shutdown::Both)?;
//! # std::thread::sleep(std::time::Duration::from_millis(50));
//! // Bytes nobody asked for: the connection must not be reused.
//! assert_eq!(client.probe(), Liveness::Unexpected);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What a probe cannot see
//!
//! A probe reports what the kernel already knows. A server that closes its
//! side a microsecond after the probe returned `Alive` is not caught; that
//! is the job of an expiry scheduler (retire connections before the
//! server's idle deadline) and of safe retries. The probe closes the window
//! in which the close had already arrived.
//!
//! # Platforms
//!
//! Linux, Android, macOS, iOS and the BSDs use `MSG_PEEK | MSG_DONTWAIT`.
//! Every other target compiles and reports [`Liveness::Unknown`].

use std::fmt;

mod rtt;

pub use rtt::PathRtt;
#[cfg(unix)]
pub use rtt::tcp_rtt;

/// What a probe learned about an idle connection.
///
/// Only [`Liveness::Alive`] and [`Liveness::Unknown`] allow reuse; see
/// [`Liveness::is_reusable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Liveness {
    /// The connection is open and nothing is waiting to be read.
    ///
    /// This is the only state in which an idle HTTP/1.1 connection may be
    /// reused with confidence.
    Alive,
    /// The peer closed its write side (a FIN was received) and nothing else
    /// is pending. A request written now would at best reach a server that
    /// is about to close, at worst be answered by a reset.
    Closed,
    /// The connection was reset (`ECONNRESET`), or the socket reports any
    /// other error. It is dead.
    Reset,
    /// Bytes are waiting on a connection that should be silent.
    ///
    /// An idle HTTP/1.1 connection has no outstanding request, so the
    /// server has nothing legitimate to say. Pending bytes are a `408
    /// Request Timeout` written just before closing, a TLS `close_notify`
    /// alert, or the remains of a response the client lost track of. A
    /// request sent on such a connection would be answered with those
    /// bytes, so it must never be reused. (hyper applies the same rule: an
    /// idle connection that becomes readable with data is an error.)
    Unexpected,
    /// The probe cannot tell: the descriptor is not a socket, or the
    /// platform has no non-blocking peek. Callers should treat the
    /// connection as they would without a probe.
    Unknown,
}

impl Liveness {
    /// Whether a pool may hand the connection to a request: `true` for
    /// [`Alive`](Liveness::Alive) and [`Unknown`](Liveness::Unknown).
    pub const fn is_reusable(self) -> bool {
        matches!(self, Liveness::Alive | Liveness::Unknown)
    }

    /// A short, stable, lower-case name, suitable for metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Liveness::Alive => "alive",
            Liveness::Closed => "closed",
            Liveness::Reset => "reset",
            Liveness::Unexpected => "unexpected",
            Liveness::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Liveness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Probes a socket for liveness with one `recv(MSG_PEEK | MSG_DONTWAIT)`.
///
/// The call never blocks, never consumes a byte and never allocates. Because
/// it borrows the descriptor through [`AsFd`](std::os::fd::AsFd), it can
/// only ever look at a descriptor that is open and owned by the caller: a
/// pool that holds the IO object cannot probe a closed or recycled fd.
///
/// Interrupted calls (`EINTR`) are retried. `ENOTSOCK` and other "this is
/// not something I can peek" errors give [`Liveness::Unknown`]; every other
/// error means the connection is unusable and gives [`Liveness::Reset`].
#[cfg(unix)]
pub fn probe(socket: impl std::os::fd::AsFd) -> Liveness {
    sys::probe(socket.as_fd())
}

/// An IO type that can probe its own underlying socket.
///
/// Implemented for the standard and tokio TCP and Unix streams, for
/// [`hyper_util::rt::TokioIo`], and for references and boxes of probe-able
/// types. A TLS stream should implement it by probing its TCP socket: any
/// pending TLS record on an idle connection (typically `close_notify`) is
/// correctly reported as [`Liveness::Unexpected`].
///
/// ```
/// use freshpool_probe::{Liveness, Probe};
///
/// /// A connection type of your own that wraps a TCP stream.
/// struct MyConn {
///     tcp: std::net::TcpStream,
/// }
///
/// impl Probe for MyConn {
///     fn probe(&self) -> Liveness {
///         self.tcp.probe()
///     }
/// }
/// ```
pub trait Probe {
    /// Probes the connection; see [`probe`](fn@probe) for the semantics.
    fn probe(&self) -> Liveness;

    /// The kernel's round-trip estimate of the underlying TCP connection
    /// ([`tcp_rtt`]), if it has one. The default says nothing; TCP streams
    /// and the wrappers of this crate report it.
    fn rtt(&self) -> Option<PathRtt> {
        None
    }
}

impl<T: Probe + ?Sized> Probe for &T {
    fn probe(&self) -> Liveness {
        (**self).probe()
    }

    fn rtt(&self) -> Option<PathRtt> {
        (**self).rtt()
    }
}

impl<T: Probe + ?Sized> Probe for Box<T> {
    fn probe(&self) -> Liveness {
        (**self).probe()
    }

    fn rtt(&self) -> Option<PathRtt> {
        (**self).rtt()
    }
}

macro_rules! probe_via_fd {
    ($($(#[$cfg:meta])* $ty:ty),* $(,)?) => {$(
        $(#[$cfg])*
        impl Probe for $ty {
            fn probe(&self) -> Liveness {
                #[cfg(unix)]
                {
                    probe(self)
                }
                #[cfg(not(unix))]
                {
                    Liveness::Unknown
                }
            }
        }
    )*};
}

probe_via_fd! {
    #[cfg(unix)] std::os::unix::net::UnixStream,
    #[cfg(all(unix, feature = "tokio"))] tokio::net::UnixStream,
}

macro_rules! probe_tcp {
    ($($(#[$cfg:meta])* $ty:ty),* $(,)?) => {$(
        $(#[$cfg])*
        impl Probe for $ty {
            fn probe(&self) -> Liveness {
                #[cfg(unix)]
                {
                    probe(self)
                }
                #[cfg(not(unix))]
                {
                    Liveness::Unknown
                }
            }

            fn rtt(&self) -> Option<PathRtt> {
                #[cfg(unix)]
                {
                    tcp_rtt(self)
                }
                #[cfg(not(unix))]
                {
                    None
                }
            }
        }
    )*};
}

probe_tcp! {
    std::net::TcpStream,
    #[cfg(feature = "tokio")] tokio::net::TcpStream,
}

#[cfg(feature = "hyper-util")]
impl<T: Probe> Probe for hyper_util::rt::TokioIo<T> {
    fn probe(&self) -> Liveness {
        self.inner().probe()
    }

    fn rtt(&self) -> Option<PathRtt> {
        self.inner().rtt()
    }
}

#[cfg(unix)]
mod sys {
    use super::Liveness;
    use std::os::fd::BorrowedFd;

    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly",
    ))]
    pub(super) fn probe(fd: BorrowedFd<'_>) -> Liveness {
        use std::io::ErrorKind;
        use std::mem::MaybeUninit;

        let socket = socket2::SockRef::from(&fd);
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        loop {
            return match socket.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT) {
                Ok(0) => Liveness::Closed,
                Ok(_) => Liveness::Unexpected,
                Err(e) if e.kind() == ErrorKind::WouldBlock => Liveness::Alive,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => match e.raw_os_error() {
                    Some(libc::ENOTSOCK | libc::EOPNOTSUPP | libc::EBADF) => Liveness::Unknown,
                    _ => Liveness::Reset,
                },
            };
        }
    }

    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_vendor = "apple",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly",
    )))]
    pub(super) fn probe(_fd: BorrowedFd<'_>) -> Liveness {
        Liveness::Unknown
    }
}
