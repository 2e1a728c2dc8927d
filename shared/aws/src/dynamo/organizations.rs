//! Organizations and their API keys.
//!
//! An API key is stored only as its SHA-256 digest (`pk = APIKEY#<hex>`), pointing at the
//! organization; the key itself is shown once, at creation, and never stored or logged.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use billing::catalog::organization::{
    DocumentNumbering, Organization, OrganizationProfile, OrganizationSettings,
};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{BillingStore, StoreError, mapping::check_size, org_pk};

/// The digest under which an API key is stored.
pub fn api_key_digest(api_key: &str) -> String {
    hex::encode(Sha256::digest(api_key.as_bytes()))
}

#[derive(Serialize, Deserialize)]
struct OrganizationItem {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
    version: u64,
    default_currency: String,
    timezone: String,
    document_numbering: String,
    document_number_prefix: String,
    net_payment_term: u32,
    invoice_grace_period: u32,
    document_locale: String,
    invoice_footer: Option<String>,
    finalize_zero_amount_invoice: bool,
    email_settings: Vec<String>,
    profile: HashMap<String, String>,
}

#[derive(Serialize, Deserialize)]
struct ApiKeyItem {
    organization_id: String,
    created_at: DateTime<Utc>,
}

fn profile_pairs(p: &OrganizationProfile) -> [(&'static str, &Option<String>); 11] {
    [
        ("email", &p.email),
        ("legal_name", &p.legal_name),
        ("legal_number", &p.legal_number),
        ("tax_identification_number", &p.tax_identification_number),
        ("address_line1", &p.address_line1),
        ("address_line2", &p.address_line2),
        ("city", &p.city),
        ("state", &p.state),
        ("zipcode", &p.zipcode),
        ("country", &p.country),
        ("webhook_url", &p.webhook_url),
    ]
}

fn to_item(org: &Organization) -> OrganizationItem {
    let s = &org.settings;
    OrganizationItem {
        id: org.id.clone(),
        name: org.name.clone(),
        created_at: org.created_at,
        version: org.version,
        default_currency: s.default_currency.clone(),
        timezone: s.timezone.name().to_owned(),
        document_numbering: s.document_numbering.as_str().to_owned(),
        document_number_prefix: s.document_number_prefix.clone(),
        net_payment_term: s.net_payment_term,
        invoice_grace_period: s.invoice_grace_period,
        document_locale: s.document_locale.clone(),
        invoice_footer: s.invoice_footer.clone(),
        finalize_zero_amount_invoice: s.finalize_zero_amount_invoice,
        email_settings: s.email_settings.clone(),
        profile: profile_pairs(&s.profile)
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
            .collect(),
    }
}

fn from_item(mut item: OrganizationItem) -> Result<Organization, StoreError> {
    let mut take = |k: &str| item.profile.remove(k);
    let profile = OrganizationProfile {
        email: take("email"),
        legal_name: take("legal_name"),
        legal_number: take("legal_number"),
        tax_identification_number: take("tax_identification_number"),
        address_line1: take("address_line1"),
        address_line2: take("address_line2"),
        city: take("city"),
        state: take("state"),
        zipcode: take("zipcode"),
        country: take("country"),
        webhook_url: take("webhook_url"),
    };
    let timezone: Tz = item
        .timezone
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("organization timezone {}", item.timezone)))?;
    Ok(Organization {
        id: item.id,
        name: item.name,
        created_at: item.created_at,
        version: item.version,
        settings: OrganizationSettings {
            profile,
            default_currency: item.default_currency,
            timezone,
            document_numbering: if item.document_numbering == "per_organization" {
                DocumentNumbering::PerOrganization
            } else {
                DocumentNumbering::PerCustomer
            },
            document_number_prefix: item.document_number_prefix,
            net_payment_term: item.net_payment_term,
            invoice_grace_period: item.invoice_grace_period,
            document_locale: item.document_locale,
            invoice_footer: item.invoice_footer,
            finalize_zero_amount_invoice: item.finalize_zero_amount_invoice,
            email_settings: item.email_settings,
        },
    })
}

