//! The billing clock (hourly, and on demand locally): every external subscription id whose
//! due instant has come, read from the due index shard by shard (a query per page, never a
//! scan), becomes one message on the billing queue.

use billing_aws::{
    BillingStore,
    billing_queue::{BILLING_MESSAGE_VERSION, BillingMessage, BillingQueue},
    dynamo::billing_schedule::DUE_SHARDS,
};
use chrono::{DateTime, Utc};

use crate::InvoicingError;

/// What one run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockRun {
    /// Units of work enqueued.
    pub enqueued: usize,
    /// Index queries made.
    pub queries: usize,
    /// Queue requests made.
    pub sends: usize,
}

/// Most index pages read per shard in one run (R19); what is left is due at the next run.
pub const PAGES_MAX: usize = 10_000;

/// Enqueues one unit of work, at `at`, for every external subscription id due by `at`.
pub async fn run_billing_clock(
    store: &BillingStore,
    queue: &BillingQueue,
    at: DateTime<Utc>,
) -> Result<ClockRun, InvoicingError> {
    let stamp = at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let shards = (0..DUE_SHARDS).map(|shard| {
        let stamp = stamp.clone();
        async move {
            let mut run = ClockRun::default();
            let mut start = None;
            for _ in 0..PAGES_MAX {
                let (entries, next) = store.due_entries(shard, at, start.take()).await?;
                run.queries += 1;
                let messages: Vec<BillingMessage> = entries
                    .into_iter()
                    .map(|e| BillingMessage {
                        v: BILLING_MESSAGE_VERSION,
                        org: e.org_id,
                        sub: e.external_id,
                        at: stamp.clone(),
                    })
                    .collect();
                if !messages.is_empty() {
                    run.sends += queue.send(&messages).await?;
                    run.enqueued += messages.len();
                }
                match next {
                    Some(key) => start = Some(key),
                    None => break,
                }
            }
            Ok::<ClockRun, InvoicingError>(run)
        }
    });
    let runs = futures::future::try_join_all(shards).await?;
    Ok(runs.into_iter().fold(ClockRun::default(), |a, r| ClockRun {
        enqueued: a.enqueued + r.enqueued,
        queries: a.queries + r.queries,
        sends: a.sends + r.sends,
    }))
}
