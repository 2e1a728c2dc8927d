//! The domain events of subscription changes (`subscription.started`,
//! `subscription.terminated`, `subscription.canceled`), one body shape for the API and the
//! billing clock.
//!
//! The object is Lago's `SubscriptionWithCustomerObject`: the subscription as the API shows it
//! (`SubscriptionObjectExtended`, with its `plan`), and its `customer`. Each event's unique key
//! derives from the subscription and the webhook type (a subscription starts, terminates or is
//! canceled once), so a republished event keeps its key whoever publishes it.
//!
//! Every change (the clock's and the API's) goes through an outbox: [`outbox_key`]s are
//! written with the change (`SubscriptionWrite::pending_events`), published by
//! [`publish_pending`], then removed. Whatever a failed publish or a crash leaves there is
//! published by the invoice worker on the next billing clock run (the change marked the
//! external id due), or by a retried request.

use billing::catalog::{
    Record,
    customer::Customer,
    organization::Organization,
    plan::Plan,
    subscription::{Subscription, SubscriptionStatus},
    tax::Tax,
};
use billing_aws::{
    BillingStore, StoreError,
    bus::{DomainEvent, EventBus},
};
use chrono::{DateTime, Utc};
use lago::dto::{
    customer::CustomerDto,
    plan::plan_tax_codes,
    subscription::{SubscriptionDto, SubscriptionFacts},
};

use crate::{InvoicingError, derived_uuid};

/// The webhook type of a subscription whose status went from `before` (`None`: new) to `after`.
pub fn status_event(
    before: Option<SubscriptionStatus>,
    after: SubscriptionStatus,
) -> Option<&'static str> {
    if before == Some(after) {
        return None;
    }
    match after {
        SubscriptionStatus::Active => Some("subscription.started"),
        SubscriptionStatus::Terminated => Some("subscription.terminated"),
        SubscriptionStatus::Canceled => Some("subscription.canceled"),
        _ => None,
    }
}

/// The outbox entry of `webhook_type` about subscription `subscription_id`.
pub fn outbox_key(subscription_id: &str, webhook_type: &str) -> String {
    format!("{subscription_id}#{webhook_type}")
}

/// The `X-Lago-Unique-Key` of `webhook_type` about subscription `subscription_id`.
pub fn unique_key(subscription_id: &str, webhook_type: &str) -> String {
    derived_uuid(&["event", subscription_id, webhook_type])
}

/// The event `webhook_type` about `record`, with the plan pricing it, as the API shows it at
/// `now`. `taxes` are the organization's (the plan's and the customer's are picked from them).
pub async fn subscription_event(
    store: &BillingStore,
    org: &Organization,
    taxes: &[Record<Tax>],
    record: &Record<Subscription>,
    webhook_type: &str,
    now: DateTime<Utc>,
) -> Result<DomainEvent, InvoicingError> {
    let s = &record.value;
    let plan = match store.get::<Plan>(&org.id, s.effective_plan_code()).await {
        Ok(p) => p,
        Err(StoreError::NotFound) => return Err(InvoicingError::NotFound("plan")),
        Err(e) => return Err(e.into()),
    };
    let customer = match store
        .get::<Customer>(&org.id, s.external_customer_id())
        .await
    {
        Ok(c) => Some(c),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(e.into()),
    };
    let plan_codes = plan_tax_codes(&plan.value);
    let plan_taxes: Vec<Record<Tax>> = plan_codes
        .iter()
        .filter_map(|code| taxes.iter().find(|t| t.value.code() == code).cloned())
        .collect();
    let timezone = customer.as_ref().map_or(org.settings.timezone, |c| {
        c.value.applicable_timezone(org.settings.timezone)
    });
    let facts = SubscriptionFacts {
        trial_ended_at: s.trial_ended_at(&plan.value, now),
        current_billing_period: s.current_billing_period(&plan.value, timezone, now)?,
    };
    let mut object = serde_json::to_value(SubscriptionDto::extended(
        record,
        &plan,
        &plan_taxes,
        &facts,
    ))
    .map_err(|e| InvoicingError::Corrupt(e.to_string()))?;
    let customer_object = match &customer {
        Some(c) => {
            let customer_taxes: Vec<Record<Tax>> = taxes
                .iter()
                .filter(|t| c.value.tax_ids().contains(&t.lago_id))
                .cloned()
                .collect();
            serde_json::to_value(CustomerDto::new(
                c,
                &customer_taxes,
                org.settings.timezone,
                &org.settings.document_number_prefix,
            ))
            .map_err(|e| InvoicingError::Corrupt(e.to_string()))?
        }
        None => serde_json::Value::Null,
    };
    if let Some(map) = object.as_object_mut() {
        map.insert("customer".into(), customer_object);
    }
    Ok(DomainEvent {
        organization_id: org.id.clone(),
        webhook_type: webhook_type.to_owned(),
        object_type: "subscription".to_owned(),
        object,
        unique_key: unique_key(&record.lago_id, webhook_type),
        object_key: None,
    })
}

/// Publishes the outbox entries `pending` of `external_id` (each about one of `family`), then
/// removes them from the outbox. An entry about a subscription no longer in the family is
/// dropped. A crash before the removal publishes them again under the same unique keys.
#[allow(clippy::too_many_arguments)]
pub async fn publish_pending(
    store: &BillingStore,
    bus: Option<&EventBus>,
    org: &Organization,
    taxes: &[Record<Tax>],
    external_id: &str,
    family: &[Record<Subscription>],
    pending: &[String],
    now: DateTime<Utc>,
) -> Result<(), InvoicingError> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut events = Vec::with_capacity(pending.len());
    for key in pending {
        let Some((subscription_id, webhook_type)) = key.split_once('#') else {
            continue;
        };
        let Some(record) = family.iter().find(|r| r.lago_id == subscription_id) else {
            continue;
        };
        events.push(subscription_event(store, org, taxes, record, webhook_type, now).await?);
    }
    if let Some(bus) = bus {
        bus.publish(&events).await?;
    }
    store
        .clear_pending_events(&org.id, external_id, pending)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_change_of_status_into_active_terminated_or_canceled_is_an_event() {
        use SubscriptionStatus::*;
        assert_eq!(status_event(None, Active), Some("subscription.started"));
        assert_eq!(
            status_event(Some(Pending), Active),
            Some("subscription.started")
        );
        assert_eq!(
            status_event(Some(Active), Terminated),
            Some("subscription.terminated")
        );
        assert_eq!(
            status_event(Some(Pending), Canceled),
            Some("subscription.canceled")
        );
        assert_eq!(status_event(Some(Active), Active), None);
        assert_eq!(status_event(None, Pending), None);
    }
}
