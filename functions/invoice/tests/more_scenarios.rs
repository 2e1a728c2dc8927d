//! More billing scenarios over several periods, through the HTTP API with the billing clock
//! fired at chosen instants: anniversary periods in arrears, weekly, quarterly and yearly plans
//! over whole periods, a trial on a plan paid in arrears, far-timezone customers, taxes from
//! every level, charge filters, pricing groups and minimum spends, and plans paid in advance
//! that are terminated or upgraded.
//!
//! Every expected figure is derived in a comment from `SEMANTICS.md` (the section is named),
//! never read from the implementation. Day counts are inclusive (§6.5).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use http::Method;
use serde_json::{Value, json};
use support::{
    Scenario, applied_taxes, basic, charge_fees, charges_window, fee, fees, subscription_fee,
    totals, with_reason,
};

/// `(amount_cents, units)` of a charge fee.
fn amount_units(f: &Value) -> (i64, String) {
    (
        f["amount_cents"].as_i64().unwrap(),
        f["units"].as_str().unwrap().to_owned(),
    )
}

/// The only charge fee of `invoice` on metric `code`.
fn only_charge<'a>(invoice: &'a Value, code: &str) -> &'a Value {
    let all = charge_fees(invoice, code);
    assert_eq!(all.len(), 1, "one {code} fee in {invoice:#}");
    all[0]
}

fn sub_fee(amount: i64, from: &str, to: &str) -> (i64, String, String) {
    (amount, from.to_owned(), to.to_owned())
}

fn window(from: &str, to: &str) -> (String, String) {
    (from.to_owned(), to.to_owned())
}

#[tokio::test]
async fn an_anniversary_month_in_arrears_bills_each_period_the_day_after_it_ends() {
    // Given `basic` (3100 a month in arrears, 0.50 per call, VAT 20 %) subscribed on 10 Jan
    // 2024 at 14:00 UTC with an anniversary: periods 10 Jan – 9 Feb, 10 Feb – 9 Mar,
    // 10 Mar – 9 Apr (SEMANTICS §6.2).
    let s = basic("Acme").await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-01-10T14:00:00Z");
    s.subscribe("sub", "cus", "basic", "anniversary", "2024-01-10T14:00:00Z")
        .await;
    // One call before the exact start (charges start at it, §6.3), 6 in the first period, 4
    // at the very start of the second and 3 in its last second, 8 at the start of the third.
    s.usage("sub", "calls", "2024-01-10T13:00:00Z", 1).await;
    s.usage("sub", "calls", "2024-01-20T00:00:00Z", 6).await;
    s.usage("sub", "calls", "2024-02-10T00:00:00Z", 4).await;
    s.usage("sub", "calls", "2024-03-09T23:59:59Z", 3).await;
    s.usage("sub", "calls", "2024-03-10T00:00:00Z", 8).await;

    // When the clock fires just before the first anniversary, then on each one.
    s.bill("2024-02-09T23:00:00Z").await;
    assert!(
        s.invoices_of("sub").await.is_empty(),
        "nothing before 10 Feb"
    );
    s.bill("2024-02-10T00:00:00Z").await;
    s.bill("2024-03-10T00:00:00Z").await;
    s.bill("2024-04-10T00:00:00Z").await;

    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 3);
    // Period 1, 10 Jan – 9 Feb: 22 + 9 = 31 days of a 31-day period (10 Jan → 10 Feb), a first
    // period in arrears (§7 case 4): 31 × 3100/31 = 3100, from the start day's midnight.
    // Calls: 6 (the 13:00 one is before the start) × 50 = 300. VAT 20 % of 3400 = 680.
    let p1 = &invoices[0];
    assert_eq!(
        subscription_fee(p1),
        sub_fee(3100, "2024-01-10T00:00:00Z", "2024-02-09T23:59:59Z")
    );
    assert_eq!(
        charges_window(p1),
        window("2024-01-10T14:00:00Z", "2024-02-09T23:59:59Z")
    );
    assert_eq!(amount_units(only_charge(p1, "calls")), (300, "6.0".into()));
    assert_eq!(totals(p1), (3400, 680, 4080));
    assert_eq!(p1["issuing_date"], "2024-02-10");
    assert_eq!(
        p1["billing_periods"][0]["invoicing_reason"],
        "subscription_periodic"
    );
    // Period 2, 10 Feb – 9 Mar (29 days, 2024 is a leap year): billed in full, 3100 (§7 case
    // 3: an earlier subscription fee exists). Calls: 4 + 3 (both ends inclusive, §1.2) = 7 ×
    // 50 = 350. VAT 20 % of 3450 = 690.
    let p2 = &invoices[1];
    assert_eq!(
        subscription_fee(p2),
        sub_fee(3100, "2024-02-10T00:00:00Z", "2024-03-09T23:59:59Z")
    );
    assert_eq!(
        charges_window(p2),
        window("2024-02-10T00:00:00Z", "2024-03-09T23:59:59Z")
    );
    assert_eq!(amount_units(only_charge(p2, "calls")), (350, "7.0".into()));
    assert_eq!(totals(p2), (3450, 690, 4140));
    assert_eq!(p2["issuing_date"], "2024-03-10");
    // Period 3, 10 Mar – 9 Apr: 3100; 8 calls = 400; VAT 20 % of 3500 = 700.
    let p3 = &invoices[2];
    assert_eq!(
        subscription_fee(p3),
        sub_fee(3100, "2024-03-10T00:00:00Z", "2024-04-09T23:59:59Z")
    );
    assert_eq!(amount_units(only_charge(p3, "calls")), (400, "8.0".into()));
    assert_eq!(totals(p3), (3500, 700, 4200));
    assert_eq!(p3["issuing_date"], "2024-04-10");
}

