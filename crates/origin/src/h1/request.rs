//! Parsing an HTTP/1.1 request head and decoding a chunked request body.

use std::fmt;

use bytes::{Buf, BytesMut};

use crate::knobs::Knobs;

/// The largest request head accepted; a larger one gets `431`.
const MAX_HEAD: usize = 64 * 1024;
/// The most headers a request may have.
const MAX_HEADERS: usize = 100;
/// The longest chunk-size line or trailer section accepted.
const MAX_CHUNK_LINE: usize = 4 * 1024;
const MAX_TRAILERS: usize = 16 * 1024;

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyLength {
    /// `Content-Length` bytes (0: no body).
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// What the server needs to know about a request, copied out of the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// The method is `HEAD`: the response has no body.
    pub(crate) is_head: bool,
    /// The client asked to close after this response.
    pub(crate) wants_close: bool,
    /// `Expect: 100-continue`.
    pub(crate) expect_continue: bool,
    /// The `x-request-id` header, if present and not empty.
    pub(crate) request_id: Option<String>,
    /// How the body is delimited.
    pub(crate) body: BodyLength,
    /// Builder defaults overridden by this request's `x-*` headers.
    pub(crate) knobs: Knobs,
}

/// A request the server refuses, with the status to answer it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) status: u16,
    pub(crate) message: String,
}

impl Rejection {
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Rejection {
            status: 400,
            message: message.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.status, self.message)
    }
}

/// Parses a request head at the start of `buf`.
///
/// Returns `Ok(None)` when more bytes are needed, or the head's length and
/// its contents.
pub(crate) fn parse_head(buf: &[u8], defaults: &Knobs) -> Result<Option<(usize, Head)>, Rejection> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(Rejection {
                status: 431,
                message: format!("request head larger than {MAX_HEAD} bytes"),
            });
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Rejection {
                status: 431,
                message: format!("more than {MAX_HEADERS} request headers"),
            });
        }
        Err(err) => {
            return Err(Rejection::bad_request(format!(
                "malformed request head: {err}"
            )));
        }
    };
    let http10 = req.version == Some(0);
    let mut head = Head {
        is_head: req.method == Some("HEAD"),
        wants_close: http10,
        expect_continue: false,
        request_id: None,
        body: BodyLength::Length(0),
        knobs: defaults.clone(),
    };
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    for header in req.headers.iter() {
        let name = header.name;
        let value = header.value;
        if name.eq_ignore_ascii_case("content-length") {
            for part in value.split(|&b| b == b',') {
                let n = parse_decimal(trim(part)).ok_or_else(|| {
                    Rejection::bad_request(format!(
                        "invalid content-length {:?}",
                        String::from_utf8_lossy(value)
                    ))
                })?;
                if content_length.is_some_and(|seen| seen != n) {
                    return Err(Rejection::bad_request("conflicting content-length headers"));
                }
                content_length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            let last = value
                .split(|&b| b == b',')
                .map(trim)
                .next_back()
                .unwrap_or(b"");
            if !last.eq_ignore_ascii_case(b"chunked") {
                return Err(Rejection {
                    status: 501,
                    message: format!(
                        "unsupported transfer-encoding {:?} (only chunked is understood)",
                        String::from_utf8_lossy(value)
                    ),
                });
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    head.wants_close = true;
                } else if http10 && token.eq_ignore_ascii_case(b"keep-alive") {
                    head.wants_close = false;
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            head.expect_continue = trim(value).eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("x-request-id") {
            let id = std::str::from_utf8(value)
                .map_err(|_| Rejection::bad_request("x-request-id is not valid UTF-8"))?;
            head.request_id = Some(id.trim().to_owned()).filter(|id| !id.is_empty());
        } else {
            head.knobs
                .apply(name, value)
                .map_err(|err| Rejection::bad_request(err.to_string()))?;
        }
    }
    head.body = match (chunked, content_length) {
        (true, Some(_)) => {
            return Err(Rejection::bad_request(
                "both content-length and transfer-encoding (request smuggling?)",
            ));
        }
        (true, None) => BodyLength::Chunked,
        (false, n) => BodyLength::Length(n.unwrap_or(0)),
    };
    Ok(Some((len, head)))
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

/// Incremental decoder of a chunked request body. The data is discarded;
/// only its size is checked.
#[derive(Debug)]
pub(crate) struct ChunkedDecoder {
    state: ChunkState,
    body: u64,
    trailers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    Size,
    Data(u64),
    DataEnd,
    Trailer,
    Done,
}

impl ChunkedDecoder {
    pub(crate) fn new() -> Self {
        ChunkedDecoder {
            state: ChunkState::Size,
            body: 0,
            trailers: 0,
        }
    }

    /// Consumes as much of `buf` as belongs to the body. Returns `true`
    /// once the last chunk and the trailers were read; bytes after them
    /// (a pipelined request) stay in `buf`.
    pub(crate) fn decode(&mut self, buf: &mut BytesMut, max_body: u64) -> Result<bool, Rejection> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(line) = take_line(buf, MAX_CHUNK_LINE, "chunk size line")? else {
                        return Ok(false);
                    };
                    let size = line[..]
                        .split(|&b| b == b';')
                        .next()
                        .map(trim)
                        .unwrap_or(b"");
                    let size = parse_hex(size).ok_or_else(|| {
                        Rejection::bad_request(format!(
                            "invalid chunk size {:?}",
                            String::from_utf8_lossy(size)
                        ))
                    })?;
                    self.body = self.body.saturating_add(size);
                    if self.body > max_body {
                        return Err(too_large(max_body));
                    }
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    let take = left.min(buf.len() as u64);
                    buf.advance(take as usize);
                    if take < left {
                        self.state = ChunkState::Data(left - take);
                        return Ok(false);
                    }
                    self.state = ChunkState::DataEnd;
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(false);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Rejection::bad_request("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(line) = take_line(buf, MAX_TRAILERS, "trailer line")? else {
                        return Ok(false);
                    };
                    if line.is_empty() {
                        self.state = ChunkState::Done;
                    } else {
                        self.trailers += line.len();
                        if self.trailers > MAX_TRAILERS {
                            return Err(Rejection::bad_request("trailers too large"));
                        }
                    }
                }
                ChunkState::Done => return Ok(true),
            }
        }
    }
}

