//! Webhook endpoints, the organization's HMAC signing key, and webhook delivery records.
//!
//! - Endpoint: `sk = WEBHOOK#<lago_id>`: endpoints are addressed by their Lago id, which never
//!   changes, so a URL change does not move the item.
//! - URL guard: `sk = WEBHOOKURL#<sha256 of the URL>`, written with the endpoint in one
//!   transaction on `attribute_not_exists`: two endpoints of an organization cannot share a URL,
//!   even when created concurrently.
//! - Count: `sk = COUNTER#webhook_endpoints`, moved in the same transaction as every create
//!   (on the condition that it is below the limit) and delete, so the per-organization limit
//!   holds under concurrency.
//! - HMAC key: `sk = WEBHOOKKEY#hmac`, created once by a conditional put; never logged.
//! - Delivery record: `pk = WEBHOOKDELIVERY#<org>#<unique key>`, `sk = <endpoint lago id>`,
//!   written after an endpoint accepted a webhook, expiring after [`DELIVERY_RECORD_TTL_DAYS`].
//!   Its own partition per webhook keeps a month-start burst of deliveries off the
//!   organization's partition.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use billing::catalog::{
    Record,
    webhook_endpoint::{WebhookEndpoint, WebhookEndpointInput},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{BillingStore, StoreError, org_pk, plans::transaction_failures};

/// How long a delivery record is kept: longer than a message can live in the webhook queue and
/// then in its dead-letter queue (14 days each), so a redriven message still finds it.
pub const DELIVERY_RECORD_TTL_DAYS: i64 = 30;

/// The most endpoint items one organization's read goes through (R19); the API keeps far
/// fewer (`ENDPOINTS_PER_ORGANIZATION_MAX`).
const ENDPOINTS_READ_MAX: usize = 1000;

const ENDPOINT_PREFIX: &str = "WEBHOOK#";
const COUNTER_SK: &str = "COUNTER#webhook_endpoints";
const HMAC_KEY_SK: &str = "WEBHOOKKEY#hmac";

/// A write the store refused for a reason the caller reports to the client.
#[derive(Debug, thiserror::Error)]
pub enum EndpointWriteError {
    /// Another endpoint of the organization has this URL.
    #[error("another webhook endpoint has this URL")]
    UrlTaken,
    /// The organization already has the most endpoints allowed.
    #[error("the organization has the most webhook endpoints allowed")]
    LimitReached,
    /// The store failed (`Conflict` when the endpoint changed since it was read).
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn endpoint_sk(lago_id: &str) -> String {
    format!("{ENDPOINT_PREFIX}{lago_id}")
}

fn url_guard_sk(url: &str) -> String {
    format!("WEBHOOKURL#{}", hex::encode(Sha256::digest(url.as_bytes())))
}

/// Whether DynamoDB cancelled a transaction because another one was writing the same items
/// (the per-organization count, under concurrent creates): worth trying again.
fn transaction_conflict<R>(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
            .cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("TransactionConflict")),
        _ => false,
    }
}

fn delivery_pk(org_id: &str, unique_key: &str) -> String {
    format!("WEBHOOKDELIVERY#{org_id}#{unique_key}")
}

/// An endpoint as stored.
#[derive(Serialize, Deserialize)]
struct EndpointItem {
    pk: String,
    sk: String,
    lago_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: u64,
    webhook_url: String,
    signature_algo: String,
    name: Option<String>,
    event_types: Option<Vec<String>>,
}

fn to_item(
    org_id: &str,
    record: &Record<WebhookEndpoint>,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let e = &record.value;
    let item = EndpointItem {
        pk: org_pk(org_id),
        sk: endpoint_sk(&record.lago_id),
        lago_id: record.lago_id.clone(),
        created_at: record.created_at,
        updated_at: record.updated_at,
        version: record.version,
        webhook_url: e.webhook_url().to_owned(),
        signature_algo: e.signature_algo().as_str().to_owned(),
        name: e.name().map(str::to_owned),
        event_types: e.event_types().map(<[String]>::to_vec),
    };
    let item = serde_dynamo::to_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    super::mapping::check_size(item)
}