#[tokio::test]
async fn weekly_plans_bill_each_week_calendar_in_advance_and_anniversary_in_arrears() {
    // Given a `calls` metric, `weekly_adv` (700 a week in advance) and `weekly` (700 a week in
    // arrears), both 0.50 per call. `wc` on `weekly_adv` (calendar) from Wednesday 3 Jan 2024
    // 09:00; `wa` on `weekly` (anniversary) from Thursday 4 Jan 2024 09:00.
    let mut s = Scenario::start("Acme").await;
    s.metric("calls").await;
    s.plan(
        "weekly_adv",
        "weekly",
        700,
        true,
        json!({}),
        &[("calls", "0.5")],
    )
    .await;
    s.plan(
        "weekly",
        "weekly",
        700,
        false,
        json!({}),
        &[("calls", "0.5")],
    )
    .await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-01-03T09:00:00Z");
    s.subscribe(
        "wc",
        "cus",
        "weekly_adv",
        "calendar",
        "2024-01-03T09:00:00Z",
    )
    .await;
    s.now("2024-01-04T09:00:00Z");
    s.subscribe("wa", "cus", "weekly", "anniversary", "2024-01-04T09:00:00Z")
        .await;
    s.usage("wc", "calls", "2024-01-05T00:00:00Z", 2).await;
    s.usage("wc", "calls", "2024-01-14T23:00:00Z", 3).await;
    s.usage("wa", "calls", "2024-01-10T12:00:00Z", 1).await;
    s.usage("wa", "calls", "2024-01-11T00:00:00Z", 4).await;

    for at in [
        "2024-01-04T10:00:00Z",
        "2024-01-08T00:00:00Z",
        "2024-01-11T00:00:00Z",
        "2024-01-15T00:00:00Z",
        "2024-01-18T00:00:00Z",
        "2024-01-25T00:00:00Z",
    ] {
        s.bill(at).await;
    }

    // Calendar weeks run Monday – Sunday (§6.1); in advance, the fee covers the week starting
    // on the billing day and the charges the week before (§6.3).
    let wc = s.invoices_of("wc").await;
    assert_eq!(wc.len(), 4, "the start, then 8, 15 and 22 Jan");
    // Start: Wednesday – Sunday = 5 days of 7, a calendar first period (§7 case 4):
    // 5 × 700/7 = 500.
    assert_eq!(
        wc[0]["billing_periods"][0]["invoicing_reason"],
        "subscription_starting"
    );
    assert_eq!(
        subscription_fee(&wc[0]),
        sub_fee(500, "2024-01-03T00:00:00Z", "2024-01-07T23:59:59Z")
    );
    assert!(fees(&wc[0], "charge").is_empty());
    // 8 Jan: the week 8–14 in full (700) and the calls of 3 Jan 09:00 – 7 Jan: 2 × 50 = 100.
    assert_eq!(
        subscription_fee(&wc[1]),
        sub_fee(700, "2024-01-08T00:00:00Z", "2024-01-14T23:59:59Z")
    );
    assert_eq!(
        charges_window(&wc[1]),
        window("2024-01-03T09:00:00Z", "2024-01-07T23:59:59Z")
    );
    assert_eq!(
        amount_units(only_charge(&wc[1], "calls")),
        (100, "2.0".into())
    );
    assert_eq!(totals(&wc[1]), (800, 0, 800));
    // 15 Jan: the week 15–21 (700) and the calls of 8–14 Jan: 3 × 50 = 150.
    assert_eq!(
        subscription_fee(&wc[2]),
        sub_fee(700, "2024-01-15T00:00:00Z", "2024-01-21T23:59:59Z")
    );
    assert_eq!(
        charges_window(&wc[2]),
        window("2024-01-08T00:00:00Z", "2024-01-14T23:59:59Z")
    );
    assert_eq!(totals(&wc[2]), (850, 0, 850));

    // Anniversary weeks run from the weekday of `subscription_at`, Thursday (§6.2); in
    // arrears each is billed the next Thursday.
    let wa = s.invoices_of("wa").await;
    assert_eq!(wa.len(), 3);
    // 4–10 Jan: 7 days × 700/7 = 700 (§7 case 4, a whole first period); 1 call = 50.
    assert_eq!(
        subscription_fee(&wa[0]),
        sub_fee(700, "2024-01-04T00:00:00Z", "2024-01-10T23:59:59Z")
    );
    assert_eq!(
        charges_window(&wa[0]),
        window("2024-01-04T09:00:00Z", "2024-01-10T23:59:59Z")
    );
    assert_eq!(totals(&wa[0]), (750, 0, 750));
    // 11–17 Jan: 700; 4 calls = 200.
    assert_eq!(
        subscription_fee(&wa[1]),
        sub_fee(700, "2024-01-11T00:00:00Z", "2024-01-17T23:59:59Z")
    );
    assert_eq!(
        amount_units(only_charge(&wa[1], "calls")),
        (200, "4.0".into())
    );
    assert_eq!(totals(&wa[1]), (900, 0, 900));
    // 18–24 Jan: 700, and no call, so no charge fee (§4.11: no units, amount or events).
    assert_eq!(
        subscription_fee(&wa[2]),
        sub_fee(700, "2024-01-18T00:00:00Z", "2024-01-24T23:59:59Z")
    );
    assert!(fees(&wa[2], "charge").is_empty());
    assert_eq!(totals(&wa[2]), (700, 0, 700));
}

#[tokio::test]
async fn quarterly_plans_bill_whole_quarters_calendar_and_from_an_anniversary_on_the_30th() {
    // Given `quarterly` (9100 a quarter in arrears, 0.50 per call). `qc` (calendar) from
    // 1 Jan 2024; `qa` (anniversary) from 30 Nov 2023.
    let mut s = Scenario::start("Acme").await;
    s.metric("calls").await;
    s.plan(
        "quarterly",
        "quarterly",
        9100,
        false,
        json!({}),
        &[("calls", "0.5")],
    )
    .await;
    s.customer("cus", "UTC", None).await;
    s.now("2023-11-30T00:00:00Z");
    s.subscribe(
        "qa",
        "cus",
        "quarterly",
        "anniversary",
        "2023-11-30T00:00:00Z",
    )
    .await;
    s.now("2024-01-01T00:00:00Z");
    s.subscribe("qc", "cus", "quarterly", "calendar", "2024-01-01T00:00:00Z")
        .await;
    s.usage("qa", "calls", "2024-02-28T23:59:59Z", 2).await;
    s.usage("qa", "calls", "2024-02-29T00:00:00Z", 5).await;
    s.usage("qc", "calls", "2024-03-31T23:59:59Z", 1).await;
    s.usage("qc", "calls", "2024-04-01T00:00:00Z", 6).await;

    s.bill("2024-02-28T23:00:00Z").await;
    assert!(
        s.invoices_of("qa").await.is_empty(),
        "the quarter ends on 28 Feb"
    );
    for at in [
        "2024-02-29T00:00:00Z",
        "2024-04-01T00:00:00Z",
        "2024-05-30T00:00:00Z",
        "2024-07-01T00:00:00Z",
    ] {
        s.bill(at).await;
    }

    // Anniversary on the 30th (§6.2): the billing months are Nov ± 3k, the day min(30, days
    // in month). February 2024 has 29 days, so the anniversary is 29 Feb and the first quarter
    // is 30 Nov – 28 Feb: 1 + 31 + 31 + 28 = 91 days of a 91-day period, 9100 (§7 case 4);
    // then 29 Feb – 29 May: 1 + 31 + 30 + 29 = 91 days, in full (§7 case 3).
    let qa = s.invoices_of("qa").await;
    assert_eq!(qa.len(), 2);
    assert_eq!(
        subscription_fee(&qa[0]),
        sub_fee(9100, "2023-11-30T00:00:00Z", "2024-02-28T23:59:59Z")
    );
    // 2 calls in the last second of the quarter = 100.
    assert_eq!(
        amount_units(only_charge(&qa[0], "calls")),
        (100, "2.0".into())
    );
    assert_eq!(totals(&qa[0]), (9200, 0, 9200));
    assert_eq!(qa[0]["issuing_date"], "2024-02-29");
    assert_eq!(
        subscription_fee(&qa[1]),
        sub_fee(9100, "2024-02-29T00:00:00Z", "2024-05-29T23:59:59Z")
    );
    assert_eq!(
        charges_window(&qa[1]),
        window("2024-02-29T00:00:00Z", "2024-05-29T23:59:59Z")
    );
    // 5 calls = 250.
    assert_eq!(totals(&qa[1]), (9350, 0, 9350));
    assert_eq!(qa[1]["issuing_date"], "2024-05-30");

    // Calendar quarters (§6.1): Q1 = 31 + 29 + 31 = 91 days, 9100 with 1 call (50); Q2 = 30 +
    // 31 + 30 = 91 days, 9100 with 6 calls (300).
    let qc = s.invoices_of("qc").await;
    assert_eq!(qc.len(), 2);
    assert_eq!(
        subscription_fee(&qc[0]),
        sub_fee(9100, "2024-01-01T00:00:00Z", "2024-03-31T23:59:59Z")
    );
    assert_eq!(totals(&qc[0]), (9150, 0, 9150));
    assert_eq!(
        subscription_fee(&qc[1]),
        sub_fee(9100, "2024-04-01T00:00:00Z", "2024-06-30T23:59:59Z")
    );
    assert_eq!(
        amount_units(only_charge(&qc[1], "calls")),
        (300, "6.0".into())
    );
    assert_eq!(totals(&qc[1]), (9400, 0, 9400));
}

