//! Subscriptions: a customer on a plan, under the caller's `external_id`.
//!
//! Several subscriptions share an external id over time: an upgrade terminates the current one
//! and starts a new one at once; a downgrade keeps the current one until its period ends and
//! schedules a `pending` successor (SEMANTICS §7, API_CONTRACT §4.5). The chain is recorded both
//! ways: `previous_plan_code`/`previous_subscription_id` on the successor,
//! `next_plan_code`/`next_subscription_id` (and `downgrade_plan_date` for a downgrade) on the
//! predecessor.
//!
//! Each state change is a method returning the changed subscription, so the status and its
//! dates always agree: `active` has `started_at`, `terminated` has `terminated_at`, `canceled`
//! has `canceled_at`, `pending` has no `started_at`.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{ValidationErrors, plan::Plan};
use crate::period::{
    self, BillingSchedule, BillingTime, PeriodError, PlanChange, SubscriptionDates, local_date,
};

/// A period as its `(start, end)` instants.
pub type Period = (DateTime<Utc>, DateTime<Utc>);

/// Where a subscription is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    /// Starts later: a future `subscription_at`, or a downgrade waiting for the period end.
    Pending,
    /// Billed.
    Active,
    /// Ended (by a termination, an upgrade, or its plan's deletion).
    Terminated,
    /// Stopped before it started.
    Canceled,
}

impl SubscriptionStatus {
    /// Every status, in Lago's order.
    pub const ALL: [SubscriptionStatus; 4] = [
        Self::Active,
        Self::Pending,
        Self::Terminated,
        Self::Canceled,
    ];

    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Terminated => "terminated",
            Self::Canceled => "canceled",
        }
    }

    /// Parses Lago's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// What happens to the unused part of a pay-in-advance fee on termination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTerminationCreditNote {
    /// A credit note credited to the customer.
    Credit,
    /// A credit note refunded.
    Refund,
    /// A credit note offset against invoices.
    Offset,
    /// No credit note.
    Skip,
}

impl OnTerminationCreditNote {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Credit => "credit",
            Self::Refund => "refund",
            Self::Offset => "offset",
            Self::Skip => "skip",
        }
    }

    /// Parses Lago's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Credit, Self::Refund, Self::Offset, Self::Skip]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Whether the unbilled usage of a terminated period is invoiced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnTerminationInvoice {
    /// Invoice it (Lago's default).
    #[default]
    Generate,
    /// Do not.
    Skip,
}

impl OnTerminationInvoice {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generate => "generate",
            Self::Skip => "skip",
        }
    }

    /// Parses Lago's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Generate, Self::Skip]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// A state change that the subscription's status does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a {status:?} subscription cannot be {action}")]
pub struct StatusError {
    /// The current status.
    pub status: SubscriptionStatus,
    /// What was attempted.
    pub action: &'static str,
}

/// Every stored fact of a subscription, as plain data: what the store keeps and gives back
/// (see [`Subscription::from_state`]). Not a way to build one: use [`Subscription::start`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// Lago id.
    pub lago_id: String,
    /// The caller's id, shared by the subscriptions of one upgrade/downgrade chain.
    pub external_id: String,
    /// The customer's external id.
    pub external_customer_id: String,
    /// The customer's Lago id.
    pub customer_id: String,
    /// The public code of the plan subscribed to.
    pub plan_code: String,
    /// Store key of the plan record that prices it (an override child's, or the plan's).
    pub effective_plan_code: String,
    /// Display name on invoices.
    pub name: Option<String>,
    /// Status.
    pub status: SubscriptionStatus,
    /// Calendar or anniversary periods.
    pub billing_time: BillingTime,
    /// The anniversary anchor.
    pub subscription_at: DateTime<Utc>,
    /// When it became active.
    pub started_at: Option<DateTime<Utc>>,
    /// The first `started_at` of the chain (trials run from it).
    pub initial_started_at: Option<DateTime<Utc>>,
    /// When it will end by itself.
    pub ending_at: Option<DateTime<Utc>>,
    /// When it was terminated.
    pub terminated_at: Option<DateTime<Utc>>,
    /// When it was canceled.
    pub canceled_at: Option<DateTime<Utc>>,
    /// Plan code of the predecessor in the chain.
    pub previous_plan_code: Option<String>,
    /// Lago id of the predecessor.
    pub previous_subscription_id: Option<String>,
    /// Plan code of the successor in the chain.
    pub next_plan_code: Option<String>,
    /// Lago id of the successor.
    pub next_subscription_id: Option<String>,
    /// Local date on which a scheduled downgrade takes effect.
    pub downgrade_plan_date: Option<NaiveDate>,
    /// Credit note choice made at termination.
    pub on_termination_credit_note: Option<OnTerminationCreditNote>,
    /// Invoice choice made at termination.
    pub on_termination_invoice: OnTerminationInvoice,
}

