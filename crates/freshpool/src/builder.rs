//! Configuration of a [`Client`](crate::Client).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use freshpool_expiry::{EstimatorConfig, Lifetime, Margin};
use hyper::client::conn::{http1, http2};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::Client;
use crate::error::BuildError;
use crate::retry::RetryPolicy;

/// See [`Builder::probe_after`].
const DEFAULT_PROBE_AFTER: Duration = Duration::from_millis(1);

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
    pub(crate) h2: http2::Builder<TokioExecutor>,
}

/// Builds a [`Client`](crate::Client).
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
    observation_ttl: Duration,
    max_lifetime: Option<Lifetime>,
    retry: RetryPolicy,
    replay_cap: usize,
    overrides: HashMap<String, Duration>,
    set_host: bool,
    http2_only: bool,
    http2_max_streams: usize,
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
}

impl Default for Builder {
    fn default() -> Self {
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new());
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
            observation_ttl: estimator.observation_ttl,
            max_lifetime: None,
            retry: RetryPolicy::default(),
            replay_cap: 64 * 1024,
            overrides: HashMap::new(),
            set_host: true,
            http2_only: false,
            http2_max_streams: 100,
            h1: http1::Builder::new(),
            h2,
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
    /// server's idle timeout (those are seconds, and the expiry scheduler
    /// keeps a margin of at least 20 ms), and a close that reached it in
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
    /// is retired. Default: the larger of 10% of the estimate, 20 ms and
    /// the measured connect round trip, at most 2 s.
    pub fn margin(mut self, margin: Margin) -> Builder {
        self.margin = margin;
        self
    }

    /// How long an observed server close keeps lowering an origin's
    /// estimate before it ages out. Default: 5 minutes.
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

    /// Accept obsolete line folding in response headers. Default: `false`.
    pub fn http1_allow_obsolete_multiline_headers_in_responses(mut self, enabled: bool) -> Builder {
        self.h1
            .allow_obsolete_multiline_headers_in_responses(enabled);
        self
    }

    /// Accept spaces between a header name and its colon. Default: `false`.
    pub fn http1_allow_spaces_after_header_name_in_responses(mut self, enabled: bool) -> Builder {
        self.h1.allow_spaces_after_header_name_in_responses(enabled);
        self
    }

    /// Send header names in title case. Default: `false`.
    pub fn http1_title_case_headers(mut self, enabled: bool) -> Builder {
        self.h1.title_case_headers(enabled);
        self
    }

    /// Use vectored writes. Default: chosen by the IO type.
    pub fn http1_writev(mut self, enabled: bool) -> Builder {
        self.h1.writev(enabled);
        self
    }

    /// The largest HTTP/1 read buffer. Default: hyper's (about 400 KiB).
    pub fn http1_max_buf_size(mut self, max: usize) -> Builder {
        self.h1.max_buf_size(max);
        self
    }

    /// The most response headers accepted. Default: hyper's (100).
    pub fn http1_max_headers(mut self, max: usize) -> Builder {
        self.h1.max_headers(max);
        self
    }

    /// HTTP/2 stream-level flow control window. Default: hyper's.
    pub fn http2_initial_stream_window_size(mut self, size: impl Into<Option<u32>>) -> Builder {
        self.h2.initial_stream_window_size(size);
        self
    }

    /// HTTP/2 connection-level flow control window. Default: hyper's.
    pub fn http2_initial_connection_window_size(mut self, size: impl Into<Option<u32>>) -> Builder {
        self.h2.initial_connection_window_size(size);
        self
    }

    /// Interval of HTTP/2 keep-alive pings. Default: none.
    pub fn http2_keep_alive_interval(mut self, interval: impl Into<Option<Duration>>) -> Builder {
        self.h2.keep_alive_interval(interval);
        self
    }

    /// Validates the settings and builds a client over `connector`.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the setting when `max_connections_per_host`,
    /// `http2_max_streams_per_connection`, `checkout_timeout`,
    /// `max_lifetime` or an `idle_timeout_override` is zero, or
    /// `max_lifetime`'s jitter exceeds its maximum.
    pub fn build<C, B>(self, connector: C) -> Result<Client<C, B>, BuildError>
    where
        // Issue 12: checked here, so a connector whose IO cannot be probed
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
        let estimator = EstimatorConfig {
            default_timeout: self.pool_idle_timeout.unwrap_or(Duration::MAX),
            margin: self.margin,
            observation_ttl: self.observation_ttl,
            max_observations: if self.learn_from_closes {
                EstimatorConfig::default().max_observations
            } else {
                0
            },
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
            h1: self.h1,
            h2: self.h2,
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
