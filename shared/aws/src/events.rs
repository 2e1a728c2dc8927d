//! The events table: storing an event is claiming its identity.
//!
//! Key: `pk = EVT#<organization>#<transaction_id>`, `sk = <external_subscription_id>`: one
//! conditional put both stores the event and refuses a second event with the same identity,
//! and `GET /events/{transaction_id}` is one query on `pk`. Events whose hand-off to the queue
//! failed carry `unsent_pk`/`unsent_sk`, which puts them (and only them) in the sparse `unsent`
//! index that the sweep reads.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// An accepted event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Lago's id for the event.
    pub lago_id: String,
    /// The owning organization.
    pub organization_id: String,
    /// `transaction_id`.
    pub transaction_id: String,
    /// `external_subscription_id`.
    pub external_subscription_id: String,
    /// The billable metric code.
    pub code: String,
    /// The event time, Unix milliseconds.
    pub timestamp_ms: i64,
    /// The properties exactly as received (JSON object text).
    pub properties: String,
    /// `precise_total_amount_cents` as received.
    pub precise_total_amount_cents: Option<String>,
    /// When it was accepted, Unix milliseconds.
    pub created_at_ms: i64,
    /// A digest of the payload, to tell an identical replay from a conflicting one.
    pub payload_digest: String,
}

impl StoredEvent {
    /// The event time.
    pub fn timestamp(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.timestamp_ms).unwrap_or_default()
    }

    /// When it was accepted.
    pub fn created_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.created_at_ms).unwrap_or_default()
    }
}

/// The result of offering an event to the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The identity was free: the event is stored.
    Stored,
    /// The identity was taken by this event (returned as stored); `unsent` says whether its
    /// hand-off to the queue is known to have failed.
    Existing {
        /// The stored event.
        event: Box<StoredEvent>,
        /// Whether it is waiting for the sweep.
        unsent: bool,
    },
}

/// The events table adapter.
#[derive(Debug, Clone)]
pub struct EventStore {
    client: Client,
    table: String,
}

fn key(org: &str, txid: &str, sub: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (
            "pk".to_owned(),
            AttributeValue::S(format!("EVT#{org}#{txid}")),
        ),
        ("sk".to_owned(), AttributeValue::S(sub.to_owned())),
    ])
}

const UNSENT_PARTITION: &str = "UNSENT";

/// The most keys one `BatchGetItem` may ask for (a DynamoDB limit).
const BATCH_GET_MAX: usize = 100;

/// How many times one chunk of keys is asked for while some stay unprocessed.
const BATCH_GET_ATTEMPTS: usize = 5;

/// SQS FIFO's deduplication interval.
const DEDUPLICATION_WINDOW_MS: i64 = 5 * 60 * 1000;

