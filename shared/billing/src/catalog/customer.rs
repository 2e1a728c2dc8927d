//! Customers: who is billed, in which currency and timezone, under which taxes and terms.
//!
//! `POST /customers` is an upsert: a [`CustomerPatch`] says, field by field, whether a value is
//! left as it is (absent), cleared (null) or set. Creating applies a patch to an empty customer.

use chrono_tz::Tz;

use super::{FieldError, ValidationErrors};

/// One field of a partial update: absent (keep), null (clear) or a value (set).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Patch<T> {
    /// The field was not sent: keep the current value.
    #[default]
    Keep,
    /// The field was sent as `null`: clear it.
    Clear,
    /// The field was sent with a value.
    Set(T),
}

impl<T> Patch<T> {
    /// Applies the patch to the current value.
    pub fn apply(self, current: Option<T>) -> Option<T> {
        match self {
            Patch::Keep => current,
            Patch::Clear => None,
            Patch::Set(v) => Some(v),
        }
    }
}

/// The free-text part of a customer: names, contact and addresses. Nothing here changes an
/// amount, so it carries no invariant beyond being text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CustomerProfile {
    /// Full name.
    pub name: Option<String>,
    /// First name.
    pub firstname: Option<String>,
    /// Last name.
    pub lastname: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Website.
    pub url: Option<String>,
    /// Logo URL.
    pub logo_url: Option<String>,
    /// Legal company name.
    pub legal_name: Option<String>,
    /// Legal company number.
    pub legal_number: Option<String>,
    /// Tax identification number.
    pub tax_identification_number: Option<String>,
    /// Billing address.
    pub address: Address,
    /// Shipping address.
    pub shipping_address: Address,
    /// The payment provider's settings for this customer.
    pub provider: ProviderSettings,
}

/// A postal address; every line is optional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    /// First line.
    pub address_line1: Option<String>,
    /// Second line.
    pub address_line2: Option<String>,
    /// City.
    pub city: Option<String>,
    /// State or region.
    pub state: Option<String>,
    /// Postal code.
    pub zipcode: Option<String>,
    /// ISO 3166 alpha-2 country code.
    pub country: Option<String>,
}

/// Payment-provider settings kept for the customer (`billing_configuration`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderSettings {
    /// `stripe`, `adyen` or `gocardless`.
    pub payment_provider: Option<String>,
    /// The organization's connection code for that provider.
    pub payment_provider_code: Option<String>,
    /// The customer's id at the provider.
    pub provider_customer_id: Option<String>,
    /// Whether to sync the customer to the provider.
    pub sync: Option<bool>,
    /// Whether to create the customer at the provider.
    pub sync_with_provider: Option<bool>,
    /// Payment methods allowed at the provider.
    pub provider_payment_methods: Option<Vec<String>>,
}

/// A key/value pair attached to a customer, optionally printed on invoices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerMetadata {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Whether invoices show it.
    pub display_in_invoice: bool,
}

/// `customer` or `partner` (Lago's `account_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountType {
    /// A customer billed normally.
    Customer,
    /// A partner (revenue share; invoices are self-billed).
    Partner,
}

/// How zero-amount invoices are handled (Lago's `finalize_zero_amount_invoice`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroAmountInvoice {
    /// Follow the organization's setting.
    Inherit,
    /// Do not finalize invoices totalling zero.
    Skip,
    /// Finalize them like any other.
    Finalize,
}

