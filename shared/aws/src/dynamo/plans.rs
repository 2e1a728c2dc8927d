//! Plans in the billing table.
//!
//! - Item: `sk = PLAN#<store key>` ([`Plan::store_key`]): the code for a catalog plan,
//!   `<code>/<suffix>` for a subscription's override plan, `<code>/deleted/<suffix>` for a
//!   deleted plan kept for the subscriptions it priced. `get::<Plan>(org, key)` reads any of
//!   them.
//! - Catalog plans (and only they) carry `gsi1pk = ORG#<org>#PLANS`, `gsi1sk = <code>`: a sparse
//!   index, so listing the catalog never reads the override plans, however many subscriptions
//!   have overrides. The index is eventually consistent (a plan created a moment ago may be
//!   missing from a list); reads by key are not.
//! - Writes go through [`BillingStore::create_plan`] and [`BillingStore::replace_plan`], which
//!   keep the index attributes in step with the record.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, Select, TransactWriteItem};
use billing::catalog::{
    Record,
    plan::{
        Charge, ChargeFilterInput, ChargeInput, MinimumCommitment, Plan, PlanInput, UsageThreshold,
    },
};
use billing::charge_model::{ChargePropertiesInput, RangeInput};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BillingStore, Kind, LIST_SCAN_MAX, StoreError, mapping, org_pk};

