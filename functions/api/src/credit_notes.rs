//! `/credit_notes` (get, list) and `/customers/{external_customer_id}/credit_notes`: the
//! credit notes the system issues by itself (a terminated pay-in-advance plan's unused days).
//! Creating, estimating, voiding or updating a credit note by hand is not offered yet.

use crate::{
    Deps, Tenant,
    edge::{Params, store_error},
    invoices::{date_param, int_param, invoicing_error, query_value},
};
use axum::{
    extract::{Path, State},
    response::Response,
};
use billing::{
    catalog::{Record, customer::Customer, organization::Organization},
    credit_note::CreditNote,
};
use invoicing::{credit_note_events::credit_note_json, price_slot::Catalog};
use lago::{
    ApiError,
    http::{self, Paging},
};

const RESOURCE: &str = "credit_note";

/// Whether `note` passes Lago's list filters in `query` (and belongs to `customer`, when
/// the route names one).
fn visible(
    note: &Record<CreditNote>,
    query: &[(String, String)],
    customer: Option<&str>,
) -> Result<bool, ApiError> {
    let n = &note.value;
    if let Some(c) = customer.or(query_value(query, "external_customer_id"))
        && n.external_customer_id != c
    {
        return Ok(false);
    }
    if let Some(from) = date_param(query, "issuing_date_from")?
        && n.issuing_date < from
    {
        return Ok(false);
    }
    if let Some(to) = date_param(query, "issuing_date_to")?
        && n.issuing_date > to
    {
        return Ok(false);
    }
    if let Some(c) = query_value(query, "currency")
        && n.currency.code() != c
    {
        return Ok(false);
    }
    if let Some(r) = query_value(query, "reason")
        && n.reason.as_str() != r
    {
        return Ok(false);
    }
    if let Some(s) = query_value(query, "credit_status")
        && n.credit_status.as_str() != s
    {
        return Ok(false);
    }
    if query_value(query, "refund_status").is_some() {
        // No note has a refund portion yet.
        return Ok(false);
    }
    if let Some(number) = query_value(query, "invoice_number")
        && n.invoice_number != number
    {
        return Ok(false);
    }
    if let Some(from) = int_param(query, "amount_from")?
        && n.total_amount_cents < from
    {
        return Ok(false);
    }
    if let Some(to) = int_param(query, "amount_to")?
        && n.total_amount_cents > to
    {
        return Ok(false);
    }
    if let Some(term) = query_value(query, "search_term")
        && !n.number.contains(term)
        && !note.lago_id.contains(term)
        && !n.external_customer_id.contains(term)
    {
        return Ok(false);
    }
    Ok(true)
}

async fn list_credit_notes(
    deps: &Deps,
    org: &Organization,
    query: &[(String, String)],
    customer: Option<&str>,
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(query)?;
    let all = deps
        .store
        .credit_notes(&org.id)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let mut matching = Vec::new();
    for n in &all {
        if visible(n, query, customer)? {
            matching.push(n);
        }
    }
    // Newest first, as lago-api orders them.
    matching.sort_by(|a, b| (b.created_at, &b.lago_id).cmp(&(a.created_at, &a.lago_id)));
    let total = matching.len();
    let skip = paging
        .page
        .saturating_sub(1)
        .saturating_mul(paging.per_page);
    let catalog = Catalog::load(&deps.store, &org.id)
        .await
        .map_err(invoicing_error)?;
    let mut items = Vec::new();
    for n in matching.into_iter().skip(skip).take(paging.per_page) {
        items.push(
            credit_note_json(&deps.store, &catalog, n)
                .await
                .map_err(invoicing_error)?,
        );
    }
    Ok(http::list("credit_notes", items, paging, total))
}

/// `GET /credit_notes/{lago_id}`.
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let note = deps
        .store
        .credit_note(&org.id, &id)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let catalog = Catalog::load(&deps.store, &org.id)
        .await
        .map_err(invoicing_error)?;
    let body = credit_note_json(&deps.store, &catalog, &note)
        .await
        .map_err(invoicing_error)?;
    Ok(http::ok(RESOURCE, body))
}

/// `GET /credit_notes`: Lago's filters (customer, issuing dates, currency, reason, credit
/// status, invoice number, amounts, search term), newest first, paged.
pub async fn list(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    list_credit_notes(&deps, &org, &query, None).await
}

/// `GET /customers/{external_customer_id}/credit_notes`.
pub async fn list_for_customer(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(external_customer_id): Path<String>,
    Params(query): Params,
) -> Result<Response, ApiError> {
    deps.store
        .get::<Customer>(&org.id, &external_customer_id)
        .await
        .map_err(|e| store_error("customer", e))?;
    list_credit_notes(&deps, &org, &query, Some(&external_customer_id)).await
}
