//! `poolbench restart`: how each client fares when the server closes its
//! idle connections for reasons other than its idle timeout, and how fast
//! its reuse comes back.
//!
//! The race runs as in `poolbench race` (every client at once, the same
//! schedule), at an interval below the server's idle timeout so that a
//! good pool reuses nearly every connection. At `--at` the built-in origin
//! either closes every idle connection at once (a restart, a reload, a load
//! balancer reset, Apache's event MPM when its workers are busy), or with
//! `--overload` closes each idle connection `--early` after its response
//! for a while, then returns to its normal timeout.
//!
//! The table splits each client's requests into phases by send time:
//! *before* the event, *during* it (the overload, or the longest gap after
//! a mass close, in which every sender sends its first request since), and
//! *after*. For each: errors, reuse, the oracle (requests the server would
//! have let reuse, knowing exactly when it closed what; see
//! [`crate::oracle`]) and the efficiency. Recovery is the number of
//! requests per sender, counted from the mass close (or the end of the
//! overload), until the efficiency over a sliding window of requests (all
//! senders, by send time) is at least [`RECOVERED`].

use std::time::Duration;

use freshpool_origin::Advertise;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::cli::RestartArgs;
use crate::gaps::Gaps;
use crate::oracle::{Early, Timeline, efficiency};
use crate::origin::BuiltIn;
use crate::progress::Progress;
use crate::race::{self, Outcome, Plan, Sample};
use crate::scenario::{close_name, describe, gaps, ms, race_contenders, settings_json};
use crate::table::percent;
use crate::{Failure, plot, target};

/// The efficiency over a window at which reuse counts as recovered.
pub(crate) const RECOVERED: f64 = 0.90;

/// The phases of a run, by send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before,
    During,
    After,
}

impl Phase {
    const ALL: [Phase; 3] = [Phase::Before, Phase::During, Phase::After];

    fn name(self) -> &'static str {
        match self {
            Phase::Before => "before",
            Phase::During => "during",
            Phase::After => "after",
        }
    }
}

/// What the origin was told to do, and when (since the start).
#[derive(Debug, Clone, Copy)]
struct Event {
    /// When it began.
    from: Duration,
    /// When the overload ended (`None` for a mass close).
    until: Option<Duration>,
}

/// The figures of one phase of one client.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct PhaseFigures {
    requests: u64,
    errors: u64,
    reused: u64,
    oracle: u64,
}

impl PhaseFigures {
    fn of<'a>(samples: impl Iterator<Item = &'a Sample>, timeline: &Timeline) -> PhaseFigures {
        let mut f = PhaseFigures::default();
        for s in samples {
            f.requests += 1;
            f.errors += u64::from(s.error.is_some());
            f.reused += u64::from(s.reused);
            f.oracle += u64::from(timeline.reusable(s));
        }
        f
    }

    fn efficiency(&self) -> Option<f64> {
        efficiency(self.reused as f64, self.oracle as f64)
    }

    fn json(&self) -> Value {
        json!({
            "requests": self.requests,
            "errors": self.errors,
            "reused": self.reused,
            "reuse_percent": percent(self.reused, self.requests),
            "oracle_requests": self.oracle,
            "oracle_percent": percent(self.oracle, self.requests),
            "efficiency": self.efficiency(),
        })
    }
}

