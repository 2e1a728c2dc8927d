//! # invoice: the billing queue's worker
//!
//! Each message names an external subscription id and a billing instant; the worker runs
//! [`invoicing::close_subscription::close_subscription`] for it: the transitions due, every
//! invoice slot due (each claimed by a conditional write, so a redelivery or a second clock
//! run creates nothing twice), the drafts whose grace period ended.
//!
//! ## Failures
//! A message that cannot be read is a poison message: reported failed with its reason logged,
//! redelivered until the queue's `maxReceiveCount`, then parked in the dead-letter queue. A
//! failing unit fails its message and, as SQS FIFO requires, every later message of the batch.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use billing_aws::{
    BillingStore,
    billing_queue::{BILLING_MESSAGE_VERSION, BillingMessage},
    bus::EventBus,
    config,
    usage::UsageStore,
};
use chrono::{DateTime, Utc};
use invoicing::{Deps, close_subscription::close_subscription};

/// The worker's dependencies from `BILLING_TABLE`, `USAGE_TABLE`, `EVENT_BUS_NAME` and
/// `DOCUMENTS_BUCKET`.
pub fn deps_from_env(sdk: &aws_config::SdkConfig) -> Result<Deps, config::MissingVar> {
    Ok(Deps {
        store: BillingStore::new(sdk, config::required("BILLING_TABLE")?),
        usage: UsageStore::new(sdk, config::required("USAGE_TABLE")?),
        bus: Some(EventBus::from_env(sdk)?),
        ids: std::sync::Arc::new(|| uuid::Uuid::new_v4().to_string()),
        clock: std::sync::Arc::new(Utc::now),
    })
}

fn parse(record: &SqsMessage) -> Result<(BillingMessage, DateTime<Utc>), String> {
    let body = record
        .body
        .as_deref()
        .ok_or_else(|| "empty body".to_owned())?;
    let message: BillingMessage =
        serde_json::from_str(body).map_err(|e| format!("unreadable body: {e}"))?;
    if message.v != BILLING_MESSAGE_VERSION {
        return Err(format!("unknown message version {}", message.v));
    }
    let at = DateTime::parse_from_rfc3339(&message.at)
        .map_err(|e| format!("billing instant {:?}: {e}", message.at))?
        .with_timezone(&Utc);
    Ok((message, at))
}

/// Handles one SQS batch; the response lists the messages to redeliver.
pub async fn handler(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let records = event.records;
    let mut failed_from: Option<usize> = None;
    for (i, record) in records.iter().enumerate() {
        let (message, at) = match parse(record) {
            Ok(m) => m,
            Err(reason) => {
                tracing::error!(
                    message_id = record.message_id.as_deref().unwrap_or(""),
                    reason,
                    "poison message"
                );
                failed_from = Some(i);
                break;
            }
        };
        match close_subscription(deps, &message.org, &message.sub, at).await {
            Ok(closed) => tracing::info!(
                external_subscription_id = %message.sub,
                created = closed.created.len(),
                already_claimed = closed.already_claimed,
                finalized = closed.finalized.len(),
                "closed"
            ),
            Err(e) => {
                tracing::error!(error.cause_chain = ?e, external_subscription_id = %message.sub, "closing failed; the message will be redelivered");
                failed_from = Some(i);
                break;
            }
        }
    }
    let mut response = SqsBatchResponse::default();
    if let Some(from) = failed_from {
        for record in &records[from..] {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}
