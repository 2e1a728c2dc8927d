//! Invoices in the billing table.
//!
//! - Item: `sk = INV#<lago_id>`. An invoice's Lago id derives from its subscription and slot,
//!   so creating it with `attribute_not_exists(pk)` *is* claiming the period: two workers, or a
//!   clock firing twice, cannot both create it.
//! - Numbering: `COUNTER#INVOICE#CUS#<customer>` and `COUNTER#INVOICE#ORG` hold the last
//!   sequential ids handed out. Finalizing moves both counters, on the condition that they
//!   still hold the values read, in the same transaction that writes the finalized invoice:
//!   a refused finalization consumes no number, and two cannot take the same one.
//! - Fee pointers: `sk = FEE#<fee lago_id>` names the invoice holding the fee (fees live inside
//!   their invoice item), for `GET /fees/{lago_id}`.
//! - Standalone fees (non-invoiceable pay-in-advance charges): `sk = SFEE#<fee lago_id>`, the
//!   fee and its subscription, created once under an id derived from the event.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::{
    AttributeValue, Put, PutRequest, TransactWriteItem, Update, WriteRequest,
};
use billing::{
    catalog::Record,
    credit_note::{CreditNote, InvoiceCredit},
    invoice::{
        Fee, FeeItem, FeeTax, Invoice, InvoiceAmounts, InvoiceMetadata, InvoiceState, InvoiceTax,
        InvoicingReason, PaymentStatus, StandaloneFee, TaxInfo,
    },
    money::Currency,
};
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::{BillingStore, Kind, LIST_SCAN_MAX, StoreError, mapping, org_pk};

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn dec(v: &str) -> Result<Decimal, String> {
    v.parse().map_err(|e| format!("decimal {v:?}: {e}"))
}

/// A tax snapshot as stored.
#[derive(Serialize, Deserialize)]
pub struct TaxItem {
    id: String,
    code: String,
    name: String,
    description: Option<String>,
    rate: String,
}

impl From<&TaxInfo> for TaxItem {
    fn from(t: &TaxInfo) -> Self {
        Self {
            id: t.lago_id.clone(),
            code: t.code.clone(),
            name: t.name.clone(),
            description: t.description.clone(),
            rate: t.rate.to_string(),
        }
    }
}

impl TaxItem {
    pub(super) fn into_domain(self) -> Result<TaxInfo, String> {
        Ok(TaxInfo {
            lago_id: self.id,
            code: self.code,
            name: self.name,
            description: self.description,
            rate: dec(&self.rate)?,
        })
    }
}

/// A fee as stored inside its invoice.
#[derive(Serialize, Deserialize)]
pub struct FeeItemRecord {
    id: String,
    kind: String,
    plan_amount_cents: Option<i64>,
    #[serde(default)]
    plan_name: Option<String>,
    #[serde(default)]
    plan_display_name: Option<String>,
    charge_id: Option<String>,
    charge_code: Option<String>,
    charge_display_name: Option<String>,
    metric_id: Option<String>,
    metric_code: Option<String>,
    metric_name: Option<String>,
    metric_description: Option<String>,
    filter_values: Option<BTreeMap<String, Vec<String>>>,
    filter_display_name: Option<String>,
    grouped_by: Vec<(String, Option<String>)>,
    true_up_parent_fee_id: Option<String>,
    true_up_fee_id: Option<String>,
    amount_cents: i64,
    precise_amount_cents: String,
    units: String,
    total_aggregated_units: String,
    events_count: u64,
    precise_unit_amount: String,
    taxes_amount_cents: i64,
    taxes_precise_amount_cents: String,
    taxes_rate: String,
    applied_taxes: Vec<(TaxItem, i64)>,
    precise_coupons_amount_cents: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    created_at: DateTime<Utc>,
    #[serde(default)]
    pay_in_advance: bool,
    #[serde(default = "invoiceable_default")]
    invoiceable: bool,
    #[serde(default)]
    event_transaction_id: Option<String>,
}

