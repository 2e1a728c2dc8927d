//! Invoice totals (SEMANTICS §8-§9): fees → progressive-billing credit → coupons → taxes →
//! credit notes → prepaid credits.
//!
//! Amounts are integer minor units where Lago stores integers (`amount_cents`,
//! `coupons_amount_cents`, ...) and `Decimal` minor units where Lago keeps a precise value
//! (`precise_coupons_amount_cents`, `taxes_precise_amount_cents`). Each rounding is the single
//! one Lago performs at that step: once per tax line and once for the invoice's tax total, once
//! per coupon, once per wallet transaction.

use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};

use crate::money::{Currency, MoneyError, RoundingRule, round_cents};

/// What can go wrong computing an invoice.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    /// A money operation failed.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// A wallet's conversion rate is not positive.
    #[error("wallet rate_amount must be positive")]
    InvalidWalletRate,
}

fn half_up(x: Decimal) -> Result<i64, InvoiceError> {
    Ok(round_cents(x, RoundingRule::HalfAwayFromZero)?)
}

/// A tax: its code and rate in percent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRate {
    code: String,
    rate: Decimal,
}

impl TaxRate {
    /// A tax `code` at `rate` percent.
    pub fn new(code: impl Into<String>, rate: Decimal) -> Self {
        Self {
            code: code.into(),
            rate,
        }
    }

    /// From a catalog tax.
    pub fn from_tax(tax: &crate::catalog::tax::Tax) -> Self {
        Self::new(tax.code(), tax.rate())
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The rate in percent.
    pub fn rate(&self) -> Decimal {
        self.rate
    }
}

/// The places a fee's taxes may come from, in Lago's precedence order (SEMANTICS §8.4).
#[derive(Debug, Clone, Copy, Default)]
pub struct TaxSources<'a> {
    /// Add-on taxes (add-on fees).
    pub add_on: &'a [TaxRate],
    /// Charge taxes (charge fees).
    pub charge: &'a [TaxRate],
    /// Fixed-charge taxes.
    pub fixed_charge: &'a [TaxRate],
    /// Commitment taxes.
    pub commitment: &'a [TaxRate],
    /// Plan taxes.
    pub plan: &'a [TaxRate],
    /// Customer taxes.
    pub customer: &'a [TaxRate],
    /// Billing-entity default taxes.
    pub billing_entity: &'a [TaxRate],
}

impl<'a> TaxSources<'a> {
    /// The first non-empty source wins; taxes are never unioned across sources.
    pub fn applicable(&self) -> &'a [TaxRate] {
        [
            self.add_on,
            self.charge,
            self.fixed_charge,
            self.commitment,
            self.plan,
            self.customer,
            self.billing_entity,
        ]
        .into_iter()
        .find(|s| !s.is_empty())
        .unwrap_or(&[])
    }
}

/// Fee-level taxes (SEMANTICS §8.4): on `amount − precise coupons`, the sum of the unrounded
/// per-tax amounts rounded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeTaxes {
    /// `round(Σ taxes)`.
    pub taxes_amount_cents: i64,
    /// `Σ taxes`, unrounded.
    pub taxes_precise_amount_cents: Decimal,
    /// `Σ rates`.
    pub taxes_rate: Decimal,
}

/// Computes a fee's taxes.
pub fn fee_taxes(
    amount_cents: i64,
    precise_coupons_amount_cents: Decimal,
    taxes: &[TaxRate],
) -> Result<FeeTaxes, InvoiceError> {
    let base = Decimal::from(amount_cents) - precise_coupons_amount_cents;
    let rate: Decimal = taxes.iter().map(|t| t.rate).sum();
    let precise: Decimal = taxes
        .iter()
        .map(|t| base * t.rate / Decimal::ONE_HUNDRED)
        .sum();
    Ok(FeeTaxes {
        taxes_amount_cents: half_up(precise)?,
        taxes_precise_amount_cents: precise,
        taxes_rate: rate,
    })
}

/// A fee's kind, as Lago's `fee_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FeeType {
    /// A usage charge (or its true-up).
    Charge,
    /// A one-off add-on.
    AddOn,
    /// The plan's subscription fee.
    Subscription,
    /// A minimum-commitment true-up.
    Commitment,
    /// A fixed charge.
    FixedCharge,
}

impl FeeType {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::AddOn => "add_on",
            Self::Subscription => "subscription",
            Self::Commitment => "commitment",
            Self::FixedCharge => "fixed_charge",
        }
    }
}

/// One fee going into an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceFee {
    fee_type: FeeType,
    amount_cents: i64,
    billable_metric_code: Option<String>,
    plan_code: Option<String>,
    taxes: Vec<TaxRate>,
}

