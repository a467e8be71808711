//! Configuration of a [`Client`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use freshpool_expiry::{EstimatorConfig, Lifetime, Margin, Tuning};
use hyper::client::conn::{http1, http2};
use hyper::rt::{Executor, Timer};
use hyper_util::client::legacy::connect::HttpConnector;

use crate::Client;
use crate::error::BuildError;
use crate::retry::RetryPolicy;
use crate::rt::{BoxSendFuture, Exec, SharedTimer};

/// See [`Builder::probe_after`].
const DEFAULT_PROBE_AFTER: Duration = Duration::from_millis(1);
/// The smallest and largest HTTP/2 `SETTINGS_MAX_FRAME_SIZE` (RFC 9113
/// §6.5.2).
const FRAME_SIZES: std::ops::RangeInclusive<u32> = 16_384..=16_777_215;
/// The largest HTTP/2 flow-control window (RFC 9113 §6.9.1).
const MAX_WINDOW: u32 = (1 << 31) - 1;
/// The smallest `http1_max_buf_size` hyper accepts.
const MIN_H1_BUF: usize = 8 * 1024;

/// Everything a built client needs, frozen.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) estimator: EstimatorConfig,
    pub(crate) pool_max_idle_per_host: usize,
    pub(crate) max_connections_per_host: Option<usize>,
    pub(crate) checkout_timeout: Duration,
    pub(crate) probe_after: Duration,
    /// Whether `Keep-Alive: timeout=N` sets an origin's estimate.
    pub(crate) keep_alive_hints: bool,
    pub(crate) max_lifetime: Option<Lifetime>,
    pub(crate) retry: RetryPolicy,
    pub(crate) replay_cap: usize,
    /// Per-origin idle-timeout overrides, by `host:port`.
    pub(crate) overrides: HashMap<String, Duration>,
    pub(crate) set_host: bool,
    pub(crate) http2_only: bool,
    pub(crate) http2_max_streams: usize,
    pub(crate) h1: http1::Builder,
    pub(crate) h2: http2::Builder<Exec>,
    /// Where connection tasks are spawned.
    pub(crate) exec: Exec,
}

/// HTTP/2 settings, kept until [`Builder::build`] knows the executor that
/// hyper's `http2::Builder` is made with. `None` leaves hyper's default.
#[derive(Debug, Default)]
struct H2Settings {
    initial_stream_window_size: Option<u32>,
    initial_connection_window_size: Option<u32>,
    adaptive_window: bool,
    max_frame_size: Option<u32>,
    max_header_list_size: Option<u32>,
    max_pending_accept_reset_streams: Option<usize>,
    keep_alive_interval: Option<Duration>,
    keep_alive_timeout: Option<Duration>,
    keep_alive_while_idle: bool,
}

impl H2Settings {
    fn validate(&self) -> Result<(), BuildError> {
        let windows = [
            (
                "http2_initial_stream_window_size",
                self.initial_stream_window_size,
            ),
            (
                "http2_initial_connection_window_size",
                self.initial_connection_window_size,
            ),
        ];
        for (name, size) in windows {
            if size.is_some_and(|size| size > MAX_WINDOW) {
                return Err(BuildError::new(name, "must be at most 2^31 - 1"));
            }
        }
        if self
            .max_frame_size
            .is_some_and(|size| !FRAME_SIZES.contains(&size))
        {
            return Err(BuildError::new(
                "http2_max_frame_size",
                "must be from 16384 to 16777215 (RFC 9113 §6.5.2)",
            ));
        }
        if self.keep_alive_interval.is_some_and(|d| d.is_zero()) {
            return Err(BuildError::new(
                "http2_keep_alive_interval",
                "must be longer than zero (None disables keep-alive)",
            ));
        }
        if self.keep_alive_timeout.is_some_and(|d| d.is_zero()) {
            return Err(BuildError::new(
                "http2_keep_alive_timeout",
                "must be longer than zero",
            ));
        }
        Ok(())
    }

