//! Random spread for delays, so that clients restarted together do not retry in lockstep.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// A random number in `0.0..1.0`. `RandomState` is seeded from the operating system's random
/// source once per process and advanced for every instance, which is all a jitter needs.
pub(crate) fn random_unit() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// `base` scaled by a random factor in `low..high`.
pub(crate) fn spread(base: Duration, low: f64, high: f64) -> Duration {
    base.mul_f64(low + (high - low) * random_unit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_stays_in_range_and_varies() {
        let base = Duration::from_millis(100);
        let samples: Vec<Duration> = (0..64).map(|_| spread(base, 0.5, 1.0)).collect();
        assert!(samples.iter().all(|d| *d >= base / 2 && *d <= base));
        let first = samples[0];
        assert!(
            samples.iter().any(|d| *d != first),
            "no variation: {samples:?}"
        );
    }
}
