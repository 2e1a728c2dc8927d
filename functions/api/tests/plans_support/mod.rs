//! The ground the plan and subscription scenarios stand on: the real router over DynamoDB in
//! the AWS emulator, a fresh organization (with its own API key) per test, and a clock the
//! test sets, so that periods, statuses and dates are exact.
//!
//! The emulator is not optional: without `AWS_ENDPOINT_URL` the tests fail with a message
//! saying how to start it, rather than passing by skipping.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};

use axum::{Router, body::Body};
use billing::catalog::organization::{Organization, OrganizationSettings};
use billing_aws::{BillingStore, infra, provision};
use chrono::{DateTime, Utc};
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tower::ServiceExt;

static TABLE: OnceCell<String> = OnceCell::const_new();
static OWN_TABLE: OnceCell<String> = OnceCell::const_new();

/// The shared billing table of the test stack.
async fn store() -> BillingStore {
    stack_store(&TABLE, "").await
}

/// The billing table of a stack of its own (`<prefix>-tx`), for tests whose refused
/// transactions must not race the others: the emulator undoes a refused transaction by
/// restoring a copy of the whole table, losing writes made meanwhile by other requests.
async fn own_store() -> BillingStore {
    stack_store(&OWN_TABLE, "-tx").await
}

async fn stack_store(cell: &'static OnceCell<String>, suffix: &str) -> BillingStore {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()),
        "AWS_ENDPOINT_URL is not set: these tests run against the AWS emulator. Start it with \
         `.ci/emulator.sh start 4566` and run with AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
         AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
    );
    let sdk = billing_aws::config::sdk_config().await;
    let table = cell
        .get_or_init(|| async {
            let prefix = std::env::var("RESOURCE_PREFIX")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "apitest".into());
            let prefix = format!("{prefix}{suffix}");
            let stack = provision::provision(&sdk, &prefix)
                .await
                .unwrap_or_else(|e| panic!("provisioning the emulator under {prefix:?}: {e}"));
            stack
                .get(infra::BILLING_TABLE.env_var)
                .expect("the stack has a billing table")
                .to_owned()
        })
        .await;
    BillingStore::new(&sdk, table.clone())
}

/// An instant from RFC 3339 text.
pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
        .with_timezone(&Utc)
}

/// One organization's view of the API at a time the test controls.
#[derive(Clone)]
pub struct Api {
    router: Router,
    store: BillingStore,
    clock: Arc<Mutex<DateTime<Utc>>>,
    pub key: String,
    pub org_id: String,
}

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
    pub fn assert_error(&self, status: u16, body: Value, case: &str) {
        assert_eq!(self.status.as_u16(), status, "{case}: status of {self:#?}");
        assert_eq!(self.body, body, "{case}: error envelope");
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

async fn create_organization(store: &BillingStore, name: &str) -> (String, String) {
    let key = format!("lago_test_{}", uuid::Uuid::new_v4().simple());
    let org = Organization {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        created_at: Utc::now(),
        settings: OrganizationSettings::new(name),
        version: 1,
    };
    store
        .create_organization(&org, &key)
        .await
        .unwrap_or_else(|e| panic!("creating organization {name}: {e}"));
    (org.id, key)
}

impl Api {
    /// The API over the emulator as a new organization, with the clock at `now`.
    pub async fn start_at(now: &str) -> Api {
        Self::start_with(store().await, now).await
    }

    /// [`Api::start_at`] on a table of its own (see `own_store`).
    pub async fn start_on_own_table(now: &str) -> Api {
        Self::start_with(own_store().await, now).await
    }

    async fn start_with(store: BillingStore, now: &str) -> Api {
        let (org_id, key) = create_organization(&store, "Acme").await;
        let clock = Arc::new(Mutex::new(at(now)));
        let reader = clock.clone();
        // Production dependencies, with the test's clock.
        let mut deps = api::Deps::new(store.clone());
        deps.clock = Arc::new(move || *reader.lock().expect("clock"));
        Api {
            router: api::router(deps),
            store,
            clock,
            key,
            org_id,
        }
    }

    /// The store under the API, to check what other components will read.
    pub fn store(&self) -> &BillingStore {
        &self.store
    }

    /// Moves the clock.
    pub fn set_now(&self, now: &str) {
        *self.clock.lock().expect("clock") = at(now);
    }

    /// The same API (router, table and clock) as another new organization.
    pub async fn another_organization(&self, name: &str) -> Api {
        let (org_id, key) = create_organization(&self.store, name).await;
        Api {
            key,
            org_id,
            ..self.clone()
        }
    }

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
            .router
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

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// Creates through the API and returns the object, failing the test if refused.
    pub async fn create(&self, plural: &str, root: &str, fields: Value) -> Value {
        self.post(&format!("/api/v1/{plural}"), json!({ root: fields }))
            .await
            .ok(root)
            .clone()
    }

    /// A billable metric; `filters` as `[{"key": .., "values": [..]}]`.
    pub async fn metric(&self, code: &str, aggregation: &str, filters: Value) -> Value {
        let mut body = json!({"name": code, "code": code, "aggregation_type": aggregation,
                              "filters": filters});
        if aggregation != "count_agg" {
            body["field_name"] = json!("value");
        }
        self.create("billable_metrics", "billable_metric", body)
            .await
    }

    /// A tax of `rate` percent.
    pub async fn tax(&self, code: &str, rate: &str) -> Value {
        self.create(
            "taxes",
            "tax",
            json!({"name": code, "code": code, "rate": rate}),
        )
        .await
    }

    /// A customer with the given fields besides `external_id`.
    pub async fn customer(&self, external_id: &str, fields: Value) -> Value {
        let mut body = fields;
        body["external_id"] = json!(external_id);
        self.create("customers", "customer", body).await
    }

    /// A plan without charges.
    pub async fn simple_plan(
        &self,
        code: &str,
        interval: &str,
        amount_cents: i64,
        currency: &str,
    ) -> Value {
        self.create(
            "plans",
            "plan",
            json!({"name": code, "code": code, "interval": interval,
                   "amount_cents": amount_cents, "amount_currency": currency,
                   "pay_in_advance": false}),
        )
        .await
    }

    /// `meta.total_count` of a list path (with its query).
    pub async fn total(&self, path: &str, plural: &str) -> u64 {
        let reply = self.get(path).await;
        reply.ok(plural);
        reply.body["meta"]["total_count"]
            .as_u64()
            .unwrap_or_else(|| panic!("no meta.total_count in {:#}", reply.body))
    }
}
