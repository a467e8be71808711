//! The race engine: the same POST schedule through every client at once.
//!
//! Each client gets `senders` senders, each with its own client (its own
//! pool), as separate services calling one backend do. Sender `i` of every
//! client follows the same schedule: it starts `i/senders` of an interval
//! after the others, then POSTs, and sends its next POST a gap after the
//! previous response's head arrived (the moment the server's idle clock
//! started, give or take the loopback trip). Gaps are `interval ± jitter`
//! or uniform on a share of the interval, drawn from a seeded generator,
//! the same for every client. So every client meets the server's idle
//! closes in the same way, in one run.
//!
//! A slow consumer (`slow_body`) waits between a response's head and its
//! body; the gap still counts from the head, as the server's clock does.
//!
//! The first pause is half an interval longer, unless the plan is `cold`:
//! every client has then seen the server close an idle connection once
//! before the race proper, as a long-running service has. All requests
//! count, the first ones included. Cold, a request can meet the very first
//! close, before any client could know the server's timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use freshpool_testkit::XorShift;
use http::Uri;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clients::{self, Kind, Pool};
use crate::gaps::Gaps;

/// How long one request may take before it counts as a hang ([`HANG`]),
/// so that a server that stops answering cannot stall a race.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The error kind of a request that got neither a response nor an error
/// within [`REQUEST_TIMEOUT`]: a hang, which the tables name as such,
/// apart from the errors a client returned.
pub(crate) const HANG: &str = "hang: no response and no error within 30 s";
use crate::progress::Counter;

/// What to send, how often.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Where every POST goes.
    pub(crate) url: Uri,
    /// Senders per client.
    pub(crate) senders: u32,
    /// Requests per client.
    pub(crate) requests: u32,
    /// Mean pause between a sender's requests.
    pub(crate) interval: Duration,
    /// How pauses are drawn around the interval.
    pub(crate) gaps: Gaps,
    /// How long the caller waits between a response's head and its body.
    pub(crate) slow_body: Duration,
    /// Seed of the jitter.
    pub(crate) seed: u64,
    /// Whether each sender's first pause is the interval like the others
    /// (`true`) or one and a half intervals (`false`, the default).
    pub(crate) cold: bool,
}

impl Plan {
    /// Requests sender `index` sends.
    fn share(&self, index: u32) -> u32 {
        self.requests / self.senders + u32::from(index < self.requests % self.senders)
    }
}

/// One client in the race.
#[derive(Debug, Clone)]
pub(crate) struct Contender {
    /// Shown in tables, plots and JSON.
    pub(crate) label: String,
    /// Prefix of its request ids: `SLUG.SENDER.N`.
    pub(crate) slug: String,
    /// What to build.
    pub(crate) kind: Kind,
}

impl Contender {
    /// A contender named after its kind.
    pub(crate) fn new(kind: Kind, slug: &str) -> Contender {
        Contender {
            label: kind.name().to_owned(),
            slug: slug.to_owned(),
            kind,
        }
    }
}

/// One request's fate.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    /// When it was sent, since the race started.
    pub(crate) at: Duration,
    /// How long until the response was complete (less a slow consumer's
    /// own pause), or until the error.
    pub(crate) latency: Duration,
    /// The error's kind, if it failed.
    pub(crate) error: Option<String>,
    /// Whether the sender's pool knew the server's idle timeout (from a
    /// header or learned, not a default) when the request was sent.
    pub(crate) informed: bool,
    /// Since the race started, when the sender's previous response head
    /// arrived (or its previous request failed): the start of this
    /// request's gap. `None` for a sender's first request.
    pub(crate) idle_from: Option<Duration>,
    /// Whether the request went out without the sender opening a
    /// connection for it.
    pub(crate) reused: bool,
    /// The idle time after which the sender's client retired a connection
    /// when the request was sent, from its estimate and margin; `None` for
    /// a client that does not retire.
    pub(crate) retire: Option<Duration>,
}

impl Sample {
    /// The idle time before this request on its sender.
    pub(crate) fn gap(&self) -> Option<Duration> {
        self.idle_from.map(|from| self.at.saturating_sub(from))
    }
}

/// What one client did in the race.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    /// The contender.
    pub(crate) contender: Contender,
    /// Every request, by send time.
    pub(crate) samples: Vec<Sample>,
    /// Connections its senders opened.
    pub(crate) connections: u64,
    /// Requests it retried, when it counts them.
    pub(crate) retries: Option<u64>,
    /// The idle timeout its pools settled on (the median over senders),
    /// with its source.
    pub(crate) estimate: Option<(Duration, &'static str)>,
    /// The retire time its pools settled on (the median over senders).
    pub(crate) retire_after: Option<Duration>,
    /// Requests the server processed more than once, when known.
    pub(crate) duplicates: Option<u64>,
}

