//! The billing queue: one message per external subscription id with something due, from the
//! billing clock to the invoice worker.
//!
//! FIFO, for two reasons. The deduplication id is `(organization, external id, billing
//! instant)`, so a clock that fires twice for the same instant within SQS's five-minute window
//! enqueues the work once; and the message group is the external id, so two messages of one
//! subscription are never processed at the same time (the claim on each invoice, not the
//! queue, is what guarantees one invoice per period; the queue only spares conflicts). Many
//! subscriptions are many groups, so a month-start run still fans out across workers.

use aws_sdk_sqs::{Client, types::SendMessageBatchRequestEntry};
use serde::{Deserialize, Serialize};

use crate::queue::EnqueueError;

/// The current version of [`BillingMessage`].
pub const BILLING_MESSAGE_VERSION: u32 = 1;

/// Close whatever is due for one external subscription id at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingMessage {
    /// Payload version ([`BILLING_MESSAGE_VERSION`]).
    pub v: u32,
    /// The organization id.
    pub org: String,
    /// The external subscription id.
    pub sub: String,
    /// The billing instant (RFC 3339, UTC): everything due at or before it is done.
    pub at: String,
}

impl BillingMessage {
    /// The FIFO message group: one per external subscription id.
    pub fn group_id(&self) -> String {
        digest(&[&self.org, &self.sub])
    }

    /// The FIFO deduplication id: the subscription and the billing instant.
    pub fn deduplication_id(&self) -> String {
        digest(&[&self.org, &self.sub, &self.at])
    }
}

fn digest(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// How many times refused entries are re-sent within one call.
const SEND_ATTEMPTS: usize = 3;

/// The billing queue adapter.
#[derive(Debug, Clone)]
pub struct BillingQueue {
    client: Client,
    url: String,
}

impl BillingQueue {
    /// A publisher to the queue at `url`.
    pub fn new(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            url: url.into(),
        }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends every message, ten per request (the SQS maximum), retrying refused entries with
    /// the same deduplication id; returns the number of requests made.
    pub async fn send(&self, messages: &[BillingMessage]) -> Result<usize, EnqueueError> {
        let mut requests = 0usize;
        let mut failed_all = Vec::new();
        let mut reason = String::new();
        let indexed: Vec<usize> = (0..messages.len()).collect();
        for chunk in indexed.chunks(10) {
            let mut pending: Vec<usize> = chunk.to_vec();
            for _ in 0..SEND_ATTEMPTS {
                if pending.is_empty() {
                    break;
                }
                let mut entries = Vec::with_capacity(pending.len());
                for &i in &pending {
                    let m = &messages[i];
                    let fail = |reason: String| EnqueueError {
                        failed: pending.len(),
                        reason,
                        indexes: pending.clone(),
                    };
                    let body = serde_json::to_string(m).map_err(|e| fail(e.to_string()))?;
                    entries.push(
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(body)
                            .message_group_id(m.group_id())
                            .message_deduplication_id(m.deduplication_id())
                            .build()
                            .map_err(|e| fail(e.to_string()))?,
                    );
                }
                requests += 1;
                match self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => {
                        pending = out
                            .failed
                            .iter()
                            .filter_map(|f| {
                                reason = format!(
                                    "{}: {}",
                                    f.code,
                                    f.message.clone().unwrap_or_default()
                                );
                                f.id.parse().ok()
                            })
                            .collect();
                    }
                    Err(e) => {
                        reason = aws_sdk_sqs::error::DisplayErrorContext(e).to_string();
                    }
                }
            }
            failed_all.extend(pending);
        }
        if failed_all.is_empty() {
            Ok(requests)
        } else {
            Err(EnqueueError {
                failed: failed_all.len(),
                reason,
                indexes: failed_all,
            })
        }
    }
}
