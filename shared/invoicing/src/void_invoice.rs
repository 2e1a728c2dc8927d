//! `POST /invoices/{lago_id}/void`: a finalized, unpaid invoice becomes `voided` (it keeps its
//! number, so the sequence has no gap).

use billing::{
    catalog::Record,
    invoice::{Invoice, InvoiceState},
};
use billing_aws::{StoreError, dynamo::invoices::InvoiceWrite};
use chrono::{DateTime, Utc};

use crate::{Deps, InvoicingError, invoice_events, price_slot::Catalog};

/// Voids an invoice; 405 `not_voidable` unless finalized and not paid.
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
            return Err(InvoicingError::NotAllowed("not_voidable"));
        }
        let mut voided = Record {
            updated_at: now,
            version: current.version + 1,
            ..current.clone()
        };
        voided.value.status = InvoiceState::Voided;
        voided.value.voided_at = Some(now);
        match deps
            .store
            .write_invoice(org_id, &voided, InvoiceWrite::Replace)
            .await
        {
            Ok(()) => {
                let customer = invoice_events::customer_of(deps, org_id, &voided.value).await?;
                let event = invoice_events::invoice_event(
                    &catalog,
                    customer.as_ref(),
                    &voided,
                    "invoice.voided",
                );
                invoice_events::publish(deps, vec![event]).await?;
                return Ok(voided);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(InvoicingError::Busy("invoice void"))
}
