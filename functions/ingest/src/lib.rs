//! # ingest: the hot path of usage events
//!
//! `POST /api/v1/events` and `/events/batch` validate events, store each one with a single
//! conditional write that also claims its identity (organization, external subscription,
//! transaction id), and hand the stored events to the FIFO events queue, one message per
//! subscription. `GET /api/v1/events/{transaction_id}` reads an event back.
//! `POST /api/v1/events/estimate_fees` prices one event on the plan's pay-in-advance charges
//! against the period's pre-aggregated usage, and stores nothing.
//!
//! ## Layout
//! - [`router`]: the routes, behind bearer authentication.
//! - `ingest_events`: the use case: validate, claim, enqueue.
//! - `estimate_fees`: the use case: validate, read the usage states, price the instant fees
//!   ([`billing::instant_fee`]).
//!
//! ## Architecture Invariants
//! - A refused request writes nothing: every event of a request is validated (fields, window,
//!   metric, subscription, conflicts with stored events) before the first write.
//! - An accepted event (200) is stored and queued. If queueing fails the event is marked
//!   `unsent` and the request fails with 503: the client's retry or the `sweep` function resends it, with
//!   the same FIFO deduplication id, so it is aggregated once.
//! - An identical replay is an idempotent 200; the same identity with another payload is a 422.
//! - An estimate only reads: the events table, the queue and the usage states are untouched,
//!   so an estimated event can still be sent (and is then billed once).

mod cache;
mod estimate_fees;
mod ingest_events;

use std::sync::Arc;

use axum::{
    Router,
    extract::{Path, State},
    middleware,
    response::Response,
    routing::{get, post},
};
use billing::catalog::organization::Organization;
use billing_aws::{
    BillingStore, StoreError, events::EventStore, queue::EventQueue, usage::UsageStore,
};
use chrono::{DateTime, Utc};
use lago::{
    ApiError,
    dto::{
        estimated_fee::estimated_fee_object,
        event::{EventDto, EventInputDto},
    },
    edge::{Body, Tenant, TenantResolver},
    http,
};

pub use estimate_fees::{EstimateError, estimate_fees};
pub use ingest_events::{IngestError, ingest_events};

/// What the ingest function needs.
#[derive(Clone)]
pub struct Deps {
    /// Organizations, metrics, subscriptions.
    pub billing: BillingStore,
    /// The events table.
    pub events: EventStore,
    /// The events queue.
    pub queue: EventQueue,
    /// The pre-aggregated usage, read (never written) by fee estimates.
    pub usage: UsageStore,
    /// Now.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Lookups repeated by every request, kept for a minute in a warm container.
    caches: Arc<Caches>,
}

/// What [`cache::TtlCache`] keeps for ingestion.
#[derive(Debug, Default)]
struct Caches {
    /// API-key digest to organization.
    tenants: cache::TtlCache<String, Organization>,
    /// (organization, metric code) to metric.
    metrics: cache::TtlCache<(String, String), billing::catalog::metric::BillableMetric>,
    /// (organization, external subscription id) known to exist.
    subscriptions: cache::TtlCache<(String, String), ()>,
}

impl Deps {
    /// Production dependencies: the system clock.
    pub fn new(
        billing: BillingStore,
        events: EventStore,
        queue: EventQueue,
        usage: UsageStore,
    ) -> Self {
        Self {
            billing,
            events,
            queue,
            usage,
            clock: Arc::new(Utc::now),
            caches: Arc::new(Caches::default()),
        }
    }
}

impl TenantResolver for Deps {
    async fn resolve(&self, api_key: &str) -> Result<Option<Organization>, ApiError> {
        let digest = billing_aws::dynamo::organizations::api_key_digest(api_key);
        if let Some(org) = self.caches.tenants.get(&digest) {
            return Ok(Some(org));
        }
        match self.billing.organization_for_key(api_key).await {
            Ok(org) => {
                self.caches.tenants.put(digest, org.clone());
                Ok(Some(org))
            }
            Err(StoreError::NotFound) => Ok(None),
            Err(e) => Err(store_error("organization", e)),
        }
    }
}

/// Maps a store failure to its Lago error, logging what the caller cannot see.
pub fn store_error(resource: &'static str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::NotFound(resource),
        StoreError::AlreadyExists => ApiError::invalid("transaction_id", "value_already_exist"),
        StoreError::Conflict => ApiError::Unavailable,
        StoreError::TooLarge => ApiError::invalid("properties", "value_is_too_long"),
        StoreError::Unavailable(cause) => {
            tracing::error!(error.cause_chain = %cause, resource, "store unavailable");
            ApiError::Unavailable
        }
        StoreError::Corrupt(cause) => {
            tracing::error!(error.cause_chain = %cause, resource, "corrupt item");
            ApiError::Internal
        }
    }
}

