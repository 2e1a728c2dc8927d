//! Finalizing a draft (`PUT /invoices/{lago_id}/finalize`, or the clock when the grace period
//! ends): refreshed from the usage, then numbered in the transaction that moves the counters,
//! spends the customer's credit notes ([`crate::spend_credit_notes`]) and puts
//! `invoice.created` in the outbox (see [`crate::invoice_events`]).

use billing::{
    catalog::Record,
    invoice::{Invoice, InvoiceState, PaymentStatus, number_invoice},
};
use billing_aws::{
    StoreError,
    dynamo::invoices::{InvoiceWrite, NumberedWriteError},
};
use chrono::{DateTime, Utc};

use crate::{
    Deps, InvoicingError, close_subscription::NUMBERING_RETRIES, invoice_events,
    price_slot::Catalog, refresh_invoice::recompute, spend_credit_notes::spend_credit_notes,
};

/// Finalizes draft `invoice_id`: recomputed first when `refresh`, then numbered (or closed,
/// for a zero amount the customer does not want finalized). `NotFound` unless it is a draft
/// (as lago-api, which looks it up among drafts).
pub(crate) async fn finalize_draft(
    deps: &Deps,
    catalog: &Catalog,
    invoice_id: &str,
    now: DateTime<Utc>,
    refresh: bool,
) -> Result<Record<Invoice>, InvoicingError> {
    let org_id = catalog.org.id.as_str();
    let mut prepared: Option<Record<Invoice>> = None;
    for _ in 0..NUMBERING_RETRIES {
        let current = match deps.store.get::<Invoice>(org_id, invoice_id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(InvoicingError::NotFound("invoice")),
            Err(e) => return Err(e.into()),
        };
        if current.value.status != InvoiceState::Draft {
            return Err(InvoicingError::NotFound("invoice"));
        }
        // Recompute once per version read: a moved counter only retries the numbering.
        let base = match prepared.take() {
            Some(p) if p.version == current.version + 1 => p,
            _ if refresh => recompute(deps, catalog, &current, now).await?,
            _ => Record {
                updated_at: now,
                version: current.version + 1,
                ..current.clone()
            },
        };
        prepared = Some(base.clone());
        let customer = invoice_events::customer_of(deps, org_id, &base.value).await?;
        let finalize_zero = catalog.finalize_zero_amount(customer.as_ref().map(|c| &c.value));
        if base.value.amounts.fees_amount_cents == 0 && !finalize_zero {
            let mut closed = base.clone();
            closed.value.status = InvoiceState::Closed;
            closed.value.payment_status = PaymentStatus::Succeeded;
            closed.value.finalize_at = None;
            match deps
                .store
                .write_invoice(org_id, &closed, InvoiceWrite::Replace)
                .await
            {
                Ok(()) => return Ok(closed),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        let owner = crate::lock_numbering(deps, org_id).await?;
        let entry = invoice_events::outbox_entry(&base, "invoice.created");
        let written = async {
            let counters = deps
                .store
                .invoice_counters(org_id, &base.value.customer_id)
                .await?;
            let mut numbered = base.clone();
            let notes = spend_credit_notes(deps, org_id, &mut numbered.value, now).await?;
            number_invoice(
                &mut numbered.value,
                &catalog.numbering(customer.as_ref()),
                counters.customer + 1,
                counters.organization + 1,
                now,
            );
            let r = deps
                .store
                .write_numbered_invoice(
                    org_id,
                    &numbered,
                    InvoiceWrite::Replace,
                    counters,
                    std::slice::from_ref(&entry),
                    &notes,
                )
                .await;
            Ok::<_, InvoicingError>((numbered, r))
        }
        .await;
        deps.store.unlock_numbering(org_id, &owner).await?;
        let (numbered, result) = written?;
        match result {
            Ok(()) => {
                deps.store.put_fee_pointers(org_id, &numbered.value).await?;
                invoice_events::publish_outbox(
                    deps,
                    catalog,
                    None,
                    &numbered.value.external_subscription_id,
                    &[entry],
                )
                .await?;
                return Ok(numbered);
            }
            Err(NumberedWriteError::CounterMoved) => continue,
            Err(NumberedWriteError::InvoiceTaken) => {
                prepared = None;
                continue;
            }
            Err(NumberedWriteError::Store(e)) => return Err(e.into()),
        }
    }
    Err(InvoicingError::Busy("invoice numbering"))
}

/// `PUT /invoices/{lago_id}/finalize`.
///
/// A finalized invoice is not found (as lago-api), except by a retry of the finalization
/// whose `invoice.created` is still in the outbox (its publish failed, or the request died
/// after the write): the retry publishes it and answers the invoice, as the first request
/// would have.
pub async fn finalize_invoice(
    deps: &Deps,
    org_id: &str,
    invoice_id: &str,
    now: DateTime<Utc>,
) -> Result<Record<Invoice>, InvoicingError> {
    let catalog = Catalog::load(&deps.store, org_id).await?;
    match finalize_draft(deps, &catalog, invoice_id, now, true).await {
        Err(InvoicingError::NotFound(what)) => {
            let current = match deps.store.get::<Invoice>(org_id, invoice_id).await {
                Ok(r) => r,
                Err(StoreError::NotFound) => return Err(InvoicingError::NotFound(what)),
                Err(e) => return Err(e.into()),
            };
            let published =
                invoice_events::flush_invoice(deps, &catalog, None, &current.value).await?;
            if invoice_events::has_event(&published, "invoice.created") {
                Ok(current)
            } else {
                Err(InvoicingError::NotFound(what))
            }
        }
        other => other,
    }
}
