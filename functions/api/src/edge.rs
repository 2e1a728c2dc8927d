//! Request extractors and the mapping from store errors to Lago errors; [`coded`] holds the
//! routes shared by every record addressed by a code.

pub mod coded;

use axum::{
    extract::{FromRequest, FromRequestParts, Path, Query, Request, State},
    http::request::Parts,
    middleware::Next,
    response::{IntoResponse, Response},
};
use billing::catalog::organization::Organization;
use billing_aws::StoreError;
use bytes::Bytes;
use lago::ApiError;

use crate::Deps;

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

/// Resolves `Authorization: Bearer <key>` to the organization; 401 otherwise.
pub async fn authenticate(State(deps): State<Deps>, mut request: Request, next: Next) -> Response {
    let Some(key) = lago::http::bearer_token(request.headers()) else {
        return ApiError::Unauthorized.into_response();
    };
    match deps.store.organization_for_key(key).await {
        Ok(org) => {
            request.extensions_mut().insert(Tenant(org));
            next.run(request).await
        }
        Err(StoreError::NotFound) => ApiError::Unauthorized.into_response(),
        Err(e) => store_error("organization", e).into_response(),
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

/// A record's key from the path (`{code}`, `{external_id}`), percent-decoded. A segment that
/// does not decode to UTF-8 is a JSON 400, where axum's own rejection is a text page.
pub struct Key(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(key)| Key(key))
            .map_err(|_| ApiError::BadRequest("BadRequest: invalid path parameter".into()))
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

/// Maps a store failure for `resource` to its Lago error, logging what the caller cannot see.
pub fn store_error(resource: &'static str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound(resource),
        StoreError::AlreadyExists => ApiError::invalid("code", "value_already_exist"),
        StoreError::Conflict => ApiError::Unavailable,
        StoreError::TooLarge => ApiError::invalid("base", "value_is_too_long"),
        StoreError::Unavailable(cause) => {
            tracing::error!(error.cause_chain = %cause, resource, "store unavailable");
            ApiError::Unavailable
        }
        StoreError::Corrupt(cause) => {
            tracing::error!(error.cause_chain = %cause, resource, "corrupt item");
            ApiError::Internal
        }
    }
}

/// The JSON 404 for a path no route serves: lago-api's catch-all answers
/// `resource_not_found` (`ApplicationController#not_found`).
pub async fn route_not_found() -> ApiError {
    ApiError::NotFound("resource")
}

/// The JSON 405 for a known path with an unsupported method, with the code of the spec's
/// `ApiErrorNotAllowed` example (lago-api itself answers its catch-all 404 here).
pub async fn method_not_allowed() -> ApiError {
    ApiError::NotAllowed("not_allowed")
}

/// How many times a read-modify-write is retried when another writer got there first.
pub const CONFLICT_RETRIES: usize = 5;