impl InvoiceFee {
    /// A fee of `amount_cents` with the taxes chosen for it (see [`TaxSources`]).
    pub fn new(fee_type: FeeType, amount_cents: i64, taxes: Vec<TaxRate>) -> Self {
        Self {
            fee_type,
            amount_cents,
            billable_metric_code: None,
            plan_code: None,
            taxes,
        }
    }

    /// The billable metric a charge fee bills (coupon and wallet targeting).
    pub fn for_metric(mut self, code: impl Into<String>) -> Self {
        self.billable_metric_code = Some(code.into());
        self
    }

    /// The plan the fee belongs to (coupon targeting).
    pub fn for_plan(mut self, code: impl Into<String>) -> Self {
        self.plan_code = Some(code.into());
        self
    }

    /// The fee type.
    pub fn fee_type(&self) -> FeeType {
        self.fee_type
    }
    /// `amount_cents`.
    pub fn amount_cents(&self) -> i64 {
        self.amount_cents
    }
}

/// How often a coupon applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponFrequency {
    /// Once; a fixed amount carries its unused remainder to later invoices.
    Once,
    /// On the next N invoices.
    Recurring {
        /// Invoices left, including this one.
        remaining: u32,
    },
    /// On every invoice.
    Forever,
}

/// What a coupon is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CouponValue {
    /// A fixed amount in the coupon's currency.
    FixedAmount {
        /// The coupon amount.
        amount_cents: i64,
        /// The coupon currency (a fixed coupon only applies to invoices in it).
        currency: Currency,
    },
    /// A percentage of the base (the applied coupon's rate, not the template's).
    Percentage {
        /// Rate in percent.
        rate: Decimal,
    },
}

/// Which fees a coupon may reduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CouponScope {
    /// Every fee.
    All,
    /// Charge fees of these billable metrics.
    BillableMetrics(Vec<String>),
    /// Fees of these plans.
    Plans(Vec<String>),
}

/// A coupon applied to the customer, in application order within its scope group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedCoupon {
    value: CouponValue,
    frequency: CouponFrequency,
    scope: CouponScope,
    previously_credited_cents: i64,
}

impl AppliedCoupon {
    /// A coupon on every fee with nothing credited yet.
    pub fn new(value: CouponValue, frequency: CouponFrequency) -> Self {
        Self {
            value,
            frequency,
            scope: CouponScope::All,
            previously_credited_cents: 0,
        }
    }

    /// Restricts the coupon.
    pub fn limited_to(mut self, scope: CouponScope) -> Self {
        self.scope = scope;
        self
    }

    /// What earlier invoices already credited (fixed `once` coupons carry the remainder).
    pub fn with_previous_credits(mut self, cents: i64) -> Self {
        self.previously_credited_cents = cents;
        self
    }

    /// The credit for a base of `base_cents` (SEMANTICS §8.3): a percentage is
    /// `round(base × rate / 100)` (the whole base when that reaches it); a fixed amount is
    /// capped at the base, and a fixed `once` coupon at what remains of it.
    pub fn amount_for(&self, base_cents: i64) -> Result<i64, InvoiceError> {
        let base_cents = base_cents.max(0);
        Ok(match self.value {
            CouponValue::Percentage { rate } => {
                let d = Decimal::from(base_cents) * rate / Decimal::ONE_HUNDRED;
                if d >= Decimal::from(base_cents) {
                    base_cents
                } else {
                    half_up(d)?
                }
            }
            CouponValue::FixedAmount { amount_cents, .. } => {
                let available = match self.frequency {
                    CouponFrequency::Once => amount_cents - self.previously_credited_cents,
                    _ => amount_cents,
                };
                available.max(0).min(base_cents)
            }
        })
    }

    /// Whether the coupon is used up after crediting `credit_cents` now.
    pub fn terminated_after(&self, credit_cents: i64) -> bool {
        match (self.value, self.frequency) {
            (CouponValue::Percentage { .. }, CouponFrequency::Once) => true,
            (CouponValue::FixedAmount { amount_cents, .. }, CouponFrequency::Once) => {
                credit_cents >= amount_cents - self.previously_credited_cents
            }
            (_, CouponFrequency::Recurring { remaining }) => remaining <= 1,
            (_, CouponFrequency::Forever) => false,
        }
    }

    fn group(&self) -> u8 {
        match self.scope {
            CouponScope::BillableMetrics(_) => 0,
            CouponScope::Plans(_) => 1,
            CouponScope::All => 2,
        }
    }

    fn covers(&self, fee: &InvoiceFee) -> bool {
        match &self.scope {
            CouponScope::All => true,
            CouponScope::BillableMetrics(codes) => {
                fee.fee_type == FeeType::Charge
                    && fee
                        .billable_metric_code
                        .as_ref()
                        .is_some_and(|c| codes.contains(c))
            }
            CouponScope::Plans(codes) => fee.plan_code.as_ref().is_some_and(|c| codes.contains(c)),
        }
    }
}

