//! Instant fees of pay-in-advance charges (SEMANTICS §4.9): what one event costs when it
//! arrives, priced against the usage its charge already has in the period.
//!
//! The fee is a difference of two pricings of the bucket the event lands in: with the event
//! folded into the bucket's state, and without it (Lago's `exclude_event` pass, which prices
//! 0 units at 0, so the first event of a period pays a first tier's flat fee). Pure: the
//! caller supplies the period's usage as it stands (the pre-aggregated states, as current
//! usage reads them) and the candidate event; nothing is stored.

use rust_decimal::Decimal;

use crate::{
    aggregation::{UsageEvent, charge_usage::ChargeUsage, charge_usage::GroupKey, filters::Bucket},
    catalog::plan::Charge,
    charge_model::{
        AmountDetails, ChargeAmount, ChargeError, fee::ChargeFee, pay_in_advance_amount,
    },
    money::Currency,
    usage::{PricingError, UsageError, bucket_properties, pricing_input},
};

/// The fee one event would create on one pay-in-advance charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstantFee {
    /// The filter bucket the event is billed in (its most specific matching filter, else the
    /// default bucket).
    pub bucket: Bucket,
    /// The event's pricing group in that bucket.
    pub group: GroupKey,
    /// The fee: the event's own units (a count's 1, a sum's value, a unique count's 0 or 1),
    /// one event, and the amount `price(with) − price(without)`, rounded once.
    pub fee: ChargeFee,
}

