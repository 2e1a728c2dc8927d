//! `/api/v1/subscriptions` scenarios through the HTTP API, against DynamoDB in the AWS
//! emulator, with the clock set by each test. Expected values come from API_CONTRACT §4.5 and
//! SEMANTICS §6-§7 (periods in the customer's timezone, upgrade vs downgrade by yearly price).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod plans_support;

use billing::{
    catalog::{
        plan::Plan,
        subscription::{Subscription, SubscriptionStatus},
    },
    charge_model::ChargeModel,
};
use billing_aws::{StoreError, dynamo::subscriptions::SubscriptionWrite};
use plans_support::{Api, not_found, unprocessable};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// A Sunday, mid-March 2024.
const NOW: &str = "2024-03-10T12:00:00Z";

async fn subscribe(api: &Api, fields: Value) -> Value {
    api.create("subscriptions", "subscription", fields).await
}

fn ids(list: &Value, root: &str) -> Vec<String> {
    list[root]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["external_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_calendar_subscription_starts_now_and_sets_the_customers_currency() {
    // Given a customer without a currency and a monthly plan in euros
    let api = Api::start_at(NOW).await;
    let customer = api.customer("cus", json!({"name": "Jane"})).await;
    let plan = api.simple_plan("basic", "monthly", 1000, "EUR").await;

    // When the customer subscribes without a start date or billing time
    let sub = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "sub_1"}),
    )
    .await;

    // Then it is active from now, billed on calendar months, the first period cut at the start
    let expected_fields = json!({
        "external_id": "sub_1",
        "lago_customer_id": customer["lago_id"],
        "external_customer_id": "cus",
        "name": null,
        "plan_code": "basic",
        "plan_amount_cents": 1000,
        "plan_amount_currency": "EUR",
        "status": "active",
        "billing_time": "calendar",
        "subscription_at": "2024-03-10T12:00:00Z",
        "started_at": "2024-03-10T12:00:00.000Z",
        "trial_ended_at": null,
        "ending_at": null,
        "terminated_at": null,
        "canceled_at": null,
        "created_at": "2024-03-10T12:00:00Z",
        "previous_plan_code": null,
        "next_plan_code": null,
        "downgrade_plan_date": null,
        "current_billing_period_started_at": "2024-03-10T12:00:00Z",
        "current_billing_period_ending_at": "2024-03-31T23:59:59Z",
        "on_termination_credit_note": null,
        "on_termination_invoice": "generate",
    });
    for (field, value) in expected_fields.as_object().unwrap() {
        assert_eq!(&sub[field], value, "{field}");
    }
    // And the extended object carries the plan that prices it
    assert_eq!(sub["plan"], plan);
    assert_eq!(sub["applicable_usage_thresholds"], json!([]));
    // And the customer now bills in the plan's currency
    let customer = api
        .get("/api/v1/customers/cus")
        .await
        .ok("customer")
        .clone();
    assert_eq!(customer["currency"], "EUR");
    // And reading it back answers the same object
    assert_eq!(
        api.get("/api/v1/subscriptions/sub_1")
            .await
            .ok("subscription"),
        &sub
    );
}

#[tokio::test]
async fn an_anniversary_subscription_follows_its_start_date_in_the_customers_timezone() {
    // Given a New York customer subscribed on Jan 31 (a 31st anchor, in a leap year)
    let api = Api::start_at(NOW).await;
    api.customer("ny", json!({"timezone": "America/New_York"}))
        .await;
    api.customer("utc", json!({})).await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    for (customer, external_id) in [("ny", "ny_sub"), ("utc", "utc_sub")] {
        subscribe(
            &api,
            json!({"external_customer_id": customer, "plan_code": "basic",
                   "external_id": external_id, "billing_time": "anniversary",
                   "subscription_at": "2024-01-31T09:00:00Z"}),
        )
        .await;
    }
    // Then on Mar 10 the period is Feb 29 - Mar 30 (the 31st falls on the month's last day,
    // SEMANTICS §6.2), as local dates converted to UTC (EST before Mar 10, EDT after)
    let ny = api
        .get("/api/v1/subscriptions/ny_sub")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(ny["status"], "active");
    assert_eq!(ny["billing_time"], "anniversary");
    assert_eq!(ny["started_at"], "2024-01-31T09:00:00.000Z");
    assert_eq!(
        ny["current_billing_period_started_at"],
        "2024-02-29T05:00:00Z"
    );
    assert_eq!(
        ny["current_billing_period_ending_at"],
        "2024-03-31T03:59:59Z"
    );
    let utc = api
        .get("/api/v1/subscriptions/utc_sub")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(
        utc["current_billing_period_started_at"],
        "2024-02-29T00:00:00Z"
    );
    assert_eq!(
        utc["current_billing_period_ending_at"],
        "2024-03-30T23:59:59Z"
    );
}