/// Allocates a credit to fees pro rata to what each still owes (SEMANTICS §8.3):
/// `precise[i] += credit × (amount[i] − precise[i]) / base`, capped at the fee amount, where
/// `base` is the sum of what the fees in `eligible` still owe.
pub fn allocate_credit(
    credit_cents: i64,
    amounts: &[i64],
    precise_credits: &mut [Decimal],
    eligible: &[bool],
) {
    let owed = |i: usize| Decimal::from(amounts[i]) - precise_credits[i];
    let base: Decimal = (0..amounts.len()).filter(|&i| eligible[i]).map(owed).sum();
    if base <= Decimal::ZERO {
        return;
    }
    let credit = Decimal::from(credit_cents);
    let shares: Vec<Decimal> = (0..amounts.len())
        .map(|i| {
            if eligible[i] {
                credit * owed(i) / base
            } else {
                Decimal::ZERO
            }
        })
        .collect();
    for (i, share) in shares.into_iter().enumerate() {
        precise_credits[i] = (precise_credits[i] + share).min(Decimal::from(amounts[i]));
    }
}

/// A finalized credit note the customer may spend, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreditNoteBalance {
    balance_cents: i64,
}

impl CreditNoteBalance {
    /// A credit note with `balance_cents` left, in the invoice currency.
    pub fn new(balance_cents: i64) -> Self {
        Self { balance_cents }
    }
}

/// A prepaid-credit wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    priority: u8,
    balance_cents: i64,
    rate_amount: Decimal,
    allowed_fee_types: Vec<FeeType>,
    billable_metric_codes: Vec<String>,
}

impl Wallet {
    /// A wallet of `balance_cents` (in the invoice currency), `rate_amount` currency units per
    /// credit, at `priority` (1..=50, lower first). Wallets are given in creation order.
    pub fn new(priority: u8, balance_cents: i64, rate_amount: Decimal) -> Self {
        Self {
            priority,
            balance_cents,
            rate_amount,
            allowed_fee_types: Vec::new(),
            billable_metric_codes: Vec::new(),
        }
    }

    /// Restricts the wallet to fee types.
    pub fn for_fee_types(mut self, types: Vec<FeeType>) -> Self {
        self.allowed_fee_types = types;
        self
    }

    /// Restricts the wallet to billable metrics.
    pub fn for_metrics(mut self, codes: Vec<String>) -> Self {
        self.billable_metric_codes = codes;
        self
    }

    fn covers(&self, bucket: &(FeeType, Option<String>)) -> bool {
        let unrestricted =
            self.allowed_fee_types.is_empty() && self.billable_metric_codes.is_empty();
        unrestricted
            || self.allowed_fee_types.contains(&bucket.0)
            || bucket
                .1
                .as_ref()
                .is_some_and(|c| self.billable_metric_codes.contains(c))
    }
}

/// What a fee carries into the wallet step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletFee {
    /// The fee type.
    pub fee_type: FeeType,
    /// The billable metric, for charge fees.
    pub billable_metric_code: Option<String>,
    /// `amount − precise coupons` (the fee's `sub_total_excluding_taxes`).
    pub sub_total_excluding_taxes_cents: Decimal,
    /// The fee's unrounded taxes.
    pub taxes_precise_amount_cents: Decimal,
    /// Credit notes allocated to the fee.
    pub precise_credit_notes_amount_cents: Decimal,
}

/// One wallet's transaction on an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletTransaction {
    /// Index of the wallet in the input.
    pub wallet_index: usize,
    /// Amount drawn, rounded once.
    pub amount_cents: i64,
    /// Credits consumed (`amount / subunit / rate_amount`).
    pub credits: Decimal,
}

