//! `poolbench throughput`: loopback keep-alive requests per second.
//!
//! At each concurrency, each client in turn is driven by that many tasks
//! sending GETs back to back for the chosen duration; the tasks share one
//! client (one pool), as the tasks of one service do. A bare hyper
//! `SendRequest` per task, on its own connection, shows the ceiling: no
//! pool at all.
//!
//! The duration is split into `--rounds` slices taken in turn (client A,
//! B, C, then B, C, A: the order rotates, and each client keeps its pool,
//! or its connections, from round to round), so that a change in the
//! machine's load during the run is shared by every client rather than
//! charged to whichever ran then. Each round gives each client a ratio to
//! its reference measured within a second of it (freshpool and hyper-util
//! to the bare connection, the adapter to hyper-util); the median of those
//! per-round ratios, with their quartiles, is the figure the project
//! tracks. The server is a [`FixedServer`] (the same bytes for every
//! request, on a thread of its own, so the clients pay almost everything)
//! unless `--server origin` or `--target` says otherwise.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Failure;
use crate::cli::ServerKind;
use crate::cli::ThroughputArgs;
use crate::clients::{self, Kind, Mechanisms, Pool};
use crate::origin::BuiltIn;
use crate::progress::{Counter, Progress};
use crate::race::REQUEST_TIMEOUT;
use crate::target::{self, Target};
use freshpool_origin::FixedServer;

/// A client under measurement.
#[derive(Debug, Clone, Copy)]
enum Contender {
    /// A pooled client.
    Pooled(Kind),
    /// hyper's `SendRequest`, one connection per task, no pool.
    Bare,
}

impl Contender {
    fn name(self) -> &'static str {
        match self {
            Contender::Pooled(kind) => kind.name(),
            Contender::Bare => "bare hyper SendRequest",
        }
    }

    /// The client this one's per-round ratio is to: the bare connection
    /// for the pools, plain hyper-util for the adapter.
    fn reference(self) -> Option<Contender> {
        match self {
            Contender::Bare => None,
            Contender::Pooled(Kind::Adapter | Kind::AdapterRetry) => {
                Some(Contender::Pooled(Kind::HyperUtil))
            }
            Contender::Pooled(_) => Some(Contender::Bare),
        }
    }
}

/// What a client measures with: a pool, or one bare connection per task
/// (kept from round to round, like a pool's connections).
enum Driver {
    Pool(Arc<dyn Pool>),
    Bare(Vec<BareConn>),
}

/// The server measured against, and what keeps it running.
enum Server {
    Target,
    Fixed(FixedServer),
    Origin(Box<BuiltIn>),
}