fn invoiceable_default() -> bool {
    true
}

impl From<&Fee> for FeeItemRecord {
    fn from(f: &Fee) -> Self {
        let mut r = Self {
            id: f.lago_id.clone(),
            kind: String::new(),
            plan_amount_cents: None,
            plan_name: None,
            plan_display_name: None,
            charge_id: None,
            charge_code: None,
            charge_display_name: None,
            metric_id: None,
            metric_code: None,
            metric_name: None,
            metric_description: None,
            filter_values: None,
            filter_display_name: None,
            grouped_by: Vec::new(),
            true_up_parent_fee_id: None,
            true_up_fee_id: None,
            amount_cents: f.amount_cents,
            precise_amount_cents: f.precise_amount_cents.to_string(),
            units: f.units.to_string(),
            total_aggregated_units: f.total_aggregated_units.to_string(),
            events_count: f.events_count,
            precise_unit_amount: f.precise_unit_amount.to_string(),
            taxes_amount_cents: f.taxes_amount_cents,
            taxes_precise_amount_cents: f.taxes_precise_amount_cents.to_string(),
            taxes_rate: f.taxes_rate.to_string(),
            applied_taxes: f
                .applied_taxes
                .iter()
                .map(|t| (TaxItem::from(&t.tax), t.amount_cents))
                .collect(),
            precise_coupons_amount_cents: f.precise_coupons_amount_cents.to_string(),
            from: f.from_datetime,
            to: f.to_datetime,
            created_at: f.created_at,
            pay_in_advance: f.pay_in_advance,
            invoiceable: f.invoiceable,
            event_transaction_id: f.event_transaction_id.clone(),
        };
        match &f.item {
            FeeItem::Subscription {
                plan_amount_cents,
                plan_name,
                plan_display_name,
            } => {
                r.kind = "subscription".into();
                r.plan_amount_cents = Some(*plan_amount_cents);
                r.plan_name = Some(plan_name.clone());
                r.plan_display_name = plan_display_name.clone();
            }
            FeeItem::Charge {
                charge_id,
                charge_code,
                charge_display_name,
                metric_id,
                metric_code,
                metric_name,
                metric_description,
                filter_values,
                filter_display_name,
                grouped_by,
                true_up_parent_fee_id,
                true_up_fee_id,
            } => {
                r.kind = "charge".into();
                r.charge_id = Some(charge_id.clone());
                r.charge_code = Some(charge_code.clone());
                r.charge_display_name = charge_display_name.clone();
                r.metric_id = Some(metric_id.clone());
                r.metric_code = Some(metric_code.clone());
                r.metric_name = Some(metric_name.clone());
                r.metric_description = metric_description.clone();
                r.filter_values = filter_values.clone();
                r.filter_display_name = filter_display_name.clone();
                r.grouped_by = grouped_by.clone();
                r.true_up_parent_fee_id = true_up_parent_fee_id.clone();
                r.true_up_fee_id = true_up_fee_id.clone();
            }
        }
        r
    }
}

