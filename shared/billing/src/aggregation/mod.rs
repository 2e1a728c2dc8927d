//! Aggregations: how the events of a period become units (SEMANTICS §1-§2).
//!
//! Two layers:
//! - [`states`] and [`prorated`]: one typed, incremental state per aggregation type (`fold`
//!   one event, `merge` a partial state, read the units). These are the hot loops.
//! - [`Aggregator`] + [`AggregationState`]: a billable metric's configuration (field, window,
//!   recurring, proration, rounding) applied to raw [`UsageEvent`]s: it extracts the property,
//!   drops values that are not numbers as Lago does, keeps the window, and folds into the right
//!   state. [`charge_usage::ChargeUsage`] adds charge filters and pricing groups on top.
//!
//! Every state is order-independent: a fold over all events equals any merge of folds over a
//! partition of them (proven by property tests), so the pipeline may pre-aggregate.

pub mod charge_usage;
pub mod filters;
pub mod prorated;
pub mod snapshot;
pub mod states;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use crate::catalog::metric::{AggregationType, RoundingFunction};
pub use prorated::{ProratedSumState, ProratedUniqueCountState, ProrationWindow};
pub use states::{CountState, LatestState, MaxState, SumState, UniqueCountState, WeightedSumState};

/// What can go wrong while aggregating.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AggregationError {
    /// A sum or product left the `Decimal` range.
    #[error("aggregation overflow")]
    Overflow,
    /// Two partial states of different periods or types were merged.
    #[error("cannot merge states of different periods or aggregation types")]
    PeriodMismatch,
    /// A period of zero days was given as a proration denominator.
    #[error("the charges period has no days")]
    EmptyPeriod,
    /// The aggregator needs a property name (every type but count).
    #[error("the metric has no field_name")]
    MissingFieldName,
}

/// An event's position in time: its timestamp, then its ingestion order (Lago breaks timestamp
/// ties by `(created_at, id)`; the pipeline supplies a sequence with the same meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventKey {
    timestamp: DateTime<Utc>,
    sequence: u64,
}

impl EventKey {
    /// An event at `timestamp`, the `sequence`-th ingested.
    pub fn new(timestamp: DateTime<Utc>, sequence: u64) -> Self {
        Self {
            timestamp,
            sequence,
        }
    }

    /// When the event happened.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }

    /// The ingestion order among events of the same timestamp.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

/// A unique-count event's `operation_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// The value becomes active (the default).
    Add,
    /// The value stops being active.
    Remove,
}

impl Operation {
    /// Reads `properties.operation_type`: `"remove"` is a removal, anything else an add.
    pub fn from_property(value: Option<&str>) -> Self {
        match value {
            Some("remove") => Self::Remove,
            _ => Self::Add,
        }
    }
}

/// Parses an event value the way Lago's numeric aggregations accept it: the whole string must
/// match `^-?\d+(\.\d+)?$`. `"1e3"`, `".5"`, `"+2"`, `"1."` and `"foo"` are `None`, and such
/// events are ignored (neither a value nor an event).
pub fn parse_numeric(raw: &str) -> Option<Decimal> {
    let bytes = raw.as_bytes();
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let (int, frac) = match digits.iter().position(|&b| b == b'.') {
        Some(dot) => (&digits[..dot], Some(&digits[dot + 1..])),
        None => (digits, None),
    };
    let all_digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if !all_digits(int) || frac.is_some_and(|f| !all_digits(f)) {
        return None;
    }
    // A value too long for `Decimal` cannot be aggregated exactly; it is ignored like any
    // other value that is not a number.
    raw.parse::<Decimal>().ok()
}

