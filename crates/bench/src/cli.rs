//! Command-line arguments: one subcommand per scenario.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use freshpool_origin::CloseMode;

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
    /// connections opened, p50/p99 latency and the idle timeout the client
    /// learned.
    Race(RaceArgs),
    /// Loopback keep-alive requests per second at chosen concurrencies, for
    /// the same clients plus a bare hyper `SendRequest` per task, with
    /// ratios to hyper-util.
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
    /// Requests per client, spread over its senders.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub(crate) requests: u32,
    /// The mean pause between one sender's requests [default: the idle
    /// timeout].
    #[arg(long, value_parser = parse_duration)]
    pub(crate) interval: Option<Duration>,
    /// The largest deviation of a pause from the interval, either way.
    #[arg(long, default_value = "2ms", value_parser = parse_duration)]
    pub(crate) jitter: Duration,
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
    /// The built-in origin's idle timeout.
    #[arg(long, default_value = "200ms", value_parser = parse_duration, conflicts_with = "target")]
    pub(crate) idle: Duration,
    /// How the built-in origin closes an idle connection.
    #[arg(long, value_enum, default_value_t = Close::Fin, conflicts_with = "target")]
    pub(crate) close: Close,
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
    /// How long each client runs at each concurrency.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Print one JSON document instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
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
