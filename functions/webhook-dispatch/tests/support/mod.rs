//! What every dispatcher test stands on: a stack of its own in the AWS emulator (tables,
//! queues, the bus with its webhook rule, the signing keys in Secrets Manager), the API router
//! to create endpoints and read keys as a client would, the dispatcher wired from the same
//! configuration the Lambda reads, the local runner's queue poller, and HTTP receivers on
//! ephemeral ports that record what they are sent.
//!
//! Each test provisions under its own prefix, so its poller never takes another test's
//! messages. The emulator is not optional: without `AWS_ENDPOINT_URL` the tests fail.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::State,
    http::{HeaderMap, StatusCode},
};
use billing_aws::{
    BillingStore,
    bus::{DomainEvent, EventBus},
    infra, provision,
    webhook_keys::{PublicKeySource, Secrets},
};
use http::{Method, Request, header};
use http_body_util::BodyExt;
use local_runner::worker::{PollReport, QueuePoller};
use serde_json::{Value, json};
use tower::ServiceExt;
use webhook_dispatch::{Backoff, Config, Deps, PrivateKey};

/// The JWT issuer the dispatcher is configured with (`LAGO_API_URL`).
pub const ISSUER: &str = "http://lago.test";

/// One test's stack in the emulator.
pub struct Stack {
    pub sdk: aws_config::SdkConfig,
    pub store: BillingStore,
    pub bus: EventBus,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub dlq_url: String,
    pub private_key_secret: String,
    pub public_key_secret: String,
    /// The usage table (for the invoice worker).
    pub usage_table: String,
    /// The billing queue (between the billing clock and the invoice worker).
    pub billing_queue_url: String,
    /// The documents bucket (also where events too large for the bus keep their objects).
    pub documents_bucket: String,
    api: Router,
}

impl Stack {
    /// Provisions a fresh stack under a prefix of its own.
    pub async fn provision() -> Stack {
        assert!(
            std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty()),
            "AWS_ENDPOINT_URL is not set: these tests run against the AWS emulator. Start it with \
             `.ci/emulator.sh start 4566` and run with AWS_ENDPOINT_URL=http://127.0.0.1:4566 \
             AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test"
        );
        let sdk = billing_aws::config::sdk_config().await;
        let prefix = format!("whd{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let stack = provision::provision(&sdk, &prefix)
            .await
            .unwrap_or_else(|e| panic!("provisioning {prefix}: {e}"));
        let var = |name: &str| {
            stack
                .get(name)
                .unwrap_or_else(|| panic!("{name} not provisioned"))
                .to_owned()
        };
        let store = BillingStore::new(&sdk, var(infra::BILLING_TABLE.env_var));
        let public_key_secret = var(infra::WEBHOOK_PUBLIC_KEY.env_var);
        let api = api::router(
            api::Deps::new(store.clone())
                .with_bus(EventBus::new(&sdk, var(infra::BUS.env_var)))
                .with_webhook_public_key(PublicKeySource::secret(
                    Secrets::new(&sdk),
                    public_key_secret.clone(),
                )),
        );
        let documents_bucket = var(infra::DOCUMENTS_BUCKET.env_var);
        Stack {
            bus: EventBus::new(&sdk, var(infra::BUS.env_var)).with_overflow(
                billing_aws::documents::DocumentStore::new(&sdk, documents_bucket.clone()),
            ),
            documents_bucket,
            sqs: aws_sdk_sqs::Client::new(&sdk),
            queue_url: var(infra::WEBHOOK_QUEUE.env_var),
            dlq_url: var(infra::WEBHOOK_QUEUE.dlq_env_var),
            private_key_secret: var(infra::WEBHOOK_PRIVATE_KEY.env_var),
            public_key_secret,
            usage_table: var(infra::USAGE_TABLE.env_var),
            billing_queue_url: var(infra::BILLING_QUEUE.env_var),
            store,
            api,
            sdk,
        }
    }

    /// The billing clock and the invoice worker as the local runner wires them
    /// (`POST /_local/billing-run`), publishing on this stack's bus.
    pub fn billing_runner(&self) -> local_runner::billing_run::BillingRunner {
        local_runner::billing_run::BillingRunner {
            clock: billing_clock::Deps {
                store: self.store.clone(),
                queue: billing_aws::billing_queue::BillingQueue::new(
                    &self.sdk,
                    self.billing_queue_url.clone(),
                ),
            },
            invoice: invoicing::Deps {
                store: self.store.clone(),
                usage: billing_aws::usage::UsageStore::new(&self.sdk, self.usage_table.clone()),
                bus: Some(self.bus.clone()),
                ids: Arc::new(|| uuid::Uuid::new_v4().to_string()),
                clock: Arc::new(chrono::Utc::now),
            },
            poller: QueuePoller::new(
                self.sqs.clone(),
                self.billing_queue_url.clone(),
                Duration::ZERO,
                Duration::ZERO,
            ),
        }
    }

