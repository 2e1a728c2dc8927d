//! Month-start billing benchmark: N subscriptions through the local stack (the same handlers
//! as the Lambdas, against the AWS emulator), billed by one clock run on 1 Feb 2024, drained
//! by W concurrent invoice workers. Prints invoices per minute and AWS requests per invoice
//! (every HTTP request the SDKs send, by operation), counted for the billing run only.
//!
//! Run: `AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test
//! AWS_SECRET_ACCESS_KEY=test cargo run -p invoice --example bench_month_start`
//! Settings: `BENCH_SUBSCRIPTIONS` (default 200), `BENCH_WORKERS` (default 4),
//! `BENCH_EVENTS` events per subscription in January (default 5).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Instant,
};

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use aws_smithy_runtime_api::client::{
    http::{HttpClient, HttpConnector, HttpConnectorFuture, SharedHttpConnector, http_client_fn},
    orchestrator::HttpRequest,
};
use axum::body::Body;
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
use http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

type Counts = Arc<Mutex<BTreeMap<String, u64>>>;

#[derive(Debug)]
struct Counting {
    inner: SharedHttpConnector,
    counts: Counts,
}

impl HttpConnector for Counting {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let op = request
            .headers()
            .get("x-amz-target")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("S3.{}", request.method()));
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(op).or_default() += 1;
        }
        self.inner.call(request)
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

