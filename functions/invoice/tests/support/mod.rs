//! The stack a scenario runs on: a stack of its own in the AWS emulator (tables, queues and
//! bus under a fresh prefix, so the billing clock of one test never sees another test's
//! subscriptions), the API router with a clock the test moves, usage folded by the aggregate
//! worker's own code, and the billing clock and invoice worker run in-process exactly as the
//! local runner's `POST /_local/billing-run` runs them.
//!
//! The emulator is not optional: without `AWS_ENDPOINT_URL` the tests fail, they never skip.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::{Router, body::Body};
use billing::catalog::organization::{Organization, OrganizationSettings};
use billing_aws::{
    BillingStore,
    billing_queue::BillingQueue,
    infra,
    messages::{EVENTS_MESSAGE_VERSION, EventsMessage, QueuedEvent},
    provision,
    usage::UsageStore,
};
use chrono::{DateTime, Utc};
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// One organization on a stack of its own.
pub struct Scenario {
    pub router: Router,
    pub clock: Arc<Mutex<DateTime<Utc>>>,
    pub key: String,
    pub org_id: String,
    pub store: BillingStore,
    pub usage: UsageStore,
    pub invoicing: invoicing::Deps,
    pub billing_clock: billing_clock::Deps,
    pub sqs: aws_sdk_sqs::Client,
    pub billing_queue_url: String,
    /// Where the bus's webhook rule puts every domain event.
    pub webhook_queue_url: String,
    pub metrics: BTreeMap<String, String>,
    /// The bus of this scenario's publishers (see [`BusSwitch`]).
    pub bus: Arc<BusSwitch>,
}

/// Turns the event bus off and on for every publisher of a scenario: while it is down, each
/// `PutEvents` call fails before it is sent (an SDK interceptor), as when EventBridge is
/// unreachable.
#[derive(Debug, Default)]
pub struct BusSwitch {
    down: AtomicBool,
    refused: AtomicUsize,
}

impl BusSwitch {
    /// While `down`, every publish fails.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// How many `PutEvents` calls were refused.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

#[derive(Debug, Clone)]
struct BusFault(Arc<BusSwitch>);

impl aws_smithy_runtime_api::client::interceptors::Intercept for BusFault {
    fn name(&self) -> &'static str {
        "BusFault"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        _cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if self.0.down.load(Ordering::SeqCst) {
            self.0.refused.fetch_add(1, Ordering::SeqCst);
            return Err("injected fault: the bus is down".into());
        }
        Ok(())
    }
}

impl Scenario {
    /// A fresh stack and an organization named `name` (prefix: its first three letters). The
    /// API publishes no domain event (only the worker does).
    pub async fn start(name: &str) -> Scenario {
        Self::start_with(name, false).await
    }

    /// As [`Scenario::start`], with the API publishing its domain events on the bus too.
    pub async fn start_with_api_bus(name: &str) -> Scenario {
        Self::start_with(name, true).await
    }

