//! Handing stored events to the events queue, shared by ingestion and the sweep.
//!
//! One message per event, so every send of an event (first try, client retry, sweep) carries
//! the same FIFO deduplication id and the queue drops a resend that arrives within its
//! five-minute window. When the queue cannot take an event, the event is marked `unsent`
//! (a write only on that rare path) so the sweep and the client's retry resend it.

use serde_json::{Map, Value};

use crate::{
    events::{EventStore, StoredEvent},
    messages::{EVENTS_MESSAGE_VERSION, EventsMessage, QueuedEvent},
    queue::EventQueue,
};

/// Some events could not be queued; they are marked for the sweep.
#[derive(Debug, thiserror::Error)]
#[error("{0} event(s) not queued")]
pub struct HandoffError(pub usize);

/// A property value as aggregation reads it: strings as they are, numbers as their JSON text.
pub fn property_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The queue message of one subscription's stored events.
pub fn message(org: &str, sub: &str, events: &[&StoredEvent]) -> EventsMessage {
    EventsMessage {
        v: EVENTS_MESSAGE_VERSION,
        org: org.to_owned(),
        sub: sub.to_owned(),
        events: events
            .iter()
            .enumerate()
            .map(|(i, e)| QueuedEvent {
                tx: e.transaction_id.clone(),
                code: e.code.clone(),
                ts_ms: e.timestamp_ms,
                seq: u64::try_from(e.created_at_ms)
                    .unwrap_or(0)
                    .saturating_mul(1000)
                    .saturating_add(i as u64),
                props: serde_json::from_str::<Map<String, Value>>(&e.properties)
                    .unwrap_or_default()
                    .iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), property_text(v)))
                    .collect(),
                amt: e.precise_total_amount_cents.clone(),
            })
            .collect(),
    }
}

/// How long after an event was stored a replay may resend it blindly: inside SQS's five-minute
/// deduplication window (with a margin), a resend of a message that did arrive is dropped.
pub const RESEND_WINDOW_MS: i64 = 4 * 60 * 1000;

/// Sends events, one message per event (so every send of an event carries the same
/// deduplication id, whoever sends it). On failure marks them `unsent` for the sweep and the
/// client's retry, and reports the request as unavailable; resent events leave the index.
pub async fn enqueue(
    store: &EventStore,
    queue: &EventQueue,
    org: &str,
    events: &[StoredEvent],
    flagged: &[bool],
) -> Result<(), HandoffError> {
    if events.is_empty() {
        return Ok(());
    }
    let messages: Vec<EventsMessage> = events
        .iter()
        .map(|e| message(org, &e.external_subscription_id, &[e]))
        .collect();
    let failed: Vec<usize> = match queue.send(&messages).await {
        Ok(_) => Vec::new(),
        Err(e) => {
            tracing::error!(error.cause_chain = %e, "enqueue failed");
            e.indexes
        }
    };
    for (i, event) in events.iter().enumerate() {
        let was_flagged = flagged.get(i).copied().unwrap_or(false);
        let result = if failed.contains(&i) {
            if was_flagged {
                Ok(())
            } else {
                store.mark_unsent(event).await
            }
        } else if was_flagged {
            store.clear_unsent(event).await
        } else {
            Ok(())
        };
        if let Err(e) = result {
            // Within the resend window the client's retry still resends it.
            tracing::error!(error.cause_chain = %e, transaction_id = %event.transaction_id, "could not update the unsent mark");
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(HandoffError(failed.len()))
    }
}
