//! `invoice` and `fee` bodies (API_CONTRACT §4.6-§4.7): `InvoiceObject` in lists,
//! `InvoiceObjectExtended` (with fees and billing periods) on get and actions, `FeeObject`, and
//! the usage periods of `past_usage`.

use std::collections::BTreeMap;

use billing::{
    catalog::Record,
    invoice::{Fee, FeeItem, Invoice, InvoiceState, PaymentStatus},
    money::Currency,
};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{tax::rate_number, timestamp};

/// A quantity as Lago prints it: a decimal string with at least one decimal (`"3.0"`).
pub fn quantity(d: Decimal) -> String {
    let n = d.normalize();
    if n.scale() == 0 {
        format!("{n}.0")
    } else {
        n.to_string()
    }
}

pub(crate) fn major(cents: Decimal, currency: Currency) -> String {
    quantity(cents / currency.subunit_to_unit())
}

fn date(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// `InvoiceObject` (lists) or `InvoiceObjectExtended` (`extended`: fees, billing periods,
/// credits, subscriptions). `customer` is the `CustomerObject`, `file_url` the document's URL
/// when there is one, `today` the date `payment_overdue` is judged at.
pub fn invoice_object(
    r: &Record<Invoice>,
    customer: Option<Value>,
    file_url: Option<String>,
    today: NaiveDate,
    extended: bool,
) -> Value {
    let i = &r.value;
    let a = &i.amounts;
    let paid = i.payment_status == PaymentStatus::Succeeded;
    let visible_status = match i.status {
        // lago-api hides `closed` invoices from the API; none is listed, this is a fallback.
        InvoiceState::Closed => "finalized",
        other => other.as_str(),
    };
    let metadata: Vec<Value> = i
        .metadata
        .iter()
        .map(|m| {
            json!({
                "lago_id": m.lago_id,
                "key": m.key,
                "value": m.value,
                "created_at": timestamp(m.created_at),
            })
        })
        .collect();
    let applied_taxes: Vec<Value> = i
        .applied_taxes
        .iter()
        .map(|t| {
            json!({
                "lago_id": derived_id(&r.lago_id, &t.tax.code),
                "lago_invoice_id": r.lago_id,
                "lago_tax_id": t.tax.lago_id,
                "tax_name": t.tax.name,
                "tax_code": t.tax.code,
                "tax_rate": rate_number(t.tax.rate),
                "tax_description": t.tax.description,
                "amount_cents": t.amount_cents,
                "amount_currency": i.currency.code(),
                "fees_amount_cents": t.fees_amount_cents,
                "created_at": timestamp(r.created_at),
            })
        })
        .collect();
    let totals = json!({
        "fees_amount_cents": a.fees_amount_cents,
        "coupons_amount_cents": a.coupons_amount_cents,
        "credit_notes_amount_cents": a.credit_notes_amount_cents,
        "sub_total_excluding_taxes_amount_cents": a.sub_total_excluding_taxes_amount_cents,
        "taxes_amount_cents": a.taxes_amount_cents,
        "sub_total_including_taxes_amount_cents": a.sub_total_including_taxes_amount_cents,
        "prepaid_credit_amount_cents": a.prepaid_credit_amount_cents,
        "prepaid_granted_credit_amount_cents": 0,
        "prepaid_purchased_credit_amount_cents": 0,
        "progressive_billing_credit_amount_cents": a.progressive_billing_credit_amount_cents,
        "total_amount_cents": a.total_amount_cents,
        "total_due_amount_cents": if paid { 0 } else { a.total_amount_cents },
        "total_paid_amount_cents": if paid { a.total_amount_cents } else { 0 },
        "total_offsetted_credit_note_amount_cents": 0,
    });
    let mut o = json!({
        "lago_id": r.lago_id,
        "billing_entity_code": null,
        "sequential_id": i.sequential_id,
        "number": i.number,
        "issuing_date": date(i.issuing_date),
        "payment_dispute_lost_at": null,
        "payment_due_date": date(i.payment_due_date()),
        "payment_overdue": i.payment_overdue(today),
        "net_payment_term": i.net_payment_term,
        "invoice_type": "subscription",
        "status": visible_status,
        "payment_status": i.payment_status.as_str(),
        "currency": i.currency.code(),
        "version_number": 4,
        "self_billed": false,
        "file_url": file_url,
        "xml_url": null,
        "web_url": null,
        "purchase_order_number": null,
        "voided_at": i.voided_at.map(timestamp),
        "created_at": timestamp(r.created_at),
        "updated_at": timestamp(r.updated_at),
        "customer": customer,
        "metadata": metadata,
        "applied_taxes": applied_taxes,
        "applied_invoice_custom_sections": [],
        "applied_usage_thresholds": [],
    });
    if let (Some(map), Value::Object(t)) = (o.as_object_mut(), totals) {
        map.extend(t);
    }
    if extended && let Some(map) = o.as_object_mut() {
        map.insert(
            "billing_periods".into(),
            json!([{
                "lago_subscription_id": i.subscription_id,
                "external_subscription_id": i.external_subscription_id,
                "lago_plan_id": i.plan_id,
                "subscription_from_datetime": timestamp(i.from_datetime),
                "subscription_to_datetime": timestamp(i.to_datetime),
                "charges_from_datetime": timestamp(i.charges_from_datetime),
                "charges_to_datetime": timestamp(i.charges_to_datetime),
                "invoicing_reason": i.invoicing_reason.as_str(),
            }]),
        );
        map.insert(
            "credits".into(),
            Value::Array(
                i.credits
                    .iter()
                    .map(|c| super::credit_note::credit_object(r, c))
                    .collect(),
            ),
        );
        map.insert(
            "fees".into(),
            Value::Array(i.fees.iter().map(|f| fee_object(r, f)).collect()),
        );
        map.insert("subscriptions".into(), json!([]));
        map.insert("error_details".into(), json!([]));
    }
    o
}

/// A stable UUID-shaped id for a sub-object (an applied tax line) that has no record of its
/// own: the owner's id with its last twelve hex digits mixed with the sub-object's key.
pub fn derived_id(owner: &str, key: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in owner.bytes().chain([0]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let head: String = owner.chars().take(24).collect();
    if head.len() == 24 && owner.len() == 36 {
        format!("{head}{:012x}", h & 0xffff_ffff_ffff)
    } else {
        format!("{owner}-{h:016x}")
    }
}

/// The `lago_charge_filter_id` of the filter of charge `charge_id` that matches `values`: derived
/// from the charge and the filter's values (each list taken as a set), so it is the same on
/// every fee of that filter and survives a plan update that keeps the filter.
pub fn charge_filter_id(charge_id: &str, values: &BTreeMap<String, Vec<String>>) -> String {
    let canonical: BTreeMap<&String, Vec<&String>> = values
        .iter()
        .map(|(k, v)| {
            let mut v: Vec<&String> = v.iter().collect();
            v.sort();
            v.dedup();
            (k, v)
        })
        .collect();
    derived_id(charge_id, &format!("filter:{}", json!(canonical)))
}

fn fee_status(invoice: &Invoice) -> &'static str {
    invoice.payment_status.as_str()
}

/// What a `FeeObject` shows of the fee's invoice (none for a standalone fee) and subscription.
#[derive(Debug, Clone, Copy)]
pub struct FeeOwner<'a> {
    /// The invoice's Lago id.
    pub invoice_id: Option<&'a str>,
    /// Currency.
    pub currency: Currency,
    /// The plan's code.
    pub plan_code: &'a str,
    /// The subscription's Lago id.
    pub subscription_id: &'a str,
    /// The customer's Lago id.
    pub customer_id: &'a str,
    /// The customer's external id.
    pub external_customer_id: &'a str,
    /// The subscription's external id.
    pub external_subscription_id: &'a str,
    /// The fee's payment status.
    pub payment_status: &'a str,
}