#[tokio::test]
async fn yearly_plans_bill_calendar_years_in_arrears_and_a_29_february_anniversary_in_advance() {
    // Given `yearly` (36500 a year in arrears) and `yearly_adv` (36500 a year in advance),
    // both 0.50 per call. `yc` (calendar) from 1 Jul 2023; `ya` (anniversary) from 29 Feb 2024.
    let mut s = Scenario::start("Acme").await;
    s.metric("calls").await;
    s.plan(
        "yearly",
        "yearly",
        36500,
        false,
        json!({}),
        &[("calls", "0.5")],
    )
    .await;
    s.plan(
        "yearly_adv",
        "yearly",
        36500,
        true,
        json!({}),
        &[("calls", "0.5")],
    )
    .await;
    s.customer("cus", "UTC", None).await;
    s.now("2023-07-01T00:00:00Z");
    s.subscribe("yc", "cus", "yearly", "calendar", "2023-07-01T00:00:00Z")
        .await;
    s.now("2024-02-29T08:00:00Z");
    s.subscribe(
        "ya",
        "cus",
        "yearly_adv",
        "anniversary",
        "2024-02-29T08:00:00Z",
    )
    .await;
    s.usage("yc", "calls", "2023-12-31T23:59:59Z", 2).await;
    s.usage("yc", "calls", "2024-06-01T00:00:00Z", 4).await;
    s.usage("ya", "calls", "2025-02-27T12:00:00Z", 10).await;
    s.usage("ya", "calls", "2025-02-28T00:00:00Z", 1).await;

    for at in [
        "2024-01-01T00:00:00Z",
        "2024-02-29T09:00:00Z",
        "2025-01-01T00:00:00Z",
        "2025-02-28T00:00:00Z",
        "2026-01-01T00:00:00Z",
        "2026-02-28T00:00:00Z",
    ] {
        s.bill(at).await;
    }

    // Calendar years in arrears (§6.1, §6.4: the denominator is the year's days). 2023 from
    // 1 Jul: 31 + 31 + 30 + 31 + 30 + 31 = 184 days of 365: 184 × 36500/365 = 18400, with
    // 2 calls (100). 2024 whole (366 days): 36500, 4 calls (200). 2025 whole: 36500.
    let yc = s.invoices_of("yc").await;
    assert_eq!(yc.len(), 3);
    assert_eq!(
        subscription_fee(&yc[0]),
        sub_fee(18400, "2023-07-01T00:00:00Z", "2023-12-31T23:59:59Z")
    );
    assert_eq!(totals(&yc[0]), (18500, 0, 18500));
    assert_eq!(
        subscription_fee(&yc[1]),
        sub_fee(36500, "2024-01-01T00:00:00Z", "2024-12-31T23:59:59Z")
    );
    assert_eq!(
        charges_window(&yc[1]),
        window("2024-01-01T00:00:00Z", "2024-12-31T23:59:59Z")
    );
    assert_eq!(totals(&yc[1]), (36700, 0, 36700));
    assert_eq!(
        subscription_fee(&yc[2]),
        sub_fee(36500, "2025-01-01T00:00:00Z", "2025-12-31T23:59:59Z")
    );
    assert!(fees(&yc[2], "charge").is_empty());

    // A 29 Feb anchor falls on 28 Feb in common years (§6.2), so the first year is 29 Feb 2024
    // – 27 Feb 2025 (365 days) and the second 28 Feb 2025 – 27 Feb 2026. In advance +
    // anniversary, the first period is billed in full at the start (§7 case 3): 36500.
    let ya = s.invoices_of("ya").await;
    assert_eq!(ya.len(), 3);
    assert_eq!(
        ya[0]["billing_periods"][0]["invoicing_reason"],
        "subscription_starting"
    );
    assert_eq!(
        subscription_fee(&ya[0]),
        sub_fee(36500, "2024-02-29T00:00:00Z", "2025-02-27T23:59:59Z")
    );
    assert!(fees(&ya[0], "charge").is_empty());
    // 28 Feb 2025: the second year in advance, and the first year's 10 calls (500); the call
    // of 28 Feb 2025 belongs to the second year.
    assert_eq!(
        subscription_fee(&ya[1]),
        sub_fee(36500, "2025-02-28T00:00:00Z", "2026-02-27T23:59:59Z")
    );
    assert_eq!(
        charges_window(&ya[1]),
        window("2024-02-29T08:00:00Z", "2025-02-27T23:59:59Z")
    );
    assert_eq!(
        amount_units(only_charge(&ya[1], "calls")),
        (500, "10.0".into())
    );
    assert_eq!(totals(&ya[1]), (37000, 0, 37000));
    assert_eq!(ya[1]["issuing_date"], "2025-02-28");
    // 28 Feb 2026: the third year, 28 Feb 2026 – 27 Feb 2027, and 1 call (50).
    assert_eq!(
        subscription_fee(&ya[2]),
        sub_fee(36500, "2026-02-28T00:00:00Z", "2027-02-27T23:59:59Z")
    );
    assert_eq!(totals(&ya[2]), (36550, 0, 36550));
}

