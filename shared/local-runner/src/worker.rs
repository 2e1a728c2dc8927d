//! The local stand-in for Lambda's SQS event source mapping: receives up to ten messages,
//! hands them to the worker handler as a real `SqsEvent` (attributes included), deletes the
//! ones the handler did not report as failed, and leaves the failed ones to come back after a
//! retry delay, until the queue's redrive policy moves them to the dead-letter queue.
//!
//! On a FIFO queue it can also drop resent messages as SQS does ([`QueuePoller::deduplicating`]):
//! the emulator forgets a deduplication id once its message is deleted, so a resend inside
//! SQS's five-minute window would otherwise be delivered a second time.

use std::{collections::HashMap, time::Duration};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::{
    Client,
    types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName},
};
use billing_aws::events::EventStore;

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollReport {
    /// Messages received.
    pub received: usize,
    /// Messages the handler reported as failed.
    pub failed: usize,
}

/// Polls one queue for one handler.
#[derive(Debug, Clone)]
pub struct QueuePoller {
    client: Client,
    url: String,
    /// How long a failed message stays invisible before it is redelivered.
    retry_delay: Duration,
    /// How long a receive waits for messages (long polling).
    wait: Duration,
    /// Where a FIFO queue's deliveries are claimed, when resent messages are dropped.
    deliveries: Option<EventStore>,
}

impl QueuePoller {
    /// A poller of the queue at `url`.
    pub fn new(
        client: Client,
        url: impl Into<String>,
        retry_delay: Duration,
        wait: Duration,
    ) -> Self {
        Self {
            client,
            url: url.into(),
            retry_delay,
            wait,
            deliveries: None,
        }
    }

    /// The same poller, dropping a FIFO message whose deduplication id was already delivered
    /// by another message sent within the previous five minutes, as SQS does. Deliveries are
    /// claimed in `deliveries` (one conditional write per message), so every poller of the
    /// queue, in any process, agrees on which message was first.
    pub fn deduplicating(mut self, deliveries: EventStore) -> Self {
        self.deliveries = Some(deliveries);
        self
    }

    /// Whether `m` resends a message already delivered (SQS would not deliver it).
    async fn is_resent(&self, m: &Message) -> anyhow::Result<bool> {
        let Some(deliveries) = &self.deliveries else {
            return Ok(false);
        };
        let attribute =
            |name: MessageSystemAttributeName| m.attributes.as_ref().and_then(|a| a.get(&name));
        let (Some(id), Some(deduplication_id), Some(sent_at_ms)) = (
            m.message_id.as_deref(),
            attribute(MessageSystemAttributeName::MessageDeduplicationId),
            attribute(MessageSystemAttributeName::SentTimestamp).and_then(|t| t.parse().ok()),
        ) else {
            return Ok(false);
        };
        let first = deliveries
            .claim_delivery(&self.url, deduplication_id, id, sent_at_ms)
            .await?;
        Ok(!first)
    }

    /// Receives one batch and runs `handler` on it, as Lambda would.
    pub async fn poll_once<F, Fut>(&self, handler: F) -> anyhow::Result<PollReport>
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: std::future::Future<Output = SqsBatchResponse>,
    {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .wait_time_seconds(i32::try_from(self.wait.as_secs()).unwrap_or(0))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(PollReport::default());
        }
        let mut receipts: HashMap<String, String> = HashMap::new();
        let mut resent: Vec<String> = Vec::new();
        let mut event = SqsEvent::default();
        for m in &messages {
            if self.is_resent(m).await? {
                tracing::info!(
                    message_id = m.message_id.as_deref().unwrap_or(""),
                    "dropped a resent message, as SQS would inside its deduplication window"
                );
                resent.extend(m.receipt_handle.clone());
                continue;
            }
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            record.md5_of_body = m.md5_of_body.clone();
            record.event_source = Some("aws:sqs".into());
            record.attributes = m
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect();
            if let (Some(id), Some(r)) = (&m.message_id, &m.receipt_handle) {
                receipts.insert(id.clone(), r.clone());
            }
            event.records.push(record);
        }
        let response = if event.records.is_empty() {
            SqsBatchResponse::default()
        } else {
            handler(event).await
        };
        let failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        let mut deletes = Vec::new();
        for receipt in &resent {
            deletes.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(deletes.len().to_string())
                    .receipt_handle(receipt)
                    .build()?,
            );
        }
        for (id, receipt) in &receipts {
            if failed.contains(&id.as_str()) {
                let retry = self
                    .client
                    .change_message_visibility()
                    .queue_url(&self.url)
                    .receipt_handle(receipt)
                    .visibility_timeout(i32::try_from(self.retry_delay.as_secs()).unwrap_or(0))
                    .send()
                    .await;
                match retry {
                    Ok(_) => {}
                    // The message is no longer ours to put back (another poller got it once it
                    // was visible again, or deleted it): it comes back, or is done, without us.
                    // The emulator lets two long-polling receivers of one FIFO queue take
                    // messages of the same group, which is how this happens locally.
                    Err(e)
                        if e.as_service_error().is_some_and(|s| {
                            s.is_receipt_handle_is_invalid() || s.is_message_not_inflight()
                        }) =>
                    {
                        tracing::warn!(message_id = %id, "a failed message was already taken back");
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                deletes.push(
                    DeleteMessageBatchRequestEntry::builder()
                        .id(deletes.len().to_string())
                        .receipt_handle(receipt)
                        .build()?,
                );
            }
        }
        if !deletes.is_empty() {
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(deletes))
                .send()
                .await?;
            if !out.failed.is_empty() {
                anyhow::bail!("{} message(s) could not be deleted", out.failed.len());
            }
        }
        Ok(PollReport {
            received: messages.len(),
            failed: failed.len(),
        })
    }
}

impl QueuePoller {
    /// Messages in the queue, visible or in flight.
    pub async fn outstanding(&self) -> anyhow::Result<u64> {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await?;
        let attrs = out.attributes.unwrap_or_default();
        let count = |a: A| -> u64 { attrs.get(&a).and_then(|v| v.parse().ok()).unwrap_or(0) };
        Ok(count(A::ApproximateNumberOfMessages) + count(A::ApproximateNumberOfMessagesNotVisible))
    }
}

/// Runs the aggregate worker until the events queue is empty: the local stack's way to say
/// "every accepted event is now in the usage", used by tests instead of waiting.
#[derive(Debug, Clone)]
pub struct Drainer {
    poller: QueuePoller,
    deps: aggregate::Deps,
}

/// The most polls one drain makes (R19): a queue that never empties is reported, not waited on.
const DRAIN_POLLS_MAX: usize = 10_000;

impl Drainer {
    /// A drainer of the events queue.
    pub fn new(poller: QueuePoller, deps: aggregate::Deps) -> Self {
        Self { poller, deps }
    }

    /// Aggregates until no message is left (received, in flight or waiting for a retry);
    /// returns how many messages it processed.
    pub async fn drain(&self) -> anyhow::Result<usize> {
        let mut processed = 0;
        for _ in 0..DRAIN_POLLS_MAX {
            let report = self
                .poller
                .poll_once(|e| aggregate::handler(&self.deps, e))
                .await?;
            processed += report.received - report.failed;
            if report.received == 0 && self.poller.outstanding().await? == 0 {
                return Ok(processed);
            }
        }
        anyhow::bail!("the events queue did not drain after {DRAIN_POLLS_MAX} polls")
    }
}