/// Runs `plan` through every contender at once and returns one outcome
/// per contender, in order; sample times count from `start`. Each finished
/// request bumps `progress`.
///
/// # Errors
///
/// A message naming the client when one cannot be built.
pub(crate) async fn run(
    plan: &Plan,
    contenders: &[Contender],
    progress: &Counter,
    start: Instant,
) -> Result<Vec<Outcome>, String> {
    let mut races = Vec::with_capacity(contenders.len());
    for contender in contenders {
        let mut opened = Vec::with_capacity(plan.senders as usize);
        let mut pools = Vec::with_capacity(plan.senders as usize);
        let mut tasks = JoinSet::new();
        for index in 0..plan.senders {
            let sender_opened = Arc::new(AtomicU64::new(0));
            let pool: Arc<dyn Pool> = Arc::from(
                contender
                    .kind
                    .build(Arc::clone(&sender_opened))
                    .map_err(|e| format!("{}: {e}", contender.label))?,
            );
            pools.push(Arc::clone(&pool));
            opened.push(Arc::clone(&sender_opened));
            tasks.spawn(send_all(
                plan.clone(),
                Sender {
                    index,
                    slug: contender.slug.clone(),
                    pool,
                    opened: sender_opened,
                },
                start,
                progress.clone(),
            ));
        }
        races.push((contender.clone(), opened, pools, tasks));
    }

    let mut outcomes = Vec::with_capacity(races.len());
    for (contender, opened, pools, mut tasks) in races {
        let mut samples = Vec::with_capacity(plan.requests as usize);
        while let Some(done) = tasks.join_next().await {
            samples.extend(done.map_err(|e| format!("{}: a sender failed: {e}", contender.label))?);
        }
        samples.sort_by_key(|s| s.at);
        let retries = pools
            .iter()
            .map(|p| p.retries())
            .try_fold(0, |sum, r| r.map(|r| sum + r));
        let mut estimates: Vec<_> = pools.iter().filter_map(|p| p.estimate(&plan.url)).collect();
        estimates.sort_by_key(|&(timeout, _)| timeout);
        let mut retires: Vec<_> = pools
            .iter()
            .filter_map(|p| p.retire_after(&plan.url))
            .collect();
        retires.sort();
        outcomes.push(Outcome {
            contender,
            samples,
            connections: opened.iter().map(|o| o.load(Ordering::Relaxed)).sum(),
            retries,
            estimate: estimates.get(estimates.len() / 2).copied(),
            retire_after: retires.get(retires.len() / 2).copied(),
            duplicates: None,
        });
    }
    Ok(outcomes)
}

/// One sender of one contender.
struct Sender {
    /// Its place in the schedule.
    index: u32,
    /// Prefix of its request ids.
    slug: String,
    /// Its own client.
    pool: Arc<dyn Pool>,
    /// Connections its client opened.
    opened: Arc<AtomicU64>,
}

/// The response body a slow consumer asks the built-in origin for, so
/// that there is a body to be slow about.
const SLOW_BODY_BYTES: &str = "4096";

/// One sender: its share of the schedule, one request after the other.
async fn send_all(plan: Plan, sender: Sender, start: Instant, progress: Counter) -> Vec<Sample> {
    let Sender {
        index,
        slug,
        pool,
        opened,
    } = sender;
    let mut rng = XorShift::new(plan.seed ^ (u64::from(index) + 1) << 32);
    let count = plan.share(index);
    let mut samples = Vec::with_capacity(count as usize);
    tokio::time::sleep(
        plan.interval
            .mul_f64(f64::from(index) / f64::from(plan.senders)),
    )
    .await;
    let mut idle_from: Option<Instant> = None;
    for n in 0..count {
        if n > 0 {
            let mut pause = plan.gaps.draw(plan.interval, &mut rng);
            if n == 1 && !plan.cold {
                pause += plan.interval / 2;
            }
            let from = idle_from.unwrap_or_else(Instant::now);
            tokio::time::sleep_until(from + pause).await;
        }
        let id = format!("{slug}.{index}.{n}");
        let estimate = pool.estimate(&plan.url);
        let informed = estimate.is_some_and(|(_, source)| source != "default");
        let mut req = clients::post(&plan.url, &id);
        if !plan.slow_body.is_zero() {
            req.headers_mut().insert(
                "x-body-size",
                http::HeaderValue::from_static(SLOW_BODY_BYTES),
            );
        }
        let before = opened.load(Ordering::Relaxed);
        let sent = Instant::now();
        let result = tokio::time::timeout(REQUEST_TIMEOUT, pool.exchange(req, plan.slow_body))
            .await
            .unwrap_or_else(|_| Err(HANG.to_owned()));
        let done = Instant::now();
        let latency = done.saturating_duration_since(sent);
        samples.push(Sample {
            at: sent.saturating_duration_since(start),
            latency: if result.is_ok() {
                latency.saturating_sub(plan.slow_body)
            } else {
                latency
            },
            informed,
            idle_from: idle_from.map(|from| from.saturating_duration_since(start)),
            reused: opened.load(Ordering::Relaxed) == before,
            retire: pool.retire_after(&plan.url),
            error: result.as_ref().err().cloned(),
        });
        idle_from = Some(result.unwrap_or(done));
        progress.add();
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_to_the_requests() {
        let plan = Plan {
            url: Uri::from_static("http://127.0.0.1/"),
            senders: 7,
            requests: 100,
            interval: Duration::from_millis(1),
            gaps: Gaps::Jitter(Duration::ZERO),
            slow_body: Duration::ZERO,
            seed: 1,
            cold: false,
        };
        assert_eq!((0..7).map(|i| plan.share(i)).sum::<u32>(), 100);
        assert_eq!(plan.share(0), 15);
        assert_eq!(plan.share(6), 14);
    }
}
