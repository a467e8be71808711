//! The responses the proxy makes itself when forwarding fails: a status,
//! an RFC 9209 `Proxy-Status` field, and a one-line body naming the cause.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::time::Duration;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use crate::body::ResponseBody;
use crate::headers::PROXY_STATUS;

/// Why the proxy answered instead of the upstream.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No response head within the upstream timeout.
    Timeout(Duration),
    /// The connection to the upstream could not be made; `true` when it
    /// was refused.
    Connect(bool, String),
    /// The request or the response head failed on the wire.
    Upstream(&'static str, String),
    /// The upstream declared a body larger than the response limit.
    ResponseTooLarge(u64, u64),
    /// The client's body is larger than the request limit.
    RequestTooLarge(u64),
    /// The upstream switched protocols the client did not ask for.
    UnexpectedUpgrade,
    /// A CONNECT the proxy does not serve.
    ConnectRefused(&'static str),
    /// A CONNECT whose tunnel could not be opened.
    TunnelFailed(String),
}

impl Failure {
    /// Classifies a client error from its source chain.
    pub(crate) fn from_upstream(error: &(dyn StdError + 'static), connect: bool) -> Failure {
        let detail = chain(error);
        let mut current = Some(error);
        if connect {
            let mut refused = false;
            while let Some(e) = current {
                refused |= e
                    .downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
                current = e.source();
            }
            return Failure::Connect(refused, detail);
        }
        while let Some(e) = current {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                match io.kind() {
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe => {
                        return Failure::Upstream("connection_terminated", detail);
                    }
                    std::io::ErrorKind::TimedOut => {
                        return Failure::Upstream("connection_read_timeout", detail);
                    }
                    _ => {}
                }
            }
            if let Some(h) = e.downcast_ref::<hyper::Error>() {
                if h.is_parse_too_large() {
                    return Failure::Upstream("http_response_header_section_size", detail);
                }
                if h.is_parse() || h.is_parse_status() {
                    return Failure::Upstream("http_protocol_error", detail);
                }
                if h.is_incomplete_message() {
                    return Failure::Upstream("http_response_incomplete", detail);
                }
            }
            current = e.source();
        }
        Failure::Upstream("http_protocol_error", detail)
    }

    /// The status of the proxy's answer.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Failure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Failure::RequestTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Failure::ConnectRefused(_) => StatusCode::METHOD_NOT_ALLOWED,
            _ => StatusCode::BAD_GATEWAY,
        }
    }

    /// The RFC 9209 error type.
    fn error_type(&self) -> &'static str {
        match self {
            Failure::Timeout(_) => "http_response_timeout",
            Failure::Connect(true, _) => "connection_refused",
            Failure::Connect(false, _) | Failure::TunnelFailed(_) => "destination_unavailable",
            Failure::Upstream(kind, _) => kind,
            Failure::ResponseTooLarge(..) => "http_response_body_size",
            Failure::RequestTooLarge(_) => "http_request_error",
            Failure::UnexpectedUpgrade => "http_upgrade_failed",
            Failure::ConnectRefused(_) => "http_request_denied",
        }
    }

    /// What happened, in one sentence, for `upstream`.
    fn message(&self, upstream: &str) -> String {
        match self {
            Failure::Timeout(after) => {
                format!("upstream {upstream} sent no response within {after:?}")
            }
            Failure::Connect(_, detail) => {
                format!("cannot connect to upstream {upstream}: {detail}")
            }
            Failure::Upstream(kind, detail) => {
                let what = match *kind {
                    "connection_terminated" => "reset the connection",
                    "connection_read_timeout" => "timed out on the wire",
                    "http_response_header_section_size" => "sent a response head too large",
                    "http_response_incomplete" => {
                        "closed the connection before a complete response head"
                    }
                    _ => "sent no valid response",
                };
                format!("upstream {upstream} {what}: {detail}")
            }
            Failure::ResponseTooLarge(declared, limit) => format!(
                "upstream {upstream} declared a {declared}-byte body, over the proxy's limit of {limit} bytes"
            ),
            Failure::RequestTooLarge(limit) => {
                format!("request body larger than the proxy's limit of {limit} bytes")
            }
            Failure::UnexpectedUpgrade => {
                format!("upstream {upstream} switched protocols, which the request did not ask for")
            }
            Failure::ConnectRefused(why) => (*why).to_owned(),
            Failure::TunnelFailed(detail) => format!("cannot open the tunnel: {detail}"),
        }
    }

    /// The response for the client.
    pub(crate) fn response<B>(
        &self,
        upstream: &str,
        pseudonym: Option<&str>,
    ) -> Response<ResponseBody<B>> {
        let status = self.status();
        let message = self.message(upstream);
        tracing::debug!(%status, %message, "forwarding failed");
        let body = format!(
            "{} {}: {message}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("Error")
        );
        let mut response = Response::new(ResponseBody::message(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let mut proxy_status = String::new();
        let _ = write!(
            proxy_status,
            "{}; error={}; details=\"{}\"",
            pseudonym.unwrap_or("freshpool-proxy"),
            self.error_type(),
            sf_string(&message)
        );
        if let Ok(value) = HeaderValue::from_str(&proxy_status) {
            headers.insert(PROXY_STATUS.clone(), value);
        }
        if matches!(self, Failure::ConnectRefused(_)) {
            headers.insert(
                http::header::ALLOW,
                HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH, TRACE"),
            );
        }
        response
    }
}

/// The messages of an error's source chain, joined with `: `, each once.
pub(crate) fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut last = out.clone();
    let mut current = error.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !last.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        last = text;
        current = e.source();
    }
    out
}

/// `text` as the inside of a structured-field string (RFC 8941 §3.3.3):
/// printable ASCII, with `"` and `\` escaped.
fn sf_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_status_names_the_error_type_and_escapes_details() {
        let failure = Failure::Upstream("http_protocol_error", "bad \"x\"\u{e9}".into());
        let response = failure.response::<http_body_util::Empty<bytes::Bytes>>("http://u:1", None);
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        let status = response.headers()[&PROXY_STATUS].to_str().expect("ascii");
        assert!(
            status.starts_with(
                "freshpool-proxy; error=http_protocol_error; details=\"upstream http://u:1"
            ),
            "{status}"
        );
        assert!(status.ends_with("bad \\\"x\\\"?\""), "{status}");
    }

    #[test]
    fn a_timeout_is_a_504_and_a_refused_connect_says_so() {
        assert_eq!(
            Failure::Timeout(Duration::from_secs(1)).status(),
            StatusCode::GATEWAY_TIMEOUT
        );
        let refused = Failure::Connect(true, "tcp connect error: Connection refused".into());
        assert_eq!(refused.error_type(), "connection_refused");
        assert!(
            refused
                .message("http://u:1")
                .starts_with("cannot connect to upstream http://u:1")
        );
    }

    #[test]
    fn the_chain_skips_repeated_messages() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(chain(&io), "reset");
    }
}
