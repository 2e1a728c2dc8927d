//! Items <-> domain records. The item structs are this crate's serializable counterparts of
//! the domain types (R15); `serde_dynamo` turns them into DynamoDB attribute maps.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use billing::catalog::{
    Record,
    customer::{AddressField, Customer, CustomerPatch, Patch, ProfileField, ProfilePatch},
    metric::{BillableMetric, BillableMetricInput},
    tax::{Tax, TaxInput},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{StoreError, org_pk};

/// A kind of record stored in an organization's item collection.
pub trait Kind: Sized {
    /// The sort-key prefix of the kind (`BM#`, `CUS#`, `TAX#`).
    const PREFIX: &'static str;
    /// The serializable item counterpart.
    #[doc(hidden)]
    type Item: Serialize + DeserializeOwned;
    /// The business key (code or external id).
    fn key(&self) -> &str;
    #[doc(hidden)]
    fn to_item(&self) -> Self::Item;
    #[doc(hidden)]
    fn from_item(item: Self::Item) -> Result<Self, String>;
}

/// DynamoDB's item size limit (400 KB). A write over it fails with a `ValidationException`
/// that would reach the client as a 5xx; measuring first turns it into [`StoreError::TooLarge`].
pub(crate) const ITEM_BYTES_MAX: usize = 400 * 1024;

/// An upper bound of an item's size as DynamoDB counts it: attribute names plus values, with
/// numbers counted as their decimal text (DynamoDB stores them in fewer bytes) and 3 bytes of
/// overhead per list or map plus 1 per element.
pub(crate) fn item_bytes(item: &HashMap<String, AttributeValue>) -> usize {
    fn value_bytes(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::Ss(items) | AttributeValue::Ns(items) => {
                items.iter().map(String::len).sum()
            }
            AttributeValue::Bs(items) => items.iter().map(|b| b.as_ref().len()).sum(),
            AttributeValue::L(items) => 3 + items.iter().map(|i| 1 + value_bytes(i)).sum::<usize>(),
            AttributeValue::M(map) => 3 + item_bytes(map) + map.len(),
            _ => 1,
        }
    }
    item.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
}

/// Refuses an item DynamoDB would refuse for its size.
pub(crate) fn check_size(
    item: HashMap<String, AttributeValue>,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    if item_bytes(&item) > ITEM_BYTES_MAX {
        return Err(StoreError::TooLarge);
    }
    Ok(item)
}

/// The identity and bookkeeping every stored record carries.
#[derive(Serialize, Deserialize)]
struct Envelope {
    lago_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequential_id: Option<u64>,
    version: u64,
}

pub(crate) fn to_item<T: Kind>(
    org_id: &str,
    record: &Record<T>,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let corrupt = |e: serde_dynamo::Error| StoreError::Corrupt(e.to_string());
    let mut item: HashMap<String, AttributeValue> =
        serde_dynamo::to_item(record.value.to_item()).map_err(corrupt)?;
    let envelope: HashMap<String, AttributeValue> = serde_dynamo::to_item(Envelope {
        lago_id: record.lago_id.clone(),
        created_at: record.created_at,
        updated_at: record.updated_at,
        sequential_id: record.sequential_id,
        version: record.version,
    })
    .map_err(corrupt)?;
    item.extend(envelope);
    item.insert("pk".into(), AttributeValue::S(org_pk(org_id)));
    item.insert(
        "sk".into(),
        AttributeValue::S(format!("{}{}", T::PREFIX, record.value.key())),
    );
    check_size(item)
}

pub(crate) fn from_item<T: Kind>(
    item: HashMap<String, AttributeValue>,
) -> Result<Record<T>, StoreError> {
    let corrupt = |e: serde_dynamo::Error| StoreError::Corrupt(e.to_string());
    let envelope: Envelope = serde_dynamo::from_item(item.clone()).map_err(corrupt)?;
    let value: T::Item = serde_dynamo::from_item(item).map_err(corrupt)?;
    Ok(Record {
        lago_id: envelope.lago_id,
        created_at: envelope.created_at,
        updated_at: envelope.updated_at,
        sequential_id: envelope.sequential_id,
        version: envelope.version,
        value: T::from_item(value).map_err(StoreError::Corrupt)?,
    })
}

#[derive(Serialize, Deserialize)]
pub struct MetricItem {
    name: String,
    code: String,
    description: Option<String>,
    aggregation_type: String,
    field_name: Option<String>,
    recurring: bool,
    weighted_interval: Option<String>,
    rounding_function: Option<String>,
    rounding_precision: Option<i64>,
    expression: Option<String>,
    filters: Vec<(String, Vec<String>)>,
}

impl Kind for BillableMetric {
    const PREFIX: &'static str = "BM#";
    type Item = MetricItem;

    fn key(&self) -> &str {
        self.code()
    }

