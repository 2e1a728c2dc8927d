//! `POST /events/estimate_fees` through the HTTP API against the AWS emulator: the fees an
//! event would create on the plan's pay-in-advance charges, priced against the usage already
//! aggregated in the period (events in through `POST /events`, folded by the real aggregate
//! worker behind `POST /_local/drain`), and nothing written.
//!
//! Every expected figure is worked out by hand from SEMANTICS §4.9 (instant fee = price with
//! the event − price without it, the "without" pass pricing 0 units at 0) and §8.4 (charge
//! taxes win over the organization's). The clock is frozen at `NOW` (20 March 2024, noon UTC)
//! and subscriptions start on 1 March, so the charges period is March 2024:
//! 2024-03-01T00:00:00Z to 2024-03-31T23:59:59Z.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod metering_support;

use http::{Method, StatusCode};
use metering_support::{Stack, charge_usage, figures, not_found, ts, uniq, unprocessable};
use serde_json::{Value, json};

const NOW: &str = "2024-03-20T12:00:00Z";
const MARCH_1: &str = "2024-03-01T00:00:00Z";
const ESTIMATE: &str = "/api/v1/events/estimate_fees";

/// A pay-in-advance charge `code` of `model` on `metric` (its Lago object).
fn in_advance(code: &str, metric: &Value, model: &str, properties: Value) -> Value {
    json!({"code": code, "billable_metric_id": metric["lago_id"], "charge_model": model,
           "pay_in_advance": true, "invoiceable": true, "properties": properties})
}

/// `POST /events/estimate_fees` of `event`, failing unless it answers 200; the fees by charge
/// code (`lago_charge_id` mapped through `charges`, the plan's charges).
async fn estimate(stack: &Stack, event: Value) -> Vec<Value> {
    stack
        .post(ESTIMATE, json!({ "event": event }))
        .await
        .ok("fees")
        .as_array()
        .unwrap_or_else(|| panic!("fees is not an array"))
        .clone()
}

/// The fee of the charge whose Lago id is `charge_id`.
fn fee_of<'a>(fees: &'a [Value], charge_id: &Value) -> &'a Value {
    fees.iter()
        .find(|f| &f["lago_charge_id"] == charge_id)
        .unwrap_or_else(|| panic!("no fee of charge {charge_id} in {fees:#?}"))
}

/// The Lago id of the plan's charge `code`.
fn charge_id(plan: &Value, code: &str) -> Value {
    plan["charges"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["code"] == code))
        .map(|c| c["lago_id"].clone())
        .unwrap_or_else(|| panic!("no charge {code} in {plan:#}"))
}

/// `(units, amount_cents, taxes_amount_cents, total_amount_cents)` of a fee.
fn amounts(fee: &Value) -> (String, i64, i64, i64) {
    (
        fee["units"].as_str().unwrap_or_default().to_owned(),
        fee["amount_cents"].as_i64().unwrap_or(i64::MIN),
        fee["taxes_amount_cents"].as_i64().unwrap_or(i64::MIN),
        fee["total_amount_cents"].as_i64().unwrap_or(i64::MIN),
    )
}

/// A sum metric `gb`; a plan with a graduated and a package pay-in-advance charge on it, and a
/// standard charge in arrears; a 10 % organization tax and a 20 % tax on the package charge.
struct Given {
    stack: Stack,
    code: String,
    metric: Value,
    sub: String,
    customer: String,
    graduated: Value,
    package: Value,
}

