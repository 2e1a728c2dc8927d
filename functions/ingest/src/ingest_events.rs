//! The ingest use case: validate every event, claim each identity, queue what was stored.

use std::collections::{BTreeMap, HashMap};

use billing::catalog::{
    FieldError, ValidationErrors, event::Event, metric::BillableMetric, organization::Organization,
    subscription::SubscriptionStatus,
};
use billing_aws::{
    StoreError,
    events::{Claim, StoredEvent},
    handoff::{RESEND_WINDOW_MS, enqueue},
};
use futures::{StreamExt, stream};
use lago::{
    ApiError,
    dto::event::{EventInputDto, EventView},
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::Deps;

/// How many conditional writes of one request run at once.
const CLAIM_CONCURRENCY: usize = 16;

/// Why a request was refused.
#[derive(Debug)]
pub enum IngestError {
    /// Per-event field errors, by position in the request.
    Invalid(Vec<(usize, ValidationErrors)>),
    /// A referenced object does not exist (single-event requests answer 404).
    NotFound(usize, &'static str, &'static str),
    /// The store or the queue failed; stored events are marked for the sweep.
    Unavailable(String),
    /// A stored item is unreadable.
    Corrupt(String),
    /// Answered as-is.
    Api(ApiError),
    /// `true` when the request was a batch (errors are keyed by index).
    Batch(Box<IngestError>),
}

impl From<StoreError> for IngestError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(c) => IngestError::Corrupt(c),
            other => IngestError::Unavailable(other.to_string()),
        }
    }
}

fn details(errors: &ValidationErrors) -> Map<String, Value> {
    match ApiError::from(errors.clone()) {
        ApiError::Validation(map) => map,
        _ => Map::new(),
    }
}

impl IngestError {
    /// The Lago error of a refused request.
    pub fn into_api_error(self) -> ApiError {
        let (batch, inner) = match self {
            IngestError::Batch(inner) => (true, *inner),
            other => (false, other),
        };
        match inner {
            IngestError::Invalid(list) if batch => {
                let mut map = Map::new();
                for (i, errors) in list {
                    map.insert(i.to_string(), Value::Object(details(&errors)));
                }
                ApiError::Validation(map)
            }
            IngestError::Invalid(list) => {
                let mut all = ValidationErrors::default();
                for (_, mut e) in list {
                    all.0.append(&mut e.0);
                }
                ApiError::from(all)
            }
            IngestError::NotFound(i, field, resource) if batch => {
                let mut errors = ValidationErrors::default();
                errors
                    .0
                    .push(FieldError::new(field, not_found_code(resource)));
                let mut map = Map::new();
                map.insert(i.to_string(), Value::Object(details(&errors)));
                ApiError::Validation(map)
            }
            IngestError::NotFound(_, _, resource) => ApiError::NotFound(resource),
            IngestError::Unavailable(cause) => {
                tracing::error!(error.cause_chain = %cause, "ingest unavailable");
                ApiError::Unavailable
            }
            IngestError::Corrupt(cause) => {
                tracing::error!(error.cause_chain = %cause, "corrupt event item");
                ApiError::Internal
            }
            IngestError::Api(e) => e,
            IngestError::Batch(inner) => inner.into_api_error(),
        }
    }
}

fn not_found_code(resource: &str) -> &'static str {
    match resource {
        "billable_metric" => "billable_metric_not_found",
        _ => "subscription_not_found",
    }
}

/// A digest of what makes two sends of one identity the same event: the fields as sent (an
/// absent timestamp stays absent, so a retry of an event stamped at reception is identical).
fn payload_digest(event: &Event, sent_timestamp: Option<i64>, properties_json: &str) -> String {
    let mut h = Sha256::new();
    let timestamp = sent_timestamp.map_or_else(|| "now".to_owned(), |t| t.to_string());
    for part in [
        event.code(),
        &timestamp,
        properties_json,
        event.precise_total_amount_cents().unwrap_or(""),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(&h.finalize()[..16])
}

/// The response view of a stored event.
pub fn view(e: &StoredEvent) -> EventView<'_> {
    EventView {
        lago_id: &e.lago_id,
        transaction_id: &e.transaction_id,
        code: &e.code,
        timestamp: e.timestamp(),
        properties_json: &e.properties,
        precise_total_amount_cents: e.precise_total_amount_cents.as_deref(),
        external_subscription_id: &e.external_subscription_id,
        created_at: e.created_at(),
    }
}

