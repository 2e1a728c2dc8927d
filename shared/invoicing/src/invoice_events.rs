//! The domain events of invoices, with the API's object shape (`InvoiceObjectExtended`), put
//! on the bus for the webhook dispatcher.
//!
//! ## The outbox
//! An invoice change made through the API (finalize, void, payment status, document) owes
//! the bus an event. The change and an outbox entry naming the event
//! ([`outbox_entry`]: `<invoice id>#<webhook type>#<invoice version>`) are written in one
//! transaction (`BillingStore::write_invoice_with_events`); the event is then published and
//! the entry removed ([`publish_outbox`]). Whatever a failed publish or a crash leaves behind
//! is published by the client's retry of the request, or by the invoice worker on the next
//! billing clock run (adding an entry marks the external subscription id due). The unique key
//! derives from the entry, so every publication of one change carries the same
//! `X-Lago-Unique-Key`.
//!
//! Credit notes use the same outbox, with entries `<credit note id>#credit_note.created#1`
//! ([`crate::credit_note_events`]).

use billing::{
    catalog::{Record, customer::Customer, plan::Plan, subscription::Subscription},
    invoice::Invoice,
    period::local_date,
};
use billing_aws::{BillingStore, StoreError, bus::DomainEvent};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lago::dto::{
    customer::CustomerDto,
    invoice::invoice_object,
    subscription::{SubscriptionDto, SubscriptionFacts},
};

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

