//! Versioned payloads carried by the queues. A message body is JSON; its `v` field names the
//! version, so a worker can refuse what it does not understand instead of misreading it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The current version of [`EventsMessage`].
pub const EVENTS_MESSAGE_VERSION: u32 = 1;

/// Accepted events of one subscription, handed from ingest to aggregation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventsMessage {
    /// Payload version ([`EVENTS_MESSAGE_VERSION`]).
    pub v: u32,
    /// The organization id.
    pub org: String,
    /// The external subscription id (the FIFO message group, with the organization).
    pub sub: String,
    /// The events, in ingestion order.
    pub events: Vec<QueuedEvent>,
}

/// One accepted event as the aggregator needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedEvent {
    /// `transaction_id`.
    pub tx: String,
    /// The billable metric code.
    pub code: String,
    /// The event timestamp, Unix milliseconds.
    pub ts_ms: i64,
    /// When it was accepted, Unix milliseconds (breaks timestamp ties).
    pub seq: u64,
    /// Properties as strings (numbers keep their JSON text).
    pub props: BTreeMap<String, String>,
    /// `precise_total_amount_cents`, for dynamic charges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amt: Option<String>,
}

impl EventsMessage {
    /// The FIFO message group: one per subscription, hashed to fit SQS's 128 characters.
    pub fn group_id(&self) -> String {
        digest(&[&self.org, &self.sub])
    }

    /// The FIFO deduplication id: the same events of the same subscription give the same id,
    /// so a resend within SQS's five-minute window is dropped by the queue.
    pub fn deduplication_id(&self) -> String {
        let mut parts: Vec<&str> = vec![&self.org, &self.sub];
        parts.extend(self.events.iter().map(|e| e.tx.as_str()));
        digest(&parts)
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
