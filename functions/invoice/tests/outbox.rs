//! The API's domain events survive a bus that is down: each state change is written with an
//! outbox entry of its event, and what a failed publish leaves there is published once, under
//! the same unique key, by the client's retry or by the next billing clock run (the invoice
//! worker is the outbox's sweeper).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use billing::invoice::Invoice;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::Scenario;

/// A scenario whose API publishes on the bus, with a monthly plan `basic` (3100 cents in
/// arrears) and a customer `cus` with `grace_days` of grace period.
async fn scenario(name: &str, grace_days: Option<i64>) -> Scenario {
    let s = Scenario::start_with_api_bus(name).await;
    s.plan("basic", "monthly", 3100, false, json!({}), &[])
        .await;
    s.customer("cus", "UTC", grace_days).await;
    s
}

/// The `(unique_key, invoice lago_id)` of the `webhook_type` events that reached the bus since
/// the last look.
async fn invoice_events(s: &Scenario, webhook_type: &str) -> Vec<(String, String)> {
    s.bus_events()
        .await
        .into_iter()
        .filter(|e| e["webhook_type"] == webhook_type)
        .map(|e| {
            (
                e["unique_key"].as_str().unwrap().to_owned(),
                e["object"]["lago_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The unique key of `webhook_type` for invoice `id` as stored now (the version its last
/// change wrote).
async fn expected_key(s: &Scenario, id: &str, webhook_type: &str) -> String {
    let record = s.store.get::<Invoice>(&s.org_id, id).await.unwrap();
    invoicing::invoice_events::unique_key(id, webhook_type, record.version)
}

/// A draft of January for subscription `sub`, with every event so far taken off the bus.
async fn january_draft(s: &Scenario) -> String {
    s.now("2024-01-01T00:00:00Z");
    s.subscribe("sub", "cus", "basic", "calendar", "2024-01-01T00:00:00Z")
        .await;
    s.bill("2024-02-01T00:00:00Z").await;
    let draft = &s.invoices_of("sub").await[0];
    assert_eq!(draft["status"], "draft");
    s.bus_events().await;
    draft["lago_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_finalize_whose_publish_failed_is_published_once_by_the_clients_retry() {
    // Given a draft, and the bus down.
    let s = scenario("Retry", Some(3)).await;
    let id = january_draft(&s).await;
    s.now("2024-02-01T10:00:00Z");
    s.bus.set_down(true);
    // When it is finalized: the invoice is finalized, its event could not be published, and
    // the client is told to retry.
    let (status, body) = s
        .call(Method::PUT, &format!("/invoices/{id}/finalize"), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:#}");
    assert!(s.bus.refused() > 0, "the publish was attempted and failed");
    s.bus.set_down(false);
    assert_eq!(invoice_events(&s, "invoice.created").await, vec![]);
    // Then the retry answers the finalized invoice and publishes `invoice.created` once.
    let retried = s
        .ok(Method::PUT, &format!("/invoices/{id}/finalize"), None)
        .await;
    assert_eq!(retried["invoice"]["status"], "finalized");
    assert_eq!(retried["invoice"]["sequential_id"], 1);
    let key = expected_key(&s, &id, "invoice.created").await;
    assert_eq!(
        invoice_events(&s, "invoice.created").await,
        vec![(key, id.clone())]
    );
    // And nothing publishes it again: a third finalize is a 404 (only drafts are finalized),
    // the clock finds an empty outbox.
    let (status, _) = s
        .call(Method::PUT, &format!("/invoices/{id}/finalize"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.bill("2024-02-01T11:00:00Z").await;
    assert_eq!(invoice_events(&s, "invoice.created").await, vec![]);
}

#[tokio::test]
async fn a_finalize_whose_publish_failed_is_published_once_by_the_next_clock_run() {
    // Given a draft finalized while the bus was down, and a client that never retries.
    let s = scenario("Sweep", Some(3)).await;
    let id = january_draft(&s).await;
    s.now("2024-02-01T10:00:00Z");
    s.bus.set_down(true);
    let (status, _) = s
        .call(Method::PUT, &format!("/invoices/{id}/finalize"), None)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    s.bus.set_down(false);
    assert_eq!(invoice_events(&s, "invoice.created").await, vec![]);
    // When the billing clock runs at the next hour.
    s.bill("2024-02-01T11:00:00Z").await;
    // Then `invoice.created` is published once, under the key of the finalization.
    let key = expected_key(&s, &id, "invoice.created").await;
    assert_eq!(
        invoice_events(&s, "invoice.created").await,
        vec![(key, id.clone())]
    );
    // And never again: not by the next runs (the grace period end included), not by a retry.
    s.bill("2024-02-01T12:00:00Z").await;
    s.bill("2024-02-04T00:00:00Z").await;
    assert_eq!(invoice_events(&s, "invoice.created").await, vec![]);
    let (status, _) = s
        .call(Method::PUT, &format!("/invoices/{id}/finalize"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(invoice_events(&s, "invoice.created").await, vec![]);
}

#[tokio::test]
async fn a_void_whose_publish_failed_is_published_once_by_the_next_clock_run_or_the_retry() {
    // Given two finalized invoices (no grace period) of two subscriptions.
    let s = scenario("Void", None).await;
    s.now("2024-01-01T00:00:00Z");
    for sub in ["a", "b"] {
        s.subscribe(sub, "cus", "basic", "calendar", "2024-01-01T00:00:00Z")
            .await;
    }
    s.bill("2024-02-01T00:00:00Z").await;
    let a = s.invoices_of("a").await[0]["lago_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = s.invoices_of("b").await[0]["lago_id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.bus_events().await;
    // When both are voided while the bus is down.
    s.now("2024-02-01T10:00:00Z");
    s.bus.set_down(true);
    for id in [&a, &b] {
        let (status, _) = s
            .call(Method::POST, &format!("/invoices/{id}/void"), None)
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
    s.bus.set_down(false);
    assert_eq!(invoice_events(&s, "invoice.voided").await, vec![]);
    // Then the retry of one answers the voided invoice and publishes its event.
    let retried = s
        .ok(Method::POST, &format!("/invoices/{a}/void"), None)
        .await;
    assert_eq!(retried["invoice"]["status"], "voided");
    let key_a = expected_key(&s, &a, "invoice.voided").await;
    assert_eq!(
        invoice_events(&s, "invoice.voided").await,
        vec![(key_a, a.clone())]
    );
    // And the next clock run publishes the other's (whose client never retried), once.
    s.bill("2024-02-01T11:00:00Z").await;
    let key_b = expected_key(&s, &b, "invoice.voided").await;
    assert_eq!(
        invoice_events(&s, "invoice.voided").await,
        vec![(key_b, b.clone())]
    );
    // Nothing is published again: a void of a voided invoice is refused (405).
    s.bill("2024-02-01T12:00:00Z").await;
    for id in [&a, &b] {
        let (status, _) = s
            .call(Method::POST, &format!("/invoices/{id}/void"), None)
            .await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    }
    assert_eq!(invoice_events(&s, "invoice.voided").await, vec![]);
}

/// The `(webhook_type, unique_key, subscription lago_id)` of the subscription events that
/// reached the bus since the last look.
async fn subscription_events(s: &Scenario) -> Vec<(String, String, String)> {
    s.bus_events()
        .await
        .into_iter()
        .filter(|e| e["object_type"] == "subscription")
        .map(|e| {
            (
                e["webhook_type"].as_str().unwrap().to_owned(),
                e["unique_key"].as_str().unwrap().to_owned(),
                e["object"]["lago_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn started(subscription: &Value) -> (String, String, String) {
    let id = subscription["lago_id"].as_str().unwrap();
    (
        "subscription.started".to_owned(),
        invoicing::subscription_events::unique_key(id, "subscription.started"),
        id.to_owned(),
    )
}

#[tokio::test]
async fn a_subscription_created_while_the_bus_is_down_is_started_once_by_the_retry_or_the_clock() {
    let s = scenario("Subs", None).await;
    s.now("2024-01-01T10:00:00Z");
    // Given two subscriptions created through the API while the bus is down: the changes are
    // made (200), their events are not published.
    s.bus.set_down(true);
    let retried = s
        .subscribe(
            "retried",
            "cus",
            "basic",
            "calendar",
            "2024-01-01T10:00:00Z",
        )
        .await;
    let swept = s
        .subscribe("swept", "cus", "basic", "calendar", "2024-01-01T10:00:00Z")
        .await;
    assert!(s.bus.refused() > 0, "the publish was attempted and failed");
    s.bus.set_down(false);
    assert_eq!(subscription_events(&s).await, vec![]);
    // When the client retries the first create: it answers the subscription, and publishes
    // its `subscription.started`.
    let again = s
        .subscribe(
            "retried",
            "cus",
            "basic",
            "calendar",
            "2024-01-01T10:00:00Z",
        )
        .await;
    assert_eq!(again["lago_id"], retried["lago_id"]);
    assert_eq!(subscription_events(&s).await, vec![started(&retried)]);
    // And the next clock run publishes the second's, which nobody retried.
    s.bill("2024-01-01T11:00:00Z").await;
    assert_eq!(subscription_events(&s).await, vec![started(&swept)]);
    // Then neither is published again.
    s.bill("2024-01-01T12:00:00Z").await;
    s.subscribe("swept", "cus", "basic", "calendar", "2024-01-01T10:00:00Z")
        .await;
    assert_eq!(subscription_events(&s).await, vec![]);
}
