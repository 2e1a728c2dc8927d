//! `/taxes`: create, list, show, update (including a code change), delete.

use axum::{extract::State, response::Response};
use billing::catalog::{ValidationErrors, tax::Tax};
use lago::{
    ApiError,
    dto::tax::{TaxDto, TaxInputDto},
};

use crate::{
    Deps, Tenant,
    edge::{
        Body, Key, Params,
        coded::{self, CodedRecord},
    },
};

impl CodedRecord for Tax {
    const ROOT: &'static str = "tax";
    const PLURAL: &'static str = "taxes";
    type Input = TaxInputDto;
    type Output = TaxDto;

    fn create(input: TaxInputDto) -> Result<Self, ValidationErrors> {
        Tax::new(input.into_create())
    }

    fn update(&self, input: TaxInputDto) -> Result<Self, ValidationErrors> {
        Tax::new(input.into_update(self))
    }
}

/// `POST /taxes`.
pub async fn create(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    coded::create::<Tax>(&deps, &org, &body).await
}

/// `GET /taxes`.
pub async fn list(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    coded::list::<Tax>(&deps, &org, &query).await
}

/// `GET /taxes/{code}`.
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Key(code): Key,
) -> Result<Response, ApiError> {
    coded::show::<Tax>(&deps, &org, &code).await
}

/// `PUT /taxes/{code}`: the sent fields over the current tax.
pub async fn update(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Key(code): Key,
    Body(body): Body,
) -> Result<Response, ApiError> {
    coded::update::<Tax>(&deps, &org, &code, &body).await
}

/// `DELETE /taxes/{code}`: returns the deleted tax.
pub async fn destroy(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Key(code): Key,
) -> Result<Response, ApiError> {
    coded::destroy::<Tax>(&deps, &org, &code).await
}
