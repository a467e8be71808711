//! Race outcomes as a table for people and as JSON for machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::race::Outcome;

/// The figures of one client's race.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Summary {
    /// Requests sent.
    pub(crate) requests: u64,
    /// Requests answered completely with a `2xx`.
    pub(crate) ok: u64,
    /// Failed requests by error kind.
    pub(crate) errors: BTreeMap<String, u64>,
    /// Requests sent once the client knew the server's idle timeout.
    pub(crate) informed: u64,
    /// Failed requests sent once the client knew the server's idle
    /// timeout.
    pub(crate) errors_informed: u64,
    /// Connections opened.
    pub(crate) connections: u64,
    /// Requests that did not need a new connection, in percent.
    pub(crate) reuse_percent: f64,
    /// Median latency of the successful requests.
    pub(crate) p50: Option<Duration>,
    /// 99th percentile latency of the successful requests.
    pub(crate) p99: Option<Duration>,
}

impl Summary {
    /// Figures of `outcome`.
    pub(crate) fn of(outcome: &Outcome) -> Summary {
        let mut errors = BTreeMap::new();
        let mut errors_informed = 0;
        let mut latencies = Vec::with_capacity(outcome.samples.len());
        let informed = outcome.samples.iter().filter(|s| s.informed).count() as u64;
        for sample in &outcome.samples {
            match &sample.error {
                Some(kind) => {
                    *errors.entry(kind.clone()).or_insert(0) += 1;
                    errors_informed += u64::from(sample.informed);
                }
                None => latencies.push(sample.latency),
            }
        }
        latencies.sort_unstable();
        let requests = outcome.samples.len() as u64;
        let reused = requests.saturating_sub(outcome.connections);
        Summary {
            requests,
            ok: latencies.len() as u64,
            errors,
            informed,
            errors_informed,
            connections: outcome.connections,
            reuse_percent: percent(reused, requests),
            p50: quantile(&latencies, 0.50),
            p99: quantile(&latencies, 0.99),
        }
    }

    /// All failed requests.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// `part` of `whole`, in percent (0 for an empty whole).
pub(crate) fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// The `q` quantile (nearest rank) of sorted values.
pub(crate) fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    let last = sorted.len().checked_sub(1)?;
    let rank = ((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1);
    sorted.get(rank.min(last)).copied()
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.2}", millis(d)))
}

/// The race table: one line per client, then its errors by kind.
pub(crate) fn render(outcomes: &[Outcome]) -> String {
    let width = outcomes
        .iter()
        .map(|o| o.contender.label.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>8}  {:>6}  {:>10}  {:>10}  {:>7}  {:>11}  {:>8}  {:>8}  {:>7}  idle estimate",
        "client",
        "requests",
        "errors",
        "once known",
        "duplicates",
        "reuse",
        "connections",
        "p50 ms",
        "p99 ms",
        "retries",
    );
    let mut details = String::new();
    for outcome in outcomes {
        let s = Summary::of(outcome);
        let duplicates = outcome
            .duplicates
            .map_or_else(|| "n/a".to_owned(), |d| d.to_string());
        let retries = outcome
            .retries
            .map_or_else(|| "-".to_owned(), |r| r.to_string());
        let estimate = outcome.estimate.map_or_else(
            || "-".to_owned(),
            |(timeout, source)| format!("{:.0} ms ({source})", millis(timeout)),
        );
        let knows = outcome
            .estimate
            .is_some_and(|(_, source)| source != "default");
        let once_known = if knows {
            s.errors_informed.to_string()
        } else {
            "-".to_owned()
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>8}  {:>6}  {:>10}  {:>10}  {:>6.1}%  {:>11}  {:>8}  {:>8}  {:>7}  {estimate}",
            outcome.contender.label,
            s.requests,
            s.error_count(),
            once_known,
            duplicates,
            s.reuse_percent,
            s.connections,
            opt_ms(s.p50),
            opt_ms(s.p99),
            retries,
        );
        for (kind, n) in &s.errors {
            let _ = writeln!(
                details,
                "  {:<width$}  {n:>5} × {kind}",
                outcome.contender.label
            );
        }
    }
    if !details.is_empty() {
        out.push_str("\nerrors by kind:\n");
        out.push_str(&details);
    }
    out
}

/// One client's figures as JSON.
pub(crate) fn client_json(outcome: &Outcome) -> Value {
    let s = Summary::of(outcome);
    json!({
        "name": outcome.contender.label,
        "id_prefix": outcome.contender.slug,
        "freshpool": outcome.contender.kind.is_freshpool(),
        "requests": s.requests,
        "ok": s.ok,
        "errors": s.error_count(),
        "errors_by_kind": s.errors,
        "requests_once_timeout_known": s.informed,
        "errors_once_timeout_known": s.errors_informed,
        "duplicates": outcome.duplicates,
        "reuse_percent": s.reuse_percent,
        "connections_opened": s.connections,
        "p50_ms": s.p50.map(millis),
        "p99_ms": s.p99.map(millis),
        "retries": outcome.retries,
        "idle_estimate_ms": outcome.estimate.map(|(t, _)| millis(t)),
        "idle_estimate_source": outcome.estimate.map(|(_, source)| source),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{Kind, Mechanisms};
    use crate::race::{Contender, Sample};

    fn sample(ms: u64, error: Option<&str>) -> Sample {
        Sample {
            at: Duration::from_millis(ms),
            latency: Duration::from_millis(ms),
            error: error.map(str::to_owned),
            informed: true,
        }
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let values: Vec<_> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&values, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(quantile(&values, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(quantile(&values[..1], 0.99), Some(Duration::from_millis(1)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn a_summary_counts_errors_reuse_and_latency_of_successes_only() {
        let outcome = Outcome {
            contender: Contender::new(Kind::Freshpool(Mechanisms::ALL), "freshpool"),
            samples: vec![
                sample(1, None),
                sample(2, None),
                sample(900, Some("connection reset")),
                sample(3, None),
            ],
            connections: 1,
            retries: Some(0),
            estimate: Some((Duration::from_millis(190), "learned")),
            duplicates: Some(0),
        };
        let s = Summary::of(&outcome);
        assert_eq!(s.requests, 4);
        assert_eq!(s.ok, 3);
        assert_eq!(s.error_count(), 1);
        assert_eq!(s.errors_informed, 1);
        assert_eq!(s.errors.get("connection reset"), Some(&1));
        assert_eq!(s.reuse_percent, 75.0);
        assert_eq!(s.p50, Some(Duration::from_millis(2)));
        assert_eq!(s.p99, Some(Duration::from_millis(3)));

        let table = render(std::slice::from_ref(&outcome));
        assert!(table.contains("1 × connection reset"), "{table}");
        assert!(table.contains("190 ms (learned)"), "{table}");
        let json = client_json(&outcome);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["duplicates"], 0);
        assert_eq!(json["idle_estimate_source"], "learned");
    }
}
