//! The public keys an API client registers to authenticate at the token endpoint with
//! `private_key_jwt` (RFC 7523 §2.2): RSA of 2048 to 8192 bits (RS256) or EC P-256 (ES256),
//! public members only. Keys are checked once, when registered, and stored normalised: only the
//! members a verifier needs (`kty`, `kid`, `use`, `alg` and the key's own), so nothing a caller
//! sent beyond them is kept or echoed.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::validation::FieldError;

/// At most this many keys per client (enough for a rotation with room to spare).
pub const MAX_KEYS: usize = 10;

/// The signing algorithms a client assertion may use.
pub const ASSERTION_ALGS: [&str; 2] = ["RS256", "ES256"];

/// JWK members that belong to a private (or symmetric) key: a JWKS holding one is refused.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Smallest and largest RSA modulus accepted, in bits.
const RSA_MIN_BITS: usize = 2048;
const RSA_MAX_BITS: usize = 8192;

/// One registered public key, normalised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClientJwk {
    /// `RSA` or `EC`.
    #[schema(example = "RSA")]
    pub kty: String,
    /// Key id; an assertion naming a `kid` is checked against this key only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(nullable = false)]
    pub kid: Option<String>,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// `RS256` (RSA) or `ES256` (EC P-256).
    #[schema(example = "RS256")]
    pub alg: String,
    /// RSA modulus, base64url.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(nullable = false)]
    pub n: Option<String>,
    /// RSA exponent, base64url.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(nullable = false)]
    pub e: Option<String>,
    /// EC curve: `P-256`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(nullable = false)]
    pub crv: Option<String>,
    /// EC x coordinate, base64url.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(nullable = false)]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(nullable = false)]
    pub y: Option<String>,
}

impl ClientJwk {
    /// The algorithm assertions signed with this key use.
    pub fn algorithm(&self) -> Algorithm {
        if self.kty == "EC" {
            Algorithm::ES256
        } else {
            Algorithm::RS256
        }
    }

    /// The verification key.
    pub fn decoding_key(&self) -> Option<DecodingKey> {
        match (self.kty.as_str(), &self.n, &self.e, &self.x, &self.y) {
            ("RSA", Some(n), Some(e), _, _) => DecodingKey::from_rsa_components(n, e).ok(),
            ("EC", _, _, Some(x), Some(y)) => DecodingKey::from_ec_components(x, y).ok(),
            _ => None,
        }
    }
}

/// The stored form: a JWKS of normalised keys.
#[derive(Debug, Serialize, Deserialize)]
struct StoredJwks {
    keys: Vec<ClientJwk>,
}

/// The stored text of `keys`; `None` for no keys.
pub fn to_stored(keys: &[ClientJwk]) -> Option<String> {
    if keys.is_empty() {
        return None;
    }
    serde_json::to_string(&StoredJwks {
        keys: keys.to_vec(),
    })
    .ok()
}

/// Keys read back from the store; `None` when the text is not what [`to_stored`] writes.
pub fn from_stored(text: &str) -> Option<Vec<ClientJwk>> {
    serde_json::from_str::<StoredJwks>(text)
        .ok()
        .map(|j| j.keys)
}

/// Checks a JWKS (`{"keys": [...]}`, at most [`MAX_KEYS`]; an empty list removes every key) and
/// returns its keys normalised, or every problem found, each naming its member
/// (`keys[1].d`). Values a caller sent are never quoted back.
pub fn parse_jwks(body: &Value) -> Result<Vec<ClientJwk>, Vec<FieldError>> {
    let err = |field: String, message: &str| FieldError {
        field,
        message: message.to_owned(),
    };
    let Some(obj) = body.as_object() else {
        return Err(vec![err(
            "body".into(),
            "must be a JWKS: a JSON object with a `keys` array",
        )]);
    };
    let mut errors = Vec::new();
    for member in obj.keys().filter(|k| *k != "keys") {
        if errors.len() < crate::validation::MAX_REPORTED {
            errors.push(err(
                safe_member(member, ""),
                "unknown member; a JWKS has only `keys`",
            ));
        }
    }
    let Some(list) = obj.get("keys").and_then(Value::as_array) else {
        errors.push(err("keys".into(), "required: an array of public JWKs"));
        return Err(errors);
    };
    if list.len() > MAX_KEYS {
        errors.push(err(
            "keys".into(),
            &format!("at most {MAX_KEYS} keys may be registered"),
        ));
        return Err(errors);
    }
    let mut keys = Vec::new();
    for (i, jwk) in list.iter().enumerate() {
        match parse_jwk(jwk, &format!("keys[{i}]")) {
            Ok(k) => keys.push(k),
            Err(mut e) => errors.append(&mut e),
        }
    }
    for (i, k) in keys.iter().enumerate() {
        if let Some(kid) = &k.kid
            && keys[..i].iter().any(|o| o.kid.as_ref() == Some(kid))
        {
            errors.push(err("keys".into(), "two keys have the same kid"));
            break;
        }
    }
    if errors.is_empty() {
        Ok(keys)
    } else {
        errors.truncate(crate::validation::MAX_REPORTED);
        Err(errors)
    }
}