#[tokio::test]
async fn a_trial_on_a_plan_in_arrears_spanning_a_period_end_bills_the_days_after_it() {
    // Given `trial` (3100 a month in arrears, 0.50 per call, 20 trial days), subscribed on
    // 20 Feb 2024 00:00 (calendar): the trial ends on 20 Feb + 20 days = 11 Mar 00:00 (§7).
    let mut s = Scenario::start("Acme").await;
    s.metric("calls").await;
    s.plan(
        "trial",
        "monthly",
        3100,
        false,
        json!({"trial_period": 20}),
        &[("calls", "0.5")],
    )
    .await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-02-20T00:00:00Z");
    s.subscribe("sub", "cus", "trial", "calendar", "2024-02-20T00:00:00Z")
        .await;
    s.usage("sub", "calls", "2024-02-25T00:00:00Z", 4).await;
    s.usage("sub", "calls", "2024-03-05T00:00:00Z", 2).await;

    s.bill("2024-03-01T00:00:00Z").await;
    // The end of the trial bills nothing on a plan in arrears (only an advance plan is
    // billed at trial end, §7).
    s.bill("2024-03-11T00:00:00Z").await;
    assert_eq!(s.invoices_of("sub").await.len(), 1);
    s.bill("2024-04-01T00:00:00Z").await;
    s.bill("2024-05-01T00:00:00Z").await;

    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 3);
    // February (20–29 Feb): the trial runs on 1 Mar, so no subscription fee is created (§7,
    // "not created while a trial is running"); usage is billed: 4 calls = 200.
    let feb = &invoices[0];
    assert!(fees(feb, "subscription").is_empty(), "{feb:#}");
    assert_eq!(
        charges_window(feb),
        window("2024-02-20T00:00:00Z", "2024-02-29T23:59:59Z")
    );
    assert_eq!(amount_units(only_charge(feb, "calls")), (200, "4.0".into()));
    assert_eq!(totals(feb), (200, 0, 200));
    // March: the trial ends inside the period, so the fee counts from its end:
    // date_diff(11 Mar 00:00, 31 Mar 23:59:59) = 21 days × 3100/31 = 2100 (§7). Usage in the
    // trial is still billed: 2 calls = 100.
    let mar = &invoices[1];
    assert_eq!(
        subscription_fee(mar),
        sub_fee(2100, "2024-03-01T00:00:00Z", "2024-03-31T23:59:59Z")
    );
    assert_eq!(amount_units(only_charge(mar, "calls")), (100, "2.0".into()));
    assert_eq!(totals(mar), (2200, 0, 2200));
    // April: 3100 in full.
    assert_eq!(
        subscription_fee(&invoices[2]),
        sub_fee(3100, "2024-04-01T00:00:00Z", "2024-04-30T23:59:59Z")
    );
    assert_eq!(totals(&invoices[2]), (3100, 0, 3100));
}

#[tokio::test]
async fn far_timezone_anniversaries_bill_at_the_local_midnight_of_the_anniversary() {
    // Given `adv` (3000 a month in advance) and `arr` (3000 a month in arrears), 0.50 per
    // call. Kiritimati is UTC+14, Pago Pago UTC-11 (neither has daylight saving time).
    let mut s = Scenario::start("Acme").await;
    s.metric("calls").await;
    s.plan("adv", "monthly", 3000, true, json!({}), &[("calls", "0.5")])
        .await;
    s.plan(
        "arr",
        "monthly",
        3000,
        false,
        json!({}),
        &[("calls", "0.5")],
    )
    .await;
    s.customer("kiri", "Pacific/Kiritimati", None).await;
    s.customer("pago", "Pacific/Pago_Pago", None).await;
    // `k` on `adv` (anniversary) at 14 Jan 10:30 UTC = 15 Jan 00:30 in Kiritimati: the
    // anniversary is the 15th of the local calendar (§5).
    s.now("2024-01-14T10:30:00Z");
    s.subscribe("k", "kiri", "adv", "anniversary", "2024-01-14T10:30:00Z")
        .await;
    // `p` on `arr` (anniversary) at 31 Jan 23:00 UTC = 31 Jan 12:00 in Pago Pago: an
    // anniversary on the 31st.
    s.now("2024-01-31T23:00:00Z");
    s.subscribe("p", "pago", "arr", "anniversary", "2024-01-31T23:00:00Z")
        .await;
    // k: 2 calls at 14 Feb 23:30 local (period 1), 5 at 15 Feb 00:00 local (period 2).
    s.usage("k", "calls", "2024-02-14T09:30:00Z", 2).await;
    s.usage("k", "calls", "2024-02-14T10:00:00Z", 5).await;
    // p: 3 calls at 28 Feb 23:30 local (period 1), 1 at 29 Feb 00:00 local (period 2).
    s.usage("p", "calls", "2024-02-29T10:30:00Z", 3).await;
    s.usage("p", "calls", "2024-02-29T11:00:00Z", 1).await;

    // Kiritimati: the start invoice (in advance + anniversary: the whole first period, §7 case
    // 3), local 15 Jan – 14 Feb = 14 Jan 10:00 UTC – 14 Feb 09:59:59 UTC.
    s.bill("2024-01-14T11:00:00Z").await;
    let k = s.invoices_of("k").await;
    assert_eq!(k.len(), 1);
    assert_eq!(
        subscription_fee(&k[0]),
        sub_fee(3000, "2024-01-14T10:00:00Z", "2024-02-14T09:59:59Z")
    );
    assert_eq!(k[0]["issuing_date"], "2024-01-15");
    // Local 15 Feb 00:00 is 14 Feb 10:00 UTC: one second earlier nothing is due.
    s.bill("2024-02-14T09:59:59Z").await;
    assert_eq!(s.invoices_of("k").await.len(), 1);
    s.bill("2024-02-14T10:00:00Z").await;
    let k = s.invoices_of("k").await;
    assert_eq!(k.len(), 2);
    // Local 15 Feb – 14 Mar in advance (3000), and the calls of the first period, from the
    // exact start: 2 × 50 = 100. Issued on the local date, 15 Feb.
    assert_eq!(
        subscription_fee(&k[1]),
        sub_fee(3000, "2024-02-14T10:00:00Z", "2024-03-14T09:59:59Z")
    );
    assert_eq!(
        charges_window(&k[1]),
        window("2024-01-14T10:30:00Z", "2024-02-14T09:59:59Z")
    );
    assert_eq!(
        amount_units(only_charge(&k[1], "calls")),
        (100, "2.0".into())
    );
    assert_eq!(totals(&k[1]), (3100, 0, 3100));
    assert_eq!(k[1]["issuing_date"], "2024-02-15");
    // Pago Pago, in arrears from local 31 Jan: the 2024 anniversary in February is its last
    // day, the 29th (§6.2), so period 1 is local 31 Jan – 28 Feb = 31 Jan 11:00 UTC – 29 Feb
    // 10:59:59 UTC, billed at local 29 Feb 00:00 = 29 Feb 11:00 UTC.
    s.bill("2024-02-29T10:59:59Z").await;
    assert!(s.invoices_of("p").await.is_empty());
    s.bill("2024-02-29T11:00:00Z").await;
    let p = s.invoices_of("p").await;
    assert_eq!(p.len(), 1);
    // 29 days of a 29-day period (31 Jan → 29 Feb): 29 × 3000/29 = 3000; 3 calls = 150.
    assert_eq!(
        subscription_fee(&p[0]),
        sub_fee(3000, "2024-01-31T11:00:00Z", "2024-02-29T10:59:59Z")
    );
    assert_eq!(
        charges_window(&p[0]),
        window("2024-01-31T23:00:00Z", "2024-02-29T10:59:59Z")
    );
    assert_eq!(totals(&p[0]), (3150, 0, 3150));
    assert_eq!(p[0]["issuing_date"], "2024-02-29");
    // Then both clocks move on a period.
    s.bill("2024-03-14T10:00:00Z").await;
    s.bill("2024-03-31T11:00:00Z").await;
    let k = s.invoices_of("k").await;
    assert_eq!(k.len(), 3);
    // Local 15 Mar – 14 Apr (3000) and 5 calls (250).
    assert_eq!(
        subscription_fee(&k[2]),
        sub_fee(3000, "2024-03-14T10:00:00Z", "2024-04-14T09:59:59Z")
    );
    assert_eq!(totals(&k[2]), (3250, 0, 3250));
    assert_eq!(k[2]["issuing_date"], "2024-03-15");

    let p = s.invoices_of("p").await;
    assert_eq!(p.len(), 2);
    // Local 29 Feb – 30 Mar (the March anniversary is the 31st): 3000, 1 call = 50.
    assert_eq!(
        subscription_fee(&p[1]),
        sub_fee(3000, "2024-02-29T11:00:00Z", "2024-03-31T10:59:59Z")
    );
    assert_eq!(totals(&p[1]), (3050, 0, 3050));
    assert_eq!(p[1]["issuing_date"], "2024-03-31");
}

