//! Command-line arguments: one subcommand per scenario.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use freshpool_origin::CloseMode;

use crate::gaps::{Gaps, parse_gaps};

/// Shows the keep-alive reuse race, and what freshpool does about it,
/// side by side with hyper-util in one process.
///
/// Every scenario runs over loopback against a built-in origin server
/// (`freshpool-origin`, on its own runtime) unless `--target` names another
/// server.
#[derive(Debug, Parser)]
#[command(name = "poolbench", version, about, long_about)]
pub(crate) struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// POST at about the server's idle timeout with every client at once,
    /// and count what fails.
    ///
    /// Each client (hyper-util's legacy Client as is, hyper-util with
    /// freshpool-legacy's Connector, with its RetryClient, and
    /// freshpool::Client) gets the same number of senders; each sender has
    /// its own pool, as separate services calling one backend do, and
    /// POSTs with a unique `x-request-id` every `--interval ± --jitter`.
    /// A request written as the server closes its idle connection fails.
    /// The table shows, per client: requests, errors by kind, requests the
    /// server processed twice (built-in origin only), connection reuse,
    /// the oracle (the share of requests whose gap was below the server's
    /// real idle timeout, i.e. that could safely have reused) and the
    /// efficiency (reuse ÷ oracle), connections opened, p50/p99 latency and
    /// the idle timeout the client learned; then how many requests fell
    /// below the client's retire time, between it and the real timeout,
    /// and above it.
    Race(RaceArgs),
    /// Loopback keep-alive requests per second at chosen concurrencies, for
    /// the same clients plus a bare hyper `SendRequest` per task, against a
    /// fixed-response server.
    ///
    /// The clients run in interleaved rounds (each once per round, the
    /// order rotating); the table gives each client's median per-round
    /// ratio, with quartiles, to its reference: freshpool and hyper-util to
    /// the bare connection, hyper-util's adapter to plain hyper-util.
    Throughput(ThroughputArgs),
    /// The race against freshpool::Client with each mechanism (probe,
    /// expiry from the Keep-Alive header, expiry learned from closes,
    /// retry) switched off in turn, to show what each one removes.
    ///
    /// The built-in origin advertises its idle timeout truthfully
    /// (`Keep-Alive: timeout=N`, whole seconds), so `--idle` defaults to one
    /// second.
    Ablation(AblationArgs),
    /// Finds a server's real idle timeout, and whether it advertises a
    /// different one.
    ///
    /// Opens a few connections, sends one GET on each, and times how long
    /// the server keeps each idle connection open before it closes it.
    /// Then it checks the finding with a second GET on fresh connections
    /// left idle a little less, and a little longer, than the timeout
    /// found. Only idempotent requests (GET) are sent, a bounded number of
    /// them.
    Discover(DiscoverArgs),
    /// The built-in origin closes every idle connection at once mid-run
    /// (a restart, a reload, an overloaded Apache event MPM), or with
    /// `--overload` closes idle connections a few milliseconds after their
    /// response for a while, then serves normally again.
    ///
    /// The table shows, per client, errors, reuse, the oracle and the
    /// efficiency before, during and after, and how many requests per
    /// sender it took until the efficiency over a sliding window of
    /// requests was back at 0.90 or more.
    Restart(RestartArgs),
    /// The race through reverse proxies: freshpool-proxy and the same
    /// proxy on hyper-util's client side by side (plus any `--proxy`),
    /// counting 5xx, duplicates at the origin, upstream reuse, latency
    /// added, and throughput as a ratio to the hyper-util proxy.
    Proxy(crate::proxy::ProxyArgs),
}

/// Settings shared by the race-like scenarios.
#[derive(Debug, Clone, Args)]
pub(crate) struct Schedule {
    /// Senders per client, each with its own pool.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) senders: u32,
    /// Requests per client, spread over its senders [default: 600; with
    /// --slow-body, 5 per sender; for restart, enough to fill --at, the
    /// overload and --after].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) requests: Option<u32>,
    /// The mean pause between one sender's requests [default: the idle
    /// timeout; for restart, half of it].
    #[arg(long, value_parser = parse_duration)]
    pub(crate) interval: Option<Duration>,
    /// The largest deviation of a pause from the interval, either way,
    /// uniform [default: 2ms].
    #[arg(long, value_parser = parse_duration, conflicts_with = "gaps")]
    pub(crate) jitter: Option<Duration>,
    /// Pauses drawn from a distribution instead: `uniform:0.5..1.5` is
    /// uniform on [0.5, 1.5] × the interval, wide enough to span a
    /// client's retire time and the server's timeout [default for restart:
    /// uniform:0.5..1.5; with --slow-body, uniform:0.9..1.1].
    #[arg(long, value_name = "uniform:LOW..HIGH", value_parser = parse_gaps)]
    pub(crate) gaps: Option<Gaps>,
    /// Seed of the jitter, for a reproducible schedule.
    #[arg(long, default_value_t = 0x5eed)]
    pub(crate) seed: u64,
    /// Start cold: each sender's first pause is the interval, like the
    /// rest. By default it is one and a half intervals, so that every
    /// client has seen the server close an idle connection once before the
    /// race proper, as a long-running service has. Cold, a request that
    /// meets the very first close can fail for any client: the table's
    /// "once known" column counts only the errors after a client knew the
    /// server's idle timeout.
    #[arg(long)]
    pub(crate) cold: bool,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
    /// Draw latency over time, one row per client, errors in red, to this
    /// SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub(crate) plot: Option<PathBuf>,
}

