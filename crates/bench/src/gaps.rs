//! The pauses between one sender's requests: `interval ± jitter`, or a
//! distribution wide enough to span a client's retire point and the
//! server's idle timeout.

use std::fmt;
use std::time::Duration;

use freshpool_testkit::XorShift;

/// How a sender's pauses are drawn around the interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Gaps {
    /// `interval ± jitter`, uniform: `--jitter 2ms`.
    Jitter(Duration),
    /// Uniform on `[low, high] × interval`: `--gaps uniform:0.5..1.5`.
    Uniform {
        /// The shortest gap, as a share of the interval.
        low: f64,
        /// The longest gap, as a share of the interval.
        high: f64,
    },
}

impl Gaps {
    /// Draws one pause for `interval` from `rng`.
    pub(crate) fn draw(self, interval: Duration, rng: &mut XorShift) -> Duration {
        match self {
            Gaps::Jitter(spread) => rng.around(interval, spread),
            Gaps::Uniform { low, high } => interval.mul_f64(low + (high - low) * rng.unit()),
        }
    }

    /// The longest pause this can draw for `interval`.
    pub(crate) fn longest(self, interval: Duration) -> Duration {
        match self {
            Gaps::Jitter(spread) => interval + spread,
            Gaps::Uniform { high, .. } => interval.mul_f64(high),
        }
    }
}

impl fmt::Display for Gaps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gaps::Jitter(spread) => write!(f, "± {} ms", spread.as_secs_f64() * 1e3),
            Gaps::Uniform { low, high } => write!(f, "uniform on [{low}, {high}] × the interval"),
        }
    }
}

/// Parses `uniform:0.5..1.5` (gaps uniform on that share of the
/// interval).
pub(crate) fn parse_gaps(text: &str) -> Result<Gaps, String> {
    let text = text.trim();
    let range = text.strip_prefix("uniform:").ok_or_else(|| {
        format!("{text:?} is not a distribution (use uniform:LOW..HIGH, e.g. uniform:0.5..1.5)")
    })?;
    let (low, high) = range
        .split_once("..")
        .ok_or_else(|| format!("{range:?} is not a range (use LOW..HIGH, e.g. 0.5..1.5)"))?;
    let share = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0 && *v <= 1000.0)
            .ok_or_else(|| format!("{s:?} is not a share of the interval from 0 to 1000"))
    };
    let (low, high) = (share(low)?, share(high)?);
    if low > high {
        return Err(format!(
            "uniform:{low}..{high}: the low end is above the high end"
        ));
    }
    Ok(Gaps::Uniform { low, high })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_spread_and_covers_it() {
        let mut rng = XorShift::new(7);
        let base = Duration::from_millis(200);
        let spread = Duration::from_millis(2);
        let draws: Vec<_> = (0..10_000)
            .map(|_| Gaps::Jitter(spread).draw(base, &mut rng))
            .collect();
        assert!(
            draws
                .iter()
                .all(|d| *d >= base - spread && *d <= base + spread)
        );
        assert!(draws.iter().any(|d| *d < base - spread / 2));
        assert!(draws.iter().any(|d| *d > base + spread / 2));
    }

    #[test]
    fn uniform_gaps_span_their_range_evenly() {
        let mut rng = XorShift::new(7);
        let gaps = parse_gaps("uniform:0.5..1.5").expect("valid");
        let interval = Duration::from_millis(200);
        let draws: Vec<_> = (0..10_000).map(|_| gaps.draw(interval, &mut rng)).collect();
        let (low, high) = (Duration::from_millis(100), Duration::from_millis(300));
        assert!(draws.iter().all(|d| *d >= low && *d <= high));
        let below = draws.iter().filter(|d| **d < interval).count();
        assert!(
            (4_500..5_500).contains(&below),
            "{below} of 10000 below the middle"
        );
        assert!(draws.iter().any(|d| *d < Duration::from_millis(105)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(295)));
        assert_eq!(gaps.longest(interval), high);
    }

    #[test]
    fn bad_distributions_are_named() {
        assert!(
            parse_gaps("normal:1..2")
                .unwrap_err()
                .contains("not a distribution")
        );
        assert!(parse_gaps("uniform:1").unwrap_err().contains("not a range"));
        assert!(parse_gaps("uniform:x..2").unwrap_err().contains("\"x\""));
        assert!(parse_gaps("uniform:2..1").unwrap_err().contains("low end"));
        assert!(parse_gaps("uniform:-1..1").is_err());
        assert_eq!(
            parse_gaps(" uniform:0.9..1.1 "),
            Ok(Gaps::Uniform {
                low: 0.9,
                high: 1.1
            })
        );
    }
}