/// Applies wallets to an invoice total (SEMANTICS §8.6): fee buckets keyed by
/// `(fee type, metric)` with a cap of `sub total + taxes − credit notes`, sorted by cap
/// (largest first); a difference of 1..=n cents between the total and the caps goes to the
/// largest bucket; wallets in `(priority, creation)` order each draw
/// `min(bucket left, wallet left, invoice left)` from the buckets they may pay.
pub fn apply_wallets(
    total_cents: i64,
    currency: Currency,
    fees: &[WalletFee],
    wallets: &[Wallet],
) -> Result<Vec<WalletTransaction>, InvoiceError> {
    if total_cents <= 0 {
        return Ok(Vec::new());
    }
    let mut caps: BTreeMap<(FeeType, Option<String>), Decimal> = BTreeMap::new();
    for f in fees {
        let cap = f.sub_total_excluding_taxes_cents + f.taxes_precise_amount_cents
            - f.precise_credit_notes_amount_cents;
        *caps
            .entry((f.fee_type, f.billable_metric_code.clone()))
            .or_default() += cap;
    }
    let mut buckets: Vec<((FeeType, Option<String>), Decimal)> = caps.into_iter().collect();
    buckets.sort_by_key(|b| std::cmp::Reverse(b.1));
    let total = Decimal::from(total_cents);
    let sum_caps: Decimal = buckets.iter().map(|b| b.1).sum();
    let diff = total - sum_caps;
    if diff >= Decimal::ONE && diff <= Decimal::from(buckets.len()) {
        if let Some(first) = buckets.first_mut() {
            first.1 += diff;
        }
    }
    let mut order: Vec<usize> = (0..wallets.len()).collect();
    order.sort_by_key(|&i| (wallets[i].priority, i));
    let mut invoice_left = total;
    let mut out = Vec::new();
    for i in order {
        let wallet = &wallets[i];
        if wallet.rate_amount <= Decimal::ZERO {
            return Err(InvoiceError::InvalidWalletRate);
        }
        let mut wallet_left = Decimal::from(wallet.balance_cents.max(0));
        let mut drawn = Decimal::ZERO;
        for (key, left) in buckets.iter_mut() {
            if !wallet.covers(key) {
                continue;
            }
            let tx = (*left)
                .min(wallet_left)
                .min(invoice_left)
                .max(Decimal::ZERO);
            *left -= tx;
            wallet_left -= tx;
            invoice_left -= tx;
            drawn += tx;
        }
        if drawn > Decimal::ZERO {
            let amount_cents = half_up(drawn)?;
            out.push(WalletTransaction {
                wallet_index: i,
                amount_cents,
                credits: Decimal::from(amount_cents)
                    / currency.subunit_to_unit()
                    / wallet.rate_amount,
            });
        }
    }
    Ok(out)
}

/// Everything an invoice's totals are computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceInput {
    currency: Currency,
    fees: Vec<InvoiceFee>,
    progressive_billing_credit_cents: i64,
    coupons: Vec<AppliedCoupon>,
    credit_notes: Vec<CreditNoteBalance>,
    wallets: Vec<Wallet>,
    finalizing: bool,
}

impl InvoiceInput {
    /// An invoice of `fees` in `currency`. `finalizing` is false for a draft (grace period):
    /// drafts show fees and taxes only, without coupons, credit notes or wallets.
    pub fn new(currency: Currency, fees: Vec<InvoiceFee>, finalizing: bool) -> Self {
        Self {
            currency,
            fees,
            progressive_billing_credit_cents: 0,
            coupons: Vec::new(),
            credit_notes: Vec::new(),
            wallets: Vec::new(),
            finalizing,
        }
    }

    /// The credit for what earlier progressive invoices of the period billed
    /// (see [`progressive_billing_credit`]); applied to charge fees.
    pub fn with_progressive_billing_credit(mut self, cents: i64) -> Self {
        self.progressive_billing_credit_cents = cents;
        self
    }

    /// The customer's applied coupons, in creation order.
    pub fn with_coupons(mut self, coupons: Vec<AppliedCoupon>) -> Self {
        self.coupons = coupons;
        self
    }

    /// The customer's available credit notes in the invoice currency, oldest first.
    pub fn with_credit_notes(mut self, credit_notes: Vec<CreditNoteBalance>) -> Self {
        self.credit_notes = credit_notes;
        self
    }

    /// The customer's active wallets in the invoice currency, in creation order.
    pub fn with_wallets(mut self, wallets: Vec<Wallet>) -> Self {
        self.wallets = wallets;
        self
    }
}

/// Per-fee outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeTotals {
    /// Coupons and progressive credit allocated to the fee.
    pub precise_coupons_amount_cents: Decimal,
    /// Fee-level taxes.
    pub taxes: FeeTaxes,
    /// Credit notes allocated to the fee.
    pub precise_credit_notes_amount_cents: Decimal,
}

/// One tax line of the invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedTax {
    /// The tax code.
    pub code: String,
    /// The rate in percent.
    pub rate: Decimal,
    /// `round(A_T)`.
    pub amount_cents: i64,
    /// The taxed base, rounded (`fees_amount_cents`).
    pub fees_amount_cents: i64,
}

/// A coupon's use on the invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponCredit {
    /// Index of the coupon in the input.
    pub coupon_index: usize,
    /// The credit.
    pub amount_cents: i64,
    /// Whether the coupon is used up.
    pub terminated: bool,
}

/// Whether the invoice still has to be paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Something is due.
    Pending,
    /// Nothing is due (a zero total succeeds immediately).
    Succeeded,
}

