//! Property tests of the pricing core's invariants: splits conserve value, tiered amounts are
//! monotonic in units, aggregation states fold in any order and merge, rounding happens once.

use billing::{
    aggregation::{
        AggregationResult, Aggregator, EventKey, ProrationWindow, UsageEvent,
        charge_usage::ChargeUsage,
        filters::{FilterSet, FilterValues},
    },
    catalog::metric::AggregationType,
    charge_model::{
        ChargeModel, GraduatedRange, PricingInput, fee::ChargeFee, graduated, price, volume,
    },
    invoice_totals::{TaxRate, TaxedFee, invoice_taxes},
    money::{Currency, Money, PreciseAmount, RoundingRule, allocate_cents},
};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;

fn period_start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_690_848_000, 0).unwrap_or_default() // 2023-08-01T00:00:00Z
}

fn period_end() -> DateTime<Utc> {
    period_start() + Duration::days(31) - Duration::microseconds(1)
}

/// A decimal with up to 4 decimals in [-max, max] (or [0, max] when `non_negative`).
fn decimal(max: i64, non_negative: bool) -> impl Strategy<Value = Decimal> {
    let lo = if non_negative { 0 } else { -max * 10_000 };
    (lo..=max * 10_000).prop_map(|m| Decimal::new(m, 4))
}

// ---------------------------------------------------------------------------------------------
// Splits conserve value (STYLE R9)

proptest! {
    #[test]
    fn allocation_conserves_every_minor_unit(
        total in -1_000_000_000_000_i64..1_000_000_000_000,
        shares in proptest::collection::vec(0_i64..1_000_000, 1..12),
    ) {
        prop_assume!(shares.iter().any(|s| *s > 0));
        let shares: Vec<Decimal> = shares.into_iter().map(Decimal::from).collect();
        let parts = allocate_cents(total, &shares);
        prop_assert!(parts.is_ok());
        let parts = parts.unwrap_or_default();
        prop_assert_eq!(parts.iter().sum::<i64>(), total);
        // Each part is within one minor unit of its exact share.
        let sum: Decimal = shares.iter().sum();
        for (part, share) in parts.iter().zip(&shares) {
            let exact = Decimal::from(total) * share / sum;
            prop_assert!((Decimal::from(*part) - exact).abs() < Decimal::ONE);
        }
    }

    #[test]
    fn money_allocation_keeps_the_currency_and_the_total(
        cents in 0_i64..10_000_000,
        shares in proptest::collection::vec(1_i64..100, 1..6),
    ) {
        let m = Money::new(cents, Currency::JPY);
        let shares: Vec<Decimal> = shares.into_iter().map(Decimal::from).collect();
        let parts = m.allocate(&shares).unwrap_or_default();
        let total = Money::sum_in(Currency::JPY, &parts);
        prop_assert_eq!(total, Ok(m));
    }
}

// ---------------------------------------------------------------------------------------------
// Tiered amounts are monotonic in units

/// Classic integer tiers 0–t1, t1+1–t2, ..., last open; non-negative prices.
fn tiers() -> impl Strategy<Value = Vec<GraduatedRange>> {
    proptest::collection::vec((1_i64..50, decimal(20, true), decimal(50, true)), 1..5).prop_map(
        |spec| {
            let mut ranges = Vec::new();
            let mut from = Decimal::ZERO;
            let n = spec.len();
            for (i, (width, per_unit, flat)) in spec.into_iter().enumerate() {
                let to = (i + 1 < n).then(|| from + Decimal::from(width));
                ranges.push(GraduatedRange::new(from, to, per_unit, flat));
                if let Some(to) = to {
                    from = to + Decimal::ONE;
                }
            }
            ranges
        },
    )
}

proptest! {
    #[test]
    fn graduated_amounts_never_decrease_with_units(
        ranges in tiers(),
        a in decimal(300, true),
        b in decimal(300, true),
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let p_lo = graduated::price(&ranges, &PricingInput::new(lo)).map(|x| x.amount());
        let p_hi = graduated::price(&ranges, &PricingInput::new(hi)).map(|x| x.amount());
        prop_assert!(p_lo.is_ok() && p_hi.is_ok());
        prop_assert!(p_lo.clone().unwrap_or_default() <= p_hi.clone().unwrap_or_default(), "{lo} → {p_lo:?}, {hi} → {p_hi:?}");
    }

    /// Volume pricing is not monotonic across tiers in general (Lago's own vectors: 100 units
    /// cost 210, 101 units cost 101); it is monotonic within a tier, and across tiers when no
    /// tier is cheaper than the one below it.
    #[test]
    fn volume_amounts_never_decrease_within_a_tier_or_with_non_decreasing_tiers(
        ranges in tiers(),
        a in decimal(300, true),
        b in decimal(300, true),
    ) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let amount = |u: Decimal, r: &[GraduatedRange]| {
            volume::price(r, &PricingInput::new(u)).map(|x| x.amount()).unwrap_or(Decimal::MIN)
        };
        let tier = |u: Decimal| ranges.iter().position(|r| {
            r.from_value() <= u.ceil() && r.to_value().is_none_or(|t| u <= t)
        });
        if tier(lo).is_some() && tier(lo) == tier(hi) {
            prop_assert!(amount(lo, &ranges) <= amount(hi, &ranges));
        }
        // Make prices and flats non-decreasing by tier: then the whole curve is monotonic.
        let mut per_unit = Decimal::ZERO;
        let mut flat = Decimal::ZERO;
        let sorted: Vec<GraduatedRange> = ranges.iter().map(|r| {
            per_unit = per_unit.max(r.per_unit_amount());
            flat = flat.max(r.flat_amount());
            GraduatedRange::new(r.from_value(), r.to_value(), per_unit, flat)
        }).collect();
        prop_assert!(amount(lo.ceil(), &sorted) <= amount(hi.ceil(), &sorted));
    }
}

