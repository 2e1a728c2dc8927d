//! The parts of `InvoiceObjectExtended` that link an invoice to the rest of the catalog: each
//! charge fee names the charge filter it bills (`lago_charge_filter_id`), and the invoice lists
//! its subscription (`subscriptions`), on the API and in the events the worker publishes.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use http::Method;
use serde_json::{Value, json};
use support::{Scenario, subscription_fee};

/// The charge fees of `invoice`, keyed by their filter display name (`default` when unfiltered).
fn charge_fees(invoice: &Value) -> Vec<(String, &Value)> {
    let mut out: Vec<(String, &Value)> = invoice["fees"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["item"]["type"] == "charge")
        .map(|f| {
            let name = f["item"]["filter_invoice_display_name"]
                .as_str()
                .unwrap_or("default")
                .to_owned();
            (name, f)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn is_uuid(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36)
}

#[tokio::test]
async fn filter_fees_name_their_filter_and_invoices_list_their_subscription() {
    // Given a metric `api` filtered by region, and a monthly plan (1000 cents in arrears) whose
    // charge prices `eu` at 2.00, `us` at 3.00 and anything else at 1.00.
    let s = Scenario::start("Filters").await;
    let metric = s
        .ok(
            Method::POST,
            "/billable_metrics",
            Some(json!({"billable_metric": {
                "name": "api", "code": "api", "aggregation_type": "count_agg",
                "filters": [{"key": "region", "values": ["eu", "us"]}],
            }})),
        )
        .await["billable_metric"]["lago_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.ok(
        Method::POST,
        "/plans",
        Some(json!({"plan": {
            "name": "p", "code": "p", "interval": "monthly", "amount_cents": 1000,
            "amount_currency": "EUR", "pay_in_advance": false,
            "charges": [{
                "billable_metric_id": metric, "charge_model": "standard",
                "properties": {"amount": "1"},
                "filters": [
                    {"invoice_display_name": "EU", "properties": {"amount": "2"},
                     "values": {"region": ["eu"]}},
                    {"invoice_display_name": "US", "properties": {"amount": "3"},
                     "values": {"region": ["us"]}},
                ],
            }],
        }})),
    )
    .await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-01-01T00:00:00Z");
    s.subscribe("sub", "cus", "p", "calendar", "2024-01-01T00:00:00Z")
        .await;
    // One event per region, and one without a region, in January and in February.
    for at in ["2024-01-10T12:00:00Z", "2024-02-10T12:00:00Z"] {
        s.event("sub", "api", at, &[("region", "eu")]).await;
        s.event("sub", "api", at, &[("region", "us")]).await;
        s.event("sub", "api", at, &[]).await;
    }
    s.bill("2024-02-01T00:00:00Z").await;
    s.bill("2024-03-01T00:00:00Z").await;

    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 2);
    let mut ids = Vec::new();
    for invoice in &invoices {
        // A full month in arrears: 1000; one event per bucket: 100 + 200 + 300.
        assert_eq!(subscription_fee(invoice).0, 1000);
        let fees = charge_fees(invoice);
        let names: Vec<&str> = fees.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["EU", "US", "default"]);
        let amounts: Vec<i64> = fees
            .iter()
            .map(|(_, f)| f["amount_cents"].as_i64().unwrap())
            .collect();
        assert_eq!(amounts, [200, 300, 100]);
        let (eu, us, default) = (fees[0].1, fees[1].1, fees[2].1);
        assert!(is_uuid(&eu["lago_charge_filter_id"]), "{eu:#}");
        assert!(is_uuid(&us["lago_charge_filter_id"]), "{us:#}");
        assert_ne!(eu["lago_charge_filter_id"], us["lago_charge_filter_id"]);
        // Events matching no filter are billed by the charge itself, not by a filter.
        assert_eq!(default["lago_charge_filter_id"], Value::Null);
        assert_eq!(eu["lago_charge_id"], default["lago_charge_id"]);
        ids.push((
            eu["lago_charge_filter_id"].clone(),
            us["lago_charge_filter_id"].clone(),
        ));

        // The invoice lists its subscription, as the subscriptions API shows it.
        let subs = invoice["subscriptions"].as_array().unwrap();
        assert_eq!(subs.len(), 1, "{invoice:#}");
        assert_eq!(subs[0]["external_id"], "sub");
        assert_eq!(subs[0]["plan_code"], "p");
        assert_eq!(subs[0]["status"], "active");
        assert_eq!(
            subs[0]["lago_id"],
            invoice["billing_periods"][0]["lago_subscription_id"]
        );
    }
    // A filter keeps its id from one period to the next.
    assert_eq!(ids[0], ids[1]);

    // The events the worker published carry the same object.
    let created: Vec<Value> = s
        .bus_events()
        .await
        .into_iter()
        .filter(|e| e["webhook_type"] == "invoice.created")
        .collect();
    assert_eq!(created.len(), 2);
    for e in &created {
        let object = &e["object"];
        assert_eq!(object["subscriptions"][0]["external_id"], "sub");
        let filter_ids: Vec<&Value> = object["fees"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["item"]["filter_invoice_display_name"] == "EU")
            .map(|f| &f["lago_charge_filter_id"])
            .collect();
        assert_eq!(filter_ids, [&ids[0].0]);
    }
}
