//! `/subscriptions`: create (also upgrade, downgrade and idempotent replay on an existing
//! `external_id`), list, show, update, terminate/cancel.
//!
//! Every change to an external id's subscriptions is decided on one read of all of them and
//! written as one transaction that advances the external id's family head
//! (`BillingStore::write_subscriptions`): a concurrent change makes it fail with a conflict,
//! and the request is decided again on fresh data.

use std::collections::HashMap;

use axum::{
    extract::{Path, State},
    response::Response,
};
use billing::catalog::{
    Record, ValidationErrors,
    customer::{Customer, CustomerPatch, Patch},
    organization::Organization,
    plan::{Plan, PlanInput},
    subscription::{
        NewSubscription, PlanSwitch, Subscription, SubscriptionPatch, SubscriptionStatus, editable,
        pending_successor,
    },
    tax::Tax,
};
use billing::period::PlanChange;
use billing_aws::{
    StoreError,
    dynamo::subscriptions::{SubscriptionFamily, SubscriptionWrite},
};
use chrono::{DateTime, Utc};
use lago::{
    ApiError,
    dto::{
        plan::{PlanInputDto, PlanScope, plan_tax_codes},
        subscription::{
            SubscriptionDto, SubscriptionFacts, SubscriptionInputDto, TerminationParams,
            datetime_field,
        },
    },
    http::{self, Paging},
};

use crate::{
    Deps, Tenant,
    edge::{Body, CONFLICT_RETRIES, Params, store_error},
    plans::{self, ChargesMode},
};

const RESOURCE: &str = "subscription";

mod events;

fn bump(
    record: &Record<Subscription>,
    value: Subscription,
    now: DateTime<Utc>,
) -> Record<Subscription> {
    Record {
        updated_at: now,
        version: record.version + 1,
        value,
        ..record.clone()
    }
}

fn fresh<T>(lago_id: String, value: T, now: DateTime<Utc>) -> Record<T> {
    Record {
        lago_id,
        created_at: now,
        updated_at: now,
        sequential_id: None,
        version: 1,
        value,
    }
}

fn query_value<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// The record of `family` that the subscription lives in.
fn record_of<'a>(
    family: &'a SubscriptionFamily,
    s: &Subscription,
) -> Option<&'a Record<Subscription>> {
    family
        .subscriptions
        .iter()
        .find(|r| r.lago_id == s.lago_id())
}

/// The override plan for `overrides`, built over `base` (the plan the subscription is priced
/// by now: the catalog plan, or its current override plan, which is then updated in place).
async fn override_plan(
    deps: &Deps,
    org: &Organization,
    catalog: &Record<Plan>,
    base: &Record<Plan>,
    overrides: &PlanInputDto,
    now: DateTime<Utc>,
) -> Result<Record<Plan>, ApiError> {
    let updating = base.value.parent_code().is_some() && !base.value.pending_deletion();
    let mut input: PlanInput = base.value.to_input();
    if !updating {
        input.parent_code = Some(catalog.value.code().to_owned());
        input.parent_id = Some(catalog.lago_id.clone());
    }
    let child_id = if updating {
        base.lago_id.clone()
    } else {
        (deps.ids)()
    };
    input.store_suffix = Some(child_id.clone());
    input.pending_deletion = false;
    let plan = plans::build_plan(
        deps,
        org,
        overrides,
        input,
        PlanScope::Overrides,
        ChargesMode::Override,
        now,
    )
    .await?;
    Ok(if updating {
        Record {
            updated_at: now,
            version: base.version + 1,
            value: plan,
            ..base.clone()
        }
    } else {
        fresh(child_id, plan, now)
    })
}

/// The subscription's customer (absent if it was deleted since: the organization's timezone
/// then applies).
async fn customer_of(
    deps: &Deps,
    org: &Organization,
    s: &Subscription,
) -> Result<Option<Customer>, ApiError> {
    match deps
        .store
        .get::<Customer>(&org.id, s.external_customer_id())
        .await
    {
        Ok(c) => Ok(Some(c.value)),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(store_error("customer", e)),
    }
}

/// The plan record pricing a subscription.
async fn effective_plan(
    deps: &Deps,
    org: &Organization,
    s: &Subscription,
) -> Result<Record<Plan>, ApiError> {
    match deps
        .store
        .get::<Plan>(&org.id, s.effective_plan_code())
        .await
    {
        Ok(p) => Ok(p),
        Err(StoreError::NotFound) => {
            tracing::error!(
                subscription = s.lago_id(),
                plan = s.effective_plan_code(),
                "a subscription's plan record is missing"
            );
            Err(ApiError::Internal)
        }
        Err(e) => Err(store_error("plan", e)),
    }
}

