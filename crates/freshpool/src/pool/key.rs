//! What identifies an origin in the pool.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::ops::Range;
use std::sync::Arc;

use http::uri::{Authority, Scheme};
use http::{HeaderValue, Uri};

use crate::error::{Error, Kind};

/// An origin: scheme, host and port, as the pool tells servers apart. Two
/// origins never share a connection, nor what was learned about a server.
///
/// Hosts compare without regard to ASCII case (RFC 3986 §6.2.2.1), and the
/// port is always explicit, so `http://a.test/` and `http://A.test:80/` are
/// one origin; userinfo is not part of it. Besides `http` and `https`,
/// hyperlocal's `unix://` URIs are origins too: their host is the
/// hex-encoded socket path (and their port, if any, is hyperlocal's `0`), so
/// two socket paths are two origins.
///
/// It holds the URI's own scheme and authority (reference-counted, as
/// `http` stores them), so making one does not allocate.
///
/// # Proxies
///
/// Within one client the origin is also the route: a client has one
/// connector, a connector is a `Service<Uri>` and chooses how to reach a
/// URI (directly, through a forward proxy, through a `CONNECT` tunnel) from
/// the URI alone, so every connection of an origin took the same route, as
/// in hyper-util's pool. What the route changes per request is the request
/// target, and that follows each connection's own
/// [`Connected::is_proxied`](hyper_util::client::legacy::connect::Connected::is_proxied).
/// A connector whose routing can change while the client lives (a proxy
/// setting reloaded) needs a new client for the new route: connections
/// already open keep the route they were made with.
///
/// ```
/// use freshpool::Origin;
///
/// let a = Origin::of(&"http://Example.com/x".parse().unwrap()).unwrap();
/// let b = Origin::of(&"http://user@example.com:80/y".parse().unwrap()).unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "http://example.com:80");
/// assert_eq!((a.host(), a.port()), ("Example.com", 80));
/// assert!(Origin::of(&"/relative".parse().unwrap()).is_err());
/// ```
#[derive(Clone)]
pub struct Origin {
    scheme: Scheme,
    authority: Authority,
    /// Where the host is in `authority` (after any userinfo, before any
    /// port; IPv6 addresses keep their brackets).
    host: Range<usize>,
    port: u16,
    /// The scheme's tag (`HTTP`, `HTTPS`, `UNIX`), to compare and hash.
    tag: u8,
}

/// An [`Origin`] with the pool's keyed hash of it, computed once.
///
/// Every request needs one, and looks it up in the pool two or three
/// times, so it is built to be cheap: the host is found in the authority
/// once, and hashed once (with the pool's random keys; see
/// [`OriginKey::of`]), and a request whose URI spells its origin as the
/// previous one did takes a clone of that key (see
/// [`OriginKey::is_spelled_as`]).
#[derive(Clone)]
pub(crate) struct OriginKey {
    /// Shared: a key is cloned into every request, its check-in and the
    /// pool's maps, and an `Arc` clone is one increment.
    origin: Arc<Origin>,
    hash: u64,
}

/// The pool's map from origins: keys arrive hashed (with the pool's random
/// keys, see [`OriginKey::of`]), so the map only spreads the hash.
pub(crate) type OriginMap<V> = std::collections::HashMap<OriginKey, V, BuildU64Hasher>;

/// Builds a [`U64Hasher`].
pub(crate) type BuildU64Hasher = BuildHasherDefault<U64Hasher>;

/// For keys that hash as one `u64` that no peer chooses: an
/// [`OriginKey`]'s keyed hash, or a connection id (the pool's own sequence
/// numbers). Fibonacci hashing spreads sequential ids over the table and
/// leaves a random hash as random.
#[derive(Default)]
pub(crate) struct U64Hasher(u64);

impl Hasher for U64Hasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; anything else still hashes, if slowly.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

