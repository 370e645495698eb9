//! Generated passwords: uniform picks from the operating system's CSPRNG, meeting the configured
//! minimum of each character class.

use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::config::PasswordPolicy;

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";

/// A uniform index below `n` (rejection sampling, no modulo bias).
fn below(rng: &SystemRandom, n: usize) -> Result<usize, String> {
    let n = u32::try_from(n).map_err(|_| "alphabet too large".to_owned())?;
    if n == 0 {
        return Err("empty alphabet".into());
    }
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let mut b = [0u8; 4];
        rng.fill(&mut b)
            .map_err(|_| "the system random generator failed".to_owned())?;
        let v = u32::from_le_bytes(b);
        if v < zone {
            return Ok((v % n) as usize);
        }
    }
}

fn pick(rng: &SystemRandom, alphabet: &[char]) -> Result<char, String> {
    Ok(alphabet[below(rng, alphabet.len())?])
}

/// A password of `length` characters meeting `policy`'s minimums.
pub fn generate(policy: &PasswordPolicy, length: usize) -> Result<SecretString, String> {
    let rng = SystemRandom::new();
    let symbols: Vec<char> = policy.symbols.chars().collect();
    let classes: [(Vec<char>, usize); 4] = [
        (LOWER.chars().collect(), policy.min_lowercase),
        (UPPER.chars().collect(), policy.min_uppercase),
        (DIGITS.chars().collect(), policy.min_digits),
        (symbols, policy.min_symbols),
    ];
    let required: usize = classes.iter().map(|(_, n)| n).sum();
    if length < required {
        return Err(format!(
            "length {length} is shorter than the {required} characters the policy requires"
        ));
    }
    let all: Vec<char> = classes
        .iter()
        .flat_map(|(a, _)| a.iter().copied())
        .collect();
    let mut out: Zeroizing<Vec<char>> = Zeroizing::new(Vec::with_capacity(length));
    for (alphabet, n) in &classes {
        for _ in 0..*n {
            out.push(pick(&rng, alphabet)?);
        }
    }
    while out.len() < length {
        out.push(pick(&rng, &all)?);
    }
    // Fisher–Yates, so the required characters are not at the front.
    for i in (1..out.len()).rev() {
        let j = below(&rng, i + 1)?;
        out.swap(i, j);
    }
    Ok(SecretString::from(out.iter().collect::<String>()))
}

/// `n` random characters from every class of the policy (what "append random characters" adds
/// to a caller's password).
pub fn random_suffix(policy: &PasswordPolicy, n: usize) -> Result<String, String> {
    let rng = SystemRandom::new();
    let all: Vec<char> = LOWER
        .chars()
        .chain(UPPER.chars())
        .chain(DIGITS.chars())
        .chain(policy.symbols.chars())
        .collect();
    (0..n).map(|_| pick(&rng, &all)).collect()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn generated_passwords_meet_the_policy() {
        let policy = PasswordPolicy {
            length: 12,
            min_lowercase: 2,
            min_uppercase: 3,
            min_digits: 4,
            min_symbols: 2,
            symbols: "!#".into(),
        };
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let p = generate(&policy, 12).expect("generate");
            let p = p.expose_secret();
            assert_eq!(p.chars().count(), 12);
            assert!(p.chars().filter(char::is_ascii_lowercase).count() >= 2);
            assert!(p.chars().filter(char::is_ascii_uppercase).count() >= 3);
            assert!(p.chars().filter(char::is_ascii_digit).count() >= 4);
            assert!(p.chars().filter(|c| "!#".contains(*c)).count() >= 2);
            assert!(
                p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#".contains(c))
            );
            seen.insert(p.to_owned());
        }
        assert_eq!(seen.len(), 200, "passwords repeat");
        assert!(generate(&policy, 10).is_err());
    }

    #[test]
    fn required_characters_are_not_always_first() {
        let policy = PasswordPolicy {
            length: 16,
            min_lowercase: 0,
            min_uppercase: 0,
            min_digits: 1,
            min_symbols: 0,
            symbols: String::new(),
        };
        let first_is_digit = (0..200)
            .filter(|_| {
                generate(&policy, 16)
                    .expect("generate")
                    .expose_secret()
                    .starts_with(|c: char| c.is_ascii_digit())
            })
            .count();
        assert!(
            first_is_digit < 150,
            "{first_is_digit}/200 start with a digit"
        );
    }

    #[test]
    fn suffix_has_the_asked_length() {
        let s = random_suffix(&PasswordPolicy::default(), 6).expect("suffix");
        assert_eq!(s.chars().count(), 6);
    }
}
