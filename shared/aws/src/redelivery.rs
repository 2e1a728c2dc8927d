//! Postponing a message an SQS worker failed, so its retries back off.
//!
//! Lambda leaves a message reported as a batch item failure in the queue, where it comes back
//! when its visibility timeout expires. A worker that calls [`Redelivery::postpone`] first
//! chooses when: a delay that grows with the message's receive count spaces the retries out
//! until the queue's `maxReceiveCount` moves it to the dead-letter queue.

use std::time::Duration;

use aws_sdk_sqs::Client;

/// The longest visibility timeout SQS accepts (12 hours).
pub const VISIBILITY_TIMEOUT_MAX: Duration = Duration::from_secs(12 * 60 * 60);

/// SQS refused or could not take the change.
#[derive(Debug, thiserror::Error)]
#[error("postponing the message failed: {0}")]
pub struct RedeliveryError(String);

/// The adapter for one queue.
#[derive(Debug, Clone)]
pub struct Redelivery {
    client: Client,
    url: String,
}

impl Redelivery {
    /// The adapter for the queue at `url`.
    pub fn new(sdk: &aws_config::SdkConfig, url: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            url: url.into(),
        }
    }

    /// Makes the received message with `receipt_handle` visible again after `delay` (at most
    /// [`VISIBILITY_TIMEOUT_MAX`]).
    pub async fn postpone(
        &self,
        receipt_handle: &str,
        delay: Duration,
    ) -> Result<(), RedeliveryError> {
        let seconds = delay.min(VISIBILITY_TIMEOUT_MAX).as_secs();
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(i32::try_from(seconds).unwrap_or(i32::MAX))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| RedeliveryError(aws_sdk_sqs::error::DisplayErrorContext(e).to_string()))
    }
}