/// The `SubscriptionObject` an invoice lists: `subscription` priced by `plan`, its period
/// and trial as of `now` in `timezone` (the customer's).
pub fn subscription_object(
    subscription: &Record<Subscription>,
    plan: &Plan,
    timezone: Tz,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, InvoicingError> {
    let s = &subscription.value;
    let facts = SubscriptionFacts {
        trial_ended_at: s.trial_ended_at(plan, now),
        current_billing_period: s.current_billing_period(plan, timezone, now)?,
    };
    serde_json::to_value(SubscriptionDto::new(subscription, plan, &facts))
        .map_err(|e| InvoicingError::Corrupt(e.to_string()))
}

/// The `subscriptions` of `invoice`'s object, read from the store: its subscription with the
/// plan that prices it, or nothing when either is gone.
pub async fn invoice_subscriptions(
    store: &BillingStore,
    catalog: &Catalog,
    customer: Option<&Record<Customer>>,
    invoice: &Invoice,
    now: DateTime<Utc>,
) -> Result<Vec<serde_json::Value>, InvoicingError> {
    let org = &catalog.org;
    let family = store
        .subscriptions_by_external_id(&org.id, &invoice.external_subscription_id)
        .await?;
    let Some(subscription) = family
        .into_iter()
        .find(|r| r.lago_id == invoice.subscription_id)
    else {
        return Ok(Vec::new());
    };
    let plan = match store
        .get::<Plan>(&org.id, subscription.value.effective_plan_code())
        .await
    {
        Ok(p) => p,
        Err(StoreError::NotFound) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let timezone = customer.map_or(org.settings.timezone, |c| {
        c.value.applicable_timezone(org.settings.timezone)
    });
    Ok(vec![subscription_object(
        &subscription,
        &plan.value,
        timezone,
        now,
    )?])
}

/// The `InvoiceObjectExtended` of an invoice, as the API and the events show it, listing
/// `subscriptions` (see [`invoice_subscriptions`]).
pub fn invoice_json(
    catalog: &Catalog,
    customer: Option<&Record<Customer>>,
    record: &Record<Invoice>,
    subscriptions: Vec<serde_json::Value>,
    file_url: Option<String>,
) -> serde_json::Value {
    let today = local_date(record.updated_at, catalog.org.settings.timezone);
    let mut object = invoice_object(
        record,
        Some(customer_object(catalog, customer)),
        file_url,
        today,
        true,
    );
    object["subscriptions"] = serde_json::Value::Array(subscriptions);
    object
}

/// A `webhook_type` event about an invoice, keyed by the invoice, the type and its version so
/// a republished event keeps its unique key.
pub fn invoice_event(
    catalog: &Catalog,
    customer: Option<&Record<Customer>>,
    record: &Record<Invoice>,
    subscriptions: Vec<serde_json::Value>,
    webhook_type: &str,
) -> DomainEvent {
    DomainEvent {
        organization_id: catalog.org.id.clone(),
        webhook_type: webhook_type.to_owned(),
        object_type: "invoice".to_owned(),
        object: invoice_json(catalog, customer, record, subscriptions, None),
        unique_key: unique_key(&record.lago_id, webhook_type, record.version),
        object_key: None,
    }
}

/// The `X-Lago-Unique-Key` of `webhook_type` about version `version` of invoice `invoice_id`.
pub fn unique_key(invoice_id: &str, webhook_type: &str, version: u64) -> String {
    derived_uuid(&["event", invoice_id, webhook_type, &version.to_string()])
}

/// The outbox entry of `webhook_type` about `record` (the version the change wrote).
pub fn outbox_entry(record: &Record<Invoice>, webhook_type: &str) -> String {
    format!("{}#{webhook_type}#{}", record.lago_id, record.version)
}

/// `(invoice id, webhook type, version)` of an outbox entry.
fn parse_entry(entry: &str) -> Option<(&str, &str, u64)> {
    let (rest, version) = entry.rsplit_once('#')?;
    let (invoice_id, webhook_type) = rest.split_once('#')?;
    Some((invoice_id, webhook_type, version.parse().ok()?))
}

/// The outbox entries of invoice `invoice_id` among `entries`.
pub fn entries_of<'a>(
    entries: impl IntoIterator<Item = &'a String>,
    invoice_id: &str,
) -> Vec<String> {
    entries
        .into_iter()
        .filter(|e| parse_entry(e).is_some_and(|(id, _, _)| id == invoice_id))
        .cloned()
        .collect()
}

/// Publishes the outbox entries `entries` of external subscription id `external_id`, then
/// removes them from the outbox. Each event shows its invoice as stored now, under the unique
/// key of the change that owed it. An entry about an invoice that no longer exists is
/// dropped; `invoice.generated` needs `documents` for its `file_url` and is left for a
/// publisher that has them (the API: the next download publishes it). Returns the entries
/// published.
pub async fn publish_outbox(
    deps: &Deps,
    catalog: &Catalog,
    documents: Option<&billing_aws::documents::DocumentStore>,
    external_id: &str,
    entries: &[String],
) -> Result<Vec<String>, InvoicingError> {
    let org_id = catalog.org.id.as_str();
    let mut events = Vec::with_capacity(entries.len());
    let mut done = Vec::with_capacity(entries.len());
    for entry in entries {
        let Some((invoice_id, webhook_type, version)) = parse_entry(entry) else {
            done.push(entry.clone());
            continue;
        };
        if webhook_type.starts_with("credit_note.") {
            // A credit note's event rides the same outbox (see `crate::credit_note_events`).
            let event = crate::credit_note_events::credit_note_event(
                deps,
                catalog,
                invoice_id,
                webhook_type,
                version,
            )
            .await?;
            events.extend(event);
            done.push(entry.clone());
            continue;
        }
        let record = match deps.store.get::<Invoice>(org_id, invoice_id).await {
            Ok(r) => r,
            Err(billing_aws::StoreError::NotFound) => {
                done.push(entry.clone());
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let file_url = match (&record.value.file_key, webhook_type) {
            (Some(key), "invoice.generated") => match documents {
                Some(d) => Some(d.presigned_url(key).await?),
                None => continue,
            },
            _ => None,
        };
        let customer = customer_of(deps, org_id, &record.value).await?;
        let subscriptions = invoice_subscriptions(
            &deps.store,
            catalog,
            customer.as_ref(),
            &record.value,
            record.updated_at,
        )
        .await?;
        let mut event = invoice_event(
            catalog,
            customer.as_ref(),
            &record,
            subscriptions,
            webhook_type,
        );
        event.unique_key = unique_key(invoice_id, webhook_type, version);
        if let Some(url) = file_url {
            event.object["file_url"] = url.into();
        }
        events.push(event);
        done.push(entry.clone());
    }
    publish(deps, events).await?;
    deps.store
        .clear_invoice_events(org_id, external_id, &done)
        .await?;
    Ok(done)
}

/// Publishes what the outbox still owes for `invoice` (a retried request makes good the
/// request it retries); returns the entries published.
pub async fn flush_invoice(
    deps: &Deps,
    catalog: &Catalog,
    documents: Option<&billing_aws::documents::DocumentStore>,
    invoice: &Invoice,
) -> Result<Vec<String>, InvoicingError> {
    let progress = deps
        .store
        .billing_progress(&catalog.org.id, &invoice.external_subscription_id)
        .await?;
    let pending = entries_of(&progress.invoice_events, &invoice.lago_id);
    if pending.is_empty() {
        return Ok(pending);
    }
    publish_outbox(
        deps,
        catalog,
        documents,
        &invoice.external_subscription_id,
        &pending,
    )
    .await
}

/// Whether `entries` hold a `webhook_type` event.
pub fn has_event(entries: &[String], webhook_type: &str) -> bool {
    entries
        .iter()
        .any(|e| parse_entry(e).is_some_and(|(_, t, _)| t == webhook_type))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_entry_names_its_invoice_type_and_version() {
        assert_eq!(
            parse_entry("inv-1#invoice.payment_status_updated#7"),
            Some(("inv-1", "invoice.payment_status_updated", 7))
        );
        assert_eq!(parse_entry("garbage"), None);
    }
}
