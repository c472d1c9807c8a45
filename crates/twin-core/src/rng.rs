//! Named, independent random streams.
//!
//! Every source of randomness (a source's arrivals, a station's processing times, its
//! failures, ...) draws from its own ChaCha8 stream, keyed by the run's seed and a stable
//! hash of the stream's name. Adding a station therefore never changes the numbers any
//! other station draws: the basis of common random numbers in experiments.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// One independent random stream.
pub type Stream = ChaCha8Rng;

/// The stream called `name` for the run seeded with `seed`.
pub fn stream(seed: u64, name: &str) -> Stream {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(fnv1a(name.as_bytes()));
    rng
}

/// `rng` continued under a new key: the same named stream (its stream number, the hash
/// of the name), drawn afresh from `seed`.
pub fn rekey(rng: &mut Stream, seed: u64) {
    let number = rng.get_stream();
    *rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(number);
}

/// FNV-1a: a tiny hash whose values are fixed forever, unlike `std`'s `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: u64 = stream(1, "station/m1/process").random();
        let b: u64 = stream(1, "station/m1/process").random();
        let c: u64 = stream(1, "station/m2/process").random();
        let d: u64 = stream(2, "station/m1/process").random();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }
}
