//! Just enough HTTP/1.1 over a raw socket for `discover`: one GET, its
//! response read exactly to its end, nothing more.
//!
//! `discover` needs to know the instant a response ended and to watch the
//! idle socket afterwards, so it speaks the wire itself instead of going
//! through a pooled client.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The largest response body read (a discovery GET should be small).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What the response head said about keeping the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    /// The status code.
    pub(crate) status: u16,
    /// The `Keep-Alive` header, verbatim.
    pub(crate) keep_alive: Option<String>,
    /// Whether the server said `Connection: close` (or spoke HTTP/1.0
    /// without keep-alive).
    pub(crate) closes: bool,
}

/// How the response body is framed.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Sends `GET path` and reads the response to its last byte.
///
/// # Errors
///
/// An IO error, or `InvalidData` for a response that is not HTTP/1.x or
/// too large.
pub(crate) async fn get(stream: &mut TcpStream, authority: &str, path: &str) -> io::Result<Head> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nhost: {authority}\r\nuser-agent: poolbench-discover\r\naccept: */*\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(4096);
    let (head, framing, consumed) = loop {
        if read_more(stream, &mut buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection before a complete response head",
            ));
        }
        if let Some(parsed) = parse_head(&buf)? {
            break parsed;
        }
        if buf.len() > MAX_HEAD {
            return Err(invalid("response head larger than 64 KiB"));
        }
    };
    buf.drain(..consumed);
    match framing {
        Framing::Length(len) => {
            while buf.len() < len {
                if read_more(stream, &mut buf).await? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection in the middle of the body",
                    ));
                }
            }
        }
        Framing::Chunked => {
            while !chunked_complete(&buf)? {
                if read_more(stream, &mut buf).await? == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection in the middle of a chunked body",
                    ));
                }
            }
        }
        Framing::UntilClose => while read_more(stream, &mut buf).await? != 0 {},
    }
    let closes = head.closes || matches!(framing, Framing::UntilClose);
    Ok(Head { closes, ..head })
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    if buf.len() > MAX_HEAD + MAX_BODY {
        return Err(invalid("response larger than 16 MiB"));
    }
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Parses a complete response head: `None` while more bytes are needed.
fn parse_head(buf: &[u8]) -> io::Result<Option<(Head, Framing, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut response = httparse::Response::new(&mut headers);
    let consumed = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(&format!("malformed response head: {e}"))),
    };
    let status = response.code.unwrap_or_default();
    let http10 = response.version == Some(0);
    let mut keep_alive = None;
    let mut connection = String::new();
    let mut length = None;
    let mut chunked = false;
    for header in response.headers.iter() {
        let value = String::from_utf8_lossy(header.value).trim().to_owned();
        if header.name.eq_ignore_ascii_case("keep-alive") {
            keep_alive = Some(value);
        } else if header.name.eq_ignore_ascii_case("connection") {
            connection = value.to_ascii_lowercase();
        } else if header.name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<usize>()
                    .map_err(|_| invalid("invalid Content-Length"))?,
            );
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().ends_with("chunked");
        }
    }
    let no_body = matches!(status, 100..=199 | 204 | 304);
    let framing = match (no_body, chunked, length) {
        (true, _, _) => Framing::Length(0),
        (false, true, _) => Framing::Chunked,
        (false, false, Some(len)) if len <= MAX_BODY => Framing::Length(len),
        (false, false, Some(_)) => return Err(invalid("response body larger than 16 MiB")),
        (false, false, None) => Framing::UntilClose,
    };
    let closes = connection.contains("close") || (http10 && !connection.contains("keep-alive"));
    let head = Head {
        status,
        keep_alive,
        closes,
    };
    Ok(Some((head, framing, consumed)))
}

/// Whether `buf` holds a whole chunked body (with its trailer section).
fn chunked_complete(buf: &[u8]) -> io::Result<bool> {
    let mut at = 0;
    loop {
        let Some(line_end) = find_crlf(&buf[at..]) else {
            return Ok(false);
        };
        let line = std::str::from_utf8(&buf[at..at + line_end])
            .map_err(|_| invalid("invalid chunk size line"))?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).map_err(|_| invalid("invalid chunk size"))?;
        at += line_end + 2;
        if size == 0 {
            // Trailer lines, then an empty line.
            loop {
                let Some(end) = find_crlf(&buf[at..]) else {
                    return Ok(false);
                };
                at += end + 2;
                if end == 0 {
                    return Ok(true);
                }
            }
        }
        if size > MAX_BODY {
            return Err(invalid("chunk larger than 16 MiB"));
        }
        if buf.len() < at + size + 2 {
            return Ok(false);
        }
        at += size + 2;
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// The `timeout=N` of a `Keep-Alive` header, in whole seconds, taken
/// literally (`timeout=0` is 0).
pub(crate) fn advertised_timeout(keep_alive: &str) -> Option<u64> {
    keep_alive.split(',').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("timeout")
            .then(|| value.trim().trim_matches('"').parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_say_how_the_body_is_framed_and_whether_it_closes() {
        let raw =
            b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\ncontent-length: 3\r\n\r\nabc";
        let (head, framing, consumed) = parse_head(raw).expect("valid").expect("complete");
        assert_eq!(head.status, 200);
        assert_eq!(head.keep_alive.as_deref(), Some("timeout=5, max=100"));
        assert!(!head.closes);
        assert!(matches!(framing, Framing::Length(3)));
        assert_eq!(&raw[consumed..], b"abc");

        let raw = b"HTTP/1.0 200 OK\r\n\r\n";
        let (head, framing, _) = parse_head(raw).expect("valid").expect("complete");
        assert!(head.closes);
        assert!(matches!(framing, Framing::UntilClose));

        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-le")
                .expect("valid")
                .is_none()
        );
        assert!(parse_head(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies_end_at_the_last_chunk_and_trailers() {
        assert!(chunked_complete(b"3\r\nabc\r\n0\r\n\r\n").expect("valid"));
        assert!(chunked_complete(b"3;ext=1\r\nabc\r\n0\r\nx-t: 1\r\n\r\n").expect("valid"));
        assert!(!chunked_complete(b"3\r\nabc\r\n0\r\n").expect("valid"));
        assert!(!chunked_complete(b"3\r\nab").expect("valid"));
        assert!(chunked_complete(b"zz\r\n").is_err());
    }

    #[test]
    fn advertised_timeouts_are_taken_literally() {
        assert_eq!(advertised_timeout("timeout=5, max=100"), Some(5));
        assert_eq!(advertised_timeout("max=3, Timeout = \"0\""), Some(0));
        assert_eq!(advertised_timeout("max=3"), None);
        assert_eq!(advertised_timeout("timeout=soon"), None);
    }
}