/// A subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    state: SubscriptionState,
    store_key: String,
}

/// What a new subscription needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    /// Lago id to give it.
    pub lago_id: String,
    /// The caller's id.
    pub external_id: String,
    /// The customer's external id.
    pub external_customer_id: String,
    /// The customer's Lago id.
    pub customer_id: String,
    /// Public plan code.
    pub plan_code: String,
    /// Store key of the plan record that prices it.
    pub effective_plan_code: String,
    /// Display name.
    pub name: Option<String>,
    /// Calendar (Lago's default) or anniversary.
    pub billing_time: BillingTime,
    /// Anniversary anchor and start.
    pub subscription_at: DateTime<Utc>,
    /// When it ends by itself.
    pub ending_at: Option<DateTime<Utc>>,
}

/// The plan a subscription moves to (upgrade, downgrade, or a pending one's new plan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSwitch {
    /// Lago id of the successor subscription (unused when a pending one changes plan).
    pub lago_id: String,
    /// Public code of the new plan.
    pub plan_code: String,
    /// Store key of the record that prices it.
    pub effective_plan_code: String,
    /// Display name of the successor (`None`: no name).
    pub name: Option<String>,
    /// `Some` replaces the predecessor's `ending_at`, `None` inherits it.
    pub ending_at: Option<Option<DateTime<Utc>>>,
}

/// Fields `PUT /subscriptions/{external_id}` may change: `None` keeps, `Some(None)` clears.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscriptionPatch {
    /// Display name.
    pub name: Option<Option<String>>,
    /// End date.
    pub ending_at: Option<Option<DateTime<Utc>>>,
    /// New start of a subscription that has not started yet (ignored otherwise).
    pub subscription_at: Option<DateTime<Utc>>,
}

/// `ending_at` must fall after today and after the start date (lago-api
/// `Subscriptions::ValidateService`, dates compared in UTC).
fn check_ending_at(
    ending_at: Option<DateTime<Utc>>,
    subscription_at: DateTime<Utc>,
    now: DateTime<Utc>,
    errors: &mut ValidationErrors,
) {
    if let Some(end) = ending_at
        && (end.date_naive() <= now.date_naive()
            || end.date_naive() <= subscription_at.date_naive())
    {
        errors.push("ending_at", "invalid_date");
    }
}

impl Subscription {
    /// A new subscription (SEMANTICS §6, lago-api `Subscriptions::CreateService`): when the
    /// local date of `subscription_at` (in the customer's timezone) is after today it is
    /// `pending`; otherwise it is `active`, started at `subscription_at`.
    pub fn start(
        input: NewSubscription,
        timezone: Tz,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if input.external_id.trim().is_empty() {
            errors.push("external_id", "value_is_mandatory");
        }
        check_ending_at(input.ending_at, input.subscription_at, now, &mut errors);
        errors.into_result()?;
        let starts_later = local_date(input.subscription_at, timezone) > local_date(now, timezone);
        let started_at = (!starts_later).then_some(input.subscription_at);
        Ok(Self::from_parts(SubscriptionState {
            lago_id: input.lago_id,
            external_id: input.external_id,
            external_customer_id: input.external_customer_id,
            customer_id: input.customer_id,
            plan_code: input.plan_code,
            effective_plan_code: input.effective_plan_code,
            name: input.name,
            status: if starts_later {
                SubscriptionStatus::Pending
            } else {
                SubscriptionStatus::Active
            },
            billing_time: input.billing_time,
            subscription_at: input.subscription_at,
            started_at,
            initial_started_at: started_at,
            ending_at: input.ending_at,
            terminated_at: None,
            canceled_at: None,
            previous_plan_code: None,
            previous_subscription_id: None,
            next_plan_code: None,
            next_subscription_id: None,
            downgrade_plan_date: None,
            on_termination_credit_note: None,
            on_termination_invoice: OnTerminationInvoice::Generate,
        }))
    }

