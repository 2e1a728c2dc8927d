//! Folding one subscription's messages into its stored usage states.

use std::collections::{BTreeMap, BTreeSet};

use billing::{
    aggregation::{
        AggregationError, AggregationState, Aggregator, EventKey, UsageEvent,
        snapshot::{RecordedValue, StateSnapshot, UniqueValue, bucket_name},
    },
    catalog::organization::Organization,
    usage::{UsageBatch, UsageError},
};
use billing_aws::{
    StoreError,
    context::SubscriptionContext,
    usage::{APPLIED_MEMORY, StateKey, StoredState},
};
use chrono::{DateTime, Utc};
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
            let mut batch = UsageBatch::default();
            // `precise_total_amount_cents` was checked to be a number at ingestion.
            let amount = e
                .amt
                .as_deref()
                .and_then(billing::aggregation::parse_numeric);
            let event = UsageEvent::new(EventKey::new(t, e.seq), &e.props)
                .with_precise_total_amount_cents(amount);
            batch.fold(&priced.dates, &specs, &e.code, &event)?;
            for (key, usage) in batch.into_usages() {
                for (bucket, group_key, state) in usage.states() {
                    let state_key = StateKey::new(
                        key.period_from,
                        key.charge_id.clone(),
                        bucket_name(bucket),
                        group_key.values().to_vec(),
                    );
                    let touch = touched.entry(state_key).or_insert_with(|| Touch {
                        aggregator: usage.aggregator().clone(),
                        period_to: key.period_to,
                        deltas: Vec::new(),
                    });
                    touch.deltas.push((tag.clone(), state.clone()));
                }
            }
        }
    }
    if touched.is_empty() {
        return Ok(());
    }

    // 2. Merge into the stored states: one read per item, one conditional write per item.
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
