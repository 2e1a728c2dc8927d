#![allow(clippy::type_complexity)]
//! Metering scenarios through the HTTP API: events in through `POST /events` (and `/batch`),
//! aggregated by the real aggregate worker (`POST /_local/drain`), priced by
//! `GET /customers/{id}/current_usage`, against the AWS emulator.
//!
//! Every expected figure is worked out by hand from SEMANTICS §1-§4, with the arithmetic in a
//! comment. The clock is frozen at `NOW` (20 March 2024, noon UTC) and subscriptions start on
//! 1 March, so the current period is March 2024: 31 days, from 2024-03-01T00:00:00Z to
//! 2024-03-31T23:59:59Z (Lago's inclusive end), unless a test starts its subscription later.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod metering_support;

use metering_support::{Stack, charge_usage, expect, figures, ts, uniq};
use serde_json::{Value, json};

const NOW: &str = "2024-03-20T12:00:00Z";
const MARCH_1: &str = "2024-03-01T00:00:00Z";

/// An event of `code` on `subscription` at an RFC 3339 time with `properties`.
fn event(code: &str, subscription: &str, at: &str, properties: Value) -> Value {
    json!({"transaction_id": uniq("tr"), "external_subscription_id": subscription,
           "code": code, "timestamp": ts(at), "properties": properties})
}

/// A charge of `model` on `metric` (its Lago object) with `properties` and its own `code`.
fn charge(code: &str, metric: &Value, model: &str, properties: Value) -> Value {
    json!({"code": code, "billable_metric_id": metric["lago_id"], "charge_model": model,
           "properties": properties})
}

/// One metric with one standard charge on a new plan, and a subscription from `subscription_at`:
/// `(metric code, charge code, customer, subscription)`.
async fn one_charge(
    stack: &Stack,
    aggregation_type: &str,
    metric_extra: Value,
    model: &str,
    properties: Value,
    subscription_at: &str,
) -> (String, String, String, String) {
    let code = uniq(aggregation_type);
    let metric = stack.metric(&code, aggregation_type, metric_extra).await;
    let charge_code = uniq("charge");
    let plan = uniq("plan");
    stack
        .plan(
            &plan,
            json!([charge(&charge_code, &metric, model, properties)]),
        )
        .await;
    let (customer, subscription) = stack.subscribe(&plan, subscription_at).await;
    (code, charge_code, customer, subscription)
}

#[tokio::test]
async fn count_counts_every_event_of_the_period() {
    // Given a count metric priced 0.25 USD per event
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "count_agg",
        json!({}),
        "standard",
        json!({"amount": "0.25"}),
        MARCH_1,
    )
    .await;

    // When three events arrive: two with timestamps, one stamped at reception (NOW)
    stack
        .event(event(&code, &sub, "2024-03-02T10:00:00Z", json!({})))
        .await;
    stack
        .event(event(
            &code,
            &sub,
            "2024-03-15T10:00:00Z",
            json!({"any": "thing"}),
        ))
        .await;
    stack
        .event(json!({"transaction_id": uniq("tr"), "external_subscription_id": sub, "code": code}))
        .await;

    // Then 3 units cost 3 × 0.25 = 0.75 USD = 75 cents
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(figures(charge_usage(&usage, &charge)), expect("3.0", 75, 3));
    assert_eq!(usage["amount_cents"], 75);
    assert_eq!(usage["from_datetime"], "2024-03-01T00:00:00Z");
    assert_eq!(usage["to_datetime"], "2024-03-31T23:59:59Z");
    assert_eq!(usage["currency"], "USD");
}