    fn from_parts(state: SubscriptionState) -> Self {
        let store_key = format!("{}#{}", state.external_id, state.lago_id);
        Self { state, store_key }
    }

    /// Rebuilds a stored subscription; refuses a state whose status and dates disagree.
    pub fn from_state(state: SubscriptionState) -> Result<Self, String> {
        let consistent = match state.status {
            SubscriptionStatus::Active => state.started_at.is_some(),
            SubscriptionStatus::Pending => state.started_at.is_none(),
            SubscriptionStatus::Terminated => state.terminated_at.is_some(),
            SubscriptionStatus::Canceled => state.canceled_at.is_some(),
        };
        if !consistent || state.external_id.is_empty() || state.lago_id.is_empty() {
            return Err(format!(
                "subscription {} is {} with inconsistent dates",
                state.lago_id,
                state.status.as_str()
            ));
        }
        Ok(Self::from_parts(state))
    }

    /// Every stored fact, for the store.
    pub fn state(&self) -> &SubscriptionState {
        &self.state
    }

    fn changed(&self, change: impl FnOnce(&mut SubscriptionState)) -> Self {
        let mut state = self.state.clone();
        change(&mut state);
        Self::from_parts(state)
    }

    /// Decides between an upgrade and a downgrade from the plans' yearly amounts (SEMANTICS §7:
    /// an equal price is an upgrade).
    pub fn plan_change(current: &Plan, next: &Plan) -> PlanChange {
        period::classify_plan_change(
            (current.interval(), current.amount_cents()),
            (next.interval(), next.amount_cents()),
        )
    }

    /// An upgrade, effective `now`: this subscription terminated (pointing at its successor)
    /// and the successor active since `now`, keeping the anniversary anchor, billing time and
    /// trial start.
    pub fn upgrade(
        &self,
        switch: PlanSwitch,
        now: DateTime<Utc>,
    ) -> Result<(Self, Self), StatusError> {
        self.expect(SubscriptionStatus::Active, "upgraded")?;
        let successor = self.successor(&switch, SubscriptionStatus::Active, Some(now));
        let terminated = self.changed(|s| {
            s.status = SubscriptionStatus::Terminated;
            s.terminated_at = Some(now);
            s.next_plan_code = Some(switch.plan_code.clone());
            s.next_subscription_id = Some(switch.lago_id.clone());
            s.downgrade_plan_date = None;
        });
        Ok((terminated, successor))
    }

    /// A downgrade, effective on `downgrade_plan_date` (the next period's first local day):
    /// this subscription stays active and names its successor, which waits as `pending`.
    pub fn downgrade(
        &self,
        switch: PlanSwitch,
        downgrade_plan_date: NaiveDate,
    ) -> Result<(Self, Self), StatusError> {
        self.expect(SubscriptionStatus::Active, "downgraded")?;
        let successor = self.successor(&switch, SubscriptionStatus::Pending, None);
        let current = self.changed(|s| {
            s.next_plan_code = Some(switch.plan_code.clone());
            s.next_subscription_id = Some(switch.lago_id.clone());
            s.downgrade_plan_date = Some(downgrade_plan_date);
        });
        Ok((current, successor))
    }

    fn successor(
        &self,
        switch: &PlanSwitch,
        status: SubscriptionStatus,
        started_at: Option<DateTime<Utc>>,
    ) -> Self {
        let s = &self.state;
        Self::from_parts(SubscriptionState {
            lago_id: switch.lago_id.clone(),
            external_id: s.external_id.clone(),
            external_customer_id: s.external_customer_id.clone(),
            customer_id: s.customer_id.clone(),
            plan_code: switch.plan_code.clone(),
            effective_plan_code: switch.effective_plan_code.clone(),
            name: switch.name.clone(),
            status,
            billing_time: s.billing_time,
            subscription_at: s.subscription_at,
            started_at,
            initial_started_at: s.initial_started_at.or(started_at),
            ending_at: switch.ending_at.unwrap_or(s.ending_at),
            terminated_at: None,
            canceled_at: None,
            previous_plan_code: Some(s.plan_code.clone()),
            previous_subscription_id: Some(s.lago_id.clone()),
            next_plan_code: None,
            next_subscription_id: None,
            downgrade_plan_date: None,
            on_termination_credit_note: None,
            on_termination_invoice: OnTerminationInvoice::Generate,
        })
    }