fn from_item(item: HashMap<String, AttributeValue>) -> Result<Record<WebhookEndpoint>, StoreError> {
    let item: EndpointItem =
        serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let value = WebhookEndpoint::new(WebhookEndpointInput {
        webhook_url: Some(item.webhook_url),
        signature_algo: Some(item.signature_algo),
        name: item.name,
        event_types: item.event_types,
    })
    .map_err(|e| StoreError::Corrupt(format!("webhook endpoint {}: {e:?}", item.lago_id)))?;
    Ok(Record {
        lago_id: item.lago_id,
        created_at: item.created_at,
        updated_at: item.updated_at,
        sequential_id: None,
        version: item.version,
        value,
    })
}

impl BillingStore {
    fn url_guard_put(&self, org_id: &str, url: &str, lago_id: &str) -> Result<Put, StoreError> {
        Put::builder()
            .table_name(self.table())
            .item("pk", s(org_pk(org_id)))
            .item("sk", s(url_guard_sk(url)))
            .item("lago_id", s(lago_id))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    fn url_guard_delete(&self, org_id: &str, url: &str) -> Result<Delete, StoreError> {
        Delete::builder()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(url_guard_sk(url)))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    fn endpoint_count_update(
        &self,
        org_id: &str,
        delta: i64,
        below: Option<usize>,
    ) -> Result<Update, StoreError> {
        let mut update = Update::builder()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(COUNTER_SK))
            .update_expression("ADD #v :delta")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":delta", n(delta));
        if let Some(max) = below {
            update = update
                .condition_expression("attribute_not_exists(#v) OR #v < :max")
                .expression_attribute_values(":max", n(max));
        }
        update
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Stores a new endpoint: `UrlTaken` if another endpoint of the organization has its URL,
    /// `LimitReached` if the organization already has `max` endpoints, `Store(Conflict)` if a
    /// concurrent create got in the way (try again). Nothing is written then.
    pub async fn create_webhook_endpoint(
        &self,
        org_id: &str,
        record: &Record<WebhookEndpoint>,
        max: usize,
    ) -> Result<(), EndpointWriteError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(org_id, record)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let result = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(
                TransactWriteItem::builder()
                    .put(self.url_guard_put(org_id, record.value.webhook_url(), &record.lago_id)?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(self.endpoint_count_update(org_id, 1, Some(max))?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match transaction_failures(&e).as_deref() {
                Some([_, true, _]) => Err(EndpointWriteError::UrlTaken),
                Some([_, _, true]) => Err(EndpointWriteError::LimitReached),
                Some([true, _, _]) => Err(StoreError::AlreadyExists.into()),
                _ if transaction_conflict(&e) => Err(StoreError::Conflict.into()),
                _ => Err(StoreError::from(e).into()),
            },
        }
    }

    /// One endpoint of the organization, by Lago id.
    pub async fn webhook_endpoint(
        &self,
        org_id: &str,
        lago_id: &str,
    ) -> Result<Record<WebhookEndpoint>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(endpoint_sk(lago_id)))
            .consistent_read(true)
            .send()
            .await?;
        out.item.ok_or(StoreError::NotFound).and_then(from_item)
    }

    /// Every endpoint of the organization, oldest first.
    pub async fn webhook_endpoints(
        &self,
        org_id: &str,
    ) -> Result<Vec<Record<WebhookEndpoint>>, StoreError> {
        let mut records = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(org_pk(org_id)))
                .expression_attribute_values(":prefix", s(ENDPOINT_PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in out.items.unwrap_or_default() {
                records.push(from_item(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if records.len() < ENDPOINTS_READ_MAX => start = Some(key),
                _ => break,
            }
        }
        records.sort_by(|a, b| (a.created_at, &a.lago_id).cmp(&(b.created_at, &b.lago_id)));
        Ok(records)
    }

    /// Replaces an endpoint read at `record.version - 1` whose URL was `previous_url`. A URL
    /// change moves its guard in the same transaction: `UrlTaken` if another endpoint has the
    /// new URL; `Store(Conflict)` if the endpoint changed or was deleted since it was read.
    pub async fn replace_webhook_endpoint(
        &self,
        org_id: &str,
        previous_url: &str,
        record: &Record<WebhookEndpoint>,
    ) -> Result<(), EndpointWriteError> {
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(org_id, record)?))
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(":v", n(record.version.saturating_sub(1)))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut request = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build());
        let url = record.value.webhook_url();
        if url != previous_url {
            request = request
                .transact_items(
                    TransactWriteItem::builder()
                        .delete(self.url_guard_delete(org_id, previous_url)?)
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .put(self.url_guard_put(org_id, url, &record.lago_id)?)
                        .build(),
                );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => match transaction_failures(&e).as_deref() {
                Some([true, ..]) => Err(StoreError::Conflict.into()),
                Some([_, _, true]) => Err(EndpointWriteError::UrlTaken),
                _ if transaction_conflict(&e) => Err(StoreError::Conflict.into()),
                _ => Err(StoreError::from(e).into()),
            },
        }
    }

    /// Deletes an endpoint read at `record.version`, with its URL guard, and returns it;
    /// `Conflict` if it changed since it was read, `NotFound` if it is gone.
    pub async fn delete_webhook_endpoint(
        &self,
        org_id: &str,
        record: &Record<WebhookEndpoint>,
    ) -> Result<(), StoreError> {
        let delete = Delete::builder()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(endpoint_sk(&record.lago_id)))
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(":v", n(record.version))
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let result = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(
                TransactWriteItem::builder()
                    .delete(self.url_guard_delete(org_id, record.value.webhook_url())?)
                    .build(),
            )
            .transact_items(
                TransactWriteItem::builder()
                    .update(self.endpoint_count_update(org_id, -1, None)?)
                    .build(),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match transaction_failures(&e).as_deref() {
                Some([true, ..]) => match self.webhook_endpoint(org_id, &record.lago_id).await {
                    Err(StoreError::NotFound) => Err(StoreError::NotFound),
                    _ => Err(StoreError::Conflict),
                },
                _ if transaction_conflict(&e) => Err(StoreError::Conflict),
                _ => Err(e.into()),
            },
        }
    }

    /// The organization's HMAC signing key, if it has one yet.
    pub async fn webhook_hmac_key(&self, org_id: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(HMAC_KEY_SK))
            .consistent_read(true)
            .send()
            .await?;
        match out.item {
            None => Ok(None),
            Some(item) => item
                .get("hmac_key")
                .and_then(|v| v.as_s().ok())
                .map(|k| Some(k.clone()))
                .ok_or_else(|| StoreError::Corrupt("webhook hmac key".into())),
        }
    }

    /// The organization's HMAC signing key: the stored one, or `candidate` stored now if it has
    /// none. Concurrent callers all get the one key that was stored first.
    pub async fn ensure_webhook_hmac_key(
        &self,
        org_id: &str,
        candidate: String,
    ) -> Result<String, StoreError> {
        if let Some(key) = self.webhook_hmac_key(org_id).await? {
            return Ok(key);
        }
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(org_pk(org_id)))
            .item("sk", s(HMAC_KEY_SK))
            .item("hmac_key", s(candidate.clone()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(candidate),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                self.webhook_hmac_key(org_id)
                    .await?
                    .ok_or_else(|| StoreError::Corrupt("webhook hmac key vanished".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The Lago ids of the endpoints that already accepted the webhook `unique_key`.
    pub async fn webhook_deliveries(
        &self,
        org_id: &str,
        unique_key: &str,
    ) -> Result<Vec<String>, StoreError> {
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(delivery_pk(org_id, unique_key)))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|item| item.get("sk").and_then(|v| v.as_s().ok()).cloned())
            .collect())
    }

    /// Records that endpoint `endpoint_id` accepted the webhook `unique_key` at `at`. A record
    /// already there is kept: the first acceptance is the one that counts.
    pub async fn record_webhook_delivery(
        &self,
        org_id: &str,
        unique_key: &str,
        endpoint_id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let expires_at = (at + chrono::Duration::days(DELIVERY_RECORD_TTL_DAYS)).timestamp();
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(delivery_pk(org_id, unique_key)))
            .item("sk", s(endpoint_id))
            .item("delivered_at", s(at.to_rfc3339()))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}
