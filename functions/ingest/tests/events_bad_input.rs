//! Refused events write nothing: for each kind of bad input, the Lago error comes back, no
//! event is stored under any transaction id of the request (`GET /events/{id}` is 404), and,
//! once the queue is drained, the subscription's current usage is exactly what it was.
//!
//! The clock is frozen at `NOW`, so the accepted time window is exact: from 31 days before
//! (`BACKDATING_WINDOW_DAYS`) to 24 hours after (`FUTURE_LIMIT_HOURS`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod metering_support;

use http::StatusCode;
use metering_support::{
    Reply, Stack, charge_usage, expect, figures, not_found, ts, uniq, unprocessable,
};
use serde_json::{Value, json};

const NOW: &str = "2024-03-20T12:00:00Z";

/// A sum of `gb` at 1 USD per unit, a subscription since 1 March, and one accepted event of
/// 5 GB: the usage every refused request must leave as it is.
struct Given {
    stack: Stack,
    code: String,
    customer: String,
    sub: String,
    baseline: Value,
}

impl Given {
    async fn new() -> Given {
        let stack = Stack::start_at(NOW).await;
        let code = uniq("gb");
        let metric = stack
            .metric(&code, "sum_agg", json!({"field_name": "gb"}))
            .await;
        let plan = uniq("plan");
        stack
            .plan(
                &plan,
                json!([{"code": "storage", "billable_metric_id": metric["lago_id"],
                        "charge_model": "standard", "properties": {"amount": "1"}}]),
            )
            .await;
        let (customer, sub) = stack.subscribe(&plan, "2024-03-01T00:00:00Z").await;
        stack
            .event(
                json!({"transaction_id": uniq("tr"), "external_subscription_id": sub,
                          "code": code, "timestamp": ts("2024-03-10T00:00:00Z"),
                          "properties": {"gb": 5}}),
            )
            .await;
        let baseline = stack.usage(&customer, &sub).await;
        // 5 GB × 1 USD = 500 cents, 1 event
        assert_eq!(
            figures(charge_usage(&baseline, "storage")),
            expect("5.0", 500, 1)
        );
        Given {
            stack,
            code,
            customer,
            sub,
            baseline,
        }
    }

    /// A valid event (2 GB on 15 March) with a fresh transaction id.
    fn good(&self) -> Value {
        json!({"transaction_id": uniq("tr"), "external_subscription_id": self.sub,
               "code": self.code, "timestamp": ts("2024-03-15T00:00:00Z"),
               "properties": {"gb": 2}})
    }

    /// The same valid event with `field` set to `value` (`null` removes it).
    fn with(&self, field: &str, value: Value) -> Value {
        let mut e = self.good();
        if value.is_null() {
            e.as_object_mut().unwrap().remove(field);
        } else {
            e[field] = value;
        }
        e
    }

    /// Asserts that none of `events` is stored and that the usage has not moved.
    async fn nothing_written(&self, events: &[Value], case: &str) {
        for e in events {
            if let Some(tx) = e["transaction_id"].as_str() {
                assert_eq!(
                    self.stack.event_status(tx).await,
                    StatusCode::NOT_FOUND,
                    "{case}: {tx} must not be stored"
                );
            }
        }
        let usage = self.stack.usage(&self.customer, &self.sub).await;
        assert_eq!(usage, self.baseline, "{case}: the usage moved");
    }

    async fn single(&self, event: &Value) -> Reply {
        self.stack.send_event(event.clone()).await
    }
}

#[tokio::test]
async fn an_event_missing_a_required_field_is_refused_field_by_field() {
    let given = Given::new().await;
    for (field, event) in [
        ("transaction_id", given.with("transaction_id", Value::Null)),
        (
            "external_subscription_id",
            given.with("external_subscription_id", Value::Null),
        ),
        ("code", given.with("code", Value::Null)),
        ("code", given.with("code", json!("   "))),
    ] {
        // When the event lacks the field (or sends it blank)
        let reply = given.single(&event).await;
        // Then it is 422 value_is_mandatory on that field
        reply.assert_error(
            422,
            &unprocessable(json!({ field: ["value_is_mandatory"] })),
            &format!("missing {field}"),
        );
        given
            .nothing_written(&[event], &format!("missing {field}"))
            .await;
    }
}

#[tokio::test]
async fn an_event_for_an_unknown_metric_or_subscription_is_not_found() {
    let given = Given::new().await;
    for (case, event, resource) in [
        (
            "unknown metric",
            given.with("code", json!(uniq("nope"))),
            "billable_metric",
        ),
        (
            "unknown subscription",
            given.with("external_subscription_id", json!(uniq("nope"))),
            "subscription",
        ),
    ] {
        let reply = given.single(&event).await;
        reply.assert_error(404, &not_found(resource), case);
        given.nothing_written(&[event], case).await;
    }
}

#[tokio::test]
async fn a_sum_value_that_is_not_a_number_is_refused() {
    let given = Given::new().await;
    // SEMANTICS §1.1: only ^-?\d+(\.\d+)?$ is a number; these would be silently unbilled
    for value in [
        json!("ten"),
        json!("1e3"),
        json!("+2"),
        json!(".5"),
        json!(true),
    ] {
        let event = given.with("properties", json!({"gb": value}));
        let reply = given.single(&event).await;
        let case = format!("gb = {value}");
        reply.assert_error(
            422,
            &unprocessable(json!({"properties.gb": ["value_is_not_a_number"]})),
            &case,
        );
        given.nothing_written(&[event], &case).await;
    }
}

