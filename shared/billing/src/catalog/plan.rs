//! Plans: the price list a subscription follows. A plan has a recurring fee (`amount_cents`
//! per `interval`, in advance or in arrears, with optional trial days) and usage-based
//! [`Charge`]s, each pricing one billable metric with a charge model (SEMANTICS §3-§4).
//!
//! ## Identity
//! - [`Plan::code`] is the public code, as the API shows it. An override plan (a subscription's
//!   `plan_overrides`) keeps its parent's code, as Lago does, and names it in
//!   [`Plan::parent_code`].
//! - [`Plan::store_key`] is the plan's key in the store: the code for a plan of the catalog,
//!   `<parent code>/<suffix>` for an override child, `<code>/deleted/<suffix>` for a deleted
//!   plan kept for the subscriptions it priced. Codes never contain `/` ([`super::check_code`]),
//!   so a store key never collides with a catalog plan's code.
//!
//! ## Charge properties
//! Each charge keeps its properties twice: validated ([`ChargeProperties`], what pricing reads)
//! and as sent ([`ChargePropertiesInput`], sliced to the model's keys, what the API echoes), so
//! a price is returned exactly as written (`"0.50"` stays `"0.50"`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{FieldError, ValidationErrors, check_code, check_name, metric::BillableMetric};
use crate::{
    aggregation::filters::{ALL_FILTER_VALUES, FilterValues},
    charge_model::{
        ChargeModel, ChargeProperties, ChargePropertiesInput, RangeInput,
        properties::validate_charge_rules,
    },
    money::Currency,
    period::PlanInterval,
};

/// Longest metadata key and value Lago accepts.
const METADATA_KEY_MAX: usize = 100;
const METADATA_VALUE_MAX: usize = 255;

/// The charge models Lago knows, by wire name.
pub const CHARGE_MODELS: [&str; 7] = [
    "standard",
    "graduated",
    "graduated_percentage",
    "package",
    "percentage",
    "volume",
    "dynamic",
];

/// The properties Lago substitutes when a charge is sent without properties (or with `{}`):
/// `BuildDefaultPropertiesService` (API_CONTRACT §4.3.1). `None` for an unknown model.
pub fn default_properties(charge_model: &str) -> Option<ChargePropertiesInput> {
    let zero = || Some("0".to_owned());
    let open_range = |rate: bool| RangeInput {
        from_value: Some("0".into()),
        to_value: None,
        per_unit_amount: if rate { None } else { zero() },
        rate: if rate { zero() } else { None },
        flat_amount: zero(),
    };
    let mut p = ChargePropertiesInput::default();
    match charge_model {
        "standard" => p.amount = zero(),
        "graduated" => p.graduated_ranges = Some(vec![open_range(false)]),
        "volume" => p.volume_ranges = Some(vec![open_range(false)]),
        "graduated_percentage" => p.graduated_percentage_ranges = Some(vec![open_range(true)]),
        "package" => {
            p.amount = zero();
            p.package_size = Some(1);
            p.free_units = Some(0);
        }
        "percentage" => p.rate = zero(),
        "dynamic" => {}
        _ => return None,
    }
    Some(p)
}

/// Keeps only the keys `charge_model` reads, plus the pricing group keys, as lago-api's
/// `FilterPropertiesService` does before storing properties.
pub fn slice_properties(
    charge_model: &str,
    input: &ChargePropertiesInput,
) -> ChargePropertiesInput {
    let mut out = ChargePropertiesInput {
        pricing_group_keys: input.pricing_group_keys.clone(),
        ..ChargePropertiesInput::default()
    };
    let keep_ranges = |ranges: &Option<Vec<RangeInput>>, rate: bool| {
        ranges.as_ref().map(|rs| {
            rs.iter()
                .map(|r| RangeInput {
                    from_value: r.from_value.clone(),
                    to_value: r.to_value.clone(),
                    per_unit_amount: if rate {
                        None
                    } else {
                        r.per_unit_amount.clone()
                    },
                    rate: if rate { r.rate.clone() } else { None },
                    flat_amount: r.flat_amount.clone(),
                })
                .collect()
        })
    };
    match charge_model {
        "standard" => out.amount = input.amount.clone(),
        "graduated" => out.graduated_ranges = keep_ranges(&input.graduated_ranges, false),
        "volume" => out.volume_ranges = keep_ranges(&input.volume_ranges, false),
        "graduated_percentage" => {
            out.graduated_percentage_ranges = keep_ranges(&input.graduated_percentage_ranges, true)
        }
        "package" => {
            out.amount = input.amount.clone();
            out.package_size = input.package_size;
            out.free_units = input.free_units;
        }
        "percentage" => {
            out.rate = input.rate.clone();
            out.fixed_amount = input.fixed_amount.clone();
            out.free_units_per_events = input.free_units_per_events;
            out.free_units_per_total_aggregation = input.free_units_per_total_aggregation.clone();
            out.per_transaction_min_amount = input.per_transaction_min_amount.clone();
            out.per_transaction_max_amount = input.per_transaction_max_amount.clone();
        }
        _ => {}
    }
    out
}

