//! Subscription invoices: when a subscription owes one (its *slots*), what goes on it (fees,
//! taxes, totals, SEMANTICS §6-§8), and its life (draft → finalized → voided, §8.7-§8.8).
//!
//! ## Slots
//! A subscription owes an invoice at a few instants, each a *slot* with a stable key:
//! - `Start`: a pay-in-advance plan bills its first period when it starts (not during a trial);
//! - `Periodic`: at each period start after the subscription's first billable instant, the
//!   previous period's usage and the subscription fee (in arrears: the previous period; in
//!   advance: the new one);
//! - `Trial`: a pay-in-advance plan whose trial ends inside a period bills the rest of it then;
//! - `Termination`: a terminated subscription bills its last, partial period.
//!
//! Slots are ordered by `(instant, kind)`, and their key sorts the same way, so a subscription's
//! progress is one cursor: "every slot up to this key is invoiced". A slot's key names exactly
//! one invoice, which is what makes closing a period idempotent.
//!
//! ## Transitions
//! A few subscription changes happen by the clock rather than by a request: a pending
//! subscription starts on its start day, a scheduled downgrade swaps plans at the period end,
//! and `ending_at` terminates. [`due_transition`] says which one is due; the caller writes it.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use crate::{
    aggregation::{
        charge_usage::{ChargeUsage, GroupKey},
        filters::Bucket,
    },
    catalog::{
        metric::BillableMetric,
        plan::{Charge, Plan},
        subscription::{OnTerminationInvoice, Subscription, SubscriptionState, SubscriptionStatus},
    },
    charge_model::fee::minimum_spend_true_up,
    invoice_number::{DocumentNumbering, invoice_number},
    invoice_totals::{
        FeeType, InvoiceError, InvoiceFee, InvoiceInput, TaxRate, compute_invoice_totals,
    },
    money::{Currency, Money},
    period::{
        BillingSchedule, InvoiceBoundaries, PeriodError, PlanChange, SubscriptionDates,
        beginning_of_day, local_date, subscription_days, trial_end,
    },
    subscription_fee::{SubscriptionFeeFacts, SubscriptionFeeInput, subscription_fee},
    usage::{PricingError, price_charge, price_full_units},
};

/// What can go wrong computing an invoice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceComputeError {
    /// A period could not be computed.
    #[error(transparent)]
    Period(#[from] PeriodError),
    /// Pricing usage failed.
    #[error(transparent)]
    Pricing(#[from] PricingError),
    /// The totals could not be computed.
    #[error(transparent)]
    Totals(#[from] InvoiceError),
    /// A money operation failed.
    #[error(transparent)]
    Money(#[from] crate::money::MoneyError),
    /// A charge model failed.
    #[error(transparent)]
    Charge(#[from] crate::charge_model::ChargeError),
}

/// An invoice's status (SEMANTICS §8.7): the ones an API caller can see, plus `closed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceState {
    /// In its grace period: refreshable, numbered `<PREFIX>-DRAFT`.
    Draft,
    /// Final and numbered.
    Finalized,
    /// Finalized, then voided (keeps its number).
    Voided,
    /// A zero-amount invoice the customer does not want finalized: never numbered.
    Closed,
}

impl InvoiceState {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Finalized => "finalized",
            Self::Voided => "voided",
            Self::Closed => "closed",
        }
    }

    /// Parses Lago's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Draft, Self::Finalized, Self::Voided, Self::Closed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Whether an invoice was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Waiting for payment.
    Pending,
    /// Paid (or nothing was due).
    Succeeded,
    /// The payment failed.
    Failed,
}

impl PaymentStatus {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses Lago's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Why a subscription is on an invoice (`billing_periods[].invoicing_reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoicingReason {
    /// The first invoice of a pay-in-advance plan (or its trial end).
    SubscriptionStarting,
    /// A period end.
    SubscriptionPeriodic,
    /// A termination (plain, by upgrade, by downgrade, or by `ending_at`).
    SubscriptionTerminating,
    /// The instant invoice of one event on a pay-in-advance charge (SEMANTICS §4.9).
    InAdvanceCharge,
}

impl InvoicingReason {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubscriptionStarting => "subscription_starting",
            Self::SubscriptionPeriodic => "subscription_periodic",
            Self::SubscriptionTerminating => "subscription_terminating",
            Self::InAdvanceCharge => "in_advance_charge",
        }
    }

    /// Parses Lago's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::SubscriptionStarting,
            Self::SubscriptionPeriodic,
            Self::SubscriptionTerminating,
            Self::InAdvanceCharge,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// A tax as the invoice records it (a snapshot: a later change of the tax does not change
/// issued invoices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxInfo {
    /// The tax's Lago id.
    pub lago_id: String,
    /// Its code.
    pub code: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: Option<String>,
    /// Rate in percent.
    pub rate: Decimal,
}

impl TaxInfo {
    /// As the totals computation takes it.
    pub fn rate(&self) -> TaxRate {
        TaxRate::new(self.code.clone(), self.rate)
    }
}

/// One tax on one fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeTax {
    /// The tax.
    pub tax: TaxInfo,
    /// `round(base × rate / 100)`.
    pub amount_cents: i64,
}

/// One tax line of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceTax {
    /// The tax.
    pub tax: TaxInfo,
    /// `round(A_T)`.
    pub amount_cents: i64,
    /// The taxed base.
    pub fees_amount_cents: i64,
}

/// What a fee bills.
// A charge fee carries its item's names; fees are few per invoice, so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeeItem {
    /// The plan's subscription fee.
    Subscription {
        /// The plan's amount (`amount_details.plan_amount_cents`).
        plan_amount_cents: i64,
        /// The plan's name.
        plan_name: String,
        /// The plan's name on invoices.
        plan_display_name: Option<String>,
    },
    /// Usage of a charge (one fee per filter bucket and pricing group), or its true-up.
    Charge {
        /// The charge's Lago id.
        charge_id: String,
        /// The charge's code.
        charge_code: String,
        /// The charge's display name.
        charge_display_name: Option<String>,
        /// The billable metric's Lago id.
        metric_id: String,
        /// The metric's code.
        metric_code: String,
        /// The metric's name.
        metric_name: String,
        /// The metric's description.
        metric_description: Option<String>,
        /// The filter's values when the fee is a filter bucket's.
        filter_values: Option<BTreeMap<String, Vec<String>>>,
        /// The filter's display name.
        filter_display_name: Option<String>,
        /// Pricing group key → value.
        grouped_by: Vec<(String, Option<String>)>,
        /// The fee this true-up completes (true-up fees only).
        true_up_parent_fee_id: Option<String>,
        /// The true-up fee completing this one.
        true_up_fee_id: Option<String>,
    },
}

