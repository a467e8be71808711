//! `poolbench proxy`: the keep-alive race through reverse proxies.
//!
//! Clients → proxy → the built-in origin (idle timeout `--idle`, no
//! `Keep-Alive` header, closing with `--close`). The proxies are
//! `freshpool-proxy`'s `Proxy` on `freshpool::Client` and the same `Proxy`
//! on hyper-util's legacy `Client`, in this process, side by side, each in
//! front of an origin of its own (so each origin's counters are one
//! proxy's upstream traffic), plus any proxy given with `--proxy URL`,
//! which must forward to the origin started on `--origin-port`. A
//! "direct" lane (freshpool's client straight to an origin) is the
//! baseline for the latency a proxy adds.
//!
//! Phase one, the race: every lane gets `--senders` senders, each with its
//! own client (own connection to the proxy), POSTing with unique
//! `x-request-id`s every `--interval ± --jitter`, all lanes at once. The
//! origin takes `--delay` to answer, so the senders' requests overlap and
//! each proxy keeps about one upstream connection per sender, each idle
//! for about an interval between uses: the race. Phase two, throughput:
//! `--concurrency` tasks POST small bodies back to back through each
//! proxy, in interleaved rounds, reported as a ratio to the hyper-util
//! proxy (the median of the rounds' ratios: each round of one proxy runs
//! right beside the same round of the other).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use freshpool_origin::{Advertise, Origin};
use freshpool_proxy::{Proxy, RequestBody, Upstream};
use freshpool_testkit::XorShift;
use http::Uri;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Failure;
use crate::cli::{Close, parse_duration};
use crate::clients::{self, Body, Kind, Mechanisms};
use crate::progress::Progress;
use crate::race::{HANG, REQUEST_TIMEOUT};
use crate::table::{percent, quantile};

/// `poolbench proxy`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ProxyArgs {
    /// Also race this proxy (an `http://` URL); it must forward to the
    /// built-in origin started on `--origin-port`.
    #[arg(long, value_name = "URL", requires = "origin_port")]
    pub(crate) proxy: Option<Uri>,
    /// The port of the built-in origin that `--proxy` forwards to.
    #[arg(long, value_name = "PORT")]
    pub(crate) origin_port: Option<u16>,
    /// The origins' idle timeout.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub(crate) idle: Duration,
    /// How the origins close an idle connection.
    #[arg(long, value_enum, default_value_t = Close::Fin)]
    pub(crate) close: Close,
    /// Senders per proxy, each with its own connection to it.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) senders: u32,
    /// POSTs per proxy in the race, spread over its senders.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) requests: u32,
    /// The mean pause between one sender's requests [default: the idle
    /// timeout].
    #[arg(long, value_parser = parse_duration)]
    pub(crate) interval: Option<Duration>,
    /// The largest deviation of a pause from the interval, either way.
    #[arg(long, default_value = "2ms", value_parser = parse_duration)]
    pub(crate) jitter: Duration,
    /// How long the origin takes to answer each race request.
    #[arg(long, default_value = "20ms", value_parser = parse_duration)]
    pub(crate) delay: Duration,
    /// Seed of the jitter.
    #[arg(long, default_value_t = 0x5eed)]
    pub(crate) seed: u64,
    /// Concurrent tasks in the throughput phase.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) concurrency: u32,
    /// How long each proxy runs in the throughput phase (0s skips it).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Throughput rounds each proxy's duration is split into, taken in turn
/// (every other round in reverse order, so that neither proxy always runs
/// right after the other).
const ROUNDS: u32 = 10;

/// How a lane reaches its origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// No proxy: freshpool's client straight to the origin.
    Direct,
    /// `Proxy` on `freshpool::Client`.
    Freshpool,
    /// `Proxy` on hyper-util's legacy `Client`.
    HyperUtil,
    /// The user's `--proxy`.
    External,
}

/// One proxy (or the direct baseline) and its origin.
struct Lane {
    name: String,
    slug: &'static str,
    via: Via,
    /// Where the lane's clients send.
    url: Uri,
    origin: Origin,
    race: Race,
    throughput: Throughput,
    /// Origin counters after the race (before the throughput phase).
    upstream_connections: u64,
    processed: u64,
    duplicates: u64,
}