/// `regroup_paid_fees`: how paid (non-invoiceable) fees are later gathered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegroupPaidFees {
    /// `invoice`: paid fees are regrouped on an invoice.
    Invoice,
}

impl RegroupPaidFees {
    /// Lago's wire name.
    pub fn as_str(self) -> &'static str {
        "invoice"
    }
}

/// One charge filter as a caller defines it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChargeFilterInput {
    /// Metric filter key -> values (`__ALL_FILTER_VALUES__` alone means every value).
    pub values: BTreeMap<String, Vec<String>>,
    /// The filter's own properties, for the charge's model.
    pub properties: ChargePropertiesInput,
    /// Name on invoices.
    pub invoice_display_name: Option<String>,
}

/// A validated charge filter: events matching [`ChargeFilter::values`] are priced with its own
/// properties (SEMANTICS §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeFilter {
    values: BTreeMap<String, Vec<String>>,
    properties: ChargeProperties,
    properties_input: ChargePropertiesInput,
    invoice_display_name: Option<String>,
}

impl ChargeFilter {
    /// Metric filter key -> values, **as sent**: `__ALL_FILTER_VALUES__` is kept, not expanded
    /// (see [`ChargeFilter::filter_values`] for the typed form the aggregation reads).
    pub fn values(&self) -> &BTreeMap<String, Vec<String>> {
        &self.values
    }

    /// The values as [`crate::aggregation::filters::FilterSet::new`] takes them
    /// (`__ALL_FILTER_VALUES__` becomes [`FilterValues::All`]).
    pub fn filter_values(&self) -> BTreeMap<String, FilterValues> {
        self.values
            .iter()
            .map(|(k, v)| (k.clone(), FilterValues::from_wire(v.clone())))
            .collect()
    }

    /// The filter's validated properties.
    pub fn properties(&self) -> &ChargeProperties {
        &self.properties
    }

    /// The properties as sent (sliced to the model's keys), for echoing.
    pub fn properties_input(&self) -> &ChargePropertiesInput {
        &self.properties_input
    }

    /// Name on invoices.
    pub fn invoice_display_name(&self) -> Option<&str> {
        self.invoice_display_name.as_deref()
    }

    fn to_input(&self) -> ChargeFilterInput {
        ChargeFilterInput {
            values: self.values.clone(),
            properties: self.properties_input.clone(),
            invoice_display_name: self.invoice_display_name.clone(),
        }
    }
}

/// Everything that defines a charge. Identity (`lago_id`, `created_at`) is an input: the caller
/// keeps a charge's identity across updates and generates it for new ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeInput {
    /// Lago id of the charge.
    pub lago_id: String,
    /// When the charge was created.
    pub created_at: DateTime<Utc>,
    /// The parent charge of an override plan's charge.
    pub parent_id: Option<String>,
    /// Unique code within the plan; generated from the metric code when `None`.
    pub code: Option<String>,
    /// Wire name of the charge model (required).
    pub charge_model: Option<String>,
    /// Properties as sent; `None` (omitted, null or `{}`) means the model's defaults.
    pub properties: Option<ChargePropertiesInput>,
    /// Charge filters.
    pub filters: Vec<ChargeFilterInput>,
    /// Billed per event, as it arrives.
    pub pay_in_advance: bool,
    /// Whether its fees go on an invoice (false only in advance).
    pub invoiceable: bool,
    /// Prorated on the days of the period the units existed.
    pub prorated: bool,
    /// `regroup_paid_fees` as sent (`invoice` or none).
    pub regroup_paid_fees: Option<String>,
    /// Minimum spend per period, in cents.
    pub min_amount_cents: Option<i64>,
    /// Codes of the charge's taxes.
    pub tax_codes: Vec<String>,
    /// Name on invoices.
    pub invoice_display_name: Option<String>,
}

/// A validated usage-based charge of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    lago_id: String,
    created_at: DateTime<Utc>,
    parent_id: Option<String>,
    code: String,
    billable_metric_id: String,
    billable_metric_code: String,
    properties: ChargeProperties,
    properties_input: ChargePropertiesInput,
    filters: Vec<ChargeFilter>,
    pay_in_advance: bool,
    invoiceable: bool,
    prorated: bool,
    regroup_paid_fees: Option<RegroupPaidFees>,
    min_amount_cents: i64,
    tax_codes: Vec<String>,
    invoice_display_name: Option<String>,
}