/// Applies a metric's rounding option to aggregated units (SEMANTICS §2.7): `round` half-up,
/// `ceil` or `floor` to `precision` decimals (default 0; negative rounds to tens, hundreds...).
pub fn apply_metric_rounding(
    units: Decimal,
    function: RoundingFunction,
    precision: Option<i32>,
) -> Decimal {
    let strategy = match function {
        RoundingFunction::Round => RoundingStrategy::MidpointAwayFromZero,
        RoundingFunction::Ceil => RoundingStrategy::ToPositiveInfinity,
        RoundingFunction::Floor => RoundingStrategy::ToNegativeInfinity,
    };
    let precision = precision.unwrap_or(0);
    if precision >= 0 {
        return units.round_dp_with_strategy(precision.unsigned_abs(), strategy);
    }
    // Negative precision: scale down by 10^k, round to an integer, scale back.
    let k = precision.unsigned_abs().min(28);
    let Some(factor) = rust_decimal::MathematicalOps::checked_powu(&Decimal::TEN, u64::from(k))
    else {
        return units;
    };
    let Some(scaled) = units.checked_div(factor) else {
        return units;
    };
    scaled
        .round_dp_with_strategy(0, strategy)
        .checked_mul(factor)
        .unwrap_or(units)
}

/// The per-charge cache Lago keeps for pay-in-advance charges (`CachedAggregation`,
/// SEMANTICS §2.9): the running value and the period maximum. Only increases above the maximum
/// are billed, so a removal followed by a re-add is not charged twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CachedAggregation {
    current_aggregation: Decimal,
    max_aggregation: Decimal,
}

impl CachedAggregation {
    /// A cache holding the given running value and maximum.
    pub fn new(current_aggregation: Decimal, max_aggregation: Decimal) -> Self {
        Self {
            current_aggregation,
            max_aggregation,
        }
    }

    /// The running value.
    pub fn current_aggregation(&self) -> Decimal {
        self.current_aggregation
    }

    /// The period maximum.
    pub fn max_aggregation(&self) -> Decimal {
        self.max_aggregation
    }

    /// Applies one event's delta (a sum value, or ±1 for an effective unique-count
    /// operation) and returns the billable units: `current' − max` when the new running value
    /// exceeds the maximum, else 0. Spec: current 4, max 10, +10 → 4; −2 → 0.
    pub fn apply(&mut self, delta: Decimal) -> Result<Decimal, AggregationError> {
        let current = self
            .current_aggregation
            .checked_add(delta)
            .ok_or(AggregationError::Overflow)?;
        self.current_aggregation = current;
        if current > self.max_aggregation {
            let billable = current - self.max_aggregation;
            self.max_aggregation = current;
            Ok(billable)
        } else {
            Ok(Decimal::ZERO)
        }
    }

    /// Current-usage units of a pay-in-advance charge: units already paid stay visible,
    /// `total − current + max`.
    pub fn current_usage_units(&self, total: Decimal) -> Decimal {
        total - self.current_aggregation + self.max_aggregation
    }
}

/// The running totals the percentage model's free units need (SEMANTICS §2.8), from a sum's
/// values in time order: with `N = free_units_per_events > 0`, the cumulative sums of the first
/// N values; otherwise with `F = free_units_per_total_aggregation > 0`, cumulative sums up to
/// and including the first that exceeds F; otherwise none.
pub fn sum_running_total(
    values_in_order: &[Decimal],
    free_units_per_events: Option<u64>,
    free_units_per_total_aggregation: Option<Decimal>,
) -> Vec<Decimal> {
    let mut out = Vec::new();
    let mut total = Decimal::ZERO;
    match (
        free_units_per_events.filter(|n| *n > 0),
        free_units_per_total_aggregation,
    ) {
        (Some(n), _) => {
            for v in values_in_order
                .iter()
                .take(usize::try_from(n).unwrap_or(usize::MAX))
            {
                total += *v;
                out.push(total);
            }
        }
        (None, Some(f)) if f > Decimal::ZERO => {
            for v in values_in_order {
                total += *v;
                out.push(total);
                if total > f {
                    break;
                }
            }
        }
        _ => {}
    }
    out
}

