//! The HTTP/1 message-boundary tracker.
//!
//! A sans-IO [`Tracker`] watches the bytes hyper writes to a connection and
//! the bytes hyper reads from it, in the order they happen, and follows the
//! HTTP/1 exchange from them: which request is on the wire, where its
//! response head and body end, and whether hyper will keep the connection
//! alive afterwards. From that it knows when a connection is *provably idle
//! between messages*, which is the only time the IO wrapper may end it.
//!
//! The framing rules are hyper's own (`proto/h1/role.rs`, `decode.rs`,
//! `conn.rs`), mirrored rule by rule. Whatever the tracker cannot follow
//! exactly, it stops following: after that it never reports the connection
//! idle again, so the wrapper never interferes with it.
//!
//! Heads are read once per message: a plainly well-formed head by a
//! one-pass scanner that keeps only the start line and the framing headers
//! (`scan`), anything else by `httparse`, the parser hyper itself uses, so
//! that a head hyper rejects is rejected here too. A head that repeats the
//! last one of its direction byte for byte (the usual case on a busy
//! connection) is compared with it instead of read again (`memo`).

mod body;
mod head;
mod memo;
mod request;
mod response;
mod scan;
#[cfg(test)]
mod tests;

use std::fmt;

use body::Body;
pub(crate) use head::Invalid;
use head::{Fed, HeadBuffer};
use memo::{BodyStart, Kept, RequestSummary, ResponseSummary};
pub(crate) use request::{Method, Unsupported};
use response::{FinalHead, Framing};

/// Why a [`Tracker`] stopped following a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// A `101 Switching Protocols` response: the connection was upgraded.
    Upgrade,
    /// A 2xx response to `CONNECT`: the connection became a tunnel.
    Connect,
    /// The server sent something hyper rejects, so hyper fails the request
    /// and closes the connection itself.
    Invalid(Invalid),
    /// A head larger than hyper accepts.
    TooLarge,
    /// The server sent bytes while no request was outstanding (a stray
    /// `408`, a desynchronised response): the connection is unusable.
    UnexpectedData,
    /// Something hyper did that the tracker does not follow.
    Unsupported(Unsupported),
    /// The server closed the connection (EOF).
    Closed,
    /// Reading from the connection failed.
    ReadError,
    /// The owner stopped tracking (see [`Tracker::stop`]).
    Stopped,
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::Upgrade => f.write_str("connection upgraded (101)"),
            StopReason::Connect => f.write_str("CONNECT tunnel established"),
            StopReason::Invalid(what) => write!(f, "invalid response: {what}"),
            StopReason::TooLarge => f.write_str("message head too large"),
            StopReason::UnexpectedData => f.write_str("bytes received with no request outstanding"),
            StopReason::Unsupported(what) => write!(f, "not followed: {what}"),
            StopReason::Closed => f.write_str("connection closed by the server"),
            StopReason::ReadError => f.write_str("read error"),
            StopReason::Stopped => f.write_str("tracking stopped by its owner"),
        }
    }
}

/// What one [`Tracker::on_read`] call found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ReadOutcome {
    /// A final (non-1xx) response head completed; see
    /// [`Tracker::response_head`].
    pub(crate) response_head: bool,
    /// The response message ended this many bytes into the input.
    pub(crate) message_end: Option<usize>,
}

/// What [`Tracker::on_eof`] or [`Tracker::on_read_error`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CloseOutcome {
    /// The connection was idle between messages when it closed: a
    /// server-initiated idle close, which says something about the
    /// server's idle timeout.
    pub(crate) was_idle: bool,
    /// The close ended a close-delimited response body.
    pub(crate) message_end: bool,
}

/// The reuse-relevant parts of the last final response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResponseHead<'a> {
    /// The status code.
    pub(crate) status: u16,
    /// The response was HTTP/1.0.
    pub(crate) http10: bool,
    /// hyper keeps the connection alive after this response, judging by
    /// its version, `Connection` headers, framing and the request.
    pub(crate) keep_alive: bool,
    /// The `Connection` values, several lines joined with `", "`.
    pub(crate) connection: Option<&'a [u8]>,
    /// The `Keep-Alive` values, several lines joined with `", "` (the input
    /// for `freshpool_expiry::KeepAlive::parse`).
    pub(crate) keep_alive_header: Option<&'a [u8]>,
}

