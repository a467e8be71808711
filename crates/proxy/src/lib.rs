//! A small, correct reverse proxy built on [`freshpool`]: it never
//! answers `502` because an upstream connection went stale.
//!
//! A proxy is where the keep-alive race hurts most. It keeps idle
//! connections to its upstream, the upstream closes them after its own
//! idle timeout, and a request forwarded at about that moment fails; for a
//! `POST` the proxy cannot know whether the upstream processed it, so it
//! answers `502` to someone's browser. nginx, HAProxy, Envoy and Pingora
//! all do. [`Proxy`] forwards with [`freshpool::Client`], which probes idle
//! connections, retires them before the upstream's learned deadline and
//! retries only as RFC 9112 §9.3.1 allows, so that race is gone.
//!
//! [`Proxy`] is a tower `Service<Request<Incoming>>` (and a hyper
//! `Service`), so it can be mounted in any hyper server, and
//! [`Proxy::forward_body`] takes any other request body (an axum route's,
//! a request built in code); [`serve`]
//! is a ready serve loop (HTTP/1.1 and h2c, graceful shutdown) that tags
//! each request with the client's [`ClientAddr`], and, with the `rustls`
//! feature (on by default), `serve_tls` does the same over TLS, HTTP/1.1 or
//! HTTP/2 chosen by ALPN. The proxy is generic over
//! its client through the [`Upstream`] trait, implemented for
//! `freshpool::Client` and for hyper-util's legacy `Client`, so the same
//! proxy can be measured on both.
//!
//! ```no_run
//! use freshpool_proxy::{Proxy, RequestBody};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = freshpool::Client::builder().build_http::<RequestBody>()?;
//! let proxy = Proxy::builder("http://127.0.0.1:8080".parse()?)
//!     .upstream_timeout(Some(std::time::Duration::from_secs(10)))
//!     .max_request_body(Some(8 << 20))
//!     .build(client)?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8000").await?;
//! let ctrl_c = async { let _ = tokio::signal::ctrl_c().await; };
//! freshpool_proxy::serve(listener, proxy, ctrl_c).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The binary does the same from the command line:
//! `freshpool-proxy --listen 127.0.0.1:8000 --upstream http://127.0.0.1:8080`
//! (`--help` lists the flags).
//!
//! # What the proxy does to a message
//!
//! RFC 9110 §7.6: hop-by-hop fields (`Connection` and every field it names,
//! `Proxy-Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`,
//! `Trailer`, `Proxy-Authenticate`, `Proxy-Authorization`) are removed in
//! both directions (`TE: trailers` is passed on); `Via` is appended in both
//! directions; `X-Forwarded-For` (appended), `X-Forwarded-Proto` and
//! `X-Forwarded-Host` are set upstream; `Host` becomes the upstream's
//! authority unless [`Builder::preserve_host`]. Everything else, including
//! `Idempotency-Key`, passes unchanged. Bodies stream frame by frame.
//!
//! # When forwarding fails
//!
//! The proxy answers itself, with a `text/plain` body naming the cause and
//! an RFC 9209 `Proxy-Status` field (`error=connection_refused`,
//! `http_response_timeout`, `http_response_incomplete`, ...):
//!
//! | status | when |
//! |---|---|
//! | `502` | the upstream cannot be reached, resets, closes early, sends garbage or a head too large, or declares a body over [`Builder::max_response_body`] |
//! | `504` | no response head within [`Builder::upstream_timeout`] |
//! | `413` | the request body is over [`Builder::max_request_body`] |
//! | `405` | `CONNECT`, unless [`Builder::allow_connect`] |
//!
//! A response body that fails after its head was sent cannot become a
//! `502`: the client's connection (HTTP/1) or stream (HTTP/2) is aborted.

mod body;
mod builder;
mod failure;
mod headers;
mod proxy;
mod server;
mod stats;
#[cfg(feature = "rustls")]
mod tls;
mod tunnel;
mod upstream;

pub use body::{BodyTooLarge, RequestBody, ResponseBody, UpstreamStalled};
pub use builder::{BuildError, Builder};
pub use proxy::{ClientAddr, ClientTls, Proxy, ResponseFuture};
pub use server::{serve, serve_with_drain};
pub use stats::ProxyStats;
#[cfg(feature = "rustls")]
pub use tls::{TLS_HANDSHAKE_TIMEOUT, serve_tls, serve_tls_with_drain};
pub use upstream::Upstream;
