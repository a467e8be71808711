//! Golden traces: what an origin's estimator was told, in plain text, and
//! what it must answer after each step.
//!
//! A trace is one scenario, replayed by `cargo test` (the files are in
//! `crates/expiry/tests/traces`) and written by anyone who has one to show:
//! a line is a piece of evidence at a time, or an expectation.
//!
//! ```text
//! # A restart closed a connection near its longest survival.
//! config slack=1ms
//! @0s    survived 299ms
//! @1s    closed 285ms fin
//! @1s    expect estimate=285ms source=learned retire=271ms
//! @2s    survived 357ms
//! @2s    expect source=default changed=yes
//! ```
//!
//! Times are `@` and a duration since the trace began; durations are a
//! number and `us`, `ms`, `s` or `min`. Evidence:
//!
//! | line | evidence |
//! |---|---|
//! | `survived D` | [`Evidence::Survived`] |
//! | `closed D [fin\|reset\|unexpected]` | [`Evidence::Closed`] (default `fin`) |
//! | `closed-within D [kind]` | [`Evidence::ClosedWithin`] |
//! | `crossed D [kind]` | [`Evidence::Crossed`] |
//! | `keep-alive VALUE` | [`Evidence::KeepAlive`] of the header value, e.g. `timeout=5, max=100` |
//! | `rtt SRTT RTTVAR` | the kernel's figures ([`IdleEstimator::observe_rtt`]) |
//! | `round-trip D` | one measured round trip ([`IdleEstimator::observe_round_trip`]) |
//! | `override D` or `override none` | [`IdleEstimator::set_override`] |
//!
//! `expect` checks any of `estimate=D`, `source=NAME`, `learned=D|none`,
//! `survived=D|none`, `retire=D`, `watch=D` (both with the trace's
//! `slack`), and `changed=yes|no` (whether the evidence line before it
//! changed the estimate). `config` sets `default=D`, `ttl=D`,
//! `observations=N` and `slack=D` before the first event.

use std::fmt;
use std::time::{Duration, Instant};

use crate::{CloseKind, EstimatorConfig, Evidence, IdleEstimator, KeepAlive, Rtt};

/// Why a trace could not be read, or where its replay differed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError {
    /// The line (counted from 1) at fault.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for TraceError {}

/// Replays the trace `text` against a new estimator; the first line that
/// fails to parse or whose expectation does not hold is the error.
///
/// ```
/// let trace = "@0s closed 200ms\n@0s expect estimate=200ms source=learned changed=yes\n";
/// freshpool_expiry::trace::replay(trace).unwrap();
/// let wrong = "@0s closed 200ms\n@0s expect source=header\n";
/// let error = freshpool_expiry::trace::replay(wrong).unwrap_err();
/// assert_eq!(error.line, 2);
/// ```
pub fn replay(text: &str) -> Result<(), TraceError> {
    let t0 = Instant::now();
    let mut config = EstimatorConfig::default();
    let mut slack = Duration::ZERO;
    let mut estimator: Option<IdleEstimator> = None;
    let mut changed = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |message: String| TraceError { line, message };
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let mut words = content.split_whitespace();
        let first = words.next().unwrap_or_default();
        if first == "config" {
            if estimator.is_some() {
                return Err(err("`config` must come before the first event".into()));
            }
            for setting in words {
                configure(setting, &mut config, &mut slack).map_err(err)?;
            }
            continue;
        }
        let at = first
            .strip_prefix('@')
            .ok_or_else(|| err(format!("expected `@TIME` or `config`, found `{first}`")))
            .and_then(|at| duration(at).map_err(err))?;
        let now = t0 + at;
        let e = estimator.get_or_insert_with(|| IdleEstimator::new(config));
        let verb = words
            .next()
            .ok_or_else(|| err("nothing after the time".into()))?;
        let rest: Vec<&str> = words.collect();
        if verb == "expect" {
            for check in &rest {
                expect(e, check, now, slack, changed).map_err(err)?;
            }
            continue;
        }
        changed = Some(step(e, verb, &rest, now).map_err(err)?);
    }
    Ok(())
}

fn configure(
    setting: &str,
    config: &mut EstimatorConfig,
    slack: &mut Duration,
) -> Result<(), String> {
    let (key, value) = setting
        .split_once('=')
        .ok_or_else(|| format!("expected `key=value`, found `{setting}`"))?;
    match key {
        "default" => config.default_timeout = duration(value)?,
        "ttl" => config.observation_ttl = duration(value)?,
        "observations" => {
            config.max_observations = value
                .parse()
                .map_err(|_| format!("`{value}` is not a count"))?;
        }
        "slack" => *slack = duration(value)?,
        _ => return Err(format!("unknown setting `{key}`")),
    }
    Ok(())
}