#[tokio::test]
async fn a_replayed_event_is_counted_once_even_after_it_was_aggregated() {
    // Given a count metric at 1 USD per event, and one event already aggregated
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "count_agg",
        json!({}),
        "standard",
        json!({"amount": "1"}),
        MARCH_1,
    )
    .await;
    let sent = event(&code, &sub, "2024-03-02T10:00:00Z", json!({"n": 1}));
    let stored = stack.event(sent.clone()).await;
    stack.drain().await;

    // When the client sends it again, twice, and again in a batch beside a new event (a replay
    // inside the resend window hands the event to the queue again: the queue's deduplication
    // may or may not drop it, the aggregation must not count it twice)
    assert_eq!(stack.event(sent.clone()).await, stored);
    stack.drain().await;
    assert_eq!(stack.event(sent.clone()).await, stored);
    let other = event(&code, &sub, "2024-03-03T10:00:00Z", json!({"n": 2}));
    let answered = stack
        .batch(vec![sent.clone(), other, sent])
        .await
        .ok("events")
        .clone();
    assert_eq!(answered[0], stored);
    assert_eq!(answered[2], stored);

    // Then two events are billed: 2 × 1 = 2.00 USD = 200 cents
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(
        figures(charge_usage(&usage, &charge)),
        expect("2.0", 200, 2)
    );
}

#[tokio::test]
async fn a_replayed_batch_is_counted_once_even_after_many_later_events() {
    // Given a count metric at 1 USD per event
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "count_agg",
        json!({}),
        "standard",
        json!({"amount": "1"}),
        MARCH_1,
    )
    .await;
    let batch = |day: u32| -> Vec<Value> {
        (0..50)
            .map(|_| {
                event(
                    &code,
                    &sub,
                    &format!("2024-03-{day:02}T10:00:00Z"),
                    json!({}),
                )
            })
            .collect()
    };

    // When a batch of 50 is aggregated, then 50 more events, and then the first batch is sent
    // again as it was (a client retrying a batch whose answer it lost): the replay resends
    // its events to the queue, long after they left it and after more events than a state
    // item remembers
    let first = batch(2);
    let stored = stack.batch(first.clone()).await.ok("events").clone();
    stack.drain().await;
    stack.batch(batch(3)).await.ok("events");
    stack.drain().await;
    let replayed = stack.batch(first).await.ok("events").clone();
    assert_eq!(replayed, stored, "a replay answers the stored events");

    // Then 100 events are billed, not 150: 100 × 1 = 100.00 USD = 10000 cents
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(
        figures(charge_usage(&usage, &charge)),
        expect("100.0", 10_000, 100)
    );
}

#[tokio::test]
async fn sum_adds_negative_values_and_ignores_events_without_the_field() {
    // Given a sum of `gb` priced 2 USD per unit
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "sum_agg",
        json!({"field_name": "gb"}),
        "standard",
        json!({"amount": "2"}),
        MARCH_1,
    )
    .await;

    // When values 10, -4 and "2.5" (a numeric string) arrive, with two events that carry no gb
    for properties in [
        json!({"gb": 10}),
        json!({"gb": -4}),
        json!({"gb": "2.5"}),
        json!({}),
        json!({"other": "x"}),
    ] {
        stack
            .event(event(&code, &sub, "2024-03-03T00:00:00Z", properties))
            .await;
    }

    // Then units = 10 - 4 + 2.5 = 8.5, over the 3 events that had a value (SEMANTICS §1.1:
    // events without the field count neither as a value nor as an event);
    // amount = 8.5 × 2 = 17.00 USD = 1700 cents
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(
        figures(charge_usage(&usage, &charge)),
        expect("8.5", 1700, 3)
    );
}

#[tokio::test]
async fn a_negative_sum_is_billed_as_zero_units_and_zero_amount() {
    // Given a sum of `gb` priced 2 USD per unit
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "sum_agg",
        json!({"field_name": "gb"}),
        "standard",
        json!({"amount": "2"}),
        MARCH_1,
    )
    .await;

    // When the period's values sum to 1 - 4 = -3
    for gb in [1, -4] {
        stack
            .event(event(
                &code,
                &sub,
                "2024-03-04T00:00:00Z",
                json!({"gb": gb}),
            ))
            .await;
    }

    // Then the fee is zeroed, not credited (SEMANTICS §4.10): units 0, amount 0, 2 events
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(figures(charge_usage(&usage, &charge)), expect("0.0", 0, 2));
    assert_eq!(usage["amount_cents"], 0);
}

