//! Billing periods, day counts and plan-change classification (SEMANTICS §5-§7).
//!
//! Periods are computed as calendar dates in the customer's timezone and only then converted to
//! UTC instants: a period starts at local 00:00:00 of its first day and ends at local
//! 23:59:59.999999 of its last day. "Now" is always an argument (`billing_at`).

use chrono::{
    DateTime, Datelike, Days, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use rust_decimal::Decimal;

/// What can go wrong with periods.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// A date outside chrono's range was reached.
    #[error("date out of range")]
    OutOfRange,
    /// An interval or billing time name Lago does not know.
    #[error("unknown value {0:?}")]
    Unknown(String),
}

/// A plan's billing interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanInterval {
    /// Seven days.
    Weekly,
    /// One month.
    Monthly,
    /// Three months.
    Quarterly,
    /// Six months.
    Semiannual,
    /// Twelve months.
    Yearly,
}

impl PlanInterval {
    /// Parses Lago's wire name (`weekly`, `monthly`, `quarterly`, `semiannual`, `yearly`).
    pub fn parse(s: &str) -> Result<Self, PeriodError> {
        match s {
            "weekly" => Ok(Self::Weekly),
            "monthly" => Ok(Self::Monthly),
            "quarterly" => Ok(Self::Quarterly),
            "semiannual" => Ok(Self::Semiannual),
            "yearly" => Ok(Self::Yearly),
            other => Err(PeriodError::Unknown(other.to_owned())),
        }
    }

    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::Semiannual => "semiannual",
            Self::Yearly => "yearly",
        }
    }

    /// Periods per year, used to compare plans (weekly ×52, monthly ×12, ...).
    pub fn periods_per_year(self) -> i64 {
        match self {
            Self::Weekly => 52,
            Self::Monthly => 12,
            Self::Quarterly => 4,
            Self::Semiannual => 2,
            Self::Yearly => 1,
        }
    }

    fn months(self) -> Option<u32> {
        match self {
            Self::Weekly => None,
            Self::Monthly => Some(1),
            Self::Quarterly => Some(3),
            Self::Semiannual => Some(6),
            Self::Yearly => Some(12),
        }
    }
}

/// Whether periods follow the calendar or the subscription's anniversary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingTime {
    /// Weeks from Monday, months from the 1st, quarters from Jan/Apr/Jul/Oct, years from Jan 1.
    Calendar,
    /// Periods start on the weekday, day and month of `subscription_at`.
    Anniversary,
}

impl BillingTime {
    /// Parses Lago's wire name (`calendar`, `anniversary`).
    pub fn parse(s: &str) -> Result<Self, PeriodError> {
        match s {
            "calendar" => Ok(Self::Calendar),
            "anniversary" => Ok(Self::Anniversary),
            other => Err(PeriodError::Unknown(other.to_owned())),
        }
    }
}

/// A period as local calendar dates, both inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatePeriod {
    start: NaiveDate,
    end: NaiveDate,
}

impl DatePeriod {
    /// First day.
    pub fn start(&self) -> NaiveDate {
        self.start
    }

    /// Last day (inclusive).
    pub fn end(&self) -> NaiveDate {
        self.end
    }

    /// Number of days (Lago's period duration, the proration denominator).
    pub fn days(&self) -> u32 {
        u32::try_from((self.end - self.start).num_days() + 1).unwrap_or(0)
    }

    /// Local 00:00:00 of the first day, in UTC.
    pub fn from_datetime(&self, tz: Tz) -> Result<DateTime<Utc>, PeriodError> {
        beginning_of_day(self.start, tz)
    }

    /// Local 23:59:59.999999 of the last day, in UTC.
    pub fn to_datetime(&self, tz: Tz) -> Result<DateTime<Utc>, PeriodError> {
        end_of_day(self.end, tz)
    }
}

/// Local midnight of `date` in `tz`, as a UTC instant (the earliest one if ambiguous; the first
/// valid instant after a DST gap).
pub fn beginning_of_day(date: NaiveDate, tz: Tz) -> Result<DateTime<Utc>, PeriodError> {
    local_to_utc(date, NaiveTime::MIN, tz, true)
}