    fn to_item(&self) -> MetricItem {
        let i = self.to_input();
        MetricItem {
            name: i.name.unwrap_or_default(),
            code: i.code.unwrap_or_default(),
            description: i.description,
            aggregation_type: i.aggregation_type.unwrap_or_default(),
            field_name: i.field_name,
            recurring: i.recurring.unwrap_or(false),
            weighted_interval: i.weighted_interval,
            rounding_function: i.rounding_function,
            rounding_precision: i.rounding_precision,
            expression: i.expression,
            filters: i.filters.unwrap_or_default(),
        }
    }

    fn from_item(item: MetricItem) -> Result<Self, String> {
        BillableMetric::new(BillableMetricInput {
            name: Some(item.name),
            code: Some(item.code),
            description: item.description,
            aggregation_type: Some(item.aggregation_type),
            field_name: item.field_name,
            recurring: Some(item.recurring),
            weighted_interval: item.weighted_interval,
            rounding_function: item.rounding_function,
            rounding_precision: item.rounding_precision,
            expression: item.expression,
            filters: Some(item.filters),
        })
        .map_err(|e| format!("billable metric: {e:?}"))
    }
}

#[derive(Serialize, Deserialize)]
pub struct TaxItem {
    name: String,
    code: String,
    rate: String,
    description: Option<String>,
    applied_to_organization: bool,
}

impl Kind for Tax {
    const PREFIX: &'static str = "TAX#";
    type Item = TaxItem;

    fn key(&self) -> &str {
        self.code()
    }

    fn to_item(&self) -> TaxItem {
        TaxItem {
            name: self.name().to_owned(),
            code: self.code().to_owned(),
            rate: self.rate().to_string(),
            description: self.description().map(str::to_owned),
            applied_to_organization: self.applied_to_organization(),
        }
    }

    fn from_item(item: TaxItem) -> Result<Self, String> {
        Tax::new(TaxInput {
            name: Some(item.name),
            code: Some(item.code),
            rate: Some(item.rate),
            description: item.description,
            applied_to_organization: Some(item.applied_to_organization),
        })
        .map_err(|e| format!("tax: {e:?}"))
    }
}

/// Text fields of the customer profile, by the [`ProfileField`] that sets them.
const PROFILE_FIELDS: [(&str, ProfileField); 24] = [
    ("name", ProfileField::Name),
    ("firstname", ProfileField::Firstname),
    ("lastname", ProfileField::Lastname),
    ("phone", ProfileField::Phone),
    ("url", ProfileField::Url),
    ("logo_url", ProfileField::LogoUrl),
    ("legal_name", ProfileField::LegalName),
    ("legal_number", ProfileField::LegalNumber),
    (
        "tax_identification_number",
        ProfileField::TaxIdentificationNumber,
    ),
    ("address_line1", ProfileField::Address(AddressField::Line1)),
    ("address_line2", ProfileField::Address(AddressField::Line2)),
    ("city", ProfileField::Address(AddressField::City)),
    ("state", ProfileField::Address(AddressField::State)),
    ("zipcode", ProfileField::Address(AddressField::Zipcode)),
    ("country", ProfileField::Address(AddressField::Country)),
    (
        "ship_address_line1",
        ProfileField::ShippingAddress(AddressField::Line1),
    ),
    (
        "ship_address_line2",
        ProfileField::ShippingAddress(AddressField::Line2),
    ),
    (
        "ship_city",
        ProfileField::ShippingAddress(AddressField::City),
    ),
    (
        "ship_state",
        ProfileField::ShippingAddress(AddressField::State),
    ),
    (
        "ship_zipcode",
        ProfileField::ShippingAddress(AddressField::Zipcode),
    ),
    (
        "ship_country",
        ProfileField::ShippingAddress(AddressField::Country),
    ),
    ("payment_provider", ProfileField::PaymentProvider),
    ("payment_provider_code", ProfileField::PaymentProviderCode),
    ("provider_customer_id", ProfileField::ProviderCustomerId),
];

/// The customer as stored: profile text in a map, the rest as typed attributes.
#[derive(Serialize, Deserialize)]
pub struct CustomerItem {
    external_id: String,
    text: HashMap<String, String>,
    email: Option<String>,
    currency: Option<String>,
    timezone: Option<String>,
    account_type: String,
    customer_type: Option<String>,
    net_payment_term: Option<i64>,
    finalize_zero_amount_invoice: String,
    invoice_grace_period: Option<i64>,
    document_locale: Option<String>,
    invoice_issuing_date_anchor: Option<String>,
    invoice_issuing_date_adjustment: Option<String>,
    sync: Option<bool>,
    sync_with_provider: Option<bool>,
    provider_payment_methods: Option<Vec<String>>,
    /// Lago ids of the applied taxes.
    #[serde(default)]
    tax_ids: Vec<String>,
    metadata: Vec<(String, String, bool)>,
    skip_invoice_custom_sections: bool,
    billing_entity_code: Option<String>,
}