#[tokio::test]
async fn a_future_subscription_is_pending_until_its_date() {
    let api = Api::start_at(NOW).await;
    api.customer("cus", json!({})).await;
    api.customer("ny", json!({"timezone": "America/New_York"}))
        .await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;

    // A start on Apr 1 is pending, without start or period
    let sub = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "later",
               "subscription_at": "2024-04-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(sub["status"], "pending");
    assert_eq!(sub["subscription_at"], "2024-04-01T00:00:00Z");
    assert_eq!(sub["started_at"], Value::Null);
    assert_eq!(sub["current_billing_period_started_at"], Value::Null);
    assert_eq!(sub["current_billing_period_ending_at"], Value::Null);
    // GET answers the active one by default, and the pending one when asked
    api.get("/api/v1/subscriptions/later").await.assert_error(
        404,
        not_found("subscription"),
        "no active subscription",
    );
    assert_eq!(
        api.get("/api/v1/subscriptions/later?status=pending")
            .await
            .ok("subscription")["lago_id"],
        sub["lago_id"]
    );

    // "Today" is the customer's: 02:00 UTC on Mar 11 is still Mar 10 in New York
    let today = subscribe(
        &api,
        json!({"external_customer_id": "ny", "plan_code": "basic", "external_id": "ny_today",
               "subscription_at": "2024-03-11T02:00:00Z"}),
    )
    .await;
    assert_eq!(today["status"], "active");
    assert_eq!(today["started_at"], "2024-03-11T02:00:00.000Z");
    let tomorrow = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "utc_tomorrow",
               "subscription_at": "2024-03-11T02:00:00Z"}),
    )
    .await;
    assert_eq!(tomorrow["status"], "pending");
}

