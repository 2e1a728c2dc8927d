//! The subscription fee of a period, and the credit for unused days when a pay-in-advance plan
//! is terminated (SEMANTICS §7).
//!
//! Lago computes these in `Float` cents (`days × (amount / period_days)`); this module divides
//! first and multiplies second in `Decimal`, the same order of operations, then rounds once,
//! half away from zero.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};

use crate::{
    money::{Money, MoneyError, RoundingRule, round_cents},
    period::{BillingTime, DatePeriod, PlanChange, date_diff_with_timezone, local_date},
};

/// Which of Lago's subscription-fee rules applies to an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionFeeCase {
    /// A pay-in-arrears subscription terminated in the period (plain termination or upgrade):
    /// the days from the period start to the termination, one less for an upgrade.
    Termination {
        /// The termination is an upgrade (the upgrade day belongs to the new plan).
        upgrade: bool,
    },
    /// The first invoice of a subscription created by an upgrade: the days from the upgrade to
    /// the period end, over the whole period.
    FirstAfterUpgrade,
    /// A full period (recurring invoices, first anniversary invoices in advance, backdated
    /// subscriptions); a trial ending inside still prorates.
    Full,
    /// A first, partial period (calendar start mid-period, first invoice after a downgrade).
    FirstPeriod,
}

/// The facts that choose a [`SubscriptionFeeCase`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriptionFeeFacts {
    /// The subscription is terminated (this is its termination invoice).
    pub terminated: bool,
    /// How the termination happened, when it is a plan change.
    pub terminated_by: Option<PlanChange>,
    /// The plan is paid in advance.
    pub pay_in_advance: bool,
    /// Anniversary billing (else calendar).
    pub anniversary: bool,
    /// A subscription fee was already billed for this subscription.
    pub already_billed: bool,
    /// This subscription was created by an upgrade.
    pub created_from_upgrade: bool,
    /// This subscription was created by a downgrade.
    pub created_from_downgrade: bool,
    /// `started_at` is before the day the subscription was created (backdated).
    pub started_in_past: bool,
    /// `started_at` is before the beginning of the previous period.
    pub started_before_previous_period: bool,
}

impl SubscriptionFeeFacts {
    /// Lago's decision order (SEMANTICS §7): terminated in arrears (not by a downgrade), then
    /// first invoice after an upgrade, then the full-amount cases, else a first period.
    pub fn case(&self) -> SubscriptionFeeCase {
        if self.terminated
            && !self.pay_in_advance
            && self.terminated_by != Some(PlanChange::Downgrade)
        {
            return SubscriptionFeeCase::Termination {
                upgrade: self.terminated_by == Some(PlanChange::Upgrade),
            };
        }
        if self.created_from_upgrade && !self.already_billed {
            return SubscriptionFeeCase::FirstAfterUpgrade;
        }
        let plan_change = self.created_from_upgrade || self.created_from_downgrade;
        if (self.pay_in_advance && self.anniversary && !plan_change)
            || self.already_billed
            || (self.pay_in_advance && self.started_in_past)
            || self.started_before_previous_period
        {
            return SubscriptionFeeCase::Full;
        }
        SubscriptionFeeCase::FirstPeriod
    }
}

/// Whether a plan's billing time is anniversary (a helper for building facts).
pub fn is_anniversary(billing_time: BillingTime) -> bool {
    billing_time == BillingTime::Anniversary
}

/// What a subscription fee is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionFeeInput {
    plan_amount: Money,
    case: SubscriptionFeeCase,
    from_datetime: DateTime<Utc>,
    to_datetime: DateTime<Utc>,
    period_duration_days: u32,
    trial_end: Option<DateTime<Utc>>,
    timezone: Tz,
}

impl SubscriptionFeeInput {
    /// A fee for `plan_amount` over the boundaries `[from, to]` (for a termination, `to` is
    /// `terminated_at`), prorated over a period of `period_duration_days`.
    pub fn new(
        plan_amount: Money,
        case: SubscriptionFeeCase,
        from_datetime: DateTime<Utc>,
        to_datetime: DateTime<Utc>,
        period_duration_days: u32,
        timezone: Tz,
    ) -> Self {
        Self {
            plan_amount,
            case,
            from_datetime,
            to_datetime,
            period_duration_days,
            trial_end: None,
            timezone,
        }
    }

    /// The subscription's trial ends at `trial_end` (see [`crate::period::trial_end`]).
    pub fn with_trial_end(mut self, trial_end: DateTime<Utc>) -> Self {
        self.trial_end = Some(trial_end);
        self
    }
}