/// Local 23:59:59.999999 of `date` in `tz`, as a UTC instant.
pub fn end_of_day(date: NaiveDate, tz: Tz) -> Result<DateTime<Utc>, PeriodError> {
    let t = NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).ok_or(PeriodError::OutOfRange)?;
    local_to_utc(date, t, tz, false)
}

fn local_to_utc(
    date: NaiveDate,
    time: NaiveTime,
    tz: Tz,
    earliest: bool,
) -> Result<DateTime<Utc>, PeriodError> {
    let naive = date.and_time(time);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Ok(if earliest { a } else { b }.with_timezone(&Utc)),
        LocalResult::None => {
            // A DST gap: move by an hour past it.
            let shifted = if earliest {
                naive + Duration::hours(1)
            } else {
                naive - Duration::hours(1)
            };
            tz.from_local_datetime(&shifted)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .ok_or(PeriodError::OutOfRange)
        }
    }
}

/// The local calendar date of an instant.
pub fn local_date(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let (ny, nm) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(ny, nm, 1)
        .and_then(|d| d.pred_opt())
        .map_or(28, |d| d.day())
}

fn add_months(year: i32, month: u32, delta: i32) -> (i32, u32) {
    let index = year * 12 + (month as i32 - 1) + delta;
    (index.div_euclid(12), (index.rem_euclid(12) + 1) as u32)
}

/// How a plan's periods are laid out for one subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingSchedule {
    interval: PlanInterval,
    billing_time: BillingTime,
    anchor: NaiveDate,
    timezone: Tz,
}

impl BillingSchedule {
    /// The schedule of a subscription anchored at `subscription_at` (its local date in
    /// `timezone` gives the anniversary weekday, day and month).
    pub fn new(
        interval: PlanInterval,
        billing_time: BillingTime,
        subscription_at: DateTime<Utc>,
        timezone: Tz,
    ) -> Self {
        Self {
            interval,
            billing_time,
            anchor: local_date(subscription_at, timezone),
            timezone,
        }
    }

    /// The same schedule with another interval (charges billed monthly on yearly plans).
    pub fn with_interval(mut self, interval: PlanInterval) -> Self {
        self.interval = interval;
        self
    }

    /// The interval.
    pub fn interval(&self) -> PlanInterval {
        self.interval
    }

    /// Calendar or anniversary.
    pub fn billing_time(&self) -> BillingTime {
        self.billing_time
    }

    /// The customer's timezone.
    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    /// The period holding the local date `date`.
    ///
    /// Anniversary months: the anniversary in a month is `min(anchor day, days in month)`, so
    /// with a 31st anchor the periods are Jan 31–Feb 27, Feb 28–Mar 30, Mar 31–Apr 29, ...
    /// (a period ends the day before the next anniversary).
    pub fn period_containing(&self, date: NaiveDate) -> Result<DatePeriod, PeriodError> {
        let Some(step) = self.interval.months() else {
            let anchor_weekday = match self.billing_time {
                BillingTime::Calendar => chrono::Weekday::Mon,
                BillingTime::Anniversary => self.anchor.weekday(),
            };
            let back = (7 + date.weekday().num_days_from_monday()
                - anchor_weekday.num_days_from_monday())
                % 7;
            let start = date
                .checked_sub_days(Days::new(u64::from(back)))
                .ok_or(PeriodError::OutOfRange)?;
            let end = start
                .checked_add_days(Days::new(6))
                .ok_or(PeriodError::OutOfRange)?;
            return Ok(DatePeriod { start, end });
        };
        let (anchor_day, anchor_month) = match self.billing_time {
            BillingTime::Calendar => (1, 1),
            BillingTime::Anniversary => (self.anchor.day(), self.anchor.month()),
        };
        let anniversary = |year: i32, month: u32| {
            NaiveDate::from_ymd_opt(year, month, anchor_day.min(days_in_month(year, month)))
                .ok_or(PeriodError::OutOfRange)
        };
        for back in 0..=12 {
            let (y, m) = add_months(date.year(), date.month(), -back);
            if (m as i32 - anchor_month as i32).rem_euclid(step as i32) != 0 {
                continue;
            }
            let start = anniversary(y, m)?;
            if start <= date {
                let (ny, nm) = add_months(y, m, step as i32);
                let end = anniversary(ny, nm)?
                    .pred_opt()
                    .ok_or(PeriodError::OutOfRange)?;
                return Ok(DatePeriod { start, end });
            }
        }
        Err(PeriodError::OutOfRange)
    }

