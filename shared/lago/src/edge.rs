//! The request side every HTTP function shares: who is calling (bearer key to organization),
//! the raw body under the size limit, and the query string, each failing as a Lago error.
//!
//! Resolving a key needs a store, which this crate does not know: a function supplies it by
//! implementing [`TenantResolver`] on its dependencies.

use std::future::Future;

use axum::{
    extract::{FromRequest, FromRequestParts, Query, Request, State},
    http::request::Parts,
    middleware::Next,
    response::{IntoResponse, Response},
};
use billing::catalog::organization::Organization;
use bytes::Bytes;

use crate::ApiError;

/// Finds the organization of an API key.
pub trait TenantResolver: Clone + Send + Sync + 'static {
    /// `Ok(None)` for an unknown key; `Err` when the lookup itself failed.
    fn resolve(
        &self,
        api_key: &str,
    ) -> impl Future<Output = Result<Option<Organization>, ApiError>> + Send;
}

/// The caller's organization, resolved from its API key by [`authenticate`].
#[derive(Debug, Clone)]
pub struct Tenant(pub Organization);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Tenant>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}

/// Middleware: resolves `Authorization: Bearer <key>` to the organization; 401 otherwise.
pub async fn authenticate<R: TenantResolver>(
    State(resolver): State<R>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(key) = crate::http::bearer_token(request.headers()) else {
        return ApiError::Unauthorized.into_response();
    };
    match resolver.resolve(key).await {
        Ok(Some(org)) => {
            request.extensions_mut().insert(Tenant(org));
            next.run(request).await
        }
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(e) => e.into_response(),
    }
}

/// The raw JSON body, with the size limit and read failures answered as Lago errors.
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(e) if e.status() == http::StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge)
            }
            Err(_) => Err(ApiError::BadRequest(
                "BadRequest: the request body could not be read".into(),
            )),
        }
    }
}

/// The query string as ordered pairs; an undecodable query is a 400.
pub struct Params(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(pairs)| Params(pairs))
            .map_err(|_| ApiError::BadRequest("BadRequest: invalid query string".into()))
    }
}

/// The JSON 404 for a path no route serves.
pub async fn route_not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// The JSON 405 for a known path with an unsupported method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::NotAllowed("method_not_allowed")
}