fn corrupt(e: serde_dynamo::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

impl BillingStore {
    /// Creates an organization and its first API key. `AlreadyExists` if the key is already
    /// registered (to any organization); nothing is left behind then.
    ///
    /// Two conditional puts, the key last, rather than a transaction: no key ever points at a
    /// missing organization, and an organization whose key could not be written is removed
    /// (or, if that fails too, unreachable). It costs half the write units, and it does not
    /// lean on the emulator's transactions, which are not isolated: under concurrent requests
    /// moto answers some of them with a 500, and a cancelled one restores a stale copy of the
    /// table.
    pub async fn create_organization(
        &self,
        org: &Organization,
        api_key: &str,
    ) -> Result<(), StoreError> {
        let mut org_item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(to_item(org)).map_err(corrupt)?;
        org_item.insert("pk".into(), AttributeValue::S(org_pk(&org.id)));
        org_item.insert("sk".into(), AttributeValue::S("ORG".into()));
        let org_item = check_size(org_item)?;
        let mut key_item: HashMap<String, AttributeValue> = serde_dynamo::to_item(ApiKeyItem {
            organization_id: org.id.clone(),
            created_at: org.created_at,
        })
        .map_err(corrupt)?;
        key_item.insert(
            "pk".into(),
            AttributeValue::S(format!("APIKEY#{}", api_key_digest(api_key))),
        );
        key_item.insert("sk".into(), AttributeValue::S("APIKEY".into()));
        self.put_new(org_item).await?;
        if let Err(e) = self.put_new(key_item).await {
            let removed = self
                .client()
                .delete_item()
                .table_name(self.table())
                .key("pk", AttributeValue::S(org_pk(&org.id)))
                .key("sk", AttributeValue::S("ORG".into()))
                .send()
                .await;
            if let Err(cause) = removed {
                tracing::warn!(
                    error.cause_chain = %aws_sdk_dynamodb::error::DisplayErrorContext(cause),
                    organization_id = %org.id,
                    "an organization without its key was left behind"
                );
            }
            return Err(e);
        }
        Ok(())
    }

    /// Writes an item whose key must be new; `AlreadyExists` otherwise.
    async fn put_new(&self, item: HashMap<String, AttributeValue>) -> Result<(), StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The organization an API key belongs to; `NotFound` for an unknown key.
    pub async fn organization_for_key(&self, api_key: &str) -> Result<Organization, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(
                "pk",
                AttributeValue::S(format!("APIKEY#{}", api_key_digest(api_key))),
            )
            .key("sk", AttributeValue::S("APIKEY".into()))
            .send()
            .await?;
        let item: ApiKeyItem = match out.item {
            Some(item) => serde_dynamo::from_item(item).map_err(corrupt)?,
            None => return Err(StoreError::NotFound),
        };
        self.organization(&item.organization_id).await
    }

    /// Reads an organization by id.
    pub async fn organization(&self, org_id: &str) -> Result<Organization, StoreError> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", AttributeValue::S(org_pk(org_id)))
            .key("sk", AttributeValue::S("ORG".into()))
            .consistent_read(true)
            .send()
            .await?;
        match out.item {
            Some(item) => from_item(serde_dynamo::from_item(item).map_err(corrupt)?),
            None => Err(StoreError::NotFound),
        }
    }

    /// Replaces an organization's settings read at `org.version - 1`.
    pub async fn replace_organization(&self, org: &Organization) -> Result<(), StoreError> {
        let mut item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(to_item(org)).map_err(corrupt)?;
        item.insert("pk".into(), AttributeValue::S(org_pk(&org.id)));
        item.insert("sk".into(), AttributeValue::S("ORG".into()));
        let item = check_size(item)?;
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(
                ":v",
                AttributeValue::N(org.version.saturating_sub(1).to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }
}
