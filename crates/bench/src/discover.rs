//! `poolbench discover`: a server's real idle timeout, and what it claims.
//!
//! 1. **Watch.** On each of a few connections, one GET; from the instant
//!    its response ended, the socket is watched (a pending read) until the
//!    server closes it (FIN, RST, or a stray `408` before the close). The
//!    time from the response's end to the close is the server's idle
//!    timeout, measured to within a scheduling tick and a round trip. The
//!    median of the connections is reported.
//! 2. **Check.** On one more connection, a GET, an idle pause of 80% of
//!    the timeout found, and a second GET: it must be served on the same
//!    connection, which shows the server keeps connections at least that
//!    long (a server that closes idle connections without a FIN would be
//!    caught here).
//!
//! Only GETs are sent: `connections + 2` of them.

use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Failure;
use crate::cli::DiscoverArgs;
use crate::progress::Progress;
use crate::race::REQUEST_TIMEOUT;
use crate::table::quantile;
use crate::target::{self, Target};
use crate::wire::{self, Head};

/// How an idle connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    Fin,
    Reset,
    /// Bytes arrived on the idle connection (a `408`, typically).
    Data,
}

impl Close {
    fn as_str(self) -> &'static str {
        match self {
            Close::Fin => "fin",
            Close::Reset => "rst",
            Close::Data => "unsolicited bytes (e.g. 408)",
        }
    }
}

/// What one watched connection showed.
#[derive(Debug, Clone)]
struct Watched {
    head: Head,
    /// Idle time until the server closed, if it did within the limit.
    closed: Option<(Duration, Close)>,
}

/// The share of the found timeout the check waits before its second GET.
const CHECK_SHARE: f64 = 0.8;

/// `poolbench discover`.
pub(crate) fn run(args: &DiscoverArgs) -> Result<(), Failure> {
    let target = target::parse(&args.target)?;
    let runtime = crate::client_runtime()?;
    runtime.block_on(discover(args, &target))
}

async fn discover(args: &DiscoverArgs, target: &Target) -> Result<(), Failure> {
    target::check_reachable(target).await?;
    let path = target
        .url
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let progress = Progress::start("discover", u64::from(args.connections) + 1);
    let counter = progress.counter();
    let mut tasks = JoinSet::new();
    for _ in 0..args.connections {
        let (authority, path, max) = (target.authority.clone(), path.clone(), args.max_idle);
        let counter = counter.clone();
        tasks.spawn(async move {
            let watched = watch(&authority, &path, max).await;
            counter.add();
            watched
        });
    }
    let mut watched = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let result = done.map_err(|e| Failure::runtime(format!("a watcher failed: {e}")))?;
        watched
            .push(result.map_err(|e| {
                Failure::runtime(format!("{}: GET {path} failed: {e}", target.url))
            })?);
    }
    let mut requests = watched.len() as u64;
    let mut idle: Vec<Duration> = watched
        .iter()
        .filter_map(|w| w.closed.map(|(t, _)| t))
        .collect();
    idle.sort_unstable();
    let found = quantile(&idle, 0.5);
    let check = match found {
        Some(timeout) => {
            requests += 2;
            Some(
                check_reuse(&target.authority, &path, timeout.mul_f64(CHECK_SHARE))
                    .await
                    .map_err(|e| e.to_string()),
            )
        }
        None => None,
    };
    counter.add();
    progress.finish();

    let head = watched.first().map(|w| w.head.clone());
    let keep_alive = head.as_ref().and_then(|h| h.keep_alive.clone());
    let advertised = keep_alive.as_deref().and_then(wire::advertised_timeout);
    let agrees = match (found, advertised) {
        (Some(found), Some(secs)) => Some(agrees(found, secs)),
        _ => None,
    };
    let closes: Vec<&str> = watched
        .iter()
        .filter_map(|w| w.closed.map(|(_, c)| c.as_str()))
        .collect();
    let keeps_alive = watched.iter().all(|w| !w.head.closes);

    if args.json {
        let doc = json!({
            "scenario": "discover",
            "target": target.url.to_string(),
            "requests_sent": requests,
            "status": head.as_ref().map(|h| h.status),
            "keeps_alive": keeps_alive,
            "idle_timeout_ms": found.map(ms),
            "observations_ms": idle.iter().copied().map(ms).collect::<Vec<_>>(),
            "close_kinds": closes,
            "keep_alive_header": keep_alive,
            "advertised_timeout_s": advertised,
            "advertised_agrees": agrees,
            "reuse_check_idle_ms": found.map(|t| ms(t.mul_f64(CHECK_SHARE))),
            "reuse_check_ok": check.as_ref().map(Result::is_ok),
            "reuse_check_error": check.as_ref().and_then(|c| c.as_ref().err()),
        });
        println!("{doc:#}");
        return Ok(());
    }
    println!("poolbench discover: {}\n", target.url);
    if !keeps_alive {
        println!("keep-alive:     no: the server closes the connection after each response");
    }
    match found {
        Some(found) => {
            let all: Vec<String> = idle.iter().map(|t| format!("{:.1}", ms(*t))).collect();
            println!(
                "idle timeout:   {:.0} ms (the server closed {} idle connection(s) after {} ms: {})",
                ms(found),
                idle.len(),
                all.join(", "),
                closes.join(", "),
            );
        }
        None if keeps_alive => println!(
            "idle timeout:   longer than {:?}: no idle connection was closed by then (--max-idle)",
            args.max_idle
        ),
        None => {}
    }
    match (&keep_alive, advertised, agrees) {
        (None, _, _) => println!("advertised:     nothing (no Keep-Alive header)"),
        (Some(raw), Some(secs), Some(true)) => {
            println!(
                "advertised:     Keep-Alive: {raw} (timeout={secs} s, agrees with the measurement)"
            );
        }
        (Some(raw), Some(secs), Some(false)) => println!(
            "advertised:     Keep-Alive: {raw}: DIFFERS, the server claims {secs} s but closes \
             idle connections after {:.0} ms",
            found.map_or(0.0, ms)
        ),
        (Some(raw), _, _) => println!("advertised:     Keep-Alive: {raw}"),
    }
    if let (Some(found), Some(check)) = (found, &check) {
        let after = ms(found.mul_f64(CHECK_SHARE));
        match check {
            Ok(()) => println!(
                "check:          a second GET after {after:.0} ms idle was served on the same connection"
            ),
            Err(e) => println!(
                "check:          a second GET after {after:.0} ms idle FAILED ({e}): the server may drop idle connections earlier, without a FIN"
            ),
        }
    }
    println!("requests sent:  {requests} (GET only)");
    Ok(())
}

