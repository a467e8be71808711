//! Keep hyper-util's legacy `Client` from reusing a connection the server
//! is closing.
//!
//! An HTTP/1.1 client that reuses a pooled keep-alive connection just as
//! the server closes it for idleness fails that request with
//! `connection closed before message completed`. `freshpool-legacy` fixes
//! this without replacing the client: it wraps the connector, and its IO
//! wrapper follows the HTTP/1 messages on each connection from the bytes
//! hyper writes and reads. When a connection is provably idle between
//! messages and is about to outlive the server's idle timeout, the wrapper
//! makes its next read return EOF, so hyper closes it and hyper-util's pool
//! drops it before a request can meet the server's close.
//!
//! The wrapper never writes or holds back a byte hyper did not ask for, and
//! a connection whose exchange it cannot follow (an upgrade, a `CONNECT`
//! tunnel, anything malformed) is simply never touched again.
//!
//! This first part holds the message-boundary tracker that all of this
//! rests on; the connector and IO wrapper build on it.

#[allow(
    dead_code,
    reason = "the IO wrapper that drives the tracker lands in the next part of \
              issue 5; until then only its tests and the fuzz hooks use it"
)]
mod tracker;

#[allow(
    unused_imports,
    reason = "the tracker's interface for the IO wrapper (next part of issue 5)"
)]
pub(crate) use tracker::{CloseOutcome, ReadOutcome, ResponseHead, StopReason, Tracker};

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
