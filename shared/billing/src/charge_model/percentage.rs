//! `percentage`: a rate on the units (amounts), a fixed fee per paid event, free units, and
//! per-transaction limits (SEMANTICS §4.6).

use rust_decimal::Decimal;

use super::{AmountDetails, ChargeAmount, ChargeError, PricingInput, checked};

/// Validated `percentage` properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PercentageProperties {
    rate: Decimal,
    fixed_amount: Option<Decimal>,
    free_units_per_events: Option<u64>,
    free_units_per_total_aggregation: Option<Decimal>,
    per_transaction_min_amount: Option<Decimal>,
    per_transaction_max_amount: Option<Decimal>,
}

impl PercentageProperties {
    /// Properties as validated by [`super::ChargeProperties::parse`].
    pub(crate) fn new(
        rate: Decimal,
        fixed_amount: Option<Decimal>,
        free_units_per_events: Option<u64>,
        free_units_per_total_aggregation: Option<Decimal>,
        per_transaction_min_amount: Option<Decimal>,
        per_transaction_max_amount: Option<Decimal>,
    ) -> Self {
        Self {
            rate,
            fixed_amount,
            free_units_per_events,
            free_units_per_total_aggregation,
            per_transaction_min_amount,
            per_transaction_max_amount,
        }
    }

    /// The rate in percent ("1.3" = 1.3 %).
    pub fn rate(&self) -> Decimal {
        self.rate
    }
    /// Fee per paid event.
    pub fn fixed_amount(&self) -> Option<Decimal> {
        self.fixed_amount
    }
    /// The first N events are free.
    pub fn free_units_per_events(&self) -> Option<u64> {
        self.free_units_per_events
    }
    /// The first F units are free.
    pub fn free_units_per_total_aggregation(&self) -> Option<Decimal> {
        self.free_units_per_total_aggregation
    }
    /// Per-transaction minimum (premium).
    pub fn per_transaction_min_amount(&self) -> Option<Decimal> {
        self.per_transaction_min_amount
    }
    /// Per-transaction maximum (premium).
    pub fn per_transaction_max_amount(&self) -> Option<Decimal> {
        self.per_transaction_max_amount
    }

    fn has_transaction_limits(&self) -> bool {
        self.per_transaction_min_amount.is_some() || self.per_transaction_max_amount.is_some()
    }
}

/// Prices a percentage charge. With a premium license and per-transaction limits, each event is
/// priced on its own (free units consumed first, in time order) and clamped; otherwise the
/// aggregate formula applies and the limits are ignored, as Lago ignores them.
pub fn price(
    props: &PercentageProperties,
    input: &PricingInput,
) -> Result<ChargeAmount, ChargeError> {
    let units = input.units();
    if units.is_zero() {
        return Ok(ChargeAmount::zero());
    }
    let amount = if input.has_premium_license() && props.has_transaction_limits() {
        per_transaction_amount(props, input.event_values())?
    } else {
        aggregate_amount(props, input)?.0
    };
    let unit_amount = checked(amount.checked_div(units))?;
    let (_, free_units, free_events) = aggregate_amount(props, input)?;
    Ok(ChargeAmount::new(
        amount,
        unit_amount,
        AmountDetails::Percentage {
            free_units,
            free_events,
            paid_events: input.events_count().saturating_sub(free_events),
        },
    ))
}

