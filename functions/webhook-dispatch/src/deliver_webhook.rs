//! Delivers one domain event to every endpoint of its organization that wants it.

use billing::catalog::{
    Record,
    webhook_endpoint::{SignatureAlgo, WebhookEndpoint},
};
use billing_aws::{StoreError, bus::DomainEvent, webhook_keys::SecretText};
use futures::future::join_all;

use crate::{
    Deps,
    sign::{SignError, hmac_signature},
    webhook::webhook_body,
};

/// The `User-Agent` of deliveries.
const USER_AGENT: &str = concat!("lago-billing-webhooks/", env!("CARGO_PKG_VERSION"));

/// What one delivery attempt did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Endpoints that accepted the webhook now.
    pub accepted: usize,
    /// Endpoints skipped because they accepted it on an earlier attempt.
    pub already_accepted: usize,
    /// Endpoints that refused it or could not be reached: (endpoint Lago id, reason).
    pub failed: Vec<(String, String)>,
}

/// Why the event could not be delivered at all; the message is retried.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The billing table could not be read or written.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The organization has an `hmac` endpoint but no HMAC key (the API creates it with the
    /// endpoint, so this is corrupt state).
    #[error("organization has no webhook hmac key")]
    MissingHmacKey,
    /// The event's object was stored aside (too large for the bus) and cannot be read.
    #[error("event object: {0}")]
    Object(String),
    /// The body could not be serialized or signed.
    #[error("signing: {0}")]
    Sign(#[from] SignError),
    /// The body could not be serialized.
    #[error("body: {0}")]
    Body(#[from] serde_json::Error),
}

/// POSTs `event` to each endpoint of its organization whose `event_types` include it and that
/// has not accepted it yet, signed per endpoint, and records each acceptance so a retry of the
/// message skips that endpoint. Only the event's own organization's endpoints are read.
#[tracing::instrument(skip_all, fields(
    organization_id = %event.organization_id,
    webhook_type = %event.webhook_type,
    unique_key = %event.unique_key,
))]
pub async fn deliver_webhook(deps: &Deps, event: &DomainEvent) -> Result<Delivered, DeliveryError> {
    let org_id = &event.organization_id;
    let wanted: Vec<Record<WebhookEndpoint>> = deps
        .store
        .webhook_endpoints(org_id)
        .await?
        .into_iter()
        .filter(|e| e.value.wants(&event.webhook_type))
        .collect();
    if wanted.is_empty() {
        return Ok(Delivered::default());
    }
    let done = deps
        .store
        .webhook_deliveries(org_id, &event.unique_key)
        .await?;
    let pending: Vec<&Record<WebhookEndpoint>> = wanted
        .iter()
        .filter(|e| !done.contains(&e.lago_id))
        .collect();
    let mut report = Delivered {
        already_accepted: wanted.len() - pending.len(),
        ..Delivered::default()
    };
    if pending.is_empty() {
        return Ok(report);
    }

    let stored;
    let event = match &event.object_key {
        Some(key) => {
            stored = with_stored_object(deps, event, key).await?;
            &stored
        }
        None => event,
    };
    let body = webhook_body(event)?;
    let algos = |a| pending.iter().any(|e| e.value.signature_algo() == a);
    let jwt = if algos(SignatureAlgo::Jwt) {
        Some(deps.signer.jwt(&body)?)
    } else {
        None
    };
    let hmac = if algos(SignatureAlgo::Hmac) {
        let key = deps
            .store
            .webhook_hmac_key(org_id)
            .await?
            .ok_or(DeliveryError::MissingHmacKey)?;
        Some(hmac_signature(&SecretText::new(key), body.as_bytes()))
    } else {
        None
    };

    let body = bytes::Bytes::from(body);
    let attempts = pending.iter().map(|endpoint| {
        let algo = endpoint.value.signature_algo();
        let signature = match algo {
            SignatureAlgo::Jwt => jwt.as_deref(),
            SignatureAlgo::Hmac => hmac.as_deref(),
        }
        .unwrap_or_default();
        let headers = [
            ("Content-Type", "application/json"),
            ("User-Agent", USER_AGENT),
            ("X-Lago-Signature", signature),
            ("X-Lago-Signature-Algorithm", algo.as_str()),
            ("X-Lago-Unique-Key", event.unique_key.as_str()),
        ];
        let body = body.clone();
        async move {
            let outcome = match deps
                .http
                .post(endpoint.value.webhook_url(), &headers, body)
                .await
            {
                Ok(status) if (200..300).contains(&status) => Ok(()),
                Ok(status) => Err(format!("answered {status}")),
                Err(e) => Err(e.to_string()),
            };
            (endpoint, outcome)
        }
    });
    for (endpoint, outcome) in join_all(attempts).await {
        match outcome {
            Ok(()) => {
                let recorded = deps
                    .store
                    .record_webhook_delivery(
                        org_id,
                        &event.unique_key,
                        &endpoint.lago_id,
                        (deps.clock)(),
                    )
                    .await;
                match recorded {
                    Ok(()) => report.accepted += 1,
                    // Unrecorded, the acceptance is not known to a retry, which sends again:
                    // the receiver deduplicates on X-Lago-Unique-Key.
                    Err(e) => {
                        tracing::error!(endpoint_id = %endpoint.lago_id, error.cause_chain = %e, "webhook accepted but not recorded");
                        report
                            .failed
                            .push((endpoint.lago_id.clone(), "accepted, not recorded".into()));
                    }
                }
            }
            Err(reason) => {
                tracing::warn!(endpoint_id = %endpoint.lago_id, reason, "webhook delivery failed");
                report.failed.push((endpoint.lago_id.clone(), reason));
            }
        }
    }
    Ok(report)
}

/// `event` with its object read back from the overflow bucket, where the publisher put it
/// under `key` because the event was too large for the bus.
async fn with_stored_object(
    deps: &Deps,
    event: &DomainEvent,
    key: &str,
) -> Result<DomainEvent, DeliveryError> {
    // The key is the publisher's; an event can only name an object of its own organization.
    if key != billing_aws::bus::overflow_key(event) {
        return Err(DeliveryError::Object(
            "the stored object belongs to another event".into(),
        ));
    }
    let documents = deps
        .documents
        .as_ref()
        .ok_or_else(|| DeliveryError::Object("no documents bucket is configured".into()))?;
    let bytes = documents.get(key).await?;
    let object =
        serde_json::from_slice(&bytes).map_err(|e| DeliveryError::Object(e.to_string()))?;
    Ok(DomainEvent {
        object,
        object_key: None,
        ..event.clone()
    })
}
