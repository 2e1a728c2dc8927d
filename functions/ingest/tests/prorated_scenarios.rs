#![allow(clippy::type_complexity)]
//! Prorated charges and event-by-event pricing through the HTTP API: events in through
//! `POST /events`, aggregated by the real aggregate worker into stored states, priced by
//! `GET /customers/{id}/current_usage`, against the AWS emulator.
//!
//! Every expected figure is worked out by hand from SEMANTICS §2.6, §2.8 and §4.2-§4.6. The clock
//! is frozen at `NOW` (20 March 2024, noon UTC), so the current period is March 2024: D = 31
//! days, 2024-03-01T00:00:00Z to 2024-03-31T23:59:59Z; an event on March `d` is held
//! `31 − d + 1` days. Subscriptions start on 1 February so that February's usage is carried.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod metering_support;

use std::collections::BTreeMap;

use billing_aws::messages::{EVENTS_MESSAGE_VERSION, EventsMessage, QueuedEvent};
use metering_support::{Stack, charge_usage, expect, figures, ts, uniq};
use serde_json::{Value, json};

const NOW: &str = "2024-03-20T12:00:00Z";
const FEB_1: &str = "2024-02-01T00:00:00Z";
/// When February's events are sent (events older than 31 days are refused).
const FEB_20: &str = "2024-02-20T12:00:00Z";

fn event(code: &str, subscription: &str, at: &str, properties: Value) -> Value {
    json!({"transaction_id": uniq("tr"), "external_subscription_id": subscription,
           "code": code, "timestamp": ts(at), "properties": properties})
}

/// A metric, one charge of `model` with `charge_extra` (e.g. `prorated`), a plan and a
/// subscription from `FEB_1`: `(metric code, charge code, customer, subscription)`.
async fn one_charge(
    stack: &Stack,
    aggregation_type: &str,
    metric_extra: Value,
    model: &str,
    properties: Value,
    charge_extra: Value,
) -> (String, String, String, String) {
    let code = uniq(aggregation_type);
    let metric = stack.metric(&code, aggregation_type, metric_extra).await;
    let charge_code = uniq("charge");
    let mut charge = json!({"code": charge_code, "billable_metric_id": metric["lago_id"],
                            "charge_model": model, "properties": properties});
    if let (Some(c), Value::Object(extra)) = (charge.as_object_mut(), charge_extra) {
        c.extend(extra);
    }
    let plan = uniq("plan");
    stack.plan(&plan, json!([charge])).await;
    let (customer, subscription) = stack.subscribe(&plan, FEB_1).await;
    (code, charge_code, customer, subscription)
}

/// The units of a usage object, as a number (their text keeps the decimals of the sum).
fn units(usage: &Value) -> f64 {
    usage["units"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_prorated_recurring_sum_bills_each_value_for_its_days_and_carries_february() {
    // Given a recurring sum, prorated, at 1 USD per unit
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "sum_agg",
        json!({"field_name": "gb", "recurring": true}),
        "standard",
        json!({"amount": "1"}),
        json!({"prorated": true}),
    )
    .await;

    // When 10 GB arrive in February (carried: 10 × 31/31) and 31 GB on March 11 (21 days)
    stack.set_now(FEB_20);
    stack
        .event(event(
            &code,
            &sub,
            "2024-02-10T08:00:00Z",
            json!({"gb": 10}),
        ))
        .await;
    stack.set_now(NOW);
    stack
        .event(event(
            &code,
            &sub,
            "2024-03-11T08:00:00Z",
            json!({"gb": 31}),
        ))
        .await;

    // Then the prorated units are 10 + 31 × 21/31 = 31 → 31 USD; the fee shows the full 41
    let usage = stack.usage(&customer, &sub).await;
    let c = charge_usage(&usage, &charge);
    assert_eq!(units(c), 41.0, "{c:#}");
    assert_eq!(c["amount_cents"], 3100, "{c:#}");
    assert_eq!(c["events_count"], 1, "{c:#}");
}

#[tokio::test]
async fn a_prorated_unique_count_bills_each_seat_for_the_days_it_was_held() {
    // Given a recurring unique count of seats, prorated, at 3 USD per seat
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "unique_count_agg",
        json!({"field_name": "seat", "recurring": true}),
        "standard",
        json!({"amount": "3"}),
        json!({"prorated": true}),
    )
    .await;

    // When seat a is added in February (held all March: 31 days), b on March 11 (21 days),
    // c added March 5 and removed March 7 (the removal day counts: 3 days), and d added and
    // removed on March 9, then re-added the same day (the same-day removal is dropped: 23 days)
    for (at, seat, op) in [
        ("2024-02-05T08:00:00Z", "a", "add"),
        ("2024-03-11T08:00:00Z", "b", "add"),
        ("2024-03-05T08:00:00Z", "c", "add"),
        ("2024-03-07T08:00:00Z", "c", "remove"),
        ("2024-03-09T08:00:00Z", "d", "add"),
        ("2024-03-09T09:00:00Z", "d", "remove"),
        ("2024-03-09T10:00:00Z", "d", "add"),
    ] {
        stack.set_now(if at < "2024-03" { FEB_20 } else { NOW });
        stack
            .event(event(
                &code,
                &sub,
                at,
                json!({"seat": seat, "operation_type": op}),
            ))
            .await;
    }
    stack.set_now(NOW);

    // Then (31 + 21 + 3 + 23) / 31 = 78/31 = 2.516129… → ceil5 2.51613 units
    // × 3 USD = 7.54839 USD → 755 cents; the fee shows the 3 seats active at period end (a, b, d)
    let usage = stack.usage(&customer, &sub).await;
    let c = charge_usage(&usage, &charge);
    assert_eq!(units(c), 3.0, "{c:#}");
    assert_eq!(c["amount_cents"], 755, "{c:#}");
    assert_eq!(c["events_count"], 6, "{c:#}");
}

