//! Spending the customer's credit notes on an invoice being finalized (SEMANTICS §8.5).
//!
//! The notes are read just before the numbering transaction and written inside it, each over
//! the version read (`BillingStore::write_numbered_invoice`): a crash before the transaction
//! spends nothing, a retry reads the balances again, and two finalizations racing for one
//! note cannot both spend it (the loser's transaction is refused and it reads again).

use billing::{
    catalog::Record,
    credit_note::{CreditNote, SpendableNote, apply_credit_notes},
    invoice::Invoice,
};
use chrono::{DateTime, Utc};

use crate::{Deps, InvoicingError, derived_uuid};

/// The most credit notes one invoice spends (R19): a DynamoDB transaction holds 100 items,
/// and the invoice, its counters and its outbox entry take four.
pub const CREDIT_NOTES_PER_INVOICE_MAX: usize = 50;

/// Spends the available credit notes of `invoice`'s customer in its currency, oldest first,
/// on `invoice` (already totalled, about to be numbered); returns the notes to write with it,
/// each one version up.
pub(crate) async fn spend_credit_notes(
    deps: &Deps,
    org_id: &str,
    invoice: &mut Invoice,
    now: DateTime<Utc>,
) -> Result<Vec<Record<CreditNote>>, InvoicingError> {
    if invoice.amounts.total_amount_cents <= 0 {
        return Ok(Vec::new());
    }
    let mut notes: Vec<Record<CreditNote>> = deps
        .store
        .customer_credit_notes(org_id, &invoice.customer_id)
        .await?
        .into_iter()
        .filter(|n| n.value.spendable_in(invoice.currency))
        .take(CREDIT_NOTES_PER_INVOICE_MAX)
        .collect();
    if notes.is_empty() {
        return Ok(Vec::new());
    }
    let invoice_id = invoice.lago_id.clone();
    let credit_id = |note_id: &str| derived_uuid(&["credit", &invoice_id, note_id]);
    let mut spendable: Vec<SpendableNote<'_>> = notes
        .iter_mut()
        .map(|r| SpendableNote {
            lago_id: &r.lago_id,
            note: &mut r.value,
        })
        .collect();
    let changed = apply_credit_notes(invoice, &mut spendable, &credit_id, now);
    drop(spendable);
    Ok(changed
        .into_iter()
        .filter_map(|i| notes.get(i).cloned())
        .map(|r| Record {
            updated_at: now,
            version: r.version + 1,
            ..r
        })
        .collect())
}
