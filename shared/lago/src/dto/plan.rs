//! `plan` bodies (API_CONTRACT §4.3): plans, their charges, filters and charge properties.
//!
//! Charge properties are read from JSON with lago-api's typing: prices and rates must be
//! decimal *strings* (a JSON number is `invalid_amount`/`invalid_rate`...), counts and tier
//! bounds JSON numbers, and only the keys of the charge's model are read (lago-api slices the
//! object to them). They are echoed from what was stored, so `"0.50"` comes back `"0.50"` and
//! `package_size: 1000` comes back an integer.

use billing::{
    catalog::{
        FieldError, Record, ValidationErrors,
        plan::{
            Charge, ChargeFilter, ChargeFilterInput, ChargeInput, MinimumCommitment, Plan,
            PlanInput, UsageThreshold,
        },
        tax::Tax,
    },
    charge_model::{ChargePropertiesInput, RangeInput},
};
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Number, Value, json};

use super::{nullable, tax::TaxDto, timestamp};

type Field<T> = Option<Option<T>>;

/// A number of days as sent: a JSON number or a numeric string, read as the decimal it spells.
fn days<'de, D: Deserializer<'de>>(d: D) -> Result<Field<Decimal>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Days {
        Number(Number),
        Text(String),
    }
    let parsed = Option::<Days>::deserialize(d)?;
    let text = match parsed {
        None => return Ok(Some(None)),
        Some(Days::Number(n)) => n.to_string(),
        Some(Days::Text(t)) => t,
    };
    text.trim()
        .parse::<Decimal>()
        .or_else(|_| Decimal::from_scientific(text.trim()))
        .map(|d| Some(Some(d)))
        .map_err(|_| serde::de::Error::custom("trial_period is not a number"))
}

/// `minimum_commitment` as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MinimumCommitmentInputDto {
    amount_cents: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    invoice_display_name: Field<String>,
    tax_codes: Option<Vec<String>>,
}

/// One of `usage_thresholds` as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct UsageThresholdInputDto {
    amount_cents: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    threshold_display_name: Field<String>,
    recurring: Option<bool>,
}

/// One of a charge's `filters` as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChargeFilterInputDto {
    #[serde(default, deserialize_with = "nullable")]
    invoice_display_name: Field<String>,
    properties: Option<Map<String, Value>>,
    values: Option<Map<String, Value>>,
}

/// One of `plan.charges` (or `plan_overrides.charges`) as sent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChargeInputDto {
    /// Lago id of an existing charge (update, override).
    pub id: Option<String>,
    /// Lago id of the billable metric priced.
    pub billable_metric_id: Option<String>,
    /// Code of the billable metric priced (a convenience beside `billable_metric_id`).
    pub billable_metric_code: Option<String>,
    /// Code of the charge within the plan.
    pub code: Option<String>,
    charge_model: Option<String>,
    pay_in_advance: Option<bool>,
    invoiceable: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    regroup_paid_fees: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    invoice_display_name: Field<String>,
    prorated: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    min_amount_cents: Field<i64>,
    #[serde(default, deserialize_with = "nullable")]
    properties: Field<Map<String, Value>>,
    filters: Option<Vec<ChargeFilterInputDto>>,
    /// Codes of the charge's taxes (each must exist).
    pub tax_codes: Option<Vec<String>>,
}

/// `{"plan": {...}}` of a create or an update, and the `plan_overrides` of a subscription.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct PlanInputDto {
    #[serde(default, deserialize_with = "nullable")]
    name: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    invoice_display_name: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    code: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    interval: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Field<String>,
    #[serde(default, deserialize_with = "nullable")]
    amount_cents: Field<i64>,
    #[serde(default, deserialize_with = "nullable")]
    amount_currency: Field<String>,
    #[serde(default, deserialize_with = "days")]
    trial_period: Field<Decimal>,
    #[serde(default, deserialize_with = "nullable")]
    pay_in_advance: Field<bool>,
    #[serde(default, deserialize_with = "nullable")]
    bill_charges_monthly: Field<bool>,
    /// Codes of the plan's taxes (each must exist).
    pub tax_codes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    minimum_commitment: Field<MinimumCommitmentInputDto>,
    /// The charges; when sent, they replace the plan's list.
    pub charges: Option<Vec<ChargeInputDto>>,
    usage_thresholds: Option<Vec<UsageThresholdInputDto>>,
    #[serde(default, deserialize_with = "nullable")]
    metadata: Field<Map<String, Value>>,
}

