//! The last head of each direction, kept with what it said.
//!
//! On one connection the same head usually comes again and again: hyper
//! writes the same request head for the same request, and a server answers
//! it with the same response head (until its `Date` ticks, or a body
//! changes size). A head that starts the input and is byte for byte the
//! kept one says exactly what the kept one said, so it is compared (one
//! `memcmp`) instead of parsed. Anything else is parsed as before, and
//! kept in its turn.

use super::body::{Body, Chunked};
use super::request::Method;

/// The longest head kept: longer ones are rare, and are parsed each time.
const MAX_KEPT_LEN: usize = 4096;

/// How a body begins, to start a fresh one for a repeated head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyStart {
    Length(u64),
    Chunked,
    CloseDelimited,
}

impl BodyStart {
    /// The framing of `body`, a body just made for a head.
    pub(super) fn of(body: &Body) -> BodyStart {
        match body {
            Body::Length(n) => BodyStart::Length(*n),
            Body::Chunked(_) => BodyStart::Chunked,
            Body::CloseDelimited => BodyStart::CloseDelimited,
        }
    }

    /// A body of this framing, none of it read yet.
    pub(super) fn body(self) -> Body {
        match self {
            BodyStart::Length(n) => Body::Length(n),
            BodyStart::Chunked => Body::Chunked(Chunked::new()),
            BodyStart::CloseDelimited => Body::CloseDelimited,
        }
    }
}

/// What the tracker takes from a request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RequestSummary {
    pub(super) method: Method,
    pub(super) body: BodyStart,
    /// `false` when the request carries `Connection: close`.
    pub(super) keep_alive: bool,
    /// An HTTP/1.0 request without `Connection: keep-alive`.
    pub(super) http10_close: bool,
}

/// What the tracker takes from a final response head, besides what it
/// leaves in the tracker's last head (which a repeated head would set to
/// the same values, so it is left as it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ResponseSummary {
    /// The request method the head answered: framing depends on it.
    pub(super) method: Method,
    pub(super) body: BodyStart,
}

/// The last head parsed whole, and what it said.
#[derive(Debug)]
pub(super) struct Kept<T> {
    bytes: Vec<u8>,
    said: Option<T>,
}

impl<T> Default for Kept<T> {
    fn default() -> Self {
        Kept {
            bytes: Vec::new(),
            said: None,
        }
    }
}

impl<T: Copy> Kept<T> {
    /// The kept head's length and what it said, if `input` starts with it.
    #[inline]
    pub(super) fn get(&self, input: &[u8]) -> Option<(usize, T)> {
        let said = self.said?;
        input
            .starts_with(&self.bytes)
            .then_some((self.bytes.len(), said))
    }

    /// What the kept head said, if `input` is exactly that head.
    #[inline]
    pub(super) fn get_exact(&self, input: &[u8]) -> Option<T> {
        let said = self.said?;
        (input == self.bytes.as_slice()).then_some(said)
    }

    /// Keeps `head`, which said `said`.
    pub(super) fn keep(&mut self, head: &[u8], said: T) {
        if head.len() > MAX_KEPT_LEN {
            self.forget();
            return;
        }
        self.bytes.clear();
        self.bytes.extend_from_slice(head);
        self.said = Some(said);
    }

    /// Keeps nothing: the next head is parsed.
    pub(super) fn forget(&mut self) {
        self.said = None;
    }
}
