//! The domain-event bus: every state change (invoice.created, subscription.started, ...) is
//! published to EventBridge, where rules route it to the webhook dispatcher and other workers.
//!
//! An entry carries Lago's webhook envelope fields so the dispatcher only signs and sends.
//! `PutEvents` takes at most ten entries and [`PUT_EVENTS_MAX_BYTES`] per call; entries the bus
//! refuses are reported as an error, never dropped (R14).
//!
//! ## Large objects
//! An invoice with many fees can outgrow EventBridge's 256 KB. An event whose entry would be
//! larger than [`INLINE_MAX_BYTES`] travels as a claim check: its object is stored in the
//! overflow bucket under [`overflow_key`] and the entry carries `object_key` instead; the
//! dispatcher reads the object back before it builds the webhook body. Without an overflow
//! bucket such an event is an error, never a truncated webhook.

use aws_sdk_eventbridge::{Client, types::PutEventsRequestEntry};
use serde::{Deserialize, Serialize};

use crate::documents::DocumentStore;

/// EventBridge's limit on one `PutEvents` request, its entries' sizes summed, in bytes.
pub const PUT_EVENTS_MAX_BYTES: usize = 256 * 1024;

/// The largest entry sent inline; a larger one's object goes through the overflow bucket.
/// Below [`PUT_EVENTS_MAX_BYTES`] with room for the envelope EventBridge adds when it routes
/// the event to the webhook queue (SQS takes 256 KB too).
pub const INLINE_MAX_BYTES: usize = 192 * 1024;

const _: () = assert!(INLINE_MAX_BYTES < PUT_EVENTS_MAX_BYTES);

/// The size EventBridge counts for an entry with `detail`: 14 bytes for the time, the source,
/// the detail type and the detail (UTF-8 bytes).
pub fn entry_size(detail: &str) -> usize {
    14 + EVENT_SOURCE.len() + DETAIL_TYPE.len() + detail.len()
}

/// Where the object of an event too large for the bus is kept: under the organization and
/// the event's unique key, so a republished event overwrites its own object.
pub fn overflow_key(event: &DomainEvent) -> String {
    format!("events/{}/{}.json", event.organization_id, event.unique_key)
}

/// Groups entry sizes into `PutEvents` calls of at most ten entries and
/// [`PUT_EVENTS_MAX_BYTES`], in order; returns each call's entry count.
pub fn batches(sizes: &[usize]) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut count, mut bytes) = (0usize, 0usize);
    for &size in sizes {
        if count > 0 && (count == 10 || bytes + size > PUT_EVENTS_MAX_BYTES) {
            out.push(count);
            (count, bytes) = (0, 0);
        }
        count += 1;
        bytes += size;
    }
    if count > 0 {
        out.push(count);
    }
    out
}

/// The `source` of every entry this system puts on the bus.
pub const EVENT_SOURCE: &str = "lago.billing";

/// The `detail-type` of webhook-bearing domain events (rules match on it).
pub const DETAIL_TYPE: &str = "lago.webhook";

/// One domain event, as the bus carries it in `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEvent {
    /// The organization it belongs to (webhooks go to this organization's endpoints only).
    pub organization_id: String,
    /// Lago's `webhook_type` (`invoice.created`, ...).
    pub webhook_type: String,
    /// Lago's `object_type` (`invoice`, `subscription`, `fee`, ...).
    pub object_type: String,
    /// The serialized object, as the API returns it.
    pub object: serde_json::Value,
    /// A key unique to this change, stable across retries (`X-Lago-Unique-Key`).
    pub unique_key: String,
    /// Set when the object was too large for the bus: where it is stored (see
    /// [`overflow_key`]); `object` is then null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_key: Option<String>,
}

/// The bus refused or could not take some entries.
#[derive(Debug, thiserror::Error)]
#[error("{failed} domain event(s) not published: {reason}")]
pub struct PublishError {
    /// How many entries failed.
    pub failed: usize,
    /// The last reason given.
    pub reason: String,
}

/// The EventBridge adapter.
#[derive(Debug, Clone)]
pub struct EventBus {
    client: Client,
    bus_name: String,
    overflow: Option<DocumentStore>,
}

