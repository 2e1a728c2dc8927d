//! `graduated_percentage`: a percentage rate per tier of the units (amounts), plus a flat
//! amount per tier entered (SEMANTICS §4.3).

use rust_decimal::Decimal;

use super::{AmountDetails, ChargeAmount, ChargeError, PricingInput, checked};

/// One tier: bounds (inclusive; `None` = unbounded), a rate in percent and a flat amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraduatedPercentageRange {
    from_value: Decimal,
    to_value: Option<Decimal>,
    rate: Decimal,
    flat_amount: Decimal,
}

impl GraduatedPercentageRange {
    /// A tier (bounds are validated by [`super::ChargeProperties::parse`]).
    pub fn new(
        from_value: Decimal,
        to_value: Option<Decimal>,
        rate: Decimal,
        flat_amount: Decimal,
    ) -> Self {
        Self {
            from_value,
            to_value,
            rate,
            flat_amount,
        }
    }

    /// Lower bound.
    pub fn from_value(&self) -> Decimal {
        self.from_value
    }

    /// Upper bound (inclusive), `None` for the last tier.
    pub fn to_value(&self) -> Option<Decimal> {
        self.to_value
    }

    /// Rate in percent.
    pub fn rate(&self) -> Decimal {
        self.rate
    }

    /// Flat amount for entering the tier.
    pub fn flat_amount(&self) -> Decimal {
        self.flat_amount
    }
}

/// Lago's tier units for this model, which never detects adjacent ranges:
/// a full tier is `to − max(from, 1) + 1`, a partial one `u` from 0 or `u − from + 1`.
pub fn price(
    ranges: &[GraduatedPercentageRange],
    input: &PricingInput,
) -> Result<ChargeAmount, ChargeError> {
    let units = input.units();
    if input.excludes_event() && units.is_zero() {
        return Ok(ChargeAmount::zero());
    }
    let hundred = Decimal::ONE_HUNDRED;
    let mut amount = Decimal::ZERO;
    for range in ranges {
        let tier_units = match range.to_value {
            Some(to) if units >= to => {
                let from = if range.from_value.is_zero() {
                    Decimal::ONE
                } else {
                    range.from_value
                };
                to - from + Decimal::ONE
            }
            _ if range.from_value.is_zero() => units,
            _ => units - range.from_value + Decimal::ONE,
        };
        let pct = checked(tier_units.checked_mul(range.rate))? / hundred;
        amount = checked(amount.checked_add(pct))?;
        amount = checked(amount.checked_add(range.flat_amount))?;
        if range.to_value.is_none_or(|to| to >= units) {
            break;
        }
    }
    let unit_amount = if units.is_zero() {
        Decimal::ZERO
    } else {
        checked(amount.checked_div(units))?
    };
    Ok(ChargeAmount::new(amount, unit_amount, AmountDetails::None))
}
