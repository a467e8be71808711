//! The in-memory connection of the differential harness: a scripted server
//! whose every byte, both ways, also goes through a [`Tracker`].

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use freshpool_testkit::XorShift;
use http_body::{Frame, SizeHint};

use super::lock;
use crate::tracker::Tracker;

/// The server side and the tracker, shared by the IO and the driver.
#[derive(Debug)]
pub(super) struct Wire {
    /// All response segments, back to back.
    stream: Vec<u8>,
    /// Where each segment ends in `stream`.
    segment_ends: Vec<usize>,
    /// Segments the server has sent so far.
    released: usize,
    /// The next write starts a request: release the next segment.
    release_on_write: bool,
    /// Bytes of `stream` already handed to hyper.
    delivered: usize,
    splits: Splits,
    eof: bool,
    eof_delivered: bool,
    reader: Option<Waker>,
    tracker: Tracker,
    /// Where the tracker saw each response end, as offsets in `stream`.
    message_ends: Vec<usize>,
    written: u64,
}

impl Wire {
    pub(super) fn new(segments: &[Vec<u8>], split_seed: u8) -> Self {
        let mut stream = Vec::new();
        let mut segment_ends = Vec::with_capacity(segments.len());
        for segment in segments {
            stream.extend_from_slice(segment);
            segment_ends.push(stream.len());
        }
        Wire {
            stream,
            segment_ends,
            released: 0,
            release_on_write: false,
            delivered: 0,
            splits: Splits::new(split_seed),
            eof: false,
            eof_delivered: false,
            reader: None,
            tracker: Tracker::new(),
            message_ends: Vec::new(),
            written: 0,
        }
    }

    pub(super) fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    pub(super) fn written(&self) -> u64 {
        self.written
    }

    /// Response bytes handed to hyper so far.
    pub(super) fn delivered(&self) -> usize {
        self.delivered
    }

    /// Where the tracker saw the last response end.
    pub(super) fn last_message_end(&self) -> Option<usize> {
        self.message_ends.last().copied()
    }

    /// The driver is about to send a request; returns the bytes written so
    /// far.
    pub(super) fn expect_request(&mut self) -> u64 {
        self.release_on_write = true;
        self.written
    }

    /// The server closes its side once everything sent has been read.
    pub(super) fn force_eof(&mut self) {
        self.eof = true;
        self.wake_reader();
    }

    fn wake_reader(&mut self) {
        if let Some(waker) = self.reader.take() {
            waker.wake();
        }
    }

    fn sent(&self) -> usize {
        self.released
            .checked_sub(1)
            .and_then(|i| self.segment_ends.get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// The connection hyper drives.
#[derive(Debug)]
pub(super) struct MockIo {
    wire: Arc<Mutex<Wire>>,
}

impl MockIo {
    pub(super) fn new(wire: Arc<Mutex<Wire>>) -> Self {
        MockIo { wire }
    }
}

impl hyper::rt::Read for MockIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut wire = lock(&self.wire);
        let sent = wire.sent();
        if wire.delivered < sent && buf.remaining() > 0 {
            let len = wire
                .splits
                .next()
                .min(sent - wire.delivered)
                .min(buf.remaining());
            let Wire {
                stream,
                delivered,
                tracker,
                message_ends,
                ..
            } = &mut *wire;
            let chunk = &stream[*delivered..*delivered + len];
            if let Some(end) = tracker.on_read(chunk).message_end {
                message_ends.push(*delivered + end);
            }
            buf.put_slice(chunk);
            *delivered += len;
            return Poll::Ready(Ok(()));
        }
        if wire.eof {
            if !wire.eof_delivered {
                wire.eof_delivered = true;
                wire.tracker.on_eof();
            }
            return Poll::Ready(Ok(()));
        }
        wire.reader = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl hyper::rt::Write for MockIo {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut wire = lock(&self.wire);
        wire.tracker.on_write(buf);
        wire.written += buf.len() as u64;
        if wire.release_on_write && !buf.is_empty() {
            wire.release_on_write = false;
            wire.released = (wire.released + 1).min(wire.segment_ends.len());
            wire.wake_reader();
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Read sizes: from a fixed seed, so every input replays identically.
#[derive(Debug)]
struct Splits {
    rng: XorShift,
    max: usize,
}

impl Splits {
    fn new(seed: u8) -> Self {
        let max = match seed % 4 {
            0 => 1,
            1 => 7,
            2 => 300,
            _ => usize::MAX,
        };
        Splits {
            rng: XorShift::from_state((u64::from(seed) << 32) | 0x9e37_79b9),
            max,
        }
    }

    fn next(&mut self) -> usize {
        if self.max == 1 || self.max == usize::MAX {
            return self.max;
        }
        1 + self.rng.below(self.max)
    }
}

/// A request body: sized (`Content-Length`, or none when empty) or of
/// unknown length (hyper sends it chunked).
#[derive(Debug)]
pub(super) struct RequestBody {
    chunks: VecDeque<Bytes>,
    sized: bool,
}

impl RequestBody {
    pub(super) fn sized(chunks: &[&'static [u8]]) -> Self {
        RequestBody {
            chunks: chunks.iter().map(|c| Bytes::from_static(c)).collect(),
            sized: true,
        }
    }

    pub(super) fn streamed(chunks: &[&'static [u8]]) -> Self {
        RequestBody {
            sized: false,
            ..RequestBody::sized(chunks)
        }
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.chunks.pop_front().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.sized && self.chunks.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        if self.sized {
            SizeHint::with_exact(self.chunks.iter().map(|c| c.len() as u64).sum())
        } else {
            SizeHint::default()
        }
    }
}
