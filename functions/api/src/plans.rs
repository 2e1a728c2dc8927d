//! `/plans`: create, list, show, update (partial; `charges` replaces the list), delete.
//!
//! Also the pieces `subscriptions` reuses for `plan_overrides`: resolving charge metrics,
//! checking tax codes, building charges over a base, and answering with a plan's taxes.

use axum::{
    extract::{Path, State},
    response::Response,
};
use billing::catalog::{
    Record, ValidationErrors,
    metric::BillableMetric,
    organization::Organization,
    plan::{Charge, ChargeInput, Plan, PlanInput},
    subscription::{Subscription, SubscriptionStatus},
    tax::Tax,
};
use billing_aws::{StoreError, dynamo::LIST_SCAN_MAX};
use chrono::{DateTime, Utc};
use lago::{
    ApiError,
    dto::plan::{ChargeInputDto, PlanDto, PlanInputDto, PlanScope, missing_metric, plan_tax_codes},
    http::{self, Paging},
};

use crate::{
    Deps, Tenant,
    edge::{Body, CONFLICT_RETRIES, Params, store_error},
    subscriptions,
};

const RESOURCE: &str = "plan";

/// The organization's billable metrics, read once per request to resolve charges by Lago id
/// or code (the catalog of metrics is small; plans reference them by Lago id).
pub(crate) struct Metrics(Vec<Record<BillableMetric>>);

impl Metrics {
    pub(crate) async fn load(deps: &Deps, org: &Organization) -> Result<Self, ApiError> {
        let (records, _) = deps
            .store
            .list::<BillableMetric>(&org.id, 1, LIST_SCAN_MAX)
            .await
            .map_err(|e| store_error("billable_metric", e))?;
        Ok(Self(records))
    }

    fn by_id(&self, lago_id: &str) -> Option<&Record<BillableMetric>> {
        self.0.iter().find(|m| m.lago_id == lago_id)
    }

    /// The metric a charge entry names (`billable_metric_id`, else `billable_metric_code`),
    /// else the one `fallback_id` names (the charge it updates); 404 when named but unknown.
    fn resolve(
        &self,
        dto: &ChargeInputDto,
        fallback_id: Option<&str>,
    ) -> Result<&Record<BillableMetric>, ApiError> {
        let found = match (&dto.billable_metric_id, &dto.billable_metric_code) {
            (Some(id), _) => self.by_id(id),
            (None, Some(code)) => self.0.iter().find(|m| m.value.code() == code),
            (None, None) => match fallback_id {
                Some(id) => self.by_id(id),
                None => return Err(missing_metric().into()),
            },
        };
        found.ok_or(ApiError::NotFound("billable_metric"))
    }
}

/// Every tax of `codes`, or 404 `tax_not_found` if one is unknown.
pub(crate) async fn load_taxes(
    deps: &Deps,
    org: &Organization,
    codes: &[String],
) -> Result<Vec<Record<Tax>>, ApiError> {
    let found = deps
        .store
        .get_many::<Tax>(&org.id, codes)
        .await
        .map_err(|e| store_error("tax", e))?;
    if codes
        .iter()
        .any(|c| !found.iter().any(|t| t.value.code() == c))
    {
        return Err(ApiError::NotFound("tax"));
    }
    Ok(found)
}

/// How a list of sent charges maps onto the current charges.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChargesMode {
    /// `PUT /plans`: the list replaces the charges; an entry matching a current charge by
    /// `id` or `code` updates it in place (keeping its Lago id).
    Replace,
    /// `plan_overrides`: every current charge is copied as an override child charge; entries
    /// (matched by `id`, the parent plan's charge id) override its properties, minimum,
    /// display name, filters and taxes.
    Override,
}

