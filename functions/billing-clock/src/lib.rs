//! # billing-clock: what is due this hour
//!
//! Fired by an EventBridge schedule (hourly). The scheduled event's `time` is the billing
//! instant; [`invoicing::run_billing_clock::run_billing_clock`] reads the due index up to it
//! and enqueues one message per external subscription id on the billing queue. The local
//! runner calls [`run`] with an instant of the caller's choosing (`POST /_local/billing-run`).

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use billing_aws::{BillingStore, billing_queue::BillingQueue};
use chrono::{DateTime, Utc};
use invoicing::{
    InvoicingError,
    run_billing_clock::{ClockRun, run_billing_clock},
};

/// What the clock needs.
#[derive(Debug, Clone)]
pub struct Deps {
    /// The billing table (its due index).
    pub store: BillingStore,
    /// The billing queue.
    pub queue: BillingQueue,
}

/// Runs the clock at `at`: exactly what the schedule runs at that instant.
pub async fn run(deps: &Deps, at: DateTime<Utc>) -> Result<ClockRun, InvoicingError> {
    run_billing_clock(&deps.store, &deps.queue, at).await
}

/// Handles a scheduled event: its `time` is the billing instant (`now` when it has none, as
/// for a manual invocation).
pub async fn handler(
    deps: &Deps,
    event: EventBridgeEvent<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<ClockRun, InvoicingError> {
    let at = event.time.unwrap_or(now);
    let run = run(deps, at).await?;
    tracing::info!(at = %at, enqueued = run.enqueued, "billing clock ran");
    Ok(run)
}