/// Validates properties for a model: defaults when absent, sliced to the model's keys.
fn parse_properties(
    model: &str,
    input: Option<&ChargePropertiesInput>,
) -> Result<(ChargeProperties, ChargePropertiesInput), ValidationErrors> {
    let sent = match input {
        Some(p) => slice_properties(model, p),
        None => default_properties(model).unwrap_or_default(),
    };
    ChargeProperties::parse(model, &sent).map(|parsed| (parsed, sent))
}

impl Charge {
    /// Validates a charge of `metric` (whose Lago id is `billable_metric_id`): the model and its
    /// properties (Lago's codes under Lago's field names), the filters against the metric's
    /// filter keys and values, and the metric/model/pay-in-advance rules.
    pub fn new(
        input: ChargeInput,
        billable_metric_id: &str,
        metric: &BillableMetric,
    ) -> Result<Self, ValidationErrors> {
        Self::build(input, billable_metric_id, metric.code(), Some(metric))
    }

    /// Rebuilds a stored charge: the model and properties are parsed again (so a stored charge
    /// is always one [`Charge::new`] accepted), but the metric rules are not re-checked, as the
    /// metric may have changed since.
    pub fn restore(
        input: ChargeInput,
        billable_metric_id: &str,
        billable_metric_code: &str,
    ) -> Result<Self, ValidationErrors> {
        Self::build(input, billable_metric_id, billable_metric_code, None)
    }

    fn build(
        input: ChargeInput,
        billable_metric_id: &str,
        billable_metric_code: &str,
        metric: Option<&BillableMetric>,
    ) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let model = match input.charge_model.as_deref() {
            None | Some("") => {
                errors.push("charge_model", "value_is_mandatory");
                None
            }
            Some(m) if !CHARGE_MODELS.contains(&m) => {
                errors.push("charge_model", "value_is_invalid");
                None
            }
            Some(m) => Some(m.to_owned()),
        };
        let Some(model) = model else {
            return Err(errors);
        };
        let parsed = match parse_properties(&model, input.properties.as_ref()) {
            Ok(p) => Some(p),
            Err(mut e) => {
                errors.0.append(&mut e.0);
                None
            }
        };

        let mut filters = Vec::with_capacity(input.filters.len());
        for filter in input.filters {
            if let Some(metric) = metric {
                check_filter_values(&filter.values, metric, &mut errors);
            }
            match parse_properties(&model, Some(&filter.properties)) {
                Ok((properties, properties_input)) => filters.push(ChargeFilter {
                    values: filter.values,
                    properties,
                    properties_input,
                    invoice_display_name: filter.invoice_display_name,
                }),
                Err(mut e) => errors.0.append(&mut e.0),
            }
        }