fn profile_text(c: &Customer) -> HashMap<String, String> {
    let p = c.profile();
    let values: [(&str, &Option<String>); 24] = [
        ("name", &p.name),
        ("firstname", &p.firstname),
        ("lastname", &p.lastname),
        ("phone", &p.phone),
        ("url", &p.url),
        ("logo_url", &p.logo_url),
        ("legal_name", &p.legal_name),
        ("legal_number", &p.legal_number),
        ("tax_identification_number", &p.tax_identification_number),
        ("address_line1", &p.address.address_line1),
        ("address_line2", &p.address.address_line2),
        ("city", &p.address.city),
        ("state", &p.address.state),
        ("zipcode", &p.address.zipcode),
        ("country", &p.address.country),
        ("ship_address_line1", &p.shipping_address.address_line1),
        ("ship_address_line2", &p.shipping_address.address_line2),
        ("ship_city", &p.shipping_address.city),
        ("ship_state", &p.shipping_address.state),
        ("ship_zipcode", &p.shipping_address.zipcode),
        ("ship_country", &p.shipping_address.country),
        ("payment_provider", &p.provider.payment_provider),
        ("payment_provider_code", &p.provider.payment_provider_code),
        ("provider_customer_id", &p.provider.provider_customer_id),
    ];
    values
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.to_owned(), v)))
        .collect()
}

fn set<T>(v: Option<T>) -> Patch<T> {
    v.map_or(Patch::Keep, Patch::Set)
}

impl Kind for Customer {
    const PREFIX: &'static str = "CUS#";
    type Item = CustomerItem;

    fn key(&self) -> &str {
        self.external_id()
    }

    fn to_item(&self) -> CustomerItem {
        use billing::catalog::customer::{AccountType, ZeroAmountInvoice};
        let p = &self.profile().provider;
        CustomerItem {
            external_id: self.external_id().to_owned(),
            text: profile_text(self),
            email: self.email().map(str::to_owned),
            currency: self.currency().map(str::to_owned),
            timezone: self.timezone().map(|t| t.name().to_owned()),
            account_type: match self.account_type() {
                AccountType::Customer => "customer".into(),
                AccountType::Partner => "partner".into(),
            },
            customer_type: self.customer_type().map(str::to_owned),
            net_payment_term: self.net_payment_term().map(i64::from),
            finalize_zero_amount_invoice: match self.finalize_zero_amount_invoice() {
                ZeroAmountInvoice::Inherit => "inherit".into(),
                ZeroAmountInvoice::Skip => "skip".into(),
                ZeroAmountInvoice::Finalize => "finalize".into(),
            },
            invoice_grace_period: self.invoice_grace_period().map(i64::from),
            document_locale: self.document_locale().map(str::to_owned),
            invoice_issuing_date_anchor: self.invoice_issuing_date_anchor().map(str::to_owned),
            invoice_issuing_date_adjustment: self
                .invoice_issuing_date_adjustment()
                .map(str::to_owned),
            sync: p.sync,
            sync_with_provider: p.sync_with_provider,
            provider_payment_methods: p.provider_payment_methods.clone(),
            tax_ids: self.tax_ids().to_vec(),
            metadata: self
                .metadata()
                .iter()
                .map(|m| (m.key.clone(), m.value.clone(), m.display_in_invoice))
                .collect(),
            skip_invoice_custom_sections: self.skip_invoice_custom_sections(),
            billing_entity_code: self.billing_entity_code().map(str::to_owned),
        }
    }

    fn from_item(mut item: CustomerItem) -> Result<Self, String> {
        let text = PROFILE_FIELDS
            .iter()
            .filter_map(|(k, field)| item.text.remove(*k).map(|v| (*field, Some(v))))
            .collect();
        Customer::create(
            &item.external_id,
            CustomerPatch {
                profile: ProfilePatch {
                    text,
                    sync: set(item.sync),
                    sync_with_provider: set(item.sync_with_provider),
                    provider_payment_methods: set(item.provider_payment_methods),
                },
                email: set(item.email),
                country: Patch::Keep,
                currency: set(item.currency),
                timezone: set(item.timezone),
                account_type: Patch::Set(item.account_type),
                customer_type: set(item.customer_type),
                net_payment_term: set(item.net_payment_term),
                finalize_zero_amount_invoice: Patch::Set(item.finalize_zero_amount_invoice),
                invoice_grace_period: set(item.invoice_grace_period),
                document_locale: set(item.document_locale),
                invoice_issuing_date_anchor: set(item.invoice_issuing_date_anchor),
                invoice_issuing_date_adjustment: set(item.invoice_issuing_date_adjustment),
                tax_ids: Some(item.tax_ids),
                metadata: Some(
                    item.metadata
                        .into_iter()
                        .map(|(k, v, d)| (Some(k), Some(v), Some(d)))
                        .collect(),
                ),
                skip_invoice_custom_sections: Some(item.skip_invoice_custom_sections),
                billing_entity_code: set(item.billing_entity_code),
            },
        )
        .map_err(|e| format!("customer: {e:?}"))
    }
}
