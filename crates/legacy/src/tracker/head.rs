//! Message heads split across reads or writes, and the header-value rules
//! both sides of the exchange share with hyper.

use super::StopReason;

/// hyper's `DEFAULT_MAX_HEADERS` (`proto/h1/role.rs`): a head with more
/// header lines fails with `TooManyHeaders`.
pub(super) const MAX_HEADERS: usize = 100;

/// hyper fails a head with `TooLarge` once it is still incomplete when its
/// read buffer holds `DEFAULT_MAX_BUFFER_SIZE = 8192 + 4096 * 100` bytes
/// (`proto/h1/io.rs`). We give up a little earlier: stopping is always safe,
/// following a head hyper rejects is not.
pub(super) const MAX_HEAD_LEN: usize = 400 * 1024;

/// hyper rejects header names of 64 KiB or more (`record_header_indices`).
pub(super) const MAX_HEADER_NAME_LEN: usize = 1 << 16;

/// Result of feeding bytes to a [`HeadBuffer`].
#[derive(Debug)]
pub(super) enum Fed<T> {
    /// The head is complete; it ended `consumed` bytes into the input just
    /// fed. The rest of that input belongs to whatever follows the head.
    Complete { consumed: usize, head: T },
    /// All the input belongs to a head that is not complete yet.
    Partial,
}

/// Collects a head that arrives in pieces.
///
/// A head that arrives whole (the common case) is parsed in place and never
/// copied. Pieces are appended to a buffer that is reused for every head of
/// the connection, and parsed again only once an empty line arrived, so a
/// split head costs O(its length) plus one parse, however it is split.
#[derive(Debug, Default)]
pub(super) struct HeadBuffer {
    buf: Vec<u8>,
    /// Parses of the buffered head so far.
    parses: u32,
}

/// Parses allowed for one buffered head; see [`HeadBuffer::feed`].
const MAX_PARSES: u32 = 16;

impl HeadBuffer {
    /// Whether no partial head is buffered: the next input starts a head.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops any partial head.
    pub(super) fn clear(&mut self) {
        self.buf.clear();
        self.parses = 0;
    }

    /// Feeds `input` to the head parser `parse`, which returns the head's
    /// length once `bytes` starts with a complete head.
    pub(super) fn feed<T>(
        &mut self,
        input: &[u8],
        mut parse: impl FnMut(&[u8]) -> Result<Option<(usize, T)>, StopReason>,
    ) -> Result<Fed<T>, StopReason> {
        if self.buf.is_empty() {
            return match parse(input)? {
                Some((consumed, head)) => Ok(Fed::Complete { consumed, head }),
                None => self.keep(input),
            };
        }
        // Append line by line, so that bytes after the head (often a body)
        // are never copied, and parse only where a head can end: at an empty
        // line, `\n\n` or `\n\r\n`.
        let before = self.buf.len();
        let mut taken = 0;
        while let Some(at) = input[taken..].iter().position(|&b| b == b'\n') {
            let line_end = taken + at + 1;
            self.buf.extend_from_slice(&input[taken..line_end]);
            taken = line_end;
            if !(self.buf.ends_with(b"\n\n") || self.buf.ends_with(b"\n\r\n")) {
                continue;
            }
            // Only empty lines before the status line (which hyper skips)
            // make a head end later than its first empty line; a server
            // sending many is not worth following.
            self.parses += 1;
            if self.parses > MAX_PARSES {
                self.clear();
                return Err(StopReason::TooLarge);
            }
            if let Some((len, head)) = parse(&self.buf)? {
                // The buffered prefix was incomplete on its own, so the head
                // ends inside `input`.
                let consumed = len
                    .checked_sub(before)
                    .ok_or(StopReason::Invalid(Invalid::Head))?;
                self.clear();
                return Ok(Fed::Complete { consumed, head });
            }
        }
        self.keep(&input[taken..])
    }

    fn keep<T>(&mut self, input: &[u8]) -> Result<Fed<T>, StopReason> {
        self.buf.extend_from_slice(input);
        self.partial()
    }

    fn partial<T>(&mut self) -> Result<Fed<T>, StopReason> {
        if self.buf.len() >= MAX_HEAD_LEN {
            self.clear();
            return Err(StopReason::TooLarge);
        }
        Ok(Fed::Partial)
    }
}

/// What hyper rejected, so the tracker stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// `httparse` rejected a head (bad syntax, obsolete line folding, more
    /// than 100 headers, ...).
    Head,
    /// A status code below 100 (`http::StatusCode::from_u16` refuses it).
    Status,
    /// `Content-Length` values that are not digits, overflow, or differ.
    ContentLength,
    /// `Transfer-Encoding` on an HTTP/1.0 response.
    TransferEncodingHttp10,
    /// A malformed chunked body (size line, extension, CRLF or trailers).
    Chunked,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Invalid::Head => "malformed message head",
            Invalid::Status => "status code below 100",
            Invalid::ContentLength => "invalid or conflicting Content-Length",
            Invalid::TransferEncodingHttp10 => "Transfer-Encoding in an HTTP/1.0 response",
            Invalid::Chunked => "malformed chunked body",
        })
    }
}

/// hyper reads header values through `HeaderValue::to_str`, which fails on
/// anything but visible ASCII and tab; such values never match a token.
fn as_visible_ascii(value: &[u8]) -> Option<&str> {
    if value.iter().all(|&b| b == b'\t' || (32..127).contains(&b)) {
        std::str::from_utf8(value).ok()
    } else {
        None
    }
}

/// Mirrors hyper's `headers::is_chunked_`: the last coding of the value is
/// `chunked`. hyper only looks at the last `Transfer-Encoding` line.
pub(super) fn is_chunked(value: &[u8]) -> bool {
    as_visible_ascii(value).is_some_and(|s| {
        s.rsplit(',')
            .next()
            .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
    })
}

/// Mirrors hyper's `headers::content_length_parse_all`: every value of every
/// `Content-Length` line is decimal digits and they all agree.
#[derive(Debug, Default)]
pub(super) struct ContentLength {
    seen: bool,
    invalid: bool,
    value: Option<u64>,
}

impl ContentLength {
    pub(super) fn add(&mut self, value: &[u8]) {
        self.seen = true;
        if self.invalid {
            return;
        }
        // The usual single number needs no splitting: the general rule
        // below would find the same.
        if let Some(n) = from_digits(value) {
            self.agree(n);
            return;
        }
        let Some(line) = as_visible_ascii(value) else {
            self.invalid = true;
            return;
        };
        for item in line.split(',') {
            if !self.item(item.trim().as_bytes()) {
                return;
            }
        }
    }

    /// One value of the list; `false` once the header is invalid.
    fn item(&mut self, item: &[u8]) -> bool {
        match from_digits(item) {
            Some(n) => self.agree(n),
            None => self.invalid = true,
        }
        !self.invalid
    }

    /// All values must be the same number.
    fn agree(&mut self, n: u64) {
        match self.value {
            None => self.value = Some(n),
            Some(prev) if n == prev => {}
            Some(_) => self.invalid = true,
        }
    }

    /// `Ok(None)`: no `Content-Length` header at all.
    pub(super) fn get(&self) -> Result<Option<u64>, StopReason> {
        match (self.seen, self.invalid, self.value) {
            (false, ..) => Ok(None),
            (true, false, Some(n)) => Ok(Some(n)),
            _ => Err(StopReason::Invalid(Invalid::ContentLength)),
        }
    }
}

fn from_digits(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() {
        return None;
    }
    bytes.iter().try_fold(0u64, |acc, &b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}