#[tokio::test]
async fn timestamps_outside_the_accepted_window_or_not_unix_seconds_are_refused() {
    let given = Given::new().await;
    // NOW is 2024-03-20T12:00:00Z: the window is [2024-02-18T12:00:00Z, 2024-03-21T12:00:00Z]
    let now = ts(NOW);
    for (case, timestamp, code) in [
        (
            "31 days and 1 s old",
            json!(now - 31 * 86_400 - 1),
            "too_old",
        ),
        (
            "24 h and 1 s ahead",
            json!(now + 24 * 3_600 + 1),
            "too_far_in_the_future",
        ),
        (
            "a date, not unix seconds",
            json!("2024-03-15"),
            "invalid_format",
        ),
        ("a word", json!("yesterday"), "invalid_format"),
        ("negative", json!(-5), "invalid_format"),
    ] {
        let event = given.with("timestamp", timestamp);
        let reply = given.single(&event).await;
        reply.assert_error(422, &unprocessable(json!({"timestamp": [code]})), case);
        given.nothing_written(&[event], case).await;
    }
}

#[tokio::test]
async fn a_batch_of_more_than_100_events_stores_none_of_them() {
    let given = Given::new().await;
    // When 101 valid events are sent in one batch
    let events: Vec<Value> = (0..101).map(|_| given.good()).collect();
    let reply = given.stack.batch(events.clone()).await;
    // Then the batch is refused as a whole
    reply.assert_error(
        422,
        &unprocessable(json!({"events": ["too_many_events"]})),
        "101 events",
    );
    given.nothing_written(&events, "101 events").await;

    // And an empty batch is refused too
    given.stack.batch(vec![]).await.assert_error(
        422,
        &unprocessable(json!({"events": ["no_events"]})),
        "no events",
    );
}

#[tokio::test]
async fn one_bad_event_refuses_the_whole_batch_keyed_by_its_index() {
    let given = Given::new().await;
    for (case, bad_index, bad, details) in [
        (
            "unknown metric",
            1,
            given.with("code", json!(uniq("nope"))),
            json!({"code": ["billable_metric_not_found"]}),
        ),
        (
            "unknown subscription",
            0,
            given.with("external_subscription_id", json!(uniq("nope"))),
            json!({"external_subscription_id": ["subscription_not_found"]}),
        ),
        (
            "not a number",
            2,
            given.with("properties", json!({"gb": "lots"})),
            json!({"properties.gb": ["value_is_not_a_number"]}),
        ),
        (
            "too old",
            2,
            given.with("timestamp", json!(ts(NOW) - 40 * 86_400)),
            json!({"timestamp": ["too_old"]}),
        ),
        (
            "missing transaction_id",
            1,
            given.with("transaction_id", Value::Null),
            json!({"transaction_id": ["value_is_mandatory"]}),
        ),
    ] {
        // When the bad event sits among good ones
        let mut events: Vec<Value> = (0..3).map(|_| given.good()).collect();
        events[bad_index] = bad;
        let reply = given.stack.batch(events.clone()).await;
        // Then the error names its index, and none of the good ones is stored
        reply.assert_error(
            422,
            &unprocessable(json!({ bad_index.to_string(): details })),
            case,
        );
        given.nothing_written(&events, case).await;
    }
}

#[tokio::test]
async fn one_transaction_id_twice_in_a_batch_with_different_payloads_stores_neither() {
    let given = Given::new().await;
    // When the second event reuses the first one's transaction id with another value
    let first = given.good();
    let mut second = first.clone();
    second["properties"] = json!({"gb": 3});
    let third = given.good();
    let events = vec![first, second, third];
    let reply = given.stack.batch(events.clone()).await;
    // Then the duplicate is named by its index and nothing is stored
    reply.assert_error(
        422,
        &unprocessable(json!({"1": {"transaction_id": ["value_already_exist"]}})),
        "conflicting duplicate in a batch",
    );
    given
        .nothing_written(&events, "conflicting duplicate in a batch")
        .await;
}

#[tokio::test]
async fn a_batch_conflicting_with_a_stored_event_stores_none_of_its_events() {
    let given = Given::new().await;
    // Given an accepted event
    let stored = given.good();
    given.stack.event(stored.clone()).await;
    let after_first = given.stack.usage(&given.customer, &given.sub).await;
    // 5 + 2 = 7 GB, 2 events
    assert_eq!(
        figures(charge_usage(&after_first, "storage")),
        expect("7.0", 700, 2)
    );

    // When a batch carries a new event and the stored transaction id with another value
    let fresh = given.good();
    let mut conflicting = stored.clone();
    conflicting["properties"] = json!({"gb": 9});
    let reply = given.stack.batch(vec![fresh.clone(), conflicting]).await;

    // Then the conflict is named by its index, the new event is not stored, the stored one
    // keeps its value, and the usage is unchanged
    reply.assert_error(
        422,
        &unprocessable(json!({"1": {"transaction_id": ["value_already_exist"]}})),
        "conflict with a stored event",
    );
    let tx = fresh["transaction_id"].as_str().unwrap();
    assert_eq!(given.stack.event_status(tx).await, StatusCode::NOT_FOUND);
    let kept = given
        .stack
        .get(&format!(
            "/api/v1/events/{}",
            stored["transaction_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(kept.ok("event")["properties"], json!({"gb": 2}));
    assert_eq!(
        given.stack.usage(&given.customer, &given.sub).await,
        after_first
    );
}
