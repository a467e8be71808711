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
//! # TLS
//!
//! On a TLS connection a peek is ambiguous. TLS 1.3 `NewSessionTicket` and
//! `KeyUpdate` records may sit unread on a healthy idle socket (they are
//! not an HTTP response, and hyper's idle read hands them to the TLS layer,
//! which consumes them), while a `close_notify` alert arrives as bytes
//! *before* the FIN, so a one-byte peek sees bytes and never the FIN. A TLS
//! stream therefore probes its socket with [`probe_hangup`] (the
//! [`Probe::probe_hangup`] of the stream underneath), which asks whether a
//! FIN or an RST is pending, even behind unread bytes:
//!
//! | pending on the socket | plain TCP ([`probe`]) | TLS ([`probe_hangup`]) |
//! |---|---|---|
//! | nothing | `Alive` | `Alive` |
//! | bytes only (tickets, `KeyUpdate`) | `Unexpected` | `Alive` |
//! | a FIN, behind bytes or not (`close_notify` + FIN) | `Closed` / `Unexpected` | `Closed` |
//! | an RST | `Reset` | `Reset` |
//!
//! The features `rustls` and `native-tls` implement [`Probe`] that way for
//! `tokio_rustls::client::TlsStream`, `hyper_rustls::MaybeHttpsStream`,
//! `tokio_native_tls::TlsStream` and `hyper_tls::MaybeHttpsStream` (the
//! plain-HTTP variant of a `MaybeHttpsStream` keeps the plain rule). A
//! rustls stream also looks at its session, without a syscall: decrypted
//! bytes nobody read, or a `close_notify` already taken in whose FIN has
//! not arrived, give [`Liveness::Unexpected`]. native-tls does not say what
//! its library holds, so only its socket is probed.
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
//! [`probe`]: Linux, Android, macOS, iOS and the BSDs use `MSG_PEEK |
//! MSG_DONTWAIT`.
//!
//! [`probe_hangup`]: Linux and Android use one `poll` with `POLLIN |
//! POLLRDHUP` and a zero timeout. There `POLLRDHUP` means a FIN was
//! received, whatever bytes precede it; `POLLERR` means the socket holds an
//! error (an RST not yet reported); `POLLHUP` without `POLLERR` means the
//! connection is closed both ways, which on a client that has not shut down
//! its own side is an RST whose error was already reported. So one syscall
//! tells all four states and no `SO_ERROR` read is needed. macOS, iOS and
//! the BSDs have no `POLLRDHUP` and fall back to the one-byte peek: a FIN
//! with nothing before it is `Closed`, but a FIN behind unread bytes cannot
//! be seen, so pending bytes give [`Liveness::Unknown`] (reusable, as
//! without a probe: hyper's idle read consumes the records and then sees
//! the FIN).
//!
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
    /// Request Timeout` written just before closing, or the remains of a
    /// response the client lost track of. A request sent on such a
    /// connection would be answered with those bytes, so it must never be
    /// reused. (hyper applies the same rule: an idle connection that
    /// becomes readable with data is an error.) Over TLS, bytes on the
    /// socket are records for the TLS layer and are not `Unexpected`; only
    /// decrypted bytes nobody read are (see [TLS](crate#tls)).
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

/// How a stream's [`Probe::probe`] can be done without the stream: what
/// [`Probe::detached`] returns.
///
/// A pool whose connection task owns the stream (and reads and writes it
/// without a lock) probes through this instead, as long as it can
/// guarantee that the descriptor is still open: see [`Detached::probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detached {
    /// The stream's probe always answers this, whatever its state.
    Always(Liveness),
    /// The stream's probe is [`probe`](fn@probe) of this descriptor.
    #[cfg(unix)]
    Fd(std::os::fd::RawFd),
    /// The stream's probe is [`probe_hangup`](fn@probe_hangup) of this
    /// descriptor.
    #[cfg(unix)]
    FdHangup(std::os::fd::RawFd),
}

