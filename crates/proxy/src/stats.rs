//! What the proxy counts, and the snapshot it gives out.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::failure::Failure;

/// The proxy's counters: relaxed atomics, one write per event.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    requests: AtomicU64,
    bad_gateway: AtomicU64,
    gateway_timeout: AtomicU64,
    too_large: AtomicU64,
    refused: AtomicU64,
    upstream_5xx: AtomicU64,
    upgrades: AtomicU64,
    tunnels: AtomicU64,
}

impl Counters {
    pub(crate) fn request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn upstream_5xx(&self) {
        self.upstream_5xx.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn upgrade(&self) {
        self.upgrades.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn tunnel(&self) {
        self.tunnels.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failure(&self, failure: &Failure) {
        let counter = match failure.status().as_u16() {
            502 => &self.bad_gateway,
            504 => &self.gateway_timeout,
            413 => &self.too_large,
            _ => &self.refused,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, upstream: Option<freshpool::Stats>) -> ProxyStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ProxyStats {
            requests: get(&self.requests),
            bad_gateway: get(&self.bad_gateway),
            gateway_timeout: get(&self.gateway_timeout),
            request_too_large: get(&self.too_large),
            refused: get(&self.refused),
            upstream_5xx: get(&self.upstream_5xx),
            upgrades: get(&self.upgrades),
            tunnels: get(&self.tunnels),
            upstream,
        }
    }
}

/// A snapshot of a [`Proxy`](crate::Proxy)'s counters, from
/// [`Proxy::stats`](crate::Proxy::stats) (also served as text at
/// [`Builder::stats_path`](crate::Builder::stats_path) when set).
///
/// Read from relaxed atomics: eventually consistent, and a request in
/// flight may be counted in `requests` before its outcome is.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxyStats {
    /// Requests received.
    pub requests: u64,
    /// `502`s the proxy answered itself (the upstream failed).
    pub bad_gateway: u64,
    /// `504`s the proxy answered itself (the upstream timed out).
    pub gateway_timeout: u64,
    /// `413`s the proxy answered (a request body over the limit).
    pub request_too_large: u64,
    /// Requests the proxy refused (`CONNECT` when not allowed).
    pub refused: u64,
    /// `5xx` responses the upstream sent, passed on unchanged.
    pub upstream_5xx: u64,
    /// Upgrades passed through (`101 Switching Protocols`).
    pub upgrades: u64,
    /// CONNECT tunnels opened.
    pub tunnels: u64,
    /// The upstream client's pool, per upstream origin, when it keeps
    /// counters (`freshpool::Client` does; hyper-util's does not).
    pub upstream: Option<freshpool::Stats>,
}

impl ProxyStats {
    /// `5xx` answers the proxy made itself (`502` and `504`).
    pub fn proxy_5xx(&self) -> u64 {
        self.bad_gateway + self.gateway_timeout
    }

    /// The snapshot as `name value` lines, one counter a line.
    pub(crate) fn to_text(&self, upstream: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "upstream {upstream}");
        for (name, value) in [
            ("requests", self.requests),
            ("bad_gateway", self.bad_gateway),
            ("gateway_timeout", self.gateway_timeout),
            ("request_too_large", self.request_too_large),
            ("refused", self.refused),
            ("upstream_5xx", self.upstream_5xx),
            ("upgrades", self.upgrades),
            ("tunnels", self.tunnels),
        ] {
            let _ = writeln!(out, "proxy.{name} {value}");
        }
        for (origin, s) in self.upstream.iter().flat_map(|s| &s.origins) {
            for (name, value) in [
                ("requests", s.requests),
                ("connections_opened", s.connections_opened),
                ("reused", s.reused),
                ("probe_rejections", s.probe_rejections()),
                ("retired_by_expiry", s.retired_by_expiry),
                ("server_closes_observed", s.server_closes_observed),
                ("retries", s.retries()),
                ("errors", s.errors),
                ("idle", s.idle as u64),
                ("open", s.open as u64),
            ] {
                let _ = writeln!(out, "pool.{origin}.{name} {value}");
            }
            if let Some((estimate, source)) = s.estimate {
                let _ = writeln!(
                    out,
                    "pool.{origin}.idle_estimate_ms {} {}",
                    estimate.as_millis(),
                    source.as_str()
                );
            }
        }
        out
    }
}
