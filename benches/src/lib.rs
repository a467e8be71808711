//! Shared driving code for the criterion benchmarks in `benches/benches/`.
//!
//! Every throughput bench runs the same way: a number of tasks, each
//! sending its share of the requests one after another over a client of
//! the kind under test, timed as a whole. Keeping that loop in one place
//! keeps the clients' figures comparable.
//!
//! Criterion times each client on its own, one after another, so a change
//! in the machine's load between two clients shows up as a difference
//! between them. The ratios the project tracks come from [`interleave`]
//! instead: the clients run in alternating rounds, each once per round in
//! a rotating order, and each round gives one ratio per pair of clients,
//! measured within a second of each other. The median of those per-round
//! ratios is what [`Ratio`] reports, with their spread.

mod minimal;

pub use minimal::{Addrs, MinimalPool, Pooled, ResponseFuture, minimal_sender};

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// A request on its way, as [`SendOne::send_one`] returns it.
pub type Sending<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What one driving task sends with: one request at a time, each read to
/// the end. A closure returning a `'static` future is one (a pooled
/// client's clone); a bare connection implements it by hand, since its
/// request borrows the connection's `SendRequest`.
pub trait SendOne: Send {
    /// Sends one request and reads its response to the end.
    fn send_one(&mut self) -> Sending<'_>;
}

impl<F> SendOne for F
where
    F: FnMut() -> Sending<'static> + Send,
{
    fn send_one(&mut self) -> Sending<'_> {
        self()
    }
}

/// One task's [`SendOne`].
pub type Sender = Box<dyn SendOne>;

/// Makes one [`Sender`] per driving task (a bare connection connects here).
pub type MakeSender = Box<dyn Fn() -> Pin<Box<dyn Future<Output = Sender>>>>;

/// Runs `iters` requests split over `concurrency` tasks, each task sending
/// its share one after another with a sender from `make`, and returns the
/// wall time of the sending (making the senders is not timed).
pub async fn drive<F, Fut>(iters: u64, concurrency: u64, make: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = Sender>,
{
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        senders.push(make().await);
    }
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, mut send) in senders.into_iter().enumerate() {
        let share = iters / concurrency + u64::from((i as u64) < iters % concurrency);
        tasks.spawn(async move {
            for _ in 0..share {
                send.send_one().await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("bench task");
    }
    start.elapsed()
}

/// The runtime the clients of every throughput bench run on: one worker,
/// so that the server (on a thread of its own) has the other core of a
/// small machine, as `poolbench throughput` does it.
pub fn client_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A server that answers every request with the same bytes, on a thread of
/// its own: it costs almost nothing per request, so a bench measures the
/// client.
pub fn fixed_server() -> freshpool_origin::FixedServer {
    freshpool_origin::FixedServer::start().expect("fixed-response server")
}

/// A [`MakeSender`] from an async function.
pub fn make_sender<F, Fut>(make: F) -> MakeSender
where
    F: Fn() -> Fut + 'static,
    Fut: Future<Output = Sender> + 'static,
{
    Box::new(move || -> Pin<Box<dyn Future<Output = Sender>>> { Box::pin(make()) })
}

/// One client in [`interleave`]d rounds.
pub struct Contender {
    /// The name in the report.
    pub name: &'static str,
    /// Makes one sender per task, once: every round reuses them, so a
    /// pooled client keeps its pool and a bare one its connection.
    pub make: MakeSender,
}

impl fmt::Debug for Contender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contender")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Requests per second of each client in each round of [`interleave`].
#[derive(Debug, Clone)]
pub struct Rounds {
    names: Vec<&'static str>,
    /// `rates[round][client]`.
    rates: Vec<Vec<f64>>,
}

/// The median of per-round ratios between two clients, and their spread.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    /// The median per-round ratio.
    pub median: f64,
    /// The lowest and highest per-round ratio.
    pub min: f64,
    /// See `min`.
    pub max: f64,
    /// The first and third quartiles of the per-round ratios.
    pub q1: f64,
    /// See `q1`.
    pub q3: f64,
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:.3} (quartiles {:.3}–{:.3}, range {:.3}–{:.3})",
            self.median, self.q1, self.q3, self.min, self.max
        )
    }
}

