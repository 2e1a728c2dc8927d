//! The automatic credit note of a terminated or upgraded pay-in-advance plan, through the HTTP
//! API and the billing run: created once however often the run is repeated, published once as
//! `credit_note.created`, and spent on the customer's next invoices at finalization. Every
//! expected amount is derived from SEMANTICS §7 ("Termination of a pay-in-advance plan") and
//! §8.5 in the comments.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use billing::catalog::organization::Organization;
use billing_aws::context::SubscriptionContext;
use http::{Method, StatusCode};
use invoicing::{
    credit_terminated_subscription::{TerminationCredit, credit_terminated_subscription},
    price_slot::Catalog,
};
use serde_json::{Value, json};
use support::{Scenario, t, totals};

/// A scenario with a 25 % VAT, a monthly plan `advance` of 20000 paid in advance and a
/// monthly plan `basic` of 6200 in arrears (both taxed), and a customer `cus` in UTC.
async fn scenario(name: &str) -> Scenario {
    let s = Scenario::start(name).await;
    s.ok(
        Method::POST,
        "/taxes",
        Some(json!({"tax": {"name": "VAT", "code": "vat", "rate": "25"}})),
    )
    .await;
    s.plan(
        "advance",
        "monthly",
        20_000,
        true,
        json!({"tax_codes": ["vat"]}),
        &[],
    )
    .await;
    s.plan(
        "basic",
        "monthly",
        6_200,
        false,
        json!({"tax_codes": ["vat"]}),
        &[],
    )
    .await;
    s.customer("cus", "UTC", None).await;
    s
}

/// Every credit note of the organization, newest first.
async fn credit_notes(s: &Scenario) -> Vec<Value> {
    s.ok(Method::GET, "/credit_notes?per_page=100", None).await["credit_notes"]
        .as_array()
        .unwrap()
        .clone()
}

/// The `credit_note.created` events that reached the bus since the last look.
async fn created_events(s: &Scenario) -> Vec<Value> {
    s.bus_events()
        .await
        .into_iter()
        .filter(|e| e["webhook_type"] == "credit_note.created")
        .collect()
}

/// The invoice of `sub` whose subscription period starts at `from`.
fn invoice_from<'a>(invoices: &'a [Value], from: &str) -> &'a Value {
    invoices
        .iter()
        .find(|i| {
            i["billing_periods"][0]["charges_from_datetime"]
                .as_str()
                .is_some_and(|t| t.starts_with(from))
        })
        .unwrap_or_else(|| panic!("no invoice from {from} in {invoices:#?}"))
}

