//! The baseline every later fix is measured against: hyper-util's legacy
//! `Client` POSTing at the server's idle timeout.
//!
//! Ten clients, each with its own hyper-util `Client` (so its own pool),
//! POST (with a unique `x-request-id`) every `idle ± jitter` to an origin
//! whose idle timeout is `idle` and which sends no `Keep-Alive` header, so
//! every pooled connection is reused at about the moment the origin closes
//! it. (`--shared-pool` makes the clients share one `Client`: connections
//! are then reused sooner and the race is rarer.) A request that is written
//! at about the moment the origin closes the pooled connection fails; the
//! table shows how many, by error kind, and whether the origin had processed
//! them anyway (a retry would then be a duplicate).
//!
//! ```text
//! cargo run --release -p freshpool-origin --example race_baseline -- --close rst
//! ```
//!
//! Flags: `--close fin|rst|408` (default fin), `--requests N` (1000),
//! `--clients N` (10), `--idle-ms N` (200), `--jitter-us N` (2000),
//! `--seed N`, `--shared-pool`. It prints; it asserts nothing about
//! hyper-util.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use freshpool_origin::{CloseMode, Origin};
use freshpool_testkit::XorShift;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
struct Settings {
    close: CloseMode,
    requests: usize,
    clients: usize,
    idle: Duration,
    jitter: Duration,
    seed: u64,
    shared_pool: bool,
}

fn parse_args() -> Result<Settings, String> {
    let mut settings = Settings {
        close: CloseMode::Fin,
        requests: 1000,
        clients: 10,
        idle: Duration::from_millis(200),
        jitter: Duration::from_micros(2000),
        seed: 0x5eed,
        shared_pool: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--shared-pool" {
            settings.shared_pool = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--close" => {
                settings.close = match value.as_str() {
                    "fin" => CloseMode::Fin,
                    "rst" => CloseMode::Rst,
                    "408" => CloseMode::Timeout408,
                    _ => return Err(format!("--close: {value:?} is not fin, rst or 408")),
                };
            }
            "--requests" => settings.requests = number()? as usize,
            "--clients" => settings.clients = (number()? as usize).max(1),
            "--idle-ms" => settings.idle = Duration::from_millis(number()?),
            "--jitter-us" => settings.jitter = Duration::from_micros(number()?),
            "--seed" => settings.seed = number()?,
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(settings)
}

/// What became of one request.
#[derive(Debug)]
struct Outcome {
    id: String,
    error: Option<&'static str>,
}

/// Names the error kind from the error's source chain.
fn classify(err: &(dyn StdError + 'static)) -> &'static str {
    let mut incomplete = false;
    let mut canceled = false;
    let mut cause: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return match io.kind() {
                io::ErrorKind::ConnectionReset => "reset (ECONNRESET)",
                io::ErrorKind::BrokenPipe => "broken pipe (EPIPE)",
                _ => "other io error",
            };
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            incomplete |= h.is_incomplete_message();
            canceled |= h.is_canceled();
        }
        if let Some(l) = e.downcast_ref::<hyper_util::client::legacy::Error>()
            && l.is_connect()
        {
            return "connect error";
        }
        cause = e.source();
    }
    if incomplete {
        "closed before message completed (IncompleteMessage)"
    } else if canceled {
        "canceled"
    } else {
        "other"
    }
}

async fn run_client(
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: Arc<str>,
    index: usize,
    count: usize,
    settings: Settings,
) -> Vec<Outcome> {
    let mut rng = XorShift::new(settings.seed ^ index as u64);
    let mut outcomes = Vec::with_capacity(count);
    // Spread the clients over one idle period so they do not move in step.
    tokio::time::sleep(rng.around(settings.idle / 2, settings.idle / 2)).await;
    for n in 0..count {
        let id = format!("c{index}-r{n}");
        let request = Request::builder()
            .method(Method::POST)
            .uri(&*url)
            .header("x-request-id", &id)
            .body(Full::new(Bytes::from_static(b"{\"order\":1}")))
            .expect("a valid request");
        let error = match client.request(request).await {
            Ok(response) => {
                let status = response.status();
                match response.into_body().collect().await {
                    Err(err) => Some(classify(&err)),
                    // A 408 the origin wrote while closing an idle
                    // connection, read as the response to this request.
                    Ok(_) if status == 408 => Some("stray 408 read as the response"),
                    Ok(_) if !status.is_success() => Some("other non-2xx status"),
                    Ok(_) => None,
                }
            }
            Err(err) => Some(classify(&err)),
        };
        outcomes.push(Outcome { id, error });
        tokio::time::sleep(rng.around(settings.idle, settings.jitter)).await;
    }
    outcomes
}