/// An invoice's computed amounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceTotals {
    /// Per fee, in input order.
    pub fees: Vec<FeeTotals>,
    /// One line per tax.
    pub applied_taxes: Vec<AppliedTax>,
    /// Coupons used.
    pub coupon_credits: Vec<CouponCredit>,
    /// Credit notes used (index, amount), oldest first.
    pub credit_note_credits: Vec<(usize, i64)>,
    /// Wallet transactions.
    pub wallet_transactions: Vec<WalletTransaction>,
    /// Σ fee amounts.
    pub fees_amount_cents: i64,
    /// Progressive-billing credit applied.
    pub progressive_billing_credit_amount_cents: i64,
    /// Σ coupon credits.
    pub coupons_amount_cents: i64,
    /// fees − progressive − coupons.
    pub sub_total_excluding_taxes_amount_cents: i64,
    /// `round(Σ_T A_T)`.
    pub taxes_amount_cents: i64,
    /// Sub total + taxes.
    pub sub_total_including_taxes_amount_cents: i64,
    /// Σ credit-note credits.
    pub credit_notes_amount_cents: i64,
    /// Σ wallet transactions.
    pub prepaid_credit_amount_cents: i64,
    /// What is due.
    pub total_amount_cents: i64,
    /// Weighted tax rate, 5 decimals.
    pub taxes_rate: Decimal,
    /// Pending when something is due.
    pub payment_status: PaymentStatus,
}

/// Computes an invoice's totals in Lago's order (SEMANTICS §8.1).
pub fn compute_invoice_totals(input: &InvoiceInput) -> Result<InvoiceTotals, InvoiceError> {
    let n = input.fees.len();
    let amounts: Vec<i64> = input.fees.iter().map(|f| f.amount_cents).collect();
    let fees_amount_cents = amounts
        .iter()
        .try_fold(0_i64, |acc, a| acc.checked_add(*a))
        .ok_or(MoneyError::Overflow)?;
    let mut precise_coupons = vec![Decimal::ZERO; n];

    // 2. Progressive-billing credit, capped at the charge fees, allocated to them.
    let charge_eligible: Vec<bool> = input
        .fees
        .iter()
        .map(|f| f.fee_type == FeeType::Charge)
        .collect();
    let charge_total: i64 = input
        .fees
        .iter()
        .filter(|f| f.fee_type == FeeType::Charge)
        .map(|f| f.amount_cents)
        .sum();
    let progressive = input
        .progressive_billing_credit_cents
        .clamp(0, charge_total.max(0));
    allocate_credit(
        progressive,
        &amounts,
        &mut precise_coupons,
        &charge_eligible,
    );
    let mut sub_total = fees_amount_cents - progressive;

    // 3. Coupons (finalization only): metric-limited, then plan-limited, then unrestricted.
    let mut coupon_credits = Vec::new();
    let mut coupons_amount_cents = 0_i64;
    if input.finalizing && fees_amount_cents > 0 {
        let mut order: Vec<usize> = (0..input.coupons.len()).collect();
        order.sort_by_key(|&i| (input.coupons[i].group(), i));
        for i in order {
            if sub_total <= 0 {
                break;
            }
            let coupon = &input.coupons[i];
            if let CouponValue::FixedAmount { currency, .. } = coupon.value {
                if currency != input.currency {
                    continue;
                }
            }
            let eligible: Vec<bool> = input.fees.iter().map(|f| coupon.covers(f)).collect();
            let base = if coupon.scope == CouponScope::All {
                sub_total
            } else {
                let owed: Decimal = (0..n)
                    .filter(|&j| eligible[j])
                    .map(|j| Decimal::from(amounts[j]) - precise_coupons[j])
                    .sum();
                half_up(owed)?
            };
            let credit = coupon.amount_for(base)?.min(sub_total);
            if credit <= 0 {
                continue;
            }
            allocate_credit(credit, &amounts, &mut precise_coupons, &eligible);
            coupons_amount_cents += credit;
            sub_total -= credit;
            coupon_credits.push(CouponCredit {
                coupon_index: i,
                amount_cents: credit,
                terminated: coupon.terminated_after(credit),
            });
        }
    }

    // 4. Taxes on the after-credit base: per fee, and per tax line for the invoice.
    let mut fee_totals = Vec::with_capacity(n);
    for (i, fee) in input.fees.iter().enumerate() {
        fee_totals.push(FeeTotals {
            precise_coupons_amount_cents: precise_coupons[i],
            taxes: fee_taxes(fee.amount_cents, precise_coupons[i], &fee.taxes)?,
            precise_credit_notes_amount_cents: Decimal::ZERO,
        });
    }
    let taxed: Vec<TaxedFee<'_>> = input
        .fees
        .iter()
        .zip(&precise_coupons)
        .map(|(f, c)| TaxedFee::new(f.amount_cents, *c, &f.taxes))
        .collect();
    let invoice_taxes = invoice_taxes(&taxed, sub_total)?;
    let applied_taxes = invoice_taxes.applied_taxes;
    let weighted_rate = invoice_taxes.taxes_rate;
    let taxes_amount_cents = invoice_taxes.taxes_amount_cents;
    let sub_total_incl = sub_total + taxes_amount_cents;
    let mut total = sub_total_incl;

    // 5. Credit notes (finalization only), oldest first, spread over fees.
    let mut credit_note_credits = Vec::new();
    let mut credit_notes_amount_cents = 0_i64;
    if input.finalizing {
        for (i, cn) in input.credit_notes.iter().enumerate() {
            if total <= 0 {
                break;
            }
            let credit = cn.balance_cents.max(0).min(total);
            if credit == 0 {
                continue;
            }
            total -= credit;
            credit_notes_amount_cents += credit;
            credit_note_credits.push((i, credit));
        }
        let weights: Vec<Decimal> = fee_totals
            .iter()
            .zip(&amounts)
            .map(|(f, a)| {
                Decimal::from(*a) - f.precise_coupons_amount_cents
                    + f.taxes.taxes_precise_amount_cents
            })
            .collect();
        let weight_sum: Decimal = weights.iter().sum();
        if weight_sum > Decimal::ZERO {
            for (f, w) in fee_totals.iter_mut().zip(&weights) {
                f.precise_credit_notes_amount_cents =
                    Decimal::from(credit_notes_amount_cents) * *w / weight_sum;
            }
        }
    }

    // 6. Prepaid credits (finalization only, when something is still due).
    let mut wallet_transactions = Vec::new();
    let mut prepaid = 0_i64;
    if input.finalizing && total > 0 && !input.wallets.is_empty() {
        let wallet_fees: Vec<WalletFee> = input
            .fees
            .iter()
            .zip(&fee_totals)
            .map(|(fee, t)| WalletFee {
                fee_type: fee.fee_type,
                billable_metric_code: fee.billable_metric_code.clone(),
                sub_total_excluding_taxes_cents: Decimal::from(fee.amount_cents)
                    - t.precise_coupons_amount_cents,
                taxes_precise_amount_cents: t.taxes.taxes_precise_amount_cents,
                precise_credit_notes_amount_cents: t.precise_credit_notes_amount_cents,
            })
            .collect();
        wallet_transactions = apply_wallets(total, input.currency, &wallet_fees, &input.wallets)?;
        prepaid = wallet_transactions
            .iter()
            .map(|t| t.amount_cents)
            .sum::<i64>()
            .min(total);
        total -= prepaid;
    }

    Ok(InvoiceTotals {
        fees: fee_totals,
        applied_taxes,
        coupon_credits,
        credit_note_credits,
        wallet_transactions,
        fees_amount_cents,
        progressive_billing_credit_amount_cents: progressive,
        coupons_amount_cents,
        sub_total_excluding_taxes_amount_cents: sub_total,
        taxes_amount_cents,
        sub_total_including_taxes_amount_cents: sub_total_incl,
        credit_notes_amount_cents,
        prepaid_credit_amount_cents: prepaid,
        total_amount_cents: total,
        taxes_rate: weighted_rate,
        payment_status: if total > 0 {
            PaymentStatus::Pending
        } else {
            PaymentStatus::Succeeded
        },
    })
}