/// A member name safe to put in a field path: ours when it is short and plain, else a
/// placeholder (a caller's member name could hold anything).
fn safe_member(name: &str, at: &str) -> String {
    let plain = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '#'));
    let shown = if plain { name } else { "<member>" };
    if at.is_empty() {
        shown.to_owned()
    } else {
        format!("{at}.{shown}")
    }
}

fn parse_jwk(jwk: &Value, at: &str) -> Result<ClientJwk, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(obj) = jwk.as_object() else {
        fail(&mut errors, at.to_owned(), "must be a JWK (a JSON object)");
        return Err(errors);
    };
    for m in PRIVATE_MEMBERS {
        if obj.contains_key(m) {
            fail(
                &mut errors,
                format!("{at}.{m}"),
                "a private or symmetric key member: register the public key only",
            );
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let text = |name: &str| obj.get(name).and_then(Value::as_str);
    let kty = match obj.get("kty").and_then(Value::as_str) {
        Some(k @ ("RSA" | "EC")) => k.to_owned(),
        _ => {
            fail(
                &mut errors,
                format!("{at}.kty"),
                "must be `RSA` (2048 bits or more) or `EC` (P-256)",
            );
            return Err(errors);
        }
    };
    let alg = if kty == "RSA" { "RS256" } else { "ES256" };
    let kid = match obj.get("kid") {
        None => None,
        Some(Value::String(k))
            if (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Some(k.clone())
        }
        Some(_) => {
            fail(
                &mut errors,
                format!("{at}.kid"),
                "must be 1 to 128 visible ASCII characters",
            );
            None
        }
    };
    match obj.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(_) => fail(
            &mut errors,
            format!("{at}.use"),
            "must be `sig`: the key verifies signatures",
        ),
    }
    match obj.get("alg") {
        None => {}
        Some(Value::String(a)) if a == alg => {}
        Some(_) => fail(
            &mut errors,
            format!("{at}.alg"),
            if kty == "RSA" {
                "an RSA key signs with `RS256`"
            } else {
                "an EC P-256 key signs with `ES256`"
            },
        ),
    }
    if let Some(ops) = obj.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
        if !verifies {
            fail(
                &mut errors,
                format!("{at}.key_ops"),
                "when given, must include `verify`",
            );
        }
    }
    let mut key = ClientJwk {
        kty: kty.clone(),
        kid,
        use_: "sig".into(),
        alg: alg.into(),
        n: None,
        e: None,
        crv: None,
        x: None,
        y: None,
    };
    if kty == "RSA" {
        match text("n").and_then(|n| unsigned(n, 2 + RSA_MAX_BITS / 6)) {
            Some(n) if (RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bit_length(&n)) => {
                key.n = text("n").map(str::to_owned);
            }
            Some(_) => fail(
                &mut errors,
                format!("{at}.n"),
                "the modulus must be 2048 to 8192 bits",
            ),
            None => fail(
                &mut errors,
                format!("{at}.n"),
                "required: the modulus, base64url without padding",
            ),
        }
        match text("e").and_then(|e| unsigned(e, 12)) {
            Some(e)
                if e.len() <= 8 && e.last().is_some_and(|b| b & 1 == 1) && bit_length(&e) >= 2 =>
            {
                key.e = text("e").map(str::to_owned);
            }
            _ => fail(
                &mut errors,
                format!("{at}.e"),
                "required: an odd public exponent of at least 3, base64url without padding",
            ),
        }
    } else {
        if text("crv") != Some("P-256") {
            fail(&mut errors, format!("{at}.crv"), "must be `P-256`");
        }
        let coordinate = |name: &str| {
            text(name)
                .filter(|v| v.len() == 43)
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .filter(|b| b.len() == 32)
        };
        match (coordinate("x"), coordinate("y")) {
            (Some(x), Some(y)) => {
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                let on_curve = aws_lc_rs::signature::ParsedPublicKey::new(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
                    &point,
                )
                .is_ok();
                if on_curve {
                    key.crv = Some("P-256".into());
                    key.x = text("x").map(str::to_owned);
                    key.y = text("y").map(str::to_owned);
                } else {
                    fail(
                        &mut errors,
                        format!("{at}.x"),
                        "x and y are not a point of P-256",
                    );
                }
            }
            (x, y) => {
                if x.is_none() {
                    fail(
                        &mut errors,
                        format!("{at}.x"),
                        "required: 32 bytes, base64url without padding",
                    );
                }
                if y.is_none() {
                    fail(
                        &mut errors,
                        format!("{at}.y"),
                        "required: 32 bytes, base64url without padding",
                    );
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(key)
    } else {
        Err(errors)
    }
}

fn fail(errors: &mut Vec<FieldError>, field: String, message: &str) {
    errors.push(FieldError {
        field,
        message: message.to_owned(),
    });
}

/// A base64url (no padding) big-endian integer of at most `max_chars` characters, leading zero
/// bytes removed.
fn unsigned(text: &str, max_chars: usize) -> Option<Vec<u8>> {
    if text.is_empty() || text.len() > max_chars {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    Some(bytes[first..].to_vec())
}

/// Bits of a big-endian integer with no leading zero byte.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.first() {
        None => 0,
        Some(b) => (bytes.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A public RSA JWK of `bits` bits (modulus all ones: the checks here read sizes only).
    fn rsa(bits: usize) -> Value {
        let n = vec![0xffu8; bits / 8];
        json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&n), "e": "AQAB", "kid": "k1"})
    }

    fn p256() -> Value {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &rng,
        )
        .expect("generate");
        let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
        )
        .expect("parse");
        use aws_lc_rs::signature::KeyPair as _;
        let point = pair.public_key().as_ref().to_vec();
        json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        })
    }

    fn fields(r: Result<Vec<ClientJwk>, Vec<FieldError>>) -> Vec<String> {
        r.expect_err("refused")
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn rsa_2048_and_p256_are_accepted_and_normalised() {
        let mut extra = rsa(2048);
        extra["x5c"] = json!(["MIIB…"]);
        extra["alg"] = json!("RS256");
        let keys = parse_jwks(&json!({"keys": [extra, p256()]})).expect("valid");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].alg, "RS256");
        assert_eq!(keys[1].alg, "ES256");
        assert_eq!(keys[1].algorithm(), Algorithm::ES256);
        let stored = to_stored(&keys).expect("text");
        assert!(!stored.contains("x5c"), "only verifier members are kept");
        assert_eq!(from_stored(&stored), Some(keys));
        assert_eq!(parse_jwks(&json!({"keys": []})).expect("empty"), Vec::new());
        assert_eq!(to_stored(&[]), None);
    }

    #[test]
    fn weak_private_symmetric_and_odd_keys_are_refused() {
        assert_eq!(
            fields(parse_jwks(&json!({"keys": [rsa(1024)]}))),
            ["keys[0].n"]
        );
        let mut private = rsa(2048);
        private["d"] = json!("AQAB");
        private["p"] = json!("AQAB");
        assert_eq!(
            fields(parse_jwks(&json!({"keys": [private]}))),
            ["keys[0].d", "keys[0].p"]
        );
        assert_eq!(
            fields(parse_jwks(
                &json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})
            )),
            ["keys[0].k"]
        );
        let mut p384 = p256();
        p384["crv"] = json!("P-384");
        assert_eq!(
            fields(parse_jwks(&json!({"keys": [p384]}))),
            ["keys[0].crv"]
        );
        let mut off_curve = p256();
        off_curve["y"] = off_curve["x"].clone();
        assert_eq!(
            fields(parse_jwks(&json!({"keys": [off_curve]}))),
            ["keys[0].x"]
        );
        let mut wrong_alg = p256();
        wrong_alg["alg"] = json!("RS256");
        assert_eq!(
            fields(parse_jwks(&json!({"keys": [wrong_alg]}))),
            ["keys[0].alg"]
        );
        let mut even = rsa(2048);
        even["e"] = json!("AQAA");
        assert_eq!(fields(parse_jwks(&json!({"keys": [even]}))), ["keys[0].e"]);
        let mut enc = rsa(2048);
        enc["use"] = json!("enc");
        assert_eq!(fields(parse_jwks(&json!({"keys": [enc]}))), ["keys[0].use"]);
        let mut padded = rsa(2048);
        padded["n"] = json!(format!("{}=", padded["n"].as_str().expect("n")));
        assert_eq!(
            fields(parse_jwks(&json!({"keys": [padded]}))),
            ["keys[0].n"]
        );
        assert_eq!(
            fields(parse_jwks(&json!({"keys": [rsa(2048), rsa(4096)]}))),
            ["keys"],
            "duplicate kid"
        );
        let many: Vec<Value> = (0..=MAX_KEYS).map(|_| p256()).collect();
        assert_eq!(fields(parse_jwks(&json!({"keys": many}))), ["keys"]);
        assert_eq!(fields(parse_jwks(&json!([]))), ["body"]);
        assert_eq!(
            fields(parse_jwks(&json!({"keys": [], "a\r\nb": 1}))),
            ["<member>"],
            "a caller's member name is not quoted back"
        );
        let mut bad_kid = rsa(2048);
        bad_kid["kid"] = json!("a b");
        assert_eq!(
            fields(parse_jwks(&json!({"keys": [bad_kid]}))),
            ["keys[0].kid"]
        );
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0x80, 0]), 16);
        assert_eq!(unsigned("AAAB", 10), Some(vec![1]));
    }
}
