//! The billing table: one item collection per organization.
//!
//! Keys: `pk = ORG#<organization id>`, `sk = <KIND>#<business key>` (`BM#storage`,
//! `CUS#acme`, `TAX#vat`), so a record is addressable only through its organization and its
//! business key, and a uniqueness rule is a conditional put. API keys live under
//! `pk = APIKEY#<sha256>` and point at their organization.

pub mod billing_schedule;
pub mod credit_notes;
pub mod invoices;
mod mapping;
pub mod organizations;
pub mod plans;
pub mod subscriptions;
pub mod webhook_endpoints;

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    error::SdkError,
    types::{AttributeValue, Delete, Put, ReturnValue, Select, TransactWriteItem},
};
use billing::catalog::Record;

pub use mapping::Kind;

/// What can go wrong reading or writing the store, as a caller can act on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No record with that key in the organization.
    #[error("not found")]
    NotFound,
    /// A record with that key already exists.
    #[error("already exists")]
    AlreadyExists,
    /// The record changed since it was read; re-read and retry.
    #[error("concurrent modification")]
    Conflict,
    /// The record would exceed DynamoDB's item size limit (400 KB); the
    /// caller sent too much text, nothing was written.
    #[error("record too large to store")]
    TooLarge,
    /// A stored item does not map back to a domain value.
    #[error("corrupt item: {0}")]
    Corrupt(String),
    /// DynamoDB could not be reached or refused the request.
    #[error("store unavailable: {0}")]
    Unavailable(String),
}

impl<E, R> From<SdkError<E, R>> for StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    fn from(e: SdkError<E, R>) -> Self {
        StoreError::Unavailable(aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())
    }
}

/// The most items a list call reads through, whatever page is asked (R19).
pub const LIST_SCAN_MAX: usize = 100_000;

/// The billing table adapter. Cheap to clone: the SDK client is reference-counted.
#[derive(Debug, Clone)]
pub struct BillingStore {
    client: Client,
    table: String,
}

