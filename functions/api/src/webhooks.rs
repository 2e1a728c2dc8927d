//! `/webhooks/*`: what a receiver needs to verify webhook signatures.
//!
//! - `GET /webhooks/json_public_key`: `{"webhook": {"public_key": <Base64 of the PEM>}}`, the
//!   key that verifies `jwt` signatures (the same for every organization of a deployment).
//! - `GET /webhooks/public_key`: the same Base64 as `text/plain` (deprecated in Lago).
//! - `GET /webhooks/hmac_key`: `{"webhook": {"hmac_key": ...}}`, the caller's organization's
//!   key for `hmac` signatures. Not in Lago's API (Lago shows it in its web app, which we do
//!   not have), so that an `hmac` endpoint's owner can verify what it receives.

use axum::{
    extract::State,
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use billing::catalog::organization::Organization;
use billing_aws::webhook_keys::KeyError;
use lago::{ApiError, dto::webhook_endpoint::WebhookPublicKeyDto, http};
use rand::RngCore;
use serde_json::json;

use crate::{Deps, Tenant, edge::store_error};

/// The Base64 of the public key's PEM text, as lago-api serves it.
async fn public_key_base64(deps: &Deps) -> Result<String, ApiError> {
    let Some(source) = &deps.webhook_public_key else {
        tracing::error!("no webhook public key configured");
        return Err(ApiError::Internal);
    };
    match source.public_pem().await {
        Ok(pem) => Ok(STANDARD.encode(pem.as_bytes())),
        Err(e @ KeyError::Unavailable(_)) => {
            tracing::error!(error.cause_chain = %e, "webhook public key unavailable");
            Err(ApiError::Unavailable)
        }
        Err(e) => {
            tracing::error!(error.cause_chain = %e, "webhook public key missing or invalid");
            Err(ApiError::Internal)
        }
    }
}

/// `GET /webhooks/json_public_key`.
pub async fn json_public_key(
    State(deps): State<Deps>,
    Tenant(_): Tenant,
) -> Result<Response, ApiError> {
    let key = public_key_base64(&deps).await?;
    Ok(http::ok("webhook", WebhookPublicKeyDto::new(key)))
}

/// `GET /webhooks/public_key` (`text/plain`).
pub async fn public_key(State(deps): State<Deps>, Tenant(_): Tenant) -> Result<Response, ApiError> {
    Ok(public_key_base64(&deps).await?.into_response())
}

/// `GET /webhooks/hmac_key`.
pub async fn hmac_key(State(deps): State<Deps>, Tenant(org): Tenant) -> Result<Response, ApiError> {
    let key = ensure_hmac_key(&deps, &org).await?;
    Ok(http::ok("webhook", json!({ "hmac_key": key })))
}

/// The organization's HMAC key, created on first use: 32 bytes from a cryptographically secure
/// generator seeded by the operating system, as 64 hex characters (receivers key HMAC-SHA256
/// with that text). Never logged.
pub async fn ensure_hmac_key(deps: &Deps, org: &Organization) -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let candidate: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    deps.store
        .ensure_webhook_hmac_key(&org.id, candidate)
        .await
        .map_err(|e| store_error("webhook", e))
}