#[tokio::test]
async fn lists_filter_by_customer_plan_and_status_with_lagos_paging() {
    // Given subscriptions of two customers on two plans, in several statuses
    let api = Api::start_at(NOW).await;
    for c in ["c1", "c2"] {
        api.customer(c, json!({"currency": "EUR"})).await;
    }
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    api.simple_plan("pro", "monthly", 2000, "EUR").await;
    for (customer, plan, id, at) in [
        ("c1", "basic", "a", None),
        ("c2", "pro", "b", None),
        ("c1", "pro", "c", Some("2024-06-01T00:00:00Z")),
        ("c2", "basic", "d", None),
    ] {
        let mut body =
            json!({"external_customer_id": customer, "plan_code": plan, "external_id": id});
        if let Some(at) = at {
            body["subscription_at"] = json!(at);
        }
        subscribe(&api, body).await;
    }
    api.delete("/api/v1/subscriptions/d")
        .await
        .ok("subscription");

    // Then the filters combine, active being the default status
    let cases = [
        ("", vec!["a", "b"]),
        ("?external_customer_id=c1", vec!["a"]),
        ("?plan_code=pro", vec!["b"]),
        ("?status[]=pending&status[]=terminated", vec!["c", "d"]),
        (
            "?external_customer_id=c1&status[]=active&status[]=pending",
            vec!["a", "c"],
        ),
        ("?external_customer_id=nobody", vec![]),
    ];
    for (query, expected) in cases {
        let list = api.get(&format!("/api/v1/subscriptions{query}")).await;
        list.ok("subscriptions");
        let mut got = ids(&list.body, "subscriptions");
        got.sort();
        assert_eq!(got, expected, "{query}");
        assert_eq!(
            list.body["meta"]["total_count"],
            expected.len(),
            "{query}: total"
        );
        // Lists answer SubscriptionObject, without the plan.
        assert!(
            list.body["subscriptions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s.get("plan").is_none())
        );
    }
    let page = api.get("/api/v1/subscriptions?per_page=1&page=2").await;
    assert_eq!(page.ok("subscriptions").as_array().unwrap().len(), 1);
    assert_eq!(
        page.body["meta"],
        json!({"current_page": 2, "next_page": null, "prev_page": 1, "total_pages": 2, "total_count": 2})
    );
}

#[tokio::test]
async fn an_update_renames_ends_and_reschedules_a_pending_start() {
    let api = Api::start_at(NOW).await;
    api.customer("cus", json!({})).await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    let active = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s"}),
    )
    .await;

    // Name and end date change, and the answer is a SubscriptionObject
    let updated = api
        .put(
            "/api/v1/subscriptions/s",
            json!({"subscription": {"name": "Team plan", "ending_at": "2024-12-31T00:00:00Z",
                                    "subscription_at": "2020-01-01T00:00:00Z"}}),
        )
        .await
        .ok("subscription")
        .clone();
    assert_eq!(updated["lago_id"], active["lago_id"]);
    assert_eq!(updated["name"], "Team plan");
    assert_eq!(updated["ending_at"], "2024-12-31T00:00:00Z");
    assert_eq!(
        updated["subscription_at"], "2024-03-10T12:00:00Z",
        "a started subscription keeps its start"
    );
    assert!(updated.get("plan").is_none());

    // An end date that is not after today is refused, and nothing changes
    api.put(
        "/api/v1/subscriptions/s",
        json!({"subscription": {"ending_at": "2024-03-10T20:00:00Z"}}),
    )
    .await
    .assert_error(
        422,
        unprocessable(json!({"ending_at": ["invalid_date"]})),
        "ending today",
    );
    api.put(
        "/api/v1/subscriptions/s",
        json!({"subscription": {"ending_at": "not a date"}}),
    )
    .await
    .assert_error(
        422,
        unprocessable(json!({"ending_at": ["invalid_date"]})),
        "unreadable",
    );
    let shown = api
        .get("/api/v1/subscriptions/s")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(shown["ending_at"], "2024-12-31T00:00:00Z");
    // `ending_at: null` clears it.
    let cleared = api
        .put(
            "/api/v1/subscriptions/s",
            json!({"subscription": {"ending_at": null}}),
        )
        .await
        .ok("subscription")
        .clone();
    assert_eq!(cleared["ending_at"], Value::Null);

    // A pending subscription moves its start; moved to today, it starts
    subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "p",
               "subscription_at": "2024-04-01T00:00:00Z"}),
    )
    .await;
    let moved = api
        .put(
            "/api/v1/subscriptions/p?status=pending",
            json!({"subscription": {"subscription_at": "2024-05-01T00:00:00Z"}}),
        )
        .await
        .ok("subscription")
        .clone();
    assert_eq!(moved["status"], "pending");
    assert_eq!(moved["subscription_at"], "2024-05-01T00:00:00Z");
    let started = api
        .put(
            "/api/v1/subscriptions/p",
            json!({"status": "pending", "subscription": {"subscription_at": "2024-03-10T08:00:00Z"}}),
        )
        .await
        .ok("subscription")
        .clone();
    assert_eq!(started["status"], "active");
    assert_eq!(started["started_at"], "2024-03-10T08:00:00.000Z");

    api.put(
        "/api/v1/subscriptions/nope",
        json!({"subscription": {"name": "x"}}),
    )
    .await
    .assert_error(404, not_found("subscription"), "unknown");
}

#[tokio::test]
async fn termination_is_now_and_canceling_stops_a_pending_subscription() {
    let api = Api::start_at(NOW).await;
    api.customer("cus", json!({})).await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s"}),
    )
    .await;
    subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "p",
               "subscription_at": "2024-04-01T00:00:00Z"}),
    )
    .await;

    // An invalid option is refused before anything happens
    api.delete("/api/v1/subscriptions/s?on_termination_invoice=later")
        .await
        .assert_error(
            422,
            unprocessable(json!({"on_termination_invoice": ["invalid_value"]})),
            "bad option",
        );

    // Terminating the active subscription at 15:30 records the time and the options
    api.set_now("2024-03-12T15:30:00Z");
    let terminated = api
        .delete(
            "/api/v1/subscriptions/s?on_termination_credit_note=refund&on_termination_invoice=skip",
        )
        .await
        .ok("subscription")
        .clone();
    assert_eq!(terminated["status"], "terminated");
    assert_eq!(terminated["terminated_at"], "2024-03-12T15:30:00Z");
    assert_eq!(terminated["on_termination_credit_note"], "refund");
    assert_eq!(terminated["on_termination_invoice"], "skip");
    assert_eq!(
        terminated["current_billing_period_ending_at"],
        "2024-03-12T15:30:00Z"
    );
    assert!(terminated.get("plan").is_none());
    api.get("/api/v1/subscriptions/s").await.assert_error(
        404,
        not_found("subscription"),
        "no longer active",
    );
    assert_eq!(
        api.get("/api/v1/subscriptions/s?status=terminated")
            .await
            .ok("subscription")["terminated_at"],
        "2024-03-12T15:30:00Z"
    );
    api.delete("/api/v1/subscriptions/s").await.assert_error(
        404,
        not_found("subscription"),
        "terminated twice",
    );

    // The pending one needs status=pending, and is canceled
    api.delete("/api/v1/subscriptions/p").await.assert_error(
        404,
        not_found("subscription"),
        "pending without status",
    );
    let canceled = api
        .delete("/api/v1/subscriptions/p?status=pending")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["canceled_at"], "2024-03-12T15:30:00Z");
    assert_eq!(canceled["terminated_at"], Value::Null);

    // A terminated external id can start again
    let again = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s"}),
    )
    .await;
    assert_eq!(again["status"], "active");
    assert_ne!(again["lago_id"], terminated["lago_id"]);
}