    /// hyper's builder over `exec` and `timer`, with these settings.
    fn builder(&self, exec: Exec, timer: SharedTimer) -> http2::Builder<Exec> {
        let mut h2 = http2::Builder::new(exec);
        h2.timer(timer)
            .initial_stream_window_size(self.initial_stream_window_size)
            .initial_connection_window_size(self.initial_connection_window_size)
            .max_pending_accept_reset_streams(self.max_pending_accept_reset_streams)
            .keep_alive_interval(self.keep_alive_interval)
            .keep_alive_while_idle(self.keep_alive_while_idle);
        // After the windows: hyper's adaptive window replaces them.
        if self.adaptive_window {
            h2.adaptive_window(true);
        }
        // Only when set: hyper's default is an explicit 16 KiB.
        if let Some(size) = self.max_frame_size {
            h2.max_frame_size(size);
        }
        if let Some(max) = self.max_header_list_size {
            h2.max_header_list_size(max);
        }
        if let Some(timeout) = self.keep_alive_timeout {
            h2.keep_alive_timeout(timeout);
        }
        h2
    }
}

/// Builds a [`Client`].
///
/// Option names follow hyper-util's legacy `Builder` where the two overlap;
/// each setter documents its default. [`build`](Builder::build) validates
/// the settings and returns a [`BuildError`] instead of panicking.
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http_body_util::Empty;
///
/// let client = freshpool::Client::builder()
///     .pool_idle_timeout(Duration::from_secs(30))
///     .max_connections_per_host(64)
///     .retries(1)
///     .build_http::<Empty<Bytes>>()?;
/// # drop(client);
/// # Ok::<(), freshpool::BuildError>(())
/// ```
#[must_use]
#[derive(Debug)]
pub struct Builder {
    pool_idle_timeout: Option<Duration>,
    pool_max_idle_per_host: usize,
    max_connections_per_host: Option<usize>,
    checkout_timeout: Duration,
    probe_after: Duration,
    keep_alive_hints: bool,
    learn_from_closes: bool,
    margin: Margin,
    tuning: Tuning,
    observation_ttl: Duration,
    max_lifetime: Option<Lifetime>,
    retry: RetryPolicy,
    replay_cap: usize,
    overrides: HashMap<String, Duration>,
    set_host: bool,
    http2_only: bool,
    http2_max_streams: usize,
    h1: http1::Builder,
    h1_max_buf_size: Option<usize>,
    h2: H2Settings,
    exec: Exec,
    timer: SharedTimer,
}

impl Default for Builder {
    fn default() -> Self {
        let estimator = EstimatorConfig::default();
        Builder {
            pool_idle_timeout: Some(Duration::from_secs(90)),
            pool_max_idle_per_host: usize::MAX,
            max_connections_per_host: None,
            checkout_timeout: Duration::from_secs(30),
            probe_after: DEFAULT_PROBE_AFTER,
            keep_alive_hints: true,
            learn_from_closes: true,
            margin: Margin::default(),
            tuning: Tuning::default(),
            observation_ttl: estimator.observation_ttl,
            max_lifetime: None,
            retry: RetryPolicy::default(),
            replay_cap: 64 * 1024,
            overrides: HashMap::new(),
            set_host: true,
            http2_only: false,
            http2_max_streams: 100,
            h1: http1::Builder::new(),
            h1_max_buf_size: None,
            h2: H2Settings::default(),
            exec: Exec::tokio(),
            timer: SharedTimer::tokio(),
        }
    }
}

impl Builder {
    /// A builder with every default.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// How long an idle connection may stay in the pool when nothing is
    /// known about the server's own timeout. `None` keeps idle connections
    /// until the server's learned or advertised deadline. Default: 90 s.
    pub fn pool_idle_timeout<D: Into<Option<Duration>>>(mut self, timeout: D) -> Builder {
        self.pool_idle_timeout = timeout.into();
        self
    }