/// The most events one batch request may carry (Lago's limit).
pub const BATCH_MAX: usize = 100;

/// The events routes.
pub fn router(deps: Deps) -> Router {
    let v1 = Router::new()
        .route("/events", post(create))
        .route("/events/batch", post(batch))
        // A literal segment wins over `{transaction_id}` whatever the method: a GET of this
        // path is Lago's 405, never a lookup of an event called `estimate_fees`.
        .route("/events/estimate_fees", post(estimate))
        .route("/events/{transaction_id}", get(show))
        .route_layer(middleware::from_fn_with_state(
            deps.clone(),
            lago::edge::authenticate::<Deps>,
        ));
    Router::new()
        .nest("/api/v1", v1)
        .fallback(lago::edge::route_not_found)
        .method_not_allowed_fallback(lago::edge::method_not_allowed)
        .layer(axum::extract::DefaultBodyLimit::max(
            lago::error::BODY_LIMIT_BYTES,
        ))
        .with_state(deps)
}

/// `POST /events`.
async fn create(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let dto: EventInputDto = http::root_dto(&body, "event")?;
    let mut stored = ingest_events(&deps, &org, vec![dto], false)
        .await
        .map_err(IngestError::into_api_error)?;
    let event = stored.pop().ok_or(ApiError::Internal)?;
    Ok(http::ok(
        "event",
        EventDto::from(ingest_events::view(&event)),
    ))
}

/// `POST /events/batch`.
async fn batch(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let mut object = http::parse_body(&body)?;
    let items = match object.remove("events") {
        Some(serde_json::Value::Array(items)) => items,
        _ => return Err(ApiError::missing_root("events")),
    };
    if items.is_empty() {
        return Err(ApiError::invalid("events", "no_events"));
    }
    if items.len() > BATCH_MAX {
        return Err(ApiError::invalid("events", "too_many_events"));
    }
    let mut dtos = Vec::with_capacity(items.len());
    let mut errors = serde_json::Map::new();
    for (i, item) in items.into_iter().enumerate() {
        let parsed = match item {
            serde_json::Value::Object(map) => http::from_object::<EventInputDto>(map),
            _ => Err(ApiError::invalid("event", "value_is_invalid")),
        };
        match parsed {
            Ok(dto) => dtos.push(dto),
            Err(ApiError::Validation(details)) => {
                errors.insert(i.to_string(), serde_json::Value::Object(details));
            }
            Err(e) => return Err(e),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let stored = ingest_events(&deps, &org, dtos, true)
        .await
        .map_err(IngestError::into_api_error)?;
    let events: Vec<EventDto> = stored
        .iter()
        .map(|e| EventDto::from(ingest_events::view(e)))
        .collect();
    Ok(http::ok("events", events))
}

/// `POST /events/estimate_fees`: `{"fees": [FeeObject, ...]}`.
async fn estimate(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let dto: EventInputDto = http::root_dto(&body, "event")?;
    let fees = estimate_fees(&deps, &org, &dto)
        .await
        .map_err(EstimateError::into_api_error)?;
    let fees: Vec<serde_json::Value> = fees.iter().map(estimated_fee_object).collect();
    Ok(http::ok("fees", fees))
}

impl EstimateError {
    /// The Lago error of a refused estimate.
    pub fn into_api_error(self) -> ApiError {
        match self {
            EstimateError::Invalid(errors) => ApiError::from(errors),
            EstimateError::NotFound(resource) => ApiError::NotFound(resource),
            EstimateError::NoInstantCharge => {
                ApiError::invalid("code", "does_not_match_an_instant_charge")
            }
            EstimateError::Store(e) => store_error("subscription", e),
            EstimateError::Pricing(cause) => {
                tracing::error!(error.cause_chain = %cause, "estimate pricing failed");
                ApiError::Internal
            }
        }
    }
}

/// `GET /events/{transaction_id}`.
async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(transaction_id): Path<String>,
) -> Result<Response, ApiError> {
    let events = deps
        .events
        .by_transaction_id(&org.id, &transaction_id)
        .await
        .map_err(|e| store_error("event", e))?;
    let event = events.first().ok_or(ApiError::NotFound("event"))?;
    Ok(http::ok(
        "event",
        EventDto::from(ingest_events::view(event)),
    ))
}