    /// The period just before the one holding `date`.
    pub fn previous_period(&self, date: NaiveDate) -> Result<DatePeriod, PeriodError> {
        let current = self.period_containing(date)?;
        let before = current.start.pred_opt().ok_or(PeriodError::OutOfRange)?;
        self.period_containing(before)
    }

    /// Days of the period holding `date` (SEMANTICS §6.4: weekly 7, calendar yearly 365/366,
    /// others `next period start − period start`).
    pub fn duration_days(&self, date: NaiveDate) -> Result<u32, PeriodError> {
        Ok(self.period_containing(date)?.days())
    }
}

/// Lago's inclusive day count between two instants in a timezone (SEMANTICS §6.5): an end at
/// exactly local midnight gets one more second (so that day counts), DST offsets are
/// neutralised, and the result is `ceil(seconds / 86400)`.
pub fn date_diff_with_timezone(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> i64 {
    let local_to = to.with_timezone(&tz);
    let to = if local_to.time() == NaiveTime::MIN {
        to + Duration::seconds(1)
    } else {
        to
    };
    let offset = |t: DateTime<Utc>| {
        let local = t.with_timezone(&tz);
        i64::from(chrono::Offset::fix(local.offset()).local_minus_utc())
    };
    let micros = (to - from).num_microseconds().unwrap_or(i64::MAX)
        - (offset(from) - offset(to)) * 1_000_000;
    let day = 86_400_000_000_i64;
    micros.div_euclid(day) + i64::from(micros.rem_euclid(day) != 0)
}

/// [`date_diff_with_timezone`] for a subscription: one day less (floored at 0) when it was
/// terminated by an upgrade, because the upgrade day belongs to the new plan.
pub fn subscription_days(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
    terminated_by_upgrade: bool,
) -> i64 {
    let days = date_diff_with_timezone(from, to, tz);
    if terminated_by_upgrade {
        (days - 1).max(0)
    } else {
        days
    }
}

/// Whether a plan change takes effect now (upgrade) or at the next period (downgrade).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanChange {
    /// The new plan costs at least as much per year: immediate.
    Upgrade,
    /// The new plan costs less per year: scheduled for the next period start.
    Downgrade,
}

/// Compares yearly amounts (`amount × periods per year`); an equal price is an upgrade.
pub fn classify_plan_change(old: (PlanInterval, i64), new: (PlanInterval, i64)) -> PlanChange {
    let yearly = |(interval, cents): (PlanInterval, i64)| {
        i128::from(cents) * i128::from(interval.periods_per_year())
    };
    if yearly(new) >= yearly(old) {
        PlanChange::Upgrade
    } else {
        PlanChange::Downgrade
    }
}

/// When a trial ends: `initial_started_at + trial_period` days (fractional days allowed). The
/// initial start is the first `started_at` of the external id, so upgrades do not restart it.
pub fn trial_end(initial_started_at: DateTime<Utc>, trial_period_days: Decimal) -> DateTime<Utc> {
    let micros = (trial_period_days * Decimal::from(86_400_000_000_i64)).trunc();
    let micros = i64::try_from(micros).unwrap_or(i64::MAX);
    initial_started_at
        .checked_add_signed(Duration::microseconds(micros))
        .unwrap_or(initial_started_at)
}

