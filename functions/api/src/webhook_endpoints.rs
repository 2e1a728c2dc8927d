//! `/webhook_endpoints`: create, list, show, update, delete, by Lago id, within the caller's
//! organization.
//!
//! A URL is unique per organization and an organization has at most
//! [`ENDPOINTS_PER_ORGANIZATION_MAX`] endpoints; both rules are conditions of the store's
//! writes, so they hold under concurrent requests. Creating or updating an endpoint makes sure
//! the organization has its HMAC key, so the dispatcher only ever reads it.

use axum::{
    extract::{Path, State},
    response::Response,
};
use billing::catalog::{
    Record,
    organization::Organization,
    webhook_endpoint::{ENDPOINTS_PER_ORGANIZATION_MAX, WebhookEndpoint},
};
use billing_aws::{StoreError, dynamo::webhook_endpoints::EndpointWriteError};
use lago::{
    ApiError,
    dto::webhook_endpoint::{WebhookEndpointDto, WebhookEndpointInputDto},
    http::{self, Paging},
};

use crate::{
    Deps, Tenant,
    edge::{Body, CONFLICT_RETRIES, Params, store_error},
    webhooks::ensure_hmac_key,
};

const RESOURCE: &str = "webhook_endpoint";

fn write_error(e: EndpointWriteError) -> ApiError {
    match e {
        EndpointWriteError::UrlTaken => ApiError::invalid("webhook_url", "value_already_exist"),
        EndpointWriteError::LimitReached => ApiError::invalid("base", "exceeded_limit"),
        EndpointWriteError::Store(e) => store_error(RESOURCE, e),
    }
}

fn respond(org: &Organization, record: &Record<WebhookEndpoint>) -> Response {
    http::ok(RESOURCE, WebhookEndpointDto::new(&org.id, record))
}

/// `POST /webhook_endpoints`.
pub async fn create(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let dto: WebhookEndpointInputDto = http::root_dto(&body, RESOURCE)?;
    let endpoint = WebhookEndpoint::new(dto.into_create())?;
    ensure_hmac_key(&deps, &org).await?;
    let now = (deps.clock)();
    let record = Record {
        lago_id: (deps.ids)(),
        created_at: now,
        updated_at: now,
        sequential_id: None,
        version: 1,
        value: endpoint,
    };
    for _ in 0..CONFLICT_RETRIES {
        match deps
            .store
            .create_webhook_endpoint(&org.id, &record, ENDPOINTS_PER_ORGANIZATION_MAX)
            .await
        {
            Ok(()) => return Ok(respond(&org, &record)),
            // Another create moved the organization's count at the same time: decide again.
            Err(EndpointWriteError::Store(StoreError::Conflict)) => continue,
            Err(e) => return Err(write_error(e)),
        }
    }
    Err(ApiError::Unavailable)
}

/// `GET /webhook_endpoints`.
pub async fn list(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(&query)?;
    let records = deps
        .store
        .webhook_endpoints(&org.id)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let total = records.len();
    let items: Vec<_> = records
        .iter()
        .skip(
            paging
                .page
                .saturating_sub(1)
                .saturating_mul(paging.per_page),
        )
        .take(paging.per_page)
        .map(|r| WebhookEndpointDto::new(&org.id, r))
        .collect();
    Ok(http::list("webhook_endpoints", items, paging, total))
}

/// `GET /webhook_endpoints/{lago_id}`.
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(lago_id): Path<String>,
) -> Result<Response, ApiError> {
    let record = deps
        .store
        .webhook_endpoint(&org.id, &lago_id)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    Ok(respond(&org, &record))
}

/// `PUT /webhook_endpoints/{lago_id}`: the sent fields over the current endpoint.
pub async fn update(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(lago_id): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let object = http::root_object(http::parse_body(&body)?, RESOURCE)?;
    for _ in 0..CONFLICT_RETRIES {
        let current = deps
            .store
            .webhook_endpoint(&org.id, &lago_id)
            .await
            .map_err(|e| store_error(RESOURCE, e))?;
        let dto: WebhookEndpointInputDto = http::from_object(object.clone())?;
        let endpoint = WebhookEndpoint::new(dto.into_update(&current.value))?;
        ensure_hmac_key(&deps, &org).await?;
        let previous_url = current.value.webhook_url().to_owned();
        let record = Record {
            updated_at: (deps.clock)(),
            version: current.version + 1,
            value: endpoint,
            ..current
        };
        match deps
            .store
            .replace_webhook_endpoint(&org.id, &previous_url, &record)
            .await
        {
            Ok(()) => return Ok(respond(&org, &record)),
            Err(EndpointWriteError::Store(StoreError::Conflict)) => continue,
            Err(e) => return Err(write_error(e)),
        }
    }
    Err(ApiError::Unavailable)
}

/// `DELETE /webhook_endpoints/{lago_id}`: returns the deleted endpoint.
pub async fn destroy(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(lago_id): Path<String>,
) -> Result<Response, ApiError> {
    for _ in 0..CONFLICT_RETRIES {
        let current = deps
            .store
            .webhook_endpoint(&org.id, &lago_id)
            .await
            .map_err(|e| store_error(RESOURCE, e))?;
        match deps.store.delete_webhook_endpoint(&org.id, &current).await {
            Ok(()) => return Ok(respond(&org, &current)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(RESOURCE, e)),
        }
    }
    Err(ApiError::Unavailable)
}
