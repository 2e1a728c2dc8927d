//! Webhook endpoints: where an organization receives its webhooks, how each delivery is signed,
//! and which webhook types it wants.
//!
//! An endpoint is validated on construction: an `http`/`https` URL with a host, a known
//! signature algorithm, and event types drawn from Lago's documented list (API_CONTRACT §4.13),
//! so a typo in a type is refused instead of silently never firing.

use super::ValidationErrors;

/// Lago's limit of webhook endpoints per organization.
pub const ENDPOINTS_PER_ORGANIZATION_MAX: usize = 10;

/// The longest webhook URL accepted (R19; browsers and proxies commonly stop near 2 KB).
pub const WEBHOOK_URL_CHARS_MAX: usize = 2048;

/// The longest endpoint name accepted.
pub const NAME_CHARS_MAX: usize = 255;

/// Every `webhook_type` Lago documents, in the dotted form sent on the wire.
pub const WEBHOOK_TYPES: [&str; 61] = [
    "alert.triggered",
    "billable_metric.created",
    "billable_metric.updated",
    "billable_metric.deleted",
    "customer.created",
    "customer.updated",
    "customer.accounting_provider_created",
    "customer.crm_provider_created",
    "customer.payment_provider_created",
    "customer.vies_check",
    "customer.accounting_provider_error",
    "customer.crm_provider_error",
    "customer.payment_provider_error",
    "customer.checkout_url_generated",
    "customer.tax_provider_error",
    "credit_note.created",
    "credit_note.generated",
    "credit_note.refund_failure",
    "dunning_campaign.finished",
    "event.error",
    "events.errors",
    "feature.created",
    "feature.updated",
    "feature.deleted",
    "fee.created",
    "fee.tax_provider_error",
    "invoice.created",
    "invoice.one_off_created",
    "invoice.add_on_added",
    "invoice.paid_credit_added",
    "invoice.generated",
    "invoice.drafted",
    "invoice.voided",
    "invoice.deleted",
    "invoice.payment_status_updated",
    "invoice.payment_overdue",
    "invoice.resynced",
    "invoice.payment_dispute_lost",
    "invoice.payment_failure",
    "integration.provider_error",
    "payment.requires_action",
    "payment.succeeded",
    "payment_provider.error",
    "payment_request.created",
    "payment_request.payment_status_updated",
    "payment_request.payment_failure",
    "plan.created",
    "plan.updated",
    "plan.deleted",
    "subscription.started",
    "subscription.updated",
    "subscription.terminated",
    "subscription.canceled",
    "subscription.incomplete",
    "subscription.termination_alert",
    "subscription.trial_ended",
    "subscription.usage_threshold_reached",
    "wallet.depleted_ongoing_balance",
    "wallet_transaction.created",
    "wallet_transaction.updated",
    "wallet_transaction.payment_failure",
];

/// How deliveries to an endpoint are signed (`X-Lago-Signature-Algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgo {
    /// An RS256 JWT signed with the deployment's private key (Lago's default).
    Jwt,
    /// Base64 of HMAC-SHA256 of the body with the organization's HMAC key.
    Hmac,
}

impl SignatureAlgo {
    /// Lago's name: `jwt` or `hmac`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgo::Jwt => "jwt",
            SignatureAlgo::Hmac => "hmac",
        }
    }

    /// The algorithm named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "jwt" => Some(SignatureAlgo::Jwt),
            "hmac" => Some(SignatureAlgo::Hmac),
            _ => None,
        }
    }
}

/// What a caller supplies to define (or fully redefine) an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookEndpointInput {
    /// Where deliveries are POSTed (required).
    pub webhook_url: Option<String>,
    /// `jwt` or `hmac`; absent means `jwt`.
    pub signature_algo: Option<String>,
    /// A label for people.
    pub name: Option<String>,
    /// The webhook types delivered; absent means every type.
    pub event_types: Option<Vec<String>>,
}

/// A validated webhook endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    webhook_url: String,
    signature_algo: SignatureAlgo,
    name: Option<String>,
    event_types: Option<Vec<String>>,
}