/// Validates, stores and queues events; returns them as stored (replays as first stored).
pub async fn ingest_events(
    deps: &Deps,
    org: &Organization,
    dtos: Vec<EventInputDto>,
    batch: bool,
) -> Result<Vec<StoredEvent>, IngestError> {
    let wrap = |e: IngestError| {
        if batch {
            IngestError::Batch(Box::new(e))
        } else {
            e
        }
    };
    let now = (deps.clock)();

    // 1. Fields and time window.
    let mut events = Vec::with_capacity(dtos.len());
    let mut invalid = Vec::new();
    for (i, dto) in dtos.iter().enumerate() {
        match Event::new(dto.to_input(), now) {
            Ok(e) => {
                let sent = match dto.to_input().timestamp {
                    billing::catalog::event::TimestampInput::At(t) => Some(t.timestamp_millis()),
                    _ => None,
                };
                events.push((e, dto.properties_json(), sent));
            }
            Err(e) => invalid.push((i, e)),
        }
    }
    if !invalid.is_empty() {
        return Err(wrap(IngestError::Invalid(invalid)));
    }

    // 2. Metrics and subscriptions exist, values fit the metric.
    let mut codes: Vec<String> = events.iter().map(|(e, _, _)| e.code().to_owned()).collect();
    codes.sort();
    codes.dedup();
    let mut metrics: HashMap<String, BillableMetric> = HashMap::new();
    let mut unknown: Vec<String> = Vec::new();
    for code in codes {
        match deps.caches.metrics.get(&(org.id.clone(), code.clone())) {
            Some(m) => {
                metrics.insert(code, m);
            }
            None => unknown.push(code),
        }
    }
    for record in deps
        .billing
        .get_many::<BillableMetric>(&org.id, &unknown)
        .await
        .map_err(|e| wrap(e.into()))?
    {
        let code = record.value.code().to_owned();
        deps.caches
            .metrics
            .put((org.id.clone(), code.clone()), record.value.clone());
        metrics.insert(code, record.value);
    }
    let mut subs: BTreeMap<String, bool> = BTreeMap::new();
    for (e, _, _) in &events {
        subs.entry(e.external_subscription_id().to_owned())
            .or_default();
    }
    for (sub, exists) in subs.iter_mut() {
        let key = (org.id.clone(), sub.clone());
        if deps.caches.subscriptions.get(&key).is_some() {
            *exists = true;
            continue;
        }
        let found = deps
            .billing
            .subscriptions_by_external_id(&org.id, sub)
            .await
            .map_err(|e| wrap(e.into()))?;
        *exists = found
            .iter()
            .any(|s| !matches!(s.value.status(), SubscriptionStatus::Canceled));
        if *exists {
            deps.caches.subscriptions.put(key, ());
        }
    }
    for (i, (e, _, _)) in events.iter().enumerate() {
        let Some(metric) = metrics.get(e.code()) else {
            return Err(wrap(IngestError::NotFound(i, "code", "billable_metric")));
        };
        if !subs
            .get(e.external_subscription_id())
            .copied()
            .unwrap_or(false)
        {
            return Err(wrap(IngestError::NotFound(
                i,
                "external_subscription_id",
                "subscription",
            )));
        }
        if let Err(errors) = e.check_against(metric) {
            invalid.push((i, errors));
        }
    }
    if !invalid.is_empty() {
        return Err(wrap(IngestError::Invalid(invalid)));
    }

    // 3. The same identity twice in one request must be the same event.
    let records: Vec<StoredEvent> = events
        .iter()
        .map(|(e, props, sent)| StoredEvent {
            lago_id: uuid::Uuid::new_v4().to_string(),
            organization_id: org.id.clone(),
            transaction_id: e.transaction_id().to_owned(),
            external_subscription_id: e.external_subscription_id().to_owned(),
            code: e.code().to_owned(),
            timestamp_ms: e.timestamp().timestamp_millis(),
            properties: props.clone(),
            precise_total_amount_cents: e.precise_total_amount_cents().map(str::to_owned),
            created_at_ms: now.timestamp_millis(),
            payload_digest: payload_digest(e, *sent, props),
        })
        .collect();
    let mut first_of: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let id = (
            r.external_subscription_id.as_str(),
            r.transaction_id.as_str(),
        );
        match first_of.get(&id) {
            Some(&j) if records[j].payload_digest != r.payload_digest => {
                invalid.push((i, conflict()));
            }
            Some(_) => {}
            None => {
                first_of.insert(id, i);
            }
        }
    }
    if !invalid.is_empty() {
        return Err(wrap(IngestError::Invalid(invalid)));
    }

    // 4. Claim each identity (one conditional write each). A batch first checks the stored
    //    events so that a conflict refuses the whole request before anything is written.
    let unique: Vec<&StoredEvent> = first_of.values().map(|&i| &records[i]).collect();
    if batch {
        // One BatchGetItem per hundred identities: a query per event would cost a round trip
        // each before the first write.
        let ids: Vec<(&str, &str)> = unique
            .iter()
            .map(|r| {
                (
                    r.transaction_id.as_str(),
                    r.external_subscription_id.as_str(),
                )
            })
            .collect();
        let stored: HashMap<(String, String), String> = deps
            .events
            .get_many(&org.id, &ids)
            .await
            .map_err(|e| wrap(e.into()))?
            .into_iter()
            .map(|s| {
                (
                    (s.external_subscription_id, s.transaction_id),
                    s.payload_digest,
                )
            })
            .collect();
        for (i, r) in records.iter().enumerate() {
            let id = (r.external_subscription_id.clone(), r.transaction_id.clone());
            if stored
                .get(&id)
                .is_some_and(|digest| *digest != r.payload_digest)
            {
                invalid.push((i, conflict()));
            }
        }
        if !invalid.is_empty() {
            return Err(wrap(IngestError::Invalid(invalid)));
        }
    }
    let claims: Vec<(StoredEvent, Result<Claim, StoreError>)> =
        stream::iter(unique.into_iter().cloned())
            .map(|r| {
                let store = deps.events.clone();
                async move {
                    let claim = store.claim(&r).await;
                    (r, claim)
                }
            })
            .buffer_unordered(CLAIM_CONCURRENCY)
            .collect()
            .await;
    let mut accepted: HashMap<(String, String), StoredEvent> = HashMap::new();
    let mut to_send: Vec<StoredEvent> = Vec::new();
    let mut flagged: Vec<bool> = Vec::new();
    let mut failure = None;
    for (r, claim) in claims {
        let id = (r.external_subscription_id.clone(), r.transaction_id.clone());
        match claim {
            Ok(Claim::Stored) => {
                accepted.insert(id, r.clone());
                to_send.push(r);
                flagged.push(false);
            }
            Ok(Claim::Existing { event, unsent }) => {
                if event.payload_digest != r.payload_digest {
                    let i = records
                        .iter()
                        .position(|x| x.transaction_id == r.transaction_id)
                        .unwrap_or(0);
                    failure.get_or_insert(IngestError::Invalid(vec![(i, conflict())]));
                    continue;
                }
                if unsent || now.timestamp_millis() - event.created_at_ms < RESEND_WINDOW_MS {
                    to_send.push((*event).clone());
                    flagged.push(unsent);
                }
                accepted.insert(id, *event);
            }
            Err(e) => {
                failure.get_or_insert(e.into());
            }
        }
    }

    // 5. Queue what was stored, and replays that may not have reached the queue.
    enqueue(&deps.events, &deps.queue, &org.id, &to_send, &flagged)
        .await
        .map_err(|e| wrap(IngestError::Unavailable(e.to_string())))?;
    if let Some(f) = failure {
        return Err(wrap(f));
    }
    Ok(records
        .iter()
        .filter_map(|r| {
            accepted
                .get(&(r.external_subscription_id.clone(), r.transaction_id.clone()))
                .cloned()
        })
        .collect())
}

fn conflict() -> ValidationErrors {
    ValidationErrors(vec![FieldError::new(
        "transaction_id",
        "value_already_exist",
    )])
}