/// Every field a create or upsert may carry.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    /// Free text; each `Some` replaces the profile field of the same name (`None` inside clears).
    pub profile: ProfilePatch,
    /// Email address.
    pub email: Patch<String>,
    /// ISO 3166 alpha-2 country of the billing address.
    pub country: Patch<String>,
    /// ISO 4217 currency.
    pub currency: Patch<String>,
    /// IANA timezone.
    pub timezone: Patch<String>,
    /// `customer` or `partner`.
    pub account_type: Patch<String>,
    /// `company` or `individual`.
    pub customer_type: Patch<String>,
    /// Days between issuing and payment due.
    pub net_payment_term: Patch<i64>,
    /// `inherit`, `skip` or `finalize`.
    pub finalize_zero_amount_invoice: Patch<String>,
    /// Days an invoice stays draft.
    pub invoice_grace_period: Patch<i64>,
    /// ISO 639-1 locale of billing documents.
    pub document_locale: Patch<String>,
    /// `current_period_end` or `next_period_start`.
    pub invoice_issuing_date_anchor: Patch<String>,
    /// `align_with_finalization_date` or `keep_anchor`.
    pub invoice_issuing_date_adjustment: Patch<String>,
    /// Lago ids of the taxes applied to the customer (replaces the list). Taxes are applied
    /// by identity, as lago-api's `applied_taxes` do, so renaming a tax keeps it applied and a
    /// new tax reusing a deleted one's code is not applied by accident.
    pub tax_ids: Option<Vec<String>>,
    /// Metadata pairs (replaces the list).
    pub metadata: Option<Vec<MetadataEntry>>,
    /// Whether invoice custom sections are skipped.
    pub skip_invoice_custom_sections: Option<bool>,
    /// The billing entity the customer belongs to.
    pub billing_entity_code: Patch<String>,
}

/// One metadata pair as sent: key, value, `display_in_invoice` (each checked by [`Customer::apply`]).
pub type MetadataEntry = (Option<String>, Option<String>, Option<bool>);

/// Partial update of the free-text profile: `Some(v)` sets (`v = None` clears), `None` keeps.
#[derive(Debug, Clone, Default)]
pub struct ProfilePatch {
    /// Fields by Lago name (`name`, `address_line1`, `shipping_address.city`, `provider_customer_id`, ...).
    pub text: Vec<(ProfileField, Option<String>)>,
    /// Billing-configuration flags and lists.
    pub sync: Patch<bool>,
    /// See [`ProviderSettings::sync_with_provider`].
    pub sync_with_provider: Patch<bool>,
    /// See [`ProviderSettings::provider_payment_methods`].
    pub provider_payment_methods: Patch<Vec<String>>,
}

/// The free-text fields a patch can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileField {
    /// `name`
    Name,
    /// `firstname`
    Firstname,
    /// `lastname`
    Lastname,
    /// `phone`
    Phone,
    /// `url`
    Url,
    /// `logo_url`
    LogoUrl,
    /// `legal_name`
    LegalName,
    /// `legal_number`
    LegalNumber,
    /// `tax_identification_number`
    TaxIdentificationNumber,
    /// A line of the billing address.
    Address(AddressField),
    /// A line of the shipping address.
    ShippingAddress(AddressField),
    /// `billing_configuration.payment_provider`
    PaymentProvider,
    /// `billing_configuration.payment_provider_code`
    PaymentProviderCode,
    /// `billing_configuration.provider_customer_id`
    ProviderCustomerId,
}

/// The lines of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressField {
    /// `address_line1`
    Line1,
    /// `address_line2`
    Line2,
    /// `city`
    City,
    /// `state`
    State,
    /// `zipcode`
    Zipcode,
    /// `country`
    Country,
}

/// A validated customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    external_id: String,
    profile: CustomerProfile,
    email: Option<String>,
    currency: Option<String>,
    timezone: Option<Tz>,
    account_type: AccountType,
    customer_type: Option<String>,
    net_payment_term: Option<u32>,
    finalize_zero_amount_invoice: ZeroAmountInvoice,
    invoice_grace_period: Option<u32>,
    document_locale: Option<String>,
    invoice_issuing_date_anchor: Option<String>,
    invoice_issuing_date_adjustment: Option<String>,
    tax_ids: Vec<String>,
    metadata: Vec<CustomerMetadata>,
    skip_invoice_custom_sections: bool,
    billing_entity_code: Option<String>,
}

/// The largest payment term or grace period accepted, in days.
const DAYS_MAX: i64 = 365;