    /// The most idle connections kept per origin. Default: no limit.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Builder {
        self.pool_max_idle_per_host = max;
        self
    }

    /// The most connections open (idle, busy or connecting) per origin.
    /// Requests beyond it wait, first come first served, for up to the
    /// [`checkout_timeout`](Builder::checkout_timeout). Default: no limit.
    pub fn max_connections_per_host(mut self, max: usize) -> Builder {
        self.max_connections_per_host = Some(max);
        self
    }

    /// How long a request waits for a connection when
    /// `max_connections_per_host` is reached. Default: 30 s.
    pub fn checkout_timeout(mut self, timeout: Duration) -> Builder {
        self.checkout_timeout = timeout;
        self
    }

    /// Probe an idle connection's socket at checkout only when it has been
    /// idle at least this long. Default: 1 ms.
    ///
    /// The probe is one non-blocking syscall, which on a busy connection
    /// costs more than everything else the pool does for a request. A
    /// connection idle for less than a millisecond is never at risk from a
    /// server's idle timeout (those are hundreds of milliseconds at the
    /// very least, and nothing reuses a connection past its retire time),
    /// and a close that reached it in
    /// that millisecond has usually been seen by hyper already, which the
    /// pool checks for free. `Duration::ZERO` probes at every checkout.
    pub fn probe_after(mut self, idle: Duration) -> Builder {
        self.probe_after = idle;
        self
    }

    /// Whether a server's `Keep-Alive: timeout=N` response header sets its
    /// origin's idle-timeout estimate. Switching it off shows what the
    /// header contributes (as `poolbench ablation` does); `Keep-Alive:
    /// max=N` is honoured either way. Default: `true`.
    pub fn keep_alive_hints(mut self, enabled: bool) -> Builder {
        self.keep_alive_hints = enabled;
        self
    }

    /// Whether server-initiated closes of idle connections teach the pool
    /// an origin's idle timeout. Switching it off shows what learning
    /// contributes (as `poolbench ablation` does). Default: `true`.
    pub fn learn_from_closes(mut self, enabled: bool) -> Builder {
        self.learn_from_closes = enabled;
        self
    }

    /// How long before the server's estimated idle deadline a connection
    /// is retired. Default: [`Margin::default`]: the path's round trip
    /// (`srtt + 4·rttvar`, the kernel's over TCP or the client's own
    /// request-to-response times, whichever is longer; the connect time
    /// before any request) plus the runtime's measured scheduling lateness, at least
    /// 1 ms, plus 1% of a *learned* estimate and the lateness again (the
    /// close it was learned from was read that late), and 10 ms more while
    /// the estimate rests on a single close, at most 2 s. See [`Margin`]
    /// for why a `Keep-Alive` value gets none of these.
    pub fn margin(mut self, margin: Margin) -> Builder {
        self.margin = margin;
        self
    }

    /// The numbers the idle-timeout estimator's rules rest on (how early a
    /// lone close may teach, what a mass close is, how closes agree, how
    /// far a watch runs to refute an estimate). Default:
    /// [`Tuning::default`], whose fields each give their reason; change one
    /// only for a reason as good.
    pub fn estimator_tuning(mut self, tuning: Tuning) -> Builder {
        self.tuning = tuning;
        self
    }

    /// How long a piece of evidence about an origin's idle timeout (a
    /// close, a survival, a `Keep-Alive` header) counts before it ages out.
    /// Default: 5 minutes.
    pub fn observation_ttl(mut self, ttl: Duration) -> Builder {
        self.observation_ttl = ttl;
        self
    }

    /// Retire every connection after `max`, less up to `jitter` at random,
    /// whatever its activity, so that DNS changes are followed. Default:
    /// no limit.
    pub fn max_lifetime(mut self, max: Duration, jitter: Duration) -> Builder {
        self.max_lifetime = Some(Lifetime { max, jitter });
        self
    }

    /// Retries per request, under the rules of RFC 9112 §9.3.1 (see
    /// [`retry`](crate::retry)). Default: 2. Zero disables retries.
    pub fn retries(mut self, retries: u32) -> Builder {
        self.retry.retries = retries;
        self
    }

    /// Whether an `Idempotency-Key` header makes a non-idempotent request
    /// retryable. Default: `true`.
    pub fn idempotency_key_retries(mut self, enabled: bool) -> Builder {
        self.retry.idempotency_key = enabled;
        self
    }

    /// Whether requests that provably never reached the server (hyper
    /// handed them back, or not one byte was written) are retried on a new
    /// connection. Default: `true`, as hyper-util.
    pub fn retry_canceled_requests(mut self, enabled: bool) -> Builder {
        self.retry.unsent = enabled;
        self
    }

    /// How many bytes of a streaming request body are kept so that it can
    /// be replayed by a retry. A longer body is not retried. Default:
    /// 64 KiB.
    pub fn retry_body_limit(mut self, bytes: usize) -> Builder {
        self.replay_cap = bytes;
        self
    }

    /// Use `timeout` as the server's idle timeout for `host:port` (as in the
    /// request URI, with the port explicit), above anything advertised or
    /// learned. Default: none.
    pub fn idle_timeout_override(
        mut self,
        authority: impl Into<String>,
        timeout: Duration,
    ) -> Builder {
        self.overrides
            .insert(authority.into().to_ascii_lowercase(), timeout);
        self
    }

    /// Whether to set the `Host` header from the URI when the request has
    /// none (HTTP/1 only). Default: `true`.
    pub fn set_host(mut self, enabled: bool) -> Builder {
        self.set_host = enabled;
        self
    }

    /// Speak HTTP/2 with prior knowledge to every origin. Default: `false`
    /// (HTTP/2 only when the connector negotiated it with ALPN).
    pub fn http2_only(mut self, enabled: bool) -> Builder {
        self.http2_only = enabled;
        self
    }

    /// How many requests share one HTTP/2 connection before another is
    /// opened to the same origin. Default: 100, the minimum concurrency
    /// RFC 9113 recommends servers allow.
    pub fn http2_max_streams_per_connection(mut self, max: usize) -> Builder {
        self.http2_max_streams = max;
        self
    }

    /// The executor every connection task is spawned on (one per
    /// connection, plus hyper's HTTP/2 body tasks), as in hyper-util's
    /// `Client::builder(executor)`. Default: hyper-util's `TokioExecutor`
    /// (`tokio::spawn` on the current runtime).
    ///
    /// The pool's own expiry scheduler and response-body bookkeeping still
    /// run on tokio, and read tokio's clock (so `start_paused` tests
    /// control every timer the client has): a client needs a tokio runtime
    /// whatever its executor.
    pub fn executor<E>(mut self, executor: E) -> Builder
    where
        E: Executor<BoxSendFuture> + Send + Sync + 'static,
    {
        self.exec = Exec::new(executor);
        self
    }

    /// The timer hyper's HTTP/2 connections use for keep-alive pings and
    /// their timeout, as hyper-util's `Builder::timer`. Default: hyper-util's
    /// `TokioTimer`, which follows tokio's clock (paused time included).
    pub fn timer<T>(mut self, timer: T) -> Builder
    where
        T: Timer + Send + Sync + 'static,
    {
        self.timer = SharedTimer::new(timer);
        self
    }

    /// Accept obsolete line folding (a header value continued on a line
    /// that starts with a space or tab, RFC 9112 §5.2) in HTTP/1 response
    /// headers, replacing each fold with spaces. Default: `false` (such a
    /// response is a parse error).
    pub fn http1_allow_obsolete_multiline_headers_in_responses(mut self, enabled: bool) -> Builder {
        self.h1
            .allow_obsolete_multiline_headers_in_responses(enabled);
        self
    }

    /// Accept spaces between a header name and its colon in HTTP/1
    /// responses. Default: `false`.
    pub fn http1_allow_spaces_after_header_name_in_responses(mut self, enabled: bool) -> Builder {
        self.h1.allow_spaces_after_header_name_in_responses(enabled);
        self
    }

    /// Silently drop invalid header lines of HTTP/1 responses (a bad name,
    /// a missing colon, a bad value) instead of failing the response, as
    /// browsers do; a NUL or a lone CR is still an error. Default: `false`.
    pub fn http1_ignore_invalid_headers_in_responses(mut self, enabled: bool) -> Builder {
        self.h1.ignore_invalid_headers_in_responses(enabled);
        self
    }

    /// Write HTTP/1 request header names in title case (`Content-Type`)
    /// instead of lower case. Default: `false`.
    pub fn http1_title_case_headers(mut self, enabled: bool) -> Builder {
        self.h1.title_case_headers(enabled);
        self
    }

    /// Record the case of HTTP/1 response header names in a (private)
    /// extension of the response, and write a request's header names in
    /// the case such an extension records, so that a proxy passes names on
    /// as it received them. Default: `false`.
    pub fn http1_preserve_header_case(mut self, enabled: bool) -> Builder {
        self.h1.preserve_header_case(enabled);
        self
    }

    /// Use vectored writes. Default: chosen by the IO type.
    pub fn http1_writev(mut self, enabled: bool) -> Builder {
        self.h1.writev(enabled);
        self
    }

    /// The largest HTTP/1 read buffer, at least 8 KiB. Default: hyper's
    /// (about 400 KiB).
    pub fn http1_max_buf_size(mut self, max: usize) -> Builder {
        self.h1_max_buf_size = Some(max);
        self
    }

    /// The most response headers accepted. Default: hyper's (100).
    pub fn http1_max_headers(mut self, max: usize) -> Builder {
        self.h1.max_headers(max);
        self
    }

    /// HTTP/2 stream-level flow control window (`SETTINGS_INITIAL_WINDOW_SIZE`),
    /// at most 2^31 − 1. `None` keeps the default. Default: hyper's (2 MiB).
    pub fn http2_initial_stream_window_size(mut self, size: impl Into<Option<u32>>) -> Builder {
        self.h2.initial_stream_window_size = size.into();
        self
    }

    /// HTTP/2 connection-level flow control window, at most 2^31 − 1.
    /// `None` keeps the default. Default: hyper's (5 MiB).
    pub fn http2_initial_connection_window_size(mut self, size: impl Into<Option<u32>>) -> Builder {
        self.h2.initial_connection_window_size = size.into();
        self
    }

    /// Size HTTP/2 flow-control windows from the measured bandwidth-delay
    /// product (hyper's BDP pings) instead of fixed windows; both windows
    /// then start at the RFC's 65,535 bytes, whatever
    /// `http2_initial_*_window_size` says. Default: `false`.
    pub fn http2_adaptive_window(mut self, enabled: bool) -> Builder {
        self.h2.adaptive_window = enabled;
        self
    }

    /// The largest HTTP/2 frame payload this client accepts
    /// (`SETTINGS_MAX_FRAME_SIZE`), from 16,384 to 16,777,215 bytes. `None`
    /// keeps the default. Default: 16 KiB.
    pub fn http2_max_frame_size(mut self, size: impl Into<Option<u32>>) -> Builder {
        self.h2.max_frame_size = size.into();
        self
    }

    /// The largest HTTP/2 response header list accepted
    /// (`SETTINGS_MAX_HEADER_LIST_SIZE`). Default: hyper's (16 KiB).
    pub fn http2_max_header_list_size(mut self, max: u32) -> Builder {
        self.h2.max_header_list_size = Some(max);
        self
    }

    /// How many streams the server may reset before this client accepted
    /// them, before the connection is closed with `ENHANCE_YOUR_CALM`
    /// (hyper#2877). `None` keeps the default. Default: the `h2` crate's
    /// (20).
    pub fn http2_max_pending_accept_reset_streams(
        mut self,
        max: impl Into<Option<usize>>,
    ) -> Builder {
        self.h2.max_pending_accept_reset_streams = max.into();
        self
    }

    /// Send an HTTP/2 `PING` after the connection has been this long
    /// without receiving a frame; `None` disables keep-alive pings.
    /// Default: `None`.
    pub fn http2_keep_alive_interval(mut self, interval: impl Into<Option<Duration>>) -> Builder {
        self.h2.keep_alive_interval = interval.into();
        self
    }

    /// Close an HTTP/2 connection whose keep-alive `PING` is not
    /// acknowledged within this long; its requests fail. Does nothing
    /// without [`http2_keep_alive_interval`](Builder::http2_keep_alive_interval).
    /// Default: 20 s.
    pub fn http2_keep_alive_timeout(mut self, timeout: Duration) -> Builder {
        self.h2.keep_alive_timeout = Some(timeout);
        self
    }

    /// Whether HTTP/2 keep-alive pings are also sent while no request is
    /// open on the connection (otherwise only while one is). Does nothing
    /// without [`http2_keep_alive_interval`](Builder::http2_keep_alive_interval).
    /// Default: `false`.
    pub fn http2_keep_alive_while_idle(mut self, enabled: bool) -> Builder {
        self.h2.keep_alive_while_idle = enabled;
        self
    }

    /// Validates the settings and builds a client over `connector`.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the setting when `max_connections_per_host`,
    /// `http2_max_streams_per_connection`, `checkout_timeout`,
    /// `max_lifetime`, an `idle_timeout_override`, `http2_keep_alive_interval`
    /// or `http2_keep_alive_timeout` is zero, `max_lifetime`'s jitter exceeds
    /// its maximum, `http1_max_buf_size` is below 8 KiB, an HTTP/2 window is
    /// past 2^31 − 1, or `http2_max_frame_size` is outside RFC 9113's range.
    pub fn build<C, B>(self, connector: C) -> Result<Client<C, B>, BuildError>
    where
        // Checked here, so a connector whose IO cannot be probed
        // fails at `build` with `Probe`'s message, not at `request`.
        C: crate::Connect,
        B: http_body::Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<crate::error::BoxError>,
    {
        if self.max_connections_per_host == Some(0) {
            return Err(BuildError::new(
                "max_connections_per_host",
                "must be at least 1",
            ));
        }
        if self.http2_max_streams == 0 {
            return Err(BuildError::new(
                "http2_max_streams_per_connection",
                "must be at least 1",
            ));
        }
        if self.checkout_timeout.is_zero() {
            return Err(BuildError::new(
                "checkout_timeout",
                "must be longer than zero",
            ));
        }
        if let Some(lifetime) = &self.max_lifetime {
            if lifetime.max.is_zero() {
                return Err(BuildError::new("max_lifetime", "must be longer than zero"));
            }
            if lifetime.jitter > lifetime.max {
                return Err(BuildError::new(
                    "max_lifetime",
                    "jitter must not exceed the lifetime",
                ));
            }
        }
        if self.overrides.values().any(Duration::is_zero) {
            return Err(BuildError::new(
                "idle_timeout_override",
                "must be longer than zero",
            ));
        }
        if self.h1_max_buf_size.is_some_and(|max| max < MIN_H1_BUF) {
            return Err(BuildError::new(
                "http1_max_buf_size",
                "must be at least 8192 bytes",
            ));
        }
        self.h2.validate()?;
        let mut h1 = self.h1;
        if let Some(max) = self.h1_max_buf_size {
            h1.max_buf_size(max);
        }
        let estimator = EstimatorConfig {
            default_timeout: self.pool_idle_timeout.unwrap_or(Duration::MAX),
            margin: self.margin,
            observation_ttl: self.observation_ttl,
            max_observations: if self.learn_from_closes {
                EstimatorConfig::default().max_observations
            } else {
                0
            },
            tuning: self.tuning,
        };
        let config = Config {
            estimator,
            pool_max_idle_per_host: self.pool_max_idle_per_host,
            max_connections_per_host: self.max_connections_per_host,
            checkout_timeout: self.checkout_timeout,
            probe_after: self.probe_after,
            keep_alive_hints: self.keep_alive_hints,
            max_lifetime: self.max_lifetime,
            retry: self.retry,
            replay_cap: self.replay_cap,
            overrides: self.overrides,
            set_host: self.set_host,
            http2_only: self.http2_only,
            http2_max_streams: self.http2_max_streams,
            h1,
            h2: self.h2.builder(self.exec.clone(), self.timer),
            exec: self.exec,
        };
        Ok(Client::from_parts(connector, Arc::new(config)))
    }

    /// Builds a client over hyper-util's [`HttpConnector`].
    ///
    /// # Errors
    ///
    /// As [`build`](Builder::build).
    pub fn build_http<B>(self) -> Result<Client<HttpConnector, B>, BuildError>
    where
        B: http_body::Body + Send + Unpin + 'static,
        B::Data: Send,
        B::Error: Into<crate::error::BoxError>,
    {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        self.build(http)
    }
}
