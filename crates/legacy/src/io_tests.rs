//! The IO wrapper over a scripted in-memory IO, in paused tokio time: what
//! it records for `RetryClient`, what it learns, and when it may end a
//! connection.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::{Ready, ready};
use std::mem::MaybeUninit;
use std::sync::Mutex;
use std::task::Waker;
use std::time::Duration;

use http::Uri;
use tower_service::Service;

use super::*;
use crate::Connector;
use crate::info::Facts;

/// What the mock IO hands to reads, in order; `Pending` once empty.
#[derive(Default)]
struct Script {
    reads: VecDeque<io::Result<Vec<u8>>>,
    written: Vec<u8>,
}

struct Mock {
    script: Arc<Mutex<Script>>,
    h2: bool,
}

impl Read for Mock {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.script.lock().unwrap().reads.pop_front() {
            Some(Ok(bytes)) => {
                buf.put_slice(&bytes);
                Poll::Ready(Ok(()))
            }
            Some(Err(e)) => Poll::Ready(Err(e)),
            None => Poll::Pending,
        }
    }
}

impl Write for Mock {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.script.lock().unwrap().written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Connection for Mock {
    fn connected(&self) -> Connected {
        let connected = Connected::new();
        if self.h2 {
            connected.negotiated_h2()
        } else {
            connected
        }
    }
}

#[derive(Clone)]
struct MockConnector {
    script: Arc<Mutex<Script>>,
    h2: bool,
}

impl Service<Uri> for MockConnector {
    type Response = Mock;
    type Error = Infallible;
    type Future = Ready<Result<Mock, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        ready(Ok(Mock {
            script: Arc::clone(&self.script),
            h2: self.h2,
        }))
    }
}

struct Harness {
    connector: Connector<MockConnector>,
    script: Arc<Mutex<Script>>,
    io: TrackedIo<Mock>,
}

const POST: &[u8] = b"POST /orders HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello";
const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

impl Harness {
    async fn new(h2: bool) -> Harness {
        let script = Arc::new(Mutex::new(Script::default()));
        let mut connector = Connector::new(MockConnector {
            script: Arc::clone(&script),
            h2,
        });
        let io = connector
            .call(Uri::from_static("http://example.test/"))
            .await
            .unwrap_or_else(|never| match never {});
        Harness {
            connector,
            script,
            io,
        }
    }

    fn push_read(&self, read: io::Result<&[u8]>) {
        let read = read.map(<[u8]>::to_vec);
        self.script.lock().unwrap().reads.push_back(read);
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut cx = Context::from_waker(Waker::noop());
        let written = Pin::new(&mut self.io).poll_write(&mut cx, bytes);
        assert!(matches!(written, Poll::Ready(Ok(n)) if n == bytes.len()));
    }

    /// One read as hyper makes it: `Ok(bytes)` (empty at EOF), or pending.
    fn read(&mut self) -> Poll<io::Result<Vec<u8>>> {
        let mut cx = Context::from_waker(Waker::noop());
        let mut storage = [MaybeUninit::uninit(); 4096];
        let mut buf = ReadBuf::uninit(&mut storage);
        match Pin::new(&mut self.io).poll_read(&mut cx, buf.unfilled()) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().to_vec())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// One complete exchange: a POST and its `200`.
    fn exchange(&mut self) {
        self.write(POST);
        self.push_read(Ok(OK));
        assert!(matches!(self.read(), Poll::Ready(Ok(b)) if b == OK));
        assert!(self.io.state.tracker.is_idle());
    }

    fn facts(&self) -> Option<Facts> {
        self.io.info().facts()
    }
}

#[tokio::test(start_paused = true)]
async fn a_failure_on_a_fresh_connection_is_not_a_reuse() {
    let mut h = Harness::new(false).await;
    h.write(&POST[..20]);
    h.push_read(Ok(b""));
    assert!(matches!(h.read(), Poll::Ready(Ok(b)) if b.is_empty()));
    assert_eq!(
        h.facts(),
        Some(Facts {
            reused: false,
            bytes_written: 20,
            response_started: false,
        })
    );
    // The close came with a request outstanding: nothing to learn.
    assert_eq!(h.connector.stats().server_closes, 0);
}