/// Trial end and current period, in the customer's timezone (else the organization's).
fn facts(
    s: &Subscription,
    plan: &Plan,
    customer: Option<&Customer>,
    org: &Organization,
    now: DateTime<Utc>,
) -> Result<SubscriptionFacts, ApiError> {
    let timezone = customer.map_or(org.settings.timezone, |c| {
        c.applicable_timezone(org.settings.timezone)
    });
    let current_billing_period = s.current_billing_period(plan, timezone, now).map_err(|e| {
        tracing::error!(error.cause_chain = %e, "billing period");
        ApiError::Internal
    })?;
    Ok(SubscriptionFacts {
        trial_ended_at: s.trial_ended_at(plan, now),
        current_billing_period,
    })
}

/// `SubscriptionObjectExtended` (create and show).
async fn extended(
    deps: &Deps,
    org: &Organization,
    record: &Record<Subscription>,
    now: DateTime<Utc>,
) -> Result<Response, ApiError> {
    let plan = effective_plan(deps, org, &record.value).await?;
    let customer = customer_of(deps, org, &record.value).await?;
    let taxes = deps
        .store
        .get_many::<Tax>(&org.id, &plan_tax_codes(&plan.value))
        .await
        .map_err(|e| store_error("tax", e))?;
    let facts = facts(&record.value, &plan.value, customer.as_ref(), org, now)?;
    Ok(http::ok(
        RESOURCE,
        SubscriptionDto::extended(record, &plan, &taxes, &facts),
    ))
}

/// `SubscriptionObject` (update and terminate).
async fn plain(
    deps: &Deps,
    org: &Organization,
    record: &Record<Subscription>,
    now: DateTime<Utc>,
) -> Result<Response, ApiError> {
    let plan = effective_plan(deps, org, &record.value).await?;
    let customer = customer_of(deps, org, &record.value).await?;
    let facts = facts(&record.value, &plan.value, customer.as_ref(), org, now)?;
    Ok(http::ok(
        RESOURCE,
        SubscriptionDto::new(record, &plan.value, &facts),
    ))
}

/// The customer with its currency set from the plan if it had none; `None` when unchanged.
/// A customer billed in another currency is `currency: currencies_does_not_match`.
fn customer_currency(
    customer: &Record<Customer>,
    currency: &str,
    now: DateTime<Utc>,
) -> Result<Option<Record<Customer>>, ApiError> {
    match customer.value.currency() {
        Some(c) if c == currency => Ok(None),
        Some(_) => Err(ApiError::invalid("currency", "currencies_does_not_match")),
        None => {
            let value = customer.value.apply(
                CustomerPatch {
                    currency: Patch::Set(currency.to_owned()),
                    ..CustomerPatch::default()
                },
                false,
            )?;
            Ok(Some(Record {
                updated_at: now,
                version: customer.version + 1,
                value,
                ..customer.clone()
            }))
        }
    }
}

