//! One unit of the billing queue: everything due at `at` for one external subscription id.
//!
//! 1. The clock's transitions: a pending subscription starts on its day, a scheduled
//!    downgrade swaps plans at the period end, `ending_at` terminates. Written like any other
//!    subscription change (one transaction over the family head), with their
//!    `subscription.*` events in the external id's outbox; the events are then published and
//!    taken out of the outbox.
//! 2. Every invoice slot due at or before `at`, for each subscription of the family, in
//!    order. Each invoice is *claimed* by creating it under an id derived from its slot: if it
//!    exists, someone already closed that period, and it is only completed (fee pointers,
//!    events) if needed.
//! 3. Drafts whose grace period ended: refreshed from the usage, then finalized.
//! 4. The progress and the next due instant go back to the billing schedule.
//!
//! Before all of it, the invoice events the API's changes left in the external id's outbox
//! (a failed publish, a crashed request) are published: the billing clock is the outbox's
//! sweeper (see [`crate::invoice_events`]).
//!
//! Re-running a unit (redelivery, a second clock run, two workers) finds every claim taken
//! and changes nothing.

use billing::{
    catalog::{
        Record,
        subscription::{Subscription, SubscriptionStatus, pending_successor},
    },
    invoice::{
        Invoice, InvoiceState, PaymentStatus, Slot, SlotKind, Transition, activate, due_transition,
        end, issuing_date, next_transition_at, number_invoice, rotate,
    },
    invoice_number::draft_number,
    invoice_totals::{InvoiceKind, InvoiceStatus, status_on_creation},
};
use billing_aws::{
    StoreError,
    context::{PricedSubscription, SubscriptionContext},
    dynamo::{
        invoices::{InvoiceWrite, NumberedWriteError},
        subscriptions::SubscriptionWrite,
    },
};
use chrono::{DateTime, Days, Utc};
use std::collections::BTreeSet;

use crate::{
    Deps, InvoicingError,
    credit_terminated_subscription::credit_terminated_subscription,
    finalize_invoice::finalize_draft,
    invoice_events, invoice_id,
    price_slot::{Catalog, context_timezone, price_slot, timeline},
    spend_credit_notes::spend_credit_notes,
    subscription_events::{outbox_key, publish_pending, status_event},
};

/// What one unit did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closed {
    /// Invoices created by this run.
    pub created: Vec<String>,
    /// Invoices found already created (the slot was claimed before).
    pub already_claimed: usize,
    /// Drafts finalized.
    pub finalized: Vec<String>,
    /// Subscription transitions written.
    pub transitions: usize,
    /// When the external id is due next (`None`: nothing more).
    pub next_due: Option<DateTime<Utc>>,
}

/// How many times numbering is retried when other finalizations move the counters (R19).
pub const NUMBERING_RETRIES: usize = 200;

fn bump(r: &Record<Subscription>, value: Subscription, now: DateTime<Utc>) -> Record<Subscription> {
    Record {
        updated_at: now,
        version: r.version + 1,
        value,
        ..r.clone()
    }
}

/// What [`apply_transitions`] wrote.
#[derive(Debug, Default)]
struct Transitions {
    /// How many changes were written.
    written: usize,
    /// The family head version after the last one.
    head: Option<u64>,
    /// The outbox entries of their subscription events.
    events: Vec<String>,
}

