//! Writing HTTP/1.1 responses byte by byte as the knobs ask.

use std::io::{self, Write as _};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::body::{PATTERN_BLOCK, pattern_slice};
use crate::knobs::{CloseKind, Knobs};

/// Buffered bytes are written once they pass this size.
const FLUSH_AT: usize = 64 * 1024;

/// One response to write.
#[derive(Debug)]
pub(crate) struct Response<'a> {
    pub(crate) knobs: &'a Knobs,
    pub(crate) is_head: bool,
    pub(crate) close: bool,
    pub(crate) keep_alive: Option<String>,
    pub(crate) request_id: Option<&'a str>,
    pub(crate) connection_id: u64,
    pub(crate) served: u32,
}

/// How far a response got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// Every byte was written.
    Complete,
    /// `x-close-mid-body`: the response stopped halfway; close this way.
    Cut(CloseKind),
}

/// The reason phrase for a status code.
pub(crate) fn reason(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
}

/// Writes `response` to `stream`, using `out` as the write buffer.
///
/// Small responses go out in one `write`. Streamed pieces, pauses and cuts
/// flush what came before them first, so the client sees exactly the bytes
/// before the pause or cut.
///
/// # Cancel safety
///
/// Not cancel safe: a cancelled write leaves a partial response.
pub(crate) async fn write_response(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    response: &Response<'_>,
) -> io::Result<Written> {
    let knobs = response.knobs;
    let has_body = knobs.status_allows_body();
    let total = if has_body { knobs.body_size as u64 } else { 0 };
    out.clear();
    write!(
        out,
        "HTTP/1.1 {} {}\r\n",
        knobs.status,
        reason(knobs.status)
    )?;
    if has_body {
        if knobs.chunked {
            out.extend_from_slice(b"transfer-encoding: chunked\r\n");
        } else {
            write!(out, "content-length: {total}\r\n")?;
        }
    }
    if response.close {
        out.extend_from_slice(b"connection: close\r\n");
    } else if let Some(value) = &response.keep_alive {
        write!(out, "keep-alive: {value}\r\n")?;
    }
    write!(
        out,
        "x-connection-id: {}\r\nx-connection-requests: {}\r\n",
        response.connection_id, response.served
    )?;
    if let Some(id) = response.request_id {
        write!(out, "x-request-id: {id}\r\n")?;
    }
    out.extend_from_slice(b"\r\n");

    let mut body = BodyWriter {
        stream,
        out,
        chunked: knobs.chunked && has_body,
        pos: 0,
    };
    if response.is_head {
        body.flush().await?;
        return Ok(Written::Complete);
    }
    let half = total / 2;
    let mut midpoint_pending = knobs.close_mid_body.is_some() || !knobs.pause_mid_body.is_zero();
    let pieces = u64::from(knobs.stream_chunks.max(1));
    for i in 0..pieces {
        let end = total * (i + 1) / pieces;
        if i > 0 && !knobs.stream_interval.is_zero() {
            body.flush().await?;
            tokio::time::sleep(knobs.stream_interval).await;
        }
        if midpoint_pending && half <= end {
            midpoint_pending = false;
            body.data(half).await?;
            body.flush().await?;
            if let Some(kind) = knobs.close_mid_body {
                return Ok(Written::Cut(kind));
            }
            tokio::time::sleep(knobs.pause_mid_body).await;
        }
        body.data(end).await?;
    }
    if body.chunked {
        body.out.extend_from_slice(b"0\r\n\r\n");
    }
    body.flush().await?;
    Ok(Written::Complete)
}

/// Appends body bytes (framed if chunked) to the buffer, flushing as it
/// fills.
struct BodyWriter<'a> {
    stream: &'a mut TcpStream,
    out: &'a mut Vec<u8>,
    chunked: bool,
    /// Body bytes emitted so far.
    pos: u64,
}

impl BodyWriter<'_> {
    /// Emits the body up to offset `end` as one chunk (if chunked).
    async fn data(&mut self, end: u64) -> io::Result<()> {
        let Some(mut left) = end.checked_sub(self.pos).filter(|&n| n > 0) else {
            return Ok(());
        };
        if self.chunked {
            write!(self.out, "{left:x}\r\n")?;
        }
        while left > 0 {
            let take = left.min(PATTERN_BLOCK as u64) as usize;
            self.out.extend_from_slice(pattern_slice(self.pos, take));
            self.pos += take as u64;
            left -= take as u64;
            if self.out.len() >= FLUSH_AT {
                self.flush().await?;
            }
        }
        if self.chunked {
            self.out.extend_from_slice(b"\r\n");
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(self.out).await?;
            self.out.clear();
        }
        Ok(())
    }
}

/// Writes a rejection (`4xx`/`5xx` with `Connection: close` and a plain
/// text reason).
pub(crate) async fn write_rejection(
    stream: &mut TcpStream,
    out: &mut Vec<u8>,
    status: u16,
    message: &str,
) -> io::Result<()> {
    out.clear();
    write!(
        out,
        "HTTP/1.1 {status} {}\r\nconnection: close\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\n\r\n{message}\n",
        reason(status),
        message.len() + 1
    )?;
    stream.write_all(out).await
}
