//! Charge models: aggregated units to an amount (SEMANTICS §3-§4).
//!
//! - [`ChargeProperties::parse`] validates wire properties (plain strings and integers, as the
//!   plans API receives them) into a [`ChargeModel`], reporting Lago's field error codes.
//! - [`price`] applies a model to a [`PricingInput`] and gives a [`ChargeAmount`] in major
//!   units (unrounded).
//! - [`pay_in_advance_amount`] gives an instant fee as the difference of two pricings.
//! - [`fee::ChargeFee`] turns an amount into a fee (negative clamp, rounding once);
//!   [`fee::minimum_spend_true_up`] adds the prorated minimum.

pub mod dynamic;
pub mod fee;
pub mod graduated;
pub mod graduated_percentage;
pub mod package;
pub mod percentage;
pub mod properties;
pub mod standard;
pub mod volume;

use rust_decimal::Decimal;

use crate::money::Currency;
pub use graduated::{GraduatedRange, GraduatedTier};
pub use graduated_percentage::GraduatedPercentageRange;
pub use package::PackageProperties;
pub use percentage::PercentageProperties;
pub use properties::{ChargeProperties, ChargePropertiesInput, RangeInput};

/// What can go wrong while pricing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    /// An intermediate amount left the `Decimal` range.
    #[error("charge amount overflow")]
    Overflow,
    /// Converting the amount to money failed.
    #[error(transparent)]
    Money(#[from] crate::money::MoneyError),
}

pub(crate) fn checked(value: Option<Decimal>) -> Result<Decimal, ChargeError> {
    value.ok_or(ChargeError::Overflow)
}

/// A validated charge model with its properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeModel {
    /// A unit price.
    Standard {
        /// Price per unit.
        amount: Decimal,
    },
    /// Tiers, each priced on its own slice.
    Graduated(Vec<GraduatedRange>),
    /// Tiers with a percentage rate each.
    GraduatedPercentage(Vec<GraduatedPercentageRange>),
    /// A price per started package.
    Package(PackageProperties),
    /// A rate on the units, with fixed fees and free units.
    Percentage(PercentageProperties),
    /// All units at the tier reached.
    Volume(Vec<GraduatedRange>),
    /// Prices carried by the events (`precise_total_amount_cents`).
    Dynamic,
}

impl ChargeModel {
    /// Lago's wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Standard { .. } => "standard",
            Self::Graduated(_) => "graduated",
            Self::GraduatedPercentage(_) => "graduated_percentage",
            Self::Package(_) => "package",
            Self::Percentage(_) => "percentage",
            Self::Volume(_) => "volume",
            Self::Dynamic => "dynamic",
        }
    }
}

/// Everything a charge model may read about the usage of one fee.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PricingInput {
    units: Decimal,
    full_units_number: Option<Decimal>,
    events_count: u64,
    running_total: Vec<Decimal>,
    counting_running_total: Option<u64>,
    event_values: Vec<Decimal>,
    precise_total_amount_cents: Decimal,
    prorated: bool,
    premium: bool,
    exclude_event: bool,
}

impl PricingInput {
    /// Usage of `units` (after metric rounding).
    pub fn new(units: Decimal) -> Self {
        Self {
            units,
            ..Self::default()
        }
    }

    /// The non-prorated units of a prorated charge.
    pub fn with_full_units_number(mut self, full: Decimal) -> Self {
        self.full_units_number = Some(full);
        self
    }

    /// The number of events (percentage fixed fees).
    pub fn with_events_count(mut self, count: u64) -> Self {
        self.events_count = count;
        self
    }

    /// Running totals for percentage free units (see [`crate::aggregation::sum_running_total`]).
    pub fn with_running_total(mut self, running_total: Vec<Decimal>) -> Self {
        self.running_total = running_total;
        self
    }

    /// The running totals of a count or unique count, `[1, 2, …, n]` (SEMANTICS §2.8), given
    /// by `n` rather than spelled out: a month of events would be millions of entries.
    pub fn with_counting_running_total(mut self, n: u64) -> Self {
        self.counting_running_total = Some(n);
        self
    }

    /// Each event's value in time order (percentage per-transaction limits).
    pub fn with_event_values(mut self, values: Vec<Decimal>) -> Self {
        self.event_values = values;
        self
    }

    /// `Σ precise_total_amount_cents` of the events (dynamic).
    pub fn with_precise_total_amount_cents(mut self, cents: Decimal) -> Self {
        self.precise_total_amount_cents = cents;
        self
    }

