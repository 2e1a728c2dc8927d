//! # billing: the pure billing domain
//!
//! Everything a bill is computed from, as plain functions over validated types.
//!
//! ## Layout
//! - [`catalog`]: the records an organization configures (billable metric definitions, taxes,
//!   customers, organizations), validated on construction.
//! - [`money`]: currencies (ISO 4217 exponents), [`money::PreciseAmount`] for pricing maths,
//!   [`money::Money`] (integer minor units) for invoices, the one rounding door, and
//!   largest-remainder allocation.
//! - [`aggregation`]: events to units. One incremental, mergeable state per aggregation type,
//!   the prorated variants, metric rounding, charge filters (most specific wins) and pricing
//!   groups.
//! - [`charge_model`]: units to amounts. Charge properties parsed and validated from wire
//!   strings, the seven charge models, prorated graduated, pay-in-advance deltas, the amount to
//!   fee step and the minimum-spend true-up.
//! - [`usage`]: which charges an event feeds, state keys, and a charge's usage priced per
//!   filter bucket and pricing group (current usage and invoices).
//! - [`instant_fee`]: the fee one event would create on a pay-in-advance charge, priced
//!   against its period's usage (`POST /events/estimate_fees`).
//! - [`period`]: billing periods (calendar and anniversary, five intervals, customer
//!   timezones), Lago's day counting, and upgrade/downgrade classification.
//! - [`subscription_fee`]: the subscription fee of a period (proration, trials, terminations,
//!   upgrades) and the termination credit of a pay-in-advance plan.
//! - [`invoice_totals`]: fees → progressive-billing credit → coupons → taxes → credit notes →
//!   prepaid credits, with Lago's rounding at each step.
//! - [`invoice`]: subscription invoices: the slots a subscription owes, their fees and
//!   totals, and the invoice lifecycle (draft, finalized, voided).
//! - [`invoice_number`]: invoice numbers and sequences.
//! - [`credit_note`]: the automatic credit note of a terminated pay-in-advance plan, and
//!   credit notes spent on the customer's next invoices.
//!
//! ## Architecture Invariants
//! - No I/O: this crate depends on no AWS SDK, no lambda crate, no `serde_json`, no `tokio`.
//!   A test (`tests/no_io_dependencies.rs`) fails if that changes.
//! - Time and identifiers are inputs: nothing here reads a clock or generates an id.
//! - Money is `rust_decimal` for arithmetic and integer minor units for what is invoiced; the
//!   only conversion is [`money::PreciseAmount::round`] (or [`money::round_cents`] for values
//!   Lago computes in cents), always with a named [`money::RoundingRule`].
//! - Aggregation states are order-independent: folding events in any order and merging partial
//!   states equals one fold over all events.
//! - Behaviour is Lago's (`../shared/lago/SEMANTICS.md`); every conformance vector of
//!   `vectors.json` runs as a test (`tests/lago_vectors.rs`).
//! - No panics: library code never calls `unwrap`/`expect` (denied by the workspace lints).

pub mod aggregation;
pub mod catalog;
pub mod charge_model;
pub mod credit_note;
pub mod instant_fee;
pub mod invoice;
pub mod invoice_number;
pub mod invoice_totals;
pub mod money;
pub mod period;
pub mod subscription_fee;
pub mod usage;
