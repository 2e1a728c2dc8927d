//! Billing scenarios over several periods, through the HTTP API, with the billing clock fired at
//! chosen instants and the invoice worker draining the billing queue (what
//! `POST /_local/billing-run` does). Every expected amount is derived from SEMANTICS §6-§8 in
//! the comments, not read from the implementation.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use std::collections::BTreeMap;

use http::{Method, StatusCode};
use serde_json::json;
use support::{Scenario, basic, fee, subscription_fee, totals};

#[tokio::test]
async fn a_calendar_month_in_arrears_started_mid_month_is_prorated_then_billed_in_full() {
    // Given a customer in UTC subscribed on 15 Jan 2024 10:00 to `basic` (calendar), with 10
    // calls in January and 4 in February.
    let s = basic("Acme").await;
    let customer = s.customer("cus", "UTC", None).await;
    s.now("2024-01-15T10:00:00Z");
    s.subscribe("sub", "cus", "basic", "calendar", "2024-01-15T10:00:00Z")
        .await;
    s.usage("sub", "calls", "2024-01-20T12:00:00Z", 10).await;
    s.usage("sub", "calls", "2024-02-10T12:00:00Z", 4).await;

    // When the clock fires at the start of February, then March.
    s.bill("2024-01-31T23:00:00Z").await;
    assert!(
        s.invoices_of("sub").await.is_empty(),
        "nothing is due before 1 Feb"
    );
    s.bill("2024-02-01T00:00:00Z").await;
    s.bill("2024-03-01T00:00:00Z").await;

    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 2);
    let jan = &invoices[0];
    // Subscription fee: 15..31 Jan = 17 days × 3100/31 = 1700 (SEMANTICS §7, first period).
    assert_eq!(
        subscription_fee(jan),
        (
            1700,
            "2024-01-15T00:00:00Z".into(),
            "2024-01-31T23:59:59Z".into()
        )
    );
    // Usage: 10 calls × 0.50 = 500 cents, from the exact start time.
    let calls = fee(jan, "charge");
    assert_eq!(calls["amount_cents"], 500);
    assert_eq!(calls["units"], "10.0");
    assert_eq!(calls["from_date"], "2024-01-15T10:00:00Z");
    // VAT 20 % on the plan applies to both fees: 2200 × 0.2 = 440 → 2640.
    assert_eq!(totals(jan), (2200, 440, 2640));
    assert_eq!(jan["status"], "finalized");
    assert_eq!(jan["issuing_date"], "2024-02-01");
    assert_eq!(jan["sequential_id"], 1);
    let cus_seq = customer["sequential_id"].as_u64().unwrap_or(0);
    assert_eq!(jan["number"], format!("ACM-{cus_seq:03}-001"));
    let period = &jan["billing_periods"][0];
    assert_eq!(period["charges_from_datetime"], "2024-01-15T10:00:00Z");
    assert_eq!(period["charges_to_datetime"], "2024-01-31T23:59:59Z");
    assert_eq!(period["invoicing_reason"], "subscription_periodic");
    assert_eq!(jan["applied_taxes"][0]["amount_cents"], 440);

    let feb = &invoices[1];
    // February: the whole 3100 (already billed before) + 4 × 50 = 200; VAT 660 → 3960.
    assert_eq!(subscription_fee(feb).0, 3100);
    assert_eq!(totals(feb), (3300, 660, 3960));
    assert_eq!(feb["sequential_id"], 2);

    // The fees API and past usage show the same numbers.
    let id = calls["lago_id"].as_str().unwrap();
    let one = s.ok(Method::GET, &format!("/fees/{id}"), None).await;
    assert_eq!(one["fee"]["amount_cents"], 500);
    let fees = s
        .ok(
            Method::GET,
            "/fees?fee_type=charge&external_subscription_id=sub",
            None,
        )
        .await;
    assert_eq!(fees["meta"]["total_count"], 2);
    let past = s
        .ok(
            Method::GET,
            "/customers/cus/past_usage?external_subscription_id=sub",
            None,
        )
        .await;
    let periods = past["usage_periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2);
    assert_eq!(periods[0]["from_datetime"], "2024-02-01T00:00:00Z");
    assert_eq!(periods[0]["amount_cents"], 200);
    assert_eq!(periods[1]["amount_cents"], 500);
}

#[tokio::test]
async fn an_anniversary_on_the_31st_in_advance_follows_the_last_day_of_short_months() {
    // Given `adv`, 2900 a month in advance, subscribed on 31 Jan 2024 (anniversary), with 2
    // calls on 10 Feb.
    let mut s = Scenario::start("Acme").await;
    s.metric("calls").await;
    s.plan("adv", "monthly", 2900, true, json!({}), &[("calls", "0.5")])
        .await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-01-31T08:00:00Z");
    s.subscribe("sub", "cus", "adv", "anniversary", "2024-01-31T08:00:00Z")
        .await;
    s.usage("sub", "calls", "2024-02-10T00:00:00Z", 2).await;

    s.bill("2024-01-31T09:00:00Z").await;
    s.bill("2024-02-29T00:00:00Z").await;
    s.bill("2024-03-31T00:00:00Z").await;
    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 3);
    // Start: in advance + anniversary bills the whole first period, 31 Jan – 28 Feb (the 2024
    // anniversary in February is its last day, the 29th, so the period ends the day before).
    assert_eq!(
        invoices[0]["billing_periods"][0]["invoicing_reason"],
        "subscription_starting"
    );
    assert_eq!(
        subscription_fee(&invoices[0]),
        (
            2900,
            "2024-01-31T00:00:00Z".into(),
            "2024-02-28T23:59:59Z".into()
        )
    );
    assert_eq!(totals(&invoices[0]), (2900, 0, 2900));
    // 29 Feb: 29 Feb – 30 Mar in advance, and the usage of 31 Jan 08:00 – 28 Feb (2 × 50).
    assert_eq!(
        subscription_fee(&invoices[1]),
        (
            2900,
            "2024-02-29T00:00:00Z".into(),
            "2024-03-30T23:59:59Z".into()
        )
    );
    assert_eq!(fee(&invoices[1], "charge")["amount_cents"], 100);
    assert_eq!(
        invoices[1]["billing_periods"][0]["charges_from_datetime"],
        "2024-01-31T08:00:00Z"
    );
    assert_eq!(totals(&invoices[1]), (3000, 0, 3000));
    // 31 Mar: 31 Mar – 29 Apr.
    assert_eq!(
        subscription_fee(&invoices[2]),
        (
            2900,
            "2024-03-31T00:00:00Z".into(),
            "2024-04-29T23:59:59Z".into()
        )
    );
}

