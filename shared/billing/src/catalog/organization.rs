//! The organization: the tenant that owns every other record, and its billing defaults.

use chrono_tz::Tz;

use super::{ValidationErrors, customer::Patch};

/// How invoice numbers are sequenced (Lago's `document_numbering`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentNumbering {
    /// One sequence per customer.
    PerCustomer,
    /// One sequence for the whole organization.
    PerOrganization,
}

impl DocumentNumbering {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PerCustomer => "per_customer",
            Self::PerOrganization => "per_organization",
        }
    }
}

/// The organization's settings as `PUT /organizations` changes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationSettings {
    /// Legal and contact text, keyed by Lago field name.
    pub profile: OrganizationProfile,
    /// Default currency for new customers and plans.
    pub default_currency: String,
    /// IANA timezone used for customers without their own.
    pub timezone: Tz,
    /// Invoice numbering scheme.
    pub document_numbering: DocumentNumbering,
    /// Prefix of invoice and credit note numbers.
    pub document_number_prefix: String,
    /// Days between issuing and payment due.
    pub net_payment_term: u32,
    /// Days invoices stay draft.
    pub invoice_grace_period: u32,
    /// Locale of billing documents (ISO 639-1).
    pub document_locale: String,
    /// Footer printed on invoices.
    pub invoice_footer: Option<String>,
    /// Whether zero-amount invoices are finalized.
    pub finalize_zero_amount_invoice: bool,
    /// Email notifications enabled (`invoice.finalized`, `credit_note.created`).
    pub email_settings: Vec<String>,
}

/// Free-text organization fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrganizationProfile {
    /// Billing email.
    pub email: Option<String>,
    /// Legal name.
    pub legal_name: Option<String>,
    /// Legal number.
    pub legal_number: Option<String>,
    /// Tax identification number.
    pub tax_identification_number: Option<String>,
    /// Address line 1.
    pub address_line1: Option<String>,
    /// Address line 2.
    pub address_line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State.
    pub state: Option<String>,
    /// Zipcode.
    pub zipcode: Option<String>,
    /// ISO 3166 alpha-2 country.
    pub country: Option<String>,
    /// Legacy single webhook URL.
    pub webhook_url: Option<String>,
}

/// A partial `PUT /organizations`.
#[derive(Debug, Clone, Default)]
pub struct OrganizationPatch {
    /// Free-text fields to set (`None` inside clears).
    pub profile: Vec<(&'static str, Option<String>)>,
    /// See [`OrganizationSettings::default_currency`].
    pub default_currency: Option<String>,
    /// See [`OrganizationSettings::timezone`].
    pub timezone: Option<String>,
    /// See [`OrganizationSettings::document_numbering`].
    pub document_numbering: Option<String>,
    /// See [`OrganizationSettings::document_number_prefix`].
    pub document_number_prefix: Option<String>,
    /// See [`OrganizationSettings::net_payment_term`].
    pub net_payment_term: Option<i64>,
    /// See [`OrganizationSettings::invoice_grace_period`].
    pub invoice_grace_period: Option<i64>,
    /// See [`OrganizationSettings::document_locale`].
    pub document_locale: Option<String>,
    /// See [`OrganizationSettings::invoice_footer`].
    pub invoice_footer: Patch<String>,
    /// See [`OrganizationSettings::finalize_zero_amount_invoice`].
    pub finalize_zero_amount_invoice: Option<bool>,
    /// See [`OrganizationSettings::email_settings`].
    pub email_settings: Option<Vec<String>>,
}

impl OrganizationSettings {
    /// The settings of a new organization: USD, UTC, per-customer numbering, no grace period.
    pub fn new(name: &str) -> Self {
        let prefix: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(3)
            .collect::<String>()
            .to_ascii_uppercase();
        Self {
            profile: OrganizationProfile::default(),
            default_currency: "USD".into(),
            timezone: Tz::UTC,
            document_numbering: DocumentNumbering::PerCustomer,
            document_number_prefix: if prefix.is_empty() {
                "ORG".into()
            } else {
                prefix
            },
            net_payment_term: 0,
            invoice_grace_period: 0,
            document_locale: "en".into(),
            invoice_footer: None,
            finalize_zero_amount_invoice: true,
            email_settings: Vec::new(),
        }
    }

