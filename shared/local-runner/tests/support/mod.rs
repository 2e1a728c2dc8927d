//! A whole stack per test, in-process: the emulator's tables and queues under a fresh prefix,
//! the HTTP functions behind `local_runner::app`, and the aggregate worker driven by hand, so a
//! test can put a fault exactly where it wants one.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod faults;

use std::{sync::Arc, time::Duration};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageSystemAttributeName;
use axum::{Router, body::Body, http::Request};
use billing_aws::{
    BillingStore, config, events::EventStore, infra, provision, queue::EventQueue,
    usage::UsageStore,
};
use http_body_util::BodyExt;
use local_runner::worker::{Drainer, QueuePoller};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use tower::ServiceExt;

/// One provisioned stack and an organization in it.
pub struct Stack {
    pub sdk: aws_config::SdkConfig,
    pub store: BillingStore,
    pub events_table: String,
    pub usage_table: String,
    pub queue_url: String,
    pub dlq_url: String,
    pub api_key: String,
}

/// The subscription a test bills usage to.
pub struct Billed {
    pub metric: String,
    pub customer: String,
    pub subscription: String,
}

impl Stack {
    /// Provisions a fresh stack (its own tables and queues, so no other test's messages can
    /// reach this test's queue) and an organization.
    pub async fn new(name: &str) -> Self {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok(),
            "AWS_ENDPOINT_URL must point at the AWS emulator (make test sets it)"
        );
        let sdk = config::sdk_config().await;
        let base = std::env::var("RESOURCE_PREFIX").unwrap_or_else(|_| "test".into());
        let prefix = format!(
            "{base}-{name}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let p = provision::provision(&sdk, &prefix)
            .await
            .expect("provision");
        let get = |v: &str| p.get(v).expect(v).to_owned();
        let store = BillingStore::new(&sdk, get(infra::BILLING_TABLE.env_var));
        let api_key = local_runner::organization::new_api_key();
        local_runner::organization::create(&store, "Faults", &api_key)
            .await
            .expect("organization");
        Self {
            store,
            events_table: get(infra::EVENTS_TABLE.env_var),
            usage_table: get(infra::USAGE_TABLE.env_var),
            queue_url: get(infra::EVENTS_QUEUE.env_var),
            dlq_url: get(infra::EVENTS_QUEUE.dlq_env_var),
            api_key,
            sdk,
        }
    }

    pub fn event_store(&self) -> EventStore {
        EventStore::new(&self.sdk, &self.events_table)
    }

    pub fn queue(&self) -> EventQueue {
        EventQueue::new(&self.sdk, &self.queue_url)
    }

    pub fn usage(&self) -> UsageStore {
        UsageStore::new(&self.sdk, &self.usage_table)
    }

    pub fn aggregate_deps(&self) -> aggregate::Deps {
        aggregate::Deps::new(self.store.clone(), self.usage())
    }

    /// The HTTP surface with the given ingest dependencies (faulty ones, in some tests).
    pub fn app_with(&self, events: EventStore, queue: EventQueue) -> Router {
        let api = api::Deps::new(self.store.clone()).with_usage(self.usage());
        let ingest = ingest::Deps::new(self.store.clone(), events, queue, self.usage());
        local_runner::app(api, ingest, self.drainer())
    }

    pub fn app(&self) -> Router {
        self.app_with(self.event_store(), self.queue())
    }

    pub fn drainer(&self) -> Drainer {
        Drainer::new(
            QueuePoller::new(
                aws_sdk_sqs::Client::new(&self.sdk),
                &self.queue_url,
                Duration::ZERO,
                Duration::ZERO,
            ),
            self.aggregate_deps(),
        )
    }