impl WebhookEndpoint {
    /// Validates a complete endpoint. Repeated event types are kept once, in the order given.
    pub fn new(input: WebhookEndpointInput) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let webhook_url = input.webhook_url.unwrap_or_default();
        if webhook_url.is_empty() {
            errors.push("webhook_url", "value_is_mandatory");
        } else if !is_http_url(&webhook_url) {
            errors.push("webhook_url", "url_is_invalid");
        }
        let signature_algo = match input.signature_algo.as_deref() {
            None => SignatureAlgo::Jwt,
            Some(name) => SignatureAlgo::parse(name).unwrap_or_else(|| {
                errors.push("signature_algo", "value_is_invalid");
                SignatureAlgo::Jwt
            }),
        };
        if input
            .name
            .as_ref()
            .is_some_and(|n| n.chars().count() > NAME_CHARS_MAX)
        {
            errors.push("name", "value_is_invalid");
        }
        let event_types = input.event_types.map(|types| {
            let mut kept: Vec<String> = Vec::with_capacity(types.len());
            for t in types {
                if !WEBHOOK_TYPES.contains(&t.as_str()) {
                    errors.push("event_types", "value_is_invalid");
                } else if !kept.contains(&t) {
                    kept.push(t);
                }
            }
            kept
        });
        errors.into_result()?;
        Ok(Self {
            webhook_url,
            signature_algo,
            name: input.name,
            event_types,
        })
    }

    /// The input that reproduces this endpoint, for applying a partial update on top.
    pub fn to_input(&self) -> WebhookEndpointInput {
        WebhookEndpointInput {
            webhook_url: Some(self.webhook_url.clone()),
            signature_algo: Some(self.signature_algo.as_str().to_owned()),
            name: self.name.clone(),
            event_types: self.event_types.clone(),
        }
    }

    /// Where deliveries are POSTed.
    pub fn webhook_url(&self) -> &str {
        &self.webhook_url
    }
    /// How deliveries are signed.
    pub fn signature_algo(&self) -> SignatureAlgo {
        self.signature_algo
    }
    /// A label for people.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The webhook types delivered; `None` is every type.
    pub fn event_types(&self) -> Option<&[String]> {
        self.event_types.as_deref()
    }

    /// Whether a webhook of `webhook_type` goes to this endpoint.
    pub fn wants(&self, webhook_type: &str) -> bool {
        self.event_types
            .as_ref()
            .is_none_or(|types| types.iter().any(|t| t == webhook_type))
    }
}

/// Characters RFC 3986 allows in a URI (unreserved, reserved, and `%` of percent-encoding):
/// anything else (spaces, quotes, non-ASCII) must be percent-encoded to be sent.
fn is_uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+,;=%".contains(c)
}

