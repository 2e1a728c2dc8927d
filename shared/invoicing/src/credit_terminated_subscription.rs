//! The automatic credit note of a terminated pay-in-advance plan (SEMANTICS §7, "Termination
//! of a pay-in-advance plan"): the unused days of the last subscription fee, credited to the
//! customer, who spends them on the next invoices (SEMANTICS §8.5).
//!
//! Terminations happen in the API (`DELETE /subscriptions/{id}`, an upgrade) and in the clock
//! (`ending_at`); all of them are then closed by the billing run of the external id, which
//! calls this before the subscription's termination slot (or after its slots, when it has no
//! termination invoice), once the invoices of its earlier slots are claimed. The note's Lago id derives from the
//! subscription, and creating it is a conditional write: a redelivered unit of work, a second
//! clock run or two workers make one note. Its `credit_note.created` event is put in the
//! invoice outbox in the same transaction.
//!
//! `on_termination_credit_note`: `skip` makes no note; `credit` (the default) an available
//! credit. `refund` and `offset` need payments, which do not exist yet: they make a credit.

use billing::{
    catalog::{
        Record,
        subscription::{OnTerminationCreditNote, SubscriptionStatus},
    },
    credit_note::{TerminationNoteIds, termination_credit_note},
    invoice::{FeeItem, Invoice, InvoiceState, Slot, SlotKind, terminated_by},
    money::Money,
    period::{PlanChange, local_date},
    subscription_fee::termination_credit,
};
use billing_aws::{StoreError, context::PricedSubscription};
use chrono::{DateTime, Utc};

use crate::{
    Deps, InvoicingError, credit_note_events, derived_uuid, invoice_events, invoice_id,
    price_slot::{Catalog, timeline},
};

/// How many of the subscription's latest invoices are searched for its last subscription
/// fee (R19). A pay-in-advance fee is on the invoice of the period start, or of the trial's
/// end: the latest one or two.
const FEE_SEARCH_MAX: usize = 3;

/// The Lago id of the termination credit note of subscription `subscription_id`.
pub fn termination_credit_note_id(org_id: &str, subscription_id: &str) -> String {
    derived_uuid(&["credit_note", "termination", org_id, subscription_id])
}

/// What [`credit_terminated_subscription`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminationCredit {
    /// Nothing to credit (not terminated, paid in arrears, `skip`, a downgrade at the period
    /// end, no finalized fee, nothing left unused).
    None,
    /// The note was created by this call.
    Created(String),
    /// The note existed already (an earlier run created it).
    Existing(String),
}

