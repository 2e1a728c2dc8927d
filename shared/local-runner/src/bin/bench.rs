//! `make bench`: ingests events through the local stack (the same handlers as the Lambdas,
//! against the emulator) and prints what AWS would bill per event, then the latency of current
//! usage at 100 and at 100,000 events in a period.
//!
//! Settings (environment): `BENCH_SINGLE` events sent one per request (default 300),
//! `BENCH_BATCHED` events sent 100 per request (default 3000), `BENCH_LARGE` events in the
//! large period (default 100000).

use std::time::{Duration, Instant};

use anyhow::Context;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use axum::{Router, body::Body, http::Request};
use billing_aws::{
    BillingStore, config,
    events::EventStore,
    infra,
    messages::{EVENTS_MESSAGE_VERSION, EventsMessage, QueuedEvent},
    provision,
    queue::EventQueue,
    usage::UsageStore,
};
use http_body_util::BodyExt;
use local_runner::{
    metering::{Meter, Usage},
    worker::{Drainer, QueuePoller},
};
use serde_json::{Value, json};
use tower::ServiceExt;

// On-demand list prices, us-east-1, USD per million.
const DYNAMO_WRITE_UNIT: f64 = 0.625;
const DYNAMO_READ_UNIT: f64 = 0.125;
const SQS_FIFO_REQUEST: f64 = 0.50;
const LAMBDA_REQUEST: f64 = 0.20;
const HTTP_API_REQUEST: f64 = 1.00;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Bench {
    app: Router,
    key: String,
    meter: Meter,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
    aggregate: aggregate::Deps,
}

impl Bench {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", "application/json")
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())))?;
        let response = self.app.clone().oneshot(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn ok(&self, method: &str, path: &str, body: Value) -> anyhow::Result<Value> {
        let (status, value) = self.call(method, path, Some(body)).await?;
        anyhow::ensure!(status == 200, "{method} {path}: {status} {value}");
        Ok(value)
    }

    /// A metric, a plan at 0.01 USD per unit, a customer and a subscription; returns ids.
    async fn subscription(&self, tag: &str) -> anyhow::Result<(String, String, String)> {
        let metric = format!("bench_{tag}");
        self.ok(
            "POST",
            "/api/v1/billable_metrics",
            json!({"billable_metric": {
            "name": "Bench", "code": metric, "aggregation_type": "sum_agg", "field_name": "n"}}),
        )
        .await?;
        self.ok("POST", "/api/v1/plans", json!({"plan": {"name": "Bench", "code": format!("plan_{tag}"),
            "interval": "monthly", "amount_cents": 0, "amount_currency": "USD", "pay_in_advance": false,
            "charges": [{"billable_metric_code": metric, "charge_model": "standard", "properties": {"amount": "0.01"}}]}})).await?;
        let customer = format!("cus_{tag}");
        self.ok(
            "POST",
            "/api/v1/customers",
            json!({"customer": {"external_id": customer}}),
        )
        .await?;
        let sub = format!("sub_{tag}");
        let started = chrono::Utc::now() - chrono::Duration::hours(1);
        self.ok(
            "POST",
            "/api/v1/subscriptions",
            json!({"subscription": {"external_customer_id": customer,
            "plan_code": format!("plan_{tag}"), "external_id": sub,
            "subscription_at": started.format("%Y-%m-%dT%H:%M:%SZ").to_string()}}),
        )
        .await?;
        Ok((metric, customer, sub))
    }

    /// Aggregates until the queue is empty; returns the worker invocations.
    async fn drain(&self) -> anyhow::Result<u64> {
        let poller = QueuePoller::new(
            self.sqs.clone(),
            &self.queue_url,
            Duration::ZERO,
            Duration::ZERO,
        );
        let mut invocations = 0;
        loop {
            let report = poller
                .poll_once(|e| aggregate::handler(&self.aggregate, e))
                .await?;
            if report.received > 0 {
                invocations += 1;
            } else if poller.outstanding().await? == 0 {
                return Ok(invocations);
            }
        }
    }
}