/// One fee of an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fee {
    /// Lago id.
    pub lago_id: String,
    /// What it bills.
    pub item: FeeItem,
    /// `amount_cents`.
    pub amount_cents: i64,
    /// The unrounded amount in minor units.
    pub precise_amount_cents: Decimal,
    /// Units billed.
    pub units: Decimal,
    /// Units before proration.
    pub total_aggregated_units: Decimal,
    /// Events counted.
    pub events_count: u64,
    /// Unit price in major units.
    pub precise_unit_amount: Decimal,
    /// Fee-level taxes, rounded once.
    pub taxes_amount_cents: i64,
    /// Fee-level taxes, unrounded.
    pub taxes_precise_amount_cents: Decimal,
    /// Σ rates.
    pub taxes_rate: Decimal,
    /// Each tax on the fee.
    pub applied_taxes: Vec<FeeTax>,
    /// Coupons and progressive credit allocated to the fee.
    pub precise_coupons_amount_cents: Decimal,
    /// Start of what the fee covers.
    pub from_datetime: DateTime<Utc>,
    /// End of what the fee covers.
    pub to_datetime: DateTime<Utc>,
    /// When the fee was computed.
    pub created_at: DateTime<Utc>,
    /// The fee of a pay-in-advance charge: an instant fee, or a recurring charge's renewal.
    pub pay_in_advance: bool,
    /// Whether the fee is on an invoice (`false`: a standalone fee of a non-invoiceable
    /// pay-in-advance charge).
    pub invoiceable: bool,
    /// The event an instant fee bills.
    pub event_transaction_id: Option<String>,
}

impl Fee {
    /// Lago's `fee_type`.
    pub fn fee_type(&self) -> FeeType {
        match self.item {
            FeeItem::Subscription { .. } => FeeType::Subscription,
            FeeItem::Charge { .. } => FeeType::Charge,
        }
    }
}

/// A fee on no invoice: the instant fee of a non-invoiceable pay-in-advance charge (SEMANTICS
/// §4.9), with what the fee object shows of its subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandaloneFee {
    /// The fee (`invoiceable: false`).
    pub fee: Fee,
    /// The customer's Lago id.
    pub customer_id: String,
    /// The customer's external id.
    pub external_customer_id: String,
    /// The subscription's Lago id.
    pub subscription_id: String,
    /// The subscription's external id.
    pub external_subscription_id: String,
    /// The plan's code.
    pub plan_code: String,
    /// Currency.
    pub currency: Currency,
}

/// A key/value pair attached to an invoice by the API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceMetadata {
    /// Lago id.
    pub lago_id: String,
    /// Key.
    pub key: String,
    /// Value (140 characters at most).
    pub value: String,
    /// When it was added.
    pub created_at: DateTime<Utc>,
}

/// The amounts of an invoice (SEMANTICS §8.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvoiceAmounts {
    /// Σ fee amounts.
    pub fees_amount_cents: i64,
    /// Σ coupon credits.
    pub coupons_amount_cents: i64,
    /// Σ credit-note credits.
    pub credit_notes_amount_cents: i64,
    /// Progressive-billing credit.
    pub progressive_billing_credit_amount_cents: i64,
    /// fees − progressive − coupons.
    pub sub_total_excluding_taxes_amount_cents: i64,
    /// `round(Σ_T A_T)`.
    pub taxes_amount_cents: i64,
    /// Sub total + taxes.
    pub sub_total_including_taxes_amount_cents: i64,
    /// Σ wallet transactions.
    pub prepaid_credit_amount_cents: i64,
    /// What is due.
    pub total_amount_cents: i64,
}

/// A subscription invoice, as stored: plain data, changed only through the lifecycle
/// functions of this module so that status, number and dates agree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// Lago id (derived from the slot, so one slot names one invoice).
    pub lago_id: String,
    /// The slot key ([`Slot::key`]) this invoice closes.
    pub slot: String,
    /// The customer's Lago id.
    pub customer_id: String,
    /// The customer's external id.
    pub external_customer_id: String,
    /// The subscription's Lago id.
    pub subscription_id: String,
    /// The subscription's external id.
    pub external_subscription_id: String,
    /// The plan record's Lago id.
    pub plan_id: String,
    /// The plan's code.
    pub plan_code: String,
    /// Why it was issued.
    pub invoicing_reason: InvoicingReason,
    /// The billing instant.
    pub billing_at: DateTime<Utc>,
    /// Status.
    pub status: InvoiceState,
    /// Payment status.
    pub payment_status: PaymentStatus,
    /// Currency.
    pub currency: Currency,
    /// Issuing date (billing date in the customer's timezone + grace days).
    pub issuing_date: NaiveDate,
    /// Days from issuing to payment due.
    pub net_payment_term: u32,
    /// When a draft is finalized by the clock (end of its grace period).
    pub finalize_at: Option<DateTime<Utc>>,
    /// Per-customer sequence number (finalized and voided invoices).
    pub sequential_id: Option<u64>,
    /// Per-organization sequence number (finalized and voided invoices).
    pub organization_sequential_id: Option<u64>,
    /// The document number (`<PREFIX>-DRAFT` until finalized).
    pub number: String,
    /// Subscription fee boundaries.
    pub from_datetime: DateTime<Utc>,
    /// Subscription fee boundaries.
    pub to_datetime: DateTime<Utc>,
    /// Usage boundaries.
    pub charges_from_datetime: DateTime<Utc>,
    /// Usage boundaries.
    pub charges_to_datetime: DateTime<Utc>,
    /// The fees.
    pub fees: Vec<Fee>,
    /// The amounts.
    pub amounts: InvoiceAmounts,
    /// Weighted tax rate.
    pub taxes_rate: Decimal,
    /// Tax lines.
    pub applied_taxes: Vec<InvoiceTax>,
    /// Caller metadata.
    pub metadata: Vec<InvoiceMetadata>,
    /// Whether a subscription fee was billed (decides "already billed" for later slots).
    pub has_subscription_fee: bool,
    /// Whether an earlier invoice of the subscription billed a subscription fee (the
    /// "already billed" fact this invoice's fee was decided on; a refresh reuses it).
    pub prior_subscription_fee: bool,
    /// Where the PDF is stored, once generated.
    pub file_key: Option<String>,
    /// When it was finalized.
    pub finalized_at: Option<DateTime<Utc>>,
    /// When it was voided.
    pub voided_at: Option<DateTime<Utc>>,
    /// Credit notes spent on it at finalization (SEMANTICS §8.5), oldest note first.
    pub credits: Vec<crate::credit_note::InvoiceCredit>,
}

impl Invoice {
    /// `issuing_date + net_payment_term` days.
    pub fn payment_due_date(&self) -> NaiveDate {
        self.issuing_date
            .checked_add_days(Days::new(u64::from(self.net_payment_term)))
            .unwrap_or(self.issuing_date)
    }

    /// Finalized, not paid, and due before `today` (SEMANTICS §8.7).
    pub fn payment_overdue(&self, today: NaiveDate) -> bool {
        self.status == InvoiceState::Finalized
            && self.payment_status != PaymentStatus::Succeeded
            && self.payment_due_date() < today
    }

    /// Whether `void` is allowed: finalized and not paid (lago-api `Invoice#voidable?`, minus
    /// the credit-note and dispute conditions this system does not have yet).
    pub fn voidable(&self) -> bool {
        self.status == InvoiceState::Finalized && self.payment_status != PaymentStatus::Succeeded
    }
}

