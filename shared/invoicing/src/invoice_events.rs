//! The domain events of invoices, with the API's object shape (`InvoiceObjectExtended`), put
//! on the bus for the webhook dispatcher.

use billing::{
    catalog::{Record, customer::Customer},
    invoice::Invoice,
    period::local_date,
};
use billing_aws::bus::DomainEvent;
use lago::dto::{customer::CustomerDto, invoice::invoice_object};

use crate::{Deps, InvoicingError, derived_uuid, price_slot::Catalog};

/// The `CustomerObject` embedded in invoices.
pub fn customer_object(
    catalog: &Catalog,
    customer: Option<&Record<Customer>>,
) -> serde_json::Value {
    let Some(c) = customer else {
        return serde_json::Value::Null;
    };
    let taxes: Vec<_> = c
        .value
        .tax_ids()
        .iter()
        .filter_map(|id| catalog.taxes.iter().find(|t| &t.lago_id == id).cloned())
        .collect();
    serde_json::to_value(CustomerDto::new(
        c,
        &taxes,
        catalog.org.settings.timezone,
        &catalog.org.settings.document_number_prefix,
    ))
    .unwrap_or(serde_json::Value::Null)
}

/// The `InvoiceObjectExtended` of an invoice, as the API and the events show it.
pub fn invoice_json(
    catalog: &Catalog,
    customer: Option<&Record<Customer>>,
    record: &Record<Invoice>,
    file_url: Option<String>,
) -> serde_json::Value {
    let today = local_date(record.updated_at, catalog.org.settings.timezone);
    invoice_object(
        record,
        Some(customer_object(catalog, customer)),
        file_url,
        today,
        true,
    )
}

/// A `webhook_type` event about an invoice, keyed by the invoice, the type and its version so
/// a republished event keeps its unique key.
pub fn invoice_event(
    catalog: &Catalog,
    customer: Option<&Record<Customer>>,
    record: &Record<Invoice>,
    webhook_type: &str,
) -> DomainEvent {
    DomainEvent {
        organization_id: catalog.org.id.clone(),
        webhook_type: webhook_type.to_owned(),
        object_type: "invoice".to_owned(),
        object: invoice_json(catalog, customer, record, None),
        unique_key: derived_uuid(&[
            "event",
            &record.lago_id,
            webhook_type,
            &record.version.to_string(),
        ]),
    }
}

/// Publishes events when a bus is configured.
pub async fn publish(deps: &Deps, events: Vec<DomainEvent>) -> Result<(), InvoicingError> {
    if let Some(bus) = &deps.bus {
        bus.publish(&events).await?;
    }
    Ok(())
}

/// The customer of an invoice, if it still exists.
pub async fn customer_of(
    deps: &Deps,
    org_id: &str,
    invoice: &Invoice,
) -> Result<Option<Record<Customer>>, InvoicingError> {
    match deps
        .store
        .get::<Customer>(org_id, &invoice.external_customer_id)
        .await
    {
        Ok(c) => Ok(Some(c)),
        Err(billing_aws::StoreError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
