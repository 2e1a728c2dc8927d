//! Folding one subscription's messages into its stored usage states.

use std::collections::{BTreeMap, BTreeSet};

use billing::{
    aggregation::{
        AggregationError, AggregationState, Aggregator, EventKey, UsageEvent,
        snapshot::{RecordedValue, StateSnapshot, UniqueValue, bucket_name},
    },
    catalog::organization::Organization,
    instant_fee::instant_fee,
    usage::{UsageBatch, UsageError},
};
use billing_aws::{
    StoreError,
    context::{PricedSubscription, SubscriptionContext},
    usage::{APPLIED_MEMORY, StateKey, StoredState},
    usage_pricing::charge_usage,
};
use chrono::{DateTime, Utc};
use invoicing::{bill_instant_fee::InstantCharge, price_slot::Catalog};
use sha2::{Digest, Sha256};

use crate::{Deps, Incoming};

/// Why a group of messages could not be applied (they will be redelivered).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Aggregation failed (overflow, mismatched state).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A state could not be merged or stored.
    #[error(transparent)]
    Aggregation(#[from] AggregationError),
    /// The organization is gone.
    #[error("organization {0} not found")]
    UnknownOrganization(String),
    /// A state kind has no stored form.
    #[error("{0}")]
    NotStorable(String),
    /// An instant fee could not be priced.
    #[error(transparent)]
    Pricing(#[from] billing::usage::PricingError),
    /// An instant fee's prior usage could not be restored.
    #[error(transparent)]
    UsagePricing(#[from] billing_aws::usage_pricing::UsagePricingError),
    /// An instant fee could not be billed.
    #[error(transparent)]
    Invoicing(#[from] invoicing::InvoicingError),
}

/// A short, stable tag for an event, as remembered in `applied`: its transaction id, which
/// identifies it within its subscription (the state items are per subscription).
///
/// Tagging events rather than SQS message ids makes a resent event a no-op too, not only a
/// redelivered message: a replayed request resends its event within the queue's five-minute
/// deduplication window, and a queue that does not deduplicate it (an emulator that forgets a
/// deduplication id once the message is deleted, or a resend after the window) delivers it as a
/// new message with the same event.
pub fn event_tag(transaction_id: &str) -> String {
    hex::encode(&Sha256::digest(transaction_id.as_bytes())[..6])
}

struct Touch {
    aggregator: Aggregator,
    period_to: DateTime<Utc>,
    deltas: Vec<(String, AggregationState)>,
}

/// Applies consecutive messages of one subscription (all with the same `org` and `sub`).
///
/// An event that feeds a pay-in-advance charge is billed before it is stored (SEMANTICS §4.9):
/// what came before it in the group is stored first, so the stored usage is the event's prior
/// usage; its instant fees are priced against that and billed (conditional creates under ids
/// derived from the event); then the event itself is stored. A crash between the fee and the
/// usage write leaves the usage without the event, so the redelivery prices the same fee
/// again and finds it billed; once the usage holds the event, the fee is not priced again.
pub async fn apply_group(deps: &Deps, group: &[Incoming]) -> Result<(), ApplyError> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    let org_id = first.message.org.clone();
    let sub = first.message.sub.clone();
    let org: Organization = match deps.billing.organization(&org_id).await {
        Ok(o) => o,
        Err(StoreError::NotFound) => return Err(ApplyError::UnknownOrganization(org_id)),
        Err(e) => return Err(e.into()),
    };
    let context = SubscriptionContext::load(&deps.billing, &org, &sub).await?;
    let mut catalog: Option<Catalog> = None;

    // 1. Fold each event on its own, so each state item can skip what it already holds.
    let mut touched: BTreeMap<StateKey, Touch> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for incoming in group {
        for e in &incoming.message.events {
            let tag = event_tag(&e.tx);
            if !seen.insert(tag.clone()) {
                // The same event twice in this group (a resend): folded once.
                continue;
            }
            let Some(t) = DateTime::from_timestamp_millis(e.ts_ms) else {
                continue;
            };
            let Some(priced) = context.at(t) else {
                tracing::warn!(transaction_id = %e.tx, subscription = %sub, "no subscription covers the event time; not billed");
                continue;
            };
            let specs: Vec<_> = priced.charges.iter().map(|(_, s)| s.clone()).collect();
            // `precise_total_amount_cents` was checked to be a number at ingestion.
            let amount = e
                .amt
                .as_deref()
                .and_then(billing::aggregation::parse_numeric);
            let mut own: Vec<(StateKey, Aggregator, DateTime<Utc>, AggregationState)> = Vec::new();
            {
                // Scoped: a `UsageEvent` borrows `dyn` properties and is not `Send`.
                let mut batch = UsageBatch::default();
                let event = UsageEvent::new(EventKey::new(t, e.seq), &e.props)
                    .with_precise_total_amount_cents(amount);
                batch.fold(&priced.dates, &specs, &e.code, &event)?;
                for (key, usage) in batch.into_usages() {
                    for (bucket, group_key, state) in usage.states() {
                        own.push((
                            StateKey::new(
                                key.period_from,
                                key.charge_id.clone(),
                                bucket_name(bucket),
                                group_key.values().to_vec(),
                            ),
                            usage.aggregator().clone(),
                            key.period_to,
                            state.clone(),
                        ));
                    }
                }
            }
            let instant = priced.charges.iter().any(|(charge, spec)| {
                charge.pay_in_advance() && own.iter().any(|(k, ..)| k.charge_id == spec.charge_id)
            });
            if instant {
                // The usage before this event, as stored, is what its fees are priced from.
                store_touched(deps, &org_id, &sub, std::mem::take(&mut touched)).await?;
                if catalog.is_none() {
                    let (taxes, _) = deps
                        .billing
                        .list::<billing::catalog::tax::Tax>(&org_id, 1, 1000)
                        .await?;
                    catalog = Some(Catalog {
                        org: org.clone(),
                        taxes,
                    });
                }
                if let Some(catalog) = &catalog {
                    bill_instant_fees(
                        deps,
                        catalog,
                        &context,
                        priced,
                        &own,
                        InstantEvent {
                            transaction_id: &e.tx,
                            tag: &tag,
                            at: t,
                            seq: e.seq,
                            properties: &e.props,
                            amount,
                        },
                    )
                    .await?;
                }
            }
            for (state_key, aggregator, period_to, state) in own {
                let touch = touched.entry(state_key).or_insert_with(|| Touch {
                    aggregator,
                    period_to,
                    deltas: Vec::new(),
                });
                touch.deltas.push((tag.clone(), state));
            }
            if instant {
                // Stored at once: the next event's fees are priced with this one in.
                store_touched(deps, &org_id, &sub, std::mem::take(&mut touched)).await?;
            }
        }
    }
    store_touched(deps, &org_id, &sub, touched).await
}

/// The event being billed, as the worker read it.
struct InstantEvent<'a> {
    transaction_id: &'a str,
    tag: &'a str,
    at: DateTime<Utc>,
    seq: u64,
    properties: &'a std::collections::BTreeMap<String, String>,
    amount: Option<rust_decimal::Decimal>,
}

/// Bills the event's instant fee on each pay-in-advance charge it feeds whose usage does not
/// hold it yet. `own` are the event's own state deltas (which charges it feeds, and where).
async fn bill_instant_fees(
    deps: &Deps,
    catalog: &Catalog,
    context: &SubscriptionContext,
    priced: &PricedSubscription,
    own: &[(StateKey, Aggregator, DateTime<Utc>, AggregationState)],
    event: InstantEvent<'_>,
) -> Result<(), ApplyError> {
    let org_id = catalog.org.id.as_str();
    let sub = priced.subscription.value.external_id();
    let keys: Vec<StateKey> = own.iter().map(|(k, ..)| k.clone()).collect();
    let stored = deps.usage.states(org_id, sub, &keys).await?;
    let window = priced
        .dates
        .current_usage_boundaries(event.at)
        .map_err(billing::usage::UsageError::from)?;
    let (from, to) = (window.charges_from_datetime(), window.charges_to_datetime());
    let days = window.charges_duration_days();
    let currency = priced.plan.value.currency();
    let mut states = None;
    let invoicing = deps.invoicing();
    for (charge, spec) in priced.charges.iter().filter(|(c, _)| c.pay_in_advance()) {
        let mine: Vec<&StateKey> = keys
            .iter()
            .filter(|k| k.charge_id == spec.charge_id)
            .collect();
        if mine.is_empty() {
            // The event does not feed this charge (another metric, or no matching filter).
            continue;
        }
        if mine.iter().any(|k| {
            stored
                .get(*k)
                .is_some_and(|s| s.applied.iter().any(|a| a == event.tag))
        }) {
            // Already in the usage: billed by an earlier delivery.
            continue;
        }
        if states.is_none() {
            states = Some(deps.usage.states_upto(org_id, sub, from).await?);
        }
        let prior = charge_usage(
            &deps.usage,
            org_id,
            sub,
            spec,
            from,
            to,
            days,
            states.as_deref().unwrap_or_default(),
        )
        .await?;
        let fee = {
            let candidate = UsageEvent::new(EventKey::new(event.at, event.seq), event.properties)
                .with_precise_total_amount_cents(event.amount);
            instant_fee(charge, &prior, &candidate, days, currency)?
        };
        invoicing::bill_instant_fee::bill_instant_fee(
            &invoicing,
            catalog,
            context,
            InstantCharge {
                subscription: priced,
                charge,
                metric: &spec.metric,
                bucket: fee.bucket,
                group: &fee.group,
                fee: &fee.fee,
                transaction_id: event.transaction_id,
                event_at: event.at,
                charges_from: from,
                charges_to: to,
            },
            (deps.clock)(),
        )
        .await?;
    }
    Ok(())
}

/// Merges each touched item's deltas into its stored state: one read per item, one
/// conditional write per item.
async fn store_touched(
    deps: &Deps,
    org_id: &str,
    sub: &str,
    touched: BTreeMap<StateKey, Touch>,
) -> Result<(), ApplyError> {
    if touched.is_empty() {
        return Ok(());
    }
    let (org_id, sub) = (org_id.to_owned(), sub.to_owned());
    let keys: Vec<StateKey> = touched.keys().cloned().collect();
    let stored = deps.usage.states(&org_id, &sub, &keys).await?;
    for (key, touch) in touched {
        let current = stored.get(&key);
        let (mut state, mut applied, read_version) = match current {
            Some(s) => (
                touch.aggregator.restore(&s.snapshot)?,
                s.applied.clone(),
                Some(s.version),
            ),
            None => (touch.aggregator.empty_state(), Vec::new(), None),
        };
        let known: BTreeSet<String> = applied.iter().cloned().collect();
        let mut fresh = false;
        let mut values: BTreeMap<String, UniqueValue> = BTreeMap::new();
        let mut operations: Vec<UniqueValue> = Vec::new();
        let mut records: Vec<RecordedValue> = Vec::new();
        for (tag, delta) in &touch.deltas {
            if known.contains(tag) {
                continue;
            }
            state.merge(delta)?;
            applied.push(tag.clone());
            fresh = true;
            match delta.snapshot() {
                Ok(StateSnapshot::UniqueCount { values: vs, .. }) => {
                    for v in vs {
                        match values.get(&v.value) {
                            Some(old) if old.key() >= v.key() => {}
                            _ => {
                                values.insert(v.value.clone(), v);
                            }
                        }
                    }
                }
                Ok(StateSnapshot::ProratedUniqueCount { operations: os, .. }) => {
                    operations.extend(os);
                }
                _ => {}
            }
            records.extend(delta.recorded_values().unwrap_or_default());
        }
        if !fresh {
            continue;
        }
        // Value and record items are idempotent on their own (later operation wins, set
        // union, one item per event key), and written before the state item: a crash in
        // between is repaired by the redelivery, which rewrites them and then the state.
        if !values.is_empty() {
            let values: Vec<UniqueValue> = values.into_values().collect();
            deps.usage
                .put_unique_values(&org_id, &sub, &key, &values)
                .await?;
        }
        if !operations.is_empty() {
            deps.usage
                .put_unique_operations(&org_id, &sub, &key, &operations)
                .await?;
        }
        if !records.is_empty() {
            deps.usage
                .put_recorded_values(&org_id, &sub, &key, &records)
                .await?;
        }
        let snapshot = match state.snapshot() {
            Ok(StateSnapshot::UniqueCount { events_count, .. }) => StateSnapshot::UniqueCount {
                values: Vec::new(),
                events_count,
            },
            Ok(StateSnapshot::ProratedUniqueCount {
                period_from,
                events_count,
                ..
            }) => StateSnapshot::ProratedUniqueCount {
                period_from,
                operations: Vec::new(),
                events_count,
            },
            Ok(s) => s,
            Err(e) => return Err(ApplyError::NotStorable(e.to_string())),
        };
        let excess = applied.len().saturating_sub(APPLIED_MEMORY);
        applied.drain(..excess);
        let next = StoredState {
            key: key.clone(),
            period_to: touch.period_to,
            snapshot,
            applied,
            version: read_version.map_or(1, |v| v + 1),
        };
        deps.usage
            .put_state(&org_id, &sub, &next, read_version)
            .await?;
    }
    Ok(())
}
