//! What arrives and what leaves: the EventBridge event in an SQS message, and Lago's webhook
//! body built from it.

use aws_lambda_events::event::sqs::SqsMessage;
use billing_aws::bus::{DETAIL_TYPE, DomainEvent, EVENT_SOURCE};
use serde::{Deserialize, Serialize, ser::SerializeMap};

/// The EventBridge envelope an SQS target receives: the matched event, `detail` holding ours.
#[derive(Deserialize)]
struct BusEvent {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: DomainEvent,
}

/// The domain event carried by an SQS message, or why it cannot be read (a poison message).
pub fn domain_event(record: &SqsMessage) -> Result<DomainEvent, String> {
    let body = record.body.as_deref().ok_or("empty body")?;
    let event: BusEvent =
        serde_json::from_str(body).map_err(|e| format!("unreadable body: {e}"))?;
    if event.source != EVENT_SOURCE || event.detail_type != DETAIL_TYPE {
        return Err(format!(
            "unexpected event {}/{}",
            event.source, event.detail_type
        ));
    }
    if event.detail.organization_id.is_empty() || event.detail.unique_key.is_empty() {
        return Err("event without organization or unique key".into());
    }
    Ok(event.detail)
}

/// Lago's webhook body, keys in Lago's order:
/// `{"webhook_type", "object_type", "organization_id", "<object_type>": object}`.
struct Body<'a>(&'a DomainEvent);

impl Serialize for Body<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.0;
        let mut map = s.serialize_map(Some(4))?;
        map.serialize_entry("webhook_type", &e.webhook_type)?;
        map.serialize_entry("object_type", &e.object_type)?;
        map.serialize_entry("organization_id", &e.organization_id)?;
        map.serialize_entry(&e.object_type, &e.object)?;
        map.end()
    }
}

/// The body POSTed for `event`: the same bytes on every attempt, so the signature and the
/// receiver's view of a retry are identical.
pub fn webhook_body(event: &DomainEvent) -> Result<String, serde_json::Error> {
    serde_json::to_string(&Body(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event() -> DomainEvent {
        DomainEvent {
            organization_id: "org-1".into(),
            webhook_type: "subscription.started".into(),
            object_type: "subscription".into(),
            object: json!({"lago_id": "sub-1", "external_id": "ext"}),
            unique_key: "key-1".into(),
            object_key: None,
        }
    }

    #[test]
    fn the_body_is_lagos_envelope_in_lagos_key_order() {
        let body = webhook_body(&event()).unwrap_or_default();
        assert_eq!(
            body,
            r#"{"webhook_type":"subscription.started","object_type":"subscription","organization_id":"org-1","subscription":{"external_id":"ext","lago_id":"sub-1"}}"#
        );
    }

    #[test]
    fn an_sqs_message_from_the_rule_yields_its_domain_event_and_others_are_poison() {
        let message = |body: String| {
            let mut m = SqsMessage::default();
            m.body = Some(body);
            m
        };
        let envelope = |source: &str| {
            json!({"version": "0", "id": "1", "detail-type": "lago.webhook", "source": source,
                   "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
                   "detail": serde_json::to_value(event()).unwrap_or_default()})
            .to_string()
        };
        assert_eq!(
            domain_event(&message(envelope("lago.billing"))),
            Ok(event())
        );
        assert!(domain_event(&message(envelope("someone.else"))).is_err());
        assert!(domain_event(&message("not json".into())).is_err());
        assert!(domain_event(&SqsMessage::default()).is_err());
    }
}
