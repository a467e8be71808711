//! An optional maximum connection lifetime, with jitter.

use std::time::{Duration, Instant};

/// An optional maximum connection lifetime, with jitter.
///
/// Retiring every connection after a while, whatever its activity, lets a
/// client follow DNS changes and rebalance across servers. Jitter spreads
/// the retirements of connections opened together, so that they are not
/// all replaced at once.
///
/// ```
/// use std::time::{Duration, Instant};
/// use freshpool_expiry::Lifetime;
///
/// let lifetime = Lifetime { max: Duration::from_secs(300), jitter: Duration::from_secs(30) };
/// let created = Instant::now();
/// let deadline = lifetime.deadline(created, 0x5eed);
/// assert!(deadline <= created + Duration::from_secs(300));
/// assert!(deadline >= created + Duration::from_secs(270));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lifetime {
    /// The longest a connection lives.
    pub max: Duration,
    /// How much earlier than `max` a connection may be retired; the
    /// deadline is spread over `[max − jitter, max]`.
    pub jitter: Duration,
}

impl Lifetime {
    /// The retire deadline of a connection created at `created`.
    ///
    /// `entropy` is any random `u64` the caller supplies (this crate stays
    /// pure and has no random source); the same inputs give the same
    /// deadline. The result is never later than `created + max`; if that
    /// instant is not representable, the farthest representable instant
    /// on the way is used instead.
    pub fn deadline(&self, created: Instant, entropy: u64) -> Instant {
        let jitter = self.jitter.min(self.max).as_nanos();
        let early = u128::from(entropy) % (jitter + 1);
        let early = Duration::from_nanos(u64::try_from(early).unwrap_or(u64::MAX));
        let mut after = self.max.saturating_sub(early);
        loop {
            if let Some(deadline) = created.checked_add(after) {
                return deadline;
            }
            after /= 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn lifetime_jitter_stays_in_range() {
        let created = Instant::now();
        let lifetime = Lifetime {
            max: secs(300),
            jitter: secs(30),
        };
        let mut seen = std::collections::HashSet::new();
        for entropy in (0..1000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) {
            let d = lifetime.deadline(created, entropy);
            assert!(d <= created + secs(300) && d >= created + secs(270));
            assert_eq!(d, lifetime.deadline(created, entropy), "deterministic");
            seen.insert(d);
        }
        assert!(seen.len() > 900, "jitter spreads deadlines");

        let none = Lifetime {
            max: secs(60),
            jitter: Duration::ZERO,
        };
        assert_eq!(none.deadline(created, u64::MAX), created + secs(60));
        // Jitter larger than the lifetime cannot go before `created`.
        let wide = Lifetime {
            max: secs(1),
            jitter: secs(10),
        };
        assert!(wide.deadline(created, 12345) >= created);
        // An unrepresentable deadline does not panic.
        let forever = Lifetime {
            max: Duration::MAX,
            jitter: Duration::ZERO,
        };
        assert!(forever.deadline(created, 0) > created);
    }
}
