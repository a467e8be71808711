//! `freshpool-proxy`: a reverse proxy in front of one upstream server,
//! forwarding with `freshpool::Client` so that no request meets a stale
//! upstream connection.
//!
//! ```text
//! freshpool-proxy --listen 127.0.0.1:8000 --upstream http://127.0.0.1:8080
//! ```
//!
//! It serves HTTP/1.1 and h2c, or with `--tls-cert` and `--tls-key` TLS
//! with ALPN `h2` and `http/1.1`, and on SIGINT or SIGTERM stops accepting
//! and drains the requests in flight (for `--drain`, 30 s by default)
//! before it exits. Exit status: 0 after a clean shutdown, 1 when it could
//! not start, 2 for bad arguments.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Writes a line to standard error, ignoring a closed stream: a proxy whose
/// stderr went away must not panic on its way out (`eprintln!` would).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use freshpool_proxy::{Builder, Proxy, RequestBody, Upstream};
use hyper_util::client::legacy::Client as LegacyClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

const USAGE: &str = "\
freshpool-proxy: a reverse proxy that never answers 502 for a stale upstream connection

usage: freshpool-proxy --listen ADDR --upstream URL [options]

  --listen ADDR             address to serve clients on (HTTP/1.1 and h2c), e.g. 127.0.0.1:8000
  --upstream URL            the server to forward to: http://host[:port][/prefix]
  --tls-cert PATH           serve TLS (ALPN h2 and http/1.1) with this PEM certificate chain;
                            needs --tls-key; X-Forwarded-Proto is then https
  --tls-key PATH            the PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert
  --timeout DUR             wait this long for the upstream's response head, and for each
                            piece of its body, before a 504 [default: 30s; `none` waits forever]
  --max-request-body SIZE   answer 413 to larger request bodies (e.g. 10M) [default: no limit]
  --max-response-body SIZE  answer 502 to larger response bodies [default: no limit]
  --preserve-host           send the client's Host upstream [default: the upstream's authority]
  --no-forwarded            add no X-Forwarded-For/-Proto/-Host
  --forwarded-proto PROTO   the X-Forwarded-Proto value [default: http]
  --via NAME                the name this proxy gives in Via [default: freshpool-proxy]
  --no-via                  add no Via
  --no-upgrades             do not pass HTTP/1.1 upgrades (WebSocket) through
  --allow-connect           tunnel CONNECT requests (to any host!) instead of answering 405
  --stats-path PATH         answer GET PATH with the proxy's and the pool's counters
  --upstream-http2          speak HTTP/2 (h2c, prior knowledge) to the upstream
  --client NAME             freshpool (default) or hyper-util, the client to forward with
  --drain DUR               on SIGINT/SIGTERM, wait this long for requests in flight [default: 30s]
  -h, --help                print this help
  -V, --version             print the version

Durations take a unit: 500ms, 30s, 2m. Sizes take an optional K, M or G (powers of 1024).
";

/// The command line, checked.
#[derive(Debug)]
struct Args {
    listen: SocketAddr,
    /// `--tls-cert` and `--tls-key`, given together.
    tls: Option<(PathBuf, PathBuf)>,
    builder: Builder,
    upstream_http2: bool,
    hyper_util: bool,
    drain: Duration,
}