#[tokio::test]
async fn weekly_quarterly_and_yearly_plans_prorate_their_first_period() {
    let s = Scenario::start("Acme").await;
    s.plan("weekly", "weekly", 700, false, json!({}), &[]).await;
    s.plan("quarterly", "quarterly", 9100, false, json!({}), &[])
        .await;
    s.plan("yearly", "yearly", 36600, true, json!({}), &[])
        .await;
    s.customer("cus", "UTC", None).await;
    // Weekly from Wednesday 3 Jan 2024; quarterly from 10 Feb; yearly in advance from 15 Mar.
    s.now("2024-01-03T00:00:00Z");
    s.subscribe("w", "cus", "weekly", "calendar", "2024-01-03T00:00:00Z")
        .await;
    s.now("2024-02-10T00:00:00Z");
    s.subscribe("q", "cus", "quarterly", "calendar", "2024-02-10T00:00:00Z")
        .await;
    s.now("2024-03-15T00:00:00Z");
    s.subscribe("y", "cus", "yearly", "calendar", "2024-03-15T00:00:00Z")
        .await;

    s.bill("2024-01-08T00:00:00Z").await;
    s.bill("2024-01-15T00:00:00Z").await;
    s.bill("2024-03-15T01:00:00Z").await;
    s.bill("2024-04-01T00:00:00Z").await;
    s.bill("2025-01-01T00:00:00Z").await;

    let w = s.invoices_of("w").await;
    // Wednesday–Sunday = 5 days × 700/7 = 500; then a whole week, 700. (Billing up to 1 Jan
    // 2025 also billed every later week: 52 full weeks plus the first one.)
    assert_eq!(subscription_fee(&w[0]).0, 500);
    assert_eq!(subscription_fee(&w[0]).2, "2024-01-07T23:59:59Z");
    assert_eq!(subscription_fee(&w[1]).0, 700);
    let q = s.invoices_of("q").await;
    // 10 Feb – 31 Mar = 20 + 31 = 51 days of a 91-day quarter (2024 is a leap year):
    // 51 × 9100/91 = 5100.
    assert_eq!(subscription_fee(&q[0]).0, 5100);
    let y = s.invoices_of("y").await;
    assert_eq!(y.len(), 2);
    // In advance, calendar: 15 Mar – 31 Dec 2024 = 292 days of 366: 292 × 36600/366 = 29200.
    assert_eq!(
        subscription_fee(&y[0]),
        (
            29200,
            "2024-03-15T00:00:00Z".into(),
            "2024-12-31T23:59:59Z".into()
        )
    );
    // 2025 is billed whole at its start.
    assert_eq!(subscription_fee(&y[1]).0, 36600);
}

#[tokio::test]
async fn a_trial_delays_the_first_advance_fee_to_its_end() {
    // Given `trial`, 3100 a month in advance with a 10-day trial, from 15 Jan (anniversary).
    let s = Scenario::start("Acme").await;
    s.plan(
        "trial",
        "monthly",
        3100,
        true,
        json!({"trial_period": 10}),
        &[],
    )
    .await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-01-15T00:00:00Z");
    s.subscribe("sub", "cus", "trial", "anniversary", "2024-01-15T00:00:00Z")
        .await;

    s.bill("2024-01-15T01:00:00Z").await;
    assert!(
        s.invoices_of("sub").await.is_empty(),
        "nothing while the trial runs"
    );
    s.bill("2024-01-25T00:00:00Z").await;
    s.bill("2024-02-15T00:00:00Z").await;
    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 2);
    // Trial end 25 Jan → 25 Jan – 14 Feb = 21 days of the 31-day period: 21 × 3100/31 = 2100.
    // (The fee's dates are the period's boundaries, as Lago stores them; the trial only
    // shortens the days billed.)
    assert_eq!(
        invoices[0]["billing_periods"][0]["invoicing_reason"],
        "subscription_starting"
    );
    assert_eq!(
        subscription_fee(&invoices[0]),
        (
            2100,
            "2024-01-15T00:00:00Z".into(),
            "2024-02-14T23:59:59Z".into()
        )
    );
    assert_eq!(subscription_fee(&invoices[1]).0, 3100);
}

