//! `POST /invoices/{lago_id}/download`: the invoice as a PDF, rendered in Rust, stored once in
//! the documents bucket, and reached through a presigned `file_url`.
//!
//! The document uses PDF's built-in Courier (no font to embed, so it stays a few kilobytes;
//! monospaced, so columns align) and prints only ASCII (other characters become `?`): the built-in fonts have no glyphs
//! beyond Latin-1, and amounts are shown as `EUR 26.40` rather than with a symbol.

use billing::{
    catalog::{Record, customer::Customer, organization::Organization},
    invoice::{FeeItem, Invoice, InvoiceState},
    money::Currency,
};
use billing_aws::{
    StoreError,
    documents::{DocumentStore, invoice_document_key},
    dynamo::invoices::InvoiceWrite,
};
use chrono::{DateTime, Utc};
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use rust_decimal::Decimal;

use crate::{Deps, InvoicingError, invoice_events, price_slot::Catalog};

/// A4 in points.
const PAGE: (f32, f32) = (595.0, 842.0);
/// Lines per page below the title block.
const LINES_PER_PAGE: usize = 48;

fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// `EUR 26.40`: minor units shown with the currency's exponent.
pub fn money(cents: i64, currency: Currency) -> String {
    let value = Decimal::from(cents) / currency.subunit_to_unit();
    format!(
        "{} {:.*}",
        currency.code(),
        usize::try_from(currency.exponent()).unwrap_or(2),
        value
    )
}

fn row(label: &str, units: &str, amount: &str) -> String {
    let label: String = ascii(label).chars().take(52).collect();
    format!("{label:<54}{units:>12}{amount:>20}")
}

/// The lines of an invoice's document, top to bottom.
pub fn document_lines(
    invoice: &Record<Invoice>,
    org: &Organization,
    customer: Option<&Customer>,
) -> Vec<String> {
    let i = &invoice.value;
    let c = i.currency;
    let mut lines = vec![
        format!("Invoice {}", ascii(&i.number)),
        format!(
            "Issued {}    Payment due {}    Status {}",
            i.issuing_date,
            i.payment_due_date(),
            i.status.as_str()
        ),
        format!("From: {}", ascii(&org.name)),
        format!(
            "Bill to: {} ({})",
            ascii(
                customer
                    .and_then(|c| c.profile().name.as_deref())
                    .unwrap_or(&i.external_customer_id)
            ),
            ascii(&i.external_customer_id)
        ),
        format!(
            "Subscription {} - plan {} - {} to {}",
            ascii(&i.external_subscription_id),
            ascii(&i.plan_code),
            i.from_datetime.format("%Y-%m-%d"),
            i.to_datetime.format("%Y-%m-%d")
        ),
        String::new(),
        row("Item", "Units", "Amount"),
    ];
    for f in &i.fees {
        let label = match &f.item {
            FeeItem::Subscription {
                plan_name,
                plan_display_name,
                ..
            } => format!(
                "{} (subscription)",
                plan_display_name.as_deref().unwrap_or(plan_name)
            ),
            FeeItem::Charge {
                charge_display_name,
                metric_name,
                filter_display_name,
                grouped_by,
                true_up_parent_fee_id,
                ..
            } => {
                let mut l = charge_display_name
                    .clone()
                    .unwrap_or_else(|| metric_name.clone());
                if let Some(f) = filter_display_name {
                    l = format!("{l} - {f}");
                }
                for (_, v) in grouped_by {
                    l = format!("{l} - {}", v.as_deref().unwrap_or("none"));
                }
                if true_up_parent_fee_id.is_some() {
                    l = format!("{l} (minimum spend)");
                }
                l
            }
        };
        lines.push(row(
            &label,
            &lago::dto::invoice::quantity(f.units),
            &money(f.amount_cents, c),
        ));
    }
    let a = &i.amounts;
    lines.push(String::new());
    lines.push(row("Fees", "", &money(a.fees_amount_cents, c)));
    for t in &i.applied_taxes {
        lines.push(row(
            &format!("{} ({}%)", t.tax.name, t.tax.rate.normalize()),
            "",
            &money(t.amount_cents, c),
        ));
    }
    lines.push(row("Taxes", "", &money(a.taxes_amount_cents, c)));
    lines.push(row("Total", "", &money(a.total_amount_cents, c)));
    lines
}

