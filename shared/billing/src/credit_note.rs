//! Credit notes: the automatic credit note of a terminated pay-in-advance plan (SEMANTICS §7)
//! and its use as a credit on the customer's next invoices (SEMANTICS §8.5).
//!
//! A credit note is plain data, as stored. It is created once from a
//! [`crate::subscription_fee::TerminationCredit`] by [`termination_credit_note`], and its
//! balance only moves through [`apply_credit_notes`], which an invoice's finalization calls
//! with the customer's available notes, oldest first.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use crate::{
    invoice::{Fee, Invoice, PaymentStatus, TaxInfo},
    money::{Currency, MoneyError, RoundingRule, round_cents},
    subscription_fee::TerminationCredit,
};

/// The state of a credit note's credit portion (`credit_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditStatus {
    /// Some balance is left to spend.
    Available,
    /// The balance was spent.
    Consumed,
    /// The credit was voided.
    Voided,
}

impl CreditStatus {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Available => "available",
            Self::Consumed => "consumed",
            Self::Voided => "voided",
        }
    }

    /// Parses Lago's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Available, Self::Consumed, Self::Voided]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Why a credit note was issued (`reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreditNoteReason {
    /// `duplicated_charge`.
    DuplicatedCharge,
    /// `product_unsatisfactory`.
    ProductUnsatisfactory,
    /// `order_change`: the reason of a termination's automatic credit note.
    OrderChange,
    /// `order_cancellation`.
    OrderCancellation,
    /// `fraudulent_charge`.
    FraudulentCharge,
    /// `other`.
    Other,
}

impl CreditNoteReason {
    const ALL: [Self; 6] = [
        Self::DuplicatedCharge,
        Self::ProductUnsatisfactory,
        Self::OrderChange,
        Self::OrderCancellation,
        Self::FraudulentCharge,
        Self::Other,
    ];

    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DuplicatedCharge => "duplicated_charge",
            Self::ProductUnsatisfactory => "product_unsatisfactory",
            Self::OrderChange => "order_change",
            Self::OrderCancellation => "order_cancellation",
            Self::FraudulentCharge => "fraudulent_charge",
            Self::Other => "other",
        }
    }

    /// Parses Lago's wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One credited fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteItem {
    /// Lago id of the item.
    pub lago_id: String,
    /// The credited fee's Lago id (on the credit note's invoice).
    pub fee_id: String,
    /// Credited amount, excluding taxes.
    pub amount_cents: i64,
    /// The unrounded credited amount.
    pub precise_amount_cents: Decimal,
}

/// One tax on the credited amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNoteTax {
    /// Lago id of the applied tax.
    pub lago_id: String,
    /// The tax.
    pub tax: TaxInfo,
    /// `round(base × rate / 100)`.
    pub amount_cents: i64,
    /// The credited amount the tax is computed on.
    pub base_amount_cents: i64,
}

/// A credit note, as stored (the record's envelope holds its Lago id and timestamps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreditNote {
    /// Sequence of the note among its invoice's credit notes, from 1.
    pub sequential_id: u64,
    /// `<invoice number>-CN<sequence, 3 digits>`.
    pub number: String,
    /// The credited invoice's Lago id.
    pub invoice_id: String,
    /// The credited invoice's number.
    pub invoice_number: String,
    /// The customer's Lago id.
    pub customer_id: String,
    /// The customer's external id.
    pub external_customer_id: String,
    /// The subscription whose fee is credited.
    pub subscription_id: String,
    /// Its external id.
    pub external_subscription_id: String,
    /// The local date of issue.
    pub issuing_date: NaiveDate,
    /// The credit portion's state.
    pub credit_status: CreditStatus,
    /// Why it was issued.
    pub reason: CreditNoteReason,
    /// Currency (the invoice's).
    pub currency: Currency,
    /// Credited amount including taxes.
    pub total_amount_cents: i64,
    /// The part credited to the customer's balance.
    pub credit_amount_cents: i64,
    /// What is left of the credit.
    pub balance_amount_cents: i64,
    /// The part refunded (always 0 until payments exist).
    pub refund_amount_cents: i64,
    /// Taxes on the credited amount.
    pub taxes_amount_cents: i64,
    /// Σ of the credited fee's tax rates.
    pub taxes_rate: Decimal,
    /// Credited amount excluding taxes.
    pub sub_total_excluding_taxes_amount_cents: i64,
    /// The credited fees.
    pub items: Vec<CreditNoteItem>,
    /// Taxes, one per tax of the credited fee.
    pub applied_taxes: Vec<CreditNoteTax>,
}

