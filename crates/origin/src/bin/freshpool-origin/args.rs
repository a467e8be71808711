//! Hand-rolled command-line parsing (the crate keeps a small dependency
//! list, so no clap).

use std::net::SocketAddr;
use std::time::Duration;

use freshpool_origin::{Advertise, Builder, CloseMode};

pub(crate) const USAGE: &str = "\
freshpool-origin: a programmable, misbehaving HTTP/1.1 and h2c origin server

USAGE:
    freshpool-origin [OPTIONS]

OPTIONS:
    --listen ADDR            address to listen on [default: 127.0.0.1:8090]
    --idle DURATION          idle timeout between requests, e.g. 200ms, 5s [default: 5s]
    --close MODE             how idle connections close: fin, rst or 408 [default: fin]
    --keep-alive WHAT        Keep-Alive header: none, truthful, a false timeout
                             (SECS or DURATION, sent as timeout=<whole secs>),
                             or raw:VALUE sent verbatim [default: none]
    --max-requests N         requests per connection before the server closes it
    --silent-last            do not announce the last of --max-requests with
                             Connection: close; just close after it
    --delay DURATION         delay before each response [default: 0ms]
    --body-size BYTES        response body size [default: 0]
    --chunked                chunked response bodies
    --status CODE            response status [default: 200]
    --max-request-body BYTES largest request body accepted [default: 16777216]
    --h2c / --no-h2c         serve HTTP/2 prior-knowledge connections, or not
                             [default: --h2c]
    --h2-goaway-after N      send GOAWAY after N requests on an HTTP/2 connection
    -h, --help               print this help

Requests can override most settings with x-* headers (x-delay-ms,
x-body-size, x-chunked, x-close, x-close-mid-body, x-reset-after-read, ...);
see the crate documentation. Durations take a unit: ns, us, ms, s or m.
";

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Help,
    Run(Options),
}

/// The settings given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) listen: SocketAddr,
    pub(crate) idle: Duration,
    pub(crate) close: CloseMode,
    pub(crate) keep_alive: Advertise,
    pub(crate) max_requests: Option<u32>,
    pub(crate) silent_last: bool,
    pub(crate) delay: Duration,
    pub(crate) body_size: usize,
    pub(crate) chunked: bool,
    pub(crate) status: u16,
    pub(crate) max_request_body: u64,
    pub(crate) h2c: bool,
    pub(crate) h2_goaway_after: Option<u32>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: SocketAddr::from(([127, 0, 0, 1], 8090)),
            idle: Duration::from_secs(5),
            close: CloseMode::Fin,
            keep_alive: Advertise::None,
            max_requests: None,
            silent_last: false,
            delay: Duration::ZERO,
            body_size: 0,
            chunked: false,
            status: 200,
            max_request_body: 16 * 1024 * 1024,
            h2c: true,
            h2_goaway_after: None,
        }
    }
}

impl Options {
    /// The origin these options describe.
    pub(crate) fn builder(&self) -> Builder {
        let mut builder = Builder::new()
            .listen(self.listen)
            .idle_timeout(self.idle)
            .close_mode(self.close)
            .advertise(self.keep_alive.clone())
            .announce_last_request(!self.silent_last)
            .response_delay(self.delay)
            .body_size(self.body_size)
            .chunked(self.chunked)
            .status(self.status)
            .max_request_body(self.max_request_body)
            .h2c(self.h2c);
        if let Some(max) = self.max_requests {
            builder = builder.max_requests(max);
        }
        if let Some(after) = self.h2_goaway_after {
            builder = builder.h2_goaway_after(after);
        }
        builder
    }
}

/// Parses the arguments after the program name. Accepts `--flag value` and
/// `--flag=value`.
pub(crate) fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Command, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--listen" => {
                let v = value()?;
                options.listen = v.parse().map_err(|_| {
                    format!("--listen: {v:?} is not an address like 127.0.0.1:8090")
                })?;
            }
            "--idle" => options.idle = duration("--idle", &value()?)?,
            "--close" => {
                options.close = match value()?.to_ascii_lowercase().as_str() {
                    "fin" => CloseMode::Fin,
                    "rst" => CloseMode::Rst,
                    "408" => CloseMode::Timeout408,
                    other => return Err(format!("--close: {other:?} is not fin, rst or 408")),
                };
            }
            "--keep-alive" => {
                let v = value()?;
                options.keep_alive = if let Some(raw) = v.strip_prefix("raw:") {
                    Advertise::Value(raw.to_owned())
                } else if v.eq_ignore_ascii_case("none") {
                    Advertise::None
                } else if v.eq_ignore_ascii_case("truthful") {
                    Advertise::Truthful
                } else if let Ok(secs) = v.parse::<u64>() {
                    // Keep-Alive has whole seconds, so a bare number is seconds.
                    Advertise::False(Duration::from_secs(secs))
                } else {
                    Advertise::False(
                        duration("--keep-alive", &v)
                            .map_err(|err| format!("{err} (or use none, truthful or raw:VALUE)"))?,
                    )
                };
            }
            "--max-requests" => options.max_requests = Some(number("--max-requests", &value()?)?),
            "--silent-last" => options.silent_last = true,
            "--delay" => options.delay = duration("--delay", &value()?)?,
            "--body-size" => options.body_size = number("--body-size", &value()?)?,
            "--chunked" => options.chunked = true,
            "--status" => options.status = number("--status", &value()?)?,
            "--max-request-body" => {
                options.max_request_body = number("--max-request-body", &value()?)?;
            }
            "--h2c" => options.h2c = true,
            "--no-h2c" => options.h2c = false,
            "--h2-goaway-after" => {
                options.h2_goaway_after = Some(number("--h2-goaway-after", &value()?)?);
            }
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    Ok(Command::Run(options))
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{flag}: {value:?} is not a valid number"))
}

