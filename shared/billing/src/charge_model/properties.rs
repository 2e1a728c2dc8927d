//! Charge properties as the plans API receives them (decimal strings and integers), validated
//! into a [`ChargeModel`] with Lago's error codes (SEMANTICS §3).
//!
//! Errors are [`ValidationErrors`] keyed by the property, with Lago's codes:
//! `invalid_amount`, `missing_graduated_ranges`, `invalid_graduated_ranges`,
//! `missing_graduated_percentage_ranges`, `invalid_graduated_percentage_ranges`,
//! `missing_volume_ranges`, `invalid_volume_ranges`, `invalid_rate`, `invalid_fixed_amount`,
//! `invalid_package_size`, `invalid_free_units`, `invalid_free_units_per_events`,
//! `invalid_free_units_per_total_aggregation`, `invalid_per_transaction_min_amount`,
//! `invalid_per_transaction_max_amount`, and `value_is_invalid` for an unknown model.

use rust_decimal::Decimal;

use super::{
    ChargeModel, GraduatedPercentageRange, GraduatedRange, PackageProperties, PercentageProperties,
};
use crate::{
    aggregation::parse_numeric,
    catalog::{ValidationErrors, metric::AggregationType},
};

/// One tier as sent on the wire. `per_unit_amount` is read by graduated and volume, `rate` by
/// graduated_percentage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeInput {
    /// Lower bound (`from_value`).
    pub from_value: Option<String>,
    /// Upper bound (`to_value`), `None` for the last tier.
    pub to_value: Option<String>,
    /// Unit price (graduated, volume).
    pub per_unit_amount: Option<String>,
    /// Rate in percent (graduated_percentage).
    pub rate: Option<String>,
    /// Flat amount of the tier.
    pub flat_amount: Option<String>,
}

/// Charge properties as sent on the wire; which fields matter depends on the model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChargePropertiesInput {
    /// Unit price (standard) or package price (package).
    pub amount: Option<String>,
    /// Tiers of a graduated charge.
    pub graduated_ranges: Option<Vec<RangeInput>>,
    /// Tiers of a graduated_percentage charge.
    pub graduated_percentage_ranges: Option<Vec<RangeInput>>,
    /// Tiers of a volume charge.
    pub volume_ranges: Option<Vec<RangeInput>>,
    /// Units per package.
    pub package_size: Option<i64>,
    /// Free units before packaging.
    pub free_units: Option<i64>,
    /// Percentage rate in percent.
    pub rate: Option<String>,
    /// Fee per paid event (percentage).
    pub fixed_amount: Option<String>,
    /// Free events (percentage).
    pub free_units_per_events: Option<i64>,
    /// Free units (percentage).
    pub free_units_per_total_aggregation: Option<String>,
    /// Per-transaction minimum (percentage, premium).
    pub per_transaction_min_amount: Option<String>,
    /// Per-transaction maximum (percentage, premium).
    pub per_transaction_max_amount: Option<String>,
    /// Properties grouping the usage into one fee per value combination.
    pub pricing_group_keys: Option<Vec<String>>,
}

/// A validated charge model plus its pricing group keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeProperties {
    model: ChargeModel,
    pricing_group_keys: Vec<String>,
}

/// A non-negative plain decimal (`"0.5"`, `"10"`), as Lago's decimal amount validator accepts.
fn amount(s: Option<&str>) -> Option<Decimal> {
    parse_numeric(s?.trim()).filter(|d| !d.is_sign_negative() || d.is_zero())
}

