//! A programmable, misbehaving HTTP origin server for tests, benchmarks and
//! demos.
//!
//! A pooled HTTP/1.1 client fails when it reuses a keep-alive connection at
//! the moment the server closes it for idleness. Showing that a client
//! survives this (and that it never sends a request twice) needs a server
//! whose every close is under the test's control: when its idle timer
//! starts, how it closes (FIN, RST or a `408`), what it claims in
//! `Keep-Alive`, and which bytes of a response it writes before it
//! misbehaves. This crate is that server. It also counts what it processed,
//! per `x-request-id`, so a test can prove that no request was processed
//! twice and none was lost.
//!
//! HTTP/1.1 is written by hand over [`tokio::net::TcpStream`] with
//! [`httparse`], not with hyper's server: exact control of the wire is the
//! point. HTTP/2 over cleartext (h2c, prior knowledge) is served by hyper,
//! with the same counters. [`Origin::listen_unix`] also serves the origin on
//! a Unix domain socket.
//!
//! ```
//! use std::time::Duration;
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tokio::net::TcpStream;
//! use freshpool_origin::{CloseMode, Origin};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let origin = Origin::builder()
//!     .idle_timeout(Duration::from_millis(100))
//!     .close_mode(CloseMode::Fin)
//!     .start()
//!     .await?;
//!
//! let mut stream = TcpStream::connect(origin.addr()).await?;
//! stream.write_all(b"POST /orders HTTP/1.1\r\nhost: a\r\nx-request-id: order-1\r\n\
//!                    content-length: 2\r\n\r\nhi").await?;
//! let mut response = vec![0; 1024];
//! let n = stream.read(&mut response).await?;
//! assert!(response[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));
//!
//! // 100 ms later the server closes the idle connection with a FIN.
//! assert_eq!(stream.read(&mut response).await?, 0);
//! assert_eq!(origin.processed("order-1"), 1);
//! assert_eq!(origin.stats().idle_closes_fin, 1);
//! origin.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! # The idle timeout
//!
//! Like Go's `IdleTimeout`, the timer of an HTTP/1.1 connection starts when
//! the last byte of a response has been written (or when the connection was
//! accepted) and is cancelled by the first byte of the next request. When it
//! fires, the connection is closed the [`CloseMode`] way at once: a request
//! that arrives at about that moment is either served or meets the FIN or
//! RST, which is the race this crate exists to reproduce. Once the first
//! byte of a request arrived, the server waits for the rest as long as it
//! takes.
//!
//! A request racing the close is either served or never read: the origin
//! never processes a request and then closes without answering it (unless
//! a knob asks it to), which is what lets a test tell a lost request from a
//! duplicate.
//!
//! Timers in one tokio runtime fire on shared millisecond ticks. A client
//! and an origin in the same runtime, with the client sleeping exactly the
//! idle timeout, therefore collide far more often than a client and a
//! server in separate processes do. Race experiments meant to be
//! representative (such as `examples/race_baseline.rs`) start the origin on
//! a runtime of its own.
//!
//! # Orders mid-run
//!
//! Two calls on the running [`Origin`] model a server whose idle closes are
//! not its idle timeout: [`Origin::close_idle`] closes every idle HTTP/1.1
//! connection at once (a restart, a reload, a load-balancer reset, Apache's
//! event MPM when its workers are busy), and [`Origin::set_idle_timeout`]
//! shortens (or restores) the idle timeout for a while, applied at once to
//! connections already idle, as an overloaded server closes keep-alive
//! connections early. Connections busy with a request are left alone.
//!
//! # Per-request knobs
//!
//! Most behaviour has a default set on the [`Builder`] that each request can
//! override with a header, so one origin can serve many scenarios.
//! Header names are case-insensitive; a knob with an unusable value is
//! answered with `400` and a message naming the header.
//!
//! | header | value | effect | builder default |
//! |---|---|---|---|
//! | `x-request-id` | any text | counted in [`Origin::processed`]; echoed | — |
//! | `x-delay-ms` | ms | wait before the response head | [`Builder::response_delay`] |
//! | `x-body-size` | bytes (≤ 1 GiB) | response body length, bytes of [`body_pattern`] | [`Builder::body_size`] |
//! | `x-chunked` | `1`/`0` | `Transfer-Encoding: chunked` instead of `Content-Length` | [`Builder::chunked`] |
//! | `x-status` | 200–599 | response status (`204`/`304` have no body) | [`Builder::status`] |
//! | `x-stream-chunks` | count | write the body in this many pieces (one chunk each if chunked) | 1 |
//! | `x-stream-interval-ms` | ms | pause between pieces | 0 |
//! | `x-pause-mid-body-ms` | ms | write half the body, pause, write the rest | 0 |
//! | `x-close-mid-body` | `fin`, `rst`, `1` (= fin) | write the head and half the body (rounded down), then close | off |
//! | `x-reset-after-read` | `1` | read the whole request, then RST without a response | off |
//! | `x-close` | `1` | respond with `Connection: close`, then close | off |
//!
//! The client's own `Connection: close` (and HTTP/1.0 without
//! `Connection: keep-alive`) is honoured: the response says `Connection:
//! close` and the server closes after it. A response that keeps the
//! connection open carries the [`Advertise`] header.
//!
//! Every HTTP/1.1 response also says which connection served it:
//! `x-connection-id` (the [`ConnectionRecord::id`]) and
//! `x-connection-requests` (how many requests that connection has processed,
//! this one included), so a client test can see reuse from the outside.
//!
//! On HTTP/2, `x-request-id`, `x-delay-ms`, `x-body-size`, `x-status` and
//! `x-reset-after-read` (which resets the stream, not the connection) apply;
//! the framing knobs do not.
//!
//! # What "processed" means
//!
//! A request counts as processed when its whole head and body were read,
//! the head was valid, and the server commits to acting on it: before the
//! response delay, before any response byte, and before the misbehaviour
//! knobs run. So a request answered by `x-reset-after-read` or cut off by
//! `x-close-mid-body` *was* processed (the server "applied" it and then
//! failed): a client that retries it causes a duplicate, which
//! [`Stats::duplicate_requests`] and [`Origin::duplicates`] expose. A
//! request rejected as malformed, or one whose connection closed before the
//! request was complete, was not.
//!
//! # Malformed input
//!
//! A malformed head, conflicting or invalid `Content-Length`, both
//! `Content-Length` and `Transfer-Encoding`, an unknown transfer coding, a
//! head over 64 KiB, or a body over [`Builder::max_request_body`] is
//! answered with `400`, `431`, `501` or `413` and `Connection: close`, and
//! the connection is closed. Nothing panics on bad input.
//!
//! # TLS
//!
//! With the `tls` feature, [`Builder::tls`] serves HTTPS (rustls, with a
//! self-signed certificate for `localhost` and `127.0.0.1` generated at
//! start; [`Origin::tls_certificate`] gives it to the client to trust).
//! Every setting and header knob applies as over plain HTTP; an idle FIN
//! becomes a `close_notify` and a FIN ([`TlsClose`]), an RST stays an RST,
//! and [`Builder::tls_key_update_when_idle`] puts a TLS record nobody asked
//! for on an idle connection, as the session tickets of a TLS 1.3 server
//! may be. The records of [`Origin::connections`] then name the TLS
//! front's relay as the peer.
//!
//! # Shutting down
//!
//! [`Origin::shutdown`] stops accepting, closes every connection and waits
//! for every task the origin spawned; [`Stats::tasks_alive`] is then zero.
//! Dropping the [`Origin`] also stops the server, without waiting.
//!
//! # Measuring a client
//!
//! [`FixedServer`] is the other server of this crate: it answers every
//! request with the same bytes from a thread of its own, and does nothing
//! else, so that a throughput benchmark measures the client, not the
//! server.
//!
//! # The binary
//!
//! `freshpool-origin --listen 127.0.0.1:8090 --idle 200ms --close rst`
//! serves the same origin from the command line; `--help` lists the flags.

mod body;
mod builder;
mod conn;
mod control;
mod fixed;
mod h1;
mod h2;
mod knobs;
mod server;
mod stats;
#[cfg(feature = "tls")]
mod tls;
#[cfg(unix)]
mod unix;

pub use body::body_pattern;
pub use builder::{Advertise, Builder, CloseMode};
pub use fixed::FixedServer;
pub use server::Origin;
pub use stats::{CloseReason, ConnectionRecord, Protocol, Stats};
#[cfg(feature = "tls")]
pub use tls::{TlsCertificate, TlsClose};