impl Detached {
    /// Probes as the stream's own [`Probe::probe`] would.
    ///
    /// # Safety
    ///
    /// The descriptor must be open, and still the stream's, for the whole
    /// call: the caller keeps the stream from closing it meanwhile.
    pub unsafe fn probe(self) -> Liveness {
        match self {
            Detached::Always(liveness) => liveness,
            #[cfg(unix)]
            Detached::Fd(fd) => {
                // SAFETY: the caller keeps the descriptor open for the call.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                probe(fd)
            }
            #[cfg(unix)]
            Detached::FdHangup(fd) => {
                // SAFETY: the caller keeps the descriptor open for the call.
                let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                probe_hangup(fd)
            }
        }
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

/// Probes a socket for a pending FIN or RST with one `poll(POLLIN |
/// POLLRDHUP)` of zero timeout, seeing them even behind unread bytes.
///
/// This is the probe for a socket under a protocol whose records may
/// legitimately arrive on an idle connection, such as TLS 1.3 session
/// tickets: bytes without a FIN give [`Liveness::Alive`], a FIN (behind a
/// `close_notify` or not) gives [`Liveness::Closed`], an RST or any socket
/// error [`Liveness::Reset`]. Like [`probe`](fn@probe) it never blocks,
/// never consumes a byte and never allocates. On a descriptor that is not
/// a socket it reports what `poll` says of it (a regular file is always
/// readable, so `Alive`). See [Platforms](crate#platforms) for the
/// fallback where `POLLRDHUP` does not exist.
#[cfg(unix)]
pub fn probe_hangup(socket: impl std::os::fd::AsFd) -> Liveness {
    sys::probe_hangup(socket.as_fd())
}

/// An IO type that can probe its own underlying socket.
///
/// Implemented for the standard and tokio TCP and Unix streams, for
/// [`hyper_util::rt::TokioIo`], for references and boxes of probe-able
/// types, and with the features `rustls` and `native-tls` for the TLS
/// streams of tokio-rustls, hyper-rustls, tokio-native-tls and hyper-tls
/// (see [TLS](crate#tls)).
///
/// A stream of your own that carries TLS (or any protocol whose records may
/// arrive on an idle connection) implements [`probe`](Probe::probe) with
/// the [`probe_hangup`](Probe::probe_hangup) of the stream underneath; a
/// plain stream uses [`probe`](fn@probe). The orphan rule keeps you from
/// implementing `Probe` for another crate's type: wrap it in a type of your
/// own, or give a client `freshpool::Unprobed` instead.
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
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be probed for liveness (it does not implement `Probe`)",
    label = "the connector's IO type must implement `freshpool::Probe`",
    note = "for hyper-rustls or tokio-rustls streams, enable freshpool's `rustls` feature; \
            for hyper-tls or tokio-native-tls streams, its `native-tls` feature",
    note = "for any other connector, wrap it in `freshpool::Unprobed::new(connector)` \
            (its connections are not probed at checkout), or wrap its IO in a type of \
            your own that implements `Probe`"
)]
pub trait Probe {
    /// Probes the connection; see [`probe`](fn@probe) for the semantics.
    fn probe(&self) -> Liveness;

    /// The kernel's round-trip estimate of the underlying TCP connection
    /// ([`tcp_rtt`]), if it has one. The default says nothing; TCP streams
    /// and the wrappers of this crate report it.
    fn rtt(&self) -> Option<PathRtt> {
        None
    }

    /// Probes for a pending FIN or RST only, even behind unread bytes:
    /// bytes alone are [`Liveness::Alive`]. See [`probe_hangup`](fn@probe_hangup).
    ///
    /// A TLS stream calls this on the stream it runs over. The default
    /// uses [`probe`](Probe::probe), which cannot see a FIN behind bytes:
    /// pending bytes give [`Liveness::Unknown`] there.
    fn probe_hangup(&self) -> Liveness {
        match self.probe() {
            Liveness::Unexpected => Liveness::Unknown,
            other => other,
        }
    }

    /// How [`probe`](Probe::probe) can be done from the descriptor alone,
    /// when it looks at nothing but a descriptor that stays the stream's
    /// for its whole life (plain TCP and Unix streams); `None` (the
    /// default) when it needs the stream itself, as a TLS stream's does
    /// for what its session buffered.
    fn detached(&self) -> Option<Detached> {
        None
    }
}

