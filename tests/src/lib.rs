//! Shared support for the integration tests: the race driver that runs the
//! same POST schedule through any client, and error classification.
//!
//! Every scenario runs over real loopback sockets against
//! `freshpool-origin`, and is bounded in requests and seconds.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use freshpool_origin::Origin;
use freshpool_testkit::XorShift;

mod clients;
mod hang;
pub mod story;

pub use clients::{run_freshpool, run_retry_client, run_swapped};
pub use hang::{Captured, Failure, Hang};
pub mod tls;

/// A schedule of POSTs: `tasks` concurrent senders, each sending
/// `per_task` requests with `gap()` between the end of one and the start
/// of the next. Senders start staggered over one interval, so their idle
/// deadlines do not all coincide.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Concurrent senders.
    pub tasks: usize,
    /// Requests per sender.
    pub per_task: usize,
    /// How the gap before each request is drawn.
    pub gaps: Gaps,
    /// Seed of the jitter.
    pub seed: u64,
}

/// How the idle gap before each request is drawn.
#[derive(Debug, Clone, Copy)]
pub enum Gaps {
    /// `interval ± jitter`, uniformly.
    Around {
        /// The mean gap.
        interval: Duration,
        /// The largest deviation either way.
        jitter: Duration,
    },
    /// Uniformly from `[0, max]`.
    Uniform {
        /// The largest gap.
        max: Duration,
    },
    /// Uniformly from `[low, high]`: wide enough to span a client's retire
    /// time and the server's timeout, so that reuse given up shows.
    Between {
        /// The shortest gap.
        low: Duration,
        /// The longest gap.
        high: Duration,
    },
}

impl Gaps {
    fn stagger(&self) -> Duration {
        match *self {
            Gaps::Around { interval, .. } => interval,
            Gaps::Uniform { max } => max / 2,
            Gaps::Between { low, high } => (low + high) / 2,
        }
    }

    fn draw(&self, rng: &mut XorShift) -> Duration {
        match *self {
            Gaps::Around { interval, jitter } => rng.around(interval, jitter),
            Gaps::Uniform { max } => rng.between(Duration::ZERO, max),
            Gaps::Between { low, high } => rng.between(low, high),
        }
    }
}

/// What one exchange of a race gave: its result, and the client's retire
/// time when it was sent.
#[derive(Debug)]
pub struct Outcome {
    /// `Ok(reused)`, or what went wrong.
    pub result: Result<bool, Failure>,
    /// How long the client let a connection idle before retiring it, when
    /// the request was sent (`None` for a client that does not retire).
    pub retire: Option<Duration>,
}

impl From<Result<bool, Failure>> for Outcome {
    fn from(result: Result<bool, Failure>) -> Outcome {
        Outcome {
            result,
            retire: None,
        }
    }
}

/// What one request of the schedule saw.
#[derive(Debug, Clone)]
pub struct Sent {
    /// Which sender (and client) sent it.
    pub task: usize,
    /// The gap before it.
    pub gap: Duration,
    /// `Ok(reused)` or the error's kind ([`HANG`] for a hang).
    pub result: Result<bool, String>,
    /// The client's retire time when it was sent (see [`Outcome`]).
    pub retire: Option<Duration>,
}

/// The outcome of a schedule against one origin.
#[derive(Debug, Clone)]
pub struct Report {
    /// The client's name, for printing.
    pub name: String,
    /// Requests sent.
    pub sent: u64,
    /// Requests that got a complete response.
    pub ok: u64,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Requests that got neither a response nor an error within
    /// [`BOUND`], with their connections' stories. Not errors: a test
    /// fails on any of freshpool's (see [`assert_no_hangs`]).
    pub hangs: Vec<Hang>,
    /// The client is the reference (hyper-util as is): its hangs are
    /// hyper-util's own, printed with their stories but not asserted.
    pub reference: bool,
    /// Requests the origin processed.
    pub processed: u64,
    /// Processings beyond the first of any request id.
    pub duplicates: u64,
    /// Successful requests whose id the origin never processed.
    pub lost: u64,
    /// Connections the origin accepted.
    pub connections: u64,
    /// Every request, in completion order.
    pub requests: Vec<Sent>,
}