/// One measurement.
#[derive(Debug, Clone)]
struct Measured {
    name: &'static str,
    requests: u64,
    errors: u64,
    elapsed: Duration,
    /// Requests per second in each round.
    rounds: Vec<f64>,
    /// The median, quartiles, and range of the per-round ratios to the
    /// reference client, and its name.
    ratio: Option<(&'static str, Spread)>,
}

/// The median of per-round ratios, and their spread.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    q1: f64,
    q3: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(mut ratios: Vec<f64>) -> Option<Spread> {
        ratios.retain(|r| r.is_finite());
        if ratios.is_empty() {
            return None;
        }
        ratios.sort_by(f64::total_cmp);
        let quantile = |q: f64| {
            let pos = q * (ratios.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            ratios[lo] + (ratios[hi] - ratios[lo]) * (pos - lo as f64)
        };
        Some(Spread {
            median: quantile(0.5),
            q1: quantile(0.25),
            q3: quantile(0.75),
            min: ratios[0],
            max: ratios[ratios.len() - 1],
        })
    }
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `poolbench throughput`.
pub(crate) fn run(args: &ThroughputArgs) -> Result<(), Failure> {
    if args.duration.is_zero() {
        return Err(Failure::usage("--duration must be longer than zero"));
    }
    let (target, server) = match (&args.target, args.server) {
        (Some(url), _) => (target::parse(url)?, Server::Target),
        (None, ServerKind::Fixed) => {
            let server = FixedServer::start().map_err(|e| {
                Failure::runtime(format!("cannot start the fixed-response server: {e}"))
            })?;
            let url = format!("{}/", server.base_url());
            let url = url
                .parse()
                .map_err(|e| Failure::runtime(format!("fixed-response server URL: {e}")))?;
            (target::parse(&url)?, Server::Fixed(server))
        }
        (None, ServerKind::Origin) => {
            let origin = BuiltIn::start(
                Duration::from_secs(60),
                freshpool_origin::CloseMode::Fin,
                freshpool_origin::Advertise::None,
            )
            .map_err(|e| Failure::runtime(format!("cannot start the built-in origin: {e}")))?;
            (target::builtin(&origin)?, Server::Origin(Box::new(origin)))
        }
    };
    let contenders = [
        Contender::Pooled(Kind::HyperUtil),
        Contender::Pooled(Kind::Adapter),
        Contender::Pooled(Kind::AdapterRetry),
        Contender::Pooled(Kind::Freshpool(Mechanisms::ALL)),
        Contender::Bare,
    ];
    let runtime = crate::client_runtime()?;
    let rounds = args.rounds;
    let results = runtime.block_on(async {
        target::check_reachable(&target).await?;
        let steps = (args.concurrency.len() * contenders.len()) as u64 * u64::from(rounds);
        let progress = Progress::start("throughput", steps);
        let counter = progress.counter();
        let mut results = Vec::new();
        for &concurrency in &args.concurrency {
            let mut row = Vec::new();
            for contender in contenders {
                let driver = match contender {
                    Contender::Pooled(kind) => Driver::Pool(Arc::<dyn Pool>::from(
                        kind.build(Arc::new(AtomicU64::new(0)))
                            .map_err(Failure::runtime)?,
                    )),
                    Contender::Bare => {
                        let mut conns = Vec::new();
                        for _ in 0..concurrency {
                            conns.push(BareConn::open(&target).await.map_err(|e| {
                                Failure::runtime(format!("cannot connect to {}: {e}", target.url))
                            })?);
                        }
                        Driver::Bare(conns)
                    }
                };
                let measured = Measured {
                    name: contender.name(),
                    requests: 0,
                    errors: 0,
                    elapsed: Duration::ZERO,
                    rounds: Vec::new(),
                    ratio: None,
                };
                row.push((contender, driver, measured));
            }
            let slice = args.duration / rounds;
            for round in 0..rounds as usize {
                for i in 0..row.len() {
                    let k = (i + round) % row.len();
                    let (contender, driver, measured) = &mut row[k];
                    measure(*contender, driver, &target, concurrency, slice, measured).await?;
                    counter.add();
                }
            }
            let ratios: Vec<_> = row
                .iter()
                .map(|(contender, _, measured)| {
                    let reference = contender.reference()?;
                    let (_, _, base) = row.iter().find(|(c, _, _)| c.name() == reference.name())?;
                    let per_round = measured
                        .rounds
                        .iter()
                        .zip(&base.rounds)
                        .map(|(m, b)| m / b)
                        .collect();
                    Some((reference.name(), Spread::of(per_round)?))
                })
                .collect();
            let mut measured: Vec<Measured> = row.into_iter().map(|(_, _, m)| m).collect();
            for (m, ratio) in measured.iter_mut().zip(ratios) {
                m.ratio = ratio;
            }
            results.push((concurrency, measured));
        }
        progress.finish();
        Ok::<_, Failure>(results)
    })?;
    match server {
        Server::Target => {}
        Server::Fixed(server) => server.shutdown(),
        Server::Origin(origin) => origin.shutdown(),
    }
    report(args, &target, &results);
    Ok(())
}

fn report(args: &ThroughputArgs, target: &Target, results: &[(u32, Vec<Measured>)]) {
    let ratio = |row: &[Measured], m: &Measured| {
        row.first()
            .map(Measured::per_second)
            .filter(|&base| base > 0.0)
            .map(|base| m.per_second() / base)
    };
    if args.json {
        let results: Vec<_> = results
            .iter()
            .map(|(concurrency, row)| {
                let clients: Vec<_> = row
                    .iter()
                    .map(|m| {
                        json!({
                            "name": m.name,
                            "requests": m.requests,
                            "errors": m.errors,
                            "requests_per_second": m.per_second(),
                            "ratio_to_hyper_util": ratio(row, m),
                            "per_round_ratio": m.ratio.map(|(to, s)| json!({
                                "to": to,
                                "median": s.median,
                                "q1": s.q1,
                                "q3": s.q3,
                                "min": s.min,
                                "max": s.max,
                            })),
                        })
                    })
                    .collect();
                json!({ "concurrency": concurrency, "clients": clients })
            })
            .collect();
        let doc = json!({
            "scenario": "throughput",
            "target": target.url.to_string(),
            "duration_ms": args.duration.as_secs_f64() * 1e3,
            "rounds": args.rounds,
            "results": results,
        });
        println!("{doc:#}");
        return;
    }
    println!(
        "poolbench throughput: GET {} back to back, {:?} per client and concurrency \
         in {} interleaved rounds\n",
        target.url, args.duration, args.rounds
    );
    println!(
        "{:>11}  {:<24}  {:>10}  {:>13}  {:>6}  per-round ratio: median (quartiles) to",
        "concurrency", "client", "req/s", "vs hyper-util", "errors"
    );
    for (concurrency, row) in results {
        for m in row {
            let per_round = m.ratio.map_or_else(
                || "-".to_owned(),
                |(to, s)| format!("{:.3} ({:.3}–{:.3}) {to}", s.median, s.q1, s.q3),
            );
            println!(
                "{:>11}  {:<24}  {:>10.0}  {:>13}  {:>6}  {per_round}",
                concurrency,
                m.name,
                m.per_second(),
                ratio(row, m).map_or_else(|| "-".to_owned(), |r| format!("{r:.2}×")),
                m.errors,
            );
        }
    }
}

/// Runs `contender` for `duration` (one round) and adds what it did to
/// `into`.
async fn measure(
    contender: Contender,
    driver: &mut Driver,
    target: &Target,
    concurrency: u32,
    duration: Duration,
    into: &mut Measured,
) -> Result<(), Failure> {
    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let ok = Counter::from(Arc::clone(&requests));
    let failed = Counter::from(Arc::clone(&errors));
    let start = Instant::now();
    let deadline = start + duration;
    match driver {
        Driver::Pool(pool) => {
            let mut tasks = JoinSet::new();
            for _ in 0..concurrency {
                let (pool, url) = (Arc::clone(pool), target.url.clone());
                let (ok, failed) = (ok.clone(), failed.clone());
                tasks.spawn(async move {
                    while Instant::now() < deadline {
                        let sent = pool.send(clients::get(&url));
                        match tokio::time::timeout(REQUEST_TIMEOUT, sent).await {
                            Ok(Ok(())) => ok.add(),
                            Ok(Err(_)) | Err(_) => failed.add(),
                        }
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.map_err(|e| {
                    Failure::runtime(format!("a {} task failed: {e}", contender.name()))
                })?;
            }
        }
        Driver::Bare(conns) => {
            let mut tasks = JoinSet::new();
            for mut conn in conns.drain(..) {
                let (ok, failed) = (ok.clone(), failed.clone());
                tasks.spawn(async move {
                    let limit = deadline + REQUEST_TIMEOUT;
                    match tokio::time::timeout_at(limit, conn.run(deadline, &ok)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => failed.add(),
                    }
                    conn
                });
            }
            while let Some(done) = tasks.join_next().await {
                let conn = done.map_err(|e| {
                    Failure::runtime(format!("a {} task failed: {e}", contender.name()))
                })?;
                conns.push(conn);
            }
        }
    }
    let elapsed = Instant::now().saturating_duration_since(start);
    let done = requests.load(std::sync::atomic::Ordering::Relaxed);
    into.requests += done;
    into.errors += errors.load(std::sync::atomic::Ordering::Relaxed);
    into.elapsed += elapsed;
    into.rounds
        .push(done as f64 / elapsed.as_secs_f64().max(1e-9));
    Ok(())
}

/// One task's own hyper connection, kept from round to round.
struct BareConn {
    sender: SendRequest<Empty<Bytes>>,
    conn: tokio::task::JoinHandle<()>,
    path: String,
    host: String,
}

impl BareConn {
    async fn open(target: &Target) -> Result<BareConn, Box<dyn std::error::Error + Send + Sync>> {
        let stream = TcpStream::connect(&target.authority).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
        let conn = tokio::spawn(async move {
            let _ = conn.await;
        });
        let path = target
            .url
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        Ok(BareConn {
            sender,
            conn,
            path,
            host: target.authority.clone(),
        })
    }

    /// GETs back to back until `deadline`.
    async fn run(
        &mut self,
        deadline: Instant,
        ok: &Counter,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        while Instant::now() < deadline {
            self.sender.ready().await?;
            let req = http::Request::get(self.path.as_str())
                .header(http::header::HOST, self.host.as_str())
                .body(Empty::new())?;
            let response = self.sender.send_request(req).await?;
            response.into_body().collect().await?;
            ok.add();
        }
        Ok(())
    }
}

impl Drop for BareConn {
    fn drop(&mut self) {
        self.conn.abort();
    }
}
