//! The domain-event bus: every state change (invoice.created, subscription.started, ...) is
//! published to EventBridge, where rules route it to the webhook dispatcher and other workers.
//!
//! An entry carries Lago's webhook envelope fields so the dispatcher only signs and sends.
//! `PutEvents` takes at most ten entries per call; entries the bus refuses are reported as an
//! error, never dropped (R14).

use aws_sdk_eventbridge::{Client, types::PutEventsRequestEntry};
use serde::{Deserialize, Serialize};

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
}

impl EventBus {
    /// A publisher to the bus named `bus_name`.
    pub fn new(sdk: &aws_config::SdkConfig, bus_name: impl Into<String>) -> Self {
        Self {
            client: Client::new(sdk),
            bus_name: bus_name.into(),
        }
    }

    /// A publisher through an EventBridge client built elsewhere (tests give it one with an
    /// interceptor, to make the bus fail on demand).
    pub fn with_client(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }

    /// The bus name.
    pub fn name(&self) -> &str {
        &self.bus_name
    }

    /// Publishes events, ten per call, retrying refused entries once.
    pub async fn publish(&self, events: &[DomainEvent]) -> Result<(), PublishError> {
        for chunk in events.chunks(10) {
            let mut pending: Vec<&DomainEvent> = chunk.iter().collect();
            let mut reason = String::new();
            for _ in 0..2 {
                if pending.is_empty() {
                    break;
                }
                let mut entries = Vec::with_capacity(pending.len());
                for e in &pending {
                    let detail = serde_json::to_string(e).map_err(|err| PublishError {
                        failed: pending.len(),
                        reason: err.to_string(),
                    })?;
                    entries.push(
                        PutEventsRequestEntry::builder()
                            .event_bus_name(&self.bus_name)
                            .source(EVENT_SOURCE)
                            .detail_type(DETAIL_TYPE)
                            .detail(detail)
                            .build(),
                    );
                }
                match self
                    .client
                    .put_events()
                    .set_entries(Some(entries))
                    .send()
                    .await
                {
                    Ok(out) => {
                        let failed: Vec<&DomainEvent> = out
                            .entries()
                            .iter()
                            .zip(pending.iter())
                            .filter(|(r, _)| r.error_code().is_some())
                            .map(|(r, e)| {
                                reason = r.error_message().unwrap_or_default().to_owned();
                                *e
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