#[tokio::test]
async fn an_upgrade_bills_both_plans_for_their_days_and_a_downgrade_waits_for_the_period_end() {
    let s = basic("Acme").await;
    s.plan("pro", "monthly", 6200, false, json!({}), &[]).await;
    s.customer("cus", "UTC", None).await;
    // Upgrade: basic from 1 Feb, pro from 10 Mar 12:00.
    s.now("2024-02-01T00:00:00Z");
    s.subscribe("up", "cus", "basic", "calendar", "2024-02-01T00:00:00Z")
        .await;
    // Downgrade: pro from 1 Feb, basic asked for on 10 Mar.
    s.subscribe("down", "cus", "pro", "calendar", "2024-02-01T00:00:00Z")
        .await;
    s.bill("2024-03-01T00:00:00Z").await;
    s.now("2024-03-10T12:00:00Z");
    s.subscribe("up", "cus", "pro", "calendar", "2024-02-01T00:00:00Z")
        .await;
    let pending = s
        .subscribe("down", "cus", "basic", "calendar", "2024-02-01T00:00:00Z")
        .await;
    assert_eq!(pending["downgrade_plan_date"], "2024-04-01");

    s.bill("2024-03-10T13:00:00Z").await;
    s.bill("2024-04-01T00:00:00Z").await;
    s.bill("2024-05-01T00:00:00Z").await;

    let up = s.invoices_of("up").await;
    assert_eq!(
        up.len(),
        4,
        "February, the upgrade, pro's March, pro's April"
    );
    // February on basic: 29 days × 3100/29 = 3100.
    assert_eq!(subscription_fee(&up[0]).0, 3100);
    // basic terminated by the upgrade on 10 Mar 12:00: ceil(9.5 days) = 10, minus the upgrade
    // day = 9 days × 3100/31 = 900.
    let term = up
        .iter()
        .find(|i| i["billing_periods"][0]["invoicing_reason"] == "subscription_terminating")
        .unwrap();
    assert_eq!(
        subscription_fee(term),
        (
            900,
            "2024-03-01T00:00:00Z".into(),
            "2024-03-10T12:00:00Z".into()
        )
    );
    // pro from 10 Mar 12:00 to 31 Mar: ceil(21.5) = 22 days × 6200/31 = 4400.
    let pro = up
        .iter()
        .find(|i| i["fees"][0]["item"]["code"] == "pro")
        .unwrap();
    // April on pro, whole: 6200.
    assert_eq!(subscription_fee(&up[3]).0, 6200);
    assert_eq!(
        subscription_fee(pro),
        (
            4400,
            "2024-03-10T12:00:00Z".into(),
            "2024-03-31T23:59:59Z".into()
        )
    );

    let down = s.invoices_of("down").await;
    assert_eq!(down.len(), 3);
    // pro stays until the period end: February 6200, March 6200 (whole, already billed),
    // closed by the downgrade on 1 Apr.
    assert_eq!(subscription_fee(&down[0]).0, 6200);
    assert_eq!(
        subscription_fee(&down[1]),
        (
            6200,
            "2024-03-01T00:00:00Z".into(),
            "2024-03-31T23:59:59Z".into()
        )
    );
    // basic from 1 Apr: a first period after a downgrade, 30 days × 3100/30 = 3100.
    assert_eq!(down[2]["fees"][0]["item"]["code"], "basic");
    assert_eq!(subscription_fee(&down[2]).0, 3100);
    let active = s.ok(Method::GET, "/subscriptions/down", None).await;
    assert_eq!(active["subscription"]["plan_code"], "basic");
    assert!(
        active["subscription"]["started_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2024-04-01T00:00:00")),
        "{active:#}"
    );
}

#[tokio::test]
async fn a_termination_bills_the_days_up_to_it() {
    let s = basic("Acme").await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-02-01T00:00:00Z");
    s.subscribe("sub", "cus", "basic", "calendar", "2024-02-01T00:00:00Z")
        .await;
    s.usage("sub", "calls", "2024-03-05T00:00:00Z", 6).await;
    s.bill("2024-03-01T00:00:00Z").await;
    s.now("2024-03-20T10:00:00Z");
    s.ok(Method::DELETE, "/subscriptions/sub", None).await;
    s.bill("2024-03-20T11:00:00Z").await;
    s.bill("2024-04-01T00:00:00Z").await;
    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 2, "nothing after the termination invoice");
    let term = &invoices[1];
    assert_eq!(
        term["billing_periods"][0]["invoicing_reason"],
        "subscription_terminating"
    );
    // 1 Mar – 20 Mar 10:00 = ceil(19.4 days) = 20 days × 3100/31 = 2000; 6 calls = 300;
    // VAT 20 % of 2300 = 460.
    assert_eq!(subscription_fee(term).0, 2000);
    assert_eq!(fee(term, "charge")["amount_cents"], 300);
    assert_eq!(
        term["billing_periods"][0]["charges_to_datetime"],
        "2024-03-20T10:00:00Z"
    );
    assert_eq!(totals(term), (2300, 460, 2760));
}

