//! `organization` bodies (API_CONTRACT §4.14).

use billing::catalog::{
    Record,
    customer::Patch,
    organization::{Organization, OrganizationPatch},
    tax::Tax,
};
use serde::{Deserialize, Serialize};

use super::{nullable, tax::TaxDto, timestamp};

type Field<T> = Option<Option<T>>;

/// `billing_configuration` of `PUT /organizations`.
#[derive(Debug, Default, Deserialize)]
pub struct OrganizationBillingInput {
    #[serde(default, deserialize_with = "nullable")]
    invoice_footer: Field<String>,
    invoice_grace_period: Option<i64>,
    document_locale: Option<String>,
}

/// `{"organization": {...}}` of `PUT /organizations`.
#[derive(Debug, Default, Deserialize)]
pub struct OrganizationInputDto {
    #[serde(default, deserialize_with = "nullable")]
    webhook_url: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    country: Field<String>,
    default_currency: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    address_line1: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    address_line2: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    state: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    zipcode: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    email: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    city: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    legal_name: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    legal_number: Field<String>,
    document_numbering: Option<String>,
    document_number_prefix: Option<String>,
    net_payment_term: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    tax_identification_number: Field<String>,
    timezone: Option<String>,
    email_settings: Option<Vec<String>>,
    billing_configuration: Option<OrganizationBillingInput>,
    finalize_zero_amount_invoice: Option<bool>,
}

impl OrganizationInputDto {
    /// The domain patch of this update.
    pub fn into_patch(self) -> OrganizationPatch {
        let mut profile = Vec::new();
        for (name, value) in [
            ("webhook_url", self.webhook_url),
            ("country", self.country),
            ("address_line1", self.address_line1),
            ("address_line2", self.address_line2),
            ("state", self.state),
            ("zipcode", self.zipcode),
            ("email", self.email),
            ("city", self.city),
            ("legal_name", self.legal_name),
            ("legal_number", self.legal_number),
            ("tax_identification_number", self.tax_identification_number),
        ] {
            if let Some(v) = value {
                profile.push((name, v));
            }
        }
        let billing = self.billing_configuration.unwrap_or_default();
        OrganizationPatch {
            profile,
            default_currency: self.default_currency,
            timezone: self.timezone,
            document_numbering: self.document_numbering,
            document_number_prefix: self.document_number_prefix,
            net_payment_term: self.net_payment_term,
            invoice_grace_period: billing.invoice_grace_period,
            document_locale: billing.document_locale,
            invoice_footer: match billing.invoice_footer {
                None => Patch::Keep,
                Some(None) => Patch::Clear,
                Some(Some(v)) => Patch::Set(v),
            },
            finalize_zero_amount_invoice: self.finalize_zero_amount_invoice,
            email_settings: self.email_settings,
        }
    }
}

/// `OrganizationBillingConfiguration` as returned.
#[derive(Debug, Serialize)]
struct OrganizationBillingDto {
    invoice_footer: Option<String>,
    invoice_grace_period: u32,
    document_locale: String,
}

/// `OrganizationObject`.
#[derive(Debug, Serialize)]
pub struct OrganizationDto {
    lago_id: String,
    name: String,
    created_at: String,
    webhook_url: Option<String>,
    webhook_urls: Vec<String>,
    country: Option<String>,
    default_currency: String,
    address_line1: Option<String>,
    address_line2: Option<String>,
    state: Option<String>,
    zipcode: Option<String>,
    email: Option<String>,
    city: Option<String>,
    legal_name: Option<String>,
    legal_number: Option<String>,
    document_numbering: &'static str,
    document_number_prefix: String,
    net_payment_term: u32,
    tax_identification_number: Option<String>,
    timezone: String,
    email_settings: Vec<String>,
    billing_configuration: OrganizationBillingDto,
    taxes: Vec<TaxDto>,
    finalize_zero_amount_invoice: bool,
}

impl OrganizationDto {
    /// The response for an organization and its default taxes.
    pub fn new(org: &Organization, taxes: &[Record<Tax>]) -> Self {
        let s = &org.settings;
        let p = &s.profile;
        Self {
            lago_id: org.id.clone(),
            name: org.name.clone(),
            created_at: timestamp(org.created_at),
            webhook_url: p.webhook_url.clone(),
            webhook_urls: p.webhook_url.iter().cloned().collect(),
            country: p.country.clone(),
            default_currency: s.default_currency.clone(),
            address_line1: p.address_line1.clone(),
            address_line2: p.address_line2.clone(),
            state: p.state.clone(),
            zipcode: p.zipcode.clone(),
            email: p.email.clone(),
            city: p.city.clone(),
            legal_name: p.legal_name.clone(),
            legal_number: p.legal_number.clone(),
            document_numbering: s.document_numbering.as_str(),
            document_number_prefix: s.document_number_prefix.clone(),
            net_payment_term: s.net_payment_term,
            tax_identification_number: p.tax_identification_number.clone(),
            timezone: s.timezone.name().to_owned(),
            email_settings: s.email_settings.clone(),
            billing_configuration: OrganizationBillingDto {
                invoice_footer: s.invoice_footer.clone(),
                invoice_grace_period: s.invoice_grace_period,
                document_locale: s.document_locale.clone(),
            },
            taxes: taxes.iter().map(TaxDto::from).collect(),
            finalize_zero_amount_invoice: s.finalize_zero_amount_invoice,
        }
    }
}