/// Feeds one evidence line; whether it changed the estimate.
fn step(e: &mut IdleEstimator, verb: &str, rest: &[&str], now: Instant) -> Result<bool, String> {
    let arg = |i: usize| {
        rest.get(i)
            .copied()
            .ok_or_else(|| format!("`{verb}` needs a value"))
    };
    let kind = || match rest.get(1).copied() {
        None | Some("fin") => Ok(CloseKind::Fin),
        Some("reset") => Ok(CloseKind::Reset),
        Some("unexpected") => Ok(CloseKind::Unexpected),
        Some(other) => Err(format!("unknown close kind `{other}`")),
    };
    let evidence = match verb {
        "survived" => Evidence::Survived(duration(arg(0)?)?),
        "closed" => Evidence::Closed {
            idle_for: duration(arg(0)?)?,
            kind: kind()?,
        },
        "closed-within" => Evidence::ClosedWithin {
            idle_for: duration(arg(0)?)?,
            kind: kind()?,
        },
        "crossed" => Evidence::Crossed {
            idle_for: duration(arg(0)?)?,
            kind: kind()?,
        },
        "keep-alive" => {
            let value = rest.join(" ");
            let hint = KeepAlive::parse(value.as_bytes())
                .ok_or_else(|| format!("`{value}` is not a Keep-Alive value"))?;
            Evidence::KeepAlive(hint)
        }
        "rtt" | "round-trip" | "override" => {
            let before = e.estimate(now);
            match verb {
                "rtt" => e.observe_rtt(Rtt {
                    srtt: duration(arg(0)?)?,
                    rttvar: duration(arg(1)?)?,
                }),
                "round-trip" => e.observe_round_trip(duration(arg(0)?)?),
                _ => e.set_override(match arg(0)? {
                    "none" => None,
                    value => Some(duration(value)?),
                }),
            }
            return Ok(e.estimate(now) != before);
        }
        _ => return Err(format!("unknown evidence `{verb}`")),
    };
    Ok(e.observe(evidence, now).is_some())
}

fn expect(
    e: &IdleEstimator,
    check: &str,
    now: Instant,
    slack: Duration,
    changed: Option<bool>,
) -> Result<(), String> {
    let (key, want) = check
        .split_once('=')
        .ok_or_else(|| format!("expected `key=value`, found `{check}`"))?;
    let optional = |got: Option<Duration>| got.map_or_else(|| "none".to_owned(), show);
    let got = match key {
        "estimate" => show(e.estimate(now).timeout),
        "source" => e.estimate(now).source.as_str().to_owned(),
        "learned" => optional(e.learned(now)),
        "survived" => optional(e.survived(now)),
        "retire" => show(e.retire_after(now, slack)),
        "watch" => show(e.watch_after(now, slack)),
        "changed" => match changed {
            Some(true) => "yes".to_owned(),
            Some(false) => "no".to_owned(),
            None => return Err("`changed` before any evidence".into()),
        },
        _ => return Err(format!("unknown expectation `{key}`")),
    };
    let same = match (duration(want), duration(&got)) {
        (Ok(a), Ok(b)) => a == b,
        _ => want == got,
    };
    if same {
        Ok(())
    } else {
        Err(format!(
            "expected {key}={want}, got {key}={got} ({})",
            e.explain(now)
        ))
    }
}

/// Parses `250ms`, `1.5s`, `300us`, `5min`.
fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration (a number and us, ms, s or min)");
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "min" => 60.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(number * scale).map_err(|_| bad())
}

/// A duration as a trace writes it: whole milliseconds where it is one,
/// microseconds otherwise.
fn show(d: Duration) -> String {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_show() {
        assert_eq!(duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("300us"), Ok(Duration::from_micros(300)));
        assert_eq!(duration("5min"), Ok(Duration::from_secs(300)));
        assert!(duration("5").is_err());
        assert!(duration("ms").is_err());
        assert_eq!(show(Duration::from_micros(194_020)), "194020us");
        assert_eq!(show(Duration::from_secs(2)), "2000ms");
    }

    #[test]
    fn a_bad_line_is_named() {
        let error = replay("@0s closed 200ms\n@1s sneezed\n").unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.message.contains("sneezed"), "{error}");
        let error = replay("@0s closed\n").unwrap_err();
        assert!(error.message.contains("needs a value"), "{error}");
        let error = replay("@0s closed 1ms\nconfig slack=1ms\n").unwrap_err();
        assert_eq!(error.line, 2);
    }
}
