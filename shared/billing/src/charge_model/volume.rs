//! `volume`: all units priced at the tier the volume reaches (SEMANTICS §4.4).

use rust_decimal::Decimal;

use super::{
    AmountDetails, ChargeAmount, ChargeError, PricingInput, checked, graduated::GraduatedRange,
};

/// The tier is the first whose `from <= ceil(n)` and `n <= to`, where `n` is the full units of a
/// prorated charge (else the units); `amount = units × per_unit + flat`.
pub fn price(ranges: &[GraduatedRange], input: &PricingInput) -> Result<ChargeAmount, ChargeError> {
    let units = input.units();
    let n = match (input.is_prorated(), input.full_units_number()) {
        (true, Some(full)) => full,
        _ => units,
    };
    let ceiled = n.ceil();
    let Some(range) = ranges
        .iter()
        .find(|r| r.from_value() <= ceiled && r.to_value().is_none_or(|to| n <= to))
    else {
        return Ok(ChargeAmount::zero());
    };
    let per_unit_total_amount = checked(units.checked_mul(range.per_unit_amount()))?;
    let amount = checked(per_unit_total_amount.checked_add(range.flat_amount()))?;
    let unit_amount = if units.is_zero() {
        Decimal::ZERO
    } else {
        checked(amount.checked_div(units))?
    };
    let per_unit_amount = if n.is_zero() {
        Decimal::ZERO
    } else {
        checked(per_unit_total_amount.checked_div(n))?
    };
    Ok(ChargeAmount::new(
        amount,
        unit_amount,
        AmountDetails::Volume {
            flat_unit_amount: range.flat_amount(),
            per_unit_amount,
            per_unit_total_amount,
        },
    ))
}