#[tokio::test]
async fn max_keeps_the_largest_value_of_the_period() {
    // Given a max of `cpu` priced 1 USD per unit
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "max_agg",
        json!({"field_name": "cpu"}),
        "standard",
        json!({"amount": "1"}),
        MARCH_1,
    )
    .await;

    // When values 3, 7.5 and 5 arrive (7.5 in the middle), plus one event without cpu
    for (at, properties) in [
        ("2024-03-02T00:00:00Z", json!({"cpu": 3})),
        ("2024-03-03T00:00:00Z", json!({"cpu": "7.5"})),
        ("2024-03-04T00:00:00Z", json!({"cpu": 5})),
        ("2024-03-05T00:00:00Z", json!({})),
    ] {
        stack.event(event(&code, &sub, at, properties)).await;
    }

    // Then units = max(3, 7.5, 5) = 7.5 over 3 numeric events; 7.5 × 1 = 7.50 USD = 750 cents
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(
        figures(charge_usage(&usage, &charge)),
        expect("7.5", 750, 3)
    );
}

#[tokio::test]
async fn latest_takes_the_value_with_the_latest_timestamp_not_the_last_received() {
    // Given a latest of `seats` priced 3 USD per unit
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "latest_agg",
        json!({"field_name": "seats"}),
        "standard",
        json!({"amount": "3"}),
        MARCH_1,
    )
    .await;

    // When 5 (2 March) and 2 (10 March) are drained, and then 9 arrives dated 5 March
    stack
        .event(event(
            &code,
            &sub,
            "2024-03-02T00:00:00Z",
            json!({"seats": 5}),
        ))
        .await;
    stack
        .event(event(
            &code,
            &sub,
            "2024-03-10T00:00:00Z",
            json!({"seats": 2}),
        ))
        .await;
    stack.drain().await;
    stack
        .event(event(
            &code,
            &sub,
            "2024-03-05T00:00:00Z",
            json!({"seats": 9}),
        ))
        .await;

    // Then the latest by timestamp is 2 (10 March): 2 × 3 = 6.00 USD = 600 cents, 3 events
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(
        figures(charge_usage(&usage, &charge)),
        expect("2.0", 600, 3)
    );
}

#[tokio::test]
async fn unique_count_counts_values_whose_last_operation_in_the_period_is_add() {
    // Given a unique count of `user_id` priced 10 USD per active user
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "unique_count_agg",
        json!({"field_name": "user_id"}),
        "standard",
        json!({"amount": "10"}),
        MARCH_1,
    )
    .await;
    let op = |user: &str, operation: Option<&str>, at: &str| {
        let mut properties = json!({"user_id": user});
        if let Some(operation) = operation {
            properties["operation_type"] = json!(operation);
        }
        event(&code, &sub, at, properties)
    };

    // When, in timestamp order, the operations are:
    //   u1 add (2 Mar), u2 add (3 Mar, no operation_type: add by default), u1 remove (4 Mar),
    //   u3 add (5 Mar), u3 remove (6 Mar), u3 add (7 Mar), u4 remove (8 Mar, never added),
    //   u2 add (9 Mar, a duplicate add)
    // and they arrive out of order, in two batches drained one after the other
    let late_first = vec![
        op("u1", Some("remove"), "2024-03-04T00:00:00Z"),
        op("u3", Some("add"), "2024-03-07T00:00:00Z"),
        op("u4", Some("remove"), "2024-03-08T00:00:00Z"),
    ];
    let early_second = vec![
        op("u1", Some("add"), "2024-03-02T00:00:00Z"),
        op("u2", None, "2024-03-03T00:00:00Z"),
        op("u3", Some("add"), "2024-03-05T00:00:00Z"),
        op("u3", Some("remove"), "2024-03-06T00:00:00Z"),
        op("u2", Some("add"), "2024-03-09T00:00:00Z"),
    ];
    stack.batch(late_first).await.ok("events");
    stack.drain().await;
    stack.batch(early_second).await.ok("events");

    // Then the values active at period end are u2 and u3 (SEMANTICS §2.2: u1 was removed,
    // a remove without a prior add is ignored, a duplicate add adds nothing): 2 units,
    // 2 × 10 = 20.00 USD = 2000 cents, over all 8 events
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(
        figures(charge_usage(&usage, &charge)),
        expect("2.0", 2000, 8)
    );
}

