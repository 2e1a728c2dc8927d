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

use billing::catalog::{Record, organization::Organization, subscription::Subscription, tax::Tax};
use chrono::{DateTime, Utc};
use invoicing::subscription_events::{status_event, subscription_event};

use crate::Deps;

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
    let changes: Vec<(&Record<Subscription>, &'static str)> = written
        .iter()
        .filter_map(|record| {
            let before = read
                .iter()
                .find(|r| r.lago_id == record.lago_id)
                .map(|r| r.value.status());
            status_event(before, record.value.status()).map(|t| (record, t))
        })
        .collect();
    if changes.is_empty() {
        return;
    }
    let taxes: Vec<Record<Tax>> = match deps.store.list::<Tax>(&org.id, 1, 1000).await {
        Ok((taxes, _)) => taxes,
        Err(e) => {
            tracing::error!(error.cause_chain = %e, "subscription events not built: taxes");
            return;
        }
    };
    let mut events = Vec::new();
    for (record, webhook_type) in changes {
        match subscription_event(&deps.store, org, &taxes, record, webhook_type, now).await {
            Ok(event) => events.push(event),
            Err(e) => tracing::error!(
                subscription = %record.lago_id,
                webhook_type,
                error.cause_chain = %e,
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