#[tokio::test]
async fn an_upgrade_terminates_the_current_subscription_and_starts_the_new_plan_now() {
    // Given a subscription on a 1000/month plan since Mar 1, with a 5-day trial
    let api = Api::start_at(NOW).await;
    api.customer("cus", json!({})).await;
    api.create(
        "plans",
        "plan",
        json!({"name": "Basic", "code": "basic", "interval": "monthly", "amount_cents": 1000,
               "amount_currency": "EUR", "trial_period": 5}),
    )
    .await;
    api.simple_plan("pro", "monthly", 2000, "EUR").await;
    // 12000 a year, as much as basic: an equal price upgrades (SEMANTICS §7).
    api.simple_plan("yearly", "yearly", 24000, "EUR").await;
    let first = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s",
               "subscription_at": "2024-03-01T00:00:00Z", "billing_time": "anniversary"}),
    )
    .await;
    assert_eq!(first["trial_ended_at"], "2024-03-06T00:00:00Z");

    // When it moves to a plan that costs more per year, on Mar 15
    api.set_now("2024-03-15T10:00:00Z");
    let upgraded = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "pro", "external_id": "s",
               "name": "Upgraded"}),
    )
    .await;

    // Then the new subscription is active now, keeping the anchor, billing time and trial
    assert_ne!(upgraded["lago_id"], first["lago_id"]);
    assert_eq!(upgraded["status"], "active");
    assert_eq!(upgraded["plan_code"], "pro");
    assert_eq!(upgraded["name"], "Upgraded");
    assert_eq!(upgraded["previous_plan_code"], "basic");
    assert_eq!(upgraded["started_at"], "2024-03-15T10:00:00.000Z");
    assert_eq!(upgraded["subscription_at"], "2024-03-01T00:00:00Z");
    assert_eq!(upgraded["billing_time"], "anniversary");
    assert_eq!(upgraded["plan"]["code"], "pro");
    assert_eq!(
        upgraded["current_billing_period_started_at"],
        "2024-03-15T10:00:00Z"
    );
    assert_eq!(
        upgraded["current_billing_period_ending_at"],
        "2024-03-31T23:59:59Z"
    );
    // And the old one is terminated now, pointing at its successor
    let old = api
        .get("/api/v1/subscriptions/s?status=terminated")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(old["lago_id"], first["lago_id"]);
    assert_eq!(old["terminated_at"], "2024-03-15T10:00:00Z");
    assert_eq!(old["next_plan_code"], "pro");
    assert_eq!(old["downgrade_plan_date"], Value::Null);
    assert_eq!(
        api.total("/api/v1/subscriptions?status[]=active", "subscriptions")
            .await,
        1
    );

    // When it moves again to a yearly plan of the same yearly price: an upgrade too
    let equal = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "yearly", "external_id": "s"}),
    )
    .await;
    assert_eq!(equal["status"], "active");
    assert_eq!(equal["previous_plan_code"], "pro");
}

