//! The domain event of a credit note: `credit_note.created`, with the API's
//! `CreditNoteObject`, put on the bus for the webhook dispatcher.
//!
//! It travels through the invoice outbox of the credit note's external subscription id (see
//! [`crate::invoice_events`]): the note and the entry `<note id>#credit_note.created#1` are
//! written in one transaction, the entry is published and removed afterwards, and whatever a
//! crash leaves behind is published by the next billing run.

use billing::{
    catalog::{Record, customer::Customer},
    credit_note::CreditNote,
    invoice::Invoice,
};
use billing_aws::{BillingStore, StoreError, bus::DomainEvent};
use lago::dto::credit_note::credit_note_object;

use crate::{
    Deps, InvoicingError,
    invoice_events::{customer_object, unique_key},
    price_slot::Catalog,
};

/// The webhook type of a new credit note.
pub const CREATED: &str = "credit_note.created";

/// The outbox entry of `credit_note.created` for note `credit_note_id` (a note is created
/// once, at version 1).
pub fn outbox_entry(credit_note_id: &str) -> String {
    format!("{credit_note_id}#{CREATED}#1")
}

/// The `CreditNoteObject` of a note as the API and the events show it: its credited invoice
/// gives the items' fees.
pub async fn credit_note_json(
    store: &BillingStore,
    catalog: &Catalog,
    note: &Record<CreditNote>,
) -> Result<serde_json::Value, InvoicingError> {
    let org_id = catalog.org.id.as_str();
    let invoice = match store.get::<Invoice>(org_id, &note.value.invoice_id).await {
        Ok(i) => Some(i),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let customer = match store
        .get::<Customer>(org_id, &note.value.external_customer_id)
        .await
    {
        Ok(c) => Some(c),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(credit_note_object(
        note,
        invoice.as_ref(),
        Some(customer_object(catalog, customer.as_ref())),
    ))
}

/// The `webhook_type` event of credit note `credit_note_id` as stored now, under the unique
/// key of version `version`; `None` when the note no longer exists.
pub(crate) async fn credit_note_event(
    deps: &Deps,
    catalog: &Catalog,
    credit_note_id: &str,
    webhook_type: &str,
    version: u64,
) -> Result<Option<DomainEvent>, InvoicingError> {
    let note = match deps
        .store
        .credit_note(&catalog.org.id, credit_note_id)
        .await
    {
        Ok(n) => n,
        Err(StoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(Some(DomainEvent {
        organization_id: catalog.org.id.clone(),
        webhook_type: webhook_type.to_owned(),
        object_type: "credit_note".to_owned(),
        object: credit_note_json(&deps.store, catalog, &note).await?,
        unique_key: unique_key(credit_note_id, webhook_type, version),
        object_key: None,
    }))
}