/// `FeeObject` of a fee on invoice `r`.
pub fn fee_object(r: &Record<Invoice>, f: &Fee) -> Value {
    let i = &r.value;
    fee_object_of(
        &FeeOwner {
            invoice_id: Some(&r.lago_id),
            currency: i.currency,
            plan_code: &i.plan_code,
            subscription_id: &i.subscription_id,
            customer_id: &i.customer_id,
            external_customer_id: &i.external_customer_id,
            external_subscription_id: &i.external_subscription_id,
            payment_status: fee_status(i),
        },
        f,
    )
}

/// `FeeObject` of a standalone fee (a non-invoiceable pay-in-advance charge's): no invoice,
/// payment pending (nothing here collects it).
pub fn standalone_fee_object(s: &billing::invoice::StandaloneFee) -> Value {
    fee_object_of(
        &FeeOwner {
            invoice_id: None,
            currency: s.currency,
            plan_code: &s.plan_code,
            subscription_id: &s.subscription_id,
            customer_id: &s.customer_id,
            external_customer_id: &s.external_customer_id,
            external_subscription_id: &s.external_subscription_id,
            payment_status: PaymentStatus::Pending.as_str(),
        },
        &s.fee,
    )
}

/// `FeeObject` of fee `f` owned by `i`.
pub fn fee_object_of(i: &FeeOwner<'_>, f: &Fee) -> Value {
    let currency = i.currency;
    let sub_total = Decimal::from(f.amount_cents) - f.precise_coupons_amount_cents;
    let item = match &f.item {
        FeeItem::Subscription {
            plan_name,
            plan_display_name,
            ..
        } => json!({
            "type": "subscription",
            "code": i.plan_code,
            "name": plan_name,
            "description": null,
            "invoice_display_name": plan_display_name.clone().unwrap_or_else(|| plan_name.clone()),
            "filter_invoice_display_name": null,
            "filters": null,
            "lago_item_id": i.subscription_id,
            "item_type": "Subscription",
            "grouped_by": {},
        }),
        FeeItem::Charge {
            charge_display_name,
            metric_id,
            metric_code,
            metric_name,
            metric_description,
            filter_values,
            filter_display_name,
            grouped_by,
            ..
        } => {
            let mut groups = Map::new();
            for (k, v) in grouped_by {
                groups.insert(k.clone(), v.clone().map_or(Value::Null, Value::String));
            }
            json!({
                "type": "charge",
                "code": metric_code,
                "name": metric_name,
                "description": metric_description,
                "invoice_display_name": charge_display_name.clone().unwrap_or_else(|| metric_name.clone()),
                "filter_invoice_display_name": filter_display_name,
                "filters": filter_values,
                "lago_item_id": metric_id,
                "item_type": "BillableMetric",
                "grouped_by": groups,
            })
        }
    };
    let (charge_id, charge_filter_id, true_up_fee_id, true_up_parent_fee_id) = match &f.item {
        FeeItem::Charge {
            charge_id,
            filter_values,
            true_up_fee_id,
            true_up_parent_fee_id,
            ..
        } => (
            Some(charge_id.clone()),
            filter_values
                .as_ref()
                .map(|values| charge_filter_id(charge_id, values)),
            true_up_fee_id.clone(),
            true_up_parent_fee_id.clone(),
        ),
        FeeItem::Subscription { .. } => (None, None, None, None),
    };
    let amount_details = match &f.item {
        FeeItem::Subscription {
            plan_amount_cents, ..
        } => json!({ "plan_amount_cents": plan_amount_cents }),
        FeeItem::Charge { .. } => json!({}),
    };
    json!({
        "lago_id": f.lago_id,
        "lago_charge_id": charge_id,
        "lago_charge_filter_id": charge_filter_id,
        "lago_fixed_charge_id": null,
        "lago_invoice_id": i.invoice_id,
        "lago_true_up_fee_id": true_up_fee_id,
        "lago_true_up_parent_fee_id": true_up_parent_fee_id,
        "lago_subscription_id": i.subscription_id,
        "lago_customer_id": i.customer_id,
        "external_customer_id": i.external_customer_id,
        "external_subscription_id": i.external_subscription_id,
        "amount_cents": f.amount_cents,
        "precise_amount": major(f.precise_amount_cents, currency),
        "precise_total_amount": major(f.precise_amount_cents + f.taxes_precise_amount_cents, currency),
        "amount_currency": currency.code(),
        "taxes_amount_cents": f.taxes_amount_cents,
        "taxes_precise_amount": major(f.taxes_precise_amount_cents, currency),
        "taxes_rate": rate_number(f.taxes_rate),
        "units": quantity(f.units),
        "precise_unit_amount": quantity(f.precise_unit_amount),
        "total_aggregated_units": quantity(f.total_aggregated_units),
        "total_amount_cents": f.amount_cents + f.taxes_amount_cents,
        "total_amount_currency": currency.code(),
        "events_count": f.events_count,
        "pay_in_advance": f.pay_in_advance,
        "invoiceable": f.invoiceable,
        "from_date": timestamp(f.from_datetime),
        "to_date": timestamp(f.to_datetime),
        "payment_status": i.payment_status,
        "created_at": timestamp(f.created_at),
        "succeeded_at": null,
        "failed_at": null,
        "refunded_at": null,
        "event_transaction_id": f.event_transaction_id,
        "description": null,
        "precise_coupons_amount_cents": quantity(f.precise_coupons_amount_cents),
        "sub_total_excluding_taxes_amount_cents": f.amount_cents - round_half_up(f.precise_coupons_amount_cents),
        "sub_total_excluding_taxes_precise_amount_cents": quantity(sub_total),
        "amount_details": amount_details,
        "self_billed": false,
        "item": item,
        "applied_taxes": f.applied_taxes.iter().map(|t| json!({
            "lago_id": derived_id(&f.lago_id, &t.tax.code),
            "lago_fee_id": f.lago_id,
            "lago_tax_id": t.tax.lago_id,
            "tax_name": t.tax.name,
            "tax_code": t.tax.code,
            "tax_rate": rate_number(t.tax.rate),
            "tax_description": t.tax.description,
            "amount_cents": t.amount_cents,
            "amount_currency": currency.code(),
            "created_at": timestamp(f.created_at),
        })).collect::<Vec<_>>(),
        "pricing_unit_details": null,
        "presentation_breakdowns": [],
    })
}