impl CreditNote {
    /// Whether it can still be spent on an invoice in `currency`.
    pub fn spendable_in(&self, currency: Currency) -> bool {
        self.credit_status == CreditStatus::Available
            && self.balance_amount_cents > 0
            && self.currency == currency
    }

    /// Credited so far on fee `fee_id` (excluding taxes), for the cap of a later note.
    pub fn credited_on_fee(&self, fee_id: &str) -> i64 {
        self.items
            .iter()
            .filter(|i| i.fee_id == fee_id)
            .map(|i| i.amount_cents)
            .sum()
    }
}

/// Lago's credit note number: the invoice number, `-CN`, and the note's sequence on that
/// invoice padded to three digits (`ACM-1A2B-001-001-CN001`).
pub fn credit_note_number(invoice_number: &str, sequential_id: u64) -> String {
    format!("{invoice_number}-CN{sequential_id:03}")
}

/// Ids and dates of a new termination credit note (inputs: nothing here makes an id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminationNoteIds {
    /// The item's Lago id.
    pub item_id: String,
    /// The applied tax line ids, one per tax of the fee, in its order.
    pub tax_ids: Vec<String>,
    /// Sequence of the note on its invoice.
    pub sequential_id: u64,
    /// The local date of issue.
    pub issuing_date: NaiveDate,
}

/// The automatic credit note of a terminated pay-in-advance plan for the `credit` computed
/// from `fee`, the last subscription fee, on `invoice`. `None` when nothing is credited.
///
/// Each tax line is `round(credited × rate / 100)`; the note's tax total is the credit's
/// (rounded once on the sum of rates), as Lago's `taxes_amount_cents`.
pub fn termination_credit_note(
    invoice: &Invoice,
    fee: &Fee,
    credit: &TerminationCredit,
    ids: TerminationNoteIds,
) -> Result<Option<CreditNote>, MoneyError> {
    let item = credit.item_amount().cents();
    if credit.total_amount().cents() <= 0 {
        return Ok(None);
    }
    let mut applied_taxes = Vec::with_capacity(fee.applied_taxes.len());
    for (i, t) in fee.applied_taxes.iter().enumerate() {
        applied_taxes.push(CreditNoteTax {
            lago_id: ids.tax_ids.get(i).cloned().unwrap_or_default(),
            tax: t.tax.clone(),
            amount_cents: round_cents(
                Decimal::from(item) * t.tax.rate / Decimal::ONE_HUNDRED,
                RoundingRule::HalfAwayFromZero,
            )?,
            base_amount_cents: item,
        });
    }
    let total = credit.total_amount().cents();
    Ok(Some(CreditNote {
        sequential_id: ids.sequential_id,
        number: credit_note_number(&invoice.number, ids.sequential_id),
        invoice_id: invoice.lago_id.clone(),
        invoice_number: invoice.number.clone(),
        customer_id: invoice.customer_id.clone(),
        external_customer_id: invoice.external_customer_id.clone(),
        subscription_id: invoice.subscription_id.clone(),
        external_subscription_id: invoice.external_subscription_id.clone(),
        issuing_date: ids.issuing_date,
        credit_status: CreditStatus::Available,
        reason: CreditNoteReason::OrderChange,
        currency: invoice.currency,
        total_amount_cents: total,
        credit_amount_cents: total,
        balance_amount_cents: total,
        refund_amount_cents: 0,
        taxes_amount_cents: credit.taxes_amount().cents(),
        taxes_rate: fee.taxes_rate,
        sub_total_excluding_taxes_amount_cents: item,
        items: vec![CreditNoteItem {
            lago_id: ids.item_id,
            fee_id: fee.lago_id.clone(),
            amount_cents: item,
            precise_amount_cents: credit.item_precise_amount_cents(),
        }],
        applied_taxes,
    }))
}