/// `POST /subscriptions`: a new subscription; on an `external_id` with a running
/// subscription, the same plan answers it unchanged, another plan upgrades (now) or
/// downgrades (at the period end).
pub async fn create(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let dto: SubscriptionInputDto = http::root_dto(&body, RESOURCE)?;
    let external_customer_id = dto
        .external_customer_id
        .clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("external_customer_id", "value_is_mandatory"))?;
    let external_id = dto
        .external_id
        .clone()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::invalid("external_id", "value_is_mandatory"))?;
    deps.store
        .get::<Customer>(&org.id, &external_customer_id)
        .await
        .map_err(|e| store_error("customer", e))?;
    let plan_code = dto.plan_code.clone().unwrap_or_default();
    let catalog = plans::catalog_plan(&deps, &org, &plan_code).await?;
    let now = (deps.clock)();
    let mut errors = ValidationErrors::default();
    let billing_time = dto.billing_time(&mut errors);
    let subscription_at = datetime_field("subscription_at", &dto.subscription_at, &mut errors)
        .flatten()
        .unwrap_or(now);
    let ending_at = datetime_field("ending_at", &dto.ending_at, &mut errors);
    errors.into_result()?;
    let child = match &dto.plan_overrides {
        Some(o) => Some(override_plan(&deps, &org, &catalog, &catalog, o, now).await?),
        None => None,
    };
    let new_plan = child.as_ref().unwrap_or(&catalog);
    let name = dto.name.clone().flatten();

    for _ in 0..CONFLICT_RETRIES {
        let customer = deps
            .store
            .get::<Customer>(&org.id, &external_customer_id)
            .await
            .map_err(|e| store_error("customer", e))?;
        let timezone = customer.value.applicable_timezone(org.settings.timezone);
        let customer_update = customer_currency(&customer, new_plan.value.amount_currency(), now)?;
        let family = deps
            .store
            .subscription_family(&org.id, &external_id)
            .await
            .map_err(|e| store_error(RESOURCE, e))?;
        let values: Vec<Subscription> = family
            .subscriptions
            .iter()
            .map(|r| r.value.clone())
            .collect();
        let current = editable(&values).and_then(|s| record_of(&family, s));
        if let Some(current) = current
            && current.value.customer_id() != customer.lago_id
        {
            return Err(ApiError::invalid("external_id", "value_already_exist"));
        }
        let switch = PlanSwitch {
            lago_id: (deps.ids)(),
            plan_code: catalog.value.code().to_owned(),
            effective_plan_code: new_plan.value.store_key().to_owned(),
            name: name.clone(),
            ending_at,
        };
        let mut writes: Vec<Record<Subscription>> = Vec::new();
        let answer: Record<Subscription>;
        match current {
            None => {
                let subscription = Subscription::start(
                    NewSubscription {
                        lago_id: switch.lago_id.clone(),
                        external_id: external_id.clone(),
                        external_customer_id: external_customer_id.clone(),
                        customer_id: customer.lago_id.clone(),
                        plan_code: switch.plan_code.clone(),
                        effective_plan_code: switch.effective_plan_code.clone(),
                        name: name.clone(),
                        billing_time,
                        subscription_at,
                        ending_at: ending_at.flatten(),
                    },
                    timezone,
                    now,
                )?;
                answer = fresh(switch.lago_id.clone(), subscription, now);
                writes.push(answer.clone());
            }
            Some(current) if current.value.plan_code() == catalog.value.code() => {
                // A replay (perhaps the retry of a create whose events were not published).
                events::flush(&deps, &org, &external_id, &family.subscriptions, now).await;
                return extended(&deps, &org, current, now).await;
            }
            Some(current) if current.value.is_starting_in_the_future() => {
                let moved = current
                    .value
                    .switch_pending_plan(switch)
                    .map_err(|_| ApiError::Unavailable)?;
                answer = bump(current, moved, now);
                writes.push(answer.clone());
            }
            Some(current) => {
                let pending =
                    pending_successor(&values, &current.value).and_then(|s| record_of(&family, s));
                if pending.is_some_and(|p| p.value.plan_code() == catalog.value.code()) {
                    // The same downgrade again: already scheduled.
                    return extended(&deps, &org, current, now).await;
                }
                if let Some(pending) = pending {
                    let canceled = pending
                        .value
                        .cancel(now)
                        .map_err(|_| ApiError::Unavailable)?;
                    writes.push(bump(pending, canceled, now));
                }
                let current_plan = effective_plan(&deps, &org, &current.value).await?;
                match Subscription::plan_change(&current_plan.value, &new_plan.value) {
                    PlanChange::Upgrade => {
                        let (old, new) = current
                            .value
                            .upgrade(switch.clone(), now)
                            .map_err(|_| ApiError::Unavailable)?;
                        writes.push(bump(current, old, now));
                        answer = fresh(switch.lago_id, new, now);
                        writes.push(answer.clone());
                    }
                    PlanChange::Downgrade => {
                        let date = current
                            .value
                            .next_period_start(&current_plan.value, timezone, now)
                            .map_err(|_| ApiError::Internal)?;
                        let (kept, waiting) = current
                            .value
                            .downgrade(switch.clone(), date)
                            .map_err(|_| ApiError::Unavailable)?;
                        answer = bump(current, kept, now);
                        writes.push(answer.clone());
                        writes.push(fresh(switch.lago_id, waiting, now));
                    }
                }
            }
        }
        let pending = events::outbox_entries(&family.subscriptions, &writes);
        let change = SubscriptionWrite {
            external_id: &external_id,
            read_version: family.version,
            subscriptions: writes.iter().collect(),
            plan: child.as_ref(),
            customer: customer_update.as_ref(),
            pending_events: pending.clone(),
        };
        match deps.store.write_subscriptions(&org.id, &change).await {
            Ok(()) => {
                events::publish(&deps, &org, &external_id, &writes, &pending, now).await;
                return extended(&deps, &org, &answer, now).await;
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(RESOURCE, e)),
        }
    }
    Err(ApiError::Unavailable)
}

