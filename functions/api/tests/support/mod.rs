//! What every API integration test stands on: the real router over DynamoDB in the AWS
//! emulator, and a fresh organization (with its own API key) per test, so tests never see each
//! other's records and can run in parallel.
//!
//! The emulator is not optional: without `AWS_ENDPOINT_URL` the tests fail with a message
//! saying how to start it, rather than passing by skipping.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::{Router, body::Body};
use billing::catalog::organization::{Organization, OrganizationSettings};
use billing_aws::{BillingStore, infra, provision};
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::OnceCell;
use tower::ServiceExt;

/// The billing table, provisioned once per test process (provisioning is idempotent, so
/// processes running side by side under nextest agree on it).
static TABLE: OnceCell<String> = OnceCell::const_new();

/// The store over the billing table of the emulator.
async fn store() -> BillingStore {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()),
        "AWS_ENDPOINT_URL is not set: these tests run against the AWS emulator. Start it with \
         `.ci/emulator.sh start 4566` and run with AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
         AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
    );
    let sdk = billing_aws::config::sdk_config().await;
    let table = TABLE
        .get_or_init(|| async {
            let prefix = std::env::var("RESOURCE_PREFIX")
                .ok()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "apitest".into());
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

/// One organization's view of the API: the router in-process, and that organization's key.
#[derive(Clone)]
pub struct Api {
    router: Router,
    store: BillingStore,
    /// The organization's API key.
    pub key: String,
    /// The organization's Lago id.
    pub org_id: String,
}

/// A response: status, `Content-Type` and the body parsed as JSON.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: Option<String>,
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

    /// Asserts the reply is exactly `status` with `body`, as JSON.
    pub fn assert_error(&self, status: u16, body: Value, case: &str) {
        assert_eq!(self.status.as_u16(), status, "{case}: status of {self:#?}");
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/json"),
            "{case}: errors are JSON"
        );
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

/// Lago's 400 body for a missing root key.
pub fn missing_root(root: &str) -> Value {
    json!({
        "status": 400,
        "error": format!("BadRequest: param is missing or the value is empty or invalid: {root}"),
    })
}

/// Lago's 401 body.
pub fn unauthorized() -> Value {
    json!({"status": 401, "error": "Unauthorized"})
}

/// A new organization with its own API key, stored as the local runner's
/// `create-organization` stores one.
async fn create_organization(store: &BillingStore, name: &str) -> (String, String) {
    let key = format!("lago_test_{}", uuid::Uuid::new_v4().simple());
    let org = Organization {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        created_at: chrono::Utc::now(),
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
    /// The API over the emulator, as a new organization named "Acme".
    pub async fn start() -> Api {
        Self::start_as("Acme").await
    }

    /// The API over the emulator, as a new organization named `name`.
    pub async fn start_as(name: &str) -> Api {
        let store = store().await;
        let (org_id, key) = create_organization(&store, name).await;
        Api {
            router: api::router(api::Deps::new(store.clone())),
            store,
            key,
            org_id,
        }
    }

    /// The same API (same router and table) as another new organization.
    pub async fn another_organization(&self, name: &str) -> Api {
        let (org_id, key) = create_organization(&self.store, name).await;
        Api {
            router: self.router.clone(),
            store: self.store.clone(),
            key,
            org_id,
        }
    }

    /// The same organization through a router whose dependencies `configure` completes
    /// (optional ones, such as the webhook public key).
    pub fn reconfigured(&self, configure: impl FnOnce(api::Deps) -> api::Deps) -> Api {
        Api {
            router: api::router(configure(api::Deps::new(self.store.clone()))),
            ..self.clone()
        }
    }

    /// The router, for requests whose answer is not JSON.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Sends raw bytes with an optional `Authorization` header value.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = Request::builder().method(method.clone()).uri(path);
        if let Some(value) = authorization {
            request = request.header(header::AUTHORIZATION, value);
        }
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request.body(Body::from(body)).expect("a valid request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
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
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// Sends `body` (if any) as this organization.
    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let auth = format!("Bearer {}", self.key);
        self.send_raw(method, path, Some(&auth), bytes).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(&body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// `meta.total_count` of a list (`/api/v1/<plural>`), asserting the list answers 200.
    pub async fn count(&self, plural: &str) -> u64 {
        let reply = self.get(&format!("/api/v1/{plural}")).await;
        reply.ok(plural);
        reply.body["meta"]["total_count"]
            .as_u64()
            .unwrap_or_else(|| panic!("no meta.total_count in {:#}", reply.body))
    }

    /// Creates a record through the API and returns it, failing the test if it is refused.
    pub async fn create(&self, plural: &str, root: &str, fields: Value) -> Value {
        let reply = self
            .post(&format!("/api/v1/{plural}"), json!({ root: fields }))
            .await;
        reply.ok(root).clone()
    }

    /// A `sum_agg` metric with `code`.
    pub async fn metric(&self, code: &str) -> Value {
        self.create(
            "billable_metrics",
            "billable_metric",
            json!({"name": "Storage", "code": code, "aggregation_type": "sum_agg",
                   "field_name": "gb"}),
        )
        .await
    }

    /// A 20 % tax with `code`.
    pub async fn tax(&self, code: &str) -> Value {
        self.create(
            "taxes",
            "tax",
            json!({"name": "VAT", "code": code, "rate": "20.0"}),
        )
        .await
    }

    /// A customer with `external_id` and a name.
    pub async fn customer(&self, external_id: &str) -> Value {
        self.create(
            "customers",
            "customer",
            json!({"external_id": external_id, "name": "Jane", "currency": "EUR"}),
        )
        .await
    }
}

/// Everything an organization can read through the API: its three lists (every record in
/// full, `updated_at` included) and its own settings. Equal snapshots before and after a
/// refused request prove the request wrote nothing.
pub async fn snapshot(api: &Api) -> Value {
    let mut state = serde_json::Map::new();
    for plural in ["billable_metrics", "taxes", "customers"] {
        let reply = api.get(&format!("/api/v1/{plural}?per_page=1000")).await;
        reply.ok(plural);
        state.insert(plural.into(), reply.body);
    }
    let reply = api.get("/api/v1/organizations").await;
    state.insert("organization".into(), reply.ok("organization").clone());
    Value::Object(state)
}

/// An organization holding one of each record: metric `storage`, tax `vat`, customer `cus_1`.
pub async fn seeded() -> Api {
    let api = Api::start().await;
    api.metric("storage").await;
    api.tax("vat").await;
    api.customer("cus_1").await;
    api
}