impl OriginKey {
    /// The key of the absolute URI `uri`, hashed with `keys`, or why it
    /// has none.
    pub(crate) fn of(uri: &Uri, keys: &RandomState) -> Result<OriginKey, Error> {
        let origin = Origin::of(uri)?;
        let hash = keys.hash_one(&origin);
        Ok(OriginKey {
            origin: Arc::new(origin),
            hash,
        })
    }
}

impl OriginKey {
    /// Whether `uri` has this key's scheme and authority, byte for byte
    /// (so the same origin, without parsing the authority again).
    pub(crate) fn is_spelled_as(&self, uri: &Uri) -> bool {
        uri.authority()
            .is_some_and(|a| a.as_str() == self.origin.authority.as_str())
            && uri.scheme() == Some(&self.origin.scheme)
    }
}

impl std::ops::Deref for OriginKey {
    type Target = Origin;

    fn deref(&self) -> &Origin {
        &self.origin
    }
}

impl Origin {
    /// The origin of the absolute URI `uri`.
    ///
    /// # Errors
    ///
    /// An [invalid URI](Error::is_invalid_uri) error naming the cause: no
    /// scheme, no host, a port above 65535, or a scheme other than `http`,
    /// `https` and `unix`.
    pub fn of(uri: &Uri) -> Result<Origin, Error> {
        let scheme = uri.scheme().ok_or_else(|| {
            Error::new(Kind::InvalidUri(
                "no scheme (expected http://, https:// or unix://)",
            ))
        })?;
        let Some(default_port) = default_port(scheme) else {
            return Err(Error::new(Kind::UnsupportedScheme));
        };
        let authority = uri
            .authority()
            .ok_or_else(|| Error::new(Kind::InvalidUri("no host")))?;
        let (host, port) = split_authority(authority.as_str());
        if host.is_empty() {
            return Err(Error::new(Kind::InvalidUri("no host")));
        }
        let port = match port {
            Some(port) => port
                .parse()
                .map_err(|_| Error::new(Kind::InvalidUri("port is not a number below 65536")))?,
            None => default_port,
        };
        Ok(Origin {
            scheme: scheme.clone(),
            authority: authority.clone(),
            host,
            port,
            tag: scheme_tag(scheme),
        })
    }

    /// The scheme: `http`, `https` or `unix`.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// The port, explicit or the scheme's default.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host, as the URI spelled it (IPv6 addresses in brackets).
    pub fn host(&self) -> &str {
        &self.authority.as_str()[self.host.clone()]
    }

    /// Whether `port` is the scheme's default (left out of `Host`).
    fn has_default_port(&self) -> bool {
        default_port(&self.scheme) == Some(self.port)
    }

    /// The `Host` header for this origin: the host in lower case, and the
    /// port unless it is the scheme's default; `localhost` for a `unix://`
    /// origin, whose host is a socket path in hex, not a name the server
    /// knows itself by. `None` only if the host cannot be a header value,
    /// which a parsed URI's host always can.
    pub(crate) fn host_header(&self) -> Option<HeaderValue> {
        if scheme_tag(&self.scheme) == UNIX {
            return Some(HeaderValue::from_static("localhost"));
        }
        let host = self.host().to_ascii_lowercase();
        let value = if self.has_default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        };
        HeaderValue::try_from(value).ok()
    }

    /// `host:port`, lower case: how per-origin settings name an origin.
    pub(crate) fn authority(&self) -> String {
        format!("{}:{}", self.host().to_ascii_lowercase(), self.port)
    }

    /// The URI a connector is asked to connect to: `scheme://host:port/`.
    pub(crate) fn connect_uri(&self) -> Result<Uri, http::Error> {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(format!("{}:{}", self.host(), self.port))
            .path_and_query("/")
            .build()
    }
}

/// The key's tag of a scheme `default_port` accepts.
const HTTP: u8 = 0;
const HTTPS: u8 = 1;
const UNIX: u8 = 2;

