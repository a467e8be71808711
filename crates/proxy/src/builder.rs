//! Configuration of a [`Proxy`](crate::Proxy).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::uri::{Authority, Scheme};
use http::{HeaderValue, Uri};

use crate::Proxy;
use crate::upstream::Upstream;

/// Everything a built proxy needs, frozen.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) scheme: Scheme,
    pub(crate) authority: Authority,
    /// The upstream URL's path without its trailing `/` (often empty).
    pub(crate) prefix: String,
    /// `scheme://authority`, for error messages and stats.
    pub(crate) upstream_name: String,
    pub(crate) pseudonym: Option<String>,
    pub(crate) forwarded: bool,
    pub(crate) forwarded_proto: HeaderValue,
    pub(crate) preserve_host: bool,
    pub(crate) upstream_timeout: Option<Duration>,
    pub(crate) max_request_body: Option<u64>,
    pub(crate) max_response_body: Option<u64>,
    pub(crate) upgrades: bool,
    pub(crate) connect: bool,
    pub(crate) stats_path: Option<String>,
}

/// Builds a [`Proxy`]; see [`Proxy::builder`].
///
/// Each setter documents its default. [`build`](Builder::build) validates
/// the upstream URL and returns a [`BuildError`] instead of panicking.
///
/// ```
/// use std::time::Duration;
/// use freshpool_proxy::{Proxy, RequestBody};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// let client = freshpool::Client::builder().build_http::<RequestBody>()?;
/// let proxy = Proxy::builder("http://10.0.0.7:8080/api".parse()?)
///     .upstream_timeout(Some(Duration::from_secs(5)))
///     .max_request_body(Some(1 << 20))
///     .preserve_host(true)
///     .forwarded_proto("https")
///     .stats_path(Some("/.freshpool/stats"))
///     .build(client)?;
/// # drop(proxy);
///
/// let bad = Proxy::builder("ftp://10.0.0.7/".parse()?)
///     .build(freshpool::Client::builder().build_http::<RequestBody>()?);
/// assert_eq!(bad.unwrap_err().setting(), "upstream");
/// # Ok(())
/// # }
/// ```
#[must_use]
#[derive(Debug, Clone)]
pub struct Builder {
    upstream: Uri,
    pseudonym: Option<String>,
    forwarded: bool,
    forwarded_proto: String,
    preserve_host: bool,
    upstream_timeout: Option<Duration>,
    max_request_body: Option<u64>,
    max_response_body: Option<u64>,
    upgrades: bool,
    connect: bool,
    stats_path: Option<String>,
}

impl Builder {
    pub(crate) fn new(upstream: Uri) -> Builder {
        Builder {
            upstream,
            pseudonym: Some("freshpool-proxy".to_owned()),
            forwarded: true,
            forwarded_proto: "http".to_owned(),
            preserve_host: false,
            upstream_timeout: Some(Duration::from_secs(30)),
            max_request_body: None,
            max_response_body: None,
            upgrades: true,
            connect: false,
            stats_path: None,
        }
    }

    /// The name this proxy gives itself in `Via` (RFC 9110 §7.6.3), added
    /// to every forwarded request and response; `None` adds no `Via`.
    /// Default: `freshpool-proxy`.
    pub fn via(mut self, pseudonym: Option<&str>) -> Builder {
        self.pseudonym = pseudonym.map(str::to_owned);
        self
    }

    /// Whether to add `X-Forwarded-For` (the client's address, appended to
    /// any earlier value), `X-Forwarded-Proto` and `X-Forwarded-Host` (the
    /// `Host` the client asked for). The client's address comes from the
    /// [`ClientAddr`](crate::ClientAddr) request extension. Default: `true`.
    pub fn forwarded_headers(mut self, enabled: bool) -> Builder {
        self.forwarded = enabled;
        self
    }

    /// The `X-Forwarded-Proto` value: the scheme clients reach this proxy
    /// with (`https` behind a TLS terminator). Default: `http`.
    pub fn forwarded_proto(mut self, proto: &str) -> Builder {
        proto.clone_into(&mut self.forwarded_proto);
        self
    }

    /// Whether the upstream sees the client's `Host` (`true`) or the
    /// upstream URL's authority (`false`). Default: `false`.
    pub fn preserve_host(mut self, enabled: bool) -> Builder {
        self.preserve_host = enabled;
        self
    }

    /// How long to wait for the upstream's response head, and then for
    /// each piece of its body; past it the client gets a `504` (or, once
    /// the head was sent, an aborted body). `None` waits forever. Default:
    /// 30 s.
    pub fn upstream_timeout(mut self, timeout: Option<Duration>) -> Builder {
        self.upstream_timeout = timeout;
        self
    }

    /// The largest request body forwarded, in bytes: a larger declared
    /// `Content-Length` is answered `413` at once, and a streamed body that
    /// grows past it is cut off (then `413` if no response has started).
    /// `None` for no limit. Default: `None`.
    pub fn max_request_body(mut self, limit: Option<u64>) -> Builder {
        self.max_request_body = limit;
        self
    }

    /// The largest response body passed on, in bytes: a larger declared
    /// `Content-Length` is answered `502`, and a streamed body that grows
    /// past it is aborted. `None` for no limit. Default: `None`.
    pub fn max_response_body(mut self, limit: Option<u64>) -> Builder {
        self.max_response_body = limit;
        self
    }

