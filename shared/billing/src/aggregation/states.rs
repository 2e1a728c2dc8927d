//! One incremental state per aggregation type: `fold` one event, `merge` a partial state, read
//! the `units`. Every state is a commutative monoid over events: folding events in any order and
//! merging partial states gives the same result as one fold over all events, which is what lets
//! the pipeline pre-aggregate per batch and never re-read raw events.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};

use super::{AggregationError, EventKey, Operation};

/// `count_agg`: the number of events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CountState {
    events_count: u64,
}

impl CountState {
    /// A state from its stored parts.
    pub fn from_parts(events_count: u64) -> Self {
        Self { events_count }
    }

    /// Counts one event.
    #[inline]
    pub fn fold(&mut self) {
        self.events_count = self.events_count.saturating_add(1);
    }

    /// Adds a partial count.
    pub fn merge(&mut self, other: &CountState) {
        self.events_count = self.events_count.saturating_add(other.events_count);
    }

    /// The units: the event count.
    pub fn units(&self) -> Decimal {
        Decimal::from(self.events_count)
    }

    /// Events folded.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }
}

/// `sum_agg`: the sum of numeric values. Zero values count as events (SEMANTICS §2.1).
/// It also sums the events' `precise_total_amount_cents`, which a `dynamic` charge bills
/// (SEMANTICS §4.7).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SumState {
    sum: Decimal,
    events_count: u64,
    precise_total_amount_cents: Decimal,
}

impl SumState {
    /// A state from its stored parts.
    pub fn from_parts(sum: Decimal, events_count: u64) -> Self {
        Self {
            sum,
            events_count,
            precise_total_amount_cents: Decimal::ZERO,
        }
    }

    /// The same state with the stored `Σ precise_total_amount_cents`.
    pub fn with_precise_total_amount_cents(mut self, cents: Decimal) -> Self {
        self.precise_total_amount_cents = cents;
        self
    }

    /// Adds the price an event carries (`precise_total_amount_cents`) to the total.
    pub fn add_precise_total_amount_cents(
        &mut self,
        cents: Decimal,
    ) -> Result<(), AggregationError> {
        self.precise_total_amount_cents = self
            .precise_total_amount_cents
            .checked_add(cents)
            .ok_or(AggregationError::Overflow)?;
        Ok(())
    }

    /// `Σ precise_total_amount_cents` of the folded events.
    pub fn precise_total_amount_cents(&self) -> Decimal {
        self.precise_total_amount_cents
    }

    /// Adds one numeric value.
    #[inline]
    pub fn fold(&mut self, value: Decimal) -> Result<(), AggregationError> {
        self.sum = self
            .sum
            .checked_add(value)
            .ok_or(AggregationError::Overflow)?;
        self.events_count = self.events_count.saturating_add(1);
        Ok(())
    }

    /// Adds a partial sum.
    pub fn merge(&mut self, other: &SumState) -> Result<(), AggregationError> {
        self.sum = self
            .sum
            .checked_add(other.sum)
            .ok_or(AggregationError::Overflow)?;
        self.events_count = self.events_count.saturating_add(other.events_count);
        self.add_precise_total_amount_cents(other.precise_total_amount_cents)
    }

    /// The units: the sum.
    pub fn units(&self) -> Decimal {
        self.sum
    }

    /// Numeric events folded.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }
}

/// `max_agg`: the largest numeric value, 0 when there is none. Not clamped at zero: a negative
/// maximum is zeroed later by the fee (SEMANTICS §0).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaxState {
    max: Option<Decimal>,
    events_count: u64,
}

impl MaxState {
    /// A state from its stored parts.
    pub fn from_parts(max: Option<Decimal>, events_count: u64) -> Self {
        Self { max, events_count }
    }

    /// The largest value, if any.
    pub fn max_value(&self) -> Option<Decimal> {
        self.max
    }

    /// Considers one numeric value.
    #[inline]
    pub fn fold(&mut self, value: Decimal) {
        self.max = Some(match self.max {
            Some(m) if m >= value => m,
            _ => value,
        });
        self.events_count = self.events_count.saturating_add(1);
    }

    /// Keeps the larger maximum.
    pub fn merge(&mut self, other: &MaxState) {
        if let Some(v) = other.max {
            self.max = Some(match self.max {
                Some(m) if m >= v => m,
                _ => v,
            });
        }
        self.events_count = self.events_count.saturating_add(other.events_count);
    }

    /// The units: the maximum, or 0.
    pub fn units(&self) -> Decimal {
        self.max.unwrap_or(Decimal::ZERO)
    }

    /// Numeric events folded.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }
}

/// `latest_agg`: the value of the last event by `(timestamp, ingestion order)`, floored at 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatestState {
    latest: Option<(EventKey, Decimal)>,
    events_count: u64,
}

impl LatestState {
    /// A state from its stored parts.
    pub fn from_parts(latest: Option<(EventKey, Decimal)>, events_count: u64) -> Self {
        Self {
            latest,
            events_count,
        }
    }