    /// Marks the charge as prorated (volume picks its tier from the full units).
    pub fn prorated(mut self) -> Self {
        self.prorated = true;
        self
    }

    /// The organization has Lago's premium license (per-transaction min/max apply).
    pub fn with_premium_license(mut self) -> Self {
        self.premium = true;
        self
    }

    /// The pay-in-advance "without this event" pass: 0 units cost 0, first flat fee included.
    pub fn excluding_event(mut self) -> Self {
        self.exclude_event = true;
        self
    }

    /// Units priced.
    pub fn units(&self) -> Decimal {
        self.units
    }
    /// Non-prorated units, when prorated.
    pub fn full_units_number(&self) -> Option<Decimal> {
        self.full_units_number
    }
    /// Events count.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }
    /// Running totals.
    pub fn running_total(&self) -> &[Decimal] {
        &self.running_total
    }
    /// The `n` of a count's or unique count's running totals `[1, 2, …, n]`, if given.
    pub fn counting_running_total(&self) -> Option<u64> {
        self.counting_running_total
    }
    /// Event values in time order.
    pub fn event_values(&self) -> &[Decimal] {
        &self.event_values
    }
    /// `Σ precise_total_amount_cents`.
    pub fn precise_total_amount_cents(&self) -> Decimal {
        self.precise_total_amount_cents
    }
    /// Whether the charge is prorated.
    pub fn is_prorated(&self) -> bool {
        self.prorated
    }
    /// Whether the premium license is on.
    pub fn has_premium_license(&self) -> bool {
        self.premium
    }
    /// Whether this is a pay-in-advance "before" pass.
    pub fn excludes_event(&self) -> bool {
        self.exclude_event
    }
}

/// Per-model breakdown of an amount (Lago's `amount_details`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountDetails {
    /// No breakdown for this model.
    None,
    /// Each tier reached.
    Graduated(Vec<GraduatedTier>),
    /// Package figures.
    Package {
        /// Free units.
        free_units: Decimal,
        /// Units above the free ones.
        paid_units: Decimal,
        /// Units per package.
        per_package_size: u64,
        /// Price of one package.
        per_package_unit_amount: Decimal,
    },
    /// Percentage figures.
    Percentage {
        /// Units not charged at the rate.
        free_units: Decimal,
        /// Events without the fixed fee.
        free_events: u64,
        /// Events with the fixed fee.
        paid_events: u64,
    },
    /// Volume figures.
    Volume {
        /// The tier's flat amount.
        flat_unit_amount: Decimal,
        /// `per_unit_total_amount / (full) units`.
        per_unit_amount: Decimal,
        /// `units × tier unit price`.
        per_unit_total_amount: Decimal,
    },
}

/// An unrounded charge amount in major units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeAmount {
    amount: Decimal,
    unit_amount: Decimal,
    details: AmountDetails,
}

impl ChargeAmount {
    pub(crate) fn new(amount: Decimal, unit_amount: Decimal, details: AmountDetails) -> Self {
        Self {
            amount,
            unit_amount,
            details,
        }
    }

    pub(crate) fn zero() -> Self {
        Self::new(Decimal::ZERO, Decimal::ZERO, AmountDetails::None)
    }

    /// The amount in major units (unrounded).
    pub fn amount(&self) -> Decimal {
        self.amount
    }

    /// The amount per unit.
    pub fn unit_amount(&self) -> Decimal {
        self.unit_amount
    }

    /// The breakdown.
    pub fn details(&self) -> &AmountDetails {
        &self.details
    }
}

/// Prices usage with a charge model. `currency` is needed by `dynamic`, whose event prices are
/// in minor units.
pub fn price(
    model: &ChargeModel,
    input: &PricingInput,
    currency: Currency,
) -> Result<ChargeAmount, ChargeError> {
    match model {
        ChargeModel::Standard { amount } => standard::price(*amount, input),
        ChargeModel::Graduated(ranges) => graduated::price(ranges, input),
        ChargeModel::GraduatedPercentage(ranges) => graduated_percentage::price(ranges, input),
        ChargeModel::Package(props) => package::price(props, input),
        ChargeModel::Percentage(props) => percentage::price(props, input),
        ChargeModel::Volume(ranges) => volume::price(ranges, input),
        ChargeModel::Dynamic => dynamic::price(input, currency),
    }
}