/// The subscription of `family` with `status` (the latest one when several have it, as
/// terminated ones may).
fn with_status(
    family: &SubscriptionFamily,
    status: SubscriptionStatus,
) -> Option<&Record<Subscription>> {
    family
        .subscriptions
        .iter()
        .rev()
        .find(|r| r.value.status() == status)
}

fn status_param(
    query: &[(String, String)],
    default: Option<SubscriptionStatus>,
) -> Result<Option<SubscriptionStatus>, ApiError> {
    match query_value(query, "status") {
        None => Ok(default),
        Some(s) => SubscriptionStatus::parse(s)
            .map(Some)
            .ok_or(ApiError::NotFound(RESOURCE)),
    }
}

/// `GET /subscriptions/{external_id}`: `status` (default `active`) chooses among the
/// subscriptions of the external id.
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(external_id): Path<String>,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let status = status_param(&query, Some(SubscriptionStatus::Active))?
        .unwrap_or(SubscriptionStatus::Active);
    let family = deps
        .store
        .subscription_family(&org.id, &external_id)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let record = with_status(&family, status).ok_or(ApiError::NotFound(RESOURCE))?;
    extended(&deps, &org, record, (deps.clock)()).await
}

/// `GET /subscriptions`: filters `external_customer_id`, `plan_code`, `status[]` (default
/// `active`), paged.
pub async fn list(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(&query)?;
    let mut statuses = Vec::new();
    for (key, value) in &query {
        if key == "status[]" || key == "status" {
            match SubscriptionStatus::parse(value) {
                Some(s) => statuses.push(s),
                None => return Err(ApiError::invalid("status", "value_is_invalid")),
            }
        }
    }
    if statuses.is_empty() {
        statuses.push(SubscriptionStatus::Active);
    }
    let records = match query_value(&query, "external_customer_id") {
        Some(external_customer_id) => {
            match deps
                .store
                .get::<Customer>(&org.id, external_customer_id)
                .await
            {
                Ok(customer) => deps
                    .store
                    .subscriptions_by_customer(&org.id, &customer.lago_id)
                    .await
                    .map_err(|e| store_error(RESOURCE, e))?,
                Err(StoreError::NotFound) => Vec::new(),
                Err(e) => return Err(store_error("customer", e)),
            }
        }
        None => deps
            .store
            .subscriptions(&org.id)
            .await
            .map_err(|e| store_error(RESOURCE, e))?,
    };
    let plan_code = query_value(&query, "plan_code");
    let mut matching: Vec<&Record<Subscription>> = records
        .iter()
        .filter(|r| statuses.contains(&r.value.status()))
        .filter(|r| plan_code.is_none_or(|c| r.value.plan_code() == c))
        .collect();
    matching.sort_by(|a, b| (a.created_at, &a.lago_id).cmp(&(b.created_at, &b.lago_id)));
    let total = matching.len();
    let skip = paging
        .page
        .saturating_sub(1)
        .saturating_mul(paging.per_page);
    let now = (deps.clock)();
    let mut plans: HashMap<String, Record<Plan>> = HashMap::new();
    let mut customers: HashMap<String, Option<Customer>> = HashMap::new();
    let mut items = Vec::new();
    for record in matching.into_iter().skip(skip).take(paging.per_page) {
        let s = &record.value;
        if !plans.contains_key(s.effective_plan_code()) {
            let plan = effective_plan(&deps, &org, s).await?;
            plans.insert(s.effective_plan_code().to_owned(), plan);
        }
        if !customers.contains_key(s.external_customer_id()) {
            let customer = customer_of(&deps, &org, s).await?;
            customers.insert(s.external_customer_id().to_owned(), customer);
        }
        let (Some(plan), Some(customer)) = (
            plans.get(s.effective_plan_code()),
            customers.get(s.external_customer_id()),
        ) else {
            return Err(ApiError::Internal);
        };
        let facts = facts(s, &plan.value, customer.as_ref(), &org, now)?;
        items.push(SubscriptionDto::new(record, &plan.value, &facts));
    }
    Ok(http::list("subscriptions", items, paging, total))
}