/// An absolute `http` or `https` URL with a host, in RFC 3986 characters: an optional
/// `user@`, a host, an optional numeric port, then a path, query or fragment.
fn is_http_url(url: &str) -> bool {
    if url.len() > WEBHOOK_URL_CHARS_MAX || !url.chars().all(is_uri_char) {
        return false;
    }
    let lower = url.to_ascii_lowercase();
    let Some(rest) = ["http://", "https://"]
        .iter()
        .find_map(|scheme| lower.starts_with(scheme).then(|| &url[scheme.len()..]))
    else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
        // An IPv6 literal: `[::1]` or `[::1]:8080`.
        match v6.split_once(']') {
            Some((address, tail)) if !address.is_empty() => (address, tail.strip_prefix(':')),
            _ => return false,
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.chars().all(|c| c.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65_535)
    });
    host_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::FieldError;

    fn endpoint(input: WebhookEndpointInput) -> Result<WebhookEndpoint, Vec<FieldError>> {
        WebhookEndpoint::new(input).map_err(|e| e.0)
    }

    fn url(u: &str) -> WebhookEndpointInput {
        WebhookEndpointInput {
            webhook_url: Some(u.into()),
            ..Default::default()
        }
    }

    #[test]
    fn http_and_https_urls_with_a_host_are_accepted() {
        for good in [
            "https://example.com",
            "http://127.0.0.1:8080/hooks?x=1",
            "HTTPS://Example.com/Path#frag",
            "https://user@hooks.example.com/lago",
            "http://[::1]:3000/",
            "https://xn--bcher-kva.example/",
        ] {
            assert!(endpoint(url(good)).is_ok(), "{good}");
        }
    }

    #[test]
    fn urls_that_are_not_http_with_a_host_are_url_is_invalid() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://",
            "https:///path",
            "https://exa mple.com",
            "https://example.com:99999",
            "https://example.com:abc",
            "javascript:alert(1)",
            " https://example.com",
            "https://[]/",
            "https://bücher.example/",
            "https://example.com/a\"b",
            "https://example.com/{x}",
        ] {
            assert_eq!(
                endpoint(url(bad)).err(),
                Some(vec![FieldError::new("webhook_url", "url_is_invalid")]),
                "{bad}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(WEBHOOK_URL_CHARS_MAX));
        assert!(endpoint(url(&long)).is_err(), "an over-long URL");
    }

    #[test]
    fn a_missing_url_is_mandatory() {
        for input in [WebhookEndpointInput::default(), url("")] {
            assert_eq!(
                endpoint(input).err(),
                Some(vec![FieldError::new("webhook_url", "value_is_mandatory")])
            );
        }
    }

    #[test]
    fn the_signature_algo_defaults_to_jwt_and_must_be_jwt_or_hmac() {
        let algo = |a: Option<&str>| {
            endpoint(WebhookEndpointInput {
                signature_algo: a.map(String::from),
                ..url("https://example.com")
            })
        };
        assert_eq!(
            algo(None).map(|e| e.signature_algo()),
            Ok(SignatureAlgo::Jwt)
        );
        assert_eq!(
            algo(Some("hmac")).map(|e| e.signature_algo()),
            Ok(SignatureAlgo::Hmac)
        );
        assert_eq!(
            algo(Some("rsa")).err(),
            Some(vec![FieldError::new("signature_algo", "value_is_invalid")])
        );
    }

    #[test]
    fn event_types_filter_deliveries_and_unknown_types_are_refused() {
        // Given an endpoint for two types, one repeated,
        let e = endpoint(WebhookEndpointInput {
            event_types: Some(vec![
                "invoice.created".into(),
                "subscription.started".into(),
                "invoice.created".into(),
            ]),
            ..url("https://example.com")
        });
        let Ok(e) = e else {
            panic!("valid endpoint refused: {e:?}")
        };
        // then it keeps each once and wants only those,
        assert_eq!(
            e.event_types(),
            Some(
                &[
                    "invoice.created".to_owned(),
                    "subscription.started".to_owned()
                ][..]
            )
        );
        assert!(e.wants("invoice.created"));
        assert!(!e.wants("invoice.voided"));
        // an endpoint without types wants them all, one with none wants nothing,
        let all = endpoint(url("https://example.com"));
        assert!(all.is_ok_and(|a| a.wants("invoice.voided")));
        let none = endpoint(WebhookEndpointInput {
            event_types: Some(vec![]),
            ..url("https://example.com")
        });
        assert!(none.is_ok_and(|n| !n.wants("invoice.voided")));
        // and a type Lago does not document is refused.
        assert_eq!(
            endpoint(WebhookEndpointInput {
                event_types: Some(vec!["invoice.creatd".into()]),
                ..url("https://example.com")
            })
            .err(),
            Some(vec![FieldError::new("event_types", "value_is_invalid")])
        );
    }

    #[test]
    fn an_endpoint_round_trips_through_its_input() {
        let input = WebhookEndpointInput {
            webhook_url: Some("https://example.com/hooks".into()),
            signature_algo: Some("hmac".into()),
            name: Some("Billing hooks".into()),
            event_types: Some(vec!["invoice.created".into()]),
        };
        let e = endpoint(input.clone());
        assert_eq!(e.as_ref().map(WebhookEndpoint::to_input), Ok(input));
    }

    #[test]
    fn the_documented_types_are_distinct() {
        let mut sorted = WEBHOOK_TYPES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), WEBHOOK_TYPES.len());
    }
}
