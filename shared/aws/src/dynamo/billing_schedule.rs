//! The billing schedule: what the clock reads to find the subscriptions with something due,
//! without scanning the table.
//!
//! One item per external subscription id (`sk = SCHED#<external_id>`), holding
//! - the **due index** entry: `gsi1pk = DUE#<shard>`, `gsi1sk = <due instant>#<org>#<external
//!   id>`; present only while something may be due (the index is sparse), so the clock's
//!   query for `gsi1sk <= now` in each shard returns exactly the work of this hour;
//! - the invoicing **progress**: per subscription, the key of the last slot invoiced and
//!   whether a subscription fee was billed; the drafts waiting for their grace period to end.
//!
//! - the **pending subscription events** (`pending_events`, a string set of
//!   `<subscription id>#<webhook type>`): the domain events of a subscription change (by the
//!   billing clock or the API), added in the change's own transaction and removed once
//!   published, so a worker or a request that crashed between the two is made good (an
//!   outbox);
//! - the **pending invoice events** (`invoice_events`, a string set of
//!   `<invoice id>#<webhook type>#<invoice version>`): the same outbox for the API's invoice
//!   changes (finalize, void, payment status, document), added in the transaction that writes
//!   the invoice ([`invoice_outbox`]). Adding one also marks the item due and moves
//!   `outbox_seq`, so the next billing clock run hands the external id to the invoice worker,
//!   which publishes whatever is still pending: the outbox's sweeper is the hourly clock,
//!   with no permission beyond the ones the clock and the worker already have.
//!
//! Every change to an external id's subscriptions ([`BillingStore::write_subscriptions`])
//! marks the item due at the change's time, in the same transaction (see [`touch`]); the
//! invoice worker then computes the real next due instant and writes it back, unless the
//! subscriptions changed again meanwhile (`head_version` no longer the one it read), in which
//! case the item stays due and is looked at again.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::{BillingStore, StoreError, org_pk};

/// How many partitions the due index is spread over (the clock queries each; a month-start
/// run of many subscriptions reads them in parallel).
pub const DUE_SHARDS: u32 = 8;

/// The due-index partition of an external subscription id.
pub fn shard_of(org_id: &str, external_id: &str) -> u32 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(org_id.as_bytes());
    h.update([0]);
    h.update(external_id.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % DUE_SHARDS
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn sched_sk(external_id: &str) -> String {
    format!("SCHED#{external_id}")
}

fn due_sk(at: DateTime<Utc>, org_id: &str, external_id: &str) -> String {
    format!("{}#{org_id}#{external_id}", instant(at))
}

/// The transaction item that marks an external id due at `at` (its subscriptions changed):
/// only the index attributes and the head version move, and `pending_events` are added to
/// the outbox; the progress is kept.
pub(crate) fn touch(
    table: &str,
    org_id: &str,
    external_id: &str,
    at: DateTime<Utc>,
    head_version: u64,
    pending_events: &[String],
) -> Result<TransactWriteItem, StoreError> {
    let set =
        "SET gsi1pk = :due, gsi1sk = :at, org_id = :org, external_id = :ext, head_version = :hv";
    let mut update = Update::builder()
        .table_name(table)
        .key("pk", s(org_pk(org_id)))
        .key("sk", s(sched_sk(external_id)));
    update = if pending_events.is_empty() {
        update.update_expression(set)
    } else {
        update
            .update_expression(format!("{set} ADD pending_events :ev"))
            .expression_attribute_values(":ev", AttributeValue::Ss(pending_events.to_vec()))
    };
    let update = update
        .expression_attribute_values(":due", s(format!("DUE#{}", shard_of(org_id, external_id))))
        .expression_attribute_values(":at", s(due_sk(at, org_id, external_id)))
        .expression_attribute_values(":org", s(org_id))
        .expression_attribute_values(":ext", s(external_id))
        .expression_attribute_values(":hv", AttributeValue::N(head_version.to_string()))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// The transaction item that puts invoice events `entries` in the outbox of `external_id`
/// and marks it due at `at` (the billing clock then looks at it: the sweeper of the outbox).
/// `outbox_seq` moves so that a worker which read the item before cannot take it out of the
/// due index ([`BillingStore::save_billing_progress`] is conditional on it).
pub(crate) fn invoice_outbox(
    table: &str,
    org_id: &str,
    external_id: &str,
    at: DateTime<Utc>,
    entries: &[String],
) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .key("pk", s(org_pk(org_id)))
        .key("sk", s(sched_sk(external_id)))
        .update_expression(
            "SET gsi1pk = :due, gsi1sk = :at, org_id = :org, external_id = :ext ADD invoice_events :ev, outbox_seq :one",
        )
        .expression_attribute_values(":due", s(format!("DUE#{}", shard_of(org_id, external_id))))
        .expression_attribute_values(":at", s(due_sk(at, org_id, external_id)))
        .expression_attribute_values(":org", s(org_id))
        .expression_attribute_values(":ext", s(external_id))
        .expression_attribute_values(":ev", AttributeValue::Ss(entries.to_vec()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// An external id's invoicing progress.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BillingProgress {
    /// The subscriptions' head version when the item was last marked due.
    pub head_version: u64,
    /// Per subscription Lago id, the key of the last slot invoiced.
    pub cursors: BTreeMap<String, String>,
    /// Per subscription Lago id, whether a subscription fee was billed.
    pub fee_billed: BTreeMap<String, bool>,
    /// Draft invoice id → when its grace period ends.
    pub drafts: BTreeMap<String, DateTime<Utc>>,
    /// Subscription events written by a change and not yet published
    /// (`<subscription id>#<webhook type>`).
    pub pending_events: BTreeSet<String>,
    /// Invoice events written by an invoice change and not yet published
    /// (`<invoice id>#<webhook type>#<invoice version>`).
    pub invoice_events: BTreeSet<String>,
    /// How many times invoice events were put in the outbox (the progress is saved, and the
    /// item leaves the due index, only if it did not move since it was read).
    pub outbox_seq: u64,
}

/// One due entry the clock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    /// The organization.
    pub org_id: String,
    /// The external subscription id.
    pub external_id: String,
    /// When it became due.
    pub due_at: String,
}

fn string_map(v: Option<&AttributeValue>) -> BTreeMap<String, String> {
    v.and_then(|v| v.as_m().ok())
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_s().ok().map(|s| (k.clone(), s.clone())))
                .collect()
        })
        .unwrap_or_default()
}