/// How the organization numbers invoices, for [`number_invoice`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbering {
    /// Scheme.
    pub scheme: DocumentNumbering,
    /// Document prefix.
    pub prefix: String,
    /// The customer's own sequential id (`%03d` in per-customer numbers).
    pub customer_sequential_id: u64,
    /// The organization's timezone (per-organization numbers show the finalization month).
    pub timezone: Tz,
}

/// Finalizes a draft (or a just-computed invoice) with its sequence numbers: status,
/// number, and a zero total paid at once (SEMANTICS §8.7-§8.8).
pub fn number_invoice(
    invoice: &mut Invoice,
    numbering: &Numbering,
    sequential_id: u64,
    organization_sequential_id: u64,
    now: DateTime<Utc>,
) {
    let month = local_date(now, numbering.timezone);
    let seq = match numbering.scheme {
        DocumentNumbering::PerCustomer => sequential_id,
        DocumentNumbering::PerBillingEntity => organization_sequential_id,
    };
    invoice.number = invoice_number(
        numbering.scheme,
        &numbering.prefix,
        numbering.customer_sequential_id,
        seq,
        (
            chrono::Datelike::year(&month),
            chrono::Datelike::month(&month),
        ),
    );
    invoice.sequential_id = Some(sequential_id);
    invoice.organization_sequential_id = Some(organization_sequential_id);
    invoice.status = InvoiceState::Finalized;
    invoice.finalize_at = None;
    invoice.finalized_at = Some(now);
    if invoice.amounts.total_amount_cents <= 0 {
        invoice.payment_status = PaymentStatus::Succeeded;
    }
}

// ---------------------------------------------------------------------------------------------
// Slots

/// The kinds of slot, in their order at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SlotKind {
    /// First invoice of a pay-in-advance plan.
    Start,
    /// A period start.
    Periodic,
    /// End of a pay-in-advance plan's trial inside a period.
    Trial,
    /// Termination.
    Termination,
}

impl SlotKind {
    fn rank(self) -> u8 {
        match self {
            Self::Start => 0,
            Self::Periodic => 1,
            Self::Trial => 2,
            Self::Termination => 3,
        }
    }
}

/// One invoice a subscription owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    /// The billing instant.
    pub at: DateTime<Utc>,
    /// Which invoice.
    pub kind: SlotKind,
}

impl Slot {
    /// A key that sorts as slots do: `<UTC instant, second precision>#<rank>`.
    pub fn key(&self) -> String {
        format!(
            "{}#{}",
            self.at.format("%Y-%m-%dT%H:%M:%SZ"),
            self.kind.rank()
        )
    }

    /// Reads a [`Slot::key`] back.
    pub fn parse_key(key: &str) -> Option<Slot> {
        let (at, rank) = key.rsplit_once('#')?;
        let at = DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc);
        let kind = match rank {
            "0" => SlotKind::Start,
            "1" => SlotKind::Periodic,
            "2" => SlotKind::Trial,
            "3" => SlotKind::Termination,
            _ => return None,
        };
        Some(Slot { at, kind })
    }

    /// Why the subscription is on this slot's invoice.
    pub fn reason(&self) -> InvoicingReason {
        match self.kind {
            SlotKind::Start | SlotKind::Trial => InvoicingReason::SubscriptionStarting,
            SlotKind::Periodic => InvoicingReason::SubscriptionPeriodic,
            SlotKind::Termination => InvoicingReason::SubscriptionTerminating,
        }
    }
}

/// How many slots one planning call returns at most (R19): a subscription idle for longer
/// catches up over several runs.
pub const SLOTS_MAX: usize = 120;

/// A subscription and the plan facts that lay out its slots.
#[derive(Debug, Clone)]
pub struct SubscriptionTimeline<'a> {
    /// The subscription.
    pub subscription: &'a Subscription,
    /// When its record was created (a backdated subscription is billed from then on).
    pub created_at: DateTime<Utc>,
    /// Its effective plan.
    pub plan: &'a Plan,
    /// The customer's timezone.
    pub timezone: Tz,
}

