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

pub mod organization;

use axum::{Json, Router, routing::get};
use serde_json::json;

/// The HTTP surface of the local stack.
pub fn app(deps: api::Deps) -> Router {
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(api::router(deps))
}
