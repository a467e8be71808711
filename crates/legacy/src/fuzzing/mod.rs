//! Hooks for the differential fuzz target and its corpus replay test.
//!
//! Not a public API: enabled by the `fuzzing` feature, hidden from the docs.
//!
//! [`tracker_differential`] runs hyper's real HTTP/1 client
//! (`hyper::client::conn::http1`) over an in-memory connection and feeds the
//! tracker exactly the bytes hyper writes and exactly the bytes the
//! connection hands to hyper, then checks that the two agree:
//!
//! * whenever hyper completes a response, the tracker has completed the same
//!   number of responses (so it ended the message inside the bytes hyper
//!   had), or it has stopped tracking;
//! * whenever hyper waits for more of a message and nothing else can happen,
//!   the tracker does not call the connection idle;
//! * between messages, the tracker calls the connection idle exactly when
//!   hyper keeps it for the next request, or it stopped for a reason that
//!   is not a disagreement (a size limit, an exchange it does not follow).
//!   hyper only keeps a connection when every byte the server sent so far
//!   belonged to the finished messages, so this pins the message end to
//!   the same byte: a tracker that ended a message early sees the rest as
//!   stray bytes and stops, which hyper's reuse then exposes;
//! * when hyper fails an exchange, the tracker does not call the connection
//!   idle (it stopped, or still waits for the message to end);
//! * the tracker counted every byte hyper wrote for the request, and saw the
//!   same status and version as hyper.

mod wire;

use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http_body::Body as _;
use hyper::client::conn::http1::SendRequest;

use crate::tracker::StopReason;
use wire::{MockIo, RequestBody, Wire};

/// Separates the response segments in a fuzz input. Segment `i` reaches
/// hyper only after hyper began writing request `i`, like a server that
/// answers each request once it arrives.
pub const SEGMENT_SEPARATOR: &[u8] = b"\n--8<--\n";

/// The requests a fuzz input can make hyper send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// `GET /`, no body.
    Get,
    /// `HEAD /`.
    Head,
    /// `POST /` with an 11-byte body (`Content-Length`).
    PostLength,
    /// `POST /` with a body of unknown length (chunked).
    PostChunked,
    /// `CONNECT example.com:443`.
    Connect,
    /// `GET /` with `Connection: close`.
    GetClose,
    /// `GET /` as HTTP/1.0.
    GetHttp10,
    /// `GET /` asking for a protocol upgrade.
    GetUpgrade,
}

impl Request {
    const ALL: [Request; 8] = [
        Request::Get,
        Request::Head,
        Request::PostLength,
        Request::PostChunked,
        Request::Connect,
        Request::GetClose,
        Request::GetHttp10,
        Request::GetUpgrade,
    ];

    fn from_byte(byte: u8) -> Request {
        Request::ALL[usize::from(byte) % Request::ALL.len()]
    }

    fn to_byte(self) -> u8 {
        // The position in `ALL`; there are fewer than 256 variants.
        Request::ALL.iter().position(|r| *r == self).unwrap_or(0) as u8
    }

    fn build(self) -> http::Request<RequestBody> {
        let builder = http::Request::builder().uri("/");
        let builder = match self {
            Request::Get => builder,
            Request::Head => builder.method(http::Method::HEAD),
            Request::PostLength | Request::PostChunked => builder.method(http::Method::POST),
            Request::Connect => builder.method(http::Method::CONNECT).uri("example.com:443"),
            Request::GetClose => builder.header(http::header::CONNECTION, "close"),
            Request::GetHttp10 => builder.version(http::Version::HTTP_10),
            Request::GetUpgrade => builder
                .header(http::header::CONNECTION, "upgrade")
                .header(http::header::UPGRADE, "websocket"),
        };
        let body = match self {
            Request::PostLength => RequestBody::sized(&[b"hello=world"]),
            Request::PostChunked => RequestBody::streamed(&[b"abc", b"defg"]),
            _ => RequestBody::sized(&[]),
        };
        builder
            .body(body)
            .unwrap_or_else(|_| http::Request::new(RequestBody::sized(&[])))
    }
}

