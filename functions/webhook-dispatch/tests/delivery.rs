//! Webhook delivery end to end in the emulator: an event published on the bus reaches the
//! webhook queue through the rule, the dispatcher (wired as the Lambda is) signs and POSTs it
//! to HTTP receivers on this machine, and the receivers check what a Lago client checks.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use billing_aws::{bus::DomainEvent, infra::WEBHOOK_QUEUE};
use chrono::Datelike;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use support::{ISSUER, Receiver, Stack};
use webhook_dispatch::Backoff;

fn subscription(external_id: &str) -> Value {
    json!({"lago_id": uuid::Uuid::new_v4().to_string(), "external_id": external_id,
           "status": "active", "plan_code": "premium"})
}

#[derive(Debug, Deserialize)]
struct Claims {
    data: String,
    iss: String,
}

#[tokio::test]
async fn hmac_and_jwt_webhooks_carry_lagos_headers_body_and_verifiable_signatures() {
    // Given an organization with an hmac endpoint and a jwt endpoint,
    let stack = Stack::provision().await;
    let org = stack.organization("Acme").await;
    let hmac_receiver = Receiver::start(200).await;
    let jwt_receiver = Receiver::start(204).await;
    org.endpoint(json!({"webhook_url": hmac_receiver.url, "signature_algo": "hmac"}))
        .await;
    org.endpoint(json!({"webhook_url": jwt_receiver.url})).await;
    let deps = stack.dispatcher(Backoff::NONE).await;

    // when a subscription.started event is published and the dispatcher polls once,
    let object = subscription("sub_1");
    let event = stack
        .publish(&org, "subscription.started", object.clone())
        .await;
    let report = stack.poll(&deps).await;
    assert_eq!((report.received, report.failed), (1, 0));

    // then each endpoint got one POST of Lago's body with Lago's headers,
    let expected_body = json!({
        "webhook_type": "subscription.started", "object_type": "subscription",
        "organization_id": org.id, "subscription": object,
    });
    let [hmac_hit] = hmac_receiver.hits().try_into().expect("one hmac delivery");
    let [jwt_hit] = jwt_receiver.hits().try_into().expect("one jwt delivery");
    for (hit, algo) in [(&hmac_hit, "hmac"), (&jwt_hit, "jwt")] {
        assert_eq!(hit.method, "POST");
        assert_eq!(hit.path, "/webhooks");
        assert_eq!(hit.header("content-type"), "application/json");
        assert_eq!(hit.header("x-lago-signature-algorithm"), algo);
        assert_eq!(hit.header("x-lago-unique-key"), event.unique_key);
        let body: Value = serde_json::from_slice(&hit.body).expect("a JSON body");
        assert_eq!(body, expected_body, "{algo} body");
        assert!(
            hit.text().starts_with(r#"{"webhook_type":"subscription.started","object_type":"subscription","organization_id":"#),
            "Lago's key order: {}",
            hit.text()
        );
    }

    // the hmac signature is HMAC-SHA256 of the raw body with the organization's key,
    let key = org.get("/api/v1/webhooks/hmac_key").await["webhook"]["hmac_key"]
        .as_str()
        .expect("an hmac key")
        .to_owned();
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("a key");
    mac.update(&hmac_hit.body);
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(hmac_hit.header("x-lago-signature"), expected);

    // and the jwt is an RS256 token, verified with the published public key, whose `data`
    // claim is exactly the body received and whose issuer is the API's URL.
    let published = org.get("/api/v1/webhooks/json_public_key").await["webhook"]["public_key"]
        .as_str()
        .expect("a public key")
        .to_owned();
    let pem = STANDARD.decode(published).expect("Base64 of the PEM");
    let token = jwt_hit.header("x-lago-signature");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap_or_default())
            .expect("a JWS header"),
    )
    .expect("JSON");
    assert_eq!(header["alg"], "RS256");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.set_issuer(&[ISSUER]);
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_rsa_pem(&pem).expect("an RSA public key"),
        &validation,
    )
    .expect("the JWT verifies with the published key")
    .claims;
    assert_eq!(claims.data, jwt_hit.text());
    assert_eq!(claims.iss, ISSUER);
    // A token over another body does not verify.
    let forged = format!("{}x", token);
    assert!(
        jsonwebtoken::decode::<Claims>(
            &forged,
            &DecodingKey::from_rsa_pem(&pem).expect("key"),
            &validation
        )
        .is_err()
    );

    // The message is done: nothing is left in the queue.
    assert_eq!(stack.outstanding().await, 0);
}