/// Why the command line was refused, or what to print instead of running.
enum Exit {
    Print(String),
    Usage(String),
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, Exit> {
    let mut listen = None;
    let mut upstream: Option<http::Uri> = None;
    let mut settings: Vec<Box<dyn FnOnce(Builder) -> Builder>> = Vec::new();
    let mut upstream_http2 = false;
    let mut tls_cert = None;
    let mut tls_key = None;
    let mut hyper_util = false;
    let mut drain = Duration::from_secs(30);
    while let Some(flag) = argv.next() {
        let mut value = |name: &str| {
            argv.next()
                .ok_or_else(|| Exit::Usage(format!("{name} needs a value")))
        };
        match flag.as_str() {
            "-h" | "--help" => return Err(Exit::Print(USAGE.to_owned())),
            "-V" | "--version" => {
                return Err(Exit::Print(format!(
                    "freshpool-proxy {}\n",
                    env!("CARGO_PKG_VERSION")
                )));
            }
            "--listen" => {
                let text = value("--listen")?;
                listen = Some(text.parse().map_err(|e| {
                    Exit::Usage(format!(
                        "--listen {text}: {e} (expected e.g. 127.0.0.1:8000)"
                    ))
                })?);
            }
            "--upstream" => {
                let text = value("--upstream")?;
                upstream = Some(
                    text.parse()
                        .map_err(|e| Exit::Usage(format!("--upstream {text}: {e}")))?,
                );
            }
            "--tls-cert" => tls_cert = Some(PathBuf::from(value("--tls-cert")?)),
            "--tls-key" => tls_key = Some(PathBuf::from(value("--tls-key")?)),
            "--timeout" => {
                let text = value("--timeout")?;
                let timeout = if text == "none" {
                    None
                } else {
                    Some(duration(&text).map_err(|e| Exit::Usage(format!("--timeout: {e}")))?)
                };
                settings.push(Box::new(move |b| b.upstream_timeout(timeout)));
            }
            "--max-request-body" => {
                let limit = size(&value("--max-request-body")?)
                    .map_err(|e| Exit::Usage(format!("--max-request-body: {e}")))?;
                settings.push(Box::new(move |b| b.max_request_body(Some(limit))));
            }
            "--max-response-body" => {
                let limit = size(&value("--max-response-body")?)
                    .map_err(|e| Exit::Usage(format!("--max-response-body: {e}")))?;
                settings.push(Box::new(move |b| b.max_response_body(Some(limit))));
            }
            "--preserve-host" => settings.push(Box::new(|b| b.preserve_host(true))),
            "--no-forwarded" => settings.push(Box::new(|b| b.forwarded_headers(false))),
            "--forwarded-proto" => {
                let proto = value("--forwarded-proto")?;
                settings.push(Box::new(move |b| b.forwarded_proto(&proto)));
            }
            "--via" => {
                let name = value("--via")?;
                settings.push(Box::new(move |b| b.via(Some(&name))));
            }
            "--no-via" => settings.push(Box::new(|b| b.via(None))),
            "--no-upgrades" => settings.push(Box::new(|b| b.upgrades(false))),
            "--allow-connect" => settings.push(Box::new(|b| b.allow_connect(true))),
            "--stats-path" => {
                let path = value("--stats-path")?;
                settings.push(Box::new(move |b| b.stats_path(Some(&path))));
            }
            "--upstream-http2" => upstream_http2 = true,
            "--client" => match value("--client")?.as_str() {
                "freshpool" => hyper_util = false,
                "hyper-util" => hyper_util = true,
                other => {
                    return Err(Exit::Usage(format!(
                        "--client {other}: expected freshpool or hyper-util"
                    )));
                }
            },
            "--drain" => {
                drain = duration(&value("--drain")?)
                    .map_err(|e| Exit::Usage(format!("--drain: {e}")))?;
            }
            other => return Err(Exit::Usage(format!("unknown argument {other:?}"))),
        }
    }
    let listen = listen.ok_or_else(|| Exit::Usage("--listen ADDR is required".to_owned()))?;
    let upstream = upstream.ok_or_else(|| Exit::Usage("--upstream URL is required".to_owned()))?;
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        (Some(_), None) => {
            return Err(Exit::Usage(
                "--tls-cert needs --tls-key (the certificate's private key)".to_owned(),
            ));
        }
        (None, Some(_)) => {
            return Err(Exit::Usage(
                "--tls-key needs --tls-cert (the certificate chain)".to_owned(),
            ));
        }
    };
    let builder = settings
        .into_iter()
        .fold(Proxy::builder(upstream), |b, set| set(b));
    Ok(Args {
        listen,
        tls,
        builder,
        upstream_http2,
        hyper_util,
        drain,
    })
}

/// `250ms`, `1.5s`, `2m` as a [`Duration`].
fn duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit (use ms, s or m)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{number:?} is not a number"))?;
    let seconds = match unit {
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("unknown unit {unit:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is out of range"))
}

/// `512`, `64K`, `10M`, `1G` in bytes.
fn size(text: &str) -> Result<u64, String> {
    let (number, shift) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 10),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 20),
        Some(b'g' | b'G') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 512, 64K, 10M)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Resolves on the first SIGINT or SIGTERM.
