//! `/organizations`: the caller's own organization.

use axum::{extract::State, response::Response};
use billing::catalog::{organization::Organization, tax::Tax};
use billing_aws::StoreError;
use lago::{
    ApiError,
    dto::organization::{OrganizationDto, OrganizationInputDto},
    http,
};

use crate::{
    Deps, Tenant,
    edge::{Body, CONFLICT_RETRIES, store_error},
};

const RESOURCE: &str = "organization";

/// The most taxes read to find the organization's defaults (R19).
const TAXES_MAX: usize = 1000;

/// `GET /organizations`.
pub async fn show(State(deps): State<Deps>, Tenant(org): Tenant) -> Result<Response, ApiError> {
    respond(&deps, &org).await
}

/// `PUT /organizations`.
pub async fn update(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let object = http::root_object(http::parse_body(&body)?, RESOURCE)?;
    let mut current = org;
    for _ in 0..CONFLICT_RETRIES {
        let dto: OrganizationInputDto = http::from_object(object.clone())?;
        let settings = current.settings.apply(dto.into_patch())?;
        let next = Organization {
            settings,
            version: current.version + 1,
            ..current.clone()
        };
        match deps.store.replace_organization(&next).await {
            Ok(()) => return respond(&deps, &next).await,
            Err(StoreError::Conflict) => {
                current = deps
                    .store
                    .organization(&current.id)
                    .await
                    .map_err(|e| store_error(RESOURCE, e))?;
            }
            Err(e) => return Err(store_error(RESOURCE, e)),
        }
    }
    Err(ApiError::Unavailable)
}

async fn respond(deps: &Deps, org: &Organization) -> Result<Response, ApiError> {
    let (taxes, _) = deps
        .store
        .list::<Tax>(&org.id, 1, TAXES_MAX)
        .await
        .map_err(|e| store_error("tax", e))?;
    let applied: Vec<_> = taxes
        .into_iter()
        .filter(|t| t.value.applied_to_organization())
        .collect();
    Ok(http::ok(RESOURCE, OrganizationDto::new(org, &applied)))
}