async fn run_clients(
    settings: &Settings,
    url: Arc<str>,
) -> Result<(Vec<Outcome>, Duration), Box<dyn StdError>> {
    let shared = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let started = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    for index in 0..settings.clients {
        let count = settings.requests / settings.clients
            + usize::from(index < settings.requests % settings.clients);
        let client = if settings.shared_pool {
            shared.clone()
        } else {
            Client::builder(TokioExecutor::new()).build_http()
        };
        tasks.spawn(run_client(
            client,
            Arc::clone(&url),
            index,
            count,
            settings.clone(),
        ));
    }
    let mut outcomes = Vec::with_capacity(settings.requests);
    while let Some(done) = tasks.join_next().await {
        outcomes.extend(done?);
    }
    Ok((outcomes, started.elapsed()))
}

fn main() -> Result<(), Box<dyn StdError>> {
    let settings = parse_args()?;
    // The origin gets its own runtime, as a real server has its own
    // process: sharing the client's timer wheel would put the client's
    // wake-ups and the server's idle closes on the same millisecond ticks
    // and make the race artificially frequent.
    let origin_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("origin")
        .enable_all()
        .build()?;
    let origin = origin_runtime.block_on(
        Origin::builder()
            .idle_timeout(settings.idle)
            .close_mode(settings.close)
            .start(),
    )?;
    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("client")
        .enable_all()
        .build()?;
    println!(
        "race_baseline: hyper-util legacy Client ({}), {} clients, {} POSTs every {:?} ± {:?}; \
         origin idle {:?}, close {}, no Keep-Alive header, seed {}",
        if settings.shared_pool {
            "one shared pool"
        } else {
            "one pool per client"
        },
        settings.clients,
        settings.requests,
        settings.idle,
        settings.jitter,
        settings.idle,
        settings.close.as_str(),
        settings.seed,
    );
    let url: Arc<str> = format!("{}/orders", origin.base_url()).into();
    let (outcomes, elapsed) = client_runtime.block_on(run_clients(&settings, url))?;
    origin_runtime.block_on(origin.shutdown());

    let mut failures: BTreeMap<&str, usize> = BTreeMap::new();
    let mut failed_but_processed = 0;
    let mut lost = 0;
    for outcome in &outcomes {
        let processed = origin.processed(&outcome.id);
        match outcome.error {
            Some(kind) => {
                *failures.entry(kind).or_default() += 1;
                if processed > 0 {
                    failed_but_processed += 1;
                }
            }
            None if processed == 0 => lost += 1,
            None => {}
        }
    }
    let failed: usize = failures.values().sum();
    let stats = origin.stats();
    let pct = |n: usize| 100.0 * n as f64 / outcomes.len().max(1) as f64;

    println!();
    println!("{:<58} {:>8}", "requests", outcomes.len());
    println!("{:<58} {:>8}", "ok", outcomes.len() - failed);
    println!("{:<58} {:>8}  ({:.2}%)", "failed", failed, pct(failed));
    for (kind, n) in &failures {
        println!("  {kind:<56} {n:>8}");
    }
    println!(
        "{:<58} {:>8}",
        "  of which the origin had processed", failed_but_processed
    );
    println!(
        "{:<58} {:>8}",
        "origin: requests processed", stats.requests_processed
    );
    println!(
        "{:<58} {:>8}",
        "origin: duplicates (processed twice or more)", stats.duplicate_requests
    );
    println!("{:<58} {:>8}", "lost (ok response, never processed)", lost);
    println!(
        "{:<58} {:>8}",
        "origin: connections accepted", stats.connections_accepted
    );
    println!(
        "{:<58} {:>8}",
        format!("origin: idle closes ({})", settings.close.as_str()),
        stats.idle_closes_fin + stats.idle_closes_rst + stats.idle_closes_408
    );
    println!("{:<58} {:>8.1?}", "wall time", elapsed);
    Ok(())
}
