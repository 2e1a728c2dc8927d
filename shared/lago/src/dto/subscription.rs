//! `subscription` bodies (API_CONTRACT §4.5): `SubscriptionObject`, and
//! `SubscriptionObjectExtended` (with the plan that prices it) on create and get.

use billing::catalog::{
    Record, ValidationErrors,
    plan::Plan,
    subscription::{OnTerminationCreditNote, OnTerminationInvoice, Subscription},
    tax::Tax,
};
use billing::period::BillingTime;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    nullable,
    plan::{PlanDto, PlanInputDto},
    timestamp,
};

type Field<T> = Option<Option<T>>;

/// Reads a date-time as lago-api does (`DateTime.iso8601`): with an offset
/// (`2024-03-01T10:00:00Z`, `+02:00`), without one (UTC), or a bare date (its midnight UTC).
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// A sent date-time field: `None` absent, `Some(None)` null, `Some(Some(t))` a date-time;
/// unreadable text is `{field: ["invalid_date"]}`.
pub fn datetime_field(
    field: &str,
    value: &Field<String>,
    errors: &mut ValidationErrors,
) -> Field<DateTime<Utc>> {
    match value {
        None => None,
        Some(None) => Some(None),
        Some(Some(s)) => match parse_datetime(s) {
            Some(t) => Some(Some(t)),
            None => {
                errors.push(field, "invalid_date");
                None
            }
        },
    }
}

/// `{"subscription": {...}}` of `POST /subscriptions` and `PUT /subscriptions/{external_id}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SubscriptionInputDto {
    /// The customer's external id (create).
    pub external_customer_id: Option<String>,
    /// The plan's code (create).
    pub plan_code: Option<String>,
    /// Display name.
    #[serde(default, deserialize_with = "nullable")]
    pub name: Field<String>,
    /// The caller's id (create).
    pub external_id: Option<String>,
    /// `calendar` (default) or `anniversary`.
    pub billing_time: Option<String>,
    /// End date-time.
    #[serde(default, deserialize_with = "nullable")]
    pub ending_at: Field<String>,
    /// Start date-time (default now).
    #[serde(default, deserialize_with = "nullable")]
    pub subscription_at: Field<String>,
    /// Per-subscription plan changes, stored as an override plan.
    pub plan_overrides: Option<PlanInputDto>,
}

impl SubscriptionInputDto {
    /// The billing time sent (`calendar` when absent); `billing_time: value_is_invalid`
    /// otherwise.
    pub fn billing_time(&self, errors: &mut ValidationErrors) -> BillingTime {
        match self.billing_time.as_deref() {
            None => BillingTime::Calendar,
            Some(s) => BillingTime::parse(s).unwrap_or_else(|_| {
                errors.push("billing_time", "value_is_invalid");
                BillingTime::Calendar
            }),
        }
    }
}

/// The query of `DELETE /subscriptions/{external_id}`, validated.
#[derive(Debug, Clone, Default)]
pub struct TerminationParams {
    /// `on_termination_credit_note`.
    pub credit_note: Option<OnTerminationCreditNote>,
    /// `on_termination_invoice`.
    pub invoice: Option<OnTerminationInvoice>,
}

impl TerminationParams {
    /// Reads the options from the query pairs; an unknown value is `invalid_value`.
    pub fn from_query(query: &[(String, String)]) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let get = |k: &str| {
            query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let credit_note = get("on_termination_credit_note").and_then(|v| {
            let parsed = OnTerminationCreditNote::parse(v);
            if parsed.is_none() {
                errors.push("on_termination_credit_note", "invalid_value");
            }
            parsed
        });
        let invoice = get("on_termination_invoice").and_then(|v| {
            let parsed = OnTerminationInvoice::parse(v);
            if parsed.is_none() {
                errors.push("on_termination_invoice", "invalid_value");
            }
            parsed
        });
        errors.into_result()?;
        Ok(Self {
            credit_note,
            invoice,
        })
    }
}

/// What a subscription's response shows beyond its record, computed at `now` in the
/// customer's timezone by the caller.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFacts {
    /// When the trial ended, once it has.
    pub trial_ended_at: Option<DateTime<Utc>>,
    /// The current period's usage boundaries.
    pub current_billing_period: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// `ApplicableUsageThreshold`.
#[derive(Debug, Serialize)]
struct ApplicableThresholdDto {
    threshold_display_name: Option<String>,
    amount_cents: i64,
    recurring: bool,
}