pub(crate) fn org_pk(org_id: &str) -> String {
    format!("ORG#{org_id}")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// DynamoDB's limit on a sort key, in bytes.
const SORT_KEY_BYTES_MAX: usize = 1024;

/// The sort key of a record of kind `T`, or `None` when `key` is too long to be one: no such
/// record can exist, and DynamoDB would refuse the request with a `ValidationException`.
fn sort_key<T: Kind>(key: &str) -> Option<String> {
    let sk = format!("{}{key}", T::PREFIX);
    (sk.len() <= SORT_KEY_BYTES_MAX).then_some(sk)
}

impl BillingStore {
    /// A store over `table`.
    pub fn new(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::with_client(Client::new(sdk), table)
    }

    /// A store over `table` with a given client (benchmarks meter it, tests inject faults).
    pub fn with_client(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Stores a new record; `AlreadyExists` if its business key is taken in the organization.
    pub async fn create<T: Kind>(
        &self,
        org_id: &str,
        record: &Record<T>,
    ) -> Result<(), StoreError> {
        let item = mapping::to_item(org_id, record)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reads one record by business key (strongly consistent).
    pub async fn get<T: Kind>(&self, org_id: &str, key: &str) -> Result<Record<T>, StoreError> {
        let Some(sk) = sort_key::<T>(key) else {
            return Err(StoreError::NotFound);
        };
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await?;
        out.item
            .ok_or(StoreError::NotFound)
            .and_then(mapping::from_item)
    }

    /// Reads several records by business key; missing keys are simply absent from the result.
    pub async fn get_many<T: Kind>(
        &self,
        org_id: &str,
        keys: &[String],
    ) -> Result<Vec<Record<T>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        // BatchGetItem refuses a repeated key and takes at most 100 keys per call.
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        // A key too long to be stored names no record.
        keys.retain(|k| sort_key::<T>(k).is_some());
        for chunk in keys.chunks(100) {
            let mut request_keys = Vec::with_capacity(chunk.len());
            for key in chunk {
                request_keys.push(HashMap::from([
                    ("pk".to_owned(), s(org_pk(org_id))),
                    ("sk".to_owned(), s(format!("{}{key}", T::PREFIX))),
                ]));
            }
            let mut pending = Some(
                aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(request_keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?,
            );
            // Unprocessed keys are retried; the loop is bounded by the chunk size.
            for _ in 0..=chunk.len() {
                let Some(keys) = pending.take() else { break };
                let response = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await?;
                if let Some(items) = response.responses.and_then(|mut r| r.remove(&self.table)) {
                    for item in items {
                        out.push(mapping::from_item(item)?);
                    }
                }
                pending = response
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .filter(|k| !k.keys.is_empty());
            }
        }
        Ok(out)
    }

    /// One page of an organization's records of a kind, ordered by business key, and the
    /// total count. Pages are 1-based.
    pub async fn list<T: Kind>(
        &self,
        org_id: &str,
        page: usize,
        per_page: usize,
    ) -> Result<(Vec<Record<T>>, usize), StoreError> {
        let total = self.count::<T>(org_id).await?;
        let skip = page.saturating_sub(1).saturating_mul(per_page);
        let mut seen = 0usize;
        let mut items = Vec::with_capacity(per_page.min(total));
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        while items.len() < per_page && seen < total.min(LIST_SCAN_MAX) {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(org_pk(org_id)))
                .expression_attribute_values(":prefix", s(T::PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in out.items.unwrap_or_default() {
                if seen >= skip && items.len() < per_page {
                    items.push(mapping::from_item(item)?);
                }
                seen += 1;
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok((items, total))
    }

    async fn count<T: Kind>(&self, org_id: &str) -> Result<usize, StoreError> {
        let mut total = 0usize;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(org_pk(org_id)))
                .expression_attribute_values(":prefix", s(T::PREFIX))
                .select(Select::Count)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            total += usize::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(key) if total < LIST_SCAN_MAX => start = Some(key),
                _ => return Ok(total),
            }
        }
    }

    /// Replaces a record read at `record.version - 1`. If its business key changed from
    /// `previous_key`, the old item is deleted and the new one created in one transaction.
    pub async fn replace<T: Kind>(
        &self,
        org_id: &str,
        previous_key: &str,
        record: &Record<T>,
    ) -> Result<(), StoreError> {
        let item = mapping::to_item(org_id, record)?;
        let read_version = AttributeValue::N(record.version.saturating_sub(1).to_string());
        if previous_key == record.value.key() {
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_exists(pk) AND version = :v")
                .expression_attribute_values(":v", read_version)
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
                {
                    Err(StoreError::Conflict)
                }
                Err(e) => Err(e.into()),
            };
        }
        // A rename onto a taken key is refused by the transaction below; checking first spares
        // the cancelled transaction (billed on DynamoDB, and in the emulator a cancellation
        // restores a copy of the whole table, erasing writes made meanwhile).
        match self.get::<T>(org_id, record.value.key()).await {
            Ok(_) => return Err(StoreError::AlreadyExists),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(format!("{}{previous_key}", T::PREFIX)))
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(":v", read_version)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => {
                let reasons: Vec<Option<String>> = e
                    .as_service_error()
                    .and_then(|s| match s {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
                            Some(c.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect())
                        }
                        _ => None,
                    })
                    .unwrap_or_default();
                let failed = |i: usize| {
                    reasons
                        .get(i)
                        .and_then(|r| r.as_deref())
                        .is_some_and(|c| c == "ConditionalCheckFailed")
                };
                if failed(1) {
                    Err(StoreError::AlreadyExists)
                } else if failed(0) {
                    Err(StoreError::Conflict)
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// Deletes a record and returns it as it was.
    pub async fn delete<T: Kind>(&self, org_id: &str, key: &str) -> Result<Record<T>, StoreError> {
        let Some(sk) = sort_key::<T>(key) else {
            return Err(StoreError::NotFound);
        };
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(sk))
            .condition_expression("attribute_exists(pk)")
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => out
                .attributes
                .ok_or(StoreError::NotFound)
                .and_then(mapping::from_item),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::NotFound)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The next value of a per-organization counter (customer sequential ids), atomically.
    pub async fn next_sequence(&self, org_id: &str, counter: &str) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(format!("COUNTER#{counter}")))
            .update_expression("ADD #v :one")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await?;
        out.attributes
            .and_then(|a| a.get("value").cloned())
            .and_then(|v| v.as_n().ok().and_then(|n| n.parse().ok()))
            .ok_or_else(|| StoreError::Corrupt(format!("counter {counter}")))
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }
}
