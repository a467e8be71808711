//! [`Probe`] for TLS streams: the socket underneath is probed with
//! [`Probe::probe_hangup`], so records that may sit on a healthy idle
//! connection (session tickets, `KeyUpdate`) do not discard it, while a FIN
//! behind a `close_notify` does. See [TLS](crate#tls).

use crate::{Detached, Liveness, PathRtt, Probe};

/// The TLS rule, given the socket's answer and whether the TLS layer holds
/// decrypted bytes nobody read, or a `close_notify` it already took in.
///
/// A socket that is closed or reset says so first. Otherwise plaintext held
/// by the TLS layer is an answer to no request: the same `Unexpected` as
/// stray bytes on plain TCP.
#[cfg(feature = "rustls")]
fn with_session(socket: Liveness, session_quiet: bool) -> Liveness {
    match socket {
        Liveness::Alive | Liveness::Unknown if !session_quiet => Liveness::Unexpected,
        other => other,
    }
}

#[cfg(feature = "rustls")]
impl<T: Probe> Probe for tokio_rustls::client::TlsStream<T> {
    fn probe(&self) -> Liveness {
        let (io, session) = self.get_ref();
        // `wants_read` is false on an established session exactly when it
        // holds unread plaintext or has received a `close_notify`.
        with_session(io.probe_hangup(), session.wants_read())
    }

    fn probe_hangup(&self) -> Liveness {
        self.probe()
    }

    fn rtt(&self) -> Option<PathRtt> {
        self.get_ref().0.rtt()
    }
}

#[cfg(feature = "rustls")]
impl<T: Probe> Probe for hyper_rustls::MaybeHttpsStream<T> {
    fn probe(&self) -> Liveness {
        match self {
            hyper_rustls::MaybeHttpsStream::Http(io) => io.probe(),
            hyper_rustls::MaybeHttpsStream::Https(tls) => tls.probe(),
        }
    }

    fn probe_hangup(&self) -> Liveness {
        match self {
            hyper_rustls::MaybeHttpsStream::Http(io) => io.probe_hangup(),
            hyper_rustls::MaybeHttpsStream::Https(tls) => tls.probe(),
        }
    }

    fn rtt(&self) -> Option<PathRtt> {
        match self {
            hyper_rustls::MaybeHttpsStream::Http(io) => io.rtt(),
            hyper_rustls::MaybeHttpsStream::Https(tls) => tls.rtt(),
        }
    }

    fn detached(&self) -> Option<Detached> {
        match self {
            hyper_rustls::MaybeHttpsStream::Http(io) => io.detached(),
            hyper_rustls::MaybeHttpsStream::Https(tls) => tls.detached(),
        }
    }
}

#[cfg(feature = "native-tls")]
impl<T: Probe> Probe for tokio_native_tls::TlsStream<T> {
    fn probe(&self) -> Liveness {
        // native-tls does not say what its library buffered; the socket
        // underneath is all there is to probe.
        self.get_ref().get_ref().get_ref().probe_hangup()
    }

    fn probe_hangup(&self) -> Liveness {
        self.probe()
    }

    fn rtt(&self) -> Option<PathRtt> {
        self.get_ref().get_ref().get_ref().rtt()
    }

    fn detached(&self) -> Option<Detached> {
        // The probe above looks at the socket alone.
        match self.get_ref().get_ref().get_ref().detached()? {
            #[cfg(unix)]
            Detached::Fd(fd) | Detached::FdHangup(fd) => Some(Detached::FdHangup(fd)),
            // `probe_hangup`'s default: bytes alone say nothing.
            Detached::Always(Liveness::Unexpected) => Some(Detached::Always(Liveness::Unknown)),
            Detached::Always(liveness) => Some(Detached::Always(liveness)),
        }
    }
}

#[cfg(feature = "native-tls")]
impl<T: Probe> Probe for hyper_tls::MaybeHttpsStream<T> {
    fn probe(&self) -> Liveness {
        match self {
            hyper_tls::MaybeHttpsStream::Http(io) => io.probe(),
            hyper_tls::MaybeHttpsStream::Https(tls) => tls.probe(),
        }
    }

    fn probe_hangup(&self) -> Liveness {
        match self {
            hyper_tls::MaybeHttpsStream::Http(io) => io.probe_hangup(),
            hyper_tls::MaybeHttpsStream::Https(tls) => tls.probe(),
        }
    }

    fn rtt(&self) -> Option<PathRtt> {
        match self {
            hyper_tls::MaybeHttpsStream::Http(io) => io.rtt(),
            hyper_tls::MaybeHttpsStream::Https(tls) => tls.rtt(),
        }
    }

    fn detached(&self) -> Option<Detached> {
        match self {
            hyper_tls::MaybeHttpsStream::Http(io) => io.detached(),
            hyper_tls::MaybeHttpsStream::Https(tls) => tls.detached(),
        }
    }
}

#[cfg(all(test, feature = "rustls"))]
mod tests {
    use super::*;

    #[test]
    fn session_plaintext_is_unexpected_unless_the_socket_is_gone() {
        assert_eq!(with_session(Liveness::Alive, true), Liveness::Alive);
        assert_eq!(with_session(Liveness::Alive, false), Liveness::Unexpected);
        assert_eq!(with_session(Liveness::Unknown, false), Liveness::Unexpected);
        assert_eq!(with_session(Liveness::Closed, false), Liveness::Closed);
        assert_eq!(with_session(Liveness::Reset, false), Liveness::Reset);
    }
}
