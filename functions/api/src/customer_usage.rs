//! `GET /customers/{external_customer_id}/current_usage`: the open period's usage, priced from
//! the pre-aggregated states (its cost does not grow with the number of events).

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    response::Response,
};
use billing::{
    aggregation::{charge_usage::GroupKey, filters::Bucket},
    catalog::{customer::Customer, organization::Organization},
    invoice_totals::fee_taxes,
    money::Currency,
    period::local_date,
    usage::{BucketFee, price_charge, project_bucket},
};
use billing_aws::{context::SubscriptionContext, tax_context::TaxContext};
use lago::{ApiError, dto::timestamp, http};
use serde_json::{Map, Value, json};

use crate::{
    Deps, Tenant,
    edge::{Params, store_error},
};

/// `GET /customers/{external_customer_id}/current_usage?external_subscription_id=`.
pub async fn current_usage(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(external_customer_id): Path<String>,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let body = usage(&deps, &org, &external_customer_id, &query, false).await?;
    Ok(http::ok("customer_usage", body))
}

/// `GET /customers/{external_customer_id}/projected_usage?external_subscription_id=`: current
/// usage plus each charge projected to the end of the period.
pub async fn projected_usage(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(external_customer_id): Path<String>,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let body = usage(&deps, &org, &external_customer_id, &query, true).await?;
    Ok(http::ok("customer_projected_usage", body))
}

async fn usage(
    deps: &Deps,
    org: &Organization,
    external_customer_id: &str,
    query: &[(String, String)],
    projected: bool,
) -> Result<Value, ApiError> {
    let external_customer_id = external_customer_id.to_owned();
    let customer = deps
        .store
        .get::<Customer>(&org.id, &external_customer_id)
        .await
        .map_err(|e| store_error("customer", e))?;
    let Some(external_subscription_id) = query
        .iter()
        .find(|(k, _)| k == "external_subscription_id")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
    else {
        return Err(ApiError::NotFound("subscription"));
    };
    let apply_taxes = query
        .iter()
        .find(|(k, _)| k == "apply_taxes")
        .is_none_or(|(_, v)| v != "false");
    let context = SubscriptionContext::load(&deps.store, org, &external_subscription_id)
        .await
        .map_err(|e| store_error("subscription", e))?;
    if context.subscriptions.is_empty() {
        return Err(ApiError::NotFound("subscription"));
    }
    let Some(priced) = context.active() else {
        return Err(ApiError::NotAllowed("no_active_subscription"));
    };
    if priced.subscription.value.external_customer_id() != customer.value.external_id() {
        return Err(ApiError::NotFound("subscription"));
    }
    let usage_store = deps.usage.as_ref().ok_or(ApiError::Internal)?;
    let now = (deps.clock)();
    let window = priced
        .dates
        .current_usage_boundaries(now)
        .map_err(|_| ApiError::Internal)?;
    let from = window.charges_from_datetime();
    let to = window.charges_to_datetime();
    let currency =
        Currency::parse(priced.plan.value.amount_currency()).map_err(|_| ApiError::Internal)?;
    let states = usage_store
        .states_upto(&org.id, &external_subscription_id, from)
        .await
        .map_err(|e| store_error("subscription", e))?;
    let taxes = TaxContext::load(
        &deps.store,
        &org.id,
        Some(&customer.value),
        &priced.plan.value,
    )
    .await
    .map_err(|e| store_error("tax", e))?;
    let elapsed_days =
        u32::try_from((now - from).num_seconds().max(1).saturating_add(86_399) / 86_400)
            .unwrap_or(1);

    let mut charges_usage = Vec::new();
    let (mut amount_cents, mut taxes_amount_cents, mut projected_cents) = (0i64, 0i64, 0i64);
    for (charge, spec) in &priced.charges {
        let recurring = spec.metric.recurring();
        let usage = billing_aws::usage_pricing::charge_usage(
            usage_store,
            &org.id,
            &external_subscription_id,
            spec,
            from,
            to,
            window.charges_duration_days(),
            &states,
        )
        .await
        .map_err(|e| match e {
            billing_aws::usage_pricing::UsagePricingError::Store(e) => {
                store_error("subscription", e)
            }
            _ => ApiError::Internal,
        })?;
        let fees = price_charge(charge, &usage, window.charges_duration_days(), currency).map_err(
            |e| {
                tracing::error!(error.cause_chain = %e, charge = charge.code(), "pricing failed");
                ApiError::Internal
            },
        )?;
        let charge_cents: i64 = fees.iter().map(|f| f.fee.amount().cents()).sum();
        let rates = taxes.for_charge(charge.tax_codes());
        if apply_taxes && !rates.is_empty() {
            let t = fee_taxes(charge_cents, rust_decimal::Decimal::ZERO, &rates)
                .map_err(|_| ApiError::Internal)?;
            taxes_amount_cents += t.taxes_amount_cents;
        }
        amount_cents += charge_cents;
        let mut json = charge_json(charge, spec, &fees, currency);
        if projected {
            let (mut units, mut cents) = (rust_decimal::Decimal::ZERO, 0i64);
            for fee in &fees {
                let (u, c) = project_bucket(
                    charge,
                    fee,
                    recurring,
                    elapsed_days,
                    window.charges_duration_days(),
                    currency,
                )
                .map_err(|_| ApiError::Internal)?;
                units += u;
                cents += c;
            }
            json["projected_units"] = Value::String(decimal(units));
            json["projected_amount_cents"] = Value::from(cents);
            projected_cents += cents;
        }
        charges_usage.push(json);
    }
    let mut body = json!({
        "from_datetime": timestamp(from),
        "to_datetime": timestamp(to),
        "issuing_date": local_date(window.to_datetime(), priced.timezone).format("%Y-%m-%d").to_string(),
        "lago_invoice_id": null,
        "currency": currency.code(),
        "amount_cents": amount_cents,
        "taxes_amount_cents": taxes_amount_cents,
        "total_amount_cents": amount_cents + taxes_amount_cents,
        "charges_usage": charges_usage,
    });
    if projected {
        body["projected_amount_cents"] = Value::from(projected_cents);
    }
    Ok(body)
}