impl Report {
    /// The same report, marked as the reference's (hyper-util as is).
    pub fn into_reference(self) -> Report {
        Report {
            reference: true,
            ..self
        }
    }

    /// All errors, whatever their kind.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Errors on requests sent once the client had observed a server
    /// close.
    pub fn errors_after_learning(&self) -> u64 {
        self.errors
            .iter()
            .filter(|(kind, _)| kind.ends_with(AFTER_LEARNING))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests that succeeded on a reused connection.
    pub fn reused(&self) -> u64 {
        self.requests
            .iter()
            .filter(|sent| sent.result == Ok(true))
            .count() as u64
    }

    /// The oracle: requests that could safely have reused a connection,
    /// those whose gap was below the server's real idle `timeout` (each
    /// sender's first request has nothing to reuse).
    pub fn oracle(&self, timeout: Duration) -> u64 {
        self.requests
            .iter()
            .filter(|sent| !sent.gap.is_zero() && sent.gap < timeout)
            .count() as u64
    }

    /// How the client kept the reuse its own retire time allows: of the
    /// requests whose gap was below the client's retire time (when they
    /// were sent) less `slack`, how many reused a connection, and how many
    /// there were. `slack` covers what the race itself adds to a gap (the
    /// body read before it, the timer's rounding and wake-up after it).
    pub fn kept_below_retire(&self, slack: Duration) -> (u64, u64) {
        let eligible: Vec<&Sent> = self
            .requests
            .iter()
            .filter(|sent| {
                !sent.gap.is_zero() && sent.retire.is_some_and(|retire| sent.gap + slack < retire)
            })
            .collect();
        let reused = eligible
            .iter()
            .filter(|sent| sent.result == Ok(true))
            .count();
        (reused as u64, eligible.len() as u64)
    }

    /// Reuse ÷ oracle: how much of the safely possible reuse the client
    /// kept. A client that never reuses scores 0; hyper-util, which reuses
    /// whenever the connection is still open, scores about 1 (and pays in
    /// errors).
    pub fn efficiency(&self, timeout: Duration) -> f64 {
        self.reused() as f64 / self.oracle(timeout).max(1) as f64
    }
}

/// What a race adds to a sender's gap before its request reaches the
/// connection: the timer's rounding up to its 1 ms tick, and the wake-up
/// and request path after it (well under a millisecond when calm).
pub const RACE_SLACK: Duration = Duration::from_millis(2);

/// Asserts that `report` kept at least `floor` of the reuse the oracle
/// allows against a server whose idle timeout is `timeout`, next to
/// `reference` (hyper-util in the same run), whose figure is printed.
pub fn assert_efficiency(report: &Report, reference: &Report, timeout: Duration, floor: f64) {
    let ours = report.efficiency(timeout);
    let theirs = reference.efficiency(timeout);
    let (kept, below) = report.kept_below_retire(RACE_SLACK);
    println!(
        "  efficiency (reuse / oracle) {}: {ours:.3} ({} / {}); {}: {theirs:.3}; reused below its retire time: {kept} / {below}",
        report.name,
        report.reused(),
        report.oracle(timeout),
        reference.name,
    );
    assert!(
        report.oracle(timeout) > 0,
        "the schedule gives nothing to reuse: {report}"
    );
    assert!(
        ours >= floor,
        "{} kept {ours:.3} of the possible reuse (floor {floor}), {} {theirs:.3}: {report}",
        report.name,
        reference.name
    );
}

/// Asserts that `report` reused at least `floor` of the requests its own
/// retire times allowed (those whose gap, with [`RACE_SLACK`], was below
/// the retire time in effect when they were sent), and that there were
/// some; the figure against the oracle and `reference`'s (hyper-util in
/// the same run) are printed beside it.
///
/// Unlike [`assert_efficiency`], this holds however late the machine runs:
/// a loaded runtime widens the client's margin (its measured lateness is
/// part of it), which costs reuse against the oracle but not against the
/// client's own retire time. For races at the knife edge of the timeout,
/// where the oracle's figure measures the machine as much as the client.
pub fn assert_reuse_below_retire(
    report: &Report,
    reference: &Report,
    timeout: Duration,
    floor: f64,
) {
    let (kept, below) = report.kept_below_retire(RACE_SLACK);
    println!(
        "  reuse {}: {kept} of {below} below its own retire time; efficiency (reuse / oracle) {:.3} ({} / {}); {}: {:.3}",
        report.name,
        report.efficiency(timeout),
        report.reused(),
        report.oracle(timeout),
        reference.name,
        reference.efficiency(timeout),
    );
    assert!(
        below > 0,
        "{}: no request was below its own retire time: {report}",
        report.name
    );
    assert!(
        kept as f64 >= floor * below as f64,
        "{} reused {kept} of the {below} requests below its own retire time (floor {floor}): {report}",
        report.name
    );
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<24} sent {:>5}  ok {:>5}  errors {:>4} {:?}  hangs {}  processed {:>5}  duplicates {}  lost {}  connections {}",
            self.name,
            self.sent,
            self.ok,
            self.error_count(),
            self.errors,
            self.hangs.len(),
            self.processed,
            self.duplicates,
            self.lost,
            self.connections,
        )
    }
}