#[tokio::test]
async fn a_downgrade_keeps_the_current_plan_until_the_next_period() {
    // Given a Tokyo customer on a 2000/month plan
    let api = Api::start_at(NOW).await;
    api.customer("cus", json!({"timezone": "Asia/Tokyo"})).await;
    api.simple_plan("pro", "monthly", 2000, "EUR").await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    api.simple_plan("mini", "monthly", 500, "EUR").await;
    api.simple_plan("max", "monthly", 5000, "EUR").await;
    let current = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "pro", "external_id": "s"}),
    )
    .await;

    // When it moves to a cheaper plan at 16:00 UTC on Mar 31, already Apr 1 in Tokyo
    api.set_now("2024-03-31T16:00:00Z");
    let answer = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s"}),
    )
    .await;

    // Then the answer is the current subscription, still active on its plan, naming the next
    // plan and the date it takes over: the first day of the next local period (May 1 in
    // Tokyo), as lago-api answers `downgrade_plan_date` (`next_end_of_period + 1 day`)
    assert_eq!(answer["lago_id"], current["lago_id"]);
    assert_eq!(answer["status"], "active");
    assert_eq!(answer["plan_code"], "pro");
    assert_eq!(answer["next_plan_code"], "basic");
    assert_eq!(answer["downgrade_plan_date"], "2024-05-01");
    // And the next subscription waits, pending, on the same anchor
    let pending = api
        .get("/api/v1/subscriptions/s?status=pending")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(pending["plan_code"], "basic");
    assert_eq!(pending["previous_plan_code"], "pro");
    assert_eq!(pending["started_at"], Value::Null);
    assert_eq!(pending["subscription_at"], current["subscription_at"]);
    assert_eq!(pending["plan"]["code"], "basic");

    // When the same downgrade is sent again, nothing changes
    let again = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s"}),
    )
    .await;
    assert_eq!(again["next_plan_code"], "basic");
    assert_eq!(
        api.get("/api/v1/subscriptions/s?status=pending")
            .await
            .ok("subscription")["lago_id"],
        pending["lago_id"]
    );

    // When another downgrade replaces it, the first pending one is canceled
    let other = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "mini", "external_id": "s"}),
    )
    .await;
    assert_eq!(other["next_plan_code"], "mini");
    let canceled = api
        .get("/api/v1/subscriptions/s?status=canceled")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(canceled["lago_id"], pending["lago_id"]);
    assert_eq!(canceled["canceled_at"], "2024-03-31T16:00:00Z");

    // When the pending downgrade is canceled, the current one forgets it
    let dropped = api
        .delete("/api/v1/subscriptions/s?status=pending")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(dropped["plan_code"], "mini");
    let current_now = api
        .get("/api/v1/subscriptions/s")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(current_now["next_plan_code"], Value::Null);
    assert_eq!(current_now["downgrade_plan_date"], Value::Null);

    // When a downgrade is pending and an upgrade comes, the downgrade is canceled
    subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s"}),
    )
    .await;
    let upgraded = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "max", "external_id": "s"}),
    )
    .await;
    assert_eq!(upgraded["plan_code"], "max");
    assert_eq!(
        api.total("/api/v1/subscriptions?status[]=pending", "subscriptions")
            .await,
        0
    );
}

#[tokio::test]
async fn the_same_plan_on_the_same_external_id_answers_the_existing_subscription() {
    let api = Api::start_at(NOW).await;
    api.customer("cus", json!({})).await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    let body = json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s"});
    let first = subscribe(&api, body.clone()).await;
    api.set_now("2024-03-11T09:00:00Z");
    let replay = subscribe(&api, body).await;
    assert_eq!(replay["lago_id"], first["lago_id"]);
    assert_eq!(replay["started_at"], first["started_at"]);
    assert_eq!(
        api.total(
            "/api/v1/subscriptions?status[]=active&status[]=pending&status[]=terminated&status[]=canceled",
            "subscriptions"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn bad_references_and_values_are_refused_and_write_nothing() {
    let api = Api::start_at(NOW).await;
    api.customer("dollar", json!({"currency": "USD"})).await;
    api.customer("cus", json!({})).await;
    api.customer("other", json!({})).await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    subscribe(
        &api,
        json!({"external_customer_id": "other", "plan_code": "basic", "external_id": "taken"}),
    )
    .await;
    let cases = [
        (
            "customer billed in another currency",
            json!({"external_customer_id": "dollar", "plan_code": "basic", "external_id": "x"}),
            422,
            unprocessable(json!({"currency": ["currencies_does_not_match"]})),
        ),
        (
            "unknown customer",
            json!({"external_customer_id": "nobody", "plan_code": "basic", "external_id": "x"}),
            404,
            not_found("customer"),
        ),
        (
            "unknown plan",
            json!({"external_customer_id": "cus", "plan_code": "nope", "external_id": "x"}),
            404,
            not_found("plan"),
        ),
        (
            "no external id",
            json!({"external_customer_id": "cus", "plan_code": "basic"}),
            422,
            unprocessable(json!({"external_id": ["value_is_mandatory"]})),
        ),
        (
            "unknown billing time",
            json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "x",
                   "billing_time": "weekly"}),
            422,
            unprocessable(json!({"billing_time": ["value_is_invalid"]})),
        ),
        (
            "unreadable start",
            json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "x",
                   "subscription_at": "soon"}),
            422,
            unprocessable(json!({"subscription_at": ["invalid_date"]})),
        ),
        (
            "end before start",
            json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "x",
                   "subscription_at": "2024-06-01T00:00:00Z", "ending_at": "2024-05-01T00:00:00Z"}),
            422,
            unprocessable(json!({"ending_at": ["invalid_date"]})),
        ),
        (
            "external id active for another customer",
            json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "taken"}),
            422,
            unprocessable(json!({"external_id": ["value_already_exist"]})),
        ),
    ];
    for (case, body, status, expected) in cases {
        api.post("/api/v1/subscriptions", json!({"subscription": body}))
            .await
            .assert_error(status, expected, case);
    }
    assert_eq!(
        api.total(
            "/api/v1/subscriptions?status[]=active&status[]=pending",
            "subscriptions"
        )
        .await,
        1
    );
    let dollar = api
        .get("/api/v1/customers/dollar")
        .await
        .ok("customer")
        .clone();
    assert_eq!(dollar["currency"], "USD");
    let cus = api
        .get("/api/v1/customers/cus")
        .await
        .ok("customer")
        .clone();
    assert_eq!(cus["currency"], Value::Null, "nothing written");
}