/// Encodes a fuzz input: the requests to send (at most four), a seed that
/// picks how the response bytes are split into reads (`seed % 4`: one byte
/// at a time, up to 7, up to 300, everything available), and the response
/// segments.
pub fn encode(requests: &[Request], split_seed: u8, segments: &[&[u8]]) -> Vec<u8> {
    let requests = &requests[..requests.len().clamp(1, 4)];
    let mut out = vec![(requests.len() - 1) as u8];
    out.extend(requests.iter().map(|r| r.to_byte()));
    out.push(split_seed);
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(SEGMENT_SEPARATOR);
        }
        out.extend_from_slice(segment);
    }
    out
}

/// A decoded fuzz input.
#[derive(Debug)]
struct Input {
    requests: Vec<Request>,
    split_seed: u8,
    segments: Vec<Vec<u8>>,
}

impl Input {
    fn decode(data: &[u8]) -> Option<Input> {
        let (&count, rest) = data.split_first()?;
        let count = usize::from(count % 4) + 1;
        let requests = rest
            .get(..count)?
            .iter()
            .map(|&b| Request::from_byte(b))
            .collect();
        let (&split_seed, mut stream) = rest.get(count..)?.split_first()?;
        let mut segments = Vec::new();
        while let Some(at) = stream
            .windows(SEGMENT_SEPARATOR.len())
            .position(|w| w == SEGMENT_SEPARATOR)
        {
            segments.push(stream[..at].to_vec());
            stream = &stream[at + SEGMENT_SEPARATOR.len()..];
        }
        segments.push(stream.to_vec());
        Some(Input {
            requests,
            split_seed,
            segments,
        })
    }
}

/// How long (in paused tokio time) nothing may happen before the harness
/// concludes hyper waits for bytes that will not come.
const QUIET: Duration = Duration::from_secs(1);

/// Runs one differential case; panics when hyper and the tracker disagree.
pub fn tracker_differential(data: &[u8]) {
    report(data);
}

/// What one case exercised, so a test can tell that the checks ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Responses hyper completed.
    pub completed: u32,
    /// Of those, responses after which hyper kept the connection and the
    /// tracker, still tracking, agreed it was idle.
    pub agreed_idle: u32,
    /// Times hyper waited for bytes that never came (the server then
    /// closed).
    pub stuck: u32,
}

/// [`tracker_differential`], returning what the case exercised.
pub fn report(data: &[u8]) -> Report {
    let Some(input) = Input::decode(data) else {
        return Report::default();
    };
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
    else {
        return Report::default();
    };
    runtime.block_on(async {
        // A safety net against a harness hang; hyper reaches a verdict in a
        // few virtual seconds.
        tokio::time::timeout(Duration::from_secs(3600), run(input))
            .await
            .unwrap_or_default()
    })
}

async fn run(input: Input) -> Report {
    let wire = Arc::new(Mutex::new(Wire::new(&input.segments, input.split_seed)));
    let io = MockIo::new(Arc::clone(&wire));
    let Ok((mut sender, conn)) = hyper::client::conn::http1::handshake::<_, RequestBody>(io).await
    else {
        return Report::default();
    };
    let mut report = Report::default();
    let driver = async {
        for (index, request) in input.requests.iter().enumerate() {
            if !exchange(&wire, &mut sender, index, *request, &mut report).await {
                break;
            }
        }
        lock(&wire).force_eof();
        drop(sender);
    };
    // hyper's own verdict on the connection (often an error here) is not
    // what this harness checks.
    let (_connection, ()) = futures_util::future::join(conn, driver).await;
    report
}

fn lock(wire: &Mutex<Wire>) -> MutexGuard<'_, Wire> {
    wire.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Sends one request and reads its response; returns whether hyper keeps
