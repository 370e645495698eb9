//! Randomness as a dependency: `jti` values and retry jitter come from here, so tests can pin them.

use std::fmt::Debug;

/// A source of identifiers and random numbers.
pub trait Ids: Send + Sync + Debug {
    /// A new, unique `jti` (hex).
    fn jti(&self) -> String;
    /// A uniformly random number in `[0, 1)`.
    fn unit(&self) -> f64;
}

/// The system CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl Ids for RandomIds {
    /// A UUIDv7: 74 random bits after the time in ms. Unique and unguessable all the same, and
    /// in time order, so the indexes keyed by `jti` grow at their end instead of writing a
    /// random page for each new SET (the SET's `iat` tells its time anyway).
    fn jti(&self) -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }

    fn unit(&self) -> f64 {
        let mut b = [0u8; 8];
        if aws_lc_rs::rand::fill(&mut b).is_err() {
            return 0.5;
        }
        // 53 random bits → [0, 1).
        (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
    }
}