/// The facts about a subscription that decide its invoice boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionDates {
    schedule: BillingSchedule,
    pay_in_advance: bool,
    started_at: DateTime<Utc>,
    terminated_at: Option<DateTime<Utc>>,
    bill_charges_monthly: bool,
}

impl SubscriptionDates {
    /// A subscription following `schedule`, started at `started_at`.
    pub fn new(schedule: BillingSchedule, pay_in_advance: bool, started_at: DateTime<Utc>) -> Self {
        Self {
            schedule,
            pay_in_advance,
            started_at,
            terminated_at: None,
            bill_charges_monthly: false,
        }
    }

    /// The subscription was terminated at `terminated_at`.
    pub fn terminated_at(mut self, terminated_at: DateTime<Utc>) -> Self {
        self.terminated_at = Some(terminated_at);
        self
    }

    /// A yearly or semiannual plan bills its charges every month.
    pub fn billing_charges_monthly(mut self) -> Self {
        self.bill_charges_monthly = true;
        self
    }

    /// The schedule.
    pub fn schedule(&self) -> &BillingSchedule {
        &self.schedule
    }

    fn charges_schedule(&self) -> BillingSchedule {
        let long = matches!(
            self.schedule.interval,
            PlanInterval::Yearly | PlanInterval::Semiannual
        );
        if self.bill_charges_monthly && long {
            self.schedule.with_interval(PlanInterval::Monthly)
        } else {
            self.schedule
        }
    }

    /// The boundaries of the invoice issued at `billing_at` (SEMANTICS §6.3).
    ///
    /// - Subscription fee: the previous period in arrears, the current one in advance.
    /// - Charges: always the previous period (of a month when charges are billed monthly).
    /// - Termination invoice (`billing_at` at or after `terminated_at`): the period holding
    ///   the termination (a termination at exactly local midnight belongs to the day before),
    ///   cut at `terminated_at`.
    /// - Any invoice issued before the termination (a period start, the start of an advance
    ///   plan) covers what it would have covered had it been computed on time: a subscription
    ///   terminated after a period boundary, but before that boundary's invoice was computed
    ///   or a draft of it refreshed, still gets the previous period billed, in full.
    /// - Clamps: the fee starts no earlier than the local start day of `started_at`; charges
    ///   no earlier than `started_at` itself.
    pub fn invoice_boundaries(
        &self,
        billing_at: DateTime<Utc>,
    ) -> Result<InvoiceBoundaries, PeriodError> {
        let tz = self.schedule.timezone;
        let charges_schedule = self.charges_schedule();
        let terminated_at = self.terminated_at.filter(|t| billing_at >= *t);
        let (fee_period, charges_period) = match terminated_at {
            Some(t) => {
                let date = local_date(t - Duration::seconds(1), tz);
                (
                    self.schedule.period_containing(date)?,
                    charges_schedule.period_containing(date)?,
                )
            }
            None => {
                let date = local_date(billing_at, tz);
                let fee = if self.pay_in_advance {
                    self.schedule.period_containing(date)?
                } else {
                    self.schedule.previous_period(date)?
                };
                (fee, charges_schedule.previous_period(date)?)
            }
        };
        self.clamp(fee_period, charges_period, billing_at, terminated_at)
    }

    /// The boundaries of current usage at `now`: the period holding `now`.
    pub fn current_usage_boundaries(
        &self,
        now: DateTime<Utc>,
    ) -> Result<InvoiceBoundaries, PeriodError> {
        let date = local_date(now, self.schedule.timezone);
        let fee = self.schedule.period_containing(date)?;
        let charges = self.charges_schedule().period_containing(date)?;
        self.clamp(fee, charges, now, self.terminated_at)
    }