#[tokio::test]
async fn a_failing_endpoint_is_retried_with_the_same_unique_key_until_the_dead_letter_queue() {
    // Given one endpoint that accepts and one that answers 500,
    let stack = Stack::provision().await;
    let org = stack.organization("Acme").await;
    let healthy = Receiver::start(200).await;
    let failing = Receiver::start(500).await;
    org.endpoint(json!({"webhook_url": healthy.url, "signature_algo": "hmac"}))
        .await;
    org.endpoint(json!({"webhook_url": failing.url, "signature_algo": "hmac"}))
        .await;
    let deps = stack.dispatcher(Backoff::NONE).await;
    let event = stack
        .publish(&org, "subscription.terminated", subscription("sub_1"))
        .await;

    // when the dispatcher polls once per receive the queue allows, and once more,
    let attempts = WEBHOOK_QUEUE.max_receive_count as usize;
    for attempt in 1..=attempts {
        let report = stack.poll(&deps).await;
        assert_eq!(
            (report.received, report.failed),
            (1, 1),
            "attempt {attempt}"
        );
    }
    let last = stack.poll(&deps).await;
    assert_eq!(
        last.received, 0,
        "the queue moved the message to the DLQ instead"
    );

    // then the failing endpoint got every attempt, all the same bytes and unique key,
    let hits = failing.hits();
    assert_eq!(hits.len(), attempts);
    for hit in &hits {
        assert_eq!(hit.header("x-lago-unique-key"), event.unique_key);
        assert_eq!(hit.body, hits[0].body);
        assert_eq!(
            hit.header("x-lago-signature"),
            hits[0].header("x-lago-signature")
        );
    }
    // the endpoint that accepted on the first attempt was not sent it again,
    assert_eq!(healthy.hits().len(), 1);
    // and the event waits in the dead-letter queue, out of the webhook queue.
    let dead = stack.dead_letters().await;
    assert_eq!(dead.len(), 1, "{dead:#?}");
    assert_eq!(dead[0]["detail"]["unique_key"], json!(event.unique_key));
    assert_eq!(stack.outstanding().await, 0);
}

#[tokio::test]
async fn an_endpoint_that_recovers_gets_the_webhook_once_more_and_then_never_again() {
    let stack = Stack::provision().await;
    let org = stack.organization("Acme").await;
    let receiver = Receiver::start(503).await;
    org.endpoint(json!({"webhook_url": receiver.url})).await;
    let deps = stack.dispatcher(Backoff::NONE).await;
    let event = stack
        .publish(&org, "subscription.started", subscription("sub_1"))
        .await;

    // First attempt refused, second accepted,
    assert_eq!(stack.poll(&deps).await.failed, 1);
    receiver.answer(200);
    let second = stack.poll(&deps).await;
    assert_eq!((second.received, second.failed), (1, 0));
    // then the queue is empty and later polls deliver nothing.
    assert_eq!(stack.poll(&deps).await.received, 0);
    assert_eq!(stack.outstanding().await, 0);
    let hits = receiver.hits();
    assert_eq!(hits.len(), 2);
    assert!(
        hits.iter()
            .all(|h| h.header("x-lago-unique-key") == event.unique_key)
    );
    assert_eq!(hits[0].body, hits[1].body, "a retry sends the same bytes");
}

