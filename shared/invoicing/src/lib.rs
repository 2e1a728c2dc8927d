//! # invoicing: from due subscriptions to finalized invoices
//!
//! The use cases of issue 5, shared by the billing clock, the invoice worker and the API.
//!
//! ## Layout
//! - [`run_billing_clock`]: finds the external subscription ids with something due (the due
//!   index, never a scan) and enqueues one unit of work for each.
//! - [`close_subscription`]: one unit of work: the clock's transitions (starts, downgrades,
//!   `ending_at`), every invoice slot due, drafts whose grace period ended.
//! - [`bill_instant_fee`]: one event on a pay-in-advance charge becomes an invoice of its own
//!   or a standalone fee, once (called by the aggregate worker before it stores the event).
//! - [`price_slot`]: what one slot's invoice holds, computed from the catalog and the usage
//!   states (creation and refresh compute it the same way).
//! - [`finalize_invoice`], [`refresh_invoice`], [`void_invoice`], [`update_invoice`]: the
//!   invoice lifecycle.
//! - [`credit_terminated_subscription`]: the automatic credit note of a terminated
//!   pay-in-advance plan, once; [`spend_credit_notes`]: credit notes spent on an invoice in
//!   its finalizing transaction; [`credit_note_events`]: `credit_note.created`.
//! - [`invoice_document`]: the PDF of an invoice, rendered in Rust and stored in S3.
//! - [`invoice_events`], [`subscription_events`]: the domain events published on the bus.
//!
//! ## Architecture Invariants
//! - An invoice's Lago id derives from `(organization, subscription, slot)`; creating it is a
//!   conditional write, so one slot gives one invoice whoever runs it and however often.
//! - A number is handed out only in the transaction that writes the finalized invoice and
//!   moves the counters from the values read: numbers have no gap and no duplicate.
//! - Time is an input: every use case takes `now`; nothing here reads a clock.

pub mod bill_instant_fee;
pub mod close_subscription;
pub mod credit_note_events;
pub mod credit_terminated_subscription;
pub mod finalize_invoice;
pub mod invoice_document;
pub mod invoice_events;
pub mod price_slot;
pub mod refresh_invoice;
pub mod run_billing_clock;
pub mod spend_credit_notes;
pub mod subscription_events;
pub mod update_invoice;
pub mod void_invoice;

use std::sync::Arc;

use billing_aws::{BillingStore, StoreError, bus::EventBus, usage::UsageStore};
use chrono::{DateTime, Utc};

/// What the invoicing use cases need.
#[derive(Clone)]
pub struct Deps {
    /// The billing table.
    pub store: BillingStore,
    /// Pre-aggregated usage.
    pub usage: UsageStore,
    /// The domain-event bus (`None`: events are not published, e.g. in a tool).
    pub bus: Option<EventBus>,
    /// A new random Lago id (metadata entries).
    pub ids: Arc<dyn Fn() -> String + Send + Sync>,
    /// The wall clock. Only leases read it: a lease expires in real time, whatever instant
    /// is being billed (a late or replayed billing run bills an instant in the past).
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// What can go wrong, as a caller can act on it.
#[derive(Debug, thiserror::Error)]
pub enum InvoicingError {
    /// No such record in the organization.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The invoice's state does not allow the action (Lago's 405 code).
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// A field of the request is invalid (Lago's 422 field and code).
    #[error("invalid {field}: {code}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The error code.
        code: &'static str,
    },
    /// Concurrent writers kept winning; retry later.
    #[error("busy: {0}")]
    Busy(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Usage could not be restored.
    #[error(transparent)]
    Usage(#[from] billing_aws::usage_pricing::UsagePricingError),
    /// The invoice could not be computed.
    #[error(transparent)]
    Compute(#[from] billing::invoice::InvoiceComputeError),
    /// A period could not be computed.
    #[error(transparent)]
    Period(#[from] billing::period::PeriodError),
    /// Domain events could not be published.
    #[error(transparent)]
    Publish(#[from] billing_aws::bus::PublishError),
    /// The billing queue refused messages.
    #[error(transparent)]
    Enqueue(#[from] billing_aws::queue::EnqueueError),
    /// Stored data contradicts itself.
    #[error("inconsistent data: {0}")]
    Corrupt(String),
}

/// A UUID-shaped id derived from `parts` (SHA-256, version 8 "custom" layout): the same parts
/// always give the same id.
pub fn derived_uuid(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let mut b: [u8; 16] = [0; 16];
    b.copy_from_slice(&h.finalize()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let x = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// The Lago id of the invoice closing `slot_key` of subscription `subscription_id`.
pub fn invoice_id(org_id: &str, subscription_id: &str, slot_key: &str) -> String {
    derived_uuid(&["invoice", org_id, subscription_id, slot_key])
}

/// How long a numbering lease lasts, in milliseconds: longer than one numbering (a read and a
/// transaction), short enough that a crashed holder delays the others only briefly.
pub const NUMBERING_LEASE_MS: i64 = 10_000;

/// How many times a finalization asks for the numbering lease before giving up (R19); with
/// the back-off below, about a minute.
pub const NUMBERING_LEASE_ATTEMPTS: u32 = 1_200;

/// Waits for the organization's numbering lease and returns its owner id.
///
/// Numbering stays correct without it (the counters move in the finalizing transaction, on
/// the condition that they hold the values read); the lease turns a burst of concurrent
/// finalizations into a queue instead of rounds of cancelled transactions.
///
/// The lease is stamped and judged expired by the wall clock ([`Deps::clock`]), never by the
/// billing instant: a worker billing an earlier instant than a crashed holder's stamp would
/// otherwise see its lease as unexpired for as long as it keeps billing the past.
pub async fn lock_numbering(deps: &Deps, org_id: &str) -> Result<String, InvoicingError> {
    let owner = (deps.ids)();
    for attempt in 0..NUMBERING_LEASE_ATTEMPTS {
        let now = (deps.clock)();
        if deps
            .store
            .try_lock_numbering(org_id, &owner, now, NUMBERING_LEASE_MS)
            .await?
        {
            return Ok(owner);
        }
        // Back off 5..50 ms, spread by the owner id so waiters do not retry in step.
        let spread = u64::from(owner.as_bytes().first().copied().unwrap_or(0) % 10);
        let wait = 5 + u64::from(attempt.min(9)) * 5 + spread;
        tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    }
    Err(InvoicingError::Busy("invoice numbering lease"))
}