/// The running totals of a count or unique count: `[1, 2, …, units]`.
pub fn counting_running_total(units: Decimal) -> Vec<Decimal> {
    let n = i64::try_from(units.floor()).unwrap_or(0).max(0);
    (1..=n).map(Decimal::from).collect()
}

/// Read access to an event's properties, so the pipeline can pass its own map type.
pub trait EventProperties {
    /// The property's value as sent (all properties are compared as strings).
    fn property(&self, key: &str) -> Option<&str>;
}

impl EventProperties for std::collections::BTreeMap<String, String> {
    fn property(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl EventProperties for std::collections::HashMap<String, String> {
    fn property(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl EventProperties for Vec<(String, String)> {
    fn property(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl EventProperties for [(&str, &str)] {
    fn property(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }
}

impl<const N: usize> EventProperties for [(&str, &str); N] {
    fn property(&self, key: &str) -> Option<&str> {
        self.as_slice().property(key)
    }
}

/// One usage event as the aggregation sees it.
#[derive(Clone, Copy)]
pub struct UsageEvent<'a> {
    key: EventKey,
    properties: &'a dyn EventProperties,
    precise_total_amount_cents: Option<Decimal>,
}

impl<'a> UsageEvent<'a> {
    /// An event at `key` with its properties.
    pub fn new(key: EventKey, properties: &'a dyn EventProperties) -> Self {
        Self {
            key,
            properties,
            precise_total_amount_cents: None,
        }
    }

    /// The same event carrying its own price (`precise_total_amount_cents`, for `dynamic`).
    pub fn with_precise_total_amount_cents(mut self, cents: Option<Decimal>) -> Self {
        self.precise_total_amount_cents = cents;
        self
    }

    /// The price the event carries, if any.
    pub fn precise_total_amount_cents(&self) -> Option<Decimal> {
        self.precise_total_amount_cents
    }

    /// Position in time.
    pub fn key(&self) -> EventKey {
        self.key
    }

    /// A property by name.
    pub fn property(&self, name: &str) -> Option<&'a str> {
        self.properties.property(name)
    }

    /// All properties.
    pub fn properties(&self) -> &'a dyn EventProperties {
        self.properties
    }
}

impl std::fmt::Debug for UsageEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UsageEvent")
            .field("key", &self.key)
            .finish()
    }
}

/// How a charge aggregates its metric over one period: the metric's type, field and rounding,
/// plus the charges window and, for prorated charges, the proration frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregator {
    aggregation_type: AggregationType,
    field_name: Option<String>,
    recurring: bool,
    from_datetime: DateTime<Utc>,
    to_datetime: DateTime<Utc>,
    proration: Option<ProrationWindow>,
    rounding: Option<(RoundingFunction, Option<i32>)>,
    record_values: bool,
}

impl Aggregator {
    /// An aggregator for a metric over the charges window `[from, to]` (both inclusive).
    pub fn new(
        aggregation_type: AggregationType,
        field_name: Option<&str>,
        recurring: bool,
        from_datetime: DateTime<Utc>,
        to_datetime: DateTime<Utc>,
    ) -> Result<Self, AggregationError> {
        if aggregation_type.needs_field_name() && field_name.is_none() {
            return Err(AggregationError::MissingFieldName);
        }
        Ok(Self {
            aggregation_type,
            field_name: field_name.map(str::to_owned),
            recurring,
            from_datetime,
            to_datetime,
            proration: None,
            rounding: None,
            record_values: false,
        })
    }

    /// The same aggregator for a metric definition.
    pub fn for_metric(
        metric: &crate::catalog::metric::BillableMetric,
        from_datetime: DateTime<Utc>,
        to_datetime: DateTime<Utc>,
    ) -> Result<Self, AggregationError> {
        let mut a = Self::new(
            metric.aggregation_type(),
            metric.field_name(),
            metric.recurring(),
            from_datetime,
            to_datetime,
        )?;
        a.rounding = metric
            .rounding_function()
            .map(|f| (f, metric.rounding_precision()));
        Ok(a)
    }

