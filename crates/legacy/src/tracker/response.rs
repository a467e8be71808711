//! Response heads: parse them like hyper's client and decide the body
//! framing the way `hyper::proto::h1::role::Client::decoder` does.

use std::mem::MaybeUninit;

use freshpool_expiry::connection_has;

use super::StopReason;
use super::body::{Body, Chunked};
use super::head::{ContentLength, Invalid, MAX_HEADER_NAME_LEN, MAX_HEADERS, is_chunked};
use super::request::Method;
use super::scan::{self, Field, Fields};

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
    let mut fields = Fields::new();
    if let Some(head) = scan::response(bytes, &mut fields) {
        let framing = decide(head.status, head.http10, fields.iter(), method, last)?;
        return Ok(Some((head.len, framing)));
    }
    // Anything out of the ordinary, as hyper parses it.
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
    let fields = response
        .headers
        .iter()
        .filter_map(|h| Some((Field::of(h.name.as_bytes())?, h.value)));
    let framing = decide(status, response.version == Some(0), fields, method, last)?;
    Ok(Some((len, framing)))
}

/// What follows a complete response head, from its status, version and
/// framing headers (in order); for a final response, updates `last`.
fn decide<'a>(
    status: u16,
    http10: bool,
    fields: impl Iterator<Item = (Field, &'a [u8])> + Clone,
    method: Method,
    last: &mut FinalHead,
) -> Result<Framing, StopReason> {
    if status < 100 {
        return Err(StopReason::Invalid(Invalid::Status));
    }
    // Client::decoder, in its order (RFC 9112 §6.3).
    match status {
        101 => return Ok(Framing::Upgrade),
        100 | 102..=199 => return Ok(Framing::Interim),
        _ => {}
    }
    let body = if matches!(status, 204 | 304) || method == Method::Head {
        Body::Length(0)
    } else if method == Method::Connect && (200..300).contains(&status) {
        return Ok(Framing::Connect);
    } else {
        body_framing(fields.clone(), http10)?
    };

    last.reset(status, http10);
    let (mut connection_seen, mut keep_alive_seen, mut saw_close) = (false, false, false);
    for (field, value) in fields {
        match field {
            Field::Connection => {
                // hyper: once any `Connection` line says close, a later
                // keep-alive cannot undo it; HTTP/1.0 needs an explicit one.
                if saw_close || connection_has(value, b"close") {
                    saw_close = true;
                    last.keep_alive = false;
                } else if !last.keep_alive {
                    last.keep_alive = connection_has(value, b"keep-alive");
                }
                append(&mut last.connection, &mut connection_seen, value);
            }
            Field::KeepAlive => {
                append(&mut last.keep_alive_header, &mut keep_alive_seen, value);
            }
            Field::ContentLength | Field::TransferEncoding => {}
        }
    }
    if !connection_seen {
        last.connection = None;
    }
    if !keep_alive_seen {
        last.keep_alive_header = None;
    }
    Ok(Framing::Body(body))
}

/// The body framing of a final response that may have a body.
fn body_framing<'a>(
    fields: impl Iterator<Item = (Field, &'a [u8])>,
    http10: bool,
) -> Result<Body, StopReason> {
    let mut transfer_encoding = None;
    let mut content_length = ContentLength::default();
    for (field, value) in fields {
        match field {
            Field::TransferEncoding => transfer_encoding = Some(value),
            Field::ContentLength => content_length.add(value),
            Field::Connection | Field::KeepAlive => {}
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