impl Customer {
    /// Creates a customer from its first upsert.
    pub fn create(external_id: &str, patch: CustomerPatch) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if external_id.trim().is_empty() {
            errors.push("external_id", "value_is_mandatory");
        } else if external_id.chars().count() > 255 {
            errors.push("external_id", "value_is_invalid");
        }
        let empty = Self {
            external_id: external_id.to_owned(),
            profile: CustomerProfile::default(),
            email: None,
            currency: None,
            timezone: None,
            account_type: AccountType::Customer,
            customer_type: None,
            net_payment_term: None,
            finalize_zero_amount_invoice: ZeroAmountInvoice::Inherit,
            invoice_grace_period: None,
            document_locale: None,
            invoice_issuing_date_anchor: None,
            invoice_issuing_date_adjustment: None,
            tax_ids: Vec::new(),
            metadata: Vec::new(),
            skip_invoice_custom_sections: false,
            billing_entity_code: None,
        };
        match empty.apply(patch, false) {
            Ok(c) => {
                errors.into_result()?;
                Ok(c)
            }
            Err(mut e) => {
                errors.0.append(&mut e.0);
                Err(errors)
            }
        }
    }

    /// Applies an upsert to an existing customer. `has_invoices` freezes the currency once
    /// something was billed in it (Lago refuses to change it then).
    pub fn apply(
        &self,
        patch: CustomerPatch,
        has_invoices: bool,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut next = self.clone();

        for (field, value) in patch.profile.text {
            let slot = match field {
                ProfileField::Name => &mut next.profile.name,
                ProfileField::Firstname => &mut next.profile.firstname,
                ProfileField::Lastname => &mut next.profile.lastname,
                ProfileField::Phone => &mut next.profile.phone,
                ProfileField::Url => &mut next.profile.url,
                ProfileField::LogoUrl => &mut next.profile.logo_url,
                ProfileField::LegalName => &mut next.profile.legal_name,
                ProfileField::LegalNumber => &mut next.profile.legal_number,
                ProfileField::TaxIdentificationNumber => {
                    &mut next.profile.tax_identification_number
                }
                ProfileField::Address(a) => address_slot(&mut next.profile.address, a),
                ProfileField::ShippingAddress(a) => {
                    address_slot(&mut next.profile.shipping_address, a)
                }
                ProfileField::PaymentProvider => &mut next.profile.provider.payment_provider,
                ProfileField::PaymentProviderCode => {
                    &mut next.profile.provider.payment_provider_code
                }
                ProfileField::ProviderCustomerId => &mut next.profile.provider.provider_customer_id,
            };
            *slot = value;
        }
        next.profile.provider.sync = patch.profile.sync.apply(next.profile.provider.sync);
        next.profile.provider.sync_with_provider = patch
            .profile
            .sync_with_provider
            .apply(next.profile.provider.sync_with_provider);
        next.profile.provider.provider_payment_methods = patch
            .profile
            .provider_payment_methods
            .apply(next.profile.provider.provider_payment_methods.take());
        if let Some(name) = &next.profile.name
            && name.chars().count() > 255
        {
            errors.push("name", "value_is_too_long");
        }
        if let Some(p) = &next.profile.provider.payment_provider
            && !["stripe", "adyen", "gocardless", "moneyhash"].contains(&p.as_str())
        {
            errors.push("payment_provider", "value_is_invalid");
        }
        for (field, value) in [
            ("country", &next.profile.address.country),
            (
                "shipping_address.country",
                &next.profile.shipping_address.country,
            ),
        ] {
            if let Some(c) = value
                && !is_country(c)
            {
                errors.push(field, "not_a_valid_country_code");
            }
        }

        if let Some(email) = patch.email.apply(next.email.take()) {
            if is_email_list(&email) {
                next.email = Some(email);
            } else {
                errors.push("email", "invalid_email_format");
            }
        }
        if let Patch::Set(country) = patch.country {
            if is_country(&country) {
                next.profile.address.country = Some(country);
            } else {
                errors.push("country", "not_a_valid_country_code");
            }
        } else if patch.country == Patch::Clear {
            next.profile.address.country = None;
        }

        match patch.currency {
            Patch::Keep => {}
            Patch::Clear if has_invoices && next.currency.is_some() => {
                errors.push("currency", "currencies_does_not_match")
            }
            Patch::Clear => next.currency = None,
            Patch::Set(c) => {
                if !is_currency(&c) {
                    errors.push("currency", "value_is_invalid");
                } else if has_invoices && next.currency.as_deref().is_some_and(|cur| cur != c) {
                    errors.push("currency", "currencies_does_not_match");
                } else {
                    next.currency = Some(c);
                }
            }
        }
        match patch.timezone {
            Patch::Keep => {}
            Patch::Clear => next.timezone = None,
            Patch::Set(tz) => match tz.parse::<Tz>() {
                Ok(tz) => next.timezone = Some(tz),
                Err(_) => errors.push("timezone", "invalid_timezone"),
            },
        }
        match patch.account_type {
            Patch::Keep => {}
            Patch::Clear => next.account_type = AccountType::Customer,
            Patch::Set(a) => match a.as_str() {
                "customer" => next.account_type = AccountType::Customer,
                "partner" => next.account_type = AccountType::Partner,
                _ => errors.push("account_type", "value_is_invalid"),
            },
        }
        match patch.customer_type.apply(next.customer_type.take()) {
            Some(t) if t != "company" && t != "individual" => {
                errors.push("customer_type", "value_is_invalid")
            }
            t => next.customer_type = t,
        }
        next.net_payment_term = days(
            "net_payment_term",
            patch.net_payment_term,
            next.net_payment_term,
            &mut errors,
        );
        next.invoice_grace_period = days(
            "invoice_grace_period",
            patch.invoice_grace_period,
            next.invoice_grace_period,
            &mut errors,
        );
        match patch.finalize_zero_amount_invoice {
            Patch::Keep => {}
            Patch::Clear => next.finalize_zero_amount_invoice = ZeroAmountInvoice::Inherit,
            Patch::Set(v) => match v.as_str() {
                "inherit" => next.finalize_zero_amount_invoice = ZeroAmountInvoice::Inherit,
                "skip" => next.finalize_zero_amount_invoice = ZeroAmountInvoice::Skip,
                "finalize" => next.finalize_zero_amount_invoice = ZeroAmountInvoice::Finalize,
                _ => errors.push("finalize_zero_amount_invoice", "value_is_invalid"),
            },
        }
        match patch.document_locale.apply(next.document_locale.take()) {
            Some(l) if !(l.len() == 2 && l.chars().all(|c| c.is_ascii_lowercase())) => {
                errors.push("document_locale", "invalid_value")
            }
            l => next.document_locale = l,
        }
        match patch
            .invoice_issuing_date_anchor
            .apply(next.invoice_issuing_date_anchor.take())
        {
            Some(a) if a != "current_period_end" && a != "next_period_start" => errors.push(
                "subscription_invoice_issuing_date_anchor",
                "value_is_invalid",
            ),
            a => next.invoice_issuing_date_anchor = a,
        }
        match patch
            .invoice_issuing_date_adjustment
            .apply(next.invoice_issuing_date_adjustment.take())
        {
            Some(a) if a != "align_with_finalization_date" && a != "keep_anchor" => errors.push(
                "subscription_invoice_issuing_date_adjustment",
                "value_is_invalid",
            ),
            a => next.invoice_issuing_date_adjustment = a,
        }
        if let Some(ids) = patch.tax_ids {
            let mut unique = Vec::with_capacity(ids.len());
            for id in ids {
                if !unique.contains(&id) {
                    unique.push(id);
                }
            }
            next.tax_ids = unique;
        }
        if let Some(items) = patch.metadata {
            let mut metadata = Vec::with_capacity(items.len());
            for (key, value, display) in items {
                match (key, value) {
                    (Some(key), Some(value)) if !key.is_empty() => {
                        if metadata.iter().any(|m: &CustomerMetadata| m.key == key) {
                            errors.push("metadata", "duplicated_key");
                        } else if key.chars().count() > 20 || value.chars().count() > 100 {
                            errors.push("metadata", "value_is_too_long");
                        } else {
                            metadata.push(CustomerMetadata {
                                key,
                                value,
                                display_in_invoice: display.unwrap_or(false),
                            });
                        }
                    }
                    _ => errors.push("metadata", "value_is_mandatory"),
                }
            }
            next.metadata = metadata;
        }
        if let Some(skip) = patch.skip_invoice_custom_sections {
            next.skip_invoice_custom_sections = skip;
        }
        next.billing_entity_code = patch.billing_entity_code.apply(next.billing_entity_code);
        errors.into_result()?;
        Ok(next)
    }

    /// The customer's key in the caller's system.
    pub fn external_id(&self) -> &str {
        &self.external_id
    }
    /// Names, contact, addresses and provider settings.
    pub fn profile(&self) -> &CustomerProfile {
        &self.profile
    }
    /// Email address(es), comma-separated as Lago allows.
    pub fn email(&self) -> Option<&str> {
        self.email.as_deref()
    }
    /// ISO 4217 currency, once set.
    pub fn currency(&self) -> Option<&str> {
        self.currency.as_deref()
    }
    /// The customer's own timezone, if set.
    pub fn timezone(&self) -> Option<Tz> {
        self.timezone
    }
    /// The timezone billing uses: the customer's, else the organization's.
    pub fn applicable_timezone(&self, organization: Tz) -> Tz {
        self.timezone.unwrap_or(organization)
    }
    /// `customer` or `partner`.
    pub fn account_type(&self) -> AccountType {
        self.account_type
    }
    /// `company` or `individual`.
    pub fn customer_type(&self) -> Option<&str> {
        self.customer_type.as_deref()
    }
    /// Days between issuing and payment due, if overridden.
    pub fn net_payment_term(&self) -> Option<u32> {
        self.net_payment_term
    }
    /// How zero-amount invoices are handled.
    pub fn finalize_zero_amount_invoice(&self) -> ZeroAmountInvoice {
        self.finalize_zero_amount_invoice
    }
    /// Days an invoice stays draft, if overridden.
    pub fn invoice_grace_period(&self) -> Option<u32> {
        self.invoice_grace_period
    }
    /// Locale of billing documents, if overridden.
    pub fn document_locale(&self) -> Option<&str> {
        self.document_locale.as_deref()
    }
    /// `subscription_invoice_issuing_date_anchor`.
    pub fn invoice_issuing_date_anchor(&self) -> Option<&str> {
        self.invoice_issuing_date_anchor.as_deref()
    }
    /// `subscription_invoice_issuing_date_adjustment`.
    pub fn invoice_issuing_date_adjustment(&self) -> Option<&str> {
        self.invoice_issuing_date_adjustment.as_deref()
    }
    /// Lago ids of the taxes applied to the customer, in the order they were given.
    pub fn tax_ids(&self) -> &[String] {
        &self.tax_ids
    }
    /// Metadata pairs.
    pub fn metadata(&self) -> &[CustomerMetadata] {
        &self.metadata
    }
    /// Whether invoice custom sections are skipped.
    pub fn skip_invoice_custom_sections(&self) -> bool {
        self.skip_invoice_custom_sections
    }
    /// The billing entity code, if any.
    pub fn billing_entity_code(&self) -> Option<&str> {
        self.billing_entity_code.as_deref()
    }
}