impl Given {
    async fn new() -> Given {
        let stack = Stack::start_at(NOW).await;
        let code = uniq("gb");
        let metric = stack
            .metric(&code, "sum_agg", json!({"field_name": "gb"}))
            .await;
        stack
            .create(
                "taxes",
                "tax",
                json!({"name": "VAT", "code": "vat10", "rate": "10",
                       "applied_to_organization": true}),
            )
            .await;
        stack
            .create(
                "taxes",
                "tax",
                json!({"name": "Package tax", "code": "pkg20", "rate": "20"}),
            )
            .await;
        let plan_code = uniq("plan");
        let mut package = in_advance(
            "package",
            &metric,
            "package",
            json!({"amount": "100", "package_size": 2, "free_units": 3}),
        );
        package["tax_codes"] = json!(["pkg20"]);
        let plan = stack
            .plan(
                &plan_code,
                json!([
                    in_advance("graduated", &metric, "graduated", json!({"graduated_ranges": [
                        {"from_value": 0, "to_value": 5, "per_unit_amount": "0.02", "flat_amount": "0.01"},
                        {"from_value": 6, "to_value": null, "per_unit_amount": "0.01", "flat_amount": "0.01"}
                    ]})),
                    package,
                    {"code": "arrears", "billable_metric_id": metric["lago_id"],
                     "charge_model": "standard", "properties": {"amount": "1"}},
                ]),
            )
            .await;
        let (customer, sub) = stack.subscribe(&plan_code, MARCH_1).await;
        Given {
            graduated: charge_id(&plan, "graduated"),
            package: charge_id(&plan, "package"),
            stack,
            code,
            metric,
            sub,
            customer,
        }
    }

    fn event(&self, gb: i64) -> Value {
        json!({"external_subscription_id": self.sub, "code": self.code,
               "properties": {"gb": gb}})
    }

    /// Sends `gb` for real (a fresh transaction id, stamped on 10 March) and aggregates it.
    async fn ingest(&self, gb: i64) {
        let mut e = self.event(gb);
        e["transaction_id"] = json!(uniq("tr"));
        e["timestamp"] = json!(ts("2024-03-10T00:00:00Z"));
        self.stack.event(e).await;
        self.stack.drain().await;
    }
}

#[tokio::test]
async fn each_pay_in_advance_charge_is_estimated_against_the_usage_already_aggregated() {
    // Given the graduated charge (0–5 @0.02 + 0.01 flat, 6+ @0.01 + 0.01 flat) and the package
    // charge (100 USD per 2 GB, 3 GB free) on one metric, no usage yet
    let given = Given::new().await;

    // When 3 GB are estimated, sent; 1 GB estimated, sent; 2 GB estimated (SEMANTICS §4.9)
    let first = estimate(&given.stack, given.event(3)).await;
    given.ingest(3).await;
    let second = estimate(&given.stack, given.event(1)).await;
    given.ingest(1).await;
    let third = estimate(&given.stack, given.event(2)).await;

    // Then one fee per pay-in-advance charge (the charge in arrears has none)
    for fees in [&first, &second, &third] {
        assert_eq!(fees.len(), 2, "{fees:#?}");
    }
    // Graduated: 3 GB cost 3 × 0.02 + 0.01 = 0.07 against 0 before → 7 cents; 4 GB cost 0.09
    // → 2 cents; 6 GB cost 0.11 + 1 × 0.01 + 0.01 = 0.13 → 4 cents. Organization tax 10 %:
    // 0.7 → 1, 0.2 → 0, 0.4 → 0.
    // Package: packages ceil((3−3)/2) = 0, ceil((4−3)/2) = 1, ceil((6−3)/2) = 2 → 0, 100,
    // 100 USD; its own 20 % tax wins over the organization's: 0, 2000, 2000.
    let expected = [
        (&first, ("3.0", 7, 1), ("3.0", 0, 0)),
        (&second, ("1.0", 2, 0), ("1.0", 10000, 2000)),
        (&third, ("2.0", 4, 0), ("2.0", 10000, 2000)),
    ];
    for (i, (fees, graduated, package)) in expected.into_iter().enumerate() {
        let g = amounts(fee_of(fees, &given.graduated));
        let p = amounts(fee_of(fees, &given.package));
        assert_eq!(
            g,
            (
                graduated.0.to_owned(),
                graduated.1,
                graduated.2,
                graduated.1 + graduated.2
            ),
            "graduated, estimate {i}"
        );
        assert_eq!(
            p,
            (
                package.0.to_owned(),
                package.1,
                package.2,
                package.1 + package.2
            ),
            "package, estimate {i}"
        );
    }

    // And each fee is a Lago FeeObject of a fee that was never stored
    let fee = fee_of(&second, &given.package);
    assert_eq!(fee["lago_id"], Value::Null);
    assert_eq!(fee["lago_invoice_id"], Value::Null);
    assert_eq!(fee["created_at"], Value::Null);
    assert_eq!(fee["amount_currency"], "USD");
    assert_eq!(fee["events_count"], 1);
    assert_eq!(fee["pay_in_advance"], true);
    assert_eq!(fee["payment_status"], "pending");
    assert_eq!(fee["from_date"], "2024-03-01T00:00:00Z");
    assert_eq!(fee["to_date"], "2024-03-31T23:59:59Z");
    assert_eq!(fee["external_subscription_id"], given.sub.as_str());
    assert_eq!(fee["external_customer_id"], given.customer.as_str());
    assert_eq!(fee["taxes_rate"], 20);
    assert_eq!(fee["applied_taxes"][0]["tax_code"], "pkg20");
    assert_eq!(fee["applied_taxes"][0]["amount_cents"], 2000);
    let item = &fee["item"];
    assert_eq!(item["type"], "charge");
    assert_eq!(item["code"], given.code.as_str());
    assert_eq!(item["name"], given.code.as_str());
    assert_eq!(item["invoice_display_name"], given.code.as_str());
    assert_eq!(item["lago_item_id"], given.metric["lago_id"]);
    assert_eq!(item["item_type"], "BillableMetric");
}

