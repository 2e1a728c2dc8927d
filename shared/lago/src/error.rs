//! The Lago error envelope: `{status, error, code?, error_details?}`.
//!
//! Every failure a caller can cause maps to one [`ApiError`], and [`ApiError`] maps to one
//! response. Internal failures are logged by the caller with their cause chain and answered
//! with a bare 500/503 envelope that reveals nothing.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use billing::catalog::ValidationErrors;
use http::StatusCode;
use serde_json::{Map, Value, json};

/// The request body limit, in bytes (API Gateway allows 10 MB and Lambda 6 MB; Lago bodies are
/// small, and a bound keeps a bad client from costing memory and write units).
pub const BODY_LIMIT_BYTES: usize = 1024 * 1024;

/// A failure answered with Lago's error envelope.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 400 with Lago's text (missing root key, malformed JSON).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// 401: no or unknown API key.
    #[error("unauthorized")]
    Unauthorized,
    /// 404 `<resource>_not_found`.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 405 with the refusal code (`not_allowed`, `not_deletable`, ...).
    #[error("method not allowed: {0}")]
    NotAllowed(&'static str),
    /// 413: the body exceeds [`BODY_LIMIT_BYTES`].
    #[error("payload too large")]
    PayloadTooLarge,
    /// 422 `validation_errors` with field-keyed details.
    #[error("validation errors")]
    Validation(Map<String, Value>),
    /// 503: a dependency is throttling or unreachable; the client may retry.
    #[error("service unavailable")]
    Unavailable,
    /// 500: a bug or corrupt data; details are in the logs, never in the response.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A 422 for one field and one code.
    pub fn invalid(field: &str, code: &str) -> Self {
        let mut map = Map::new();
        map.insert(field.to_owned(), json!([code]));
        ApiError::Validation(map)
    }

    /// The 400 Lago returns when the body's root key is absent.
    pub fn missing_root(root: &str) -> Self {
        ApiError::BadRequest(format!(
            "BadRequest: param is missing or the value is empty or invalid: {root}"
        ))
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::NotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body of this error.
    pub fn body(&self) -> Value {
        let status = self.status().as_u16();
        match self {
            ApiError::BadRequest(text) => json!({"status": status, "error": text}),
            ApiError::Unauthorized => json!({"status": status, "error": "Unauthorized"}),
            ApiError::NotFound(resource) => json!({
                "status": status, "error": "Not Found", "code": format!("{resource}_not_found")
            }),
            ApiError::NotAllowed(code) => {
                json!({"status": status, "error": "Method Not Allowed", "code": code})
            }
            ApiError::PayloadTooLarge => json!({
                "status": status, "error": "Payload Too Large", "code": "payload_too_large"
            }),
            ApiError::Validation(details) => json!({
                "status": status,
                "error": "Unprocessable Entity",
                "code": "validation_errors",
                "error_details": details,
            }),
            ApiError::Unavailable => json!({
                "status": status, "error": "Service Unavailable", "code": "service_unavailable"
            }),
            ApiError::Internal => json!({"status": status, "error": "Internal Server Error"}),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}

impl From<ValidationErrors> for ApiError {
    fn from(errors: ValidationErrors) -> Self {
        let mut map = Map::new();
        for e in errors.0 {
            let entry = map.entry(e.field).or_insert_with(|| Value::Array(vec![]));
            if let Value::Array(codes) = entry
                && !codes.iter().any(|c| c == e.code)
            {
                codes.push(Value::from(e.code));
            }
        }
        ApiError::Validation(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_lagos_exact_envelope() {
        let cases = [
            (
                ApiError::missing_root("customer"),
                json!({"status": 400, "error": "BadRequest: param is missing or the value is empty or invalid: customer"}),
            ),
            (
                ApiError::Unauthorized,
                json!({"status": 401, "error": "Unauthorized"}),
            ),
            (
                ApiError::NotFound("customer"),
                json!({"status": 404, "error": "Not Found", "code": "customer_not_found"}),
            ),
            (
                ApiError::invalid("code", "value_already_exist"),
                json!({"status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
                       "error_details": {"code": ["value_already_exist"]}}),
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.body(), expected, "{error:?}");
        }
    }

    #[test]
    fn validation_errors_group_codes_by_field_without_duplicates() {
        let mut errors = ValidationErrors::default();
        errors.push("filters", "invalid_key");
        errors.push("filters", "invalid_key");
        errors.push("filters", "invalid_values");
        errors.push("name", "value_is_mandatory");
        let ApiError::Validation(map) = ApiError::from(errors) else {
            panic!("expected a validation error")
        };
        assert_eq!(
            Value::Object(map),
            json!({"filters": ["invalid_key", "invalid_values"], "name": ["value_is_mandatory"]})
        );
    }
}
