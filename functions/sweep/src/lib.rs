//! # sweep: no accepted event stays out of the queue
//!
//! An event is stored before it is queued. When queueing fails, ingestion marks the event
//! `unsent` and answers 503; the client's retry resends it, and this scheduled function resends
//! whatever is still marked, through the same hand-off (same FIFO deduplication id, so a resend
//! that races the client's retry is dropped by the queue).
//!
//! ## Architecture Invariants
//! - An event leaves the `unsent` index only after the queue has taken it.
//! - One run handles at most [`SWEEP_MAX`] events; the next run takes the rest.

use billing_aws::{events::EventStore, handoff::enqueue, queue::EventQueue};

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Events found waiting.
    pub found: usize,
    /// Events the queue took.
    pub resent: usize,
}

/// The most events one sweep handles (R19).
pub const SWEEP_MAX: i32 = 500;

/// Resends up to [`SWEEP_MAX`] unsent events.
pub async fn sweep(
    events: &EventStore,
    queue: &EventQueue,
) -> Result<SweepReport, billing_aws::StoreError> {
    let waiting = events.unsent(SWEEP_MAX).await?;
    let mut report = SweepReport {
        found: waiting.len(),
        resent: 0,
    };
    for event in &waiting {
        let org = event.organization_id.clone();
        match enqueue(events, queue, &org, std::slice::from_ref(event), &[true]).await {
            Ok(()) => report.resent += 1,
            Err(e) => {
                tracing::warn!(error.cause_chain = %e, transaction_id = %event.transaction_id, "sweep could not resend");
            }
        }
    }
    Ok(report)
}
