//! Credit notes in the billing table.
//!
//! - Item: `sk = CN#<customer lago_id>#<lago_id>`: a customer's notes are one `Query` away,
//!   which is what an invoice's finalization reads to spend them (SEMANTICS §8.5).
//! - Pointer: `sk = CNID#<lago_id>` names the note's customer, for `GET /credit_notes/{id}`.
//!   Both are created in one transaction, each with `attribute_not_exists(pk)`: a note's Lago
//!   id derives from what it credits, so creating it twice is refused by the store.
//! - A note's balance only moves inside the transaction that finalizes the invoice spending
//!   it, conditioned on the version read ([`credit_note_put`]).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use billing::{
    catalog::Record,
    credit_note::{CreditNote, CreditNoteItem, CreditNoteReason, CreditNoteTax, CreditStatus},
    money::Currency,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{BillingStore, LIST_SCAN_MAX, StoreError, invoices::TaxItem, mapping, org_pk};

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn dec(v: &str) -> Result<Decimal, String> {
    v.parse().map_err(|e| format!("decimal {v:?}: {e}"))
}

fn note_sk(customer_id: &str, lago_id: &str) -> String {
    format!("CN#{customer_id}#{lago_id}")
}

fn pointer_sk(lago_id: &str) -> String {
    format!("CNID#{lago_id}")
}

/// A credit note as stored.
#[derive(Serialize, Deserialize)]
struct CreditNoteRow {
    lago_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: u64,
    sequential_id: u64,
    number: String,
    invoice_id: String,
    invoice_number: String,
    customer_id: String,
    external_customer_id: String,
    subscription_id: String,
    external_subscription_id: String,
    issuing_date: NaiveDate,
    credit_status: String,
    reason: String,
    currency: String,
    /// total, credit, balance, refund, taxes, sub total excluding taxes.
    amounts: [i64; 6],
    taxes_rate: String,
    /// `(item id, fee id, amount, precise amount)`.
    items: Vec<(String, String, i64, String)>,
    /// `(applied tax id, tax, amount, base)`.
    applied_taxes: Vec<(String, TaxItem, i64, i64)>,
}

fn to_row(r: &Record<CreditNote>) -> CreditNoteRow {
    let n = &r.value;
    CreditNoteRow {
        lago_id: r.lago_id.clone(),
        created_at: r.created_at,
        updated_at: r.updated_at,
        version: r.version,
        sequential_id: n.sequential_id,
        number: n.number.clone(),
        invoice_id: n.invoice_id.clone(),
        invoice_number: n.invoice_number.clone(),
        customer_id: n.customer_id.clone(),
        external_customer_id: n.external_customer_id.clone(),
        subscription_id: n.subscription_id.clone(),
        external_subscription_id: n.external_subscription_id.clone(),
        issuing_date: n.issuing_date,
        credit_status: n.credit_status.as_str().to_owned(),
        reason: n.reason.as_str().to_owned(),
        currency: n.currency.code().to_owned(),
        amounts: [
            n.total_amount_cents,
            n.credit_amount_cents,
            n.balance_amount_cents,
            n.refund_amount_cents,
            n.taxes_amount_cents,
            n.sub_total_excluding_taxes_amount_cents,
        ],
        taxes_rate: n.taxes_rate.to_string(),
        items: n
            .items
            .iter()
            .map(|i| {
                (
                    i.lago_id.clone(),
                    i.fee_id.clone(),
                    i.amount_cents,
                    i.precise_amount_cents.to_string(),
                )
            })
            .collect(),
        applied_taxes: n
            .applied_taxes
            .iter()
            .map(|t| {
                (
                    t.lago_id.clone(),
                    TaxItem::from(&t.tax),
                    t.amount_cents,
                    t.base_amount_cents,
                )
            })
            .collect(),
    }
}

fn from_row(row: CreditNoteRow) -> Result<Record<CreditNote>, String> {
    let a = row.amounts;
    let mut items = Vec::with_capacity(row.items.len());
    for (lago_id, fee_id, amount_cents, precise) in row.items {
        items.push(CreditNoteItem {
            lago_id,
            fee_id,
            amount_cents,
            precise_amount_cents: dec(&precise)?,
        });
    }
    let mut applied_taxes = Vec::with_capacity(row.applied_taxes.len());
    for (lago_id, tax, amount_cents, base_amount_cents) in row.applied_taxes {
        applied_taxes.push(CreditNoteTax {
            lago_id,
            tax: tax.into_domain()?,
            amount_cents,
            base_amount_cents,
        });
    }
    Ok(Record {
        lago_id: row.lago_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
        sequential_id: Some(row.sequential_id),
        version: row.version,
        value: CreditNote {
            sequential_id: row.sequential_id,
            number: row.number,
            invoice_id: row.invoice_id,
            invoice_number: row.invoice_number,
            customer_id: row.customer_id,
            external_customer_id: row.external_customer_id,
            subscription_id: row.subscription_id,
            external_subscription_id: row.external_subscription_id,
            issuing_date: row.issuing_date,
            credit_status: CreditStatus::parse(&row.credit_status)
                .ok_or_else(|| format!("credit_status {:?}", row.credit_status))?,
            reason: CreditNoteReason::parse(&row.reason)
                .ok_or_else(|| format!("reason {:?}", row.reason))?,
            currency: Currency::parse(&row.currency).map_err(|e| e.to_string())?,
            total_amount_cents: a[0],
            credit_amount_cents: a[1],
            balance_amount_cents: a[2],
            refund_amount_cents: a[3],
            taxes_amount_cents: a[4],
            sub_total_excluding_taxes_amount_cents: a[5],
            taxes_rate: dec(&row.taxes_rate)?,
            items,
            applied_taxes,
        },
    })
}