/// A computed subscription fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionFee {
    amount: Money,
    precise_amount_cents: Decimal,
    days: Option<i64>,
}

impl SubscriptionFee {
    /// The invoiced amount.
    pub fn amount(&self) -> Money {
        self.amount
    }
    /// The unrounded amount in minor units.
    pub fn precise_amount_cents(&self) -> Decimal {
        self.precise_amount_cents
    }
    /// The days billed, when the fee is prorated.
    pub fn days(&self) -> Option<i64> {
        self.days
    }
}

/// `amount / period_days`, the price of one day in minor units.
pub fn single_day_price(plan_amount: Money, period_duration_days: u32) -> Decimal {
    if period_duration_days == 0 {
        return Decimal::ZERO;
    }
    Decimal::from(plan_amount.cents()) / Decimal::from(period_duration_days)
}

/// Computes the subscription fee of one invoice.
pub fn subscription_fee(input: &SubscriptionFeeInput) -> Result<SubscriptionFee, MoneyError> {
    let currency = input.plan_amount.currency();
    let zero = SubscriptionFee {
        amount: Money::zero(currency),
        precise_amount_cents: Decimal::ZERO,
        days: Some(0),
    };
    let mut from = input.from_datetime;
    let to = input.to_datetime;
    if let Some(trial_end) = input.trial_end {
        if trial_end >= to {
            return Ok(zero);
        }
        if trial_end > from {
            from = trial_end;
        } else if input.case == SubscriptionFeeCase::Full {
            return full(input.plan_amount);
        }
    } else if input.case == SubscriptionFeeCase::Full {
        return full(input.plan_amount);
    }
    let mut days = date_diff_with_timezone(from, to, input.timezone);
    if input.case == (SubscriptionFeeCase::Termination { upgrade: true }) {
        days = (days - 1).max(0);
    }
    let precise = single_day_price(input.plan_amount, input.period_duration_days)
        .checked_mul(Decimal::from(days))
        .ok_or(MoneyError::Overflow)?;
    Ok(SubscriptionFee {
        amount: Money::new(
            round_cents(precise, RoundingRule::HalfAwayFromZero)?,
            currency,
        ),
        precise_amount_cents: precise,
        days: Some(days),
    })
}

fn full(plan_amount: Money) -> Result<SubscriptionFee, MoneyError> {
    Ok(SubscriptionFee {
        amount: plan_amount,
        precise_amount_cents: Decimal::from(plan_amount.cents()),
        days: None,
    })
}

/// The credit note for the unused days of a terminated pay-in-advance plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminationCredit {
    item_amount: Money,
    item_precise_amount_cents: Decimal,
    taxes_amount: Money,
    total_amount: Money,
    remaining_days: i64,
}

impl TerminationCredit {
    /// The credited fee amount, rounded (`sub_total_excluding_taxes_amount_cents`).
    pub fn item_amount(&self) -> Money {
        self.item_amount
    }
    /// The unrounded credited amount, truncated at 5 decimals as Lago stores it.
    pub fn item_precise_amount_cents(&self) -> Decimal {
        self.item_precise_amount_cents
    }
    /// Taxes on the credited amount.
    pub fn taxes_amount(&self) -> Money {
        self.taxes_amount
    }
    /// Credit total (`credit_amount_cents` = `total_amount_cents`).
    pub fn total_amount(&self) -> Money {
        self.total_amount
    }
    /// Days credited.
    pub fn remaining_days(&self) -> i64 {
        self.remaining_days
    }
}