/// Renders lines as a PDF (A4, built-in Courier, paginated).
pub fn render_pdf(lines: &[String]) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let catalog_id = Ref::new(1);
    let tree_id = Ref::new(2);
    let font_id = Ref::new(3);
    let font = Name(b"F1");
    let pages: Vec<&[String]> = lines.chunks(LINES_PER_PAGE).collect();
    let page_ids: Vec<Ref> = (0..pages.len())
        .map(|i| Ref::new(4 + 2 * i32::try_from(i).unwrap_or(0)))
        .collect();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id)
        .kids(page_ids.iter().copied())
        .count(i32::try_from(page_ids.len()).unwrap_or(0));
    pdf.type1_font(font_id)
        .base_font(Name(b"Courier"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    for (page_lines, page_id) in pages.iter().zip(&page_ids) {
        let content_id = Ref::new(page_id.get() + 1);
        let mut page = pdf.page(*page_id);
        page.media_box(Rect::new(0.0, 0.0, PAGE.0, PAGE.1));
        page.parent(tree_id);
        page.contents(content_id);
        page.resources().fonts().pair(font, font_id);
        page.finish();
        let mut content = Content::new();
        content.begin_text();
        content.set_font(font, 9.0);
        content.set_leading(15.0);
        content.next_line(40.0, PAGE.1 - 60.0);
        for line in page_lines.iter() {
            content.show(Str(line.as_bytes()));
            content.next_line_using_leading();
        }
        content.end_text();
        pdf.stream(content_id, &content.finish());
    }
    pdf.finish()
}

/// Renders and stores the document of a finalized (or voided) invoice, once, and records its
/// key on the invoice; publishes `invoice.generated` when it is first generated (the key and
/// the event in the outbox are one write; a later download publishes an event the outbox
/// still owes).
pub async fn store_document(
    deps: &Deps,
    documents: &DocumentStore,
    org_id: &str,
    invoice_id: &str,
    now: DateTime<Utc>,
) -> Result<Record<Invoice>, InvoicingError> {
    let catalog = Catalog::load(&deps.store, org_id).await?;
    for _ in 0..5 {
        let current = match deps.store.get::<Invoice>(org_id, invoice_id).await {
            Ok(r) => r,
            Err(StoreError::NotFound) => return Err(InvoicingError::NotFound("invoice")),
            Err(e) => return Err(e.into()),
        };
        if !matches!(
            current.value.status,
            InvoiceState::Finalized | InvoiceState::Voided
        ) {
            return Err(InvoicingError::NotFound("invoice"));
        }
        if current.value.file_key.is_some() {
            invoice_events::flush_invoice(deps, &catalog, Some(documents), &current.value).await?;
            return Ok(current);
        }
        let customer = invoice_events::customer_of(deps, org_id, &current.value).await?;
        let lines = document_lines(&current, &catalog.org, customer.as_ref().map(|c| &c.value));
        let key = invoice_document_key(org_id, invoice_id);
        documents.put_pdf(&key, render_pdf(&lines)).await?;
        let mut next = Record {
            updated_at: now,
            version: current.version + 1,
            ..current.clone()
        };
        next.value.file_key = Some(key);
        let entry = invoice_events::outbox_entry(&next, "invoice.generated");
        match deps
            .store
            .write_invoice_with_events(
                org_id,
                &next,
                InvoiceWrite::Replace,
                std::slice::from_ref(&entry),
            )
            .await
        {
            Ok(()) => {
                invoice_events::publish_outbox(
                    deps,
                    &catalog,
                    Some(documents),
                    &next.value.external_subscription_id,
                    &[entry],
                )
                .await?;
                return Ok(next);
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(InvoicingError::Busy("invoice document"))
}