/// The instant fee of `event` on `charge`, whose usage in the event's charges period is
/// `prior` (without the event). `charges_duration_days` is the period's length (weighted and
/// prorated aggregations read it).
pub fn instant_fee(
    charge: &Charge,
    prior: &ChargeUsage,
    event: &UsageEvent<'_>,
    charges_duration_days: u32,
    currency: Currency,
) -> Result<InstantFee, PricingError> {
    let (bucket, group) = prior.pay_in_advance_bucket_of(event);
    let aggregator = prior.aggregator();
    let before_state = prior.bucket_state(bucket, &group);
    let mut after_state = before_state.clone();
    aggregator
        .fold(&mut after_state, event)
        .map_err(UsageError::from)?;
    let before = aggregator
        .result(&before_state, Decimal::ZERO, charges_duration_days)
        .map_err(UsageError::from)?;
    let after = aggregator
        .result(&after_state, Decimal::ZERO, charges_duration_days)
        .map_err(UsageError::from)?;

    let model = bucket_properties(charge, bucket).model();
    let amount = pay_in_advance_amount(
        model,
        &pricing_input(model, prior, &after, charge.prorated()),
        &pricing_input(model, prior, &before, charge.prorated()),
        currency,
    )?;
    let units = after
        .units
        .checked_sub(before.units)
        .ok_or(ChargeError::Overflow)?;
    let unit_amount = if units.is_zero() {
        Decimal::ZERO
    } else {
        amount.checked_div(units).ok_or(ChargeError::Overflow)?
    };
    let fee = ChargeFee::new(
        units,
        1,
        &ChargeAmount::new(amount, unit_amount, AmountDetails::None),
        currency,
    )?;
    Ok(InstantFee { bucket, group, fee })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Duration, Utc};
    use rust_decimal_macros::dec;

    use super::*;
    use crate::{
        aggregation::EventKey,
        catalog::{
            metric::{BillableMetric, BillableMetricInput},
            plan::{ChargeFilterInput, ChargeInput},
        },
        charge_model::{ChargePropertiesInput, RangeInput},
        usage::ChargeSpec,
    };

    fn march() -> (DateTime<Utc>, DateTime<Utc>) {
        let from = DateTime::parse_from_rfc3339("2024-03-01T00:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        (from, from + Duration::days(31) - Duration::seconds(1))
    }

    fn metric(aggregation_type: &str, filters: Vec<(String, Vec<String>)>) -> BillableMetric {
        BillableMetric::new(BillableMetricInput {
            name: Some("Storage".into()),
            code: Some("gb".into()),
            aggregation_type: Some(aggregation_type.into()),
            field_name: (aggregation_type != "count_agg").then(|| "gb".into()),
            filters: Some(filters),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("metric: {e:?}"))
    }

    fn charge(
        metric: &BillableMetric,
        model: &str,
        properties: ChargePropertiesInput,
        filters: Vec<ChargeFilterInput>,
    ) -> Charge {
        let input = ChargeInput {
            lago_id: "charge-1".into(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            parent_id: None,
            code: Some("storage".into()),
            charge_model: Some(model.into()),
            properties: Some(properties),
            filters,
            pay_in_advance: true,
            invoiceable: true,
            prorated: false,
            regroup_paid_fees: None,
            min_amount_cents: None,
            tax_codes: Vec::new(),
            invoice_display_name: None,
        };
        Charge::new(input, "bm-1", metric).unwrap_or_else(|e| panic!("charge: {e:?}"))
    }

    fn empty_usage(charge: &Charge, metric: &BillableMetric) -> ChargeUsage {
        let spec = ChargeSpec::for_charge(charge, metric, chrono_tz::UTC);
        let (from, to) = march();
        spec.usage(from, to, 31)
            .unwrap_or_else(|e| panic!("usage: {e:?}"))
    }

    /// Estimates each event in turn against the usage before it, then counts it, as events
    /// arriving one by one: `(units, amount_cents, bucket)` per event.
    fn estimate_in_turn(
        charge: &Charge,
        metric: &BillableMetric,
        events: &[Vec<(&str, &str)>],
    ) -> Vec<(Decimal, i64, Bucket)> {
        let mut usage = empty_usage(charge, metric);
        let (from, _) = march();
        let mut out = Vec::new();
        for (i, properties) in events.iter().enumerate() {
            let key = EventKey::new(from + Duration::hours(i as i64 + 1), i as u64);
            let properties: Vec<(String, String)> = properties
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            let event = UsageEvent::new(key, &properties);
            let estimated = instant_fee(charge, &usage, &event, 31, Currency::USD)
                .unwrap_or_else(|e| panic!("event {i}: {e:?}"));
            out.push((
                estimated.fee.units(),
                estimated.fee.amount().cents(),
                estimated.bucket,
            ));
            assert_eq!(estimated.fee.events_count(), 1, "event {i}");
            usage
                .fold(&event)
                .unwrap_or_else(|e| panic!("fold {i}: {e:?}"));
        }
        out
    }

    fn range(from: &str, to: Option<&str>, per_unit: &str, flat: &str) -> RangeInput {
        RangeInput {
            from_value: Some(from.into()),
            to_value: to.map(str::to_owned),
            per_unit_amount: Some(per_unit.into()),
            rate: None,
            flat_amount: Some(flat.into()),
        }
    }

    #[test]
    fn graduated_instant_fees_are_deltas_and_the_first_event_pays_the_first_flat_fee() {
        // SEMANTICS §4.9: tiers 0–5 @0.02 + 0.01 flat, 6+ @0.01 + 0.01 flat; events 3, 1, 2.
        // 3 units: 3 × 0.02 + 0.01 = 0.07 (before: 0 units cost 0) → 7 cents;
        // 4 units: 4 × 0.02 + 0.01 = 0.09, − 0.07 → 2 cents;
        // 6 units: 5 × 0.02 + 0.01 + 1 × 0.01 + 0.01 = 0.13, − 0.09 → 4 cents.
        let m = metric("sum_agg", vec![]);
        let c = charge(
            &m,
            "graduated",
            ChargePropertiesInput {
                graduated_ranges: Some(vec![
                    range("0", Some("5"), "0.02", "0.01"),
                    range("6", None, "0.01", "0.01"),
                ]),
                ..Default::default()
            },
            vec![],
        );
        let fees = estimate_in_turn(
            &c,
            &m,
            &[vec![("gb", "3")], vec![("gb", "1")], vec![("gb", "2")]],
        );
        assert_eq!(
            fees,
            vec![
                (dec!(3), 7, Bucket::Default),
                (dec!(1), 2, Bucket::Default),
                (dec!(2), 4, Bucket::Default),
            ]
        );
    }

    #[test]
    fn package_instant_fees_charge_each_new_package_once() {
        // SEMANTICS §4.9: 100 USD per package of 2, 3 free; events 3, 1, 2 → units 3, 4, 6 →
        // paid packages ceil(0/2) = 0, ceil(1/2) = 1, ceil(3/2) = 2 → 0, 100, 100 USD.
        let m = metric("sum_agg", vec![]);
        let c = charge(
            &m,
            "package",
            ChargePropertiesInput {
                amount: Some("100".into()),
                package_size: Some(2),
                free_units: Some(3),
                ..Default::default()
            },
            vec![],
        );
        let fees = estimate_in_turn(
            &c,
            &m,
            &[vec![("gb", "3")], vec![("gb", "1")], vec![("gb", "2")]],
        );
        let cents: Vec<i64> = fees.iter().map(|(_, c, _)| *c).collect();
        assert_eq!(cents, vec![0, 10000, 10000]);
    }

    #[test]
    fn an_event_is_priced_with_its_most_specific_filter_and_only_that_filters_usage() {
        // Given a sum charge at 1 USD per GB by default, 3 USD in `eu`, and 5 USD in `eu` on
        // `ssd` (a more specific filter), graduated so that the bucket's prior usage matters:
        // each bucket prices 0–2 at its price, then 0 above.
        let m = metric(
            "sum_agg",
            vec![
                ("region".into(), vec!["eu".into(), "us".into()]),
                ("disk".into(), vec!["ssd".into(), "hdd".into()]),
            ],
        );
        let tiers = |price: &str| ChargePropertiesInput {
            graduated_ranges: Some(vec![
                range("0", Some("2"), price, "0"),
                range("3", None, "0", "0"),
            ]),
            ..Default::default()
        };
        let filter = |values: &[(&str, &str)], price: &str| ChargeFilterInput {
            values: values
                .iter()
                .map(|(k, v)| ((*k).to_owned(), vec![(*v).to_owned()]))
                .collect::<BTreeMap<_, _>>(),
            properties: tiers(price),
            invoice_display_name: None,
        };
        let c = charge(
            &m,
            "graduated",
            tiers("1"),
            vec![
                filter(&[("region", "eu")], "3"),
                filter(&[("region", "eu"), ("disk", "ssd")], "5"),
            ],
        );
        // When 1 GB in eu/ssd, 1 GB in eu/hdd, 1 GB in us, then 2 GB in eu/ssd arrive:
        let fees = estimate_in_turn(
            &c,
            &m,
            &[
                vec![("gb", "1"), ("region", "eu"), ("disk", "ssd")],
                vec![("gb", "1"), ("region", "eu"), ("disk", "hdd")],
                vec![("gb", "1"), ("region", "us")],
                vec![("gb", "2"), ("region", "eu"), ("disk", "ssd")],
            ],
        );
        // Then eu/ssd is the 2-key filter at 5 USD (1 GB → 500 cents), eu/hdd the `eu` filter
        // at 3 USD (300), us the default bucket at 1 USD (100), and the last 2 GB in eu/ssd see
        // only that filter's 1 GB before: units 1 → 3, priced 2 × 5 = 10 − 5 = 5 USD (500).
        assert_eq!(
            fees,
            vec![
                (dec!(1), 500, Bucket::Filter(1)),
                (dec!(1), 300, Bucket::Filter(0)),
                (dec!(1), 100, Bucket::Default),
                (dec!(2), 500, Bucket::Filter(1)),
            ]
        );
    }

    #[test]
    fn a_unique_count_value_already_counted_adds_no_unit_and_costs_nothing() {
        // Given a unique count of `gb` values at 2 USD each
        let m = metric("unique_count_agg", vec![]);
        let c = charge(
            &m,
            "standard",
            ChargePropertiesInput {
                amount: Some("2".into()),
                ..Default::default()
            },
            vec![],
        );
        // When values a, a, b arrive: 1 new unit (200), none (0), 1 new unit (200)
        let fees = estimate_in_turn(
            &c,
            &m,
            &[vec![("gb", "a")], vec![("gb", "a")], vec![("gb", "b")]],
        );
        assert_eq!(
            fees,
            vec![
                (dec!(1), 200, Bucket::Default),
                (dec!(0), 0, Bucket::Default),
                (dec!(1), 200, Bucket::Default),
            ]
        );
    }

    #[test]
    fn a_negative_sum_event_is_a_zero_fee_not_a_credit() {
        // Given 5 GB already used at 1 USD per GB, when -2 GB arrives, then the fee is zeroed
        // (SEMANTICS §4.10: negative units or amount → 0), not a 200-cent credit.
        let m = metric("sum_agg", vec![]);
        let c = charge(
            &m,
            "standard",
            ChargePropertiesInput {
                amount: Some("1".into()),
                ..Default::default()
            },
            vec![],
        );
        let fees = estimate_in_turn(&c, &m, &[vec![("gb", "5")], vec![("gb", "-2")]]);
        assert_eq!(
            fees,
            vec![
                (dec!(5), 500, Bucket::Default),
                (dec!(0), 0, Bucket::Default)
            ]
        );
    }
}
