//! The kernel's own round-trip estimate of a TCP connection.

use std::time::Duration;

/// A TCP connection's round-trip time as the kernel measures it: the
/// smoothed RTT and its mean deviation (RFC 6298's `SRTT` and `RTTVAR`).
///
/// A pool sizes its retire margin from these: a request needs about one
/// round trip to reach the server, and `srtt + 4 × rttvar` is the bound
/// TCP itself uses for its retransmission timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PathRtt {
    /// The smoothed round-trip time.
    pub srtt: Duration,
    /// The round-trip time's mean deviation.
    pub rttvar: Duration,
}

/// Reads the kernel's round-trip estimate of a TCP socket with one
/// `getsockopt(TCP_INFO)`.
///
/// Returns `None` when the descriptor is not a TCP socket, when the kernel
/// has no sample yet, and on platforms without `TCP_INFO` (everything but
/// Linux and Android): callers then fall back to a round trip they measure
/// themselves. Never blocks and never allocates.
///
/// ```
/// use std::net::{TcpListener, TcpStream};
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let client = TcpStream::connect(listener.local_addr()?)?;
/// let rtt = freshpool_probe::tcp_rtt(&client);
/// # #[cfg(target_os = "linux")]
/// assert!(rtt.is_some_and(|rtt| rtt.srtt < std::time::Duration::from_secs(1)));
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(unix)]
pub fn tcp_rtt(socket: impl std::os::fd::AsFd) -> Option<PathRtt> {
    sys::tcp_rtt(socket.as_fd())
}

#[cfg(unix)]
mod sys {
    use super::PathRtt;
    use std::os::fd::BorrowedFd;

    #[cfg(any(target_os = "linux", target_os = "android"))]
    pub(super) fn tcp_rtt(fd: BorrowedFd<'_>) -> Option<PathRtt> {
        use std::mem::{MaybeUninit, size_of};
        use std::os::fd::AsRawFd;
        use std::time::Duration;

        let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
        let mut len = libc::socklen_t::try_from(size_of::<libc::tcp_info>()).ok()?;
        // SAFETY: `fd` is a descriptor borrowed for the duration of the
        // call; `info` points at `len` writable bytes, and the kernel
        // writes at most `len` bytes and stores how many in `len`.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return None;
        }
        // SAFETY: zero-initialised above, and every field is a plain
        // integer, so any bytes the kernel wrote (or did not) are valid.
        let info = unsafe { info.assume_init() };
        // `tcpi_rtt` is 0 until the first sample (it is never 0 after one:
        // the kernel keeps at least 1 µs).
        (info.tcpi_rtt > 0).then(|| PathRtt {
            srtt: Duration::from_micros(u64::from(info.tcpi_rtt)),
            rttvar: Duration::from_micros(u64::from(info.tcpi_rttvar)),
        })
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pub(super) fn tcp_rtt(_fd: BorrowedFd<'_>) -> Option<PathRtt> {
        None
    }
}
