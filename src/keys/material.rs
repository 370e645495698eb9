//! RSA key material: generation and import (aws-lc-rs), PKCS#8 PEM, public JWK, RFC 7638 `kid`.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_BITS: u32 = 2048;

/// Why key material was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyMaterialError {
    /// Not PEM at all.
    #[error("not a PEM file: {0}")]
    NotPem(String),
    /// A PEM block we do not take.
    #[error(
        "PEM block '{0}' is not an unencrypted RSA private key; give a PKCS#8 'PRIVATE KEY' or PKCS#1 'RSA PRIVATE KEY' block"
    )]
    WrongBlock(String),
    /// The DER did not parse as an RSA private key.
    #[error("not an RSA private key (or a malformed one): {0}")]
    Malformed(String),
    /// The modulus is too small.
    #[error("RSA key of {0} bits is too weak; at least 2048 bits are required")]
    TooWeak(u32),
    /// Only 2048, 3072 and 4096 are generated.
    #[error("unsupported key size {0}; choose 2048, 3072 or 4096")]
    UnsupportedSize(u32),
    /// Generation failed in the crypto library.
    #[error("key generation failed")]
    Generation,
    /// Signing failed in the crypto library.
    #[error("signing failed")]
    Signing,
}

/// One RSA key pair, parsed once: its public JWK members, `kid`, signing key and PKCS#8 PEM.
pub struct KeyMaterial {
    kid: String,
    bits: u32,
    n: String,
    e: String,
    pkcs8_pem: Zeroizing<String>,
    pair: KeyPair,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

/// Why a PEM text could not be read, in words (the `pem` crate's own text includes
/// `malformedframing`).
pub fn pem_problem(e: &pem::PemError) -> &'static str {
    use pem::PemError as E;
    match e {
        E::MismatchedTags(..) => "its BEGIN and END lines name different blocks",
        E::MalformedFraming => "the BEGIN/END lines are missing or malformed",
        E::MissingBeginTag => "the -----BEGIN …----- line is missing",
        E::MissingEndTag => "the -----END …----- line is missing",
        E::MissingData => "the block holds no data",
        E::InvalidData(_) => "the block is not valid base64",
        E::InvalidHeader(_) => "a header line of the block is invalid",
        E::NotUtf8(_) => "it is not UTF-8 text",
    }
}

/// aws-lc's reason for refusing a key (`WrongAlgorithm`, `InvalidEncoding`, …), in words.
fn rejection(e: aws_lc_rs::error::KeyRejected) -> &'static str {
    match e.description_() {
        "WrongAlgorithm" => "the key is not an RSA key",
        "InvalidEncoding" => "the key's DER encoding is invalid",
        "TooSmall" => "the key is too small",
        "TooLarge" => "the key is too large",
        "InconsistentComponents" => "the key's components are inconsistent",
        "PublicKeyIsMissing" => "the public key is missing",
        _ => "the key cannot be used",
    }
}

impl KeyMaterial {
    /// Generates a new key of `bits` (2048, 3072 or 4096).
    pub fn generate(bits: u32) -> Result<Self, KeyMaterialError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            other => return Err(KeyMaterialError::UnsupportedSize(other)),
        };
        let pair = KeyPair::generate(size).map_err(|_| KeyMaterialError::Generation)?;
        Self::from_pair(pair)
    }

    /// Parses a PEM file holding a PKCS#8 or PKCS#1 RSA private key of at least 2048 bits.
    pub fn from_pem(text: &[u8]) -> Result<Self, KeyMaterialError> {
        let block =
            pem::parse(text).map_err(|e| KeyMaterialError::NotPem(pem_problem(&e).into()))?;
        let pair = match block.tag() {
            "PRIVATE KEY" => KeyPair::from_pkcs8(block.contents()),
            "RSA PRIVATE KEY" => KeyPair::from_der(block.contents()),
            other => return Err(KeyMaterialError::WrongBlock(other.to_owned())),
        };
        let pair = match pair {
            Ok(p) => p,
            Err(e) => {
                // aws-lc refuses keys under 2048 bits with a generic reason; say which it is.
                if let Some(bits) = modulus_bits_hint(block.tag(), block.contents())
                    && bits < MIN_BITS
                {
                    return Err(KeyMaterialError::TooWeak(bits));
                }
                return Err(KeyMaterialError::Malformed(rejection(e).into()));
            }
        };
        Self::from_pair(pair)
    }

    fn from_pair(pair: KeyPair) -> Result<Self, KeyMaterialError> {
        let public = pair.public_key();
        let n_bytes = public.modulus().big_endian_without_leading_zero().to_vec();
        let e_bytes = public.exponent().big_endian_without_leading_zero().to_vec();
        let bits = modulus_bit_len(&n_bytes);
        if bits < MIN_BITS {
            return Err(KeyMaterialError::TooWeak(bits));
        }
        let der = pair
            .as_der()
            .map_err(|_| KeyMaterialError::Malformed("cannot encode it as PKCS#8".into()))?;
        let pkcs8_pem = Zeroizing::new(pem::encode(&pem::Pem::new(
            "PRIVATE KEY",
            der.as_ref().to_vec(),
        )));
        let n = URL_SAFE_NO_PAD.encode(&n_bytes);
        let e = URL_SAFE_NO_PAD.encode(&e_bytes);
        let kid = thumbprint(&n, &e);
        Ok(Self {
            kid,
            bits,
            n,
            e,
            pkcs8_pem,
            pair,
        })
    }

    /// RFC 7638 thumbprint: the `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Modulus size.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// The PKCS#8 PEM text (private; only ever written to the key file).
    pub fn pkcs8_pem(&self) -> &str {
        &self.pkcs8_pem
    }

    /// An RS256 signature (RSASSA-PKCS1-v1_5 with SHA-256) over `message`. The key was parsed
    /// once when loaded; nothing is parsed per signature.
    pub fn sign_rs256(&self, message: &[u8]) -> Result<Vec<u8>, KeyMaterialError> {
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|_| KeyMaterialError::Signing)?;
        Ok(signature)
    }

    /// The public JWK: `kty`, `use`, `alg`, `kid`, `n`, `e` — nothing private.
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": super::ALG,
            "kid": self.kid,
            "n": self.n,
            "e": self.e,
        })
    }
}

