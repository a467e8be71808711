//! The `Keep-Alive` response header and the reuse rules of a response head.
//!
//! `Keep-Alive` is not part of HTTP/1.1 proper; its syntax comes from RFC
//! 2068 §19.7.1.1 and the expired `draft-thomson-hybi-http-timeout`, and
//! real servers send it in a few shapes:
//!
//! | server | what it sends |
//! |---|---|
//! | Apache httpd (`KeepAliveTimeout 5`, `MaxKeepAliveRequests 100`) | `Keep-Alive: timeout=5, max=100`, then `max=99`, `max=98`, … |
//! | Node.js `http` (`keepAliveTimeout` 5000 ms) | `Keep-Alive: timeout=5` (and `, max=N` with `maxRequestsPerSocket`) |
//! | IIS (`connectionTimeout` 120 s) | nothing to HTTP/1.1 clients; `Connection: Keep-Alive` to HTTP/1.0 clients (Microsoft KB 238210) |
//!
//! Servers truncate their timeout to whole seconds (Apache and Node both
//! floor it), so `timeout=N` means "somewhere in `[N, N + 1)` seconds";
//! taking `N` is the safe reading. A server that advertises nothing, like
//! IIS, leaves the timeout to be learned
//! ([`IdleEstimator`](crate::IdleEstimator)).

use std::fmt;
use std::time::Duration;

/// The parameters of a `Keep-Alive` response header.
///
/// Only the two parameters a client can act on are kept: `timeout`, how
/// long the server keeps an idle connection open, and `max`, how many more
/// requests it will accept on this connection.
///
/// ```
/// use std::time::Duration;
/// use freshpool_expiry::KeepAlive;
///
/// // What Apache httpd sends with its default configuration.
/// let hint = KeepAlive::parse(b"timeout=5, max=100").unwrap();
/// assert_eq!(hint.timeout, Some(Duration::from_secs(5)));
/// assert_eq!(hint.max, Some(100));
///
/// // Garbage says nothing.
/// assert_eq!(KeepAlive::parse(b"timeout=soon"), None);
///
/// // What `parse` accepts, `Display` writes back in canonical form.
/// assert_eq!(hint.to_string(), "timeout=5, max=100");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct KeepAlive {
    /// The server's idle timeout, in whole seconds, clamped to
    /// [`MIN_TIMEOUT`](Self::MIN_TIMEOUT)..=[`MAX_TIMEOUT`](Self::MAX_TIMEOUT).
    pub timeout: Option<Duration>,
    /// How many more requests the server accepts on this connection.
    ///
    /// Apache counts it down on every response (`max=100`, `max=99`, …) and
    /// sends `Connection: close` instead of `max=0`. A connection whose
    /// last response said `max=0` must not be reused; see
    /// [`KeepAlive::permits_reuse`].
    pub max: Option<u32>,
}