    /// Applies a `PUT /organizations`, refusing every invalid field at once.
    pub fn apply(&self, patch: OrganizationPatch) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut next = self.clone();
        for (field, value) in patch.profile {
            let slot = match field {
                "email" => &mut next.profile.email,
                "legal_name" => &mut next.profile.legal_name,
                "legal_number" => &mut next.profile.legal_number,
                "tax_identification_number" => &mut next.profile.tax_identification_number,
                "address_line1" => &mut next.profile.address_line1,
                "address_line2" => &mut next.profile.address_line2,
                "city" => &mut next.profile.city,
                "state" => &mut next.profile.state,
                "zipcode" => &mut next.profile.zipcode,
                "country" => &mut next.profile.country,
                "webhook_url" => &mut next.profile.webhook_url,
                _ => continue,
            };
            *slot = value;
        }
        if let Some(c) = &next.profile.country
            && !super::customer::is_country(c)
        {
            errors.push("country", "not_a_valid_country_code");
        }
        if let Some(c) = patch.default_currency {
            if super::customer::is_currency(&c) {
                next.default_currency = c;
            } else {
                errors.push("default_currency", "value_is_invalid");
            }
        }
        if let Some(tz) = patch.timezone {
            match tz.parse::<Tz>() {
                Ok(tz) => next.timezone = tz,
                Err(_) => errors.push("timezone", "invalid_timezone"),
            }
        }
        if let Some(n) = patch.document_numbering {
            match n.as_str() {
                "per_customer" => next.document_numbering = DocumentNumbering::PerCustomer,
                "per_organization" => next.document_numbering = DocumentNumbering::PerOrganization,
                _ => errors.push("document_numbering", "value_is_invalid"),
            }
        }
        if let Some(p) = patch.document_number_prefix {
            if p.is_empty() || p.chars().count() > 10 {
                errors.push("document_number_prefix", "value_is_invalid");
            } else {
                next.document_number_prefix = p.to_uppercase();
            }
        }
        for (field, value, slot) in [
            (
                "net_payment_term",
                patch.net_payment_term,
                &mut next.net_payment_term,
            ),
            (
                "invoice_grace_period",
                patch.invoice_grace_period,
                &mut next.invoice_grace_period,
            ),
        ] {
            if let Some(d) = value {
                match u32::try_from(d) {
                    Ok(d) if d <= 365 => *slot = d,
                    _ => errors.push(field, "value_is_invalid"),
                }
            }
        }
        if let Some(l) = patch.document_locale {
            if l.len() == 2 && l.chars().all(|c| c.is_ascii_lowercase()) {
                next.document_locale = l;
            } else {
                errors.push("document_locale", "invalid_value");
            }
        }
        next.invoice_footer = patch.invoice_footer.apply(next.invoice_footer);
        if let Some(f) = patch.finalize_zero_amount_invoice {
            next.finalize_zero_amount_invoice = f;
        }
        if let Some(settings) = patch.email_settings {
            if settings
                .iter()
                .all(|s| s == "invoice.finalized" || s == "credit_note.created")
            {
                next.email_settings = settings;
            } else {
                errors.push("email_settings", "unsupported_value");
            }
        }
        errors.into_result()?;
        Ok(next)
    }
}

/// A tenant: everything else belongs to exactly one organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// Lago's UUID for the organization.
    pub id: String,
    /// Display name.
    pub name: String,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Its billing defaults.
    pub settings: OrganizationSettings,
    /// Optimistic-concurrency version of the settings.
    pub version: u64,
}
