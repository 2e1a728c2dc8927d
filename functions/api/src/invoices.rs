//! `/invoices` (get, list, update, refresh, finalize, void, download), `/fees`, and
//! `/customers/{external_customer_id}/past_usage`: the HTTP edge of the `invoicing` use cases.

use std::collections::HashMap;

use axum::{
    extract::{Path, State},
    response::Response,
};
use billing::{
    catalog::{Record, customer::Customer},
    invoice::{FeeItem, Invoice, InvoiceState, PaymentStatus, StandaloneFee},
    period::local_date,
};
use billing_aws::{StoreError, dynamo::LIST_SCAN_MAX};
use chrono::NaiveDate;
use invoicing::{
    InvoicingError,
    invoice_events::{customer_object, invoice_json, invoice_subscriptions},
    price_slot::Catalog,
    update_invoice::{InvoiceUpdate, MetadataInput},
};
use lago::{
    ApiError,
    dto::invoice::{
        InvoiceUpdateDto, fee_object, invoice_object, standalone_fee_object, usage_period_object,
    },
    http::{self, Paging},
};
use serde_json::Value;

use crate::{
    Deps, Tenant,
    edge::{Body, Params, store_error},
};

const RESOURCE: &str = "invoice";

/// One mapping from invoicing failures to Lago errors (R11).
pub(crate) fn invoicing_error(e: InvoicingError) -> ApiError {
    match e {
        InvoicingError::NotFound(resource) => ApiError::NotFound(resource),
        InvoicingError::NotAllowed(code) => ApiError::NotAllowed(code),
        InvoicingError::Invalid { field, code } => ApiError::invalid(field, code),
        InvoicingError::Busy(what) => {
            tracing::warn!(what, "invoicing busy");
            ApiError::Unavailable
        }
        InvoicingError::Store(e) => store_error(RESOURCE, e),
        InvoicingError::Publish(e) => {
            // The change is stored with its event in the outbox: a retry publishes it.
            tracing::warn!(error.cause_chain = %e, "invoice event left in the outbox");
            ApiError::Unavailable
        }
        other => {
            tracing::error!(error.cause_chain = ?other, "invoicing failed");
            ApiError::Internal
        }
    }
}

pub(crate) fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn query_values<'a>(query: &'a [(String, String)], keys: &[&str]) -> Vec<&'a str> {
    query
        .iter()
        .filter(|(k, _)| keys.contains(&k.as_str()))
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
        .collect()
}

pub(crate) fn date_param(
    query: &[(String, String)],
    key: &'static str,
) -> Result<Option<NaiveDate>, ApiError> {
    match query_value(query, key) {
        None => Ok(None),
        Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| ApiError::invalid(key, "invalid_date")),
    }
}

pub(crate) fn int_param(
    query: &[(String, String)],
    key: &'static str,
) -> Result<Option<i64>, ApiError> {
    match query_value(query, key) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(key, "value_is_invalid")),
    }
}

async fn invoicing_deps(deps: &Deps) -> Result<invoicing::Deps, ApiError> {
    Ok(invoicing::Deps {
        store: deps.store.clone(),
        usage: deps.usage.clone().ok_or(ApiError::Internal)?,
        bus: deps.bus.clone(),
        ids: deps.ids.clone(),
        clock: deps.clock.clone(),
    })
}

async fn customer_of(
    deps: &Deps,
    org_id: &str,
    invoice: &Invoice,
) -> Result<Option<Record<Customer>>, ApiError> {
    match deps
        .store
        .get::<Customer>(org_id, &invoice.external_customer_id)
        .await
    {
        Ok(c) => Ok(Some(c)),
        Err(billing_aws::StoreError::NotFound) => Ok(None),
        Err(e) => Err(store_error("customer", e)),
    }
}

/// `{"invoice": InvoiceObjectExtended}` for a stored invoice.
async fn extended(
    deps: &Deps,
    org_id: &str,
    record: &Record<Invoice>,
) -> Result<Response, ApiError> {
    let catalog = Catalog::load(&deps.store, org_id)
        .await
        .map_err(invoicing_error)?;
    let customer = customer_of(deps, org_id, &record.value).await?;
    let file_url = match (&deps.documents, &record.value.file_key) {
        (Some(documents), Some(key)) => Some(
            documents
                .presigned_url(key)
                .await
                .map_err(|e| store_error("invoice", e))?,
        ),
        _ => None,
    };
    let subscriptions = invoice_subscriptions(
        &deps.store,
        &catalog,
        customer.as_ref(),
        &record.value,
        (deps.clock)(),
    )
    .await
    .map_err(invoicing_error)?;
    Ok(http::ok(
        RESOURCE,
        invoice_json(&catalog, customer.as_ref(), record, subscriptions, file_url),
    ))
}

