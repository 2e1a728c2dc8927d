//! Request and response bodies per resource, with their conversions to and from the domain.

pub mod billable_metric;
pub mod credit_note;
pub mod customer;
pub mod estimated_fee;
pub mod event;
pub mod invoice;
pub mod organization;
pub mod plan;
pub mod subscription;
pub mod tax;
pub mod webhook_endpoint;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

/// Lago's date-time format: UTC, second precision, `Z`.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// For `Option<Option<T>>` fields: absent stays `None` (with `#[serde(default)]`), `null`
/// becomes `Some(None)`, a value `Some(Some(v))`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