#[derive(Debug)]
enum Writing {
    /// Between requests: the next byte written starts a request head.
    Idle,
    Head,
    Body(Body),
}

#[derive(Debug)]
enum Reading {
    /// No response is expected: any byte read is unexpected.
    Idle,
    Head,
    Body(Body),
}

/// Follows the HTTP/1 exchange on one client connection.
///
/// Feed it every byte hyper writes ([`on_write`](Self::on_write), with the
/// bytes the inner IO accepted: for a vectored write, the first `n` bytes
/// of the slices in order) and every byte hyper reads
/// ([`on_read`](Self::on_read), with the bytes the inner IO returned), in
/// the order they happen, plus the end of the stream
/// ([`on_eof`](Self::on_eof), [`on_read_error`](Self::on_read_error)). It
/// never looks at anything else and never changes what is written or read.
///
/// The cost is O(1) per call for body bytes of a known length and for
/// chunk data; only heads, chunk-size lines and trailers are looked at
/// byte by byte. A head split across calls is buffered (at most about
/// 400 KiB, hyper's own limit) in a buffer reused for the connection's
/// life. The last request head and final response head parsed whole are
/// kept too (up to 4 KiB each), so that the same head again costs one
/// comparison.
#[derive(Debug)]
pub(crate) struct Tracker {
    stopped: Option<StopReason>,
    writing: Writing,
    reading: Reading,
    request_head: HeadBuffer,
    response_buf: HeadBuffer,
    /// The last request head and final response head parsed whole.
    kept_request: Kept<RequestSummary>,
    kept_response: Kept<ResponseSummary>,
    method: Method,
    /// hyper's keep-alive state: once off, never on again.
    keep_alive: bool,
    last: FinalHead,
    has_final_head: bool,
    bytes_written_current: u64,
    messages_completed: u64,
    /// [`is_idle`](Self::is_idle), worked out after every change of the
    /// state: the IO wrapper asks on every read and write.
    idle: bool,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

impl Tracker {
    /// A tracker for a fresh connection: idle, nothing written yet.
    pub(crate) fn new() -> Self {
        Tracker {
            stopped: None,
            writing: Writing::Idle,
            reading: Reading::Idle,
            request_head: HeadBuffer::default(),
            response_buf: HeadBuffer::default(),
            kept_request: Kept::default(),
            kept_response: Kept::default(),
            method: Method::Other,
            keep_alive: true,
            last: FinalHead::default(),
            has_final_head: false,
            bytes_written_current: 0,
            messages_completed: 0,
            idle: true,
        }
    }

    /// Whether the tracker still follows the connection.
    #[inline]
    pub(crate) fn is_tracking(&self) -> bool {
        self.stopped.is_none()
    }

    /// Why tracking stopped, if it did.
    pub(crate) fn stop_reason(&self) -> Option<StopReason> {
        self.stopped
    }

    /// Whether the connection is provably idle between messages: tracking,
    /// every request written was fully written and fully answered, nothing
    /// is partially parsed, and hyper will reuse the connection.
    ///
    /// Only then may the connection be ended without harming a request.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        self.idle
    }

    /// Works out [`is_idle`](Self::is_idle) again; called by every method
    /// that changes the state.
    fn update_idle(&mut self) {
        self.idle = self.stopped.is_none()
            && self.keep_alive
            && matches!(self.writing, Writing::Idle)
            && matches!(self.reading, Reading::Idle);
    }

    /// Whether the connection can still become idle: tracking, and hyper
    /// has not given up keep-alive (`Connection: close`, HTTP/1.0 without
    /// keep-alive, a close-delimited body). Once `false`, it stays `false`:
    /// the owner can stop scheduling the connection.
    #[inline]
    pub(crate) fn is_reusable(&self) -> bool {
        self.stopped.is_none() && self.keep_alive
    }