impl<T: Probe + ?Sized> Probe for &T {
    fn probe(&self) -> Liveness {
        (**self).probe()
    }

    fn detached(&self) -> Option<Detached> {
        (**self).detached()
    }

    fn rtt(&self) -> Option<PathRtt> {
        (**self).rtt()
    }

    fn probe_hangup(&self) -> Liveness {
        (**self).probe_hangup()
    }
}

impl<T: Probe + ?Sized> Probe for Box<T> {
    fn probe(&self) -> Liveness {
        (**self).probe()
    }

    fn detached(&self) -> Option<Detached> {
        (**self).detached()
    }

    fn rtt(&self) -> Option<PathRtt> {
        (**self).rtt()
    }

    fn probe_hangup(&self) -> Liveness {
        (**self).probe_hangup()
    }
}

macro_rules! probe_via_fd {
    ($($(#[$cfg:meta])* $ty:ty => $rtt:expr),* $(,)?) => {$(
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

            fn probe_hangup(&self) -> Liveness {
                #[cfg(unix)]
                {
                    probe_hangup(self)
                }
                #[cfg(not(unix))]
                {
                    Liveness::Unknown
                }
            }

            fn rtt(&self) -> Option<PathRtt> {
                let rtt: fn(&Self) -> Option<PathRtt> = $rtt;
                rtt(self)
            }

            fn detached(&self) -> Option<Detached> {
                #[cfg(unix)]
                {
                    Some(Detached::Fd(std::os::fd::AsRawFd::as_raw_fd(self)))
                }
                #[cfg(not(unix))]
                {
                    Some(Detached::Always(Liveness::Unknown))
                }
            }
        }
    )*};
}

/// The kernel's figures of a TCP stream ([`tcp_rtt`]).
#[cfg(unix)]
fn tcp_stream_rtt<T: std::os::fd::AsFd>(stream: &T) -> Option<PathRtt> {
    tcp_rtt(stream)
}

/// No `TCP_INFO` off Unix.
#[cfg(not(unix))]
fn tcp_stream_rtt<T>(_: &T) -> Option<PathRtt> {
    None
}

probe_via_fd! {
    std::net::TcpStream => tcp_stream_rtt,
    #[cfg(feature = "tokio")] tokio::net::TcpStream => tcp_stream_rtt,
    #[cfg(unix)] std::os::unix::net::UnixStream => |_| None,
    #[cfg(all(unix, feature = "tokio"))] tokio::net::UnixStream => |_| None,
}

#[cfg(feature = "hyper-util")]
impl<T: Probe> Probe for hyper_util::rt::TokioIo<T> {
    fn probe(&self) -> Liveness {
        self.inner().probe()
    }

    fn rtt(&self) -> Option<PathRtt> {
        self.inner().rtt()
    }

    fn probe_hangup(&self) -> Liveness {
        self.inner().probe_hangup()
    }

    fn detached(&self) -> Option<Detached> {
        self.inner().detached()
    }
}

#[cfg(any(feature = "rustls", feature = "native-tls"))]
mod tls;

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

    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn probe_hangup(fd: BorrowedFd<'_>) -> Liveness {
        use std::os::fd::AsRawFd;

        let mut poll = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLRDHUP,
            revents: 0,
        };
        loop {
            // SAFETY: `poll` points to one valid, initialised `pollfd` for
            // the duration of the call, and `fd` is borrowed, so open.
            let ready = unsafe { libc::poll(&mut poll, 1, 0) };
            if ready < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Liveness::Unknown;
            }
            let revents = poll.revents;
            return if revents & libc::POLLNVAL != 0 {
                Liveness::Unknown
            } else if revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                // An error is pending (an RST not yet read), or the socket
                // is closed both ways: our side never shut down, so the
                // peer reset it.
                Liveness::Reset
            } else if revents & libc::POLLRDHUP != 0 {
                Liveness::Closed
            } else {
                // Nothing pending, or bytes without a FIN behind them.
                Liveness::Alive
            };
        }
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn probe_hangup(fd: BorrowedFd<'_>) -> Liveness {
        match probe(fd) {
            Liveness::Unexpected => Liveness::Unknown,
            other => other,
        }
    }
}
