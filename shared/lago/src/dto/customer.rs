//! `customer` bodies (API_CONTRACT §4.4). `POST /customers` is an upsert on `external_id`:
//! absent fields are kept, `null` clears, values set.

use billing::catalog::{
    Record,
    customer::{
        AccountType, Address, AddressField, Customer, CustomerPatch, Patch, ProfileField,
        ProfilePatch, ZeroAmountInvoice,
    },
    tax::Tax,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{nullable, tax::TaxDto, timestamp};

type Field<T> = Option<Option<T>>;

fn patch<T>(f: Field<T>) -> Patch<T> {
    match f {
        None => Patch::Keep,
        Some(None) => Patch::Clear,
        Some(Some(v)) => Patch::Set(v),
    }
}

/// `billing_configuration` as sent.
#[derive(Debug, Default, Deserialize)]
pub struct BillingConfigurationInput {
    #[serde(default, deserialize_with = "nullable")]
    invoice_grace_period: Field<i64>,
    #[serde(default, deserialize_with = "nullable")]
    payment_provider: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    payment_provider_code: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    provider_customer_id: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    sync: Field<bool>,
    #[serde(default, deserialize_with = "nullable")]
    sync_with_provider: Field<bool>,
    #[serde(default, deserialize_with = "nullable")]
    document_locale: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    subscription_invoice_issuing_date_anchor: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    subscription_invoice_issuing_date_adjustment: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    provider_payment_methods: Field<Vec<String>>,
}

/// An address as sent.
#[derive(Debug, Default, Deserialize)]
pub struct AddressInput {
    #[serde(default, deserialize_with = "nullable")]
    address_line1: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    address_line2: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    city: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    state: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    zipcode: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    country: Field<String>,
}

/// One metadata pair as sent.
#[derive(Debug, Deserialize)]
pub struct MetadataInput {
    key: Option<String>,
    value: Option<String>,
    display_in_invoice: Option<bool>,
}

/// `{"customer": {...}}` of `POST /customers`.
#[derive(Debug, Default, Deserialize)]
pub struct CustomerInputDto {
    /// The customer's key in the caller's system (required).
    pub external_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    name: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    firstname: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    lastname: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    email: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    phone: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    url: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    logo_url: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    legal_name: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    legal_number: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    tax_identification_number: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    address_line1: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    address_line2: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    city: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    state: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    zipcode: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    country: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    currency: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    timezone: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    account_type: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    customer_type: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    net_payment_term: Field<i64>,
    #[serde(default, deserialize_with = "nullable")]
    finalize_zero_amount_invoice: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    billing_entity_code: Field<String>,
    billing_configuration: Option<BillingConfigurationInput>,
    shipping_address: Option<AddressInput>,
    metadata: Option<Vec<MetadataInput>>,
    /// Codes of the taxes to apply (each must exist).
    pub tax_codes: Option<Vec<String>>,
    skip_invoice_custom_sections: Option<bool>,
}

impl CustomerInputDto {
    /// The domain patch of this upsert, with `tax_codes` already resolved by the caller to
    /// the Lago ids of those taxes (`None` when no `tax_codes` were sent).
    pub fn into_patch(self, tax_ids: Option<Vec<String>>) -> CustomerPatch {
        let mut text = Vec::new();
        let mut push = |field: ProfileField, value: Field<String>| {
            if let Some(v) = value {
                text.push((field, v));
            }
        };
        push(ProfileField::Name, self.name);
        push(ProfileField::Firstname, self.firstname);
        push(ProfileField::Lastname, self.lastname);
        push(ProfileField::Phone, self.phone);
        push(ProfileField::Url, self.url);
        push(ProfileField::LogoUrl, self.logo_url);
        push(ProfileField::LegalName, self.legal_name);
        push(ProfileField::LegalNumber, self.legal_number);
        push(
            ProfileField::TaxIdentificationNumber,
            self.tax_identification_number,
        );
        push(
            ProfileField::Address(AddressField::Line1),
            self.address_line1,
        );
        push(
            ProfileField::Address(AddressField::Line2),
            self.address_line2,
        );
        push(ProfileField::Address(AddressField::City), self.city);
        push(ProfileField::Address(AddressField::State), self.state);
        push(ProfileField::Address(AddressField::Zipcode), self.zipcode);
        let shipping = self.shipping_address.unwrap_or_default();
        push(
            ProfileField::ShippingAddress(AddressField::Line1),
            shipping.address_line1,
        );
        push(
            ProfileField::ShippingAddress(AddressField::Line2),
            shipping.address_line2,
        );
        push(
            ProfileField::ShippingAddress(AddressField::City),
            shipping.city,
        );
        push(
            ProfileField::ShippingAddress(AddressField::State),
            shipping.state,
        );
        push(
            ProfileField::ShippingAddress(AddressField::Zipcode),
            shipping.zipcode,
        );
        push(
            ProfileField::ShippingAddress(AddressField::Country),
            shipping.country,
        );
        let billing = self.billing_configuration.unwrap_or_default();
        push(ProfileField::PaymentProvider, billing.payment_provider);
        push(
            ProfileField::PaymentProviderCode,
            billing.payment_provider_code,
        );
        push(
            ProfileField::ProviderCustomerId,
            billing.provider_customer_id,
        );
        CustomerPatch {
            profile: ProfilePatch {
                text,
                sync: patch(billing.sync),
                sync_with_provider: patch(billing.sync_with_provider),
                provider_payment_methods: patch(billing.provider_payment_methods),
            },
            email: patch(self.email),
            country: patch(self.country),
            currency: patch(self.currency),
            timezone: patch(self.timezone),
            account_type: patch(self.account_type),
            customer_type: patch(self.customer_type),
            net_payment_term: patch(self.net_payment_term),
            finalize_zero_amount_invoice: patch(self.finalize_zero_amount_invoice),
            invoice_grace_period: patch(billing.invoice_grace_period),
            document_locale: patch(billing.document_locale),
            invoice_issuing_date_anchor: patch(billing.subscription_invoice_issuing_date_anchor),
            invoice_issuing_date_adjustment: patch(
                billing.subscription_invoice_issuing_date_adjustment,
            ),
            tax_ids,
            metadata: self.metadata.map(|items| {
                items
                    .into_iter()
                    .map(|m| (m.key, m.value, m.display_in_invoice))
                    .collect()
            }),
            skip_invoice_custom_sections: self.skip_invoice_custom_sections,
            billing_entity_code: patch(self.billing_entity_code),
        }
    }
}

/// `CustomerBillingConfiguration` as returned.
#[derive(Debug, Serialize)]
struct BillingConfigurationDto {
    invoice_grace_period: Option<u32>,
    payment_provider: Option<String>,
    payment_provider_code: Option<String>,
    provider_customer_id: Option<String>,
    sync: Option<bool>,
    sync_with_provider: Option<bool>,
    document_locale: Option<String>,
    subscription_invoice_issuing_date_anchor: Option<String>,
    subscription_invoice_issuing_date_adjustment: Option<String>,
    provider_payment_methods: Option<Vec<String>>,
}

/// `Address` as returned.
#[derive(Debug, Serialize)]
struct AddressDto {
    address_line1: Option<String>,
    address_line2: Option<String>,
    city: Option<String>,
    state: Option<String>,
    zipcode: Option<String>,
    country: Option<String>,
}

impl From<&Address> for AddressDto {
    fn from(a: &Address) -> Self {
        Self {
            address_line1: a.address_line1.clone(),
            address_line2: a.address_line2.clone(),
            city: a.city.clone(),
            state: a.state.clone(),
            zipcode: a.zipcode.clone(),
            country: a.country.clone(),
        }
    }
}

/// `CustomerMetadata` as returned.
#[derive(Debug, Serialize)]
struct MetadataDto {
    lago_id: String,
    key: String,
    value: String,
    display_in_invoice: bool,
    created_at: String,
}

/// The `lago_id` of a metadata entry. Lago's schema makes it a UUID (typed clients parse it as
/// one), but the catalog keeps no id per entry, so it is derived from the customer's id and
/// the entry's key: the same on every read, distinct per key. The customer's 128 bits are mixed
/// with an FNV-1a hash of the key and stamped as an RFC 9562 version 8 (custom) UUID.
fn metadata_id(customer_id: &str, key: &str) -> String {
    let hex: String = customer_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    let customer_bits = u128::from_str_radix(&hex, 16).unwrap_or(0);
    let key_hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut bits =
        customer_bits ^ (u128::from(key_hash) << 64 | u128::from(key_hash.rotate_left(29)));
    bits = (bits & !(0xf << 76)) | (0x8 << 76);
    bits = (bits & !(0x3 << 62)) | (0x2 << 62);
    let h = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `CustomerObjectExtended`.
#[derive(Debug, Serialize)]
pub struct CustomerDto {
    lago_id: String,
    sequential_id: u64,
    slug: String,
    external_id: String,
    billing_entity_code: Option<String>,
    address_line1: Option<String>,
    address_line2: Option<String>,
    applicable_timezone: String,
    city: Option<String>,
    country: Option<String>,
    currency: Option<String>,
    email: Option<String>,
    legal_name: Option<String>,
    legal_number: Option<String>,
    logo_url: Option<String>,
    name: Option<String>,
    firstname: Option<String>,
    lastname: Option<String>,
    account_type: &'static str,
    customer_type: Option<String>,
    phone: Option<String>,
    state: Option<String>,
    tax_identification_number: Option<String>,
    timezone: Option<String>,
    url: Option<String>,
    zipcode: Option<String>,
    net_payment_term: Option<u32>,
    created_at: String,
    updated_at: String,
    finalize_zero_amount_invoice: &'static str,
    skip_invoice_custom_sections: bool,
    billing_configuration: BillingConfigurationDto,
    shipping_address: AddressDto,
    metadata: Vec<MetadataDto>,
    integration_customers: Vec<()>,
    taxes: Vec<TaxDto>,
    applicable_invoice_custom_sections: Vec<()>,
}

impl CustomerDto {
    /// The response for a stored customer, with its taxes resolved and the organization's
    /// timezone as the fallback `applicable_timezone`.
    pub fn new(
        r: &Record<Customer>,
        taxes: &[Record<Tax>],
        org_timezone: Tz,
        slug_prefix: &str,
    ) -> Self {
        let c = &r.value;
        let p = c.profile();
        let sequential_id = r.sequential_id.unwrap_or(0);
        Self {
            lago_id: r.lago_id.clone(),
            sequential_id,
            slug: format!("{slug_prefix}-{sequential_id:03}"),
            external_id: c.external_id().to_owned(),
            billing_entity_code: c.billing_entity_code().map(str::to_owned),
            address_line1: p.address.address_line1.clone(),
            address_line2: p.address.address_line2.clone(),
            applicable_timezone: c.applicable_timezone(org_timezone).name().to_owned(),
            city: p.address.city.clone(),
            country: p.address.country.clone(),
            currency: c.currency().map(str::to_owned),
            email: c.email().map(str::to_owned),
            legal_name: p.legal_name.clone(),
            legal_number: p.legal_number.clone(),
            logo_url: p.logo_url.clone(),
            name: p.name.clone(),
            firstname: p.firstname.clone(),
            lastname: p.lastname.clone(),
            account_type: match c.account_type() {
                AccountType::Customer => "customer",
                AccountType::Partner => "partner",
            },
            customer_type: c.customer_type().map(str::to_owned),
            phone: p.phone.clone(),
            state: p.address.state.clone(),
            tax_identification_number: p.tax_identification_number.clone(),
            timezone: c.timezone().map(|t| t.name().to_owned()),
            url: p.url.clone(),
            zipcode: p.address.zipcode.clone(),
            net_payment_term: c.net_payment_term(),
            created_at: timestamp(r.created_at),
            updated_at: timestamp(r.updated_at),
            finalize_zero_amount_invoice: match c.finalize_zero_amount_invoice() {
                ZeroAmountInvoice::Inherit => "inherit",
                ZeroAmountInvoice::Skip => "skip",
                ZeroAmountInvoice::Finalize => "finalize",
            },
            skip_invoice_custom_sections: c.skip_invoice_custom_sections(),
            billing_configuration: BillingConfigurationDto {
                invoice_grace_period: c.invoice_grace_period(),
                payment_provider: p.provider.payment_provider.clone(),
                payment_provider_code: p.provider.payment_provider_code.clone(),
                provider_customer_id: p.provider.provider_customer_id.clone(),
                sync: p.provider.sync,
                sync_with_provider: p.provider.sync_with_provider,
                document_locale: c.document_locale().map(str::to_owned),
                subscription_invoice_issuing_date_anchor: c
                    .invoice_issuing_date_anchor()
                    .map(str::to_owned),
                subscription_invoice_issuing_date_adjustment: c
                    .invoice_issuing_date_adjustment()
                    .map(str::to_owned),
                provider_payment_methods: p.provider.provider_payment_methods.clone(),
            },
            shipping_address: AddressDto::from(&p.shipping_address),
            metadata: c
                .metadata()
                .iter()
                .map(|m| MetadataDto {
                    lago_id: metadata_id(&r.lago_id, &m.key),
                    key: m.key.clone(),
                    value: m.value.clone(),
                    display_in_invoice: m.display_in_invoice,
                    // Stable across upserts that leave the metadata alone (entries carry no
                    // timestamp of their own): the customer's creation.
                    created_at: timestamp(r.created_at),
                })
                .collect(),
            integration_customers: Vec::new(),
            taxes: taxes.iter().map(TaxDto::from).collect(),
            applicable_invoice_custom_sections: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::metadata_id;

    #[test]
    fn a_metadata_id_is_a_stable_uuid_distinct_per_key_and_customer() {
        let customer = "04edbfb8-d3be-4791-a4ce-d683c8995b36";
        let id = metadata_id(customer, "crm_id");
        // Then it has the 8-4-4-4-12 shape with the version 8 and RFC variant nibbles
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, vec![8, 4, 4, 4, 12], "{id}");
        assert!(
            id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()),
            "{id}"
        );
        assert_eq!(id.as_bytes()[14], b'8', "{id}");
        assert!(
            matches!(id.as_bytes()[19], b'8' | b'9' | b'a' | b'b'),
            "{id}"
        );
        // And it is the same on every read, and differs by key and by customer
        assert_eq!(metadata_id(customer, "crm_id"), id);
        assert_ne!(metadata_id(customer, "purchase_order"), id);
        assert_ne!(
            metadata_id("14edbfb8-d3be-4791-a4ce-d683c8995b36", "crm_id"),
            id
        );
    }
}