impl KeepAlive {
    /// The smallest timeout [`parse`](Self::parse) reports: one second.
    ///
    /// The header only carries whole seconds, and servers round down, so
    /// `timeout=0` (Apache or Node configured below one second) is the one
    /// value the clamp changes. It cannot be taken literally (a zero
    /// timeout would forbid every reuse for a server that does keep
    /// connections), so it is read as one second; an
    /// [`IdleEstimator`](crate::IdleEstimator) then learns the real value
    /// from the first idle close it observes, because a learned timeout
    /// below the advertised one wins.
    pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);

    /// The largest timeout [`parse`](Self::parse) reports: one hour.
    ///
    /// No server we know of keeps idle connections open longer (cloud load
    /// balancers stop at 350 s, nginx defaults to 75 s, Apache to 5 s), and
    /// a client's own idle timeout is far shorter anyway. Larger values are
    /// clamped so that a hostile or broken server cannot make a deadline
    /// overflow.
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(60 * 60);

    /// Parses the value of a `Keep-Alive` header.
    ///
    /// The value is a list of `name=value` parameters separated by commas
    /// (semicolons are accepted too). The rules:
    ///
    /// - names are case-insensitive; whitespace around names, `=` and
    ///   values is ignored;
    /// - values may be tokens or quoted strings (`timeout="5"`, with `\`
    ///   escapes);
    /// - unknown parameters, and parameters without a value, are ignored;
    /// - a value must be a non-negative decimal integer that fits: a sign,
    ///   a fraction, any other character, or an overflow makes that one
    ///   parameter invalid and it is ignored;
    /// - if a parameter appears more than once, the smallest valid value
    ///   wins (the most conservative reading, independent of order);
    /// - `timeout` is clamped to [`MIN_TIMEOUT`](Self::MIN_TIMEOUT) ..=
    ///   [`MAX_TIMEOUT`](Self::MAX_TIMEOUT).
    ///
    /// Returns `None` when neither `timeout` nor `max` is usable. Any byte
    /// sequence is accepted as input: this function never panics and never
    /// allocates.
    pub fn parse(value: &[u8]) -> Option<KeepAlive> {
        let mut timeout_secs: Option<u64> = None;
        let mut max: Option<u32> = None;
        for (name, raw) in Params::new(value) {
            let Some(raw) = raw else { continue };
            if name.eq_ignore_ascii_case(b"timeout") {
                if let Some(secs) = parse_number(raw) {
                    timeout_secs = Some(timeout_secs.map_or(secs, |t| t.min(secs)));
                }
            } else if name.eq_ignore_ascii_case(b"max")
                && let Some(n) = parse_number(raw).and_then(|n| u32::try_from(n).ok())
            {
                max = Some(max.map_or(n, |m| m.min(n)));
            }
        }
        let timeout = timeout_secs
            .map(|secs| Duration::from_secs(secs).clamp(Self::MIN_TIMEOUT, Self::MAX_TIMEOUT));
        if timeout.is_none() && max.is_none() {
            return None;
        }
        Some(KeepAlive { timeout, max })
    }

    /// Whether the connection may carry another request: `false` only when
    /// the server said `max=0`.
    pub const fn permits_reuse(&self) -> bool {
        !matches!(self.max, Some(0))
    }

    /// Combines two hints for the same connection, keeping the smaller
    /// value of each parameter (the same rule [`parse`](Self::parse) applies
    /// to a parameter repeated within one header).
    #[must_use]
    pub fn merge(self, other: KeepAlive) -> KeepAlive {
        fn min<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        }
        KeepAlive {
            timeout: min(self.timeout, other.timeout),
            max: min(self.max, other.max),
        }
    }
}

/// Writes the canonical header value, e.g. `timeout=5, max=100`.
///
/// A timeout is written in whole seconds (rounded down), so every value
/// [`KeepAlive::parse`] returns is written back exactly.
impl fmt::Display for KeepAlive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(timeout) = self.timeout {
            write!(f, "timeout={}", timeout.as_secs())?;
            sep = ", ";
        }
        if let Some(max) = self.max {
            write!(f, "{sep}max={max}")?;
        }
        Ok(())
    }
}

/// What a response head says about reusing its connection.
///
/// Returned by [`response_reuse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Reuse {
    /// Whether the connection may go back to the pool after this response.
    pub reusable: bool,
    /// The `Keep-Alive` hint the response carried, if any (also reported
    /// when `reusable` is `false`, so that a caller can still learn from
    /// it).
    pub keep_alive: Option<KeepAlive>,
}

