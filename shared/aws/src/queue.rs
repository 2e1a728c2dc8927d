//! The events queue: hands accepted events to the aggregator.
//!
//! Messages go out with `SendMessageBatch` (ten per call, the SQS maximum), each in its
//! subscription's FIFO group with a deduplication id derived from its events, so a resend
//! within five minutes is dropped by the queue. Entries the queue refuses are retried a bounded
//! number of times and then reported, never ignored (R14).

use aws_sdk_sqs::{Client, types::SendMessageBatchRequestEntry};

use crate::messages::EventsMessage;

/// The queue refused or could not take some messages.
#[derive(Debug, thiserror::Error)]
#[error("{failed} message(s) not enqueued: {reason}")]
pub struct EnqueueError {
    /// How many messages were not sent.
    pub failed: usize,
    /// The last reason given.
    pub reason: String,
    /// The indexes (into the slice given to [`EventQueue::send`]) of the messages not sent.
    pub indexes: Vec<usize>,
}

/// How many times refused entries are re-sent within one call.
const SEND_ATTEMPTS: usize = 3;

/// The events queue adapter.
#[derive(Debug, Clone)]
pub struct EventQueue {
    client: Client,
    url: String,
}

impl EventQueue {
    /// A publisher to the queue at `url`.
    pub fn new(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self::with_client(Client::new(sdk), url)
    }

    /// A publisher with a given client (tests inject faults through its config).
    pub fn with_client(client: Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
        }
    }

    /// The queue URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SQS client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends every message, ten per request, retrying refused entries with the same
    /// deduplication id. Returns which messages could not be sent.
    pub async fn send(&self, messages: &[EventsMessage]) -> Result<usize, EnqueueError> {
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
                    let body = serde_json::to_string(m).map_err(|e| EnqueueError {
                        failed: pending.len(),
                        reason: e.to_string(),
                        indexes: pending.clone(),
                    })?;
                    let entry = SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .message_group_id(m.group_id())
                        .message_deduplication_id(m.deduplication_id())
                        .build()
                        .map_err(|e| EnqueueError {
                            failed: pending.len(),
                            reason: e.to_string(),
                            indexes: pending.clone(),
                        })?;
                    entries.push(entry);
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
