//! Everything needed to aggregate or price one external subscription's usage, read once:
//! its subscriptions (an upgrade chain shares the external id), each one's effective plan,
//! charges with their metrics, and billing dates in the customer's timezone.

use std::collections::HashMap;

use billing::{
    catalog::{
        Record,
        customer::Customer,
        metric::BillableMetric,
        organization::Organization,
        plan::{Charge, Plan},
        subscription::{Subscription, SubscriptionStatus},
    },
    period::{BillingSchedule, SubscriptionDates},
    usage::ChargeSpec,
};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::{BillingStore, StoreError};

/// One subscription with what prices it.
#[derive(Debug, Clone)]
pub struct PricedSubscription {
    /// The subscription.
    pub subscription: Record<Subscription>,
    /// Its effective plan (the override child when it has overrides).
    pub plan: Record<Plan>,
    /// Its charges, in the plan's order, each with its metric.
    pub charges: Vec<(Charge, ChargeSpec)>,
    /// Its billing dates.
    pub dates: SubscriptionDates,
    /// The timezone its periods follow.
    pub timezone: Tz,
}

/// The subscriptions sharing one external id.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionContext {
    /// Started subscriptions, oldest first.
    pub subscriptions: Vec<PricedSubscription>,
    /// The customer.
    pub customer: Option<Record<Customer>>,
}

impl SubscriptionContext {
    /// Reads the context of `external_subscription_id` in `org`.
    pub async fn load(
        store: &BillingStore,
        org: &Organization,
        external_subscription_id: &str,
    ) -> Result<Self, StoreError> {
        let mut subs = store
            .subscriptions_by_external_id(&org.id, external_subscription_id)
            .await?;
        subs.retain(|s| {
            s.value.started_at().is_some()
                && !matches!(
                    s.value.status(),
                    SubscriptionStatus::Pending | SubscriptionStatus::Canceled
                )
        });
        subs.sort_by_key(|s| s.value.started_at());
        let mut out = Self::default();
        let mut metrics: HashMap<String, BillableMetric> = HashMap::new();
        for sub in subs {
            if out.customer.is_none() {
                out.customer = match store
                    .get::<Customer>(&org.id, sub.value.external_customer_id())
                    .await
                {
                    Ok(c) => Some(c),
                    Err(StoreError::NotFound) => None,
                    Err(e) => return Err(e),
                };
            }
            let timezone = out
                .customer
                .as_ref()
                .map(|c| c.value.applicable_timezone(org.settings.timezone))
                .unwrap_or(org.settings.timezone);
            let plan = store
                .get::<Plan>(&org.id, sub.value.effective_plan_code())
                .await?;
            // Several charges may price one metric: ask for each code once.
            let mut missing: Vec<String> = plan
                .value
                .charges()
                .iter()
                .map(|c| c.billable_metric_code().to_owned())
                .filter(|c| !metrics.contains_key(c))
                .collect();
            missing.sort();
            missing.dedup();
            for m in store.get_many::<BillableMetric>(&org.id, &missing).await? {
                metrics.insert(m.value.code().to_owned(), m.value);
            }
            let mut charges = Vec::new();
            for charge in plan.value.charges() {
                let Some(metric) = metrics.get(charge.billable_metric_code()) else {
                    // A metric deleted after the plan was made bills nothing.
                    continue;
                };
                let spec = ChargeSpec::for_charge(charge, metric, timezone);
                charges.push((charge.clone(), spec));
            }
            let Some(started_at) = sub.value.started_at() else {
                continue;
            };
            let schedule = BillingSchedule::new(
                plan.value.interval(),
                sub.value.billing_time(),
                sub.value.subscription_at(),
                timezone,
            );
            let mut dates =
                SubscriptionDates::new(schedule, plan.value.pay_in_advance(), started_at);
            if let Some(t) = sub.value.terminated_at() {
                dates = dates.terminated_at(t);
            }
            if plan.value.bill_charges_monthly() {
                dates = dates.billing_charges_monthly();
            }
            out.subscriptions.push(PricedSubscription {
                subscription: sub,
                plan,
                charges,
                dates,
                timezone,
            });
        }
        Ok(out)
    }

    /// The subscription an event at `t` belongs to: started by then and not terminated before.
    pub fn at(&self, t: DateTime<Utc>) -> Option<&PricedSubscription> {
        self.subscriptions.iter().rev().find(|s| {
            s.subscription.value.started_at().is_some_and(|st| st <= t)
                && s.subscription
                    .value
                    .terminated_at()
                    .is_none_or(|end| t <= end)
        })
    }

    /// The active subscription, if any.
    pub fn active(&self) -> Option<&PricedSubscription> {
        self.subscriptions
            .iter()
            .rev()
            .find(|s| s.subscription.value.status() == SubscriptionStatus::Active)
    }
}