    /// A subscription that has not started yet moves to another plan in place (lago-api does
    /// the same for a plan change before the start date).
    pub fn switch_pending_plan(&self, switch: PlanSwitch) -> Result<Self, StatusError> {
        if !self.is_starting_in_the_future() {
            return Err(StatusError {
                status: self.state.status,
                action: "moved to another plan before its start",
            });
        }
        Ok(self.changed(|s| {
            s.plan_code = switch.plan_code;
            s.effective_plan_code = switch.effective_plan_code;
            if switch.name.is_some() {
                s.name = switch.name;
            }
        }))
    }

    /// Terminates an active subscription at `now`.
    pub fn terminate(
        &self,
        now: DateTime<Utc>,
        credit_note: Option<OnTerminationCreditNote>,
        invoice: Option<OnTerminationInvoice>,
    ) -> Result<Self, StatusError> {
        self.expect(SubscriptionStatus::Active, "terminated")?;
        Ok(self.changed(|s| {
            s.status = SubscriptionStatus::Terminated;
            s.terminated_at = Some(now);
            s.downgrade_plan_date = None;
            if credit_note.is_some() {
                s.on_termination_credit_note = credit_note;
            }
            if let Some(invoice) = invoice {
                s.on_termination_invoice = invoice;
            }
        }))
    }

    /// Starts a pending subscription at `at`: a future start reached, or a scheduled downgrade
    /// taking over (whose predecessor is then terminated at the same instant with
    /// [`Subscription::terminate`]). The trial keeps running from the chain's first start.
    pub fn activate(&self, at: DateTime<Utc>) -> Result<Self, StatusError> {
        self.expect(SubscriptionStatus::Pending, "activated")?;
        Ok(self.changed(|s| {
            s.status = SubscriptionStatus::Active;
            s.started_at = Some(at);
            s.initial_started_at = s.initial_started_at.or(Some(at));
        }))
    }

    /// Cancels a pending subscription at `now`.
    pub fn cancel(&self, now: DateTime<Utc>) -> Result<Self, StatusError> {
        self.expect(SubscriptionStatus::Pending, "canceled")?;
        Ok(self.changed(|s| {
            s.status = SubscriptionStatus::Canceled;
            s.canceled_at = Some(now);
        }))
    }

    /// This subscription once its scheduled successor is canceled: no next plan any more.
    pub fn without_successor(&self) -> Self {
        self.changed(|s| {
            s.next_plan_code = None;
            s.next_subscription_id = None;
            s.downgrade_plan_date = None;
        })
    }

    /// This subscription priced by another plan record (a new or updated override child, or a
    /// deleted plan's record).
    pub fn with_effective_plan(&self, effective_plan_code: &str) -> Self {
        self.changed(|s| s.effective_plan_code = effective_plan_code.to_owned())
    }

    /// Applies `PUT /subscriptions/{external_id}`. A new `subscription_at` applies only to a
    /// subscription that has not started; if its local date is today or past, the
    /// subscription becomes active, started at it.
    pub fn update(
        &self,
        patch: SubscriptionPatch,
        timezone: Tz,
        now: DateTime<Utc>,
    ) -> Result<Self, ValidationErrors> {
        let mut next = self.state.clone();
        if let Some(name) = patch.name {
            next.name = name;
        }
        if let Some(at) = patch.subscription_at
            && self.is_starting_in_the_future()
        {
            next.subscription_at = at;
            if local_date(at, timezone) <= local_date(now, timezone) {
                next.status = SubscriptionStatus::Active;
                next.started_at = Some(at);
                next.initial_started_at = Some(at);
            }
        }
        let mut errors = ValidationErrors::default();
        if let Some(ending_at) = patch.ending_at {
            check_ending_at(ending_at, next.subscription_at, now, &mut errors);
            next.ending_at = ending_at;
        }
        errors.into_result()?;
        Ok(Self::from_parts(next))
    }

    fn expect(&self, status: SubscriptionStatus, action: &'static str) -> Result<(), StatusError> {
        if self.state.status == status {
            Ok(())
        } else {
            Err(StatusError {
                status: self.state.status,
                action,
            })
        }
    }

