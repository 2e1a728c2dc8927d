//! What the metering scenarios stand on: the local runner's HTTP surface in-process (the ingest
//! and API routers, and `POST /_local/drain` over the real aggregate worker), against the AWS
//! emulator, as a fresh organization per test, at a time the test sets.
//!
//! Nothing here waits: `drain()` returns once every queued event has been aggregated, which is
//! the only synchronisation point the scenarios use. The emulator is not optional: without
//! `AWS_ENDPOINT_URL` the tests fail with a message saying how to start it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Body};
use billing_aws::{
    BillingStore, events::EventStore, infra, provision, queue::EventQueue, usage::UsageStore,
};
use chrono::{DateTime, Utc};
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use local_runner::worker::{Drainer, QueuePoller};
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tower::ServiceExt;

/// The emulator's tables and queue, provisioned once per test process (provisioning is
/// idempotent, so nextest's processes agree on them).
static STACK: OnceCell<(aws_config::SdkConfig, provision::Provisioned)> = OnceCell::const_new();

async fn stack() -> &'static (aws_config::SdkConfig, provision::Provisioned) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()),
        "AWS_ENDPOINT_URL is not set: these tests run against the AWS emulator. Start it with \
         `.ci/emulator.sh start 4566` and run with AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
         AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
    );
    STACK
        .get_or_init(|| async {
            let sdk = billing_aws::config::sdk_config().await;
            let prefix = std::env::var("RESOURCE_PREFIX")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "meteringtest".into());
            let provisioned = provision::provision(&sdk, &prefix)
                .await
                .unwrap_or_else(|e| panic!("provisioning the emulator under {prefix:?}: {e}"));
            (sdk, provisioned)
        })
        .await
}

/// An instant from RFC 3339 text.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// Unix seconds of an RFC 3339 instant, as an event's `timestamp`.
pub fn ts(s: &str) -> i64 {
    at(s).timestamp()
}

/// A code no other test (or earlier run) uses: `uniq("gb")` -> `gb_1a2b3c4d5e6f`.
pub fn uniq(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A response: status and the body parsed as JSON.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// The object under `root` of a 200, failing the test with the whole reply otherwise.
    pub fn ok(&self, root: &str) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "expected 200, got {self:#?}");
        self.body
            .get(root)
            .unwrap_or_else(|| panic!("no {root:?} root key in {:#}", self.body))
    }

    /// Asserts the reply is exactly `status` with `body`.
    pub fn assert_error(&self, status: u16, body: &Value, case: &str) {
        assert_eq!(self.status.as_u16(), status, "{case}: status of {self:#?}");
        assert_eq!(&self.body, body, "{case}: error envelope");
    }
}

/// Lago's 404 body for `resource`.
pub fn not_found(resource: &str) -> Value {
    json!({"status": 404, "error": "Not Found", "code": format!("{resource}_not_found")})
}

/// Lago's 422 body with `error_details`.
pub fn unprocessable(details: Value) -> Value {
    json!({
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": details,
    })
}

/// One organization's view of the local stack at a time the test controls.
#[derive(Clone)]
pub struct Stack {
    app: Router,
    clock: Arc<Mutex<DateTime<Utc>>>,
    pub key: String,
    /// The organization's id (to hand-build queue messages).
    pub org_id: String,
    /// The aggregate worker's dependencies (to deliver a message to it directly).
    pub aggregate: aggregate::Deps,
}

impl Stack {
    /// The local runner's routes over the emulator, as a new organization, at `now`.
    pub async fn start_at(now: &str) -> Stack {
        let (sdk, provisioned) = stack().await;
        let var = |spec: &str| {
            provisioned
                .get(spec)
                .unwrap_or_else(|| panic!("{spec} not provisioned"))
                .to_owned()
        };
        let store = BillingStore::new(sdk, var(infra::BILLING_TABLE.env_var));
        let events = EventStore::new(sdk, var(infra::EVENTS_TABLE.env_var));
        let usage = UsageStore::new(sdk, var(infra::USAGE_TABLE.env_var));
        let queue_url = var(infra::EVENTS_QUEUE.env_var);
        let queue = EventQueue::new(sdk, queue_url.clone());
        let key = local_runner::organization::new_api_key();
        let org = local_runner::organization::create(&store, &uniq("Metering"), &key)
            .await
            .unwrap_or_else(|e| panic!("creating an organization: {e}"));

        let clock = Arc::new(Mutex::new(at(now)));
        let now_fn = {
            let clock = clock.clone();
            Arc::new(move || *clock.lock().expect("clock lock"))
        };
        let mut ingest_deps =
            ingest::Deps::new(store.clone(), events.clone(), queue, usage.clone());
        ingest_deps.clock = now_fn.clone();
        let mut api_deps = api::Deps::new(store.clone()).with_usage(usage.clone());
        api_deps.clock = now_fn;
        let aggregate_deps = aggregate::Deps::new(store, usage);
        // As the runner's drainer: a failed message comes back at once, an empty receive
        // long-polls for a second before the drainer checks the queue is really empty, and a
        // resent message is dropped as SQS drops it.
        let drainer = Drainer::new(
            QueuePoller::new(
                aws_sdk_sqs::Client::new(sdk),
                queue_url,
                Duration::ZERO,
                Duration::from_secs(1),
            )
            .deduplicating(events),
            aggregate_deps.clone(),
        );
        Stack {
            app: local_runner::app(api_deps, ingest_deps, drainer),
            clock,
            key,
            org_id: org.id,
            aggregate: aggregate_deps,
        }
    }