    /// The dispatcher as the Lambda builds it (private key read from its secret), with
    /// `backoff`.
    pub async fn dispatcher(&self, backoff: Backoff) -> Deps {
        let config = Config {
            billing_table: self.store.table().to_owned(),
            queue_url: self.queue_url.clone(),
            private_key: PrivateKey::Secret(self.private_key_secret.clone()),
            api_url: ISSUER.to_owned(),
            documents_bucket: Some(self.documents_bucket.clone()),
        };
        Deps::from_config(&self.sdk, &config)
            .await
            .expect("the dispatcher starts")
            .with_backoff(backoff)
    }

    /// The local runner's poller of the webhook queue: failed messages come back at once and
    /// a receive never waits, so a test drives retries poll by poll.
    pub fn poller(&self) -> QueuePoller {
        QueuePoller::new(
            self.sqs.clone(),
            self.queue_url.clone(),
            Duration::ZERO,
            Duration::ZERO,
        )
    }

    /// One poll of the webhook queue by the dispatcher.
    pub async fn poll(&self, deps: &Deps) -> PollReport {
        self.poller()
            .poll_once(|e| webhook_dispatch::handler(deps, e))
            .await
            .expect("the poll")
    }

    /// A new organization and its API key.
    pub async fn organization(&self, name: &str) -> Org {
        let key = local_runner::organization::new_api_key();
        let org = local_runner::organization::create(&self.store, name, &key)
            .await
            .expect("an organization");
        Org {
            id: org.id,
            key,
            api: self.api.clone(),
        }
    }

    /// Publishes one domain event of `org` on the bus, as the other functions do; returns it.
    pub async fn publish(&self, org: &Org, webhook_type: &str, object: Value) -> DomainEvent {
        let object_type = webhook_type
            .split('.')
            .next()
            .unwrap_or_default()
            .to_owned();
        let event = DomainEvent {
            organization_id: org.id.clone(),
            webhook_type: webhook_type.to_owned(),
            object_type,
            object,
            unique_key: uuid::Uuid::new_v4().to_string(),
            object_key: None,
        };
        self.bus
            .publish(std::slice::from_ref(&event))
            .await
            .expect("the bus takes the event");
        event
    }

    /// The bodies of the messages in the dead-letter queue (left there).
    pub async fn dead_letters(&self) -> Vec<Value> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.dlq_url)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("the DLQ answers");
        out.messages
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m.body.as_deref())
            .map(|b| serde_json::from_str(b).expect("a JSON body"))
            .collect()
    }

    /// Messages left in the webhook queue, visible or not.
    pub async fn outstanding(&self) -> u64 {
        self.poller()
            .outstanding()
            .await
            .expect("the queue answers")
    }
}

/// An organization as an API client sees it.
#[derive(Clone)]
pub struct Org {
    pub id: String,
    pub key: String,
    api: Router,
}

impl Org {
    /// Sends a request with this organization's key; returns status and body text.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.key));
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let body = body.map(|b| Body::from(b.to_string())).unwrap_or_default();
        let response = self
            .api
            .clone()
            .oneshot(request.body(body).expect("a request"))
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `method path` with a JSON body, asserting a 200; the body as JSON.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, text) = self.request(method.clone(), path, body).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}: {text}");
        serde_json::from_str(&text).expect("JSON")
    }

    /// `GET path` as JSON, asserting a 200.
    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.request(Method::GET, path, None).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// Creates a webhook endpoint through the API; returns its Lago id.
    pub async fn endpoint(&self, fields: Value) -> String {
        let (status, body) = self
            .request(
                Method::POST,
                "/api/v1/webhook_endpoints",
                Some(json!({ "webhook_endpoint": fields })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "creating an endpoint: {body}");
        let body: Value = serde_json::from_str(&body).expect("JSON");
        body["webhook_endpoint"]["lago_id"]
            .as_str()
            .expect("a lago_id")
            .to_owned()
    }
}

/// One request a receiver got.
#[derive(Debug, Clone)]
pub struct Hit {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Hit {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

#[derive(Clone, Default)]
struct Recorded {
    hits: Arc<Mutex<Vec<Hit>>>,
    status: Arc<AtomicU16>,
}

/// A webhook receiver on 127.0.0.1 that records every request and answers a set status.
pub struct Receiver {
    pub url: String,
    recorded: Recorded,
}

impl Receiver {
    /// A receiver answering `status` to everything, until told otherwise.
    pub async fn start(status: u16) -> Receiver {
        let recorded = Recorded::default();
        recorded.status.store(status, Ordering::SeqCst);
        let app = Router::new()
            .fallback(
                |State(r): State<Recorded>, request: axum::extract::Request| async move {
                    let (parts, body) = request.into_parts();
                    let body = body
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    r.hits.lock().expect("hits").push(Hit {
                        method: parts.method.to_string(),
                        path: parts.uri.path().to_owned(),
                        headers: parts.headers,
                        body,
                    });
                    StatusCode::from_u16(r.status.load(Ordering::SeqCst))
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                },
            )
            .with_state(recorded.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/webhooks"),
            recorded,
        }
    }

    /// From now on, answer `status`.
    pub fn answer(&self, status: u16) {
        self.recorded.status.store(status, Ordering::SeqCst);
    }

    /// Every request received so far.
    pub fn hits(&self) -> Vec<Hit> {
        self.recorded.hits.lock().expect("hits").clone()
    }
}