/// Reads a response's headers and says whether, and for how long, its
/// connection may be reused.
///
/// `http10` is whether the response's version is HTTP/1.0. `headers` are
/// `(name, value)` pairs as raw bytes; names are compared
/// case-insensitively. The rules (RFC 9112 §9.3 and RFC 2068 §19.7.1):
///
/// - any `close` token in any `Connection` header (a comma-separated,
///   case-insensitive list, possibly repeated) forbids reuse;
/// - an HTTP/1.0 response is persistent only with a `keep-alive` token in
///   `Connection`; an HTTP/1.1 response is persistent by default;
/// - `Keep-Alive` headers are parsed with [`KeepAlive::parse`]; several of
///   them are merged with [`KeepAlive::merge`]; `max=0` forbids reuse.
///
/// Status-dependent rules (a `101` upgrade, a `CONNECT` tunnel) are the
/// caller's business: this function only sees headers.
///
/// ```
/// use std::time::Duration;
/// use freshpool_expiry::response_reuse;
///
/// let headers = [
///     (&b"Connection"[..], &b"Keep-Alive"[..]),
///     (&b"Keep-Alive"[..], &b"timeout=5, max=99"[..]),
/// ];
/// let reuse = response_reuse(true, headers);
/// assert!(reuse.reusable);
/// assert_eq!(reuse.keep_alive.unwrap().timeout, Some(Duration::from_secs(5)));
///
/// let reuse = response_reuse(false, [(&b"connection"[..], &b"close"[..])]);
/// assert!(!reuse.reusable);
/// ```
pub fn response_reuse<'a, I>(http10: bool, headers: I) -> Reuse
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let mut close = false;
    let mut keep_alive_token = false;
    let mut keep_alive: Option<KeepAlive> = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"connection") {
            close |= connection_has(value, b"close");
            keep_alive_token |= connection_has(value, b"keep-alive");
        } else if name.eq_ignore_ascii_case(b"keep-alive")
            && let Some(hint) = KeepAlive::parse(value)
        {
            keep_alive = Some(keep_alive.map_or(hint, |k| k.merge(hint)));
        }
    }
    let persistent = !close && (!http10 || keep_alive_token);
    let allowed = keep_alive.is_none_or(|k| k.permits_reuse());
    Reuse {
        reusable: persistent && allowed,
        keep_alive,
    }
}

/// Whether a `Connection` header value (a comma-separated list) holds
/// `token`, compared case-insensitively after trimming spaces and tabs:
/// hyper's own test (`headers::connection_has`), so that a client that
/// asks agrees with hyper about the connection. As in hyper, which reads
/// values with `HeaderValue::to_str`, a value holding any byte but visible
/// ASCII, space and tab holds no token.
///
/// ```
/// use freshpool_expiry::connection_has;
///
/// assert!(connection_has(b"Upgrade, Close", b"close"));
/// assert!(!connection_has(b"closed", b"close"));
/// assert!(!connection_has(b"close\xff", b"close"));
/// ```
pub fn connection_has(value: &[u8], token: &[u8]) -> bool {
    value.iter().all(|&b| b == b'\t' || (32..127).contains(&b))
        && value
            .split(|&b| b == b',')
            .any(|item| trim_ows(item).eq_ignore_ascii_case(token))
}

/// Parses a non-negative decimal integer, token or quoted string. `None`
/// for anything else, including an empty value and an overflow.
fn parse_number(raw: &[u8]) -> Option<u64> {
    let mut digits = 0usize;
    let mut n: u64 = 0;
    let mut push = |b: u8| -> Option<()> {
        if !b.is_ascii_digit() {
            return None;
        }
        digits += 1;
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        Some(())
    };
    match raw {
        [b'"', inner @ .., b'"'] => {
            let mut bytes = inner.iter();
            while let Some(&b) = bytes.next() {
                let b = if b == b'\\' { *bytes.next()? } else { b };
                push(b)?;
            }
        }
        _ => {
            for &b in raw {
                push(b)?;
            }
        }
    }
    (digits > 0).then_some(n)
}

/// Iterates over the `name[=value]` items of a header value, splitting on
/// `,` and `;` outside quoted strings. Names and values come out trimmed;
/// a quoted value keeps its quotes.
struct Params<'a> {
    rest: &'a [u8],
}

impl<'a> Params<'a> {
    fn new(value: &'a [u8]) -> Self {
        Params { rest: value }
    }
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        // Find the end of this item: the first separator outside quotes.
        let mut in_quotes = false;
        let mut escaped = false;
        let mut end = self.rest.len();
        for (i, &b) in self.rest.iter().enumerate() {
            if in_quotes {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_quotes = false;
                }
            } else if b == b'"' {
                in_quotes = true;
            } else if b == b',' || b == b';' {
                end = i;
                break;
            }
        }
        let item = &self.rest[..end];
        self.rest = self.rest.get(end + 1..).unwrap_or_default();
        Some(match item.iter().position(|&b| b == b'=') {
            Some(eq) => (trim_ows(&item[..eq]), Some(trim_ows(&item[eq + 1..]))),
            None => (trim_ows(item), None),
        })
    }
}

/// Trims optional whitespace (SP and HTAB) from both ends.
fn trim_ows(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
#[path = "keep_alive_tests.rs"]
mod tests;