/// `unix`, as hyperlocal spells it.
fn is_unix(scheme: &Scheme) -> bool {
    scheme.as_str().eq_ignore_ascii_case("unix")
}

fn scheme_tag(scheme: &Scheme) -> u8 {
    if *scheme == Scheme::HTTPS {
        HTTPS
    } else if is_unix(scheme) {
        UNIX
    } else {
        HTTP
    }
}

/// The default port of a scheme the pool serves, or `None` for any other.
/// hyperlocal writes port `0` in its `unix://` URIs.
fn default_port(scheme: &Scheme) -> Option<u16> {
    if *scheme == Scheme::HTTP {
        Some(80)
    } else if *scheme == Scheme::HTTPS {
        Some(443)
    } else if is_unix(scheme) {
        Some(0)
    } else {
        None
    }
}

/// Splits an authority (`[userinfo@]host[:port]`) into the range of its
/// host and its port text, if any. `http` has validated the authority.
fn split_authority(authority: &str) -> (Range<usize>, Option<&str>) {
    // Byte searches: the delimiters are ASCII, and authorities are short.
    let start = authority
        .bytes()
        .rposition(|b| b == b'@')
        .map_or(0, |at| at + 1);
    let rest = &authority[start..];
    let host_len = if rest.starts_with('[') {
        rest.bytes()
            .position(|b| b == b']')
            .map_or(rest.len(), |end| end + 1)
    } else {
        rest.bytes().rposition(|b| b == b':').unwrap_or(rest.len())
    };
    let port = rest[host_len..].strip_prefix(':').filter(|p| !p.is_empty());
    (start..start + host_len, port)
}

impl PartialEq for Origin {
    fn eq(&self, other: &Origin) -> bool {
        let (a, b) = (self.host(), other.host());
        self.port == other.port
            && self.tag == other.tag
            // Hosts almost always arrive in one spelling, often in one
            // shared buffer (clones of one `Uri`): compare the pointers,
            // then the bytes, case-insensitively only if both fail.
            && (std::ptr::eq(a, b) || a == b || a.eq_ignore_ascii_case(b))
    }
}

impl Eq for Origin {}

/// Scheme, port and lower-cased host, in as few writes as possible (one,
/// for hosts up to 61 bytes), without allocating.
impl Hash for Origin {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut block = [0u8; 64];
        let [hi, lo] = self.port.to_be_bytes();
        block[..3].copy_from_slice(&[self.tag, hi, lo]);
        let mut filled = 3;
        for &b in self.host().as_bytes() {
            if filled == block.len() {
                state.write(&block);
                filled = 0;
            }
            block[filled] = b.to_ascii_lowercase();
            filled += 1;
        }
        state.write(&block[..filled]);
    }
}

/// `scheme://host:port`, the host in lower case.
impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        for c in self.host().chars() {
            fmt::Write::write_char(f, c.to_ascii_lowercase())?;
        }
        write!(f, ":{}", self.port)
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl PartialEq for OriginKey {
    fn eq(&self, other: &OriginKey) -> bool {
        self.hash == other.hash
            && (Arc::ptr_eq(&self.origin, &other.origin) || self.origin == other.origin)
    }
}

impl Eq for OriginKey {}

impl Hash for OriginKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl fmt::Display for OriginKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.origin, f)
    }
}

