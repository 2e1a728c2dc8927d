//! # aggregate: accepted events become pre-aggregated usage, exactly once
//!
//! The SQS consumer of the FIFO events queue. A batch holds up to ten messages, each one event,
//! grouped by subscription. For each subscription the events are folded, per message, into
//! per-(charges period, charge, filter bucket, pricing group) states, then merged into the
//! stored state items: one read and at most one conditional write per item per batch.
//!
//! ## Exactly once
//! Each state item remembers the events folded into it (`applied`, by transaction id). The
//! queue is FIFO per subscription, so a message can only come back while it is among the last
//! ones processed for that subscription: a redelivered message, or a resent event (a replayed
//! request resends its event; SQS drops that within its deduplication window, an emulator may
//! not), finds its event in `applied` and is skipped, item by item, even if the worker crashed
//! between two writes. Unique-count values are written as value items whose last operation
//! wins, which is idempotent on its own.
//!
//! ## Pay-in-advance charges
//! An event feeding a pay-in-advance charge is billed when it is folded (SEMANTICS §4.9): its
//! instant fee is priced against the usage before it and written (an invoice of its own, or a
//! standalone fee) *before* the usage holds the event, under ids derived from the event, so
//! redeliveries and crashes between the two writes bill it once (see `apply`).
//!
//! ## Failures
//! A message that cannot be read (not JSON, unknown version) is a poison message: reported as a
//! batch item failure with its reason logged, redelivered until the queue's `maxReceiveCount`,
//! then moved to the dead-letter queue. A failing subscription fails its messages and, as SQS
//! FIFO requires, every later message of the batch.

mod apply;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use billing_aws::{BillingStore, bus::EventBus, messages::EventsMessage, usage::UsageStore};
use chrono::{DateTime, Utc};

pub use apply::{ApplyError, apply_group};

/// What the aggregate worker needs.
#[derive(Clone)]
pub struct Deps {
    /// Organizations, subscriptions, plans, metrics; and the invoices and fees of
    /// pay-in-advance charges.
    pub billing: BillingStore,
    /// Pre-aggregated usage.
    pub usage: UsageStore,
    /// The domain-event bus (`invoice.created`, `fee.created`); `None`: not published.
    pub bus: Option<EventBus>,
    /// "Now": when instant fees and invoices are created.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("billing", &self.billing)
            .field("usage", &self.usage)
            .field("bus", &self.bus)
            .finish_non_exhaustive()
    }
}

impl Deps {
    /// A worker over these stores, on the wall clock, publishing nothing.
    pub fn new(billing: BillingStore, usage: UsageStore) -> Self {
        Self {
            billing,
            usage,
            bus: None,
            clock: Arc::new(Utc::now),
        }
    }

    /// Publishes domain events on `bus`.
    pub fn with_bus(mut self, bus: EventBus) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Reads "now" from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>) -> Self {
        self.clock = clock;
        self
    }

    /// The invoicing use cases' view of these dependencies.
    pub(crate) fn invoicing(&self) -> invoicing::Deps {
        invoicing::Deps {
            store: self.billing.clone(),
            usage: self.usage.clone(),
            bus: self.bus.clone(),
            ids: Arc::new(|| uuid::Uuid::new_v4().to_string()),
            clock: self.clock.clone(),
        }
    }
}

/// One readable message: its id and content.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The SQS message id (stable across redeliveries).
    pub message_id: String,
    /// The events.
    pub message: EventsMessage,
}

fn parse(record: &SqsMessage) -> Result<Incoming, String> {
    let message_id = record
        .message_id
        .clone()
        .ok_or_else(|| "message without id".to_owned())?;
    let body = record
        .body
        .as_deref()
        .ok_or_else(|| "empty body".to_owned())?;
    let message: EventsMessage =
        serde_json::from_str(body).map_err(|e| format!("unreadable body: {e}"))?;
    if message.v != billing_aws::messages::EVENTS_MESSAGE_VERSION {
        return Err(format!("unknown message version {}", message.v));
    }
    Ok(Incoming {
        message_id,
        message,
    })
}

/// Handles one SQS batch; the response lists the messages to redeliver.
pub async fn handler(deps: &Deps, event: SqsEvent) -> SqsBatchResponse {
    let records = event.records;
    let mut failed_from: Option<usize> = None;
    let mut i = 0;
    while i < records.len() {
        // A run of consecutive readable messages of one subscription is one unit of work.
        let first = match parse(&records[i]) {
            Ok(m) => m,
            Err(reason) => {
                tracing::error!(
                    message_id = records[i].message_id.as_deref().unwrap_or(""),
                    receive_count = records[i]
                        .attributes
                        .get("ApproximateReceiveCount")
                        .map(String::as_str)
                        .unwrap_or(""),
                    reason,
                    "poison message"
                );
                failed_from = Some(i);
                break;
            }
        };
        let mut group = vec![first];
        let mut j = i + 1;
        while j < records.len() {
            match parse(&records[j]) {
                Ok(m)
                    if m.message.org == group[0].message.org
                        && m.message.sub == group[0].message.sub =>
                {
                    group.push(m);
                    j += 1;
                }
                _ => break,
            }
        }
        if let Err(e) = apply_group(deps, &group).await {
            tracing::error!(error.cause_chain = %e, subscription = %group[0].message.sub, "aggregation failed; the messages will be redelivered");
            failed_from = Some(i);
            break;
        }
        i = j;
    }
    let mut response = SqsBatchResponse::default();
    if let Some(from) = failed_from {
        for record in &records[from..] {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = record.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}
