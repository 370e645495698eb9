//! Randomness as a dependency: `jti` values and retry jitter come from here, so tests can pin them.

use std::fmt::Debug;

/// A source of identifiers and random numbers.
pub trait Ids: Send + Sync + Debug {
    /// A new, unique identifier of 128 random bits (hex): ids, and the halves of secrets such as
    /// approval link tokens.
    fn jti(&self) -> String;
    /// A new, unique SET `jti` (hex), in time order where the source allows, so the outbox's
    /// `jti` indexes grow at their end. Never a secret.
    fn set_jti(&self) -> String {
        self.jti()
    }
    /// A uniformly random number in `[0, 1)`.
    fn unit(&self) -> f64;
}

/// The system CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct RandomIds;

impl Ids for RandomIds {
    fn jti(&self) -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// A UUIDv7: 74 random bits after the time in ms. Unique all the same, and in time order,
    /// so the indexes keyed by `jti` grow at their end instead of writing a random page for
    /// each new SET (the SET's `iat` tells its time anyway).
    fn set_jti(&self) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_token_halves_are_random_and_set_jtis_are_time_ordered() {
        let ids = RandomIds;
        // Approval tokens are two of these: 2 × 122 random bits, no clock in them.
        let id = uuid::Uuid::parse_str(&ids.jti()).expect("uuid");
        assert_eq!(id.get_version_num(), 4);
        let a = ids.set_jti();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ids.set_jti();
        assert_eq!(
            uuid::Uuid::parse_str(&a).expect("uuid").get_version_num(),
            7
        );
        assert!(a < b, "later SETs sort after earlier ones: {a} {b}");
        assert_eq!(a.len(), 32);
    }
}
