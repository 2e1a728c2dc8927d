//! Organizations and API keys from the command line.

use billing::catalog::organization::{Organization, OrganizationSettings};
use billing_aws::{BillingStore, StoreError};
use chrono::Utc;

/// A fresh API key: 128 random bits, hex, with a recognisable prefix.
pub fn new_api_key() -> String {
    format!("lago_{}", uuid::Uuid::new_v4().simple())
}

/// Creates an organization named `name` with `api_key`; returns it.
pub async fn create(
    store: &BillingStore,
    name: &str,
    api_key: &str,
) -> Result<Organization, StoreError> {
    let org = Organization {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        created_at: Utc::now(),
        settings: OrganizationSettings::new(name),
        version: 1,
    };
    store.create_organization(&org, api_key).await?;
    Ok(org)
}

/// The organization of `api_key`, created (named `name`) if the key is not registered yet.
pub async fn ensure(
    store: &BillingStore,
    name: &str,
    api_key: &str,
) -> Result<Organization, StoreError> {
    match store.organization_for_key(api_key).await {
        Ok(org) => Ok(org),
        Err(StoreError::NotFound) => match create(store, name, api_key).await {
            Err(StoreError::AlreadyExists) => store.organization_for_key(api_key).await,
            other => other,
        },
        Err(e) => Err(e),
    }
}
