//! The deployment's webhook signing key pair, kept in Secrets Manager.
//!
//! JWT webhooks are RS256 tokens signed with one RSA private key per deployment; receivers
//! verify them with the public key served at `GET /webhooks/json_public_key`. The private key
//! lives in a secret that only the dispatcher reads, the public key in another that only the API
//! reads, so the internet-facing function never holds the signing key.
//!
//! The local stack generates the pair when it provisions ([`Secrets::ensure_key_pair`]); a
//! deployed stack gets it once from an operator, with the same call (see `template.yaml`).

use std::sync::Arc;

use aws_lc_rs::{
    encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der},
    rsa::{KeyPair, KeySize},
    signature::KeyPair as _,
};
use aws_sdk_secretsmanager::Client;
use base64::{Engine, engine::general_purpose::STANDARD};
use tokio::sync::OnceCell;

/// Text that must never reach a log: `Debug` prints `[redacted]` (R16).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText(String);

impl SecretText {
    /// Wraps a secret.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// A key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The secret does not exist (not provisioned yet).
    #[error("secret {0} not found")]
    Missing(String),
    /// The secret holds something that is not an RSA private key in PEM.
    #[error("invalid key: {0}")]
    Invalid(String),
    /// Secrets Manager could not be reached or refused the request.
    #[error("secrets manager unavailable: {0}")]
    Unavailable(String),
}

/// An RSA key pair in PEM: the private key as PKCS#8, the public key as SubjectPublicKeyInfo.
#[derive(Debug, Clone)]
pub struct KeyPairPem {
    /// `-----BEGIN PRIVATE KEY-----` ...
    pub private_pem: SecretText,
    /// `-----BEGIN PUBLIC KEY-----` ...
    pub public_pem: String,
}

/// The key size of generated pairs.
const KEY_SIZE: KeySize = KeySize::Rsa2048;

/// A new random RSA key pair.
pub fn generate_key_pair() -> Result<KeyPairPem, KeyError> {
    let pair = KeyPair::generate(KEY_SIZE).map_err(|e| KeyError::Invalid(e.to_string()))?;
    pem_pair(&pair)
}

fn pem_pair(pair: &KeyPair) -> Result<KeyPairPem, KeyError> {
    let private: Pkcs8V1Der<'_> = pair
        .as_der()
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    let public: PublicKeyX509Der<'_> = pair
        .public_key()
        .as_der()
        .map_err(|e| KeyError::Invalid(e.to_string()))?;
    Ok(KeyPairPem {
        private_pem: SecretText(pem("PRIVATE KEY", private.as_ref())),
        public_pem: pem("PUBLIC KEY", public.as_ref()),
    })
}

/// The public key (SubjectPublicKeyInfo PEM) of a private key in PEM (PKCS#8 or PKCS#1).
pub fn public_pem_of(private_pem: &str) -> Result<String, KeyError> {
    let (label, der) = unpem(private_pem)?;
    let pair = match label.as_str() {
        "PRIVATE KEY" => KeyPair::from_pkcs8(&der),
        "RSA PRIVATE KEY" => KeyPair::from_der(&der),
        other => {
            return Err(KeyError::Invalid(format!(
                "a PEM {other:?} is not a private key"
            )));
        }
    }
    .map_err(|e| KeyError::Invalid(e.to_string()))?;
    Ok(pem_pair(&pair)?.public_pem)
}

/// RFC 7468 text: the label lines around base64 in lines of 64 characters.
fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The label and the bytes of a PEM block.
fn unpem(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let invalid = || KeyError::Invalid("not a PEM block".into());
    let text = text.trim();
    let label = text
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.split_once("-----"))
        .map(|(label, _)| label.to_owned())
        .ok_or_else(invalid)?;
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = STANDARD.decode(body).map_err(|_| invalid())?;
    Ok((label, der))
}

/// The Secrets Manager adapter for the key pair.
#[derive(Debug, Clone)]
pub struct Secrets {
    client: Client,
}