impl SubscriptionTimeline<'_> {
    fn schedule(&self) -> BillingSchedule {
        BillingSchedule::new(
            self.plan.interval(),
            self.subscription.billing_time(),
            self.subscription.subscription_at(),
            self.timezone,
        )
    }

    /// The dates the boundaries of its invoices come from.
    pub fn dates(&self) -> Option<SubscriptionDates> {
        let started_at = self.subscription.started_at()?;
        let mut dates =
            SubscriptionDates::new(self.schedule(), self.plan.pay_in_advance(), started_at);
        if let Some(t) = self.subscription.terminated_at() {
            dates = dates.terminated_at(t);
        }
        if self.plan.bill_charges_monthly() {
            dates = dates.billing_charges_monthly();
        }
        Some(dates)
    }

    /// The schedule periodic slots follow: the charges' (monthly when a yearly or semiannual
    /// plan bills charges monthly).
    fn slot_schedule(&self) -> BillingSchedule {
        let long = matches!(
            self.plan.interval(),
            crate::period::PlanInterval::Yearly | crate::period::PlanInterval::Semiannual
        );
        if self.plan.bill_charges_monthly() && long {
            self.schedule()
                .with_interval(crate::period::PlanInterval::Monthly)
        } else {
            self.schedule()
        }
    }

    /// When the trial ends, if the plan has one.
    pub fn trial_end(&self) -> Option<DateTime<Utc>> {
        let days = self
            .plan
            .trial_period_days()
            .filter(|d| d.is_sign_positive() && !d.is_zero())?;
        let start = self
            .subscription
            .initial_started_at()
            .or(self.subscription.started_at())?;
        Some(trial_end(start, days))
    }

    /// Whether the trial still runs at `t`.
    pub fn in_trial(&self, t: DateTime<Utc>) -> bool {
        self.trial_end().is_some_and(|end| end > t)
    }

    /// The first instant the subscription is billed from: its start, or its creation when it
    /// was created backdated.
    fn first_billable(&self, started_at: DateTime<Utc>) -> DateTime<Utc> {
        started_at.max(self.created_at)
    }

    /// Whether `t` is the first instant of a period of the slot schedule.
    fn is_boundary(&self, t: DateTime<Utc>) -> Result<bool, PeriodError> {
        let schedule = self.slot_schedule();
        let date = local_date(t, self.timezone);
        Ok(schedule.period_containing(date)?.start() == date
            && beginning_of_day(date, self.timezone)? == t)
    }

    /// The slots after `cursor` (a [`Slot::key`]; `None`: from the start) at or before
    /// `until`, in order, at most [`SLOTS_MAX`].
    pub fn slots(
        &self,
        cursor: Option<&str>,
        until: DateTime<Utc>,
    ) -> Result<Vec<Slot>, PeriodError> {
        let s = self.subscription;
        let Some(started_at) = s.started_at() else {
            return Ok(Vec::new());
        };
        if !matches!(
            s.status(),
            SubscriptionStatus::Active | SubscriptionStatus::Terminated
        ) {
            return Ok(Vec::new());
        }
        let first = self.first_billable(started_at);
        let terminated_at = s.terminated_at();
        let after = |slot: &Slot| cursor.is_none_or(|c| slot.key().as_str() > c);
        let mut out: Vec<Slot> = Vec::new();
        let push = |slot: Slot, out: &mut Vec<Slot>| {
            if slot.at <= until && after(&slot) {
                out.push(slot);
            }
        };
        let trial_end = self.trial_end();
        let ends_before = |t: DateTime<Utc>| terminated_at.is_none_or(|end| t < end);
        if self.plan.pay_in_advance() && !self.in_trial(first) && ends_before(first) {
            push(
                Slot {
                    at: first,
                    kind: SlotKind::Start,
                },
                &mut out,
            );
        }
        if self.plan.pay_in_advance()
            && let Some(te) = trial_end
            && te > first
            && ends_before(te)
            && !self.is_boundary(beginning_of_day(
                local_date(te, self.timezone),
                self.timezone,
            )?)?
        {
            push(
                Slot {
                    at: te,
                    kind: SlotKind::Trial,
                },
                &mut out,
            );
        }
        // Period starts after the first billable instant, before the termination.
        let schedule = self.slot_schedule();
        let mut date = schedule
            .period_containing(local_date(first, self.timezone))?
            .end();
        for _ in 0..10_000 {
            date = date.succ_opt().ok_or(PeriodError::OutOfRange)?;
            let at = beginning_of_day(date, self.timezone)?;
            if at > until || !ends_before(at) || out.len() > SLOTS_MAX {
                break;
            }
            if at > first {
                push(
                    Slot {
                        at,
                        kind: SlotKind::Periodic,
                    },
                    &mut out,
                );
            }
            date = schedule.period_containing(date)?.end();
        }
        if s.status() == SubscriptionStatus::Terminated
            && let Some(t) = terminated_at
            && s.on_termination_invoice() == OnTerminationInvoice::Generate
        {
            push(
                Slot {
                    at: t,
                    kind: SlotKind::Termination,
                },
                &mut out,
            );
        }
        out.sort();
        out.dedup();
        out.truncate(SLOTS_MAX);
        Ok(out)
    }

    /// The next slot after `cursor`, whenever it falls (`None`: the subscription owes nothing
    /// more unless it changes).
    pub fn next_slot(&self, cursor: Option<&str>) -> Result<Option<Slot>, PeriodError> {
        let horizon = DateTime::<Utc>::MAX_UTC;
        let s = self.subscription;
        let Some(started_at) = s.started_at() else {
            return Ok(None);
        };
        // The slot list up to the next period start is short; ask for a bounded horizon.
        let first = self.first_billable(started_at);
        let schedule = self.slot_schedule();
        let mut until = cursor
            .and_then(|c| c.split('#').next())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(first)
            .max(first);
        for _ in 0..3 {
            let end = schedule
                .period_containing(local_date(until, self.timezone))?
                .end();
            until = beginning_of_day(
                end.succ_opt().ok_or(PeriodError::OutOfRange)?,
                self.timezone,
            )?;
            let slots = self.slots(cursor, until)?;
            if let Some(first) = slots.first() {
                return Ok(Some(*first));
            }
        }
        let slots = self.slots(cursor, horizon)?;
        Ok(slots.first().copied())
    }

    /// The subscription-fee facts of `slot` (SEMANTICS §7). `already_billed` says whether an
    /// earlier invoice of this subscription carried a subscription fee; `terminated_by` and
    /// `predecessor_change` say how this subscription ended and began.
    pub fn fee_facts(
        &self,
        slot: &Slot,
        already_billed: bool,
        terminated_by: Option<PlanChange>,
        predecessor_change: Option<PlanChange>,
    ) -> Result<SubscriptionFeeFacts, PeriodError> {
        let s = self.subscription;
        let started_at = s.started_at().unwrap_or(slot.at);
        let previous_start = self
            .schedule()
            .previous_period(local_date(slot.at, self.timezone))?
            .from_datetime(self.timezone)?;
        Ok(SubscriptionFeeFacts {
            terminated: slot.kind == SlotKind::Termination,
            terminated_by,
            pay_in_advance: self.plan.pay_in_advance(),
            anniversary: s.billing_time() == crate::period::BillingTime::Anniversary,
            already_billed,
            created_from_upgrade: predecessor_change == Some(PlanChange::Upgrade),
            created_from_downgrade: predecessor_change == Some(PlanChange::Downgrade),
            started_in_past: started_at.date_naive() < self.created_at.date_naive(),
            started_before_previous_period: started_at < previous_start,
        })
    }

    /// Whether `slot`'s invoice carries a subscription fee (SEMANTICS §7, "when the
    /// subscription fee is created"): never during a trial (unless it ends that day), never on
    /// a terminated pay-in-advance plan (already paid), only at the first month of a yearly or
    /// semiannual period billing charges monthly.
    pub fn bills_subscription_fee(&self, slot: &Slot) -> Result<bool, PeriodError> {
        let tz = self.timezone;
        let trial_running = self
            .trial_end()
            .is_some_and(|te| te > slot.at && local_date(te, tz) != local_date(slot.at, tz));
        Ok(match slot.kind {
            SlotKind::Start | SlotKind::Trial => true,
            SlotKind::Termination => !self.plan.pay_in_advance() && !trial_running,
            SlotKind::Periodic => {
                let fee_period_start = self
                    .schedule()
                    .period_containing(local_date(slot.at, tz))?
                    .start();
                let on_fee_boundary = fee_period_start == local_date(slot.at, tz);
                on_fee_boundary && !trial_running
            }
        })
    }
}

/// A change the clock makes to a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A pending subscription (not a downgrade) reaches its start day.
    Activate,
    /// A scheduled downgrade takes effect at this instant (the new period's first one).
    Rotate(DateTime<Utc>),
    /// `ending_at` is reached.
    End(DateTime<Utc>),
}

/// When the next transition of `s` falls, whether or not it is due.
pub fn next_transition_at(
    s: &Subscription,
    timezone: Tz,
) -> Result<Option<DateTime<Utc>>, PeriodError> {
    Ok(match s.status() {
        SubscriptionStatus::Pending if s.is_starting_in_the_future() => Some(beginning_of_day(
            local_date(s.subscription_at(), timezone),
            timezone,
        )?),
        SubscriptionStatus::Active => {
            let rotate = match (s.downgrade_plan_date(), s.next_subscription_id()) {
                (Some(d), Some(_)) => Some(beginning_of_day(d, timezone)?),
                _ => None,
            };
            match (rotate, s.ending_at()) {
                (Some(r), Some(e)) => Some(r.min(e)),
                (r, e) => r.or(e),
            }
        }
        _ => None,
    })
}

