//! Usage of a subscription: which charges an event feeds, in which charges period, and how
//! per-charge states are keyed, so that the pipeline (folding batches) and the API (pricing
//! current usage) agree on one layout.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::{
    aggregation::{
        AggregationError, Aggregator, UsageEvent,
        charge_usage::ChargeUsage,
        filters::{FilterError, FilterSet, FilterValues},
    },
    catalog::metric::BillableMetric,
    period::{InvoiceBoundaries, PeriodError, SubscriptionDates},
};

/// What aggregating one charge needs: its metric, filters and pricing groups.
#[derive(Debug, Clone)]
pub struct ChargeSpec {
    /// The charge's Lago id (state is keyed by it).
    pub charge_id: String,
    /// The charge's billable metric.
    pub metric: BillableMetric,
    /// The charge filters in creation order, as `key -> values`.
    pub filters: Vec<BTreeMap<String, FilterValues>>,
    /// The charge's pricing group keys.
    pub pricing_group_keys: Vec<String>,
    /// Per filter, its own pricing group keys when it overrides the charge's.
    pub filter_group_keys: Vec<Option<Vec<String>>>,
}

/// Failure to aggregate usage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    /// The billing period could not be computed.
    #[error(transparent)]
    Period(#[from] PeriodError),
    /// The aggregation failed (overflow, mismatched states).
    #[error(transparent)]
    Aggregation(#[from] AggregationError),
    /// The charge filters do not fit the metric.
    #[error(transparent)]
    Filters(#[from] FilterError),
}

/// The key of one charge's usage in one charges period.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageKey {
    /// Start of the charges period (inclusive).
    pub period_from: DateTime<Utc>,
    /// End of the charges period (inclusive).
    pub period_to: DateTime<Utc>,
    /// The charge.
    pub charge_id: String,
}

impl ChargeSpec {
    /// An empty usage of this charge over a charges window.
    pub fn usage(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<ChargeUsage, UsageError> {
        let aggregator = Aggregator::for_metric(&self.metric, from, to)?;
        let metric_filters: Vec<(String, Vec<String>)> = self
            .metric
            .filters()
            .iter()
            .map(|f| (f.key().to_owned(), f.values().to_vec()))
            .collect();
        let filters = FilterSet::new(&metric_filters, &self.filters)?;
        Ok(ChargeUsage::new(
            aggregator,
            filters,
            self.pricing_group_keys.clone(),
            self.filter_group_keys.clone(),
        ))
    }
}

/// The charges window containing `t` for a subscription.
pub fn charges_window(
    dates: &SubscriptionDates,
    t: DateTime<Utc>,
) -> Result<InvoiceBoundaries, UsageError> {
    Ok(dates.current_usage_boundaries(t)?)
}

/// Folds events into per-(period, charge) usages: each event feeds every charge whose metric
/// code is the event's, in the charges period containing the event's timestamp.
#[derive(Debug, Default)]
pub struct UsageBatch {
    usages: BTreeMap<UsageKey, ChargeUsage>,
}

impl UsageBatch {
    /// Folds one event with metric `code` at its key's timestamp.
    pub fn fold(
        &mut self,
        dates: &SubscriptionDates,
        charges: &[ChargeSpec],
        code: &str,
        event: &UsageEvent<'_>,
    ) -> Result<usize, UsageError> {
        let mut fed = 0;
        let t = event.key().timestamp();
        for charge in charges.iter().filter(|c| c.metric.code() == code) {
            let window = charges_window(dates, t)?;
            let key = UsageKey {
                period_from: window.charges_from_datetime(),
                period_to: window.charges_to_datetime(),
                charge_id: charge.charge_id.clone(),
            };
            let usage = match self.usages.get_mut(&key) {
                Some(u) => u,
                None => {
                    let u = charge.usage(key.period_from, key.period_to)?;
                    self.usages.entry(key).or_insert(u)
                }
            };
            usage.fold(event)?;
            fed += 1;
        }
        Ok(fed)
    }

    /// The folded usages.
    pub fn usages(&self) -> &BTreeMap<UsageKey, ChargeUsage> {
        &self.usages
    }

    /// Takes the folded usages.
    pub fn into_usages(self) -> BTreeMap<UsageKey, ChargeUsage> {
        self.usages
    }
}

/// One fee's worth of priced usage: a bucket (filter or default) and group of one charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketFee {
    /// The filter bucket.
    pub bucket: crate::aggregation::filters::Bucket,
    /// The pricing group values.
    pub group: crate::aggregation::charge_usage::GroupKey,
    /// Units, events and the rounded and precise amounts.
    pub fee: crate::charge_model::fee::ChargeFee,
    /// Units before any proration (Lago's `total_aggregated_units`).
    pub total_aggregated_units: rust_decimal::Decimal,
}

/// Failure to price usage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// The aggregation failed.
    #[error(transparent)]
    Usage(#[from] UsageError),
    /// The charge model failed (overflow).
    #[error(transparent)]
    Charge(#[from] crate::charge_model::ChargeError),
}

/// The properties that price a bucket: a filter's own, else the charge's.
pub(crate) fn bucket_properties(
    charge: &crate::catalog::plan::Charge,
    bucket: crate::aggregation::filters::Bucket,
) -> &crate::charge_model::ChargeProperties {
    match bucket {
        crate::aggregation::filters::Bucket::Filter(i) => charge
            .filters()
            .get(i)
            .map_or(charge.properties(), |f| f.properties()),
        crate::aggregation::filters::Bucket::Default => charge.properties(),
    }
}

/// Projects a bucket's usage to the end of its period (Lago's projected usage): metered units
/// grow linearly with the days elapsed, `units × period days / elapsed days`, rounded to two
/// decimals; recurring units stay as they are. Returns the projected units and their price in
/// cents.
pub fn project_bucket(
    charge: &crate::catalog::plan::Charge,
    fee: &BucketFee,
    recurring: bool,
    elapsed_days: u32,
    period_days: u32,
    currency: crate::money::Currency,
) -> Result<(rust_decimal::Decimal, i64), PricingError> {
    use crate::charge_model::{PricingInput, fee::ChargeFee, price};
    use rust_decimal::{Decimal, RoundingStrategy};
    let units = fee.fee.units();
    let projected = if recurring || elapsed_days == 0 {
        units
    } else {
        (units * Decimal::from(period_days) / Decimal::from(elapsed_days))
            .round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
    };
    let input = PricingInput::new(projected).with_events_count(fee.fee.events_count());
    let amount = price(
        bucket_properties(charge, fee.bucket).model(),
        &input,
        currency,
    )?;
    let priced = ChargeFee::new(projected, fee.fee.events_count(), &amount, currency)?;
    Ok((projected, priced.amount().cents()))
}

/// The running totals a percentage charge with free units reads from a count or a unique count
/// (SEMANTICS §2.8: `[1, 2, …, units]`); none otherwise, and none without free units (then
/// nothing is free). A sum's running totals need its values in time order, which the stored
/// state does not keep.
fn counting_running_total(
    model: &crate::charge_model::ChargeModel,
    usage: &ChargeUsage,
    units: rust_decimal::Decimal,
) -> Option<u64> {
    use crate::{catalog::metric::AggregationType, charge_model::ChargeModel};
    let ChargeModel::Percentage(props) = model else {
        return None;
    };
    let has_free_units = props.free_units_per_events().is_some_and(|n| n > 0)
        || props
            .free_units_per_total_aggregation()
            .is_some_and(|f| f > rust_decimal::Decimal::ZERO);
    let counting = matches!(
        usage.aggregator().aggregation_type(),
        AggregationType::Count | AggregationType::UniqueCount
    );
    (has_free_units && counting).then(|| u64::try_from(units.floor()).unwrap_or(0))
}

/// What `model` reads of one bucket's aggregation `result` (one of `usage`'s buckets).
pub(crate) fn pricing_input(
    model: &crate::charge_model::ChargeModel,
    usage: &ChargeUsage,
    result: &crate::aggregation::AggregationResult,
) -> crate::charge_model::PricingInput {
    let mut input =
        crate::charge_model::PricingInput::new(result.units).with_events_count(result.events_count);
    if let Some(full) = result.full_units_number {
        input = input.with_full_units_number(full);
    }
    if let Some(values) = result.event_values.clone() {
        input = input.with_event_values(values);
    }
    if let Some(cents) = result.precise_total_amount_cents {
        input = input.with_precise_total_amount_cents(cents);
    }
    if let Some(n) = counting_running_total(model, usage, result.units) {
        input = input.with_counting_running_total(n);
    }
    input
}

/// Prices a charge's usage, one fee per bucket and group: each filter bucket with the
/// filter's properties, the default bucket with the charge's own.
pub fn price_charge(
    charge: &crate::catalog::plan::Charge,
    usage: &ChargeUsage,
    charges_duration_days: u32,
    currency: crate::money::Currency,
) -> Result<Vec<BucketFee>, PricingError> {
    use crate::charge_model::{fee::ChargeFee, price};
    let results = usage
        .results(rust_decimal::Decimal::ZERO, charges_duration_days)
        .map_err(UsageError::from)?;
    let mut fees = Vec::with_capacity(results.len());
    for r in results {
        let properties = bucket_properties(charge, r.bucket);
        let input = pricing_input(properties.model(), usage, &r.result);
        let amount = price(properties.model(), &input, currency)?;
        let shown = r.result.full_units_number.unwrap_or(r.result.units);
        let fee = ChargeFee::new(shown, r.result.events_count, &amount, currency)?;
        fees.push(BucketFee {
            bucket: r.bucket,
            group: r.group,
            fee,
            total_aggregated_units: r.result.total_aggregated_units.unwrap_or(shown),
        });
    }
    Ok(fees)
}