#[tokio::test]
async fn an_organizations_event_never_reaches_another_organizations_endpoint() {
    // Given two organizations, each with an endpoint for every type,
    let stack = Stack::provision().await;
    let a = stack.organization("A").await;
    let b = stack.organization("B").await;
    let a_receiver = Receiver::start(200).await;
    let b_receiver = Receiver::start(200).await;
    a.endpoint(json!({"webhook_url": a_receiver.url})).await;
    b.endpoint(json!({"webhook_url": b_receiver.url})).await;
    let deps = stack.dispatcher(Backoff::NONE).await;

    // when A's event is dispatched, only A's endpoint receives it;
    let event_a = stack
        .publish(&a, "subscription.started", subscription("a_1"))
        .await;
    stack.poll(&deps).await;
    assert_eq!(a_receiver.hits().len(), 1);
    assert_eq!(b_receiver.hits().len(), 0, "B must not see A's webhook");
    let body: Value = serde_json::from_slice(&a_receiver.hits()[0].body).expect("JSON");
    assert_eq!(body["organization_id"], json!(a.id));

    // and B's event goes to B's endpoint only.
    let event_b = stack
        .publish(&b, "subscription.started", subscription("b_1"))
        .await;
    stack.poll(&deps).await;
    assert_eq!(a_receiver.hits().len(), 1);
    let [b_hit] = b_receiver.hits().try_into().expect("one delivery to B");
    assert_eq!(b_hit.header("x-lago-unique-key"), event_b.unique_key);
    assert_ne!(event_a.unique_key, event_b.unique_key);
}

#[tokio::test]
async fn event_types_choose_which_endpoints_receive_a_webhook() {
    let stack = Stack::provision().await;
    let org = stack.organization("Acme").await;
    let invoices_only = Receiver::start(200).await;
    let everything = Receiver::start(200).await;
    org.endpoint(json!({"webhook_url": invoices_only.url, "event_types": ["invoice.created"]}))
        .await;
    org.endpoint(json!({"webhook_url": everything.url, "event_types": null}))
        .await;
    let deps = stack.dispatcher(Backoff::NONE).await;

    stack
        .publish(&org, "subscription.started", subscription("sub_1"))
        .await;
    let report = stack.poll(&deps).await;
    assert_eq!((report.received, report.failed), (1, 0));
    assert_eq!(invoices_only.hits().len(), 0);
    assert_eq!(everything.hits().len(), 1);

    // An invoice.created goes to both.
    stack
        .publish(&org, "invoice.created", json!({"lago_id": "inv_1"}))
        .await;
    assert_eq!(stack.poll(&deps).await.failed, 0);
    assert_eq!(invoices_only.hits().len(), 1);
    assert_eq!(everything.hits().len(), 2);
    assert_eq!(stack.outstanding().await, 0);
}

#[tokio::test]
async fn the_dispatcher_postpones_a_failed_message_by_the_backoff_of_its_receive_count() {
    // Given a failing endpoint and an event in the queue, received by hand (the queue's own
    // visibility timeout would hide it for minutes),
    let stack = Stack::provision().await;
    let org = stack.organization("Acme").await;
    let receiver = Receiver::start(500).await;
    org.endpoint(json!({"webhook_url": receiver.url})).await;
    stack
        .publish(&org, "subscription.started", subscription("sub_1"))
        .await;
    let received = stack
        .sqs
        .receive_message()
        .queue_url(&stack.queue_url)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .expect("a receive");
    let message = received
        .messages
        .unwrap_or_default()
        .pop()
        .expect("the event's message");
    let mut record = SqsMessage::default();
    record.message_id = message.message_id.clone();
    record.receipt_handle = message.receipt_handle.clone();
    record.body = message.body.clone();
    record.attributes = message
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.as_str().to_owned(), v))
        .collect();
    let mut event = SqsEvent::default();
    event.records.push(record);

    // when the handler (no poller involved) fails it with a zero first delay,
    let deps = stack.dispatcher(Backoff::NONE).await;
    let response = webhook_dispatch::handler(&deps, event).await;

    // then it reports the message as failed and made it visible again at once.
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        Some(response.batch_item_failures[0].item_identifier.clone()),
        message.message_id
    );
    let again = stack
        .sqs
        .receive_message()
        .queue_url(&stack.queue_url)
        .send()
        .await
        .expect("a receive");
    assert_eq!(
        again.messages.unwrap_or_default().len(),
        1,
        "the handler set the message's visibility to the backoff delay"
    );
}

