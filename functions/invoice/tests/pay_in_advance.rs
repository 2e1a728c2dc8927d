//! Pay-in-advance charges across periods (SEMANTICS §4.9), with the billing clock fired at
//! chosen instants: instant invoices as events arrive, nothing more at period end for a metered
//! metric, and a recurring metric billed again in full on each periodic invoice. The seat
//! amounts are lago-api's `spec/scenarios/fees/recurring_fees_spec.rb` (30 €/seat, June 2024).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use http::Method;
use serde_json::{Value, json};
use support::Scenario;

/// The invoices with `reason` as their invoicing reason, by issuing date.
fn with_reason<'a>(invoices: &'a [Value], reason: &str) -> Vec<&'a Value> {
    let mut out: Vec<&Value> = invoices
        .iter()
        .filter(|i| i["billing_periods"][0]["invoicing_reason"] == reason)
        .collect();
    out.sort_by_key(|i| i["issuing_date"].as_str().unwrap_or("").to_owned());
    out
}

/// The charge fees of an invoice.
fn charge_fees(invoice: &Value) -> Vec<&Value> {
    invoice["fees"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["item"]["type"] == "charge")
        .collect()
}

#[tokio::test]
async fn recurring_seats_are_billed_prorated_when_added_and_in_full_at_each_renewal() {
    // Given a recurring sum of seats, charged 30 € per seat in advance, prorated, on a monthly
    // calendar plan started on June 1, 2024.
    let s = Scenario::start("Seats").await;
    s.ok(
        Method::POST,
        "/billable_metrics",
        Some(json!({"billable_metric": {"name": "Seats", "code": "seats",
            "aggregation_type": "sum_agg", "field_name": "seats", "recurring": true}})),
    )
    .await;
    s.ok(
        Method::POST,
        "/plans",
        Some(
            json!({"plan": {"name": "Team", "code": "team", "interval": "monthly",
            "amount_cents": 0, "amount_currency": "EUR", "pay_in_advance": false,
            "charges": [{"billable_metric_code": "seats", "charge_model": "standard",
                "pay_in_advance": true, "prorated": true, "invoiceable": true,
                "properties": {"amount": "30"}}]}}),
        ),
    )
    .await;
    s.now("2024-06-01T00:00:00Z");
    s.customer("acme", "UTC", None).await;
    s.subscribe("sub", "acme", "team", "calendar", "2024-06-01T00:00:00Z")
        .await;

    // When 4 seats are added on June 1 and one on June 11.
    s.event("sub", "seats", "2024-06-01T10:00:00Z", &[("seats", "4")])
        .await;
    s.event("sub", "seats", "2024-06-11T10:00:00Z", &[("seats", "1")])
        .await;

    // Then each addition is invoiced at once, prorated over the days left (the event day
    // counts): 4 × 30 € × 30/30 = 12000, 1 × 30 € × 20/30 = 2000.
    let invoices = s.invoices_of("sub").await;
    let instant: Vec<i64> = with_reason(&invoices, "in_advance_charge")
        .iter()
        .map(|i| i["fees_amount_cents"].as_i64().unwrap())
        .collect();
    assert_eq!(instant, vec![12000, 2000]);

    // When June closes.
    s.bill("2024-07-01T00:00:00Z").await;

    // Then the periodic invoice bills the 5 seats in full, at full price, for July:
    // 5 × 30 € = 15000.
    let invoices = s.invoices_of("sub").await;
    let periodic = with_reason(&invoices, "subscription_periodic");
    assert_eq!(periodic.len(), 1, "{invoices:#?}");
    let fees = charge_fees(periodic[0]);
    assert_eq!(fees.len(), 1, "{:#}", periodic[0]);
    assert_eq!(fees[0]["amount_cents"], 15000);
    assert_eq!(fees[0]["units"], "5.0");
    assert_eq!(fees[0]["pay_in_advance"], true);
    assert_eq!(fees[0]["from_date"], "2024-07-01T00:00:00Z");
    assert_eq!(fees[0]["to_date"], "2024-07-31T23:59:59Z");

    // When 2 seats are added on July 15, then July closes.
    s.event("sub", "seats", "2024-07-15T10:00:00Z", &[("seats", "2")])
        .await;
    s.bill("2024-08-01T00:00:00Z").await;

    // Then the addition cost 2 × 30 € × 17/31 = 32.90 € (3290), and August renews the 7 seats
    // in full: 7 × 30 € = 21000.
    let invoices = s.invoices_of("sub").await;
    let instant: Vec<i64> = with_reason(&invoices, "in_advance_charge")
        .iter()
        .map(|i| i["fees_amount_cents"].as_i64().unwrap())
        .collect();
    assert_eq!(instant, vec![12000, 2000, 3290]);
    let periodic = with_reason(&invoices, "subscription_periodic");
    assert_eq!(periodic.len(), 2);
    let august = charge_fees(periodic[1]);
    assert_eq!(august.len(), 1, "{:#}", periodic[1]);
    assert_eq!(august[0]["amount_cents"], 21000);
    assert_eq!(august[0]["units"], "7.0");
    for i in &invoices {
        assert_eq!(i["status"], "finalized", "{i:#}");
    }
}

#[tokio::test]
async fn a_metered_pay_in_advance_charge_is_not_billed_again_at_period_end() {
    // Given 0.50 € per call, paid in advance, on a monthly calendar plan (1000 cents in
    // arrears) started on June 1, 2024.
    let mut s = Scenario::start("Calls").await;
    s.metric("calls").await;
    s.ok(
        Method::POST,
        "/plans",
        Some(
            json!({"plan": {"name": "Api", "code": "api", "interval": "monthly",
            "amount_cents": 1000, "amount_currency": "EUR", "pay_in_advance": false,
            "charges": [{"billable_metric_code": "calls", "charge_model": "standard",
                "pay_in_advance": true, "properties": {"amount": "0.5"}}]}}),
        ),
    )
    .await;
    s.now("2024-06-01T00:00:00Z");
    s.customer("acme", "UTC", None).await;
    s.subscribe("sub", "acme", "api", "calendar", "2024-06-01T00:00:00Z")
        .await;

    // When three calls happen in June, then June closes.
    for day in ["03", "10", "20"] {
        s.event("sub", "calls", &format!("2024-06-{day}T12:00:00Z"), &[])
            .await;
    }
    s.bill("2024-07-01T00:00:00Z").await;

    // Then each call was invoiced at once (50 cents), and the periodic invoice holds the
    // subscription fee only: the calls are not billed a second time.
    let invoices = s.invoices_of("sub").await;
    let instant: Vec<i64> = with_reason(&invoices, "in_advance_charge")
        .iter()
        .map(|i| i["fees_amount_cents"].as_i64().unwrap())
        .collect();
    assert_eq!(instant, vec![50, 50, 50]);
    let periodic = with_reason(&invoices, "subscription_periodic");
    assert_eq!(periodic.len(), 1);
    assert!(charge_fees(periodic[0]).is_empty(), "{:#}", periodic[0]);
    assert_eq!(periodic[0]["fees_amount_cents"], 1000);
}