impl FeeItemRecord {
    fn into_domain(self) -> Result<Fee, String> {
        let item = match self.kind.as_str() {
            "subscription" => FeeItem::Subscription {
                plan_amount_cents: self.plan_amount_cents.unwrap_or(0),
                plan_name: self.plan_name.unwrap_or_default(),
                plan_display_name: self.plan_display_name,
            },
            "charge" => FeeItem::Charge {
                charge_id: self.charge_id.unwrap_or_default(),
                charge_code: self.charge_code.unwrap_or_default(),
                charge_display_name: self.charge_display_name,
                metric_id: self.metric_id.unwrap_or_default(),
                metric_code: self.metric_code.unwrap_or_default(),
                metric_name: self.metric_name.unwrap_or_default(),
                metric_description: self.metric_description,
                filter_values: self.filter_values,
                filter_display_name: self.filter_display_name,
                grouped_by: self.grouped_by,
                true_up_parent_fee_id: self.true_up_parent_fee_id,
                true_up_fee_id: self.true_up_fee_id,
            },
            other => return Err(format!("fee kind {other:?}")),
        };
        let mut applied_taxes = Vec::with_capacity(self.applied_taxes.len());
        for (tax, amount_cents) in self.applied_taxes {
            applied_taxes.push(FeeTax {
                tax: tax.into_domain()?,
                amount_cents,
            });
        }
        Ok(Fee {
            lago_id: self.id,
            item,
            amount_cents: self.amount_cents,
            precise_amount_cents: dec(&self.precise_amount_cents)?,
            units: dec(&self.units)?,
            total_aggregated_units: dec(&self.total_aggregated_units)?,
            events_count: self.events_count,
            precise_unit_amount: dec(&self.precise_unit_amount)?,
            taxes_amount_cents: self.taxes_amount_cents,
            taxes_precise_amount_cents: dec(&self.taxes_precise_amount_cents)?,
            taxes_rate: dec(&self.taxes_rate)?,
            applied_taxes,
            precise_coupons_amount_cents: dec(&self.precise_coupons_amount_cents)?,
            from_datetime: self.from,
            to_datetime: self.to,
            created_at: self.created_at,
            pay_in_advance: self.pay_in_advance,
            invoiceable: self.invoiceable,
            event_transaction_id: self.event_transaction_id,
        })
    }
}

/// An invoice as stored.
#[derive(Serialize, Deserialize)]
pub struct InvoiceItem {
    invoice_id: String,
    slot: String,
    customer_id: String,
    external_customer_id: String,
    subscription_id: String,
    external_subscription_id: String,
    plan_id: String,
    plan_code: String,
    invoicing_reason: String,
    billing_at: DateTime<Utc>,
    status: String,
    payment_status: String,
    currency: String,
    issuing_date: NaiveDate,
    net_payment_term: u32,
    finalize_at: Option<DateTime<Utc>>,
    invoice_sequential_id: Option<u64>,
    organization_sequential_id: Option<u64>,
    number: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    charges_from: DateTime<Utc>,
    charges_to: DateTime<Utc>,
    fees: Vec<FeeItemRecord>,
    amounts: [i64; 9],
    taxes_rate: String,
    applied_taxes: Vec<(TaxItem, i64, i64)>,
    metadata: Vec<(String, String, String, DateTime<Utc>)>,
    has_subscription_fee: bool,
    #[serde(default)]
    prior_subscription_fee: bool,
    file_key: Option<String>,
    finalized_at: Option<DateTime<Utc>>,
    voided_at: Option<DateTime<Utc>>,
    /// Credit notes spent at finalization: `(credit id, note id, note number, credited
    /// invoice number, amount, applied at)`.
    #[serde(default)]
    credits: Vec<(String, String, String, String, i64, DateTime<Utc>)>,
    /// Domain events of the invoice's creation were published (see `mark_published`).
    #[serde(default)]
    published: bool,
}

fn amounts_array(a: &InvoiceAmounts) -> [i64; 9] {
    [
        a.fees_amount_cents,
        a.coupons_amount_cents,
        a.credit_notes_amount_cents,
        a.progressive_billing_credit_amount_cents,
        a.sub_total_excluding_taxes_amount_cents,
        a.taxes_amount_cents,
        a.sub_total_including_taxes_amount_cents,
        a.prepaid_credit_amount_cents,
        a.total_amount_cents,
    ]
}

impl Kind for Invoice {
    const PREFIX: &'static str = "INV#";
    type Item = InvoiceItem;

    fn key(&self) -> &str {
        &self.lago_id
    }

