//! # webhook-dispatch: domain events to the organizations' webhook endpoints, signed, retried
//!
//! The SQS consumer of the webhook queue, which an EventBridge rule fills with the domain
//! events (`invoice.created`, `subscription.started`, ...) the other functions publish. For
//! each event it POSTs Lago's webhook body to every endpoint of the event's organization that
//! wants that type, signed as the endpoint asks (`hmac` or `jwt`), with
//! `X-Lago-Unique-Key` set to the event's unique key.
//!
//! ## Layout
//! - [`handler`]: one SQS batch; messages in parallel; failures reported per message.
//! - `deliver_webhook`: the use case: endpoints, filter, sign, POST, record acceptances.
//! - `webhook`: the SQS/EventBridge envelope in, Lago's body out.
//! - `post_webhook`: the HTTP client (the SDKs' hyper + rustls stack).
//! - `sign`: HMAC-SHA256 and RS256 JWT signatures.
//! - `backoff`: when a failed message comes back.
//!
//! ## Architecture Invariants
//! - Endpoints are read by the event's `organization_id` only: an event is never delivered to
//!   another organization's endpoint.
//! - The signed bytes are the sent bytes, and the same on every attempt.
//! - An endpoint that accepted (2xx) a webhook is recorded before the message can be deleted,
//!   and retries skip it: the same unique key reaches an endpoint twice only if its 2xx was
//!   lost (or could not be recorded). Receivers deduplicate on `X-Lago-Unique-Key`.
//! - A message with any failed endpoint is a batch item failure, postponed by [`Backoff`]
//!   until the queue's `maxReceiveCount` moves it to the dead-letter queue (R14).
//! - Keys, bodies, URLs and headers are never logged (R18): URLs may carry tokens.

mod backoff;
mod deliver_webhook;
mod post_webhook;
mod sign;
mod webhook;

use std::{sync::Arc, time::Duration};

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use billing_aws::{
    BillingStore,
    config::{MissingVar, required},
    documents::DocumentStore,
    infra,
    redelivery::Redelivery,
    webhook_keys::{KeyError, SecretText, Secrets},
};
use chrono::{DateTime, Utc};
use futures::future::join_all;

pub use backoff::Backoff;
pub use deliver_webhook::{Delivered, DeliveryError, deliver_webhook};
pub use post_webhook::{PostError, WebhookClient};
pub use sign::{SignError, Signer, hmac_signature};
pub use webhook::{domain_event, webhook_body};

/// How long one endpoint has to answer (lago-api allows 30 s; a batch of ten messages to ten
/// endpoints each runs in parallel, well inside the function's 30 s).
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long connecting to an endpoint may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the dispatcher needs.
#[derive(Clone)]
pub struct Deps {
    /// Endpoints, HMAC keys and delivery records.
    pub store: BillingStore,
    /// Postpones failed messages of the webhook queue.
    pub redelivery: Redelivery,
    /// Signs JWT webhooks.
    pub signer: Signer,
    /// The HTTP client (bounded timeouts, no redirects).
    pub http: WebhookClient,
    /// When failed messages come back.
    pub backoff: Backoff,
    /// Now (delivery records' timestamps).
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Where the objects of events too large for the bus are kept (`DOCUMENTS_BUCKET`).
    pub documents: Option<DocumentStore>,
}

/// The dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A required environment variable is missing.
    #[error(transparent)]
    Config(#[from] MissingVar),
    /// The signing key could not be read.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signing key is unusable.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(String),
}

impl Deps {
    /// Production dependencies: the system clock and [`Backoff::DEFAULT`].
    pub fn new(
        store: BillingStore,
        redelivery: Redelivery,
        signer: Signer,
    ) -> Result<Self, StartError> {
        let http = WebhookClient::new(CONNECT_TIMEOUT, DELIVERY_TIMEOUT)
            .map_err(|e| StartError::Http(e.to_string()))?;
        Ok(Self {
            store,
            redelivery,
            signer,
            http,
            backoff: Backoff::DEFAULT,
            clock: Arc::new(Utc::now),
            documents: None,
        })
    }

    /// The same dependencies reading large events' objects from `documents`.
    pub fn with_documents(mut self, documents: DocumentStore) -> Self {
        self.documents = Some(documents);
        self
    }

    /// The same dependencies with another backoff.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }
}

