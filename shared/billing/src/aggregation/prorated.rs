//! Prorated aggregations (SEMANTICS §2.6): recurring metrics billed for the days each unit was
//! held, in whole calendar days of the customer's timezone.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

use super::{AggregationError, EventKey, Operation};

/// The frame a prorated aggregation is computed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProrationWindow {
    from_datetime: DateTime<Utc>,
    to_datetime: DateTime<Utc>,
    timezone: Tz,
    charges_duration_days: u32,
    period_days: u32,
}

impl ProrationWindow {
    /// A window `[from, to]` in `timezone`. `charges_duration_days` is the full period length
    /// (the denominator); `period_days` is the day count of `[from, to]` as
    /// [`crate::period::date_diff_with_timezone`] gives it (one less on an upgrade).
    pub fn new(
        from_datetime: DateTime<Utc>,
        to_datetime: DateTime<Utc>,
        timezone: Tz,
        charges_duration_days: u32,
        period_days: u32,
    ) -> Result<Self, AggregationError> {
        if charges_duration_days == 0 {
            return Err(AggregationError::EmptyPeriod);
        }
        Ok(Self {
            from_datetime,
            to_datetime,
            timezone,
            charges_duration_days,
            period_days,
        })
    }

    /// Start of the window.
    pub fn from_datetime(&self) -> DateTime<Utc> {
        self.from_datetime
    }

    /// End of the window (inclusive).
    pub fn to_datetime(&self) -> DateTime<Utc> {
        self.to_datetime
    }

    /// The full period length in days.
    pub fn charges_duration_days(&self) -> u32 {
        self.charges_duration_days
    }

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.timezone).date_naive()
    }

    fn duration(&self) -> Decimal {
        Decimal::from(self.charges_duration_days)
    }

    /// The window's length in local calendar days, both ends counted.
    fn span_days(&self) -> i64 {
        (self.local_date(self.to_datetime) - self.local_date(self.from_datetime)).num_days() + 1
    }

    /// Local calendar days from the window's first day to `t`'s (0 on the first day).
    fn day_offset(&self, t: DateTime<Utc>) -> i64 {
        (self.local_date(t) - self.local_date(self.from_datetime)).num_days()
    }

    /// Days from the event's local date to the window's last local date, both counted.
    fn days_to_end(&self, t: DateTime<Utc>) -> i64 {
        (self.local_date(self.to_datetime) - self.local_date(t)).num_days() + 1
    }
}

fn ceil5(x: Decimal) -> Decimal {
    x.round_dp_with_strategy(5, RoundingStrategy::ToPositiveInfinity)
}

/// The prorated value of one pay-in-advance unit added at `timestamp`:
/// `ceil5(days from the event to the window end / D)` (spec: added day 11 of 31 → 21/31 =
/// 0.67742).
pub fn prorated_unit_in_advance(window: &ProrationWindow, timestamp: DateTime<Utc>) -> Decimal {
    let days = window.days_to_end(timestamp).max(0);
    ceil5(Decimal::from(days) / window.duration())
}

/// A prorated `sum_agg`: each value weighs the days left in the period from its event day, and
/// the total carried from earlier periods weighs the whole window.
///
/// The state is linear in the events: it keeps the in-period sum and `Σ value × day offset`
/// (the event's local date minus the window's first local date), so that
/// `Σ value × (date(to) − date(ts) + 1) = in_period × span − Σ value × offset`. That is a sum,
/// hence mergeable and storable in O(1) whatever the number of events, and exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProratedSumState {
    window: ProrationWindow,
    persisted: Decimal,
    in_period: Decimal,
    day_offset_weighted: Decimal,
    events_count: u64,
}

impl ProratedSumState {
    /// An empty state.
    pub fn new(window: ProrationWindow) -> Self {
        Self {
            window,
            persisted: Decimal::ZERO,
            in_period: Decimal::ZERO,
            day_offset_weighted: Decimal::ZERO,
            events_count: 0,
        }
    }

