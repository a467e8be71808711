//! hyper-util's HTTP/2 options and the timer, as `freshpool::Builder`
//! passes them on to hyper, in paused tokio time: a tiny hand-written h2c
//! server records the client's SETTINGS and counts its PINGs, and can
//! leave PINGs unanswered, as a silent or dead peer does.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use freshpool_tests::TestClient;
use http_body_util::{BodyExt, Full};
use hyper::rt::{Sleep, Timer};
use hyper_util::rt::TokioTimer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::sleep;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const HEADERS: u8 = 0x1;
const PING: u8 = 0x6;
const ACK: u8 = 0x1;
/// `END_STREAM | END_HEADERS`.
const END: u8 = 0x5;
/// HPACK: the static table's `:status: 200`.
const STATUS_200: u8 = 0x88;

/// What the server saw of its one connection.
#[derive(Default)]
struct Seen {
    settings: Mutex<Vec<(u16, u32)>>,
    pings: AtomicUsize,
    closed: AtomicBool,
}

/// How the server behaves.
#[derive(Clone, Copy)]
struct Peer {
    /// Answer each request with an empty `200`.
    respond: bool,
    /// Acknowledge PINGs.
    answer_pings: bool,
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .expect("small frame")
        .to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An h2c server for one connection, behaving as `peer` says.
async fn h2_server(peer: Peer) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Seen::default());
    let record = Arc::clone(&seen);
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accept");
        let _ = stream.set_nodelay(true);
        let mut preface = [0u8; PREFACE.len()];
        if stream.read_exact(&mut preface).await.is_err() || preface != PREFACE {
            record.closed.store(true, Ordering::SeqCst);
            return;
        }
        let _ = stream.write_all(&frame(SETTINGS, 0, 0, &[])).await;
        loop {
            let mut head = [0u8; 9];
            if stream.read_exact(&mut head).await.is_err() {
                break;
            }
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let (kind, flags) = (head[3], head[4]);
            let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            if stream.read_exact(&mut payload).await.is_err() {
                break;
            }
            let reply = match kind {
                SETTINGS if flags & ACK == 0 => {
                    let mut settings = record.settings.lock().expect("settings");
                    for pair in payload.chunks_exact(6) {
                        let key = u16::from_be_bytes([pair[0], pair[1]]);
                        let value = u32::from_be_bytes([pair[2], pair[3], pair[4], pair[5]]);
                        settings.push((key, value));
                    }
                    Some(frame(SETTINGS, ACK, 0, &[]))
                }
                HEADERS if peer.respond => Some(frame(HEADERS, END, id, &[STATUS_200])),
                PING if flags & ACK == 0 => {
                    record.pings.fetch_add(1, Ordering::SeqCst);
                    peer.answer_pings.then(|| frame(PING, ACK, 0, &payload))
                }
                _ => None,
            };
            if let Some(reply) = reply
                && stream.write_all(&reply).await.is_err()
            {
                break;
            }
        }
        record.closed.store(true, Ordering::SeqCst);
    });
    (addr, seen)
}

fn h2_client(builder: freshpool::Builder) -> TestClient {
    builder.http2_only(true).build_http().expect("settings")
}

fn get(addr: SocketAddr) -> http::Request<Full<Bytes>> {
    http::Request::get(format!("http://{addr}/h2"))
        .body(Full::default())
        .expect("valid request")
}

/// One request answered in full, leaving the connection idle.
async fn one_exchange(client: &TestClient, addr: SocketAddr) {
    let response = client.request(get(addr)).await.expect("response");
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.expect("body");
}

/// Pings every second and gives up on a missing answer after one more.
fn keep_alive(builder: freshpool::Builder) -> freshpool::Builder {
    builder
        .http2_keep_alive_interval(Duration::from_secs(1))
        .http2_keep_alive_timeout(Duration::from_secs(1))
}

/// Counts the sleeps hyper asks for, and sleeps on tokio's clock.
#[derive(Clone, Default)]
struct CountingTimer(Arc<AtomicUsize>);