/// `poolbench restart`.
pub(crate) fn run(args: &RestartArgs) -> Result<(), Failure> {
    let origin = BuiltIn::start(args.idle, args.close.into(), Advertise::None)
        .map_err(|e| Failure::runtime(format!("cannot start the built-in origin: {e}")))?;
    let target = target::builtin(&origin)?;
    let schedule = &args.schedule;
    let interval = schedule.interval.unwrap_or(args.idle / 2);
    if interval.is_zero() {
        return Err(Failure::usage("--interval must be above zero"));
    }
    let length = args.at + args.overload.unwrap_or_default() + args.after;
    let per_sender = (length.as_secs_f64() / interval.as_secs_f64())
        .ceil()
        .max(1.0);
    let plan = Plan {
        url: target.url.clone(),
        senders: schedule.senders,
        requests: schedule.requests.unwrap_or_else(|| {
            (per_sender as u32)
                .saturating_mul(schedule.senders)
                .min(1_000_000)
        }),
        interval,
        gaps: gaps(
            schedule,
            Gaps::Uniform {
                low: 0.5,
                high: 1.5,
            },
        ),
        slow_body: Duration::ZERO,
        seed: schedule.seed,
        cold: schedule.cold,
    };
    let contenders = race_contenders();
    let runtime = crate::client_runtime()?;
    let total = u64::from(plan.requests) * contenders.len() as u64;
    let (outcomes, event) = runtime.block_on(async {
        target::check_reachable(&target).await?;
        let progress = Progress::start("restart", total);
        let counter = progress.counter();
        let start = Instant::now();
        let events = async {
            tokio::time::sleep_until(start + args.at).await;
            let from = start.elapsed();
            let Some(overload) = args.overload else {
                origin.close_idle();
                return Event { from, until: None };
            };
            origin.set_idle_timeout(Some(args.early));
            // The origin applies the order as each idle connection's task
            // next runs, and serves a request whose bytes came first (as a
            // real server does): the overload is counted from one early
            // close after the order, when every idle connection has closed.
            let from = from + args.early;
            tokio::time::sleep_until(start + args.at + overload).await;
            origin.set_idle_timeout(None);
            Event {
                from,
                until: Some(start.elapsed()),
            }
        };
        let (outcomes, event) =
            tokio::join!(race::run(&plan, &contenders, &counter, start), events);
        progress.finish();
        outcomes.map(|o| (o, event)).map_err(Failure::runtime)
    })?;
    let ordered = origin.idle_closes_ordered();
    let duplicates = origin.duplicates_by_client();
    origin.shutdown();

    let timeline = Timeline {
        idle: args.idle,
        mass_closes: if event.until.is_none() {
            vec![event.from]
        } else {
            Vec::new()
        },
        early: event.until.map(|until| Early {
            from: event.from,
            until,
            timeout: args.early,
        }),
    };
    // A mass close's trouble lasts until every sender has sent once since.
    let during_until = event
        .until
        .unwrap_or(event.from + plan.gaps.longest(interval));
    let recover_from = event.until.unwrap_or(event.from);
    let window = args.window.unwrap_or(plan.senders) as usize;
    let phase_of = |s: &Sample| {
        if s.at < event.from {
            Phase::Before
        } else if s.at < during_until {
            Phase::During
        } else {
            Phase::After
        }
    };
    let rows: Vec<Row<'_>> = outcomes
        .iter()
        .map(|outcome| Row {
            outcome,
            phases: Phase::ALL.map(|phase| {
                PhaseFigures::of(
                    outcome.samples.iter().filter(|s| phase_of(s) == phase),
                    &timeline,
                )
            }),
            recovered: recovery(&outcome.samples, &timeline, recover_from, window)
                .map(|n| n as f64 / f64::from(plan.senders)),
            duplicates: duplicates
                .get(&outcome.contender.slug)
                .copied()
                .unwrap_or(0),
        })
        .collect();

    let what = match event.until {
        None => format!(
            "every idle connection closed at once at {:.0} ms ({ordered} connections)",
            ms(event.from)
        ),
        Some(until) => format!(
            "overloaded from {:.0} ms to {:.0} ms: idle connections closed {} ms after their response",
            ms(event.from),
            ms(until),
            ms(args.early)
        ),
    };
    let about = format!(
        "built-in origin, idle {} ms, close {}, no Keep-Alive header; {what}",
        args.idle.as_millis(),
        close_name(args.close),
    );
    if let Some(path) = &schedule.plot {
        let title = format!("poolbench restart: {about}");
        std::fs::write(path, plot::svg(&title, &outcomes)).map_err(|e| {
            Failure::runtime(format!("cannot write the plot to {}: {e}", path.display()))
        })?;
    }
    if schedule.json {
        let mut settings = settings_json(&plan);
        if let Some(settings) = settings.as_object_mut() {
            settings.extend([
                ("origin_idle_ms".to_owned(), json!(ms(args.idle))),
                ("origin_close".to_owned(), json!(close_name(args.close))),
                ("window_requests".to_owned(), json!(window)),
            ]);
        }
        let doc = json!({
            "scenario": "restart",
            "target": target.url.to_string(),
            "builtin_origin": true,
            "settings": settings,
            "event": {
                "kind": if event.until.is_some() { "overload" } else { "mass_close" },
                "from_ms": ms(event.from),
                "until_ms": event.until.map(ms),
                "early_ms": event.until.map(|_| ms(args.early)),
                "during_until_ms": ms(during_until),
                "recovery_counted_from_ms": ms(recover_from),
            },
            "origin_idle_closes_ordered": ordered,
            "clients": rows.iter().map(Row::json).collect::<Vec<_>>(),
        });
        println!("{doc:#}");
    } else {
        println!(
            "poolbench restart: {about}\n{}\n",
            describe(&plan, outcomes.len())
        );
        print!("{}", render(&rows, window, event.until.is_some()));
    }
    Ok(())
}

/// One client's figures.
struct Row<'a> {
    outcome: &'a Outcome,
    phases: [PhaseFigures; 3],
    /// Requests (all senders) from the event until the window that
    /// recovered ended, per sender; `None` if it never did.
    recovered: Option<f64>,
    duplicates: u64,
}