    /// Prorates a recurring sum or unique count over `window` (a prorated charge).
    pub fn prorated(mut self, window: ProrationWindow) -> Self {
        self.proration = Some(window);
        self
    }

    /// Applies a metric rounding option to the result.
    pub fn with_rounding(mut self, function: RoundingFunction, precision: Option<i32>) -> Self {
        self.rounding = Some((function, precision));
        self
    }

    /// Keeps each sum value (for percentage free units, per-transaction limits and prorated
    /// graduated pricing).
    pub fn recording_values(mut self) -> Self {
        self.record_values = true;
        self
    }

    /// The proration frame of a prorated charge.
    pub fn proration(&self) -> Option<&ProrationWindow> {
        self.proration.as_ref()
    }

    /// Whether each numeric value is kept (see [`Aggregator::recording_values`]).
    pub fn records_values(&self) -> bool {
        self.record_values
    }

    /// The aggregation type.
    pub fn aggregation_type(&self) -> AggregationType {
        self.aggregation_type
    }

    /// An empty state for this aggregator.
    pub fn empty_state(&self) -> AggregationState {
        let kind = match (self.aggregation_type, self.proration) {
            (AggregationType::Count, _) => StateKind::Count(CountState::default()),
            (AggregationType::Sum, Some(w)) => StateKind::ProratedSum(ProratedSumState::new(w)),
            (AggregationType::Sum, None) => StateKind::Sum(SumState::default()),
            (AggregationType::Max, _) => StateKind::Max(MaxState::default()),
            (AggregationType::Latest, _) => StateKind::Latest(LatestState::default()),
            (AggregationType::UniqueCount, Some(w)) => {
                StateKind::ProratedUniqueCount(ProratedUniqueCountState::new(w))
            }
            (AggregationType::UniqueCount, None) => {
                StateKind::UniqueCount(UniqueCountState::default())
            }
            (AggregationType::WeightedSum, _) => {
                StateKind::WeightedSum(WeightedSumState::new(self.to_datetime))
            }
        };
        AggregationState {
            kind,
            values: self.record_values.then(Vec::new),
        }
    }

    /// Whether an event at `t` belongs to the period: `from <= t <= to`, without the lower
    /// bound for recurring sums and unique counts (and their prorated forms).
    pub fn in_window(&self, t: DateTime<Utc>) -> bool {
        let lower_bound = !(self.recurring
            && matches!(
                self.aggregation_type,
                AggregationType::Sum | AggregationType::UniqueCount
            ));
        t <= self.to_datetime && (!lower_bound || t >= self.from_datetime)
    }

    /// Folds one event into `state`: ignores events outside the window and, for numeric
    /// types, events whose value is missing or not a number.
    pub fn fold(
        &self,
        state: &mut AggregationState,
        event: &UsageEvent<'_>,
    ) -> Result<(), AggregationError> {
        let key = event.key();
        if !self.in_window(key.timestamp()) {
            return Ok(());
        }
        let raw = self.field_name.as_deref().and_then(|f| event.property(f));
        match &mut state.kind {
            StateKind::Count(s) => s.fold(),
            StateKind::UniqueCount(s) => {
                if let Some(v) = raw {
                    s.fold(
                        key,
                        v,
                        Operation::from_property(event.property("operation_type")),
                    );
                }
            }
            StateKind::ProratedUniqueCount(s) => {
                if let Some(v) = raw {
                    s.fold(
                        key,
                        v,
                        Operation::from_property(event.property("operation_type")),
                    );
                }
            }
            kind => {
                let Some(value) = raw.and_then(parse_numeric) else {
                    return Ok(());
                };
                match kind {
                    StateKind::Sum(s) => {
                        s.fold(value)?;
                        if let Some(cents) = event.precise_total_amount_cents() {
                            s.add_precise_total_amount_cents(cents)?;
                        }
                    }
                    StateKind::Max(s) => s.fold(value),
                    StateKind::Latest(s) => s.fold(key, value),
                    StateKind::WeightedSum(s) => s.fold(key.timestamp(), value)?,
                    StateKind::ProratedSum(s) => s.fold(key, value)?,
                    _ => {}
                }
                if let Some(values) = &mut state.values {
                    values.push((key, value));
                }
            }
        }
        Ok(())
    }