/// Credits the unused days of `ps`, a terminated subscription, once.
#[tracing::instrument(skip_all, fields(subscription_id = %ps.subscription.lago_id))]
pub async fn credit_terminated_subscription(
    deps: &Deps,
    catalog: &Catalog,
    ps: &PricedSubscription,
) -> Result<TerminationCredit, InvoicingError> {
    let org_id = catalog.org.id.as_str();
    let s = &ps.subscription.value;
    let Some(terminated_at) = s.terminated_at() else {
        return Ok(TerminationCredit::None);
    };
    if s.status() != SubscriptionStatus::Terminated
        || !ps.plan.value.pay_in_advance()
        || s.on_termination_credit_note() == Some(OnTerminationCreditNote::Skip)
    {
        return Ok(TerminationCredit::None);
    }
    let change = terminated_by(s);
    if change == Some(PlanChange::Downgrade) {
        // A downgrade swaps plans at the period end: the old plan was used in full.
        return Ok(TerminationCredit::None);
    }
    let id = termination_credit_note_id(org_id, &ps.subscription.lago_id);
    match deps.store.credit_note(org_id, &id).await {
        Ok(_) => return Ok(TerminationCredit::Existing(id)),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    let Some((invoice, fee_index)) = last_subscription_fee(deps, org_id, ps, terminated_at).await?
    else {
        return Ok(TerminationCredit::None);
    };
    let Some(fee) = invoice.value.fees.get(fee_index) else {
        return Ok(TerminationCredit::None);
    };
    let currency = invoice.value.currency;
    let plan_amount = match fee.item {
        FeeItem::Subscription {
            plan_amount_cents, ..
        } => plan_amount_cents,
        FeeItem::Charge { .. } => ps.plan.value.amount_cents(),
    };
    let customer_notes = deps
        .store
        .customer_credit_notes(org_id, &invoice.value.customer_id)
        .await?;
    let already: i64 = customer_notes
        .iter()
        .filter(|n| n.value.invoice_id == invoice.lago_id)
        .map(|n| n.value.credited_on_fee(&fee.lago_id))
        .sum();
    let on_invoice = customer_notes
        .iter()
        .filter(|n| n.value.invoice_id == invoice.lago_id)
        .count() as u64;
    let period = ps.dates.invoice_boundaries(terminated_at)?.fee_period();
    let money = |c: i64| Money::new(c, currency);
    let credit = termination_credit(
        money(plan_amount),
        money(fee.amount_cents),
        period,
        terminated_at,
        ps.timezone,
        change == Some(PlanChange::Upgrade),
        money(already),
        fee.taxes_rate,
    )
    .map_err(|e| InvoicingError::Corrupt(format!("termination credit: {e}")))?;
    let ids = TerminationNoteIds {
        item_id: derived_uuid(&["credit_note_item", &id, &fee.lago_id]),
        tax_ids: fee
            .applied_taxes
            .iter()
            .map(|t| derived_uuid(&["credit_note_tax", &id, &t.tax.code]))
            .collect(),
        sequential_id: on_invoice + 1,
        issuing_date: local_date(terminated_at, ps.timezone),
    };
    let note = termination_credit_note(&invoice.value, fee, &credit, ids)
        .map_err(|e| InvoicingError::Corrupt(format!("termination credit note: {e}")))?;
    let Some(note) = note else {
        return Ok(TerminationCredit::None);
    };
    let record = Record {
        lago_id: id.clone(),
        // Stamped with the termination, whenever the run that writes it happens: every
        // attempt writes the same note.
        created_at: terminated_at,
        updated_at: terminated_at,
        sequential_id: Some(note.sequential_id),
        version: 1,
        value: note,
    };
    let entry = credit_note_events::outbox_entry(&id);
    match deps
        .store
        .create_credit_note(org_id, &record, std::slice::from_ref(&entry))
        .await
    {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => return Ok(TerminationCredit::Existing(id)),
        Err(e) => return Err(e.into()),
    }
    invoice_events::publish_outbox(deps, catalog, None, s.external_id(), &[entry]).await?;
    Ok(TerminationCredit::Created(id))
}

/// The latest finalized invoice of `ps` holding a subscription fee, and that fee's index,
/// among the invoices of its slots up to `terminated_at` (the termination's own excluded).
async fn last_subscription_fee(
    deps: &Deps,
    org_id: &str,
    ps: &PricedSubscription,
    terminated_at: DateTime<Utc>,
) -> Result<Option<(Record<Invoice>, usize)>, InvoicingError> {
    let slots: Vec<Slot> = timeline(ps).slots(None, terminated_at)?;
    let candidates = slots
        .iter()
        .rev()
        .filter(|slot| slot.kind != SlotKind::Termination)
        .take(FEE_SEARCH_MAX);
    for slot in candidates {
        let id = invoice_id(org_id, &ps.subscription.lago_id, &slot.key());
        let invoice = match deps.store.get::<Invoice>(org_id, &id).await {
            Ok(i) => i,
            Err(StoreError::NotFound) => continue,
            Err(e) => return Err(e.into()),
        };
        let fee = invoice
            .value
            .fees
            .iter()
            .rposition(|f| matches!(f.item, FeeItem::Subscription { .. }));
        if let Some(fee) = fee {
            // Only a finalized invoice can be credited; a draft's fee is still open.
            if invoice.value.status != InvoiceState::Finalized {
                return Ok(None);
            }
            return Ok(Some((invoice, fee)));
        }
    }
    Ok(None)
}