#[derive(Debug, Default)]
struct Race {
    latencies: Vec<Duration>,
    status_5xx: u64,
    errors: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
struct Throughput {
    requests: u64,
    errors: u64,
    elapsed: Duration,
    /// Requests per second in each round.
    rounds: Vec<f64>,
}

impl Throughput {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The median over rounds of this lane's rate over `base`'s in the
    /// same round: the two ran back to back, so a change in the machine's
    /// load between rounds does not count for either.
    fn ratio_to(&self, base: &Throughput) -> Option<f64> {
        let mut ratios: Vec<f64> = self
            .rounds
            .iter()
            .zip(&base.rounds)
            .filter(|&(_, &b)| b > 0.0)
            .map(|(r, b)| r / b)
            .collect();
        ratios.sort_by(f64::total_cmp);
        let n = ratios.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(ratios[n / 2]),
            _ => Some((ratios[n / 2 - 1] + ratios[n / 2]) / 2.0),
        }
    }
}

fn runtime(name: &str) -> Result<Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| Failure::runtime(format!("cannot start a tokio runtime: {e}")))
}

/// `poolbench proxy`.
pub(crate) fn run(args: &ProxyArgs) -> Result<(), Failure> {
    let interval = args.interval.unwrap_or(args.idle);
    // Separate runtimes, as separate processes would be: the origins, the
    // in-process proxies, the clients.
    let origins = runtime("poolbench-origin")?;
    let proxies = runtime("poolbench-proxy")?;
    let clients = crate::client_runtime()?;
    let start_origin = |port: u16| {
        origins
            .block_on(
                Origin::builder()
                    .listen(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
                    .idle_timeout(args.idle)
                    .close_mode(args.close.into())
                    .advertise(Advertise::None)
                    .body_size(64)
                    .max_request_body(1 << 20)
                    .start(),
            )
            .map_err(|e| {
                Failure::runtime(format!(
                    "cannot start the built-in origin on port {port}: {e}"
                ))
            })
    };

    let mut lanes = Vec::new();
    for (via, name, slug) in [
        (Via::Direct, "direct (no proxy)", "direct"),
        (Via::Freshpool, "freshpool-proxy", "freshpool"),
        (Via::HyperUtil, "hyper-util proxy", "hyper-util"),
    ] {
        let origin = start_origin(0)?;
        let upstream: Uri = origin
            .base_url()
            .parse()
            .map_err(|e| Failure::runtime(format!("origin URL: {e}")))?;
        let url = match via {
            Via::Direct => format!("{}/orders", origin.base_url()),
            Via::Freshpool => {
                let client = freshpool::Client::builder()
                    .build_http::<RequestBody>()
                    .map_err(|e| Failure::runtime(format!("freshpool settings: {e}")))?;
                serve(&proxies, upstream, client)?
            }
            _ => {
                let mut http = HttpConnector::new();
                http.set_nodelay(true);
                let client = LegacyClient::builder(TokioExecutor::new()).build(http);
                serve(&proxies, upstream, client)?
            }
        };
        lanes.push(lane(name.to_owned(), slug, via, &url, origin)?);
    }
    if let (Some(proxy), Some(port)) = (&args.proxy, args.origin_port) {
        let origin = start_origin(port)?;
        let target = crate::target::parse(proxy)?;
        let url = format!("http://{}/orders", target.authority);
        lanes.push(lane(
            format!("--proxy {proxy}"),
            "external",
            Via::External,
            &url,
            origin,
        )?);
    }

    clients.block_on(async {
        for lane in lanes.iter().filter(|l| l.via != Via::Direct) {
            let target = crate::target::parse(&lane.url)?;
            crate::target::check_reachable(&target).await?;
        }
        let progress = Progress::start("proxy race", u64::from(args.requests) * lanes.len() as u64);
        let counter = progress.counter();
        let mut tasks = JoinSet::new();
        for (index, lane) in lanes.iter().enumerate() {
            for sender in 0..args.senders {
                let count =
                    args.requests / args.senders + u32::from(sender < args.requests % args.senders);
                let plan = SenderPlan {
                    url: lane.url.clone(),
                    prefix: format!("{}.{sender}", lane.slug),
                    count,
                    interval,
                    jitter: args.jitter,
                    delay: args.delay,
                    seed: args.seed ^ (u64::from(sender) + 1) << 32,
                    direct: lane.via == Via::Direct,
                };
                let counter = counter.clone();
                tasks.spawn(async move { (index, send_all(plan, counter).await) });
            }
        }
        while let Some(done) = tasks.join_next().await {
            let (index, race) =
                done.map_err(|e| Failure::runtime(format!("a sender failed: {e}")))?;
            let race = race.map_err(Failure::runtime)?;
            let into = &mut lanes[index].race;
            into.latencies.extend(race.latencies);
            into.status_5xx += race.status_5xx;
            for (kind, n) in race.errors {
                *into.errors.entry(kind).or_insert(0) += n;
            }
        }
        progress.finish();
        Ok::<_, Failure>(())
    })?;
    for lane in &mut lanes {
        let stats = lane.origin.stats();
        lane.upstream_connections = stats.connections_accepted;
        lane.processed = stats.requests_processed;
        lane.duplicates = stats.duplicate_requests;
    }

    if !args.duration.is_zero() {
        clients.block_on(throughput(&mut lanes, args))?;
    }
    report(args, interval, &lanes);
    for lane in lanes {
        origins.block_on(lane.origin.shutdown());
    }
    drop(proxies);
    Ok(())
}

fn lane(
    name: String,
    slug: &'static str,
    via: Via,
    url: &str,
    origin: Origin,
) -> Result<Lane, Failure> {
    Ok(Lane {
        name,
        slug,
        via,
        url: url
            .parse()
            .map_err(|e| Failure::runtime(format!("lane URL {url}: {e}")))?,
        origin,
        race: Race::default(),
        throughput: Throughput::default(),
        upstream_connections: 0,
        processed: 0,
        duplicates: 0,
    })
}

/// Serves a `Proxy` to `upstream` on the proxies' runtime; returns the URL
/// clients send to. The serve loop ends with the runtime.
fn serve<Cl: Upstream>(runtime: &Runtime, upstream: Uri, client: Cl) -> Result<String, Failure> {
    let proxy = Proxy::builder(upstream)
        .build(client)
        .map_err(|e| Failure::runtime(format!("proxy settings: {e}")))?;
    let listener = runtime
        .block_on(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .and_then(|l| Ok((l.local_addr()?, l)))
        .map_err(|e| Failure::runtime(format!("cannot listen for a proxy: {e}")))?;
    let (addr, listener) = listener;
    runtime.spawn(freshpool_proxy::serve(
        listener,
        proxy,
        std::future::pending(),
    ));
    Ok(format!("http://{addr}/orders"))
}

/// What one sender does.
struct SenderPlan {
    url: Uri,
    prefix: String,
    count: u32,
    interval: Duration,
    jitter: Duration,
    delay: Duration,
    seed: u64,
    /// Whether this is the direct (no proxy) baseline.
    direct: bool,
}

/// One sender: its own client to the proxy, POSTs `interval ± jitter`
/// apart after each response (the first pause half an interval longer, so
/// that the proxy has seen its upstream close an idle connection before
/// the race proper).
async fn send_all(plan: SenderPlan, progress: crate::progress::Counter) -> Result<Race, String> {
    // The direct lane is the latency baseline: freshpool's client, which
    // does not lose the race itself. Proxies get hyper-util's: the proxy
    // never closes an idle client connection, so that hop cannot race.
    let kind = if plan.direct {
        Kind::Freshpool(Mechanisms::ALL)
    } else {
        Kind::HyperUtil
    };
    let client = kind.build(Arc::new(AtomicU64::new(0)))?;
    let mut rng = XorShift::new(plan.seed);
    let delay = http::HeaderValue::from_str(&plan.delay.as_millis().to_string())
        .map_err(|e| e.to_string())?;
    let mut race = Race::default();
    for n in 0..plan.count {
        if n > 0 {
            let mut pause = rng.around(plan.interval, plan.jitter);
            if n == 1 {
                pause += plan.interval / 2;
            }
            tokio::time::sleep(pause).await;
        }
        let mut req = clients::post(&plan.url, &format!("{}.{n}", plan.prefix));
        req.headers_mut().insert("x-delay-ms", delay.clone());
        let sent = Instant::now();
        let outcome = tokio::time::timeout(REQUEST_TIMEOUT, client.send(req))
            .await
            .unwrap_or_else(|_| Err(HANG.to_owned()));
        match outcome {
            Ok(()) => race.latencies.push(sent.elapsed()),
            Err(kind) => {
                if kind.starts_with("status 5") {
                    race.status_5xx += 1;
                }
                *race.errors.entry(kind).or_insert(0) += 1;
            }
        }
        progress.add();
    }
    Ok(race)
}

/// Phase two: `concurrency` tasks through each proxy, back to back, in
/// interleaved rounds; the direct lane is left out (it is not a proxy).
async fn throughput(lanes: &mut [Lane], args: &ProxyArgs) -> Result<(), Failure> {
    let measured: Vec<usize> = (0..lanes.len())
        .filter(|&i| lanes[i].via != Via::Direct)
        .collect();
    let progress = Progress::start(
        "proxy throughput",
        (measured.len() as u64) * u64::from(ROUNDS),
    );
    let counter = progress.counter();
    let pools: Vec<LegacyClient<HttpConnector, Body>> = measured
        .iter()
        .map(|_| {
            let mut http = HttpConnector::new();
            http.set_nodelay(true);
            LegacyClient::builder(TokioExecutor::new()).build(http)
        })
        .collect();
    let slice = args.duration / ROUNDS;
    for round in 0..ROUNDS {
        let mut order: Vec<_> = measured.iter().zip(&pools).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (&index, pool) in order {
            let ok = Arc::new(AtomicU64::new(0));
            let failed = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let deadline = started + slice;
            let mut tasks = JoinSet::new();
            for _ in 0..args.concurrency {
                let (pool, url) = (pool.clone(), lanes[index].url.clone());
                let (ok, failed) = (Arc::clone(&ok), Arc::clone(&failed));
                tasks.spawn(async move {
                    while Instant::now() < deadline {
                        let req = clients::post(&url, "throughput");
                        let sent = async {
                            let response = pool.request(req).await.map_err(|_| ())?;
                            let status = response.status();
                            response.into_body().collect().await.map_err(|_| ())?;
                            if status.is_success() { Ok(()) } else { Err(()) }
                        };
                        match tokio::time::timeout(REQUEST_TIMEOUT, sent).await {
                            Ok(Ok(())) => ok.fetch_add(1, Ordering::Relaxed),
                            _ => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                });
            }
            while let Some(done) = tasks.join_next().await {
                done.map_err(|e| Failure::runtime(format!("a throughput task failed: {e}")))?;
            }
            let into = &mut lanes[index].throughput;
            let done = ok.load(Ordering::Relaxed);
            let elapsed = started.elapsed();
            into.requests += done;
            into.errors += failed.load(Ordering::Relaxed);
            into.elapsed += elapsed;
            into.rounds
                .push(done as f64 / elapsed.as_secs_f64().max(1e-9));
            counter.add();
        }
    }
    progress.finish();
    Ok(())
}

/// The figures of one lane.
struct Figures {
    requests: u64,
    reuse: f64,
    p50: Option<Duration>,
    p99: Option<Duration>,
    added_p50: Option<f64>,
    added_p99: Option<f64>,
    per_second: Option<f64>,
    ratio: Option<f64>,
}

fn figures(lanes: &[Lane]) -> Vec<Figures> {
    let sorted: Vec<Vec<Duration>> = lanes
        .iter()
        .map(|l| {
            let mut v = l.race.latencies.clone();
            v.sort_unstable();
            v
        })
        .collect();
    let direct = lanes.iter().position(|l| l.via == Via::Direct);
    let base = |q: f64| direct.and_then(|d| quantile(&sorted[d], q));
    let hyper_util = lanes
        .iter()
        .find(|l| l.via == Via::HyperUtil)
        .map(|l| &l.throughput);
    lanes
        .iter()
        .zip(&sorted)
        .map(|(lane, sorted)| {
            let requests =
                lane.race.latencies.len() as u64 + lane.race.errors.values().sum::<u64>();
            let p50 = quantile(sorted, 0.50);
            let p99 = quantile(sorted, 0.99);
            let added = |p: Option<Duration>, b: Option<Duration>| match (p, b, lane.via) {
                (_, _, Via::Direct) => None,
                (Some(p), Some(b), _) => Some((p.as_secs_f64() - b.as_secs_f64()) * 1e3),
                _ => None,
            };
            let per_second =
                (lane.throughput.elapsed > Duration::ZERO).then(|| lane.throughput.per_second());
            Figures {
                requests,
                reuse: percent(
                    lane.processed.saturating_sub(lane.upstream_connections),
                    lane.processed,
                ),
                p50,
                p99,
                added_p50: added(p50, base(0.50)),
                added_p99: added(p99, base(0.99)),
                per_second,
                ratio: hyper_util.and_then(|h| lane.throughput.ratio_to(h)),
            }
        })
        .collect()
}

fn ms(d: Option<Duration>) -> Option<f64> {
    d.map(|d| d.as_secs_f64() * 1e3)
}

fn report(args: &ProxyArgs, interval: Duration, lanes: &[Lane]) {
    let figures = figures(lanes);
    if args.json {
        let proxies: Vec<_> = lanes
            .iter()
            .zip(&figures)
            .map(|(lane, f)| {
                json!({
                    "name": lane.name,
                    "id_prefix": lane.slug,
                    "proxy": lane.via != Via::Direct,
                    "requests": f.requests,
                    "status_5xx": lane.race.status_5xx,
                    "errors": lane.race.errors.values().sum::<u64>(),
                    "errors_by_kind": lane.race.errors,
                    "processed": lane.processed,
                    "duplicates": lane.duplicates,
                    "upstream_connections": lane.upstream_connections,
                    "upstream_reuse_percent": f.reuse,
                    "p50_ms": ms(f.p50),
                    "p99_ms": ms(f.p99),
                    "added_p50_ms": f.added_p50,
                    "added_p99_ms": f.added_p99,
                    "requests_per_second": f.per_second,
                    "throughput_errors": lane.throughput.errors,
                    "ratio_to_hyper_util": f.ratio,
                })
            })
            .collect();
        let doc = json!({
            "scenario": "proxy",
            "settings": {
                "origin_idle_ms": args.idle.as_secs_f64() * 1e3,
                "origin_close": freshpool_origin::CloseMode::from(args.close).as_str(),
                "origin_delay_ms": args.delay.as_secs_f64() * 1e3,
                "senders_per_proxy": args.senders,
                "requests_per_proxy": args.requests,
                "interval_ms": interval.as_secs_f64() * 1e3,
                "jitter_ms": args.jitter.as_secs_f64() * 1e3,
                "seed": args.seed,
                "concurrency": args.concurrency,
                "throughput_ms_per_proxy": args.duration.as_secs_f64() * 1e3,
            },
            "proxies": proxies,
        });
        println!("{doc:#}");
        return;
    }
    println!(
        "poolbench proxy: clients → proxy → built-in origin (idle {} ms, close {}, no Keep-Alive header, answers in {} ms)\n\
         race: {} senders per proxy (own connection each), {} POSTs per proxy, every {} ms ± {} ms, seed {}\n\
         throughput: {} tasks POSTing small bodies back to back, {:?} per proxy in {ROUNDS} interleaved rounds\n\
         (vs hyper-util: the median over rounds of the ratio to the hyper-util proxy's round beside it)\n",
        args.idle.as_millis(),
        freshpool_origin::CloseMode::from(args.close).as_str(),
        args.delay.as_millis(),
        args.senders,
        args.requests,
        interval.as_millis(),
        args.jitter.as_secs_f64() * 1e3,
        args.seed,
        args.concurrency,
        args.duration,
    );
    let width = lanes.iter().map(|l| l.name.len()).max().unwrap_or(5).max(5);
    println!(
        "{:<width$}  {:>8}  {:>5}  {:>6}  {:>10}  {:>9}  {:>6}  {:>7}  {:>7}  {:>8}  {:>8}  {:>8}  {:>12}",
        "proxy",
        "requests",
        "5xx",
        "errors",
        "duplicates",
        "upstream",
        "reuse",
        "p50 ms",
        "p99 ms",
        "+p50 ms",
        "+p99 ms",
        "req/s",
        "vs hyper-util",
    );
    let opt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
    };
    let mut details = String::new();
    for (lane, f) in lanes.iter().zip(&figures) {
        println!(
            "{:<width$}  {:>8}  {:>5}  {:>6}  {:>10}  {:>9}  {:>5.1}%  {:>7}  {:>7}  {:>8}  {:>8}  {:>8}  {:>12}",
            lane.name,
            f.requests,
            lane.race.status_5xx,
            lane.race.errors.values().sum::<u64>(),
            lane.duplicates,
            lane.upstream_connections,
            f.reuse,
            opt(ms(f.p50), 2),
            opt(ms(f.p99), 2),
            opt(f.added_p50, 2),
            opt(f.added_p99, 2),
            opt(f.per_second, 0),
            f.ratio
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.3}×")),
        );
        for (kind, n) in &lane.race.errors {
            details.push_str(&format!("  {:<width$}  {n:>5} × {kind}\n", lane.name));
        }
    }
    if !details.is_empty() {
        println!("\nerrors by kind:\n{details}");
    }
}