/// The index partition of an organization's catalog plans.
fn catalog_pk(org_id: &str) -> String {
    format!("{}#PLANS", org_pk(org_id))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[derive(Serialize, Deserialize, Default)]
struct RangeItem {
    from_value: Option<String>,
    to_value: Option<String>,
    per_unit_amount: Option<String>,
    rate: Option<String>,
    flat_amount: Option<String>,
}

/// Charge properties as sent (decimal strings and integers), so they are echoed exactly.
#[derive(Serialize, Deserialize, Default)]
struct PropertiesItem {
    amount: Option<String>,
    graduated_ranges: Option<Vec<RangeItem>>,
    graduated_percentage_ranges: Option<Vec<RangeItem>>,
    volume_ranges: Option<Vec<RangeItem>>,
    package_size: Option<i64>,
    free_units: Option<i64>,
    rate: Option<String>,
    fixed_amount: Option<String>,
    free_units_per_events: Option<i64>,
    free_units_per_total_aggregation: Option<String>,
    per_transaction_min_amount: Option<String>,
    per_transaction_max_amount: Option<String>,
    pricing_group_keys: Option<Vec<String>>,
}

fn ranges_to_item(ranges: &Option<Vec<RangeInput>>) -> Option<Vec<RangeItem>> {
    ranges.as_ref().map(|rs| {
        rs.iter()
            .map(|r| RangeItem {
                from_value: r.from_value.clone(),
                to_value: r.to_value.clone(),
                per_unit_amount: r.per_unit_amount.clone(),
                rate: r.rate.clone(),
                flat_amount: r.flat_amount.clone(),
            })
            .collect()
    })
}

fn ranges_from_item(ranges: Option<Vec<RangeItem>>) -> Option<Vec<RangeInput>> {
    ranges.map(|rs| {
        rs.into_iter()
            .map(|r| RangeInput {
                from_value: r.from_value,
                to_value: r.to_value,
                per_unit_amount: r.per_unit_amount,
                rate: r.rate,
                flat_amount: r.flat_amount,
            })
            .collect()
    })
}

impl From<&ChargePropertiesInput> for PropertiesItem {
    fn from(p: &ChargePropertiesInput) -> Self {
        Self {
            amount: p.amount.clone(),
            graduated_ranges: ranges_to_item(&p.graduated_ranges),
            graduated_percentage_ranges: ranges_to_item(&p.graduated_percentage_ranges),
            volume_ranges: ranges_to_item(&p.volume_ranges),
            package_size: p.package_size,
            free_units: p.free_units,
            rate: p.rate.clone(),
            fixed_amount: p.fixed_amount.clone(),
            free_units_per_events: p.free_units_per_events,
            free_units_per_total_aggregation: p.free_units_per_total_aggregation.clone(),
            per_transaction_min_amount: p.per_transaction_min_amount.clone(),
            per_transaction_max_amount: p.per_transaction_max_amount.clone(),
            pricing_group_keys: p.pricing_group_keys.clone(),
        }
    }
}

impl From<PropertiesItem> for ChargePropertiesInput {
    fn from(p: PropertiesItem) -> Self {
        Self {
            amount: p.amount,
            graduated_ranges: ranges_from_item(p.graduated_ranges),
            graduated_percentage_ranges: ranges_from_item(p.graduated_percentage_ranges),
            volume_ranges: ranges_from_item(p.volume_ranges),
            package_size: p.package_size,
            free_units: p.free_units,
            rate: p.rate,
            fixed_amount: p.fixed_amount,
            free_units_per_events: p.free_units_per_events,
            free_units_per_total_aggregation: p.free_units_per_total_aggregation,
            per_transaction_min_amount: p.per_transaction_min_amount,
            per_transaction_max_amount: p.per_transaction_max_amount,
            pricing_group_keys: p.pricing_group_keys,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct FilterItem {
    values: Vec<(String, Vec<String>)>,
    properties: PropertiesItem,
    invoice_display_name: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ChargeItem {
    lago_id: String,
    created_at: DateTime<Utc>,
    parent_id: Option<String>,
    code: String,
    billable_metric_id: String,
    billable_metric_code: String,
    charge_model: String,
    properties: PropertiesItem,
    filters: Vec<FilterItem>,
    pay_in_advance: bool,
    invoiceable: bool,
    prorated: bool,
    regroup_paid_fees: Option<String>,
    min_amount_cents: i64,
    tax_codes: Vec<String>,
    invoice_display_name: Option<String>,
}

impl From<&Charge> for ChargeItem {
    fn from(c: &Charge) -> Self {
        let input = c.to_input();
        Self {
            lago_id: input.lago_id,
            created_at: input.created_at,
            parent_id: input.parent_id,
            code: c.code().to_owned(),
            billable_metric_id: c.billable_metric_id().to_owned(),
            billable_metric_code: c.billable_metric_code().to_owned(),
            charge_model: c.charge_model().as_str().to_owned(),
            properties: PropertiesItem::from(c.properties_input()),
            filters: c
                .filters()
                .iter()
                .map(|f| FilterItem {
                    values: f
                        .values()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    properties: PropertiesItem::from(f.properties_input()),
                    invoice_display_name: f.invoice_display_name().map(str::to_owned),
                })
                .collect(),
            pay_in_advance: c.pay_in_advance(),
            invoiceable: c.invoiceable(),
            prorated: c.prorated(),
            regroup_paid_fees: input.regroup_paid_fees,
            min_amount_cents: c.min_amount_cents(),
            tax_codes: c.tax_codes().to_vec(),
            invoice_display_name: c.invoice_display_name().map(str::to_owned),
        }
    }
}

impl ChargeItem {
    fn into_charge(self) -> Result<Charge, String> {
        let (bm_id, bm_code, code) = (
            self.billable_metric_id,
            self.billable_metric_code,
            self.code,
        );
        Charge::restore(
            ChargeInput {
                lago_id: self.lago_id,
                created_at: self.created_at,
                parent_id: self.parent_id,
                code: Some(code.clone()),
                charge_model: Some(self.charge_model),
                properties: Some(self.properties.into()),
                filters: self
                    .filters
                    .into_iter()
                    .map(|f| ChargeFilterInput {
                        values: f.values.into_iter().collect(),
                        properties: f.properties.into(),
                        invoice_display_name: f.invoice_display_name,
                    })
                    .collect(),
                pay_in_advance: self.pay_in_advance,
                invoiceable: self.invoiceable,
                prorated: self.prorated,
                regroup_paid_fees: self.regroup_paid_fees,
                min_amount_cents: Some(self.min_amount_cents),
                tax_codes: self.tax_codes,
                invoice_display_name: self.invoice_display_name,
            },
            &bm_id,
            &bm_code,
        )
        .map_err(|e| format!("charge {code}: {e:?}"))
    }
}

#[derive(Serialize, Deserialize)]
struct CommitmentItem {
    lago_id: String,
    amount_cents: i64,
    invoice_display_name: Option<String>,
    tax_codes: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct ThresholdItem {
    lago_id: String,
    amount_cents: i64,
    threshold_display_name: Option<String>,
    recurring: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// A plan as stored.
#[derive(Serialize, Deserialize)]
pub struct PlanItem {
    name: String,
    code: String,
    interval: String,
    description: Option<String>,
    invoice_display_name: Option<String>,
    amount_cents: i64,
    amount_currency: String,
    trial_period: Option<String>,
    pay_in_advance: bool,
    bill_charges_monthly: Option<bool>,
    tax_codes: Vec<String>,
    minimum_commitment: Option<CommitmentItem>,
    usage_thresholds: Vec<ThresholdItem>,
    metadata: Vec<(String, Option<String>)>,
    charges: Vec<ChargeItem>,
    parent_code: Option<String>,
    parent_id: Option<String>,
    store_suffix: Option<String>,
    pending_deletion: bool,
}

impl Kind for Plan {
    const PREFIX: &'static str = "PLAN#";
    type Item = PlanItem;

    fn key(&self) -> &str {
        self.store_key()
    }

    fn to_item(&self) -> PlanItem {
        let i = self.to_input();
        PlanItem {
            name: self.name().to_owned(),
            code: self.code().to_owned(),
            interval: self.interval().as_str().to_owned(),
            description: i.description,
            invoice_display_name: i.invoice_display_name,
            amount_cents: self.amount_cents(),
            amount_currency: self.amount_currency().to_owned(),
            trial_period: i.trial_period.map(|t| t.to_string()),
            pay_in_advance: self.pay_in_advance(),
            bill_charges_monthly: self.bill_charges_monthly_setting(),
            tax_codes: i.tax_codes,
            minimum_commitment: i.minimum_commitment.map(|c| CommitmentItem {
                lago_id: c.lago_id,
                amount_cents: c.amount_cents,
                invoice_display_name: c.invoice_display_name,
                tax_codes: c.tax_codes,
                created_at: c.created_at,
                updated_at: c.updated_at,
            }),
            usage_thresholds: i
                .usage_thresholds
                .into_iter()
                .map(|t| ThresholdItem {
                    lago_id: t.lago_id,
                    amount_cents: t.amount_cents,
                    threshold_display_name: t.threshold_display_name,
                    recurring: t.recurring,
                    created_at: t.created_at,
                    updated_at: t.updated_at,
                })
                .collect(),
            metadata: i.metadata,
            charges: self.charges().iter().map(ChargeItem::from).collect(),
            parent_code: i.parent_code,
            parent_id: i.parent_id,
            store_suffix: i.store_suffix,
            pending_deletion: i.pending_deletion,
        }
    }

    fn from_item(item: PlanItem) -> Result<Self, String> {
        let trial_period = match item.trial_period {
            None => None,
            Some(t) => Some(
                t.parse()
                    .map_err(|_| format!("plan {}: trial period {t:?}", item.code))?,
            ),
        };
        let charges = item
            .charges
            .into_iter()
            .map(ChargeItem::into_charge)
            .collect::<Result<Vec<_>, _>>()?;
        Plan::new(PlanInput {
            name: Some(item.name),
            code: Some(item.code.clone()),
            interval: Some(item.interval),
            description: item.description,
            invoice_display_name: item.invoice_display_name,
            amount_cents: Some(item.amount_cents),
            amount_currency: Some(item.amount_currency),
            trial_period,
            pay_in_advance: Some(item.pay_in_advance),
            bill_charges_monthly: item.bill_charges_monthly,
            tax_codes: item.tax_codes,
            minimum_commitment: item.minimum_commitment.map(|c| MinimumCommitment {
                lago_id: c.lago_id,
                amount_cents: c.amount_cents,
                invoice_display_name: c.invoice_display_name,
                tax_codes: c.tax_codes,
                created_at: c.created_at,
                updated_at: c.updated_at,
            }),
            usage_thresholds: item
                .usage_thresholds
                .into_iter()
                .map(|t| UsageThreshold {
                    lago_id: t.lago_id,
                    amount_cents: t.amount_cents,
                    threshold_display_name: t.threshold_display_name,
                    recurring: t.recurring,
                    created_at: t.created_at,
                    updated_at: t.updated_at,
                })
                .collect(),
            metadata: item.metadata,
            charges,
            parent_code: item.parent_code,
            parent_id: item.parent_id,
            store_suffix: item.store_suffix,
            pending_deletion: item.pending_deletion,
        })
        .map_err(|e| format!("plan {}: {e:?}", item.code))
    }
}

/// The item of a plan record, with the catalog index attributes when it is a catalog plan.
pub(crate) fn plan_item(
    org_id: &str,
    record: &Record<Plan>,
) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut item = mapping::to_item(org_id, record)?;
    if record.value.is_catalog_plan() {
        item.insert("gsi1pk".into(), s(catalog_pk(org_id)));
        item.insert("gsi1sk".into(), s(record.value.code()));
    }
    Ok(item)
}

fn conditional_failed<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

impl BillingStore {
    /// Stores a new plan; `AlreadyExists` if its store key is taken.
    pub async fn create_plan(&self, org_id: &str, record: &Record<Plan>) -> Result<(), StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(plan_item(org_id, record)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a plan read at `record.version - 1`, under `previous_key`. When the store key
    /// changed (a new code, or a deletion), the old item is deleted and the new one created in
    /// one transaction: `AlreadyExists` if the new key is taken, `Conflict` if the plan changed.
    pub async fn replace_plan(
        &self,
        org_id: &str,
        previous_key: &str,
        record: &Record<Plan>,
    ) -> Result<(), StoreError> {
        let item = plan_item(org_id, record)?;
        let read_version = AttributeValue::N(record.version.saturating_sub(1).to_string());
        if previous_key == record.value.store_key() {
            let result = self
                .client()
                .put_item()
                .table_name(self.table())
                .set_item(Some(item))
                .condition_expression("attribute_exists(pk) AND version = :v")
                .expression_attribute_values(":v", read_version)
                .send()
                .await;
            return match result {
                Ok(_) => Ok(()),
                Err(e) if e.as_service_error().is_some_and(conditional_failed) => {
                    Err(StoreError::Conflict)
                }
                Err(e) => Err(e.into()),
            };
        }
        let delete = Delete::builder()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(format!("{}{previous_key}", Plan::PREFIX)))
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(":v", read_version)
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let result = self
            .client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match transaction_failures(&e) {
                Some(failed) if failed.get(1).copied().unwrap_or(false) => {
                    Err(StoreError::AlreadyExists)
                }
                Some(failed) if failed.iter().any(|f| *f) => Err(StoreError::Conflict),
                _ => Err(e.into()),
            },
        }
    }

    /// Deletes a plan item read at `version` (the last step of a plan deletion, once its
    /// record was copied under its deleted key).
    pub async fn delete_plan_item(
        &self,
        org_id: &str,
        store_key: &str,
        version: u64,
    ) -> Result<(), StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(org_pk(org_id)))
            .key("sk", s(format!("{}{store_key}", Plan::PREFIX)))
            .condition_expression("attribute_exists(pk) AND version = :v")
            .expression_attribute_values(":v", AttributeValue::N(version.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(conditional_failed) => {
                Err(StoreError::Conflict)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// One page of the organization's catalog plans (no override or deleted plans), ordered by
    /// code, and their total count. Pages are 1-based.
    pub async fn list_plans(
        &self,
        org_id: &str,
        page: usize,
        per_page: usize,
    ) -> Result<(Vec<Record<Plan>>, usize), StoreError> {
        let total = self.count_plans(org_id).await?;
        let skip = page.saturating_sub(1).saturating_mul(per_page);
        let mut seen = 0usize;
        let mut items = Vec::with_capacity(per_page.min(total));
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        while items.len() < per_page && seen < total.min(LIST_SCAN_MAX) {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(catalog_pk(org_id)))
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            for item in out.items.unwrap_or_default() {
                if seen >= skip && items.len() < per_page {
                    items.push(mapping::from_item(item)?);
                }
                seen += 1;
            }
            match out.last_evaluated_key {
                Some(key) => start = Some(key),
                None => break,
            }
        }
        Ok((items, total))
    }

    async fn count_plans(&self, org_id: &str) -> Result<usize, StoreError> {
        let mut total = 0usize;
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table())
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(catalog_pk(org_id)))
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await?;
            total += usize::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(key) if total < LIST_SCAN_MAX => start = Some(key),
                _ => return Ok(total),
            }
        }
    }
}

/// For a canceled transaction, which of its items failed their condition.
pub(crate) fn transaction_failures<R>(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        R,
    >,
) -> Option<Vec<bool>> {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    match e.as_service_error()? {
        TransactWriteItemsError::TransactionCanceledException(c) => Some(
            c.cancellation_reasons()
                .iter()
                .map(|r| r.code() == Some("ConditionalCheckFailed"))
                .collect(),
        ),
        _ => None,
    }
}