/// Runs `schedule` against `origin`. Each sender gets its own client from
/// `make()` (its own pool, as separate services calling one backend do),
/// and sends each POST with `send(url, request_id)`, which resolves to
/// `Ok(reused)` once the whole response body has been read, or to a
/// [`Failure`]: an error kind, or a [`Hang`] (see [`exchange`]), with the
/// client's retire time (an [`Outcome`]).
pub async fn race<M, F, Fut>(name: &str, origin: &Origin, schedule: Schedule, make: M) -> Report
where
    M: Fn() -> F,
    F: Fn(String, String) -> Fut + Send + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    story::install();
    let url = format!("{}/race", origin.base_url());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let ids = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let stagger = schedule.gaps.stagger();
    for task in 0..schedule.tasks {
        let send = make();
        let url = url.clone();
        let requests = Arc::clone(&requests);
        let ids = Arc::clone(&ids);
        let mut rng = XorShift::new(schedule.seed ^ (task as u64 + 1) << 32);
        let start = stagger.mul_f64(task as f64 / schedule.tasks as f64);
        tasks.spawn(async move {
            tokio::time::sleep(start).await;
            for i in 0..schedule.per_task {
                let gap = if i == 0 {
                    Duration::ZERO
                } else {
                    schedule.gaps.draw(&mut rng)
                };
                tokio::time::sleep(gap).await;
                let id = format!("{task}-{}", ids.fetch_add(1, Ordering::Relaxed));
                let outcome = send(url.clone(), id.clone()).await;
                let retire = outcome.retire;
                let (result, hang) = match outcome.result {
                    Ok(reused) => (Ok(reused), None),
                    Err(Failure::Error(kind)) => (Err(kind), None),
                    Err(Failure::Hang(hang)) => {
                        let hang = Hang {
                            request_id: id,
                            ..*hang
                        };
                        (Err(HANG.to_owned()), Some(hang))
                    }
                };
                requests.lock().expect("requests lock").push((
                    Sent {
                        task,
                        gap,
                        result,
                        retire,
                    },
                    hang,
                ));
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("a race task panicked");
    }
    let (requests, hangs): (Vec<Sent>, Vec<Option<Hang>>) =
        std::mem::take(&mut *requests.lock().expect("requests lock"))
            .into_iter()
            .unzip();
    let hangs: Vec<Hang> = hangs
        .into_iter()
        .flatten()
        .map(|hang| hang.with_server(origin))
        .collect();
    let mut errors = BTreeMap::new();
    let mut ok = 0;
    for sent in &requests {
        match &sent.result {
            Ok(_) => ok += 1,
            Err(kind) if kind == HANG => {}
            Err(kind) => *errors.entry(kind.clone()).or_insert(0) += 1,
        }
    }
    let stats = origin.stats();
    Report {
        name: name.to_owned(),
        sent: requests.len() as u64,
        ok,
        errors,
        hangs,
        reference: false,
        processed: stats.requests_processed,
        duplicates: stats.duplicate_requests,
        lost: ok.saturating_sub(stats.requests_processed),
        connections: stats.connections_accepted,
        requests,
    }
}

/// Names the kind of an HTTP client error from its source chain: what a
/// user would search for.
pub fn error_kind(error: &(dyn StdError + 'static)) -> String {
    let mut current = Some(error);
    let mut kind = String::from("other");
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionReset => "connection reset".into(),
                std::io::ErrorKind::BrokenPipe => "broken pipe".into(),
                std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
                other => format!("io: {other:?}"),
            };
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() {
                kind = "closed before message completed".into();
            } else if h.is_canceled() {
                kind = "canceled".into();
            } else if h.is_parse() {
                kind = "parse error".into();
            } else {
                kind = format!("hyper: {h}");
            }
        }
        current = e.source();
    }
    kind
}

