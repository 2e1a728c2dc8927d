//! The fee estimate use case (`POST /events/estimate_fees`): the fees one event would create
//! on the pay-in-advance charges of its subscription's plan, priced against the period's
//! pre-aggregated usage exactly as current usage reads it. Nothing is written: no event, no
//! fee, no usage state.
//!
//! Lago's order of refusals is kept where it is observable: fields (422), subscription (404
//! `subscription_not_found`), metric (404 `billable_metric_not_found`), the event's values
//! against the metric (422), and a metric that feeds no pay-in-advance charge of the plan
//! (422 `code: does_not_match_an_instant_charge`, as lago-api answers).

use billing::{
    aggregation::{EventKey, UsageEvent, filters::Bucket, parse_numeric},
    catalog::{ValidationErrors, event::Event, metric::BillableMetric, organization::Organization},
    instant_fee::instant_fee,
    invoice_totals::fee_taxes,
    money::Currency,
    usage::PricingError,
};
use billing_aws::{
    StoreError,
    context::SubscriptionContext,
    tax_context::TaxContext,
    usage_pricing::{UsagePricingError, charge_usage},
};
use lago::dto::{
    estimated_fee::{EstimatedFeeView, EstimatedTax},
    event::EventInputDto,
};
use rust_decimal::Decimal;

use crate::Deps;

/// Why an estimate was refused.
#[derive(Debug, thiserror::Error)]
pub enum EstimateError {
    /// Field errors (422).
    #[error("invalid event")]
    Invalid(ValidationErrors),
    /// The subscription or the metric does not exist (404).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The metric feeds no pay-in-advance charge of the plan (422).
    #[error("the metric matches no pay-in-advance charge")]
    NoInstantCharge,
    /// A store could not be read (503), or an item is corrupt (500).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The charge could not be priced (overflow, or states that do not fit it).
    #[error("pricing failed: {0}")]
    Pricing(String),
}

impl From<UsagePricingError> for EstimateError {
    fn from(e: UsagePricingError) -> Self {
        match e {
            UsagePricingError::Store(e) => EstimateError::Store(e),
            other => EstimateError::Pricing(other.to_string()),
        }
    }
}

impl From<PricingError> for EstimateError {
    fn from(e: PricingError) -> Self {
        EstimateError::Pricing(e.to_string())
    }
}