impl ChargeProperties {
    /// Validates `input` for the charge model named `charge_model` (Lago's wire name).
    pub fn parse(
        charge_model: &str,
        input: &ChargePropertiesInput,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let model = match charge_model {
            "standard" => match amount(input.amount.as_deref()) {
                Some(a) => Some(ChargeModel::Standard { amount: a }),
                None => {
                    errors.push("amount", "invalid_amount");
                    None
                }
            },
            "graduated" => parse_ranges(
                input.graduated_ranges.as_deref(),
                "graduated_ranges",
                RangeRule::Graduated,
                &mut errors,
            )
            .map(ChargeModel::Graduated),
            "volume" => parse_ranges(
                input.volume_ranges.as_deref(),
                "volume_ranges",
                RangeRule::Volume,
                &mut errors,
            )
            .map(ChargeModel::Volume),
            "graduated_percentage" => {
                parse_percentage_ranges(input.graduated_percentage_ranges.as_deref(), &mut errors)
                    .map(ChargeModel::GraduatedPercentage)
            }
            "package" => parse_package(input, &mut errors).map(ChargeModel::Package),
            "percentage" => parse_percentage(input, &mut errors).map(ChargeModel::Percentage),
            "dynamic" => Some(ChargeModel::Dynamic),
            _ => {
                errors.push("charge_model", "value_is_invalid");
                None
            }
        };
        errors.into_result()?;
        let Some(model) = model else {
            return Err(ValidationErrors(vec![crate::catalog::FieldError::new(
                "charge_model",
                "value_is_invalid",
            )]));
        };
        Ok(Self {
            model,
            pricing_group_keys: input.pricing_group_keys.clone().unwrap_or_default(),
        })
    }

    /// The model with its properties.
    pub fn model(&self) -> &ChargeModel {
        &self.model
    }