    /// The latest event's key and value, if any.
    pub fn latest_entry(&self) -> Option<(EventKey, Decimal)> {
        self.latest
    }

    /// Considers one numeric value at its position in time.
    #[inline]
    pub fn fold(&mut self, key: EventKey, value: Decimal) {
        self.keep_later(key, value);
        self.events_count = self.events_count.saturating_add(1);
    }

    /// Keeps the later of the two latest values.
    pub fn merge(&mut self, other: &LatestState) {
        if let Some((k, v)) = other.latest {
            self.keep_later(k, v);
        }
        self.events_count = self.events_count.saturating_add(other.events_count);
    }

    fn keep_later(&mut self, key: EventKey, value: Decimal) {
        if self.latest.is_none_or(|(k, _)| key > k) {
            self.latest = Some((key, value));
        }
    }

    /// The units: `max(0, latest value)`, 0 when there is none.
    pub fn units(&self) -> Decimal {
        self.latest
            .map(|(_, v)| v.max(Decimal::ZERO))
            .unwrap_or(Decimal::ZERO)
    }

    /// Numeric events folded.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }
}

/// `unique_count_agg` (not prorated): values whose last operation in the window is `add`.
///
/// Summing Lago's per-event contributions (+1 on an effective add, −1 on an effective remove,
/// starting from "removed") telescopes to "1 if the value's last operation is add": so the state
/// only needs each value's latest operation, which merges by keeping the later one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UniqueCountState {
    last_operation: HashMap<String, (EventKey, Operation)>,
    events_count: u64,
}

impl UniqueCountState {
    /// A state from its stored parts: each value's last operation.
    pub fn from_parts(
        values: impl IntoIterator<Item = (String, EventKey, Operation)>,
        events_count: u64,
    ) -> Self {
        Self {
            last_operation: values.into_iter().map(|(v, k, op)| (v, (k, op))).collect(),
            events_count,
        }
    }

    /// Each value with the key and kind of its last operation.
    pub fn entries(&self) -> impl Iterator<Item = (&str, EventKey, Operation)> {
        self.last_operation
            .iter()
            .map(|(v, (k, op))| (v.as_str(), *k, *op))
    }

    /// Records an operation on a value.
    pub fn fold(&mut self, key: EventKey, value: &str, operation: Operation) {
        self.keep_later(key, value, operation);
        self.events_count = self.events_count.saturating_add(1);
    }

    /// Merges another partial state (the later operation per value wins).
    pub fn merge(&mut self, other: &UniqueCountState) {
        for (value, &(key, op)) in &other.last_operation {
            self.keep_later(key, value, op);
        }
        self.events_count = self.events_count.saturating_add(other.events_count);
    }

    fn keep_later(&mut self, key: EventKey, value: &str, operation: Operation) {
        match self.last_operation.get_mut(value) {
            Some(slot) => {
                if key > slot.0 {
                    *slot = (key, operation);
                }
            }
            None => {
                self.last_operation
                    .insert(value.to_owned(), (key, operation));
            }
        }
    }

    /// The units: values active at the end of the window.
    pub fn units(&self) -> Decimal {
        let active = self
            .last_operation
            .values()
            .filter(|(_, op)| *op == Operation::Add)
            .count();
        Decimal::from(active)
    }

    /// Events folded.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }
}

/// `weighted_sum_agg`: the time-weighted average level over the period (SEMANTICS §2.3).
///
/// Each delta holds from its timestamp to the period end, so the area under the level curve is
/// `initial × (end − from) + Σ delta × (end − t)`: a sum, hence order-independent and
/// mergeable, with O(1) state. Events sharing a timestamp collapse naturally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightedSumState {
    period_end: DateTime<Utc>,
    area: Decimal,
    variation: Decimal,
    events_count: u64,
}

impl WeightedSumState {
    /// A state from its stored parts.
    pub fn from_parts(
        period_end: DateTime<Utc>,
        area: Decimal,
        variation: Decimal,
        events_count: u64,
    ) -> Self {
        Self {
            period_end,
            area,
            variation,
            events_count,
        }
    }

    /// The (second-rounded) period end the areas are measured to.
    pub fn period_end(&self) -> DateTime<Utc> {
        self.period_end
    }

    /// `Σ delta × seconds held`.
    pub fn area(&self) -> Decimal {
        self.area
    }

    /// A state for a period ending at `to_datetime` (rounded up to the next whole second, as
    /// Lago's virtual final row is).
    pub fn new(to_datetime: DateTime<Utc>) -> Self {
        Self {
            period_end: ceil_to_second(to_datetime),
            area: Decimal::ZERO,
            variation: Decimal::ZERO,
            events_count: 0,
        }
    }

    /// Adds one delta at its timestamp.
    pub fn fold(
        &mut self,
        timestamp: DateTime<Utc>,
        delta: Decimal,
    ) -> Result<(), AggregationError> {
        let held = seconds_between(timestamp, self.period_end);
        let weighted = delta.checked_mul(held).ok_or(AggregationError::Overflow)?;
        self.area = self
            .area
            .checked_add(weighted)
            .ok_or(AggregationError::Overflow)?;
        self.variation = self
            .variation
            .checked_add(delta)
            .ok_or(AggregationError::Overflow)?;
        self.events_count = self.events_count.saturating_add(1);
        Ok(())
    }