fn report(
    title: &str,
    events: usize,
    http_requests: usize,
    worker_invocations: u64,
    usage: &Usage,
) {
    let n = events as f64;
    println!("\n{title}: {events} events, {http_requests} HTTP requests");
    println!("  AWS requests per event, by API:");
    for ((service, op), count) in &usage.calls {
        println!("    {:<12} {:<22} {:>8.4}", service, op, *count as f64 / n);
    }
    let sqs = usage.calls_to("sqs") as f64 / n;
    let wru = usage.write_units / n;
    let rru = usage.read_units / n;
    let lambda = (http_requests as f64 + worker_invocations as f64) / n;
    println!("  DynamoDB write units per event: {wru:.3}   read units per event: {rru:.3}");
    println!("  SQS requests per event: {sqs:.3}   Lambda invocations per event: {lambda:.3}");
    let dynamo_cost = wru * DYNAMO_WRITE_UNIT + rru * DYNAMO_READ_UNIT;
    let sqs_cost = sqs * SQS_FIFO_REQUEST;
    let lambda_cost = lambda * LAMBDA_REQUEST;
    let api_cost = http_requests as f64 / n * HTTP_API_REQUEST;
    let budget_basis = dynamo_cost + sqs_cost + lambda_cost;
    println!(
        "  USD per million events: DynamoDB {dynamo_cost:.3} + SQS {sqs_cost:.3} + Lambda requests {lambda_cost:.3} = {budget_basis:.3}   (+ API Gateway {api_cost:.3} = {:.3} all-in)",
        budget_basis + api_cost
    );
}