async fn call(router: &axum::Router, key: &str, method: &str, path: &str, body: Value) -> Value {
    let request = Request::builder()
        .method(method)
        .uri(format!("/api/v1{path}"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    assert!(status.is_success(), "{method} {path}: {status} {v}");
    v
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = env_usize("BENCH_SUBSCRIPTIONS", 200);
    let workers = env_usize("BENCH_WORKERS", 4);
    let events = env_usize("BENCH_EVENTS", 5);
    anyhow::ensure!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "set AWS_ENDPOINT_URL (the local emulator)"
    );
    let base = billing_aws::config::sdk_config().await;
    let counts: Counts = Arc::default();
    // The emulator speaks plain HTTP; wrap the SDK's own client to count every request.
    let inner = base
        .http_client()
        .unwrap_or_else(|| aws_smithy_http_client::Builder::new().build_http());
    let c = counts.clone();
    let counting = http_client_fn(move |settings, components| {
        SharedHttpConnector::new(Counting {
            inner: inner.http_connector(settings, components),
            counts: c.clone(),
        })
    });
    let sdk = base.to_builder().http_client(counting).build();
    let prefix = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let stack = provision::provision(&sdk, &prefix).await?;
    let var = |k: &str| stack.get(k).unwrap().to_owned();
    let store = BillingStore::new(&sdk, var(infra::BILLING_TABLE.env_var));
    let usage = UsageStore::new(&sdk, var(infra::USAGE_TABLE.env_var));
    let queue_url = var(infra::BILLING_QUEUE.env_var);
    let key = format!("bench_{}", uuid::Uuid::new_v4().simple());
    let org = Organization {
        id: uuid::Uuid::new_v4().to_string(),
        name: "Bench".into(),
        created_at: t("2024-01-01T00:00:00Z"),
        settings: OrganizationSettings::new("Bench"),
        version: 1,
    };
    store.create_organization(&org, &key).await?;
    let mut deps = api::Deps::new(store.clone()).with_usage(usage.clone());
    deps.clock = Arc::new(|| t("2024-01-01T00:00:00Z"));
    let router = api::router(deps);
    let metric = call(&router, &key, "POST", "/billable_metrics", json!({"billable_metric": {"name": "calls", "code": "calls", "aggregation_type": "count_agg"}})).await;
    let metric_id = metric["billable_metric"]["lago_id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(&router, &key, "POST", "/plans", json!({"plan": {
        "name": "basic", "code": "basic", "interval": "monthly", "amount_cents": 3100,
        "amount_currency": "EUR", "pay_in_advance": false,
        "charges": [{"billable_metric_id": metric_id, "charge_model": "standard", "properties": {"amount": "0.5"}}],
    }}))
    .await;
    eprintln!("setting up {n} subscriptions ...");
    let aggregate_deps = aggregate::Deps::new(store.clone(), usage.clone());
    for i in 0..n {
        let customer = format!("cus{}", i / 10);
        if i % 10 == 0 {
            call(
                &router,
                &key,
                "POST",
                "/customers",
                json!({"customer": {"external_id": customer, "name": customer}}),
            )
            .await;
        }
        let sub = format!("sub{i}");
        call(
            &router,
            &key,
            "POST",
            "/subscriptions",
            json!({"subscription": {
                "external_id": sub, "external_customer_id": customer, "plan_code": "basic",
                "subscription_at": "2024-01-01T00:00:00Z",
            }}),
        )
        .await;
        if events > 0 {
            let message = EventsMessage {
                v: EVENTS_MESSAGE_VERSION,
                org: org.id.clone(),
                sub: sub.clone(),
                events: (0..events)
                    .map(|e| QueuedEvent {
                        tx: format!("{sub}-{e}"),
                        code: "calls".into(),
                        ts_ms: t("2024-01-15T00:00:00Z").timestamp_millis(),
                        seq: e as u64,
                        props: BTreeMap::new(),
                        amt: None,
                    })
                    .collect(),
            };
            aggregate::apply_group(
                &aggregate_deps,
                &[aggregate::Incoming {
                    message_id: uuid::Uuid::new_v4().to_string(),
                    message,
                }],
            )
            .await?;
        }
    }

    // The month-start run: the clock, then W workers until the queue is empty.
    counts.lock().unwrap().clear();
    let started = Instant::now();
    let invoicing = invoicing::Deps {
        store: store.clone(),
        usage: usage.clone(),
        bus: Some(billing_aws::bus::EventBus::new(
            &sdk,
            var(infra::BUS.env_var),
        )),
        ids: Arc::new(|| uuid::Uuid::new_v4().to_string()),
        clock: Arc::new(chrono::Utc::now),
    };
    let clock = billing_clock::Deps {
        store: store.clone(),
        queue: BillingQueue::new(&sdk, queue_url.clone()),
    };
    let run = billing_clock::run(&clock, t("2024-02-01T00:00:00Z")).await?;
    let clock_secs = started.elapsed().as_secs_f64();
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (sqs, url, deps) = (sqs.clone(), queue_url.clone(), invoicing.clone());
        tasks.push(tokio::spawn(async move {
            let mut idle = 0;
            while idle < 3 {
                let out = sqs
                    .receive_message()
                    .queue_url(&url)
                    .max_number_of_messages(10)
                    .send()
                    .await
                    .unwrap();
                let messages = out.messages.unwrap_or_default();
                if messages.is_empty() {
                    idle += 1;
                    continue;
                }
                idle = 0;
                let mut event = SqsEvent::default();
                for m in &messages {
                    let mut r = SqsMessage::default();
                    r.message_id = m.message_id.clone();
                    r.body = m.body.clone();
                    event.records.push(r);
                }
                let response = invoice::handler(&deps, event).await;
                assert!(response.batch_item_failures.is_empty(), "worker failures");
                for m in messages {
                    sqs.delete_message()
                        .queue_url(&url)
                        .receipt_handle(m.receipt_handle.unwrap_or_default())
                        .send()
                        .await
                        .unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let counted: BTreeMap<String, u64> = counts.lock().unwrap().clone();
    let invoices = store.invoices(&org.id).await?.len();
    let total: u64 = counted.values().sum();
    println!("month-start billing run: {n} subscriptions, {workers} workers, {events} events each");
    println!(
        "  clock: {} units enqueued in {clock_secs:.2} s",
        run.enqueued
    );
    println!("  invoices created:      {invoices}");
    println!("  elapsed:               {elapsed:.2} s");
    println!(
        "  invoices per minute:   {:.0}",
        invoices as f64 / elapsed * 60.0
    );
    println!(
        "  AWS requests:          {total} ({:.1} per invoice)",
        total as f64 / invoices.max(1) as f64
    );
    for (op, count) in &counted {
        println!(
            "    {op:<40} {count:>8} ({:.2} per invoice)",
            *count as f64 / invoices.max(1) as f64
        );
    }
    Ok(())
}