fn decimal(d: rust_decimal::Decimal) -> String {
    let n = d.normalize();
    if n.scale() == 0 {
        format!("{n}.0")
    } else {
        n.to_string()
    }
}

fn group_object(keys: &[String], group: &GroupKey) -> Value {
    let mut map = Map::new();
    for (k, v) in keys.iter().zip(group.values()) {
        map.insert(k.clone(), v.clone().map_or(Value::Null, Value::String));
    }
    Value::Object(map)
}

fn charge_json(
    charge: &billing::catalog::plan::Charge,
    spec: &billing::usage::ChargeSpec,
    fees: &[BucketFee],
    currency: Currency,
) -> Value {
    let sum = |fs: &[&BucketFee]| {
        let units: rust_decimal::Decimal = fs.iter().map(|f| f.fee.units()).sum();
        let total: rust_decimal::Decimal = fs.iter().map(|f| f.total_aggregated_units).sum();
        let events: u64 = fs.iter().map(|f| f.fee.events_count()).sum();
        let cents: i64 = fs.iter().map(|f| f.fee.amount().cents()).sum();
        (units, total, events, cents)
    };
    let all: Vec<&BucketFee> = fees.iter().collect();
    let (units, total, events, cents) = sum(&all);
    let filter_json = |fs: &[&BucketFee]| -> Vec<Value> {
        if charge.filters().is_empty() {
            return Vec::new();
        }
        let mut by_bucket: BTreeMap<Bucket, Vec<&BucketFee>> = BTreeMap::new();
        for f in fs {
            by_bucket.entry(f.bucket).or_default().push(f);
        }
        by_bucket
            .into_iter()
            .map(|(bucket, fs)| {
                let (units, total, events, cents) = sum(&fs);
                let (values, name) = match bucket {
                    Bucket::Filter(i) => charge.filters().get(i).map_or((json!({}), None), |f| {
                        (
                            json!(f.values()),
                            f.invoice_display_name().map(str::to_owned),
                        )
                    }),
                    Bucket::Default => (Value::Null, None),
                };
                json!({
                    "units": decimal(units),
                    "total_aggregated_units": decimal(total),
                    "amount_cents": cents,
                    "events_count": events,
                    "invoice_display_name": name,
                    "values": values,
                    "pricing_unit_details": null,
                })
            })
            .collect()
    };
    let grouped_usage: Vec<Value> = if spec.pricing_group_keys.is_empty() {
        Vec::new()
    } else {
        let mut by_group: BTreeMap<&GroupKey, Vec<&BucketFee>> = BTreeMap::new();
        for f in fees {
            by_group.entry(&f.group).or_default().push(f);
        }
        by_group
            .into_iter()
            .map(|(group, fs)| {
                let (units, total, events, cents) = sum(&fs);
                json!({
                    "amount_cents": cents,
                    "events_count": events,
                    "units": decimal(units),
                    "total_aggregated_units": decimal(total),
                    "grouped_by": group_object(&spec.pricing_group_keys, group),
                    "filters": filter_json(&fs),
                    "pricing_unit_details": null,
                })
            })
            .collect()
    };
    json!({
        "units": decimal(units),
        "total_aggregated_units": decimal(total),
        "events_count": events,
        "amount_cents": cents,
        "amount_currency": currency.code(),
        "pricing_unit_details": null,
        "charge": {
            "lago_id": charge.lago_id(),
            "code": charge.code(),
            "charge_model": charge.charge_model().as_str(),
            "invoice_display_name": charge.invoice_display_name(),
        },
        "billable_metric": {
            "lago_id": charge.billable_metric_id(),
            "name": spec.metric.name(),
            "code": spec.metric.code(),
            "aggregation_type": spec.metric.aggregation_type().as_str(),
        },
        "filters": filter_json(&all),
        "grouped_usage": grouped_usage,
    })
}