    /// Reads the result of a state: units (after the metric rounding option), events count
    /// and the extra figures some types carry. `initial_level` is the weighted sum's starting
    /// level (the previous period's persisted level when recurring, else 0).
    pub fn result(
        &self,
        state: &AggregationState,
        initial_level: Decimal,
        charges_duration_days: u32,
    ) -> Result<AggregationResult, AggregationError> {
        let mut r = AggregationResult::default();
        match &state.kind {
            StateKind::Count(s) => {
                r.units = s.units();
                r.events_count = s.events_count();
            }
            StateKind::Sum(s) => {
                r.units = s.units();
                r.events_count = s.events_count();
                r.precise_total_amount_cents = Some(s.precise_total_amount_cents());
            }
            StateKind::Max(s) => {
                r.units = s.units();
                r.events_count = s.events_count();
            }
            StateKind::Latest(s) => {
                r.units = s.units();
                r.events_count = s.events_count();
            }
            StateKind::UniqueCount(s) => {
                r.units = s.units();
                r.events_count = s.events_count();
            }
            StateKind::WeightedSum(s) => {
                r.units = s.units(self.from_datetime, initial_level, charges_duration_days)?;
                r.events_count = s.events_count();
                r.variation = Some(s.variation());
                r.total_aggregated_units = Some(s.total_aggregated_units(initial_level));
            }
            StateKind::ProratedSum(s) => {
                r.units = s.units()?;
                r.events_count = s.events_count();
                r.full_units_number = Some(s.full_units_number());
                r.prorated_events = state.values.as_deref().map(|v| s.prorated_events(v));
            }
            StateKind::ProratedUniqueCount(s) => {
                r.units = s.units();
                r.events_count = s.events_count();
                r.full_units_number = Some(s.active_count());
                r.current_usage_units = Some(s.active_count());
            }
        }
        if let Some((function, precision)) = self.rounding {
            r.units = apply_metric_rounding(r.units, function, precision);
            r.full_units_number = r
                .full_units_number
                .map(|u| apply_metric_rounding(u, function, precision));
            r.current_usage_units = r
                .current_usage_units
                .map(|u| apply_metric_rounding(u, function, precision));
        }
        if let Some(values) = &state.values {
            let mut sorted = values.clone();
            sorted.sort_by_key(|(k, _)| *k);
            r.event_values = Some(sorted.into_iter().map(|(_, v)| v).collect());
        }
        Ok(r)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StateKind {
    Count(CountState),
    Sum(SumState),
    Max(MaxState),
    Latest(LatestState),
    UniqueCount(UniqueCountState),
    WeightedSum(WeightedSumState),
    ProratedSum(ProratedSumState),
    ProratedUniqueCount(ProratedUniqueCountState),
}

/// A partial aggregation of one charge bucket: produced by [`Aggregator::empty_state`], fed by
/// [`Aggregator::fold`], combined with [`AggregationState::merge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregationState {
    kind: StateKind,
    values: Option<Vec<(EventKey, Decimal)>>,
}

impl AggregationState {
    /// Merges another partial state of the same aggregator.
    pub fn merge(&mut self, other: &AggregationState) -> Result<(), AggregationError> {
        match (&mut self.kind, &other.kind) {
            (StateKind::Count(a), StateKind::Count(b)) => a.merge(b),
            (StateKind::Sum(a), StateKind::Sum(b)) => a.merge(b)?,
            (StateKind::Max(a), StateKind::Max(b)) => a.merge(b),
            (StateKind::Latest(a), StateKind::Latest(b)) => a.merge(b),
            (StateKind::UniqueCount(a), StateKind::UniqueCount(b)) => a.merge(b),
            (StateKind::WeightedSum(a), StateKind::WeightedSum(b)) => a.merge(b)?,
            (StateKind::ProratedSum(a), StateKind::ProratedSum(b)) => a.merge(b)?,
            (StateKind::ProratedUniqueCount(a), StateKind::ProratedUniqueCount(b)) => a.merge(b)?,
            _ => return Err(AggregationError::PeriodMismatch),
        }
        if let (Some(a), Some(b)) = (&mut self.values, &other.values) {
            a.extend_from_slice(b);
        }
        Ok(())
    }
}

/// What an aggregation yields for pricing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AggregationResult {
    /// The units priced (prorated when the charge is prorated), after metric rounding.
    pub units: Decimal,
    /// Events that contributed (Lago's `events_count`).
    pub events_count: u64,
    /// The non-prorated units of a prorated aggregation (shown as the fee's units).
    pub full_units_number: Option<Decimal>,
    /// Units for current usage when they differ from `units`.
    pub current_usage_units: Option<Decimal>,
    /// The weighted sum's level at period end, persisted for the next period.
    pub total_aggregated_units: Option<Decimal>,
    /// The weighted sum's `Σ deltas`.
    pub variation: Option<Decimal>,
    /// The numeric values in time order, when the aggregator records them.
    pub event_values: Option<Vec<Decimal>>,
    /// `Σ precise_total_amount_cents` of a sum's events (what a `dynamic` charge bills).
    pub precise_total_amount_cents: Option<Decimal>,
    /// `(full, prorated)` value per event for prorated graduated pricing.
    pub prorated_events: Option<Vec<(Decimal, Decimal)>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn only_plain_decimal_strings_are_numbers() {
        // SEMANTICS §1.1: ^-?\d+(\.\d+)?$
        let accepted = [
            ("12", dec!(12)),
            ("-3.5", dec!(-3.5)),
            ("0", dec!(0)),
            ("007", dec!(7)),
        ];
        for (raw, v) in accepted {
            assert_eq!(parse_numeric(raw), Some(v), "{raw}");
        }
        for raw in ["1e3", ".5", "+2", "1.", "foo", "", "-", "1.2.3", " 1", "1 "] {
            assert_eq!(parse_numeric(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn pay_in_advance_cache_bills_only_new_maxima() {
        // SEMANTICS §2.9: current 4, max 10: +10 → 14, bills 4; then −2 → 12, bills 0.
        let mut cache = CachedAggregation::new(dec!(4), dec!(10));
        assert_eq!(cache.apply(dec!(10)), Ok(dec!(4)));
        assert_eq!(cache.apply(dec!(-2)), Ok(dec!(0)));
        assert_eq!(cache.current_usage_units(dec!(12)), dec!(14));
    }

    #[test]
    fn running_totals_follow_the_free_unit_rules() {
        let v = [dec!(12), dec!(12), dec!(12), dec!(12)];
        // N = 2 → first two cumulative sums.
        assert_eq!(
            sum_running_total(&v, Some(2), Some(dec!(30))),
            vec![dec!(12), dec!(24)]
        );
        // F = 30 → stop after the first total above 30.
        assert_eq!(
            sum_running_total(&v, None, Some(dec!(30))),
            vec![dec!(12), dec!(24), dec!(36)]
        );
        assert!(sum_running_total(&v, None, None).is_empty());
        assert_eq!(
            counting_running_total(dec!(3)),
            vec![dec!(1), dec!(2), dec!(3)]
        );
    }
}