async fn signalled() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term = async {
        match term.as_mut() {
            Some(term) => {
                term.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
    say!("freshpool-proxy: shutting down, draining requests in flight");
}

/// The TLS config the serve loop takes; nothing without the `bin-tls`
/// feature.
#[cfg(feature = "bin-tls")]
type Tls = rustls::ServerConfig;
#[cfg(not(feature = "bin-tls"))]
type Tls = std::convert::Infallible;

/// The server config from a PEM certificate chain and a PEM private key,
/// on the ring provider; the error names the file and the cause.
#[cfg(feature = "bin-tls")]
fn tls_config(cert: &Path, key: &Path) -> Result<Tls, String> {
    use rustls::pki_types::pem::{Error as PemError, PemObject};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let cause = |error: PemError| match error {
        PemError::Io(error) => error.to_string(),
        other => format!("not valid PEM: {other}"),
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("--tls-cert {}: {}", cert.display(), cause(e)))?;
    if certs.is_empty() {
        return Err(format!(
            "--tls-cert {}: no CERTIFICATE in the file (expected a PEM certificate chain)",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| match e {
        PemError::NoItemsFound => format!(
            "--tls-key {}: no PRIVATE KEY in the file (expected PEM: PKCS#8, PKCS#1 or SEC1)",
            key.display()
        ),
        other => format!("--tls-key {}: {}", key.display(), cause(other)),
    })?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, private))
        .map_err(|e| {
            format!(
                "--tls-cert {} with --tls-key {}: {e}",
                cert.display(),
                key.display()
            )
        })
}

/// Without the `bin-tls` feature: TLS is refused.
#[cfg(not(feature = "bin-tls"))]
fn tls_config(cert: &Path, _key: &Path) -> Result<Tls, String> {
    Err(format!(
        "--tls-cert {}: this freshpool-proxy was built without TLS (feature bin-tls)",
        cert.display()
    ))
}

/// Serves `proxy`, over TLS when `tls` is given, until SIGINT or SIGTERM.
async fn serve<Cl: Upstream>(
    listener: TcpListener,
    tls: Option<Tls>,
    proxy: Proxy<Cl>,
    drain: Duration,
) -> std::io::Result<()> {
    let drain = Some(drain);
    match tls {
        #[cfg(feature = "bin-tls")]
        Some(tls) => {
            freshpool_proxy::serve_tls_with_drain(listener, tls, proxy, signalled(), drain).await
        }
        #[cfg(not(feature = "bin-tls"))]
        Some(never) => match never {},
        None => freshpool_proxy::serve_with_drain(listener, proxy, signalled(), drain).await,
    }
}

async fn run(args: Args) -> Result<(), String> {
    let tls = match &args.tls {
        Some((cert, key)) => Some(tls_config(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let scheme = if tls.is_some() {
        "TLS, ALPN h2 and http/1.1"
    } else {
        "HTTP/1.1 and h2c"
    };
    if args.hyper_util {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client = LegacyClient::builder(TokioExecutor::new())
            .http2_only(args.upstream_http2)
            .build::<_, RequestBody>(http);
        let proxy = args.builder.build(client).map_err(|e| e.to_string())?;
        say!("freshpool-proxy: listening on {local} ({scheme}), {proxy:?} (hyper-util client)");
        serve(listener, tls, proxy, args.drain).await
    } else {
        let client = freshpool::Client::builder()
            .http2_only(args.upstream_http2)
            .build_http::<RequestBody>()
            .map_err(|e| e.to_string())?;
        let proxy = args.builder.build(client).map_err(|e| e.to_string())?;
        say!("freshpool-proxy: listening on {local} ({scheme}), {proxy:?}");
        serve(listener, tls, proxy, args.drain).await
    }
    .map_err(|e| format!("serving on {local}: {e}"))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(Exit::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(Exit::Usage(message)) => {
            say!("freshpool-proxy: {message}\n(see freshpool-proxy --help)");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            say!("freshpool-proxy: cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            say!("freshpool-proxy: {message}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, Exit> {
        parse(list.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn sizes_and_durations_parse_with_units() {
        assert_eq!(size("512"), Ok(512));
        assert_eq!(size("64K"), Ok(64 << 10));
        assert_eq!(size("10m"), Ok(10 << 20));
        assert!(size("ten").is_err());
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert!(duration("5").is_err());
    }

    #[test]
    fn listen_and_upstream_are_required_and_flags_are_checked() {
        let usage = |r: Result<Args, Exit>| match r {
            Err(Exit::Usage(m)) => m,
            _ => panic!("expected a usage error"),
        };
        assert!(usage(args(&["--upstream", "http://a:1"])).contains("--listen"));
        assert!(usage(args(&["--listen", "127.0.0.1:0"])).contains("--upstream"));
        assert!(usage(args(&["--bogus"])).contains("unknown argument"));
        assert!(usage(args(&["--listen", "nope"])).contains("--listen nope"));
        let ok = args(&[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--timeout",
            "none",
            "--client",
            "hyper-util",
            "--drain",
            "1s",
        ]);
        let Ok(ok) = ok else {
            panic!("valid arguments refused");
        };
        assert!(ok.hyper_util);
        assert_eq!(ok.drain, Duration::from_secs(1));
    }
}
