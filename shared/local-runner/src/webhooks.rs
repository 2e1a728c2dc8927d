//! The webhook dispatcher on the local stack: a poller of the webhook queue, and
//! `POST /_local/drain-webhooks`, which dispatches until the queue is empty so that a test
//! knows every webhook published so far was delivered (or, after its last attempt, moved to
//! the dead-letter queue).

use axum::{Json, Router, http::StatusCode, routing::post};
use serde_json::json;

use crate::worker::QueuePoller;

/// Runs the webhook dispatcher on the webhook queue until it is empty.
#[derive(Clone)]
pub struct WebhookDrainer {
    poller: QueuePoller,
    deps: webhook_dispatch::Deps,
}

/// The most polls one drain makes (R19): a queue that never empties is reported, not waited on.
const DRAIN_POLLS_MAX: usize = 10_000;

impl WebhookDrainer {
    /// A drainer with `poller` (give it no retry delay, so failed webhooks use up their
    /// attempts at once) and the dispatcher's dependencies.
    pub fn new(poller: QueuePoller, deps: webhook_dispatch::Deps) -> Self {
        Self { poller, deps }
    }

    /// Dispatches until no message is left; returns how many messages were received.
    pub async fn drain(&self) -> anyhow::Result<usize> {
        let mut received = 0;
        for _ in 0..DRAIN_POLLS_MAX {
            let report = self
                .poller
                .poll_once(|e| webhook_dispatch::handler(&self.deps, e))
                .await?;
            received += report.received;
            if report.received == 0 && self.poller.outstanding().await? == 0 {
                return Ok(received);
            }
        }
        anyhow::bail!("the webhook queue did not drain after {DRAIN_POLLS_MAX} polls")
    }
}

/// `POST /_local/drain-webhooks`: `{"processed": <messages received>}` once the webhook queue
/// is empty.
pub fn routes(drainer: WebhookDrainer) -> Router {
    Router::new().route(
        "/_local/drain-webhooks",
        post(move || {
            let drainer = drainer.clone();
            async move {
                match drainer.drain().await {
                    Ok(n) => (StatusCode::OK, Json(json!({"processed": n}))),
                    Err(e) => {
                        tracing::error!(error.cause_chain = ?e, "webhook drain failed");
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Json(json!({"status": 503, "error": "Service Unavailable", "code": "drain_failed"})),
                        )
                    }
                }
            }
        }),
    )
}
