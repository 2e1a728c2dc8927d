//! `/customers`: upsert on `external_id`, list, show, delete.

use axum::{
    extract::{Path, State},
    response::Response,
};
use billing::catalog::{Record, customer::Customer, organization::Organization, tax::Tax};
use billing_aws::StoreError;
use lago::{
    ApiError,
    dto::customer::{CustomerDto, CustomerInputDto},
    http::{self, Paging},
};

use crate::{
    Deps, Tenant,
    edge::{Body, CONFLICT_RETRIES, Params, store_error},
};

const RESOURCE: &str = "customer";

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
    if let Some(codes) = &dto.tax_codes {
        let found = deps
            .store
            .get_many::<Tax>(&org.id, codes)
            .await
            .map_err(|e| store_error("tax", e))?;
        if codes
            .iter()
            .any(|c| !found.iter().any(|t| t.value.code() == c))
        {
            return Err(ApiError::NotFound("tax"));
        }
    }
    let patch = dto.into_patch();
    for _ in 0..CONFLICT_RETRIES {
        let now = (deps.clock)();
        let record = match deps.store.get::<Customer>(&org.id, &external_id).await {
            Ok(current) => {
                let customer = current.value.apply(patch.clone(), false)?;
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
            Err(StoreError::NotFound) => {
                // Validate before taking a sequence number, so a refused request writes nothing.
                let customer = Customer::create(&external_id, patch.clone())?;
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
    let mut codes: Vec<String> = records
        .iter()
        .flat_map(|r| r.value.tax_codes().iter().cloned())
        .collect();
    codes.sort();
    codes.dedup();
    let taxes = deps
        .store
        .get_many::<Tax>(&org.id, &codes)
        .await
        .map_err(|e| store_error("tax", e))?;
    let items: Vec<_> = records.iter().map(|r| dto(&org, r, &taxes)).collect();
    Ok(http::list("customers", items, paging, total))
}

/// `GET /customers/{external_id}`.
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(external_id): Path<String>,
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
    Path(external_id): Path<String>,
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
    let taxes = deps
        .store
        .get_many::<Tax>(&org.id, record.value.tax_codes())
        .await
        .map_err(|e| store_error("tax", e))?;
    Ok(http::ok(RESOURCE, dto(org, record, &taxes)))
}

fn dto(org: &Organization, record: &Record<Customer>, taxes: &[Record<Tax>]) -> CustomerDto {
    let applied: Vec<Record<Tax>> = record
        .value
        .tax_codes()
        .iter()
        .filter_map(|code| taxes.iter().find(|t| t.value.code() == code).cloned())
        .collect();
    CustomerDto::new(
        record,
        &applied,
        org.settings.timezone,
        &org.settings.document_number_prefix,
    )
}