    /// The period of the plan holding `now` (or the termination), as the API's
    /// `current_billing_period_started_at/ending_at` show it: the usage boundaries, clamped to
    /// `started_at` and `terminated_at` (SEMANTICS §6.3). `None` unless active or terminated.
    pub fn current_billing_period(
        &self,
        plan: &Plan,
        timezone: Tz,
        now: DateTime<Utc>,
    ) -> Result<Option<Period>, PeriodError> {
        let s = &self.state;
        let Some(started_at) = s.started_at else {
            return Ok(None);
        };
        if !matches!(
            s.status,
            SubscriptionStatus::Active | SubscriptionStatus::Terminated
        ) {
            return Ok(None);
        }
        let schedule =
            BillingSchedule::new(plan.interval(), s.billing_time, s.subscription_at, timezone);
        let mut dates = SubscriptionDates::new(schedule, plan.pay_in_advance(), started_at);
        if plan.bill_charges_monthly() {
            dates = dates.billing_charges_monthly();
        }
        let at = match s.terminated_at {
            Some(t) => {
                dates = dates.terminated_at(t);
                t
            }
            None => now,
        };
        let b = dates.current_usage_boundaries(at)?;
        Ok(Some((b.charges_from_datetime(), b.charges_to_datetime())))
    }

    /// The first local day of the period after the one holding `now`: when a downgrade
    /// scheduled now takes effect (lago-api: `next_end_of_period + 1 day`).
    pub fn next_period_start(
        &self,
        plan: &Plan,
        timezone: Tz,
        now: DateTime<Utc>,
    ) -> Result<NaiveDate, PeriodError> {
        let s = &self.state;
        let schedule =
            BillingSchedule::new(plan.interval(), s.billing_time, s.subscription_at, timezone);
        let period = schedule.period_containing(local_date(now, timezone))?;
        period.end().succ_opt().ok_or(PeriodError::OutOfRange)
    }

    /// When the plan's trial ended, once it has (`None` while it runs or without a trial).
    /// Trials run from the chain's first start, so an upgrade does not restart them.
    pub fn trial_ended_at(&self, plan: &Plan, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let days = plan
            .trial_period_days()
            .filter(|d| d.is_sign_positive() && !d.is_zero())?;
        let start = self.state.initial_started_at.or(self.state.started_at)?;
        let end = period::trial_end(start, days);
        (end <= now).then_some(end)
    }

    /// Whether it is a not-yet-started subscription (pending, not a scheduled downgrade).
    pub fn is_starting_in_the_future(&self) -> bool {
        self.state.status == SubscriptionStatus::Pending
            && self.state.previous_subscription_id.is_none()
    }