    /// The pricing group keys (empty when the usage is not grouped).
    pub fn pricing_group_keys(&self) -> &[String] {
        &self.pricing_group_keys
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeRule {
    /// Next `from` is the previous `to` (adjacent) or the previous `to + 1`.
    Graduated,
    /// Lago's volume validator quirk: next `from` is the previous `to + 1` or `to + 2`.
    Volume,
}

/// Tier bounds, shared by the three tiered models: the first `from` is 0 or 1, each `to` is
/// above its `from`, only the last `to` is open, and each next `from` follows `rule`.
fn bounds_are_valid(bounds: &[(Decimal, Option<Decimal>)], rule: RangeRule) -> bool {
    let Some(&(first_from, _)) = bounds.first() else {
        return false;
    };
    if first_from != Decimal::ZERO && first_from != Decimal::ONE {
        return false;
    }
    for (i, &(from, to)) in bounds.iter().enumerate() {
        let last = i + 1 == bounds.len();
        match to {
            None if !last => return false,
            Some(_) if last => return false,
            Some(to) if to <= from => return false,
            _ => {}
        }
        if i > 0 {
            let Some(prev_to) = bounds[i - 1].1 else {
                return false;
            };
            let ok = match rule {
                RangeRule::Graduated => from == prev_to || from == prev_to + Decimal::ONE,
                RangeRule::Volume => {
                    from == prev_to + Decimal::ONE || from == prev_to + Decimal::TWO
                }
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

fn parse_bounds(ranges: &[RangeInput]) -> Option<Vec<(Decimal, Option<Decimal>)>> {
    ranges
        .iter()
        .map(|r| {
            let from = amount(r.from_value.as_deref())?;
            let to = match r.to_value.as_deref() {
                None => None,
                Some(s) => Some(amount(Some(s))?),
            };
            Some((from, to))
        })
        .collect()
}

fn parse_ranges(
    ranges: Option<&[RangeInput]>,
    field: &'static str,
    rule: RangeRule,
    errors: &mut ValidationErrors,
) -> Option<Vec<GraduatedRange>> {
    let (missing, invalid) = match rule {
        RangeRule::Graduated => ("missing_graduated_ranges", "invalid_graduated_ranges"),
        RangeRule::Volume => ("missing_volume_ranges", "invalid_volume_ranges"),
    };
    let ranges = match ranges {
        Some(r) if !r.is_empty() => r,
        _ => {
            errors.push(field, missing);
            return None;
        }
    };
    let Some(bounds) = parse_bounds(ranges).filter(|b| bounds_are_valid(b, rule)) else {
        errors.push(field, invalid);
        return None;
    };
    let mut out = Vec::with_capacity(ranges.len());
    for (r, (from, to)) in ranges.iter().zip(bounds) {
        match (
            amount(r.per_unit_amount.as_deref()),
            amount(r.flat_amount.as_deref()),
        ) {
            (Some(p), Some(f)) => out.push(GraduatedRange::new(from, to, p, f)),
            _ => {
                errors.push("amount", "invalid_amount");
                return None;
            }
        }
    }
    Some(out)
}

fn parse_percentage_ranges(
    ranges: Option<&[RangeInput]>,
    errors: &mut ValidationErrors,
) -> Option<Vec<GraduatedPercentageRange>> {
    let field = "graduated_percentage_ranges";
    let ranges = match ranges {
        Some(r) if !r.is_empty() => r,
        _ => {
            errors.push(field, "missing_graduated_percentage_ranges");
            return None;
        }
    };
    let Some(bounds) = parse_bounds(ranges).filter(|b| bounds_are_valid(b, RangeRule::Graduated))
    else {
        errors.push(field, "invalid_graduated_percentage_ranges");
        return None;
    };
    let mut out = Vec::with_capacity(ranges.len());
    for (r, (from, to)) in ranges.iter().zip(bounds) {
        let Some(rate) = amount(r.rate.as_deref()) else {
            errors.push("rate", "invalid_rate");
            return None;
        };
        let Some(flat) = amount(r.flat_amount.as_deref()) else {
            errors.push("flat_amount", "invalid_amount");
            return None;
        };
        out.push(GraduatedPercentageRange::new(from, to, rate, flat));
    }
    Some(out)
}

fn parse_package(
    input: &ChargePropertiesInput,
    errors: &mut ValidationErrors,
) -> Option<PackageProperties> {
    let price = amount(input.amount.as_deref());
    if price.is_none() {
        errors.push("amount", "invalid_amount");
    }
    let size = input.package_size.filter(|s| *s > 0);
    if size.is_none() {
        errors.push("package_size", "invalid_package_size");
    }
    let free = input.free_units.filter(|f| *f >= 0);
    if free.is_none() {
        errors.push("free_units", "invalid_free_units");
    }
    Some(PackageProperties::new(
        price?,
        u64::try_from(size?).ok()?,
        u64::try_from(free?).ok()?,
    ))
}

fn parse_percentage(
    input: &ChargePropertiesInput,
    errors: &mut ValidationErrors,
) -> Option<PercentageProperties> {
    let rate = amount(input.rate.as_deref());
    if rate.is_none() {
        errors.push("rate", "invalid_rate");
    }
    let mut optional = |value: Option<&str>, field: &'static str, code: &'static str| match value {
        None => Some(None),
        Some(s) => match amount(Some(s)) {
            Some(d) => Some(Some(d)),
            None => {
                errors.push(field, code);
                None
            }
        },
    };
    let fixed = optional(
        input.fixed_amount.as_deref(),
        "fixed_amount",
        "invalid_fixed_amount",
    );
    let free_total = optional(
        input.free_units_per_total_aggregation.as_deref(),
        "free_units_per_total_aggregation",
        "invalid_free_units_per_total_aggregation",
    );
    let min = optional(
        input.per_transaction_min_amount.as_deref(),
        "per_transaction_min_amount",
        "invalid_per_transaction_min_amount",
    );
    let max = optional(
        input.per_transaction_max_amount.as_deref(),
        "per_transaction_max_amount",
        "invalid_per_transaction_max_amount",
    );
    let free_events = match input.free_units_per_events {
        None => Some(None),
        Some(n) if n > 0 => u64::try_from(n).ok().map(Some),
        Some(_) => {
            errors.push("free_units_per_events", "invalid_free_units_per_events");
            None
        }
    };
    if let (Some(Some(lo)), Some(Some(hi))) = (min, max) {
        if lo > hi {
            errors.push(
                "per_transaction_max_amount",
                "invalid_per_transaction_max_amount",
            );
            return None;
        }
    }
    Some(PercentageProperties::new(
        rate?,
        fixed?,
        free_events?,
        free_total?,
        min?,
        max?,
    ))
}

/// Charge-level rules that involve the metric (SEMANTICS §2, §2.6, §3): the models a metric
/// type allows, pay in advance, proration and minimum spend. Field errors use Lago's field
/// names with `value_is_invalid`, and `invalid_aggregation_type_or_charge_model` for a model the
/// metric cannot feed.
#[allow(clippy::too_many_arguments)]
pub fn validate_charge_rules(
    model: &ChargeModel,
    aggregation_type: AggregationType,
    recurring: bool,
    pay_in_advance: bool,
    prorated: bool,
    invoiceable: bool,
    min_amount_cents: Option<i64>,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let model_ok = match model {
        ChargeModel::Dynamic => aggregation_type == AggregationType::Sum,
        ChargeModel::Percentage(_) | ChargeModel::GraduatedPercentage(_) => {
            aggregation_type != AggregationType::Latest
        }
        _ => true,
    };
    if !model_ok {
        errors.push("charge_model", "invalid_aggregation_type_or_charge_model");
    }
    if pay_in_advance
        && (matches!(model, ChargeModel::Volume(_)) || !aggregation_type.allows_pay_in_advance())
    {
        errors.push("pay_in_advance", "value_is_invalid");
    }
    if prorated {
        let allowed = recurring
            && aggregation_type != AggregationType::WeightedSum
            && if pay_in_advance {
                matches!(model, ChargeModel::Standard { .. })
            } else {
                matches!(
                    model,
                    ChargeModel::Standard { .. }
                        | ChargeModel::Volume(_)
                        | ChargeModel::Graduated(_)
                )
            };
        if !allowed {
            errors.push("prorated", "value_is_invalid");
        }
    }
    if !invoiceable && !pay_in_advance {
        errors.push("invoiceable", "value_is_invalid");
    }
    if pay_in_advance && min_amount_cents.is_some_and(|m| m != 0) {
        errors.push("min_amount_cents", "value_is_invalid");
    }
    if min_amount_cents.is_some_and(|m| m < 0) {
        errors.push("min_amount_cents", "value_is_invalid");
    }
    errors.into_result()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: &str, to: Option<&str>, price: &str, flat: &str) -> RangeInput {
        RangeInput {
            from_value: Some(from.into()),
            to_value: to.map(String::from),
            per_unit_amount: Some(price.into()),
            rate: Some(price.into()),
            flat_amount: Some(flat.into()),
        }
    }

    fn codes(r: Result<ChargeProperties, ValidationErrors>) -> Vec<(String, &'static str)> {
        r.err()
            .map(|e| e.0.into_iter().map(|f| (f.field, f.code)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn graduated_ranges_accept_classic_and_adjacent_bounds() {
        for ranges in [
            vec![
                range("0", Some("10"), "1", "0"),
                range("11", None, "0.5", "0"),
            ],
            vec![
                range("0", Some("0.1"), "1", "0"),
                range("0.1", None, "0.5", "0"),
            ],
        ] {
            let input = ChargePropertiesInput {
                graduated_ranges: Some(ranges),
                ..Default::default()
            };
            assert!(ChargeProperties::parse("graduated", &input).is_ok());
        }
    }

    #[test]
    fn graduated_ranges_with_gaps_or_open_middles_are_invalid() {
        let cases = [
            vec![
                range("0", Some("10"), "1", "0"),
                range("12", None, "1", "0"),
            ],
            vec![range("0", None, "1", "0"), range("11", None, "1", "0")],
            vec![
                range("0", Some("10"), "1", "0"),
                range("11", Some("20"), "1", "0"),
            ],
            vec![range("5", None, "1", "0")],
            vec![range("0", Some("0"), "1", "0"), range("1", None, "1", "0")],
        ];
        for ranges in cases {
            let input = ChargePropertiesInput {
                graduated_ranges: Some(ranges.clone()),
                ..Default::default()
            };
            assert_eq!(
                codes(ChargeProperties::parse("graduated", &input)),
                vec![("graduated_ranges".to_string(), "invalid_graduated_ranges")],
                "{ranges:?}"
            );
        }
        assert_eq!(
            codes(ChargeProperties::parse(
                "graduated",
                &ChargePropertiesInput::default()
            )),
            vec![("graduated_ranges".to_string(), "missing_graduated_ranges")]
        );
    }

    #[test]
    fn amounts_must_be_plain_non_negative_decimal_strings() {
        for bad in ["-1", "abc", "1e3", ""] {
            let input = ChargePropertiesInput {
                amount: Some(bad.into()),
                ..Default::default()
            };
            assert_eq!(
                codes(ChargeProperties::parse("standard", &input)),
                vec![("amount".to_string(), "invalid_amount")],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn package_needs_a_positive_size_and_non_negative_free_units() {
        let input = ChargePropertiesInput {
            amount: Some("10".into()),
            package_size: Some(0),
            free_units: Some(-1),
            ..Default::default()
        };
        assert_eq!(
            codes(ChargeProperties::parse("package", &input)),
            vec![
                ("package_size".to_string(), "invalid_package_size"),
                ("free_units".to_string(), "invalid_free_units"),
            ]
        );
    }

    #[test]
    fn percentage_checks_rate_free_units_and_min_not_above_max() {
        let input = ChargePropertiesInput {
            rate: Some("x".into()),
            free_units_per_events: Some(0),
            per_transaction_min_amount: Some("5".into()),
            per_transaction_max_amount: Some("1".into()),
            ..Default::default()
        };
        assert_eq!(
            codes(ChargeProperties::parse("percentage", &input)),
            vec![
                ("rate".to_string(), "invalid_rate"),
                (
                    "free_units_per_events".to_string(),
                    "invalid_free_units_per_events"
                ),
                (
                    "per_transaction_max_amount".to_string(),
                    "invalid_per_transaction_max_amount"
                ),
            ]
        );
    }

    #[test]
    fn an_unknown_model_is_invalid_and_dynamic_needs_no_properties() {
        assert_eq!(
            codes(ChargeProperties::parse(
                "custom",
                &ChargePropertiesInput::default()
            )),
            vec![("charge_model".to_string(), "value_is_invalid")]
        );
        assert!(ChargeProperties::parse("dynamic", &ChargePropertiesInput::default()).is_ok());
    }

    #[test]
    fn charge_rules_follow_the_metric() {
        let standard = ChargeModel::Standard {
            amount: Decimal::ONE,
        };
        // Dynamic needs sum_agg.
        assert!(
            validate_charge_rules(
                &ChargeModel::Dynamic,
                AggregationType::Count,
                false,
                false,
                false,
                true,
                None
            )
            .is_err()
        );
        // Pay in advance is refused for max_agg and for volume.
        assert!(
            validate_charge_rules(
                &standard,
                AggregationType::Max,
                false,
                true,
                false,
                true,
                None
            )
            .is_err()
        );
        // Prorated needs a recurring metric.
        assert!(
            validate_charge_rules(
                &standard,
                AggregationType::Sum,
                false,
                false,
                true,
                true,
                None
            )
            .is_err()
        );
        assert!(
            validate_charge_rules(
                &standard,
                AggregationType::Sum,
                true,
                false,
                true,
                true,
                None
            )
            .is_ok()
        );
        // A minimum spend is refused in advance.
        assert!(
            validate_charge_rules(
                &standard,
                AggregationType::Sum,
                false,
                true,
                false,
                true,
                Some(100)
            )
            .is_err()
        );
    }
}