/// A fee as the invoice-level tax step sees it.
#[derive(Debug, Clone, Copy)]
pub struct TaxedFee<'a> {
    amount_cents: i64,
    precise_coupons_amount_cents: Decimal,
    taxes: &'a [TaxRate],
}

impl<'a> TaxedFee<'a> {
    /// A fee of `amount_cents`, reduced by `precise_coupons_amount_cents` (coupons and
    /// progressive credit), carrying `taxes`.
    pub fn new(
        amount_cents: i64,
        precise_coupons_amount_cents: Decimal,
        taxes: &'a [TaxRate],
    ) -> Self {
        Self {
            amount_cents,
            precise_coupons_amount_cents,
            taxes,
        }
    }
}

/// The invoice's tax lines and total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceTaxes {
    /// One line per tax, in first-seen order.
    pub applied_taxes: Vec<AppliedTax>,
    /// `round(Σ_T A_T)`: not the sum of rounded lines.
    pub taxes_amount_cents: i64,
    /// `Σ_T rate × base_T / sub_total`, 5 decimals (fee-count weights when the sub total is 0).
    pub taxes_rate: Decimal,
}

/// Invoice-level taxes (SEMANTICS §8.4): for each tax T, the unrounded
/// `A_T = Σ (amount − precise coupons) × rate_T / 100` over the fees carrying T; each line is
/// `round(A_T)` and the invoice tax is `round(Σ A_T)`.
pub fn invoice_taxes(
    fees: &[TaxedFee<'_>],
    sub_total_excluding_taxes_cents: i64,
) -> Result<InvoiceTaxes, InvoiceError> {
    let mut lines: Vec<(String, Decimal, Decimal, Decimal, usize)> = Vec::new();
    for fee in fees {
        let base = Decimal::from(fee.amount_cents) - fee.precise_coupons_amount_cents;
        for tax in fee.taxes {
            let idx = match lines.iter().position(|l| l.0 == tax.code) {
                Some(i) => i,
                None => {
                    lines.push((tax.code.clone(), tax.rate, Decimal::ZERO, Decimal::ZERO, 0));
                    lines.len() - 1
                }
            };
            lines[idx].2 += base * tax.rate / Decimal::ONE_HUNDRED;
            lines[idx].3 += base;
            lines[idx].4 += 1;
        }
    }
    let mut applied_taxes = Vec::with_capacity(lines.len());
    let mut taxes_sum = Decimal::ZERO;
    let mut rate = Decimal::ZERO;
    let sub_total = Decimal::from(sub_total_excluding_taxes_cents);
    for (code, line_rate, amount, base, carrying) in lines {
        taxes_sum += amount;
        rate += if sub_total.is_zero() {
            if fees.is_empty() {
                Decimal::ZERO
            } else {
                line_rate * Decimal::from(carrying) / Decimal::from(fees.len())
            }
        } else {
            line_rate * base / sub_total
        };
        applied_taxes.push(AppliedTax {
            code,
            rate: line_rate,
            amount_cents: half_up(amount)?,
            fees_amount_cents: half_up(base)?,
        });
    }
    Ok(InvoiceTaxes {
        applied_taxes,
        taxes_amount_cents: half_up(taxes_sum)?,
        taxes_rate: rate.round_dp_with_strategy(5, RoundingStrategy::MidpointAwayFromZero),
    })
}

/// Which invoice is being created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceKind {
    /// Periodic, starting, termination or upgrade invoice of a subscription.
    Subscription,
    /// A progressive-billing invoice (a usage threshold was passed).
    ProgressiveBilling,
    /// The instant invoice of a pay-in-advance charge.
    AdvanceCharges,
    /// A one-off invoice.
    OneOff,
}