/// A freshpool client over hyper-util's `HttpConnector` sending full bodies.
pub type TestClient = freshpool::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

/// Sends `method` to `url` with the given extra headers and reads the whole
/// response; returns the status, the origin's `x-connection-id`, and the
/// body length.
pub async fn send(
    client: &TestClient,
    method: http::Method,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<(http::StatusCode, u64, usize), freshpool::Error> {
    use http_body_util::BodyExt;
    let mut req = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"payload",
        )))
        .expect("valid request");
    let response = client.request(req).await?;
    let status = response.status();
    let conn = response
        .headers()
        .get("x-connection-id")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(u64::MAX);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("response body")
        .to_bytes();
    Ok((status, conn, body.len()))
}

/// Marks an error that happened after the client had observed a server
/// close: from then on, learning must prevent every failure.
pub const AFTER_LEARNING: &str = " [after a close was observed]";

/// No request of a race may hang: one that gets no complete response and
/// no error in this long is a [`Hang`]. Every race's requests are answered
/// within a few idle timeouts (a second at most) even on a loaded 2-core
/// machine, so ten seconds is only ever reached by a request nothing will
/// ever answer.
pub const BOUND: Duration = Duration::from_secs(10);

/// The error kind a hang has in [`Sent::result`]. It is never counted in
/// [`Report::errors`].
pub const HANG: &str = "hang";

/// Bounds one exchange of a race by [`BOUND`]: past it, a [`Hang`] on the
/// connection `captured` names.
pub async fn bounded(
    captured: Captured,
    exchange: impl Future<Output = Result<bool, String>>,
) -> Result<bool, Failure> {
    match tokio::time::timeout(BOUND, exchange).await {
        Ok(result) => result.map_err(Failure::Error),
        Err(_elapsed) => Err(Failure::Hang(Box::new(captured.hang()))),
    }
}

/// Tags an error kind with [`AFTER_LEARNING`] when the client had learned.
pub fn tagged(kind: String, learned: bool) -> String {
    if learned { kind + AFTER_LEARNING } else { kind }
}

/// The race's POST, carrying its request id (and, when `keyed`, the same
/// value as its `Idempotency-Key`).
pub fn post(
    url: String,
    id: String,
    keyed: bool,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    let mut req = http::Request::post(url).header("x-request-id", id.as_str());
    if keyed {
        req = req.header("idempotency-key", id.as_str());
    }
    req.body(http_body_util::Full::new(bytes::Bytes::from_static(
        b"{\"order\": 1}",
    )))
    .expect("valid request")
}

/// Whether the origin served this response on a connection that had
/// already served a request.
pub fn reused(response: &http::response::Parts) -> bool {
    response
        .headers
        .get("x-connection-requests")
        .and_then(|v| v.to_str().ok()?.parse::<u32>().ok())
        .is_some_and(|n| n > 1)
}