        let regroup_paid_fees = match input.regroup_paid_fees.as_deref() {
            None => None,
            Some("invoice") => Some(RegroupPaidFees::Invoice),
            Some(_) => {
                errors.push("regroup_paid_fees", "value_is_invalid");
                None
            }
        };
        if regroup_paid_fees.is_some() && (!input.pay_in_advance || input.invoiceable) {
            errors.push("regroup_paid_fees", "value_is_invalid");
        }
        if let Some(code) = &input.code {
            check_code("code", code, &mut errors);
        }
        if let (Some((properties, _)), Some(metric)) = (&parsed, metric)
            && let Err(mut e) = validate_charge_rules(
                properties.model(),
                metric.aggregation_type(),
                metric.recurring(),
                input.pay_in_advance,
                input.prorated,
                input.invoiceable,
                input.min_amount_cents,
            )
        {
            errors.0.append(&mut e.0);
        }
        errors.into_result()?;
        let Some((properties, properties_input)) = parsed else {
            return Err(ValidationErrors(vec![FieldError::new(
                "charge_model",
                "value_is_invalid",
            )]));
        };
        Ok(Self {
            lago_id: input.lago_id,
            created_at: input.created_at,
            parent_id: input.parent_id,
            code: input.code.unwrap_or_default(),
            billable_metric_id: billable_metric_id.to_owned(),
            billable_metric_code: billable_metric_code.to_owned(),
            properties,
            properties_input,
            filters,
            pay_in_advance: input.pay_in_advance,
            invoiceable: input.invoiceable,
            prorated: input.prorated,
            regroup_paid_fees,
            min_amount_cents: input.min_amount_cents.unwrap_or(0),
            tax_codes: input.tax_codes,
            invoice_display_name: input.invoice_display_name,
        })
    }

    /// The input that reproduces this charge, to apply a partial update or an override on top.
    pub fn to_input(&self) -> ChargeInput {
        ChargeInput {
            lago_id: self.lago_id.clone(),
            created_at: self.created_at,
            parent_id: self.parent_id.clone(),
            code: Some(self.code.clone()),
            charge_model: Some(self.charge_model().as_str().to_owned()),
            properties: Some(self.properties_input.clone()),
            filters: self.filters.iter().map(ChargeFilter::to_input).collect(),
            pay_in_advance: self.pay_in_advance,
            invoiceable: self.invoiceable,
            prorated: self.prorated,
            regroup_paid_fees: self.regroup_paid_fees.map(|r| r.as_str().to_owned()),
            min_amount_cents: Some(self.min_amount_cents),
            tax_codes: self.tax_codes.clone(),
            invoice_display_name: self.invoice_display_name.clone(),
        }
    }

    /// Lago id of the charge.
    pub fn lago_id(&self) -> &str {
        &self.lago_id
    }
    /// When the charge was created.
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }
    /// The parent plan's charge this override charge derives from.
    pub fn parent_id(&self) -> Option<&str> {
        self.parent_id.as_deref()
    }
    /// Unique code within the plan.
    pub fn code(&self) -> &str {
        &self.code
    }
    /// Code of the billable metric priced.
    pub fn billable_metric_code(&self) -> &str {
        &self.billable_metric_code
    }
    /// Lago id of the billable metric priced.
    pub fn billable_metric_id(&self) -> &str {
        &self.billable_metric_id
    }
    /// The charge model with its validated properties (the charge's own, default bucket).
    pub fn charge_model(&self) -> &ChargeModel {
        self.properties.model()
    }
    /// The validated properties (model and pricing group keys).
    pub fn properties(&self) -> &ChargeProperties {
        &self.properties
    }
    /// The properties as sent (sliced to the model's keys, defaults when none were sent).
    pub fn properties_input(&self) -> &ChargePropertiesInput {
        &self.properties_input
    }
    /// Charge filters, in creation order.
    pub fn filters(&self) -> &[ChargeFilter] {
        &self.filters
    }
    /// The charge's pricing group keys (empty when not grouped).
    pub fn pricing_group_keys(&self) -> &[String] {
        self.properties.pricing_group_keys()
    }
    /// Billed per event, as events arrive.
    pub fn pay_in_advance(&self) -> bool {
        self.pay_in_advance
    }
    /// Whether its fees go on an invoice.
    pub fn invoiceable(&self) -> bool {
        self.invoiceable
    }
    /// Prorated on the days the units existed.
    pub fn prorated(&self) -> bool {
        self.prorated
    }
    /// `regroup_paid_fees`.
    pub fn regroup_paid_fees(&self) -> Option<RegroupPaidFees> {
        self.regroup_paid_fees
    }
    /// Minimum spend per period, in cents (0 when none).
    pub fn min_amount_cents(&self) -> i64 {
        self.min_amount_cents
    }
    /// Codes of the charge's own taxes (empty: the plan's apply).
    pub fn tax_codes(&self) -> &[String] {
        &self.tax_codes
    }
    /// Name on invoices.
    pub fn invoice_display_name(&self) -> Option<&str> {
        self.invoice_display_name.as_deref()
    }
}

/// Filter values must name the metric's filter keys, each with some of the key's values or
/// `__ALL_FILTER_VALUES__` alone (lago-api `ChargeFilterValue#validate_values`).
fn check_filter_values(
    values: &BTreeMap<String, Vec<String>>,
    metric: &BillableMetric,
    errors: &mut ValidationErrors,
) {
    if values.is_empty() {
        errors.push("values", "value_is_mandatory");
        return;
    }
    for (key, wanted) in values {
        let Some(filter) = metric.filters().iter().find(|f| f.key() == key) else {
            errors.push("values", "value_is_invalid");
            continue;
        };
        if wanted.is_empty() {
            errors.push("values", "value_is_mandatory");
            continue;
        }
        let all = wanted.len() == 1 && wanted[0] == ALL_FILTER_VALUES;
        if !all && !wanted.iter().all(|v| filter.values().contains(v)) {
            errors.push("values", "value_is_invalid");
        }
    }
}

