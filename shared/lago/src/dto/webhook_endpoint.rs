//! `webhook_endpoint` bodies and the webhook public key (API_CONTRACT §4.13).

use billing::catalog::{
    Record,
    webhook_endpoint::{WebhookEndpoint, WebhookEndpointInput},
};
use serde::{Deserialize, Serialize};

use super::{nullable, timestamp};

/// `{"webhook_endpoint": {...}}` of a create or an update.
#[derive(Debug, Default, Deserialize)]
pub struct WebhookEndpointInputDto {
    // `null` is kept apart from absent: on an update an absent field keeps its value, while
    // `"event_types": null` means every type and `"signature_algo": null` the default (jwt).
    #[serde(default, deserialize_with = "nullable")]
    webhook_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    signature_algo: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    event_types: Option<Option<Vec<String>>>,
}

impl WebhookEndpointInputDto {
    /// The domain input of a create.
    pub fn into_create(self) -> WebhookEndpointInput {
        self.overlay(WebhookEndpointInput::default())
    }

    /// The domain input of an update: the sent fields over the current endpoint.
    pub fn into_update(self, current: &WebhookEndpoint) -> WebhookEndpointInput {
        self.overlay(current.to_input())
    }

    fn overlay(self, mut base: WebhookEndpointInput) -> WebhookEndpointInput {
        if let Some(url) = self.webhook_url {
            base.webhook_url = url;
        }
        if let Some(algo) = self.signature_algo {
            base.signature_algo = algo;
        }
        if let Some(name) = self.name {
            base.name = name;
        }
        if let Some(types) = self.event_types {
            base.event_types = types;
        }
        base
    }
}

/// `WebhookEndpointObject`.
#[derive(Debug, Serialize)]
pub struct WebhookEndpointDto {
    lago_id: String,
    lago_organization_id: String,
    webhook_url: String,
    signature_algo: &'static str,
    name: Option<String>,
    event_types: Option<Vec<String>>,
    created_at: String,
}

impl WebhookEndpointDto {
    /// The endpoint `record` of the organization `organization_id`.
    pub fn new(organization_id: &str, record: &Record<WebhookEndpoint>) -> Self {
        let e = &record.value;
        Self {
            lago_id: record.lago_id.clone(),
            lago_organization_id: organization_id.to_owned(),
            webhook_url: e.webhook_url().to_owned(),
            signature_algo: e.signature_algo().as_str(),
            name: e.name().map(str::to_owned),
            event_types: e.event_types().map(<[String]>::to_vec),
            created_at: timestamp(record.created_at),
        }
    }
}

/// `WebhookPublicKeyObject`: the Base64 of the PEM public key that verifies JWT webhooks.
#[derive(Debug, Serialize)]
pub struct WebhookPublicKeyDto {
    public_key: String,
}

impl WebhookPublicKeyDto {
    /// The object for `public_key_base64`.
    pub fn new(public_key_base64: String) -> Self {
        Self {
            public_key: public_key_base64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dto(body: serde_json::Value) -> WebhookEndpointInputDto {
        serde_json::from_value(body).unwrap_or_default()
    }

    #[test]
    fn an_update_keeps_absent_fields_and_applies_nulls() {
        let current = WebhookEndpoint::new(WebhookEndpointInput {
            webhook_url: Some("https://a.example".into()),
            signature_algo: Some("hmac".into()),
            name: Some("A".into()),
            event_types: Some(vec!["invoice.created".into()]),
        });
        let Ok(current) = current else {
            panic!("{current:?}")
        };
        let input = dto(json!({"name": "B"})).into_update(&current);
        assert_eq!(input.signature_algo.as_deref(), Some("hmac"));
        assert_eq!(input.event_types, Some(vec!["invoice.created".to_owned()]));
        assert_eq!(input.name.as_deref(), Some("B"));
        let input = dto(json!({"event_types": null, "signature_algo": null})).into_update(&current);
        assert_eq!(input.event_types, None, "null event_types means every type");
        assert_eq!(
            input.signature_algo, None,
            "null signature_algo means the default"
        );
        assert_eq!(input.webhook_url.as_deref(), Some("https://a.example"));
    }
}