async fn median_latency(
    bench: &Bench,
    customer: &str,
    sub: &str,
) -> anyhow::Result<(Duration, Value)> {
    let path = format!("/api/v1/customers/{customer}/current_usage?external_subscription_id={sub}");
    let mut samples = Vec::new();
    let mut last = Value::Null;
    for _ in 0..15 {
        let start = Instant::now();
        let (status, body) = bench.call("GET", &path, None).await?;
        samples.push(start.elapsed());
        anyhow::ensure!(status == 200, "current usage: {status} {body}");
        last = body;
    }
    samples.sort();
    Ok((samples[samples.len() / 2], last))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let single = env_usize("BENCH_SINGLE", 300);
    let batched = env_usize("BENCH_BATCHED", 3000);
    let large = env_usize("BENCH_LARGE", 100_000);
    let sdk = config::sdk_config().await;
    let meter = Meter::default();
    let dynamo = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .interceptor(meter.clone())
            .build(),
    );
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&sdk)
            .interceptor(meter.clone())
            .build(),
    );
    let prefix = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let stack = provision::provision(&sdk, &prefix).await?;
    let var = |v: &str| stack.get(v).map(str::to_owned).context("not provisioned");
    let store = BillingStore::with_client(dynamo.clone(), var(infra::BILLING_TABLE.env_var)?);
    let events = EventStore::with_client(dynamo.clone(), var(infra::EVENTS_TABLE.env_var)?);
    let usage = UsageStore::with_client(dynamo.clone(), var(infra::USAGE_TABLE.env_var)?);
    let queue_url = var(infra::EVENTS_QUEUE.env_var)?;
    let queue = EventQueue::with_client(sqs.clone(), queue_url.clone());
    let key = local_runner::organization::new_api_key();
    let org = local_runner::organization::create(&store, "Bench", &key).await?;
    let aggregate = aggregate::Deps::new(store.clone(), usage.clone());
    let drainer = Drainer::new(
        QueuePoller::new(sqs.clone(), &queue_url, Duration::ZERO, Duration::ZERO),
        aggregate.clone(),
    );
    let app = local_runner::app(
        api::Deps::new(store.clone()).with_usage(usage.clone()),
        ingest::Deps::new(store.clone(), events, queue, usage.clone()),
        drainer,
    );
    let bench = Bench {
        app,
        key,
        meter: meter.clone(),
        queue_url,
        sqs,
        aggregate,
    };
    println!(
        "Benchmark against {} (prefix {prefix})",
        std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| "AWS".into())
    );

    // 1. One event per request.
    let (metric, customer, sub) = bench.subscription("single").await?;
    bench.meter.reset();
    for i in 0..single {
        bench
            .ok(
                "POST",
                "/api/v1/events",
                json!({"event": {"transaction_id": format!("s{i}"),
            "external_subscription_id": sub, "code": metric, "properties": {"n": 1}}}),
            )
            .await?;
    }
    let invocations = bench.drain().await?;
    report(
        "POST /api/v1/events (one event per request)",
        single,
        single,
        invocations,
        &bench.meter.usage(),
    );
    let (_, body) = median_latency(&bench, &customer, &sub).await?;
    anyhow::ensure!(
        body["customer_usage"]["charges_usage"][0]["events_count"] == json!(single),
        "every event counted: {body}"
    );

    // 2. A hundred events per request.
    let (metric, customer, sub) = bench.subscription("batched").await?;
    bench.meter.reset();
    let mut requests = 0;
    for chunk in (0..batched).collect::<Vec<_>>().chunks(100) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({"transaction_id": format!("b{i}"),
            "external_subscription_id": sub, "code": metric, "properties": {"n": 1}})
            })
            .collect();
        bench
            .ok("POST", "/api/v1/events/batch", json!({"events": events}))
            .await?;
        requests += 1;
    }
    let invocations = bench.drain().await?;
    report(
        "POST /api/v1/events/batch (100 events per request)",
        batched,
        requests,
        invocations,
        &bench.meter.usage(),
    );
    let (_, body) = median_latency(&bench, &customer, &sub).await?;
    anyhow::ensure!(
        body["customer_usage"]["charges_usage"][0]["events_count"] == json!(batched),
        "every event counted: {body}"
    );

    // 3. Current usage latency: 100 events in a period, then a period holding `large` events
    //    (folded by the aggregate worker from messages of 100 events, ten messages a batch).
    let (metric, small_customer, small_sub) = bench.subscription("small").await?;
    let events: Vec<Value> = (0..100)
        .map(|i| {
            json!({"transaction_id": format!("l{i}"),
        "external_subscription_id": small_sub, "code": metric, "properties": {"n": 1}})
        })
        .collect();
    bench
        .ok("POST", "/api/v1/events/batch", json!({"events": events}))
        .await?;
    bench.drain().await?;
    let (small_latency, _) = median_latency(&bench, &small_customer, &small_sub).await?;

    let (metric, large_customer, large_sub) = bench.subscription("large").await?;
    let now = chrono::Utc::now().timestamp_millis();
    let mut sequence = 0u64;
    for batch in 0..large.div_ceil(1000) {
        let mut event = SqsEvent::default();
        for m in 0..10 {
            let message = EventsMessage {
                v: EVENTS_MESSAGE_VERSION,
                org: org.id.clone(),
                sub: large_sub.clone(),
                events: (0..100)
                    .map(|_| {
                        sequence += 1;
                        QueuedEvent {
                            tx: format!("x{sequence}"),
                            code: metric.clone(),
                            ts_ms: now,
                            seq: sequence,
                            props: [("n".to_owned(), "1".to_owned())].into(),
                            amt: None,
                        }
                    })
                    .collect(),
            };
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("large-{batch}-{m}"));
            record.body = Some(serde_json::to_string(&message)?);
            event.records.push(record);
        }
        let response = aggregate::handler(&bench.aggregate, event).await;
        anyhow::ensure!(
            response.batch_item_failures.is_empty(),
            "large batch {batch} failed"
        );
    }
    let (large_latency, body) = median_latency(&bench, &large_customer, &large_sub).await?;
    let counted = body["customer_usage"]["charges_usage"][0]["events_count"]
        .as_u64()
        .unwrap_or(0);
    println!("\nCurrent usage latency (median of 15, local stack):");
    println!(
        "  100 events in the period:      {:>8.2} ms",
        small_latency.as_secs_f64() * 1000.0
    );
    println!(
        "  {counted} events in the period: {:>8.2} ms",
        large_latency.as_secs_f64() * 1000.0
    );
    println!(
        "  ratio: {:.2}",
        large_latency.as_secs_f64() / small_latency.as_secs_f64()
    );
    Ok(())
}