impl Secrets {
    /// An adapter over the SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(sdk),
        }
    }

    /// The text of the secret `id`.
    pub async fn read(&self, id: &str) -> Result<SecretText, KeyError> {
        match self.client.get_secret_value().secret_id(id).send().await {
            Ok(out) => out
                .secret_string
                .map(SecretText)
                .ok_or_else(|| KeyError::Invalid(format!("secret {id} holds no text"))),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Err(KeyError::Missing(id.to_owned()))
            }
            Err(e) => Err(KeyError::Unavailable(
                aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            )),
        }
    }

    /// Makes sure `private_id` holds a private key and `public_id` its public key, generating
    /// a pair if there is none; returns the public key. Idempotent, and safe when several
    /// processes provision at once: the first private key stored wins, and the public key is
    /// always derived from the stored private key.
    pub async fn ensure_key_pair(
        &self,
        private_id: &str,
        public_id: &str,
    ) -> Result<String, KeyError> {
        let private = match self.read(private_id).await {
            Ok(stored) => stored,
            Err(KeyError::Missing(_)) => {
                let generated = generate_key_pair()?;
                match self
                    .create(private_id, generated.private_pem.expose())
                    .await?
                {
                    true => generated.private_pem,
                    false => self.read(private_id).await?,
                }
            }
            Err(e) => return Err(e),
        };
        let public = public_pem_of(private.expose())?;
        match self.read(public_id).await {
            Ok(stored) if stored.expose() == public => {}
            Ok(_) => self.replace(public_id, &public).await?,
            Err(KeyError::Missing(_)) => {
                if !self.create(public_id, &public).await? {
                    self.replace(public_id, &public).await?;
                }
            }
            Err(e) => return Err(e),
        }
        Ok(public)
    }

    /// Creates a secret; `false` if one with that name already exists.
    async fn create(&self, id: &str, text: &str) -> Result<bool, KeyError> {
        match self
            .client
            .create_secret()
            .name(id)
            .secret_string(text)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(KeyError::Unavailable(
                aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            )),
        }
    }

    async fn replace(&self, id: &str, text: &str) -> Result<(), KeyError> {
        self.client
            .put_secret_value()
            .secret_id(id)
            .secret_string(text)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                KeyError::Unavailable(
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
                )
            })
    }
}

/// Where the API finds the public key: read from its secret on first use and kept, so that
/// functions that never serve it never pay for the read at cold start.
#[derive(Debug, Clone)]
pub struct PublicKeySource {
    source: Source,
    cached: Arc<OnceCell<String>>,
}

#[derive(Debug, Clone)]
enum Source {
    Secret { secrets: Secrets, id: String },
    Fixed,
}

impl PublicKeySource {
    /// The public key in the secret `id`.
    pub fn secret(secrets: Secrets, id: impl Into<String>) -> Self {
        Self {
            source: Source::Secret {
                secrets,
                id: id.into(),
            },
            cached: Arc::new(OnceCell::new()),
        }
    }

    /// A public key given as PEM (tests, configuration).
    pub fn fixed(public_pem: impl Into<String>) -> Self {
        Self {
            source: Source::Fixed,
            cached: Arc::new(OnceCell::new_with(Some(public_pem.into()))),
        }
    }

    /// The public key in PEM.
    pub async fn public_pem(&self) -> Result<&str, KeyError> {
        let pem = self
            .cached
            .get_or_try_init(|| async {
                match &self.source {
                    Source::Secret { secrets, id } => {
                        secrets.read(id).await.map(|s| s.expose().to_owned())
                    }
                    Source::Fixed => Err(KeyError::Missing("fixed public key".into())),
                }
            })
            .await?;
        Ok(pem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_pair_is_pem_and_its_public_key_derives_from_the_private_key() {
        let pair = generate_key_pair().map_err(|e| e.to_string());
        let Ok(pair) = pair else { panic!("{pair:?}") };
        assert!(
            pair.private_pem
                .expose()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pair.public_pem.lines().all(|l| l.len() <= 64));
        assert_eq!(
            public_pem_of(pair.private_pem.expose()).ok().as_deref(),
            Some(pair.public_pem.as_str())
        );
        assert_eq!(format!("{:?}", pair.private_pem), "[redacted]");
    }

    #[test]
    fn text_that_is_not_a_private_key_is_invalid() {
        for bad in [
            "",
            "hello",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(
                matches!(public_pem_of(bad), Err(KeyError::Invalid(_))),
                "{bad:?}"
            );
        }
    }
}
