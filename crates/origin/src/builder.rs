//! The [`Builder`] and the settings it validates.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::knobs::{Knobs, MAX_BODY_SIZE};
use crate::server::Origin;

/// How the server closes a connection whose idle timeout expired.
///
/// Every mode is applied at exactly the idle timeout after the last byte of
/// the previous response was written (or after the connection was accepted,
/// for a connection that never sent a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseMode {
    /// Shut down the write side (a FIN) and drop the socket, as Go's
    /// `IdleTimeout`, nginx and Node do. If request bytes arrived in the
    /// same instant, the kernel answers them with an RST, exactly as it does
    /// for those servers.
    Fin,
    /// Abort the connection: `SO_LINGER` 0, then drop, so the kernel sends
    /// an RST instead of a FIN. Models a crashed process or a load balancer
    /// that forgets its flows.
    Rst,
    /// Write `HTTP/1.1 408 Request Timeout` with `Connection: close`, then
    /// close with a FIN. The bytes sit unread in the client's socket: a
    /// client that reuses the connection reads a response to a request the
    /// server never saw.
    Timeout408,
}

impl CloseMode {
    /// A short, stable, lower-case name: `fin`, `rst` or `408`.
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseMode::Fin => "fin",
            CloseMode::Rst => "rst",
            CloseMode::Timeout408 => "408",
        }
    }
}

/// What the server says in the `Keep-Alive` header of its HTTP/1.1
/// responses.
///
/// The header is never sent on a response that closes the connection
/// (`Connection: close`).
///
/// # Whole seconds
///
/// `Keep-Alive: timeout=N` only has whole seconds, and the parsers of real
/// clients reject fractions. [`Advertise::Truthful`] therefore rounds the
/// idle timeout *down* (`timeout=floor(idle)`), the only rounding that never
/// lets a client keep the connection longer than the server does. With an
/// idle timeout below one second that gives `timeout=0`, i.e. "do not keep
/// this connection idle". Tests that need a truthful header a client can
/// use for pooling should pick an idle timeout of at least one second; tests
/// that need exact text use [`Advertise::Value`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Advertise {
    /// No `Keep-Alive` header, as Go and most servers do. The default.
    #[default]
    None,
    /// `Keep-Alive: timeout=N` with `N = floor(idle timeout)` in seconds,
    /// followed by `, max=M` when [`Builder::max_requests`] is set (`M` is
    /// the number of requests the connection still accepts, as Apache
    /// sends it).
    Truthful,
    /// `Keep-Alive: timeout=N` with `N` the given duration rounded down to
    /// whole seconds, whatever the real idle timeout is: a server that lies.
    False(Duration),
    /// `Keep-Alive: <value>`, verbatim (for example `timeout=5, max=100`,
    /// or garbage to test a parser). It must be a valid header value.
    Value(String),
}

/// Settings shared by every connection of one origin.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) idle_timeout: Duration,
    pub(crate) close_mode: CloseMode,
    pub(crate) advertise: Advertise,
    pub(crate) max_requests: Option<u32>,
    pub(crate) announce_last_request: bool,
    pub(crate) max_request_body: u64,
    pub(crate) h2c: bool,
    pub(crate) h2_goaway_after: Option<u32>,
    pub(crate) defaults: Knobs,
}

/// Configures and starts an [`Origin`].
///
/// Every setter documents its default. Settings marked *per request* are
/// defaults that a request can override with a header (see the
/// [crate documentation](crate#per-request-knobs)).
///
/// ```
/// use std::time::Duration;
/// use freshpool_origin::{Advertise, CloseMode, Origin};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let origin = Origin::builder()
///     .idle_timeout(Duration::from_millis(200))
///     .close_mode(CloseMode::Rst)
///     .advertise(Advertise::None)
///     .max_requests(100)
///     .start()
///     .await?;
/// assert!(origin.addr().ip().is_loopback());
/// origin.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a Builder does nothing until `start` is called"]
pub struct Builder {
    listen: SocketAddr,
    idle_timeout: Duration,
    close_mode: CloseMode,
    advertise: Advertise,
    max_requests: Option<u32>,
    announce_last_request: bool,
    max_request_body: u64,
    h2c: bool,
    h2_goaway_after: Option<u32>,
    defaults: Knobs,
    /// The TLS mode's settings; its setters live in `tls.rs`.
    #[cfg(feature = "tls")]
    pub(crate) tls: crate::tls::TlsSettings,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            idle_timeout: Duration::from_secs(5),
            close_mode: CloseMode::Fin,
            advertise: Advertise::None,
            max_requests: None,
            announce_last_request: true,
            max_request_body: 16 * 1024 * 1024,
            h2c: true,
            h2_goaway_after: None,
            defaults: Knobs::default(),
            #[cfg(feature = "tls")]
            tls: crate::tls::TlsSettings::default(),
        }
    }
}

