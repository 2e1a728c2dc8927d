//! `/billable_metrics`: create, list, show, update (including a code change), delete.

use axum::{extract::State, response::Response};
use billing::catalog::{ValidationErrors, metric::BillableMetric};
use lago::{
    ApiError,
    dto::billable_metric::{BillableMetricDto, BillableMetricInputDto},
};

use crate::{
    Deps, Tenant,
    edge::{
        Body, Key, Params,
        coded::{self, CodedRecord},
    },
};

impl CodedRecord for BillableMetric {
    const ROOT: &'static str = "billable_metric";
    const PLURAL: &'static str = "billable_metrics";
    type Input = BillableMetricInputDto;
    type Output = BillableMetricDto;

    fn create(input: BillableMetricInputDto) -> Result<Self, ValidationErrors> {
        BillableMetric::new(input.into_create())
    }

    fn update(&self, input: BillableMetricInputDto) -> Result<Self, ValidationErrors> {
        BillableMetric::new(input.into_update(self))
    }
}

/// `POST /billable_metrics`.
pub async fn create(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    coded::create::<BillableMetric>(&deps, &org, &body).await
}

/// `GET /billable_metrics`.
pub async fn list(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    coded::list::<BillableMetric>(&deps, &org, &query).await
}

/// `GET /billable_metrics/{code}`.
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Key(code): Key,
) -> Result<Response, ApiError> {
    coded::show::<BillableMetric>(&deps, &org, &code).await
}

/// `PUT /billable_metrics/{code}`: the sent fields over the current definition.
pub async fn update(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Key(code): Key,
    Body(body): Body,
) -> Result<Response, ApiError> {
    coded::update::<BillableMetric>(&deps, &org, &code, &body).await
}

/// `DELETE /billable_metrics/{code}`: returns the deleted metric.
pub async fn destroy(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Key(code): Key,
) -> Result<Response, ApiError> {
    coded::destroy::<BillableMetric>(&deps, &org, &code).await
}