/// SEMANTICS §7, termination of a pay-in-advance plan: the days from the termination date to
/// the end of its period are credited at the day price of `plan_amount` (the plan amount the
/// last subscription fee was priced from, over the whole period), capped at what is left of
/// that fee (`fee_amount − already_credited`); taxes (`tax_rate_percent`, the sum of the
/// fee's rates) are computed on the rounded credit and rounded once.
///
/// `remaining_days = period end − termination date`; an upgrade credits one day more, the
/// upgrade day being billed by the new plan (SEMANTICS' examples: an upgrade on the last day
/// of a 31-day period credits 1 day; a termination on the first day of a 30-day period
/// credits 29). A termination after the period (a downgrade at its boundary) credits nothing.
#[allow(clippy::too_many_arguments)]
pub fn termination_credit(
    plan_amount: Money,
    fee_amount: Money,
    period: DatePeriod,
    terminated_at: DateTime<Utc>,
    timezone: Tz,
    upgrade: bool,
    already_credited: Money,
    tax_rate_percent: Decimal,
) -> Result<TerminationCredit, MoneyError> {
    let currency = fee_amount.currency();
    if plan_amount.currency() != currency {
        return Err(MoneyError::CurrencyMismatch {
            expected: currency,
            found: plan_amount.currency(),
        });
    }
    let end = period.end();
    let mut remaining_days = (end - local_date(terminated_at, timezone)).num_days();
    if upgrade && remaining_days >= 0 {
        remaining_days += 1;
    }
    let remaining_days = remaining_days.max(0);
    let cap = Decimal::from(fee_amount.checked_sub(&already_credited)?.cents()).max(Decimal::ZERO);
    let base = single_day_price(plan_amount, period.days())
        .checked_mul(Decimal::from(remaining_days))
        .ok_or(MoneyError::Overflow)?
        .min(cap);
    let item = round_cents(base, RoundingRule::HalfAwayFromZero)?;
    let taxes = round_cents(
        Decimal::from(item) * tax_rate_percent / Decimal::ONE_HUNDRED,
        RoundingRule::HalfAwayFromZero,
    )?;
    let item_amount = Money::new(item, currency);
    let taxes_amount = Money::new(taxes, currency);
    Ok(TerminationCredit {
        item_amount,
        item_precise_amount_cents: base.round_dp_with_strategy(5, RoundingStrategy::ToZero),
        taxes_amount,
        total_amount: item_amount.checked_add(&taxes_amount)?,
        remaining_days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    #[test]
    fn a_first_calendar_year_started_mid_year_is_prorated_over_365_days() {
        // SEMANTICS §7: yearly started 15 Mar 2022 → 292 days (Mar 15 – Dec 31) × 100/365 =
        // 80.0 → 80.
        let input = SubscriptionFeeInput::new(
            Money::new(100, Currency::EUR),
            SubscriptionFeeFacts::default().case(),
            utc("2022-03-15T00:00:00Z"),
            utc("2022-12-31T23:59:59Z"),
            365,
            Tz::UTC,
        );
        let fee = subscription_fee(&input);
        assert_eq!(
            fee.map(|f| (f.amount().cents(), f.days())),
            Ok((80, Some(292)))
        );
    }

    #[test]
    fn the_decision_order_matches_lago() {
        let base = SubscriptionFeeFacts::default();
        let terminated = SubscriptionFeeFacts {
            terminated: true,
            terminated_by: Some(PlanChange::Upgrade),
            ..base
        };
        assert_eq!(
            terminated.case(),
            SubscriptionFeeCase::Termination { upgrade: true }
        );
        // A downgrade termination is not billed by the termination rule.
        let downgraded = SubscriptionFeeFacts {
            terminated: true,
            terminated_by: Some(PlanChange::Downgrade),
            already_billed: true,
            ..base
        };
        assert_eq!(downgraded.case(), SubscriptionFeeCase::Full);
        let advance_anniversary = SubscriptionFeeFacts {
            pay_in_advance: true,
            anniversary: true,
            ..base
        };
        assert_eq!(advance_anniversary.case(), SubscriptionFeeCase::Full);
        let after_downgrade = SubscriptionFeeFacts {
            pay_in_advance: true,
            anniversary: true,
            created_from_downgrade: true,
            ..base
        };
        assert_eq!(after_downgrade.case(), SubscriptionFeeCase::FirstPeriod);
        assert_eq!(base.case(), SubscriptionFeeCase::FirstPeriod);
    }

    #[test]
    fn a_termination_credit_never_exceeds_what_is_left_of_the_fee() {
        // 20000 over 30 days, terminated on the first day: 29 days = 19333.33, but only 5000
        // is left after earlier credit notes → 5000 + 25 % tax.
        let period = crate::period::BillingSchedule::new(
            crate::period::PlanInterval::Monthly,
            BillingTime::Anniversary,
            utc("2025-09-18T16:00:00Z"),
            Tz::UTC,
        )
        .period_containing(chrono::NaiveDate::from_ymd_opt(2025, 9, 18).unwrap_or_default());
        let Ok(period) = period else { panic!("period") };
        let credit = termination_credit(
            Money::new(20_000, Currency::EUR),
            Money::new(20_000, Currency::EUR),
            period,
            utc("2025-09-18T16:40:00Z"),
            Tz::UTC,
            false,
            Money::new(15_000, Currency::EUR),
            Decimal::from(25),
        );
        assert_eq!(
            credit.map(|c| (
                c.item_amount().cents(),
                c.taxes_amount().cents(),
                c.total_amount().cents()
            )),
            Ok((5_000, 1_250, 6_250))
        );
    }

    /// One of SEMANTICS §7's termination-credit vectors: a plan of `amount` cents on
    /// `schedule`, terminated at `terminated_at` (an upgrade when `upgrade`), taxed at
    /// `rate` %.
    fn credit_of(
        schedule: crate::period::BillingSchedule,
        amount: i64,
        terminated_at: &str,
        upgrade: bool,
        rate: Decimal,
    ) -> (i64, i64, i64, i64) {
        let at = utc(terminated_at);
        let Ok(period) = schedule.period_containing(local_date(at, Tz::UTC)) else {
            panic!("period of {terminated_at}")
        };
        let plan = Money::new(amount, Currency::EUR);
        let Ok(c) = termination_credit(
            plan,
            plan,
            period,
            at,
            Tz::UTC,
            upgrade,
            Money::zero(Currency::EUR),
            rate,
        ) else {
            panic!("credit of {terminated_at}")
        };
        (
            c.remaining_days(),
            c.item_amount().cents(),
            c.taxes_amount().cents(),
            c.total_amount().cents(),
        )
    }

    #[test]
    fn the_termination_credit_vectors_of_semantics_hold() {
        use crate::period::{BillingSchedule, PlanInterval};
        let monthly = BillingSchedule::new(
            PlanInterval::Monthly,
            BillingTime::Anniversary,
            utc("2025-09-18T10:00:00Z"),
            Tz::UTC,
        );
        // Given a monthly anniversary plan from 18 Sep 2025 (period 18 Sep - 17 Oct, 30 days),
        // when it is terminated the same day, then 29 days are credited:
        // 29/30 × 20000 = 19333.33 → 19333, 25 % tax = 4833.25 → 4833, total 24166.
        assert_eq!(
            credit_of(
                monthly,
                20_000,
                "2025-09-18T16:00:00Z",
                false,
                Decimal::from(25)
            ),
            (29, 19_333, 4_833, 24_166),
            "20000 monthly"
        );
        // 29/30 × 16000 = 15466.67 → 15467, 25 % = 3866.75 → 3867, total 19334.
        assert_eq!(
            credit_of(
                monthly,
                16_000,
                "2025-09-18T16:00:00Z",
                false,
                Decimal::from(25)
            ),
            (29, 15_467, 3_867, 19_334),
            "16000 monthly"
        );
        // Given a weekly calendar plan (Monday - Sunday) of 2999, when it is terminated on a
        // Monday (1 Dec 2025), then 6 days: 6/7 × 2999 = 2570.57 → 2571; 23.33 % = 599.81 →
        // 600; total 3171.
        let weekly = BillingSchedule::new(
            PlanInterval::Weekly,
            BillingTime::Calendar,
            utc("2025-11-01T00:00:00Z"),
            Tz::UTC,
        );
        assert_eq!(
            credit_of(
                weekly,
                2_999,
                "2025-12-01T09:00:00Z",
                false,
                Decimal::new(2333, 2)
            ),
            (6, 2_571, 600, 3_171),
            "weekly 2999"
        );
        // Given a monthly calendar plan of 1000, when it is upgraded on the last day of a
        // 31-day period (31 Jan 2025), then the upgrade day is credited: 1 × 1000/31 = 32.26
        // → 32.
        let calendar = BillingSchedule::new(
            PlanInterval::Monthly,
            BillingTime::Calendar,
            utc("2025-01-01T00:00:00Z"),
            Tz::UTC,
        );
        assert_eq!(
            credit_of(calendar, 1_000, "2025-01-31T12:00:00Z", true, Decimal::ZERO),
            (1, 32, 0, 32),
            "upgrade on the last day"
        );
        // A termination after the period's end (a downgrade at its boundary) credits nothing.
        let Ok(january) = calendar
            .period_containing(chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default())
        else {
            panic!("january")
        };
        let plan = Money::new(1_000, Currency::EUR);
        let after = termination_credit(
            plan,
            plan,
            january,
            utc("2025-02-01T00:00:00Z"),
            Tz::UTC,
            true,
            Money::zero(Currency::EUR),
            Decimal::ZERO,
        );
        assert_eq!(after.map(|c| c.total_amount().cents()), Ok(0));
    }
}