impl Builder {
    /// A builder with every setting at its default.
    pub fn new() -> Self {
        Builder::default()
    }

    /// The address to listen on. Default: `127.0.0.1:0` (a free loopback
    /// port; read it back with [`Origin::addr`]).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// How long an HTTP/1.1 connection may sit idle between requests before
    /// the server closes it, like Go's `IdleTimeout`. Default: 5 s.
    ///
    /// The timer starts when the last byte of a response has been written
    /// (or when the connection is accepted) and is cancelled by the first
    /// byte of the next request. On HTTP/2 connections the same timeout
    /// applies while no stream is open, and ends with a GOAWAY.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// How an idle HTTP/1.1 connection is closed. Default: [`CloseMode::Fin`].
    pub fn close_mode(mut self, mode: CloseMode) -> Self {
        self.close_mode = mode;
        self
    }

    /// What the `Keep-Alive` response header says. Default:
    /// [`Advertise::None`].
    pub fn advertise(mut self, advertise: Advertise) -> Self {
        self.advertise = advertise;
        self
    }

    /// The number of requests an HTTP/1.1 connection serves before the
    /// server closes it, like nginx's `keepalive_requests`. Default:
    /// unlimited. Must be at least 1.
    ///
    /// See [`announce_last_request`](Builder::announce_last_request) for how
    /// the last response ends.
    pub fn max_requests(mut self, max: u32) -> Self {
        self.max_requests = Some(max);
        self
    }

    /// Whether the last response allowed by
    /// [`max_requests`](Builder::max_requests) says `Connection: close`
    /// (`true`, as nginx does) or looks like any other response and the
    /// server then closes with a FIN right after it (`false`: the client
    /// only learns from the FIN). Default: `true`.
    pub fn announce_last_request(mut self, announce: bool) -> Self {
        self.announce_last_request = announce;
        self
    }

    /// The largest request body the server reads, in bytes; a larger one is
    /// answered with `413` and the connection is closed. Default: 16 MiB.
    pub fn max_request_body(mut self, max: u64) -> Self {
        self.max_request_body = max;
        self
    }

    /// Whether a connection that starts with the HTTP/2 connection preface
    /// is served as HTTP/2 over cleartext ("prior knowledge" h2c). Default:
    /// `true`.
    pub fn h2c(mut self, enabled: bool) -> Self {
        self.h2c = enabled;
        self
    }

    /// Sends a GOAWAY (hyper's graceful shutdown) once an HTTP/2 connection
    /// has processed this many requests: streams already open finish, new
    /// ones are refused. Default: never. Must be at least 1.
    pub fn h2_goaway_after(mut self, requests: u32) -> Self {
        self.h2_goaway_after = Some(requests);
        self
    }

    /// Delay between reading a request and writing the response head.
    /// *Per request* (`x-delay-ms`). Default: none.
    pub fn response_delay(mut self, delay: Duration) -> Self {
        self.defaults.delay = delay;
        self
    }

    /// Size of the response body in bytes (the bytes follow
    /// [`body_pattern`](crate::body_pattern)). *Per request*
    /// (`x-body-size`). Default: 0. At most 1 GiB.
    pub fn body_size(mut self, size: usize) -> Self {
        self.defaults.body_size = size;
        self
    }

    /// Whether response bodies use `Transfer-Encoding: chunked` instead of
    /// `Content-Length`. *Per request* (`x-chunked`). Default: `false`.
    pub fn chunked(mut self, chunked: bool) -> Self {
        self.defaults.chunked = chunked;
        self
    }

    /// Response status code, 200 to 599. *Per request* (`x-status`).
    /// Default: 200.
    pub fn status(mut self, status: u16) -> Self {
        self.defaults.status = status;
        self
    }