/// `SubscriptionObject`, and `SubscriptionObjectExtended` when built with a plan.
#[derive(Debug, Serialize)]
pub struct SubscriptionDto {
    lago_id: String,
    external_id: String,
    lago_customer_id: String,
    external_customer_id: String,
    billing_entity_code: Option<String>,
    name: Option<String>,
    plan_code: String,
    plan_amount_cents: i64,
    plan_amount_currency: String,
    status: &'static str,
    billing_time: &'static str,
    subscription_at: String,
    started_at: Option<String>,
    trial_ended_at: Option<String>,
    ending_at: Option<String>,
    terminated_at: Option<String>,
    canceled_at: Option<String>,
    created_at: String,
    previous_plan_code: Option<String>,
    next_plan_code: Option<String>,
    downgrade_plan_date: Option<String>,
    current_billing_period_started_at: Option<String>,
    current_billing_period_ending_at: Option<String>,
    on_termination_credit_note: Option<&'static str>,
    on_termination_invoice: &'static str,
    applied_invoice_custom_sections: Vec<Value>,
    purchase_order_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<PlanDto>,
    #[serde(skip_serializing_if = "Option::is_none")]
    applicable_usage_thresholds: Option<Vec<ApplicableThresholdDto>>,
}

/// `started_at` as lago-api serializes it: milliseconds (`iso8601(3)`).
fn timestamp_ms(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl SubscriptionDto {
    /// `SubscriptionObject` of `r`, priced by `plan`.
    pub fn new(r: &Record<Subscription>, plan: &Plan, facts: &SubscriptionFacts) -> Self {
        let s = &r.value;
        Self {
            lago_id: r.lago_id.clone(),
            external_id: s.external_id().to_owned(),
            lago_customer_id: s.customer_id().to_owned(),
            external_customer_id: s.external_customer_id().to_owned(),
            billing_entity_code: None,
            name: s.name().map(str::to_owned),
            plan_code: s.plan_code().to_owned(),
            plan_amount_cents: plan.amount_cents(),
            plan_amount_currency: plan.amount_currency().to_owned(),
            status: s.status().as_str(),
            billing_time: match s.billing_time() {
                BillingTime::Calendar => "calendar",
                BillingTime::Anniversary => "anniversary",
            },
            subscription_at: timestamp(s.subscription_at()),
            started_at: s.started_at().map(timestamp_ms),
            trial_ended_at: facts.trial_ended_at.map(timestamp),
            ending_at: s.ending_at().map(timestamp),
            terminated_at: s.terminated_at().map(timestamp),
            canceled_at: s.canceled_at().map(timestamp),
            created_at: timestamp(r.created_at),
            previous_plan_code: s.previous_plan_code().map(str::to_owned),
            next_plan_code: s.next_plan_code().map(str::to_owned),
            downgrade_plan_date: s
                .downgrade_plan_date()
                .map(|d| d.format("%Y-%m-%d").to_string()),
            current_billing_period_started_at: facts
                .current_billing_period
                .map(|(from, _)| timestamp(from)),
            current_billing_period_ending_at: facts
                .current_billing_period
                .map(|(_, to)| timestamp(to)),
            on_termination_credit_note: s.on_termination_credit_note().map(|c| c.as_str()),
            on_termination_invoice: s.on_termination_invoice().as_str(),
            applied_invoice_custom_sections: Vec::new(),
            purchase_order_number: None,
            plan: None,
            applicable_usage_thresholds: None,
        }
    }

    /// `SubscriptionObjectExtended`: with the plan record that prices it (an override plan
    /// when the subscription has overrides) and its usage thresholds.
    pub fn extended(
        r: &Record<Subscription>,
        plan: &Record<Plan>,
        taxes: &[Record<Tax>],
        facts: &SubscriptionFacts,
    ) -> Self {
        let mut dto = Self::new(r, &plan.value, facts);
        dto.applicable_usage_thresholds = Some(
            plan.value
                .usage_thresholds()
                .iter()
                .map(|t| ApplicableThresholdDto {
                    threshold_display_name: t.threshold_display_name.clone(),
                    amount_cents: t.amount_cents,
                    recurring: t.recurring,
                })
                .collect(),
        );
        dto.plan = Some(PlanDto::new(plan, taxes));
        dto
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_are_read_with_or_without_offset_or_as_dates() {
        let t = |s| parse_datetime(s).map(|t| t.to_rfc3339());
        assert_eq!(
            t("2024-03-01T10:00:00Z").as_deref(),
            Some("2024-03-01T10:00:00+00:00")
        );
        assert_eq!(
            t("2024-03-01T12:00:00+02:00").as_deref(),
            Some("2024-03-01T10:00:00+00:00")
        );
        assert_eq!(
            t("2024-03-01T10:00:00").as_deref(),
            Some("2024-03-01T10:00:00+00:00")
        );
        assert_eq!(
            t("2024-03-01").as_deref(),
            Some("2024-03-01T00:00:00+00:00")
        );
        assert_eq!(t("yesterday"), None);
    }
}
