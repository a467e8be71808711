//! The client's error type.

use std::fmt;
use std::time::Duration;

use crate::retry::Refusal;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error from [`Client`](crate::Client): opaque, with precise queries.
///
/// `Display` describes what went wrong at this layer; the underlying cause
/// (a connector's IO error, hyper's protocol error) is in the
/// [`source()`](std::error::Error::source) chain. The retry queries say
/// whether a retry was attempted and, when one was not, which rule of RFC
/// 9112 §9.3.1 refused it.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    source: Option<BoxError>,
    attempts: u32,
    refusal: Option<Refusal>,
    reused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The request URI has no scheme or no host.
    InvalidUri(&'static str),
    /// The URI scheme is neither `http` nor `https`.
    UnsupportedScheme,
    /// The request version is neither HTTP/1.0, HTTP/1.1 nor HTTP/2.
    UnsupportedVersion,
    /// The connector failed.
    Connect,
    /// The HTTP handshake on a new connection failed.
    Handshake,
    /// `max_connections_per_host` was reached and no connection was free in time.
    CheckoutTimeout(Duration),
    /// Sending the request or receiving the response head failed.
    Request,
    /// The client was dropped while the request waited for a connection.
    PoolClosed,
}

impl Error {
    pub(crate) fn new(kind: Kind) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                source: None,
                attempts: 1,
                refusal: None,
                reused: false,
            }),
        }
    }

    pub(crate) fn with<E: Into<BoxError>>(mut self, source: E) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Error {
        self.inner.attempts = attempts;
        self
    }

    pub(crate) fn with_refusal(mut self, refusal: Refusal) -> Error {
        self.inner.refusal = Some(refusal);
        self
    }

    pub(crate) fn with_reused(mut self, reused: bool) -> Error {
        self.inner.reused = reused;
        self
    }

    /// The request's URI was unusable: no scheme, no host, or an unsupported
    /// scheme.
    pub fn is_invalid_uri(&self) -> bool {
        matches!(
            self.inner.kind,
            Kind::InvalidUri(_) | Kind::UnsupportedScheme
        )
    }

    /// The request asked for an HTTP version this client cannot send.
    pub fn is_unsupported_version(&self) -> bool {
        self.inner.kind == Kind::UnsupportedVersion
    }

    /// Establishing a connection failed: the connector (DNS, TCP, TLS,
    /// proxy) or the HTTP handshake returned an error.
    pub fn is_connect(&self) -> bool {
        matches!(self.inner.kind, Kind::Connect | Kind::Handshake)
    }

    /// No connection became available within the checkout timeout while
    /// `max_connections_per_host` connections were busy.
    pub fn is_checkout_timeout(&self) -> bool {
        matches!(self.inner.kind, Kind::CheckoutTimeout(_))
    }

    /// Sending the request, or receiving the response head, failed on an
    /// established connection.
    pub fn is_request(&self) -> bool {
        self.inner.kind == Kind::Request
    }

    /// The client was dropped while the request was waiting.
    pub fn is_closed(&self) -> bool {
        self.inner.kind == Kind::PoolClosed
    }

    /// Whether the final attempt ran on a connection reused from the pool.
    pub fn is_reused_connection(&self) -> bool {
        self.inner.reused
    }

    /// How many attempts were made, the first included. More than one means
    /// the request was retried.
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// Whether at least one retry was attempted before this error.
    pub fn is_retried(&self) -> bool {
        self.inner.attempts > 1
    }

    /// Why the failure was not retried, if a retry was considered.
    ///
    /// `None` for errors where retrying is never a question (an invalid URI,
    /// a checkout timeout).
    pub fn retry_refusal(&self) -> Option<Refusal> {
        self.inner.refusal
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("freshpool::Error");
        d.field("kind", &self.inner.kind);
        d.field("attempts", &self.inner.attempts);
        d.field("reused", &self.inner.reused);
        if let Some(refusal) = &self.inner.refusal {
            d.field("retry_refusal", refusal);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.inner.kind {
            Kind::InvalidUri(why) => write!(f, "invalid request URI: {why}")?,
            Kind::UnsupportedScheme => {
                f.write_str("unsupported URI scheme (expected http, https or unix)")?;
            }
            Kind::UnsupportedVersion => f.write_str("unsupported HTTP version for this request")?,
            Kind::Connect => f.write_str("error connecting to the origin")?,
            Kind::Handshake => f.write_str("HTTP handshake on a new connection failed")?,
            Kind::CheckoutTimeout(after) => write!(
                f,
                "no connection available after waiting {after:?} (max_connections_per_host reached)"
            )?,
            Kind::Request => f.write_str("error sending request")?,
            Kind::PoolClosed => {
                f.write_str("client dropped while the request waited for a connection")?;
            }
        }
        if self.inner.attempts > 1 {
            write!(f, " (after {} attempts)", self.inner.attempts)?;
        }
        if let Some(refusal) = self.inner.refusal {
            write!(f, "; not retried: {refusal}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|e| &**e as &(dyn std::error::Error + 'static))
    }
}

/// An invalid [`Builder`](crate::Builder) setting, returned by
/// [`Builder::build`](crate::Builder::build).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    setting: &'static str,
    why: &'static str,
}

impl BuildError {
    pub(crate) fn new(setting: &'static str, why: &'static str) -> BuildError {
        BuildError { setting, why }
    }

    /// The name of the builder setting that was rejected.
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid client setting `{}`: {}", self.setting, self.why)
    }
}

impl std::error::Error for BuildError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_send_sync_and_small() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_send_sync::<BuildError>();
        assert_eq!(size_of::<Error>(), size_of::<usize>());
    }

    #[test]
    fn display_names_the_cause_and_the_refusal() {
        let err = Error::new(Kind::Request)
            .with_attempts(2)
            .with_refusal(Refusal::NotIdempotent);
        let text = err.to_string();
        assert!(
            text.starts_with("error sending request (after 2 attempts)"),
            "{text}"
        );
        assert!(text.contains("not retried"), "{text}");
        assert!(err.is_request() && err.is_retried());
        assert_eq!(err.retry_refusal(), Some(Refusal::NotIdempotent));
    }
}