/// Runs the termination credit of `external_id` again, as a redelivered unit of work that
/// crashed before saving its progress would.
async fn credit_again(s: &Scenario, external_id: &str) -> Vec<TerminationCredit> {
    let catalog = Catalog::load(&s.store, &s.org_id).await.unwrap();
    let org: &Organization = &catalog.org;
    let context = SubscriptionContext::load(&s.store, org, external_id)
        .await
        .unwrap();
    let mut out = Vec::new();
    for ps in &context.subscriptions {
        out.push(
            credit_terminated_subscription(&s.invoicing, &catalog, ps)
                .await
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn a_terminated_advance_plan_is_credited_once_and_the_credit_is_spent_on_the_next_invoices() {
    let s = scenario("Acme").await;
    // Given `sub` on `advance` from 18 Sep 2025 10:00 (anniversary: 18 Sep - 17 Oct, 30
    // days), billed in advance: 20000 + 25 % = 25000; and `other` on `basic` (in arrears,
    // calendar) from 1 Sep.
    s.now("2025-09-01T00:00:00Z");
    s.subscribe("other", "cus", "basic", "calendar", "2025-09-01T00:00:00Z")
        .await;
    s.now("2025-09-18T10:00:00Z");
    s.subscribe(
        "sub",
        "cus",
        "advance",
        "anniversary",
        "2025-09-18T10:00:00Z",
    )
    .await;
    s.bill("2025-09-18T11:00:00Z").await;
    let start = &s.invoices_of("sub").await[0];
    assert_eq!(totals(start), (20_000, 5_000, 25_000));
    let fee_id = start["fees"][0]["lago_id"].as_str().unwrap().to_owned();
    // September of `other`, finalized on 1 Oct before any credit note: 6200 + 1550 = 7750.
    s.bill("2025-10-01T00:00:00Z").await;
    let september = &s.invoices_of("other").await[0];
    assert_eq!(totals(september), (6_200, 1_550, 7_750));
    assert_eq!(september["credit_notes_amount_cents"], 0);
    s.bus_events().await;

    // When `sub` is terminated on 3 Oct 12:00 and the next billing run closes it.
    s.now("2025-10-03T12:00:00Z");
    s.ok(Method::DELETE, "/subscriptions/sub", None).await;
    s.bill("2025-10-03T13:00:00Z").await;

    // Then one credit note: 17 Oct − 3 Oct = 14 unused days × 20000/30 = 9333.33 → 9333;
    // 25 % tax = 2333.25 → 2333; total 11666, all of it available credit.
    let notes = credit_notes(&s).await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    let note = &notes[0];
    let start_number = start["number"].as_str().unwrap();
    assert_eq!(note["lago_invoice_id"], start["lago_id"]);
    assert_eq!(note["invoice_number"], start_number);
    assert_eq!(note["number"], format!("{start_number}-CN001"));
    assert_eq!(note["sequential_id"], 1);
    assert_eq!(note["issuing_date"], "2025-10-03");
    assert_eq!(note["reason"], "order_change");
    assert_eq!(note["credit_status"], "available");
    assert_eq!(note["refund_status"], Value::Null);
    assert_eq!(note["currency"], "EUR");
    assert_eq!(note["sub_total_excluding_taxes_amount_cents"], 9_333);
    assert_eq!(note["taxes_amount_cents"], 2_333);
    assert_eq!(note["taxes_rate"], 25);
    assert_eq!(note["total_amount_cents"], 11_666);
    assert_eq!(note["credit_amount_cents"], 11_666);
    assert_eq!(note["balance_amount_cents"], 11_666);
    assert_eq!(note["refund_amount_cents"], 0);
    assert_eq!(note["file_url"], Value::Null);
    assert_eq!(note["items"][0]["amount_cents"], 9_333);
    assert_eq!(note["items"][0]["fee"]["lago_id"], fee_id.as_str());
    assert_eq!(note["applied_taxes"][0]["tax_code"], "vat");
    assert_eq!(note["applied_taxes"][0]["amount_cents"], 2_333);
    assert_eq!(note["applied_taxes"][0]["base_amount_cents"], 9_333);
    let id = note["lago_id"].as_str().unwrap().to_owned();
    let shown = s
        .ok(Method::GET, &format!("/credit_notes/{id}"), None)
        .await;
    assert_eq!(&shown["credit_note"], note);
    // And `credit_note.created` reached the bus once, with the note.
    let events = created_events(&s).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["object_type"], "credit_note");
    assert_eq!(events[0]["object"]["lago_id"], id.as_str());
    assert_eq!(events[0]["object"]["total_amount_cents"], 11_666);

    // When the run is repeated, the unit redelivered after a crash before its progress was
    // saved, and the termination retried.
    s.bill("2025-10-03T14:00:00Z").await;
    assert_eq!(
        credit_again(&s, "sub").await,
        vec![TerminationCredit::Existing(id.clone())]
    );
    let (status, _) = s.call(Method::DELETE, "/subscriptions/sub", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Then there is still one note and no second event.
    assert_eq!(credit_notes(&s).await.len(), 1);
    assert!(created_events(&s).await.is_empty());

    // When `other`'s October is finalized on 1 Nov: 6200 + 1550 = 7750, all of it paid by the
    // note (SEMANTICS §8.5: min(balance 11666, total 7750)), which keeps 3916.
    s.bill("2025-11-01T00:00:00Z").await;
    let invoices = s.invoices_of("other").await;
    let october = invoice_from(&invoices, "2025-10-01");
    assert_eq!(october["status"], "finalized");
    assert_eq!(october["sub_total_including_taxes_amount_cents"], 7_750);
    assert_eq!(october["credit_notes_amount_cents"], 7_750);
    assert_eq!(october["total_amount_cents"], 0);
    assert_eq!(october["payment_status"], "succeeded");
    let credits = october["credits"].as_array().unwrap();
    assert_eq!(credits.len(), 1, "{october:#}");
    assert_eq!(credits[0]["amount_cents"], 7_750);
    assert_eq!(credits[0]["before_taxes"], false);
    assert_eq!(credits[0]["item"]["type"], "credit_note");
    assert_eq!(credits[0]["item"]["lago_item_id"], id.as_str());
    assert_eq!(credits[0]["item"]["code"], note["number"]);
    assert_eq!(credits[0]["invoice"]["lago_id"], october["lago_id"]);
    let after_october = s
        .ok(Method::GET, &format!("/credit_notes/{id}"), None)
        .await;
    assert_eq!(after_october["credit_note"]["balance_amount_cents"], 3_916);
    assert_eq!(after_october["credit_note"]["credit_status"], "available");

    // When November is finalized on 1 Dec: 7750, of which the note pays its last 3916:
    // 3834 is due and the note is consumed.
    s.bill("2025-12-01T00:00:00Z").await;
    let invoices = s.invoices_of("other").await;
    let november = invoice_from(&invoices, "2025-11-01");
    assert_eq!(november["credit_notes_amount_cents"], 3_916);
    assert_eq!(november["total_amount_cents"], 3_834);
    assert_eq!(november["payment_status"], "pending");
    let consumed = s
        .ok(Method::GET, &format!("/credit_notes/{id}"), None)
        .await;
    assert_eq!(consumed["credit_note"]["balance_amount_cents"], 0);
    assert_eq!(consumed["credit_note"]["credit_status"], "consumed");
    // A run repeated after the finalization spends nothing twice.
    s.bill("2025-12-01T01:00:00Z").await;
    let again = s.invoices_of("other").await;
    assert_eq!(
        invoice_from(&again, "2025-11-01")["credit_notes_amount_cents"],
        3_916
    );
    assert_eq!(again.len(), invoices.len());

    // The list filters by customer and issuing date, Lago's meta included.
    let by_customer = s
        .ok(
            Method::GET,
            "/credit_notes?external_customer_id=cus&issuing_date_from=2025-10-03&issuing_date_to=2025-10-03",
            None,
        )
        .await;
    assert_eq!(by_customer["credit_notes"].as_array().unwrap().len(), 1);
    assert_eq!(by_customer["meta"]["total_count"], 1);
    assert_eq!(by_customer["meta"]["current_page"], 1);
    let later = s
        .ok(
            Method::GET,
            "/credit_notes?issuing_date_from=2025-10-04",
            None,
        )
        .await;
    assert_eq!(later["credit_notes"], json!([]));
    let nobody = s
        .ok(
            Method::GET,
            "/credit_notes?external_customer_id=nobody",
            None,
        )
        .await;
    assert_eq!(nobody["meta"]["total_count"], 0);
    let of_customer = s.ok(Method::GET, "/customers/cus/credit_notes", None).await;
    assert_eq!(of_customer["credit_notes"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_termination_before_any_billing_run_credits_the_fee_that_run_bills() {
    let s = scenario("Acme").await;
    // Given `sub` on `advance` from 18 Sep 2025 10:00 (period 18 Sep - 17 Oct, 30 days),
    // terminated at 10:30 the same day, before any billing run.
    s.now("2025-09-18T10:00:00Z");
    s.subscribe(
        "sub",
        "cus",
        "advance",
        "anniversary",
        "2025-09-18T10:00:00Z",
    )
    .await;
    s.now("2025-09-18T10:30:00Z");
    s.ok(Method::DELETE, "/subscriptions/sub", None).await;
    // When one run bills the start and closes the termination.
    s.bill("2025-09-18T11:00:00Z").await;
    // Then the start invoice bills 20000 + 25 % = 25000 and the note credits SEMANTICS'
    // vector: 29/30 × 20000 = 19333.33 → 19333, 25 % tax 4833.25 → 4833, total 24166.
    let start = &s.invoices_of("sub").await[0];
    assert_eq!(totals(start), (20_000, 5_000, 25_000));
    let notes = credit_notes(&s).await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0]["lago_invoice_id"], start["lago_id"]);
    assert_eq!(notes[0]["sub_total_excluding_taxes_amount_cents"], 19_333);
    assert_eq!(notes[0]["taxes_amount_cents"], 4_833);
    assert_eq!(notes[0]["total_amount_cents"], 24_166);
}

#[tokio::test]
async fn a_run_that_crashes_before_publishing_leaves_the_event_to_the_next_run_once() {
    // The API publishes its own subscription events, so the worker's only event is the note's.
    let s = Scenario::start_with_api_bus("Acme").await;
    s.ok(
        Method::POST,
        "/taxes",
        Some(json!({"tax": {"name": "VAT", "code": "vat", "rate": "25"}})),
    )
    .await;
    s.plan(
        "advance",
        "monthly",
        20_000,
        true,
        json!({"tax_codes": ["vat"]}),
        &[],
    )
    .await;
    s.customer("cus", "UTC", None).await;
    s.now("2025-09-18T10:00:00Z");
    s.subscribe(
        "sub",
        "cus",
        "advance",
        "anniversary",
        "2025-09-18T10:00:00Z",
    )
    .await;
    s.bill("2025-09-18T11:00:00Z").await;
    s.now("2025-10-03T12:00:00Z");
    s.ok(Method::DELETE, "/subscriptions/sub", None).await;
    s.bus_events().await;
    // When the run closing the termination cannot reach the bus (it fails after writing the
    // note with its outbox entry, and its progress is not saved).
    s.bus.set_down(true);
    let crashed = invoicing::close_subscription::close_subscription(
        &s.invoicing,
        &s.org_id,
        "sub",
        t("2025-10-03T13:00:00Z"),
    )
    .await;
    s.bus.set_down(false);
    assert!(crashed.is_err(), "the publish failed: {crashed:?}");
    assert!(s.bus.refused() > 0);
    // Then the note exists and nothing was published.
    let notes = credit_notes(&s).await;
    assert_eq!(notes.len(), 1);
    assert!(created_events(&s).await.is_empty());
    // When the unit runs again, and once more.
    s.bill("2025-10-03T14:00:00Z").await;
    s.bill("2025-10-03T15:00:00Z").await;
    // Then the same note, published once, under the key of its creation.
    assert_eq!(credit_notes(&s).await, notes);
    let events = created_events(&s).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let id = notes[0]["lago_id"].as_str().unwrap();
    assert_eq!(events[0]["object"]["lago_id"], id);
    assert_eq!(
        events[0]["unique_key"],
        invoicing::invoice_events::unique_key(id, "credit_note.created", 1).as_str()
    );
}

#[tokio::test]
async fn a_draft_shows_no_credit_and_spends_the_note_when_its_grace_period_ends() {
    let s = Scenario::start("Acme").await;
    s.plan("advance", "monthly", 20_000, true, json!({}), &[])
        .await;
    s.plan("basic", "monthly", 6_200, false, json!({}), &[])
        .await;
    // Given a customer with 2 days of grace: every invoice is a draft for 2 days.
    s.customer("cus", "UTC", Some(2)).await;
    s.now("2025-09-01T00:00:00Z");
    s.subscribe("other", "cus", "basic", "calendar", "2025-09-01T00:00:00Z")
        .await;
    s.now("2025-09-18T10:00:00Z");
    s.subscribe(
        "sub",
        "cus",
        "advance",
        "anniversary",
        "2025-09-18T10:00:00Z",
    )
    .await;
    s.bill("2025-09-18T11:00:00Z").await;
    s.bill("2025-09-20T11:00:00Z").await;
    assert_eq!(s.invoices_of("sub").await[0]["status"], "finalized");
    // And `sub` terminated on 3 Oct 12:00: 14 days × 20000/30 = 9333.33 → 9333, no tax.
    s.now("2025-10-03T12:00:00Z");
    s.ok(Method::DELETE, "/subscriptions/sub", None).await;
    s.bill("2025-10-03T13:00:00Z").await;
    let notes = credit_notes(&s).await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0]["total_amount_cents"], 9_333);
    // When `other`'s October is drafted on 1 Nov (6200).
    s.bill("2025-11-01T00:00:00Z").await;
    let draft = invoice_from(&s.invoices_of("other").await, "2025-10-01").clone();
    // Then the draft shows no credit (EDGE_CASES 31) and the note is untouched.
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["credit_notes_amount_cents"], 0);
    assert_eq!(draft["total_amount_cents"], 6_200);
    assert_eq!(draft["credits"], json!([]));
    assert_eq!(credit_notes(&s).await[0]["balance_amount_cents"], 9_333);
    // When its grace period ends on 3 Nov, then it is finalized with 6200 credited: nothing
    // is due and the note keeps 9333 − 6200 = 3133.
    s.bill("2025-11-03T00:00:00Z").await;
    let finalized = invoice_from(&s.invoices_of("other").await, "2025-10-01").clone();
    assert_eq!(finalized["status"], "finalized");
    assert_eq!(finalized["credit_notes_amount_cents"], 6_200);
    assert_eq!(finalized["total_amount_cents"], 0);
    assert_eq!(finalized["credits"][0]["amount_cents"], 6_200);
    assert_eq!(credit_notes(&s).await[0]["balance_amount_cents"], 3_133);
    // And finalizing November by hand (`PUT /invoices/{id}/finalize`) spends the rest:
    // 6200 − 3133 = 3067 due, the note consumed.
    s.bill("2025-12-01T00:00:00Z").await;
    let november = invoice_from(&s.invoices_of("other").await, "2025-11-01").clone();
    assert_eq!(november["status"], "draft");
    let id = november["lago_id"].as_str().unwrap();
    s.now("2025-12-01T08:00:00Z");
    let by_hand = s
        .ok(Method::PUT, &format!("/invoices/{id}/finalize"), None)
        .await;
    assert_eq!(by_hand["invoice"]["credit_notes_amount_cents"], 3_133);
    assert_eq!(by_hand["invoice"]["total_amount_cents"], 3_067);
    let note = &credit_notes(&s).await[0];
    assert_eq!(note["balance_amount_cents"], 0);
    assert_eq!(note["credit_status"], "consumed");
}

#[tokio::test]
async fn a_termination_with_skip_makes_no_credit_note() {
    let s = scenario("Acme").await;
    // Given `sub` on `advance` from 18 Sep 2025, billed in advance.
    s.now("2025-09-18T10:00:00Z");
    s.subscribe(
        "sub",
        "cus",
        "advance",
        "anniversary",
        "2025-09-18T10:00:00Z",
    )
    .await;
    s.bill("2025-09-18T11:00:00Z").await;
    // When it is terminated mid-period with `on_termination_credit_note=skip` and closed.
    s.now("2025-10-03T12:00:00Z");
    let terminated = s
        .ok(
            Method::DELETE,
            "/subscriptions/sub?on_termination_credit_note=skip",
            None,
        )
        .await;
    assert_eq!(
        terminated["subscription"]["on_termination_credit_note"],
        "skip"
    );
    s.bill("2025-10-03T13:00:00Z").await;
    // Then no credit note, and no event.
    assert!(credit_notes(&s).await.is_empty());
    assert!(created_events(&s).await.is_empty());
    assert_eq!(credit_again(&s, "sub").await, vec![TerminationCredit::None]);
}

#[tokio::test]
async fn a_termination_without_a_termination_invoice_is_still_credited() {
    let s = scenario("Acme").await;
    s.now("2025-09-18T10:00:00Z");
    s.subscribe(
        "sub",
        "cus",
        "advance",
        "anniversary",
        "2025-09-18T10:00:00Z",
    )
    .await;
    s.bill("2025-09-18T11:00:00Z").await;
    // When it is terminated on 3 Oct with `on_termination_invoice=skip` and
    // `on_termination_credit_note=refund` (which behaves as `credit` until payments exist).
    s.now("2025-10-03T12:00:00Z");
    s.ok(
        Method::DELETE,
        "/subscriptions/sub?on_termination_invoice=skip&on_termination_credit_note=refund",
        None,
    )
    .await;
    s.bill("2025-10-03T13:00:00Z").await;
    // Then the same 14 days as a plain termination: 9333 + 2333 = 11666, as a credit.
    let notes = credit_notes(&s).await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0]["total_amount_cents"], 11_666);
    assert_eq!(notes[0]["credit_amount_cents"], 11_666);
    assert_eq!(notes[0]["refund_amount_cents"], 0);
    assert_eq!(
        s.invoices_of("sub").await.len(),
        1,
        "no termination invoice"
    );
}