/// An invoice's status when it is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    /// In its grace period: editable, recomputed at finalization, numbered `<PREFIX>-DRAFT`.
    Draft,
    /// Final and numbered.
    Finalized,
    /// A zero-amount invoice the customer does not want finalized: never numbered or sent.
    Closed,
}

/// SEMANTICS §8.7: subscription invoices are drafts while the grace period is positive;
/// progressive and pay-in-advance invoices are finalized at once; an invoice with no fee
/// amount is closed when zero-amount invoices are not finalized.
pub fn status_on_creation(
    kind: InvoiceKind,
    grace_period_days: u32,
    fees_amount_cents: i64,
    finalize_zero_amount_invoice: bool,
) -> InvoiceStatus {
    if kind == InvoiceKind::Subscription && grace_period_days > 0 {
        InvoiceStatus::Draft
    } else if fees_amount_cents == 0 && !finalize_zero_amount_invoice {
        InvoiceStatus::Closed
    } else {
        InvoiceStatus::Finalized
    }
}

/// A usage threshold of a plan or subscription (progressive billing, SEMANTICS §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageThreshold {
    amount_cents: i64,
    recurring: bool,
}

impl UsageThreshold {
    /// A threshold at `amount_cents`; a recurring one fires at every further multiple.
    pub fn new(amount_cents: i64, recurring: bool) -> Self {
        Self {
            amount_cents,
            recurring,
        }
    }
}

/// The threshold amounts passed when lifetime usage goes from `invoiced_usage_cents` to
/// `invoiced_usage_cents + current_usage_cents`: a threshold T passes when
/// `invoiced < T <= invoiced + current`. A recurring threshold R fires at
/// `largest fixed threshold + k × R` for k ≥ 1.
pub fn passed_thresholds(
    thresholds: &[UsageThreshold],
    invoiced_usage_cents: i64,
    current_usage_cents: i64,
) -> Vec<i64> {
    let upper = invoiced_usage_cents.saturating_add(current_usage_cents);
    let passes = |t: i64| invoiced_usage_cents < t && t <= upper;
    let mut out: Vec<i64> = thresholds
        .iter()
        .filter(|t| !t.recurring)
        .map(|t| t.amount_cents)
        .filter(|t| passes(*t))
        .collect();
    let largest_fixed = thresholds
        .iter()
        .filter(|t| !t.recurring)
        .map(|t| t.amount_cents)
        .max()
        .unwrap_or(0);
    for r in thresholds
        .iter()
        .filter(|t| t.recurring && t.amount_cents > 0)
    {
        // First multiple above what is already invoiced, then every step up to `upper`.
        let start = if invoiced_usage_cents < largest_fixed {
            1
        } else {
            (invoiced_usage_cents - largest_fixed) / r.amount_cents + 1
        };
        let mut k = start;
        while let Some(t) = r
            .amount_cents
            .checked_mul(k)
            .and_then(|m| m.checked_add(largest_fixed))
        {
            if t > upper {
                break;
            }
            if passes(t) {
                out.push(t);
            }
            k += 1;
        }
    }
    out.sort_unstable();
    out
}