    fn to_item(&self) -> InvoiceItem {
        InvoiceItem {
            invoice_id: self.lago_id.clone(),
            slot: self.slot.clone(),
            customer_id: self.customer_id.clone(),
            external_customer_id: self.external_customer_id.clone(),
            subscription_id: self.subscription_id.clone(),
            external_subscription_id: self.external_subscription_id.clone(),
            plan_id: self.plan_id.clone(),
            plan_code: self.plan_code.clone(),
            invoicing_reason: self.invoicing_reason.as_str().to_owned(),
            billing_at: self.billing_at,
            status: self.status.as_str().to_owned(),
            payment_status: self.payment_status.as_str().to_owned(),
            currency: self.currency.code().to_owned(),
            issuing_date: self.issuing_date,
            net_payment_term: self.net_payment_term,
            finalize_at: self.finalize_at,
            invoice_sequential_id: self.sequential_id,
            organization_sequential_id: self.organization_sequential_id,
            number: self.number.clone(),
            from: self.from_datetime,
            to: self.to_datetime,
            charges_from: self.charges_from_datetime,
            charges_to: self.charges_to_datetime,
            fees: self.fees.iter().map(FeeItemRecord::from).collect(),
            amounts: amounts_array(&self.amounts),
            taxes_rate: self.taxes_rate.to_string(),
            applied_taxes: self
                .applied_taxes
                .iter()
                .map(|t| (TaxItem::from(&t.tax), t.amount_cents, t.fees_amount_cents))
                .collect(),
            metadata: self
                .metadata
                .iter()
                .map(|m| {
                    (
                        m.lago_id.clone(),
                        m.key.clone(),
                        m.value.clone(),
                        m.created_at,
                    )
                })
                .collect(),
            has_subscription_fee: self.has_subscription_fee,
            prior_subscription_fee: self.prior_subscription_fee,
            file_key: self.file_key.clone(),
            finalized_at: self.finalized_at,
            voided_at: self.voided_at,
            credits: self
                .credits
                .iter()
                .map(|c| {
                    (
                        c.lago_id.clone(),
                        c.credit_note_id.clone(),
                        c.credit_note_number.clone(),
                        c.credited_invoice_number.clone(),
                        c.amount_cents,
                        c.created_at,
                    )
                })
                .collect(),
            published: false,
        }
    }

    fn from_item(item: InvoiceItem) -> Result<Self, String> {
        let a = item.amounts;
        let mut fees = Vec::with_capacity(item.fees.len());
        for f in item.fees {
            fees.push(f.into_domain()?);
        }
        let mut applied_taxes = Vec::with_capacity(item.applied_taxes.len());
        for (tax, amount_cents, fees_amount_cents) in item.applied_taxes {
            applied_taxes.push(InvoiceTax {
                tax: tax.into_domain()?,
                amount_cents,
                fees_amount_cents,
            });
        }
        Ok(Invoice {
            lago_id: item.invoice_id,
            slot: item.slot,
            customer_id: item.customer_id,
            external_customer_id: item.external_customer_id,
            subscription_id: item.subscription_id,
            external_subscription_id: item.external_subscription_id,
            plan_id: item.plan_id,
            plan_code: item.plan_code,
            invoicing_reason: InvoicingReason::parse(&item.invoicing_reason)
                .ok_or_else(|| format!("invoicing_reason {:?}", item.invoicing_reason))?,
            billing_at: item.billing_at,
            status: InvoiceState::parse(&item.status)
                .ok_or_else(|| format!("status {:?}", item.status))?,
            payment_status: PaymentStatus::parse(&item.payment_status)
                .ok_or_else(|| format!("payment_status {:?}", item.payment_status))?,
            currency: Currency::parse(&item.currency).map_err(|e| e.to_string())?,
            issuing_date: item.issuing_date,
            net_payment_term: item.net_payment_term,
            finalize_at: item.finalize_at,
            sequential_id: item.invoice_sequential_id,
            organization_sequential_id: item.organization_sequential_id,
            number: item.number,
            from_datetime: item.from,
            to_datetime: item.to,
            charges_from_datetime: item.charges_from,
            charges_to_datetime: item.charges_to,
            fees,
            amounts: InvoiceAmounts {
                fees_amount_cents: a[0],
                coupons_amount_cents: a[1],
                credit_notes_amount_cents: a[2],
                progressive_billing_credit_amount_cents: a[3],
                sub_total_excluding_taxes_amount_cents: a[4],
                taxes_amount_cents: a[5],
                sub_total_including_taxes_amount_cents: a[6],
                prepaid_credit_amount_cents: a[7],
                total_amount_cents: a[8],
            },
            taxes_rate: dec(&item.taxes_rate)?,
            applied_taxes,
            metadata: item
                .metadata
                .into_iter()
                .map(|(lago_id, key, value, created_at)| InvoiceMetadata {
                    lago_id,
                    key,
                    value,
                    created_at,
                })
                .collect(),
            has_subscription_fee: item.has_subscription_fee,
            prior_subscription_fee: item.prior_subscription_fee,
            file_key: item.file_key,
            finalized_at: item.finalized_at,
            voided_at: item.voided_at,
            credits: item
                .credits
                .into_iter()
                .map(
                    |(
                        lago_id,
                        credit_note_id,
                        credit_note_number,
                        credited_invoice_number,
                        amount_cents,
                        created_at,
                    )| {
                        InvoiceCredit {
                            lago_id,
                            credit_note_id,
                            credit_note_number,
                            credited_invoice_number,
                            amount_cents,
                            created_at,
                        }
                    },
                )
                .collect(),
        })
    }
}

