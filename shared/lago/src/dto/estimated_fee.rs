//! The `FeeObject`s of `POST /events/estimate_fees` (API_CONTRACT §4.1): fees that were never
//! stored, so everything a stored fee gets on creation (`lago_id`, `lago_invoice_id`,
//! `created_at`, the applied taxes' ids) is null, and `payment_status` is `pending`.

use std::collections::BTreeMap;

use billing::money::Currency;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use super::{
    invoice::{major, quantity},
    tax::rate_number,
    timestamp,
};

/// One tax applied to an estimated fee.
#[derive(Debug, Clone)]
pub struct EstimatedTax {
    /// The tax's Lago id.
    pub lago_tax_id: String,
    /// Name.
    pub name: String,
    /// Code.
    pub code: String,
    /// Rate in percent.
    pub rate: Decimal,
    /// Description.
    pub description: Option<String>,
    /// This tax on the fee, rounded on its own.
    pub amount_cents: i64,
}

/// What an estimated fee's `FeeObject` is made from.
#[derive(Debug, Clone)]
pub struct EstimatedFeeView {
    /// The charge's Lago id.
    pub lago_charge_id: String,
    /// Whether the charge's fees go on an invoice.
    pub invoiceable: bool,
    /// The billable metric's Lago id (`item.lago_item_id`).
    pub metric_id: String,
    /// The billable metric's code (`item.code`).
    pub metric_code: String,
    /// The billable metric's name (`item.name`).
    pub metric_name: String,
    /// The billable metric's description.
    pub metric_description: Option<String>,
    /// The charge's name on invoices (the metric's name when it has none).
    pub charge_display_name: Option<String>,
    /// The matching charge filter's values, when the event matched one.
    pub filter_values: Option<BTreeMap<String, Vec<String>>>,
    /// The matching charge filter's name on invoices.
    pub filter_display_name: Option<String>,
    /// Pricing group key -> the event's value.
    pub grouped_by: Vec<(String, Option<String>)>,
    /// The subscription's Lago id.
    pub lago_subscription_id: String,
    /// The customer's Lago id.
    pub lago_customer_id: Option<String>,
    /// The customer's external id.
    pub external_customer_id: String,
    /// The subscription's external id.
    pub external_subscription_id: String,
    /// The fee in minor units, rounded.
    pub amount_cents: i64,
    /// The fee in minor units, unrounded.
    pub precise_amount_cents: Decimal,
    /// The currency.
    pub currency: Currency,
    /// The event's own units.
    pub units: Decimal,
    /// The unit amount in major units.
    pub precise_unit_amount: Decimal,
    /// Taxes on the fee, rounded once over all its taxes.
    pub taxes_amount_cents: i64,
    /// Taxes on the fee, unrounded, in minor units.
    pub taxes_precise_amount_cents: Decimal,
    /// Σ tax rates.
    pub taxes_rate: Decimal,
    /// Each tax.
    pub applied_taxes: Vec<EstimatedTax>,
    /// Start of the charges period.
    pub from_datetime: DateTime<Utc>,
    /// End of the charges period.
    pub to_datetime: DateTime<Utc>,
    /// The event's `transaction_id`, when the client sent one.
    pub event_transaction_id: Option<String>,
}

/// The `FeeObject` of an estimated fee.
pub fn estimated_fee_object(f: &EstimatedFeeView) -> Value {
    let currency = f.currency;
    let code = currency.code();
    let mut groups = Map::new();
    for (k, v) in &f.grouped_by {
        groups.insert(k.clone(), v.clone().map_or(Value::Null, Value::String));
    }
    json!({
        "lago_id": null,
        "lago_charge_id": f.lago_charge_id,
        "lago_charge_filter_id": null,
        "lago_fixed_charge_id": null,
        "lago_invoice_id": null,
        "lago_true_up_fee_id": null,
        "lago_true_up_parent_fee_id": null,
        "lago_subscription_id": f.lago_subscription_id,
        "lago_customer_id": f.lago_customer_id,
        "external_customer_id": f.external_customer_id,
        "external_subscription_id": f.external_subscription_id,
        "amount_cents": f.amount_cents,
        "precise_amount": major(f.precise_amount_cents, currency),
        "precise_total_amount": major(f.precise_amount_cents + f.taxes_precise_amount_cents, currency),
        "amount_currency": code,
        "taxes_amount_cents": f.taxes_amount_cents,
        "taxes_precise_amount": major(f.taxes_precise_amount_cents, currency),
        "taxes_rate": rate_number(f.taxes_rate),
        "units": quantity(f.units),
        "precise_unit_amount": quantity(f.precise_unit_amount),
        "total_aggregated_units": quantity(f.units),
        "total_amount_cents": f.amount_cents + f.taxes_amount_cents,
        "total_amount_currency": code,
        "events_count": 1,
        "pay_in_advance": true,
        "invoiceable": f.invoiceable,
        "from_date": timestamp(f.from_datetime),
        "to_date": timestamp(f.to_datetime),
        "payment_status": "pending",
        "created_at": null,
        "succeeded_at": null,
        "failed_at": null,
        "refunded_at": null,
        "event_transaction_id": f.event_transaction_id,
        "description": null,
        "precise_coupons_amount_cents": "0.0",
        "sub_total_excluding_taxes_amount_cents": f.amount_cents,
        "sub_total_excluding_taxes_precise_amount_cents": quantity(f.precise_amount_cents),
        "amount_details": {},
        "self_billed": false,
        "item": {
            "type": "charge",
            "code": f.metric_code,
            "name": f.metric_name,
            "description": f.metric_description,
            "invoice_display_name": f.charge_display_name.clone().unwrap_or_else(|| f.metric_name.clone()),
            "filter_invoice_display_name": f.filter_display_name,
            "filters": f.filter_values,
            "lago_item_id": f.metric_id,
            "item_type": "BillableMetric",
            "grouped_by": groups,
        },
        "applied_taxes": f.applied_taxes.iter().map(|t| json!({
            "lago_id": null,
            "lago_fee_id": null,
            "lago_tax_id": t.lago_tax_id,
            "tax_name": t.name,
            "tax_code": t.code,
            "tax_rate": rate_number(t.rate),
            "tax_description": t.description,
            "amount_cents": t.amount_cents,
            "amount_currency": code,
            "created_at": null,
        })).collect::<Vec<_>>(),
        "pricing_unit_details": null,
        "presentation_breakdowns": [],
    })
}