/// How much of a plan a request may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanScope {
    /// Every field (a create, or an update of a plan no subscription uses).
    All,
    /// A plan with subscriptions: `code`, `interval`, `pay_in_advance`, `amount_currency`,
    /// `trial_period` and `bill_charges_monthly` are ignored, as in lago-api
    /// (`Plans::UpdateService`); the rest (names, amount, taxes, commitment, thresholds,
    /// metadata, charges) changes.
    Subscribed,
    /// `plan_overrides`: everything but `code`, `interval`, `pay_in_advance` and
    /// `bill_charges_monthly`.
    Overrides,
}

impl PlanInputDto {
    /// Every tax code the body names (plan, minimum commitment, charges).
    pub fn tax_codes_named(&self) -> Vec<String> {
        let mut codes: Vec<String> = self.tax_codes.clone().unwrap_or_default();
        if let Some(Some(c)) = &self.minimum_commitment {
            codes.extend(c.tax_codes.clone().unwrap_or_default());
        }
        for charge in self.charges.iter().flatten() {
            codes.extend(charge.tax_codes.clone().unwrap_or_default());
        }
        codes.sort();
        codes.dedup();
        codes
    }

    /// The sent plan fields over `base` (a create starts from an empty input, an update from
    /// the current plan's). Charges are left to the caller, which resolves their metrics.
    /// `new_id` gives Lago ids to a new minimum commitment and thresholds.
    pub fn overlay(
        &self,
        mut base: PlanInput,
        scope: PlanScope,
        now: DateTime<Utc>,
        new_id: &mut dyn FnMut() -> String,
    ) -> PlanInput {
        fn put<T: Clone>(slot: &mut Option<T>, value: &Field<T>) {
            if let Some(v) = value {
                *slot = v.clone();
            }
        }
        put(&mut base.name, &self.name);
        put(&mut base.invoice_display_name, &self.invoice_display_name);
        put(&mut base.description, &self.description);
        put(&mut base.amount_cents, &self.amount_cents);
        if scope == PlanScope::All {
            put(&mut base.code, &self.code);
            put(&mut base.interval, &self.interval);
            put(&mut base.pay_in_advance, &self.pay_in_advance);
            put(&mut base.bill_charges_monthly, &self.bill_charges_monthly);
        }
        if scope != PlanScope::Subscribed {
            put(&mut base.amount_currency, &self.amount_currency);
            put(&mut base.trial_period, &self.trial_period);
        }
        if let Some(codes) = &self.tax_codes {
            base.tax_codes = codes.clone();
        }
        match &self.minimum_commitment {
            None => {}
            Some(None) => base.minimum_commitment = None,
            Some(Some(c)) => {
                let current = base.minimum_commitment.take();
                let mut next = current.unwrap_or_else(|| MinimumCommitment {
                    lago_id: new_id(),
                    amount_cents: 0,
                    invoice_display_name: None,
                    tax_codes: Vec::new(),
                    created_at: now,
                    updated_at: now,
                });
                if let Some(a) = c.amount_cents {
                    next.amount_cents = a;
                }
                put(&mut next.invoice_display_name, &c.invoice_display_name);
                if let Some(codes) = &c.tax_codes {
                    next.tax_codes = codes.clone();
                }
                next.updated_at = now;
                base.minimum_commitment = Some(next);
            }
        }
        if let Some(thresholds) = &self.usage_thresholds {
            base.usage_thresholds = thresholds
                .iter()
                .map(|t| UsageThreshold {
                    lago_id: new_id(),
                    amount_cents: t.amount_cents.unwrap_or(0),
                    threshold_display_name: t.threshold_display_name.clone().flatten(),
                    recurring: t.recurring.unwrap_or(false),
                    created_at: now,
                    updated_at: now,
                })
                .collect();
        }
        match &self.metadata {
            None => {}
            Some(None) => base.metadata = Vec::new(),
            Some(Some(map)) => {
                base.metadata = map
                    .iter()
                    .map(|(k, v)| {
                        let value = match v {
                            Value::Null => None,
                            Value::String(s) => Some(s.clone()),
                            other => Some(other.to_string()),
                        };
                        (k.clone(), value)
                    })
                    .collect();
            }
        }
        base
    }

