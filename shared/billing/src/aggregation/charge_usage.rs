//! The usage of one charge in one period: events split by charge filter (most specific wins)
//! and by pricing group, each bucket folded into its own aggregation state.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{
    AggregationError, AggregationResult, AggregationState, Aggregator, EventProperties, UsageEvent,
    filters::{Bucket, FilterSet},
};

/// The values of a charge's `pricing_group_keys` for one event; a missing key is `None`
/// (Lago's `nil` group).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey(Vec<Option<String>>);

impl GroupKey {
    /// The group of an event for `keys`.
    pub fn of(keys: &[String], event: &dyn EventProperties) -> Self {
        Self(
            keys.iter()
                .map(|k| event.property(k).map(str::to_owned))
                .collect(),
        )
    }

    /// The values, one per pricing group key.
    pub fn values(&self) -> &[Option<String>] {
        &self.0
    }
}

/// One fee's worth of usage: a bucket, a pricing group, its aggregation result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketUsage {
    /// The charge filter (or default bucket).
    pub bucket: Bucket,
    /// The pricing group (empty without pricing group keys).
    pub group: GroupKey,
    /// The aggregated units.
    pub result: AggregationResult,
}

/// Incremental usage of one charge: fold events, merge partial usages, read per-bucket results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeUsage {
    aggregator: Aggregator,
    filters: FilterSet,
    default_group_keys: Vec<String>,
    filter_group_keys: Vec<Option<Vec<String>>>,
    states: BTreeMap<(Bucket, GroupKey), AggregationState>,
}

impl ChargeUsage {
    /// Usage for a charge with `filters`, grouped by the charge's `pricing_group_keys`; a
    /// filter may override the grouping with its own keys (`filter_group_keys[i]`).
    pub fn new(
        aggregator: Aggregator,
        filters: FilterSet,
        pricing_group_keys: Vec<String>,
        filter_group_keys: Vec<Option<Vec<String>>>,
    ) -> Self {
        Self {
            aggregator,
            filters,
            default_group_keys: pricing_group_keys,
            filter_group_keys,
            states: BTreeMap::new(),
        }
    }

    fn group_keys(&self, bucket: Bucket) -> &[String] {
        match bucket {
            Bucket::Filter(i) => self
                .filter_group_keys
                .get(i)
                .and_then(|k| k.as_deref())
                .unwrap_or(&self.default_group_keys),
            Bucket::Default => &self.default_group_keys,
        }
    }

    /// Folds one event into every bucket that claims it.
    pub fn fold(&mut self, event: &UsageEvent<'_>) -> Result<(), AggregationError> {
        let properties = event.properties();
        for bucket in self.filters.buckets_of(properties) {
            let group = GroupKey::of(self.group_keys(bucket), properties);
            let state = match self.states.get_mut(&(bucket, group.clone())) {
                Some(s) => s,
                None => self
                    .states
                    .entry((bucket, group))
                    .or_insert(self.aggregator.empty_state()),
            };
            self.aggregator.fold(state, event)?;
        }
        Ok(())
    }

    /// Merges another partial usage of the same charge and period.
    pub fn merge(&mut self, other: &ChargeUsage) -> Result<(), AggregationError> {
        for (k, s) in &other.states {
            match self.states.get_mut(k) {
                Some(mine) => mine.merge(s)?,
                None => {
                    self.states.insert(k.clone(), s.clone());
                }
            }
        }
        Ok(())
    }

    /// One result per bucket and group. Buckets that saw no event still yield a result (for a
    /// flat first tier): the default bucket and every filter, in the empty group.
    pub fn results(
        &self,
        initial_level: Decimal,
        charges_duration_days: u32,
    ) -> Result<Vec<BucketUsage>, AggregationError> {
        let mut out = Vec::new();
        let buckets = (0..self.filters.len())
            .map(Bucket::Filter)
            .chain(std::iter::once(Bucket::Default));
        for bucket in buckets {
            let mut any = false;
            for ((b, group), state) in self.states.range((bucket, GroupKey::default())..) {
                if *b != bucket {
                    break;
                }
                any = true;
                out.push(BucketUsage {
                    bucket,
                    group: group.clone(),
                    result: self
                        .aggregator
                        .result(state, initial_level, charges_duration_days)?,
                });
            }
            if !any {
                out.push(BucketUsage {
                    bucket,
                    group: GroupKey::default(),
                    result: self.aggregator.result(
                        &self.aggregator.empty_state(),
                        initial_level,
                        charges_duration_days,
                    )?,
                });
            }
        }
        Ok(out)
    }
}

impl ChargeUsage {
    /// Every bucket and group that saw an event, with its state.
    pub fn states(&self) -> impl Iterator<Item = (Bucket, &GroupKey, &AggregationState)> {
        self.states.iter().map(|((b, g), s)| (*b, g, s))
    }

    /// The aggregator every bucket uses.
    pub fn aggregator(&self) -> &Aggregator {
        &self.aggregator
    }

    /// Merges a stored state into one bucket and group.
    pub fn merge_state(
        &mut self,
        bucket: Bucket,
        group: GroupKey,
        state: &AggregationState,
    ) -> Result<(), AggregationError> {
        match self.states.get_mut(&(bucket, group.clone())) {
            Some(mine) => mine.merge(state),
            None => {
                self.states.insert((bucket, group), state.clone());
                Ok(())
            }
        }
    }
}

impl ChargeUsage {
    /// Where a pay-in-advance event is billed: the matching filter with the most keys (else
    /// the default bucket), in the event's pricing group for that bucket. Lago prices an
    /// instant fee on that one bucket only (SEMANTICS §1.3, §4.9).
    pub fn pay_in_advance_bucket_of(&self, event: &UsageEvent<'_>) -> (Bucket, GroupKey) {
        let properties = event.properties();
        let bucket = self.filters.pay_in_advance_bucket_of(properties);
        let group = GroupKey::of(self.group_keys(bucket), properties);
        (bucket, group)
    }

    /// The state of one bucket and group, empty when it saw no event.
    pub fn bucket_state(&self, bucket: Bucket, group: &GroupKey) -> AggregationState {
        self.states
            .get(&(bucket, group.clone()))
            .cloned()
            .unwrap_or_else(|| self.aggregator.empty_state())
    }
}

impl GroupKey {
    /// A group from its values (one per pricing group key; `None` is Lago's nil group).
    pub fn from_values(values: Vec<Option<String>>) -> Self {
        Self(values)
    }
}
