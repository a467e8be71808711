//! Race outcomes as a table for people and as JSON for machines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{Value, json};

use crate::oracle::{Band, Timeline, efficiency};
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
    /// Requests that could safely have reused a connection (see
    /// [`crate::oracle`]), when the server's timeline is known.
    pub(crate) oracle: Option<u64>,
    /// Requests by [`Band`], each with how many of them were reused.
    pub(crate) bands: BTreeMap<Band, (u64, u64)>,
}

impl Summary {
    /// Figures of `outcome`, with the oracle and bands when the server's
    /// `timeline` is known.
    pub(crate) fn of(outcome: &Outcome, timeline: Option<&Timeline>) -> Summary {
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
            oracle: timeline
                .map(|t| outcome.samples.iter().filter(|s| t.reusable(s)).count() as u64),
            bands: bands(outcome, timeline),
        }
    }

    /// The oracle in percent of the requests.
    pub(crate) fn oracle_percent(&self) -> Option<f64> {
        self.oracle.map(|o| percent(o, self.requests))
    }

    /// Reuse over the oracle.
    pub(crate) fn efficiency(&self) -> Option<f64> {
        efficiency(self.reuse_percent, self.oracle_percent()?)
    }

    /// All failed requests.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Requests by band and how many of each were reused.
fn bands(outcome: &Outcome, timeline: Option<&Timeline>) -> BTreeMap<Band, (u64, u64)> {
    let mut bands = BTreeMap::new();
    let Some(timeline) = timeline else {
        return bands;
    };
    for sample in &outcome.samples {
        if let Some(band) = Band::of(sample, timeline.idle) {
            let (requests, reused) = bands.entry(band).or_insert((0, 0));
            *requests += 1;
            *reused += u64::from(sample.reused);
        }
    }
    bands
}

/// A server timeout estimated from hyper-util's row, for a `--target`
/// whose real one is not known: hyper-util reuses every connection the
/// server still holds open, so its reuse less its errors is the share of
/// requests whose gap was below the timeout. The timeout is put between
/// the gaps that share of requests falls below and the next one.
pub(crate) fn estimate_timeout(hyper_util: &Outcome) -> Duration {
    let s = Summary::of(hyper_util, None);
    let share = (s.reuse_percent - percent(s.error_count(), s.requests)).max(0.0) / 100.0;
    let below = (share * s.requests as f64).round() as usize;
    let mut gaps: Vec<Duration> = hyper_util.samples.iter().filter_map(|s| s.gap()).collect();
    gaps.sort_unstable();
    match (
        below.checked_sub(1).and_then(|i| gaps.get(i)),
        gaps.get(below),
    ) {
        (None, _) => Duration::ZERO,
        (Some(&last), None) => last + Duration::from_micros(1),
        (Some(&last), Some(&next)) => (last + next) / 2,
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

fn opt_percent(p: Option<f64>) -> String {
    p.map_or_else(|| "-".to_owned(), |p| format!("{p:.1}%"))
}

fn opt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"))
}

fn opt_ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.2}", millis(d)))
}

/// The race table: one line per client, then its errors by kind, then
/// (when the server's timeline is known) the requests by band.
pub(crate) fn render(outcomes: &[Outcome], timeline: Option<&Timeline>) -> String {
    let width = outcomes
        .iter()
        .map(|o| o.contender.label.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:>8}  {:>6}  {:>10}  {:>10}  {:>7}  {:>7}  {:>10}  {:>11}  {:>8}  {:>8}  {:>7}  idle estimate",
        "client",
        "requests",
        "errors",
        "once known",
        "duplicates",
        "reuse",
        "oracle",
        "efficiency",
        "connections",
        "p50 ms",
        "p99 ms",
        "retries",
    );
    let mut details = String::new();
    let mut bands = String::new();
    for outcome in outcomes {
        let s = Summary::of(outcome, timeline);
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
            "{:<width$}  {:>8}  {:>6}  {:>10}  {:>10}  {:>6.1}%  {:>7}  {:>10}  {:>11}  {:>8}  {:>8}  {:>7}  {estimate}",
            outcome.contender.label,
            s.requests,
            s.error_count(),
            once_known,
            duplicates,
            s.reuse_percent,
            opt_percent(s.oracle_percent()),
            opt_ratio(s.efficiency()),
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
        if timeline.is_some() {
            let _ = write!(bands, "{:<width$}", outcome.contender.label);
            for band in Band::ALL {
                let (requests, reused) = s.bands.get(&band).copied().unwrap_or((0, 0));
                let share = if requests == 0 {
                    "-".to_owned()
                } else {
                    format!("{:.0}%", percent(reused, requests))
                };
                let _ = write!(bands, "  {requests:>8}  {share:>7}");
            }
            bands.push('\n');
        }
    }
    if !details.is_empty() {
        out.push_str("\nerrors by kind:\n");
        out.push_str(&details);
    }
    if let Some(timeline) = timeline {
        let _ = writeln!(
            out,
            "\ngaps by band (retire: the client's estimate less its margin when the request \
             was sent; timeout: the server's, {:.0} ms):",
            millis(timeline.idle)
        );
        let _ = writeln!(
            out,
            "{:<width$}{:>19}{:>19}{:>19}",
            "", "below retire", "retire..timeout", "above timeout"
        );
        let _ = writeln!(
            out,
            "{:<width$}{}",
            "client",
            "  requests   reused".repeat(3)
        );
        out.push_str(&bands);
    }
    out
}