/// A standalone fee as stored (`sk = SFEE#<lago_id>`).
#[derive(Serialize, Deserialize)]
pub struct StandaloneFeeItem {
    customer_id: String,
    external_customer_id: String,
    subscription_id: String,
    external_subscription_id: String,
    plan_code: String,
    currency: String,
    fee: FeeItemRecord,
}

impl Kind for StandaloneFee {
    const PREFIX: &'static str = "SFEE#";
    type Item = StandaloneFeeItem;

    fn key(&self) -> &str {
        &self.fee.lago_id
    }

    fn to_item(&self) -> StandaloneFeeItem {
        StandaloneFeeItem {
            customer_id: self.customer_id.clone(),
            external_customer_id: self.external_customer_id.clone(),
            subscription_id: self.subscription_id.clone(),
            external_subscription_id: self.external_subscription_id.clone(),
            plan_code: self.plan_code.clone(),
            currency: self.currency.code().to_owned(),
            fee: FeeItemRecord::from(&self.fee),
        }
    }

    fn from_item(item: StandaloneFeeItem) -> Result<Self, String> {
        Ok(StandaloneFee {
            fee: item.fee.into_domain()?,
            customer_id: item.customer_id,
            external_customer_id: item.external_customer_id,
            subscription_id: item.subscription_id,
            external_subscription_id: item.external_subscription_id,
            plan_code: item.plan_code,
            currency: Currency::parse(&item.currency).map_err(|e| e.to_string())?,
        })
    }
}

/// The invoice counters of one customer and of its organization, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvoiceCounters {
    /// The customer's last invoice sequential id (0: none yet).
    pub customer: u64,
    /// The organization's last invoice sequential id (0: none yet).
    pub organization: u64,
}

/// How an invoice write relates to what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceWrite {
    /// The invoice must not exist yet (claiming its slot).
    Create,
    /// The invoice is replaced over the version it was read at (`record.version - 1`).
    Replace,
}