/// The transition of `s` due at `now`, if any.
pub fn due_transition(
    s: &Subscription,
    timezone: Tz,
    now: DateTime<Utc>,
) -> Result<Option<Transition>, PeriodError> {
    let Some(at) = next_transition_at(s, timezone)? else {
        return Ok(None);
    };
    if at > now {
        return Ok(None);
    }
    Ok(Some(match s.status() {
        SubscriptionStatus::Pending => Transition::Activate,
        _ => match (s.downgrade_plan_date(), s.ending_at()) {
            (Some(d), _) if beginning_of_day(d, timezone)? == at => Transition::Rotate(at),
            _ => Transition::End(at),
        },
    }))
}

fn rebuilt(state: SubscriptionState) -> Result<Subscription, PeriodError> {
    Subscription::from_state(state).map_err(PeriodError::Unknown)
}

/// A pending subscription started on its start day: active since `subscription_at` (as a
/// subscription created on that day would be).
pub fn activate(s: &Subscription) -> Result<Subscription, PeriodError> {
    let mut state = s.state().clone();
    state.status = SubscriptionStatus::Active;
    state.started_at = Some(state.subscription_at);
    state.initial_started_at = state.initial_started_at.or(Some(state.subscription_at));
    rebuilt(state)
}

/// A scheduled downgrade at `at`: the current subscription terminated (keeping its
/// `downgrade_plan_date`, the mark of a downgrade termination) and its successor active.
pub fn rotate(
    current: &Subscription,
    successor: &Subscription,
    at: DateTime<Utc>,
) -> Result<(Subscription, Subscription), PeriodError> {
    let mut old = current.state().clone();
    old.status = SubscriptionStatus::Terminated;
    old.terminated_at = Some(at);
    let mut new = successor.state().clone();
    new.status = SubscriptionStatus::Active;
    new.started_at = Some(at);
    new.initial_started_at = new.initial_started_at.or(Some(at));
    Ok((rebuilt(old)?, rebuilt(new)?))
}

/// `ending_at` reached: terminated then (a scheduled downgrade is dropped).
pub fn end(s: &Subscription, at: DateTime<Utc>) -> Result<Subscription, PeriodError> {
    let mut state = s.state().clone();
    state.status = SubscriptionStatus::Terminated;
    state.terminated_at = Some(at);
    state.downgrade_plan_date = None;
    state.next_plan_code = None;
    state.next_subscription_id = None;
    rebuilt(state)
}

/// How a terminated subscription ended: by an upgrade or a downgrade (it names a successor;
/// a downgrade keeps its `downgrade_plan_date`), else a plain termination (`None`).
pub fn terminated_by(s: &Subscription) -> Option<PlanChange> {
    s.next_subscription_id()?;
    Some(if s.downgrade_plan_date().is_some() {
        PlanChange::Downgrade
    } else {
        PlanChange::Upgrade
    })
}

// ---------------------------------------------------------------------------------------------
// Computation

/// One charge of the subscription with its usage over the invoice's charges window.
#[derive(Debug, Clone)]
pub struct ChargeLine<'a> {
    /// The charge.
    pub charge: &'a Charge,
    /// Its metric.
    pub metric: &'a BillableMetric,
    /// Its usage over `[charges_from, charges_to]`.
    pub usage: &'a ChargeUsage,
    /// The taxes its fees carry ([`crate::invoice_totals::TaxSources`] already applied).
    pub taxes: Vec<TaxInfo>,
}

/// What the fees of one slot's invoice are computed from.
#[derive(Debug, Clone)]
pub struct InvoiceLines<'a> {
    /// The invoice's Lago id (fee ids derive from it).
    pub invoice_id: &'a str,
    /// The subscription's timeline.
    pub timeline: &'a SubscriptionTimeline<'a>,
    /// The slot.
    pub slot: Slot,
    /// The boundaries at the slot.
    pub boundaries: InvoiceBoundaries,
    /// The subscription fee facts, when the slot bills one.
    pub subscription_fee: Option<SubscriptionFeeFacts>,
    /// Taxes of the subscription fee.
    pub subscription_taxes: Vec<TaxInfo>,
    /// Charges (empty on start and trial invoices).
    pub charges: Vec<ChargeLine<'a>>,
    /// The new period's charges boundaries when the slot renews the subscription (a periodic
    /// slot): recurring pay-in-advance charges bill their units again, in full, for it.
    pub renewal: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// When the fees are computed.
    pub now: DateTime<Utc>,
}

/// An invoice's computed fees and amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedInvoice {
    /// Fees, with taxes and coupon allocations.
    pub fees: Vec<Fee>,
    /// Amounts.
    pub amounts: InvoiceAmounts,
    /// Weighted tax rate.
    pub taxes_rate: Decimal,
    /// Tax lines.
    pub applied_taxes: Vec<InvoiceTax>,
    /// Whether a subscription fee is on it.
    pub has_subscription_fee: bool,
}

/// What a fee of `charge` bills in `bucket` and `group`: the charge, its metric, the filter's
/// values and display name, and the pricing group (a filter's own keys when it has them).
pub fn charge_fee_item(
    charge: &Charge,
    metric: &BillableMetric,
    bucket: Bucket,
    group: &GroupKey,
) -> FeeItem {
    let (filter_values, filter_display_name, group_keys) = match bucket {
        Bucket::Filter(i) => match charge.filters().get(i) {
            Some(f) => {
                let keys = f.properties().pricing_group_keys();
                (
                    Some(f.values().clone()),
                    f.invoice_display_name().map(str::to_owned),
                    if keys.is_empty() {
                        charge.pricing_group_keys().to_vec()
                    } else {
                        keys.to_vec()
                    },
                )
            }
            None => (None, None, charge.pricing_group_keys().to_vec()),
        },
        Bucket::Default => (None, None, charge.pricing_group_keys().to_vec()),
    };
    FeeItem::Charge {
        charge_id: charge.lago_id().to_owned(),
        charge_code: charge.code().to_owned(),
        charge_display_name: charge.invoice_display_name().map(str::to_owned),
        metric_id: charge.billable_metric_id().to_owned(),
        metric_code: metric.code().to_owned(),
        metric_name: metric.name().to_owned(),
        metric_description: metric.description().map(str::to_owned),
        filter_values,
        filter_display_name,
        grouped_by: group_pairs(&group_keys, group),
        true_up_parent_fee_id: None,
        true_up_fee_id: None,
    }
}

fn group_pairs(keys: &[String], group: &GroupKey) -> Vec<(String, Option<String>)> {
    keys.iter()
        .cloned()
        .zip(group.values().iter().cloned())
        .collect()
}