/// The fees `dto` would create, one per pay-in-advance charge of the plan on its metric.
#[tracing::instrument(skip_all, fields(organization_id = %org.id))]
pub async fn estimate_fees(
    deps: &Deps,
    org: &Organization,
    dto: &EventInputDto,
) -> Result<Vec<EstimatedFeeView>, EstimateError> {
    let now = (deps.clock)();
    // 1. Fields. The transaction id is optional here (nothing is stored under it); a
    //    placeholder satisfies the event's validation and is never shown.
    let mut input = dto.to_input();
    let event_transaction_id = input
        .transaction_id
        .clone()
        .filter(|t| !t.trim().is_empty());
    input.transaction_id = Some(
        event_transaction_id
            .clone()
            .unwrap_or_else(|| "estimate".to_owned()),
    );
    let event = Event::new(input, now).map_err(EstimateError::Invalid)?;
    let t = event.timestamp();

    // 2. The subscription the event belongs to, then its metric.
    let context =
        SubscriptionContext::load(&deps.billing, org, event.external_subscription_id()).await?;
    let priced = context
        .at(t)
        .ok_or(EstimateError::NotFound("subscription"))?;
    let metric = match deps
        .billing
        .get::<BillableMetric>(&org.id, event.code())
        .await
    {
        Ok(m) => m,
        Err(StoreError::NotFound) => return Err(EstimateError::NotFound("billable_metric")),
        Err(e) => return Err(e.into()),
    };
    event
        .check_against(&metric.value)
        .map_err(EstimateError::Invalid)?;
    let charges: Vec<_> = priced
        .charges
        .iter()
        .filter(|(charge, spec)| charge.pay_in_advance() && spec.metric.code() == event.code())
        .collect();
    if charges.is_empty() {
        return Err(EstimateError::NoInstantCharge);
    }

    // 3. The charges period of the event and the usage already in it.
    let window = priced
        .dates
        .current_usage_boundaries(t)
        .map_err(|e| EstimateError::Pricing(e.to_string()))?;
    let (from, to) = (window.charges_from_datetime(), window.charges_to_datetime());
    let days = window.charges_duration_days();
    let currency = Currency::parse(priced.plan.value.amount_currency())
        .map_err(|e| EstimateError::Pricing(e.to_string()))?;
    let usage_store = &deps.usage;
    let external_subscription_id = event.external_subscription_id();
    let states = usage_store
        .states_upto(&org.id, external_subscription_id, from)
        .await?;
    let customer = context.customer.as_ref();
    let taxes = TaxContext::load(
        &deps.billing,
        &org.id,
        customer.map(|c| &c.value),
        &priced.plan.value,
    )
    .await?;

    // 4. Each charge's instant fee: the event counted last of its period.
    let precise_total_amount_cents = event.precise_total_amount_cents().and_then(parse_numeric);
    let properties = event.properties().to_vec();
    let mut fees = Vec::with_capacity(charges.len());
    for (charge, spec) in charges {
        let prior = charge_usage(
            usage_store,
            &org.id,
            external_subscription_id,
            spec,
            from,
            to,
            days,
            &states,
        )
        .await?;
        // Built after the read: a `UsageEvent` borrows `dyn` properties and is not `Send`.
        let candidate = UsageEvent::new(EventKey::new(t, u64::MAX), &properties)
            .with_precise_total_amount_cents(precise_total_amount_cents);
        let estimated = instant_fee(charge, &prior, &candidate, days, currency)?;
        let amount_cents = estimated.fee.amount().cents();
        let rates = taxes.for_charge(charge.tax_codes());
        let total = fee_taxes(amount_cents, Decimal::ZERO, &rates)
            .map_err(|e| EstimateError::Pricing(e.to_string()))?;
        let mut applied_taxes = Vec::with_capacity(rates.len());
        for rate in &rates {
            let one = fee_taxes(amount_cents, Decimal::ZERO, std::slice::from_ref(rate))
                .map_err(|e| EstimateError::Pricing(e.to_string()))?;
            let record = taxes.tax(rate.code());
            applied_taxes.push(EstimatedTax {
                lago_tax_id: record.map(|r| r.lago_id.clone()).unwrap_or_default(),
                name: record
                    .map(|r| r.value.name().to_owned())
                    .unwrap_or_default(),
                code: rate.code().to_owned(),
                rate: rate.rate(),
                description: record.and_then(|r| r.value.description().map(str::to_owned)),
                amount_cents: one.taxes_amount_cents,
            });
        }
        let filter = match estimated.bucket {
            Bucket::Filter(i) => charge.filters().get(i),
            Bucket::Default => None,
        };
        let group_keys = match filter {
            Some(f) if !f.properties().pricing_group_keys().is_empty() => {
                f.properties().pricing_group_keys()
            }
            _ => charge.pricing_group_keys(),
        };
        fees.push(EstimatedFeeView {
            lago_charge_id: charge.lago_id().to_owned(),
            invoiceable: charge.invoiceable(),
            metric_id: metric.lago_id.clone(),
            metric_code: metric.value.code().to_owned(),
            metric_name: metric.value.name().to_owned(),
            metric_description: metric.value.description().map(str::to_owned),
            charge_display_name: charge.invoice_display_name().map(str::to_owned),
            filter_values: filter.map(|f| f.values().clone()),
            filter_display_name: filter.and_then(|f| f.invoice_display_name().map(str::to_owned)),
            grouped_by: group_keys
                .iter()
                .cloned()
                .zip(estimated.group.values().iter().cloned())
                .collect(),
            lago_subscription_id: priced.subscription.lago_id.clone(),
            lago_customer_id: customer.map(|c| c.lago_id.clone()),
            external_customer_id: priced.subscription.value.external_customer_id().to_owned(),
            external_subscription_id: external_subscription_id.to_owned(),
            amount_cents,
            precise_amount_cents: estimated.fee.precise_amount_cents(),
            currency,
            units: estimated.fee.units(),
            precise_unit_amount: estimated.fee.precise_unit_amount(),
            taxes_amount_cents: total.taxes_amount_cents,
            taxes_precise_amount_cents: total.taxes_precise_amount_cents,
            taxes_rate: total.taxes_rate,
            applied_taxes,
            from_datetime: from,
            to_datetime: to,
            event_transaction_id: event_transaction_id.clone(),
        });
    }
    Ok(fees)
}