/// Why a numbered write was refused.
#[derive(Debug, thiserror::Error)]
pub enum NumberedWriteError {
    /// The invoice exists already (a create) or changed since it was read (a replace).
    #[error("the invoice was written by someone else")]
    InvoiceTaken,
    /// A counter moved since it was read: read again and retry.
    #[error("an invoice counter moved")]
    CounterMoved,
    /// Anything else.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The cancellation code of each item of a cancelled transaction (`None` where it passed).
fn cancellation_codes(
    e: &aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
) -> Vec<Option<String>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e {
        TransactWriteItemsError::TransactionCanceledException(c) => c
            .cancellation_reasons()
            .iter()
            .map(|r| r.code().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

fn counter_key(customer_id: Option<&str>) -> String {
    match customer_id {
        Some(c) => format!("COUNTER#INVOICE#CUS#{c}"),
        None => "COUNTER#INVOICE#ORG".to_owned(),
    }
}

fn invoice_put(
    table: &str,
    item: HashMap<String, AttributeValue>,
    mode: InvoiceWrite,
    version: u64,
) -> Result<Put, StoreError> {
    let put = Put::builder().table_name(table).set_item(Some(item));
    let put = match mode {
        InvoiceWrite::Create => put.condition_expression("attribute_not_exists(pk)"),
        InvoiceWrite::Replace => put
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(
                ":v",
                AttributeValue::N(version.saturating_sub(1).to_string()),
            ),
    };
    put.build()
        .map_err(|e| StoreError::Unavailable(e.to_string()))
}

impl BillingStore {
    /// Writes an invoice: created (`Create`: it must not exist) or replaced over the version
    /// read (`Replace`). `AlreadyExists` when a create finds it taken, `Conflict` when a
    /// replace finds it changed.
    pub async fn write_invoice(
        &self,
        org_id: &str,
        record: &Record<Invoice>,
        mode: InvoiceWrite,
    ) -> Result<(), StoreError> {
        let item = mapping::to_item(org_id, record)?;
        let request = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item));
        let request = match mode {
            InvoiceWrite::Create => request.condition_expression("attribute_not_exists(pk)"),
            InvoiceWrite::Replace => request
                .condition_expression("attribute_exists(pk) AND version = :v")
                .expression_attribute_values(
                    ":v",
                    AttributeValue::N(record.version.saturating_sub(1).to_string()),
                ),
        };
        let result = request.send().await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(match mode {
                    InvoiceWrite::Create => StoreError::AlreadyExists,
                    InvoiceWrite::Replace => StoreError::Conflict,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Writes an invoice as [`BillingStore::write_invoice`] does and, in the same
    /// transaction, puts the domain events `events` of the change in the outbox of its
    /// external subscription id (see `billing_schedule::invoice_outbox`): the change and the
    /// record of what it owes the bus are written together or not at all.
    pub async fn write_invoice_with_events(
        &self,
        org_id: &str,
        record: &Record<Invoice>,
        mode: InvoiceWrite,
        events: &[String],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return self.write_invoice(org_id, record, mode).await;
        }
        let item = mapping::to_item(org_id, record)?;
        let items = vec![
            TransactWriteItem::builder()
                .put(invoice_put(self.table(), item, mode, record.version)?)
                .build(),
            super::billing_schedule::invoice_outbox(
                self.table(),
                org_id,
                &record.value.external_subscription_id,
                record.updated_at,
                events,
            )?,
        ];
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match super::plans::transaction_failures(&e) {
                Some(failed) if failed.first().copied().unwrap_or(false) => Err(match mode {
                    InvoiceWrite::Create => StoreError::AlreadyExists,
                    InvoiceWrite::Replace => StoreError::Conflict,
                }),
                Some(failed) if failed.iter().any(|f| *f) => Err(StoreError::Conflict),
                _ => Err(e.into()),
            },
        }
    }

    /// The last invoice sequential ids of a customer and of the organization.
    pub async fn invoice_counters(
        &self,
        org_id: &str,
        customer_id: &str,
    ) -> Result<InvoiceCounters, StoreError> {
        let mut values = [0u64; 2];
        for (i, key) in [counter_key(Some(customer_id)), counter_key(None)]
            .into_iter()
            .enumerate()
        {
            let out = self
                .client()
                .get_item()
                .table_name(self.table())
                .key("pk", s(org_pk(org_id)))
                .key("sk", s(key))
                .consistent_read(true)
                .send()
                .await?;
            values[i] = match out.item.as_ref().and_then(|i| i.get("value")) {
                None => 0,
                Some(v) => v
                    .as_n()
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| StoreError::Corrupt("invoice counter".into()))?,
            };
        }
        Ok(InvoiceCounters {
            customer: values[0],
            organization: values[1],
        })
    }

    /// Writes a finalized invoice numbered `read + 1` on both counters, in one transaction
    /// that also moves the counters from the values read: no gap, no duplicate. `events`
    /// (the change's domain events) go to the outbox in the same transaction, as in
    /// [`BillingStore::write_invoice_with_events`]. `credit_notes` are the credit notes the
    /// invoice spends, each replaced over the version it was read at: the balance moves with
    /// the finalization or not at all, and a note spent meanwhile refuses the write
    /// (`CounterMoved`: read again and retry).
    pub async fn write_numbered_invoice(
        &self,
        org_id: &str,
        record: &Record<Invoice>,
        mode: InvoiceWrite,
        read: InvoiceCounters,
        events: &[String],
        credit_notes: &[Record<CreditNote>],
    ) -> Result<(), NumberedWriteError> {
        let mut items = Vec::with_capacity(4 + credit_notes.len());
        for (key, current) in [
            (counter_key(Some(&record.value.customer_id)), read.customer),
            (counter_key(None), read.organization),
        ] {
            let update = Update::builder()
                .table_name(self.table())
                .key("pk", s(org_pk(org_id)))
                .key("sk", s(key))
                .update_expression("SET #v = :next")
                .expression_attribute_names("#v", "value")
                .expression_attribute_values(":next", AttributeValue::N((current + 1).to_string()));
            let update = if current == 0 {
                update.condition_expression("attribute_not_exists(#v)")
            } else {
                update
                    .condition_expression("#v = :current")
                    .expression_attribute_values(":current", AttributeValue::N(current.to_string()))
            };
            items.push(
                TransactWriteItem::builder()
                    .update(
                        update
                            .build()
                            .map_err(|e| StoreError::Unavailable(e.to_string()))?,
                    )
                    .build(),
            );
        }
        let item = mapping::to_item(org_id, record)?;
        items.push(
            TransactWriteItem::builder()
                .put(invoice_put(self.table(), item, mode, record.version)?)
                .build(),
        );
        if !events.is_empty() {
            items.push(super::billing_schedule::invoice_outbox(
                self.table(),
                org_id,
                &record.value.external_subscription_id,
                record.updated_at,
                events,
            )?);
        }
        for note in credit_notes {
            items.push(super::credit_notes::credit_note_put(
                self.table(),
                org_id,
                note,
            )?);
        }
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let codes = e
            .as_service_error()
            .map(cancellation_codes)
            .unwrap_or_default();
        let code = |i: usize| codes.get(i).and_then(|c| c.as_deref());
        if code(2) == Some("ConditionalCheckFailed") {
            return Err(NumberedWriteError::InvoiceTaken);
        }
        if codes.iter().any(|c| {
            matches!(
                c.as_deref(),
                Some("ConditionalCheckFailed" | "TransactionConflict")
            )
        }) {
            return Err(NumberedWriteError::CounterMoved);
        }
        Err(NumberedWriteError::Store(e.into()))
    }

    /// Takes the organization's numbering lease for `owner` until `now + lease_ms`, if it is
    /// free or expired. The lease only serializes numbering (sparing contention retries); the
    /// numbering transaction stays the guarantee of no gap and no duplicate.
    pub async fn try_lock_numbering(
        &self,
        org_id: &str,
        owner: &str,
        now: DateTime<Utc>,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let now_ms = now.timestamp_millis();
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(org_pk(org_id)))
            .item("sk", s("LOCK#INVOICE-NUMBERING"))
            .item("owner", s(owner))
            .item(
                "expires_ms",
                AttributeValue::N((now_ms + lease_ms).to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR expires_ms < :now")
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
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

    /// Releases the numbering lease if `owner` still holds it.
    pub async fn unlock_numbering(&self, org_id: &str, owner: &str) -> Result<(), StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s("LOCK#INVOICE-NUMBERING"))
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", s(owner))
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

    /// Every invoice of the organization (at most [`LIST_SCAN_MAX`]), oldest first.
    pub async fn invoices(&self, org_id: &str) -> Result<Vec<Record<Invoice>>, StoreError> {
        let mut out: Vec<Record<Invoice>> = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        while out.len() < LIST_SCAN_MAX {
            let page = self
                .client()
                .query()
                .table_name(self.table())
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(org_pk(org_id)))
                .expression_attribute_values(":prefix", s(Invoice::PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in page.items.unwrap_or_default() {
                out.push(mapping::from_item(item)?);
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        out.sort_by(|a, b| (a.created_at, &a.lago_id).cmp(&(b.created_at, &b.lago_id)));
        Ok(out)
    }

    /// Records that an invoice's creation events were published (so a redelivered unit of
    /// work republishes only what was never sent).
    pub async fn mark_invoice_published(
        &self,
        org_id: &str,
        invoice_id: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(format!("{}{invoice_id}", Invoice::PREFIX)))
            .update_expression("SET published = :t")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await?;
        Ok(())
    }

    /// Whether an invoice's creation events were published.
    pub async fn invoice_published(
        &self,
        org_id: &str,
        invoice_id: &str,
    ) -> Result<bool, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(format!("{}{invoice_id}", Invoice::PREFIX)))
            .projection_expression("published")
            .consistent_read(true)
            .send()
            .await?;
        Ok(out
            .item
            .and_then(|i| i.get("published").cloned())
            .and_then(|v| v.as_bool().ok().copied())
            .unwrap_or(false))
    }

    /// Stores a pointer from each fee to its invoice (idempotent: a fee's id names one invoice).
    pub async fn put_fee_pointers(
        &self,
        org_id: &str,
        invoice: &Invoice,
    ) -> Result<(), StoreError> {
        let requests: Vec<WriteRequest> = invoice
            .fees
            .iter()
            .map(|f| {
                let item = HashMap::from([
                    ("pk".to_owned(), s(org_pk(org_id))),
                    ("sk".to_owned(), s(format!("FEE#{}", f.lago_id))),
                    ("invoice_id".to_owned(), s(invoice.lago_id.clone())),
                ]);
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(|e| StoreError::Unavailable(e.to_string()))
            })
            .collect::<Result<_, _>>()?;
        // BatchWriteItem takes 25 requests; unprocessed ones are retried a bounded number of
        // times (R19).
        for chunk in requests.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk.to_vec();
            for _ in 0..8 {
                if pending.is_empty() {
                    break;
                }
                let out = self
                    .client()
                    .batch_write_item()
                    .request_items(self.table(), pending)
                    .send()
                    .await?;
                pending = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(self.table()))
                    .unwrap_or_default();
            }
            if !pending.is_empty() {
                return Err(StoreError::Unavailable(
                    "fee pointers left unprocessed".into(),
                ));
            }
        }
        Ok(())
    }

    /// The invoice holding fee `fee_id`, if the fee exists.
    pub async fn invoice_of_fee(
        &self,
        org_id: &str,
        fee_id: &str,
    ) -> Result<Record<Invoice>, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(format!("FEE#{fee_id}")))
            .consistent_read(true)
            .send()
            .await?;
        let invoice_id = out
            .item
            .and_then(|i| i.get("invoice_id").cloned())
            .and_then(|v| v.as_s().ok().cloned())
            .ok_or(StoreError::NotFound)?;
        self.get::<Invoice>(org_id, &invoice_id).await
    }
}
