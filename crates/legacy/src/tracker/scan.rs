//! The fast path for ordinary message heads.
//!
//! `httparse` parses every header of a head into a table of names and
//! values; the tracker only needs where the head ends, the start line, and
//! four framing headers. [`response`] and [`request`] scan a head once,
//! keeping only those.
//!
//! They accept a strict subset of what `httparse` accepts with hyper's
//! default settings (which the tracker mirrors): `HTTP/1.0` or `HTTP/1.1`,
//! CRLF line ends, token header names, values and reason phrases of
//! visible ASCII, spaces and tabs, at most [`MAX_HEADERS`] header lines,
//! at most [`MAX_FIELDS`] framing headers. Within that subset they find
//! exactly what `httparse` finds: the same head length, version, status or
//! method, and the same header values, leading and trailing whitespace
//! trimmed. For anything else (a head that is not complete yet, an empty
//! line before the start line, a bare LF, obsolete line folding, a byte
//! outside the subset) they return `None`, and the caller parses the head
//! with `httparse`. So whatever hyper rejects is still rejected by the
//! parser hyper itself uses; the fast path never decides a head is bad.

use super::head::{MAX_HEADER_NAME_LEN, MAX_HEADERS};
use super::request::Method;

/// Framing headers kept per head; a head with more goes to `httparse`.
pub(super) const MAX_FIELDS: usize = 8;

/// The headers that decide framing and reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    ContentLength,
    TransferEncoding,
    Connection,
    KeepAlive,
}

impl Field {
    /// The field a header name stands for, compared case-insensitively.
    /// `name` is a token (httparse and the fast path only give those).
    pub(super) fn of(name: &[u8]) -> Option<Field> {
        // By length first: most names are none of the four.
        let field = match name.len() {
            10 if name[0] | 0x20 == b'c' => Field::Connection,
            10 => Field::KeepAlive,
            14 => Field::ContentLength,
            17 => Field::TransferEncoding,
            _ => return None,
        };
        // Of the token bytes, `b | 0x20` gives a lower-case letter only for
        // that letter in either case, and `-` only for `-`. Three
        // overlapping words cover each of the four names (10 to 17 bytes).
        let lower = field.name();
        let last = name.len() - 8;
        [0, last / 2, last]
            .into_iter()
            .all(|at| word(name, at).map(|w| w | (ONES * 0x20)) == word(lower, at))
            .then_some(field)
    }

    fn name(self) -> &'static [u8] {
        match self {
            Field::ContentLength => b"content-length",
            Field::TransferEncoding => b"transfer-encoding",
            Field::Connection => b"connection",
            Field::KeepAlive => b"keep-alive",
        }
    }
}