    /// Merges another partial state of the same period.
    pub fn merge(&mut self, other: &WeightedSumState) -> Result<(), AggregationError> {
        if other.period_end != self.period_end {
            return Err(AggregationError::PeriodMismatch);
        }
        self.area = self
            .area
            .checked_add(other.area)
            .ok_or(AggregationError::Overflow)?;
        self.variation = self
            .variation
            .checked_add(other.variation)
            .ok_or(AggregationError::Overflow)?;
        self.events_count = self.events_count.saturating_add(other.events_count);
        Ok(())
    }

    /// The time-weighted average: `(initial × (end − from) + Σ delta × (end − t)) / (D × 86400)`,
    /// ceiled at 20 decimals. `D` is the full period length in days even for a partial period.
    pub fn units(
        &self,
        from_datetime: DateTime<Utc>,
        initial_level: Decimal,
        charges_duration_days: u32,
    ) -> Result<Decimal, AggregationError> {
        let span = seconds_between(from_datetime, self.period_end);
        let initial_area = initial_level
            .checked_mul(span)
            .ok_or(AggregationError::Overflow)?;
        let area = initial_area
            .checked_add(self.area)
            .ok_or(AggregationError::Overflow)?;
        let denominator = Decimal::from(charges_duration_days) * Decimal::from(86_400);
        if denominator.is_zero() {
            return Err(AggregationError::EmptyPeriod);
        }
        let units = area
            .checked_div(denominator)
            .ok_or(AggregationError::Overflow)?;
        Ok(units.round_dp_with_strategy(20, RoundingStrategy::ToPositiveInfinity))
    }

    /// `Σ deltas` of the period (Lago's `variation`).
    pub fn variation(&self) -> Decimal {
        self.variation
    }

    /// The level at period end, persisted for the next period: `initial + Σ deltas`.
    pub fn total_aggregated_units(&self, initial_level: Decimal) -> Decimal {
        initial_level + self.variation
    }

    /// Events folded.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }
}

/// Rounds a datetime up to the next whole second (identity on whole seconds).
pub fn ceil_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        return t;
    }
    DateTime::from_timestamp(t.timestamp().saturating_add(1), 0).unwrap_or(t)
}

/// Seconds from `a` to `b` as a decimal with microsecond precision.
fn seconds_between(a: DateTime<Utc>, b: DateTime<Utc>) -> Decimal {
    let micros = (b - a).num_microseconds().unwrap_or(i64::MAX);
    Decimal::new(micros, 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn weighted_sum_matches_the_semantics_example() {
        // Aug 2023 (31 d), deltas +2@00:00, +3@01:00, +1@01:30, −4@02:00, −2@04:00, +10@05:00,
        // −10@05:30 → 59 400 unit·s / 2 678 400 s = 0.0221774… (SEMANTICS §2.3).
        let mut s = WeightedSumState::new(utc("2023-08-31T23:59:59.999Z"));
        for (t, d) in [
            ("00:00", 2),
            ("01:00", 3),
            ("01:30", 1),
            ("02:00", -4),
            ("02:00", 0),
            ("04:00", -2),
            ("05:00", 10),
            ("05:30", -10),
        ] {
            let _ = s.fold(utc(&format!("2023-08-01T{t}:00Z")), Decimal::from(d));
        }
        let units = s.units(utc("2023-08-01T00:00:00Z"), Decimal::ZERO, 31);
        assert_eq!(units.map(|u| u.round_dp(5)), Ok(Decimal::new(2218, 5)));
        assert_eq!(s.variation(), Decimal::ZERO);
    }

    #[test]
    fn unique_count_counts_values_whose_last_operation_is_add() {
        let t = |h: u32| {
            EventKey::new(
                utc("2022-07-10T00:00:00Z") + chrono::Duration::hours(i64::from(h)),
                u64::from(h),
            )
        };
        let mut s = UniqueCountState::default();
        s.fold(t(1), "a", Operation::Add);
        s.fold(t(2), "a", Operation::Remove);
        s.fold(t(3), "b", Operation::Add);
        s.fold(t(4), "b", Operation::Add);
        s.fold(t(5), "c", Operation::Remove); // a remove with no add is ignored
        assert_eq!(s.units(), Decimal::ONE);
        assert_eq!(s.events_count(), 5);
    }

    #[test]
    fn latest_takes_the_last_event_and_floors_at_zero() {
        let t = utc("2022-07-10T00:00:00Z");
        let mut s = LatestState::default();
        s.fold(EventKey::new(t, 2), Decimal::from(-5));
        s.fold(EventKey::new(t, 1), Decimal::from(7)); // same timestamp, ingested earlier
        assert_eq!(s.units(), Decimal::ZERO);
    }
}