// ---------------------------------------------------------------------------------------------
// Aggregations: any order, any partition, same result

#[derive(Debug, Clone)]
struct Ev {
    offset_s: i64,
    value: String,
    id: String,
    remove: bool,
    region: Option<&'static str>,
}

fn events() -> impl Strategy<Value = Vec<Ev>> {
    let ev = (
        -86_400_i64 * 40..86_400 * 32,
        prop_oneof![
            decimal(1000, false).prop_map(|d| d.to_string()),
            Just("not-a-number".to_owned()),
            Just("1e3".to_owned()),
        ],
        0_u8..6,
        any::<bool>(),
        prop_oneof![
            Just(None),
            Just(Some("eu")),
            Just(Some("us")),
            Just(Some("asia"))
        ],
    )
        .prop_map(|(offset_s, value, id, remove, region)| Ev {
            offset_s,
            value,
            id: format!("v{id}"),
            remove,
            region,
        });
    proptest::collection::vec(ev, 0..40)
}

fn props(e: &Ev, agg: AggregationType) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let value = if agg == AggregationType::UniqueCount {
        e.id.clone()
    } else {
        e.value.clone()
    };
    p.insert("value".to_owned(), value);
    if e.remove {
        p.insert("operation_type".to_owned(), "remove".to_owned());
    }
    if let Some(r) = e.region {
        p.insert("region".to_owned(), r.to_owned());
    }
    p
}

fn aggregator(agg: AggregationType, recurring: bool, prorated: bool) -> Option<Aggregator> {
    let mut a = Aggregator::new(agg, Some("value"), recurring, period_start(), period_end())
        .ok()?
        .recording_values();
    if prorated {
        a = a.prorated(ProrationWindow::new(period_start(), period_end(), Tz::UTC, 31, 31).ok()?);
    }
    Some(a)
}

fn fold_all(
    a: &Aggregator,
    evs: &[(usize, Ev)],
    agg: AggregationType,
) -> Option<AggregationResult> {
    let mut state = a.empty_state();
    for (seq, e) in evs {
        let p = props(e, agg);
        let key = EventKey::new(period_start() + Duration::seconds(e.offset_s), *seq as u64);
        a.fold(&mut state, &UsageEvent::new(key, &p)).ok()?;
    }
    a.result(&state, Decimal::from(7), 31).ok()
}

fn fold_split(
    a: &Aggregator,
    evs: &[(usize, Ev)],
    agg: AggregationType,
    cut: usize,
) -> Option<AggregationResult> {
    let cut = cut.min(evs.len());
    let mut left = a.empty_state();
    let mut right = a.empty_state();
    for (i, (seq, e)) in evs.iter().enumerate() {
        let p = props(e, agg);
        let key = EventKey::new(period_start() + Duration::seconds(e.offset_s), *seq as u64);
        let target = if i < cut { &mut left } else { &mut right };
        a.fold(target, &UsageEvent::new(key, &p)).ok()?;
    }
    right.merge(&left).ok()?;
    a.result(&right, Decimal::from(7), 31).ok()
}