#[tokio::test]
async fn plan_overrides_price_the_subscription_through_its_own_plan_record() {
    // Given a plan with a standard and a package charge, and a tax
    let api = Api::start_at(NOW).await;
    api.customer("cus", json!({})).await;
    api.tax("vat", "20").await;
    let metric = api.metric("gb", "sum_agg", json!([])).await;
    let metric_id = metric["lago_id"].as_str().unwrap();
    let catalog = api
        .create(
            "plans",
            "plan",
            json!({"name": "Startup", "code": "startup", "interval": "monthly",
                   "amount_cents": 1000, "amount_currency": "EUR",
                   "charges": [
                       {"billable_metric_id": metric_id, "charge_model": "standard",
                        "properties": {"amount": "1"}},
                       {"billable_metric_id": metric_id, "charge_model": "package",
                        "properties": {"amount": "10", "package_size": 100, "free_units": 0}}]}),
        )
        .await;
    let standard_id = catalog["charges"][0]["lago_id"].clone();
    let package_id = catalog["charges"][1]["lago_id"].clone();

    // When a subscription overrides the price, name, trial, taxes and the standard charge
    let sub = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "startup", "external_id": "s",
               "plan_overrides": {
                   "amount_cents": 500, "name": "Startup (negotiated)", "trial_period": 3,
                   "tax_codes": ["vat"], "interval": "yearly",
                   "charges": [{"id": standard_id, "properties": {"amount": "0.5"},
                                "min_amount_cents": 100, "invoice_display_name": "Storage",
                                "charge_model": "volume"}]}}),
    )
    .await;

    // Then the subscription is on the public plan, priced by an override plan
    assert_eq!(sub["plan_code"], "startup");
    assert_eq!(sub["plan_amount_cents"], 500);
    let plan = &sub["plan"];
    assert_eq!(plan["code"], "startup");
    assert_eq!(plan["parent_id"], catalog["lago_id"]);
    assert_ne!(plan["lago_id"], catalog["lago_id"]);
    assert_eq!(plan["name"], "Startup (negotiated)");
    assert_eq!(plan["amount_cents"], 500);
    assert_eq!(
        plan["interval"], "monthly",
        "the interval cannot be overridden"
    );
    assert_eq!(plan["trial_period"], json!(3.0));
    assert_eq!(plan["taxes"][0]["code"], "vat");
    let charges = plan["charges"].as_array().unwrap();
    assert_eq!(charges[0]["lago_parent_id"], standard_id);
    assert_ne!(charges[0]["lago_id"], standard_id);
    assert_eq!(
        charges[0]["charge_model"], "standard",
        "the model cannot be overridden"
    );
    assert_eq!(charges[0]["properties"], json!({"amount": "0.5"}));
    assert_eq!(charges[0]["min_amount_cents"], 100);
    assert_eq!(charges[0]["invoice_display_name"], "Storage");
    assert_eq!(charges[1]["lago_parent_id"], package_id);
    assert_eq!(
        charges[1]["properties"],
        json!({"amount": "10", "package_size": 100, "free_units": 0})
    );
    // And the catalog is untouched and lists no override plan
    let unchanged = api.get("/api/v1/plans/startup").await.ok("plan").clone();
    assert_eq!(unchanged, catalog);
    assert_eq!(api.total("/api/v1/plans", "plans").await, 1);

    // And the store resolves the subscription to the override record that prices it
    let store = api.store();
    let family = store
        .subscriptions_by_external_id(&api.org_id, "s")
        .await
        .unwrap();
    assert_eq!(family.len(), 1);
    let subscription: &Subscription = &family[0].value;
    assert_eq!(subscription.plan_code(), "startup");
    assert_ne!(subscription.effective_plan_code(), "startup");
    let effective = store
        .get::<Plan>(&api.org_id, subscription.effective_plan_code())
        .await
        .unwrap();
    assert_eq!(effective.value.amount_cents(), 500);
    assert_eq!(effective.value.parent_code(), Some("startup"));
    assert_eq!(
        effective.value.charges()[0].charge_model(),
        &ChargeModel::Standard {
            amount: Decimal::new(5, 1)
        }
    );

    // When the overrides change later, the same override plan is updated
    let updated = api
        .put(
            "/api/v1/subscriptions/s",
            json!({"subscription": {"plan_overrides": {"amount_cents": 700}}}),
        )
        .await
        .ok("subscription")
        .clone();
    assert_eq!(updated["plan_amount_cents"], 700);
    let shown = api
        .get("/api/v1/subscriptions/s")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(shown["plan"]["lago_id"], plan["lago_id"]);
    assert_eq!(shown["plan"]["amount_cents"], 700);
    assert_eq!(
        shown["plan"]["charges"][0]["properties"],
        json!({"amount": "0.5"})
    );

    // And invalid overrides are refused, writing nothing
    for (case, overrides, status, expected) in [
        (
            "invalid properties",
            json!({"charges": [{"id": standard_id, "properties": {"amount": "-1"}}]}),
            422,
            unprocessable(json!({"amount": ["invalid_amount"]})),
        ),
        (
            "unknown charge",
            json!({"charges": [{"id": "00000000-0000-0000-0000-000000000000", "properties": {"amount": "1"}}]}),
            404,
            not_found("charge"),
        ),
        (
            "unknown tax",
            json!({"tax_codes": ["nope"]}),
            404,
            not_found("tax"),
        ),
    ] {
        api.post(
            "/api/v1/subscriptions",
            json!({"subscription": {"external_customer_id": "cus", "plan_code": "startup",
                                    "external_id": "other", "plan_overrides": overrides}}),
        )
        .await
        .assert_error(status, expected, case);
    }
    assert_eq!(
        store
            .subscriptions_by_external_id(&api.org_id, "other")
            .await
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn a_plan_in_use_keeps_its_terms_and_its_deletion_ends_its_subscriptions() {
    let api = Api::start_at(NOW).await;
    api.customer("cus", json!({})).await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "active"}),
    )
    .await;
    subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "later",
               "subscription_at": "2024-05-01T00:00:00Z"}),
    )
    .await;

    // An update of a plan with subscriptions keeps its interval and currency, as lago-api
    let plan = api
        .put(
            "/api/v1/plans/basic",
            json!({"plan": {"name": "Basic 2", "interval": "yearly", "amount_currency": "USD",
                            "amount_cents": 1200}}),
        )
        .await
        .ok("plan")
        .clone();
    assert_eq!(plan["name"], "Basic 2");
    assert_eq!(plan["amount_cents"], 1200);
    assert_eq!(plan["interval"], "monthly");
    assert_eq!(plan["amount_currency"], "EUR");

    // Deleting it terminates the active subscription and cancels the pending one
    api.set_now("2024-03-20T00:00:00Z");
    api.delete("/api/v1/plans/basic").await.ok("plan");
    let terminated = api
        .get("/api/v1/subscriptions/active?status=terminated")
        .await
        .ok("subscription")
        .clone();
    assert_eq!(terminated["terminated_at"], "2024-03-20T00:00:00Z");
    assert_eq!(
        terminated["plan"]["name"], "Basic 2",
        "still priced by its plan"
    );
    assert_eq!(
        api.get("/api/v1/subscriptions/later?status=canceled")
            .await
            .ok("subscription")["canceled_at"],
        "2024-03-20T00:00:00Z"
    );
    // And the subscription still resolves to the deleted plan's record in the store
    let family = api
        .store()
        .subscriptions_by_external_id(&api.org_id, "active")
        .await
        .unwrap();
    assert_eq!(family[0].value.status(), SubscriptionStatus::Terminated);
    let kept = api
        .store()
        .get::<Plan>(&api.org_id, family[0].value.effective_plan_code())
        .await
        .unwrap();
    assert_eq!(kept.value.code(), "basic");
    assert!(kept.value.pending_deletion());
}

