//! `/taxes`: create, list, show, update (including a code change), delete.

use axum::{
    extract::{Path, State},
    response::Response,
};
use billing::catalog::{Record, tax::Tax};
use lago::{
    ApiError,
    dto::tax::{TaxDto, TaxInputDto},
    http::{self, Paging},
};

use crate::{
    Deps, Tenant,
    edge::{Body, Params, store_error},
};

const RESOURCE: &str = "tax";

/// `POST /taxes`.
pub async fn create(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let dto: TaxInputDto = http::root_dto(&body, RESOURCE)?;
    let tax = Tax::new(dto.into_create())?;
    let now = (deps.clock)();
    let record = Record {
        lago_id: (deps.ids)(),
        created_at: now,
        updated_at: now,
        sequential_id: None,
        version: 1,
        value: tax,
    };
    deps.store
        .create(&org.id, &record)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    Ok(http::ok(RESOURCE, TaxDto::from(&record)))
}

/// `GET /taxes`.
pub async fn list(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(&query)?;
    let (records, total) = deps
        .store
        .list::<Tax>(&org.id, paging.page, paging.per_page)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let items: Vec<_> = records.iter().map(TaxDto::from).collect();
    Ok(http::list("taxes", items, paging, total))
}

/// `GET /taxes/{code}`.
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let record = deps
        .store
        .get::<Tax>(&org.id, &code)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    Ok(http::ok(RESOURCE, TaxDto::from(&record)))
}

/// `PUT /taxes/{code}`: the sent fields over the current tax.
pub async fn update(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(code): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let object = http::root_object(http::parse_body(&body)?, RESOURCE)?;
    for _ in 0..crate::edge::CONFLICT_RETRIES {
        let current = deps
            .store
            .get::<Tax>(&org.id, &code)
            .await
            .map_err(|e| store_error(RESOURCE, e))?;
        let dto: TaxInputDto = http::from_object(object.clone())?;
        let tax = Tax::new(dto.into_update(&current.value))?;
        let record = Record {
            updated_at: (deps.clock)(),
            version: current.version + 1,
            value: tax,
            ..current
        };
        match deps.store.replace(&org.id, &code, &record).await {
            Ok(()) => return Ok(http::ok(RESOURCE, TaxDto::from(&record))),
            Err(billing_aws::StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(RESOURCE, e)),
        }
    }
    Err(ApiError::Unavailable)
}

/// `DELETE /taxes/{code}`: returns the deleted tax.
pub async fn destroy(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let record = deps
        .store
        .delete::<Tax>(&org.id, &code)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    Ok(http::ok(RESOURCE, TaxDto::from(&record)))
}