    /// Bytes written since the current (or last) request began, head and
    /// body. After tracking stopped, writes keep adding to it.
    #[cfg_attr(
        not(any(test, feature = "fuzzing")),
        expect(
            dead_code,
            reason = "the differential fuzz target and the tests check it"
        )
    )]
    pub(crate) fn bytes_written_current(&self) -> u64 {
        self.bytes_written_current
    }

    /// Whether the current request, head and body, has been written.
    #[inline]
    pub(crate) fn request_written(&self) -> bool {
        self.stopped.is_none() && matches!(self.writing, Writing::Idle)
    }

    /// Response messages completed on this connection.
    #[inline]
    pub(crate) fn messages_completed(&self) -> u64 {
        self.messages_completed
    }

    /// The last final response head, once one arrived: during an exchange,
    /// the previous exchange's until the current final head completes
    /// (signalled by [`ReadOutcome::response_head`]).
    pub(crate) fn response_head(&self) -> Option<ResponseHead<'_>> {
        self.has_final_head.then_some(ResponseHead {
            status: self.last.status,
            http10: self.last.http10,
            keep_alive: self.keep_alive,
            connection: self.last.connection.as_deref(),
            keep_alive_header: self.last.keep_alive_header.as_deref(),
        })
    }

    /// Stops tracking for good, for instance once the owner ended the
    /// connection itself. Does nothing if tracking already stopped.
    pub(crate) fn stop(&mut self) {
        self.stop_with(StopReason::Stopped);
    }

    fn stop_with(&mut self, reason: StopReason) {
        if self.stopped.is_none() {
            self.stopped = Some(reason);
            self.idle = false;
            self.request_head.clear();
            self.response_buf.clear();
        }
    }

    /// Records bytes hyper wrote (those the inner IO accepted).
    #[inline]
    pub(crate) fn on_write(&mut self, buf: &[u8]) {
        if !self.wrote_repeated_head(buf) {
            self.on_write_general(buf);
        }
        self.update_idle();
    }

    /// The usual write between messages: a whole request head, byte for
    /// byte the last one parsed whole. Does to the state exactly what
    /// [`write`](Self::write) does with it, after one comparison; `false`,
    /// having done nothing, for any other write.
    #[inline]
    fn wrote_repeated_head(&mut self, buf: &[u8]) -> bool {
        if !(self.stopped.is_none()
            && matches!(self.writing, Writing::Idle)
            && matches!(self.reading, Reading::Idle)
            && self.request_head.is_empty())
        {
            return false;
        }
        let Some(head) = self.kept_request.get_exact(buf) else {
            return false;
        };
        self.bytes_written_current = buf.len() as u64;
        self.reading = Reading::Head;
        self.method = head.method;
        self.keep_alive &= head.keep_alive;
        if head.http10_close && self.has_final_head && self.last.http10 {
            self.keep_alive = false;
        }
        self.writing = match head.body {
            BodyStart::Length(0) => Writing::Idle,
            body => Writing::Body(body.body()),
        };
        true
    }

    fn on_write_general(&mut self, buf: &[u8]) {
        let mut rest = buf;
        if self.stopped.is_none()
            && let Err(reason) = self.write(&mut rest)
        {
            self.stop_with(reason);
        }
        // Whatever was not followed still counts as written.
        self.bytes_written_current += rest.len() as u64;
    }

    /// Follows `buf`, advancing it past the bytes it accounted for.
    fn write(&mut self, buf: &mut &[u8]) -> Result<(), StopReason> {
        while !buf.is_empty() {
            let consumed = match &mut self.writing {
                Writing::Idle => {
                    if !matches!(self.reading, Reading::Idle) {
                        return Err(StopReason::Unsupported(Unsupported::Pipelined));
                    }
                    self.bytes_written_current = 0;
                    self.writing = Writing::Head;
                    self.reading = Reading::Head;
                    0
                }
                Writing::Head => match self.request_head_fed(buf)? {
                    Fed::Complete { consumed, head } => {
                        self.method = head.method;
                        self.keep_alive &= head.keep_alive;
                        // hyper's `fix_keep_alive`: once the server spoke
                        // HTTP/1.0, an HTTP/1.0 request without
                        // `keep-alive` ends keep-alive. (hyper itself writes
                        // HTTP/1.0 then and adds `keep-alive` when it wants
                        // it; only a request the user made HTTP/1.0 lacks it.)
                        if head.http10_close && self.has_final_head && self.last.http10 {
                            self.keep_alive = false;
                        }
                        self.writing = Writing::Body(head.body.body());
                        consumed
                    }
                    Fed::Partial => buf.len(),
                },
                Writing::Body(body) => {
                    // hyper's encoder never writes bad chunked framing; if
                    // it did, the server would be the one to object.
                    let progress = body
                        .feed(buf)
                        .map_err(|_| StopReason::Unsupported(Unsupported::RequestFraming))?;
                    if progress.done {
                        self.writing = Writing::Idle;
                    }
                    progress.consumed
                }
            };
            self.bytes_written_current += consumed as u64;
            *buf = &buf[consumed..];
            if let Writing::Body(Body::Length(0)) = self.writing {
                self.writing = Writing::Idle;
            }
        }
        Ok(())
    }

    /// Records bytes hyper read (those the inner IO returned).
    #[inline]
    pub(crate) fn on_read(&mut self, buf: &[u8]) -> ReadOutcome {
        let outcome = match self.read_repeated_head(buf) {
            Some(outcome) => outcome,
            None => self.on_read_general(buf),
        };
        self.update_idle();
        outcome
    }

    /// The usual read of a response: the last final response head parsed
    /// whole, again, answering the same method, with a `Content-Length`
    /// body that the read holds all of or the start of. Does to the state
    /// exactly what [`read`](Self::read) does with it, after one
    /// comparison; `None`, having done nothing, for any other read.
    #[inline]
    fn read_repeated_head(&mut self, buf: &[u8]) -> Option<ReadOutcome> {
        if !(self.stopped.is_none()
            && matches!(self.reading, Reading::Head)
            && !matches!(self.writing, Writing::Head)
            && self.response_buf.is_empty())
        {
            return None;
        }
        let (consumed, said) = self.kept_response.get(buf)?;
        let BodyStart::Length(length) = said.body else {
            return None;
        };
        let rest = (buf.len() - consumed) as u64;
        if said.method != self.method || rest > length {
            return None;
        }
        // `last` already holds what this head says.
        self.has_final_head = true;
        self.keep_alive &= self.last.keep_alive;
        let left = length - rest;
        let message_end = if left == 0 {
            self.end_message();
            Some(buf.len())
        } else {
            self.reading = Reading::Body(Body::Length(left));
            None
        };
        Some(ReadOutcome {
            response_head: true,
            message_end,
        })
    }

    fn on_read_general(&mut self, buf: &[u8]) -> ReadOutcome {
        let mut outcome = ReadOutcome::default();
        if self.stopped.is_none()
            && let Err(reason) = self.read(buf, &mut outcome)
        {
            self.stop_with(reason);
        }
        outcome
    }

    fn read(&mut self, buf: &[u8], outcome: &mut ReadOutcome) -> Result<(), StopReason> {
        let mut at = 0;
        while at < buf.len() {
            let rest = &buf[at..];
            match &mut self.reading {
                Reading::Idle => return Err(StopReason::UnexpectedData),
                Reading::Head => {
                    if matches!(self.writing, Writing::Head) {
                        return Err(StopReason::Unsupported(Unsupported::EarlyResponse));
                    }
                    let (consumed, framing) = match self.response_head_fed(rest)? {
                        Fed::Complete { consumed, head } => (consumed, head),
                        Fed::Partial => return Ok(()),
                    };
                    at += consumed;
                    match framing {
                        Framing::Interim => {}
                        Framing::Upgrade => return Err(StopReason::Upgrade),
                        Framing::Connect => return Err(StopReason::Connect),
                        Framing::Body(body) => {
                            self.has_final_head = true;
                            outcome.response_head = true;
                            // hyper: `keep_alive &= msg.keep_alive`; a body
                            // read to EOF leaves nothing to keep alive.
                            self.keep_alive &=
                                self.last.keep_alive && !matches!(body, Body::CloseDelimited);
                            self.reading = Reading::Body(body);
                        }
                    }
                }
                Reading::Body(body) => {
                    let progress = body.feed(rest)?;
                    at += progress.consumed;
                    if progress.done {
                        self.end_message();
                        outcome.message_end = Some(at);
                    }
                }
            }
            if let Reading::Body(Body::Length(0)) = self.reading {
                self.end_message();
                outcome.message_end = Some(at);
            }
        }
        Ok(())
    }

    /// Feeds `buf` to the request head, or finds it is the last request
    /// head parsed whole, again.
    #[inline]
    fn request_head_fed(&mut self, buf: &[u8]) -> Result<Fed<RequestSummary>, StopReason> {
        let whole = self.request_head.is_empty();
        if whole && let Some((consumed, head)) = self.kept_request.get(buf) {
            return Ok(Fed::Complete { consumed, head });
        }
        self.parse_request_head(buf, whole)
    }

    /// [`request_head_fed`](Self::request_head_fed) for a head not seen
    /// before; out of line, so that the repeated head's path stays short.
    #[inline(never)]
    fn parse_request_head(
        &mut self,
        buf: &[u8],
        whole: bool,
    ) -> Result<Fed<RequestSummary>, StopReason> {
        let fed = self.request_head.feed(buf, request::parse)?;
        if whole && let Fed::Complete { consumed, head } = fed {
            self.kept_request.keep(&buf[..consumed], head);
        }
        Ok(fed)
    }

    /// Feeds `rest` to the response head, or finds it is the last final
    /// response head parsed whole, again, answering the same method: then
    /// `last` already holds what it says.
    #[inline]
    fn response_head_fed(&mut self, rest: &[u8]) -> Result<Fed<Framing>, StopReason> {
        let whole = self.response_buf.is_empty();
        if whole
            && let Some((consumed, said)) = self.kept_response.get(rest)
            && said.method == self.method
        {
            let head = Framing::Body(said.body.body());
            return Ok(Fed::Complete { consumed, head });
        }
        self.parse_response_head(rest, whole)
    }

    /// [`response_head_fed`](Self::response_head_fed) for a head not seen
    /// before (or answering another method); out of line, as
    /// [`parse_request_head`](Self::parse_request_head).
    #[inline(never)]
    fn parse_response_head(
        &mut self,
        rest: &[u8],
        whole: bool,
    ) -> Result<Fed<Framing>, StopReason> {
        let (method, last) = (self.method, &mut self.last);
        let fed = self
            .response_buf
            .feed(rest, |b| response::parse(b, method, last))?;
        if let Fed::Complete {
            consumed,
            head: Framing::Body(body),
        } = &fed
        {
            // `last` now holds this head's values: keep the head that set
            // them, or none.
            if whole {
                let body = BodyStart::of(body);
                let said = ResponseSummary { method, body };
                self.kept_response.keep(&rest[..*consumed], said);
            } else {
                self.kept_response.forget();
            }
        }
        Ok(fed)
    }

    #[inline]
    fn end_message(&mut self) {
        self.reading = Reading::Idle;
        self.messages_completed += 1;
    }

    /// Records that the server closed the connection (a read returned EOF).
    ///
    /// Tracking stops; a close-delimited body ends here.
    pub(crate) fn on_eof(&mut self) -> CloseOutcome {
        let was_idle = self.is_idle();
        let message_end =
            self.stopped.is_none() && matches!(self.reading, Reading::Body(Body::CloseDelimited));
        if message_end {
            self.end_message();
        }
        self.stop_with(StopReason::Closed);
        CloseOutcome {
            was_idle,
            message_end,
        }
    }

    /// Records that reading failed (for instance a reset). Tracking stops.
    pub(crate) fn on_read_error(&mut self) -> CloseOutcome {
        let was_idle = self.is_idle();
        self.stop_with(StopReason::ReadError);
        CloseOutcome {
            was_idle,
            message_end: false,
        }
    }
}