/// `round(x)`, half away from zero, as an integer (0 when out of range).
pub fn round_half_up(x: Decimal) -> i64 {
    billing::money::round_cents(x, billing::money::RoundingRule::HalfAwayFromZero).unwrap_or(0)
}

/// `{"invoice": {"payment_status", "metadata"}}` of `PUT /invoices/{lago_id}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InvoiceUpdateDto {
    /// `pending`, `succeeded` or `failed`.
    pub payment_status: Option<String>,
    /// Metadata entries: an `id` updates that entry, else one is added.
    pub metadata: Option<Vec<InvoiceMetadataDto>>,
}

/// One metadata entry of an update.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct InvoiceMetadataDto {
    /// The entry to update.
    pub id: Option<String>,
    /// Key.
    pub key: Option<String>,
    /// Value (140 characters at most).
    pub value: Option<String>,
}

/// One `CustomerUsageObject` of `past_usage`: an invoiced period's usage, per charge.
pub fn usage_period_object(r: &Record<Invoice>) -> Value {
    let i = &r.value;
    let mut by_charge: BTreeMap<String, Vec<&Fee>> = BTreeMap::new();
    for f in &i.fees {
        if let FeeItem::Charge { charge_id, .. } = &f.item {
            by_charge.entry(charge_id.clone()).or_default().push(f);
        }
    }
    let charges_usage: Vec<Value> = by_charge
        .values()
        .filter_map(|fees| {
            let first = fees.first()?;
            let FeeItem::Charge {
                charge_id,
                charge_code,
                charge_display_name,
                metric_id,
                metric_code,
                metric_name,
                ..
            } = &first.item
            else {
                return None;
            };
            let usage: Vec<&&Fee> = fees
                .iter()
                .filter(|f| {
                    !matches!(
                        &f.item,
                        FeeItem::Charge {
                            true_up_parent_fee_id: Some(_),
                            ..
                        }
                    )
                })
                .collect();
            let units: Decimal = usage.iter().map(|f| f.units).sum();
            let total: Decimal = usage.iter().map(|f| f.total_aggregated_units).sum();
            let events: u64 = usage.iter().map(|f| f.events_count).sum();
            let cents: i64 = fees.iter().map(|f| f.amount_cents).sum();
            Some(json!({
                "units": quantity(units),
                "total_aggregated_units": quantity(total),
                "events_count": events,
                "amount_cents": cents,
                "amount_currency": i.currency.code(),
                "pricing_unit_details": null,
                "charge": {
                    "lago_id": charge_id,
                    "code": charge_code,
                    "charge_model": null,
                    "invoice_display_name": charge_display_name,
                },
                "billable_metric": {
                    "lago_id": metric_id,
                    "name": metric_name,
                    "code": metric_code,
                    "aggregation_type": null,
                },
                "filters": [],
                "grouped_usage": [],
            }))
        })
        .collect();
    let amount: i64 = i
        .fees
        .iter()
        .filter(|f| matches!(f.item, FeeItem::Charge { .. }))
        .map(|f| f.amount_cents)
        .sum();
    let taxes: i64 = i
        .fees
        .iter()
        .filter(|f| matches!(f.item, FeeItem::Charge { .. }))
        .map(|f| f.taxes_amount_cents)
        .sum();
    json!({
        "from_datetime": timestamp(i.charges_from_datetime),
        "to_datetime": timestamp(i.charges_to_datetime),
        "issuing_date": date(i.issuing_date),
        "lago_invoice_id": r.lago_id,
        "currency": i.currency.code(),
        "amount_cents": amount,
        "taxes_amount_cents": taxes,
        "total_amount_cents": amount + taxes,
        "charges_usage": charges_usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn a_charge_filter_id_depends_on_the_charge_and_the_set_of_values_only() {
        let charge = "2f1e5a4c-0000-4000-8000-000000000001";
        let a = charge_filter_id(charge, &values(&[("region", &["eu", "us"])]));
        assert_eq!(
            uuid::Uuid::parse_str(&a).map(|u| u.to_string()),
            Ok(a.clone())
        );
        // Order and repetition inside a list do not matter.
        assert_eq!(
            a,
            charge_filter_id(charge, &values(&[("region", &["us", "eu", "us"])]))
        );
        // Another value set, another key, or another charge is another filter.
        assert_ne!(a, charge_filter_id(charge, &values(&[("region", &["eu"])])));
        assert_ne!(
            a,
            charge_filter_id(charge, &values(&[("zone", &["eu", "us"])]))
        );
        assert_ne!(
            a,
            charge_filter_id(
                "2f1e5a4c-0000-4000-8000-000000000002",
                &values(&[("region", &["eu", "us"])])
            )
        );
        // Values are not confused with their separators.
        assert_ne!(
            charge_filter_id(charge, &values(&[("a", &["b,c"])])),
            charge_filter_id(charge, &values(&[("a", &["b", "c"])]))
        );
    }
}