    pub async fn call(
        &self,
        app: &Router,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.api_key))
            .header("content-type", "application/json");
        let body = match body {
            Some(b) => Body::from(b.to_string()),
            None => Body::empty(),
        };
        let response = app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// A `sum_agg` metric on `n`, a plan whose charges each price one unit at 1.00 USD, a
    /// customer and a subscription started an hour ago.
    pub async fn billed_sum(&self, charges: usize) -> Billed {
        let app = self.app();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let metric = format!("n_{}", &id[..8]);
        let (s, b) = self
            .call(
                &app,
                "POST",
                "/api/v1/billable_metrics",
                Some(json!({"billable_metric": {
                "name": "N", "code": metric, "aggregation_type": "sum_agg", "field_name": "n"}})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let charges: Vec<Value> = (0..charges)
            .map(|i| {
                json!({"billable_metric_code": metric, "code": format!("c{i}"),
                "charge_model": "standard", "properties": {"amount": "1"}})
            })
            .collect();
        let plan = format!("p_{}", &id[..8]);
        let (s, b) = self
            .call(
                &app,
                "POST",
                "/api/v1/plans",
                Some(json!({"plan": {
                "name": "P", "code": plan, "interval": "monthly", "amount_cents": 0,
                "amount_currency": "USD", "pay_in_advance": false, "charges": charges}})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let customer = format!("cus_{}", &id[..8]);
        let (s, b) = self
            .call(
                &app,
                "POST",
                "/api/v1/customers",
                Some(json!({"customer": {"external_id": customer}})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let subscription = format!("sub_{}", &id[..8]);
        let started = chrono::Utc::now() - chrono::Duration::hours(1);
        let (s, b) = self
            .call(
                &app,
                "POST",
                "/api/v1/subscriptions",
                Some(json!({"subscription": {
                "external_customer_id": customer, "plan_code": plan, "external_id": subscription,
                "subscription_at": started.format("%Y-%m-%dT%H:%M:%SZ").to_string()}})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        Billed {
            metric,
            customer,
            subscription,
        }
    }

    /// An event body worth `n` units.
    pub fn event(&self, billed: &Billed, tx: &str, n: i64) -> Value {
        json!({"transaction_id": tx, "external_subscription_id": billed.subscription,
               "code": billed.metric, "properties": {"n": n}})
    }

    /// Current usage as (units per charge, events per charge, amount_cents).
    pub async fn usage_of(&self, billed: &Billed) -> (Vec<Decimal>, Vec<u64>, i64) {
        let (s, b) = self
            .call(
                &self.app(),
                "GET",
                &format!(
                    "/api/v1/customers/{}/current_usage?external_subscription_id={}",
                    billed.customer, billed.subscription
                ),
                None,
            )
            .await;
        assert_eq!(s, 200, "{b}");
        let usage = &b["customer_usage"];
        let charges = usage["charges_usage"].as_array().unwrap();
        (
            charges
                .iter()
                .map(|c| c["units"].as_str().unwrap().parse().unwrap())
                .collect(),
            charges
                .iter()
                .map(|c| c["events_count"].as_u64().unwrap())
                .collect(),
            usage["amount_cents"].as_i64().unwrap(),
        )
    }

    /// Receives up to ten messages as a Lambda `SqsEvent`, without deleting them.
    pub async fn receive(&self) -> (SqsEvent, Vec<String>) {
        let out = aws_sdk_sqs::Client::new(&self.sdk)
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let mut event = SqsEvent::default();
        let mut receipts = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let mut r = SqsMessage::default();
            r.message_id = m.message_id.clone();
            r.body = m.body.clone();
            r.attributes = m
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), v.clone()))
                .collect();
            receipts.push(m.receipt_handle.unwrap_or_default());
            event.records.push(r);
        }
        (event, receipts)
    }

    /// Makes received messages visible again at once, as their visibility timeout would.
    pub async fn release(&self, receipts: &[String]) {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        for r in receipts {
            sqs.change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(r)
                .visibility_timeout(0)
                .send()
                .await
                .unwrap();
        }
    }

    pub async fn delete(&self, receipts: &[String]) {
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        for r in receipts {
            sqs.delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(r)
                .send()
                .await
                .unwrap();
        }
    }
}

/// A DynamoDB client over the stack's endpoint with an interceptor and quick retries.
pub fn dynamo_with(
    sdk: &aws_config::SdkConfig,
    faults: Arc<faults::Faults>,
) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(sdk)
        .interceptor(faults::Shared(faults))
        .retry_config(
            aws_config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(5)),
        )
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// An SQS client over the stack's endpoint with an interceptor.
pub fn sqs_with(sdk: &aws_config::SdkConfig, faults: Arc<faults::Faults>) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::config::Builder::from(sdk)
        .interceptor(faults::Shared(faults))
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}