/// A plan's minimum spend per period (Lago's `minimum_commitment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinimumCommitment {
    /// Lago id of the commitment.
    pub lago_id: String,
    /// Minimum per period, in cents.
    pub amount_cents: i64,
    /// Name on invoices.
    pub invoice_display_name: Option<String>,
    /// Codes of the commitment's taxes.
    pub tax_codes: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A progressive-billing threshold (Lago's `usage_thresholds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageThreshold {
    /// Lago id of the threshold.
    pub lago_id: String,
    /// Usage amount that triggers a progressive invoice, in cents.
    pub amount_cents: i64,
    /// Name on invoices.
    pub threshold_display_name: Option<String>,
    /// Triggered again every `amount_cents` after the last fixed threshold.
    pub recurring: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// Everything that defines a plan, as sent (or as [`Plan::to_input`] reproduces it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PlanInput {
    /// Display name (required).
    pub name: Option<String>,
    /// Unique code in the organization (required).
    pub code: Option<String>,
    /// `weekly`, `monthly`, `quarterly`, `semiannual` or `yearly` (required).
    pub interval: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Name on invoices.
    pub invoice_display_name: Option<String>,
    /// Recurring fee per interval, in cents (required).
    pub amount_cents: Option<i64>,
    /// ISO 4217 currency (required).
    pub amount_currency: Option<String>,
    /// Trial days (fractional allowed).
    pub trial_period: Option<Decimal>,
    /// Recurring fee billed at the start of the period.
    pub pay_in_advance: Option<bool>,
    /// Yearly and semiannual plans: bill usage every month.
    pub bill_charges_monthly: Option<bool>,
    /// Codes of the plan's taxes.
    pub tax_codes: Vec<String>,
    /// Minimum spend per period.
    pub minimum_commitment: Option<MinimumCommitment>,
    /// Progressive-billing thresholds.
    pub usage_thresholds: Vec<UsageThreshold>,
    /// Key -> value (or null) pairs, in the order sent.
    pub metadata: Vec<(String, Option<String>)>,
    /// Validated charges ([`Charge::new`]); codes left empty are generated.
    pub charges: Vec<Charge>,
    /// The catalog plan this one overrides (override children only).
    pub parent_code: Option<String>,
    /// Lago id of that parent plan.
    pub parent_id: Option<String>,
    /// Suffix of an override child's or a deleted plan's store key.
    pub store_suffix: Option<String>,
    /// The plan was deleted; it is kept only for the subscriptions it priced.
    pub pending_deletion: bool,
}

/// A validated plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    name: String,
    code: String,
    store_key: String,
    interval: PlanInterval,
    description: Option<String>,
    invoice_display_name: Option<String>,
    amount_cents: i64,
    amount_currency: Currency,
    trial_period: Option<Decimal>,
    pay_in_advance: bool,
    bill_charges_monthly: Option<bool>,
    tax_codes: Vec<String>,
    minimum_commitment: Option<MinimumCommitment>,
    usage_thresholds: Vec<UsageThreshold>,
    metadata: Vec<(String, Option<String>)>,
    charges: Vec<Charge>,
    parent_code: Option<String>,
    parent_id: Option<String>,
    store_suffix: Option<String>,
    pending_deletion: bool,
}

