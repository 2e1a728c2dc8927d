//! The sweep: resends events whose hand-off to the queue failed after they were stored.
//!
//! Each resend carries the same FIFO deduplication id as a resend by the client's retry, and
//! the event leaves the `unsent` index only once the queue has taken it.

use crate::{Deps, ingest_events::enqueue};

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Events found waiting.
    pub found: usize,
    /// Events the queue took.
    pub resent: usize,
}

/// The most events one sweep handles (R19); the next sweep takes the rest.
pub const SWEEP_MAX: i32 = 500;

/// Resends up to [`SWEEP_MAX`] unsent events.
pub async fn sweep(deps: &Deps) -> Result<SweepReport, billing_aws::StoreError> {
    let waiting = deps.events.unsent(SWEEP_MAX).await?;
    let mut report = SweepReport {
        found: waiting.len(),
        resent: 0,
    };
    for event in &waiting {
        let org = event.organization_id.clone();
        match enqueue(deps, &org, std::slice::from_ref(event), &[true]).await {
            Ok(()) => report.resent += 1,
            Err(_) => {
                tracing::warn!(transaction_id = %event.transaction_id, "sweep could not resend");
            }
        }
    }
    Ok(report)
}