/// Builds the charges of a plan from the sent entries over `current`, validating each against
/// its metric. Errors of every charge are gathered into one 422.
pub(crate) fn build_charges(
    deps: &Deps,
    sent: Option<&[ChargeInputDto]>,
    current: &[Charge],
    mode: ChargesMode,
    metrics: &Metrics,
    now: DateTime<Utc>,
    errors: &mut ValidationErrors,
) -> Result<Vec<Charge>, ApiError> {
    let mut out = Vec::new();
    let mut push = |input: Result<ChargeInput, ValidationErrors>,
                    metric: &Record<BillableMetric>,
                    errors: &mut ValidationErrors| {
        match input.and_then(|i| Charge::new(i, &metric.lago_id, &metric.value)) {
            Ok(charge) => out.push(charge),
            Err(mut e) => errors.0.append(&mut e.0),
        }
    };
    match mode {
        ChargesMode::Replace => {
            let Some(sent) = sent else {
                return Ok(current.to_vec());
            };
            let mut matched: Vec<&str> = Vec::new();
            for dto in sent {
                let existing = current.iter().find(|c| {
                    !matched.contains(&c.lago_id())
                        && (dto.id.as_deref() == Some(c.lago_id())
                            || (dto.id.is_none() && dto.code.as_deref() == Some(c.code())))
                });
                let base = match existing {
                    Some(c) => {
                        matched.push(c.lago_id());
                        c.to_input()
                    }
                    None => new_charge(deps, now),
                };
                let metric = metrics.resolve(dto, existing.map(Charge::billable_metric_id))?;
                push(dto.overlay(base, false), metric, errors);
            }
        }
        ChargesMode::Override => {
            let sent = sent.unwrap_or_default();
            if let Some(unknown) = sent.iter().find(|dto| {
                !current.iter().any(|c| {
                    dto.id.as_deref() == Some(c.lago_id())
                        || dto
                            .id
                            .as_deref()
                            .is_some_and(|id| c.parent_id() == Some(id))
                })
            }) {
                tracing::debug!(id = ?unknown.id, "override of an unknown charge");
                return Err(ApiError::NotFound("charge"));
            }
            for charge in current {
                let mut base = charge.to_input();
                if charge.parent_id().is_none() {
                    // A fresh copy of a catalog charge: its own id, pointing at its parent.
                    base.parent_id = Some(charge.lago_id().to_owned());
                    base.lago_id = (deps.ids)();
                    base.created_at = now;
                }
                let metric = metrics
                    .by_id(charge.billable_metric_id())
                    .ok_or(ApiError::NotFound("billable_metric"))?;
                let dto = sent.iter().find(|dto| {
                    dto.id.as_deref() == Some(charge.lago_id())
                        || dto
                            .id
                            .as_deref()
                            .is_some_and(|id| charge.parent_id() == Some(id))
                });
                let input = match dto {
                    Some(dto) => dto.overlay(base, true),
                    None => Ok(base),
                };
                push(input, metric, errors);
            }
        }
    }
    Ok(out)
}

fn new_charge(deps: &Deps, now: DateTime<Utc>) -> ChargeInput {
    ChargeInput {
        lago_id: (deps.ids)(),
        created_at: now,
        parent_id: None,
        code: None,
        charge_model: None,
        properties: None,
        filters: Vec::new(),
        pay_in_advance: false,
        invoiceable: true,
        prorated: false,
        regroup_paid_fees: None,
        min_amount_cents: None,
        tax_codes: Vec::new(),
        invoice_display_name: None,
    }
}