    /// A state from its stored parts: the total carried from before the window, the in-period
    /// sum, `Σ value × day offset` and the in-period events count.
    pub fn from_parts(
        window: ProrationWindow,
        persisted: Decimal,
        in_period: Decimal,
        day_offset_weighted: Decimal,
        events_count: u64,
    ) -> Self {
        Self {
            window,
            persisted,
            in_period,
            day_offset_weighted,
            events_count,
        }
    }

    /// The window this state is computed in.
    pub fn window(&self) -> &ProrationWindow {
        &self.window
    }

    /// The total carried from before the window.
    pub fn persisted(&self) -> Decimal {
        self.persisted
    }

    /// The non-prorated sum of the in-period events.
    pub fn in_period(&self) -> Decimal {
        self.in_period
    }

    /// `Σ value × (local date(ts) − local date(from))` of the in-period events.
    pub fn day_offset_weighted(&self) -> Decimal {
        self.day_offset_weighted
    }

    /// Adds one value. Events before the window feed the persisted total.
    pub fn fold(&mut self, key: EventKey, value: Decimal) -> Result<(), AggregationError> {
        if key.timestamp() < self.window.from_datetime {
            self.persisted = self
                .persisted
                .checked_add(value)
                .ok_or(AggregationError::Overflow)?;
        } else {
            let offset = Decimal::from(self.window.day_offset(key.timestamp()));
            let w = value
                .checked_mul(offset)
                .ok_or(AggregationError::Overflow)?;
            self.day_offset_weighted = self
                .day_offset_weighted
                .checked_add(w)
                .ok_or(AggregationError::Overflow)?;
            self.in_period = self
                .in_period
                .checked_add(value)
                .ok_or(AggregationError::Overflow)?;
            self.events_count = self.events_count.saturating_add(1);
        }
        Ok(())
    }

    /// Merges a partial state of the same window.
    pub fn merge(&mut self, other: &ProratedSumState) -> Result<(), AggregationError> {
        if other.window != self.window {
            return Err(AggregationError::PeriodMismatch);
        }
        let add = |a: Decimal, b: Decimal| a.checked_add(b).ok_or(AggregationError::Overflow);
        self.persisted = add(self.persisted, other.persisted)?;
        self.in_period = add(self.in_period, other.in_period)?;
        self.day_offset_weighted = add(self.day_offset_weighted, other.day_offset_weighted)?;
        self.events_count = self.events_count.saturating_add(other.events_count);
        Ok(())
    }

    /// The prorated units: `ceil5((Σ v × days_left + persisted × N) / D)`, with
    /// `Σ v × days_left = in_period × span − Σ v × offset`.
    pub fn units(&self) -> Result<Decimal, AggregationError> {
        let overflow = || AggregationError::Overflow;
        let persisted = self
            .persisted
            .checked_mul(Decimal::from(self.window.period_days))
            .ok_or_else(overflow)?;
        let in_period = self
            .in_period
            .checked_mul(Decimal::from(self.window.span_days()))
            .and_then(|x| x.checked_sub(self.day_offset_weighted))
            .ok_or_else(overflow)?;
        let total = in_period.checked_add(persisted).ok_or_else(overflow)?;
        Ok(ceil5(total / self.window.duration()))
    }

    /// The non-prorated total (Lago's `full_units_number`): all history up to the window end.
    pub fn full_units_number(&self) -> Decimal {
        self.persisted + self.in_period
    }

    /// Events folded inside the window.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }

    /// `(full value, prorated value)` per event in time order, the persisted total first, for
    /// prorated graduated pricing, from the recorded in-period `values` (any order; values
    /// before the window are ignored, the persisted total stands for them).
    pub fn prorated_events(&self, values: &[(EventKey, Decimal)]) -> Vec<(Decimal, Decimal)> {
        let mut sorted = values.to_vec();
        sorted.sort_by_key(|(k, _)| *k);
        let d = self.window.duration();
        let n = Decimal::from(self.window.period_days);
        let mut out = Vec::with_capacity(sorted.len() + 1);
        if !self.persisted.is_zero() {
            out.push((self.persisted, self.persisted * n / d));
        }
        for (key, value) in sorted {
            if key.timestamp() >= self.window.from_datetime {
                let days = Decimal::from(self.window.days_to_end(key.timestamp()).max(0));
                out.push((value, value * days / d));
            }
        }
        out
    }
}