/// RFC 7638 §3: SHA-256 over `{"e":…,"kty":"RSA","n":…}` (members sorted, no whitespace), base64url.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

fn modulus_bit_len(n: &[u8]) -> u32 {
    match n.first() {
        None => 0,
        Some(&first) => {
            let len = u32::try_from(n.len()).unwrap_or(u32::MAX / 8);
            (len - 1) * 8 + (8 - first.leading_zeros())
        }
    }
}

/// Best-effort read of the modulus size from DER that aws-lc refused, to tell "too weak" from
/// "malformed". PKCS#1: SEQUENCE { version INTEGER, modulus INTEGER, … }. PKCS#8 wraps PKCS#1 in an
/// OCTET STRING after the algorithm identifier.
fn modulus_bits_hint(tag: &str, der: &[u8]) -> Option<u32> {
    let pkcs1 = if tag == "PRIVATE KEY" {
        let (outer, _) = der_take(der, 0x30)?;
        let (_, rest) = der_take(outer, 0x02)?; // version
        let (_, rest) = der_take(rest, 0x30)?; // algorithm identifier
        let (octets, _) = der_take(rest, 0x04)?;
        octets
    } else {
        der
    };
    let (seq, _) = der_take(pkcs1, 0x30)?;
    let (_, rest) = der_take(seq, 0x02)?;
    let (modulus, _) = der_take(rest, 0x02)?;
    let trimmed: &[u8] = {
        let start = modulus
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(modulus.len());
        modulus.get(start..)?
    };
    Some(modulus_bit_len(trimmed))
}

/// Takes one DER TLV with the expected tag; returns (contents, remainder).
fn der_take(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&len0, rest) = rest.split_first()?;
    let (len, rest) = if len0 < 0x80 {
        (usize::from(len0), rest)
    } else {
        let n = usize::from(len0 & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (len_bytes, rest) = rest.split_at_checked(n)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    rest.split_at_checked(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_round_trips_through_pem() {
        let k = KeyMaterial::generate(2048).expect("generate");
        assert_eq!(k.bits(), 2048);
        let again = KeyMaterial::from_pem(k.pkcs8_pem().as_bytes()).expect("parse");
        assert_eq!(again.kid(), k.kid());
        let jwk = k.public_jwk();
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(
                jwk.get(private).is_none(),
                "{private} must not be published"
            );
        }
        assert_eq!(jwk["e"], "AQAB");
        assert_eq!(k.kid().len(), 43, "base64url SHA-256");
    }

    #[test]
    fn rfc7638_example_thumbprint() {
        // RFC 7638 §3.1 example key and its thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn unsupported_size_and_garbage_are_refused() {
        assert_eq!(
            KeyMaterial::generate(1024).expect_err("size"),
            KeyMaterialError::UnsupportedSize(1024)
        );
        assert!(matches!(
            KeyMaterial::from_pem(b"hello"),
            Err(KeyMaterialError::NotPem(_))
        ));
        let public = pem::encode(&pem::Pem::new("PUBLIC KEY", vec![1, 2, 3]));
        assert!(matches!(
            KeyMaterial::from_pem(public.as_bytes()),
            Err(KeyMaterialError::WrongBlock(_))
        ));
        let junk = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![0x30, 0x03, 1, 2, 3]));
        assert!(matches!(
            KeyMaterial::from_pem(junk.as_bytes()),
            Err(KeyMaterialError::Malformed(_))
        ));
    }
}
