//! The domain events of subscription changes (`subscription.started`,
//! `subscription.terminated`, `subscription.canceled`), put on the bus after the change is
//! stored, for the webhook dispatcher.
//!
//! The object is Lago's `SubscriptionWithCustomerObject`: the subscription as the API shows it,
//! with its `plan` and its `customer`. Each event's unique key is derived from the subscription
//! and the webhook type, so publishing the same transition again keeps its key and receivers
//! deduplicate it.
//!
//! Publishing follows the stored change: a bus failure is logged and the request still
//! succeeds (the change is made; failing the request would not bring the event back, as a
//! retried request finds the change already done).

use billing::catalog::{
    Record,
    customer::Customer,
    organization::Organization,
    subscription::{Subscription, SubscriptionStatus},
    tax::Tax,
};
use billing_aws::{StoreError, bus::DomainEvent};
use chrono::{DateTime, Utc};
use lago::{
    ApiError,
    dto::{customer::CustomerDto, plan::plan_tax_codes, subscription::SubscriptionDto},
};

use super::{effective_plan, facts};
use crate::{Deps, edge::store_error};

/// The webhook type of a subscription whose status went from `before` (`None`: new) to `after`.
fn transition(
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

/// Publishes an event for each subscription of `written` whose status changed from its
/// version in `read` (the family as read before the write).
pub(super) async fn publish_changes(
    deps: &Deps,
    org: &Organization,
    read: &[Record<Subscription>],
    written: &[Record<Subscription>],
    now: DateTime<Utc>,
) {
    let Some(bus) = &deps.bus else { return };
    let mut events = Vec::new();
    for record in written {
        let before = read
            .iter()
            .find(|r| r.lago_id == record.lago_id)
            .map(|r| r.value.status());
        let Some(webhook_type) = transition(before, record.value.status()) else {
            continue;
        };
        match event(deps, org, record, webhook_type, now).await {
            Ok(event) => events.push(event),
            Err(e) => tracing::error!(
                subscription = %record.lago_id,
                webhook_type,
                error = ?e,
                "subscription event not built"
            ),
        }
    }
    if events.is_empty() {
        return;
    }
    if let Err(e) = bus.publish(&events).await {
        tracing::error!(error.cause_chain = %e, "subscription events not published");
    }
}

async fn event(
    deps: &Deps,
    org: &Organization,
    record: &Record<Subscription>,
    webhook_type: &str,
    now: DateTime<Utc>,
) -> Result<DomainEvent, ApiError> {
    let s = &record.value;
    let plan = effective_plan(deps, org, s).await?;
    let customer = match deps
        .store
        .get::<Customer>(&org.id, s.external_customer_id())
        .await
    {
        Ok(c) => Some(c),
        Err(StoreError::NotFound) => None,
        Err(e) => return Err(store_error("customer", e)),
    };
    let taxes = deps
        .store
        .get_many::<Tax>(&org.id, &plan_tax_codes(&plan.value))
        .await
        .map_err(|e| store_error("tax", e))?;
    let facts = facts(
        s,
        &plan.value,
        customer.as_ref().map(|c| &c.value),
        org,
        now,
    )?;
    let mut object = serde_json::to_value(SubscriptionDto::extended(record, &plan, &taxes, &facts))
        .map_err(|_| ApiError::Internal)?;
    let customer_object = match &customer {
        Some(c) => {
            let customer_taxes = deps
                .store
                .list::<Tax>(&org.id, 1, 1000)
                .await
                .map_err(|e| store_error("tax", e))?
                .0
                .into_iter()
                .filter(|t| c.value.tax_ids().contains(&t.lago_id))
                .collect::<Vec<_>>();
            serde_json::to_value(CustomerDto::new(
                c,
                &customer_taxes,
                org.settings.timezone,
                &org.settings.document_number_prefix,
            ))
            .map_err(|_| ApiError::Internal)?
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
        unique_key: invoicing::derived_uuid(&["event", &record.lago_id, webhook_type]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_change_of_status_into_active_terminated_or_canceled_is_an_event() {
        use SubscriptionStatus::*;
        assert_eq!(transition(None, Active), Some("subscription.started"));
        assert_eq!(
            transition(Some(Pending), Active),
            Some("subscription.started")
        );
        assert_eq!(
            transition(Some(Active), Terminated),
            Some("subscription.terminated")
        );
        assert_eq!(
            transition(Some(Pending), Canceled),
            Some("subscription.canceled")
        );
        assert_eq!(transition(Some(Active), Active), None);
        assert_eq!(transition(None, Pending), None);
    }
}
