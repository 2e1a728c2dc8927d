//! # lago: the Lago REST API v1 wire contract
//!
//! What goes over HTTP, exactly as Lago's clients expect it.
//!
//! ## Layout
//! - [`error`]: [`ApiError`], the one place where failures become Lago's error envelope.
//! - [`http`]: request-side glue: bearer tokens, root-key bodies, paging, list envelopes.
//! - [`dto`]: request and response bodies per resource, and their conversion to and from the
//!   `billing` domain (`convert` functions live beside each DTO).
//!
//! ## Architecture Invariants
//! - Domain types never derive `Serialize`/`Deserialize`; every wire shape is a DTO here.
//! - Amounts in minor units are JSON integers, prices and quantities decimal strings, tax
//!   rates numbers on output (API_CONTRACT §2.7).
//! - Handlers never build a response by hand: success is [`http::ok`], failure [`ApiError`].

#![recursion_limit = "256"]

pub mod dto;
pub mod edge;
pub mod error;
pub mod http;

pub use error::ApiError;