/// Parses `200ms`, `1.5s`, `2m`, `500us`, `10ns`.
pub(crate) fn duration(flag: &str, value: &str) -> Result<Duration, String> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let scale = match unit {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "" => {
            return Err(format!(
                "{flag}: {value:?} needs a unit: ns, us, ms, s or m"
            ));
        }
        _ => return Err(format!("{flag}: {value:?} has an unknown unit {unit:?}")),
    };
    number
        .parse::<f64>()
        .ok()
        .and_then(|n| Duration::try_from_secs_f64(n * scale).ok())
        .ok_or_else(|| format!("{flag}: {value:?} is not a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Options, String> {
        match parse(args.iter().map(|s| s.to_string()))? {
            Command::Run(options) => Ok(options),
            Command::Help => Err("help".into()),
        }
    }

    #[test]
    fn parses_every_flag() {
        let options = run(&[
            "--listen",
            "127.0.0.1:0",
            "--idle=200ms",
            "--close",
            "RST",
            "--keep-alive",
            "3s",
            "--max-requests",
            "10",
            "--silent-last",
            "--delay",
            "1.5s",
            "--body-size",
            "42",
            "--chunked",
            "--status",
            "503",
            "--max-request-body",
            "100",
            "--no-h2c",
            "--h2-goaway-after",
            "2",
        ])
        .expect("valid");
        let expected = Options {
            listen: "127.0.0.1:0".parse().expect("addr"),
            idle: Duration::from_millis(200),
            close: CloseMode::Rst,
            keep_alive: Advertise::False(Duration::from_secs(3)),
            max_requests: Some(10),
            silent_last: true,
            delay: Duration::from_millis(1500),
            body_size: 42,
            chunked: true,
            status: 503,
            max_request_body: 100,
            h2c: false,
            h2_goaway_after: Some(2),
        };
        assert_eq!(options, expected);
        assert_eq!(run(&[]), Ok(Options::default()));
        assert_eq!(
            run(&["--keep-alive", "truthful"]).map(|o| o.keep_alive),
            Ok(Advertise::Truthful)
        );
        assert_eq!(
            run(&["--keep-alive=raw:timeout=5, max=3"]).map(|o| o.keep_alive),
            Ok(Advertise::Value("timeout=5, max=3".into()))
        );
        assert_eq!(
            run(&["--close", "408"]).map(|o| o.close),
            Ok(CloseMode::Timeout408)
        );
        assert_eq!(parse(["-h".to_string()]), Ok(Command::Help));
        assert_eq!(
            run(&["--keep-alive", "30"]).map(|o| o.keep_alive),
            Ok(Advertise::False(Duration::from_secs(30)))
        );
        assert_eq!(run(&["--no-h2c", "--h2c"]).map(|o| o.h2c), Ok(true));
    }

    #[test]
    fn errors_name_the_flag_and_value() {
        for (args, needle) in [
            (&["--idle", "200"][..], "needs a unit"),
            (&["--idle", "5h"], "unknown unit"),
            (&["--idle", ".s"], "not a valid duration"),
            (&["--idle"], "--idle needs a value"),
            (&["--close", "slam"], "\"slam\""),
            (&["--listen", "localhost"], "--listen"),
            (&["--max-requests", "-1"], "--max-requests"),
            (&["--keep-alive", "often"], "raw:VALUE"),
            (&["--frobnicate"], "unknown argument"),
        ] {
            let err = run(args).expect_err(needle);
            assert!(err.contains(needle), "{args:?}: {err}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration("d", "10ns"), Ok(Duration::from_nanos(10)));
        assert_eq!(duration("d", "250us"), Ok(Duration::from_micros(250)));
        assert_eq!(duration("d", "2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("d", "0.25s"), Ok(Duration::from_millis(250)));
    }
}