#[tokio::test]
async fn an_estimate_writes_nothing() {
    // Given 3 GB aggregated, and the usage they make
    let given = Given::new().await;
    given.ingest(3).await;
    let before = given.stack.usage(&given.customer, &given.sub).await;
    // 3 GB in arrears at 1 USD = 300 cents (the pay-in-advance charges show their usage too)
    assert_eq!(
        figures(charge_usage(&before, "arrears")),
        ("3.0".to_owned(), 300, 1)
    );

    // When 5 GB with a transaction id are estimated, twice
    let transaction_id = uniq("tr");
    let mut e = given.event(5);
    e["transaction_id"] = json!(transaction_id);
    let once = estimate(&given.stack, e.clone()).await;
    let twice = estimate(&given.stack, e.clone()).await;

    // Then the estimate is the same each time (nothing was counted in between), it names the
    // transaction, no event is stored under that id, and the usage has not moved
    assert_eq!(once, twice);
    assert_eq!(
        fee_of(&once, &given.package)["event_transaction_id"],
        transaction_id.as_str()
    );
    assert_eq!(
        given.stack.event_status(&transaction_id).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(given.stack.usage(&given.customer, &given.sub).await, before);

    // And the same event can still be sent, once, as a new event: 3 + 5 = 8 GB → 800 cents
    given.stack.event(e).await;
    let after = given.stack.usage(&given.customer, &given.sub).await;
    assert_eq!(
        figures(charge_usage(&after, "arrears")),
        ("8.0".to_owned(), 800, 2)
    );
}

#[tokio::test]
async fn an_event_is_estimated_on_its_most_specific_charge_filter() {
    // Given a metric filtered by region and disk, and a pay-in-advance standard charge at
    // 1 USD per GB, 3 USD in `eu` and 5 USD in `eu` on `ssd`
    let stack = Stack::start_at(NOW).await;
    let code = uniq("gb");
    let metric = stack
        .metric(
            &code,
            "sum_agg",
            json!({"field_name": "gb", "filters": [
                {"key": "region", "values": ["eu", "us"]},
                {"key": "disk", "values": ["ssd", "hdd"]}
            ]}),
        )
        .await;
    let mut charge = in_advance("storage", &metric, "standard", json!({"amount": "1"}));
    charge["filters"] = json!([
        {"values": {"region": ["eu"]}, "properties": {"amount": "3"},
         "invoice_display_name": "Europe"},
        {"values": {"region": ["eu"], "disk": ["ssd"]}, "properties": {"amount": "5"},
         "invoice_display_name": "Europe SSD"}
    ]);
    let plan_code = uniq("plan");
    stack.plan(&plan_code, json!([charge])).await;
    let (_, sub) = stack.subscribe(&plan_code, MARCH_1).await;
    let event = |properties: Value| {
        json!({"external_subscription_id": sub, "code": code,
                                            "properties": properties})
    };

    // When 2 GB are estimated in eu/ssd, eu/hdd and us
    let cases = [
        (
            json!({"gb": 2, "region": "eu", "disk": "ssd"}),
            1000,
            json!({"region": ["eu"], "disk": ["ssd"]}),
            json!("Europe SSD"),
        ),
        (
            json!({"gb": 2, "region": "eu", "disk": "hdd"}),
            600,
            json!({"region": ["eu"]}),
            json!("Europe"),
        ),
        (
            json!({"gb": 2, "region": "us"}),
            200,
            Value::Null,
            Value::Null,
        ),
    ];
    // Then eu/ssd takes the two-key filter (2 × 5 USD), eu/hdd the `eu` filter (2 × 3 USD),
    // and us the charge's own price (2 × 1 USD), each one fee naming its filter
    for (properties, cents, filters, name) in cases {
        let fees = estimate(&stack, event(properties.clone())).await;
        assert_eq!(fees.len(), 1, "{properties}: {fees:#?}");
        assert_eq!(fees[0]["amount_cents"], cents, "{properties}");
        assert_eq!(fees[0]["item"]["filters"], filters, "{properties}");
        assert_eq!(
            fees[0]["item"]["filter_invoice_display_name"], name,
            "{properties}"
        );
    }
}

#[tokio::test]
async fn bad_estimates_get_lago_errors() {
    // Given the plan of `Given` and a second metric priced only in arrears
    let given = Given::new().await;
    let arrears_only = uniq("calls");
    let metric = given
        .stack
        .metric(&arrears_only, "count_agg", json!({}))
        .await;
    let plan_code = uniq("plan");
    given
        .stack
        .plan(
            &plan_code,
            json!([{"code": "calls", "billable_metric_id": metric["lago_id"],
                    "charge_model": "standard", "properties": {"amount": "1"}}]),
        )
        .await;
    let (_, arrears_sub) = given.stack.subscribe(&plan_code, MARCH_1).await;
    let without = |field: &str| {
        let mut e = given.event(1);
        e.as_object_mut().unwrap().remove(field);
        json!({ "event": e })
    };
    let with = |field: &str, value: Value| {
        let mut e = given.event(1);
        e[field] = value;
        json!({ "event": e })
    };

    let cases: Vec<(&str, Value, u16, Value)> = vec![
        (
            "no root key",
            json!({"code": given.code}),
            400,
            json!({"status": 400,
                   "error": "BadRequest: param is missing or the value is empty or invalid: event"}),
        ),
        (
            "no code",
            without("code"),
            422,
            unprocessable(json!({"code": ["value_is_mandatory"]})),
        ),
        (
            "no external_subscription_id",
            without("external_subscription_id"),
            422,
            unprocessable(json!({"external_subscription_id": ["value_is_mandatory"]})),
        ),
        (
            "a timestamp that is not Unix seconds",
            with("timestamp", json!("yesterday")),
            422,
            unprocessable(json!({"timestamp": ["invalid_format"]})),
        ),
        (
            "an unknown subscription",
            with("external_subscription_id", json!(uniq("sub"))),
            404,
            not_found("subscription"),
        ),
        (
            "an unknown metric",
            with("code", json!(uniq("nope"))),
            404,
            not_found("billable_metric"),
        ),
        (
            "a value that is not a number",
            with("properties", json!({"gb": "lots"})),
            422,
            unprocessable(json!({"properties.gb": ["value_is_not_a_number"]})),
        ),
        (
            "a metric with no pay-in-advance charge on the plan",
            json!({"event": {"external_subscription_id": arrears_sub, "code": arrears_only}}),
            422,
            unprocessable(json!({"code": ["does_not_match_an_instant_charge"]})),
        ),
    ];
    for (case, body, status, error) in cases {
        given
            .stack
            .post(ESTIMATE, body)
            .await
            .assert_error(status, &error, case);
    }

    // And the literal route answers only POST: other methods are Lago's JSON 405 (a GET is
    // not a lookup of an event called `estimate_fees`)
    let not_allowed =
        json!({"status": 405, "error": "Method Not Allowed", "code": "method_not_allowed"});
    for method in [Method::GET, Method::PUT, Method::DELETE] {
        given
            .stack
            .send(method.clone(), ESTIMATE, None)
            .await
            .assert_error(405, &not_allowed, method.as_str());
    }
}