proptest! {
    #[test]
    fn folding_in_any_order_and_merging_partitions_equals_one_fold(
        evs in events(),
        seed in any::<u64>(),
        cut in 0_usize..40,
        which in 0_usize..9,
    ) {
        let (agg, recurring, prorated) = [
            (AggregationType::Count, false, false),
            (AggregationType::Sum, false, false),
            (AggregationType::Sum, true, false),
            (AggregationType::Max, false, false),
            (AggregationType::Latest, false, false),
            (AggregationType::UniqueCount, true, false),
            (AggregationType::WeightedSum, false, false),
            (AggregationType::Sum, true, true),
            (AggregationType::UniqueCount, true, true),
        ][which];
        let a = aggregator(agg, recurring, prorated);
        prop_assert!(a.is_some());
        let Some(a) = a else { return Ok(()) };
        let indexed: Vec<(usize, Ev)> = evs.into_iter().enumerate().collect();
        // A deterministic shuffle from the seed.
        let mut shuffled = indexed.clone();
        let mut s = seed | 1;
        for i in (1..shuffled.len()).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            shuffled.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let one = fold_all(&a, &indexed, agg);
        let split = fold_split(&a, &shuffled, agg, cut);
        prop_assert!(one.is_some());
        prop_assert_eq!(one, split);
    }

    #[test]
    fn charge_usage_with_filters_merges_like_one_fold(evs in events(), cut in 0_usize..40) {
        let metric = vec![("region".to_owned(), vec!["eu".to_owned(), "us".to_owned(), "asia".to_owned()])];
        let filters = vec![
            BTreeMap::from([("region".to_owned(), FilterValues::Values(vec!["eu".to_owned()]))]),
            BTreeMap::from([("region".to_owned(), FilterValues::All)]),
        ];
        let set = FilterSet::new(&metric, &filters);
        prop_assert!(set.is_ok());
        let Ok(set) = set else { return Ok(()) };
        let a = aggregator(AggregationType::Sum, false, false);
        let Some(a) = a else { return Err(TestCaseError::fail("aggregator")) };
        let new = || ChargeUsage::new(a.clone(), set.clone(), vec!["region".to_owned()], vec![None, None]);
        let (mut whole, mut left, mut right) = (new(), new(), new());
        for (i, e) in evs.iter().enumerate() {
            let p = props(e, AggregationType::Sum);
            let key = EventKey::new(period_start() + Duration::seconds(e.offset_s), i as u64);
            let ev = UsageEvent::new(key, &p);
            prop_assert!(whole.fold(&ev).is_ok());
            let part = if i < cut { &mut left } else { &mut right };
            prop_assert!(part.fold(&ev).is_ok());
        }
        prop_assert!(left.merge(&right).is_ok());
        prop_assert_eq!(whole.results(Decimal::ZERO, 31), left.results(Decimal::ZERO, 31));
    }
}

// ---------------------------------------------------------------------------------------------
// Rounding happens once

proptest! {
    #[test]
    fn a_fee_rounds_its_exact_amount_once(
        units in decimal(100_000, true),
        unit_price in (0_i64..10_000_000).prop_map(|m| Decimal::new(m, 6)),
    ) {
        // The precise amount is the exact product (no intermediate rounding), and the invoiced
        // cents are that value rounded half away from zero, a single time.
        let model = ChargeModel::Standard { amount: unit_price };
        let amount = price(&model, &PricingInput::new(units), Currency::EUR);
        prop_assert!(amount.is_ok());
        let Ok(amount) = amount else { return Ok(()) };
        let fee = ChargeFee::new(units, 1, &amount, Currency::EUR);
        prop_assert!(fee.is_ok());
        let Ok(fee) = fee else { return Ok(()) };
        let exact_cents = units * unit_price * Decimal::ONE_HUNDRED;
        prop_assert_eq!(fee.precise_amount_cents(), exact_cents);
        let diff = Decimal::from(fee.amount().cents()) - exact_cents;
        prop_assert!(diff.abs() <= Decimal::new(5, 1));
        // A tie goes away from zero.
        if diff.abs() == Decimal::new(5, 1) {
            prop_assert!(diff.is_sign_positive());
        }
        // Rounding an already rounded amount changes nothing.
        let again = PreciseAmount::new(Decimal::from(fee.amount().cents()) / Decimal::ONE_HUNDRED, Currency::EUR)
            .round(RoundingRule::HalfAwayFromZero);
        prop_assert_eq!(again, Ok(fee.amount()));
    }

    #[test]
    fn invoice_tax_is_the_rounded_sum_not_the_sum_of_rounded_lines(
        fees in proptest::collection::vec((0_i64..100_000, 0_i64..1000), 1..6),
        rates in proptest::collection::vec(0_i64..3000, 1..4),
    ) {
        let taxes: Vec<TaxRate> = rates
            .iter()
            .enumerate()
            .map(|(i, r)| TaxRate::new(format!("t{i}"), Decimal::new(*r, 2)))
            .collect();
        let taxed: Vec<TaxedFee<'_>> = fees
            .iter()
            .map(|(a, c)| TaxedFee::new(*a, Decimal::new(*c.min(a), 0), &taxes))
            .collect();
        let sub_total: i64 = fees.iter().map(|(a, c)| a - c.min(a)).sum();
        let t = invoice_taxes(&taxed, sub_total);
        prop_assert!(t.is_ok());
        let Ok(t) = t else { return Ok(()) };
        let exact: Decimal = fees
            .iter()
            .map(|(a, c)| Decimal::from(a - c.min(a)))
            .map(|base| taxes.iter().map(|r| base * r.rate() / Decimal::ONE_HUNDRED).sum::<Decimal>())
            .sum();
        prop_assert!((Decimal::from(t.taxes_amount_cents) - exact).abs() <= Decimal::new(5, 1));
    }
}
