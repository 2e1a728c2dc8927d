//! Throughput of the pricing core on one core: events folded per second for each aggregation
//! (the typed states the pipeline pre-aggregates with, and the configured `Aggregator` path that
//! reads and validates raw event properties), and charge pricings per second per model.
//! Budget (DESIGN §3): ≥ 5 M events/s for count/sum/max folds, ≥ 1 M pricings/s.
//! Criterion prints the rates as `thrpt: … elem/s`.

use std::hint::black_box;

use billing::{
    aggregation::{
        Aggregator, CountState, EventKey, LatestState, MaxState, Operation, SumState,
        UniqueCountState, UsageEvent, WeightedSumState,
    },
    catalog::metric::AggregationType,
    charge_model::{
        ChargeModel, ChargeProperties, ChargePropertiesInput, PricingInput, RangeInput, price,
    },
    money::Currency,
};
use chrono::{DateTime, Duration, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rust_decimal::Decimal;

const EVENTS: usize = 100_000;

fn start() -> DateTime<Utc> {
    DateTime::from_timestamp(1_690_848_000, 0).unwrap_or_default()
}

fn values() -> Vec<Decimal> {
    (0..EVENTS)
        .map(|i| Decimal::new((i as i64 * 7919) % 100_000, 2))
        .collect()
}

fn keys() -> Vec<EventKey> {
    (0..EVENTS)
        .map(|i| {
            EventKey::new(
                start() + Duration::seconds((i as i64 * 13) % 2_678_000),
                i as u64,
            )
        })
        .collect()
}

fn typed_folds(c: &mut Criterion) {
    let values = values();
    let keys = keys();
    let ids: Vec<String> = (0..EVENTS).map(|i| format!("user-{}", i % 5_000)).collect();
    let mut g = c.benchmark_group("fold_typed_state");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.bench_function("count", |b| {
        b.iter(|| {
            let mut s = CountState::default();
            for _ in 0..EVENTS {
                black_box(&mut s).fold();
            }
            black_box(s.units())
        })
    });
    g.bench_function("sum", |b| {
        b.iter(|| {
            let mut s = SumState::default();
            for v in &values {
                let _ = s.fold(black_box(*v));
            }
            black_box(s.units())
        })
    });
    g.bench_function("max", |b| {
        b.iter(|| {
            let mut s = MaxState::default();
            for v in &values {
                s.fold(black_box(*v));
            }
            black_box(s.units())
        })
    });
    g.bench_function("latest", |b| {
        b.iter(|| {
            let mut s = LatestState::default();
            for (k, v) in keys.iter().zip(&values) {
                s.fold(*k, black_box(*v));
            }
            black_box(s.units())
        })
    });
    g.bench_function("unique_count", |b| {
        b.iter(|| {
            let mut s = UniqueCountState::default();
            for (k, id) in keys.iter().zip(&ids) {
                s.fold(*k, id, Operation::Add);
            }
            black_box(s.units())
        })
    });
    g.bench_function("weighted_sum", |b| {
        let end = start() + Duration::days(31);
        b.iter(|| {
            let mut s = WeightedSumState::new(end);
            for (k, v) in keys.iter().zip(&values) {
                let _ = s.fold(k.timestamp(), black_box(*v));
            }
            black_box(s.variation())
        })
    });
    g.finish();
}

fn raw_event_folds(c: &mut Criterion) {
    // Raw events as the pipeline receives them: string properties, parsed and window-checked.
    let raw: Vec<String> = values().iter().map(Decimal::to_string).collect();
    let keys = keys();
    let props: Vec<[(&str, &str); 1]> = raw.iter().map(|v| [("value", v.as_str())]).collect();
    let end = start() + Duration::days(31);
    let mut g = c.benchmark_group("fold_raw_events");
    g.throughput(Throughput::Elements(EVENTS as u64));
    for agg_type in [
        AggregationType::Count,
        AggregationType::Sum,
        AggregationType::Max,
        AggregationType::Latest,
        AggregationType::UniqueCount,
        AggregationType::WeightedSum,
    ] {
        let Ok(agg) = Aggregator::new(agg_type, Some("value"), false, start(), end) else {
            continue;
        };
        g.bench_function(agg_type.as_str(), |b| {
            b.iter(|| {
                let mut state = agg.empty_state();
                for (k, p) in keys.iter().zip(&props) {
                    let _ = agg.fold(&mut state, &UsageEvent::new(*k, p));
                }
                black_box(state)
            })
        });
    }
    g.finish();
}

fn range(from: &str, to: Option<&str>, price: &str, flat: &str) -> RangeInput {
    RangeInput {
        from_value: Some(from.into()),
        to_value: to.map(String::from),
        per_unit_amount: Some(price.into()),
        rate: Some(price.into()),
        flat_amount: Some(flat.into()),
    }
}

fn models() -> Vec<(&'static str, Option<ChargeModel>)> {
    let tiers = vec![
        range("0", Some("100"), "2", "10"),
        range("101", Some("1000"), "1", "0"),
        range("1001", None, "0.5", "50"),
    ];
    let parse = |name: &str, input: ChargePropertiesInput| {
        ChargeProperties::parse(name, &input)
            .ok()
            .map(|p| p.model().clone())
    };
    vec![
        (
            "standard",
            parse(
                "standard",
                ChargePropertiesInput {
                    amount: Some("0.0002".into()),
                    ..Default::default()
                },
            ),
        ),
        (
            "graduated",
            parse(
                "graduated",
                ChargePropertiesInput {
                    graduated_ranges: Some(tiers.clone()),
                    ..Default::default()
                },
            ),
        ),
        (
            "volume",
            parse(
                "volume",
                ChargePropertiesInput {
                    volume_ranges: Some(tiers.clone()),
                    ..Default::default()
                },
            ),
        ),
        (
            "graduated_percentage",
            parse(
                "graduated_percentage",
                ChargePropertiesInput {
                    graduated_percentage_ranges: Some(tiers),
                    ..Default::default()
                },
            ),
        ),
        (
            "package",
            parse(
                "package",
                ChargePropertiesInput {
                    amount: Some("30".into()),
                    package_size: Some(1000),
                    free_units: Some(100),
                    ..Default::default()
                },
            ),
        ),
        (
            "percentage",
            parse(
                "percentage",
                ChargePropertiesInput {
                    rate: Some("1.5".into()),
                    fixed_amount: Some("0.1".into()),
                    ..Default::default()
                },
            ),
        ),
        (
            "dynamic",
            parse("dynamic", ChargePropertiesInput::default()),
        ),
    ]
}

fn pricings(c: &mut Criterion) {
    let mut g = c.benchmark_group("charge_pricing");
    const BATCH: usize = 1_000;
    g.throughput(Throughput::Elements(BATCH as u64));
    let inputs: Vec<PricingInput> = (0..BATCH)
        .map(|i| {
            PricingInput::new(Decimal::new((i as i64 * 7919) % 500_000, 2))
                .with_events_count(i as u64 + 1)
                .with_precise_total_amount_cents(Decimal::new(i as i64 * 37, 1))
        })
        .collect();
    for (name, model) in models() {
        let Some(model) = model else { continue };
        g.bench_function(name, |b| {
            b.iter(|| {
                for input in &inputs {
                    let _ = black_box(price(&model, black_box(input), Currency::EUR));
                }
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = typed_folds, raw_event_folds, pricings
}
criterion_main!(benches);