#[tokio::test]
async fn a_message_that_is_not_a_domain_event_is_reported_failed() {
    let stack = Stack::provision().await;
    let deps = stack.dispatcher(Backoff::NONE).await;
    let mut record = SqsMessage::default();
    record.message_id = Some("m-1".into());
    record.body = Some("not an event".into());
    let mut event = SqsEvent::default();
    event.records.push(record);
    let response = webhook_dispatch::handler(&deps, event).await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(response.batch_item_failures[0].item_identifier, "m-1");
}

#[tokio::test]
async fn subscriptions_started_and_terminated_through_the_api_reach_the_endpoint() {
    // Given an endpoint for subscription events, a customer and a plan,
    let stack = Stack::provision().await;
    let org = stack.organization("Acme").await;
    let receiver = Receiver::start(200).await;
    org.endpoint(json!({"webhook_url": receiver.url,
                        "event_types": ["subscription.started", "subscription.terminated"]}))
        .await;
    org.send(
        http::Method::POST,
        "/api/v1/customers",
        Some(json!({"customer": {"external_id": "cus_1", "name": "Jane"}})),
    )
    .await;
    org.send(
        http::Method::POST,
        "/api/v1/plans",
        Some(
            json!({"plan": {"name": "Basic", "code": "basic", "interval": "monthly",
                             "amount_cents": 1000, "amount_currency": "EUR",
                             "pay_in_advance": false}}),
        ),
    )
    .await;
    let deps = stack.dispatcher(Backoff::NONE).await;

    // when a subscription starts, then it is terminated,
    let created = org
        .send(
            http::Method::POST,
            "/api/v1/subscriptions",
            Some(json!({"subscription": {"external_customer_id": "cus_1",
                                         "plan_code": "basic", "external_id": "sub_1"}})),
        )
        .await;
    assert_eq!(stack.poll(&deps).await.failed, 0);
    org.send(http::Method::DELETE, "/api/v1/subscriptions/sub_1", None)
        .await;
    assert_eq!(stack.poll(&deps).await.failed, 0);

    // then the endpoint got subscription.started then subscription.terminated, each with
    // Lago's SubscriptionWithCustomerObject: the subscription, its plan and its customer.
    let hits = receiver.hits();
    let bodies: Vec<Value> = hits
        .iter()
        .map(|h| serde_json::from_slice(&h.body).expect("JSON"))
        .collect();
    let types: Vec<&str> = bodies
        .iter()
        .map(|b| b["webhook_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(types, ["subscription.started", "subscription.terminated"]);
    let started = &bodies[0]["subscription"];
    assert_eq!(started["lago_id"], created["subscription"]["lago_id"]);
    assert_eq!(started["status"], "active");
    assert_eq!(started["plan"]["code"], "basic");
    assert_eq!(started["customer"]["external_id"], "cus_1");
    assert_eq!(bodies[1]["subscription"]["status"], "terminated");
    assert_eq!(bodies[1]["object_type"], "subscription");
    assert_ne!(
        hits[0].header("x-lago-unique-key"),
        hits[1].header("x-lago-unique-key")
    );
}

#[tokio::test]
async fn an_invoice_created_by_the_invoice_worker_reaches_the_endpoint_once() {
    // Given an endpoint for invoice.created, and a subscription started now on a monthly
    // plan billed in arrears (no grace period: its invoice is finalized when it is created),
    let stack = Stack::provision().await;
    let org = stack.organization("Acme").await;
    let receiver = Receiver::start(200).await;
    org.endpoint(json!({"webhook_url": receiver.url, "event_types": ["invoice.created"]}))
        .await;
    org.send(
        http::Method::POST,
        "/api/v1/customers",
        Some(json!({"customer": {"external_id": "cus_1", "name": "Jane"}})),
    )
    .await;
    org.send(
        http::Method::POST,
        "/api/v1/plans",
        Some(
            json!({"plan": {"name": "Basic", "code": "basic", "interval": "monthly",
                             "amount_cents": 3100, "amount_currency": "EUR",
                             "pay_in_advance": false}}),
        ),
    )
    .await;
    org.send(
        http::Method::POST,
        "/api/v1/subscriptions",
        Some(json!({"subscription": {"external_customer_id": "cus_1",
                                     "plan_code": "basic", "external_id": "sub_1"}})),
    )
    .await;

    // when the billing clock runs at the end of the month and the invoice worker closes it,
    let now = chrono::Utc::now().date_naive();
    let next_month = now
        .with_day(1)
        .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
        .expect("a date");
    let at = next_month.and_hms_opt(0, 0, 0).expect("midnight").and_utc();
    let run = stack
        .billing_runner()
        .run_at(at)
        .await
        .expect("the billing run");
    assert_eq!(run.failed, 0);
    let deps = stack.dispatcher(Backoff::NONE).await;
    for _ in 0..3 {
        assert_eq!(stack.poll(&deps).await.failed, 0);
    }

    // then the endpoint got invoice.created once: Lago's body with the finalized invoice,
    // keyed by the invoice's creation.
    let invoices = org.get("/api/v1/invoices").await;
    let invoice_id = invoices["invoices"][0]["lago_id"]
        .as_str()
        .expect("an invoice")
        .to_owned();
    let [hit] = receiver.hits().try_into().expect("one delivery");
    let body: Value = serde_json::from_slice(&hit.body).expect("JSON");
    assert_eq!(body["webhook_type"], "invoice.created");
    assert_eq!(body["object_type"], "invoice");
    assert_eq!(body["organization_id"], org.id.as_str());
    assert_eq!(body["invoice"]["lago_id"], invoice_id.as_str());
    assert_eq!(body["invoice"]["status"], "finalized");
    assert_eq!(body["invoice"]["customer"]["external_id"], "cus_1");
    assert_eq!(
        hit.header("x-lago-unique-key"),
        invoicing::invoice_events::unique_key(&invoice_id, "invoice.created", 1)
    );
    assert!(
        hit.text().starts_with(
            r#"{"webhook_type":"invoice.created","object_type":"invoice","organization_id":"#
        ),
        "Lago's key order: {}",
        hit.text()
    );
    // and a second run of the clock at the same instant sends nothing more.
    stack
        .billing_runner()
        .run_at(at)
        .await
        .expect("the billing run");
    assert_eq!(stack.poll(&deps).await.failed, 0);
    assert_eq!(receiver.hits().len(), 1);
}

#[tokio::test]
async fn an_event_too_large_for_the_bus_reaches_the_endpoint_whole_through_the_bucket() {
    // Given an endpoint, and an invoice object of about 500 KB (thousands of fees), far over
    // the 256 KB EventBridge and SQS take,
    let stack = Stack::provision().await;
    let org = stack.organization("Acme").await;
    let receiver = Receiver::start(200).await;
    org.endpoint(json!({"webhook_url": receiver.url, "signature_algo": "hmac"}))
        .await;
    let deps = stack.dispatcher(Backoff::NONE).await;
    let fees: Vec<Value> = (0..8000)
        .map(|i| json!({"lago_id": format!("fee-{i:05}"), "amount_cents": i, "item": {"code": "calls"}}))
        .collect();
    let object = json!({"lago_id": uuid::Uuid::new_v4().to_string(), "fees": fees});
    assert!(object.to_string().len() > 2 * billing_aws::bus::PUT_EVENTS_MAX_BYTES);

    // when it is published (with two small events in the same call) and the dispatcher polls,
    let small = |key: &str| DomainEvent {
        organization_id: org.id.clone(),
        webhook_type: "subscription.started".into(),
        object_type: "subscription".into(),
        object: subscription(key),
        unique_key: uuid::Uuid::new_v4().to_string(),
        object_key: None,
    };
    let large = DomainEvent {
        organization_id: org.id.clone(),
        webhook_type: "invoice.created".into(),
        object_type: "invoice".into(),
        object: object.clone(),
        unique_key: uuid::Uuid::new_v4().to_string(),
        object_key: None,
    };
    let (first, last) = (small("sub_1"), small("sub_2"));
    stack
        .bus
        .publish(&[first.clone(), large.clone(), last.clone()])
        .await
        .expect("the bus takes all three");
    let mut delivered = 0;
    while delivered < 3 {
        let report = stack.poll(&deps).await;
        assert!(report.received > 0, "three messages reach the queue");
        assert_eq!(report.failed, 0);
        delivered += report.received;
    }

    // then the webhook carries the whole object, signed over the bytes sent,
    let hits = receiver.hits();
    assert_eq!(hits.len(), 3);
    let hit = hits
        .iter()
        .find(|h| h.header("x-lago-unique-key") == large.unique_key)
        .expect("the large event was delivered");
    let body: Value = serde_json::from_slice(&hit.body).expect("JSON");
    assert_eq!(
        body,
        json!({"webhook_type": "invoice.created", "object_type": "invoice",
               "organization_id": org.id, "invoice": object})
    );
    let key = org.get("/api/v1/webhooks/hmac_key").await["webhook"]["hmac_key"]
        .as_str()
        .expect("an hmac key")
        .to_owned();
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("a key");
    mac.update(&hit.body);
    assert_eq!(
        hit.header("x-lago-signature"),
        STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(stack.outstanding().await, 0);
    // and it went through the bucket (the emulator's bus would take an oversized entry that
    // AWS refuses), while the small events went inline.
    let documents =
        billing_aws::documents::DocumentStore::new(&stack.sdk, stack.documents_bucket.clone());
    let stored = documents
        .get(&billing_aws::bus::overflow_key(&large))
        .await
        .expect("the large object is in the bucket");
    assert_eq!(
        serde_json::from_slice::<Value>(&stored).expect("JSON"),
        object
    );
    for inline in [&first, &last] {
        assert!(
            documents
                .get(&billing_aws::bus::overflow_key(inline))
                .await
                .is_err()
        );
    }
}

#[tokio::test]
async fn an_event_naming_an_object_that_is_not_its_own_is_never_delivered() {
    // Given two organizations, each with an endpoint, and a large event of the first stored
    // through the bucket,
    let stack = Stack::provision().await;
    let acme = stack.organization("Acme").await;
    let other = stack.organization("Other").await;
    let receiver = Receiver::start(200).await;
    other
        .endpoint(json!({"webhook_url": receiver.url, "signature_algo": "hmac"}))
        .await;
    let deps = stack.dispatcher(Backoff::NONE).await;
    let secret = DomainEvent {
        organization_id: acme.id.clone(),
        webhook_type: "invoice.created".into(),
        object_type: "invoice".into(),
        object: json!({"secret": "x".repeat(300_000)}),
        unique_key: uuid::Uuid::new_v4().to_string(),
        object_key: None,
    };
    stack
        .bus
        .publish(std::slice::from_ref(&secret))
        .await
        .expect("published");
    while stack.poll(&deps).await.received > 0 {}

    // when an event of the other organization names the first one's stored object,
    let forged = DomainEvent {
        organization_id: other.id.clone(),
        webhook_type: "invoice.created".into(),
        object_type: "invoice".into(),
        object: Value::Null,
        unique_key: uuid::Uuid::new_v4().to_string(),
        object_key: Some(billing_aws::bus::overflow_key(&secret)),
    };
    let delivered = webhook_dispatch::deliver_webhook(&deps, &forged).await;

    // then nothing is sent: the key is not the event's own.
    assert!(
        matches!(delivered, Err(webhook_dispatch::DeliveryError::Object(_))),
        "{delivered:?}"
    );
    assert!(receiver.hits().is_empty());
}