impl fmt::Debug for OriginKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.origin, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(uri: &str, keys: &RandomState) -> OriginKey {
        OriginKey::of(&uri.parse().unwrap(), keys).unwrap()
    }

    #[test]
    fn keys_normalise_default_ports_case_and_userinfo() {
        let keys = RandomState::new();
        let a = key("http://Example.com/x", &keys);
        assert_eq!(a, key("http://example.com:80/y", &keys));
        assert_eq!(a, key("http://user:pw@EXAMPLE.com:80/", &keys));
        assert_eq!(a, key("http://example.com:/", &keys));
        assert_eq!(a.hash, key("http://user@EXAMPLE.COM/", &keys).hash);
        assert_eq!(a.to_string(), "http://example.com:80");
        assert_ne!(a, key("http://example.com:8080/", &keys));
        let tls = key("https://example.com/", &keys);
        assert_ne!(a, tls);
        assert_eq!(tls.authority(), "example.com:443");
        assert!(tls.has_default_port());
    }

    #[test]
    fn long_hosts_hash_whole_and_without_case() {
        let keys = RandomState::new();
        let host = format!("{}.test", "Ab".repeat(70));
        let a = key(&format!("http://{host}/"), &keys);
        let b = key(&format!("http://{}/", host.to_ascii_lowercase()), &keys);
        assert_eq!(a, b);
        assert_eq!(a.hash, b.hash);
        // A difference past the first block still tells them apart.
        let c = key(&format!("http://{}x.test/", "ab".repeat(70)), &keys);
        assert_ne!(a, c);
        assert_ne!(a.hash, c.hash);
    }

    #[test]
    fn host_headers_omit_default_ports() {
        let keys = RandomState::new();
        let host = |uri: &str| key(uri, &keys).host_header().unwrap();
        assert_eq!(host("http://A.test:80/"), "a.test");
        assert_eq!(host("http://a.test:8080/"), "a.test:8080");
        assert_eq!(host("https://a.test:443/"), "a.test");
        assert_eq!(host("https://a.test:80/"), "a.test:80");
        assert_eq!(host("http://[::1]:8080/"), "[::1]:8080");
    }

    #[test]
    fn ipv6_hosts_keep_their_brackets() {
        let keys = RandomState::new();
        let v6 = key("http://[::1]:8080/", &keys);
        assert_eq!(v6.host(), "[::1]");
        assert_eq!(v6.port(), 8080);
        assert_eq!(key("http://[::1]/", &keys).port(), 80);
        assert_eq!(v6.connect_uri().unwrap(), "http://[::1]:8080/");
    }

    #[test]
    fn bad_uris_are_refused_with_their_cause() {
        let keys = RandomState::new();
        let no_scheme = OriginKey::of(&"/path".parse().unwrap(), &keys).unwrap_err();
        assert!(no_scheme.is_invalid_uri());
        assert!(no_scheme.to_string().contains("no scheme"), "{no_scheme}");
        // `http` parses a port past 65535; the key refuses it.
        let big = OriginKey::of(&"http://example.com:99999/".parse().unwrap(), &keys).unwrap_err();
        assert!(big.is_invalid_uri());
        assert!(big.to_string().contains("port"), "{big}");
        let ftp = OriginKey::of(&"ftp://example.com/".parse().unwrap(), &keys).unwrap_err();
        assert!(ftp.is_invalid_uri());
        assert!(ftp.to_string().contains("unsupported URI scheme"), "{ftp}");
    }

    #[test]
    fn unix_uris_are_keyed_by_their_socket_path() {
        let keys = RandomState::new();
        // hyperlocal's URIs: the socket path in hex, port 0.
        let a = key("unix://2f746d702f612e736f636b:0/x", &keys);
        assert_eq!(a, key("unix://2F746D702F612E736F636B/y", &keys));
        assert_eq!(a.to_string(), "unix://2f746d702f612e736f636b:0");
        assert_eq!(a.connect_uri().unwrap(), "unix://2f746d702f612e736f636b:0/");
        assert_eq!(a.host_header().unwrap(), "localhost");
        let b = key("unix://2f746d702f622e736f636b:0/x", &keys);
        assert_ne!(a, b);
        assert_ne!(a.hash, b.hash);
        // The same host under http (with the same port) is another origin.
        let http = key("http://2f746d702f612e736f636b:0/x", &keys);
        assert_ne!(a, http);
        assert_ne!(a.hash, http.hash);
        assert_eq!(http.host_header().unwrap(), "2f746d702f612e736f636b:0");
    }
}
