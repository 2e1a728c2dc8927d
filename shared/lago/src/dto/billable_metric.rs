//! `billable_metric` bodies (API_CONTRACT §4.2).

use billing::catalog::{
    Record,
    metric::{BillableMetric, BillableMetricInput},
};
use serde::{Deserialize, Serialize};

use super::{nullable, timestamp};

/// One filter as sent and returned: a property key and its allowed values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilterDto {
    /// The event property key.
    pub key: String,
    /// Its allowed values.
    pub values: Vec<String>,
}

/// `{"billable_metric": {...}}` of a create or an update (on update nothing is required).
#[derive(Debug, Default, Deserialize)]
pub struct BillableMetricInputDto {
    // `null` is kept apart from absent (`Some(None)`) for every field: lago-api assigns every
    // sent key, so a null name, code or aggregation type is refused as mandatory, not ignored.
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    code: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    aggregation_type: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    field_name: Option<Option<String>>,
    recurring: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    weighted_interval: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    rounding_function: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    rounding_precision: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    expression: Option<Option<String>>,
    filters: Option<Vec<FilterDto>>,
}

impl BillableMetricInputDto {
    /// The domain input of a create.
    pub fn into_create(self) -> BillableMetricInput {
        self.overlay(BillableMetricInput::default())
    }

    /// The domain input of an update: the sent fields over the current definition.
    pub fn into_update(self, current: &BillableMetric) -> BillableMetricInput {
        self.overlay(current.to_input())
    }

    fn overlay(self, mut base: BillableMetricInput) -> BillableMetricInput {
        fn put<T>(slot: &mut Option<T>, value: Option<Option<T>>) {
            if let Some(v) = value {
                *slot = v;
            }
        }
        put(&mut base.name, self.name);
        put(&mut base.code, self.code);
        put(&mut base.aggregation_type, self.aggregation_type);
        if self.recurring.is_some() {
            base.recurring = self.recurring;
        }
        put(&mut base.description, self.description);
        put(&mut base.field_name, self.field_name);
        put(&mut base.weighted_interval, self.weighted_interval);
        put(&mut base.rounding_function, self.rounding_function);
        put(&mut base.rounding_precision, self.rounding_precision);
        put(&mut base.expression, self.expression);
        if let Some(filters) = self.filters {
            base.filters = Some(filters.into_iter().map(|f| (f.key, f.values)).collect());
        }
        base
    }
}

/// `BillableMetricObject`.
#[derive(Debug, Serialize)]
pub struct BillableMetricDto {
    lago_id: String,
    name: String,
    code: String,
    description: Option<String>,
    recurring: bool,
    rounding_function: Option<&'static str>,
    rounding_precision: Option<i32>,
    created_at: String,
    expression: Option<String>,
    field_name: Option<String>,
    aggregation_type: &'static str,
    weighted_interval: Option<&'static str>,
    filters: Vec<FilterDto>,
    active_subscriptions_count: u64,
    draft_invoices_count: u64,
    plans_count: u64,
}

impl From<&Record<BillableMetric>> for BillableMetricDto {
    fn from(r: &Record<BillableMetric>) -> Self {
        let m = &r.value;
        Self {
            lago_id: r.lago_id.clone(),
            name: m.name().to_owned(),
            code: m.code().to_owned(),
            description: m.description().map(str::to_owned),
            recurring: m.recurring(),
            rounding_function: m.rounding_function().map(|f| f.as_str()),
            rounding_precision: m.rounding_precision(),
            created_at: timestamp(r.created_at),
            expression: m.expression().map(str::to_owned),
            field_name: m.field_name().map(str::to_owned),
            aggregation_type: m.aggregation_type().as_str(),
            weighted_interval: m.weighted_interval().map(|w| w.as_str()),
            filters: m
                .filters()
                .iter()
                .map(|f| FilterDto {
                    key: f.key().to_owned(),
                    values: f.values().to_vec(),
                })
                .collect(),
            active_subscriptions_count: 0,
            draft_invoices_count: 0,
            plans_count: 0,
        }
    }
}