/// The framing headers of one head, in the order they came.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields<'a> {
    items: [(Field, &'a [u8]); MAX_FIELDS],
    len: usize,
}

impl<'a> Fields<'a> {
    pub(super) fn new() -> Self {
        Fields {
            items: [(Field::Connection, &[]); MAX_FIELDS],
            len: 0,
        }
    }

    /// `None` when full.
    fn push(&mut self, field: Field, value: &'a [u8]) -> Option<()> {
        *self.items.get_mut(self.len)? = (field, value);
        self.len += 1;
        Some(())
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (Field, &'a [u8])> + Clone + '_ {
        self.items[..self.len].iter().copied()
    }
}

/// The start line of a response head the fast path read.
#[derive(Debug)]
pub(super) struct ResponseHead {
    /// The head's length, up to and including its empty line.
    pub(super) len: usize,
    pub(super) status: u16,
    pub(super) http10: bool,
}

/// The start line of a request head the fast path read.
#[derive(Debug)]
pub(super) struct RequestHead {
    /// The head's length, up to and including its empty line.
    pub(super) len: usize,
    pub(super) method: Method,
    pub(super) http10: bool,
}

/// Reads an ordinary, complete response head at the start of `bytes`,
/// with its framing headers in `fields` (empty to begin with); `None`
/// means "ask `httparse`".
pub(super) fn response<'a>(bytes: &'a [u8], fields: &mut Fields<'a>) -> Option<ResponseHead> {
    // `HTTP/1.x 200`: httparse wants exactly one space, three digits.
    let line = bytes.get(..12)?;
    let http10 = version(line, 0)?;
    let &[b' ', hundreds, tens, ones] = &line[8..12] else {
        return None;
    };
    let mut status = 0;
    for digit in [hundreds, tens, ones] {
        if !digit.is_ascii_digit() {
            return None;
        }
        status = status * 10 + u16::from(digit - b'0');
    }
    // Then CRLF, or a space and a reason phrase up to CRLF.
    let cr = match *bytes.get(12)? {
        b'\r' => 12,
        b' ' => text_end(bytes, 13)?,
        _ => return None,
    };
    let len = headers(bytes, line_end(bytes, cr)?, fields)?;
    Some(ResponseHead {
        len,
        status,
        http10,
    })
}

/// Reads an ordinary, complete request head at the start of `bytes`, with
/// its framing headers in `fields` (empty to begin with); `None` means
/// "ask `httparse`".
pub(super) fn request<'a>(bytes: &'a [u8], fields: &mut Fields<'a>) -> Option<RequestHead> {
    // A token method, one space, a URI of visible ASCII, one space.
    let method_len = token_len(bytes);
    if method_len == 0 || *bytes.get(method_len)? != b' ' {
        return None;
    }
    let method = match &bytes[..method_len] {
        b"HEAD" => Method::Head,
        b"CONNECT" => Method::Connect,
        _ => Method::Other,
    };
    let uri_start = method_len + 1;
    let uri_end = visible_end(bytes, uri_start)?;
    if uri_end == uri_start || bytes[uri_end] != b' ' {
        return None;
    }
    let version_start = uri_end + 1;
    let http10 = version(bytes, version_start)?;
    let len = headers(bytes, line_end(bytes, version_start + 8)?, fields)?;
    Some(RequestHead {
        len,
        method,
        http10,
    })
}

/// `Some(true)` for `HTTP/1.0`, `Some(false)` for `HTTP/1.1`, from the
/// eight bytes at `at`.
fn version(bytes: &[u8], at: usize) -> Option<bool> {
    const HTTP_10: u64 = u64::from_le_bytes(*b"HTTP/1.0");
    const HTTP_11: u64 = u64::from_le_bytes(*b"HTTP/1.1");
    match word(bytes, at)? {
        HTTP_11 => Some(false),
        HTTP_10 => Some(true),
        _ => None,
    }
}

/// The start of the next line, if a CRLF is at `cr`.
fn line_end(bytes: &[u8], cr: usize) -> Option<usize> {
    (bytes.get(cr..cr + 2)? == b"\r\n").then_some(cr + 2)
}

/// Reads header lines from `at` through the empty line that ends the
/// head, keeping the framing headers; returns the head's length.
fn headers<'a>(bytes: &'a [u8], mut at: usize, fields: &mut Fields<'a>) -> Option<usize> {
    for _ in 0..=MAX_HEADERS {
        // A token name and a colon (httparse allows no space before it), or
        // the empty line.
        let name_len = token_len(bytes.get(at..)?);
        let colon = at + name_len;
        match *bytes.get(colon)? {
            b':' if name_len > 0 && name_len < MAX_HEADER_NAME_LEN => {}
            b'\r' if name_len == 0 => return line_end(bytes, colon),
            _ => return None,
        }
        // httparse skips spaces and tabs after the colon and trims them at
        // the end of the value; they are text, so one scan checks them and
        // the value alike.
        let cr = text_end(bytes, colon + 1)?;
        let next = line_end(bytes, cr)?;
        if let Some(field) = Field::of(&bytes[at..colon]) {
            fields.push(field, trim(&bytes[colon + 1..cr]))?;
        }
        at = next;
    }
    // More header lines than hyper allows: httparse says so.
    None
}