#[tokio::test]
async fn organizations_never_see_each_others_subscriptions() {
    let api = Api::start_at(NOW).await;
    let other = api.another_organization("Other").await;
    api.customer("cus", json!({})).await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s"}),
    )
    .await;

    other
        .get("/api/v1/subscriptions/s")
        .await
        .assert_error(404, not_found("subscription"), "read");
    other
        .put(
            "/api/v1/subscriptions/s",
            json!({"subscription": {"name": "x"}}),
        )
        .await
        .assert_error(404, not_found("subscription"), "update");
    other.delete("/api/v1/subscriptions/s").await.assert_error(
        404,
        not_found("subscription"),
        "terminate",
    );
    assert_eq!(
        other.total("/api/v1/subscriptions", "subscriptions").await,
        0
    );
    other
        .post(
            "/api/v1/subscriptions",
            json!({"subscription": {"external_customer_id": "cus", "plan_code": "basic",
                                    "external_id": "s2"}}),
        )
        .await
        .assert_error(
            404,
            not_found("customer"),
            "another organization's customer",
        );
    other.customer("cus", json!({})).await;
    other
        .post(
            "/api/v1/subscriptions",
            json!({"subscription": {"external_customer_id": "cus", "plan_code": "basic",
                                    "external_id": "s2"}}),
        )
        .await
        .assert_error(404, not_found("plan"), "another organization's plan");
    // The same external id is free in the other organization.
    other.simple_plan("basic", "weekly", 10, "EUR").await;
    let theirs = subscribe(
        &other,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s"}),
    )
    .await;
    assert_eq!(theirs["plan"]["interval"], "weekly");
    assert_eq!(
        api.get("/api/v1/subscriptions/s").await.ok("subscription")["plan"]["interval"],
        "monthly"
    );
}