impl Plan {
    /// Validates a complete plan definition, reporting every rejected field at once, and
    /// generates the codes of charges sent without one: the metric code, then `<code>_2`,
    /// `<code>_3`, ... so that codes are unique within the plan. Two charges sent with the same
    /// code are refused (`code: value_already_exist`).
    pub fn new(input: PlanInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = input.name.unwrap_or_default();
        check_name("name", &name, &mut errors);
        let code = input.code.unwrap_or_default();
        check_code("code", &code, &mut errors);
        let interval = match input.interval.as_deref() {
            None | Some("") => {
                errors.push("interval", "value_is_mandatory");
                None
            }
            Some(s) => PlanInterval::parse(s)
                .map_err(|_| errors.push("interval", "value_is_invalid"))
                .ok(),
        };
        let amount_cents = match input.amount_cents {
            None => {
                errors.push("amount_cents", "value_is_mandatory");
                0
            }
            Some(a) if a < 0 => {
                errors.push("amount_cents", "value_is_invalid");
                0
            }
            Some(a) => a,
        };
        let amount_currency = match input.amount_currency.as_deref() {
            None | Some("") => {
                errors.push("amount_currency", "value_is_mandatory");
                None
            }
            Some(c) => Currency::parse(c)
                .map_err(|_| errors.push("amount_currency", "value_is_invalid"))
                .ok(),
        };
        if input
            .trial_period
            .is_some_and(|t| t.is_sign_negative() && !t.is_zero())
        {
            errors.push("trial_period", "value_is_invalid");
        }
        if input
            .invoice_display_name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 255)
        {
            errors.push("invoice_display_name", "value_is_invalid");
        }
        if let Some(c) = &input.minimum_commitment
            && c.amount_cents < 0
        {
            errors.push("minimum_commitment", "value_is_invalid");
        }
        if input.usage_thresholds.iter().any(|t| t.amount_cents <= 0) {
            errors.push("usage_thresholds", "value_is_invalid");
        }
        if input
            .usage_thresholds
            .iter()
            .filter(|t| t.recurring)
            .count()
            > 1
        {
            errors.push("usage_thresholds", "value_is_invalid");
        }
        for (key, value) in &input.metadata {
            let key_ok = !key.is_empty() && key.chars().count() <= METADATA_KEY_MAX;
            let value_ok = value
                .as_ref()
                .is_none_or(|v| v.chars().count() <= METADATA_VALUE_MAX);
            if !key_ok || !value_ok {
                errors.push("metadata", "value_is_invalid");
            }
        }
        let charges = assign_charge_codes(input.charges, &mut errors);
        errors.into_result()?;
        let (Some(interval), Some(amount_currency)) = (interval, amount_currency) else {
            return Err(ValidationErrors(vec![FieldError::new(
                "interval",
                "value_is_invalid",
            )]));
        };
        let long = matches!(interval, PlanInterval::Yearly | PlanInterval::Semiannual);
        let store_key = match (
            &input.parent_code,
            &input.store_suffix,
            input.pending_deletion,
        ) {
            (_, Some(suffix), true) => format!("{code}/deleted/{suffix}"),
            (Some(_), Some(suffix), false) => format!("{code}/{suffix}"),
            _ => code.clone(),
        };
        Ok(Self {
            name,
            store_key,
            code,
            interval,
            description: input.description,
            invoice_display_name: input.invoice_display_name,
            amount_cents,
            amount_currency,
            trial_period: input.trial_period,
            pay_in_advance: input.pay_in_advance.unwrap_or(false),
            // Lago keeps the flag only where it means something; other intervals answer null.
            bill_charges_monthly: long.then(|| input.bill_charges_monthly.unwrap_or(false)),
            tax_codes: input.tax_codes,
            minimum_commitment: input.minimum_commitment,
            usage_thresholds: input.usage_thresholds,
            metadata: input.metadata,
            charges,
            parent_code: input.parent_code,
            parent_id: input.parent_id,
            store_suffix: input.store_suffix,
            pending_deletion: input.pending_deletion,
        })
    }

    /// The input that reproduces this plan, to apply a partial update or overrides on top.
    pub fn to_input(&self) -> PlanInput {
        PlanInput {
            name: Some(self.name.clone()),
            code: Some(self.code.clone()),
            interval: Some(self.interval.as_str().to_owned()),
            description: self.description.clone(),
            invoice_display_name: self.invoice_display_name.clone(),
            amount_cents: Some(self.amount_cents),
            amount_currency: Some(self.amount_currency.code().to_owned()),
            trial_period: self.trial_period,
            pay_in_advance: Some(self.pay_in_advance),
            bill_charges_monthly: self.bill_charges_monthly,
            tax_codes: self.tax_codes.clone(),
            minimum_commitment: self.minimum_commitment.clone(),
            usage_thresholds: self.usage_thresholds.clone(),
            metadata: self.metadata.clone(),
            charges: self.charges.clone(),
            parent_code: self.parent_code.clone(),
            parent_id: self.parent_id.clone(),
            store_suffix: self.store_suffix.clone(),
            pending_deletion: self.pending_deletion,
        }
    }

    /// This plan, deleted: kept under `<code>/deleted/<suffix>` so the subscriptions it priced
    /// can still be invoiced, while its code becomes free for a new plan.
    pub fn into_deleted(self, suffix: &str) -> Self {
        let mut deleted = self;
        deleted.store_key = format!("{}/deleted/{suffix}", deleted.code);
        deleted.store_suffix = Some(suffix.to_owned());
        deleted.pending_deletion = true;
        deleted
    }

    /// Display name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The public code (an override child answers its parent's code).
    pub fn code(&self) -> &str {
        &self.code
    }
    /// The key of this record in the store (see the module documentation).
    pub fn store_key(&self) -> &str {
        &self.store_key
    }
    /// Billing interval.
    pub fn interval(&self) -> PlanInterval {
        self.interval
    }
    /// Description.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// Name on invoices.
    pub fn invoice_display_name(&self) -> Option<&str> {
        self.invoice_display_name.as_deref()
    }
    /// Recurring fee per interval, in cents.
    pub fn amount_cents(&self) -> i64 {
        self.amount_cents
    }
    /// ISO 4217 code of the plan's currency.
    pub fn amount_currency(&self) -> &str {
        self.amount_currency.code()
    }
    /// The plan's currency.
    pub fn currency(&self) -> Currency {
        self.amount_currency
    }
    /// Trial days, if any (fractional days allowed, as Lago stores a float).
    pub fn trial_period_days(&self) -> Option<Decimal> {
        self.trial_period
    }
    /// Whether the recurring fee is billed at the start of the period.
    pub fn pay_in_advance(&self) -> bool {
        self.pay_in_advance
    }
    /// Whether usage is billed monthly on a yearly or semiannual plan.
    pub fn bill_charges_monthly(&self) -> bool {
        self.bill_charges_monthly.unwrap_or(false)
    }
    /// `bill_charges_monthly` as Lago answers it: `None` for intervals where it does not apply.
    pub fn bill_charges_monthly_setting(&self) -> Option<bool> {
        self.bill_charges_monthly
    }
    /// Codes of the plan's taxes.
    pub fn tax_codes(&self) -> &[String] {
        &self.tax_codes
    }
    /// Minimum spend per period.
    pub fn minimum_commitment(&self) -> Option<&MinimumCommitment> {
        self.minimum_commitment.as_ref()
    }
    /// Progressive-billing thresholds.
    pub fn usage_thresholds(&self) -> &[UsageThreshold] {
        &self.usage_thresholds
    }
    /// Metadata pairs in the order sent.
    pub fn metadata(&self) -> &[(String, Option<String>)] {
        &self.metadata
    }
    /// The usage-based charges.
    pub fn charges(&self) -> &[Charge] {
        &self.charges
    }
    /// The catalog plan an override child derives from.
    pub fn parent_code(&self) -> Option<&str> {
        self.parent_code.as_deref()
    }
    /// Lago id of that parent plan.
    pub fn parent_id(&self) -> Option<&str> {
        self.parent_id.as_deref()
    }
    /// Whether the plan was deleted (kept for the subscriptions it priced).
    pub fn pending_deletion(&self) -> bool {
        self.pending_deletion
    }
    /// Whether this plan belongs to the catalog (not an override child, not deleted).
    pub fn is_catalog_plan(&self) -> bool {
        self.parent_code.is_none() && !self.pending_deletion
    }
    /// The recurring fee per year, Lago's measure for upgrade vs downgrade.
    pub fn yearly_amount_cents(&self) -> i128 {
        i128::from(self.amount_cents) * i128::from(self.interval.periods_per_year())
    }
}