#[tokio::test]
async fn an_upgrade_credits_the_old_plan_from_the_upgrade_day_and_the_new_plan_spends_it() {
    let s = Scenario::start("Acme").await;
    s.plan("small", "monthly", 1_000, true, json!({}), &[])
        .await;
    s.plan("big", "monthly", 31_000, true, json!({}), &[]).await;
    s.customer("cus", "UTC", None).await;
    // Given `sub` on `small` (1000 in advance, calendar) from 1 Jan 2025, billed 1000.
    s.now("2025-01-01T00:00:00Z");
    s.subscribe("sub", "cus", "small", "calendar", "2025-01-01T00:00:00Z")
        .await;
    s.bill("2025-01-01T01:00:00Z").await;
    assert_eq!(totals(&s.invoices_of("sub").await[0]), (1_000, 0, 1_000));
    // When it is upgraded to `big` on 31 Jan 12:00, the last day of a 31-day period.
    s.now("2025-01-31T12:00:00Z");
    s.subscribe("sub", "cus", "big", "calendar", "2025-01-01T00:00:00Z")
        .await;
    s.bill("2025-01-31T13:00:00Z").await;
    // Then `small` is credited the upgrade day: 31 Jan − 31 Jan = 0, plus the upgrade day =
    // 1 × 1000/31 = 32.26 → 32, no tax.
    let notes = credit_notes(&s).await;
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert_eq!(notes[0]["total_amount_cents"], 32);
    assert_eq!(notes[0]["reason"], "order_change");
    let id = notes[0]["lago_id"].as_str().unwrap().to_owned();
    // And `big`'s first invoice (finalized in the same run, after the note) spends it whole.
    let invoices = s.invoices_of("sub").await;
    let big = invoices
        .iter()
        .find(|i| i["fees"][0]["item"]["code"] == "big")
        .unwrap_or_else(|| panic!("no invoice of big in {invoices:#?}"));
    let before_credit = big["sub_total_including_taxes_amount_cents"]
        .as_i64()
        .unwrap();
    assert!(before_credit > 32, "{big:#}");
    assert_eq!(big["credit_notes_amount_cents"], 32);
    assert_eq!(big["total_amount_cents"], before_credit - 32);
    assert_eq!(big["credits"][0]["item"]["lago_item_id"], id.as_str());
    let spent = s
        .ok(Method::GET, &format!("/credit_notes/{id}"), None)
        .await;
    assert_eq!(spent["credit_note"]["credit_status"], "consumed");
}