/// Validates a plan: the sent fields over `base`, the charges, and the referenced taxes and
/// metrics, all before anything is written.
pub(crate) async fn build_plan(
    deps: &Deps,
    org: &Organization,
    dto: &PlanInputDto,
    base: PlanInput,
    scope: PlanScope,
    mode: ChargesMode,
    now: DateTime<Utc>,
) -> Result<Plan, ApiError> {
    let metrics = Metrics::load(deps, org).await?;
    let mut errors = dto.type_errors();
    let had_commitment = base.minimum_commitment.is_some();
    let current_charges = base.charges.clone();
    let mut new_id = || (deps.ids)();
    let mut input = dto.overlay(base, scope, now, &mut new_id);
    input.charges = build_charges(
        deps,
        dto.charges.as_deref(),
        &current_charges,
        mode,
        &metrics,
        now,
        &mut errors,
    )?;
    load_taxes(deps, org, &dto.tax_codes_named()).await?;
    if dto.commitment_lacks_amount(had_commitment) {
        errors.push("amount_cents", "value_is_mandatory");
    }
    match Plan::new(input) {
        Ok(plan) => {
            errors.into_result()?;
            Ok(plan)
        }
        Err(mut e) => {
            errors.0.append(&mut e.0);
            Err(errors.into())
        }
    }
}

/// The plan response, with the taxes of the plan, its charges and its commitment.
pub(crate) async fn plan_dto(
    deps: &Deps,
    org: &Organization,
    record: &Record<Plan>,
) -> Result<PlanDto, ApiError> {
    let taxes = deps
        .store
        .get_many::<Tax>(&org.id, &plan_tax_codes(&record.value))
        .await
        .map_err(|e| store_error("tax", e))?;
    Ok(PlanDto::new(record, &taxes))
}

/// A catalog plan by code: override and deleted plans are not reachable by code.
pub(crate) async fn catalog_plan(
    deps: &Deps,
    org: &Organization,
    code: &str,
) -> Result<Record<Plan>, ApiError> {
    let record = deps
        .store
        .get::<Plan>(&org.id, code)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    if record.value.is_catalog_plan() {
        Ok(record)
    } else {
        Err(ApiError::NotFound(RESOURCE))
    }
}

/// `POST /plans`.
pub async fn create(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let dto: PlanInputDto = http::root_dto(&body, RESOURCE)?;
    let now = (deps.clock)();
    let plan = build_plan(
        &deps,
        &org,
        &dto,
        PlanInput::default(),
        PlanScope::All,
        ChargesMode::Replace,
        now,
    )
    .await?;
    let record = Record {
        lago_id: (deps.ids)(),
        created_at: now,
        updated_at: now,
        sequential_id: None,
        version: 1,
        value: plan,
    };
    deps.store
        .create_plan(&org.id, &record)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    Ok(http::ok(RESOURCE, plan_dto(&deps, &org, &record).await?))
}

/// `GET /plans`: the catalog (override plans are not listed).
pub async fn list(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Params(query): Params,
) -> Result<Response, ApiError> {
    let paging = Paging::from_query(&query)?;
    let (records, total) = deps
        .store
        .list_plans(&org.id, paging.page, paging.per_page)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    let mut codes: Vec<String> = records
        .iter()
        .flat_map(|r| plan_tax_codes(&r.value))
        .collect();
    codes.sort();
    codes.dedup();
    let taxes = deps
        .store
        .get_many::<Tax>(&org.id, &codes)
        .await
        .map_err(|e| store_error("tax", e))?;
    let items: Vec<PlanDto> = records.iter().map(|r| PlanDto::new(r, &taxes)).collect();
    Ok(http::list("plans", items, paging, total))
}

/// `GET /plans/{code}`.
pub async fn show(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let record = catalog_plan(&deps, &org, &code).await?;
    Ok(http::ok(RESOURCE, plan_dto(&deps, &org, &record).await?))
}

/// Whether any subscription (in any status) was made on the plan `code`.
async fn has_subscriptions(deps: &Deps, org: &Organization, code: &str) -> Result<bool, ApiError> {
    let all = deps
        .store
        .subscriptions(&org.id)
        .await
        .map_err(|e| store_error("subscription", e))?;
    Ok(all.iter().any(|s| s.value.plan_code() == code))
}