    /// Type errors of the plan-level fields that the overlay cannot carry (a metadata value
    /// that is neither a string nor null).
    pub fn type_errors(&self) -> ValidationErrors {
        let mut errors = ValidationErrors::default();
        if let Some(Some(map)) = &self.metadata
            && map
                .values()
                .any(|v| !matches!(v, Value::Null | Value::String(_)))
        {
            errors.push("metadata", "value_is_invalid");
        }
        errors
    }

    /// Whether a `minimum_commitment` object was sent without `amount_cents` on a plan that
    /// had none (Lago requires it).
    pub fn commitment_lacks_amount(&self, had_commitment: bool) -> bool {
        matches!(&self.minimum_commitment, Some(Some(c)) if c.amount_cents.is_none() && !had_commitment)
    }
}

impl ChargeInputDto {
    /// The sent charge fields over `base` (a new charge's defaults, or the current charge when
    /// the entry matches one). Properties are read for the resulting model; when none are sent
    /// the current ones are kept if the model did not change, else the model's defaults apply.
    ///
    /// `overrides_only` (a subscription's `plan_overrides`) applies only what lago-api lets a
    /// subscription override: properties, filters, `min_amount_cents`, `invoice_display_name`
    /// and `tax_codes`.
    pub fn overlay(
        &self,
        mut base: ChargeInput,
        overrides_only: bool,
    ) -> Result<ChargeInput, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let previous_model = base.charge_model.clone();
        if !overrides_only {
            if let Some(model) = &self.charge_model {
                base.charge_model = Some(model.clone());
            }
            if let Some(code) = &self.code {
                base.code = Some(code.clone());
            }
            if let Some(v) = self.pay_in_advance {
                base.pay_in_advance = v;
            }
            if let Some(v) = self.invoiceable {
                base.invoiceable = v;
            }
            if let Some(v) = self.prorated {
                base.prorated = v;
            }
            if let Some(v) = &self.regroup_paid_fees {
                base.regroup_paid_fees = v.clone();
            }
        }
        if let Some(v) = &self.invoice_display_name {
            base.invoice_display_name = v.clone();
        }
        if let Some(v) = self.min_amount_cents {
            base.min_amount_cents = Some(v.unwrap_or(0));
        }
        if let Some(codes) = &self.tax_codes {
            base.tax_codes = codes.clone();
        }
        let model = base.charge_model.clone().unwrap_or_default();
        match &self.properties {
            Some(Some(map)) if !map.is_empty() => {
                base.properties = Some(charge_properties(&model, map, &mut errors));
            }
            Some(_) => base.properties = None,
            None if previous_model != base.charge_model => base.properties = None,
            None => {}
        }
        if let Some(filters) = &self.filters {
            base.filters = filters
                .iter()
                .map(|f| ChargeFilterInput {
                    values: filter_values(f.values.as_ref(), &mut errors),
                    properties: charge_properties(
                        &model,
                        f.properties.as_ref().unwrap_or(&Map::new()),
                        &mut errors,
                    ),
                    invoice_display_name: f.invoice_display_name.clone().flatten(),
                })
                .collect();
        }
        errors.into_result()?;
        Ok(base)
    }
}

/// `values` of a filter: each key maps to an array of strings.
fn filter_values(
    values: Option<&Map<String, Value>>,
    errors: &mut ValidationErrors,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    for (key, v) in values.into_iter().flatten() {
        match v {
            Value::Array(items) if items.iter().all(Value::is_string) => {
                out.insert(
                    key.clone(),
                    items
                        .iter()
                        .filter_map(|i| i.as_str().map(str::to_owned))
                        .collect(),
                );
            }
            _ => errors.push("values", "value_is_invalid"),
        }
    }
    out
}

