//! From a charge amount to a fee (SEMANTICS §4.10-§4.12).

use rust_decimal::Decimal;

use super::{ChargeAmount, ChargeError};
use crate::money::{Currency, Money, PreciseAmount, RoundingRule, round_cents};

/// A charge fee: units, the invoiced amount and the unrounded one (both kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeFee {
    units: Decimal,
    events_count: u64,
    amount: Money,
    precise_amount_cents: Decimal,
    unit_amount_cents: i64,
    precise_unit_amount: Decimal,
}

impl ChargeFee {
    /// Builds a fee from a priced amount. Negative units or a negative amount zero the fee
    /// (Lago never credits through a charge); the amount is rounded once, half away from zero,
    /// to the currency's exponent. `units` is what the fee shows: the full units of a prorated
    /// charge, else the priced units.
    pub fn new(
        units: Decimal,
        events_count: u64,
        amount: &ChargeAmount,
        currency: Currency,
    ) -> Result<Self, ChargeError> {
        let negative = units.is_sign_negative() && !units.is_zero()
            || amount.amount().is_sign_negative() && !amount.amount().is_zero();
        let (units, value, unit_amount) = if negative {
            (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO)
        } else {
            (units, amount.amount(), amount.unit_amount())
        };
        let precise = PreciseAmount::new(value, currency);
        let money = precise.round(RoundingRule::HalfAwayFromZero)?;
        let unit_cents = unit_amount
            .checked_mul(currency.subunit_to_unit())
            .ok_or(ChargeError::Overflow)?
            .trunc();
        Ok(Self {
            units,
            events_count,
            amount: money,
            precise_amount_cents: precise.precise_cents()?,
            unit_amount_cents: i64::try_from(unit_cents).map_err(|_| ChargeError::Overflow)?,
            precise_unit_amount: unit_amount,
        })
    }

    /// Units shown on the fee.
    pub fn units(&self) -> Decimal {
        self.units
    }
    /// Events that contributed.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }
    /// The invoiced amount (`amount_cents`).
    pub fn amount(&self) -> Money {
        self.amount
    }
    /// The unrounded amount in minor units (`precise_amount_cents`).
    pub fn precise_amount_cents(&self) -> Decimal {
        self.precise_amount_cents
    }
    /// `unit_amount × subunit`, truncated (display only, never summed).
    pub fn unit_amount_cents(&self) -> i64 {
        self.unit_amount_cents
    }
    /// The unit amount in major units.
    pub fn precise_unit_amount(&self) -> Decimal {
        self.precise_unit_amount
    }

    /// Whether Lago persists the fee: any of units, amount or events count is non-zero
    /// (so a first-tier flat fee at zero usage is invoiced, §4.11).
    pub fn is_billable(&self) -> bool {
        !self.units.is_zero() || self.amount.cents() != 0 || self.events_count != 0
    }
}

/// The minimum-spend true-up of one charge, when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrueUp {
    amount: Money,
    precise_amount_cents: Decimal,
}

impl TrueUp {
    /// The true-up fee amount (`amount_cents`).
    pub fn amount(&self) -> Money {
        self.amount
    }
    /// The unrounded true-up (`prorated minimum − Σ precise fee amounts`).
    pub fn precise_amount_cents(&self) -> Decimal {
        self.precise_amount_cents
    }
}

/// SEMANTICS §4.12: the charge's `min_amount_cents`, prorated by `days_billed /
/// charges_duration_days`, compared with the sum of all its fees (every filter and group:
/// `used` is `Σ amount_cents`, `used_precise_cents` is `Σ precise_amount_cents`, see
/// [`sum_fees`]). `None` when the fees reach the minimum. The true-up is
/// `round(prorated − used)`; its precise value is `prorated − used_precise_cents`. Skip it on
/// progressive-billing invoices (the caller's choice).
pub fn minimum_spend_true_up(
    min_amount: Money,
    charges_duration_days: u32,
    days_billed: u32,
    used: Money,
    used_precise_cents: Decimal,
) -> Result<Option<TrueUp>, ChargeError> {
    if charges_duration_days == 0 {
        return Ok(None);
    }
    let currency = min_amount.currency();
    // Multiply before dividing: exact for a whole period (Lago's Float divides first; the
    // results agree to the cent).
    let prorated = Decimal::from(min_amount.cents())
        .checked_mul(Decimal::from(days_billed))
        .ok_or(ChargeError::Overflow)?
        / Decimal::from(charges_duration_days);
    if used.currency() != currency {
        return Err(crate::money::MoneyError::CurrencyMismatch {
            expected: currency,
            found: used.currency(),
        }
        .into());
    }
    let used_cents = Decimal::from(used.cents());
    if used_cents >= prorated {
        return Ok(None);
    }
    let cents = round_cents(prorated - used_cents, RoundingRule::HalfAwayFromZero)?;
    Ok(Some(TrueUp {
        amount: Money::new(cents, currency),
        precise_amount_cents: prorated - used_precise_cents,
    }))
}

/// `(Σ amount_cents, Σ precise_amount_cents)` of a charge's fees, in `currency`.
pub fn sum_fees(currency: Currency, fees: &[ChargeFee]) -> Result<(Money, Decimal), ChargeError> {
    let used = Money::sum_in(currency, fees.iter().map(|f| &f.amount))?;
    let precise = fees
        .iter()
        .try_fold(Decimal::ZERO, |acc, f| {
            acc.checked_add(f.precise_amount_cents)
        })
        .ok_or(ChargeError::Overflow)?;
    Ok((used, precise))
}
