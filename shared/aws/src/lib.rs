//! # billing-aws: the AWS adapters
//!
//! The only crate that imports `aws-sdk-*`. It stores and loads the domain records of the
//! `billing` crate and provisions the local stack.
//!
//! ## Layout
//! - [`config`]: typed configuration from the environment, loaded once.
//! - [`infra`]: the tables, queues and bus, one source of truth shared with `template.yaml`.
//! - [`provision`]: creates those resources in an emulator (the local stack and the tests).
//! - [`webhook_keys`]: the webhook signing key pair in Secrets Manager.
//! - [`redelivery`]: postponing a failed SQS message (retry backoff).
//! - [`dynamo`]: the billing table: organizations and API keys, metrics, customers, taxes,
//!   plans, subscriptions, invoices and the billing schedule (the clock's due index).
//! - [`billing_queue`]: the FIFO queue from the billing clock to the invoice worker.
//! - [`usage_pricing`]: a charge's usage over a window, restored from the usage states.
//! - [`tax_context`]: the taxes that apply to a subscription's charge fees.
//!
//! ## Architecture Invariants
//! - SDK types never cross the crate boundary: callers see domain types and [`StoreError`].
//! - Every read and write of an organization's records takes the organization id and builds
//!   the key from it, so no call can reach another tenant's items.
//! - Uniqueness (codes, external ids, API keys) is enforced by conditional writes, never by a
//!   read followed by a write.

pub mod billing_queue;
pub mod bus;
pub mod config;
pub mod context;
pub mod documents;
pub mod dynamo;
pub mod events;
pub mod handoff;
pub mod infra;
pub mod messages;
pub mod provision;
pub mod queue;
pub mod redelivery;
pub mod tax_context;
pub mod telemetry;
pub mod usage;
pub mod usage_pricing;
pub mod webhook_keys;

pub use dynamo::{BillingStore, StoreError};