fn corrupt(e: serde_dynamo::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl EventStore {
    /// A store over `table`.
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::with_client(Client::new(sdk), table)
    }

    /// A store over `table` with a given client (tests inject faults through its config).
    pub fn with_client(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Stores the event if its identity is free; otherwise returns the event holding it.
    pub async fn claim(&self, event: &StoredEvent) -> Result<Claim, StoreError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(event).map_err(corrupt)?;
        item.extend(key(
            &event.organization_id,
            &event.transaction_id,
            &event.external_subscription_id,
        ));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Stored),
            Err(e) => match e.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                    let old = match c.item {
                        Some(old) => old,
                        // Some emulators omit the old item: read it.
                        None => self
                            .get_item(&event.organization_id, &event.transaction_id, &event.external_subscription_id)
                            .await?
                            .ok_or(StoreError::Conflict)?,
                    };
                    let unsent = old.contains_key("unsent_pk");
                    let event: StoredEvent = serde_dynamo::from_item(old).map_err(corrupt)?;
                    Ok(Claim::Existing {
                        event: Box::new(event),
                        unsent,
                    })
                }
                other => Err(StoreError::Unavailable(
                    aws_sdk_dynamodb::error::DisplayErrorContext(other).to_string(),
                )),
            },
        }
    }

    async fn get_item(
        &self,
        org: &str,
        txid: &str,
        sub: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(org, txid, sub)))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item)
    }

    /// The events of an organization with a `transaction_id` (one per subscription).
    pub async fn by_transaction_id(
        &self,
        org: &str,
        txid: &str,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("EVT#{org}#{txid}")))
            .limit(100)
            .send()
            .await?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| serde_dynamo::from_item(i).map_err(corrupt))
            .collect()
    }

    /// The stored events holding these identities (`(transaction_id, external_subscription_id)`
    /// within `org`), read with one consistent `BatchGetItem` per hundred keys: a batch checks
    /// every identity it is about to claim with one call instead of one query per event.
    /// Identities nobody holds are absent from the result; repeated identities are read once.
    pub async fn get_many(
        &self,
        org: &str,
        ids: &[(&str, &str)],
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut unique: Vec<(&str, &str)> = ids.to_vec();
        unique.sort_unstable();
        unique.dedup();
        let mut out = Vec::with_capacity(unique.len());
        for chunk in unique.chunks(BATCH_GET_MAX) {
            let keys = chunk.iter().map(|(tx, sub)| key(org, tx, sub)).collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            );
            // Unprocessed keys (throttling) are asked again a bounded number of times, then
            // reported: a check that read only part of the batch must not pass.
            for _ in 0..BATCH_GET_ATTEMPTS {
                let Some(request) = pending.take() else { break };
                let response = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await?;
                for item in response
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    out.push(serde_dynamo::from_item(item).map_err(corrupt)?);
                }
                pending = response
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
            }
            if let Some(left) = pending {
                return Err(StoreError::Unavailable(format!(
                    "{} event key(s) left unprocessed by BatchGetItem",
                    left.keys.len()
                )));
            }
        }
        Ok(out)
    }

    /// Claims the delivery of a FIFO queue message for the local stack, which must drop a
    /// resent message as SQS does and the emulator does not: SQS does not deliver a message
    /// whose deduplication id was sent within the previous five minutes, even once the first
    /// one is deleted, while the emulator forgets a deduplication id with its message.
    ///
    /// Returns `true` when the message is the first of its deduplication id in the window, or a
    /// redelivery of that first message (same message id): deliver it. `false` for a
    /// duplicate: drop it. `scope` names the queue. One conditional write per message; the
    /// deployed system never calls this (SQS deduplicates by itself).
    pub async fn claim_delivery(
        &self,
        scope: &str,
        deduplication_id: &str,
        message_id: &str,
        sent_at_ms: i64,
    ) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                "pk",
                AttributeValue::S(format!("DELIVERY#{scope}#{deduplication_id}")),
            )
            .item("sk", AttributeValue::S("-".into()))
            .item("mid", AttributeValue::S(message_id.to_owned()))
            .item("sent", AttributeValue::N(sent_at_ms.to_string()))
            .condition_expression("attribute_not_exists(pk) OR mid = :mid OR sent < :window_start")
            .expression_attribute_values(":mid", AttributeValue::S(message_id.to_owned()))
            .expression_attribute_values(
                ":window_start",
                AttributeValue::N((sent_at_ms - DEDUPLICATION_WINDOW_MS).to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records that the event's hand-off to the queue failed, so the sweep resends it.
    pub async fn mark_unsent(&self, event: &StoredEvent) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                &event.organization_id,
                &event.transaction_id,
                &event.external_subscription_id,
            )))
            .update_expression("SET unsent_pk = :p, unsent_sk = :s")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":p", AttributeValue::S(UNSENT_PARTITION.into()))
            .expression_attribute_values(
                ":s",
                AttributeValue::S(format!(
                    "{:013}#{}#{}",
                    event.created_at_ms, event.organization_id, event.transaction_id
                )),
            )
            .send()
            .await?;
        Ok(())
    }

    /// Records that the event reached the queue.
    pub async fn clear_unsent(&self, event: &StoredEvent) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(
                &event.organization_id,
                &event.transaction_id,
                &event.external_subscription_id,
            )))
            .update_expression("REMOVE unsent_pk, unsent_sk")
            .send()
            .await?;
        Ok(())
    }

    /// Up to `limit` events waiting for the sweep, oldest first.
    pub async fn unsent(&self, limit: i32) -> Result<Vec<StoredEvent>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("unsent")
            .key_condition_expression("unsent_pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(UNSENT_PARTITION.into()))
            .limit(limit)
            .send()
            .await?;
        out.items
            .unwrap_or_default()
            .into_iter()
            .map(|i| serde_dynamo::from_item(i).map_err(corrupt))
            .collect()
    }
}
