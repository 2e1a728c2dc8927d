//! Typed configuration, read once from the environment at start-up (R16).

use std::env;

/// What a function needs to reach its AWS resources.
#[derive(Debug, Clone)]
pub struct Config {
    /// The billing table's name (`BILLING_TABLE`).
    pub billing_table: String,
}

/// A required variable was missing or empty.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is required")]
pub struct MissingVar(pub &'static str);

impl Config {
    /// Reads `BILLING_TABLE`; fails fast rather than guessing a default.
    pub fn from_env() -> Result<Self, MissingVar> {
        Ok(Self {
            billing_table: required("BILLING_TABLE")?,
        })
    }
}

/// A required, non-empty environment variable.
pub fn required(name: &'static str) -> Result<String, MissingVar> {
    env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(MissingVar(name))
}

/// The shared SDK configuration: region and credentials from the usual chain, and
/// `AWS_ENDPOINT_URL` honoured by the SDK itself (the emulator locally).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
