//! Keep hyper-util's legacy `Client` from reusing a connection the server
//! is closing, with a one-line change.
//!
//! An HTTP/1.1 client that reuses a pooled keep-alive connection just as
//! the server closes it for idleness fails that request with `connection
//! closed before message completed` or `connection reset by peer`, and for
//! a `POST` cannot know whether the server processed it. hyper-util's
//! `Client` (and reqwest, built on it) does this to about 1–2% of requests
//! sent at about the server's idle timeout.
//!
//! # The swap
//!
//! Wrap the connector you already have:
//!
//! ```no_run
//! # use bytes::Bytes;
//! # use http_body_util::Full;
//! # use hyper_util::client::legacy::{Client, connect::HttpConnector};
//! # use hyper_util::rt::TokioExecutor;
//! let client = Client::builder(TokioExecutor::new())
//!     .build::<_, Full<Bytes>>(freshpool_legacy::Connector::new(HttpConnector::new()));
//! ```
//!
//! With tower's `ServiceBuilder`, `.layer(ConnectorLayer::new())` does the
//! same ([`ConnectorLayer`]).
//!
//! That alone removes the race in the usual case, where the server's idle
//! timer fires while the next request is on its way. Each connection's IO
//! ([`TrackedIo`]) follows the HTTP/1 messages from the bytes hyper writes
//! and reads, and the [`Connector`] learns each origin's idle timeout: from
//! `Keep-Alive: timeout=N` when the server advertises it (Apache, Node),
//! otherwise from the closes it observes (Go, nginx, most servers
//! advertise nothing): a close of an idle connection, or a close that
//! meets the next request before any byte of its response after the
//! connection had been idle a while, which is the server's idle timer
//! firing first. A margin before that
//! deadline, a connection that is *provably idle between messages* makes
//! its next read return end-of-file: hyper closes it, hyper-util's pool
//! drops it, and the next request opens a fresh connection instead of
//! meeting the server's close. Requests hyper-util had already queued on
//! it are handed back unsent, and hyper-util retries them itself.
//!
//! A connection no request came for is kept open a little past that
//! point (never reused: any read of it ends it), to see the server close
//! it. One close is a noisy reading of the server's timer, late by
//! whatever the server and the client were busy with just then, so the
//! margin is wider while an estimate rests on one; the watched close is
//! the second reading (see
//! [`IdleEstimator::watch_after`](freshpool_expiry::IdleEstimator::watch_after)).
//!
//! The wrapper never writes, buffers or holds back a byte hyper did not
//! ask for, and never ends a connection with a request or a response in
//! progress: a slow consumer, or a server pausing mid-body, is safe. One
//! driver task per connector retires the connections of all its clones;
//! it holds only a weak reference and ends with the connector.
//!
//! # TLS
//!
//! The adapter must see HTTP, so it wraps the TLS connector, never the
//! other way round: `Connector::new(https)`. The IO it follows is then the
//! TLS stream's plaintext.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Empty};
//! use hyper_rustls::HttpsConnectorBuilder;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
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
//! // Right: the adapter around the TLS connector.
//! let connector = freshpool_legacy::Connector::new(https);
//! let client = Client::builder(TokioExecutor::new())
//!     .build::<_, Empty<Bytes>>(connector.clone());
//! client.get(url.parse()?).await?.into_body().collect().await?;
//! assert_eq!(connector.stats().wrong_order, 0);
//! assert_eq!(connector.stats().untracked, 0);
//! # origin.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Wrong: `HttpsConnectorBuilder::…wrap_connector(Connector::new(http))`
//! compiles and runs, but the adapter then sits under the TLS layer, sees
//! only ciphertext and protects nothing. It notices (the first bytes it
//! writes are a TLS record, not a request), counts each such connection in
//! [`Stats::wrong_order`] and logs a `tracing` warning once per connector.
//!
//! # `RetryClient`
//!
//! What the swap cannot prevent is a close nobody could foresee: before
//! the idle timeout was learned, a server restart, a load balancer
//! dropping flows. [`RetryClient`] wraps the `Client` and retries such a
//! failure exactly as RFC 9112 §9.3.1 allows: only on a reused connection,
//! before any response byte, and only when the request provably never
//! reached the socket, or is idempotent, or carries an `Idempotency-Key`.
//! It knows what reached the socket because the connection counted it:
//! [`ConnectionInfo`], attached to every response and error as a
//! `Connected` extra.
//!
//! # Limits
//!
//! - HTTP/2 connections (negotiated with ALPN) pass through untouched.
//! - A connection whose exchange the adapter cannot follow (a `101`
//!   upgrade, a `CONNECT` tunnel, a malformed or pipelined exchange) is
//!   never touched again; it behaves exactly as without the adapter
//!   ([`Stats::untracked`] counts them).
//! - hyper-util's pool does not consult the connector at checkout, so
//!   unlike [`freshpool::Client`] there is no socket probe: protection
//!   comes from retiring connections before the deadline and from
//!   learning. (hyper itself reads idle connections, so a close that
//!   already happened is usually noticed before reuse.)
//! - A request can hang when the connection hyper-util handed it ends at
//!   the same instant (a race in hyper's connection channel that plain
//!   hyper-util has too; `docs/design.md` §10.1 in the repository tells
//!   it). The connector alone cannot break it from the IO;
//!   [`RetryClient`] does, and sends such a request again.
//! - Each [`Connector`] learns on its own; clones share what they learn.
//!   A close that meets a request on a connection idle for less than
//!   [`min_crossed_idle`](freshpool_expiry::Tuning::min_crossed_idle) is not learned from: a server
//!   resetting over a request it could not handle is likelier then.
//! - Each connection's IO is a [`TrackedIo<T>`] over the inner
//!   connector's `T`. Code that recovers its stream after an upgrade or a
//!   tunnel downcasts to that type, then unwraps it:
//!   `upgraded.downcast::<TrackedIo<TokioIo<TcpStream>>>()` for
//!   `HttpConnector`, then [`TrackedIo::into_inner`] (and `TokioIo`'s own
//!   `into_inner`). A downcast to the inner type itself fails. `TrackedIo`
//!   is also tokio's `AsyncRead` and `AsyncWrite`.

mod connector;
mod error;
mod info;
mod io;
mod layer;
mod retry;
mod round_trip;
mod stranded;
mod tracker;

pub use connector::{Connecting, Connector, Stats};
pub use error::Error;
pub use freshpool::ReplayBody;
pub use freshpool::retry::{Refusal, RetryPolicy, Rule};
pub use freshpool_expiry::{Estimate, EstimatorConfig, Margin, Source};
pub use info::ConnectionInfo;
pub use io::TrackedIo;
pub use layer::ConnectorLayer;
pub use retry::{DEFAULT_REPLAY_CAP, ResponseFuture, RetryClient};

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
