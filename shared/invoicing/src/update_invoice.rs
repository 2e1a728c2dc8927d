//! `PUT /invoices/{lago_id}`: the payment status and metadata of an invoice.

use billing::{
    catalog::Record,
    invoice::{Invoice, InvoiceMetadata, InvoiceState, PaymentStatus},
};
use billing_aws::{StoreError, dynamo::invoices::InvoiceWrite};
use chrono::{DateTime, Utc};

use crate::{Deps, InvoicingError, invoice_events, price_slot::Catalog};

/// One metadata entry to set: `id` updates that entry, else a new one is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataInput {
    /// The entry to update.
    pub id: Option<String>,
    /// Key.
    pub key: String,
    /// Value.
    pub value: String,
}

/// What an update changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceUpdate {
    /// New payment status.
    pub payment_status: Option<PaymentStatus>,
    /// Metadata entries to add or change.
    pub metadata: Option<Vec<MetadataInput>>,
}

/// Most characters of a metadata value (lago-api).
pub const METADATA_VALUE_MAX: usize = 140;

/// Updates an invoice. A payment status is only set on a finalized invoice
/// (405 `payment_status_update_on_draft_invoice` otherwise, as lago-api).
pub async fn update_invoice(
    deps: &Deps,
    org_id: &str,
    invoice_id: &str,
    update: InvoiceUpdate,
    now: DateTime<Utc>,
) -> Result<Record<Invoice>, InvoicingError> {
    if let Some(entries) = &update.metadata
        && entries
            .iter()
            .any(|m| m.value.chars().count() > METADATA_VALUE_MAX)
    {
        return Err(InvoicingError::Invalid {
            field: "metadata",
            code: "value_is_too_long",
        });
    }
    let catalog = Catalog::load(&deps.store, org_id).await?;
    for _ in 0..5 {
        let current = match deps.store.get::<Invoice>(org_id, invoice_id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(InvoicingError::NotFound("invoice")),
            Err(e) => return Err(e.into()),
        };
        let mut next = Record {
            updated_at: now,
            version: current.version + 1,
            ..current.clone()
        };
        let mut status_changed = false;
        if let Some(status) = update.payment_status {
            if current.value.status == InvoiceState::Draft {
                return Err(InvoicingError::NotAllowed(
                    "payment_status_update_on_draft_invoice",
                ));
            }
            status_changed = current.value.payment_status != status;
            next.value.payment_status = status;
        }
        if let Some(entries) = &update.metadata {
            for m in entries {
                match m
                    .id
                    .as_ref()
                    .and_then(|id| next.value.metadata.iter_mut().find(|e| &e.lago_id == id))
                {
                    Some(existing) => {
                        existing.key = m.key.clone();
                        existing.value = m.value.clone();
                    }
                    None => next.value.metadata.push(InvoiceMetadata {
                        lago_id: (deps.ids)(),
                        key: m.key.clone(),
                        value: m.value.clone(),
                        created_at: now,
                    }),
                }
            }
        }
        match deps
            .store
            .write_invoice(org_id, &next, InvoiceWrite::Replace)
            .await
        {
            Ok(()) => {
                if status_changed {
                    let customer = invoice_events::customer_of(deps, org_id, &next.value).await?;
                    let event = invoice_events::invoice_event(
                        &catalog,
                        customer.as_ref(),
                        &next,
                        "invoice.payment_status_updated",
                    );
                    invoice_events::publish(deps, vec![event]).await?;
                }
                return Ok(next);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(InvoicingError::Busy("invoice update"))
}