    fn clamp(
        &self,
        fee_period: DatePeriod,
        charges_period: DatePeriod,
        timestamp: DateTime<Utc>,
        terminated_at: Option<DateTime<Utc>>,
    ) -> Result<InvoiceBoundaries, PeriodError> {
        let tz = self.schedule.timezone;
        let start_of_start_day = beginning_of_day(local_date(self.started_at, tz), tz)?;
        let mut from = fee_period.from_datetime(tz)?.max(start_of_start_day);
        let mut to = fee_period.to_datetime(tz)?;
        let charges_from = charges_period.from_datetime(tz)?.max(self.started_at);
        let mut charges_to = charges_period.to_datetime(tz)?;
        if let Some(t) = terminated_at {
            to = to.min(t);
            charges_to = charges_to.min(t);
            from = from.min(to);
        }
        let fee_duration_days = self.schedule.duration_days(local_date(from, tz))?;
        Ok(InvoiceBoundaries {
            from_datetime: from,
            to_datetime: to,
            charges_from_datetime: charges_from.min(charges_to),
            charges_to_datetime: charges_to,
            fee_period,
            charges_period,
            fee_duration_days,
            charges_duration_days: charges_period.days(),
            timestamp,
        })
    }
}

/// The instants an invoice covers, with the proration denominators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvoiceBoundaries {
    from_datetime: DateTime<Utc>,
    to_datetime: DateTime<Utc>,
    charges_from_datetime: DateTime<Utc>,
    charges_to_datetime: DateTime<Utc>,
    fee_period: DatePeriod,
    charges_period: DatePeriod,
    fee_duration_days: u32,
    charges_duration_days: u32,
    timestamp: DateTime<Utc>,
}