/// Computes the fees and totals of one slot's invoice: the subscription fee, one fee per
/// charge bucket and group with usage (Lago persists a fee with units, amount or events), the
/// minimum-spend true-ups, taxes, then the totals (coupons, credit notes and wallets are not
/// modelled yet, so a draft and a finalized invoice total the same). `fee_id(key)` gives a
/// fee's Lago id from a key stable across refreshes.
pub fn compute_invoice(
    lines: &InvoiceLines<'_>,
    fee_id: &dyn Fn(&str) -> String,
    finalizing: bool,
) -> Result<ComputedInvoice, InvoiceComputeError> {
    let plan = lines.timeline.plan;
    let currency = plan.currency();
    let tz = lines.timeline.timezone;
    let b = &lines.boundaries;
    let mut fees: Vec<Fee> = Vec::new();
    let mut taxes_of: Vec<Vec<TaxInfo>> = Vec::new();

    if let Some(facts) = lines.subscription_fee {
        let case = facts.case();
        let from = if case == crate::subscription_fee::SubscriptionFeeCase::FirstAfterUpgrade {
            lines
                .timeline
                .subscription
                .started_at()
                .unwrap_or(b.from_datetime())
        } else {
            b.from_datetime()
        };
        let days = if case == crate::subscription_fee::SubscriptionFeeCase::FirstAfterUpgrade {
            b.fee_period().days()
        } else {
            b.fee_duration_days()
        };
        let mut input = SubscriptionFeeInput::new(
            Money::new(plan.amount_cents(), currency),
            case,
            from,
            b.to_datetime(),
            days,
            tz,
        );
        if let Some(te) = lines.timeline.trial_end() {
            input = input.with_trial_end(te);
        }
        let fee = subscription_fee(&input)?;
        fees.push(Fee {
            lago_id: fee_id("subscription"),
            item: FeeItem::Subscription {
                plan_amount_cents: plan.amount_cents(),
                plan_name: plan.name().to_owned(),
                plan_display_name: plan.invoice_display_name().map(str::to_owned),
            },
            amount_cents: fee.amount().cents(),
            precise_amount_cents: fee.precise_amount_cents(),
            units: Decimal::ONE,
            total_aggregated_units: Decimal::ONE,
            events_count: 0,
            precise_unit_amount: Decimal::from(fee.amount().cents()) / currency.subunit_to_unit(),
            taxes_amount_cents: 0,
            taxes_precise_amount_cents: Decimal::ZERO,
            taxes_rate: Decimal::ZERO,
            applied_taxes: Vec::new(),
            precise_coupons_amount_cents: Decimal::ZERO,
            from_datetime: from,
            to_datetime: b.to_datetime(),
            created_at: lines.now,
            pay_in_advance: false,
            invoiceable: true,
            event_transaction_id: None,
        });
        taxes_of.push(lines.subscription_taxes.clone());
    }

    for line in &lines.charges {
        let charge = line.charge;
        if charge.pay_in_advance() {
            // SEMANTICS §4.9: instant fees billed each event when it arrived; at a renewal,
            // a recurring metric's units are billed again, in full, for the new period.
            if let (Some((from, to)), true, true) =
                (lines.renewal, line.metric.recurring(), charge.invoiceable())
            {
                let priced =
                    price_full_units(charge, line.usage, b.charges_duration_days(), currency)?;
                for bf in priced {
                    if !bf.fee.is_billable() {
                        continue;
                    }
                    let key = format!(
                        "renewal#{}#{}#{:?}",
                        charge.lago_id(),
                        crate::aggregation::snapshot::bucket_name(bf.bucket),
                        bf.group.values()
                    );
                    fees.push(Fee {
                        lago_id: fee_id(&key),
                        item: charge_fee_item(charge, line.metric, bf.bucket, &bf.group),
                        amount_cents: bf.fee.amount().cents(),
                        precise_amount_cents: bf.fee.precise_amount_cents(),
                        units: bf.fee.units(),
                        total_aggregated_units: bf.total_aggregated_units,
                        events_count: bf.fee.events_count(),
                        precise_unit_amount: bf.fee.precise_unit_amount(),
                        taxes_amount_cents: 0,
                        taxes_precise_amount_cents: Decimal::ZERO,
                        taxes_rate: Decimal::ZERO,
                        applied_taxes: Vec::new(),
                        precise_coupons_amount_cents: Decimal::ZERO,
                        from_datetime: from,
                        to_datetime: to,
                        created_at: lines.now,
                        pay_in_advance: true,
                        invoiceable: true,
                        event_transaction_id: None,
                    });
                    taxes_of.push(line.taxes.clone());
                }
            }
            continue;
        }
        if !charge.invoiceable() {
            continue;
        }
        let priced = price_charge(charge, line.usage, b.charges_duration_days(), currency)?;
        let mut used = Money::zero(currency);
        let mut used_precise = Decimal::ZERO;
        for bf in &priced {
            used = used.checked_add(&bf.fee.amount())?;
            used_precise += bf.fee.precise_amount_cents();
        }
        // The minimum spend is compared with every fee of the charge, all filters and groups
        // together (SEMANTICS §4.12).
        let true_up = if charge.min_amount_cents() > 0 {
            // The upgrade day belongs to the new plan (SEMANTICS §4.12, §6.5): one day less
            // on the old subscription's termination invoice.
            let terminated_by_upgrade = lines.slot.kind == SlotKind::Termination
                && terminated_by(lines.timeline.subscription) == Some(PlanChange::Upgrade);
            let days = subscription_days(
                b.charges_from_datetime(),
                b.charges_to_datetime(),
                tz,
                terminated_by_upgrade,
            );
            minimum_spend_true_up(
                Money::new(charge.min_amount_cents(), currency),
                b.charges_duration_days(),
                u32::try_from(days.max(0)).unwrap_or(0),
                used,
                used_precise,
            )?
        } else {
            None
        };
        // A true-up is linked to the default bucket's fee, which is then kept even without
        // usage (SEMANTICS §4.11: a fee with a true-up relation is persisted; §4.12).
        let true_up_parent = true_up
            .as_ref()
            .and_then(|_| priced.iter().position(|bf| bf.bucket == Bucket::Default));
        let mut parent_fee = None;
        for (i, bf) in priced.into_iter().enumerate() {
            let is_parent = true_up_parent == Some(i);
            if !bf.fee.is_billable() && !is_parent {
                continue;
            }
            if is_parent {
                parent_fee = Some(fees.len());
            }
            let key = format!(
                "charge#{}#{}#{:?}",
                charge.lago_id(),
                crate::aggregation::snapshot::bucket_name(bf.bucket),
                bf.group.values()
            );
            fees.push(Fee {
                lago_id: fee_id(&key),
                item: charge_fee_item(charge, line.metric, bf.bucket, &bf.group),
                amount_cents: bf.fee.amount().cents(),
                precise_amount_cents: bf.fee.precise_amount_cents(),
                units: bf.fee.units(),
                total_aggregated_units: bf.total_aggregated_units,
                events_count: bf.fee.events_count(),
                precise_unit_amount: bf.fee.precise_unit_amount(),
                taxes_amount_cents: 0,
                taxes_precise_amount_cents: Decimal::ZERO,
                taxes_rate: Decimal::ZERO,
                applied_taxes: Vec::new(),
                precise_coupons_amount_cents: Decimal::ZERO,
                from_datetime: b.charges_from_datetime(),
                to_datetime: b.charges_to_datetime(),
                created_at: lines.now,
                pay_in_advance: false,
                invoiceable: true,
                event_transaction_id: None,
            });
            taxes_of.push(line.taxes.clone());
        }
        if let Some(t) = true_up {
            let key = format!("true_up#{}", charge.lago_id());
            let id = fee_id(&key);
            let parent = parent_fee
                .and_then(|i| fees.get(i))
                .map(|f| f.lago_id.clone());
            if let Some(FeeItem::Charge { true_up_fee_id, .. }) = parent_fee
                .and_then(|i| fees.get_mut(i))
                .map(|f| &mut f.item)
            {
                *true_up_fee_id = Some(id.clone());
            }
            fees.push(Fee {
                lago_id: id,
                item: FeeItem::Charge {
                    charge_id: charge.lago_id().to_owned(),
                    charge_code: charge.code().to_owned(),
                    charge_display_name: charge.invoice_display_name().map(str::to_owned),
                    metric_id: charge.billable_metric_id().to_owned(),
                    metric_code: line.metric.code().to_owned(),
                    metric_name: line.metric.name().to_owned(),
                    metric_description: line.metric.description().map(str::to_owned),
                    filter_values: None,
                    filter_display_name: None,
                    grouped_by: Vec::new(),
                    true_up_parent_fee_id: parent,
                    true_up_fee_id: None,
                },
                amount_cents: t.amount().cents(),
                precise_amount_cents: t.precise_amount_cents(),
                units: Decimal::ONE,
                total_aggregated_units: Decimal::ONE,
                events_count: 0,
                precise_unit_amount: Decimal::from(t.amount().cents()) / currency.subunit_to_unit(),
                taxes_amount_cents: 0,
                taxes_precise_amount_cents: Decimal::ZERO,
                taxes_rate: Decimal::ZERO,
                applied_taxes: Vec::new(),
                precise_coupons_amount_cents: Decimal::ZERO,
                from_datetime: b.charges_from_datetime(),
                to_datetime: b.charges_to_datetime(),
                created_at: lines.now,
                pay_in_advance: false,
                invoiceable: true,
                event_transaction_id: None,
            });
            taxes_of.push(line.taxes.clone());
        }
    }

    price_fees(fees, &taxes_of, currency, plan.code(), finalizing)
}

