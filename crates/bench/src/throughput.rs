//! `poolbench throughput`: loopback keep-alive requests per second.
//!
//! At each concurrency, each client in turn is driven by that many tasks
//! sending GETs back to back for the chosen duration; the tasks share one
//! client (one pool), as the tasks of one service do. A bare hyper
//! `SendRequest` per task, on its own connection, shows the ceiling: no
//! pool at all. Ratios are to hyper-util's legacy `Client` in the same run.
//!
//! The duration is split into [`ROUNDS`] slices taken in turn (client A,
//! B, C, then A, B, C again, each client keeping its pool), so that a
//! change in the machine's load during the run is shared by every client
//! rather than charged to whichever ran then.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Failure;
use crate::cli::ThroughputArgs;
use crate::clients::{self, Kind, Mechanisms, Pool};
use crate::origin::BuiltIn;
use crate::progress::{Counter, Progress};
use crate::race::REQUEST_TIMEOUT;
use crate::target::{self, Target};

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
}

/// Slices each client's duration is split into.
const ROUNDS: u32 = 4;

/// One measurement.
#[derive(Debug, Clone)]
struct Measured {
    name: &'static str,
    requests: u64,
    errors: u64,
    elapsed: Duration,
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
    let (target, origin) = match &args.target {
        Some(url) => (target::parse(url)?, None),
        None => {
            let origin = BuiltIn::start(
                Duration::from_secs(60),
                freshpool_origin::CloseMode::Fin,
                freshpool_origin::Advertise::None,
            )
            .map_err(|e| Failure::runtime(format!("cannot start the built-in origin: {e}")))?;
            (target::builtin(&origin)?, Some(origin))
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
    let results = runtime.block_on(async {
        target::check_reachable(&target).await?;
        let steps = (args.concurrency.len() * contenders.len()) as u64 * u64::from(ROUNDS);
        let progress = Progress::start("throughput", steps);
        let counter = progress.counter();
        let mut results = Vec::new();
        for &concurrency in &args.concurrency {
            let mut row = Vec::new();
            for contender in contenders {
                let pool = match contender {
                    Contender::Pooled(kind) => Some(Arc::<dyn Pool>::from(
                        kind.build(Arc::new(AtomicU64::new(0)))
                            .map_err(Failure::runtime)?,
                    )),
                    Contender::Bare => None,
                };
                let measured = Measured {
                    name: contender.name(),
                    requests: 0,
                    errors: 0,
                    elapsed: Duration::ZERO,
                };
                row.push((contender, pool, measured));
            }
            for _ in 0..ROUNDS {
                for (contender, pool, measured) in &mut row {
                    let slice = args.duration / ROUNDS;
                    measure(
                        *contender,
                        pool.as_ref(),
                        &target,
                        concurrency,
                        slice,
                        measured,
                    )
                    .await?;
                    counter.add();
                }
            }
            results.push((concurrency, row.into_iter().map(|(_, _, m)| m).collect()));
        }
        progress.finish();
        Ok::<_, Failure>(results)
    })?;
    if let Some(origin) = origin {
        origin.shutdown();
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
            "results": results,
        });
        println!("{doc:#}");
        return;
    }
    println!(
        "poolbench throughput: GET {} back to back, {:?} per client and concurrency\n",
        target.url, args.duration
    );
    println!(
        "{:>11}  {:<24}  {:>10}  {:>12}  {:>6}",
        "concurrency", "client", "req/s", "vs hyper-util", "errors"
    );
    for (concurrency, row) in results {
        for m in row {
            println!(
                "{:>11}  {:<24}  {:>10.0}  {:>12}  {:>6}",
                concurrency,
                m.name,
                m.per_second(),
                ratio(row, m).map_or_else(|| "-".to_owned(), |r| format!("{r:.2}×")),
                m.errors,
            );
        }
    }
}

/// Runs `contender` for `duration` and adds what it did to `into`.
async fn measure(
    contender: Contender,
    pool: Option<&Arc<dyn Pool>>,
    target: &Target,
    concurrency: u32,
    duration: Duration,
    into: &mut Measured,
) -> Result<(), Failure> {
    let requests = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let ok = Counter::from(Arc::clone(&requests));
    let failed = Counter::from(Arc::clone(&errors));
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    let deadline = start + duration;
    match pool {
        Some(pool) => {
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
        }
        None => {
            for _ in 0..concurrency {
                let target = target.clone();
                let (ok, failed) = (ok.clone(), failed.clone());
                tasks.spawn(async move {
                    let limit = deadline + REQUEST_TIMEOUT;
                    match tokio::time::timeout_at(limit, bare(&target, deadline, &ok)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) | Err(_) => failed.add(),
                    }
                });
            }
        }
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| Failure::runtime(format!("a {} task failed: {e}", contender.name())))?;
    }
    into.requests += requests.load(std::sync::atomic::Ordering::Relaxed);
    into.errors += errors.load(std::sync::atomic::Ordering::Relaxed);
    into.elapsed += Instant::now().saturating_duration_since(start);
    Ok(())
}

/// One task's own hyper connection, GETs back to back until `deadline`.
async fn bare(
    target: &Target,
    deadline: Instant,
    ok: &Counter,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(&target.authority).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let path = target
        .url
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let result = async {
        while Instant::now() < deadline {
            sender.ready().await?;
            let req = http::Request::get(path.as_str())
                .header(http::header::HOST, target.authority.as_str())
                .body(Empty::new())?;
            let response = sender.send_request(req).await?;
            response.into_body().collect().await?;
            ok.add();
        }
        Ok(())
    }
    .await;
    drop(sender);
    conn.abort();
    result
}
