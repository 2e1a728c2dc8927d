//! The billing clock on one machine: fired every hour, as the EventBridge schedule fires it,
//! and on demand with `POST /_local/billing-run {"time": "<ISO-8601>"}`, which runs exactly
//! what the schedule would run at that instant and then drains the billing queue, so a test
//! gets a deterministic point ("every invoice due at this instant exists").

use std::time::Duration;

use axum::{Json, Router, http::StatusCode, routing::post};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::worker::QueuePoller;

/// The clock, the worker and the billing queue, wired together.
#[derive(Clone)]
pub struct BillingRunner {
    /// The clock's dependencies.
    pub clock: billing_clock::Deps,
    /// The invoice worker's dependencies.
    pub invoice: invoicing::Deps,
    /// The billing queue's poller.
    pub poller: QueuePoller,
}

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BillingRunReport {
    /// Units of work the clock enqueued.
    pub enqueued: usize,
    /// Messages the worker processed successfully.
    pub processed: usize,
    /// Messages the worker failed (left for redelivery).
    pub failed: usize,
}

/// The most polls one drain makes (R19).
const DRAIN_POLLS_MAX: usize = 10_000;

impl BillingRunner {
    /// Runs the clock at `at`, then the worker until the billing queue is empty. A message
    /// that keeps failing is reported (it would otherwise be retried until the DLQ).
    pub async fn run_at(&self, at: DateTime<Utc>) -> anyhow::Result<BillingRunReport> {
        let run = billing_clock::run(&self.clock, at).await?;
        let mut report = BillingRunReport {
            enqueued: run.enqueued,
            ..BillingRunReport::default()
        };
        for _ in 0..DRAIN_POLLS_MAX {
            let poll = self
                .poller
                .poll_once(|e| invoice::handler(&self.invoice, e))
                .await?;
            report.processed += poll.received - poll.failed;
            report.failed += poll.failed;
            if poll.failed > 0 {
                anyhow::bail!("{} billing message(s) failed; see the logs", poll.failed);
            }
            if poll.received == 0 && self.poller.outstanding().await? == 0 {
                return Ok(report);
            }
        }
        anyhow::bail!("the billing queue did not drain after {DRAIN_POLLS_MAX} polls")
    }

    /// Fires the clock at the top of every hour, as the deployed rule does, until `stop`
    /// changes.
    pub async fn hourly(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let now = Utc::now();
        let into_hour = u64::try_from(now.timestamp().rem_euclid(3600)).unwrap_or(0);
        let first = tokio::time::Instant::now() + Duration::from_secs(3600 - into_hour);
        let mut every = tokio::time::interval_at(first, Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = every.tick() => {
                    if let Err(e) = self.run_at(Utc::now()).await {
                        tracing::error!(error.cause_chain = ?e, "billing run failed");
                    }
                }
            }
        }
    }
}

/// `POST /_local/billing-run` (local runner only).
pub fn routes(runner: BillingRunner) -> Router {
    Router::new().route(
        "/_local/billing-run",
        post(move |body: Option<Json<Value>>| {
            let runner = runner.clone();
            async move {
                let time = body
                    .as_ref()
                    .and_then(|b| b.get("time"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let at = match time.as_deref() {
                    None => Utc::now(),
                    Some(t) => match lago::dto::subscription::parse_datetime(t) {
                        Some(at) => at,
                        None => {
                            return (
                                StatusCode::UNPROCESSABLE_ENTITY,
                                Json(json!({
                                    "status": 422,
                                    "error": "Unprocessable Entity",
                                    "code": "validation_errors",
                                    "error_details": {"time": ["invalid_date"]},
                                })),
                            );
                        }
                    },
                };
                match runner.run_at(at).await {
                    Ok(r) => (
                        StatusCode::OK,
                        Json(json!({
                            "time": lago::dto::timestamp(at),
                            "enqueued": r.enqueued,
                            "processed": r.processed,
                        })),
                    ),
                    Err(e) => {
                        tracing::error!(error.cause_chain = ?e, "billing run failed");
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            Json(json!({"status": 503, "error": "Service Unavailable", "code": "billing_run_failed"})),
                        )
                    }
                }
            }
        }),
    )
}