#[tokio::test]
async fn credit_notes_are_scoped_to_the_organization_and_unknown_ids_are_a_lago_404() {
    let s = scenario("Acme").await;
    s.now("2025-09-18T10:00:00Z");
    s.subscribe(
        "sub",
        "cus",
        "advance",
        "anniversary",
        "2025-09-18T10:00:00Z",
    )
    .await;
    s.bill("2025-09-18T11:00:00Z").await;
    s.now("2025-10-03T12:00:00Z");
    s.ok(Method::DELETE, "/subscriptions/sub", None).await;
    s.bill("2025-10-03T13:00:00Z").await;
    let id = credit_notes(&s).await[0]["lago_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another organization on the same table sees none of it.
    let other_key = format!("lago_test_{}", uuid::Uuid::new_v4().simple());
    let other = Organization {
        id: uuid::Uuid::new_v4().to_string(),
        name: "Other".into(),
        created_at: t("2024-01-01T00:00:00Z"),
        settings: billing::catalog::organization::OrganizationSettings::new("Other"),
        version: 1,
    };
    s.store
        .create_organization(&other, &other_key)
        .await
        .unwrap();
    let as_other = |path: String| {
        let key = other_key.clone();
        let router = s.router.clone();
        async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let response = router
                .oneshot(
                    http::Request::builder()
                        .uri(format!("/api/v1{path}"))
                        .header(http::header::AUTHORIZATION, format!("Bearer {key}"))
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, serde_json::from_slice::<Value>(&bytes).unwrap())
        }
    };
    let (status, body) = as_other(format!("/credit_notes/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"status": 404, "error": "Not Found", "code": "credit_note_not_found"})
    );
    let (status, body) = as_other("/credit_notes".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["credit_notes"], json!([]));
    // And an unknown id is the same 404 for its owner.
    let (status, body) = s.call(Method::GET, "/credit_notes/nope", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "credit_note_not_found");
}
