//! `/customers`: upsert on `external_id`, list, show, delete.

use axum::{extract::State, response::Response};
use billing::catalog::{Record, customer::Customer, organization::Organization, tax::Tax};
use billing_aws::StoreError;
use lago::{
    ApiError,
    dto::customer::{CustomerDto, CustomerInputDto},
    http::{self, Paging},
};

use crate::{
    Deps, Tenant,
    edge::{Body, CONFLICT_RETRIES, Key, Params, store_error},
};

const RESOURCE: &str = "customer";

/// The most taxes read to resolve the taxes applied to customers (R19).
const TAXES_MAX: usize = 1000;

/// `POST /customers`: creates the customer, or updates the one with that `external_id`.
pub async fn upsert(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let dto: CustomerInputDto = http::root_dto(&body, RESOURCE)?;
    let Some(external_id) = dto.external_id.clone().filter(|id| !id.trim().is_empty()) else {
        return Err(ApiError::invalid("external_id", "value_is_mandatory"));
    };
    let tax_ids = match &dto.tax_codes {
        None => None,
        Some(codes) => Some(tax_ids(&deps, &org, codes).await?),
    };
    let patch = dto.into_patch(tax_ids);
    for _ in 0..CONFLICT_RETRIES {
        let now = (deps.clock)();
        let record = match deps.store.get::<Customer>(&org.id, &external_id).await {
            Ok(current) => {
                let customer = current.value.apply(patch.clone(), false)?;
                if customer == current.value {
                    // Nothing changes: answer without a write, so identical upserts (a
                    // client's retry, a race on the same new customer) never conflict.
                    current
                } else {
                    let record = Record {
                        updated_at: now,
                        version: current.version + 1,
                        value: customer,
                        ..current
                    };
                    match deps.store.replace(&org.id, &external_id, &record).await {
                        Ok(()) => record,
                        Err(StoreError::Conflict) => continue,
                        Err(e) => return Err(store_error(RESOURCE, e)),
                    }
                }
            }
            Err(StoreError::NotFound) => {
                // Validate before taking a sequence number, so a refused request writes nothing.
                let customer = Customer::create(&external_id, patch.clone())?;
                // Two creates of the same new external id both take a number and one of them
                // is refused, leaving a gap: numbers are unique and increasing, and gapless
                // otherwise. Taking the number in the create's transaction would close the gap
                // on DynamoDB, but the emulator's transactions are not isolated (a cancelled
                // one restores a copy of the table, erasing concurrent writes).
                let sequential_id = deps
                    .store
                    .next_sequence(&org.id, "customer")
                    .await
                    .map_err(|e| store_error(RESOURCE, e))?;
                let record = Record {
                    lago_id: (deps.ids)(),
                    created_at: now,
                    updated_at: now,
                    sequential_id: Some(sequential_id),
                    version: 1,
                    value: customer,
                };
                match deps.store.create(&org.id, &record).await {
                    Ok(()) => record,
                    // Created concurrently by another request: update it instead.
                    Err(StoreError::AlreadyExists) => continue,
                    Err(e) => return Err(store_error(RESOURCE, e)),
                }
            }
            Err(e) => return Err(store_error(RESOURCE, e)),
        };
        return respond(&deps, &org, &record).await;
    }
    Err(ApiError::Unavailable)
}

/// The Lago ids of the taxes with these codes, in the order given; `404 tax_not_found` if
/// the organization has no tax with one of them.
async fn tax_ids(
    deps: &Deps,
    org: &Organization,
    codes: &[String],
) -> Result<Vec<String>, ApiError> {
    let found = deps
        .store
        .get_many::<Tax>(&org.id, codes)
        .await
        .map_err(|e| store_error("tax", e))?;
    codes
        .iter()
        .map(|code| {
            found
                .iter()
                .find(|t| t.value.code() == code)
                .map(|t| t.lago_id.clone())
                .ok_or(ApiError::NotFound("tax"))
        })
        .collect()
}

/// Every tax of the organization, to resolve the ones applied to customers by id.
async fn taxes(deps: &Deps, org: &Organization) -> Result<Vec<Record<Tax>>, ApiError> {
    let (taxes, _) = deps
        .store
        .list::<Tax>(&org.id, 1, TAXES_MAX)
        .await
        .map_err(|e| store_error("tax", e))?;
    Ok(taxes)
}

/// `GET /customers`.
pub async fn list(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(&query)?;
    let (records, total) = deps
        .store
        .list::<Customer>(&org.id, paging.page, paging.per_page)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let taxes = if records.iter().any(|r| !r.value.tax_ids().is_empty()) {
        taxes(&deps, &org).await?
    } else {
        Vec::new()
    };
    let items: Vec<_> = records.iter().map(|r| dto(&org, r, &taxes)).collect();
    Ok(http::list("customers", items, paging, total))
}

/// `GET /customers/{external_id}`.
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Key(external_id): Key,
) -> Result<Response, ApiError> {
    let record = deps
        .store
        .get::<Customer>(&org.id, &external_id)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    respond(&deps, &org, &record).await
}

/// `DELETE /customers/{external_id}`: returns the deleted customer.
pub async fn destroy(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Key(external_id): Key,
) -> Result<Response, ApiError> {
    let record = deps
        .store
        .delete::<Customer>(&org.id, &external_id)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    respond(&deps, &org, &record).await
}

async fn respond(
    deps: &Deps,
    org: &Organization,
    record: &Record<Customer>,
) -> Result<Response, ApiError> {
    let taxes = if record.value.tax_ids().is_empty() {
        Vec::new()
    } else {
        taxes(deps, org).await?
    };
    Ok(http::ok(RESOURCE, dto(org, record, &taxes)))
}

/// The customer's response; an applied tax deleted since is no longer shown.
fn dto(org: &Organization, record: &Record<Customer>, taxes: &[Record<Tax>]) -> CustomerDto {
    let applied: Vec<Record<Tax>> = record
        .value
        .tax_ids()
        .iter()
        .filter_map(|id| taxes.iter().find(|t| &t.lago_id == id).cloned())
        .collect();
    CustomerDto::new(
        record,
        &applied,
        org.settings.timezone,
        &org.settings.document_number_prefix,
    )
}