/// the connection for another request.
async fn exchange(
    wire: &Mutex<Wire>,
    sender: &mut SendRequest<RequestBody>,
    index: usize,
    request: Request,
    report: &mut Report,
) -> bool {
    let written_before = lock(wire).expect_request();
    let mut sending = pin!(sender.send_request(request.build()));
    let response = match tokio::time::timeout(QUIET, &mut sending).await {
        Ok(response) => response,
        Err(_) => {
            stuck(wire, index, report);
            sending.await
        }
    };
    let Ok(response) = response else {
        hyper_failed(wire, index).await;
        return false;
    };
    let (status, http10) = (
        response.status().as_u16(),
        response.version() == http::Version::HTTP_10,
    );
    let mut body = response.into_body();
    loop {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx));
        match tokio::time::timeout(QUIET, frame).await {
            Err(_) => stuck(wire, index, report),
            Ok(None) => break,
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(_))) => {
                hyper_failed(wire, index).await;
                return false;
            }
        }
    }

    // hyper completed response `index`.
    report.completed += 1;
    {
        let wire = lock(wire);
        let tracker = wire.tracker();
        if tracker.is_tracking() {
            assert_eq!(
                tracker.messages_completed(),
                index as u64 + 1,
                "hyper completed response {index}, the tracker did not ({tracker:?})"
            );
            assert_eq!(
                tracker.bytes_written_current(),
                wire.written() - written_before,
                "bytes written for request {index}"
            );
            let head = tracker.response_head().map(|h| (h.status, h.http10));
            assert_eq!(head, Some((status, http10)), "response head {index}");
        }
    }

    // Let hyper settle: it reads on while idle, to notice a close or stray
    // bytes.
    tokio::time::sleep(QUIET).await;
    let hyper_reuses = !sender.is_closed() && sender.is_ready();
    let wire = lock(wire);
    let tracker = wire.tracker();
    match tracker.stop_reason() {
        None => {
            assert_eq!(
                tracker.is_idle(),
                hyper_reuses,
                "after response {index}: tracker idle vs hyper reuses ({tracker:?})"
            );
            if hyper_reuses {
                // hyper consumed every byte it was handed.
                assert_eq!(
                    wire.last_message_end(),
                    Some(wire.delivered()),
                    "where response {index} ended"
                );
            }
            report.agreed_idle += u32::from(hyper_reuses);
        }
        // Limits below hyper's, and exchanges the tracker declines to
        // follow: stopping early is always allowed.
        Some(StopReason::TooLarge | StopReason::Unsupported(_)) => {}
        // hyper kept the connection, so every byte so far belonged to
        // messages it accepted: the tracker must not have found stray bytes
        // (it ended a message early) or rejected one of them.
        Some(reason) => assert!(
            !hyper_reuses,
            "hyper reuses the connection after response {index}, \
             but the tracker stopped: {reason} ({tracker:?})"
        ),
    }
    hyper_reuses
}

/// hyper failed the exchange (it rejected the response, or the server
/// closed mid-message) and closes the connection: the tracker must not call
/// it idle, or it accepted something hyper does not.
async fn hyper_failed(wire: &Mutex<Wire>, index: usize) {
    tokio::time::sleep(QUIET).await;
    let wire = lock(wire);
    assert!(
        !wire.tracker().is_idle(),
        "hyper failed exchange {index}, the tracker calls the connection idle ({:?})",
        wire.tracker()
    );
}

/// Nothing moved for [`QUIET`] while hyper waits for the rest of a message:
/// the tracker must not think the connection idle. Then the server closes,
/// which ends a close-delimited body and fails anything else.
fn stuck(wire: &Mutex<Wire>, index: usize, report: &mut Report) {
    report.stuck += 1;
    let mut wire = lock(wire);
    assert!(
        !wire.tracker().is_idle(),
        "tracker idle while hyper waits for more of response {index} ({:?})",
        wire.tracker()
    );
    wire.force_eof();
}
