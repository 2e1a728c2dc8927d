//! The domain events of subscription changes (`subscription.started`,
//! `subscription.terminated`, `subscription.canceled`), for the webhook dispatcher.
//!
//! The object is Lago's `SubscriptionWithCustomerObject`: the subscription as the API shows it,
//! with its `plan` and its `customer`. Each event's unique key is derived from the subscription
//! and the webhook type, so publishing the same transition again keeps its key and receivers
//! deduplicate it.
//!
//! Delivery goes through the external id's outbox: [`outbox_entries`] are written in the
//! change's own transaction (`SubscriptionWrite::pending_events`), then [`publish`] puts them
//! on the bus and removes them. A bus failure does not fail the request (the change is made
//! and its events are owed by the outbox): a retried create publishes what is left, and the
//! invoice worker does on the next billing clock run at the latest (the change marked the
//! external id due).

use billing::catalog::{Record, organization::Organization, subscription::Subscription, tax::Tax};
use chrono::{DateTime, Utc};
use invoicing::subscription_events::{outbox_key, publish_pending, status_event};

use crate::Deps;

/// The outbox entries of the subscriptions of `written` whose status changed from their
/// version in `read` (the family as read before the write).
pub(super) fn outbox_entries(
    read: &[Record<Subscription>],
    written: &[Record<Subscription>],
) -> Vec<String> {
    written
        .iter()
        .filter_map(|record| {
            let before = read
                .iter()
                .find(|r| r.lago_id == record.lago_id)
                .map(|r| r.value.status());
            status_event(before, record.value.status()).map(|t| outbox_key(&record.lago_id, t))
        })
        .collect()
}

/// Publishes the outbox entries `pending` of `external_id` (each about one of `family`) and
/// removes them; a failure is logged and left to the outbox.
pub(super) async fn publish(
    deps: &Deps,
    org: &Organization,
    external_id: &str,
    family: &[Record<Subscription>],
    pending: &[String],
    now: DateTime<Utc>,
) {
    if pending.is_empty() {
        return;
    }
    let taxes: Vec<Record<Tax>> = match deps.store.list::<Tax>(&org.id, 1, 1000).await {
        Ok((taxes, _)) => taxes,
        Err(e) => {
            tracing::warn!(error.cause_chain = %e, "subscription events left in the outbox: taxes");
            return;
        }
    };
    if let Err(e) = publish_pending(
        &deps.store,
        deps.bus.as_ref(),
        org,
        &taxes,
        external_id,
        family,
        pending,
        now,
    )
    .await
    {
        tracing::warn!(error.cause_chain = %e, "subscription events left in the outbox");
    }
}

/// Publishes whatever the outbox of `external_id` still owes (a retried request makes good
/// the one it retries).
pub(super) async fn flush(
    deps: &Deps,
    org: &Organization,
    external_id: &str,
    family: &[Record<Subscription>],
    now: DateTime<Utc>,
) {
    match deps.store.billing_progress(&org.id, external_id).await {
        Ok(progress) if !progress.pending_events.is_empty() => {
            let pending: Vec<String> = progress.pending_events.into_iter().collect();
            publish(deps, org, external_id, family, &pending, now).await;
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error.cause_chain = %e, "subscription outbox not read"),
    }
}