fn to_item(
    org_id: &str,
    r: &Record<CreditNote>,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut item: HashMap<String, AttributeValue> =
        serde_dynamo::to_item(to_row(r)).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.insert("pk".into(), s(org_pk(org_id)));
    item.insert("sk".into(), s(note_sk(&r.value.customer_id, &r.lago_id)));
    mapping::check_size(item)
}

fn from_item(item: HashMap<String, AttributeValue>) -> Result<Record<CreditNote>, StoreError> {
    let row: CreditNoteRow =
        serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    from_row(row).map_err(StoreError::Corrupt)
}

/// The transaction item that replaces credit note `record` over the version it was read at
/// (`record.version - 1`): a finalization spending it fails if anyone spent it meanwhile.
pub(crate) fn credit_note_put(
    table: &str,
    org_id: &str,
    record: &Record<CreditNote>,
) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(to_item(org_id, record)?))
        .condition_expression("attribute_exists(pk) AND version = :v")
        .expression_attribute_values(
            ":v",
            AttributeValue::N(record.version.saturating_sub(1).to_string()),
        )
        .build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

impl BillingStore {
    /// Creates credit note `record` and its pointer, with its domain events `events` put in
    /// the outbox of its external subscription id, in one transaction. `AlreadyExists` when
    /// a note with its Lago id exists.
    pub async fn create_credit_note(
        &self,
        org_id: &str,
        record: &Record<CreditNote>,
        events: &[String],
    ) -> Result<(), StoreError> {
        let note = Put::builder()
            .table_name(self.table())
            .set_item(Some(to_item(org_id, record)?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let pointer = Put::builder()
            .table_name(self.table())
            .item("pk", s(org_pk(org_id)))
            .item("sk", s(pointer_sk(&record.lago_id)))
            .item("customer_id", s(record.value.customer_id.clone()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().put(note).build(),
            TransactWriteItem::builder().put(pointer).build(),
        ];
        if !events.is_empty() {
            items.push(super::billing_schedule::invoice_outbox(
                self.table(),
                org_id,
                &record.value.external_subscription_id,
                record.updated_at,
                events,
            )?);
        }
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match super::plans::transaction_failures(&e) {
                Some(failed) if failed.iter().take(2).any(|f| *f) => Err(StoreError::AlreadyExists),
                Some(failed) if failed.iter().any(|f| *f) => Err(StoreError::Conflict),
                _ => Err(e.into()),
            },
        }
    }

    /// Credit note `lago_id` of the organization.
    pub async fn credit_note(
        &self,
        org_id: &str,
        lago_id: &str,
    ) -> Result<Record<CreditNote>, StoreError> {
        if lago_id.is_empty() || lago_id.len() > 100 {
            return Err(StoreError::NotFound);
        }
        let pointer = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(pointer_sk(lago_id)))
            .consistent_read(true)
            .send()
            .await?;
        let customer_id = pointer
            .item
            .and_then(|i| i.get("customer_id").cloned())
            .and_then(|v| v.as_s().ok().cloned())
            .ok_or(StoreError::NotFound)?;
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(note_sk(&customer_id, lago_id)))
            .consistent_read(true)
            .send()
            .await?;
        out.item.ok_or(StoreError::NotFound).and_then(from_item)
    }

    /// Every credit note of customer `customer_id`, oldest first.
    pub async fn customer_credit_notes(
        &self,
        org_id: &str,
        customer_id: &str,
    ) -> Result<Vec<Record<CreditNote>>, StoreError> {
        self.query_credit_notes(org_id, &format!("CN#{customer_id}#"))
            .await
    }

    /// Every credit note of the organization (at most [`LIST_SCAN_MAX`]), oldest first.
    pub async fn credit_notes(&self, org_id: &str) -> Result<Vec<Record<CreditNote>>, StoreError> {
        self.query_credit_notes(org_id, "CN#").await
    }

    async fn query_credit_notes(
        &self,
        org_id: &str,
        prefix: &str,
    ) -> Result<Vec<Record<CreditNote>>, StoreError> {
        let mut out: Vec<Record<CreditNote>> = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        while out.len() < LIST_SCAN_MAX {
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(org_pk(org_id)))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        out.sort_by(|a, b| {
            (a.created_at, &a.value.number, &a.lago_id).cmp(&(
                b.created_at,
                &b.value.number,
                &b.lago_id,
            ))
        });
        Ok(out)
    }
}
