//! Billing one event on a pay-in-advance charge (SEMANTICS §4.9): its instant fee becomes an
//! invoice of its own (an invoiceable charge), or a standalone fee (`invoiceable: false`).
//!
//! The caller (the aggregate worker) prices the fee against the usage *before* the event and
//! calls this before it folds the event into the stored usage. Every id here derives from
//! (organization, subscription, charge, transaction id) and every write is a conditional
//! create, so a redelivered event, or one whose worker crashed after this and before the usage
//! write, finds its fee already there and bills nothing twice.
//!
//! Lago's shape is kept: the invoice is a `subscription` invoice whose billing period says
//! `invoicing_reason: in_advance_charge`, finalized at once (no grace period), numbered like
//! any finalized invoice, taxed at fee level; `invoice.created` is published. A standalone fee
//! publishes `fee.created`.

use billing::{
    aggregation::charge_usage::GroupKey,
    aggregation::filters::Bucket,
    catalog::{metric::BillableMetric, plan::Charge},
    charge_model::fee::ChargeFee,
    invoice::{
        Fee, Invoice, InvoiceState, InvoicingReason, PaymentStatus, StandaloneFee, charge_fee_item,
        issuing_date, price_fees,
    },
    invoice_number::draft_number,
    invoice_totals::{InvoiceKind, status_on_creation},
};
use billing_aws::{
    StoreError,
    bus::DomainEvent,
    context::{PricedSubscription, SubscriptionContext},
};
use chrono::{DateTime, Utc};
use lago::dto::invoice::standalone_fee_object;
use rust_decimal::Decimal;

use crate::{
    Deps, InvoicingError,
    close_subscription::{Created, complete, create_invoice},
    derived_uuid, invoice_events, invoice_id,
    price_slot::Catalog,
};

/// One event's instant fee on one pay-in-advance charge, priced by the caller.
#[derive(Debug, Clone, Copy)]
pub struct InstantCharge<'a> {
    /// The subscription the event belongs to.
    pub subscription: &'a PricedSubscription,
    /// The pay-in-advance charge.
    pub charge: &'a Charge,
    /// Its metric.
    pub metric: &'a BillableMetric,
    /// The filter bucket the event is billed in.
    pub bucket: Bucket,
    /// The event's pricing group.
    pub group: &'a GroupKey,
    /// The fee: the event's units, one event, `price(with) − price(without)`.
    pub fee: &'a ChargeFee,
    /// The event's transaction id.
    pub transaction_id: &'a str,
    /// The event's timestamp (the invoice's billing date).
    pub event_at: DateTime<Utc>,
    /// The charges period the event is in.
    pub charges_from: DateTime<Utc>,
    /// The charges period the event is in.
    pub charges_to: DateTime<Utc>,
}

/// What was billed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstantBilled {
    /// An invoice (its Lago id); `created` is false when an earlier delivery created it.
    Invoice {
        /// The invoice's Lago id.
        lago_id: String,
        /// Whether this call created it.
        created: bool,
    },
    /// A standalone fee (its Lago id).
    Fee {
        /// The fee's Lago id.
        lago_id: String,
        /// Whether this call created it.
        created: bool,
    },
}

/// The slot key naming the instant invoice of one event on one charge.
pub fn instant_slot_key(charge_id: &str, transaction_id: &str) -> String {
    format!("in_advance_charge#{charge_id}#{transaction_id}")
}

/// The Lago id of the instant fee of event `transaction_id` on `charge_id`.
pub fn instant_fee_id(
    org_id: &str,
    subscription_id: &str,
    charge_id: &str,
    transaction_id: &str,
) -> String {
    derived_uuid(&[
        "instant_fee",
        org_id,
        subscription_id,
        charge_id,
        transaction_id,
    ])
}

