//! `credit_note` bodies (SCHEMAS `CreditNoteObject`, `CreditNoteItemObject`,
//! `CreditNoteAppliedTaxObject`) and the `CreditObject` an invoice shows for each credit note
//! it spent.

use billing::{
    catalog::Record,
    credit_note::{CreditNote, InvoiceCredit},
    invoice::Invoice,
};
use serde_json::{Value, json};

use super::{invoice::fee_object, tax::rate_number, timestamp};

/// `CreditNoteObject`. `invoice` is the credited invoice (its fees are the items' `fee`
/// objects; `None` when it no longer exists), `customer` the `CustomerObject`.
pub fn credit_note_object(
    r: &Record<CreditNote>,
    invoice: Option<&Record<Invoice>>,
    customer: Option<Value>,
) -> Value {
    let n = &r.value;
    let currency = n.currency.code();
    let items: Vec<Value> = n
        .items
        .iter()
        .map(|i| {
            let fee = invoice
                .and_then(|inv| {
                    inv.value
                        .fees
                        .iter()
                        .find(|f| f.lago_id == i.fee_id)
                        .map(|f| fee_object(inv, f))
                })
                .unwrap_or(Value::Null);
            json!({
                "lago_id": i.lago_id,
                "amount_cents": i.amount_cents,
                "amount_currency": currency,
                "fee": fee,
            })
        })
        .collect();
    let applied_taxes: Vec<Value> = n
        .applied_taxes
        .iter()
        .map(|t| {
            json!({
                "lago_id": t.lago_id,
                "lago_credit_note_id": r.lago_id,
                "lago_tax_id": t.tax.lago_id,
                "tax_name": t.tax.name,
                "tax_code": t.tax.code,
                "tax_rate": rate_number(t.tax.rate),
                "tax_description": t.tax.description,
                "base_amount_cents": t.base_amount_cents,
                "amount_cents": t.amount_cents,
                "amount_currency": currency,
                "created_at": timestamp(r.created_at),
            })
        })
        .collect();
    json!({
        "lago_id": r.lago_id,
        "billing_entity_code": null,
        "sequential_id": n.sequential_id,
        "number": n.number,
        "lago_invoice_id": n.invoice_id,
        "invoice_number": n.invoice_number,
        "issuing_date": n.issuing_date.format("%Y-%m-%d").to_string(),
        "credit_status": n.credit_status.as_str(),
        // Refunds need payments, which do not exist yet: there is never a refund portion.
        "refund_status": null,
        "reason": n.reason.as_str(),
        "description": null,
        "currency": currency,
        "total_amount_cents": n.total_amount_cents,
        "taxes_amount_cents": n.taxes_amount_cents,
        "taxes_rate": rate_number(n.taxes_rate),
        "sub_total_excluding_taxes_amount_cents": n.sub_total_excluding_taxes_amount_cents,
        "balance_amount_cents": n.balance_amount_cents,
        "credit_amount_cents": n.credit_amount_cents,
        "refund_amount_cents": n.refund_amount_cents,
        "offset_amount_cents": 0,
        "coupons_adjustment_amount_cents": 0,
        "created_at": timestamp(r.created_at),
        "updated_at": timestamp(r.updated_at),
        "file_url": null,
        "self_billed": false,
        "items": items,
        "applied_taxes": applied_taxes,
        "customer": customer,
        "metadata": null,
        "error_details": [],
    })
}

/// The `CreditObject` of credit note credit `c` on invoice `invoice`.
pub fn credit_object(invoice: &Record<Invoice>, c: &InvoiceCredit) -> Value {
    json!({
        "lago_id": c.lago_id,
        "amount_cents": c.amount_cents,
        "amount_currency": invoice.value.currency.code(),
        "before_taxes": false,
        "item": {
            "lago_item_id": c.credit_note_id,
            "type": "credit_note",
            "code": c.credit_note_number,
            "name": c.credited_invoice_number,
        },
        "invoice": {
            "lago_id": invoice.lago_id,
            "payment_status": invoice.value.payment_status.as_str(),
        },
    })
}