/// The instant fee of one pay-in-advance event (SEMANTICS §4.9): the price of all period events
/// including it minus the price without it (the "without" pass prices 0 units at 0, so the
/// first event pays the first tier's flat fee).
pub fn pay_in_advance_amount(
    model: &ChargeModel,
    with_event: &PricingInput,
    without_event: &PricingInput,
    currency: Currency,
) -> Result<Decimal, ChargeError> {
    let after = price(model, with_event, currency)?;
    let before = price(model, &without_event.clone().excluding_event(), currency)?;
    checked(after.amount().checked_sub(before.amount()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn graduated(ranges: &[(Decimal, Option<Decimal>, Decimal, Decimal)]) -> ChargeModel {
        ChargeModel::Graduated(
            ranges
                .iter()
                .map(|&(f, t, p, fl)| GraduatedRange::new(f, t, p, fl))
                .collect(),
        )
    }

    fn in_advance_cents(model: &ChargeModel, events: &[Decimal]) -> Vec<Decimal> {
        // Each event's fee = price(units so far incl. it) − price(units before it).
        let mut before = Decimal::ZERO;
        let mut out = Vec::new();
        for v in events {
            let after = before + v;
            let fee = pay_in_advance_amount(
                model,
                &PricingInput::new(after),
                &PricingInput::new(before),
                Currency::EUR,
            );
            out.push(fee.map(|f| f * dec!(100)).unwrap_or(Decimal::MIN));
            before = after;
        }
        out
    }

    #[test]
    fn a_counts_running_totals_given_by_n_price_as_the_spelled_out_list() {
        // SEMANTICS §2.8: a count's running totals are [1, 2, …, units]. Given by their n,
        // percentage must price exactly as with the list, for every free-unit setting.
        let percentage = |n: Option<u64>, f: Option<Decimal>| {
            ChargeModel::Percentage(PercentageProperties::new(
                dec!(10),
                Some(dec!(1)),
                n,
                f,
                None,
                None,
            ))
        };
        let settings = [
            (Some(2), None),
            (Some(9), None),
            (None, Some(dec!(3))),
            (None, Some(dec!(2.5))),
            (None, Some(dec!(0.5))),
            (Some(4), Some(dec!(2))),
            (Some(1), Some(dec!(30))),
        ];
        for (n, f) in settings {
            for units in [0u64, 1, 2, 3, 5, 8] {
                let model = percentage(n, f);
                let base = PricingInput::new(Decimal::from(units)).with_events_count(units);
                let listed = base
                    .clone()
                    .with_running_total((1..=units).map(Decimal::from).collect());
                let counted = base.with_counting_running_total(units);
                assert_eq!(
                    price(&model, &counted, Currency::USD).map(|a| a.amount()),
                    price(&model, &listed, Currency::USD).map(|a| a.amount()),
                    "n = {n:?}, f = {f:?}, units = {units}"
                );
            }
        }
        // 5 events, 10 %, 1 per paid event, the first 2 free: (5 - 2) × 10 % + (5 - 2) × 1 = 3.3
        let counted = PricingInput::new(dec!(5))
            .with_events_count(5)
            .with_counting_running_total(5);
        assert_eq!(
            price(&percentage(Some(2), None), &counted, Currency::USD).map(|a| a.amount()),
            Ok(dec!(3.3))
        );
    }

    #[test]
    fn pay_in_advance_graduated_fees_are_deltas_and_the_first_pays_the_flat_fee() {
        // SEMANTICS §4.9: tiers 0–5 @0.02 + 0.01 flat, 6+ @0.01 + 0.01 flat; events 3, 1, 2.
        // 3 units: 3×0.02+0.01 = 0.07; 4: 0.09 (−0.07 = 0.02); 6: 0.11 + (1×0.01+0.01) = 0.13
        // (−0.09 = 0.04) → 7, 2, 4 cents.
        let model = graduated(&[
            (dec!(0), Some(dec!(5)), dec!(0.02), dec!(0.01)),
            (dec!(6), None, dec!(0.01), dec!(0.01)),
        ]);
        let fees = in_advance_cents(&model, &[dec!(3), dec!(1), dec!(2)]);
        assert_eq!(fees, vec![dec!(7), dec!(2), dec!(4)]);
    }

    #[test]
    fn pay_in_advance_package_fees_charge_each_new_package_once() {
        // SEMANTICS §4.9: 100 per package of 2, 3 free; events 3, 1, 2 → units 3, 4, 6 →
        // packages 0, 1, 2 → fees 0, 100, 100 (× 100 cents).
        let model = ChargeModel::Package(PackageProperties::new(dec!(100), 2, 3));
        let fees = in_advance_cents(&model, &[dec!(3), dec!(1), dec!(2)]);
        assert_eq!(fees, vec![dec!(0), dec!(10000), dec!(10000)]);
    }
}