    /// Whether HTTP/1.1 upgrades (`Connection: upgrade`, e.g. WebSocket)
    /// are passed through: the upstream's `101 Switching Protocols` goes
    /// to the client and the two connections are joined. When off, the
    /// `Upgrade` header is dropped as any hop-by-hop field. Default: `true`.
    pub fn upgrades(mut self, enabled: bool) -> Builder {
        self.upgrades = enabled;
        self
    }

    /// Whether `CONNECT host:port` opens a TCP tunnel to the authority the
    /// client names. Off, CONNECT is answered `405`. Turn it on only behind
    /// access control: it tunnels to any host the proxy can reach.
    /// Default: `false`.
    pub fn allow_connect(mut self, enabled: bool) -> Builder {
        self.connect = enabled;
        self
    }

    /// A path (e.g. `/.freshpool/stats`) at which the proxy answers a `GET`
    /// itself with its counters and the upstream pool's, as text, instead
    /// of forwarding it. Default: `None` (every path is forwarded).
    pub fn stats_path(mut self, path: Option<&str>) -> Builder {
        self.stats_path = path.map(str::to_owned);
        self
    }

    /// Validates the settings and builds a proxy that forwards with
    /// `client`.
    ///
    /// # Errors
    ///
    /// A [`BuildError`] naming the setting when the upstream URL has no
    /// scheme, a scheme other than `http`/`https`, no host, or a query;
    /// when `forwarded_proto` or the `via` name is not a valid header
    /// value; or when `stats_path` does not start with `/`.
    pub fn build<Cl: Upstream>(self, client: Cl) -> Result<Proxy<Cl>, BuildError> {
        let scheme = match self.upstream.scheme() {
            Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS => s.clone(),
            Some(_) => return Err(BuildError::new("upstream", "scheme must be http or https")),
            None => return Err(BuildError::new("upstream", "must be an absolute URL")),
        };
        let Some(authority) = self.upstream.authority().cloned() else {
            return Err(BuildError::new("upstream", "has no host"));
        };
        if self.upstream.query().is_some() {
            return Err(BuildError::new("upstream", "must not have a query"));
        }
        let prefix = self.upstream.path().trim_end_matches('/').to_owned();
        let forwarded_proto = HeaderValue::from_str(&self.forwarded_proto)
            .map_err(|_| BuildError::new("forwarded_proto", "not a valid header value"))?;
        if let Some(name) = &self.pseudonym
            && (name.is_empty() || HeaderValue::from_str(name).is_err())
        {
            return Err(BuildError::new("via", "not a valid header value"));
        }
        if let Some(path) = &self.stats_path
            && !path.starts_with('/')
        {
            return Err(BuildError::new("stats_path", "must start with /"));
        }
        let config = Config {
            upstream_name: format!("{scheme}://{authority}"),
            scheme,
            authority,
            prefix,
            pseudonym: self.pseudonym,
            forwarded: self.forwarded,
            forwarded_proto,
            preserve_host: self.preserve_host,
            upstream_timeout: self.upstream_timeout,
            max_request_body: self.max_request_body,
            max_response_body: self.max_response_body,
            upgrades: self.upgrades,
            connect: self.connect,
            stats_path: self.stats_path,
        };
        Ok(Proxy::from_parts(client, Arc::new(config)))
    }
}

/// An invalid [`Builder`] setting, from [`Builder::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError {
    setting: &'static str,
    problem: &'static str,
}

impl BuildError {
    fn new(setting: &'static str, problem: &'static str) -> BuildError {
        BuildError { setting, problem }
    }

    /// The setting at fault.
    pub fn setting(&self) -> &'static str {
        self.setting
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid proxy setting {}: {}",
            self.setting, self.problem
        )
    }
}

impl std::error::Error for BuildError {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::client::legacy::Client as LegacyClient;
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;

    fn client() -> LegacyClient<HttpConnector, crate::RequestBody> {
        LegacyClient::builder(TokioExecutor::new()).build(HttpConnector::new())
    }

    fn refused(upstream: &'static str, configure: impl FnOnce(Builder) -> Builder) -> BuildError {
        configure(Proxy::builder(Uri::from_static(upstream)))
            .build(client())
            .expect_err("a bad setting was accepted")
    }

    #[test]
    fn bad_upstreams_and_settings_are_refused_by_name() {
        let e = refused("/relative", |b| b);
        assert_eq!(
            (e.setting(), e.to_string().as_str()),
            (
                "upstream",
                "invalid proxy setting upstream: must be an absolute URL"
            )
        );
        assert_eq!(refused("ftp://host/", |b| b).setting(), "upstream");
        assert_eq!(refused("http://host/?q=1", |b| b).setting(), "upstream");
        assert_eq!(
            refused("http://host", |b| b.forwarded_proto("a\nb")).setting(),
            "forwarded_proto"
        );
        assert_eq!(refused("http://host", |b| b.via(Some(""))).setting(), "via");
        assert_eq!(
            refused("http://host", |b| b.stats_path(Some("stats"))).setting(),
            "stats_path"
        );
    }

    #[test]
    fn a_prefix_loses_its_trailing_slash() {
        let proxy = Proxy::builder(Uri::from_static("https://host:8443/api/"))
            .build(client())
            .expect("valid");
        assert_eq!(proxy.config().prefix, "/api");
        assert_eq!(proxy.config().upstream_name, "https://host:8443");
    }
}