/// One client's figures as JSON.
pub(crate) fn client_json(outcome: &Outcome, timeline: Option<&Timeline>) -> Value {
    let s = Summary::of(outcome, timeline);
    let bands: serde_json::Map<String, Value> = Band::ALL
        .iter()
        .map(|band| {
            let (requests, reused) = s.bands.get(band).copied().unwrap_or((0, 0));
            (
                band.key().to_owned(),
                json!({"requests": requests, "reused": reused}),
            )
        })
        .collect();
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
        "reused_requests": outcome.samples.iter().filter(|s| s.reused).count(),
        "oracle_requests": s.oracle,
        "oracle_percent": s.oracle_percent(),
        "efficiency": s.efficiency(),
        "bands": timeline.map(|_| bands),
        "connections_opened": s.connections,
        "p50_ms": s.p50.map(millis),
        "p99_ms": s.p99.map(millis),
        "retries": outcome.retries,
        "idle_estimate_ms": outcome.estimate.map(|(t, _)| millis(t)),
        "idle_estimate_source": outcome.estimate.map(|(_, source)| source),
        "retire_after_ms": outcome.retire_after.map(millis),
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
            idle_from: Some(Duration::ZERO),
            reused: true,
            retire: Some(Duration::from_millis(180)),
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
            retire_after: Some(Duration::from_millis(187)),
            duplicates: Some(0),
        };
        let s = Summary::of(&outcome, None);
        assert_eq!(s.requests, 4);
        assert_eq!(s.ok, 3);
        assert_eq!(s.error_count(), 1);
        assert_eq!(s.errors_informed, 1);
        assert_eq!(s.errors.get("connection reset"), Some(&1));
        assert_eq!(s.reuse_percent, 75.0);
        assert_eq!(s.p50, Some(Duration::from_millis(2)));
        assert_eq!(s.p99, Some(Duration::from_millis(3)));

        let table = render(std::slice::from_ref(&outcome), None);
        assert!(table.contains("1 × connection reset"), "{table}");
        assert!(table.contains("190 ms (learned)"), "{table}");
        let json = client_json(&outcome, None);
        assert_eq!(json["errors"], 1);
        assert_eq!(json["duplicates"], 0);
        assert_eq!(json["idle_estimate_source"], "learned");
    }

    fn gapped(gap_ms: u64, reused: bool, error: Option<&str>) -> Sample {
        Sample {
            at: Duration::from_millis(1000 + gap_ms),
            latency: Duration::from_millis(1),
            error: error.map(str::to_owned),
            informed: true,
            idle_from: Some(Duration::from_millis(1000)),
            reused,
            retire: Some(Duration::from_millis(180)),
        }
    }

    fn outcome(samples: Vec<Sample>, connections: u64) -> Outcome {
        Outcome {
            contender: Contender::new(Kind::HyperUtil, "hyper-util"),
            samples,
            connections,
            retries: None,
            estimate: None,
            retire_after: None,
            duplicates: None,
        }
    }

    #[test]
    fn the_oracle_counts_gaps_below_the_timeout_and_efficiency_divides_by_it() {
        let mut samples = vec![gapped(150, true, None), gapped(190, false, None)];
        samples.extend([gapped(250, false, None), gapped(300, false, None)]);
        let first = Sample {
            idle_from: None,
            ..gapped(0, false, None)
        };
        samples.push(first);
        let o = outcome(samples, 4);
        let timeline = Timeline::steady(Duration::from_millis(200));
        let s = Summary::of(&o, Some(&timeline));
        assert_eq!(s.oracle, Some(2));
        assert_eq!(s.oracle_percent(), Some(40.0));
        assert_eq!(s.reuse_percent, 20.0);
        assert_eq!(s.efficiency(), Some(0.5));
        assert_eq!(s.bands.get(&Band::BelowRetire), Some(&(1, 1)));
        assert_eq!(s.bands.get(&Band::RetireToTimeout), Some(&(1, 0)));
        assert_eq!(s.bands.get(&Band::AboveTimeout), Some(&(2, 0)));
        let table = render(std::slice::from_ref(&o), Some(&timeline));
        assert!(table.contains("40.0%") && table.contains("0.50"), "{table}");
        assert!(table.contains("retire..timeout"), "{table}");
        let json = client_json(&o, Some(&timeline));
        assert_eq!(json["oracle_requests"], 2);
        assert_eq!(json["bands"]["above_timeout"]["requests"], 2);
        assert_eq!(client_json(&o, None)["efficiency"], Value::Null);
    }

    #[test]
    fn a_targets_timeout_is_put_where_hyper_util_stopped_reusing() {
        // Reused up to 180 ms (one of them failed), new connections from
        // 220 ms on: the timeout lies in between.
        let samples = vec![
            gapped(100, true, None),
            gapped(180, true, Some("closed before message completed")),
            gapped(150, true, None),
            gapped(220, false, None),
            gapped(300, false, None),
        ];
        // Reuse 60%, errors 20%: two of five gaps are below the timeout.
        let timeout = estimate_timeout(&outcome(samples, 2));
        assert_eq!(timeout, Duration::from_millis(165));
        let none_reused = vec![gapped(100, false, None), gapped(200, false, None)];
        assert_eq!(estimate_timeout(&outcome(none_reused, 2)), Duration::ZERO);
    }
}