impl Row<'_> {
    fn json(&self) -> Value {
        let phases: serde_json::Map<String, Value> = Phase::ALL
            .iter()
            .zip(&self.phases)
            .map(|(phase, f)| (phase.name().to_owned(), f.json()))
            .collect();
        json!({
            "name": self.outcome.contender.label,
            "id_prefix": self.outcome.contender.slug,
            "freshpool": self.outcome.contender.kind.is_freshpool(),
            "requests": self.outcome.samples.len(),
            "errors": self.phases.iter().map(|f| f.errors).sum::<u64>(),
            "duplicates": self.duplicates,
            "connections_opened": self.outcome.connections,
            "phases": phases,
            "recovered_after_requests_per_sender": self.recovered,
        })
    }
}

/// Requests, sent at or after `from` (all senders, by send time), up to
/// the end of the first window of `window` requests whose efficiency is
/// at least [`RECOVERED`]; windows the oracle has nothing in are skipped.
/// `None` if no window recovered.
fn recovery(
    samples: &[Sample],
    timeline: &Timeline,
    from: Duration,
    window: usize,
) -> Option<usize> {
    let mut after: Vec<&Sample> = samples.iter().filter(|s| s.at >= from).collect();
    after.sort_by_key(|s| s.at);
    let window = window.max(1);
    (0..=after.len().checked_sub(window)?).find_map(|start| {
        let slice = &after[start..start + window];
        let oracle = slice.iter().filter(|s| timeline.reusable(s)).count();
        let reused = slice.iter().filter(|s| s.reused).count();
        efficiency(reused as f64, oracle as f64)
            .filter(|&e| e >= RECOVERED)
            .map(|_| start + window)
    })
}

fn render(rows: &[Row<'_>], window: usize, overload: bool) -> String {
    use std::fmt::Write as _;
    let width = rows
        .iter()
        .map(|r| r.outcome.contender.label.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<width$}  {:<6}  {:>8}  {:>6}  {:>7}  {:>7}  {:>10}",
        "client", "phase", "requests", "errors", "reuse", "oracle", "efficiency"
    );
    for row in rows {
        for (i, (phase, f)) in Phase::ALL.iter().zip(&row.phases).enumerate() {
            let label = if i == 0 {
                row.outcome.contender.label.as_str()
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "{label:<width$}  {:<6}  {:>8}  {:>6}  {:>6.1}%  {:>6.1}%  {:>10}",
                phase.name(),
                f.requests,
                f.errors,
                percent(f.reused, f.requests),
                percent(f.oracle, f.requests),
                f.efficiency()
                    .map_or_else(|| "-".to_owned(), |e| format!("{e:.2}")),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nrecovery: requests per sender from the {} until the efficiency over a window of \
         {window} requests was ≥ {RECOVERED:.2}:",
        if overload {
            "end of the overload"
        } else {
            "mass close"
        }
    );
    for row in rows {
        let recovered = row
            .recovered
            .map_or_else(|| "never".to_owned(), |n| format!("{n:.1}"));
        let duplicates = if row.duplicates == 0 {
            String::new()
        } else {
            format!("  ({} duplicates)", row.duplicates)
        };
        let _ = writeln!(
            out,
            "  {:<width$}  {recovered:>6}{duplicates}",
            row.outcome.contender.label
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: u64, from: u64, reused: bool) -> Sample {
        Sample {
            at: Duration::from_millis(at),
            latency: Duration::from_millis(1),
            error: None,
            informed: true,
            idle_from: Some(Duration::from_millis(from)),
            reused,
            retire: None,
        }
    }

    #[test]
    fn recovery_ends_at_the_first_window_that_reuses_enough() {
        let timeline = Timeline::steady(Duration::from_millis(200));
        // Every gap is 50 ms (all in the oracle); the first 4 requests
        // after the event open connections, then all reuse.
        let samples: Vec<_> = (0..20)
            .map(|i| sample(1000 + 10 * i, 950 + 10 * i, i >= 4))
            .collect();
        assert_eq!(
            recovery(&samples, &timeline, Duration::from_millis(1000), 4),
            Some(8)
        );
        // A window of 10 tolerates one miss in ten: it starts at the 4th.
        assert_eq!(
            recovery(&samples, &timeline, Duration::from_millis(1000), 10),
            Some(13)
        );
        let never: Vec<_> = (0..20).map(|i| sample(1000 + i, 990 + i, false)).collect();
        assert_eq!(recovery(&never, &timeline, Duration::ZERO, 4), None);
        assert_eq!(recovery(&samples[..3], &timeline, Duration::ZERO, 4), None);
    }

    #[test]
    fn phase_figures_count_the_oracle_against_the_timeline() {
        let mut timeline = Timeline::steady(Duration::from_millis(200));
        timeline.mass_closes.push(Duration::from_millis(500));
        let samples = [
            sample(450, 400, true),
            sample(550, 450, false),
            sample(600, 550, true),
        ];
        let f = PhaseFigures::of(samples.iter(), &timeline);
        assert_eq!(
            f,
            PhaseFigures {
                requests: 3,
                errors: 0,
                reused: 2,
                oracle: 2
            }
        );
        assert_eq!(f.efficiency(), Some(1.0));
    }
}