impl Timer for CountingTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        TokioTimer::new().sleep(duration)
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        self.0.fetch_add(1, Ordering::Relaxed);
        TokioTimer::new().sleep_until(deadline)
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        TokioTimer::new().reset(sleep, new_deadline);
    }

    fn now(&self) -> Instant {
        TokioTimer::new().now()
    }
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_keep_alive_ping_closes_an_idle_connection_while_idle_pings_are_on() {
    let (addr, seen) = h2_server(Peer {
        respond: true,
        answer_pings: false,
    })
    .await;
    let timer = CountingTimer::default();
    let client = h2_client(
        keep_alive(freshpool::Client::builder())
            .http2_keep_alive_while_idle(true)
            .timer(timer.clone()),
    );
    one_exchange(&client, addr).await;
    assert_eq!(seen.pings.load(Ordering::SeqCst), 0);

    sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        seen.pings.load(Ordering::SeqCst),
        1,
        "pinged after 1 s idle"
    );
    assert!(!seen.closed.load(Ordering::SeqCst));

    sleep(Duration::from_millis(1_000)).await;
    assert!(
        seen.closed.load(Ordering::SeqCst),
        "closed 1 s after the ping"
    );
    assert_eq!(client.stats().total.open, 0);
    assert!(timer.0.load(Ordering::Relaxed) > 0, "hyper used the timer");
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_not_pinged_unless_asked() {
    let (addr, seen) = h2_server(Peer {
        respond: true,
        answer_pings: false,
    })
    .await;
    let client = h2_client(keep_alive(freshpool::Client::builder()));
    one_exchange(&client, addr).await;
    sleep(Duration::from_secs(5)).await;
    assert_eq!(seen.pings.load(Ordering::SeqCst), 0);
    assert!(!seen.closed.load(Ordering::SeqCst));
    // Still usable.
    one_exchange(&client, addr).await;
    assert_eq!(client.stats().total.connections_opened, 1);
}

#[tokio::test(start_paused = true)]
async fn a_request_to_a_silent_server_fails_at_the_keep_alive_timeout() {
    let silent = Peer {
        respond: false,
        answer_pings: false,
    };
    let (addr, seen) = h2_server(silent).await;
    let client = h2_client(keep_alive(freshpool::Client::builder()).retries(0));
    let started = tokio::time::Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(10), client.request(get(addr))).await;
    let error = outcome
        .expect("fails before the test's bound")
        .expect_err("no response ever comes");
    let waited = started.elapsed();
    assert!(
        (Duration::from_secs(2)..Duration::from_millis(2_500)).contains(&waited),
        "ping after 1 s, gave up 1 s later: {waited:?} ({error:?})"
    );
    assert_eq!(seen.pings.load(Ordering::SeqCst), 1);

    // The same silence with pings answered is only a slow server.
    let (addr, seen) = h2_server(Peer {
        answer_pings: true,
        ..silent
    })
    .await;
    let outcome = tokio::time::timeout(Duration::from_secs(10), client.request(get(addr))).await;
    assert!(outcome.is_err(), "still waiting for its response");
    assert!(seen.pings.load(Ordering::SeqCst) >= 5);
    assert!(!seen.closed.load(Ordering::SeqCst));
}

/// The client's SETTINGS, as the server received them.
async fn settings_sent(builder: freshpool::Builder) -> Vec<(u16, u32)> {
    let (addr, seen) = h2_server(Peer {
        respond: true,
        answer_pings: true,
    })
    .await;
    one_exchange(&h2_client(builder), addr).await;
    seen.settings.lock().expect("settings").clone()
}

const INITIAL_WINDOW_SIZE: u16 = 0x4;
const MAX_FRAME_SIZE: u16 = 0x5;
const MAX_HEADER_LIST_SIZE: u16 = 0x6;

fn setting(settings: &[(u16, u32)], key: u16) -> Option<u32> {
    settings
        .iter()
        .rev()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

#[tokio::test(start_paused = true)]
async fn frame_header_and_window_settings_reach_the_server() {
    let default = settings_sent(freshpool::Client::builder()).await;
    assert_eq!(
        setting(&default, INITIAL_WINDOW_SIZE),
        Some(2 * 1024 * 1024)
    );
    assert_eq!(setting(&default, MAX_HEADER_LIST_SIZE), Some(16 * 1024));
    assert_eq!(setting(&default, MAX_FRAME_SIZE), Some(16_384));

    let tuned = settings_sent(
        freshpool::Client::builder()
            .http2_max_frame_size(65_536)
            .http2_max_header_list_size(4_096)
            .http2_initial_stream_window_size(1 << 20),
    )
    .await;
    assert_eq!(setting(&tuned, MAX_FRAME_SIZE), Some(65_536));
    assert_eq!(setting(&tuned, MAX_HEADER_LIST_SIZE), Some(4_096));
    assert_eq!(setting(&tuned, INITIAL_WINDOW_SIZE), Some(1 << 20));

    // The adaptive window starts from the RFC's window, whatever was set.
    let adaptive = settings_sent(
        freshpool::Client::builder()
            .http2_initial_stream_window_size(1 << 20)
            .http2_adaptive_window(true),
    )
    .await;
    assert_eq!(setting(&adaptive, INITIAL_WINDOW_SIZE), Some(65_535));
}