#[tokio::test(start_paused = true)]
async fn a_request_written_on_a_reused_connection_counts_its_own_bytes_only() {
    let mut h = Harness::new(false).await;
    h.exchange();
    h.write(POST);
    h.push_read(Ok(b"HTTP/1.1 2"));
    h.push_read(Err(io::ErrorKind::ConnectionReset.into()));
    assert!(matches!(h.read(), Poll::Ready(Ok(_))));
    assert!(matches!(h.read(), Poll::Ready(Err(_))));
    let facts = h.facts().expect("followed");
    assert!(facts.reused);
    assert_eq!(facts.bytes_written, POST.len() as u64);
    assert!(facts.response_started);
    assert_eq!(h.io.info().responses_completed(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_idle_close_is_learned_and_leaves_nothing_written() {
    let mut h = Harness::new(false).await;
    h.exchange();
    tokio::time::sleep(Duration::from_millis(300)).await;
    h.push_read(Ok(b""));
    assert!(matches!(h.read(), Poll::Ready(Ok(b)) if b.is_empty()));
    assert_eq!(
        h.facts(),
        Some(Facts {
            reused: true,
            bytes_written: 0,
            response_started: false,
        })
    );
    assert_eq!(h.connector.stats().server_closes, 1);
    let estimate = h
        .connector
        .estimate(&Uri::from_static("http://example.test:80/x"))
        .expect("origin known");
    assert_eq!(estimate.timeout, Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn bytes_on_an_idle_connection_stop_the_following() {
    let mut h = Harness::new(false).await;
    h.exchange();
    h.push_read(Ok(b"HTTP/1.1 408 Request Timeout\r\n"));
    assert!(matches!(h.read(), Poll::Ready(Ok(_))));
    assert_eq!(h.facts(), None, "the exchange is no longer known");
    let stats = h.connector.stats();
    assert_eq!((stats.server_closes, stats.untracked), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_due_connection_is_ended_only_while_idle() {
    let mut h = Harness::new(false).await;
    h.exchange();
    // Nothing is known about the origin: retired after the default 90 s.
    h.write(&POST[..10]);
    tokio::time::sleep(Duration::from_secs(100)).await;
    h.io.state.conn.request_retire();
    assert!(h.read().is_pending(), "a request is in progress");
    h.write(&POST[10..]);
    h.push_read(Ok(OK));
    assert!(matches!(h.read(), Poll::Ready(Ok(b)) if b == OK));
    assert_eq!(h.connector.stats().retired, 0);

    // Idle again: a new retire time, 90 s from now. A stale request is
    // ignored...
    h.io.state.conn.request_retire();
    assert!(h.read().is_pending());
    // ...and the driver's own, at the retire time, ends the connection.
    tokio::time::sleep(Duration::from_secs(91)).await;
    assert!(matches!(h.read(), Poll::Ready(Ok(b)) if b.is_empty()));
    assert_eq!(h.connector.stats().retired, 1);
    // Every later read is EOF too, without touching the socket.
    h.push_read(Ok(b"HTTP/1.1 200 OK\r\n"));
    assert!(matches!(h.read(), Poll::Ready(Ok(b)) if b.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn an_idle_read_retires_by_the_estimate_published_since_the_connection_went_idle() {
    let mut h = Harness::new(false).await;
    h.exchange();
    // Idle with the default 90 s. The origin then says 1 s; the driver's
    // wake-up is taken away, so only the idle read's own check is left.
    let hint = KeepAlive {
        timeout: Some(Duration::from_secs(1)),
        max: None,
    };
    let origin = h.io.state.origin.clone();
    h.io.state
        .shared
        .observe(&origin, h.io.state.slot, Evidence::KeepAlive(hint), now());
    h.io.state.conn.take_retire();
    assert!(h.read().is_pending(), "not due yet");
    tokio::time::sleep(Duration::from_secs(2)).await;
    h.io.state.conn.take_retire();
    assert!(matches!(h.read(), Poll::Ready(Ok(b)) if b.is_empty()));
    assert_eq!(h.connector.stats().retired, 1);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_max_zero_retires_the_connection_at_once() {
    let mut h = Harness::new(false).await;
    h.write(POST);
    h.push_read(Ok(
        b"HTTP/1.1 200 OK\r\nkeep-alive: timeout=5, max=0\r\ncontent-length: 0\r\n\r\n",
    ));
    assert!(matches!(h.read(), Poll::Ready(Ok(_))));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(matches!(h.read(), Poll::Ready(Ok(b)) if b.is_empty()));
    assert_eq!(h.connector.stats().retired, 1);
}

#[tokio::test(start_paused = true)]
async fn http2_passes_through_untouched() {
    let mut h = Harness::new(true).await;
    let connected = h.io.connected();
    assert!(connected.is_negotiated_h2());
    assert!(!h.io.info().is_followed());
    h.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    h.push_read(Ok(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"));
    assert!(matches!(h.read(), Poll::Ready(Ok(b)) if b.len() == 9));
    tokio::time::sleep(Duration::from_secs(100)).await;
    h.io.state.conn.request_retire();
    assert!(h.read().is_pending(), "never ended by the adapter");
    let stats = h.connector.stats();
    assert_eq!((stats.untracked, stats.retired), (1, 0));
    assert_eq!(h.script.lock().unwrap().written.len(), 24);
}

#[tokio::test(start_paused = true)]
async fn a_clean_close_racing_a_reused_request_is_learned() {
    let mut h = Harness::new(false).await;
    h.exchange();
    tokio::time::sleep(Duration::from_millis(250)).await;
    h.write(POST);
    tokio::time::sleep(Duration::from_millis(1)).await;
    h.push_read(Ok(b""));
    assert!(matches!(h.read(), Poll::Ready(Ok(b)) if b.is_empty()));
    assert_eq!(h.connector.stats().server_closes, 1);
    let estimate = h
        .connector
        .estimate(&Uri::from_static("http://example.test/"))
        .expect("origin known");
    assert_eq!(
        estimate.timeout,
        Duration::from_millis(250),
        "the idle time when the request the close crossed went out"
    );
}

#[tokio::test(start_paused = true)]
async fn closes_that_say_nothing_about_the_idle_timeout_are_not_learned() {
    // A reset over a request: servers also reset over requests they could
    // not handle.
    let mut h = Harness::new(false).await;
    h.exchange();
    h.write(POST);
    h.push_read(Err(io::ErrorKind::ConnectionReset.into()));
    assert!(matches!(h.read(), Poll::Ready(Err(_))));
    // A close after part of the response.
    let mut started = Harness::new(false).await;
    started.exchange();
    started.write(POST);
    started.push_read(Ok(b"HTTP/1.1 200 OK\r\n"));
    started.push_read(Ok(b""));
    assert!(matches!(started.read(), Poll::Ready(Ok(_))));
    assert!(matches!(started.read(), Poll::Ready(Ok(b)) if b.is_empty()));
    // The close a `Connection: close` response announced.
    let mut announced = Harness::new(false).await;
    announced.exchange();
    announced.write(POST);
    announced.push_read(Ok(
        b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
    ));
    announced.push_read(Ok(b""));
    assert!(matches!(announced.read(), Poll::Ready(Ok(_))));
    assert!(matches!(announced.read(), Poll::Ready(Ok(b)) if b.is_empty()));
    // A fresh connection's close.
    let mut fresh = Harness::new(false).await;
    fresh.write(POST);
    fresh.push_read(Ok(b""));
    assert!(matches!(fresh.read(), Poll::Ready(Ok(b)) if b.is_empty()));
    for harness in [h, started, announced, fresh] {
        assert_eq!(harness.connector.stats().server_closes, 0);
    }
}

/// Counts its wakes.
struct Count(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn every_retire_request_wakes_the_reader_it_was_set_for() {
    let conn = ConnShared::new();
    // Before a waker is set, a request only leaves the flag for the reader.
    conn.request_retire();
    assert!(conn.take_retire());
    assert!(!conn.take_retire());

    let count = Arc::new(Count(0.into()));
    let waker = Waker::from(Arc::clone(&count));
    conn.set_waker(&waker);
    conn.set_waker(&waker.clone());
    // Waking does not use the waker up: the reader sets it once, and every
    // later request still reaches it.
    conn.request_retire();
    conn.request_retire();
    assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(conn.take_retire());
}