    async fn start_with(name: &str, api_bus: bool) -> Scenario {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()),
            "AWS_ENDPOINT_URL is not set: these tests run against the AWS emulator. Start it with \
             `.ci/emulator.sh start 4566` and run with AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
             AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
        );
        let sdk = billing_aws::config::sdk_config().await;
        let prefix = format!("inv{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let stack = provision::provision(&sdk, &prefix)
            .await
            .unwrap_or_else(|e| panic!("provisioning {prefix}: {e}"));
        let var = |k: &str| {
            stack
                .get(k)
                .unwrap_or_else(|| panic!("{k} provisioned"))
                .to_owned()
        };
        let store = BillingStore::new(&sdk, var(infra::BILLING_TABLE.env_var));
        let usage = UsageStore::new(&sdk, var(infra::USAGE_TABLE.env_var));
        let billing_queue_url = var(infra::BILLING_QUEUE.env_var);
        let key = format!("lago_test_{}", uuid::Uuid::new_v4().simple());
        let org = Organization {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            created_at: t("2024-01-01T00:00:00Z"),
            settings: OrganizationSettings::new(name),
            version: 1,
        };
        store.create_organization(&org, &key).await.unwrap();
        let clock = Arc::new(Mutex::new(t("2024-01-01T00:00:00Z")));
        let switch = Arc::new(BusSwitch::default());
        let bus = billing_aws::bus::EventBus::with_client(
            aws_sdk_eventbridge::Client::from_conf(
                aws_sdk_eventbridge::config::Builder::from(&sdk)
                    .interceptor(BusFault(switch.clone()))
                    .build(),
            ),
            var(infra::BUS.env_var),
        );
        let mut deps = api::Deps::new(store.clone())
            .with_usage(usage.clone())
            .with_documents(billing_aws::documents::DocumentStore::new(
                &sdk,
                var(infra::DOCUMENTS_BUCKET.env_var),
            ));
        if api_bus {
            deps = deps.with_bus(bus.clone());
        }
        let c = clock.clone();
        deps.clock = Arc::new(move || *c.lock().unwrap());
        let wall = clock.clone();
        Scenario {
            router: api::router(deps),
            clock,
            key,
            org_id: org.id,
            store: store.clone(),
            usage: usage.clone(),
            invoicing: invoicing::Deps {
                store: store.clone(),
                usage,
                bus: Some(bus),
                ids: Arc::new(|| uuid::Uuid::new_v4().to_string()),
                // The wall clock is the API's clock, which the test moves.
                clock: Arc::new(move || *wall.lock().unwrap()),
            },
            billing_clock: billing_clock::Deps {
                store,
                queue: BillingQueue::new(&sdk, billing_queue_url.clone()),
            },
            sqs: aws_sdk_sqs::Client::new(&sdk),
            billing_queue_url,
            webhook_queue_url: var(infra::WEBHOOK_QUEUE.env_var),
            metrics: BTreeMap::new(),
            bus: switch,
        }
    }

    /// Sets the API's "now".
    pub fn now(&self, at: &str) {
        *self.clock.lock().unwrap() = t(at);
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"))
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key));
        let body = match body {
            Some(b) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&b).unwrap())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, value)
    }

    /// A 200's body, failing the test with the reply otherwise.
    pub async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.call(method.clone(), path, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {value:#}");
        value
    }

    pub async fn metric(&mut self, code: &str) {
        let v = self
            .ok(
                Method::POST,
                "/billable_metrics",
                Some(json!({"billable_metric": {"name": code, "code": code, "aggregation_type": "count_agg"}})),
            )
            .await;
        self.metrics.insert(
            code.into(),
            v["billable_metric"]["lago_id"].as_str().unwrap().into(),
        );
    }

    /// A billable metric from its JSON body (`aggregation_type`, `filters`, ...; `name` and
    /// `code` are `code`).
    pub async fn metric_with(&mut self, code: &str, extra: Value) {
        let mut body = json!({"name": code, "code": code, "aggregation_type": "count_agg"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let v = self
            .ok(
                Method::POST,
                "/billable_metrics",
                Some(json!({ "billable_metric": body })),
            )
            .await;
        self.metrics.insert(
            code.into(),
            v["billable_metric"]["lago_id"].as_str().unwrap().into(),
        );
    }

    /// A tax `code` at `rate` percent; `organization` makes it a default of the organization.
    pub async fn tax(&self, code: &str, rate: &str, organization: bool) {
        self.ok(
            Method::POST,
            "/taxes",
            Some(json!({"tax": {
                "name": code, "code": code, "rate": rate,
                "applied_to_organization": organization,
            }})),
        )
        .await;
    }

    /// A plan from its JSON body; each charge names its metric by `"metric": code` (replaced by
    /// the metric's `billable_metric_id`).
    pub async fn plan_json(&self, mut plan: Value) {
        if let Some(charges) = plan["charges"].as_array_mut() {
            for c in charges {
                if let Some(code) = c
                    .as_object_mut()
                    .and_then(|o| o.remove("metric"))
                    .and_then(|m| m.as_str().map(str::to_owned))
                {
                    c["billable_metric_id"] = json!(self.metrics[&code]);
                }
            }
        }
        self.ok(Method::POST, "/plans", Some(json!({ "plan": plan })))
            .await;
    }

    /// A plan; `charges` are `(metric code, unit price)` standard charges.
    pub async fn plan(
        &self,
        code: &str,
        interval: &str,
        amount_cents: i64,
        advance: bool,
        extra: Value,
        charges: &[(&str, &str)],
    ) {
        let charges: Vec<Value> = charges
            .iter()
            .map(|(m, amount)| {
                json!({
                    "billable_metric_id": self.metrics[*m],
                    "charge_model": "standard",
                    "properties": {"amount": amount},
                })
            })
            .collect();
        let mut plan = json!({
            "name": code, "code": code, "interval": interval,
            "amount_cents": amount_cents, "amount_currency": "EUR",
            "pay_in_advance": advance, "charges": charges,
        });
        if let (Some(p), Some(e)) = (plan.as_object_mut(), extra.as_object()) {
            p.extend(e.clone());
        }
        self.ok(Method::POST, "/plans", Some(json!({"plan": plan})))
            .await;
    }

    pub async fn customer(
        &self,
        external_id: &str,
        timezone: &str,
        grace_days: Option<i64>,
    ) -> Value {
        let mut c = json!({"external_id": external_id, "name": external_id, "timezone": timezone});
        if let Some(g) = grace_days {
            c["billing_configuration"] = json!({"invoice_grace_period": g});
        }
        self.ok(Method::POST, "/customers", Some(json!({"customer": c})))
            .await["customer"]
            .clone()
    }

    /// A customer from its JSON body (`external_id`, `name` and `timezone` set here).
    pub async fn customer_with(&self, external_id: &str, timezone: &str, extra: Value) -> Value {
        let mut c = json!({"external_id": external_id, "name": external_id, "timezone": timezone});
        if let (Some(b), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.ok(Method::POST, "/customers", Some(json!({"customer": c})))
            .await["customer"]
            .clone()
    }

    /// `POST /subscriptions` at the API's current time.
    pub async fn subscribe(
        &self,
        external_id: &str,
        customer: &str,
        plan: &str,
        billing_time: &str,
        subscription_at: &str,
    ) -> Value {
        self.ok(
            Method::POST,
            "/subscriptions",
            Some(json!({"subscription": {
                "external_id": external_id, "external_customer_id": customer,
                "plan_code": plan, "billing_time": billing_time, "subscription_at": subscription_at,
            }})),
        )
        .await["subscription"]
            .clone()
    }

    /// `count` usage events of metric `code` at `at`, folded by the aggregate worker.
    pub async fn usage(&self, external_subscription_id: &str, code: &str, at: &str, count: usize) {
        self.usage_with(external_subscription_id, code, at, count, &[])
            .await;
    }

    /// `count` usage events of metric `code` at `at`, each with `properties`, folded by the
    /// aggregate worker in one message.
    pub async fn usage_with(
        &self,
        external_subscription_id: &str,
        code: &str,
        at: &str,
        count: usize,
        properties: &[(&str, &str)],
    ) {
        let ts_ms = t(at).timestamp_millis();
        let props: BTreeMap<String, String> = properties
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let events: Vec<QueuedEvent> = (0..count)
            .map(|i| QueuedEvent {
                tx: uuid::Uuid::new_v4().to_string(),
                code: code.into(),
                ts_ms,
                seq: i as u64,
                props: props.clone(),
                amt: None,
            })
            .collect();
        let message = EventsMessage {
            v: EVENTS_MESSAGE_VERSION,
            org: self.org_id.clone(),
            sub: external_subscription_id.into(),
            events,
        };
        let deps = aggregate::Deps::new(self.store.clone(), self.usage.clone());
        aggregate::apply_group(
            &deps,
            &[aggregate::Incoming {
                message_id: uuid::Uuid::new_v4().to_string(),
                message,
            }],
        )
        .await
        .unwrap();
    }

    /// One event of metric `code` at `at` with `properties`, folded by the aggregate worker
    /// (which bills it at once when it feeds a pay-in-advance charge).
    pub async fn event(
        &self,
        external_subscription_id: &str,
        code: &str,
        at: &str,
        properties: &[(&str, &str)],
    ) {
        let message = EventsMessage {
            v: EVENTS_MESSAGE_VERSION,
            org: self.org_id.clone(),
            sub: external_subscription_id.into(),
            events: vec![QueuedEvent {
                tx: uuid::Uuid::new_v4().to_string(),
                code: code.into(),
                ts_ms: t(at).timestamp_millis(),
                seq: 0,
                props: properties
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                amt: None,
            }],
        };
        let deps = aggregate::Deps::new(self.store.clone(), self.usage.clone());
        aggregate::apply_group(
            &deps,
            &[aggregate::Incoming {
                message_id: uuid::Uuid::new_v4().to_string(),
                message,
            }],
        )
        .await
        .unwrap();
    }

    /// The billing clock at `at` (what the schedule runs), without processing the queue.
    pub async fn fire_clock(&self, at: &str) -> usize {
        billing_clock::run(&self.billing_clock, t(at))
            .await
            .unwrap()
            .enqueued
    }

    /// Receives one batch of the billing queue as the Lambda event source would.
    pub async fn receive(&self) -> (SqsEvent, Vec<String>) {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.billing_queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let mut event = SqsEvent::default();
        let mut receipts = Vec::new();
        for m in out.messages.unwrap_or_default() {
            let mut record = SqsMessage::default();
            record.message_id = m.message_id.clone();
            record.receipt_handle = m.receipt_handle.clone();
            record.body = m.body.clone();
            event.records.push(record);
            receipts.push(m.receipt_handle.unwrap_or_default());
        }
        (event, receipts)
    }

    /// Runs the invoice worker until the billing queue is empty; returns messages processed.
    pub async fn drain(&self) -> usize {
        let mut processed = 0;
        for _ in 0..1000 {
            let (event, receipts) = self.receive().await;
            if receipts.is_empty() {
                return processed;
            }
            let response = invoice::handler(&self.invoicing, event).await;
            assert!(
                response.batch_item_failures.is_empty(),
                "the invoice worker failed: {:?}",
                response.batch_item_failures
            );
            for r in receipts {
                self.sqs
                    .delete_message()
                    .queue_url(&self.billing_queue_url)
                    .receipt_handle(r)
                    .send()
                    .await
                    .unwrap();
                processed += 1;
            }
        }
        panic!("the billing queue did not drain");
    }

    /// Takes every domain event that reached the bus since the last call (the `detail` of
    /// each EventBridge entry routed to the webhook queue), in no particular order.
    pub async fn bus_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for _ in 0..1000 {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.webhook_queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                let body: Value = serde_json::from_str(m.body().unwrap_or("null")).unwrap();
                out.push(body["detail"].clone());
                self.sqs
                    .delete_message()
                    .queue_url(&self.webhook_queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
            }
        }
        panic!("the webhook queue did not drain");
    }

    /// `(webhook_type, subscription lago_id, status)` of the subscription events that reached
    /// the bus since the last call to [`Scenario::bus_events`], sorted.
    pub async fn subscription_events(&self) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = self
            .bus_events()
            .await
            .into_iter()
            .filter(|e| e["object_type"] == "subscription")
            .map(|e| {
                (
                    e["webhook_type"].as_str().unwrap_or_default().to_owned(),
                    e["object"]["lago_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    e["object"]["status"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// `POST /_local/billing-run {"time": at}`: the clock at `at`, then the queue drained.
    pub async fn bill(&self, at: &str) -> usize {
        self.fire_clock(at).await;
        self.drain().await
    }

    /// Every invoice of a subscription (extended), oldest billing period first.
    pub async fn invoices_of(&self, external_subscription_id: &str) -> Vec<Value> {
        let list = self.ok(Method::GET, "/invoices?per_page=100", None).await;
        let mut out = Vec::new();
        for i in list["invoices"].as_array().unwrap() {
            let id = i["lago_id"].as_str().unwrap();
            let full =
                self.ok(Method::GET, &format!("/invoices/{id}"), None).await["invoice"].clone();
            if full["billing_periods"][0]["external_subscription_id"] == external_subscription_id {
                out.push(full);
            }
        }
        out.sort_by_key(|i| {
            (
                i["billing_periods"][0]["charges_from_datetime"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                i["billing_periods"][0]["subscription_from_datetime"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                i["billing_periods"][0]["invoicing_reason"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        });
        out
    }
}

/// A scenario with a `calls` count metric, a 20 % VAT tax and a monthly plan `basic`
/// (3100 cents in arrears, 0.50 EUR per call, VAT on the plan).
pub async fn basic(name: &str) -> Scenario {
    let mut s = Scenario::start(name).await;
    s.metric("calls").await;
    s.ok(
        Method::POST,
        "/taxes",
        Some(json!({"tax": {"name": "VAT", "code": "vat", "rate": "20"}})),
    )
    .await;
    s.plan(
        "basic",
        "monthly",
        3100,
        false,
        json!({"tax_codes": ["vat"]}),
        &[("calls", "0.5")],
    )
    .await;
    s
}

/// The fee of `invoice` whose item type is `kind` (`subscription` or `charge`).
pub fn fee<'a>(invoice: &'a Value, kind: &str) -> &'a Value {
    invoice["fees"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["item"]["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} fee in {invoice:#}"))
}

/// Every fee of `invoice` whose item type is `kind` (`subscription` or `charge`).
pub fn fees<'a>(invoice: &'a Value, kind: &str) -> Vec<&'a Value> {
    invoice["fees"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["item"]["type"] == kind)
        .collect()
}

/// The charge fees of `invoice` on metric `code`.
pub fn charge_fees<'a>(invoice: &'a Value, code: &str) -> Vec<&'a Value> {
    fees(invoice, "charge")
        .into_iter()
        .filter(|f| f["item"]["code"] == code)
        .collect()
}

/// `(tax_code, amount_cents)` of `applied_taxes` (a fee's or an invoice's), sorted by code.
pub fn applied_taxes(v: &Value) -> Vec<(String, i64)> {
    let mut out: Vec<(String, i64)> = v["applied_taxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["tax_code"].as_str().unwrap().to_owned(),
                t["amount_cents"].as_i64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The invoice whose billing period has `reason` (`subscription_starting`, ...).
pub fn with_reason<'a>(invoices: &'a [Value], reason: &str) -> &'a Value {
    invoices
        .iter()
        .find(|i| i["billing_periods"][0]["invoicing_reason"] == reason)
        .unwrap_or_else(|| panic!("no {reason} invoice in {invoices:#?}"))
}

/// `(charges_from_datetime, charges_to_datetime)` of the invoice's billing period.
pub fn charges_window(invoice: &Value) -> (String, String) {
    let p = &invoice["billing_periods"][0];
    (
        p["charges_from_datetime"].as_str().unwrap().to_owned(),
        p["charges_to_datetime"].as_str().unwrap().to_owned(),
    )
}

/// `(amount_cents, from_date, to_date)` of the subscription fee.
pub fn subscription_fee(invoice: &Value) -> (i64, String, String) {
    let f = fee(invoice, "subscription");
    (
        f["amount_cents"].as_i64().unwrap(),
        f["from_date"].as_str().unwrap().to_owned(),
        f["to_date"].as_str().unwrap().to_owned(),
    )
}

/// `(fees_amount_cents, taxes_amount_cents, total_amount_cents)`.
pub fn totals(invoice: &Value) -> (i64, i64, i64) {
    (
        invoice["fees_amount_cents"].as_i64().unwrap(),
        invoice["taxes_amount_cents"].as_i64().unwrap(),
        invoice["total_amount_cents"].as_i64().unwrap(),
    )
}
