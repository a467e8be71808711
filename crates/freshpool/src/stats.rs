//! Counters the pool keeps, and the snapshot users read.

use std::time::Duration;

use freshpool_expiry::Source;
use freshpool_probe::Liveness;

use crate::retry::Rule;

/// Live counters of one origin.
///
/// Plain integers, kept under the pool's lock: every request already takes
/// it, and counters shared between threads as atomics would move a cache
/// line between cores on every request.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: u64,
    connections_opened: u64,
    reused: u64,
    probe_closed: u64,
    probe_reset: u64,
    probe_unexpected: u64,
    retired_expiry: u64,
    server_closes: u64,
    retries: [u64; 5],
    errors: u64,
}

/// Which counter an event bumps.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    Request,
    ConnectionOpened,
    Reused,
    ProbeRejected(Liveness),
    RetiredByExpiry,
    ServerClose,
    Retry(Rule),
    Error,
}

impl Counters {
    pub(crate) fn bump(&mut self, event: Event) {
        let counter = match event {
            Event::Request => &mut self.requests,
            Event::ConnectionOpened => &mut self.connections_opened,
            Event::Reused => &mut self.reused,
            Event::ProbeRejected(Liveness::Reset) => &mut self.probe_reset,
            Event::ProbeRejected(Liveness::Unexpected) => &mut self.probe_unexpected,
            Event::ProbeRejected(_) => &mut self.probe_closed,
            Event::RetiredByExpiry => &mut self.retired_expiry,
            Event::ServerClose => &mut self.server_closes,
            Event::Retry(rule) => &mut self.retries[rule.index()],
            Event::Error => &mut self.errors,
        };
        *counter += 1;
    }

    /// Takes back a [`Event::Reused`] counted for a checkout whose probe
    /// then rejected the connection.
    pub(crate) fn unbump_reused(&mut self) {
        self.reused = self.reused.saturating_sub(1);
    }

    pub(crate) fn snapshot(&self) -> OriginStats {
        let get = |c: &u64| *c;
        OriginStats {
            requests: get(&self.requests),
            connections_opened: get(&self.connections_opened),
            reused: get(&self.reused),
            probe_rejected_closed: get(&self.probe_closed),
            probe_rejected_reset: get(&self.probe_reset),
            probe_rejected_unexpected: get(&self.probe_unexpected),
            retired_by_expiry: get(&self.retired_expiry),
            server_closes_observed: get(&self.server_closes),
            retries_unsent: get(&self.retries[Rule::Unsent.index()]),
            retries_refused: get(&self.retries[Rule::Refused.index()]),
            retries_nothing_written: get(&self.retries[Rule::NothingWritten.index()]),
            retries_idempotent: get(&self.retries[Rule::Idempotent.index()]),
            retries_idempotency_key: get(&self.retries[Rule::IdempotencyKey.index()]),
            errors: get(&self.errors),
            idle: 0,
            open: 0,
            estimate: None,
            retire_after: None,
        }
    }
}

/// Counters of one origin, or of the whole client.
///
/// Read in one go under the pool's lock: the fields are consistent with
/// each other.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OriginStats {
    /// Requests started (each counts once, however many attempts it took).
    pub requests: u64,
    /// Connections established.
    pub connections_opened: u64,
    /// Checkouts that reused an idle connection.
    pub reused: u64,
    /// Idle connections the probe found closed (FIN) at checkout.
    pub probe_rejected_closed: u64,
    /// Idle connections the probe found reset at checkout.
    pub probe_rejected_reset: u64,
    /// Idle connections with unexpected bytes pending at checkout.
    pub probe_rejected_unexpected: u64,
    /// Idle connections retired by the expiry scheduler before the server's
    /// deadline.
    pub retired_by_expiry: u64,
    /// Server-initiated closes of idle connections the pool observed.
    pub server_closes_observed: u64,
    /// Retries of requests hyper handed back unsent.
    pub retries_unsent: u64,
    /// Retries of HTTP/2 requests the server refused unprocessed.
    pub retries_refused: u64,
    /// Retries of requests of which no byte was written.
    pub retries_nothing_written: u64,
    /// Retries of idempotent requests.
    pub retries_idempotent: u64,
    /// Retries of requests carrying an `Idempotency-Key`.
    pub retries_idempotency_key: u64,
    /// Requests that ended in an error.
    pub errors: u64,
    /// Idle connections in the pool now.
    pub idle: usize,
    /// Connections open or being opened now.
    pub open: usize,
    /// The current idle-timeout estimate and where it came from (per
    /// origin only).
    pub estimate: Option<(Duration, Source)>,
    /// How long an idle connection of this origin may stay idle now before
    /// it is retired: the estimate less the margin (per origin only).
    pub retire_after: Option<Duration>,
}

impl OriginStats {
    /// Adds `other`'s counts to these (the estimate is not summed).
    pub(crate) fn accumulate(&mut self, other: &OriginStats) {
        self.requests += other.requests;
        self.connections_opened += other.connections_opened;
        self.reused += other.reused;
        self.probe_rejected_closed += other.probe_rejected_closed;
        self.probe_rejected_reset += other.probe_rejected_reset;
        self.probe_rejected_unexpected += other.probe_rejected_unexpected;
        self.retired_by_expiry += other.retired_by_expiry;
        self.server_closes_observed += other.server_closes_observed;
        self.retries_unsent += other.retries_unsent;
        self.retries_refused += other.retries_refused;
        self.retries_nothing_written += other.retries_nothing_written;
        self.retries_idempotent += other.retries_idempotent;
        self.retries_idempotency_key += other.retries_idempotency_key;
        self.errors += other.errors;
        self.idle += other.idle;
        self.open += other.open;
    }

    /// All retries, whatever the rule.
    pub fn retries(&self) -> u64 {
        self.retries_unsent
            + self.retries_refused
            + self.retries_nothing_written
            + self.retries_idempotent
            + self.retries_idempotency_key
    }

    /// All probe rejections, whatever the kind.
    pub fn probe_rejections(&self) -> u64 {
        self.probe_rejected_closed + self.probe_rejected_reset + self.probe_rejected_unexpected
    }
}

/// A snapshot of a client's pool, from [`Client::stats`](crate::Client::stats).
///
/// Eventually consistent: see [`OriginStats`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Stats {
    /// Totals over every origin.
    pub total: OriginStats,
    /// Per origin (`scheme://host:port`), in no particular order: those
    /// with connections, and the 256 most recently emptied (whose estimate
    /// is kept for when they come back). Older origins count only in
    /// [`total`](Self::total).
    pub origins: Vec<(String, OriginStats)>,
    /// Entries in the pool's expiry queue: at most one per connection
    /// that is open (idle or in use), so it stays bounded by them.
    pub scheduled: usize,
}

impl Stats {
    /// The stats of one origin, by its `scheme://host:port` name.
    pub fn origin(&self, origin: &str) -> Option<&OriginStats> {
        self.origins
            .iter()
            .find(|(name, _)| name == origin)
            .map(|(_, stats)| stats)
    }
}