#[tokio::test]
async fn a_month_crossing_a_daylight_saving_change_counts_local_days() {
    // Given `nov` (3000 a month in arrears, 0.50 per call) for a New York customer from
    // 2 Nov 2024 10:00 local (14:00 UTC, EDT = UTC-4), calendar. Clocks move back to EST
    // (UTC-5) on 3 Nov, so November's local midnights are 04:00 UTC before and 05:00 UTC
    // after (§5), and November lasts 30 days and one hour of UTC time.
    let mut s = Scenario::start("Acme").await;
    s.metric("calls").await;
    s.plan(
        "nov",
        "monthly",
        3000,
        false,
        json!({}),
        &[("calls", "0.5")],
    )
    .await;
    s.customer("ny", "America/New_York", None).await;
    s.now("2024-11-02T14:00:00Z");
    s.subscribe("sub", "ny", "nov", "calendar", "2024-11-02T14:00:00Z")
        .await;
    // 2 calls at 30 Nov 23:30 EST (1 Dec 04:30 UTC), 1 at 1 Dec 00:00 EST.
    s.usage("sub", "calls", "2024-12-01T04:30:00Z", 2).await;
    s.usage("sub", "calls", "2024-12-01T05:00:00Z", 1).await;

    s.bill("2024-12-01T04:59:59Z").await;
    assert!(
        s.invoices_of("sub").await.is_empty(),
        "still November in New York"
    );
    s.bill("2024-12-01T05:00:00Z").await;
    s.bill("2025-01-01T05:00:00Z").await;
    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 2);
    // 2 – 30 Nov local. §6.5: days = ceil((to − from − (offset(from) − offset(to))) / 1 d)
    // = ceil((29 d + 1 h − ε − (−4 h − (−5 h))) / 1 d) = 29, not the naive ceil(29 d + 1 h)
    // = 30; and November is 30 days (§6.4), not 31. 29 × 3000/30 = 2900. Calls: 2 × 50 = 100.
    assert_eq!(
        subscription_fee(&invoices[0]),
        sub_fee(2900, "2024-11-02T04:00:00Z", "2024-12-01T04:59:59Z")
    );
    assert_eq!(
        charges_window(&invoices[0]),
        window("2024-11-02T14:00:00Z", "2024-12-01T04:59:59Z")
    );
    assert_eq!(totals(&invoices[0]), (3000, 0, 3000));
    assert_eq!(invoices[0]["issuing_date"], "2024-12-01");
    // December local: 3000 in full, 1 call = 50.
    assert_eq!(
        subscription_fee(&invoices[1]),
        sub_fee(3000, "2024-12-01T05:00:00Z", "2025-01-01T04:59:59Z")
    );
    assert_eq!(totals(&invoices[1]), (3050, 0, 3050));
}