#[tokio::test]
async fn weighted_sum_is_the_time_weighted_level_over_the_whole_month() {
    // Given a weighted sum of `gb` priced 3 USD per unit, on a subscription that starts on
    // 5 March: its charges run from 2024-03-05T00:00:00Z to the end of March, but the
    // denominator is the whole period, 31 days (SEMANTICS §2.3, §6.4)
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "weighted_sum_agg",
        json!({"field_name": "gb", "weighted_interval": "seconds"}),
        "standard",
        json!({"amount": "3"}),
        "2024-03-05T00:00:00Z",
    )
    .await;

    // When the level rises by 10 on 11 March and falls by 4 on 21 March (12 h after NOW)
    stack
        .event(event(
            &code,
            &sub,
            "2024-03-11T00:00:00Z",
            json!({"gb": 10}),
        ))
        .await;
    stack
        .event(event(
            &code,
            &sub,
            "2024-03-21T00:00:00Z",
            json!({"gb": -4}),
        ))
        .await;

    // Then the level is 0 from 5 to 11 March, 10 for the 10 days to 21 March, and 6 for the
    // 11 days to the period end (1 April 00:00, the second after 31 March 23:59:59.999):
    //   area = 10 × 10 d + 6 × 11 d = 166 unit·days
    //   units = 166 / 31 = 5.354838709677419354838709677… → ceil at 20 decimals
    //         = 5.35483870967741935484
    //   amount = 5.35483870967741935484 × 3 = 16.06451612903225806452 USD → 1606 cents
    // and the level at period end (total_aggregated_units) is 10 - 4 = 6
    let usage = stack.usage(&customer, &sub).await;
    let fee = charge_usage(&usage, &charge);
    assert_eq!(figures(fee), expect("5.35483870967741935484", 1606, 2));
    assert_eq!(fee["total_aggregated_units"], "6.0");
    assert_eq!(usage["from_datetime"], "2024-03-05T00:00:00Z");
}