#[tokio::test]
async fn a_prorated_graduated_charge_prices_each_event_at_its_running_tier() {
    // Given a recurring sum, prorated, graduated: 0–10 at 1 USD, above 10 at 2 USD
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "sum_agg",
        json!({"field_name": "gb", "recurring": true}),
        "graduated",
        json!({"graduated_ranges": [
            {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "0"},
            {"from_value": 10, "to_value": null, "per_unit_amount": "2", "flat_amount": "0"}]}),
        json!({"prorated": true}),
    )
    .await;

    // When 6 GB arrive in February (carried whole: prorated 6) and 8 GB on March 11 (21/31),
    // sent in reverse order
    stack
        .event(event(&code, &sub, "2024-03-11T08:00:00Z", json!({"gb": 8})))
        .await;
    stack.set_now(FEB_20);
    stack
        .event(event(&code, &sub, "2024-02-10T08:00:00Z", json!({"gb": 6})))
        .await;
    stack.set_now(NOW);

    // Then the running full total goes 6 (tier 1) then 14: the 8 GB straddle the boundary, 4
    // in tier 1 and 4 in tier 2, each prorated by 21/31: 6 × 1 + 4 × 21/31 × 1 + 4 × 21/31 × 2
    // = 6 + 252/31 = 14.129032… USD → 1413 cents; the fee shows the full 14 units
    let usage = stack.usage(&customer, &sub).await;
    let c = charge_usage(&usage, &charge);
    assert_eq!(units(c), 14.0, "{c:#}");
    assert_eq!(c["amount_cents"], 1413, "{c:#}");
}

#[tokio::test]
async fn percentage_free_units_per_events_on_a_sum_read_the_first_events_by_time() {
    // Given a sum priced 10 % with a 1 USD fee per paid event; the first 2 events are free
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "sum_agg",
        json!({"field_name": "amount"}),
        "percentage",
        json!({"rate": "10", "fixed_amount": "1", "free_units_per_events": 2}),
        json!({}),
    )
    .await;

    // When 200 (March 4), 100 (March 2) and 50 (March 3) arrive, latest first
    for (at, v) in [
        ("2024-03-04T08:00:00Z", 200),
        ("2024-03-02T08:00:00Z", 100),
        ("2024-03-03T08:00:00Z", 50),
    ] {
        stack
            .event(event(&code, &sub, at, json!({"amount": v})))
            .await;
    }

    // Then the running total of the first 2 events by time is [100, 150]: 150 units free and
    // 2 events free: (350 − 150) × 10 % + (3 − 2) × 1 = 21 USD
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(
        figures(charge_usage(&usage, &charge)),
        expect("350.0", 2100, 3)
    );
}

