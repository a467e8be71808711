//! Forwarding rules for header fields (RFC 9110 §7.6).

use std::net::IpAddr;

use http::Version;
use http::header::{
    CONNECTION, HOST, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    TE, TRAILER, TRANSFER_ENCODING, UPGRADE, VIA,
};

/// `X-Forwarded-For`.
pub(crate) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub(crate) static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`.
pub(crate) static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `Proxy-Status` (RFC 9209), on the responses the proxy makes itself.
pub(crate) static PROXY_STATUS: HeaderName = HeaderName::from_static("proxy-status");

/// What [`strip_hop_by_hop`] took out that the forwarder may put back.
#[derive(Debug, Default)]
pub(crate) struct Removed {
    /// The `Upgrade` value, when `Connection` asked for an upgrade.
    pub(crate) upgrade: Option<HeaderValue>,
    /// Whether `TE` contained `trailers` (passed on: gRPC needs it).
    pub(crate) te_trailers: bool,
}

/// Removes the hop-by-hop fields of `headers`: every field a `Connection`
/// header names, and those that are hop-by-hop whether named or not: the
/// ones RFC 9110 §7.6.1 lists (`Connection`, `Proxy-Connection`,
/// `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`), plus `Trailer` and
/// the proxy authentication fields (§11.7), which are for one hop only.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap) -> Removed {
    let mut removed = Removed::default();
    let mut wants_upgrade = false;
    if headers.contains_key(CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .flat_map(|value| value.as_bytes().split(|&b| b == b','))
            .filter_map(|token| {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"upgrade") {
                    wants_upgrade = true;
                }
                HeaderName::from_bytes(token).ok()
            })
            .collect();
        if wants_upgrade {
            removed.upgrade = headers.get(UPGRADE).cloned();
        }
        for name in named {
            // `Connection: host` must not take the Host away (nor other
            // fields the proxy itself relies on).
            if name != HOST {
                headers.remove(&name);
            }
        }
    }
    if let Some(te) = headers.get(TE) {
        removed.te_trailers = te.as_bytes().split(|&b| b == b',').any(|t| {
            t.split(|&b| b == b';')
                .next()
                .unwrap_or_default()
                .trim_ascii()
                .eq_ignore_ascii_case(b"trailers")
        });
    }
    for name in [
        CONNECTION,
        TE,
        TRANSFER_ENCODING,
        UPGRADE,
        TRAILER,
        PROXY_AUTHENTICATE,
        PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    for name in ["proxy-connection", "keep-alive"] {
        headers.remove(name);
    }
    removed
}

/// The protocol name `Via` records for a message of `version` (RFC 9110
/// §7.6.3: the protocol name is omitted for HTTP).
fn via_protocol(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// Appends `Via: <version> <pseudonym>` for a message received as
/// `version`.
pub(crate) fn append_via(headers: &mut HeaderMap, version: Version, pseudonym: &str) {
    let value = format!("{} {pseudonym}", via_protocol(version));
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.append(VIA, value);
    }
}

/// Adds the de facto `X-Forwarded-*` fields: the client's address is
/// appended to `X-Forwarded-For`; `-Proto` and `-Host` are set.
pub(crate) fn add_forwarded(
    headers: &mut HeaderMap,
    client: Option<IpAddr>,
    proto: &HeaderValue,
    host: Option<HeaderValue>,
) {
    if let Some(ip) = client {
        let ip = ip.to_canonical().to_string();
        let value = match headers.get(&X_FORWARDED_FOR).map(HeaderValue::to_str) {
            Some(Ok(previous)) if !previous.trim().is_empty() => format!("{previous}, {ip}"),
            _ => ip,
        };
        headers.remove(&X_FORWARDED_FOR);
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(X_FORWARDED_FOR.clone(), value);
        }
    }
    headers.insert(X_FORWARDED_PROTO.clone(), proto.clone());
    match host {
        Some(host) => {
            headers.insert(X_FORWARDED_HOST.clone(), host);
        }
        None => {
            headers.remove(&X_FORWARDED_HOST);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_fixed_list_and_the_fields_connection_names_go() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "x-other"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("x-secret", "1"),
            ("x-other", "2"),
            ("te", "gzip"),
            ("transfer-encoding", "chunked"),
            ("trailer", "x-sum"),
            ("proxy-authorization", "Basic x"),
            ("upgrade", "websocket"),
            ("x-kept", "3"),
            ("idempotency-key", "k"),
        ]);
        let removed = strip_hop_by_hop(&mut headers);
        let left: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-kept", "idempotency-key"]);
        assert!(
            removed.upgrade.is_none(),
            "Connection did not ask to upgrade"
        );
        assert!(!removed.te_trailers);
    }

    #[test]
    fn an_upgrade_asked_for_and_te_trailers_are_reported() {
        let mut headers = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("te", "trailers; q=1"),
        ]);
        let removed = strip_hop_by_hop(&mut headers);
        assert_eq!(removed.upgrade, Some(HeaderValue::from_static("websocket")));
        assert!(removed.te_trailers);
        assert!(headers.is_empty());
    }

    #[test]
    fn connection_cannot_remove_host_and_garbage_tokens_are_ignored() {
        let mut headers = map(&[("connection", "host, , b@d"), ("host", "a")]);
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.get(HOST), Some(&HeaderValue::from_static("a")));
    }

    #[test]
    fn via_and_forwarded_append_to_what_came_before() {
        let mut headers = map(&[("via", "1.0 edge"), ("x-forwarded-for", "203.0.113.7")]);
        append_via(&mut headers, Version::HTTP_11, "freshpool-proxy");
        let client = "::ffff:127.0.0.1".parse().ok();
        add_forwarded(
            &mut headers,
            client,
            &HeaderValue::from_static("http"),
            Some(HeaderValue::from_static("example.test")),
        );
        let via: Vec<_> = headers.get_all(VIA).iter().collect();
        assert_eq!(via, ["1.0 edge", "1.1 freshpool-proxy"]);
        assert_eq!(headers[&X_FORWARDED_FOR], "203.0.113.7, 127.0.0.1");
        assert_eq!(headers[&X_FORWARDED_PROTO], "http");
        assert_eq!(headers[&X_FORWARDED_HOST], "example.test");
    }
}