#[tokio::test]
async fn every_charge_model_prices_its_units_as_lago_does() {
    // Given one plan with a charge of each model, each on its own sum metric (field `v`), so
    // each model sees its own units
    let stack = Stack::start_at(NOW).await;
    let graduated_ranges = json!({"graduated_ranges": [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "2"},
        {"from_value": 11, "to_value": 20, "per_unit_amount": "0.5", "flat_amount": "3"},
        {"from_value": 21, "to_value": null, "per_unit_amount": "0.1", "flat_amount": "0"}]});
    // (model, properties, values sent, expected (units, cents, events), the arithmetic)
    let cases: Vec<(&str, Value, Vec<Value>, (&str, i64, u64), &str)> = vec![
        (
            "standard",
            json!({"amount": "0.35"}),
            vec![json!(4), json!(6)],
            ("10.0", 350, 2),
            "10 × 0.35 = 3.50",
        ),
        (
            "graduated",
            graduated_ranges.clone(),
            vec![json!(20), json!(5)],
            ("25.0", 2050, 2),
            "tier 0-10: 10 × 1 + 2 = 12; tier 11-20: (20 - 11 + 1) × 0.5 + 3 = 8; \
             tier 21+: (25 - 21 + 1) × 0.1 = 0.5; 12 + 8 + 0.5 = 20.50",
        ),
        (
            "graduated",
            graduated_ranges,
            vec![],
            ("0.0", 200, 0),
            "no usage still pays the first tier's flat amount (EDGE_CASES 1): 2.00",
        ),
        (
            "graduated_percentage",
            json!({"graduated_percentage_ranges": [
                {"from_value": 0, "to_value": 100, "rate": "1", "flat_amount": "1"},
                {"from_value": 101, "to_value": null, "rate": "2", "flat_amount": "0.5"}]}),
            vec![json!(120), json!(30)],
            ("150.0", 350, 2),
            "tier 0-100: (100 - 1 + 1) × 1 % + 1 = 2; tier 101+: (150 - 101 + 1) × 2 % + 0.5 \
             = 1.5; 2 + 1.5 = 3.50",
        ),
        (
            "package",
            json!({"amount": "5", "package_size": 10, "free_units": 3}),
            vec![json!(20), json!(4)],
            ("24.0", 1500, 2),
            "paid units 24 - 3 = 21; ceil(21 / 10) = 3 packages × 5 = 15.00",
        ),
        (
            "percentage",
            json!({"rate": "2", "fixed_amount": "0.5"}),
            vec![json!(100), json!(250), json!(50)],
            ("400.0", 950, 3),
            "400 × 2 % = 8 plus 3 paid events × 0.5 = 1.5: 9.50",
        ),
        (
            "volume",
            json!({"volume_ranges": [
                {"from_value": 0, "to_value": 100, "per_unit_amount": "1", "flat_amount": "0"},
                {"from_value": 101, "to_value": 200, "per_unit_amount": "0.5", "flat_amount": "10"},
                {"from_value": 201, "to_value": null, "per_unit_amount": "0.2", "flat_amount": "20"}]}),
            vec![json!(100), json!(50)],
            ("150.0", 8500, 2),
            "150 falls in 101-200: every unit at 0.5, 150 × 0.5 + 10 = 85.00",
        ),
    ];
    let mut charges = Vec::new();
    let mut metrics = Vec::new();
    for (i, (model, properties, ..)) in cases.iter().enumerate() {
        let code = uniq(&format!("v{i}"));
        let metric = stack
            .metric(&code, "sum_agg", json!({"field_name": "v"}))
            .await;
        let charge_code = format!("{model}_{i}");
        charges.push(charge(&charge_code, &metric, model, properties.clone()));
        metrics.push((code, charge_code));
    }
    let plan = uniq("plan");
    stack.plan(&plan, json!(charges)).await;
    let (customer, sub) = stack.subscribe(&plan, MARCH_1).await;

    // When each metric receives its values, all in one batch
    let mut events = Vec::new();
    for ((_, _, values, ..), (code, _)) in cases.iter().zip(&metrics) {
        for v in values {
            events.push(event(code, &sub, "2024-03-10T00:00:00Z", json!({"v": v})));
        }
    }
    stack.batch(events).await.ok("events");

    // Then each charge is priced as its model says
    let usage = stack.usage(&customer, &sub).await;
    let mut total = 0;
    let mut wrong = Vec::new();
    for ((model, _, _, (units, cents, count), arithmetic), (_, charge_code)) in
        cases.iter().zip(&metrics)
    {
        let got = figures(charge_usage(&usage, charge_code));
        if got != expect(units, *cents, *count) {
            wrong.push(format!(
                "{model} ({arithmetic}): expected {:?}, got {got:?}",
                (units, cents, count)
            ));
        }
        total += cents;
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // And the usage total is their sum: 350 + 2050 + 200 + 350 + 1500 + 950 + 8500 = 13900
    assert_eq!(total, 13900);
    assert_eq!(usage["amount_cents"], 13900);
}

#[tokio::test]
async fn percentage_free_units_of_a_count_come_from_its_running_totals() {
    // Given counts priced by percentage: 10 % of the units plus 1 USD per paid event, the
    // first 2 events free on one charge, the first 2.5 units free on the other
    let stack = Stack::start_at(NOW).await;
    let code = uniq("calls");
    let metric = stack.metric(&code, "count_agg", json!({})).await;
    let plan = uniq("plan");
    stack
        .plan(
            &plan,
            json!([
                charge(
                    "free_events",
                    &metric,
                    "percentage",
                    json!({"rate": "10", "fixed_amount": "1", "free_units_per_events": 2})
                ),
                charge(
                    "free_units",
                    &metric,
                    "percentage",
                    json!({"rate": "10", "fixed_amount": "1",
                              "free_units_per_total_aggregation": "2.5"})
                ),
            ]),
        )
        .await;
    let (customer, sub) = stack.subscribe(&plan, MARCH_1).await;

    // When 5 events arrive
    let events = (0..5)
        .map(|_| event(&code, &sub, "2024-03-07T00:00:00Z", json!({})))
        .collect();
    stack.batch(events).await.ok("events");

    // Then (SEMANTICS §2.8, §4.6) the running totals are [1, 2, 3, 4, 5]:
    //   free_units_per_events 2: free units = rt[1] = 2, free events = 2:
    //     (5 - 2) × 10 % = 0.3, plus (5 - 2) × 1 = 3: 3.30 USD = 330 cents
    //   free_units_per_total_aggregation 2.5: 5 > 2.5, so free units = 2.5, and the totals
    //     below 2.5 are 1 and 2, so 2 free events: (5 - 2.5) × 10 % = 0.25, plus 3 × 1 = 3:
    //     3.25 USD = 325 cents
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(
        figures(charge_usage(&usage, "free_events")),
        expect("5.0", 330, 5)
    );
    assert_eq!(
        figures(charge_usage(&usage, "free_units")),
        expect("5.0", 325, 5)
    );
}