/// The dispatcher's configuration, read once at start-up (R16).
#[derive(Debug, Clone)]
pub struct Config {
    /// `BILLING_TABLE`.
    pub billing_table: String,
    /// `WEBHOOK_QUEUE_URL`: the queue whose failed messages it postpones.
    pub queue_url: String,
    /// `WEBHOOK_PRIVATE_KEY_PEM` (the key itself), else `WEBHOOK_PRIVATE_KEY_SECRET` (the name
    /// of the Secrets Manager secret holding it).
    pub private_key: PrivateKey,
    /// `LAGO_API_URL`: the JWT issuer, as in lago-api.
    pub api_url: String,
    /// `DOCUMENTS_BUCKET`, where the objects of events too large for the bus are kept.
    pub documents_bucket: Option<String>,
}

/// Where the RSA private key comes from.
#[derive(Debug, Clone)]
pub enum PrivateKey {
    /// Given directly, in PEM.
    Pem(SecretText),
    /// In this Secrets Manager secret.
    Secret(String),
}

impl Config {
    /// Reads the environment; fails on the first missing variable.
    pub fn from_env() -> Result<Self, MissingVar> {
        let private_key = match required("WEBHOOK_PRIVATE_KEY_PEM") {
            Ok(pem) => PrivateKey::Pem(SecretText::new(pem)),
            Err(_) => PrivateKey::Secret(required(infra::WEBHOOK_PRIVATE_KEY.env_var)?),
        };
        Ok(Self {
            billing_table: required(infra::BILLING_TABLE.env_var)?,
            queue_url: required(infra::WEBHOOK_QUEUE.env_var)?,
            private_key,
            api_url: required("LAGO_API_URL")?,
            documents_bucket: required(infra::DOCUMENTS_BUCKET.env_var).ok(),
        })
    }
}

impl Deps {
    /// Builds the dependencies of `config`, reading the private key now.
    pub async fn from_config(
        sdk: &aws_config::SdkConfig,
        config: &Config,
    ) -> Result<Self, StartError> {
        let pem = match &config.private_key {
            PrivateKey::Pem(pem) => pem.clone(),
            PrivateKey::Secret(id) => Secrets::new(sdk).read(id).await?,
        };
        let deps = Deps::new(
            BillingStore::new(sdk, config.billing_table.clone()),
            Redelivery::new(sdk, config.queue_url.clone()),
            Signer::new(&pem, config.api_url.clone())?,
        )?;
        Ok(match &config.documents_bucket {
            Some(bucket) => deps.with_documents(DocumentStore::new(sdk, bucket.clone())),
            None => deps,
        })
    }
}

/// Handles one SQS batch: every message in parallel; the response lists the messages to try
/// again, each postponed by the backoff of its receive count.
pub async fn handler(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let outcomes = join_all(event.records.iter().map(|r| handle(deps, r))).await;
    let mut response = SqsBatchResponse::default();
    for (record, delivered) in event.records.iter().zip(outcomes) {
        if delivered {
            continue;
        }
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        if let Some(receipt) = &record.receipt_handle {
            let delay = deps.backoff.delay(receive_count);
            if let Err(e) = deps.redelivery.postpone(receipt, delay).await {
                // The message still comes back, after the queue's visibility timeout.
                tracing::warn!(error.cause_chain = %e, "could not postpone a failed webhook");
            }
        }
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = record.message_id.clone().unwrap_or_default();
        response.batch_item_failures.push(failure);
    }
    response
}

/// Whether the message's webhook reached every endpoint that wants it.
async fn handle(deps: &Deps, record: &SqsMessage) -> bool {
    let message_id = record.message_id.as_deref().unwrap_or_default();
    let event = match domain_event(record) {
        Ok(event) => event,
        Err(reason) => {
            tracing::error!(message_id, reason, "poison message");
            return false;
        }
    };
    match deliver_webhook(deps, &event).await {
        Ok(delivered) if delivered.failed.is_empty() => true,
        Ok(delivered) => {
            tracing::warn!(
                message_id,
                unique_key = %event.unique_key,
                failed = delivered.failed.len(),
                accepted = delivered.accepted,
                "webhook will be retried"
            );
            false
        }
        Err(e) => {
            tracing::error!(message_id, unique_key = %event.unique_key, error.cause_chain = %e, "webhook not delivered");
            false
        }
    }
}