/// The taxes and totals of `fees` (each with its taxes in `taxes_of`): fee-level taxes after
/// coupon allocation, invoice tax lines, amounts (SEMANTICS §8.1-§8.4).
pub fn price_fees(
    mut fees: Vec<Fee>,
    taxes_of: &[Vec<TaxInfo>],
    currency: Currency,
    plan_code: &str,
    finalizing: bool,
) -> Result<ComputedInvoice, InvoiceComputeError> {
    let inputs: Vec<InvoiceFee> = fees
        .iter()
        .zip(taxes_of)
        .map(|(f, taxes)| {
            let fee = InvoiceFee::new(
                f.fee_type(),
                f.amount_cents,
                taxes.iter().map(TaxInfo::rate).collect(),
            )
            .for_plan(plan_code);
            match &f.item {
                FeeItem::Charge { metric_code, .. } => fee.for_metric(metric_code.clone()),
                FeeItem::Subscription { .. } => fee,
            }
        })
        .collect();
    let totals = compute_invoice_totals(&InvoiceInput::new(currency, inputs, finalizing))?;
    for ((fee, t), taxes) in fees.iter_mut().zip(&totals.fees).zip(taxes_of) {
        fee.precise_coupons_amount_cents = t.precise_coupons_amount_cents;
        fee.taxes_amount_cents = t.taxes.taxes_amount_cents;
        fee.taxes_precise_amount_cents = t.taxes.taxes_precise_amount_cents;
        fee.taxes_rate = t.taxes.taxes_rate;
        let base = Decimal::from(fee.amount_cents) - t.precise_coupons_amount_cents;
        fee.applied_taxes = taxes
            .iter()
            .map(|tax| {
                Ok(FeeTax {
                    tax: tax.clone(),
                    amount_cents: crate::money::round_cents(
                        base * tax.rate / Decimal::ONE_HUNDRED,
                        crate::money::RoundingRule::HalfAwayFromZero,
                    )?,
                })
            })
            .collect::<Result<_, crate::money::MoneyError>>()?;
    }
    let mut known: BTreeMap<String, TaxInfo> = BTreeMap::new();
    for t in taxes_of.iter().flatten() {
        known.entry(t.code.clone()).or_insert_with(|| t.clone());
    }
    let applied_taxes = totals
        .applied_taxes
        .iter()
        .filter_map(|line| {
            known.get(&line.code).map(|tax| InvoiceTax {
                tax: tax.clone(),
                amount_cents: line.amount_cents,
                fees_amount_cents: line.fees_amount_cents,
            })
        })
        .collect();
    Ok(ComputedInvoice {
        has_subscription_fee: fees
            .iter()
            .any(|f| matches!(f.item, FeeItem::Subscription { .. })),
        fees,
        amounts: InvoiceAmounts {
            fees_amount_cents: totals.fees_amount_cents,
            coupons_amount_cents: totals.coupons_amount_cents,
            credit_notes_amount_cents: totals.credit_notes_amount_cents,
            progressive_billing_credit_amount_cents: totals.progressive_billing_credit_amount_cents,
            sub_total_excluding_taxes_amount_cents: totals.sub_total_excluding_taxes_amount_cents,
            taxes_amount_cents: totals.taxes_amount_cents,
            sub_total_including_taxes_amount_cents: totals.sub_total_including_taxes_amount_cents,
            prepaid_credit_amount_cents: totals.prepaid_credit_amount_cents,
            total_amount_cents: totals.total_amount_cents,
        },
        taxes_rate: totals.taxes_rate,
        applied_taxes,
    })
}