    /// Moves the clock the ingest and API functions read.
    pub fn set_now(&self, now: &str) {
        *self.clock.lock().expect("clock lock") = at(now);
    }

    /// Sends `body` (if any) as this organization.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let mut request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::from(bytes)).expect("a valid request"))
            .await
            .expect("the router is infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("the body is readable")
            .to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{method} {path} answered {status} with a body that is not JSON: {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Reply { status, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&body)).await
    }

    /// Creates a record through the API and returns it, failing the test if it is refused.
    pub async fn create(&self, plural: &str, root: &str, fields: Value) -> Value {
        self.post(&format!("/api/v1/{plural}"), json!({ root: fields }))
            .await
            .ok(root)
            .clone()
    }

    /// A billable metric; `extra` adds fields (`field_name`, `filters`, `weighted_interval`).
    pub async fn metric(&self, code: &str, aggregation_type: &str, extra: Value) -> Value {
        let mut fields = json!({"name": code, "code": code, "aggregation_type": aggregation_type});
        if let (Some(fields), Value::Object(extra)) = (fields.as_object_mut(), extra) {
            fields.extend(extra);
        }
        self.create("billable_metrics", "billable_metric", fields)
            .await
    }

    /// A monthly USD plan (no subscription fee, charges in arrears) with `charges`.
    pub async fn plan(&self, code: &str, charges: Value) -> Value {
        self.create(
            "plans",
            "plan",
            json!({"name": code, "code": code, "interval": "monthly", "amount_cents": 0,
                   "amount_currency": "USD", "pay_in_advance": false, "charges": charges}),
        )
        .await
    }

    /// A customer and its subscription to `plan_code` from `subscription_at` (calendar billing);
    /// returns the external subscription id.
    pub async fn subscribe(&self, plan_code: &str, subscription_at: &str) -> (String, String) {
        let customer = uniq("cus");
        self.create(
            "customers",
            "customer",
            json!({"external_id": customer, "name": "Jane", "currency": "USD"}),
        )
        .await;
        let subscription = uniq("sub");
        let created = self
            .create(
                "subscriptions",
                "subscription",
                json!({"external_customer_id": customer, "plan_code": plan_code,
                       "external_id": subscription, "subscription_at": subscription_at}),
            )
            .await;
        assert_eq!(created["status"], "active", "{created:#}");
        (customer, subscription)
    }

    /// `POST /events` of one event (not asserted).
    pub async fn send_event(&self, event: Value) -> Reply {
        self.post("/api/v1/events", json!({ "event": event })).await
    }

    /// `POST /events`, failing the test unless it is accepted.
    pub async fn event(&self, event: Value) -> Value {
        self.send_event(event).await.ok("event").clone()
    }

    /// `POST /events/batch` (not asserted).
    pub async fn batch(&self, events: Vec<Value>) -> Reply {
        self.post("/api/v1/events/batch", json!({ "events": events }))
            .await
    }

    /// `POST /_local/drain`: returns once every queued event is aggregated.
    pub async fn drain(&self) {
        let reply = self.post("/_local/drain", json!({})).await;
        assert_eq!(reply.status, StatusCode::OK, "drain: {reply:#?}");
    }

    /// The current usage of a subscription, after draining the queue.
    pub async fn usage(&self, customer: &str, subscription: &str) -> Value {
        self.drain().await;
        self.get(&format!(
            "/api/v1/customers/{customer}/current_usage?external_subscription_id={subscription}"
        ))
        .await
        .ok("customer_usage")
        .clone()
    }

    /// Whether an event with this transaction id is stored.
    pub async fn event_status(&self, transaction_id: &str) -> StatusCode {
        self.get(&format!("/api/v1/events/{transaction_id}"))
            .await
            .status
    }
}

/// The `charges_usage` entry of the charge with `charge_code`.
pub fn charge_usage<'a>(usage: &'a Value, charge_code: &str) -> &'a Value {
    usage["charges_usage"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["charge"]["code"] == charge_code))
        .unwrap_or_else(|| panic!("no usage of charge {charge_code} in {usage:#}"))
}

/// `(units, amount_cents, events_count)` of a usage object (charge, filter or group).
pub fn figures(usage: &Value) -> (String, i64, u64) {
    (
        usage["units"]
            .as_str()
            .unwrap_or_else(|| panic!("units is not a string in {usage:#}"))
            .to_owned(),
        usage["amount_cents"]
            .as_i64()
            .unwrap_or_else(|| panic!("amount_cents is not an integer in {usage:#}")),
        usage["events_count"]
            .as_u64()
            .unwrap_or_else(|| panic!("events_count is not an integer in {usage:#}")),
    )
}

/// The same figures as [`figures`], written as the test expects them.
pub fn expect(units: &str, amount_cents: i64, events_count: u64) -> (String, i64, u64) {
    (units.to_owned(), amount_cents, events_count)
}