    /// The key of this record in the store: `<external_id>#<lago_id>`.
    pub fn store_key(&self) -> &str {
        &self.store_key
    }
    /// Lago id.
    pub fn lago_id(&self) -> &str {
        &self.state.lago_id
    }
    /// The caller's id.
    pub fn external_id(&self) -> &str {
        &self.state.external_id
    }
    /// The customer's external id.
    pub fn external_customer_id(&self) -> &str {
        &self.state.external_customer_id
    }
    /// The customer's Lago id.
    pub fn customer_id(&self) -> &str {
        &self.state.customer_id
    }
    /// The public code of the plan subscribed to.
    pub fn plan_code(&self) -> &str {
        &self.state.plan_code
    }
    /// Store key of the plan record that prices this subscription: an override child's
    /// (`<plan code>/<suffix>`), a deleted plan's (`<plan code>/deleted/<suffix>`), or the
    /// plan code itself. Read it with `BillingStore::get::<Plan>`.
    pub fn effective_plan_code(&self) -> &str {
        &self.state.effective_plan_code
    }
    /// Status.
    pub fn status(&self) -> SubscriptionStatus {
        self.state.status
    }
    /// Calendar or anniversary.
    pub fn billing_time(&self) -> BillingTime {
        self.state.billing_time
    }
    /// The anniversary anchor.
    pub fn subscription_at(&self) -> DateTime<Utc> {
        self.state.subscription_at
    }
    /// When it became active.
    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        self.state.started_at
    }
    /// The first `started_at` of the external id's chain.
    pub fn initial_started_at(&self) -> Option<DateTime<Utc>> {
        self.state.initial_started_at
    }
    /// When it ends by itself.
    pub fn ending_at(&self) -> Option<DateTime<Utc>> {
        self.state.ending_at
    }
    /// When it was terminated.
    pub fn terminated_at(&self) -> Option<DateTime<Utc>> {
        self.state.terminated_at
    }
    /// When it was canceled.
    pub fn canceled_at(&self) -> Option<DateTime<Utc>> {
        self.state.canceled_at
    }
    /// Display name.
    pub fn name(&self) -> Option<&str> {
        self.state.name.as_deref()
    }
    /// Plan code of the predecessor (upgrade or downgrade).
    pub fn previous_plan_code(&self) -> Option<&str> {
        self.state.previous_plan_code.as_deref()
    }
    /// Lago id of the predecessor.
    pub fn previous_subscription_id(&self) -> Option<&str> {
        self.state.previous_subscription_id.as_deref()
    }
    /// Plan code of the successor.
    pub fn next_plan_code(&self) -> Option<&str> {
        self.state.next_plan_code.as_deref()
    }
    /// Lago id of the successor.
    pub fn next_subscription_id(&self) -> Option<&str> {
        self.state.next_subscription_id.as_deref()
    }
    /// The local date on which a scheduled downgrade takes effect: the first day of the next
    /// period, as Lago answers it (`next_end_of_period + 1 day`).
    pub fn downgrade_plan_date(&self) -> Option<NaiveDate> {
        self.state.downgrade_plan_date
    }
    /// Credit note choice made at termination.
    pub fn on_termination_credit_note(&self) -> Option<OnTerminationCreditNote> {
        self.state.on_termination_credit_note
    }
    /// Invoice choice made at termination.
    pub fn on_termination_invoice(&self) -> OnTerminationInvoice {
        self.state.on_termination_invoice
    }
}

/// The subscription an upgrade, a downgrade or a same-plan request applies to, among every
/// subscription of an external id: the active one, else one that has not started yet
/// (lago-api's "editable" subscriptions).
pub fn editable(subscriptions: &[Subscription]) -> Option<&Subscription> {
    subscriptions
        .iter()
        .find(|s| s.status() == SubscriptionStatus::Active)
        .or_else(|| subscriptions.iter().find(|s| s.is_starting_in_the_future()))
}