/// `PUT /plans/{code}`: the sent fields over the current plan. Once subscriptions use it,
/// `code`, `interval`, `pay_in_advance`, `amount_currency`, `trial_period` and
/// `bill_charges_monthly` no longer change (lago-api ignores them then).
pub async fn update(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(code): Path<String>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let dto: PlanInputDto = http::root_dto(&body, RESOURCE)?;
    for _ in 0..CONFLICT_RETRIES {
        let current = catalog_plan(&deps, &org, &code).await?;
        let scope = if has_subscriptions(&deps, &org, &code).await? {
            PlanScope::Subscribed
        } else {
            PlanScope::All
        };
        let now = (deps.clock)();
        let plan = build_plan(
            &deps,
            &org,
            &dto,
            current.value.to_input(),
            scope,
            ChargesMode::Replace,
            now,
        )
        .await?;
        let record = Record {
            updated_at: now,
            version: current.version + 1,
            value: plan,
            ..current
        };
        match deps.store.replace_plan(&org.id, &code, &record).await {
            Ok(()) => return Ok(http::ok(RESOURCE, plan_dto(&deps, &org, &record).await?)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(store_error(RESOURCE, e)),
        }
    }
    Err(ApiError::Unavailable)
}

/// `DELETE /plans/{code}`: as lago-api, the plan's active subscriptions are terminated and
/// its pending ones canceled, and the plan leaves the catalog (its code is free again). The
/// record is kept under a deleted key for the subscriptions it priced. Answers the plan with
/// `pending_deletion: true`, as lago-api does.
pub async fn destroy(
    State(deps): State<Deps>,
    Tenant(org): Tenant,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    let mut current = deps
        .store
        .get::<Plan>(&org.id, &code)
        .await
        .map_err(|e| store_error(RESOURCE, e))?;
    if current.value.parent_code().is_some() {
        return Err(ApiError::NotFound(RESOURCE));
    }
    let now = (deps.clock)();
    // 1. Out of the catalog first, so no new subscription starts on it meanwhile. A deletion
    //    interrupted after this step is completed by the next DELETE.
    if !current.value.pending_deletion() {
        let mut input = current.value.to_input();
        input.pending_deletion = true;
        let marked = Record {
            updated_at: now,
            version: current.version + 1,
            value: Plan::new(input)?,
            ..current.clone()
        };
        deps.store
            .replace_plan(&org.id, &code, &marked)
            .await
            .map_err(|e| store_error(RESOURCE, e))?;
        current = marked;
    }
    // 2. The record under its deleted key, which the subscriptions will point at.
    let kept = Record {
        version: 1,
        value: current.value.clone().into_deleted(&current.lago_id),
        ..current.clone()
    };
    match deps.store.create_plan(&org.id, &kept).await {
        Ok(()) | Err(StoreError::AlreadyExists) => {}
        Err(e) => return Err(store_error(RESOURCE, e)),
    }
    // 3. Terminate, cancel and re-point its subscriptions, one external id at a time.
    let all = deps
        .store
        .subscriptions(&org.id)
        .await
        .map_err(|e| store_error("subscription", e))?;
    let mut external_ids: Vec<String> = all
        .iter()
        .filter(|s| s.value.plan_code() == code || s.value.effective_plan_code() == code)
        .map(|s| s.value.external_id().to_owned())
        .collect();
    external_ids.sort();
    external_ids.dedup();
    for external_id in external_ids {
        subscriptions::end_plan_subscriptions(
            &deps,
            &org,
            &external_id,
            &code,
            kept.value.store_key(),
            now,
        )
        .await?;
    }
    // 4. The catalog item goes.
    match deps
        .store
        .delete_plan_item(&org.id, &code, current.version)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict) => return Err(ApiError::Unavailable),
        Err(e) => return Err(store_error(RESOURCE, e)),
    }
    Ok(http::ok(
        RESOURCE,
        plan_dto(&deps, &org, &current).await?.deleted(),
    ))
}

/// Whether a subscription is on the plan `code` and still running.
pub(crate) fn runs_on(subscription: &Subscription, code: &str) -> bool {
    subscription.plan_code() == code
        && matches!(
            subscription.status(),
            SubscriptionStatus::Active | SubscriptionStatus::Pending
        )
}