#[tokio::test]
async fn dynamic_bills_the_sum_of_the_events_precise_amounts() {
    // Given a dynamic charge on a sum of `gb`
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "sum_agg",
        json!({"field_name": "gb"}),
        "dynamic",
        json!({}),
        MARCH_1,
    )
    .await;

    // When two events carry their own price in precise_total_amount_cents
    for (gb, cents) in [(1, "1234.5"), (2, "100.25")] {
        let mut e = event(&code, &sub, "2024-03-06T00:00:00Z", json!({"gb": gb}));
        e["precise_total_amount_cents"] = json!(cents);
        stack.event(e).await;
    }

    // Then units = 1 + 2 = 3 and the amount is the sum of their prices (SEMANTICS §4.7):
    // 1234.5 + 100.25 = 1334.75 cents = 13.3475 USD, rounded half up to 13.35 = 1335 cents
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(
        figures(charge_usage(&usage, &charge)),
        expect("3.0", 1335, 2)
    );
}

#[tokio::test]
async fn filters_bill_each_event_in_the_most_specific_filter_and_the_rest_in_the_default() {
    // Given SEMANTICS §1.3's worked example: a sum of `foo_bar` filtered by region and country,
    // a default price of 10 and three filters
    let stack = Stack::start_at(NOW).await;
    let code = uniq("foo_bar");
    let metric = stack
        .metric(
            &code,
            "sum_agg",
            json!({"field_name": "foo_bar", "filters": [
                {"key": "region", "values": ["europe", "usa"]},
                {"key": "country", "values": ["france", "germany", "uk"]}]}),
        )
        .await;
    let mut charged = charge("filtered", &metric, "standard", json!({"amount": "10"}));
    charged["filters"] = json!([
        {"invoice_display_name": "Europe", "values": {"region": ["europe"]},
         "properties": {"amount": "20"}},
        {"invoice_display_name": "France", "values": {"region": ["europe"], "country": ["france"]},
         "properties": {"amount": "40.12345"}},
        {"invoice_display_name": "All", "values": {"region": ["europe", "usa"],
                                                   "country": ["france", "germany", "uk"]},
         "properties": {"amount": "50"}},
    ]);
    let plan = uniq("plan");
    stack.plan(&plan, json!([charged])).await;
    let (customer, sub) = stack.subscribe(&plan, MARCH_1).await;

    // When the example's events arrive
    let events = [
        (json!({"region": "europe"}), 10),
        (json!({"region": "europe"}), 2),
        (json!({"region": "europe", "country": "italy"}), 3),
        (json!({"region": "europe", "country": "france"}), 5),
        (json!({"region": "europe", "country": "uk"}), 5),
        (json!({"region": "europe", "country": "germany"}), 5),
        (json!({"region": "asia", "country": "japan"}), 3),
        (json!({}), 2),
    ]
    .into_iter()
    .map(|(mut properties, v)| {
        properties["foo_bar"] = json!(v);
        event(&code, &sub, "2024-03-12T00:00:00Z", properties)
    })
    .collect();
    stack.batch(events).await.ok("events");

    // Then each event is billed once, by the most specific filter that matches it:
    //   Europe  (region europe, no other filter's country): 10 + 2 + 3 = 15 × 20 = 300.00
    //   France  (europe + france beats Europe and All):     5 × 40.12345 = 200.61725 → 200.62
    //   All     (europe + uk, europe + germany):             5 + 5 = 10 × 50 = 500.00
    //   default (asia/japan, no properties):                 3 + 2 = 5 × 10 = 50.00
    // total 300 + 200.62 + 500 + 50 = 1050.62 USD over 35 units and 8 events
    let usage = stack.usage(&customer, &sub).await;
    let fee = charge_usage(&usage, "filtered");
    assert_eq!(figures(fee), expect("35.0", 105_062, 8));
    let filters = fee["filters"].as_array().expect("filters");
    let by_values = |values: Value| {
        filters
            .iter()
            .find(|f| f["values"] == values)
            .unwrap_or_else(|| panic!("no filter usage with values {values} in {filters:#?}"))
    };
    let europe = by_values(json!({"region": ["europe"]}));
    assert_eq!(figures(europe), expect("15.0", 30_000, 3));
    assert_eq!(europe["invoice_display_name"], "Europe");
    let france = by_values(json!({"region": ["europe"], "country": ["france"]}));
    assert_eq!(figures(france), expect("5.0", 20_062, 1));
    let all =
        by_values(json!({"region": ["europe", "usa"], "country": ["france", "germany", "uk"]}));
    assert_eq!(figures(all), expect("10.0", 50_000, 2));
    let default = by_values(Value::Null);
    assert_eq!(figures(default), expect("5.0", 5_000, 2));
    assert_eq!(filters.len(), 4, "three filters and the default bucket");
}

