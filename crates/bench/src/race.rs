//! The race engine: the same POST schedule through every client at once.
//!
//! Each client gets `senders` senders, each with its own client (its own
//! pool), as separate services calling one backend do. Sender `i` of every
//! client follows the same schedule: it starts `i/senders` of an interval
//! after the others, then POSTs, waits `interval ± jitter` (drawn from a
//! seeded generator, the same for every client), and POSTs again. So every
//! client meets the server's idle closes in the same way, in one run.
//!
//! The first pause is half an interval longer, unless the plan is `cold`:
//! every client has then seen the server close an idle connection once
//! before the race proper, as a long-running service has. All requests
//! count, the first ones included. Cold, a request can meet the very first
//! close, before any client could know the server's timeout.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use http::Uri;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::clients::{self, Kind, Pool};

/// How long one request may take before it counts as failed (`timed
/// out`), so that a server that stops answering cannot stall a race.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
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
    /// Largest deviation of a pause, either way.
    pub(crate) jitter: Duration,
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
    /// How long until the response was complete, or the error.
    pub(crate) latency: Duration,
    /// The error's kind, if it failed.
    pub(crate) error: Option<String>,
    /// Whether the sender's pool knew the server's idle timeout (from a
    /// header or learned, not a default) when the request was sent.
    pub(crate) informed: bool,
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
    /// Requests the server processed more than once, when known.
    pub(crate) duplicates: Option<u64>,
}

/// Runs `plan` through every contender at once and returns one outcome
/// per contender, in order. Each finished request bumps `progress`.
///
/// # Errors
///
/// A message naming the client when one cannot be built.
pub(crate) async fn run(
    plan: &Plan,
    contenders: &[Contender],
    progress: &Counter,
) -> Result<Vec<Outcome>, String> {
    let start = Instant::now();
    let mut races = Vec::with_capacity(contenders.len());
    for contender in contenders {
        let opened = Arc::new(AtomicU64::new(0));
        let mut pools = Vec::with_capacity(plan.senders as usize);
        let mut tasks = JoinSet::new();
        for index in 0..plan.senders {
            let pool: Arc<dyn Pool> = Arc::from(
                contender
                    .kind
                    .build(Arc::clone(&opened))
                    .map_err(|e| format!("{}: {e}", contender.label))?,
            );
            pools.push(Arc::clone(&pool));
            tasks.spawn(send_all(
                plan.clone(),
                index,
                contender.slug.clone(),
                pool,
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
        outcomes.push(Outcome {
            contender,
            samples,
            connections: opened.load(std::sync::atomic::Ordering::Relaxed),
            retries,
            estimate: estimates.get(estimates.len() / 2).copied(),
            duplicates: None,
        });
    }
    Ok(outcomes)
}

/// One sender: its share of the schedule, one request after the other.
async fn send_all(
    plan: Plan,
    index: u32,
    slug: String,
    pool: Arc<dyn Pool>,
    start: Instant,
    progress: Counter,
) -> Vec<Sample> {
    let mut rng = XorShift::new(plan.seed ^ (u64::from(index) + 1) << 32);
    let count = plan.share(index);
    let mut samples = Vec::with_capacity(count as usize);
    tokio::time::sleep(
        plan.interval
            .mul_f64(f64::from(index) / f64::from(plan.senders)),
    )
    .await;
    for n in 0..count {
        if n > 0 {
            let mut pause = rng.around(plan.interval, plan.jitter);
            if n == 1 && !plan.cold {
                pause += plan.interval / 2;
            }
            tokio::time::sleep(pause).await;
        }
        let id = format!("{slug}.{index}.{n}");
        let informed = pool
            .estimate(&plan.url)
            .is_some_and(|(_, source)| source != "default");
        let sent = Instant::now();
        let result =
            tokio::time::timeout(REQUEST_TIMEOUT, pool.send(clients::post(&plan.url, &id)))
                .await
                .unwrap_or_else(|_| Err("timed out".to_owned()));
        let done = Instant::now();
        samples.push(Sample {
            at: sent.saturating_duration_since(start),
            latency: done.saturating_duration_since(sent),
            error: result.err(),
            informed,
        });
        progress.add();
    }
    samples
}

/// A small deterministic generator: reproducible jitter, not cryptography.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `base ± spread`, uniform at microsecond resolution.
    fn around(&mut self, base: Duration, spread: Duration) -> Duration {
        let spread_us = u64::try_from(spread.as_micros()).unwrap_or(u64::MAX / 4);
        let offset = self.next_u64() % (2 * spread_us + 1);
        (base + Duration::from_micros(offset)).saturating_sub(spread)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_spread_and_covers_it() {
        let mut rng = XorShift::new(7);
        let base = Duration::from_millis(200);
        let spread = Duration::from_millis(2);
        let draws: Vec<_> = (0..10_000).map(|_| rng.around(base, spread)).collect();
        assert!(
            draws
                .iter()
                .all(|d| *d >= base - spread && *d <= base + spread)
        );
        assert!(draws.iter().any(|d| *d < base - spread / 2));
        assert!(draws.iter().any(|d| *d > base + spread / 2));
    }

    #[test]
    fn shares_add_up_to_the_requests() {
        let plan = Plan {
            url: Uri::from_static("http://127.0.0.1/"),
            senders: 7,
            requests: 100,
            interval: Duration::from_millis(1),
            jitter: Duration::ZERO,
            seed: 1,
            cold: false,
        };
        assert_eq!((0..7).map(|i| plan.share(i)).sum::<u32>(), 100);
        assert_eq!(plan.share(0), 15);
        assert_eq!(plan.share(6), 14);
    }
}
