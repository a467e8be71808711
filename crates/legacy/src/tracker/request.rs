//! Request heads as hyper writes them: the method, the body framing hyper
//! chose, and whether the request itself rules out keep-alive.

use std::mem::MaybeUninit;

use freshpool_expiry::connection_has;

use super::StopReason;

use super::head::{ContentLength, MAX_HEADERS, is_chunked};
use super::memo::{BodyStart, RequestSummary};
use super::scan::{self, Field, Fields};

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

/// Parses a request head at the start of `bytes`; `Ok(None)` asks for more.
pub(super) fn parse(bytes: &[u8]) -> Result<Option<(usize, RequestSummary)>, StopReason> {
    let mut fields = Fields::new();
    if let Some(scanned) = scan::request(bytes, &mut fields) {
        let head = decide(scanned.method, scanned.http10, fields.iter())?;
        return Ok(Some((scanned.len, head)));
    }
    // Anything out of the ordinary: httparse decides.
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
    let fields = request
        .headers
        .iter()
        .filter_map(|h| Some((Field::of(h.name.as_bytes())?, h.value)));
    let head = decide(method, request.version == Some(0), fields)?;
    Ok(Some((len, head)))
}

/// The tracker's view of a complete request head, from its method, version
/// and framing headers (in order).
fn decide<'a>(
    method: Method,
    http10: bool,
    fields: impl Iterator<Item = (Field, &'a [u8])>,
) -> Result<RequestSummary, StopReason> {
    let (mut close, mut keep_alive_token) = (false, false);
    let mut transfer_encoding = None;
    let mut content_length = ContentLength::default();
    for (field, value) in fields {
        match field {
            Field::Connection => {
                close |= connection_has(value, b"close");
                keep_alive_token |= connection_has(value, b"keep-alive");
            }
            Field::TransferEncoding => transfer_encoding = Some(value),
            Field::ContentLength => content_length.add(value),
            Field::KeepAlive => {}
        }
    }
    // hyper's `Client::set_length` always leaves one of: chunked as the last
    // coding, a single Content-Length, or neither for an empty body.
    let body = match transfer_encoding {
        Some(te) if is_chunked(te) => BodyStart::Chunked,
        Some(_) => return Err(StopReason::Unsupported(Unsupported::RequestFraming)),
        None => match content_length.get() {
            Ok(n) => BodyStart::Length(n.unwrap_or(0)),
            Err(_) => return Err(StopReason::Unsupported(Unsupported::RequestFraming)),
        },
    };
    // hyper (`Conn::encode_head`): any request `Connection: close` disables
    // keep-alive.
    let keep_alive = !close;
    Ok(RequestSummary {
        method,
        body,
        keep_alive,
        http10_close: http10 && !keep_alive_token,
    })
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