/// A prorated `unique_count_agg`: each value is billed for the calendar days it was active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProratedUniqueCountState {
    window: ProrationWindow,
    history: HashMap<String, Vec<(EventKey, Operation)>>,
    events_count: u64,
}

impl ProratedUniqueCountState {
    /// An empty state.
    pub fn new(window: ProrationWindow) -> Self {
        Self {
            window,
            history: HashMap::new(),
            events_count: 0,
        }
    }

    /// A state from its stored parts: every recorded operation per value, and the events
    /// count inside the window.
    pub fn from_parts(
        window: ProrationWindow,
        operations: impl IntoIterator<Item = (String, EventKey, Operation)>,
        events_count: u64,
    ) -> Self {
        let mut history: HashMap<String, Vec<(EventKey, Operation)>> = HashMap::new();
        for (value, key, op) in operations {
            history.entry(value).or_default().push((key, op));
        }
        Self {
            window,
            history,
            events_count,
        }
    }

    /// The window this state is computed in.
    pub fn window(&self) -> &ProrationWindow {
        &self.window
    }

    /// Every recorded operation: value, position in time, kind.
    pub fn entries(&self) -> impl Iterator<Item = (&str, EventKey, Operation)> {
        self.history
            .iter()
            .flat_map(|(v, ops)| ops.iter().map(move |(k, op)| (v.as_str(), *k, *op)))
    }

    /// Records an operation on a value (events after the window end must not be folded).
    pub fn fold(&mut self, key: EventKey, value: &str, operation: Operation) {
        self.history
            .entry(value.to_owned())
            .or_default()
            .push((key, operation));
        if key.timestamp() >= self.window.from_datetime {
            self.events_count = self.events_count.saturating_add(1);
        }
    }

    /// Merges a partial state of the same window.
    pub fn merge(&mut self, other: &ProratedUniqueCountState) -> Result<(), AggregationError> {
        if other.window != self.window {
            return Err(AggregationError::PeriodMismatch);
        }
        for (value, ops) in &other.history {
            self.history
                .entry(value.clone())
                .or_default()
                .extend_from_slice(ops);
        }
        self.events_count = self.events_count.saturating_add(other.events_count);
        Ok(())
    }

    /// The prorated units: `ceil5(Σ over active spans of billed days / D)`.
    ///
    /// Per value, in time order: (1) a `remove` followed later the same local day by an `add`
    /// is dropped; (2) only effective transitions are kept (an add when inactive, a remove when
    /// active); (3) each add bills the days from `max(add day, window start)` to its remove day
    /// (or the window end), both counted.
    pub fn units(&self) -> Decimal {
        let from_date = self.window.local_date(self.window.from_datetime);
        let to_date = self.window.local_date(self.window.to_datetime);
        let mut days: i64 = 0;
        for ops in self.history.values() {
            for (start, end) in self.active_spans(ops) {
                let first = start.max(from_date);
                let last = end.unwrap_or(to_date).min(to_date);
                if last >= first {
                    days += (last - first).num_days() + 1;
                }
            }
        }
        ceil5(Decimal::from(days) / self.window.duration())
    }

    /// Values active at the window end (Lago's `current_usage_units`).
    pub fn active_count(&self) -> Decimal {
        let active = self
            .history
            .values()
            .filter(|ops| {
                self.active_spans(ops)
                    .last()
                    .is_some_and(|(_, end)| end.is_none())
            })
            .count();
        Decimal::from(active)
    }

    /// Events folded inside the window.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }

    /// `(add date, remove date if any)` per effective active span of one value.
    fn active_spans(&self, ops: &[(EventKey, Operation)]) -> Vec<(NaiveDate, Option<NaiveDate>)> {
        let mut sorted = ops.to_vec();
        sorted.sort_by_key(|(k, _)| *k);
        let dates: Vec<NaiveDate> = sorted
            .iter()
            .map(|(k, _)| self.window.local_date(k.timestamp()))
            .collect();
        let kept = sorted.iter().enumerate().filter(|(i, (_, op))| {
            // Step 1: a remove with a later add on the same local day is churn, not a removal.
            !(*op == Operation::Remove
                && sorted[i + 1..]
                    .iter()
                    .zip(&dates[i + 1..])
                    .any(|((_, later), d)| *later == Operation::Add && *d == dates[*i]))
        });
        let mut spans = Vec::new();
        let mut open: Option<NaiveDate> = None;
        for (i, (_, op)) in kept {
            match (op, open) {
                (Operation::Add, None) => open = Some(dates[i]),
                (Operation::Remove, Some(start)) => {
                    spans.push((start, Some(dates[i])));
                    open = None;
                }
                _ => {}
            }
        }
        if let Some(start) = open {
            spans.push((start, None));
        }
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn july_window() -> Result<ProrationWindow, AggregationError> {
        // Period 2022-07-09 .. 2022-08-08, D = 31 (SEMANTICS §2.6).
        ProrationWindow::new(
            utc("2022-07-09T00:00:00Z"),
            utc("2022-08-08T23:59:59Z"),
            Tz::UTC,
            31,
            31,
        )
    }

    #[test]
    fn same_day_add_and_remove_bills_one_day_each_time() {
        // Add/remove on 3 separate days → 3/31 = 0.0967741… → ceil5 0.09678.
        let Ok(w) = july_window() else {
            panic!("window")
        };
        let mut s = ProratedUniqueCountState::new(w);
        let mut seq = 0;
        for day in ["2022-07-10", "2022-07-15", "2022-07-20"] {
            for (hour, op) in [("01", Operation::Add), ("02", Operation::Remove)] {
                seq += 1;
                let key = EventKey::new(utc(&format!("{day}T{hour}:00:00Z")), seq);
                s.fold(key, "seat-1", op);
            }
        }
        assert_eq!(s.units(), Decimal::new(9678, 5));
        assert_eq!(s.active_count(), Decimal::ZERO);
    }

    #[test]
    fn a_persisted_value_added_again_mid_period_is_billed_from_the_period_start() {
        // Persisted "A" + "B" added on day 11 → 1 + 21/31 = 1.67742 (SEMANTICS §2.6).
        let Ok(w) = july_window() else {
            panic!("window")
        };
        let mut s = ProratedUniqueCountState::new(w);
        s.fold(
            EventKey::new(utc("2022-06-09T00:00:00Z"), 1),
            "A",
            Operation::Add,
        );
        s.fold(
            EventKey::new(utc("2022-07-19T00:00:00Z"), 2),
            "B",
            Operation::Add,
        );
        assert_eq!(s.units(), Decimal::new(167742, 5));
    }

    #[test]
    fn a_seat_added_mid_month_in_advance_costs_its_remaining_days() {
        // June 2024 (30 days), 30 €/seat, added June 11 → 20/30 → 2000 cents (SEMANTICS §4.9).
        let w = ProrationWindow::new(
            utc("2024-06-01T00:00:00Z"),
            utc("2024-06-30T23:59:59Z"),
            Tz::UTC,
            30,
            30,
        );
        let Ok(w) = w else { panic!("window") };
        let units = prorated_unit_in_advance(&w, utc("2024-06-11T09:00:00Z"));
        let cents = (units * Decimal::from(30) * Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero);
        assert_eq!(cents, Decimal::from(2000));
    }

    #[test]
    fn a_prorated_sum_weighs_each_value_by_its_remaining_days() {
        // Persisted 10 over the whole window (31/31) + 31 added on the last day (1/31):
        // (10×31 + 31×1)/31 = 11; full units 41.
        let Ok(w) = july_window() else {
            panic!("window")
        };
        let mut s = ProratedSumState::new(w);
        let _ = s.fold(
            EventKey::new(utc("2022-06-01T00:00:00Z"), 1),
            Decimal::from(10),
        );
        let _ = s.fold(
            EventKey::new(utc("2022-08-08T10:00:00Z"), 2),
            Decimal::from(31),
        );
        assert_eq!(s.units(), Ok(Decimal::from(11)));
        assert_eq!(s.full_units_number(), Decimal::from(41));
    }
}