/// Whether a measured timeout is what `Keep-Alive: timeout=secs` says:
/// servers round down to whole seconds (and `timeout=0` means "less than a
/// second"), so the truth lies in `[secs, secs + 1)`, less 10% for timer
/// slack.
fn agrees(found: Duration, secs: u64) -> bool {
    let low = Duration::from_secs(secs).mul_f64(0.9);
    let high = Duration::from_secs(secs.saturating_add(1));
    found >= low && found < high
}

/// One GET, then watches the idle connection until the server closes it
/// or `max` passes.
async fn watch(authority: &str, path: &str, max: Duration) -> std::io::Result<Watched> {
    let mut stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let head = answered(wire::get(&mut stream, authority, path)).await?;
    if head.closes {
        return Ok(Watched { head, closed: None });
    }
    let idle_since = Instant::now();
    let mut byte = [0u8; 1];
    let closed = match tokio::time::timeout(max, stream.read(&mut byte)).await {
        Err(_) => None,
        Ok(result) => {
            let kind = match result {
                Ok(0) => Close::Fin,
                Ok(_) => Close::Data,
                Err(_) => Close::Reset,
            };
            Some((Instant::now().saturating_duration_since(idle_since), kind))
        }
    };
    Ok(Watched { head, closed })
}

/// A GET, `pause` idle, another GET on the same connection.
async fn check_reuse(authority: &str, path: &str, pause: Duration) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    answered(wire::get(&mut stream, authority, path)).await?;
    tokio::time::sleep(pause).await;
    answered(wire::get(&mut stream, authority, path))
        .await
        .map(drop)
}

/// `get`, failing with `TimedOut` if the server does not answer in time.
async fn answered<T>(get: impl Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
    tokio::time::timeout(REQUEST_TIMEOUT, get)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no complete response within {REQUEST_TIMEOUT:?}"),
            ))
        })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advertised_timeout_agrees_within_its_rounding() {
        assert!(agrees(Duration::from_millis(5_300), 5));
        assert!(agrees(Duration::from_millis(4_600), 5));
        assert!(!agrees(Duration::from_millis(6_100), 5));
        assert!(!agrees(Duration::from_millis(2_000), 5));
        assert!(agrees(Duration::from_millis(300), 0));
    }
}
