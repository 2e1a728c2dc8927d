//! `/billable_metrics`: create, list, show, update (including a code change), delete.

use axum::{
    extract::{Path, State},
    response::Response,
};
use billing::catalog::{Record, metric::BillableMetric};
use lago::{
    ApiError,
    dto::billable_metric::{BillableMetricDto, BillableMetricInputDto},
    http::{self, Paging},
};

use crate::{
    Deps, Tenant,
    edge::{Body, Params, store_error},
};

const RESOURCE: &str = "billable_metric";

/// `POST /billable_metrics`.
pub async fn create(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let dto: BillableMetricInputDto = http::root_dto(&body, RESOURCE)?;
    let metric = BillableMetric::new(dto.into_create())?;
    let now = (deps.clock)();
    let record = Record {
        lago_id: (deps.ids)(),
        created_at: now,
        updated_at: now,
        sequential_id: None,
        version: 1,
        value: metric,
    };
    deps.store
        .create(&org.id, &record)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    Ok(http::ok(RESOURCE, BillableMetricDto::from(&record)))
}

/// `GET /billable_metrics`.
pub async fn list(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(&query)?;
    let (records, total) = deps
        .store
        .list::<BillableMetric>(&org.id, paging.page, paging.per_page)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let items: Vec<_> = records.iter().map(BillableMetricDto::from).collect();
    Ok(http::list("billable_metrics", items, paging, total))
}

/// `GET /billable_metrics/{code}`.
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let record = deps
        .store
        .get::<BillableMetric>(&org.id, &code)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    Ok(http::ok(RESOURCE, BillableMetricDto::from(&record)))
}

/// `PUT /billable_metrics/{code}`: the sent fields over the current definition.
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
            .get::<BillableMetric>(&org.id, &code)
            .await
            .map_err(|e| store_error(RESOURCE, e))?;
        let dto: BillableMetricInputDto = http::from_object(object.clone())?;
        let metric = BillableMetric::new(dto.into_update(&current.value))?;
        let record = Record {
            updated_at: (deps.clock)(),
            version: current.version + 1,
            value: metric,
            ..current
        };
        match deps.store.replace(&org.id, &code, &record).await {
            Ok(()) => return Ok(http::ok(RESOURCE, BillableMetricDto::from(&record))),
            Err(billing_aws::StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(RESOURCE, e)),
        }
    }
    Err(ApiError::Unavailable)
}

/// `DELETE /billable_metrics/{code}`: returns the deleted metric.
pub async fn destroy(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let record = deps
        .store
        .delete::<BillableMetric>(&org.id, &code)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    Ok(http::ok(RESOURCE, BillableMetricDto::from(&record)))
}