async fn load(deps: &Deps, org_id: &str, id: &str) -> Result<Record<Invoice>, ApiError> {
    deps.store
        .get::<Invoice>(org_id, id)
        .await
        .map_err(|e| store_error(RESOURCE, e))
}

/// `GET /invoices/{lago_id}`. Closed invoices are not shown (as lago-api).
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = load(&deps, &org.id, &id).await?;
    if record.value.status == InvoiceState::Closed {
        return Err(ApiError::NotFound(RESOURCE));
    }
    extended(&deps, &org.id, &record).await
}

fn visible(
    record: &Record<Invoice>,
    query: &[(String, String)],
    customer: Option<&str>,
    today: NaiveDate,
) -> Result<bool, ApiError> {
    let i = &record.value;
    if i.status == InvoiceState::Closed {
        return Ok(false);
    }
    if let Some(c) = customer.or(query_value(query, "external_customer_id"))
        && i.external_customer_id != c
    {
        return Ok(false);
    }
    let statuses = query_values(query, &["status", "status[]", "statuses[]", "statuses"]);
    if !statuses.is_empty() && !statuses.contains(&i.status.as_str()) {
        return Ok(false);
    }
    let payments = query_values(
        query,
        &[
            "payment_status",
            "payment_status[]",
            "payment_statuses[]",
            "payment_statuses",
        ],
    );
    if !payments.is_empty() && !payments.contains(&i.payment_status.as_str()) {
        return Ok(false);
    }
    if let Some(c) = query_value(query, "currency")
        && i.currency.code() != c
    {
        return Ok(false);
    }
    if let Some(t) = query_value(query, "invoice_type")
        && t != "subscription"
    {
        return Ok(false);
    }
    if let Some(from) = date_param(query, "issuing_date_from")?
        && i.issuing_date < from
    {
        return Ok(false);
    }
    if let Some(to) = date_param(query, "issuing_date_to")?
        && i.issuing_date > to
    {
        return Ok(false);
    }
    if let Some(from) = int_param(query, "amount_from")?
        && i.amounts.total_amount_cents < from
    {
        return Ok(false);
    }
    if let Some(to) = int_param(query, "amount_to")?
        && i.amounts.total_amount_cents > to
    {
        return Ok(false);
    }
    if let Some(overdue) = query_value(query, "payment_overdue")
        && (overdue == "true") != i.payment_overdue(today)
    {
        return Ok(false);
    }
    if let Some(term) = query_value(query, "search_term")
        && !i.number.contains(term)
        && !record.lago_id.contains(term)
        && !i.external_customer_id.contains(term)
    {
        return Ok(false);
    }
    for (key, value) in query {
        if let Some(k) = key
            .strip_prefix("metadata[")
            .and_then(|k| k.strip_suffix(']'))
        {
            let found = i.metadata.iter().find(|m| m.key == k);
            let ok = match found {
                Some(m) => &m.value == value,
                None => value.is_empty(),
            };
            if !ok {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

async fn list_invoices(
    deps: &Deps,
    org: &billing::catalog::organization::Organization,
    query: &[(String, String)],
    customer: Option<&str>,
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(query)?;
    let now = (deps.clock)();
    let today = local_date(now, org.settings.timezone);
    let all = deps
        .store
        .invoices(&org.id)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let mut matching = Vec::new();
    for r in &all {
        if visible(r, query, customer, today)? {
            matching.push(r);
        }
    }
    matching.sort_by(|a, b| {
        (b.value.issuing_date, b.created_at, &b.lago_id).cmp(&(
            a.value.issuing_date,
            a.created_at,
            &a.lago_id,
        ))
    });
    let total = matching.len();
    let skip = paging
        .page
        .saturating_sub(1)
        .saturating_mul(paging.per_page);
    let catalog = Catalog::load(&deps.store, &org.id)
        .await
        .map_err(invoicing_error)?;
    let mut customers: HashMap<String, Value> = HashMap::new();
    let mut items = Vec::new();
    for r in matching.into_iter().skip(skip).take(paging.per_page) {
        let key = r.value.external_customer_id.clone();
        if !customers.contains_key(&key) {
            let c = customer_of(deps, &org.id, &r.value).await?;
            customers.insert(key.clone(), customer_object(&catalog, c.as_ref()));
        }
        items.push(invoice_object(
            r,
            customers.get(&key).cloned(),
            None,
            today,
            false,
        ));
    }
    Ok(http::list("invoices", items, paging, total))
}

/// `GET /invoices`: Lago's filters (customer, statuses, payment statuses, issuing dates,
/// amounts, currency, overdue, metadata), newest first, paged.
pub async fn list(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    list_invoices(&deps, &org, &query, None).await
}

/// `GET /customers/{external_customer_id}/invoices`.
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
    list_invoices(&deps, &org, &query, Some(&external_customer_id)).await
}

/// `PUT /invoices/{lago_id}`: `payment_status` and `metadata`.
pub async fn update(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let dto: InvoiceUpdateDto = http::root_dto(&body, RESOURCE)?;
    let payment_status = match dto.payment_status.as_deref() {
        None => None,
        Some(s) => Some(
            PaymentStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("payment_status", "value_is_invalid"))?,
        ),
    };
    let metadata = dto.metadata.map(|entries| {
        entries
            .into_iter()
            .map(|m| MetadataInput {
                id: m.id,
                key: m.key.unwrap_or_default(),
                value: m.value.unwrap_or_default(),
            })
            .collect()
    });
    let deps_i = invoicing_deps(&deps).await?;
    let record = invoicing::update_invoice::update_invoice(
        &deps_i,
        &org.id,
        &id,
        InvoiceUpdate {
            payment_status,
            metadata,
        },
        (deps.clock)(),
    )
    .await
    .map_err(invoicing_error)?;
    extended(&deps, &org.id, &record).await
}

/// `PUT /invoices/{lago_id}/refresh`.
pub async fn refresh(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let deps_i = invoicing_deps(&deps).await?;
    let record = invoicing::refresh_invoice::refresh_invoice(&deps_i, &org.id, &id, (deps.clock)())
        .await
        .map_err(invoicing_error)?;
    extended(&deps, &org.id, &record).await
}

/// `PUT /invoices/{lago_id}/finalize`: 404 unless a draft.
pub async fn finalize(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let deps_i = invoicing_deps(&deps).await?;
    let record =
        invoicing::finalize_invoice::finalize_invoice(&deps_i, &org.id, &id, (deps.clock)())
            .await
            .map_err(invoicing_error)?;
    extended(&deps, &org.id, &record).await
}

/// `POST /invoices/{lago_id}/void`: 405 `not_voidable` unless finalized and unpaid.
pub async fn void(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let deps_i = invoicing_deps(&deps).await?;
    let record = invoicing::void_invoice::void_invoice(&deps_i, &org.id, &id, (deps.clock)())
        .await
        .map_err(invoicing_error)?;
    extended(&deps, &org.id, &record).await
}

/// `POST /invoices/{lago_id}/download`: renders the PDF (once), stores it, and answers the
/// invoice with its `file_url`. Only finalized (or voided) invoices have a document.
pub async fn download(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let documents = deps.documents.clone().ok_or(ApiError::Internal)?;
    let deps_i = invoicing_deps(&deps).await?;
    let record = invoicing::invoice_document::store_document(
        &deps_i,
        &documents,
        &org.id,
        &id,
        (deps.clock)(),
    )
    .await
    .map_err(invoicing_error)?;
    extended(&deps, &org.id, &record).await
}

/// `GET /fees`: the fees of every visible invoice, filtered as Lago filters them.
pub async fn list_fees(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(&query)?;
    let all = deps
        .store
        .invoices(&org.id)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let fee_type = query_value(&query, "fee_type");
    let metric = query_value(&query, "billable_metric_code");
    let mut items = Vec::new();
    for r in all.iter().rev() {
        let i = &r.value;
        if i.status == InvoiceState::Closed {
            continue;
        }
        if query_value(&query, "external_customer_id").is_some_and(|c| c != i.external_customer_id)
            || query_value(&query, "external_subscription_id")
                .is_some_and(|s| s != i.external_subscription_id)
            || query_value(&query, "currency").is_some_and(|c| c != i.currency.code())
            || query_value(&query, "payment_status").is_some_and(|p| p != i.payment_status.as_str())
        {
            continue;
        }
        for f in &i.fees {
            if fee_type.is_some_and(|t| t != f.fee_type().as_str()) {
                continue;
            }
            if let Some(code) = metric {
                match &f.item {
                    FeeItem::Charge { metric_code, .. } if metric_code == code => {}
                    _ => continue,
                }
            }
            items.push(fee_object(r, f));
        }
    }
    // Standalone fees: the instant fees of non-invoiceable pay-in-advance charges.
    let (standalone, _) = deps
        .store
        .list::<StandaloneFee>(&org.id, 1, LIST_SCAN_MAX)
        .await
        .map_err(|e| store_error("fee", e))?;
    for r in &standalone {
        let sf = &r.value;
        let FeeItem::Charge { metric_code, .. } = &sf.fee.item else {
            continue;
        };
        if query_value(&query, "external_customer_id").is_some_and(|c| c != sf.external_customer_id)
            || query_value(&query, "external_subscription_id")
                .is_some_and(|s| s != sf.external_subscription_id)
            || query_value(&query, "currency").is_some_and(|c| c != sf.currency.code())
            || query_value(&query, "payment_status").is_some_and(|p| p != "pending")
            || fee_type.is_some_and(|t| t != sf.fee.fee_type().as_str())
            || metric.is_some_and(|m| m != metric_code)
        {
            continue;
        }
        items.push(standalone_fee_object(sf));
    }
    let total = items.len();
    let skip = paging
        .page
        .saturating_sub(1)
        .saturating_mul(paging.per_page);
    let page: Vec<Value> = items.into_iter().skip(skip).take(paging.per_page).collect();
    Ok(http::list("fees", page, paging, total))
}

/// `GET /fees/{lago_id}`.
pub async fn show_fee(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let record = match deps.store.invoice_of_fee(&org.id, &id).await {
        Ok(r) => r,
        Err(StoreError::NotFound) => {
            // Not on an invoice: a standalone fee, or none.
            let standalone = deps
                .store
                .get::<StandaloneFee>(&org.id, &id)
                .await
                .map_err(|e| store_error("fee", e))?;
            return Ok(http::ok("fee", standalone_fee_object(&standalone.value)));
        }
        Err(e) => return Err(store_error("fee", e)),
    };
    let fee = record
        .value
        .fees
        .iter()
        .find(|f| f.lago_id == id)
        .ok_or(ApiError::NotFound("fee"))?;
    Ok(http::ok("fee", fee_object(&record, fee)))
}

/// `GET /customers/{external_customer_id}/past_usage?external_subscription_id=`: the usage
/// of the subscription's invoiced periods, newest first (`periods_count` limits them,
/// `billable_metric_code` keeps one metric).
pub async fn past_usage(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(external_customer_id): Path<String>,
    Params(query): Params,
) -> Result<Response, ApiError> {
    deps.store
        .get::<Customer>(&org.id, &external_customer_id)
        .await
        .map_err(|e| store_error("customer", e))?;
    let external_subscription_id = query_value(&query, "external_subscription_id")
        .ok_or_else(|| ApiError::invalid("external_subscription_id", "value_is_mandatory"))?;
    let paging = Paging::from_query(&query)?;
    let periods = int_param(&query, "periods_count")?;
    let metric = query_value(&query, "billable_metric_code");
    let all = deps
        .store
        .invoices(&org.id)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let mut matching: Vec<&Record<Invoice>> = all
        .iter()
        .filter(|r| {
            r.value.external_customer_id == external_customer_id
                && r.value.external_subscription_id == external_subscription_id
                && matches!(
                    r.value.status,
                    InvoiceState::Finalized | InvoiceState::Draft
                )
                && r.value
                    .fees
                    .iter()
                    .any(|f| matches!(f.item, FeeItem::Charge { .. }))
        })
        .collect();
    matching.sort_by(|a, b| {
        b.value
            .charges_from_datetime
            .cmp(&a.value.charges_from_datetime)
    });
    if let Some(n) = periods {
        matching.truncate(usize::try_from(n.max(0)).unwrap_or(0));
    }
    let total = matching.len();
    let skip = paging
        .page
        .saturating_sub(1)
        .saturating_mul(paging.per_page);
    let items: Vec<Value> = matching
        .into_iter()
        .skip(skip)
        .take(paging.per_page)
        .map(|r| {
            let mut o = usage_period_object(r);
            if let (Some(code), Some(list)) = (
                metric,
                o.get_mut("charges_usage").and_then(Value::as_array_mut),
            ) {
                list.retain(|c| c["billable_metric"]["code"] == code);
            }
            o
        })
        .collect();
    Ok(http::list("usage_periods", items, paging, total))
}