/// `value` without leading and trailing spaces and tabs, as httparse
/// reads it.
fn trim(mut value: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = value {
        value = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = value {
        value = rest;
    }
    value
}

/// The first byte from `at` on that is not a tab or in `0x20..=0x7e`
/// (visible ASCII and space); `None` if the input ends first.
///
/// Eight bytes at a time: the scan of every value and reason phrase.
#[inline]
fn text_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    loop {
        while let Some(x) = word(bytes, at) {
            let odd = below(x, 0x20) | from_del(x);
            if odd != 0 {
                at += first(odd);
                break;
            }
            at += 8;
        }
        match *bytes.get(at)? {
            b'\t' | 0x20..=0x7e => at += 1,
            _ => return Some(at),
        }
    }
}

/// The first byte from `at` on that is not visible ASCII (`0x21..=0x7e`);
/// `None` if the input ends first. A request target is such a run.
fn visible_end(bytes: &[u8], mut at: usize) -> Option<usize> {
    while let Some(x) = word(bytes, at) {
        let odd = below(x, 0x21) | from_del(x);
        if odd != 0 {
            return Some(at + first(odd));
        }
        at += 8;
    }
    let len = bytes[at..].iter().position(|b| !(0x21..0x7f).contains(b))?;
    Some(at + len)
}

/// The length of the run of token bytes (httparse's `TOKEN_MAP`: the
/// bytes of methods and header names) at the start of `bytes`.
#[inline(always)]
fn token_len(bytes: &[u8]) -> usize {
    let mut len = 0;
    while let Some(x) = word(bytes, len) {
        // Letters and `-`, the bytes of nearly every name, eight at a
        // time; any other byte is looked up.
        let odd = !(letters(x) | equal(x, b'-')) & HIGH;
        if odd == 0 {
            len += 8;
            continue;
        }
        len += first(odd);
        if !is_token(bytes[len]) {
            return len;
        }
        len += 1;
    }
    len + bytes[len..].iter().take_while(|&&b| is_token(b)).count()
}

fn is_token(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

// Eight bytes in a `u64` (little-endian: the first byte is the lowest).
// Each test below sets the high bit of every byte it holds for, exactly
// for every byte up to the first one it holds for; above that, a carry or
// borrow may spill over. So only the first flagged byte is ever used.

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGH: u64 = u64::from_le_bytes([0x80; 8]);

/// The eight bytes at `at`, if there are eight.
fn word(bytes: &[u8], at: usize) -> Option<u64> {
    let block = bytes.get(at..at + 8)?;
    Some(u64::from_le_bytes(block.try_into().ok()?))
}

/// The index of the first flagged byte; `flags` is not zero.
fn first(flags: u64) -> usize {
    (flags.trailing_zeros() / 8) as usize
}

/// Bytes below `n` (a borrow out of the byte).
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH
}

/// Bytes from 0x7f (DEL) up: 0x7f carries into the high bit, the rest have
/// it already.
fn from_del(x: u64) -> u64 {
    (x | x.wrapping_add(ONES)) & HIGH
}

/// ASCII bytes in `lo..=hi`. A byte from 0x80 up is never flagged (though
/// its carry may flag the next one), and is itself `odd` to every caller.
fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let at_least = |n: u8| x.wrapping_add(ONES * u64::from(0x80 - n));
    at_least(lo) & !at_least(hi + 1) & !x & HIGH
}

/// ASCII letters: lower-casing (`| 0x20`) maps exactly the letters into
/// `a..=z`, and keeps every other ASCII byte out of it.
fn letters(x: u64) -> u64 {
    in_range(x | (ONES * 0x20), b'a', b'z') & !x
}

/// Bytes equal to `b`, an ASCII byte.
fn equal(x: u64, b: u8) -> u64 {
    let y = x ^ (ONES * u64::from(b));
    // No carry leaves a byte: each is at most 0x7f + 0x7f.
    !(((y & !HIGH) + !HIGH) | y) & HIGH
}

/// httparse's `TOKEN_MAP`.
static TOKEN: [bool; 256] = {
    const PUNCTUATION: &[u8] = b"!#$%&'*+-.^_`|~";
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = (i as u8).is_ascii_alphanumeric();
        i += 1;
    }
    let mut i = 0;
    while i < PUNCTUATION.len() {
        table[PUNCTUATION[i] as usize] = true;
        i += 1;
    }
    table
};

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
