//! A connection-pool transport for hyper that never hands a request to a
//! connection the server is closing.
//!
//! HTTP/1.1 clients keep idle keep-alive connections to reuse them; servers
//! close idle connections after their own timeout. When a client reuses a
//! connection at about the moment the server closes it, the request fails
//! with `connection closed before message completed` or `connection reset
//! by peer`, and for a `POST` the client cannot know whether the server
//! processed it. [`Client`] removes that race in three layers:
//!
//! 1. **Probe** at checkout: an idle socket with a FIN, an RST or stray
//!    bytes pending is never reused ([`freshpool_probe`]). Connections
//!    reused within a millisecond skip the syscall (see
//!    [`Builder::probe_after`]).
//! 2. **Expiry**: each idle connection is retired a margin *before* the
//!    server's idle deadline, which is learned per origin from
//!    `Keep-Alive` headers and from the closes the pool observes
//!    ([`freshpool_expiry`]). One scheduler task serves the whole pool.
//!    A retired connection is never handed out again, but stays open a
//!    little longer to see the server close it: that close is another
//!    reading of the server's timer, and the margin is wider while one
//!    close is all an estimate rests on.
//! 3. **Retry**, exactly as RFC 9112 §9.3.1 allows ([`retry`]): only after
//!    a failure on a reused connection, before any response byte, when
//!    the request provably never reached the server, or is idempotent, or
//!    carries an `Idempotency-Key` (and after a stream an HTTP/2 server
//!    refused unprocessed). The retry goes on a freshly connected
//!    connection, and its failure is final.
//!
//! Around those, the client behaves as hyper-util's legacy `Client`: it
//! takes the same connectors (DNS, proxies and TLS come from the one you
//! already have; an IO type that cannot be [probed](Probe) is accepted
//! through [`Unprobed`]), keys its pool by scheme, host and port, and
//! speaks HTTP/2 when ALPN negotiates it or [`Builder::http2_only`] asks,
//! sharing one connection per origin (more once
//! [`Builder::http2_max_streams_per_connection`] requests are in flight).
//! A response's [`Body`] returns its connection to the pool when it has
//! been read to the end; a body dropped early closes it.
//!
//! The [`Builder`] takes hyper-util's options under hyper-util's names
//! (`http1_title_case_headers`, `http2_keep_alive_interval`, …) and its
//! runtime hooks: [`Builder::executor`] for the connection tasks and
//! [`Builder::timer`] for HTTP/2 keep-alive (tokio's by default; the pool's
//! own scheduler always reads tokio's clock, so paused-time tests control
//! it). [`Client`] is a tower `Service<Request<B>>`, so `ServiceBuilder`'s
//! timeouts, limits and buffers go around it, and [`UnixConnector`] speaks
//! HTTP over Unix domain sockets, including hyperlocal's `unix://` URIs.
//!
//! # HTTPS
//!
//! With the `rustls` feature, hyper-rustls's `HttpsConnector` is a
//! connector [`Client`] takes as it is, no wrapper: its connections are
//! probed with the TLS rule of [`freshpool_probe`] (a FIN or an RST
//! discards the connection even behind a `close_notify`; session tickets
//! and `KeyUpdate` records alone do not). The `native-tls` feature does the
//! same for hyper-tls's `HttpsConnector`. Any other connector whose IO
//! cannot be probed goes through [`Unprobed`]; generic code over the client
//! names one bound, [`Connect`].
//!
//! ```
//! # #[cfg(feature = "rustls")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Empty};
//! use hyper_rustls::HttpsConnectorBuilder;
//!
//! # let origin = freshpool_origin::Origin::builder().tls(true).start().await?;
//! # let url = format!("{}/", origin.base_url());
//! // The roots you trust: webpki-roots, the platform's, or here the test
//! // origin's own self-signed certificate.
//! let mut roots = rustls::RootCertStore::empty();
//! # let certificate = origin.tls_certificate().expect("TLS mode").der().to_vec();
//! roots.add(certificate.into())?;
//! let provider = Arc::new(rustls::crypto::ring::default_provider());
//! let tls = rustls::ClientConfig::builder_with_provider(provider)
//!     .with_safe_default_protocol_versions()?
//!     .with_root_certificates(roots)
//!     .with_no_client_auth();
//! let https = HttpsConnectorBuilder::new()
//!     .with_tls_config(tls)
//!     .https_or_http()
//!     .enable_http1()
//!     .build();
//!
//! let client = freshpool::Client::builder().build::<_, Empty<Bytes>>(https)?;
//! for _ in 0..2 {
//!     let response = client.get(url.parse()?).await?;
//!     response.into_body().collect().await?;
//! }
//! assert_eq!(client.stats().total.reused, 1);
//! # origin.shutdown().await;
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "rustls"))]
//! # fn main() {}
//! ```
//!
//! [`Client::stats`] counts what the pool did per origin (reuse, probe
//! rejections, retirements, observed closes, retries by rule, the current
//! idle-timeout estimate and its [`Source`]); `tracing` has a `request`
//! span per attempt (origin, reused, idle time, attempt) and a debug event
//! for each retirement, probe rejection, learned estimate and retry.
//!
//! ```no_run
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let client = freshpool::Client::builder().build_http::<Full<Bytes>>()?;
//! let request = http::Request::post("http://127.0.0.1:8080/orders")
//!     .header("idempotency-key", "order-42")
//!     .body(Full::new(Bytes::from_static(b"{\"qty\": 1}")))?;
//! let response = client.request(request).await?;
//! let body = response.into_body().collect().await?.to_bytes();
//! println!("{}", String::from_utf8_lossy(&body));
//! println!("{:?}", client.stats().total);
//! # Ok(())
//! # }
//! ```
//!
//! # Already on hyper-util's `Client`?
//!
//! Keep it, and wrap its connector with `freshpool-legacy`:
//! `Client::builder(TokioExecutor::new()).build(freshpool_legacy::Connector::new(HttpConnector::new()))`
//! (or `.layer(freshpool_legacy::ConnectorLayer::new())` in a
//! `ServiceBuilder`). That one-line swap removes the race in the common
//! case, where the server's idle timer fires while the next request is on
//! its way, without touching the rest of the code; `freshpool_legacy::RetryClient`
//! adds the RFC 9112 retries. This crate's [`Client`] is for new code, or
//! when the socket probe at checkout and HTTP/2-aware retries are wanted
//! too.
//!
//! # reqwest
//!
//! reqwest cannot be helped from outside. It is built on hyper-util's
//! `Client`, but its only hook into connections,
//! `ClientBuilder::connector_layer`, hands a layer requests of type
//! `Unnameable` and expects responses of type `Conn`, and both have only
//! private fields (reqwest 0.13): a layer can neither read the URI, so it
//! cannot tell origins apart and learn each one's idle timeout, nor reach
//! or replace the socket, so it cannot follow the HTTP/1 messages and end
//! an idle connection before the server does. Instead:
//!
//! - for the requests where a lost `POST` matters, use this crate's
//!   [`Client`], or hyper-util's `Client` over `freshpool_legacy::Connector`
//!   (reqwest's request builder has no counterpart there; its TLS and
//!   proxy setup does: hyper-rustls and hyper-util's proxy connectors);
//! - staying on reqwest, set its `pool_idle_timeout` a margin below the
//!   server's idle timeout when you know it, so that reqwest drops idle
//!   connections before the server closes them, and retry only
//!   idempotent requests.

mod body;
mod bounds;
mod builder;
mod client;
mod connect;
mod error;
mod info;
mod io;
mod pool;
mod replay;
pub mod retry;
mod rt;
mod stats;
#[cfg(unix)]
mod unix;
mod unprobed;

pub use body::Body;
pub use bounds::{Connect, RequestBody};
pub use builder::Builder;
pub use client::{Client, ResponseFuture};
pub use error::{BuildError, Error};
pub use freshpool_expiry::{Margin, Source};
pub use freshpool_probe::{Liveness, Probe};
pub use info::{CaptureConnection, ConnectionInfo, capture_connection, next_connection_id};
pub use pool::Origin;
pub use replay::ReplayBody;
pub use rt::BoxSendFuture;
pub use stats::{OriginStats, Stats};
#[cfg(unix)]
pub use unix::{UnixConnecting, UnixConnector, unix_uri};
pub use unprobed::{Unprobed, UnprobedIo};