#[tokio::test]
async fn far_timezones_bill_at_their_local_midnight() {
    let s = Scenario::start("Acme").await;
    s.plan("basic", "monthly", 3100, false, json!({}), &[])
        .await;
    // Kiritimati is UTC+14, Pago Pago UTC-11: both start on their local 15 Jan.
    s.customer("kiri", "Pacific/Kiritimati", None).await;
    s.customer("pago", "Pacific/Pago_Pago", None).await;
    s.now("2024-01-15T12:00:00Z");
    s.subscribe("k", "kiri", "basic", "calendar", "2024-01-14T10:00:00Z")
        .await;
    s.subscribe("p", "pago", "basic", "calendar", "2024-01-15T11:00:00Z")
        .await;

    // Kiritimati's 1 Feb starts at 31 Jan 10:00 UTC.
    s.bill("2024-01-31T09:59:59Z").await;
    assert!(s.invoices_of("k").await.is_empty());
    s.bill("2024-01-31T10:00:00Z").await;
    let k = s.invoices_of("k").await;
    assert_eq!(k.len(), 1);
    // 15..31 Jan local = 17 days × 100 = 1700, boundaries at local midnights.
    assert_eq!(
        subscription_fee(&k[0]),
        (
            1700,
            "2024-01-14T10:00:00Z".into(),
            "2024-01-31T09:59:59Z".into()
        )
    );
    assert_eq!(k[0]["issuing_date"], "2024-02-01");
    // Pago Pago's 1 Feb starts at 1 Feb 11:00 UTC: at midnight UTC it is still January there.
    s.bill("2024-02-01T00:00:00Z").await;
    assert!(s.invoices_of("p").await.is_empty());
    s.bill("2024-02-01T11:00:00Z").await;
    let p = s.invoices_of("p").await;
    assert_eq!(subscription_fee(&p[0]).0, 1700);
    assert_eq!(p[0]["issuing_date"], "2024-02-01");
}

#[tokio::test]
async fn a_clock_firing_twice_and_two_workers_on_one_unit_make_one_invoice() {
    let s = basic("Acme").await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-01-01T00:00:00Z");
    s.subscribe("sub", "cus", "basic", "calendar", "2024-01-01T00:00:00Z")
        .await;

    // The clock fires twice for 1 Feb before any worker runs: the queue deduplicates, and
    // whatever it delivers, one invoice exists.
    s.fire_clock("2024-02-01T00:00:00Z").await;
    s.fire_clock("2024-02-01T00:00:00Z").await;
    s.drain().await;
    s.bill("2024-02-01T00:00:00Z").await;
    assert_eq!(s.invoices_of("sub").await.len(), 1);

    // Two workers handle the same unit (1 Mar) at once: one invoice for March.
    s.fire_clock("2024-03-01T00:00:00Z").await;
    let (event, receipts) = s.receive().await;
    assert_eq!(receipts.len(), 1);
    let (a, b) = tokio::join!(
        invoice::handler(&s.invoicing, event.clone()),
        invoice::handler(&s.invoicing, event)
    );
    assert!(a.batch_item_failures.is_empty() && b.batch_item_failures.is_empty());
    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 2);
    assert_eq!(
        invoices[1]["sequential_id"], 2,
        "one number for one invoice"
    );
}

#[tokio::test]
async fn twenty_drafts_finalized_at_once_take_numbers_one_to_twenty() {
    let s = basic("Acme").await;
    s.customer("cus", "UTC", Some(1)).await;
    s.now("2024-01-01T00:00:00Z");
    for i in 0..20 {
        s.subscribe(
            &format!("sub{i:02}"),
            "cus",
            "basic",
            "calendar",
            "2024-01-01T00:00:00Z",
        )
        .await;
    }
    s.bill("2024-02-01T00:00:00Z").await;
    let list = s
        .ok(Method::GET, "/invoices?status=draft&per_page=100", None)
        .await;
    let ids: Vec<String> = list["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["lago_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 20);
    s.now("2024-02-01T06:00:00Z");
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/invoices/{id}/finalize"))
        .collect();
    let finalized =
        futures::future::join_all(paths.iter().map(|p| s.call(Method::PUT, p, None))).await;
    let mut seq: Vec<u64> = finalized
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body:#}");
            body["invoice"]["sequential_id"].as_u64().unwrap()
        })
        .collect();
    seq.sort_unstable();
    assert_eq!(seq, (1..=20).collect::<Vec<u64>>());
    let mut numbers: Vec<String> = finalized
        .iter()
        .map(|(_, b)| b["invoice"]["number"].as_str().unwrap().to_owned())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 20, "no duplicate number");
}

