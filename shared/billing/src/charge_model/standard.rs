//! `standard`: a unit price (SEMANTICS §4.1).

use rust_decimal::Decimal;

use super::{AmountDetails, ChargeAmount, ChargeError, PricingInput, checked};

/// `amount = units × unit price`; `unit_amount = amount / (full_units_number or units)`.
pub fn price(unit_price: Decimal, input: &PricingInput) -> Result<ChargeAmount, ChargeError> {
    let amount = checked(input.units().checked_mul(unit_price))?;
    let divisor = input.full_units_number().unwrap_or(input.units());
    let unit_amount = if divisor.is_zero() {
        Decimal::ZERO
    } else {
        checked(amount.checked_div(divisor))?
    };
    Ok(ChargeAmount::new(amount, unit_amount, AmountDetails::None))
}