/// One credit note's use on an invoice (`CreditObject` with `item.type = credit_note`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceCredit {
    /// Lago id of the credit.
    pub lago_id: String,
    /// The credit note's Lago id.
    pub credit_note_id: String,
    /// The credit note's number (`item.code`).
    pub credit_note_number: String,
    /// The number of the invoice the credit note credits (`item.name`).
    pub credited_invoice_number: String,
    /// The amount taken from the note.
    pub amount_cents: i64,
    /// When the credit was applied.
    pub created_at: DateTime<Utc>,
}

/// A credit note the customer may spend, as [`apply_credit_notes`] takes it.
#[derive(Debug)]
pub struct SpendableNote<'a> {
    /// The note's Lago id.
    pub lago_id: &'a str,
    /// The note; its balance and status are updated in place.
    pub note: &'a mut CreditNote,
}

/// SEMANTICS §8.5: spends `notes` (the customer's available notes in the invoice currency,
/// oldest first) on `invoice`, after taxes: each credit is `min(balance, remaining total)`;
/// a note spent to 0 is `consumed`. Updates the invoice's `credit_notes_amount_cents`, total,
/// payment status and credits; `credit_id` names each credit from the note's id. Returns the
/// indices of the notes that changed.
///
/// Only a finalization calls this: drafts show no credit (EDGE_CASES 31). Calling it twice
/// on one invoice would spend twice; the caller writes the invoice and the notes in one
/// transaction conditioned on the versions it read.
pub fn apply_credit_notes(
    invoice: &mut Invoice,
    notes: &mut [SpendableNote<'_>],
    credit_id: &dyn Fn(&str) -> String,
    now: DateTime<Utc>,
) -> Vec<usize> {
    let mut changed = Vec::new();
    let a = &mut invoice.amounts;
    for (i, n) in notes.iter_mut().enumerate() {
        if a.total_amount_cents <= 0 {
            break;
        }
        if !n.note.spendable_in(invoice.currency) {
            continue;
        }
        let credit = n.note.balance_amount_cents.min(a.total_amount_cents);
        n.note.balance_amount_cents -= credit;
        if n.note.balance_amount_cents == 0 {
            n.note.credit_status = CreditStatus::Consumed;
        }
        a.credit_notes_amount_cents += credit;
        a.total_amount_cents -= credit;
        invoice.credits.push(InvoiceCredit {
            lago_id: credit_id(n.lago_id),
            credit_note_id: n.lago_id.to_owned(),
            credit_note_number: n.note.number.clone(),
            credited_invoice_number: n.note.invoice_number.clone(),
            amount_cents: credit,
            created_at: now,
        });
        changed.push(i);
    }
    if a.total_amount_cents <= 0 {
        invoice.payment_status = PaymentStatus::Succeeded;
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credit_note_number_extends_its_invoice_number() {
        assert_eq!(
            credit_note_number("ACM-1A2B-001-002", 1),
            "ACM-1A2B-001-002-CN001"
        );
        assert_eq!(
            credit_note_number("ACM-202501-017", 12),
            "ACM-202501-017-CN012"
        );
    }

    #[test]
    fn the_reasons_and_statuses_read_back() {
        for r in CreditNoteReason::ALL {
            assert_eq!(CreditNoteReason::parse(r.as_str()), Some(r));
        }
        assert_eq!(
            CreditStatus::parse("consumed"),
            Some(CreditStatus::Consumed)
        );
        assert_eq!(CreditStatus::parse("nope"), None);
    }

    fn invoice(total_cents: i64, currency: Currency) -> Invoice {
        let at = DateTime::<Utc>::MIN_UTC;
        let day = NaiveDate::MIN;
        Invoice {
            lago_id: "inv-2".into(),
            slot: String::new(),
            customer_id: "cus".into(),
            external_customer_id: "cus".into(),
            subscription_id: "sub".into(),
            external_subscription_id: "sub".into(),
            plan_id: "plan".into(),
            plan_code: "plan".into(),
            invoicing_reason: crate::invoice::InvoicingReason::SubscriptionPeriodic,
            billing_at: at,
            status: crate::invoice::InvoiceState::Draft,
            payment_status: PaymentStatus::Pending,
            currency,
            issuing_date: day,
            net_payment_term: 0,
            finalize_at: None,
            sequential_id: None,
            organization_sequential_id: None,
            number: "ACM-DRAFT".into(),
            from_datetime: at,
            to_datetime: at,
            charges_from_datetime: at,
            charges_to_datetime: at,
            fees: Vec::new(),
            amounts: crate::invoice::InvoiceAmounts {
                sub_total_including_taxes_amount_cents: total_cents,
                total_amount_cents: total_cents,
                ..Default::default()
            },
            taxes_rate: Decimal::ZERO,
            applied_taxes: Vec::new(),
            metadata: Vec::new(),
            has_subscription_fee: false,
            prior_subscription_fee: false,
            file_key: None,
            finalized_at: None,
            voided_at: None,
            credits: Vec::new(),
        }
    }

    fn note(number: &str, balance_cents: i64, currency: Currency) -> CreditNote {
        CreditNote {
            sequential_id: 1,
            number: number.into(),
            invoice_id: "inv-1".into(),
            invoice_number: "ACM-001".into(),
            customer_id: "cus".into(),
            external_customer_id: "cus".into(),
            subscription_id: "sub".into(),
            external_subscription_id: "sub".into(),
            issuing_date: NaiveDate::MIN,
            credit_status: CreditStatus::Available,
            reason: CreditNoteReason::OrderChange,
            currency,
            total_amount_cents: balance_cents,
            credit_amount_cents: balance_cents,
            balance_amount_cents: balance_cents,
            refund_amount_cents: 0,
            taxes_amount_cents: 0,
            taxes_rate: Decimal::ZERO,
            sub_total_excluding_taxes_amount_cents: balance_cents,
            items: Vec::new(),
            applied_taxes: Vec::new(),
        }
    }

    #[test]
    fn notes_are_spent_oldest_first_up_to_the_total_and_a_spent_note_is_consumed() {
        // Given an invoice of 1000 and notes of 300 (oldest), 900 in USD and 900 in EUR.
        let mut inv = invoice(1_000, Currency::EUR);
        let mut oldest = note("CN-A", 300, Currency::EUR);
        let mut dollars = note("CN-B", 900, Currency::USD);
        let mut newest = note("CN-C", 900, Currency::EUR);
        let mut notes = vec![
            SpendableNote {
                lago_id: "a",
                note: &mut oldest,
            },
            SpendableNote {
                lago_id: "b",
                note: &mut dollars,
            },
            SpendableNote {
                lago_id: "c",
                note: &mut newest,
            },
        ];
        // When they are spent.
        let changed = apply_credit_notes(
            &mut inv,
            &mut notes,
            &|id| format!("credit-{id}"),
            DateTime::<Utc>::MIN_UTC,
        );
        // Then the oldest pays 300 and is consumed, the dollar note is skipped, and the newest
        // pays the remaining 700 and keeps 200: nothing is due.
        assert_eq!(changed, vec![0, 2]);
        assert_eq!(
            (oldest.balance_amount_cents, oldest.credit_status),
            (0, CreditStatus::Consumed)
        );
        assert_eq!(dollars.balance_amount_cents, 900);
        assert_eq!(
            (newest.balance_amount_cents, newest.credit_status),
            (200, CreditStatus::Available)
        );
        assert_eq!(inv.amounts.credit_notes_amount_cents, 1_000);
        assert_eq!(inv.amounts.total_amount_cents, 0);
        assert_eq!(inv.payment_status, PaymentStatus::Succeeded);
        let credits: Vec<(&str, i64)> = inv
            .credits
            .iter()
            .map(|c| (c.credit_note_number.as_str(), c.amount_cents))
            .collect();
        assert_eq!(credits, vec![("CN-A", 300), ("CN-C", 700)]);
        assert_eq!(inv.credits[0].lago_id, "credit-a");
    }

    #[test]
    fn a_note_is_not_spent_on_a_zero_invoice() {
        let mut inv = invoice(0, Currency::EUR);
        let mut n = note("CN-A", 300, Currency::EUR);
        let mut notes = vec![SpendableNote {
            lago_id: "a",
            note: &mut n,
        }];
        let changed = apply_credit_notes(
            &mut inv,
            &mut notes,
            &|id| id.to_owned(),
            DateTime::<Utc>::MIN_UTC,
        );
        assert!(changed.is_empty());
        assert_eq!(n.balance_amount_cents, 300);
        assert!(inv.credits.is_empty());
    }
}
