//! `graduated`: each tier prices its own slice of the units (SEMANTICS §4.2), and its prorated
//! form (§2.6).

use rust_decimal::Decimal;

use super::{AmountDetails, ChargeAmount, ChargeError, PricingInput, checked};

/// One tier: `[from_value, to_value]` (inclusive; `None` = unbounded), a unit price and a flat
/// amount charged as soon as the tier is entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraduatedRange {
    from_value: Decimal,
    to_value: Option<Decimal>,
    per_unit_amount: Decimal,
    flat_amount: Decimal,
}

impl GraduatedRange {
    /// A tier (bounds are validated by [`super::ChargeProperties::parse`]).
    pub fn new(
        from_value: Decimal,
        to_value: Option<Decimal>,
        per_unit_amount: Decimal,
        flat_amount: Decimal,
    ) -> Self {
        Self {
            from_value,
            to_value,
            per_unit_amount,
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

    /// Price per unit in the tier.
    pub fn per_unit_amount(&self) -> Decimal {
        self.per_unit_amount
    }

    /// Flat amount for entering the tier.
    pub fn flat_amount(&self) -> Decimal {
        self.flat_amount
    }
}

/// What one tier contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraduatedTier {
    /// Units priced in the tier.
    pub units: Decimal,
    /// `units × per_unit_amount`.
    pub per_unit_total_amount: Decimal,
    /// The tier's flat amount.
    pub flat_unit_amount: Decimal,
    /// `per_unit_total_amount + flat_unit_amount`.
    pub total_with_flat_amount: Decimal,
}

/// Whether every consecutive pair of tiers is *adjacent* (`from == previous to`, the decimal
/// convention); otherwise ranges are "classic" integer ranges (0–10, 11–20).
pub fn is_adjacent(ranges: &[GraduatedRange]) -> bool {
    ranges
        .windows(2)
        .all(|w| w[0].to_value == Some(w[1].from_value))
}

/// The contribution of one tier to `units` (Lago's per-range amount details):
/// `eff = min(units, to)`, `units_r = eff` from 0, `eff − from` when adjacent,
/// `eff − from + 1` for classic ranges.
pub fn range_amount(
    range: &GraduatedRange,
    units: Decimal,
    adjacent: bool,
) -> Result<GraduatedTier, ChargeError> {
    let eff = match range.to_value {
        Some(to) if units >= to => to,
        _ => units,
    };
    let tier_units = if range.from_value.is_zero() {
        eff
    } else if adjacent {
        eff - range.from_value
    } else {
        eff - range.from_value + Decimal::ONE
    };
    let per_unit = if tier_units.is_zero() {
        Decimal::ZERO
    } else {
        range.per_unit_amount
    };
    let per_unit_total_amount = checked(tier_units.checked_mul(per_unit))?;
    Ok(GraduatedTier {
        units: tier_units,
        per_unit_total_amount,
        flat_unit_amount: range.flat_amount,
        total_with_flat_amount: checked(per_unit_total_amount.checked_add(range.flat_amount))?,
    })
}

/// Walks the tiers up to the one holding the units. The first tier's flat amount is charged
/// even at 0 units, except in a pay-in-advance "before" pass (`exclude_event`).
pub fn price(ranges: &[GraduatedRange], input: &PricingInput) -> Result<ChargeAmount, ChargeError> {
    let units = input.units();
    if input.excludes_event() && units.is_zero() {
        return Ok(ChargeAmount::zero());
    }
    let adjacent = is_adjacent(ranges);
    let mut tiers = Vec::new();
    let mut amount = Decimal::ZERO;
    for range in ranges {
        let tier = range_amount(range, units, adjacent)?;
        amount = checked(amount.checked_add(tier.total_with_flat_amount))?;
        tiers.push(tier);
        if range.to_value.is_none_or(|to| to >= units) {
            break;
        }
    }
    let unit_amount = if units.is_zero() {
        Decimal::ZERO
    } else {
        checked(amount.checked_div(units))?
    };
    Ok(ChargeAmount::new(
        amount,
        unit_amount,
        AmountDetails::Graduated(tiers),
    ))
}

/// Prorated graduated (SEMANTICS §2.6): `events` are `(full value, prorated value)` in time
/// order. The tier is chosen from the running *full* total, the price is applied to the
/// *prorated* value, an event crossing a tier boundary is split in proportion, and the flat
/// amount of every tier up to the one reached by the *maximum* running full total is added. A
/// negative final full total prices to 0.
pub fn price_prorated(
    ranges: &[GraduatedRange],
    events: &[(Decimal, Decimal)],
) -> Result<ChargeAmount, ChargeError> {
    // Tier i covers running totals in (upper bound of tier i−1, upper bound of tier i].
    let bounds: Vec<Option<Decimal>> = ranges.iter().map(|r| r.to_value).collect();
    let tier_of = |total: Decimal| -> usize {
        bounds
            .iter()
            .position(|b| b.is_none_or(|b| total <= b))
            .unwrap_or(bounds.len().saturating_sub(1))
    };
    let mut total = Decimal::ZERO;
    let mut max_total = Decimal::ZERO;
    let mut amount = Decimal::ZERO;
    for &(full, prorated) in events {
        let start = total;
        let end = checked(total.checked_add(full))?;
        if !full.is_zero() {
            let ratio = checked(prorated.checked_div(full))?;
            let (lo, hi) = if start <= end {
                (start, end)
            } else {
                (end, start)
            };
            let sign = if full.is_sign_negative() {
                Decimal::NEGATIVE_ONE
            } else {
                Decimal::ONE
            };
            for (i, range) in ranges.iter().enumerate() {
                let tier_lo = if i == 0 {
                    None
                } else {
                    bounds.get(i - 1).copied().flatten()
                };
                let tier_hi = bounds[i];
                let seg_lo = tier_lo.map_or(lo, |t| lo.max(t));
                let seg_hi = tier_hi.map_or(hi, |t| hi.min(t));
                if seg_hi > seg_lo {
                    let slice = checked((seg_hi - seg_lo).checked_mul(ratio))?;
                    let priced = checked(slice.checked_mul(range.per_unit_amount))?;
                    amount = checked(amount.checked_add(sign * priced))?;
                }
            }
        }
        total = end;
        max_total = max_total.max(total);
    }
    if total.is_sign_negative() && !total.is_zero() {
        return Ok(ChargeAmount::zero());
    }
    let reached = if ranges.is_empty() {
        0
    } else {
        tier_of(max_total) + 1
    };
    for range in ranges.iter().take(reached) {
        amount = checked(amount.checked_add(range.flat_amount))?;
    }
    let unit_amount = if total.is_zero() {
        Decimal::ZERO
    } else {
        checked(amount.checked_div(total))?
    };
    Ok(ChargeAmount::new(amount, unit_amount, AmountDetails::None))
}
