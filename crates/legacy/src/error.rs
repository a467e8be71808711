//! The error of [`RetryClient`](crate::RetryClient).

use std::error::Error as StdError;
use std::fmt;

use freshpool::retry::Refusal;
use hyper_util::client::legacy::Error as LegacyError;

/// Why a failed request was not sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotRetried {
    /// A rule of RFC 9112 §9.3.1 forbade it.
    Refused(Refusal),
    /// Connecting failed: there was no connection to be reused.
    Connect,
    /// The adapter did not follow the connection (HTTP/2, an upgrade, an
    /// exchange it cannot follow), so nothing is known about what reached
    /// the server.
    Unknown,
}

/// A request [`RetryClient`](crate::RetryClient) gave up on.
///
/// It wraps hyper-util's error (the [`source`](StdError::source), so the
/// usual chain down to `hyper::Error` and `std::io::Error` is intact) and
/// says why the request was not sent again.
pub struct Error {
    inner: Option<LegacyError>,
    why: NotRetried,
    attempts: u32,
    /// The last attempt's connection ended while hyper held the request
    /// unsent (there is no hyper-util error for it).
    stranded: bool,
}

impl Error {
    pub(crate) fn new(inner: LegacyError, why: NotRetried, attempts: u32) -> Error {
        Error {
            inner: Some(inner),
            why,
            attempts,
            stranded: false,
        }
    }

    /// The last attempt's connection ended while hyper held the request,
    /// unsent, and `why` forbade sending it again.
    pub(crate) fn stranded(why: Refusal, attempts: u32) -> Error {
        Error {
            inner: None,
            why: NotRetried::Refused(why),
            attempts,
            stranded: true,
        }
    }

    /// The request body could not be replayed for the next attempt, though
    /// no attempt failed for want of it.
    pub(crate) fn unreplayable(attempts: u32) -> Error {
        Error {
            inner: None,
            why: NotRetried::Refused(Refusal::BodyNotReplayable),
            attempts,
            stranded: false,
        }
    }

    /// The retry rule that refused to send the request again, if one did
    /// (`None` for a connect error, or when the adapter did not follow the
    /// connection).
    pub fn refusal(&self) -> Option<Refusal> {
        match self.why {
            NotRetried::Refused(refusal) => Some(refusal),
            NotRetried::Connect | NotRetried::Unknown => None,
        }
    }

    /// How many times the request was sent (1 when it was not retried).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Whether the last attempt's connection ended while hyper still held
    /// the request, unsent (a race in hyper's connection channel that
    /// would otherwise leave the request waiting for ever). Nothing of it
    /// reached the server.
    pub fn is_stranded(&self) -> bool {
        self.stranded
    }

    /// Whether the last attempt failed to connect.
    pub fn is_connect(&self) -> bool {
        self.inner.as_ref().is_some_and(LegacyError::is_connect)
    }

    /// hyper-util's error for the last attempt (`None` when the request
    /// could not be sent at all because its body could not be replayed, or
    /// when its connection ended while hyper held it: see
    /// [`is_stranded`](Self::is_stranded)).
    pub fn client_error(&self) -> Option<&LegacyError> {
        self.inner.as_ref()
    }

    /// Unwraps hyper-util's error for the last attempt.
    pub fn into_client_error(self) -> Option<LegacyError> {
        self.inner
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("inner", &self.inner)
            .field("not_retried", &self.why)
            .field("attempts", &self.attempts)
            .field("stranded", &self.stranded)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let attempts = self.attempts;
        let plural = if attempts == 1 { "" } else { "s" };
        if self.stranded {
            write!(
                f,
                "the connection ended with the request unsent after {attempts} attempt{plural}; not retried: "
            )?;
        } else {
            write!(
                f,
                "request failed after {attempts} attempt{plural}; not retried: "
            )?;
        }
        match self.why {
            NotRetried::Refused(refusal) => write!(f, "{refusal}"),
            NotRetried::Connect => f.write_str("connecting failed"),
            NotRetried::Unknown => f.write_str(
                "the connection's exchange was not followed, so it may have been processed",
            ),
        }
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner.as_ref().map(|e| e as &(dyn StdError + 'static))
    }
}
