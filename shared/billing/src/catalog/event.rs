//! Usage events as accepted at ingestion: required fields, the accepted time window, and the
//! checks against the billable metric they name.

use chrono::{DateTime, Duration, Utc};

use super::{ValidationErrors, metric::BillableMetric};

/// How far in the past an event may be timestamped: late events still land in their period's
/// draft invoice, while a stale backfill is refused rather than silently unbilled.
pub const BACKDATING_WINDOW_DAYS: i64 = 31;

/// How far in the future an event may be timestamped (client clock skew).
pub const FUTURE_LIMIT_HOURS: i64 = 24;

/// The timestamp as the caller sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum TimestampInput {
    /// Not sent: the reception time.
    Absent,
    /// Unix seconds, possibly fractional, parsed.
    At(DateTime<Utc>),
    /// Sent but not a Unix timestamp.
    Invalid,
}

/// A usage event as sent.
#[derive(Debug, Clone)]
pub struct EventInput {
    /// `transaction_id`.
    pub transaction_id: Option<String>,
    /// `external_subscription_id`.
    pub external_subscription_id: Option<String>,
    /// The billable metric code.
    pub code: Option<String>,
    /// The event time.
    pub timestamp: TimestampInput,
    /// Properties as strings (numbers keep their JSON text); `None` for absent or null.
    pub properties: Vec<(String, String)>,
    /// `precise_total_amount_cents` (dynamic charges), as sent.
    pub precise_total_amount_cents: Option<String>,
}

/// A validated event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    transaction_id: String,
    external_subscription_id: String,
    code: String,
    timestamp: DateTime<Utc>,
    properties: Vec<(String, String)>,
    precise_total_amount_cents: Option<String>,
}

impl Event {
    /// Validates the fields and the time window (`now` is the reception time).
    pub fn new(input: EventInput, now: DateTime<Utc>) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut required = |field: &str, v: Option<String>| match v {
            Some(v) if !v.trim().is_empty() && v.chars().count() <= 255 => v,
            Some(v) if !v.trim().is_empty() => {
                errors.push(field, "value_is_invalid");
                String::new()
            }
            _ => {
                errors.push(field, "value_is_mandatory");
                String::new()
            }
        };
        let transaction_id = required("transaction_id", input.transaction_id);
        let external_subscription_id =
            required("external_subscription_id", input.external_subscription_id);
        let code = required("code", input.code);
        let timestamp = match input.timestamp {
            TimestampInput::Absent => now,
            TimestampInput::Invalid => {
                errors.push("timestamp", "invalid_format");
                now
            }
            TimestampInput::At(t) => {
                if t < now - Duration::days(BACKDATING_WINDOW_DAYS) {
                    errors.push("timestamp", "too_old");
                } else if t > now + Duration::hours(FUTURE_LIMIT_HOURS) {
                    errors.push("timestamp", "too_far_in_the_future");
                }
                t
            }
        };
        if let Some(amount) = &input.precise_total_amount_cents
            && billing_decimal(amount).is_none()
        {
            errors.push("precise_total_amount_cents", "value_is_invalid");
        }
        errors.into_result()?;
        Ok(Self {
            transaction_id,
            external_subscription_id,
            code,
            timestamp,
            properties: input.properties,
            precise_total_amount_cents: input.precise_total_amount_cents,
        })
    }

    /// Checks the event against its metric: a numeric aggregation's property, when present,
    /// must be a plain decimal number (SEMANTICS §1.1), and a unique count's `operation_type`
    /// must be `add` or `remove`.
    pub fn check_against(&self, metric: &BillableMetric) -> Result<(), ValidationErrors> {
        use super::metric::AggregationType as A;
        let mut errors = ValidationErrors::default();
        if let Some(field) = metric.field_name() {
            let numeric = matches!(
                metric.aggregation_type(),
                A::Sum | A::Max | A::Latest | A::WeightedSum
            );
            if numeric
                && let Some(v) = self.property(field)
                && crate::aggregation::parse_numeric(v).is_none()
            {
                errors.push(format!("properties.{field}"), "value_is_not_a_number");
            }
        }
        if metric.aggregation_type() == A::UniqueCount
            && let Some(op) = self.property("operation_type")
            && op != "add"
            && op != "remove"
        {
            errors.push("properties.operation_type", "value_is_invalid");
        }
        errors.into_result()
    }

    /// A property's value.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `transaction_id`.
    pub fn transaction_id(&self) -> &str {
        &self.transaction_id
    }
    /// `external_subscription_id`.
    pub fn external_subscription_id(&self) -> &str {
        &self.external_subscription_id
    }
    /// The billable metric code.
    pub fn code(&self) -> &str {
        &self.code
    }
    /// The event time.
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }
    /// Properties as strings.
    pub fn properties(&self) -> &[(String, String)] {
        &self.properties
    }
    /// `precise_total_amount_cents`, as sent.
    pub fn precise_total_amount_cents(&self) -> Option<&str> {
        self.precise_total_amount_cents.as_deref()
    }
}

fn billing_decimal(s: &str) -> Option<rust_decimal::Decimal> {
    crate::aggregation::parse_numeric(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(ts: TimestampInput) -> EventInput {
        EventInput {
            transaction_id: Some("tr_1".into()),
            external_subscription_id: Some("sub_1".into()),
            code: Some("api_calls".into()),
            timestamp: ts,
            properties: vec![],
            precise_total_amount_cents: None,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default()
    }

    #[test]
    fn the_timestamp_defaults_to_reception_and_is_bounded() {
        assert_eq!(
            Event::new(input(TimestampInput::Absent), now()).map(|e| e.timestamp()),
            Ok(now())
        );
        let old = now() - Duration::days(BACKDATING_WINDOW_DAYS) - Duration::seconds(1);
        let future = now() + Duration::hours(FUTURE_LIMIT_HOURS) + Duration::seconds(1);
        for (t, code) in [(old, "too_old"), (future, "too_far_in_the_future")] {
            let errors = Event::new(input(TimestampInput::At(t)), now()).err();
            assert_eq!(
                errors.map(|e| e.0),
                Some(vec![super::super::FieldError::new("timestamp", code)]),
                "{t}"
            );
        }
        let edge = now() - Duration::days(BACKDATING_WINDOW_DAYS);
        assert!(Event::new(input(TimestampInput::At(edge)), now()).is_ok());
    }

    #[test]
    fn missing_fields_are_each_mandatory() {
        let e = Event::new(
            EventInput {
                transaction_id: None,
                external_subscription_id: Some(" ".into()),
                code: None,
                timestamp: TimestampInput::Invalid,
                properties: vec![],
                precise_total_amount_cents: Some("abc".into()),
            },
            now(),
        );
        let fields: Vec<(String, &str)> = e
            .err()
            .map(|e| e.0.into_iter().map(|f| (f.field, f.code)).collect())
            .unwrap_or_default();
        assert_eq!(
            fields,
            vec![
                ("transaction_id".into(), "value_is_mandatory"),
                ("external_subscription_id".into(), "value_is_mandatory"),
                ("code".into(), "value_is_mandatory"),
                ("timestamp".into(), "invalid_format"),
                ("precise_total_amount_cents".into(), "value_is_invalid"),
            ]
        );
    }
}