/// Reads `properties` for `model` as lago-api does: only the model's keys, decimals as
/// strings, counts and bounds as numbers. A value of the wrong JSON type is reported with the
/// code Lago gives that property, and read as absent (which the domain then rejects with the
/// same code where the property is required).
pub fn charge_properties(
    model: &str,
    map: &Map<String, Value>,
    errors: &mut ValidationErrors,
) -> ChargePropertiesInput {
    let mut text = |key: &str, field: &str, code: &'static str| match map.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(field, code);
            None
        }
    };
    let mut p = ChargePropertiesInput::default();
    match model {
        "standard" => p.amount = text("amount", "amount", "invalid_amount"),
        "package" => p.amount = text("amount", "amount", "invalid_amount"),
        "percentage" => {
            p.rate = text("rate", "rate", "invalid_rate");
            p.fixed_amount = text("fixed_amount", "fixed_amount", "invalid_fixed_amount");
            p.free_units_per_total_aggregation = text(
                "free_units_per_total_aggregation",
                "free_units_per_total_aggregation",
                "invalid_free_units_per_total_aggregation",
            );
            p.per_transaction_min_amount = text(
                "per_transaction_min_amount",
                "per_transaction_min_amount",
                "invalid_per_transaction_min_amount",
            );
            p.per_transaction_max_amount = text(
                "per_transaction_max_amount",
                "per_transaction_max_amount",
                "invalid_per_transaction_max_amount",
            );
        }
        _ => {}
    }
    let mut integer = |key: &str, code: &'static str| match map.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
        Some(_) => {
            errors.push(key, code);
            None
        }
    };
    match model {
        "package" => {
            p.package_size = integer("package_size", "invalid_package_size");
            p.free_units = integer("free_units", "invalid_free_units");
        }
        "percentage" => {
            p.free_units_per_events =
                integer("free_units_per_events", "invalid_free_units_per_events")
        }
        _ => {}
    }
    match model {
        "graduated" => {
            p.graduated_ranges = ranges(
                map,
                "graduated_ranges",
                "invalid_graduated_ranges",
                false,
                errors,
            )
        }
        "volume" => {
            p.volume_ranges = ranges(map, "volume_ranges", "invalid_volume_ranges", false, errors)
        }
        "graduated_percentage" => {
            p.graduated_percentage_ranges = ranges(
                map,
                "graduated_percentage_ranges",
                "invalid_graduated_percentage_ranges",
                true,
                errors,
            )
        }
        _ => {}
    }
    let keys = match map.get("pricing_group_keys") {
        None | Some(Value::Null) => map.get("grouped_by"),
        some => some,
    };
    match keys {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            p.pricing_group_keys = Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
            )
        }
        Some(_) => errors.push("pricing_group_keys", "value_is_invalid"),
    }
    p
}

fn ranges(
    map: &Map<String, Value>,
    key: &'static str,
    invalid: &'static str,
    rate: bool,
    errors: &mut ValidationErrors,
) -> Option<Vec<RangeInput>> {
    let items = match map.get(key) {
        None | Some(Value::Null) => return None,
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(key, invalid);
            // One unreadable tier, so the domain reports the same code and not "missing".
            return Some(vec![RangeInput::default()]);
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(range) = item else {
            errors.push(key, invalid);
            out.push(RangeInput::default());
            continue;
        };
        let mut bound = |name: &str, open_allowed: bool| match range.get(name) {
            Some(Value::Number(n)) => Some(n.to_string()),
            None | Some(Value::Null) if open_allowed => None,
            _ => {
                errors.push(key, invalid);
                // An invalid text the domain refuses too.
                Some(String::new())
            }
        };
        let from_value = bound("from_value", false);
        let to_value = bound("to_value", true);
        let mut text = |name: &str, field: &str, code: &'static str| match range.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(field, code);
                None
            }
        };
        let (per_unit_amount, rate_value, flat_amount) = if rate {
            (
                None,
                text("rate", "rate", "invalid_rate"),
                text("flat_amount", "flat_amount", "invalid_amount"),
            )
        } else {
            (
                text("per_unit_amount", "amount", "invalid_amount"),
                None,
                text("flat_amount", "amount", "invalid_amount"),
            )
        };
        out.push(RangeInput {
            from_value,
            to_value,
            per_unit_amount,
            rate: rate_value,
            flat_amount,
        });
    }
    Some(out)
}

