//! Per-request behaviour: builder defaults overridden by `x-*` headers.

use std::fmt;
use std::time::Duration;

/// The largest response body a request may ask for (1 GiB).
pub(crate) const MAX_BODY_SIZE: usize = 1 << 30;
/// The most chunks a streaming response may be split into.
const MAX_STREAM_CHUNKS: u64 = 1 << 20;

/// How a connection is cut short in the middle of a response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseKind {
    Fin,
    Rst,
}

/// What the server does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Knobs {
    /// `x-delay-ms`: wait before writing the response head.
    pub(crate) delay: Duration,
    /// `x-body-size`: response body length.
    pub(crate) body_size: usize,
    /// `x-chunked`: chunked instead of length-delimited.
    pub(crate) chunked: bool,
    /// `x-stream-chunks`: write the body in this many pieces (0 or 1: one).
    pub(crate) stream_chunks: u32,
    /// `x-stream-interval-ms`: pause between streamed pieces.
    pub(crate) stream_interval: Duration,
    /// `x-close-mid-body`: close after half the body.
    pub(crate) close_mid_body: Option<CloseKind>,
    /// `x-pause-mid-body-ms`: pause after half the body.
    pub(crate) pause_mid_body: Duration,
    /// `x-reset-after-read`: RST instead of responding.
    pub(crate) reset_after_read: bool,
    /// `x-close`: respond with `Connection: close`, then close.
    pub(crate) close: bool,
    /// `x-status`: response status.
    pub(crate) status: u16,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            delay: Duration::ZERO,
            body_size: 0,
            chunked: false,
            stream_chunks: 0,
            stream_interval: Duration::ZERO,
            close_mid_body: None,
            pause_mid_body: Duration::ZERO,
            reset_after_read: false,
            close: false,
            status: 200,
        }
    }
}

/// A knob header whose value could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnobError {
    header: &'static str,
    value: String,
    expected: &'static str,
}

impl fmt::Display for KnobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {} header {:?}: expected {}",
            self.header, self.value, self.expected
        )
    }
}

impl std::error::Error for KnobError {}

impl Knobs {
    /// Applies one request header to these knobs. Headers that are not
    /// knobs are ignored; a knob with a value that cannot be used is an
    /// error naming the header.
    pub(crate) fn apply(&mut self, name: &str, value: &[u8]) -> Result<(), KnobError> {
        let Some(knob) = name
            .get(..2)
            .filter(|p| p.eq_ignore_ascii_case("x-"))
            .and_then(|_| KNOBS.iter().find(|k| k.eq_ignore_ascii_case(name)))
        else {
            return Ok(());
        };
        let text = std::str::from_utf8(value).unwrap_or("").trim();
        let err = |expected| KnobError {
            header: knob,
            value: String::from_utf8_lossy(value).into_owned(),
            expected,
        };
        let millis = || {
            text.parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| err("a whole number of milliseconds"))
        };
        let flag = || parse_flag(text).ok_or_else(|| err("1, 0, true or false"));
        match *knob {
            "x-delay-ms" => self.delay = millis()?,
            "x-body-size" => {
                self.body_size = text
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n <= MAX_BODY_SIZE)
                    .ok_or_else(|| err("a byte count of at most 1073741824"))?;
            }
            "x-chunked" => self.chunked = flag()?,
            "x-stream-chunks" => {
                self.stream_chunks = text
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n <= MAX_STREAM_CHUNKS)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| err("a chunk count of at most 1048576"))?;
            }
            "x-stream-interval-ms" => self.stream_interval = millis()?,
            "x-close-mid-body" => {
                self.close_mid_body = if text.eq_ignore_ascii_case("rst") {
                    Some(CloseKind::Rst)
                } else if text.eq_ignore_ascii_case("fin") {
                    Some(CloseKind::Fin)
                } else {
                    flag()
                        .map_err(|_| err("fin, rst, 1, 0, true or false"))?
                        .then_some(CloseKind::Fin)
                };
            }
            "x-pause-mid-body-ms" => self.pause_mid_body = millis()?,
            "x-reset-after-read" => self.reset_after_read = flag()?,
            "x-close" => self.close = flag()?,
            "x-status" => {
                self.status = text
                    .parse::<u16>()
                    .ok()
                    .filter(|s| (200..=599).contains(s))
                    .ok_or_else(|| err("a status code from 200 to 599"))?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Whether the response has a body at all (not for `204` and `304`).
    pub(crate) fn status_allows_body(&self) -> bool {
        !matches!(self.status, 204 | 304)
    }
}

/// Every knob header, lower-case.
const KNOBS: &[&str] = &[
    "x-delay-ms",
    "x-body-size",
    "x-chunked",
    "x-stream-chunks",
    "x-stream-interval-ms",
    "x-close-mid-body",
    "x-pause-mid-body-ms",
    "x-reset-after-read",
    "x-close",
    "x-status",
];

fn parse_flag(text: &str) -> Option<bool> {
    if text == "1" || text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if text == "0" || text.eq_ignore_ascii_case("false") || text.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knobs(headers: &[(&str, &str)]) -> Result<Knobs, KnobError> {
        let mut k = Knobs::default();
        for (name, value) in headers {
            k.apply(name, value.as_bytes())?;
        }
        Ok(k)
    }

    #[test]
    fn headers_override_defaults_case_insensitively() {
        let k = knobs(&[
            ("X-Delay-Ms", "150"),
            ("x-body-size", " 4096 "),
            ("X-CHUNKED", "true"),
            ("x-stream-chunks", "4"),
            ("x-stream-interval-ms", "20"),
            ("x-close-mid-body", "RST"),
            ("x-pause-mid-body-ms", "5"),
            ("x-reset-after-read", "yes"),
            ("x-close", "1"),
            ("x-status", "503"),
            ("x-request-id", "not a knob"),
            ("content-type", "text/plain"),
        ])
        .expect("valid knobs");
        let expected = Knobs {
            delay: Duration::from_millis(150),
            body_size: 4096,
            chunked: true,
            stream_chunks: 4,
            stream_interval: Duration::from_millis(20),
            close_mid_body: Some(CloseKind::Rst),
            pause_mid_body: Duration::from_millis(5),
            reset_after_read: true,
            close: true,
            status: 503,
        };
        assert_eq!(k, expected);
        assert_eq!(
            knobs(&[("x-close-mid-body", "1")]).map(|k| k.close_mid_body),
            Ok(Some(CloseKind::Fin))
        );
        assert_eq!(
            knobs(&[("x-close-mid-body", "0")]).map(|k| k.close_mid_body),
            Ok(None)
        );
    }

    #[test]
    fn bad_values_are_errors_naming_the_header() {
        for (name, value) in [
            ("x-delay-ms", "-1"),
            ("x-delay-ms", "1.5"),
            ("x-body-size", "1073741825"),
            ("x-chunked", "maybe"),
            ("x-stream-chunks", "99999999999"),
            ("x-close-mid-body", "later"),
            ("x-status", "101"),
            ("x-status", "abc"),
        ] {
            let err = knobs(&[(name, value)]).expect_err(name);
            let msg = err.to_string();
            assert!(msg.contains(name) && msg.contains(value), "{msg}");
        }
        let err = Knobs::default()
            .apply("x-close", b"\xff")
            .expect_err("not utf-8");
        assert!(err.to_string().contains("x-close"));
    }

    #[test]
    fn no_body_statuses() {
        let k = knobs(&[("x-status", "204")]).expect("valid");
        assert!(!k.status_allows_body());
        assert!(Knobs::default().status_allows_body());
    }
}
