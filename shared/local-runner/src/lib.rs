//! # local-runner: the whole system on one machine
//!
//! Serves every HTTP function on one socket through the same handler code the Lambdas run,
//! against the AWS emulator (or any endpoint in `AWS_ENDPOINT_URL`).
//!
//! ## Layout
//! - [`app`]: the HTTP surface: the functions' routers as API Gateway routes them, plus
//!   `/health` (local only).
//! - [`organization`]: creating an organization and its API key (also used against AWS).
//!
//! ## Architecture Invariants
//! - No handler logic lives here: the runner only wires what the functions export.
//! - Local-only routes (`/health`, later `/_local/*`) are mounted here and never in a function.

pub mod billing_run;
pub mod metering;
pub mod organization;
pub mod webhooks;
pub mod worker;

use axum::{
    Json, Router,
    extract::Request,
    http::StatusCode,
    routing::{get, post},
};
use serde_json::json;
use tower::ServiceExt;

/// The HTTP surface of the local stack: `/api/v1/events*` goes to the ingest function and
/// everything else to the API function, as API Gateway routes them.
///
/// `POST /_local/drain` runs the aggregate worker until the events queue is empty and answers
/// with the number of messages processed: tests call it to know every accepted event counts.
pub fn app(api: api::Deps, ingest: ingest::Deps, drainer: worker::Drainer) -> Router {
    let api = api::router(api);
    let ingest = ingest::router(ingest);
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/_local/drain",
            post(move || {
                let drainer = drainer.clone();
                async move {
                    match drainer.drain().await {
                        Ok(n) => (StatusCode::OK, Json(json!({"processed": n}))),
                        Err(e) => {
                            tracing::error!(error.cause_chain = ?e, "drain failed");
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                Json(json!({"status": 503, "error": "Service Unavailable", "code": "drain_failed"})),
                            )
                        }
                    }
                }
            }),
        )
        .fallback(move |request: Request| {
            let path = request.uri().path();
            let to_ingest = path == "/api/v1/events" || path.starts_with("/api/v1/events/");
            let target = if to_ingest { ingest.clone() } else { api.clone() };
            async move { target.oneshot(request).await }
        })
}
