//! `Upstash-Signature`: an HS256 JWT over the exact URL called and a hash of the body,
//! signed with the user's current signing key (the key string's bytes are the secret, as both
//! SDK receivers expect).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How long a signature stays valid.
pub const SIGNATURE_TTL_S: i64 = 300;

#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct Claims<'a> {
    pub iss: &'static str,
    pub sub: &'a str,
    pub iat: i64,
    /// 0, as production does since 2024: receivers with a slow clock must not reject a
    /// fresh signature.
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub body: String,
}

/// base64url(SHA-256(body)) with `=` padding.
pub fn body_hash(body: &[u8]) -> String {
    URL_SAFE.encode(Sha256::digest(body))
}

/// The claims for a delivery to `url` at unix time `now_s` (system time, not the broker
/// clock: receivers check `iat`/`exp` against their own clock).
pub fn claims<'a>(url: &'a str, body: &[u8], now_s: i64) -> Claims<'a> {
    Claims {
        iss: "Upstash",
        sub: url,
        iat: now_s,
        nbf: 0,
        exp: now_s + SIGNATURE_TTL_S,
        jti: format!("jwt_{}", crate::ids::random_base62(22)),
        body: body_hash(body),
    }
}

pub fn sign(key: &str, url: &str, body: &[u8], now_s: i64) -> String {
    let claims = claims(url, body, now_s);
    // Encoding an HS256 token with serializable claims cannot fail.
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(key.as_bytes()),
    )
    .unwrap_or_default()
}

pub fn system_now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// A fresh signing key in the production shape: `sig_` + 28 base58 characters.
pub fn new_signing_key() -> String {
    let mut out = String::from("sig_");
    let mut bits = uuid::Uuid::new_v4().as_u128();
    for i in 0..28 {
        if i == 21 {
            bits = uuid::Uuid::new_v4().as_u128();
        }
        out.push(BASE58[(bits % 58) as usize] as char);
        bits /= 58;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    #[test]
    fn empty_body_hash_matches_spec() {
        assert_eq!(
            body_hash(b""),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn token_verifies_with_the_key_and_carries_claims() {
        let key = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r";
        let now = system_now_s();
        let token = sign(key, "http://localhost:3000/api?x=1", b"hello", now);
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&["Upstash"]);
        v.set_required_spec_claims(&["iss", "sub", "exp", "nbf"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(key.as_bytes()),
            &v,
        )
        .expect("valid token");
        let c = data.claims;
        assert_eq!(c["sub"], "http://localhost:3000/api?x=1");
        assert_eq!(c["iat"], now);
        assert_eq!(c["exp"], now + 300);
        assert_eq!(c["nbf"], 0);
        assert!(c["jti"].as_str().unwrap().starts_with("jwt_"));
        assert_eq!(c["body"], body_hash(b"hello"));
        let wrong = DecodingKey::from_secret(b"sig_other");
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &wrong, &v).is_err());
    }

    #[test]
    fn new_keys_have_the_production_shape() {
        let k = new_signing_key();
        assert_eq!(k.len(), 32);
        assert!(k[4..].bytes().all(|b| BASE58.contains(&b)));
        assert_ne!(k, new_signing_key());
    }
}