#[tokio::test]
async fn a_late_event_changes_a_draft_on_refresh_and_never_a_finalized_invoice() {
    // Given a customer with a 3-day grace period, 10 calls in January.
    let s = basic("Acme").await;
    s.customer("cus", "UTC", Some(3)).await;
    s.now("2024-01-01T00:00:00Z");
    s.subscribe("sub", "cus", "basic", "calendar", "2024-01-01T00:00:00Z")
        .await;
    s.usage("sub", "calls", "2024-01-10T00:00:00Z", 10).await;
    s.bill("2024-02-01T00:00:00Z").await;
    let draft = &s.invoices_of("sub").await[0];
    let id = draft["lago_id"].as_str().unwrap().to_owned();
    // A draft: 3100 + 500, VAT 720; numbered `<PREFIX>-DRAFT`, issued after the grace days.
    assert_eq!(draft["status"], "draft");
    assert_eq!(draft["number"], "ACM-DRAFT");
    assert_eq!(draft["sequential_id"], serde_json::Value::Null);
    assert_eq!(draft["issuing_date"], "2024-02-04");
    assert_eq!(totals(draft), (3600, 720, 4320));

    // A late January event arrives inside the grace period: the draft changes on refresh.
    s.usage("sub", "calls", "2024-01-25T00:00:00Z", 4).await;
    s.now("2024-02-02T00:00:00Z");
    let refreshed = s
        .ok(Method::PUT, &format!("/invoices/{id}/refresh"), None)
        .await;
    // 3100 + 14 × 50 = 3800, VAT 760.
    assert_eq!(totals(&refreshed["invoice"]), (3800, 760, 4560));

    // The clock finalizes it when the grace period ends (1 Feb + 3 days).
    s.bill("2024-02-03T23:00:00Z").await;
    assert_eq!(s.invoices_of("sub").await[0]["status"], "draft");
    s.bill("2024-02-04T00:00:00Z").await;
    let finalized = &s.invoices_of("sub").await[0];
    assert_eq!(finalized["status"], "finalized");
    assert_eq!(finalized["sequential_id"], 1);
    assert_eq!(totals(finalized), (3800, 760, 4560));

    // Another late event: a refresh leaves a finalized invoice as it is.
    s.usage("sub", "calls", "2024-01-26T00:00:00Z", 2).await;
    let again = s
        .ok(Method::PUT, &format!("/invoices/{id}/refresh"), None)
        .await;
    assert_eq!(totals(&again["invoice"]), (3800, 760, 4560));
    let (status, _) = s
        .call(Method::PUT, &format!("/invoices/{id}/finalize"), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only drafts are finalized");

    // Paying it, then voiding: a paid invoice is not voidable.
    let paid = s
        .ok(
            Method::PUT,
            &format!("/invoices/{id}"),
            Some(json!({"invoice": {"payment_status": "succeeded", "metadata": [{"key": "po", "value": "42"}]}})),
        )
        .await;
    assert_eq!(paid["invoice"]["payment_status"], "succeeded");
    assert_eq!(paid["invoice"]["metadata"][0]["value"], "42");
    // Metadata is replaced as a set (lago-api's Invoices::Metadata::UpdateService): an entry
    // naming an id updates it, one without an id is added, one left out is deleted.
    let po = paid["invoice"]["metadata"][0]["lago_id"].clone();
    let both = s
        .ok(
            Method::PUT,
            &format!("/invoices/{id}"),
            Some(json!({"invoice": {"metadata": [
                {"id": po, "key": "po", "value": "43"},
                {"key": "cc", "value": "x"},
            ]}})),
        )
        .await;
    let pairs = |v: &serde_json::Value| -> Vec<(String, String, String)> {
        v["invoice"]["metadata"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["lago_id"].as_str().unwrap_or_default().to_owned(),
                    m["key"].as_str().unwrap_or_default().to_owned(),
                    m["value"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let after = pairs(&both);
    assert_eq!(after.len(), 2, "{both:#}");
    assert_eq!(
        after[0],
        (po.as_str().unwrap().to_owned(), "po".into(), "43".into())
    );
    assert_eq!((after[1].1.as_str(), after[1].2.as_str()), ("cc", "x"));
    let only_cc = s
        .ok(
            Method::PUT,
            &format!("/invoices/{id}"),
            Some(json!({"invoice": {"metadata": [{"id": after[1].0, "key": "cc", "value": "y"}]}})),
        )
        .await;
    assert_eq!(
        pairs(&only_cc),
        vec![(after[1].0.clone(), "cc".into(), "y".into())]
    );
    let (status, body) = s
        .call(Method::POST, &format!("/invoices/{id}/void"), None)
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body:#}");
    s.ok(
        Method::PUT,
        &format!("/invoices/{id}"),
        Some(json!({"invoice": {"payment_status": "failed"}})),
    )
    .await;
    let voided = s
        .ok(Method::POST, &format!("/invoices/{id}/void"), None)
        .await;
    assert_eq!(voided["invoice"]["status"], "voided");
    assert_eq!(
        voided["invoice"]["sequential_id"], 1,
        "a voided invoice keeps its number"
    );
    // Filters: by status and issuing date.
    let voided_list = s
        .ok(
            Method::GET,
            "/invoices?status=voided&issuing_date_from=2024-02-04",
            None,
        )
        .await;
    assert_eq!(voided_list["meta"]["total_count"], 1);
    let none = s
        .ok(Method::GET, "/invoices?issuing_date_to=2024-02-03", None)
        .await;
    assert_eq!(none["meta"]["total_count"], 0);
}

#[tokio::test]
async fn a_termination_in_the_hour_before_the_clock_run_leaves_the_previous_period_whole() {
    // Given `basic` (3100 a month in arrears, 0.50 per call, VAT 20 %) in UTC from 1 Jan 2025,
    // 4 calls in February and 2 on 1 Mar at 00:10.
    let s = basic("Acme").await;
    s.customer("cus", "UTC", None).await;
    s.now("2025-01-01T00:00:00Z");
    s.subscribe("sub", "cus", "basic", "calendar", "2025-01-01T00:00:00Z")
        .await;
    s.usage("sub", "calls", "2025-02-10T12:00:00Z", 4).await;
    s.usage("sub", "calls", "2025-03-01T00:10:00Z", 2).await;
    s.bill("2025-02-01T00:00:00Z").await;

    // When it is terminated on 1 Mar at 00:30, before any clock run reached 1 Mar 00:00,
    // and the next hourly run (01:00) closes both the February period and the termination.
    s.now("2025-03-01T00:30:00Z");
    s.ok(Method::DELETE, "/subscriptions/sub", None).await;
    s.bill("2025-03-01T01:00:00Z").await;

    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 3, "January, February, the termination");
    // Then February is billed in full over 1–28 Feb (SEMANTICS §6.2: in arrears, the period
    // ending the day before the billing day): 3100 + 4 × 50 = 3300, VAT 660.
    let feb = &invoices[1];
    assert_eq!(
        feb["billing_periods"][0]["invoicing_reason"],
        "subscription_periodic"
    );
    assert_eq!(
        subscription_fee(feb),
        (
            3100,
            "2025-02-01T00:00:00Z".into(),
            "2025-02-28T23:59:59Z".into()
        )
    );
    assert_eq!(
        feb["billing_periods"][0]["charges_from_datetime"],
        "2025-02-01T00:00:00Z"
    );
    assert_eq!(
        feb["billing_periods"][0]["charges_to_datetime"],
        "2025-02-28T23:59:59Z"
    );
    assert_eq!(fee(feb, "charge")["units"], "4.0");
    assert_eq!(totals(feb), (3300, 660, 3960));
    // And the termination invoice covers 1 Mar 00:00 – 00:30 only. Lago counts the
    // termination day as a whole day (§6.5: ceil of 30 min = 1 day): 1 × 3100/31 = 100, plus
    // 2 calls = 100; VAT 40.
    let term = &invoices[2];
    assert_eq!(
        term["billing_periods"][0]["invoicing_reason"],
        "subscription_terminating"
    );
    assert_eq!(
        subscription_fee(term),
        (
            100,
            "2025-03-01T00:00:00Z".into(),
            "2025-03-01T00:30:00Z".into()
        )
    );
    assert_eq!(
        term["billing_periods"][0]["charges_from_datetime"],
        "2025-03-01T00:00:00Z"
    );
    assert_eq!(
        term["billing_periods"][0]["charges_to_datetime"],
        "2025-03-01T00:30:00Z"
    );
    assert_eq!(totals(term), (200, 40, 240));
}

#[tokio::test]
async fn a_draft_refreshed_after_its_subscription_was_terminated_keeps_its_period() {
    // Given `basic` in UTC from 1 Jan 2025 for a customer with a 3-day grace period, 4 calls
    // in February and 2 on 1 Mar at 00:10; February's invoice is a draft since 1 Mar.
    let s = basic("Acme").await;
    s.customer("cus", "UTC", Some(3)).await;
    s.now("2025-01-01T00:00:00Z");
    s.subscribe("sub", "cus", "basic", "calendar", "2025-01-01T00:00:00Z")
        .await;
    s.usage("sub", "calls", "2025-02-10T12:00:00Z", 4).await;
    s.usage("sub", "calls", "2025-03-01T00:10:00Z", 2).await;
    s.bill("2025-02-01T00:00:00Z").await;
    s.bill("2025-03-01T00:00:00Z").await;
    let feb = s.invoices_of("sub").await[1].clone();
    assert_eq!(feb["status"], "draft");
    let id = feb["lago_id"].as_str().unwrap().to_owned();

    // When the subscription is terminated on 2 Mar at 10:00 and the draft is refreshed.
    s.now("2025-03-02T10:00:00Z");
    s.ok(Method::DELETE, "/subscriptions/sub", None).await;
    let refreshed = s
        .ok(Method::PUT, &format!("/invoices/{id}/refresh"), None)
        .await;

    // Then it still covers February in full: 3100 + 4 × 50 = 3300, VAT 660.
    let expected_fee = (
        3100,
        "2025-02-01T00:00:00Z".to_owned(),
        "2025-02-28T23:59:59Z".to_owned(),
    );
    assert_eq!(subscription_fee(&refreshed["invoice"]), expected_fee);
    assert_eq!(totals(&refreshed["invoice"]), (3300, 660, 3960));

    // And the clock finalizes it unchanged when its grace period ends (1 Mar + 3 days), next
    // to a termination draft for 1 Mar 00:00 – 2 Mar 10:00: 2 days × 100 + 2 calls × 50.
    s.bill("2025-03-04T00:00:00Z").await;
    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 3);
    assert_eq!(invoices[1]["status"], "finalized");
    assert_eq!(subscription_fee(&invoices[1]), expected_fee);
    assert_eq!(totals(&invoices[1]), (3300, 660, 3960));
    let term = &invoices[2];
    assert_eq!(
        subscription_fee(term),
        (
            200,
            "2025-03-01T00:00:00Z".into(),
            "2025-03-02T10:00:00Z".into()
        )
    );
    assert_eq!(totals(term), (300, 60, 360));
}

#[tokio::test]
async fn an_upgrade_prorates_the_minimum_spend_without_the_upgrade_day() {
    // Given `minimal`: 3100 a month in arrears, 0.50 per call with a 1000-cent minimum spend,
    // from 1 Mar 2024 (UTC), 4 calls on 5 Mar; upgraded to `pro` (6200) on 15 Mar at 12:00.
    let s = basic("Acme").await;
    let charge = json!({
        "billable_metric_id": s.metrics["calls"],
        "charge_model": "standard",
        "properties": {"amount": "0.5"},
        "min_amount_cents": 1000,
    });
    s.ok(
        Method::POST,
        "/plans",
        Some(json!({"plan": {
            "name": "minimal", "code": "minimal", "interval": "monthly",
            "amount_cents": 3100, "amount_currency": "EUR", "pay_in_advance": false,
            "charges": [charge],
        }})),
    )
    .await;
    s.plan("pro", "monthly", 6200, false, json!({}), &[]).await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-03-01T00:00:00Z");
    s.subscribe("up", "cus", "minimal", "calendar", "2024-03-01T00:00:00Z")
        .await;
    s.usage("up", "calls", "2024-03-05T00:00:00Z", 4).await;
    s.now("2024-03-15T12:00:00Z");
    s.subscribe("up", "cus", "pro", "calendar", "2024-03-01T00:00:00Z")
        .await;

    // When the clock closes the upgrade.
    s.bill("2024-03-15T13:00:00Z").await;

    // Then the old subscription's invoice counts 1 Mar – 15 Mar 12:00 as ceil(14.5) = 15
    // days, minus the upgrade day, which belongs to the new plan (SEMANTICS §4.12, §6.5):
    // 14 days. Fee: 14 × 3100/31 = 1400. Calls: 4 × 50 = 200. Minimum prorated:
    // 1000/31 × 14 = 451.61 → true-up round(451.61 − 200) = 252 (not 284 over 15 days).
    let invoices = s.invoices_of("up").await;
    let term = invoices
        .iter()
        .find(|i| i["billing_periods"][0]["invoicing_reason"] == "subscription_terminating")
        .unwrap_or_else(|| panic!("no termination invoice in {invoices:#?}"));
    assert_eq!(subscription_fee(term).0, 1400);
    let mut charges: Vec<i64> = term["fees"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["item"]["type"] == "charge")
        .map(|f| f["amount_cents"].as_i64().unwrap())
        .collect();
    charges.sort_unstable();
    assert_eq!(charges, vec![200, 252]);
    assert_eq!(totals(term), (1852, 0, 1852));
}

#[tokio::test]
async fn the_clock_publishes_its_subscription_changes_on_the_bus_exactly_once() {
    // Given, on 10 Feb 2024: `future` on `basic` from 1 Mar (pending until then); `ending` on
    // `basic` with `ending_at` 15 Mar; `down` on `pro` (6200) asked on 10 Mar to move to
    // `basic` (a downgrade, scheduled for 1 Apr).
    let s = basic("Acme").await;
    s.plan("pro", "monthly", 6200, false, json!({}), &[]).await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-02-10T00:00:00Z");
    let future = s
        .subscribe("future", "cus", "basic", "calendar", "2024-03-01T00:00:00Z")
        .await;
    assert_eq!(future["status"], "pending");
    let future_id = future["lago_id"].as_str().unwrap().to_owned();
    let ending = s
        .ok(
            Method::POST,
            "/subscriptions",
            Some(json!({"subscription": {
                "external_id": "ending", "external_customer_id": "cus", "plan_code": "basic",
                "billing_time": "calendar", "subscription_at": "2024-02-10T00:00:00Z",
                "ending_at": "2024-03-15T00:00:00Z",
            }})),
        )
        .await["subscription"]
        .clone();
    let ending_id = ending["lago_id"].as_str().unwrap().to_owned();
    let old = s
        .subscribe("down", "cus", "pro", "calendar", "2024-02-10T00:00:00Z")
        .await;
    let old_id = old["lago_id"].as_str().unwrap().to_owned();
    // (The API's own events are not what this test is about.)
    s.bus_events().await;
    let again = |external_id: &'static str, at: &'static str| {
        let deps = s.invoicing.clone();
        let org = s.org_id.clone();
        async move {
            invoicing::close_subscription::close_subscription(
                &deps,
                &org,
                external_id,
                support::t(at),
            )
            .await
            .unwrap()
        }
    };

    // When the clock reaches 1 Mar, then `future` starts, with one `subscription.started`
    // carrying Lago's SubscriptionWithCustomerObject (the subscription, its plan, its
    // customer), keyed by the subscription and the type as the API keys it.
    s.bill("2024-03-01T00:00:00Z").await;
    let events: Vec<serde_json::Value> = s
        .bus_events()
        .await
        .into_iter()
        .filter(|e| e["object_type"] == "subscription")
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    let started = &events[0];
    assert_eq!(started["webhook_type"], "subscription.started");
    assert_eq!(started["organization_id"], s.org_id.as_str());
    assert_eq!(started["object"]["lago_id"], future_id.as_str());
    assert_eq!(started["object"]["external_id"], "future");
    assert_eq!(started["object"]["status"], "active");
    assert_eq!(
        started["object"]["started_at"].as_str().map(|t| &t[..19]),
        Some("2024-03-01T00:00:00")
    );
    assert_eq!(started["object"]["plan"]["code"], "basic");
    assert_eq!(started["object"]["customer"]["external_id"], "cus");
    assert_eq!(
        started["unique_key"],
        invoicing::subscription_events::unique_key(&future_id, "subscription.started").as_str()
    );
    // And the same unit run again (a redelivery) publishes nothing more.
    again("future", "2024-03-01T00:00:00Z").await;
    assert_eq!(s.subscription_events().await, vec![]);

    // When the worker reaching `ending_at` crashes after the change, before the event is out
    // (its bus refuses the entry), the subscription is terminated and nothing is on the bus.
    let mut broken = s.invoicing.clone();
    let sdk = billing_aws::config::sdk_config().await;
    broken.bus = Some(billing_aws::bus::EventBus::new(&sdk, "no-such-bus"));
    let crashed = invoicing::close_subscription::close_subscription(
        &broken,
        &s.org_id,
        "ending",
        support::t("2024-03-15T00:00:00Z"),
    )
    .await;
    assert!(crashed.is_err(), "the publish failed: {crashed:?}");
    let family = s
        .store
        .subscription_family(&s.org_id, "ending")
        .await
        .unwrap();
    assert_eq!(
        family.subscriptions[0].value.status(),
        billing::catalog::subscription::SubscriptionStatus::Terminated
    );
    assert_eq!(s.subscription_events().await, vec![]);
    // Then the redelivered unit publishes `subscription.terminated` once, and never again.
    s.bill("2024-03-15T00:00:00Z").await;
    let terminated = (
        "subscription.terminated".to_owned(),
        ending_id.clone(),
        "terminated".to_owned(),
    );
    assert_eq!(s.subscription_events().await, vec![terminated]);
    again("ending", "2024-03-15T00:00:00Z").await;
    s.bill("2024-03-15T01:00:00Z").await;
    assert_eq!(s.subscription_events().await, vec![]);

    // When the downgrade takes effect on 1 Apr, then the old subscription is terminated and
    // the new one started, one event each.
    s.now("2024-03-10T00:00:00Z");
    let current = s
        .subscribe("down", "cus", "basic", "calendar", "2024-02-10T00:00:00Z")
        .await;
    assert_eq!(current["downgrade_plan_date"], "2024-04-01");
    let family = s
        .store
        .subscription_family(&s.org_id, "down")
        .await
        .unwrap();
    let new_id = family
        .subscriptions
        .iter()
        .find(|r| r.value.status() == billing::catalog::subscription::SubscriptionStatus::Pending)
        .map(|r| r.lago_id.clone())
        .unwrap();
    s.bus_events().await;
    s.bill("2024-04-01T00:00:00Z").await;
    let mut expected = vec![
        (
            "subscription.started".to_owned(),
            new_id,
            "active".to_owned(),
        ),
        (
            "subscription.terminated".to_owned(),
            old_id,
            "terminated".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(s.subscription_events().await, expected);
    again("down", "2024-04-01T00:00:00Z").await;
    assert_eq!(s.subscription_events().await, vec![]);
}

#[tokio::test]
async fn a_lease_left_by_a_crashed_holder_expires_by_the_wall_clock_whatever_instant_is_billed() {
    // Given a subscription on `basic` from 1 Jan 2024, and the numbering lease left by a
    // holder that crashed at wall-clock time 21 Nov 2026 12:00:00 (it expires 10 s later).
    let s = basic("Acme").await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-01-01T00:00:00Z");
    s.subscribe("sub", "cus", "basic", "calendar", "2024-01-01T00:00:00Z")
        .await;
    let taken = s
        .store
        .try_lock_numbering(
            &s.org_id,
            "crashed-holder",
            support::t("2026-11-21T12:00:00Z"),
            invoicing::NUMBERING_LEASE_MS,
        )
        .await
        .unwrap();
    assert!(taken);

    // When the wall clock is past the lease's end and a late run bills 1 Feb 2024 (an
    // instant long before the lease's stamp).
    s.now("2026-11-21T12:00:11Z");
    s.bill("2024-02-01T00:00:00Z").await;

    // Then the worker takes the expired lease and numbers January's invoice.
    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 1);
    assert_eq!(invoices[0]["status"], "finalized");
    assert_eq!(invoices[0]["sequential_id"], 1);
}

#[tokio::test]
async fn per_organization_numbering_counts_every_customers_invoices_in_one_gapless_sequence() {
    // Given an organization numbering per organization (Lago's `per_organization`, SEMANTICS
    // §8.8 `per_billing_entity`), four customers with a 1-day grace period and three
    // subscriptions each: twelve drafts on 1 Feb 2024.
    let s = basic("Acme").await;
    let org = s
        .ok(
            Method::PUT,
            "/organizations",
            Some(json!({"organization": {"document_numbering": "per_organization"}})),
        )
        .await;
    assert_eq!(
        org["organization"]["document_numbering"],
        "per_organization"
    );
    s.now("2024-01-01T00:00:00Z");
    for c in 0..4 {
        let customer = format!("cus{c}");
        s.customer(&customer, "UTC", Some(1)).await;
        for i in 0..3 {
            s.subscribe(
                &format!("sub{c}{i}"),
                &customer,
                "basic",
                "calendar",
                "2024-01-01T00:00:00Z",
            )
            .await;
        }
    }
    s.bill("2024-02-01T00:00:00Z").await;
    let list = s
        .ok(Method::GET, "/invoices?status=draft&per_page=100", None)
        .await;
    let ids: Vec<String> = list["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["lago_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 12);

    // When all twelve are finalized at once on 1 Feb 06:00.
    s.now("2024-02-01T06:00:00Z");
    let paths: Vec<String> = ids
        .iter()
        .map(|id| format!("/invoices/{id}/finalize"))
        .collect();
    let finalized =
        futures::future::join_all(paths.iter().map(|p| s.call(Method::PUT, p, None))).await;

    // Then the organization's sequence is 1..12 with no gap and no duplicate, each number
    // `PREFIX-YYYYMM-%03d(organization_sequential_id)` with the finalization month, and each
    // customer's own `sequential_id` still runs 1..3.
    let mut org_seq = Vec::new();
    let mut per_customer: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (status, body) in &finalized {
        assert_eq!(*status, StatusCode::OK, "{body:#}");
        let invoice = &body["invoice"];
        let id = invoice["lago_id"].as_str().unwrap();
        let stored = s
            .store
            .get::<billing::invoice::Invoice>(&s.org_id, id)
            .await
            .unwrap();
        let n = stored.value.organization_sequential_id.unwrap();
        assert_eq!(invoice["number"], format!("ACM-202402-{n:03}"));
        org_seq.push(n);
        per_customer
            .entry(stored.value.external_customer_id.clone())
            .or_default()
            .push(invoice["sequential_id"].as_u64().unwrap());
    }
    org_seq.sort_unstable();
    assert_eq!(org_seq, (1..=12).collect::<Vec<u64>>());
    assert_eq!(per_customer.len(), 4);
    for (customer, mut seq) in per_customer {
        seq.sort_unstable();
        assert_eq!(seq, vec![1, 2, 3], "{customer}");
    }
}
