//! Request heads as hyper writes them: the method, the body framing hyper
//! chose, and whether the request itself rules out keep-alive.

use std::mem::MaybeUninit;

use super::StopReason;
use super::body::{Body, Chunked};
use super::head::{ContentLength, MAX_HEADERS, has_token, is_chunked};

/// The request methods whose responses are framed differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Method {
    /// `HEAD`: the response never has a body.
    Head,
    /// `CONNECT`: a 2xx response turns the connection into a tunnel.
    Connect,
    /// Anything else.
    #[default]
    Other,
}

/// What the tracker needs from a request head.
#[derive(Debug)]
pub(super) struct RequestHead {
    pub(super) method: Method,
    /// The request body that follows the head.
    pub(super) body: Body,
    /// `false` when the request carries `Connection: close`: hyper will
    /// not reuse the connection after this exchange.
    pub(super) keep_alive: bool,
    /// An HTTP/1.0 request without `Connection: keep-alive`.
    pub(super) http10_close: bool,
}

/// Parses a request head at the start of `bytes`; `Ok(None)` asks for more.
pub(super) fn parse(bytes: &[u8]) -> Result<Option<(usize, RequestHead)>, StopReason> {
    // Uninitialised, as hyper does: no 3 KiB memset per head.
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let len = match request.parse_with_uninit_headers(bytes, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(StopReason::Unsupported(Unsupported::RequestHead)),
    };
    let method = match request.method {
        Some("HEAD") => Method::Head,
        Some("CONNECT") => Method::Connect,
        _ => Method::Other,
    };
    let http10 = request.version == Some(0);
    let (mut close, mut keep_alive_token) = (false, false);
    let mut transfer_encoding = None;
    let mut content_length = ContentLength::default();
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("connection") {
            close |= has_token(header.value, "close");
            keep_alive_token |= has_token(header.value, "keep-alive");
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = Some(header.value);
        } else if header.name.eq_ignore_ascii_case("content-length") {
            content_length.add(header.value);
        }
    }
    // hyper's `Client::set_length` always leaves one of: chunked as the last
    // coding, a single Content-Length, or neither for an empty body.
    let body = match transfer_encoding {
        Some(te) if is_chunked(te) => Body::Chunked(Chunked::new()),
        Some(_) => return Err(StopReason::Unsupported(Unsupported::RequestFraming)),
        None => match content_length.get() {
            Ok(n) => Body::Length(n.unwrap_or(0)),
            Err(_) => return Err(StopReason::Unsupported(Unsupported::RequestFraming)),
        },
    };
    // hyper (`Conn::encode_head`): any request `Connection: close` disables
    // keep-alive.
    let keep_alive = !close;
    Ok(Some((
        len,
        RequestHead {
            method,
            body,
            keep_alive,
            http10_close: http10 && !keep_alive_token,
        },
    )))
}

/// Things hyper may legitimately do that the tracker does not follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unsupported {
    /// A request head `httparse` could not parse (for instance more than
    /// 100 headers).
    RequestHead,
    /// A request body framing other than chunked or one `Content-Length`.
    RequestFraming,
    /// A second request written before the first response completed.
    Pipelined,
    /// Response bytes arrived before the request head was fully written, so
    /// the request method is unknown.
    EarlyResponse,
}

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Unsupported::RequestHead => "request head not parsed",
            Unsupported::RequestFraming => "request body framing not followed",
            Unsupported::Pipelined => "pipelined request",
            Unsupported::EarlyResponse => "response before the request head was written",
        })
    }
}