#[tokio::test]
async fn taxes_come_from_the_charge_the_plan_the_customer_or_the_organization_first_found() {
    // Given four taxes: `org` 10 % (an organization default), `cus` 5.5 %, `plan` 12.5 %,
    // `chg` 7 %; metrics `calls` and `sms`; `bare` (3100 a month in arrears, 0.50 per call, no
    // tax) and `taxed` (3100 a month in arrears, taxes [plan]; calls at 0.50 with taxes [chg],
    // sms at 0.50 with none). Customers: `a` without taxes, `b` and `c` with taxes [cus].
    let mut s = Scenario::start("Acme").await;
    s.metric("calls").await;
    s.metric("sms").await;
    s.tax("org", "10", true).await;
    s.tax("cus", "5.5", false).await;
    s.tax("plan", "12.5", false).await;
    s.tax("chg", "7", false).await;
    s.plan(
        "bare",
        "monthly",
        3100,
        false,
        json!({}),
        &[("calls", "0.5")],
    )
    .await;
    s.plan_json(json!({
        "name": "taxed", "code": "taxed", "interval": "monthly", "amount_cents": 3100,
        "amount_currency": "EUR", "pay_in_advance": false, "tax_codes": ["plan"],
        "charges": [
            {"metric": "calls", "charge_model": "standard", "properties": {"amount": "0.5"},
             "tax_codes": ["chg"]},
            {"metric": "sms", "charge_model": "standard", "properties": {"amount": "0.5"}},
        ],
    }))
    .await;
    s.customer("a", "UTC", None).await;
    s.customer_with("b", "UTC", json!({"tax_codes": ["cus"]}))
        .await;
    s.customer_with("c", "UTC", json!({"tax_codes": ["cus"]}))
        .await;
    s.now("2024-01-01T00:00:00Z");
    s.subscribe("sa", "a", "bare", "calendar", "2024-01-01T00:00:00Z")
        .await;
    s.subscribe("sb", "b", "bare", "calendar", "2024-01-01T00:00:00Z")
        .await;
    s.subscribe("sc", "c", "taxed", "calendar", "2024-01-01T00:00:00Z")
        .await;
    for sub in ["sa", "sb", "sc"] {
        s.usage(sub, "calls", "2024-01-10T00:00:00Z", 3).await;
    }
    s.usage("sc", "sms", "2024-01-10T00:00:00Z", 4).await;

    s.bill("2024-02-01T00:00:00Z").await;

    // `a`: no charge, plan or customer tax, so the organization's default, 10 % (§8.4 source
    // 7). Fees 3100 and 3 × 50 = 150: fee taxes 310 and 15; invoice 10 % of 3250 = 325.
    let a = &s.invoices_of("sa").await[0];
    assert_eq!(
        applied_taxes(fee(a, "subscription")),
        vec![("org".into(), 310)]
    );
    assert_eq!(fee(a, "subscription")["taxes_amount_cents"], 310);
    assert_eq!(
        applied_taxes(only_charge(a, "calls")),
        vec![("org".into(), 15)]
    );
    assert_eq!(applied_taxes(a), vec![("org".into(), 325)]);
    assert_eq!(a["applied_taxes"][0]["fees_amount_cents"], 3250);
    assert_eq!(totals(a), (3250, 325, 3575));
    assert_eq!(a["sub_total_excluding_taxes_amount_cents"], 3250);
    assert_eq!(a["sub_total_including_taxes_amount_cents"], 3575);

    // `b`: the customer's 5.5 % replaces the organization's (source 6 before 7, not a
    // union). Fee taxes: 3100 × 5.5 % = 170.5 → 171 (half away from zero), 150 × 5.5 % = 8.25
    // → 8; invoice: 3250 × 5.5 % = 178.75 → 179.
    let b = &s.invoices_of("sb").await[0];
    assert_eq!(
        applied_taxes(fee(b, "subscription")),
        vec![("cus".into(), 171)]
    );
    assert_eq!(
        applied_taxes(only_charge(b, "calls")),
        vec![("cus".into(), 8)]
    );
    assert_eq!(applied_taxes(b), vec![("cus".into(), 179)]);
    assert_eq!(totals(b), (3250, 179, 3429));

    // `c`: the plan's 12.5 % replaces the customer's on the subscription fee and on `sms`;
    // `calls` carries its own 7 % (source 2 before 5).
    // Fee level: 3100 × 12.5 % = 387.5 → 388; calls 150 × 7 % = 10.5 → 11; sms 200 × 12.5 %
    // = 25.
    // Invoice level (§8.4): plan A = (3100 + 200) × 12.5 % = 412.5 → line 413; chg A = 10.5
    // → line 11; taxes_amount_cents = round(412.5 + 10.5) = 423, not 413 + 11 = 424 and not
    // the fee taxes' sum 388 + 11 + 25 = 424. Total 3450 + 423 = 3873.
    let c = &s.invoices_of("sc").await[0];
    let sub = fee(c, "subscription");
    assert_eq!(applied_taxes(sub), vec![("plan".into(), 388)]);
    assert_eq!(sub["taxes_amount_cents"], 388);
    assert_eq!(sub["taxes_rate"], 12.5);
    let calls = only_charge(c, "calls");
    assert_eq!(applied_taxes(calls), vec![("chg".into(), 11)]);
    assert_eq!(calls["taxes_rate"], 7.0);
    let sms = only_charge(c, "sms");
    assert_eq!(applied_taxes(sms), vec![("plan".into(), 25)]);
    assert_eq!(
        applied_taxes(c),
        vec![("chg".into(), 11), ("plan".into(), 413)]
    );
    let base = |code: &str| {
        c["applied_taxes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["tax_code"] == code)
            .unwrap()["fees_amount_cents"]
            .clone()
    };
    assert_eq!(base("plan"), 3300);
    assert_eq!(base("chg"), 150);
    assert_eq!(totals(c), (3450, 423, 3873));
}

#[tokio::test]
async fn filters_groups_and_a_minimum_spend_make_one_fee_per_bucket_and_a_true_up() {
    // Given `requests` (count) filterable by region ∈ {eu, us} and `builds` (count); plan
    // `usage` (1000 a month in arrears) with two charges:
    // * requests, standard 1 EUR (the default bucket), filters eu at 2 EUR ("Europe") and us
    //   at 3 EUR ("Americas"), shown as "Requests", with a 25 EUR minimum spend;
    // * builds, package of 10 at 10 EUR, grouped by `workspace`.
    let mut s = Scenario::start("Acme").await;
    s.metric_with(
        "requests",
        json!({"filters": [{"key": "region", "values": ["eu", "us"]}]}),
    )
    .await;
    s.metric("builds").await;
    s.plan_json(json!({
        "name": "usage", "code": "usage", "interval": "monthly", "amount_cents": 1000,
        "amount_currency": "EUR", "pay_in_advance": false,
        "charges": [
            {"metric": "requests", "charge_model": "standard", "properties": {"amount": "1"},
             "invoice_display_name": "Requests", "min_amount_cents": 2500,
             "filters": [
                {"invoice_display_name": "Europe", "properties": {"amount": "2"},
                 "values": {"region": ["eu"]}},
                {"invoice_display_name": "Americas", "properties": {"amount": "3"},
                 "values": {"region": ["us"]}},
             ]},
            {"metric": "builds", "charge_model": "package",
             "properties": {"amount": "10", "package_size": 10, "free_units": 0,
                            "pricing_group_keys": ["workspace"]}},
        ],
    }))
    .await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-01-01T00:00:00Z");
    s.subscribe("sub", "cus", "usage", "calendar", "2024-01-01T00:00:00Z")
        .await;
    // January: 3 eu, 4 us and 1 unfiltered request; builds: 3 in alpha, 12 in beta, 1 with no
    // workspace.
    s.usage_with(
        "sub",
        "requests",
        "2024-01-05T00:00:00Z",
        3,
        &[("region", "eu")],
    )
    .await;
    s.usage_with(
        "sub",
        "requests",
        "2024-01-06T00:00:00Z",
        4,
        &[("region", "us")],
    )
    .await;
    s.usage("sub", "requests", "2024-01-07T00:00:00Z", 1).await;
    s.usage_with(
        "sub",
        "builds",
        "2024-01-08T00:00:00Z",
        3,
        &[("workspace", "alpha")],
    )
    .await;
    s.usage_with(
        "sub",
        "builds",
        "2024-01-09T00:00:00Z",
        12,
        &[("workspace", "beta")],
    )
    .await;
    s.usage("sub", "builds", "2024-01-10T00:00:00Z", 1).await;
    // February: 10 eu and 3 us requests, no build.
    s.usage_with(
        "sub",
        "requests",
        "2024-02-05T00:00:00Z",
        10,
        &[("region", "eu")],
    )
    .await;
    s.usage_with(
        "sub",
        "requests",
        "2024-02-06T00:00:00Z",
        3,
        &[("region", "us")],
    )
    .await;

    // March: 2 eu requests only.
    s.usage_with(
        "sub",
        "requests",
        "2024-03-05T00:00:00Z",
        2,
        &[("region", "eu")],
    )
    .await;

    s.bill("2024-02-01T00:00:00Z").await;
    s.bill("2024-03-01T00:00:00Z").await;
    s.bill("2024-04-01T00:00:00Z").await;
    let invoices = s.invoices_of("sub").await;
    assert_eq!(invoices.len(), 3);

    // January, requests (§1.3: one fee per filter plus the default bucket, each priced with
    // its own properties): Europe 3 × 2 = 6 EUR = 600, Americas 4 × 3 = 1200, default 1 × 1
    // = 100. Used 1900 < the minimum 2500 × 31/31 days (§4.12), so a true-up fee of
    // 2500 − 1900 = 600, linked to the default-bucket fee.
    let jan = &invoices[0];
    let requests = charge_fees(jan, "requests");
    assert_eq!(requests.len(), 4, "{jan:#}");
    let by_filter = |name: Option<&str>| -> &Value {
        requests
            .iter()
            .copied()
            .find(|f| {
                f["item"]["filter_invoice_display_name"].as_str() == name
                    && f["lago_true_up_parent_fee_id"].is_null()
            })
            .unwrap_or_else(|| panic!("no {name:?} fee in {requests:#?}"))
    };
    let europe = by_filter(Some("Europe"));
    assert_eq!(amount_units(europe), (600, "3.0".into()));
    assert_eq!(europe["item"]["filters"], json!({"region": ["eu"]}));
    assert_eq!(europe["item"]["invoice_display_name"], "Requests");
    let americas = by_filter(Some("Americas"));
    assert_eq!(amount_units(americas), (1200, "4.0".into()));
    assert_eq!(americas["item"]["filters"], json!({"region": ["us"]}));
    let default = by_filter(None);
    assert_eq!(amount_units(default), (100, "1.0".into()));
    assert!(default["item"]["filters"].is_null());
    let true_up = requests
        .iter()
        .find(|f| !f["lago_true_up_parent_fee_id"].is_null())
        .unwrap();
    assert_eq!(amount_units(true_up), (600, "1.0".into()));
    assert_eq!(true_up["lago_true_up_parent_fee_id"], default["lago_id"]);
    assert_eq!(default["lago_true_up_fee_id"], true_up["lago_id"]);
    // Builds (§1.4: the charge model restarts per group, each group its own fee): alpha
    // ceil(3/10) = 1 package = 1000, beta ceil(12/10) = 2 = 2000, no workspace (the nil group)
    // 1 = 1000. (Ungrouped it would be ceil(16/10) = 2 packages = 2000.)
    let builds = charge_fees(jan, "builds");
    assert_eq!(builds.len(), 3, "{jan:#}");
    let group = |w: Value| -> (i64, String) {
        amount_units(
            builds
                .iter()
                .copied()
                .find(|f| f["item"]["grouped_by"] == json!({ "workspace": w }))
                .unwrap_or_else(|| panic!("no {w} group in {builds:#?}")),
        )
    };
    assert_eq!(group(json!("alpha")), (1000, "3.0".into()));
    assert_eq!(group(json!("beta")), (2000, "12.0".into()));
    assert_eq!(group(Value::Null), (1000, "1.0".into()));
    // 1000 + 600 + 1200 + 100 + 600 + 1000 + 2000 + 1000 = 7500, no tax.
    assert_eq!(subscription_fee(jan).0, 1000);
    assert_eq!(totals(jan), (7500, 0, 7500));

    // February: Europe 10 × 2 = 2000, Americas 3 × 3 = 900; no default fee (no usage, §4.11).
    // Used 2900 ≥ the minimum 2500 × 29/29: no true-up. No builds, no builds fee.
    // 1000 + 2000 + 900 = 3900.
    let feb = &invoices[1];
    let requests = charge_fees(feb, "requests");
    let mut amounts: Vec<(Option<&str>, i64)> = requests
        .iter()
        .map(|f| {
            (
                f["item"]["filter_invoice_display_name"].as_str(),
                f["amount_cents"].as_i64().unwrap(),
            )
        })
        .collect();
    amounts.sort();
    assert_eq!(
        amounts,
        vec![(Some("Americas"), 900), (Some("Europe"), 2000)]
    );
    assert!(charge_fees(feb, "builds").is_empty());
    assert_eq!(totals(feb), (3900, 0, 3900));
    // March: Europe 2 × 2 = 400, below the minimum 2500 × 31/31: a true-up of 2100. It is
    // linked to the default bucket's fee, which is kept at 0 (no usage) because it carries
    // the true-up (§4.11, §4.12); Americas (no units, amount or events) has no fee.
    // 1000 + 400 + 0 + 2100 = 3500.
    let mar = &invoices[2];
    let requests = charge_fees(mar, "requests");
    assert_eq!(requests.len(), 3, "{mar:#}");
    let europe = requests
        .iter()
        .find(|f| f["item"]["filter_invoice_display_name"] == "Europe")
        .unwrap();
    assert_eq!(amount_units(europe), (400, "2.0".into()));
    let default = requests
        .iter()
        .find(|f| {
            f["item"]["filter_invoice_display_name"].is_null()
                && f["lago_true_up_parent_fee_id"].is_null()
        })
        .unwrap();
    assert_eq!(amount_units(default), (0, "0.0".into()));
    let true_up = requests
        .iter()
        .find(|f| !f["lago_true_up_parent_fee_id"].is_null())
        .unwrap();
    assert_eq!(true_up["amount_cents"], 2100);
    assert_eq!(true_up["lago_true_up_parent_fee_id"], default["lago_id"]);
    assert_eq!(default["lago_true_up_fee_id"], true_up["lago_id"]);
    assert_eq!(totals(mar), (3500, 0, 3500));
}

#[tokio::test]
async fn a_plan_in_advance_terminated_or_upgraded_mid_period_bills_its_usage_but_no_new_fee() {
    // Given `adv` (3100 a month in advance, 0.50 per call) and `pro_adv` (6200 a month in
    // advance, 1 EUR per call); `t` and `u` on `adv` (calendar) from 1 Jan 2024.
    let mut s = Scenario::start("Acme").await;
    s.metric("calls").await;
    s.plan("adv", "monthly", 3100, true, json!({}), &[("calls", "0.5")])
        .await;
    s.plan(
        "pro_adv",
        "monthly",
        6200,
        true,
        json!({}),
        &[("calls", "1")],
    )
    .await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-01-01T00:00:00Z");
    s.subscribe("t", "cus", "adv", "calendar", "2024-01-01T00:00:00Z")
        .await;
    s.subscribe("u", "cus", "adv", "calendar", "2024-01-01T00:00:00Z")
        .await;
    s.usage("t", "calls", "2024-01-15T00:00:00Z", 4).await;
    s.usage("t", "calls", "2024-02-05T00:00:00Z", 6).await;
    s.usage("u", "calls", "2024-02-20T00:00:00Z", 2).await;
    s.usage("u", "calls", "2024-03-05T00:00:00Z", 3).await;
    s.bill("2024-01-01T01:00:00Z").await;
    s.bill("2024-02-01T00:00:00Z").await;

    // When `t` is terminated on 10 Feb 12:00.
    s.now("2024-02-10T12:00:00Z");
    s.ok(Method::DELETE, "/subscriptions/t", None).await;
    s.bill("2024-02-10T13:00:00Z").await;
    s.bill("2024-03-01T00:00:00Z").await;

    let t = s.invoices_of("t").await;
    assert_eq!(t.len(), 3, "start, 1 Feb, termination; nothing on 1 Mar");
    // Start: 1–31 Jan in advance, 31 × 3100/31 = 3100. 1 Feb: February in advance (3100)
    // and January's 4 calls (200).
    assert_eq!(
        subscription_fee(&t[0]),
        sub_fee(3100, "2024-01-01T00:00:00Z", "2024-01-31T23:59:59Z")
    );
    assert_eq!(
        subscription_fee(&t[1]),
        sub_fee(3100, "2024-02-01T00:00:00Z", "2024-02-29T23:59:59Z")
    );
    assert_eq!(totals(&t[1]), (3300, 0, 3300));
    // Termination: February was paid in advance, so no subscription fee (§7: a terminated
    // subscription's fee is created only for a plan in arrears); the usage of 1 Feb – 10 Feb
    // 12:00 is billed in arrears: 6 calls = 300.
    let term = with_reason(&t, "subscription_terminating");
    assert!(fees(term, "subscription").is_empty(), "{term:#}");
    assert_eq!(
        charges_window(term),
        window("2024-02-01T00:00:00Z", "2024-02-10T12:00:00Z")
    );
    assert_eq!(
        amount_units(only_charge(term, "calls")),
        (300, "6.0".into())
    );
    // The unused days of February paid in advance come back as a credit note (SEMANTICS §7,
    // termination of a pay-in-advance plan): 29 Feb − 10 Feb = 19 days × 3100/29 = 2031.03 →
    // 2031, spent after taxes on this invoice first: 300 of it, so nothing is due.
    assert_eq!(totals(term), (300, 0, 0));
    assert_eq!(term["credit_notes_amount_cents"], 300);

    // When `u` is upgraded to `pro_adv` on 10 Mar 12:00 (6200 × 12 ≥ 3100 × 12, §7).
    s.now("2024-03-10T12:00:00Z");
    s.subscribe("u", "cus", "pro_adv", "calendar", "2024-01-01T00:00:00Z")
        .await;
    // (Usage arrives as it happens: the calls of 20 Mar come after the upgrade.)
    s.usage("u", "calls", "2024-03-20T00:00:00Z", 5).await;
    s.bill("2024-03-10T13:00:00Z").await;
    s.bill("2024-04-01T00:00:00Z").await;

    let u = s.invoices_of("u").await;
    let plan_of = |i: &Value| -> String {
        i["fees"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["item"]["type"] == "subscription")
            .map(|f| f["item"]["code"].as_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    // 1 Mar on adv: March in advance (3100) and February's 2 calls (100).
    let mar = u
        .iter()
        .find(|i| {
            plan_of(i) == "adv"
                && i["billing_periods"][0]["subscription_from_datetime"] == "2024-03-01T00:00:00Z"
        })
        .unwrap_or_else(|| panic!("no March invoice in {u:#?}"));
    // The customer's credit note from `t`'s termination still holds 2031 − 300 = 1731 (credit
    // notes belong to the customer, §8.5): 3200 − 1731 = 1469 is due.
    assert_eq!(totals(mar), (3200, 0, 1469));
    assert_eq!(mar["credit_notes_amount_cents"], 1731);
    // The old plan's termination: no subscription fee (March was paid), the calls of 1 Mar –
    // 10 Mar 12:00 in arrears at the old price: 3 × 50 = 150.
    let term = with_reason(&u, "subscription_terminating");
    assert!(fees(term, "subscription").is_empty(), "{term:#}");
    assert_eq!(
        charges_window(term),
        window("2024-03-01T00:00:00Z", "2024-03-10T12:00:00Z")
    );
    // The upgrade credits the unused days of March, the upgrade day included (the new plan
    // bills it, §7: an upgrade counts one more day, as the vector "upgrade on the last day of a
    // 31-day period → 1 day" shows): 31 Mar − 10 Mar + 1 = 22 days × 3100/31 = 2200, spent on
    // this invoice (150) first.
    assert_eq!(totals(term), (150, 0, 0));
    assert_eq!(term["credit_notes_amount_cents"], 150);
    // The new plan's first invoice, in advance from the upgrade (§7 case 2):
    // date_diff(10 Mar 12:00, 31 Mar 23:59:59) = ceil(21.5) = 22 days × 6200/31 = 4400.
    let started: Vec<&Value> = u.iter().filter(|i| plan_of(i) == "pro_adv").collect();
    assert_eq!(started.len(), 2, "the upgrade, then April");
    assert_eq!(
        subscription_fee(started[0]),
        sub_fee(4400, "2024-03-10T12:00:00Z", "2024-03-31T23:59:59Z")
    );
    assert!(fees(started[0], "charge").is_empty());
    // The rest of the upgrade's credit, 2200 − 150 = 2050, is spent here: 4400 − 2050 = 2350.
    assert_eq!(totals(started[0]), (4400, 0, 2350));
    assert_eq!(started[0]["credit_notes_amount_cents"], 2050);
    // 1 Apr: April in advance (6200) and the new plan's calls since the upgrade: 5 × 1 EUR
    // = 500.
    assert_eq!(
        subscription_fee(started[1]),
        sub_fee(6200, "2024-04-01T00:00:00Z", "2024-04-30T23:59:59Z")
    );
    assert_eq!(
        charges_window(started[1]),
        window("2024-03-10T12:00:00Z", "2024-03-31T23:59:59Z")
    );
    assert_eq!(
        amount_units(only_charge(started[1], "calls")),
        (500, "5.0".into())
    );
    assert_eq!(totals(started[1]), (6700, 0, 6700));
    assert_eq!(started[1]["credit_notes_amount_cents"], 0);
}