/// `PUT /subscriptions/{external_id}`: `name`, `ending_at`, `subscription_at` (before the
/// start only) and `plan_overrides`. `status` (query or top-level body key; `active` or
/// `pending`) chooses the subscription; without it, the active one, else the pending one.
pub async fn update(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(external_id): Path<String>,
    Params(query): Params,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let mut map = http::parse_body(&body)?;
    let body_status = match map.remove("status") {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    };
    let dto: SubscriptionInputDto = http::from_object(http::root_object(map, RESOURCE)?)?;
    let status = match body_status.as_deref().or(query_value(&query, "status")) {
        None => None,
        Some("active") => Some(SubscriptionStatus::Active),
        Some("pending") => Some(SubscriptionStatus::Pending),
        Some(_) => return Err(ApiError::NotFound(RESOURCE)),
    };
    let now = (deps.clock)();
    let mut errors = ValidationErrors::default();
    let patch = SubscriptionPatch {
        name: dto.name.clone(),
        ending_at: datetime_field("ending_at", &dto.ending_at, &mut errors),
        subscription_at: datetime_field("subscription_at", &dto.subscription_at, &mut errors)
            .flatten(),
    };
    errors.into_result()?;
    for _ in 0..CONFLICT_RETRIES {
        let family = deps
            .store
            .subscription_family(&org.id, &external_id)
            .await
            .map_err(|e| store_error(RESOURCE, e))?;
        let target = match status {
            Some(s) => with_status(&family, s),
            None => with_status(&family, SubscriptionStatus::Active)
                .or_else(|| with_status(&family, SubscriptionStatus::Pending)),
        }
        .ok_or(ApiError::NotFound(RESOURCE))?;
        let customer = customer_of(&deps, &org, &target.value).await?;
        let timezone = customer.as_ref().map_or(org.settings.timezone, |c| {
            c.applicable_timezone(org.settings.timezone)
        });
        let mut updated = target.value.update(patch.clone(), timezone, now)?;
        let child = match &dto.plan_overrides {
            Some(overrides) => {
                let catalog = deps
                    .store
                    .get::<Plan>(&org.id, target.value.plan_code())
                    .await
                    .map_err(|e| store_error("plan", e))?;
                let base = effective_plan(&deps, &org, &target.value).await?;
                let child = override_plan(&deps, &org, &catalog, &base, overrides, now).await?;
                updated = updated.with_effective_plan(child.value.store_key());
                Some(child)
            }
            None => None,
        };
        let record = bump(target, updated, now);
        let change = SubscriptionWrite {
            external_id: &external_id,
            read_version: family.version,
            subscriptions: vec![&record],
            plan: child.as_ref(),
            customer: None,
            pending_events: Vec::new(),
        };
        match deps.store.write_subscriptions(&org.id, &change).await {
            Ok(()) => return plain(&deps, &org, &record, now).await,
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(RESOURCE, e)),
        }
    }
    Err(ApiError::Unavailable)
}

/// `DELETE /subscriptions/{external_id}`: terminates the active subscription now (its
/// scheduled downgrade, if any, is canceled), or with `status=pending` cancels the pending one
/// (a scheduled downgrade is then forgotten by its predecessor). `on_termination_credit_note`
/// and `on_termination_invoice` are recorded.
pub async fn destroy(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(external_id): Path<String>,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let status = status_param(&query, Some(SubscriptionStatus::Active))?
        .unwrap_or(SubscriptionStatus::Active);
    if !matches!(
        status,
        SubscriptionStatus::Active | SubscriptionStatus::Pending
    ) {
        return Err(ApiError::NotFound(RESOURCE));
    }
    let params = TerminationParams::from_query(&query)?;
    for _ in 0..CONFLICT_RETRIES {
        let now = (deps.clock)();
        let family = deps
            .store
            .subscription_family(&org.id, &external_id)
            .await
            .map_err(|e| store_error(RESOURCE, e))?;
        let target = with_status(&family, status).ok_or(ApiError::NotFound(RESOURCE))?;
        let writes = end(&family, target, &params, now)?;
        let answer = writes
            .iter()
            .find(|r| r.lago_id == target.lago_id)
            .cloned()
            .ok_or(ApiError::Internal)?;
        let pending = events::outbox_entries(&family.subscriptions, &writes);
        let change = SubscriptionWrite {
            external_id: &external_id,
            read_version: family.version,
            subscriptions: writes.iter().collect(),
            plan: None,
            customer: None,
            pending_events: pending.clone(),
        };
        match deps.store.write_subscriptions(&org.id, &change).await {
            Ok(()) => {
                events::publish(&deps, &org, &external_id, &writes, &pending, now).await;
                return plain(&deps, &org, &answer, now).await;
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(RESOURCE, e)),
        }
    }
    Err(ApiError::Unavailable)
}

