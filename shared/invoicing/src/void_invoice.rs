//! `POST /invoices/{lago_id}/void`: a finalized, unpaid invoice becomes `voided` (it keeps its
//! number, so the sequence has no gap).

use billing::{
    catalog::Record,
    invoice::{Invoice, InvoiceState},
};
use billing_aws::{StoreError, dynamo::invoices::InvoiceWrite};
use chrono::{DateTime, Utc};

use crate::{Deps, InvoicingError, invoice_events, price_slot::Catalog};

/// Voids an invoice; 405 `not_voidable` unless finalized and not paid. The voided invoice
/// and `invoice.voided` in the outbox are one write; a retry of a void whose event is still
/// in the outbox publishes it and answers the voided invoice, as the first request would
/// have.
pub async fn void_invoice(
    deps: &Deps,
    org_id: &str,
    invoice_id: &str,
    now: DateTime<Utc>,
) -> Result<Record<Invoice>, InvoicingError> {
    let catalog = Catalog::load(&deps.store, org_id).await?;
    for _ in 0..5 {
        let current = match deps.store.get::<Invoice>(org_id, invoice_id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(InvoicingError::NotFound("invoice")),
            Err(e) => return Err(e.into()),
        };
        if !current.value.voidable() {
            if current.value.status == InvoiceState::Voided {
                let published =
                    invoice_events::flush_invoice(deps, &catalog, None, &current.value).await?;
                if invoice_events::has_event(&published, "invoice.voided") {
                    return Ok(current);
                }
            }
            return Err(InvoicingError::NotAllowed("not_voidable"));
        }
        let mut voided = Record {
            updated_at: now,
            version: current.version + 1,
            ..current.clone()
        };
        voided.value.status = InvoiceState::Voided;
        voided.value.voided_at = Some(now);
        let entry = invoice_events::outbox_entry(&voided, "invoice.voided");
        match deps
            .store
            .write_invoice_with_events(
                org_id,
                &voided,
                InvoiceWrite::Replace,
                std::slice::from_ref(&entry),
            )
            .await
        {
            Ok(()) => {
                invoice_events::publish_outbox(
                    deps,
                    &catalog,
                    None,
                    &voided.value.external_subscription_id,
                    &[entry],
                )
                .await?;
                return Ok(voided);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(InvoicingError::Busy("invoice void"))
}