impl EventBus {
    /// A publisher to the bus named `bus_name`.
    pub fn new(sdk: &aws_config::SdkConfig, bus_name: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            bus_name: bus_name.into(),
            overflow: None,
        }
    }

    /// The bus of `EVENT_BUS_NAME`, its overflow bucket `DOCUMENTS_BUCKET`: how every
    /// function publishes.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Result<Self, crate::config::MissingVar> {
        let bus = Self::new(sdk, crate::config::required(crate::infra::BUS.env_var)?);
        let bucket = crate::config::required(crate::infra::DOCUMENTS_BUCKET.env_var)?;
        Ok(bus.with_overflow(DocumentStore::new(sdk, bucket)))
    }

    /// Keeps the objects of events too large for the bus in `documents` (see the module
    /// documentation).
    pub fn with_overflow(mut self, documents: DocumentStore) -> Self {
        self.overflow = Some(documents);
        self
    }

    /// A publisher through an EventBridge client built elsewhere (tests give it one with an
    /// interceptor, to make the bus fail on demand).
    pub fn with_client(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
            overflow: None,
        }
    }

    /// The bus name.
    pub fn name(&self) -> &str {
        &self.bus_name
    }

    /// The `detail` of `event` as sent: inline, or with its object moved to the overflow
    /// bucket when the entry would be larger than [`INLINE_MAX_BYTES`].
    async fn detail(&self, event: &DomainEvent) -> Result<String, PublishError> {
        let fail = |reason: String| PublishError { failed: 1, reason };
        let detail = serde_json::to_string(event).map_err(|e| fail(e.to_string()))?;
        if entry_size(&detail) <= INLINE_MAX_BYTES {
            return Ok(detail);
        }
        let Some(documents) = &self.overflow else {
            return Err(fail(format!(
                "a {} event of {} bytes is too large for the bus and no overflow bucket is set",
                event.webhook_type,
                detail.len()
            )));
        };
        let key = overflow_key(event);
        let object = serde_json::to_vec(&event.object).map_err(|e| fail(e.to_string()))?;
        documents
            .put_json(&key, object)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let claim = DomainEvent {
            object: serde_json::Value::Null,
            object_key: Some(key),
            ..event.clone()
        };
        serde_json::to_string(&claim).map_err(|e| fail(e.to_string()))
    }

    /// Publishes events in calls of at most ten entries and [`PUT_EVENTS_MAX_BYTES`],
    /// retrying refused entries once.
    pub async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        let mut details = Vec::with_capacity(events.len());
        for e in events {
            details.push(self.detail(e).await?);
        }
        let sizes: Vec<usize> = details.iter().map(|d| entry_size(d)).collect();
        let mut rest = details.as_slice();
        for count in batches(&sizes) {
            let (chunk, tail) = rest.split_at(count);
            rest = tail;
            let mut pending: Vec<&String> = chunk.iter().collect();
            let mut reason = String::new();
            for _ in 0..2 {
                if pending.is_empty() {
                    break;
                }
                let entries = pending
                    .iter()
                    .map(|detail| {
                        PutEventsRequestEntry::builder()
                            .event_bus_name(&self.bus_name)
                            .source(EVENT_SOURCE)
                            .detail_type(DETAIL_TYPE)
                            .detail(detail.as_str())
                            .build()
                    })
                    .collect();
                match self
                    .client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => {
                        let failed: Vec<&String> = out
                            .entries()
                            .iter()
                            .zip(pending.iter())
                            .filter(|(r, _)| r.error_code().is_some())
                            .map(|(r, d)| {
                                reason = r.error_message().unwrap_or_default().to_owned();
                                *d
                            })
                            .collect();
                        pending = failed;
                    }
                    Err(e) => {
                        reason = aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string();
                    }
                }
            }
            if !pending.is_empty() {
                return Err(PublishError {
                    failed: pending.len(),
                    reason,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_hold_at_most_ten_entries_and_256_kb() {
        assert_eq!(batches(&[]), Vec::<usize>::new());
        assert_eq!(batches(&[100; 25]), [10, 10, 5]);
        // Two 150 KB entries do not fit one call; a third small one joins the second.
        let big = 150 * 1024;
        assert_eq!(batches(&[big, big, 1000]), [1, 2]);
        // Exactly the limit fits.
        let half = PUT_EVENTS_MAX_BYTES / 2;
        assert_eq!(batches(&[half, half, 1]), [2, 1]);
        // An entry alone is always sent (the caller keeps entries under the limit).
        assert_eq!(batches(&[INLINE_MAX_BYTES, INLINE_MAX_BYTES]), [1, 1]);
    }

    #[test]
    fn an_entry_is_counted_as_eventbridge_counts_it() {
        assert_eq!(
            entry_size("{}"),
            14 + "lago.billing".len() + "lago.webhook".len() + 2
        );
    }
}