/// The error for a body larger than allowed.
pub(crate) fn too_large(max_body: u64) -> Rejection {
    Rejection {
        status: 413,
        message: format!("request body larger than {max_body} bytes"),
    }
}

/// Takes one CRLF-terminated line off `buf` (without the CRLF).
fn take_line(buf: &mut BytesMut, max: usize, what: &str) -> Result<Option<BytesMut>, Rejection> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) => {
            let line = buf.split_to(end);
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > max => Err(Rejection::bad_request(format!("{what} too long"))),
        None => Ok(None),
    }
}

fn parse_hex(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        let v = (d as char).to_digit(16)?;
        Some(n * 16 + u64::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Option<(usize, Head)>, Rejection> {
        parse_head(raw.as_bytes(), &Knobs::default())
    }

    fn head(raw: &str) -> Head {
        let (len, head) = parse(raw).expect("valid").expect("complete");
        assert_eq!(len, raw.len());
        head
    }

    #[test]
    fn parses_framing_close_and_ids() {
        let h = head("POST / HTTP/1.1\r\nContent-Length: 5\r\nX-Request-Id: r-1\r\n\r\n");
        assert_eq!(h.body, BodyLength::Length(5));
        assert_eq!(h.request_id.as_deref(), Some("r-1"));
        assert!(!h.wants_close && !h.is_head);

        let h = head(
            "POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\nconnection: keep-alive, Close\r\n\r\n",
        );
        assert_eq!(h.body, BodyLength::Chunked);
        assert!(h.wants_close);

        let h = head("HEAD / HTTP/1.0\r\nexpect: 100-continue\r\nx-request-id:  \r\n\r\n");
        assert!(h.is_head && h.wants_close && h.expect_continue);
        assert_eq!(h.request_id, None);
        assert!(!head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").wants_close);
        assert_eq!(
            head("GET / HTTP/1.1\r\nx-body-size: 9\r\n\r\n")
                .knobs
                .body_size,
            9
        );
        assert_eq!(
            head("GET / HTTP/1.1\r\ncontent-length: 4, 4\r\n\r\n").body,
            BodyLength::Length(4)
        );
    }

    #[test]
    fn partial_heads_need_more() {
        assert_eq!(parse("GET / HTTP/1.1\r\nhost: a\r\n"), Ok(None));
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn rejects_bad_requests_with_a_reason() {
        for (raw, status, needle) in [
            (
                "GET / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n",
                400,
                "both",
            ),
            (
                "GET / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                400,
                "conflicting",
            ),
            (
                "GET / HTTP/1.1\r\ncontent-length: -1\r\n\r\n",
                400,
                "content-length",
            ),
            (
                "GET / HTTP/1.1\r\ncontent-length: 99999999999999999999\r\n\r\n",
                400,
                "content-length",
            ),
            (
                "GET / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
                501,
                "gzip",
            ),
            (
                "GET / HTTP/1.1\r\nx-delay-ms: soon\r\n\r\n",
                400,
                "x-delay-ms",
            ),
            ("\x00\x01garbage\r\n\r\n", 400, "malformed"),
            ("GET / HTTP/2.0\r\n\r\n", 400, "malformed"),
        ] {
            let err = parse_head(raw.as_bytes(), &Knobs::default())
                .map(|_| ())
                .expect_err(raw);
            assert_eq!(err.status, status, "{raw:?}: {err}");
            assert!(err.message.contains(needle), "{raw:?}: {err}");
        }
        let bad_id = parse_head(
            b"GET / HTTP/1.1\r\nx-request-id: \xff\r\n\r\n",
            &Knobs::default(),
        );
        assert!(
            bad_id
                .map(|_| ())
                .expect_err("bad id")
                .message
                .contains("x-request-id")
        );
        let many = format!(
            "GET / HTTP/1.1\r\n{}\r\n",
            "a: b\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(parse(&many).map(|_| ()).expect_err("too many").status, 431);
        let huge = format!("GET / HTTP/1.1\r\na: {}", "b".repeat(MAX_HEAD));
        assert_eq!(parse(&huge).map(|_| ()).expect_err("too big").status, 431);
    }

    fn decode_all(input: &[u8], max: u64) -> Result<(bool, Vec<u8>), Rejection> {
        let mut decoder = ChunkedDecoder::new();
        let mut buf = BytesMut::new();
        let mut done = false;
        // Feed one byte at a time: every state must resume correctly.
        for &b in input {
            buf.extend_from_slice(&[b]);
            if !done {
                done = decoder.decode(&mut buf, max)?;
            }
        }
        Ok((done, buf.to_vec()))
    }

    #[test]
    fn chunked_bodies_decode_byte_by_byte() {
        let body = b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-trailer: 1\r\n\r\nNEXT";
        assert_eq!(decode_all(body, 1024), Ok((true, b"NEXT".to_vec())));
        assert_eq!(decode_all(b"0\r\n\r\n", 0), Ok((true, Vec::new())));
        assert!(!decode_all(b"5\r\nhel", 1024).expect("valid so far").0);
    }

    #[test]
    fn chunked_errors() {
        assert_eq!(
            decode_all(b"5\r\nhello\r\n", 4)
                .map(|_| ())
                .expect_err("big")
                .status,
            413
        );
        for bad in [&b"zz\r\n"[..], b"5\r\nhelloXX", b"1234567890abcdef0\r\n"] {
            assert_eq!(
                decode_all(bad, u64::MAX)
                    .map(|_| ())
                    .expect_err("bad")
                    .status,
                400
            );
        }
        let long = vec![b'1'; MAX_CHUNK_LINE + 2];
        assert_eq!(
            decode_all(&long, u64::MAX)
                .map(|_| ())
                .expect_err("long")
                .status,
            400
        );
    }
}
