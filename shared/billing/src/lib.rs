//! # billing: the pure billing domain
//!
//! Everything a bill is computed from, as plain functions over validated types.
//!
//! ## Layout
//! - [`catalog`]: the records an organization configures (billable metric definitions, taxes,
//!   customers, organizations), validated on construction.
//!
//! ## Architecture Invariants
//! - No I/O: this crate depends on no AWS SDK, no lambda crate, no `serde_json`, no `tokio`.
//!   A test (`tests/no_io_dependencies.rs`) fails if that changes.
//! - Time and identifiers are inputs: nothing here reads a clock or generates an id.
//! - Money is `rust_decimal` for arithmetic and integer minor units for what is invoiced.
//! - No panics: library code never calls `unwrap`/`expect` (denied by the workspace lints).

pub mod catalog;