/// Explicit codes must be unique; missing ones become the metric code, suffixed `_2`, `_3`,
/// ... past those already taken.
fn assign_charge_codes(mut charges: Vec<Charge>, errors: &mut ValidationErrors) -> Vec<Charge> {
    let mut taken: Vec<String> = Vec::with_capacity(charges.len());
    for charge in &charges {
        if charge.code.is_empty() {
            continue;
        }
        if taken.contains(&charge.code) {
            errors.push("code", "value_already_exist");
        } else {
            taken.push(charge.code.clone());
        }
    }
    for charge in &mut charges {
        if !charge.code.is_empty() {
            continue;
        }
        let base = charge.billable_metric_code.clone();
        let mut code = base.clone();
        let mut suffix = 2u32;
        while taken.contains(&code) {
            code = format!("{base}_{suffix}");
            suffix += 1;
        }
        taken.push(code.clone());
        charge.code = code;
    }
    charges
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::metric::BillableMetricInput;

    fn metric(code: &str, agg: &str, filters: Vec<(String, Vec<String>)>) -> BillableMetric {
        let metric = BillableMetric::new(BillableMetricInput {
            name: Some("M".into()),
            code: Some(code.into()),
            aggregation_type: Some(agg.into()),
            field_name: Some("v".into()),
            filters: Some(filters),
            ..Default::default()
        });
        match metric {
            Ok(m) => m,
            Err(e) => panic!("metric: {e:?}"),
        }
    }

    fn charge_input(model: &str, properties: Option<ChargePropertiesInput>) -> ChargeInput {
        ChargeInput {
            lago_id: "c1".into(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            parent_id: None,
            code: None,
            charge_model: Some(model.into()),
            properties,
            filters: Vec::new(),
            pay_in_advance: false,
            invoiceable: true,
            prorated: false,
            regroup_paid_fees: None,
            min_amount_cents: None,
            tax_codes: Vec::new(),
            invoice_display_name: None,
        }
    }

    fn codes(r: Result<Charge, ValidationErrors>) -> Vec<(String, &'static str)> {
        r.err()
            .map(|e| e.0.into_iter().map(|f| (f.field, f.code)).collect())
            .unwrap_or_default()
    }

    #[test]
    fn omitted_properties_take_the_models_defaults() {
        // Given a charge of each model sent without properties
        let m = metric("gb", "sum_agg", vec![]);
        for model in CHARGE_MODELS {
            // When it is validated, then it is accepted with Lago's default properties.
            let charge = Charge::new(charge_input(model, None), "bm", &m);
            let Ok(charge) = charge else {
                panic!("{model}: {charge:?}")
            };
            assert_eq!(charge.charge_model().as_str(), model);
            assert_eq!(
                Some(charge.properties_input().clone()),
                default_properties(model),
                "{model}"
            );
        }
    }

    #[test]
    fn properties_are_sliced_to_the_models_keys() {
        let m = metric("gb", "sum_agg", vec![]);
        let sent = ChargePropertiesInput {
            amount: Some("0.50".into()),
            rate: Some("5".into()),
            package_size: Some(10),
            ..Default::default()
        };
        let charge = Charge::new(charge_input("standard", Some(sent)), "bm", &m);
        assert_eq!(
            charge.map(|c| c.properties_input().clone()),
            Ok(ChargePropertiesInput {
                amount: Some("0.50".into()),
                ..Default::default()
            })
        );
    }

    #[test]
    fn filters_must_use_the_metrics_keys_and_values() {
        let m = metric(
            "gb",
            "sum_agg",
            vec![("region".into(), vec!["eu".into(), "us".into()])],
        );
        let amount = ChargePropertiesInput {
            amount: Some("1".into()),
            ..Default::default()
        };
        let with_filter = |values: &[(&str, &[&str])]| {
            let mut input = charge_input("standard", None);
            input.filters = vec![ChargeFilterInput {
                values: values
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                    .collect(),
                properties: amount.clone(),
                invoice_display_name: None,
            }];
            Charge::new(input, "bm", &m)
        };
        assert!(with_filter(&[("region", &["eu"])]).is_ok());
        assert!(with_filter(&[("region", &[ALL_FILTER_VALUES])]).is_ok());
        let invalid = vec![("values".to_string(), "value_is_invalid")];
        assert_eq!(codes(with_filter(&[("region", &["asia"])])), invalid);
        assert_eq!(codes(with_filter(&[("country", &["fr"])])), invalid);
        assert_eq!(
            codes(with_filter(&[("region", &["eu", ALL_FILTER_VALUES])])),
            invalid
        );
        assert_eq!(
            codes(with_filter(&[])),
            vec![("values".to_string(), "value_is_mandatory")]
        );
    }

    #[test]
    fn charge_codes_are_generated_unique_and_explicit_duplicates_refused() {
        let m = metric("gb", "sum_agg", vec![]);
        let charge = |code: Option<&str>| {
            let mut input = charge_input("standard", None);
            input.code = code.map(str::to_owned);
            Charge::new(input, "bm", &m)
        };
        let charges: Vec<Charge> = [None, Some("gb_2"), None, None]
            .into_iter()
            .filter_map(|c| charge(c).ok())
            .collect();
        let mut errors = ValidationErrors::default();
        let assigned = assign_charge_codes(charges, &mut errors);
        let got: Vec<&str> = assigned.iter().map(Charge::code).collect();
        assert_eq!(got, vec!["gb", "gb_2", "gb_3", "gb_4"]);
        assert!(errors.0.is_empty());

        let twice: Vec<Charge> = [Some("x"), Some("x")]
            .into_iter()
            .filter_map(|c| charge(c).ok())
            .collect();
        let mut errors = ValidationErrors::default();
        assign_charge_codes(twice, &mut errors);
        assert_eq!(
            errors.0,
            vec![FieldError::new("code", "value_already_exist")]
        );
    }

    #[test]
    fn a_plan_needs_its_required_fields_and_a_known_currency() {
        let r = Plan::new(PlanInput {
            amount_currency: Some("XYZ".into()),
            interval: Some("daily".into()),
            ..Default::default()
        });
        let got: Vec<(String, &str)> = r
            .err()
            .map(|e| e.0.into_iter().map(|f| (f.field, f.code)).collect())
            .unwrap_or_default();
        assert_eq!(
            got,
            vec![
                ("name".to_string(), "value_is_mandatory"),
                ("code".to_string(), "value_is_mandatory"),
                ("interval".to_string(), "value_is_invalid"),
                ("amount_cents".to_string(), "value_is_mandatory"),
                ("amount_currency".to_string(), "value_is_invalid"),
            ]
        );
    }

    #[test]
    fn override_children_and_deleted_plans_get_store_keys_apart_from_codes() {
        let base = PlanInput {
            name: Some("Startup".into()),
            code: Some("startup".into()),
            interval: Some("monthly".into()),
            amount_cents: Some(1000),
            amount_currency: Some("EUR".into()),
            ..Default::default()
        };
        let plan = Plan::new(base.clone());
        assert_eq!(plan.as_ref().map(Plan::store_key), Ok("startup"));
        assert_eq!(
            plan.as_ref().map(Plan::bill_charges_monthly_setting),
            Ok(None)
        );
        let child = Plan::new(PlanInput {
            parent_code: Some("startup".into()),
            store_suffix: Some("abc".into()),
            ..base
        });
        assert_eq!(child.as_ref().map(Plan::store_key), Ok("startup/abc"));
        assert_eq!(child.as_ref().map(Plan::code), Ok("startup"));
        let deleted = plan.map(|p| p.into_deleted("id1"));
        assert_eq!(
            deleted.as_ref().map(Plan::store_key),
            Ok("startup/deleted/id1")
        );
        assert_eq!(deleted.as_ref().map(Plan::is_catalog_plan), Ok(false));
    }
}
