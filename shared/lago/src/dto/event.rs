//! `event` bodies (API_CONTRACT §4.1).

use billing::catalog::event::{EventInput, TimestampInput};
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, prelude::ToPrimitive};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One event as sent (`{"event": {...}}` or an item of `{"events": [...]}`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventInputDto {
    transaction_id: Option<String>,
    external_subscription_id: Option<String>,
    code: Option<String>,
    #[serde(default)]
    timestamp: Option<Value>,
    #[serde(default)]
    properties: Option<Map<String, Value>>,
    #[serde(default)]
    precise_total_amount_cents: Option<Value>,
}

/// Unix seconds, integer or string, fractional allowed, to an instant (millisecond precision).
pub fn parse_timestamp(value: Option<&Value>) -> TimestampInput {
    let text = match value {
        None | Some(Value::Null) => return TimestampInput::Absent,
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return TimestampInput::Invalid,
    };
    let plain = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.chars().filter(|c| *c == '.').count() <= 1;
    let Some(seconds) = plain.then(|| text.parse::<Decimal>().ok()).flatten() else {
        return TimestampInput::Invalid;
    };
    let millis = (seconds * Decimal::from(1000)).trunc().to_i64();
    match millis.and_then(DateTime::from_timestamp_millis) {
        Some(t) => TimestampInput::At(t),
        None => TimestampInput::Invalid,
    }
}

/// A property value as aggregation reads it: strings as they are, numbers as their JSON text.
pub fn property_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl EventInputDto {
    /// The domain input.
    pub fn to_input(&self) -> EventInput {
        EventInput {
            transaction_id: self.transaction_id.clone(),
            external_subscription_id: self.external_subscription_id.clone(),
            code: self.code.clone(),
            timestamp: parse_timestamp(self.timestamp.as_ref()),
            properties: self
                .properties
                .iter()
                .flatten()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), property_text(v)))
                .collect(),
            precise_total_amount_cents: match &self.precise_total_amount_cents {
                None | Some(Value::Null) => None,
                Some(v) => Some(property_text(v)),
            },
        }
    }

    /// The properties exactly as sent (an empty object when absent).
    pub fn properties_json(&self) -> String {
        Value::Object(self.properties.clone().unwrap_or_default()).to_string()
    }
}

/// `EventObject`.
#[derive(Debug, Serialize)]
pub struct EventDto {
    lago_id: String,
    transaction_id: String,
    lago_customer_id: Option<String>,
    code: String,
    timestamp: String,
    precise_total_amount_cents: Option<String>,
    properties: Value,
    lago_subscription_id: Option<String>,
    external_subscription_id: String,
    created_at: String,
}

/// What an event response is made from.
pub struct EventView<'a> {
    /// Lago's id of the event.
    pub lago_id: &'a str,
    /// `transaction_id`.
    pub transaction_id: &'a str,
    /// The metric code.
    pub code: &'a str,
    /// The event time.
    pub timestamp: DateTime<Utc>,
    /// The properties JSON text as stored.
    pub properties_json: &'a str,
    /// `precise_total_amount_cents`.
    pub precise_total_amount_cents: Option<&'a str>,
    /// `external_subscription_id`.
    pub external_subscription_id: &'a str,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
}

impl From<EventView<'_>> for EventDto {
    fn from(v: EventView<'_>) -> Self {
        Self {
            lago_id: v.lago_id.to_owned(),
            transaction_id: v.transaction_id.to_owned(),
            lago_customer_id: None,
            code: v.code.to_owned(),
            timestamp: v.timestamp.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            precise_total_amount_cents: v.precise_total_amount_cents.map(str::to_owned),
            properties: serde_json::from_str(v.properties_json)
                .unwrap_or(Value::Object(Map::new())),
            lago_subscription_id: None,
            external_subscription_id: v.external_subscription_id.to_owned(),
            created_at: super::timestamp(v.created_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_are_unix_seconds_as_integer_or_string_with_fractions() {
        let at =
            |ms: i64| TimestampInput::At(DateTime::from_timestamp_millis(ms).unwrap_or_default());
        assert_eq!(
            parse_timestamp(Some(&json!(1651240791))),
            at(1_651_240_791_000)
        );
        assert_eq!(
            parse_timestamp(Some(&json!("1651240791.123"))),
            at(1_651_240_791_123)
        );
        assert_eq!(
            parse_timestamp(Some(&json!(1651240791.5))),
            at(1_651_240_791_500)
        );
        assert_eq!(parse_timestamp(None), TimestampInput::Absent);
        for bad in [
            json!("yesterday"),
            json!("-5"),
            json!(true),
            json!("1e9"),
            json!(""),
        ] {
            assert_eq!(
                parse_timestamp(Some(&bad)),
                TimestampInput::Invalid,
                "{bad}"
            );
        }
    }
}