/// The aggregate formula: `(amount, free_units, free_events)`.
fn aggregate_amount(
    props: &PercentageProperties,
    input: &PricingInput,
) -> Result<(Decimal, Decimal, u64), ChargeError> {
    let units = input.units();
    let n = props.free_units_per_events.unwrap_or(0);
    let f = props
        .free_units_per_total_aggregation
        .unwrap_or(Decimal::ZERO);
    let running = RunningTotal::of(input);
    let last = running.last();
    let free_units = if last.is_zero() {
        Decimal::ZERO
    } else if n > 0 && n < running.len() {
        running.nth(n - 1)
    } else if f.is_zero() || last <= f {
        last
    } else {
        f
    };
    let covered = running.count_below(f);
    let free_events = [n, covered]
        .into_iter()
        .filter(|x| *x > 0)
        .min()
        .unwrap_or(0);
    let rate = props.rate / Decimal::ONE_HUNDRED;
    let pct = if free_units > units {
        Decimal::ZERO
    } else {
        checked((units - free_units).checked_mul(rate))?
    };
    let count = input.events_count();
    let fixed = match props.fixed_amount {
        Some(fixed) if !units.is_zero() && free_events < count => {
            checked(Decimal::from(count - free_events).checked_mul(fixed))?
        }
        _ => Decimal::ZERO,
    };
    Ok((checked(pct.checked_add(fixed))?, free_units, free_events))
}

/// The running totals as given: spelled out (sums), or `[1, 2, …, n]` by its `n` (counts).
enum RunningTotal<'a> {
    Values(&'a [Decimal]),
    Counting(u64),
}

impl<'a> RunningTotal<'a> {
    fn of(input: &'a PricingInput) -> Self {
        match input.counting_running_total() {
            Some(n) => Self::Counting(n),
            None => Self::Values(input.running_total()),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Self::Values(rt) => rt.len() as u64,
            Self::Counting(n) => *n,
        }
    }

    fn last(&self) -> Decimal {
        match self {
            Self::Values(rt) => rt.last().copied().unwrap_or(Decimal::ZERO),
            Self::Counting(n) => Decimal::from(*n),
        }
    }

    /// The `i`-th total (0-based), `i < len()`.
    fn nth(&self, i: u64) -> Decimal {
        match self {
            Self::Values(rt) => usize::try_from(i)
                .ok()
                .and_then(|i| rt.get(i))
                .copied()
                .unwrap_or(Decimal::ZERO),
            Self::Counting(_) => Decimal::from(i + 1),
        }
    }

    /// How many totals are below `f`: for `[1, …, n]`, the integers `k ≤ n` with `k < f`.
    fn count_below(&self, f: Decimal) -> u64 {
        match self {
            Self::Values(rt) => rt.iter().filter(|x| **x < f).count() as u64,
            Self::Counting(n) => {
                let below = (f.ceil() - Decimal::ONE).max(Decimal::ZERO);
                u64::try_from(below).unwrap_or(u64::MAX).min(*n)
            }
        }
    }
}

/// Event-by-event pricing with per-transaction min/max (premium).
fn per_transaction_amount(
    props: &PercentageProperties,
    values: &[Decimal],
) -> Result<Decimal, ChargeError> {
    let rate = props.rate / Decimal::ONE_HUNDRED;
    let fixed = props.fixed_amount.unwrap_or(Decimal::ZERO);
    let mut free_left = props
        .free_units_per_total_aggregation
        .filter(|f| *f > Decimal::ZERO);
    let free_events = props.free_units_per_events.unwrap_or(0);
    let mut total = Decimal::ZERO;
    for (i, &value) in values.iter().enumerate() {
        let within_free_events = (i as u64) < free_events;
        let paid = match free_left.as_mut() {
            // The free budget applies while the free-events limit (if any) is not reached.
            Some(left) if free_events == 0 || within_free_events => {
                if value <= *left {
                    *left -= value;
                    continue;
                }
                let excess = value - *left;
                *left = Decimal::ZERO;
                excess
            }
            _ if within_free_events => continue,
            _ => value,
        };
        let mut event_amount = checked(checked(paid.checked_mul(rate))?.checked_add(fixed))?;
        if let Some(min) = props.per_transaction_min_amount {
            event_amount = event_amount.max(min);
        }
        if let Some(max) = props.per_transaction_max_amount {
            event_amount = event_amount.min(max);
        }
        total = checked(total.checked_add(event_amount))?;
    }
    Ok(total)
}