#[tokio::test]
async fn pricing_groups_restart_the_charge_model_in_every_group() {
    // Given a count metric with a graduated charge (first 2 units free, then 1 USD each),
    // grouped by `team`
    let stack = Stack::start_at(NOW).await;
    let code = uniq("calls");
    let metric = stack.metric(&code, "count_agg", json!({})).await;
    let plan = uniq("plan");
    stack
        .plan(
            &plan,
            json!([charge("grouped", &metric, "graduated", json!({
                "pricing_group_keys": ["team"],
                "graduated_ranges": [
                    {"from_value": 0, "to_value": 2, "per_unit_amount": "0", "flat_amount": "0"},
                    {"from_value": 3, "to_value": null, "per_unit_amount": "1", "flat_amount": "0"}]}))]),
        )
        .await;
    let (customer, sub) = stack.subscribe(&plan, MARCH_1).await;

    // When team a sends 3 events, team b 2, and one event has no team
    let mut events = Vec::new();
    for properties in [
        json!({"team": "a"}),
        json!({"team": "a"}),
        json!({"team": "a"}),
        json!({"team": "b"}),
        json!({"team": "b"}),
        json!({}),
    ] {
        events.push(event(&code, &sub, "2024-03-08T00:00:00Z", properties));
    }
    stack.batch(events).await.ok("events");

    // Then the tiers restart per group (SEMANTICS §1.4):
    //   a: 3 units → tier 0-2 free, tier 3+: (3 - 3 + 1) × 1 = 1.00 USD = 100 cents
    //   b: 2 units → all in the free tier: 0
    //   no team (Lago's nil group): 1 unit → 0
    // so the charge is 100 cents over 6 units, where ungrouped it would be (6 - 2) × 1 = 4.00
    let usage = stack.usage(&customer, &sub).await;
    let fee = charge_usage(&usage, "grouped");
    assert_eq!(figures(fee), expect("6.0", 100, 6));
    let groups = fee["grouped_usage"].as_array().expect("grouped_usage");
    let group = |team: Value| {
        groups
            .iter()
            .find(|g| g["grouped_by"] == json!({"team": team}))
            .unwrap_or_else(|| panic!("no group {team} in {groups:#?}"))
    };
    assert_eq!(figures(group(json!("a"))), expect("3.0", 100, 3));
    assert_eq!(figures(group(json!("b"))), expect("2.0", 0, 2));
    assert_eq!(figures(group(Value::Null)), expect("1.0", 0, 1));
    assert_eq!(groups.len(), 3);
}