impl BillingStore {
    /// The invoicing progress of an external subscription id (empty before its first run).
    pub async fn billing_progress(
        &self,
        org_id: &str,
        external_id: &str,
    ) -> Result<BillingProgress, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(sched_sk(external_id)))
            .consistent_read(true)
            .send()
            .await?;
        let Some(item) = out.item else {
            return Ok(BillingProgress::default());
        };
        let head_version = item
            .get("head_version")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let fee_billed = item
            .get("fee_billed")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_bool().ok().map(|b| (k.clone(), *b)))
                    .collect()
            })
            .unwrap_or_default();
        let drafts = string_map(item.get("drafts"))
            .into_iter()
            .filter_map(|(k, v)| {
                DateTime::parse_from_rfc3339(&v)
                    .ok()
                    .map(|t| (k, t.with_timezone(&Utc)))
            })
            .collect();
        let string_set = |k: &str| -> BTreeSet<String> {
            item.get(k)
                .and_then(|v| v.as_ss().ok())
                .map(|v| v.iter().cloned().collect())
                .unwrap_or_default()
        };
        let outbox_seq = item
            .get("outbox_seq")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Ok(BillingProgress {
            head_version,
            cursors: string_map(item.get("cursors")),
            fee_billed,
            drafts,
            pending_events: string_set("pending_events"),
            invoice_events: string_set("invoice_events"),
            outbox_seq,
        })
    }

    /// Removes published events from the outbox of an external id (removing an absent one
    /// changes nothing, so a re-run is harmless).
    pub async fn clear_pending_events(
        &self,
        org_id: &str,
        external_id: &str,
        published: &[String],
    ) -> Result<(), StoreError> {
        if published.is_empty() {
            return Ok(());
        }
        self.client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(sched_sk(external_id)))
            .update_expression("DELETE pending_events :ev")
            .expression_attribute_values(":ev", AttributeValue::Ss(published.to_vec()))
            .send()
            .await?;
        Ok(())
    }

    /// Removes published invoice events from the outbox of an external id (removing an absent
    /// one changes nothing, so a re-run is harmless).
    pub async fn clear_invoice_events(
        &self,
        org_id: &str,
        external_id: &str,
        published: &[String],
    ) -> Result<(), StoreError> {
        if published.is_empty() {
            return Ok(());
        }
        self.client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(sched_sk(external_id)))
            .update_expression("DELETE invoice_events :ev")
            .expression_attribute_values(":ev", AttributeValue::Ss(published.to_vec()))
            .send()
            .await?;
        Ok(())
    }

    /// Saves the progress and the next due instant (`None`: nothing more is due, the item
    /// leaves the index), if the subscriptions are still at `progress.head_version`.
    /// `Conflict` otherwise: the item stays due, the progress is saved by
    /// [`BillingStore::save_billing_cursors`].
    pub async fn save_billing_progress(
        &self,
        org_id: &str,
        external_id: &str,
        progress: &BillingProgress,
        next_due: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut request = self
            .client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(sched_sk(external_id)))
            .expression_attribute_values(":c", cursors_value(progress))
            .expression_attribute_values(":b", billed_value(progress))
            .expression_attribute_values(":d", drafts_value(progress))
            .expression_attribute_values(":org", s(org_id))
            .expression_attribute_values(":ext", s(external_id))
            .expression_attribute_values(
                ":hv",
                AttributeValue::N(progress.head_version.to_string()),
            )
            .condition_expression(if progress.outbox_seq == 0 {
                "(attribute_not_exists(head_version) OR head_version = :hv) AND attribute_not_exists(outbox_seq)"
            } else {
                "(attribute_not_exists(head_version) OR head_version = :hv) AND outbox_seq = :os"
            });
        if progress.outbox_seq != 0 {
            request = request.expression_attribute_values(
                ":os",
                AttributeValue::N(progress.outbox_seq.to_string()),
            );
        }
        request = match next_due {
            Some(at) => request
                .update_expression(
                    "SET cursors = :c, fee_billed = :b, drafts = :d, org_id = :org, external_id = :ext, head_version = :hv, gsi1pk = :due, gsi1sk = :at",
                )
                .expression_attribute_values(
                    ":due",
                    s(format!("DUE#{}", shard_of(org_id, external_id))),
                )
                .expression_attribute_values(":at", s(due_sk(at, org_id, external_id))),
            None => request.update_expression(
                "SET cursors = :c, fee_billed = :b, drafts = :d, org_id = :org, external_id = :ext, head_version = :hv REMOVE gsi1pk, gsi1sk",
            ),
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Saves only the progress (the due entry is left as it is).
    pub async fn save_billing_cursors(
        &self,
        org_id: &str,
        external_id: &str,
        progress: &BillingProgress,
    ) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(sched_sk(external_id)))
            .update_expression("SET cursors = :c, fee_billed = :b, drafts = :d")
            .expression_attribute_values(":c", cursors_value(progress))
            .expression_attribute_values(":b", billed_value(progress))
            .expression_attribute_values(":d", drafts_value(progress))
            .send()
            .await?;
        Ok(())
    }

    /// One page of the due index of `shard`: entries due at or before `until`, oldest first,
    /// and the key to continue from.
    pub async fn due_entries(
        &self,
        shard: u32,
        until: DateTime<Utc>,
        start: Option<HashMap<String, AttributeValue>>,
    ) -> Result<(Vec<DueEntry>, Option<HashMap<String, AttributeValue>>), StoreError> {
        // `#` sorts before `$`: every key of the instant `until` is below `<until>$`.
        let bound = format!("{}$", instant(until));
        let out = self
            .client()
            .query()
            .table_name(self.table())
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk AND gsi1sk < :bound")
            .expression_attribute_values(":pk", s(format!("DUE#{shard}")))
            .expression_attribute_values(":bound", s(bound))
            .set_exclusive_start_key(start)
            .send()
            .await?;
        let entries = out
            .items
            .unwrap_or_default()
            .into_iter()
            .filter_map(|item| {
                let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                Some(DueEntry {
                    org_id: text("org_id")?,
                    external_id: text("external_id")?,
                    due_at: text("gsi1sk")?,
                })
            })
            .collect();
        Ok((entries, out.last_evaluated_key))
    }
}

fn cursors_value(p: &BillingProgress) -> AttributeValue {
    AttributeValue::M(
        p.cursors
            .iter()
            .map(|(k, v)| (k.clone(), s(v.clone())))
            .collect(),
    )
}

fn billed_value(p: &BillingProgress) -> AttributeValue {
    AttributeValue::M(
        p.fee_billed
            .iter()
            .map(|(k, v)| (k.clone(), AttributeValue::Bool(*v)))
            .collect(),
    )
}

fn drafts_value(p: &BillingProgress) -> AttributeValue {
    AttributeValue::M(
        p.drafts
            .iter()
            .map(|(k, v)| (k.clone(), s(instant(*v))))
            .collect(),
    )
}