#[tokio::test]
async fn a_subscription_that_has_not_started_changes_plan_in_place() {
    // Given a subscription starting on Apr 1
    let api = Api::start_at(NOW).await;
    api.customer("cus", json!({})).await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    api.simple_plan("cheap", "monthly", 100, "EUR").await;
    let pending = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s",
               "subscription_at": "2024-04-01T00:00:00Z"}),
    )
    .await;
    // When another plan is asked for the same external id, cheaper or not
    let moved = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "cheap", "external_id": "s",
               "name": "Renamed"}),
    )
    .await;
    // Then the same pending subscription now starts on the new plan
    assert_eq!(moved["lago_id"], pending["lago_id"]);
    assert_eq!(moved["status"], "pending");
    assert_eq!(moved["plan_code"], "cheap");
    assert_eq!(moved["name"], "Renamed");
    assert_eq!(moved["subscription_at"], "2024-04-01T00:00:00Z");
    assert_eq!(moved["previous_plan_code"], Value::Null);
    assert_eq!(
        api.total(
            "/api/v1/subscriptions?status[]=pending&status[]=canceled&status[]=active",
            "subscriptions"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_change_decided_on_a_stale_read_is_refused_and_writes_nothing() {
    // Given a family read (no subscription yet), then a subscription created under that
    // external id meanwhile. (On a table of its own: the emulator undoes a refused
    // transaction by restoring a copy of the whole table, which must not race other tests.)
    let api = Api::start_on_own_table(NOW).await;
    api.customer("cus", json!({})).await;
    api.simple_plan("basic", "monthly", 1000, "EUR").await;
    let store = api.store();
    let stale = store.subscription_family(&api.org_id, "s").await.unwrap();
    let created = subscribe(
        &api,
        json!({"external_customer_id": "cus", "plan_code": "basic", "external_id": "s"}),
    )
    .await;
    // When a second subscription is written on the stale read
    let current = store.subscription_family(&api.org_id, "s").await.unwrap();
    let mut second = current.subscriptions[0].clone();
    let state = billing::catalog::subscription::SubscriptionState {
        lago_id: "second".into(),
        ..second.value.state().clone()
    };
    second.lago_id = "second".into();
    second.value = Subscription::from_state(state).unwrap();
    let write = SubscriptionWrite {
        external_id: "s",
        read_version: stale.version,
        subscriptions: vec![&second],
        plan: None,
        customer: None,
        pending_events: Vec::new(),
    };
    // Then it is refused as a conflict, and the only subscription is the first one
    assert!(matches!(
        store.write_subscriptions(&api.org_id, &write).await,
        Err(StoreError::Conflict)
    ));
    let after = store.subscription_family(&api.org_id, "s").await.unwrap();
    assert_eq!(after.version, current.version);
    let ids: Vec<&str> = after
        .subscriptions
        .iter()
        .map(|r| r.lago_id.as_str())
        .collect();
    assert_eq!(ids, vec![created["lago_id"].as_str().unwrap()]);
}