/// `poolbench race`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RaceArgs {
    /// Race this server instead of the built-in origin (an `http://` URL;
    /// it must answer POSTs). Duplicates are then not known.
    #[arg(long, value_name = "URL")]
    pub(crate) target: Option<http::Uri>,
    /// The built-in origin's idle timeout [default: 200ms; with
    /// --slow-body, 1s].
    #[arg(long, value_parser = parse_duration, conflicts_with = "target")]
    pub(crate) idle: Option<Duration>,
    /// How the built-in origin closes an idle connection.
    #[arg(long, value_enum, default_value_t = Close::Fin, conflicts_with = "target")]
    pub(crate) close: Close,
    /// The built-in origin advertises its idle timeout truthfully
    /// (`Keep-Alive: timeout=N`, whole seconds: use an --idle of whole
    /// seconds).
    #[arg(long, conflicts_with = "target")]
    pub(crate) keep_alive: bool,
    /// A slow consumer: the caller waits this long between a response's
    /// head and reading its body (of 4 KiB from the built-in origin). The
    /// gap to the next request still counts from the head, as the server's
    /// idle clock does. With the built-in origin this turns --keep-alive
    /// on, so that learning cannot make up for an idle clock that starts
    /// late.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) slow_body: Option<Duration>,
    /// The schedule and output.
    #[command(flatten)]
    pub(crate) schedule: Schedule,
}

/// `poolbench restart`.
#[derive(Debug, Clone, Args)]
pub(crate) struct RestartArgs {
    /// The built-in origin's idle timeout.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub(crate) idle: Duration,
    /// How the built-in origin closes idle connections, at the timeout and
    /// at the mass close.
    #[arg(long, value_enum, default_value_t = Close::Fin)]
    pub(crate) close: Close,
    /// When the origin closes every idle connection (or the overload
    /// begins), after the start.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) at: Duration,
    /// Instead of one mass close: from --at on, for this long, close each
    /// idle connection --early after its response (one idle longer
    /// already, at once), as an overloaded Apache event MPM does; then the
    /// normal timeout again.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) overload: Option<Duration>,
    /// The idle timeout during --overload.
    #[arg(long, default_value = "5ms", value_parser = parse_duration, requires = "overload")]
    pub(crate) early: Duration,
    /// How long the run goes on after the mass close or the overload.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) after: Duration,
    /// The sliding window, in requests, over which recovery is judged
    /// [default: the number of senders, one request each].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) window: Option<u32>,
    /// The schedule and output.
    #[command(flatten)]
    pub(crate) schedule: Schedule,
}

/// `poolbench ablation`.
#[derive(Debug, Clone, Args)]
pub(crate) struct AblationArgs {
    /// The built-in origin's idle timeout; it advertises it truthfully in
    /// whole seconds.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(crate) idle: Duration,
    /// How the built-in origin closes an idle connection.
    #[arg(long, value_enum, default_value_t = Close::Fin)]
    pub(crate) close: Close,
    /// The schedule and output.
    #[command(flatten)]
    pub(crate) schedule: Schedule,
}

/// `poolbench throughput`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ThroughputArgs {
    /// Measure against this server instead of the built-in origin (an
    /// `http://` URL answering GETs).
    #[arg(long, value_name = "URL")]
    pub(crate) target: Option<http::Uri>,
    /// Concurrent tasks, comma-separated; one measurement per value.
    #[arg(long, value_delimiter = ',', default_value = "1,32",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub(crate) concurrency: Vec<u32>,
    /// How long each client runs at each concurrency, in all rounds
    /// together.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Rounds the duration is split into: each client runs once per
    /// round, the order rotating, and each round gives one ratio per
    /// client to its reference.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) rounds: u32,
    /// The server measured against, when there is no --target: `fixed`
    /// answers every request with the same bytes from a thread of its own
    /// (so the clients pay almost everything), `origin` is the built-in
    /// origin.
    #[arg(long, value_enum, default_value_t = ServerKind::Fixed, conflicts_with = "target")]
    pub(crate) server: ServerKind,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The built-in server `poolbench throughput` measures against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ServerKind {
    /// `freshpool_origin::FixedServer`: the same response bytes for every
    /// request.
    Fixed,
    /// The built-in `freshpool-origin`.
    Origin,
}

/// `poolbench discover`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DiscoverArgs {
    /// The server to examine (an `http://` URL answering GETs).
    #[arg(long, value_name = "URL")]
    pub(crate) target: http::Uri,
    /// Idle connections watched at once.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=16))]
    pub(crate) connections: u32,
    /// Give up waiting for the server to close an idle connection after
    /// this long.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub(crate) max_idle: Duration,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// How the built-in origin closes an idle connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Close {
    /// A FIN, as Go, nginx and Node do.
    Fin,
    /// An RST, as a crashed process or a forgetful load balancer.
    Rst,
    /// A `408 Request Timeout`, then a FIN.
    #[value(name = "408")]
    Timeout408,
}

impl From<Close> for CloseMode {
    fn from(close: Close) -> CloseMode {
        match close {
            Close::Fin => CloseMode::Fin,
            Close::Rst => CloseMode::Rst,
            Close::Timeout408 => CloseMode::Timeout408,
        }
    }
}

/// Parses `250ms`, `1.5s`, `2m` or `300us` into a [`Duration`].
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit (use us, ms, s or m, e.g. 200ms)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} (use us, ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("300us"), Ok(Duration::from_micros(300)));
    }

    #[test]
    fn durations_without_unit_or_number_are_refused() {
        assert!(parse_duration("200").unwrap_err().contains("no unit"));
        assert!(parse_duration("ms").unwrap_err().contains("not a number"));
        assert!(parse_duration("5h").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("1.2.3s").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