/// The pending successor an active subscription scheduled (a downgrade), if any.
pub fn pending_successor<'a>(
    subscriptions: &'a [Subscription],
    current: &Subscription,
) -> Option<&'a Subscription> {
    subscriptions.iter().find(|s| {
        s.status() == SubscriptionStatus::Pending
            && s.previous_subscription_id() == Some(current.lago_id())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::plan::PlanInput;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn new(at: &str) -> NewSubscription {
        NewSubscription {
            lago_id: "s1".into(),
            external_id: "sub".into(),
            external_customer_id: "cus".into(),
            customer_id: "c1".into(),
            plan_code: "basic".into(),
            effective_plan_code: "basic".into(),
            name: None,
            billing_time: BillingTime::Calendar,
            subscription_at: utc(at),
            ending_at: None,
        }
    }

    fn plan(interval: &str, cents: i64) -> Plan {
        let plan = Plan::new(PlanInput {
            name: Some("P".into()),
            code: Some("p".into()),
            interval: Some(interval.into()),
            amount_cents: Some(cents),
            amount_currency: Some("EUR".into()),
            ..Default::default()
        });
        match plan {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn the_start_date_is_compared_with_today_in_the_customers_timezone() {
        let now = utc("2024-03-10T12:00:00Z");
        // 2024-03-11T02:00Z is still March 10 in New York: active today.
        let ny = Subscription::start(new("2024-03-11T02:00:00Z"), Tz::America__New_York, now);
        assert_eq!(ny.map(|s| s.status()), Ok(SubscriptionStatus::Active));
        let utc_tz = Subscription::start(new("2024-03-11T02:00:00Z"), Tz::UTC, now);
        assert_eq!(
            utc_tz.as_ref().map(|s| s.status()),
            Ok(SubscriptionStatus::Pending)
        );
        assert_eq!(utc_tz.map(|s| s.started_at()), Ok(None));
    }

    #[test]
    fn an_upgrade_terminates_now_and_a_downgrade_waits_for_the_next_period() {
        let now = utc("2024-03-10T12:00:00Z");
        let current = Subscription::start(new("2024-01-15T00:00:00Z"), Tz::UTC, now);
        let Ok(current) = current else { panic!() };
        let switch = PlanSwitch {
            lago_id: "s2".into(),
            plan_code: "pro".into(),
            effective_plan_code: "pro".into(),
            name: None,
            ending_at: None,
        };
        let (old, new) = match current.upgrade(switch.clone(), now) {
            Ok(pair) => pair,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(old.status(), SubscriptionStatus::Terminated);
        assert_eq!(old.terminated_at(), Some(now));
        assert_eq!(old.next_plan_code(), Some("pro"));
        assert_eq!(new.status(), SubscriptionStatus::Active);
        assert_eq!(new.started_at(), Some(now));
        assert_eq!(new.subscription_at(), current.subscription_at());
        assert_eq!(new.previous_plan_code(), Some("basic"));
        assert_eq!(new.initial_started_at(), current.started_at());

        let date = current.next_period_start(&plan("monthly", 1000), Tz::UTC, now);
        assert_eq!(
            date,
            NaiveDate::from_ymd_opt(2024, 4, 1).ok_or(PeriodError::OutOfRange)
        );
        let Ok(date) = date else { panic!() };
        let (kept, pending) = match current.downgrade(switch, date) {
            Ok(pair) => pair,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(kept.status(), SubscriptionStatus::Active);
        assert_eq!(kept.downgrade_plan_date(), Some(date));
        assert_eq!(pending.status(), SubscriptionStatus::Pending);
        assert!(!pending.is_starting_in_the_future());
    }

    #[test]
    fn equal_yearly_prices_upgrade_and_lower_ones_downgrade() {
        assert_eq!(
            Subscription::plan_change(&plan("monthly", 1000), &plan("yearly", 12000)),
            PlanChange::Upgrade
        );
        assert_eq!(
            Subscription::plan_change(&plan("monthly", 1000), &plan("yearly", 11999)),
            PlanChange::Downgrade
        );
    }

    #[test]
    fn ending_at_must_be_after_today_and_after_the_start() {
        let now = utc("2024-03-10T12:00:00Z");
        let mut input = new("2024-03-01T00:00:00Z");
        input.ending_at = Some(utc("2024-03-10T23:00:00Z"));
        let r = Subscription::start(input, Tz::UTC, now);
        assert_eq!(
            r.err().map(|e| e.0),
            Some(vec![super::super::FieldError::new(
                "ending_at",
                "invalid_date"
            )])
        );
    }

    #[test]
    fn a_pending_subscription_activates_once_and_keeps_the_chains_trial_start() {
        let now = utc("2024-03-10T12:00:00Z");
        let Ok(current) = Subscription::start(new("2024-01-15T00:00:00Z"), Tz::UTC, now) else {
            panic!()
        };
        let switch = PlanSwitch {
            lago_id: "s2".into(),
            plan_code: "mini".into(),
            effective_plan_code: "mini".into(),
            name: None,
            ending_at: None,
        };
        let Ok((_, pending)) = current.downgrade(switch, NaiveDate::MIN) else {
            panic!()
        };
        let at = utc("2024-04-01T00:00:00Z");
        let active = pending.activate(at);
        assert_eq!(
            active.as_ref().map(|s| s.status()),
            Ok(SubscriptionStatus::Active)
        );
        assert_eq!(active.as_ref().map(|s| s.started_at()), Ok(Some(at)));
        assert_eq!(
            active.as_ref().map(|s| s.initial_started_at()),
            Ok(current.started_at())
        );
        assert!(active.and_then(|s| s.activate(at)).is_err());
    }

    #[test]
    fn terminating_needs_an_active_and_canceling_a_pending_subscription() {
        let now = utc("2024-03-10T12:00:00Z");
        let Ok(pending) = Subscription::start(new("2024-04-01T00:00:00Z"), Tz::UTC, now) else {
            panic!()
        };
        assert!(pending.terminate(now, None, None).is_err());
        let canceled = pending.cancel(now);
        assert_eq!(
            canceled.as_ref().map(|s| s.status()),
            Ok(SubscriptionStatus::Canceled)
        );
        assert_eq!(canceled.map(|s| s.canceled_at()), Ok(Some(now)));
    }
}
