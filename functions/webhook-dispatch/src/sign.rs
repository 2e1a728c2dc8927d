//! The two signatures Lago puts in `X-Lago-Signature`, over the exact bytes sent.
//!
//! - `hmac`: Base64 (standard alphabet, padded) of HMAC-SHA256 of the body, keyed with the UTF-8
//!   bytes of the organization's HMAC key.
//! - `jwt`: a compact RS256 JWT whose claims are `{"data": <the body as a string>, "iss":
//!   <the API's base URL>}`, signed with the deployment's private key; receivers verify it
//!   with the public key from `GET /webhooks/json_public_key`.

use base64::{Engine, engine::general_purpose::STANDARD};
use billing_aws::webhook_keys::SecretText;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use sha2::Sha256;

/// The private key could not be used, or a token could not be made.
#[derive(Debug, thiserror::Error)]
#[error("webhook signing failed: {0}")]
pub struct SignError(String);

/// Signs webhook bodies. `Debug` never shows the key.
#[derive(Clone)]
pub struct Signer {
    key: EncodingKey,
    issuer: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    data: &'a str,
    iss: &'a str,
}

impl Signer {
    /// A signer with the RSA private key in PEM (PKCS#8 or PKCS#1) whose tokens name
    /// `issuer` (Lago's `LAGO_API_URL`).
    pub fn new(private_pem: &SecretText, issuer: impl Into<String>) -> Result<Self, SignError> {
        let key = EncodingKey::from_rsa_pem(private_pem.expose().as_bytes())
            .map_err(|e| SignError(format!("the private key is not an RSA key in PEM: {e}")))?;
        Ok(Self {
            key,
            issuer: issuer.into(),
        })
    }

    /// The RS256 JWT of `body`.
    pub fn jwt(&self, body: &str) -> Result<String, SignError> {
        let claims = Claims {
            data: body,
            iss: &self.issuer,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| SignError(e.to_string()))
    }
}

/// Base64 of HMAC-SHA256 of `body` keyed with `key`.
pub fn hmac_signature(key: &SecretText, body: &[u8]) -> String {
    // HMAC accepts a key of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        let signature = hmac_signature(&SecretText::new("Jefe"), b"what do ya want for nothing?");
        let bytes = STANDARD.decode(signature).unwrap_or_default();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn a_key_that_is_not_pem_is_refused() {
        assert!(Signer::new(&SecretText::new("not a key"), "http://x").is_err());
    }
}
