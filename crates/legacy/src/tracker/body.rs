//! Following a message body to its end: a known length, chunked, or until
//! the connection closes.
//!
//! The chunked decoder is a byte-for-byte mirror of hyper's `ChunkedState`
//! machine (`proto/h1/decode.rs`), including its limits, so that it accepts
//! exactly what hyper accepts and ends where hyper ends. Chunk data itself is
//! skipped in one step, so the per-byte work is limited to size lines and
//! trailers.

use super::StopReason;
use super::head::{Invalid, MAX_HEADERS};

/// hyper's `CHUNKED_EXTENSIONS_LIMIT`: extension bytes allowed per message.
const CHUNKED_EXTENSIONS_LIMIT: u64 = 1024 * 16;

/// hyper's `TRAILER_LIMIT`: trailer bytes allowed per message (the default
/// when no `max_header_size` is configured).
const TRAILER_LIMIT: usize = 1024 * 16;

/// How far a body got with the bytes it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Progress {
    /// Bytes of the input that belong to this body.
    pub(super) consumed: usize,
    /// The body ended within those bytes.
    pub(super) done: bool,
}

/// The framing of one message body.
#[derive(Debug)]
pub(super) enum Body {
    /// `Content-Length`: this many bytes are left.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked(Chunked),
    /// Neither: the body ends when the server closes the connection.
    CloseDelimited,
}

impl Body {
    /// Consumes the part of `input` that belongs to this body.
    ///
    /// O(1) for `Length` and close-delimited bodies, whatever the input size.
    #[inline]
    pub(super) fn feed(&mut self, input: &[u8]) -> Result<Progress, StopReason> {
        match self {
            Body::Length(remaining) => {
                let take = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                // `take` fits in u64: it is at most `remaining`.
                *remaining -= take as u64;
                Ok(Progress {
                    consumed: take,
                    done: *remaining == 0,
                })
            }
            Body::Chunked(chunked) => chunked.feed(input),
            Body::CloseDelimited => Ok(Progress {
                consumed: input.len(),
                done: false,
            }),
        }
    }
}

/// hyper's `ChunkedState`, one variant per state, same names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Size,
    SizeLws,
    Extension,
    SizeLf,
    Body,
    BodyCr,
    BodyLf,
    Trailer,
    TrailerLf,
    EndCr,
    EndLf,
}

/// Decoder for a chunked body.
#[derive(Debug)]
pub(super) struct Chunked {
    state: State,
    /// Size of the chunk being read, then the bytes of it still to come.
    size: u64,
    extensions: u64,
    /// Trailer section bytes, kept to validate them as hyper does at the end.
    /// `None` until the first trailer byte, as in hyper.
    trailers: Option<Vec<u8>>,
    trailer_lines: usize,
}

impl Chunked {
    pub(super) fn new() -> Self {
        Chunked {
            state: State::Start,
            size: 0,
            extensions: 0,
            trailers: None,
            trailer_lines: 0,
        }
    }

    #[inline(never)]
    fn feed(&mut self, input: &[u8]) -> Result<Progress, StopReason> {
        let mut at = 0;
        while at < input.len() {
            if self.state == State::Body {
                let rest = &input[at..];
                let take = usize::try_from(self.size).map_or(rest.len(), |s| s.min(rest.len()));
                // `take` fits in u64: it is at most `size`.
                self.size -= take as u64;
                at += take;
                if self.size == 0 {
                    self.state = State::BodyCr;
                }
                continue;
            }
            let byte = input[at];
            at += 1;
            if self.step(byte)? {
                return Ok(Progress {
                    consumed: at,
                    done: true,
                });
            }
        }
        Ok(Progress {
            consumed: at,
            done: false,
        })
    }

    /// Advances by one byte outside chunk data; `Ok(true)` at the end of the
    /// body.
    fn step(&mut self, byte: u8) -> Result<bool, StopReason> {
        const INVALID: StopReason = StopReason::Invalid(Invalid::Chunked);
        self.state = match (self.state, byte) {
            (State::Start | State::Size, b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F') => {
                // `read_start` / `read_size`: checked, an overflow is an error.
                let digit = (byte as char).to_digit(16).map_or(0, u64::from);
                self.size = self
                    .size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(INVALID)?;
                State::Size
            }
            (State::Size | State::SizeLws, b'\t' | b' ') => State::SizeLws,
            (State::Size | State::SizeLws, b';') => State::Extension,
            (State::Size | State::SizeLws | State::Extension, b'\r') => State::SizeLf,
            // hyper refuses a bare LF inside an extension.
            (State::Extension, b'\n') => return Err(INVALID),
            (State::Extension, _) => {
                self.extensions += 1;
                if self.extensions >= CHUNKED_EXTENSIONS_LIMIT {
                    return Err(INVALID);
                }
                State::Extension
            }
            (State::SizeLf, b'\n') if self.size == 0 => State::EndCr,
            (State::SizeLf, b'\n') => State::Body,
            (State::BodyCr, b'\r') => State::BodyLf,
            (State::BodyLf, b'\n') => State::Start,
            (State::EndCr, b'\r') => {
                if let Some(trailers) = &mut self.trailers {
                    push_trailer(trailers, byte)?;
                }
                State::EndLf
            }
            (State::EndCr, _) => {
                push_trailer(self.trailers.get_or_insert_with(Vec::new), byte)?;
                State::Trailer
            }
            // Any byte, even a bare LF, belongs to a trailer line until CR.
            (State::Trailer, _) => {
                push_trailer(self.trailers.get_or_insert_with(Vec::new), byte)?;
                if byte == b'\r' {
                    State::TrailerLf
                } else {
                    State::Trailer
                }
            }
            (State::TrailerLf, b'\n') => {
                if self.trailer_lines >= MAX_HEADERS {
                    return Err(INVALID);
                }
                self.trailer_lines += 1;
                push_trailer(self.trailers.get_or_insert_with(Vec::new), byte)?;
                State::EndCr
            }
            (State::EndLf, b'\n') => {
                if let Some(trailers) = &mut self.trailers {
                    push_trailer(trailers, byte)?;
                    validate_trailers(trailers, self.trailer_lines)?;
                }
                return Ok(true);
            }
            // Chunk data is consumed by `feed`, never byte by byte.
            (State::Body, _) => State::Body,
            _ => return Err(INVALID),
        };
        Ok(false)
    }
}

/// hyper's `put_u8!`: append, then fail once the section reaches the limit.
fn push_trailer(trailers: &mut Vec<u8>, byte: u8) -> Result<(), StopReason> {
    trailers.push(byte);
    if trailers.len() >= TRAILER_LIMIT {
        return Err(StopReason::Invalid(Invalid::Chunked));
    }
    Ok(())
}

/// hyper's `decode_trailers`: the section must parse as exactly `lines`
/// header fields, else the body fails after its last byte.
fn validate_trailers(trailers: &[u8], lines: usize) -> Result<(), StopReason> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let slots = headers.get_mut(..lines).unwrap_or_default();
    match httparse::parse_headers(trailers, slots) {
        Ok(httparse::Status::Complete(_)) => Ok(()),
        _ => Err(StopReason::Invalid(Invalid::Chunked)),
    }
}
