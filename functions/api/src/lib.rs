//! # api: the Lago REST API v1 edge
//!
//! Every `/api/v1` route except events, as one axum [`Router`] that the Lambda serves through
//! `lambda_http` and the local runner serves on a socket: the same code in both places.
//!
//! ## Layout
//! - [`router`]: routes, authentication, body limit, JSON 404/405 fallbacks.
//! - `edge`: the request extractors (tenant, body, query) and the store-error mapping.
//! - one module per resource (`billable_metrics`, `customers`, `taxes`, `organizations`,
//!   `credit_notes`, ...), each
//!   holding its handlers and the use cases they call.
//!
//! ## Architecture Invariants
//! - Every `/api/v1` handler takes a [`Tenant`]: there is no way to reach the store without the
//!   caller's organization, and every store call is keyed by it.
//! - Every failure leaves through [`lago::ApiError`]; no handler builds an error response.
//! - Validation happens before any write, so a refused request writes nothing.

mod billable_metrics;
mod credit_notes;
mod customer_usage;
mod customers;
mod edge;
mod invoices;
mod organizations;
mod plans;
mod subscriptions;
mod taxes;
mod webhook_endpoints;
mod webhooks;

use std::sync::Arc;

use axum::{
    Router, middleware,
    routing::{get, post, put},
};
use billing_aws::BillingStore;
use chrono::{DateTime, Utc};

pub use edge::Tenant;

/// What the handlers need: the store, a clock and an id generator (time and ids are inputs).
#[derive(Clone)]
pub struct Deps {
    /// The billing table.
    pub store: BillingStore,
    /// Pre-aggregated usage (current usage reads it).
    pub usage: Option<billing_aws::usage::UsageStore>,
    /// Now.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// A new Lago id.
    pub ids: Arc<dyn Fn() -> String + Send + Sync>,
    /// The public key of JWT webhooks (`GET /webhooks/json_public_key`).
    pub webhook_public_key: Option<billing_aws::webhook_keys::PublicKeySource>,
    /// The domain-event bus, where invoice changes are published.
    pub bus: Option<billing_aws::bus::EventBus>,
    /// The invoice documents bucket; `None`: downloads are unavailable.
    pub documents: Option<billing_aws::documents::DocumentStore>,
}

impl Deps {
    /// Production dependencies: the system clock and random UUIDs.
    pub fn new(store: BillingStore) -> Self {
        Self {
            store,
            usage: None,
            clock: Arc::new(Utc::now),
            ids: Arc::new(|| uuid::Uuid::new_v4().to_string()),
            webhook_public_key: None,
            bus: None,
            documents: None,
        }
    }
}

impl Deps {
    /// Adds the event bus, where invoice changes are published.
    pub fn with_bus(mut self, bus: billing_aws::bus::EventBus) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Adds the documents bucket, where invoice PDFs are stored.
    pub fn with_documents(mut self, documents: billing_aws::documents::DocumentStore) -> Self {
        self.documents = Some(documents);
        self
    }

    /// Adds the usage table, which current usage reads.
    pub fn with_usage(mut self, usage: billing_aws::usage::UsageStore) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Adds where the webhook public key is read from.
    pub fn with_webhook_public_key(
        mut self,
        source: billing_aws::webhook_keys::PublicKeySource,
    ) -> Self {
        self.webhook_public_key = Some(source);
        self
    }
}

/// The API router: `/api/v1/...` behind bearer authentication, JSON errors everywhere.
pub fn router(deps: Deps) -> Router {
    let v1 = Router::new()
        .route(
            "/billable_metrics",
            get(billable_metrics::list).post(billable_metrics::create),
        )
        .route(
            "/billable_metrics/{code}",
            get(billable_metrics::show)
                .put(billable_metrics::update)
                .delete(billable_metrics::destroy),
        )
        .route("/customers", get(customers::list).post(customers::upsert))
        .route(
            "/customers/{external_customer_id}/current_usage",
            get(customer_usage::current_usage),
        )
        .route(
            "/customers/{external_customer_id}/projected_usage",
            get(customer_usage::projected_usage),
        )
        .route(
            "/customers/{external_customer_id}/past_usage",
            get(invoices::past_usage),
        )
        .route(
            "/customers/{external_customer_id}/invoices",
            get(invoices::list_for_customer),
        )
        .route("/invoices", get(invoices::list))
        .route("/credit_notes", get(credit_notes::list))
        .route("/credit_notes/{lago_id}", get(credit_notes::show))
        .route(
            "/customers/{external_customer_id}/credit_notes",
            get(credit_notes::list_for_customer),
        )
        .route(
            "/invoices/{lago_id}",
            get(invoices::show).put(invoices::update),
        )
        .route("/invoices/{lago_id}/refresh", put(invoices::refresh))
        // PUT as in Lago's contract; POST is accepted too.
        .route(
            "/invoices/{lago_id}/finalize",
            put(invoices::finalize).post(invoices::finalize),
        )
        .route("/invoices/{lago_id}/void", post(invoices::void))
        .route("/invoices/{lago_id}/download", post(invoices::download))
        .route("/fees", get(invoices::list_fees))
        .route("/fees/{lago_id}", get(invoices::show_fee))
        .route(
            "/customers/{external_id}",
            get(customers::show).delete(customers::destroy),
        )
        .route("/taxes", get(taxes::list).post(taxes::create))
        .route(
            "/taxes/{code}",
            get(taxes::show).put(taxes::update).delete(taxes::destroy),
        )
        .route(
            "/organizations",
            get(organizations::show).put(organizations::update),
        )
        .route("/plans", get(plans::list).post(plans::create))
        .route(
            "/plans/{code}",
            get(plans::show).put(plans::update).delete(plans::destroy),
        )
        .route(
            "/subscriptions",
            get(subscriptions::list).post(subscriptions::create),
        )
        .route(
            "/subscriptions/{external_id}",
            get(subscriptions::show)
                .put(subscriptions::update)
                .delete(subscriptions::destroy),
        )
        .route(
            "/webhook_endpoints",
            get(webhook_endpoints::list).post(webhook_endpoints::create),
        )
        .route(
            "/webhook_endpoints/{lago_id}",
            get(webhook_endpoints::show)
                .put(webhook_endpoints::update)
                .delete(webhook_endpoints::destroy),
        )
        .route("/webhooks/json_public_key", get(webhooks::json_public_key))
        .route("/webhooks/public_key", get(webhooks::public_key))
        .route("/webhooks/hmac_key", get(webhooks::hmac_key))
        .route_layer(middleware::from_fn_with_state(
            deps.clone(),
            edge::authenticate,
        ));
    Router::new()
        .nest("/api/v1", v1)
        .fallback(edge::route_not_found)
        .method_not_allowed_fallback(edge::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            lago::error::BODY_LIMIT_BYTES,
        ))
        .with_state(deps)
}
