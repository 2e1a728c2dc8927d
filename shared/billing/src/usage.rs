//! Usage of a subscription: which charges an event feeds, in which charges period, and how
//! per-charge states are keyed, so that the pipeline (folding batches) and the API (pricing
//! current usage) agree on one layout.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{
    aggregation::{
        AggregationError, Aggregator, ProrationWindow, UsageEvent,
        charge_usage::ChargeUsage,
        filters::{FilterError, FilterSet, FilterValues},
    },
    catalog::metric::{AggregationType, BillableMetric},
    charge_model::ChargeModel,
    period::{InvoiceBoundaries, PeriodError, SubscriptionDates, date_diff_with_timezone},
};

/// Which per-event values a charge must keep, because its pricing walks events in timestamp
/// order rather than reading an aggregate. Only these charge configurations cost O(events)
/// (storage, and reading at pricing time); every other charge is priced from O(1) states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRecording {
    /// Every in-period value (prorated graduated: each event is priced at its tier).
    All,
    /// The first `n` values by timestamp suffice (percentage `free_units_per_events = n`,
    /// SEMANTICS §2.8: the running total stops after N events).
    FirstEvents(u64),
    /// The values up to the first running total above this one suffice (percentage
    /// `free_units_per_total_aggregation`, SEMANTICS §2.8).
    UntilTotalExceeds(rust_decimal::Decimal),
}