/// The issuing date of an invoice billed at `billing_at`: its local date plus the grace days
/// (Lago's default `next_period_start` + `align_with_finalization_date` settings).
pub fn issuing_date(billing_at: DateTime<Utc>, timezone: Tz, grace_days: u32) -> NaiveDate {
    local_date(billing_at, timezone)
        .checked_add_days(Days::new(u64::from(grace_days)))
        .unwrap_or_else(|| local_date(billing_at, timezone))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{plan::PlanInput, subscription::NewSubscription};
    use crate::period::BillingTime;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn plan(interval: &str, advance: bool, trial: Option<&str>) -> Plan {
        Plan::new(PlanInput {
            name: Some("P".into()),
            code: Some("p".into()),
            interval: Some(interval.into()),
            amount_cents: Some(3100),
            amount_currency: Some("EUR".into()),
            pay_in_advance: Some(advance),
            trial_period: trial.map(|t| t.parse().unwrap_or_default()),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn sub(at: &str, billing_time: BillingTime, tz: Tz) -> Subscription {
        Subscription::start(
            NewSubscription {
                lago_id: "s1".into(),
                external_id: "sub".into(),
                external_customer_id: "cus".into(),
                customer_id: "c1".into(),
                plan_code: "p".into(),
                effective_plan_code: "p".into(),
                name: None,
                billing_time,
                subscription_at: utc(at),
                ending_at: None,
            },
            tz,
            utc(at),
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn arrears_calendar_slots_are_the_period_starts_after_the_start() {
        // Given a monthly calendar plan in arrears started 15 Jan 2024, when planning up to
        // 1 Apr, then the slots are 1 Feb, 1 Mar and 1 Apr at midnight UTC.
        let p = plan("monthly", false, None);
        let s = sub("2024-01-15T10:00:00Z", BillingTime::Calendar, Tz::UTC);
        let t = SubscriptionTimeline {
            subscription: &s,
            created_at: utc("2024-01-15T10:00:00Z"),
            plan: &p,
            timezone: Tz::UTC,
        };
        let slots = t
            .slots(None, utc("2024-04-01T00:00:00Z"))
            .unwrap_or_default();
        let at: Vec<String> = slots.iter().map(Slot::key).collect();
        assert_eq!(
            at,
            vec![
                "2024-02-01T00:00:00Z#1",
                "2024-03-01T00:00:00Z#1",
                "2024-04-01T00:00:00Z#1"
            ]
        );
        // And after the cursor of the first one, the next slot is 1 Mar.
        let next = t.next_slot(Some("2024-02-01T00:00:00Z#1"));
        assert_eq!(
            next.map(|s| s.map(|s| s.at)),
            Ok(Some(utc("2024-03-01T00:00:00Z")))
        );
    }

    #[test]
    fn a_minimum_spend_true_up_hangs_on_the_default_bucket_fee_even_without_its_usage() {
        // Given a count charge at 1 EUR with a filter region=eu at 2 EUR and a 25 EUR
        // minimum spend, on a calendar month in arrears from 1 Jan 2024, and 3 eu events only.
        use crate::{
            aggregation::{EventKey, UsageEvent},
            catalog::{
                metric::{BillableMetric, BillableMetricInput},
                plan::{ChargeFilterInput, ChargeInput},
            },
            charge_model::properties::ChargePropertiesInput,
            usage::ChargeSpec,
        };
        let amount = |a: &str| ChargePropertiesInput {
            amount: Some(a.into()),
            ..Default::default()
        };
        let metric = BillableMetric::new(BillableMetricInput {
            name: Some("Requests".into()),
            code: Some("requests".into()),
            aggregation_type: Some("count_agg".into()),
            filters: Some(vec![("region".into(), vec!["eu".into(), "us".into()])]),
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        let charge = Charge::new(
            ChargeInput {
                lago_id: "c1".into(),
                created_at: utc("2024-01-01T00:00:00Z"),
                parent_id: None,
                code: None,
                charge_model: Some("standard".into()),
                properties: Some(amount("1")),
                filters: vec![ChargeFilterInput {
                    values: [("region".to_owned(), vec!["eu".to_owned()])].into(),
                    properties: amount("2"),
                    invoice_display_name: Some("Europe".into()),
                }],
                pay_in_advance: false,
                invoiceable: true,
                prorated: false,
                regroup_paid_fees: None,
                min_amount_cents: Some(2500),
                tax_codes: Vec::new(),
                invoice_display_name: None,
            },
            "bm",
            &metric,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let p = plan("monthly", false, None);
        let s = sub("2024-01-01T00:00:00Z", BillingTime::Calendar, Tz::UTC);
        let t = SubscriptionTimeline {
            subscription: &s,
            created_at: utc("2024-01-01T00:00:00Z"),
            plan: &p,
            timezone: Tz::UTC,
        };
        let at = utc("2024-02-01T00:00:00Z");
        let boundaries = t
            .dates()
            .map(|d| d.invoice_boundaries(at))
            .unwrap_or_else(|| panic!("dates"))
            .unwrap_or_else(|e| panic!("{e:?}"));
        let mut usage = ChargeSpec::for_charge(&charge, &metric, Tz::UTC)
            .usage(
                boundaries.charges_from_datetime(),
                boundaries.charges_to_datetime(),
                boundaries.charges_duration_days(),
            )
            .unwrap_or_else(|e| panic!("{e:?}"));
        let eu = [("region", "eu")];
        for i in 0..3 {
            usage
                .fold(&UsageEvent::new(
                    EventKey::new(utc("2024-01-10T00:00:00Z"), i),
                    &eu,
                ))
                .unwrap_or_else(|e| panic!("{e:?}"));
        }
        let lines = InvoiceLines {
            invoice_id: "i1",
            timeline: &t,
            slot: Slot {
                at,
                kind: SlotKind::Periodic,
            },
            boundaries,
            subscription_fee: None,
            subscription_taxes: Vec::new(),
            charges: vec![ChargeLine {
                charge: &charge,
                metric: &metric,
                usage: &usage,
                taxes: Vec::new(),
            }],
            renewal: None,
            now: at,
        };

        // When the invoice is computed.
        let computed = compute_invoice(&lines, &|k: &str| k.to_owned(), true)
            .unwrap_or_else(|e| panic!("{e:?}"));

        // Then: Europe 3 × 2 EUR = 600; the default bucket's fee is kept at 0 (it carries the
        // true-up, SEMANTICS §4.11); the true-up is 2500 × 31/31 − 600 = 1900, linked to it.
        let shown: Vec<(String, i64, Option<String>, Option<String>)> = computed
            .fees
            .iter()
            .map(|f| match &f.item {
                FeeItem::Charge {
                    true_up_parent_fee_id,
                    true_up_fee_id,
                    ..
                } => (
                    f.lago_id.clone(),
                    f.amount_cents,
                    true_up_parent_fee_id.clone(),
                    true_up_fee_id.clone(),
                ),
                FeeItem::Subscription { .. } => (f.lago_id.clone(), f.amount_cents, None, None),
            })
            .collect();
        let default = "charge#c1#default#[]".to_owned();
        assert_eq!(
            shown,
            vec![
                ("charge#c1#filter:0#[]".into(), 600, None, None),
                (default.clone(), 0, None, Some("true_up#c1".into())),
                ("true_up#c1".into(), 1900, Some(default), None),
            ]
        );
        assert_eq!(computed.amounts.fees_amount_cents, 2500);
    }

    #[test]
    fn an_advance_plan_with_a_trial_starts_billing_at_the_trial_end() {
        // Given a monthly anniversary plan in advance with a 10-day trial from 15 Jan, then
        // there is no start slot, a trial slot on 25 Jan, and the next period on 15 Feb.
        let p = plan("monthly", true, Some("10"));
        let s = sub("2024-01-15T00:00:00Z", BillingTime::Anniversary, Tz::UTC);
        let t = SubscriptionTimeline {
            subscription: &s,
            created_at: utc("2024-01-15T00:00:00Z"),
            plan: &p,
            timezone: Tz::UTC,
        };
        let slots = t
            .slots(None, utc("2024-02-15T00:00:00Z"))
            .unwrap_or_default();
        let at: Vec<String> = slots.iter().map(Slot::key).collect();
        assert_eq!(at, vec!["2024-01-25T00:00:00Z#2", "2024-02-15T00:00:00Z#1"]);
    }
}
