//! Where requests go: the built-in origin or a user's `--target`.

use std::time::Duration;

use http::Uri;
use http::uri::Scheme;
use tokio::net::TcpStream;

use crate::Failure;
use crate::origin::BuiltIn;

/// How long the reachability check waits for a TCP connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A validated `http://` URL and the `host:port` it connects to.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// Where requests go.
    pub(crate) url: Uri,
    /// `host:port`, for plain TCP connections.
    pub(crate) authority: String,
}

/// Checks a user's URL: `http` with a host; the port defaults to 80 and
/// the path to `/`.
///
/// # Errors
///
/// A usage failure naming what is wrong with the URL.
pub(crate) fn parse(url: &Uri) -> Result<Target, Failure> {
    match url.scheme() {
        Some(scheme) if *scheme == Scheme::HTTP => {}
        Some(scheme) => {
            return Err(Failure::usage(format!(
                "--target {url}: scheme {scheme} is not supported (poolbench speaks plain http://)"
            )));
        }
        None => {
            return Err(Failure::usage(format!(
                "--target {url}: not an absolute URL (expected http://host[:port]/path)"
            )));
        }
    }
    let Some(host) = url.host() else {
        return Err(Failure::usage(format!(
            "--target {url}: the URL has no host"
        )));
    };
    let port = url.port_u16().unwrap_or(80);
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    let authority = format!("{host}:{port}");
    let url = format!("http://{authority}{path}")
        .parse()
        .map_err(|e| Failure::usage(format!("--target {url}: {e}")))?;
    Ok(Target { url, authority })
}

/// The built-in origin's URL.
///
/// # Errors
///
/// Only if the origin's address does not form a URL, which would be a bug.
pub(crate) fn builtin(origin: &BuiltIn) -> Result<Target, Failure> {
    let url = format!("{}/orders", origin.base_url())
        .parse::<Uri>()
        .map_err(|e| Failure::runtime(format!("built-in origin URL: {e}")))?;
    parse(&url)
}

/// Opens (and closes) one TCP connection, so that an unreachable target
/// is one clear error rather than every request failing.
///
/// # Errors
///
/// A runtime failure naming the target and the cause.
pub(crate) async fn check_reachable(target: &Target) -> Result<(), Failure> {
    match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target.authority)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Failure::runtime(format!(
            "cannot reach {}: {e}",
            target.url
        ))),
        Err(_) => Err(Failure::runtime(format!(
            "cannot reach {}: no TCP connection within {CONNECT_TIMEOUT:?}",
            target.url
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_get_a_port_and_a_path() {
        let t = parse(&Uri::from_static("http://127.0.0.1")).expect("valid");
        assert_eq!(t.authority, "127.0.0.1:80");
        assert_eq!(t.url, "http://127.0.0.1:80/");
        let t = parse(&Uri::from_static("http://localhost:8080/a?b=1")).expect("valid");
        assert_eq!(t.url, "http://localhost:8080/a?b=1");
    }

    #[test]
    fn other_schemes_and_relative_urls_are_refused() {
        let e = parse(&Uri::from_static("https://example.invalid/")).unwrap_err();
        assert!(e.message.contains("not supported"), "{}", e.message);
        let e = parse(&Uri::from_static("/just/a/path")).unwrap_err();
        assert!(e.message.contains("not an absolute URL"), "{}", e.message);
    }
}