impl Rounds {
    /// The per-round ratios `numerator ÷ denominator` (by client name).
    ///
    /// # Panics
    ///
    /// If either name is not one of the clients measured.
    pub fn ratio(&self, numerator: &str, denominator: &str) -> Ratio {
        let at = |name: &str| {
            self.names
                .iter()
                .position(|n| *n == name)
                .unwrap_or_else(|| panic!("no client named {name}"))
        };
        let (a, b) = (at(numerator), at(denominator));
        let mut ratios: Vec<f64> = self.rates.iter().map(|r| r[a] / r[b]).collect();
        ratios.sort_by(f64::total_cmp);
        let quantile = |q: f64| {
            let pos = q * (ratios.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            ratios[lo] + (ratios[hi] - ratios[lo]) * (pos - lo as f64)
        };
        Ratio {
            median: quantile(0.5),
            min: ratios[0],
            max: ratios[ratios.len() - 1],
            q1: quantile(0.25),
            q3: quantile(0.75),
        }
    }

    /// The median over the rounds of `name`'s requests per second.
    pub fn median_rate(&self, name: &str) -> f64 {
        let at = self.names.iter().position(|n| *n == name).unwrap_or(0);
        let mut rates: Vec<f64> = self.rates.iter().map(|r| r[at]).collect();
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    }
}

/// Runs `contenders` in `rounds` alternating rounds of `round_time` each,
/// every client once per round, the order rotating by one each round
/// (after one untimed warm-up round), each with `concurrency` tasks
/// sending back to back.
///
/// # Panics
///
/// If `rounds` or `contenders` is empty, or a request fails.
pub async fn interleave(
    contenders: &[Contender],
    concurrency: u64,
    rounds: usize,
    round_time: Duration,
) -> Rounds {
    assert!(rounds > 0 && !contenders.is_empty(), "nothing to measure");
    let mut senders = Vec::with_capacity(contenders.len());
    for contender in contenders {
        let mut own = Vec::with_capacity(concurrency as usize);
        for _ in 0..concurrency {
            own.push((contender.make)().await);
        }
        senders.push(own);
    }
    for own in &mut senders {
        round(own, round_time / 4).await;
    }
    let mut rates = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let mut rate = vec![0.0; contenders.len()];
        for i in 0..contenders.len() {
            let k = (i + r) % contenders.len();
            rate[k] = round(&mut senders[k], round_time).await;
        }
        rates.push(rate);
    }
    Rounds {
        names: contenders.iter().map(|c| c.name).collect(),
        rates,
    }
}

/// One client's round: every sender sends until `time` has passed; the
/// requests per second of all of them together.
async fn round(senders: &mut Vec<Sender>, time: Duration) -> f64 {
    let start = Instant::now();
    let deadline = start + time;
    let mut tasks = tokio::task::JoinSet::new();
    for mut send in senders.drain(..) {
        tasks.spawn(async move {
            let mut sent = 0u64;
            while Instant::now() < deadline {
                send.send_one().await;
                sent += 1;
            }
            (send, sent)
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        let (send, sent) = done.expect("bench task");
        senders.push(send);
        total += sent;
    }
    total as f64 / start.elapsed().as_secs_f64()
}

/// A bare hyper HTTP/1 connection to `addr`, no pool: the ceiling the
/// pooled clients are measured against. Each request is `GET /`.
pub async fn bare_sender(addr: std::net::SocketAddr) -> Sender {
    use http_body_util::{BodyExt, Empty};
    type Body = Empty<bytes::Bytes>;

    struct Bare(hyper::client::conn::http1::SendRequest<Body>);

    impl SendOne for Bare {
        fn send_one(&mut self) -> Sending<'_> {
            Box::pin(async move {
                self.0.ready().await.expect("ready");
                let req = http::Request::get("/")
                    .header("host", "bench")
                    .body(Body::new())
                    .expect("request");
                let response = self.0.send_request(req).await.expect("bare request");
                response.into_body().collect().await.expect("bare body");
            })
        }
    }

    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let io = hyper_util::rt::TokioIo::new(stream);
    let (tx, conn) = hyper::client::conn::http1::handshake::<_, Body>(io)
        .await
        .expect("handshake");
    tokio::spawn(conn);
    Box::new(Bare(tx))
}