/// Ends `target`: terminates it if active (canceling its scheduled successor), cancels it if
/// pending (its predecessor forgets it). Returns every record that changed.
fn end(
    family: &SubscriptionFamily,
    target: &Record<Subscription>,
    params: &TerminationParams,
    now: DateTime<Utc>,
) -> Result<Vec<Record<Subscription>>, ApiError> {
    let values: Vec<Subscription> = family
        .subscriptions
        .iter()
        .map(|r| r.value.clone())
        .collect();
    let mut writes = Vec::new();
    match target.value.status() {
        SubscriptionStatus::Active => {
            let mut terminated = target
                .value
                .terminate(now, params.credit_note, params.invoice)
                .map_err(|_| ApiError::Unavailable)?;
            if let Some(pending) =
                pending_successor(&values, &target.value).and_then(|s| record_of(family, s))
            {
                let canceled = pending
                    .value
                    .cancel(now)
                    .map_err(|_| ApiError::Unavailable)?;
                writes.push(bump(pending, canceled, now));
                terminated = terminated.without_successor();
            }
            writes.push(bump(target, terminated, now));
        }
        SubscriptionStatus::Pending => {
            let canceled = target
                .value
                .cancel(now)
                .map_err(|_| ApiError::Unavailable)?;
            writes.push(bump(target, canceled, now));
            if let Some(previous) = target.value.previous_subscription_id()
                && let Some(previous) = family.subscriptions.iter().find(|r| {
                    r.lago_id == previous
                        && r.value.next_subscription_id() == Some(target.lago_id.as_str())
                })
            {
                writes.push(bump(previous, previous.value.without_successor(), now));
            }
        }
        _ => return Err(ApiError::NotFound(RESOURCE)),
    }
    Ok(writes)
}

/// For a plan being deleted: ends the running subscriptions of `external_id` on plan `code`
/// (as lago-api's `Plans::DestroyService`) and points every subscription priced by the plan's
/// record at its deleted copy `kept_key`.
pub(crate) async fn end_plan_subscriptions(
    deps: &Deps,
    org: &Organization,
    external_id: &str,
    code: &str,
    kept_key: &str,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    for _ in 0..CONFLICT_RETRIES {
        let family = deps
            .store
            .subscription_family(&org.id, external_id)
            .await
            .map_err(|e| store_error(RESOURCE, e))?;
        let mut changed: HashMap<String, Record<Subscription>> = HashMap::new();
        for record in &family.subscriptions {
            // Ending one subscription may already have ended another (a scheduled successor).
            let current = changed.get(&record.lago_id).unwrap_or(record).clone();
            if !plans::runs_on(&current.value, code) {
                continue;
            }
            for w in end(&family, &current, &TerminationParams::default(), now)? {
                changed.insert(w.lago_id.clone(), w);
            }
        }
        for record in &family.subscriptions {
            if record.value.effective_plan_code() == code {
                let base = changed.get(&record.lago_id).cloned();
                let updated = match base {
                    Some(b) => Record {
                        value: b.value.with_effective_plan(kept_key),
                        ..b
                    },
                    None => bump(record, record.value.with_effective_plan(kept_key), now),
                };
                changed.insert(record.lago_id.clone(), updated);
            }
        }
        if changed.is_empty() {
            return Ok(());
        }
        let writes: Vec<Record<Subscription>> = changed.into_values().collect();
        let pending = events::outbox_entries(&family.subscriptions, &writes);
        let change = SubscriptionWrite {
            external_id,
            read_version: family.version,
            subscriptions: writes.iter().collect(),
            plan: None,
            customer: None,
            pending_events: pending.clone(),
        };
        match deps.store.write_subscriptions(&org.id, &change).await {
            Ok(()) => {
                events::publish(deps, org, external_id, &writes, &pending, now).await;
                return Ok(());
            }
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(RESOURCE, e)),
        }
    }
    Err(ApiError::Unavailable)
}