/// What a period-end (or termination) invoice credits for the period's last progressive
/// invoice (SEMANTICS §9): `to_credit = its fees − its coupons − its own progressive credit −
/// credit notes on it`, capped at the current charge fees. Returns `(credit, excess)`; the
/// excess becomes a credit note on the progressive invoice.
pub fn progressive_billing_credit(
    previous_fees_cents: i64,
    previous_coupons_cents: i64,
    previous_progressive_credit_cents: i64,
    previous_credit_notes_cents: i64,
    current_charge_fees_cents: i64,
) -> (i64, i64) {
    let to_credit = (previous_fees_cents
        - previous_coupons_cents
        - previous_progressive_credit_cents
        - previous_credit_notes_cents)
        .max(0);
    let credit = to_credit.min(current_charge_fees_cents.max(0));
    (credit, to_credit - credit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn first_non_empty_tax_source_wins() {
        let plan = [TaxRate::new("plan", dec!(10))];
        let entity = [TaxRate::new("entity", dec!(5))];
        let sources = TaxSources {
            plan: &plan,
            billing_entity: &entity,
            ..Default::default()
        };
        assert_eq!(sources.applicable(), &plan);
        let none = TaxSources::default();
        assert!(none.applicable().is_empty());
    }

    #[test]
    fn a_draft_ignores_coupons_credit_notes_and_wallets() {
        // Given a 1000-cent fee with a 10 % tax, a 500 coupon, a credit note and a wallet,
        // when computed as a draft, then only fees and taxes count: 1000 + 100.
        let fee = InvoiceFee::new(
            FeeType::Subscription,
            1000,
            vec![TaxRate::new("t", dec!(10))],
        );
        let input = InvoiceInput::new(Currency::EUR, vec![fee], false)
            .with_coupons(vec![AppliedCoupon::new(
                CouponValue::FixedAmount {
                    amount_cents: 500,
                    currency: Currency::EUR,
                },
                CouponFrequency::Forever,
            )])
            .with_credit_notes(vec![CreditNoteBalance::new(300)])
            .with_wallets(vec![Wallet::new(50, 10_000, dec!(1))]);
        let totals = compute_invoice_totals(&input);
        assert_eq!(
            totals.map(|t| (t.coupons_amount_cents, t.total_amount_cents)),
            Ok((0, 1100))
        );
    }

    #[test]
    fn credit_notes_apply_after_taxes_then_wallets_take_the_rest() {
        // 1000 + 10 % = 1100; credit note 300 → 800; wallet 10 000 → 0, succeeded.
        let fee = InvoiceFee::new(
            FeeType::Subscription,
            1000,
            vec![TaxRate::new("t", dec!(10))],
        );
        let input = InvoiceInput::new(Currency::EUR, vec![fee], true)
            .with_credit_notes(vec![CreditNoteBalance::new(300)])
            .with_wallets(vec![Wallet::new(50, 10_000, dec!(1))]);
        let totals = compute_invoice_totals(&input);
        assert_eq!(
            totals.map(|t| (
                t.credit_notes_amount_cents,
                t.prepaid_credit_amount_cents,
                t.total_amount_cents,
                t.payment_status
            )),
            Ok((300, 800, 0, PaymentStatus::Succeeded))
        );
    }

    #[test]
    fn thresholds_pass_once_and_recurring_ones_at_each_multiple() {
        let fixed = [UsageThreshold::new(20_000, false)];
        assert_eq!(passed_thresholds(&fixed, 0, 20_000), vec![20_000]);
        assert!(passed_thresholds(&fixed, 20_000, 20_000).is_empty());
        // Fixed 100, recurring 50: from 0 to 260 → 100, 150, 200, 250.
        let mixed = [
            UsageThreshold::new(100, false),
            UsageThreshold::new(50, true),
        ];
        assert_eq!(passed_thresholds(&mixed, 0, 260), vec![100, 150, 200, 250]);
        assert_eq!(passed_thresholds(&mixed, 150, 60), vec![200]);
    }

    #[test]
    fn the_progressive_credit_is_capped_at_the_current_charge_fees() {
        assert_eq!(
            progressive_billing_credit(20_000, 0, 0, 0, 40_000),
            (20_000, 0)
        );
        assert_eq!(
            progressive_billing_credit(20_000, 1_000, 0, 0, 15_000),
            (15_000, 4_000)
        );
    }
}