impl InvoiceBoundaries {
    /// Subscription fee start.
    pub fn from_datetime(&self) -> DateTime<Utc> {
        self.from_datetime
    }
    /// Subscription fee end.
    pub fn to_datetime(&self) -> DateTime<Utc> {
        self.to_datetime
    }
    /// Usage start.
    pub fn charges_from_datetime(&self) -> DateTime<Utc> {
        self.charges_from_datetime
    }
    /// Usage end.
    pub fn charges_to_datetime(&self) -> DateTime<Utc> {
        self.charges_to_datetime
    }
    /// The whole (unclamped) subscription-fee period.
    pub fn fee_period(&self) -> DatePeriod {
        self.fee_period
    }
    /// The whole (unclamped) charges period.
    pub fn charges_period(&self) -> DatePeriod {
        self.charges_period
    }
    /// Days of the period holding the fee's start date: the subscription fee's denominator,
    /// the whole period even for a subscription that started mid-period.
    pub fn fee_duration_days(&self) -> u32 {
        self.fee_duration_days
    }
    /// Days of the whole charges period (`charges_duration`).
    pub fn charges_duration_days(&self) -> u32 {
        self.charges_duration_days
    }
    /// The billing instant.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn anniversary(interval: PlanInterval, at: &str) -> BillingSchedule {
        BillingSchedule::new(interval, BillingTime::Anniversary, utc(at), Tz::UTC)
    }

    #[test]
    fn anniversaries_on_the_31st_fall_on_the_last_day_of_short_months() {
        // SEMANTICS §6.2, D = 31: Jan 31–Feb 27, Feb 28–Mar 30, Mar 31–Apr 29, Apr 30–May 30.
        let s = anniversary(PlanInterval::Monthly, "2022-01-31T00:00:00Z");
        let cases = [
            (d(2022, 2, 1), d(2022, 1, 31), d(2022, 2, 27)),
            (d(2022, 3, 1), d(2022, 2, 28), d(2022, 3, 30)),
            (d(2022, 4, 15), d(2022, 3, 31), d(2022, 4, 29)),
            (d(2022, 5, 1), d(2022, 4, 30), d(2022, 5, 30)),
        ];
        for (date, start, end) in cases {
            let p = s.period_containing(date);
            assert_eq!(p.map(|p| (p.start(), p.end())), Ok((start, end)), "{date}");
        }
    }

    #[test]
    fn quarterly_and_yearly_anniversaries_follow_the_semantics_examples() {
        // Sub 30 Nov 2021 quarterly: Nov 30 – Feb 27, then Feb 28 – May 29.
        let q = anniversary(PlanInterval::Quarterly, "2021-11-30T00:00:00Z");
        assert_eq!(
            q.period_containing(d(2022, 1, 10))
                .map(|p| (p.start(), p.end())),
            Ok((d(2021, 11, 30), d(2022, 2, 27)))
        );
        assert_eq!(
            q.period_containing(d(2022, 3, 10))
                .map(|p| (p.start(), p.end())),
            Ok((d(2022, 2, 28), d(2022, 5, 29)))
        );
        // Sub 15 Jan 2024 quarterly: Apr 15 – Jul 14, 91 days.
        let q = anniversary(PlanInterval::Quarterly, "2024-01-15T00:00:00Z");
        assert_eq!(q.duration_days(d(2024, 5, 1)), Ok(91));
        // Yearly anniversary Jun 29 2023 → Jun 28 2024 = 366 days.
        let y = anniversary(PlanInterval::Yearly, "2023-06-29T00:00:00Z");
        assert_eq!(y.duration_days(d(2023, 9, 28)), Ok(366));
    }

    #[test]
    fn calendar_periods_start_on_monday_the_first_and_quarter_starts() {
        let s = |i| {
            BillingSchedule::new(
                i,
                BillingTime::Calendar,
                utc("2021-02-17T10:00:00Z"),
                Tz::UTC,
            )
        };
        let cases = [
            (
                PlanInterval::Weekly,
                d(2022, 3, 10),
                d(2022, 3, 7),
                d(2022, 3, 13),
            ),
            (
                PlanInterval::Monthly,
                d(2024, 2, 10),
                d(2024, 2, 1),
                d(2024, 2, 29),
            ),
            (
                PlanInterval::Quarterly,
                d(2022, 5, 5),
                d(2022, 4, 1),
                d(2022, 6, 30),
            ),
            (
                PlanInterval::Semiannual,
                d(2022, 9, 5),
                d(2022, 7, 1),
                d(2022, 12, 31),
            ),
            (
                PlanInterval::Yearly,
                d(2024, 9, 5),
                d(2024, 1, 1),
                d(2024, 12, 31),
            ),
        ];
        for (interval, date, start, end) in cases {
            let p = s(interval).period_containing(date);
            assert_eq!(
                p.map(|p| (p.start(), p.end())),
                Ok((start, end)),
                "{interval:?}"
            );
        }
        assert_eq!(
            s(PlanInterval::Yearly).duration_days(d(2024, 9, 5)),
            Ok(366)
        );
    }

    #[test]
    fn day_counts_are_inclusive_ceil_and_neutralise_dst() {
        // 2022-03-15 00:00 → 2022-03-31 23:59:59 counts 17 days (SEMANTICS §6.5).
        let n = date_diff_with_timezone(
            utc("2022-03-15T00:00:00Z"),
            utc("2022-03-31T23:59:59Z"),
            Tz::UTC,
        );
        assert_eq!(n, 17);
        // March in Paris has 31 days although the clock jumps forward on the 27th:
        // local Mar 1 00:00 (UTC+1) to local Mar 31 23:59:59 (UTC+2).
        let paris = Tz::Europe__Paris;
        let n = date_diff_with_timezone(
            utc("2022-02-28T23:00:00Z"),
            utc("2022-03-31T21:59:59Z"),
            paris,
        );
        assert_eq!(n, 31);
        // A termination at exactly local midnight counts that day; an upgrade gives it away.
        let from = utc("2022-12-01T00:00:00Z");
        let to = utc("2022-12-18T00:00:00Z");
        assert_eq!(subscription_days(from, to, Tz::UTC, false), 18);
        assert_eq!(subscription_days(from, to, Tz::UTC, true), 17);
    }

    #[test]
    fn equal_yearly_prices_are_an_upgrade() {
        use PlanInterval::*;
        assert_eq!(
            classify_plan_change((Monthly, 1000), (Yearly, 12000)),
            PlanChange::Upgrade
        );
        assert_eq!(
            classify_plan_change((Monthly, 1000), (Yearly, 11999)),
            PlanChange::Downgrade
        );
        assert_eq!(
            classify_plan_change((Weekly, 100), (Yearly, 5200)),
            PlanChange::Upgrade
        );
    }

    #[test]
    fn yearly_plans_billing_charges_monthly_bill_the_previous_month_of_usage() {
        // Given a yearly calendar plan in advance that bills charges monthly, when invoicing on
        // 1 Mar 2022, then the fee covers 2022 and the charges cover February (28 days).
        let s = BillingSchedule::new(
            PlanInterval::Yearly,
            BillingTime::Calendar,
            utc("2021-06-10T00:00:00Z"),
            Tz::UTC,
        );
        let dates =
            SubscriptionDates::new(s, true, utc("2021-06-10T00:00:00Z")).billing_charges_monthly();
        let b = dates.invoice_boundaries(utc("2022-03-01T00:00:00Z"));
        assert_eq!(
            b.map(|b| (
                b.fee_period().start(),
                b.charges_from_datetime(),
                b.charges_duration_days()
            )),
            Ok((d(2022, 1, 1), utc("2022-02-01T00:00:00Z"), 28))
        );
    }

    #[test]
    fn a_termination_after_a_period_boundary_leaves_that_boundarys_invoice_whole() {
        // Given a monthly calendar plan in arrears (UTC) started on 1 Jan 2025 and terminated
        // on 1 Mar 2025 at 00:30, before the invoice of 1 Mar 00:00 was computed.
        let s = BillingSchedule::new(
            PlanInterval::Monthly,
            BillingTime::Calendar,
            utc("2025-01-01T00:00:00Z"),
            Tz::UTC,
        );
        let dates = SubscriptionDates::new(s, false, utc("2025-01-01T00:00:00Z"))
            .terminated_at(utc("2025-03-01T00:30:00Z"));
        let span = |b: InvoiceBoundaries| {
            (
                b.from_datetime(),
                b.to_datetime(),
                b.charges_from_datetime(),
                b.charges_to_datetime(),
            )
        };
        // Then the invoice of 1 Mar 00:00 covers February whole (SEMANTICS §6.2, in arrears:
        // the period ending the day before the billing day, ending at 23:59:59.999999, §5), fee
        // and charges alike.
        assert_eq!(
            dates
                .invoice_boundaries(utc("2025-03-01T00:00:00Z"))
                .map(span),
            Ok((
                utc("2025-02-01T00:00:00Z"),
                utc("2025-02-28T23:59:59.999999Z"),
                utc("2025-02-01T00:00:00Z"),
                utc("2025-02-28T23:59:59.999999Z"),
            ))
        );
        // And the termination invoice covers the current period up to the termination only
        // (SEMANTICS §6.3): 1 Mar 00:00 – 00:30.
        assert_eq!(
            dates
                .invoice_boundaries(utc("2025-03-01T00:30:00Z"))
                .map(span),
            Ok((
                utc("2025-03-01T00:00:00Z"),
                utc("2025-03-01T00:30:00Z"),
                utc("2025-03-01T00:00:00Z"),
                utc("2025-03-01T00:30:00Z"),
            ))
        );
        // A plan paid in advance, terminated mid-March: its invoice of 1 Mar still bills the
        // whole of March in advance (the termination credits unused days separately, §7).
        let advance = SubscriptionDates::new(s, true, utc("2025-01-01T00:00:00Z"))
            .terminated_at(utc("2025-03-15T10:00:00Z"));
        assert_eq!(
            advance
                .invoice_boundaries(utc("2025-03-01T00:00:00Z"))
                .map(|b| (b.from_datetime(), b.to_datetime())),
            Ok((
                utc("2025-03-01T00:00:00Z"),
                utc("2025-03-31T23:59:59.999999Z")
            ))
        );
    }

    #[test]
    fn trials_may_last_fractional_days() {
        let end = trial_end(utc("2022-06-20T00:01:00Z"), Decimal::new(15, 1));
        assert_eq!(end, utc("2022-06-21T12:01:00Z"));
    }
}