#[tokio::test]
async fn percentage_free_units_per_total_aggregation_on_a_sum_stop_at_the_crossing_event() {
    // Given a sum priced 10 % with a 1 USD fee per paid event; the first 120 units are free
    let stack = Stack::start_at(NOW).await;
    let (code, charge, customer, sub) = one_charge(
        &stack,
        "sum_agg",
        json!({"field_name": "amount"}),
        "percentage",
        json!({"rate": "10", "fixed_amount": "1", "free_units_per_total_aggregation": "120"}),
        json!({}),
    )
    .await;

    // When 200 (March 4), 100 (March 2) and 50 (March 3) arrive, latest first
    for (at, v) in [
        ("2024-03-04T08:00:00Z", 200),
        ("2024-03-02T08:00:00Z", 100),
        ("2024-03-03T08:00:00Z", 50),
    ] {
        stack
            .event(event(&code, &sub, at, json!({"amount": v})))
            .await;
    }

    // Then the running total stops after the first total above 120: [100, 150]; free units
    // min(150, 120) = 120, free events 1 (only 100 < 120; the crossing event pays):
    // (350 − 120) × 10 % + (3 − 1) × 1 = 25 USD
    let usage = stack.usage(&customer, &sub).await;
    assert_eq!(
        figures(charge_usage(&usage, &charge)),
        expect("350.0", 2500, 3)
    );
}

#[tokio::test]
async fn a_redelivered_batch_counts_operations_and_recorded_values_once() {
    // Given a plan with a prorated unique count (3 USD per seat) and a percentage charge with
    // free units per events on a sum (rate 10 %, 1 USD per paid event, first event free)
    let stack = Stack::start_at(NOW).await;
    let seats = uniq("seats");
    let seat_metric = stack
        .metric(
            &seats,
            "unique_count_agg",
            json!({"field_name": "seat", "recurring": true}),
        )
        .await;
    let amounts = uniq("amounts");
    let amount_metric = stack
        .metric(&amounts, "sum_agg", json!({"field_name": "amount"}))
        .await;
    let (seat_charge, pct_charge) = (uniq("charge"), uniq("charge"));
    let plan = uniq("plan");
    stack
        .plan(
            &plan,
            json!([
                {"code": seat_charge, "billable_metric_id": seat_metric["lago_id"],
                 "charge_model": "standard", "properties": {"amount": "3"}, "prorated": true},
                {"code": pct_charge, "billable_metric_id": amount_metric["lago_id"],
                 "charge_model": "percentage",
                 "properties": {"rate": "10", "fixed_amount": "1", "free_units_per_events": 1}}
            ]),
        )
        .await;
    let (customer, sub) = stack.subscribe(&plan, FEB_1).await;

    // When one queue message with four events reaches the worker twice (an SQS redelivery)
    let queued = |tx: &str, code: &str, at: &str, seq: u64, props: &[(&str, &str)]| QueuedEvent {
        tx: tx.to_owned(),
        code: code.to_owned(),
        ts_ms: ts(at) * 1000,
        seq,
        props: props
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
        amt: None,
    };
    let message = EventsMessage {
        v: EVENTS_MESSAGE_VERSION,
        org: stack.org_id.clone(),
        sub: sub.clone(),
        events: vec![
            queued(
                &uniq("tx"),
                &seats,
                "2024-03-11T08:00:00Z",
                1,
                &[("seat", "a")],
            ),
            queued(
                &uniq("tx"),
                &seats,
                "2024-03-05T08:00:00Z",
                2,
                &[("seat", "b"), ("operation_type", "add")],
            ),
            queued(
                &uniq("tx"),
                &amounts,
                "2024-03-02T08:00:00Z",
                3,
                &[("amount", "100")],
            ),
            queued(
                &uniq("tx"),
                &amounts,
                "2024-03-03T08:00:00Z",
                4,
                &[("amount", "50")],
            ),
        ],
    };
    let group = vec![aggregate::Incoming {
        message_id: uniq("msg"),
        message,
    }];
    for delivery in 0..2 {
        let applied = aggregate::apply_group(&stack.aggregate, &group).await;
        assert!(applied.is_ok(), "delivery {delivery}: {applied:?}");
    }

    // Then each event is counted once: seats a (21 days) + b (27 days) = 48/31 = 1.548387…
    // → ceil5 1.54839 × 3 = 4.64517 USD → 465 cents, 2 seats, 2 events
    let usage = stack.usage(&customer, &sub).await;
    let c = charge_usage(&usage, &seat_charge);
    assert_eq!(units(c), 2.0, "{c:#}");
    assert_eq!(c["amount_cents"], 465, "{c:#}");
    assert_eq!(c["events_count"], 2, "{c:#}");
    // And the amounts: first event (100) free: (150 − 100) × 10 % + (2 − 1) × 1 = 6 USD
    assert_eq!(
        figures(charge_usage(&usage, &pct_charge)),
        expect("150.0", 600, 2)
    );
}