impl ValueRecording {
    /// What a charge needs: `None` for every charge priced from aggregates.
    ///
    /// Per-transaction min/max of a percentage charge do not ask for values: Lago applies them
    /// only with a premium license and silently ignores them otherwise (EDGE_CASES 8); we
    /// follow Lago's open-source behaviour, so they are ignored.
    pub fn for_charge(
        charge: &crate::catalog::plan::Charge,
        metric: &BillableMetric,
    ) -> Option<Self> {
        if metric.aggregation_type() != AggregationType::Sum {
            return None;
        }
        let models = std::iter::once(charge.properties().model())
            .chain(charge.filters().iter().map(|f| f.properties().model()));
        let mut need: Option<Self> = None;
        for model in models {
            let this = match model {
                ChargeModel::Graduated(_) if charge.prorated() && metric.recurring() => {
                    Some(Self::All)
                }
                ChargeModel::Percentage(p) => match (
                    p.free_units_per_events().filter(|n| *n > 0),
                    p.free_units_per_total_aggregation()
                        .filter(|f| *f > rust_decimal::Decimal::ZERO),
                ) {
                    (Some(n), _) => Some(Self::FirstEvents(n)),
                    (None, Some(f)) => Some(Self::UntilTotalExceeds(f)),
                    (None, None) => None,
                },
                _ => None,
            };
            need = match (need, this) {
                (None, x) | (x, None) => x,
                (Some(a), Some(b)) if a == b => Some(a),
                (Some(Self::FirstEvents(a)), Some(Self::FirstEvents(b))) => {
                    Some(Self::FirstEvents(a.max(b)))
                }
                // Filters asking for different prefixes: keep everything.
                _ => Some(Self::All),
            };
        }
        need
    }
}

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
    /// The charge is prorated (`charge.prorated`): a recurring sum or unique count is billed
    /// for the days each unit was held (SEMANTICS §2.6).
    pub prorated: bool,
    /// The customer's applicable timezone: proration counts its calendar days.
    pub timezone: Tz,
    /// The per-event values the charge's pricing needs, if any.
    pub value_recording: Option<ValueRecording>,
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
    /// The spec of `charge` priced on `metric`, for a customer in `timezone`.
    pub fn for_charge(
        charge: &crate::catalog::plan::Charge,
        metric: &BillableMetric,
        timezone: Tz,
    ) -> Self {
        Self {
            charge_id: charge.lago_id().to_owned(),
            metric: metric.clone(),
            filters: charge.filters().iter().map(|f| f.filter_values()).collect(),
            pricing_group_keys: charge.pricing_group_keys().to_vec(),
            filter_group_keys: charge
                .filters()
                .iter()
                .map(|f| {
                    let keys = f.properties().pricing_group_keys();
                    (!keys.is_empty()).then(|| keys.to_vec())
                })
                .collect(),
            prorated: charge.prorated(),
            timezone,
            value_recording: ValueRecording::for_charge(charge, metric),
        }
    }

    /// Whether this charge aggregates prorated (SEMANTICS §2.6: a recurring sum or unique
    /// count on a prorated charge; the flag is ignored elsewhere, as Lago validates it away).
    pub fn is_prorated(&self) -> bool {
        self.prorated
            && self.metric.recurring()
            && matches!(
                self.metric.aggregation_type(),
                AggregationType::Sum | AggregationType::UniqueCount
            )
    }

    /// An empty usage of this charge over a charges window `[from, to]` of a period of
    /// `charges_duration_days` days (the proration denominator).
    pub fn usage(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        charges_duration_days: u32,
    ) -> Result<ChargeUsage, UsageError> {
        let mut aggregator = Aggregator::for_metric(&self.metric, from, to)?;
        if self.is_prorated() {
            let days = u32::try_from(date_diff_with_timezone(from, to, self.timezone).max(0))
                .unwrap_or(u32::MAX);
            aggregator = aggregator.prorated(ProrationWindow::new(
                from,
                to,
                self.timezone,
                charges_duration_days,
                days,
            )?);
        }
        if self.value_recording.is_some() {
            aggregator = aggregator.recording_values();
        }
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
                    let u = charge.usage(
                        key.period_from,
                        key.period_to,
                        window.charges_duration_days(),
                    )?;
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

/// What `model` reads of one bucket's aggregation `result` (one of `usage`'s buckets), for a
/// charge that is `prorated` or not.
pub(crate) fn pricing_input(
    model: &crate::charge_model::ChargeModel,
    usage: &ChargeUsage,
    result: &crate::aggregation::AggregationResult,
    prorated: bool,
) -> crate::charge_model::PricingInput {
    let mut input =
        crate::charge_model::PricingInput::new(result.units).with_events_count(result.events_count);
    if let Some(full) = result.full_units_number {
        input = input.with_full_units_number(full);
    }
    if prorated {
        // Volume picks its tier from the full units (SEMANTICS §4.4).
        input = input.prorated();
    }
    if let Some(values) = result.event_values.clone() {
        if let Some(rt) = sum_running_total(model, usage, &values) {
            input = input.with_running_total(rt);
        }
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

/// The running totals a percentage charge with free units reads from a sum's recorded values
/// in time order (SEMANTICS §2.8); none for other models or aggregations.
fn sum_running_total(
    model: &crate::charge_model::ChargeModel,
    usage: &ChargeUsage,
    values_in_order: &[rust_decimal::Decimal],
) -> Option<Vec<rust_decimal::Decimal>> {
    let crate::charge_model::ChargeModel::Percentage(props) = model else {
        return None;
    };
    (usage.aggregator().aggregation_type() == AggregationType::Sum).then(|| {
        crate::aggregation::sum_running_total(
            values_in_order,
            props.free_units_per_events(),
            props.free_units_per_total_aggregation(),
        )
    })
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
        let input = pricing_input(properties.model(), usage, &r.result, charge.prorated());
        let amount = match (properties.model(), &r.result.prorated_events) {
            // Prorated graduated: each event is priced at the tier its running full total
            // reaches (SEMANTICS §2.6).
            (crate::charge_model::ChargeModel::Graduated(ranges), Some(events)) => {
                crate::charge_model::graduated::price_prorated(ranges, events)?
            }
            (model, _) => price(model, &input, currency)?,
        };
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

/// Prices a charge's **full** units at full price, one fee per bucket and group: a recurring
/// pay-in-advance charge at renewal (SEMANTICS §4.9), where a prorated charge's units are
/// billed with no proration.
pub fn price_full_units(
    charge: &crate::catalog::plan::Charge,
    usage: &ChargeUsage,
    charges_duration_days: u32,
    currency: crate::money::Currency,
) -> Result<Vec<BucketFee>, PricingError> {
    use crate::charge_model::{PricingInput, fee::ChargeFee, price};
    let results = usage
        .results(rust_decimal::Decimal::ZERO, charges_duration_days)
        .map_err(UsageError::from)?;
    let mut fees = Vec::with_capacity(results.len());
    for r in results {
        let properties = bucket_properties(charge, r.bucket);
        let full = r.result.full_units_number.unwrap_or(r.result.units);
        let input = PricingInput::new(full).with_events_count(r.result.events_count);
        let amount = price(properties.model(), &input, currency)?;
        let fee = ChargeFee::new(full, r.result.events_count, &amount, currency)?;
        fees.push(BucketFee {
            bucket: r.bucket,
            group: r.group,
            fee,
            total_aggregated_units: full,
        });
    }
    Ok(fees)
}
