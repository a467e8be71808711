//! The hand-written HTTP/1.1 server: exact control of every byte and close.

mod request;
mod response;

use std::io;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::builder::Config;
use crate::conn::{
    Wait, abort, close_gracefully, close_idle, close_on_order, read_more, wait_for_bytes,
};
use crate::knobs::{CloseKind, Knobs};
use crate::stats::{CloseReason, Shared};

use request::{BodyLength, ChunkedDecoder, Head, Rejection, parse_head, too_large};
use response::{Response, Written, write_rejection, write_response};

/// Why reading a request stopped.
enum Failure {
    /// The request is malformed: answer it and close.
    Reject(Rejection),
    /// The client closed in the middle of the request.
    Eof,
    /// The read failed.
    Io(io::ErrorKind),
}

impl From<io::Error> for Failure {
    fn from(err: io::Error) -> Self {
        Failure::Io(err.kind())
    }
}

/// Serves HTTP/1.1 requests on `stream` until the connection closes.
///
/// `buf` holds bytes already read (the start of the first request).
pub(crate) async fn serve(
    mut stream: TcpStream,
    mut buf: BytesMut,
    id: u64,
    config: &Config,
    shared: &Shared,
) -> CloseReason {
    let mut served: u32 = 0;
    let mut out = Vec::with_capacity(1024);
    loop {
        // Idle between requests: the timer starts now, right after the last
        // response byte was written, unless the next request is already
        // here (pipelined).
        if buf.is_empty() {
            match wait_for_bytes(&mut stream, &mut buf, config, shared).await {
                Wait::Data => {}
                Wait::Idle => return close_idle(stream, config.close_mode).await,
                Wait::Closed => return close_on_order(stream, config.close_mode).await,
                Wait::Eof => return CloseReason::PeerClosed,
                Wait::Failed(kind) => return CloseReason::Io(kind),
            }
        }
        let head = match read_request(&mut stream, &mut buf, config).await {
            Ok(head) => head,
            Err(Failure::Reject(rejection)) => {
                let sent =
                    write_rejection(&mut stream, &mut out, rejection.status, &rejection.message);
                if sent.await.is_ok() {
                    close_gracefully(stream).await;
                }
                return CloseReason::Rejected;
            }
            Err(Failure::Eof) => return CloseReason::IncompleteRequest,
            Err(Failure::Io(kind)) => return CloseReason::Io(kind),
        };

        // The request is complete and valid: from here on it counts as
        // processed, whatever the knobs do to the response.
        served = served.saturating_add(1);
        shared.request_processed(id, head.request_id.as_deref());
        let knobs: &Knobs = &head.knobs;
        if knobs.reset_after_read {
            abort(stream);
            return CloseReason::ResetAfterRead;
        }
        if !knobs.delay.is_zero() {
            tokio::time::sleep(knobs.delay).await;
        }

        let last = config.max_requests.is_some_and(|max| served >= max);
        let close = if head.wants_close {
            Some(CloseReason::PeerRequestedClose)
        } else if knobs.close {
            Some(CloseReason::CloseKnob)
        } else if last && config.announce_last_request {
            Some(CloseReason::MaxRequests)
        } else {
            None
        };
        let remaining = config.max_requests.map(|max| max.saturating_sub(served));
        let response = Response {
            knobs,
            is_head: head.is_head,
            close: close.is_some(),
            keep_alive: config.keep_alive_value(remaining),
            request_id: head.request_id.as_deref(),
            connection_id: id,
            served,
        };
        match write_response(&mut stream, &mut out, &response).await {
            Ok(Written::Complete) => {}
            Ok(Written::Cut(CloseKind::Fin)) => {
                let _ = stream.shutdown().await;
                return CloseReason::CloseMidBody;
            }
            Ok(Written::Cut(CloseKind::Rst)) => {
                abort(stream);
                return CloseReason::CloseMidBody;
            }
            Err(err) => return CloseReason::Io(err.kind()),
        }
        if let Some(reason) = close {
            close_gracefully(stream).await;
            return reason;
        }
        if last {
            // Unannounced: the client only learns from the FIN.
            let _ = stream.shutdown().await;
            return CloseReason::MaxRequests;
        }
    }
}

/// Reads one request head and its body; the body is discarded.
async fn read_request(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    config: &Config,
) -> Result<Head, Failure> {
    let head = loop {
        if let Some((len, head)) = parse_head(buf, &config.defaults).map_err(Failure::Reject)? {
            buf.advance(len);
            break head;
        }
        if read_more(stream, buf).await? == 0 {
            return Err(Failure::Eof);
        }
    };
    let has_body = head.body != BodyLength::Length(0);
    if head.expect_continue && has_body && buf.is_empty() {
        stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    match head.body {
        BodyLength::Length(len) => {
            if len > config.max_request_body {
                return Err(Failure::Reject(too_large(config.max_request_body)));
            }
            let mut left = len;
            loop {
                let take = left.min(buf.len() as u64);
                buf.advance(take as usize);
                left -= take;
                if left == 0 {
                    break;
                }
                if read_more(stream, buf).await? == 0 {
                    return Err(Failure::Eof);
                }
            }
        }
        BodyLength::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            while !decoder
                .decode(buf, config.max_request_body)
                .map_err(Failure::Reject)?
            {
                if read_more(stream, buf).await? == 0 {
                    return Err(Failure::Eof);
                }
            }
        }
    }
    Ok(head)
}
