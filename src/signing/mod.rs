//! `Upstash-Signature`: an HS256 JWT over the exact URL called and a hash of the body,
//! signed with the user's current signing key (the key string's bytes are the secret, as both
//! SDK receivers expect).
//!
//! The token is assembled here from `hmac`/`sha2` rather than through a JWT library: the
//! header is constant, the claims are six fields, and keying the HMAC once per signing key
//! instead of once per delivery matters at tens of thousands of deliveries a second. Tests
//! verify the result with an independent JWT implementation.

use std::fmt::Write;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// How long a signature stays valid.
pub const SIGNATURE_TTL_S: i64 = 300;

/// base64url of `{"alg":"HS256","typ":"JWT"}`.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// An HMAC-SHA256 keyed with one signing key, cloned for each signature.
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("Signer")
    }
}

impl Signer {
    pub fn new(key: &str) -> Self {
        // HMAC accepts keys of any length.
        let mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap_or_else(|_| unreachable!());
        Self { mac }
    }

    /// The token for a delivery to `url` at unix time `now_s` (system time, not the broker
    /// clock: receivers check `iat`/`exp` against their own clock). Claims: `iss`, `sub`,
    /// `iat`, `nbf` (0, as production does since 2024, so a receiver with a slow clock does
    /// not reject a fresh token), `exp`, `jti`, `body`.
    pub fn sign(&self, url: &str, body: &[u8], now_s: i64) -> String {
        self.sign_hashed(url, &Sha256::digest(body).into(), now_s)
    }

    /// [`Signer::sign`] for a body whose SHA-256 is already known (workflow steps arrays,
    /// whose hash is kept as the run grows instead of recomputed per delivery).
    pub fn sign_hashed(&self, url: &str, body_sha256: &[u8; 32], now_s: i64) -> String {
        let mut claims = String::with_capacity(160 + url.len());
        claims.push_str("{\"iss\":\"Upstash\",\"sub\":");
        push_json_string(&mut claims, url);
        let _ = write!(
            claims,
            ",\"iat\":{now_s},\"nbf\":0,\"exp\":{},\"jti\":\"jwt_{}\",\"body\":\"{}\"}}",
            now_s + SIGNATURE_TTL_S,
            crate::ids::random_base62(22),
            URL_SAFE.encode(body_sha256)
        );
        let mut token = String::with_capacity(HEADER.len() + 2 + claims.len() * 4 / 3 + 48);
        token.push_str(HEADER);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.as_bytes(), &mut token);
        let mut mac = self.mac.clone();
        mac.update(token.as_bytes());
        let signature = mac.finalize().into_bytes();
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        token
    }
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// base64url(SHA-256(body)) with `=` padding.
pub fn body_hash(body: &[u8]) -> String {
    URL_SAFE.encode(Sha256::digest(body))
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

    fn decode(token: &str, key: &str) -> Result<serde_json::Value, jsonwebtoken::errors::Error> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&["Upstash"]);
        v.set_required_spec_claims(&["iss", "sub", "exp", "nbf"]);
        jsonwebtoken::decode::<serde_json::Value>(
            token,
            &DecodingKey::from_secret(key.as_bytes()),
            &v,
        )
        .map(|d| d.claims)
    }

    #[test]
    fn empty_body_hash_matches_spec() {
        assert_eq!(
            body_hash(b""),
            "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn token_verifies_with_an_independent_jwt_library_and_carries_claims() {
        let key = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r";
        let now = system_now_s();
        let url = "http://localhost:3000/api?x=1&q=\"quoted\"\\";
        let token = Signer::new(key).sign(url, b"hello", now);
        let c = decode(&token, key).expect("valid token");
        assert_eq!(c["iss"], "Upstash");
        assert_eq!(c["sub"], url);
        assert_eq!(c["iat"], now);
        assert_eq!(c["exp"], now + 300);
        assert_eq!(c["nbf"], 0);
        assert!(c["jti"].as_str().unwrap().starts_with("jwt_"));
        assert_eq!(c["body"], body_hash(b"hello"));
        assert!(decode(&token, "sig_other").is_err());
    }

    #[test]
    fn each_token_has_its_own_id() {
        let s = Signer::new("k");
        assert_ne!(s.sign("http://a", b"", 1), s.sign("http://a", b"", 1));
    }

    #[test]
    fn new_keys_have_the_production_shape() {
        let k = new_signing_key();
        assert_eq!(k.len(), 32);
        assert!(k[4..].bytes().all(|b| BASE58.contains(&b)));
        assert_ne!(k, new_signing_key());
    }
}
