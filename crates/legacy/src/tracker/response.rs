//! Response heads: parse them like hyper's client and decide the body
//! framing the way `hyper::proto::h1::role::Client::decoder` does.

use std::mem::MaybeUninit;

use super::StopReason;
use super::body::{Body, Chunked};
use super::head::{
    ContentLength, Invalid, MAX_HEADER_NAME_LEN, MAX_HEADERS, has_token, is_chunked,
};
use super::request::Method;

/// What follows a response head.
#[derive(Debug)]
pub(super) enum Framing {
    /// A 1xx other than 101: another head follows for the same request.
    Interim,
    /// `101 Switching Protocols`: the connection is no longer HTTP/1.
    Upgrade,
    /// A 2xx answer to `CONNECT`: the connection is now a tunnel.
    Connect,
    /// A final response with this body.
    Body(Body),
}

/// The reuse-relevant parts of the last final response head.
#[derive(Debug, Default)]
pub(super) struct FinalHead {
    pub(super) status: u16,
    pub(super) http10: bool,
    /// hyper's keep-alive verdict from the version and `Connection`.
    pub(super) keep_alive: bool,
    /// All `Connection` values, joined with `", "`; `None` if absent.
    pub(super) connection: Option<Vec<u8>>,
    /// All `Keep-Alive` values, joined with `", "`; `None` if absent.
    pub(super) keep_alive_header: Option<Vec<u8>>,
}

impl FinalHead {
    fn reset(&mut self, status: u16, http10: bool) {
        self.status = status;
        self.http10 = http10;
        self.keep_alive = !http10;
        // Keep the allocations: a connection sees the same headers again.
        for value in [&mut self.connection, &mut self.keep_alive_header]
            .into_iter()
            .flatten()
        {
            value.clear();
        }
    }
}

/// Appends one header line's value to a joined list value.
fn append(slot: &mut Option<Vec<u8>>, seen: &mut bool, value: &[u8]) {
    let list = slot.get_or_insert_with(Vec::new);
    if *seen {
        list.extend_from_slice(b", ");
    }
    *seen = true;
    list.extend_from_slice(value);
}

/// Parses a response head at the start of `bytes`.
///
/// `Ok(None)` asks for more bytes. For a final response, `last` is updated.
pub(super) fn parse(
    bytes: &[u8],
    method: Method,
    last: &mut FinalHead,
) -> Result<Option<(usize, Framing)>, StopReason> {
    // Uninitialised, as hyper does: no 3 KiB memset per head.
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        bytes,
        &mut headers,
    );
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(StopReason::Invalid(Invalid::Head)),
    };
    let status = response.code.unwrap_or(0);
    if status < 100 {
        return Err(StopReason::Invalid(Invalid::Status));
    }
    if response
        .headers
        .iter()
        .any(|h| h.name.len() >= MAX_HEADER_NAME_LEN)
    {
        return Err(StopReason::TooLarge);
    }
    let http10 = response.version == Some(0);

    // Client::decoder, in its order (RFC 9112 §6.3).
    match status {
        101 => return Ok(Some((len, Framing::Upgrade))),
        100 | 102..=199 => return Ok(Some((len, Framing::Interim))),
        _ => {}
    }
    let body = if matches!(status, 204 | 304) || method == Method::Head {
        Body::Length(0)
    } else if method == Method::Connect && (200..300).contains(&status) {
        return Ok(Some((len, Framing::Connect)));
    } else {
        body_framing(response.headers, http10)?
    };

    last.reset(status, http10);
    let (mut connection_seen, mut keep_alive_seen, mut saw_close) = (false, false, false);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("connection") {
            // hyper: once any `Connection` line says close, a later
            // keep-alive cannot undo it; HTTP/1.0 needs an explicit one.
            if saw_close || has_token(header.value, "close") {
                saw_close = true;
                last.keep_alive = false;
            } else if !last.keep_alive {
                last.keep_alive = has_token(header.value, "keep-alive");
            }
            append(&mut last.connection, &mut connection_seen, header.value);
        } else if header.name.eq_ignore_ascii_case("keep-alive") {
            append(
                &mut last.keep_alive_header,
                &mut keep_alive_seen,
                header.value,
            );
        }
    }
    if !connection_seen {
        last.connection = None;
    }
    if !keep_alive_seen {
        last.keep_alive_header = None;
    }
    Ok(Some((len, Framing::Body(body))))
}

/// The body framing of a final response that may have a body.
fn body_framing(headers: &[httparse::Header<'_>], http10: bool) -> Result<Body, StopReason> {
    let mut transfer_encoding = None;
    let mut content_length = ContentLength::default();
    for header in headers {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            transfer_encoding = Some(header.value);
        } else if header.name.eq_ignore_ascii_case("content-length") {
            content_length.add(header.value);
        }
    }
    match transfer_encoding {
        Some(_) if http10 => Err(StopReason::Invalid(Invalid::TransferEncodingHttp10)),
        // Only the last `Transfer-Encoding` line counts, and only its last
        // coding: `gzip, chunked` is chunked, `chunked, gzip` is read to EOF.
        Some(last) if is_chunked(last) => Ok(Body::Chunked(Chunked::new())),
        Some(_) => Ok(Body::CloseDelimited),
        None => match content_length.get()? {
            // `DecodedLength::checked_new` refuses its two reserved values.
            Some(n) if n > u64::MAX - 2 => Err(StopReason::Invalid(Invalid::ContentLength)),
            Some(n) => Ok(Body::Length(n)),
            None => Ok(Body::CloseDelimited),
        },
    }
}
