//! Test and benchmark support shared by freshpool's tests (`tests/` and the
//! crates' own), `poolbench` (`crates/bench`), the benches and the fuzz
//! harnesses. It is not a public API: nothing here is published, and it
//! changes whenever the tests need it to.
//!
//! It holds what several of them used to copy: [`XorShift`], the small
//! deterministic generator behind seeded jitter, random deadlines and
//! mutated inputs. It has no dependencies, so any crate of the workspace can
//! use it.

use std::time::Duration;

/// The golden-ratio constant that spreads small seeds over the state, and
/// that replaces a zero state (xorshift's fixed point).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// A small deterministic pseudo-random generator: reproducible sequences
/// for tests, benches and fuzzing, not cryptography.
///
/// The constructor picks the sequence, and the sequences are fixed: seeded
/// scenarios and the committed fuzz corpus depend on them.
///
/// - [`XorShift::new`]: xorshift64 from a mixed seed (races, jitter).
/// - [`XorShift::from_state`]: xorshift64 from the state as given.
/// - [`XorShift::star`]: xorshift64* from the state as given (the fuzz
///   harnesses and the expiry queue's tests).
#[derive(Debug, Clone)]
pub struct XorShift {
    state: u64,
    star: bool,
}

impl XorShift {
    /// An xorshift64 generator for `seed`, any value (0 included): the seed
    /// is spread over the state, so nearby seeds give unrelated sequences.
    pub fn new(seed: u64) -> XorShift {
        XorShift::from_state(seed.max(1).wrapping_mul(GOLDEN) | 1)
    }

    /// An xorshift64 generator that starts from `state` as it is (zero,
    /// which xorshift never leaves, is replaced by a fixed constant).
    pub fn from_state(state: u64) -> XorShift {
        XorShift {
            state: if state == 0 { GOLDEN } else { state },
            star: false,
        }
    }

    /// An xorshift64* generator that starts from `state` as it is (zero is
    /// replaced by a fixed constant).
    pub fn star(state: u64) -> XorShift {
        XorShift {
            star: true,
            ..XorShift::from_state(state)
        }
    }

    /// The next pseudo-random value.
    // Inline across crates: the expiry bench draws in its measured loop.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        if self.star {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.state = x;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        } else {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.state = x;
            x
        }
    }

    /// Uniform on `0..n`; 0 for `n == 0`, without drawing.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// `true` with a chance of `percent` in 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    /// One of `items`, uniformly (panics when `items` is empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Uniform on `[0, 1]`, at 2⁻⁵³ resolution.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / ((1u64 << 53) - 1) as f64
    }

    /// `base ± spread`, uniform at microsecond resolution (never below
    /// zero).
    pub fn around(&mut self, base: Duration, spread: Duration) -> Duration {
        let offset = self.next_u64() % (2 * micros(spread) + 1);
        (base + Duration::from_micros(offset)).saturating_sub(spread)
    }

    /// Uniform on `[low, high]` at microsecond resolution (`low` when
    /// `high` is below it).
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = micros(high.saturating_sub(low)) + 1;
        low + Duration::from_micros(self.next_u64() % span)
    }

    /// `len` pseudo-random bytes; when `alphabet` is not empty, about half
    /// of them are drawn from it (the bytes that matter to a parser).
    pub fn bytes(&mut self, len: usize, alphabet: &[u8]) -> Vec<u8> {
        (0..len)
            .map(|_| {
                let r = self.next_u64();
                match alphabet.get((r >> 8) as usize % (alphabet.len() * 2).max(1)) {
                    Some(&b) => b,
                    None => r as u8,
                }
            })
            .collect()
    }
}

/// `d` in whole microseconds, capped so that twice it plus one still fits.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first values of each sequence, as the copies this replaced drew
    /// them: seeded scenarios and the committed corpus depend on them.
    const NEW_7: [u64; 3] = [
        0xf63f_752d_d400_329a,
        0xecce_e9dd_2109_d47f,
        0x7f59_6005_939f_3817,
    ];
    const STATE_GOLDEN: [u64; 3] = [
        0xdc1b_77ae_0bf3_4dad,
        0x64f0_eeb9_026e_6076,
        0x7b07_ce91_e590_6136,
    ];
    const STAR_GOLDEN: [u64; 3] = [
        0x0d83_b3e2_9a21_487a,
        0x54c4_4c79_f1fe_9d67,
        0xa845_f342_007a_0e78,
    ];

    fn first(rng: &mut XorShift) -> [u64; 3] {
        [rng.next_u64(), rng.next_u64(), rng.next_u64()]
    }

    #[test]
    fn a_fixed_seed_gives_a_fixed_sequence() {
        assert_eq!(first(&mut XorShift::new(7)), NEW_7);
        assert_eq!(first(&mut XorShift::from_state(GOLDEN)), STATE_GOLDEN);
        assert_eq!(first(&mut XorShift::star(GOLDEN)), STAR_GOLDEN);
        // Zero is a seed like any other, not xorshift's fixed point.
        assert_eq!(first(&mut XorShift::new(0)), first(&mut XorShift::new(1)));
        assert_eq!(first(&mut XorShift::from_state(0)), STATE_GOLDEN);
        assert_eq!(first(&mut XorShift::star(0)), STAR_GOLDEN);
        assert_ne!(first(&mut XorShift::new(7)), first(&mut XorShift::new(8)));
    }

    #[test]
    fn the_range_helpers_stay_in_range() {
        let mut rng = XorShift::new(11);
        let (base, spread) = (Duration::from_millis(200), Duration::from_millis(2));
        let mut seen = [false; 7];
        for _ in 0..10_000 {
            seen[rng.below(7)] = true;
            assert!((0.0..=1.0).contains(&rng.unit()));
            let d = rng.around(base, spread);
            assert!(d >= base - spread && d <= base + spread, "{d:?}");
            let d = rng.between(base, base + spread);
            assert!(d >= base && d <= base + spread, "{d:?}");
            assert!(rng.around(Duration::ZERO, spread) <= spread);
        }
        assert_eq!(seen, [true; 7]);
        assert!(!rng.chance(0) && rng.chance(100));
        assert!([3, 5].contains(&rng.pick(&[3, 5])));
        assert_eq!(rng.between(base + spread, base), base + spread);
        assert_eq!(rng.bytes(16, b"ab").len(), 16);
    }

    #[test]
    fn below_zero_draws_nothing() {
        let mut rng = XorShift::new(3);
        let mut same = rng.clone();
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.next_u64(), same.next_u64());
    }
}