    /// Starts the server: binds the listener and spawns the accept loop on
    /// the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] when a setting is invalid (the
    /// message names it), or the error of binding the listener.
    ///
    /// # Panics
    ///
    /// Panics if called outside a tokio runtime, like [`tokio::spawn`].
    pub async fn start(self) -> io::Result<Origin> {
        let listen = self.listen;
        #[cfg(feature = "tls")]
        if self.tls.enabled() {
            let tls = self.tls.clone();
            let config = self.validate()?;
            return Origin::start_tls(listen, config, &tls).await;
        }
        let config = self.validate()?;
        Origin::start(listen, config).await
    }

    fn validate(self) -> io::Result<Config> {
        let invalid = |msg: String| Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        if self.max_requests == Some(0) {
            return invalid("max_requests must be at least 1".into());
        }
        if self.h2_goaway_after == Some(0) {
            return invalid("h2_goaway_after must be at least 1".into());
        }
        if !(200..=599).contains(&self.defaults.status) {
            return invalid(format!(
                "status {} is not in 200..=599",
                self.defaults.status
            ));
        }
        if self.defaults.body_size > MAX_BODY_SIZE {
            return invalid(format!(
                "body_size {} is larger than the maximum of {MAX_BODY_SIZE} bytes",
                self.defaults.body_size
            ));
        }
        if let Advertise::Value(value) = &self.advertise {
            let valid = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
            if !valid {
                return invalid(format!(
                    "Keep-Alive value {value:?} is not a valid header value \
                     (empty, or contains control or non-ASCII characters)"
                ));
            }
        }
        Ok(Config {
            idle_timeout: self.idle_timeout,
            close_mode: self.close_mode,
            advertise: self.advertise,
            max_requests: self.max_requests,
            announce_last_request: self.announce_last_request,
            max_request_body: self.max_request_body,
            h2c: self.h2c,
            h2_goaway_after: self.h2_goaway_after,
            defaults: self.defaults,
        })
    }
}

impl Config {
    /// The `Keep-Alive` header value for a response that keeps the
    /// connection open, given how many more requests it accepts.
    pub(crate) fn keep_alive_value(&self, remaining: Option<u32>) -> Option<String> {
        match &self.advertise {
            Advertise::None => None,
            Advertise::Truthful => {
                let secs = self.idle_timeout.as_secs();
                Some(match remaining {
                    Some(max) => format!("timeout={secs}, max={max}"),
                    None => format!("timeout={secs}"),
                })
            }
            Advertise::False(claimed) => Some(format!("timeout={}", claimed.as_secs())),
            Advertise::Value(value) => Some(value.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(builder: Builder) -> Config {
        builder.validate().expect("valid settings")
    }

    #[test]
    fn truthful_rounds_down_and_reports_remaining_requests() {
        let b = Builder::new().advertise(Advertise::Truthful);
        let c = config(b.clone().idle_timeout(Duration::from_millis(2900)));
        assert_eq!(c.keep_alive_value(None).as_deref(), Some("timeout=2"));
        assert_eq!(
            c.keep_alive_value(Some(7)).as_deref(),
            Some("timeout=2, max=7")
        );
        let c = config(b.idle_timeout(Duration::from_millis(200)));
        assert_eq!(c.keep_alive_value(None).as_deref(), Some("timeout=0"));
    }

    #[test]
    fn false_none_and_raw_values() {
        let c = config(Builder::new().advertise(Advertise::False(Duration::from_secs(30))));
        assert_eq!(c.keep_alive_value(Some(3)).as_deref(), Some("timeout=30"));
        let c = config(Builder::new());
        assert_eq!(c.keep_alive_value(None), None);
        let c = config(Builder::new().advertise(Advertise::Value("timeout=0.2".into())));
        assert_eq!(c.keep_alive_value(None).as_deref(), Some("timeout=0.2"));
    }

    #[test]
    fn invalid_settings_name_the_cause() {
        let cases = [
            (Builder::new().max_requests(0), "max_requests"),
            (Builder::new().h2_goaway_after(0), "h2_goaway_after"),
            (Builder::new().status(101), "status 101"),
            (Builder::new().body_size(MAX_BODY_SIZE + 1), "body_size"),
            (
                Builder::new().advertise(Advertise::Value("a\r\nb".into())),
                "Keep-Alive",
            ),
            (
                Builder::new().advertise(Advertise::Value(String::new())),
                "Keep-Alive",
            ),
        ];
        for (builder, needle) in cases {
            let err = builder.validate().expect_err(needle);
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            assert!(
                err.to_string().contains(needle),
                "{err} should mention {needle}"
            );
        }
    }
}
