//! Pay-in-advance charges through the HTTP API (SEMANTICS §4.9): each event is billed when the
//! aggregate worker folds it, as an invoice of its own (invoiceable charge) or a standalone fee,
//! exactly once under SQS redelivery and under a worker crash between the fee and the usage
//! write. Amounts are the spec vectors: package (free 3, 100 USD per 2) with events 3, 1, 2 →
//! 0, 10000, 10000 cents; graduated (0–5 @0.02 + 0.01 flat, 6+ @0.01 + 0.01 flat) → 7, 2, 4.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use support::{
    Stack,
    faults::{Fault, Faults},
};

/// A subscription whose plan has two pay-in-advance charges: `pkg` (package, invoiceable) on
/// metric `<pkg>` and `grad` (graduated, not invoiceable) on metric `<grad>`.
struct Advance {
    pkg: String,
    grad: String,
    customer: String,
    subscription: String,
}

async fn advance_plan(stack: &Stack) -> Advance {
    let app = stack.app();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (pkg, grad) = (format!("pkg_{}", &id[..8]), format!("grad_{}", &id[..8]));
    for code in [&pkg, &grad] {
        let (s, b) = stack
            .call(
                &app,
                "POST",
                "/api/v1/billable_metrics",
                Some(json!({"billable_metric": {
                    "name": code, "code": code, "aggregation_type": "sum_agg", "field_name": "n"}})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    let plan = format!("p_{}", &id[..8]);
    let (s, b) = stack
        .call(
            &app,
            "POST",
            "/api/v1/plans",
            Some(json!({"plan": {
                "name": "Advance", "code": plan, "interval": "monthly", "amount_cents": 0,
                "amount_currency": "USD", "pay_in_advance": false, "charges": [
                    {"billable_metric_code": pkg, "charge_model": "package", "pay_in_advance": true,
                     "invoiceable": true,
                     "properties": {"amount": "100", "package_size": 2, "free_units": 3}},
                    {"billable_metric_code": grad, "charge_model": "graduated", "pay_in_advance": true,
                     "invoiceable": false,
                     "properties": {"graduated_ranges": [
                        {"from_value": 0, "to_value": 5, "per_unit_amount": "0.02", "flat_amount": "0.01"},
                        {"from_value": 6, "to_value": null, "per_unit_amount": "0.01", "flat_amount": "0.01"}]}}
                ]}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let customer = format!("cus_{}", &id[..8]);
    let (s, b) = stack
        .call(
            &app,
            "POST",
            "/api/v1/customers",
            Some(json!({"customer": {"external_id": customer}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let subscription = format!("sub_{}", &id[..8]);
    let started = chrono::Utc::now() - chrono::Duration::hours(1);
    let (s, b) = stack
        .call(
            &app,
            "POST",
            "/api/v1/subscriptions",
            Some(json!({"subscription": {
                "external_customer_id": customer, "plan_code": plan, "external_id": subscription,
                "subscription_at": started.format("%Y-%m-%dT%H:%M:%SZ").to_string()}})),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    Advance {
        pkg,
        grad,
        customer,
        subscription,
    }
}

/// Sends events 3, 1, 2 to each metric (transaction ids `<metric>-1..3`), package first.
async fn send_events(stack: &Stack, app: &axum::Router, a: &Advance) {
    for code in [&a.pkg, &a.grad] {
        for (i, n) in [3, 1, 2].into_iter().enumerate() {
            let body = json!({"event": {
                "transaction_id": format!("{code}-{}", i + 1),
                "external_subscription_id": a.subscription, "code": code,
                "properties": {"n": n}}});
            let (s, b) = stack.call(app, "POST", "/api/v1/events", Some(body)).await;
            assert_eq!(s, 200, "{b}");
        }
    }
}

/// The subscription's fees from `GET /fees`, as (event transaction id → fee object).
async fn fees_by_event(stack: &Stack, a: &Advance) -> std::collections::BTreeMap<String, Value> {
    let (s, b) = stack
        .call(
            &stack.app(),
            "GET",
            &format!(
                "/api/v1/fees?external_subscription_id={}&per_page=100",
                a.subscription
            ),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let mut out = std::collections::BTreeMap::new();
    for f in b["fees"].as_array().unwrap() {
        let tx = f["event_transaction_id"].as_str().unwrap().to_owned();
        assert!(
            out.insert(tx.clone(), f.clone()).is_none(),
            "one fee per event: {tx} twice"
        );
    }
    out
}

/// The subscription's invoices from `GET /invoices`.
async fn invoices(stack: &Stack, a: &Advance) -> Vec<Value> {
    let (s, b) = stack
        .call(
            &stack.app(),
            "GET",
            &format!(
                "/api/v1/invoices?external_customer_id={}&per_page=100",
                a.customer
            ),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b["invoices"].as_array().unwrap().clone()
}

/// What every test expects once the six events were processed, whatever went wrong on the way.
async fn assert_billed_once(stack: &Stack, a: &Advance) {
    let fees = fees_by_event(stack, a).await;
    assert_eq!(fees.len(), 6, "one fee per event: {fees:#?}");
    let expected = [
        // Package: 3 units are free; the 4th opens package 1, the 6th package 2.
        (format!("{}-1", a.pkg), "3.0", 0, true),
        (format!("{}-2", a.pkg), "1.0", 10000, true),
        (format!("{}-3", a.pkg), "2.0", 10000, true),
        // Graduated: 3 × 0.02 + 0.01; 4 × 0.02 + 0.01 − 0.07; 0.13 − 0.09.
        (format!("{}-1", a.grad), "3.0", 7, false),
        (format!("{}-2", a.grad), "1.0", 2, false),
        (format!("{}-3", a.grad), "2.0", 4, false),
    ];
    for (tx, units, cents, invoiceable) in expected {
        let f = &fees[&tx];
        assert_eq!(f["amount_cents"], cents, "{tx}: {f:#}");
        assert_eq!(f["units"], units, "{tx}");
        assert_eq!(f["pay_in_advance"], true, "{tx}");
        assert_eq!(f["invoiceable"], invoiceable, "{tx}");
        assert_eq!(f["events_count"], 1, "{tx}");
        assert_eq!(f["lago_invoice_id"].is_string(), invoiceable, "{tx}: {f:#}");
        // GET /fees/{id} shows the same fee.
        let (s, shown) = stack
            .call(
                &stack.app(),
                "GET",
                &format!("/api/v1/fees/{}", f["lago_id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(s, 200, "{shown}");
        assert_eq!(&shown["fee"], f, "{tx}");
    }
    // One finalized, numbered invoice per package event, and none for the graduated charge.
    let invoices = invoices(stack, a).await;
    assert_eq!(invoices.len(), 3, "{invoices:#?}");
    let mut totals: Vec<i64> = invoices
        .iter()
        .map(|i| i["fees_amount_cents"].as_i64().unwrap())
        .collect();
    totals.sort_unstable();
    assert_eq!(totals, vec![0, 10000, 10000]);
    let mut numbers: Vec<&str> = invoices
        .iter()
        .map(|i| i["number"].as_str().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 3, "distinct numbers: {numbers:?}");
    for i in &invoices {
        assert_eq!(i["status"], "finalized", "{i:#}");
        assert_eq!(i["invoice_type"], "subscription");
        assert!(
            !i["number"].as_str().unwrap().ends_with("DRAFT"),
            "{}",
            i["number"]
        );
        let id = i["lago_id"].as_str().unwrap();
        let (s, full) = stack
            .call(&stack.app(), "GET", &format!("/api/v1/invoices/{id}"), None)
            .await;
        assert_eq!(s, 200, "{full}");
        assert_eq!(
            full["invoice"]["billing_periods"][0]["invoicing_reason"],
            "in_advance_charge"
        );
        assert_eq!(full["invoice"]["fees"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn each_event_on_a_pay_in_advance_charge_is_billed_when_it_is_aggregated() {
    // Given a plan with an invoiceable package charge and a non-invoiceable graduated one,
    // both paid in advance.
    let stack = Stack::new("advance").await;
    let a = advance_plan(&stack).await;
    let app = stack.app();

    // When events 3, 1, 2 arrive on each, through the API, and the worker folds them.
    send_events(&stack, &app, &a).await;
    let (s, b) = stack.call(&app, "POST", "/_local/drain", None).await;
    assert_eq!(s, 200, "{b}");

    // Then each event has its fee (the spec's amounts): an invoice of its own for the
    // package charge, a standalone fee for the graduated one.
    assert_billed_once(&stack, &a).await;
}

#[tokio::test]
async fn a_redelivered_batch_bills_its_pay_in_advance_events_once() {
    // Given the six events accepted.
    let stack = Stack::new("advredeliver").await;
    let a = advance_plan(&stack).await;
    send_events(&stack, &stack.app(), &a).await;

    // When every batch reaches the worker twice before it is deleted.
    let deps = stack.aggregate_deps();
    loop {
        let (event, receipts) = stack.receive().await;
        if receipts.is_empty() {
            break;
        }
        for delivery in 0..2 {
            let response = aggregate::handler(&deps, event.clone()).await;
            assert!(
                response.batch_item_failures.is_empty(),
                "delivery {delivery} failed"
            );
        }
        stack.delete(&receipts).await;
    }

    // Then each event is billed once, at the amount of its first delivery.
    assert_billed_once(&stack, &a).await;
}

#[tokio::test]
async fn a_crash_between_the_fee_and_the_usage_write_is_repaired_by_the_redelivery() {
    // Given the six events accepted, in one batch.
    let stack = Stack::new("advcrash").await;
    let a = advance_plan(&stack).await;
    send_events(&stack, &stack.app(), &a).await;
    let (event, receipts) = stack.receive().await;
    assert_eq!(receipts.len(), 6, "the six events fit one batch");

    // When the worker dies after billing the second event and before storing its usage: the
    // first usage write goes through, the second never leaves.
    let faults = Arc::new(Faults::default());
    faults.add("PutItem", 1, 1, Fault::FailBeforeSend);
    let crashing = aggregate::Deps::new(
        stack.store.clone(),
        billing_aws::usage::UsageStore::with_client(
            support::dynamo_with(&stack.sdk, faults.clone()),
            &stack.usage_table,
        ),
    );
    let response = aggregate::handler(&crashing, event.clone()).await;
    assert_eq!(faults.injected(), 1, "{:?}", faults.calls());
    assert_eq!(response.batch_item_failures.len(), 6);
    let fees = fees_by_event(&stack, &a).await;
    assert_eq!(
        fees.len(),
        2,
        "the crash came after the second fee: {fees:#?}"
    );

    // And SQS redelivers the batch to a healthy worker.
    let response = aggregate::handler(&stack.aggregate_deps(), event).await;
    assert!(response.batch_item_failures.is_empty());
    stack.delete(&receipts).await;

    // Then every event is billed once, priced against the usage before it.
    assert_billed_once(&stack, &a).await;
}