/// Applies the transitions due at `at`. Each change carries its subscription events into the
/// outbox, in its own transaction: `subscription.started` for a pending subscription reaching
/// its start, `subscription.terminated` at `ending_at`, both for a downgrade's rotation (and
/// `subscription.canceled` for a pending downgrade dropped at `ending_at`).
async fn apply_transitions(
    deps: &Deps,
    org_id: &str,
    external_id: &str,
    catalog: &Catalog,
    at: DateTime<Utc>,
) -> Result<Transitions, InvoicingError> {
    let mut out = Transitions::default();
    for _ in 0..8 {
        let family = deps.store.subscription_family(org_id, external_id).await?;
        let Some(first) = family.subscriptions.first() else {
            return Ok(out);
        };
        let timezone = match deps
            .store
            .get::<billing::catalog::customer::Customer>(org_id, first.value.external_customer_id())
            .await
        {
            Ok(c) => c.value.applicable_timezone(catalog.org.settings.timezone),
            Err(StoreError::NotFound) => catalog.org.settings.timezone,
            Err(e) => return Err(e.into()),
        };
        let values: Vec<Subscription> = family
            .subscriptions
            .iter()
            .map(|r| r.value.clone())
            .collect();
        let mut writes: Vec<Record<Subscription>> = Vec::new();
        for record in &family.subscriptions {
            let s = &record.value;
            match due_transition(s, timezone, at)? {
                None => continue,
                Some(Transition::Activate) => writes.push(bump(record, activate(s)?, at)),
                Some(Transition::Rotate(when)) => {
                    let Some(next) = family
                        .subscriptions
                        .iter()
                        .find(|r| Some(r.lago_id.as_str()) == s.next_subscription_id())
                    else {
                        return Err(InvoicingError::Corrupt(format!(
                            "subscription {} names a missing successor",
                            record.lago_id
                        )));
                    };
                    let (old, new) = rotate(s, &next.value, when)?;
                    writes.push(bump(record, old, at));
                    writes.push(bump(next, new, at));
                }
                Some(Transition::End(when)) => {
                    if let Some(p) = pending_successor(&values, s)
                        && let Some(pr) = family
                            .subscriptions
                            .iter()
                            .find(|r| r.lago_id == p.lago_id())
                    {
                        let canceled = p
                            .cancel(when)
                            .map_err(|e| InvoicingError::Corrupt(e.to_string()))?;
                        writes.push(bump(pr, canceled, at));
                    }
                    writes.push(bump(record, end(s, when)?, at));
                }
            }
            break;
        }
        if writes.is_empty() {
            return Ok(out);
        }
        let events: Vec<String> = writes
            .iter()
            .filter_map(|w| {
                let before = family
                    .subscriptions
                    .iter()
                    .find(|r| r.lago_id == w.lago_id)
                    .map(|r| r.value.status());
                status_event(before, w.value.status()).map(|t| outbox_key(&w.lago_id, t))
            })
            .collect();
        let change = SubscriptionWrite {
            external_id,
            read_version: family.version,
            subscriptions: writes.iter().collect(),
            plan: None,
            customer: None,
            pending_events: events.clone(),
        };
        match deps.store.write_subscriptions(org_id, &change).await {
            Ok(()) => {
                out.written += 1;
                out.head = Some(family.version + 1);
                out.events.extend(events);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(InvoicingError::Busy("subscription transitions"))
}

/// Closes everything due at `at` for `external_id` in `org_id`.
#[tracing::instrument(skip_all, fields(org_id = %org_id, external_subscription_id = %external_id, at = %at))]
pub async fn close_subscription(
    deps: &Deps,
    org_id: &str,
    external_id: &str,
    at: DateTime<Utc>,
) -> Result<Closed, InvoicingError> {
    let catalog = Catalog::load(&deps.store, org_id).await?;
    let mut progress = deps.store.billing_progress(org_id, external_id).await?;
    if !progress.invoice_events.is_empty() {
        let entries: Vec<String> = progress.invoice_events.iter().cloned().collect();
        let published =
            invoice_events::publish_outbox(deps, &catalog, None, external_id, &entries).await?;
        for e in &published {
            progress.invoice_events.remove(e);
        }
    }
    let transitions = apply_transitions(deps, org_id, external_id, &catalog, at).await?;
    if let Some(h) = transitions.head {
        progress.head_version = h;
    }
    // The subscription events of this run's changes, and of a run that crashed after its
    // change and before publishing them.
    let pending: BTreeSet<String> = std::mem::take(&mut progress.pending_events)
        .into_iter()
        .chain(transitions.events)
        .collect();
    if !pending.is_empty() {
        let family = deps.store.subscription_family(org_id, external_id).await?;
        let pending: Vec<String> = pending.into_iter().collect();
        publish_pending(
            &deps.store,
            deps.bus.as_ref(),
            &catalog.org,
            &catalog.taxes,
            external_id,
            &family.subscriptions,
            &pending,
            at,
        )
        .await?;
    }
    let transitions = transitions.written;
    let context = SubscriptionContext::load(&deps.store, &catalog.org, external_id).await?;
    let mut out = Closed {
        transitions,
        ..Closed::default()
    };
    for ps in &context.subscriptions {
        let sub_id = ps.subscription.lago_id.clone();
        // The termination instant, when it is due and its credit note may be owed.
        let termination = ps
            .subscription
            .value
            .terminated_at()
            .filter(|t| *t <= at)
            .map(|t| {
                Slot {
                    at: t,
                    kind: SlotKind::Termination,
                }
                .key()
            });
        let line = timeline(ps);
        let slots = line.slots(progress.cursors.get(&sub_id).map(String::as_str), at)?;
        for slot in slots {
            if slot.kind == SlotKind::Termination {
                // The credit note before the termination invoice, which may spend it (the
                // invoices billing the credited fee were claimed by the earlier slots).
                credit_terminated_subscription(deps, &catalog, ps).await?;
            }
            let prior = progress.fee_billed.get(&sub_id).copied().unwrap_or(false);
            let invoice =
                claim_slot(deps, &catalog, &context, ps, slot, prior, at, &mut out).await?;
            progress.cursors.insert(sub_id.clone(), slot.key());
            if invoice.has_subscription_fee {
                progress.fee_billed.insert(sub_id.clone(), true);
            }
            if invoice.status == InvoiceState::Draft
                && let Some(when) = invoice.finalize_at
            {
                progress.drafts.insert(invoice.lago_id.clone(), when);
            }
        }
        // Without a termination invoice (`on_termination_invoice: skip`) there is no slot:
        // the credit note is made here, and the cursor marks the termination as closed so
        // that it is not looked for again.
        if let Some(key) = termination
            && progress
                .cursors
                .get(&sub_id)
                .is_none_or(|c| c.as_str() < key.as_str())
        {
            credit_terminated_subscription(deps, &catalog, ps).await?;
            progress.cursors.insert(sub_id.clone(), key);
        }
    }
    let due_drafts: Vec<String> = progress
        .drafts
        .iter()
        .filter(|(_, when)| **when <= at)
        .map(|(id, _)| id.clone())
        .collect();
    for id in due_drafts {
        match finalize_draft(deps, &catalog, &id, at, true).await {
            Ok(r) => out.finalized.push(r.lago_id),
            Err(InvoicingError::NotAllowed(_) | InvoicingError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        progress.drafts.remove(&id);
    }
    // The next instant anything is due: a transition, a slot, a draft's grace period end.
    let family = deps.store.subscription_family(org_id, external_id).await?;
    let timezone = context_timezone(&context, &catalog.org);
    let mut next: Option<DateTime<Utc>> = progress.drafts.values().min().copied();
    let mut consider = |t: Option<DateTime<Utc>>| {
        if let Some(t) = t {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    };
    for r in &family.subscriptions {
        consider(next_transition_at(&r.value, timezone)?);
    }
    for ps in &context.subscriptions {
        let cursor = progress
            .cursors
            .get(&ps.subscription.lago_id)
            .map(String::as_str);
        consider(timeline(ps).next_slot(cursor)?.map(|s| s.at));
    }
    // A subscription whose state moved since the context was read is looked at again now.
    if family.subscriptions.iter().any(|r| {
        r.value.status() == SubscriptionStatus::Active
            && !context
                .subscriptions
                .iter()
                .any(|p| p.subscription.lago_id == r.lago_id)
    }) {
        consider(Some(at));
    }
    out.next_due = next;
    // This run's own finalizations put events in the outbox (and published them): when the
    // outbox is empty now, nothing is owed and the item may leave the due index; otherwise
    // the sequence read first makes the save conflict and the item stays due.
    let now_progress = deps.store.billing_progress(org_id, external_id).await?;
    if now_progress.invoice_events.is_empty() && progress.invoice_events.is_empty() {
        progress.outbox_seq = now_progress.outbox_seq;
    }
    match deps
        .store
        .save_billing_progress(org_id, external_id, &progress, next)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => {
            deps.store
                .save_billing_cursors(org_id, external_id, &progress)
                .await?;
        }
        Err(e) => return Err(e.into()),
    }
    Ok(out)
}

/// Creates `slot`'s invoice unless it exists; returns the invoice either way.
#[allow(clippy::too_many_arguments)]
async fn claim_slot(
    deps: &Deps,
    catalog: &Catalog,
    context: &SubscriptionContext,
    ps: &PricedSubscription,
    slot: Slot,
    prior_fee: bool,
    at: DateTime<Utc>,
    out: &mut Closed,
) -> Result<Invoice, InvoicingError> {
    let org_id = catalog.org.id.as_str();
    let id = invoice_id(org_id, &ps.subscription.lago_id, &slot.key());
    match deps.store.get::<Invoice>(org_id, &id).await {
        Ok(existing) => {
            out.already_claimed += 1;
            complete(deps, catalog, context, &existing).await?;
            return Ok(existing.value);
        }
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    let priced = price_slot(deps, catalog, context, ps, slot, &id, prior_fee, at).await?;
    let customer = context.customer.as_ref();
    let customer_value = customer.map(|c| &c.value);
    let tz = ps.timezone;
    let grace = catalog.grace_days(customer_value);
    let c = &priced.computed;
    let status = status_on_creation(
        InvoiceKind::Subscription,
        grace,
        c.amounts.fees_amount_cents,
        catalog.finalize_zero_amount(customer_value),
    );
    let s = &ps.subscription.value;
    let b = &priced.boundaries;
    let mut invoice = Invoice {
        lago_id: id.clone(),
        slot: slot.key(),
        customer_id: s.customer_id().to_owned(),
        external_customer_id: s.external_customer_id().to_owned(),
        subscription_id: ps.subscription.lago_id.clone(),
        external_subscription_id: s.external_id().to_owned(),
        plan_id: ps.plan.lago_id.clone(),
        plan_code: s.plan_code().to_owned(),
        invoicing_reason: slot.reason(),
        billing_at: slot.at,
        status: InvoiceState::Draft,
        payment_status: PaymentStatus::Pending,
        currency: ps.plan.value.currency(),
        issuing_date: issuing_date(slot.at, tz, grace),
        net_payment_term: catalog.net_payment_term(customer_value),
        finalize_at: None,
        sequential_id: None,
        organization_sequential_id: None,
        number: draft_number(&catalog.org.settings.document_number_prefix),
        from_datetime: c
            .fees
            .iter()
            .find(|f| f.fee_type() == billing::invoice_totals::FeeType::Subscription)
            .map_or(b.from_datetime(), |f| f.from_datetime),
        to_datetime: b.to_datetime(),
        charges_from_datetime: b.charges_from_datetime(),
        charges_to_datetime: b.charges_to_datetime(),
        fees: c.fees.clone(),
        amounts: c.amounts,
        taxes_rate: c.taxes_rate,
        applied_taxes: c.applied_taxes.clone(),
        metadata: Vec::new(),
        has_subscription_fee: c.has_subscription_fee,
        prior_subscription_fee: prior_fee,
        file_key: None,
        finalized_at: None,
        voided_at: None,
        credits: Vec::new(),
    };
    if status == InvoiceStatus::Draft {
        invoice.finalize_at = Some(
            slot.at
                .checked_add_days(Days::new(u64::from(grace)))
                .unwrap_or(slot.at),
        );
    }
    match create_invoice(deps, catalog, customer, invoice, status, at).await? {
        Created::Written(record) => {
            out.created.push(id.clone());
            complete(deps, catalog, context, &record).await?;
            Ok(record.value)
        }
        Created::Existing(existing) => {
            // Another worker claimed the slot between the read and the write.
            out.already_claimed += 1;
            complete(deps, catalog, context, &existing).await?;
            Ok(existing.value)
        }
    }
}

/// What [`create_invoice`] found.
#[derive(Debug)]
pub(crate) enum Created {
    /// The invoice was written by this call.
    Written(Record<Invoice>),
    /// An invoice with its id already existed (it is returned as stored).
    Existing(Record<Invoice>),
}

/// Writes a new invoice under its (derived) id, once: a draft or a closed invoice as it is,
/// a finalized one numbered inside the organization's numbering lease, in the transaction
/// that moves the counters. `now` stamps the record and the lease.
pub(crate) async fn create_invoice(
    deps: &Deps,
    catalog: &Catalog,
    customer: Option<&Record<billing::catalog::customer::Customer>>,
    mut invoice: Invoice,
    status: InvoiceStatus,
    now: DateTime<Utc>,
) -> Result<Created, InvoicingError> {
    let org_id = catalog.org.id.as_str();
    let id = invoice.lago_id.clone();
    let mut record = Record {
        lago_id: id.clone(),
        created_at: now,
        updated_at: now,
        sequential_id: None,
        version: 1,
        value: invoice.clone(),
    };
    let written = match status {
        InvoiceStatus::Draft => deps
            .store
            .write_invoice(org_id, &record, InvoiceWrite::Create)
            .await
            .map(|()| true),
        InvoiceStatus::Closed => {
            invoice.status = InvoiceState::Closed;
            invoice.payment_status = PaymentStatus::Succeeded;
            record.value = invoice;
            deps.store
                .write_invoice(org_id, &record, InvoiceWrite::Create)
                .await
                .map(|()| true)
        }
        InvoiceStatus::Finalized => {
            let numbering = catalog.numbering(customer);
            let mut outcome = Err(StoreError::Conflict);
            let owner = crate::lock_numbering(deps, org_id).await?;
            for _ in 0..NUMBERING_RETRIES {
                let counters = match deps
                    .store
                    .invoice_counters(org_id, &invoice.customer_id)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        deps.store.unlock_numbering(org_id, &owner).await?;
                        return Err(e.into());
                    }
                };
                let mut numbered = invoice.clone();
                let notes = match spend_credit_notes(deps, org_id, &mut numbered, now).await {
                    Ok(n) => n,
                    Err(e) => {
                        deps.store.unlock_numbering(org_id, &owner).await?;
                        return Err(e);
                    }
                };
                number_invoice(
                    &mut numbered,
                    &numbering,
                    counters.customer + 1,
                    counters.organization + 1,
                    now,
                );
                record.value = numbered;
                match deps
                    .store
                    .write_numbered_invoice(
                        org_id,
                        &record,
                        InvoiceWrite::Create,
                        counters,
                        &[],
                        &notes,
                    )
                    .await
                {
                    Ok(()) => {
                        outcome = Ok(true);
                        break;
                    }
                    Err(NumberedWriteError::InvoiceTaken) => {
                        outcome = Err(StoreError::AlreadyExists);
                        break;
                    }
                    Err(NumberedWriteError::CounterMoved) => continue,
                    Err(NumberedWriteError::Store(e)) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            deps.store.unlock_numbering(org_id, &owner).await?;
            outcome
        }
    };
    match written {
        Ok(_) => Ok(Created::Written(record)),
        Err(StoreError::AlreadyExists) => Ok(Created::Existing(
            deps.store.get::<Invoice>(org_id, &id).await?,
        )),
        Err(StoreError::Conflict) => Err(InvoicingError::Busy("invoice numbering")),
        Err(e) => Err(e.into()),
    }
}

/// The steps after a claim that may be re-run: fee pointers, then the creation events, once.
pub(crate) async fn complete(
    deps: &Deps,
    catalog: &Catalog,
    context: &SubscriptionContext,
    record: &Record<Invoice>,
) -> Result<(), InvoicingError> {
    let org_id = catalog.org.id.as_str();
    if deps
        .store
        .invoice_published(org_id, &record.lago_id)
        .await?
    {
        return Ok(());
    }
    deps.store.put_fee_pointers(org_id, &record.value).await?;
    let kind = match record.value.status {
        InvoiceState::Draft => Some("invoice.drafted"),
        InvoiceState::Finalized => Some("invoice.created"),
        _ => None,
    };
    if let Some(kind) = kind {
        let priced = context
            .subscriptions
            .iter()
            .find(|p| p.subscription.lago_id == record.value.subscription_id);
        let subscriptions = match priced {
            Some(p) => vec![invoice_events::subscription_object(
                &p.subscription,
                &p.plan.value,
                p.timezone,
                record.updated_at,
            )?],
            None => {
                invoice_events::invoice_subscriptions(
                    &deps.store,
                    catalog,
                    context.customer.as_ref(),
                    &record.value,
                    record.updated_at,
                )
                .await?
            }
        };
        let event = invoice_events::invoice_event(
            catalog,
            context.customer.as_ref(),
            record,
            subscriptions,
            kind,
        );
        invoice_events::publish(deps, vec![event]).await?;
    }
    deps.store
        .mark_invoice_published(org_id, &record.lago_id)
        .await?;
    Ok(())
}