/// An origin on loopback with the given idle behaviour.
pub async fn origin(
    idle: Duration,
    close: freshpool_origin::CloseMode,
    advertise: freshpool_origin::Advertise,
) -> Origin {
    Origin::builder()
        .idle_timeout(idle)
        .close_mode(close)
        .advertise(advertise)
        .start()
        .await
        .expect("origin starts on loopback")
}

/// No request hung; on a hang, the stories of the hung requests'
/// connections are the message.
pub fn assert_no_hangs(report: &Report) {
    if report.hangs.is_empty() {
        return;
    }
    let mut stories = String::new();
    for hang in &report.hangs {
        stories.push_str(&hang.to_string());
    }
    panic!(
        "{} request(s) of {} hung: {report}\n{stories}",
        report.hangs.len(),
        report.name
    );
}

/// No request hung (the reference's hangs are printed instead: they are
/// hyper-util's), every success was processed once, and nothing twice.
pub fn assert_exactly_once(report: &Report) {
    if report.reference {
        for hang in &report.hangs {
            println!("  the reference, {}, hung:\n{hang}", report.name);
        }
    } else {
        assert_no_hangs(report);
    }
    assert_eq!(report.duplicates, 0, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    assert_eq!(
        report.processed, report.ok,
        "every success processed exactly once: {report}"
    );
}

/// The baseline: hyper-util's legacy `Client` as is, one per sender.
pub async fn run_hyper_util(name: &str, origin: &Origin, schedule: Schedule) -> Report {
    run_reference(name, origin, schedule, || {
        hyper_util::client::legacy::connect::HttpConnector::new()
    })
    .await
}

/// The baseline over another connector (`connector()`, one per sender): the
/// report is marked as the reference's.
pub async fn run_reference<C>(
    name: &str,
    origin: &Origin,
    schedule: Schedule,
    connector: impl Fn() -> C,
) -> Report
where
    C: hyper_util::client::legacy::connect::Connect + Clone + Send + Sync + 'static,
{
    let report = race(name, origin, schedule, || {
        let client: hyper_util::client::legacy::Client<C, http_body_util::Full<bytes::Bytes>> =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(connector());
        move |url, id| {
            let client = client.clone();
            async move {
                let mut req = post(url, id, false);
                let captured = Captured::legacy(&mut req);
                exchange(captured, client.request(req), false).await.into()
            }
        }
    })
    .await;
    report.into_reference()
}

/// Awaits `response` and reads its body to the end; an error becomes its
/// kind. For tests that send one request at a time.
pub async fn read_response<B, E>(
    response: impl Future<Output = Result<http::Response<B>, E>>,
) -> Result<(), String>
where
    B: hyper::body::Body,
    B::Error: StdError + 'static,
    E: StdError + 'static,
{
    read_body(response.await.map_err(|e| error_kind(&e))?).await
}

/// Reads a response's body to its end; an error becomes its kind.
pub async fn read_body<B>(response: http::Response<B>) -> Result<(), String>
where
    B: hyper::body::Body,
    B::Error: StdError + 'static,
{
    use http_body_util::BodyExt;
    response
        .into_body()
        .collect()
        .await
        .map(drop)
        .map_err(|e| error_kind(&e))
}

/// One exchange of a race: awaits `response`, reads its body to the end,
/// and says whether the connection was reused. An error becomes its kind,
/// [tagged](tagged) when the client had `learned`; the whole exchange is
/// [bounded](bounded), and a hang names the connection `captured` saw.
pub async fn exchange<B, E>(
    captured: Captured,
    response: impl Future<Output = Result<http::Response<B>, E>>,
    learned: bool,
) -> Result<bool, Failure>
where
    B: hyper::body::Body,
    B::Error: StdError + 'static,
    E: StdError + 'static,
{
    use http_body_util::BodyExt;
    bounded(captured, async move {
        let response = response
            .await
            .map_err(|e| tagged(error_kind(&e), learned))?;
        let (parts, body) = response.into_parts();
        body.collect()
            .await
            .map_err(|e| tagged(error_kind(&e), learned))?;
        Ok(reused(&parts))
    })
    .await
}