fn address_slot(address: &mut Address, field: AddressField) -> &mut Option<String> {
    match field {
        AddressField::Line1 => &mut address.address_line1,
        AddressField::Line2 => &mut address.address_line2,
        AddressField::City => &mut address.city,
        AddressField::State => &mut address.state,
        AddressField::Zipcode => &mut address.zipcode,
        AddressField::Country => &mut address.country,
    }
}

fn days(
    field: &'static str,
    patch: Patch<i64>,
    current: Option<u32>,
    errors: &mut ValidationErrors,
) -> Option<u32> {
    match patch {
        Patch::Keep => current,
        Patch::Clear => None,
        Patch::Set(d) if (0..=DAYS_MAX).contains(&d) => u32::try_from(d).ok(),
        Patch::Set(_) => {
            errors.0.push(FieldError::new(field, "value_is_invalid"));
            current
        }
    }
}

/// An ISO 3166-1 alpha-2 code that is assigned: the shape alone would let `ZZ` through, and
/// Lago answers `not_a_valid_country_code` for it.
pub fn is_country(code: &str) -> bool {
    COUNTRIES.binary_search(&code).is_ok()
}

/// The assigned ISO 3166-1 alpha-2 codes, sorted (as tzdata's `iso3166.tab` lists them).
#[rustfmt::skip]
const COUNTRIES: &[&str] = &[
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// An ISO 4217 code that the currency table knows: the shape alone would let `XYZ` through,
/// and a customer in a currency without an exponent could never be invoiced.
pub fn is_currency(code: &str) -> bool {
    crate::money::Currency::parse(code).is_ok()
}

/// One address or several separated by commas, each `local@domain.tld` without spaces.
fn is_email_list(s: &str) -> bool {
    s.split(',').map(str::trim).all(|e| {
        let Some((local, domain)) = e.split_once('@') else {
            return false;
        };
        !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !e.contains(char::is_whitespace)
            && !domain.contains('@')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(r: Result<Customer, ValidationErrors>) -> Vec<(String, &'static str)> {
        r.err()
            .map(|e| e.0.into_iter().map(|f| (f.field, f.code)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn an_upsert_changes_only_the_fields_it_sends() {
        let created = Customer::create(
            "cus_1",
            CustomerPatch {
                currency: Patch::Set("EUR".into()),
                timezone: Patch::Set("Europe/Paris".into()),
                profile: ProfilePatch {
                    text: vec![(ProfileField::Name, Some("Acme".into()))],
                    ..Default::default()
                },
                ..Default::default()
            },
        );
        let Ok(created) = created else {
            panic!("valid customer refused: {created:?}")
        };
        let updated = created.apply(
            CustomerPatch {
                profile: ProfilePatch {
                    text: vec![(
                        ProfileField::Address(AddressField::City),
                        Some("Lyon".into()),
                    )],
                    ..Default::default()
                },
                timezone: Patch::Clear,
                ..Default::default()
            },
            false,
        );
        let Ok(updated) = updated else {
            panic!("valid update refused: {updated:?}")
        };
        assert_eq!(updated.profile().name.as_deref(), Some("Acme"));
        assert_eq!(updated.profile().address.city.as_deref(), Some("Lyon"));
        assert_eq!(updated.currency(), Some("EUR"));
        assert_eq!(updated.timezone(), None);
    }

    #[test]
    fn a_currency_code_outside_the_iso_table_is_refused_even_when_well_shaped() {
        // Given three uppercase letters that no currency uses
        let r = Customer::create(
            "cus_1",
            CustomerPatch {
                currency: Patch::Set("XYZ".into()),
                ..Default::default()
            },
        );
        // Then the currency is reported as Lago reports it
        assert_eq!(codes(r), vec![("currency".into(), "value_is_invalid")]);
    }

    #[test]
    fn a_country_code_must_be_an_assigned_iso_3166_code() {
        assert!(
            COUNTRIES.windows(2).all(|w| w[0] < w[1]),
            "the table stays sorted"
        );
        for (code, known) in [
            ("FR", true),
            ("IE", true),
            ("ZZ", false),
            ("fr", false),
            ("FRA", false),
        ] {
            assert_eq!(is_country(code), known, "{code}");
        }
    }

    #[test]
    fn invalid_enums_timezone_email_and_terms_are_each_reported() {
        let r = Customer::create(
            "cus_1",
            CustomerPatch {
                currency: Patch::Set("euro".into()),
                timezone: Patch::Set("Mars/Olympus".into()),
                email: Patch::Set("not-an-email".into()),
                account_type: Patch::Set("vip".into()),
                net_payment_term: Patch::Set(-3),
                finalize_zero_amount_invoice: Patch::Set("maybe".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            codes(r),
            vec![
                ("email".into(), "invalid_email_format"),
                ("currency".into(), "value_is_invalid"),
                ("timezone".into(), "invalid_timezone"),
                ("account_type".into(), "value_is_invalid"),
                ("net_payment_term".into(), "value_is_invalid"),
                ("finalize_zero_amount_invoice".into(), "value_is_invalid"),
            ]
        );
    }

    #[test]
    fn the_currency_is_frozen_once_invoiced() {
        let Ok(c) = Customer::create(
            "cus_1",
            CustomerPatch {
                currency: Patch::Set("USD".into()),
                ..Default::default()
            },
        ) else {
            panic!("valid customer refused")
        };
        let r = c.apply(
            CustomerPatch {
                currency: Patch::Set("EUR".into()),
                ..Default::default()
            },
            true,
        );
        assert_eq!(
            codes(r),
            vec![("currency".into(), "currencies_does_not_match")]
        );
    }

    #[test]
    fn an_empty_external_id_is_mandatory() {
        assert_eq!(
            codes(Customer::create(" ", CustomerPatch::default())),
            vec![("external_id".into(), "value_is_mandatory")]
        );
    }
}
