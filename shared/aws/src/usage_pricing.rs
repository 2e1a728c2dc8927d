//! A charge's usage over a charges window, restored from the pre-aggregated states: what
//! current usage (an open period) and invoicing (a closed one) both price, read the same way.

use billing::{
    aggregation::{
        charge_usage::{ChargeUsage, GroupKey},
        snapshot::{StateSnapshot, parse_bucket},
    },
    usage::{ChargeSpec, UsageError, ValueRecording},
};
use chrono::{DateTime, Utc};

use crate::{
    StoreError,
    usage::{RecordRead, StoredState, UsageStore},
};

/// Failure to restore usage.
#[derive(Debug, thiserror::Error)]
pub enum UsagePricingError {
    /// The usage table could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The states do not fit the charge (an aggregation or period mismatch).
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// A stored state could not be restored.
    #[error(transparent)]
    Aggregation(#[from] billing::aggregation::AggregationError),
}

/// The usage of `spec`'s charge over `[from, to]`: every state of that window (and, for a
/// recurring metric, of earlier windows, whose units carry over), merged per filter bucket
/// and pricing group. `states` are the subscription's states starting at or before `from`
/// ([`UsageStore::states_upto`]); unique counts read their value items, and charges priced
/// event by event read the window's recorded values (only as far as their rule needs: O(events)
/// at worst, for prorated graduated). `charges_duration_days` is the proration denominator.
#[allow(clippy::too_many_arguments)]
pub async fn charge_usage(
    usage_store: &UsageStore,
    org_id: &str,
    external_subscription_id: &str,
    spec: &ChargeSpec,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    charges_duration_days: u32,
    states: &[StoredState],
) -> Result<ChargeUsage, UsagePricingError> {
    let mut usage = spec.usage(from, to, charges_duration_days)?;
    let recurring = spec.metric.recurring();
    let from_ms = from.timestamp_millis();
    for stored in states.iter().filter(|s| {
        let period_ms = s.key.period_from.timestamp_millis();
        s.key.charge_id == spec.charge_id
            && (period_ms == from_ms || (recurring && period_ms < from_ms))
    }) {
        let Some(bucket) = parse_bucket(&stored.key.bucket) else {
            continue;
        };
        let snapshot = match &stored.snapshot {
            StateSnapshot::UniqueCount { events_count, .. } => StateSnapshot::UniqueCount {
                values: usage_store
                    .unique_values(org_id, external_subscription_id, &stored.key)
                    .await?,
                events_count: *events_count,
            },
            StateSnapshot::ProratedUniqueCount {
                period_from,
                events_count,
                ..
            } => StateSnapshot::ProratedUniqueCount {
                period_from: *period_from,
                operations: usage_store
                    .unique_operations(org_id, external_subscription_id, &stored.key)
                    .await?,
                events_count: *events_count,
            },
            other => other.clone(),
        };
        let mut state = usage.aggregator().restore(&snapshot)?;
        // Only the window's own events are priced one by one; carried periods count as their
        // persisted total.
        let own = stored.key.period_from.timestamp_millis() == from_ms;
        if let (Some(recording), true) = (spec.value_recording, own) {
            let read = match recording {
                ValueRecording::All => RecordRead::All,
                ValueRecording::FirstEvents(n) => RecordRead::First(n),
                ValueRecording::UntilTotalExceeds(f) => RecordRead::UntilTotalExceeds(f),
            };
            let values = usage_store
                .recorded_values(org_id, external_subscription_id, &stored.key, read)
                .await?;
            state = state.with_recorded_values(&values);
        }
        usage.merge_state(
            bucket,
            GroupKey::from_values(stored.key.group.clone()),
            &state,
        )?;
    }
    Ok(usage)
}
