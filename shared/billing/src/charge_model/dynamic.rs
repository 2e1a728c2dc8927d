//! `dynamic`: each event carries its own price (SEMANTICS §4.7).

use super::{AmountDetails, ChargeAmount, ChargeError, PricingInput, checked};
use crate::money::Currency;

/// `amount = Σ precise_total_amount_cents / subunit_to_unit`, 0 when there are no units;
/// `unit_amount = amount / units`.
pub fn price(input: &PricingInput, currency: Currency) -> Result<ChargeAmount, ChargeError> {
    if input.units().is_zero() {
        return Ok(ChargeAmount::zero());
    }
    let amount = checked(
        input
            .precise_total_amount_cents()
            .checked_div(currency.subunit_to_unit()),
    )?;
    let unit_amount = checked(amount.checked_div(input.units()))?;
    Ok(ChargeAmount::new(amount, unit_amount, AmountDetails::None))
}