/// Bills `instant` once: an invoice with its fee (invoiceable charge) or a standalone fee.
#[tracing::instrument(skip_all, fields(transaction_id = %instant.transaction_id, charge = %instant.charge.lago_id()))]
pub async fn bill_instant_fee(
    deps: &Deps,
    catalog: &Catalog,
    context: &SubscriptionContext,
    instant: InstantCharge<'_>,
    now: DateTime<Utc>,
) -> Result<InstantBilled, InvoicingError> {
    let org_id = catalog.org.id.as_str();
    let ps = instant.subscription;
    let s = &ps.subscription.value;
    let charge = instant.charge;
    let currency = ps.plan.value.currency();
    let fee_id = instant_fee_id(
        org_id,
        &ps.subscription.lago_id,
        charge.lago_id(),
        instant.transaction_id,
    );
    let units = instant.fee.units();
    let fee = Fee {
        lago_id: fee_id.clone(),
        item: charge_fee_item(charge, instant.metric, instant.bucket, instant.group),
        amount_cents: instant.fee.amount().cents(),
        precise_amount_cents: instant.fee.precise_amount_cents(),
        units,
        total_aggregated_units: units,
        events_count: instant.fee.events_count(),
        precise_unit_amount: instant.fee.precise_unit_amount(),
        taxes_amount_cents: 0,
        taxes_precise_amount_cents: Decimal::ZERO,
        taxes_rate: Decimal::ZERO,
        applied_taxes: Vec::new(),
        precise_coupons_amount_cents: Decimal::ZERO,
        from_datetime: instant.charges_from,
        to_datetime: instant.charges_to,
        created_at: now,
        pay_in_advance: true,
        invoiceable: charge.invoiceable(),
        event_transaction_id: Some(instant.transaction_id.to_owned()),
    };
    let customer = context.customer.as_ref();
    let customer_value = customer.map(|c| &c.value);
    let taxes = catalog.fee_taxes(charge.tax_codes(), &ps.plan.value, customer_value);
    let computed = price_fees(vec![fee], &[taxes], currency, ps.plan.value.code(), true)?;

    if !charge.invoiceable() {
        let Some(fee) = computed.fees.into_iter().next() else {
            return Err(InvoicingError::Corrupt("an instant fee was lost".into()));
        };
        let standalone = StandaloneFee {
            fee,
            customer_id: s.customer_id().to_owned(),
            external_customer_id: s.external_customer_id().to_owned(),
            subscription_id: ps.subscription.lago_id.clone(),
            external_subscription_id: s.external_id().to_owned(),
            plan_code: s.plan_code().to_owned(),
            currency,
        };
        let record = billing::catalog::Record {
            lago_id: fee_id.clone(),
            created_at: now,
            updated_at: now,
            sequential_id: None,
            version: 1,
            value: standalone,
        };
        let created = match deps.store.create(org_id, &record).await {
            Ok(()) => true,
            Err(StoreError::AlreadyExists) => false,
            Err(e) => return Err(e.into()),
        };
        let stored = if created {
            record
        } else {
            deps.store.get::<StandaloneFee>(org_id, &fee_id).await?
        };
        // Published after every write that may have been the first: a crash between the
        // write and the publication is repaired by the redelivery; the unique key lets the
        // receiver drop a second copy.
        let event = DomainEvent {
            organization_id: org_id.to_owned(),
            webhook_type: "fee.created".to_owned(),
            object_type: "fee".to_owned(),
            object: standalone_fee_object(&stored.value),
            unique_key: derived_uuid(&["event", &fee_id, "fee.created"]),
            object_key: None,
        };
        invoice_events::publish(deps, vec![event]).await?;
        return Ok(InstantBilled::Fee {
            lago_id: fee_id,
            created,
        });
    }

    let slot = instant_slot_key(charge.lago_id(), instant.transaction_id);
    let id = invoice_id(org_id, &ps.subscription.lago_id, &slot);
    match deps.store.get::<Invoice>(org_id, &id).await {
        Ok(existing) => {
            complete(deps, catalog, context, &existing).await?;
            return Ok(InstantBilled::Invoice {
                lago_id: id,
                created: false,
            });
        }
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    // Pay-in-advance charge invoices skip the grace period (SEMANTICS §8.7).
    let status = status_on_creation(
        InvoiceKind::AdvanceCharges,
        0,
        computed.amounts.fees_amount_cents,
        catalog.finalize_zero_amount(customer_value),
    );
    let invoice = Invoice {
        lago_id: id.clone(),
        slot,
        customer_id: s.customer_id().to_owned(),
        external_customer_id: s.external_customer_id().to_owned(),
        subscription_id: ps.subscription.lago_id.clone(),
        external_subscription_id: s.external_id().to_owned(),
        plan_id: ps.plan.lago_id.clone(),
        plan_code: s.plan_code().to_owned(),
        invoicing_reason: InvoicingReason::InAdvanceCharge,
        billing_at: instant.event_at,
        status: InvoiceState::Draft,
        payment_status: PaymentStatus::Pending,
        currency,
        issuing_date: issuing_date(instant.event_at, ps.timezone, 0),
        net_payment_term: catalog.net_payment_term(customer_value),
        finalize_at: None,
        sequential_id: None,
        organization_sequential_id: None,
        number: draft_number(&catalog.org.settings.document_number_prefix),
        from_datetime: instant.charges_from,
        to_datetime: instant.charges_to,
        charges_from_datetime: instant.charges_from,
        charges_to_datetime: instant.charges_to,
        fees: computed.fees,
        amounts: computed.amounts,
        taxes_rate: computed.taxes_rate,
        applied_taxes: computed.applied_taxes,
        metadata: Vec::new(),
        has_subscription_fee: false,
        prior_subscription_fee: false,
        file_key: None,
        finalized_at: None,
        voided_at: None,
        credits: Vec::new(),
    };
    let (record, created) =
        match create_invoice(deps, catalog, customer, invoice, status, now).await? {
            Created::Written(r) => (r, true),
            Created::Existing(r) => (r, false),
        };
    complete(deps, catalog, context, &record).await?;
    Ok(InstantBilled::Invoice {
        lago_id: id,
        created,
    })
}