/// A stored decimal or bound text as the JSON number it was sent as.
fn number(text: &str) -> Value {
    serde_json::from_str::<Number>(text)
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Charge properties as Lago returns them: the stored keys, `pricing_group_keys` mirrored as
/// the deprecated `grouped_by` (lago-api `ChargeSerializer#properties`).
pub fn properties_json(p: &ChargePropertiesInput) -> Value {
    let mut out = Map::new();
    let mut text = |key: &str, v: &Option<String>| {
        if let Some(v) = v {
            out.insert(key.to_owned(), Value::String(v.clone()));
        }
    };
    text("amount", &p.amount);
    text("rate", &p.rate);
    text("fixed_amount", &p.fixed_amount);
    text(
        "free_units_per_total_aggregation",
        &p.free_units_per_total_aggregation,
    );
    text("per_transaction_min_amount", &p.per_transaction_min_amount);
    text("per_transaction_max_amount", &p.per_transaction_max_amount);
    for (key, v) in [
        ("package_size", p.package_size),
        ("free_units", p.free_units),
        ("free_units_per_events", p.free_units_per_events),
    ] {
        if let Some(v) = v {
            out.insert(key.to_owned(), json!(v));
        }
    }
    let ranges = |rs: &[RangeInput], rate: bool| -> Value {
        Value::Array(
            rs.iter()
                .map(|r| {
                    let mut m = Map::new();
                    m.insert(
                        "from_value".into(),
                        r.from_value.as_deref().map_or(Value::Null, number),
                    );
                    m.insert(
                        "to_value".into(),
                        r.to_value.as_deref().map_or(Value::Null, number),
                    );
                    let s = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
                    if rate {
                        m.insert("rate".into(), s(&r.rate));
                    } else {
                        m.insert("per_unit_amount".into(), s(&r.per_unit_amount));
                    }
                    m.insert("flat_amount".into(), s(&r.flat_amount));
                    Value::Object(m)
                })
                .collect(),
        )
    };
    if let Some(rs) = &p.graduated_ranges {
        out.insert("graduated_ranges".into(), ranges(rs, false));
    }
    if let Some(rs) = &p.volume_ranges {
        out.insert("volume_ranges".into(), ranges(rs, false));
    }
    if let Some(rs) = &p.graduated_percentage_ranges {
        out.insert("graduated_percentage_ranges".into(), ranges(rs, true));
    }
    if let Some(keys) = p.pricing_group_keys.as_ref().filter(|k| !k.is_empty()) {
        out.insert("pricing_group_keys".into(), json!(keys));
        out.insert("grouped_by".into(), json!(keys));
    }
    Value::Object(out)
}

/// The taxes of `codes`, in that order, from the records at hand.
pub fn taxes_of(codes: &[String], taxes: &[Record<Tax>]) -> Vec<TaxDto> {
    codes
        .iter()
        .filter_map(|c| taxes.iter().find(|t| t.value.code() == c))
        .map(TaxDto::from)
        .collect()
}

/// `ChargeFilterObject`.
#[derive(Debug, Serialize)]
pub struct ChargeFilterDto {
    invoice_display_name: Option<String>,
    properties: Value,
    values: Value,
}

impl From<&ChargeFilter> for ChargeFilterDto {
    fn from(f: &ChargeFilter) -> Self {
        Self {
            invoice_display_name: f.invoice_display_name().map(str::to_owned),
            properties: properties_json(f.properties_input()),
            values: json!(f.values()),
        }
    }
}

/// `ChargeObject`.
#[derive(Debug, Serialize)]
pub struct ChargeDto {
    lago_id: String,
    lago_billable_metric_id: String,
    billable_metric_code: String,
    code: String,
    invoice_display_name: Option<String>,
    created_at: String,
    charge_model: &'static str,
    invoiceable: bool,
    regroup_paid_fees: Option<&'static str>,
    pay_in_advance: bool,
    prorated: bool,
    min_amount_cents: i64,
    properties: Value,
    filters: Vec<ChargeFilterDto>,
    taxes: Vec<TaxDto>,
    applied_pricing_unit: Option<Value>,
    lago_parent_id: Option<String>,
}

impl ChargeDto {
    /// A charge with its taxes resolved from `taxes`.
    pub fn new(c: &Charge, taxes: &[Record<Tax>]) -> Self {
        Self {
            lago_id: c.lago_id().to_owned(),
            lago_billable_metric_id: c.billable_metric_id().to_owned(),
            billable_metric_code: c.billable_metric_code().to_owned(),
            code: c.code().to_owned(),
            invoice_display_name: c.invoice_display_name().map(str::to_owned),
            created_at: timestamp(c.created_at()),
            charge_model: c.charge_model().as_str(),
            invoiceable: c.invoiceable(),
            regroup_paid_fees: c.regroup_paid_fees().map(|r| r.as_str()),
            pay_in_advance: c.pay_in_advance(),
            prorated: c.prorated(),
            min_amount_cents: c.min_amount_cents(),
            properties: properties_json(c.properties_input()),
            filters: c.filters().iter().map(ChargeFilterDto::from).collect(),
            taxes: taxes_of(c.tax_codes(), taxes),
            applied_pricing_unit: None,
            lago_parent_id: c.parent_id().map(str::to_owned),
        }
    }
}

/// `MinimumCommitmentObject`.
#[derive(Debug, Serialize)]
struct MinimumCommitmentDto {
    lago_id: String,
    plan_code: String,
    amount_cents: i64,
    invoice_display_name: Option<String>,
    interval: &'static str,
    created_at: String,
    updated_at: String,
    taxes: Vec<TaxDto>,
}

/// `UsageThresholdObject`.
#[derive(Debug, Serialize)]
pub struct UsageThresholdDto {
    lago_id: String,
    threshold_display_name: Option<String>,
    amount_cents: i64,
    recurring: bool,
    created_at: String,
    updated_at: String,
}

impl From<&UsageThreshold> for UsageThresholdDto {
    fn from(t: &UsageThreshold) -> Self {
        Self {
            lago_id: t.lago_id.clone(),
            threshold_display_name: t.threshold_display_name.clone(),
            amount_cents: t.amount_cents,
            recurring: t.recurring,
            created_at: timestamp(t.created_at),
            updated_at: timestamp(t.updated_at),
        }
    }
}

/// `PlanObject`, with lago-api's extra fields (counts, `parent_id`, `pending_deletion`);
/// `minimum_commitment` and `metadata` only when present, as lago-api emits them.
#[derive(Debug, Serialize)]
pub struct PlanDto {
    lago_id: String,
    name: String,
    invoice_display_name: Option<String>,
    created_at: String,
    code: String,
    interval: &'static str,
    description: Option<String>,
    amount_cents: i64,
    amount_currency: String,
    trial_period: Option<Value>,
    pay_in_advance: bool,
    bill_charges_monthly: Option<bool>,
    bill_fixed_charges_monthly: Option<bool>,
    customers_count: u64,
    active_subscriptions_count: u64,
    draft_invoices_count: u64,
    parent_id: Option<String>,
    pending_deletion: bool,
    charges: Vec<ChargeDto>,
    fixed_charges: Vec<Value>,
    usage_thresholds: Vec<UsageThresholdDto>,
    taxes: Vec<TaxDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    minimum_commitment: Option<MinimumCommitmentDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Map<String, Value>>,
}

/// Trial days as Lago's float column answers them (`5.0`, `1.5`).
fn trial_days(days: Decimal) -> Value {
    days.to_f64()
        .and_then(Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

impl PlanDto {
    /// A plan with the taxes of the plan, its charges and its commitment resolved from
    /// `taxes`.
    pub fn new(r: &Record<Plan>, taxes: &[Record<Tax>]) -> Self {
        let p = &r.value;
        Self {
            lago_id: r.lago_id.clone(),
            name: p.name().to_owned(),
            invoice_display_name: p.invoice_display_name().map(str::to_owned),
            created_at: timestamp(r.created_at),
            code: p.code().to_owned(),
            interval: p.interval().as_str(),
            description: p.description().map(str::to_owned),
            amount_cents: p.amount_cents(),
            amount_currency: p.amount_currency().to_owned(),
            trial_period: p.trial_period_days().map(trial_days),
            pay_in_advance: p.pay_in_advance(),
            bill_charges_monthly: p.bill_charges_monthly_setting(),
            bill_fixed_charges_monthly: p.bill_charges_monthly_setting().map(|_| false),
            customers_count: 0,
            active_subscriptions_count: 0,
            draft_invoices_count: 0,
            parent_id: p.parent_id().map(str::to_owned),
            pending_deletion: p.pending_deletion(),
            charges: p
                .charges()
                .iter()
                .map(|c| ChargeDto::new(c, taxes))
                .collect(),
            fixed_charges: Vec::new(),
            usage_thresholds: p
                .usage_thresholds()
                .iter()
                .map(UsageThresholdDto::from)
                .collect(),
            taxes: taxes_of(p.tax_codes(), taxes),
            minimum_commitment: p.minimum_commitment().map(|c| MinimumCommitmentDto {
                lago_id: c.lago_id.clone(),
                plan_code: p.code().to_owned(),
                amount_cents: c.amount_cents,
                invoice_display_name: c.invoice_display_name.clone(),
                interval: p.interval().as_str(),
                created_at: timestamp(c.created_at),
                updated_at: timestamp(c.updated_at),
                taxes: taxes_of(&c.tax_codes, taxes),
            }),
            metadata: (!p.metadata().is_empty()).then(|| {
                p.metadata()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
                    .collect()
            }),
        }
    }

    /// Answer the deletion as lago-api does: `pending_deletion: true`.
    pub fn deleted(mut self) -> Self {
        self.pending_deletion = true;
        self
    }
}

/// Every tax code a plan names (plan, commitment, charges), for one batch read.
pub fn plan_tax_codes(p: &Plan) -> Vec<String> {
    let mut codes: Vec<String> = p.tax_codes().to_vec();
    if let Some(c) = p.minimum_commitment() {
        codes.extend(c.tax_codes.iter().cloned());
    }
    for charge in p.charges() {
        codes.extend(charge.tax_codes().iter().cloned());
    }
    codes.sort();
    codes.dedup();
    codes
}

/// A 422 for a charge entry that names no billable metric.
pub fn missing_metric() -> ValidationErrors {
    ValidationErrors(vec![FieldError::new(
        "billable_metric_id",
        "value_is_mandatory",
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(model: &str, body: Value) -> (ChargePropertiesInput, Vec<(String, &'static str)>) {
        let mut errors = ValidationErrors::default();
        let map = body.as_object().cloned().unwrap_or_default();
        let p = charge_properties(model, &map, &mut errors);
        (p, errors.0.into_iter().map(|e| (e.field, e.code)).collect())
    }

    #[test]
    fn prices_must_be_strings_and_counts_integers() {
        let (_, errors) = read("standard", json!({"amount": 1}));
        assert_eq!(errors, vec![("amount".to_string(), "invalid_amount")]);
        let (_, errors) = read(
            "package",
            json!({"amount": "1", "package_size": "10", "free_units": 1.5}),
        );
        assert_eq!(
            errors,
            vec![
                ("package_size".to_string(), "invalid_package_size"),
                ("free_units".to_string(), "invalid_free_units")
            ]
        );
        let (_, errors) = read(
            "graduated",
            json!({"graduated_ranges": [{"from_value": "0", "to_value": null, "per_unit_amount": 1, "flat_amount": "0"}]}),
        );
        assert_eq!(
            errors,
            vec![
                ("graduated_ranges".to_string(), "invalid_graduated_ranges"),
                ("amount".to_string(), "invalid_amount")
            ]
        );
    }

    #[test]
    fn keys_of_other_models_are_ignored_and_properties_echo_as_sent() {
        let sent = json!({"graduated_ranges": [
            {"from_value": 0, "to_value": 10, "per_unit_amount": "0.50", "flat_amount": "1"},
            {"from_value": 11, "to_value": null, "per_unit_amount": "0.4", "flat_amount": "0"}],
            "amount": 3, "grouped_by": ["region"]});
        let (p, errors) = read("graduated", sent);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            properties_json(&p),
            json!({"graduated_ranges": [
                {"from_value": 0, "to_value": 10, "per_unit_amount": "0.50", "flat_amount": "1"},
                {"from_value": 11, "to_value": null, "per_unit_amount": "0.4", "flat_amount": "0"}],
                "pricing_group_keys": ["region"], "grouped_by": ["region"]})
        );
    }
}
